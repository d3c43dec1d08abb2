"""A LocalCluster bound to the loopback interface, for tests, examples and benchmarks."""

import contextlib
import logging

from ._dask import import_distributed

__all__ = ["loopback_client"]


@contextlib.contextmanager
def loopback_client(n_workers=2, *, threads_per_worker=1, processes=True,
                    memory_limit="1GiB", **cluster_kwargs):
    """A ``distributed.Client`` on a fresh ``LocalCluster`` that listens on 127.0.0.1 only.

    The scheduler, workers and nannies bind to 127.0.0.1; the dashboard too, on a random free
    port (``dashboard_address=None`` does not disable it, it binds the fixed port 8787, which
    parallel runs would fight over). Cluster and client are closed on exit, errors included.

    Parameters
    ----------
    n_workers : int, default=2
    threads_per_worker : int, default=1
        The nanny starts worker processes with one BLAS thread each, so scale with workers.
    processes : bool, default=True
        Worker processes (real pickling, as on a cluster) or threads of this process (faster to
        start; nothing is pickled). With processes, a script must guard its entry point with
        ``if __name__ == "__main__":`` (workers are spawned).
    memory_limit : str or int, default="1GiB"
        Per worker.
    **cluster_kwargs
        Passed to ``distributed.LocalCluster``.

    Yields
    ------
    client : distributed.Client
    """
    distributed = import_distributed()
    options = dict(n_workers=n_workers, threads_per_worker=threads_per_worker,
                   processes=processes, host="127.0.0.1", dashboard_address="127.0.0.1:0",
                   memory_limit=memory_limit, silence_logs=logging.ERROR,
                   # tcp on loopback for threads too (their default, inproc, rejects a host)
                   protocol="tcp")
    options.update(cluster_kwargs)
    cluster = distributed.LocalCluster(**options)
    try:
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()
