"""A LocalCluster bound to the loopback interface, for tests, examples and benchmarks."""

import contextlib
import logging

from ._dask import import_distributed

__all__ = ["loopback_client"]


@contextlib.contextmanager
def loopback_client(n_workers=2, *, threads_per_worker=1, processes=True,
                    memory_limit="auto", **cluster_kwargs):
    """A ``distributed.Client`` on a fresh ``LocalCluster`` that listens on 127.0.0.1 only.

    The scheduler, workers and nannies bind to 127.0.0.1; the dashboard too, on a random free
    port (``dashboard_address=None`` does not disable it, it binds the fixed port 8787, which
    parallel runs would fight over). Cluster and client are closed on exit, errors included.

    Parameters
    ----------
    n_workers : int, default=2
        Number of workers.
    threads_per_worker : int, default=1
        The nanny starts worker processes with one BLAS thread each, so scale with workers.
    processes : bool, default=True
        Worker processes (real pickling, as on a cluster) or threads of this process (faster to
        start; nothing is pickled). With processes, a script must guard its entry point with
        ``if __name__ == "__main__":`` (workers are spawned).
    memory_limit : str, int or "auto", default="auto"
        Per worker. ``"auto"``: 1 GiB per worker process; no limit for thread workers
        (``processes=False``), whose memory monitor would measure the whole host process — a
        test session or a docs build past the limit would pause every worker and hang.
    **cluster_kwargs
        Passed to ``distributed.LocalCluster``; they override the defaults above and the
        loopback settings (``host``, ``dashboard_address``, ``protocol``).

    Yields
    ------
    client : distributed.Client
        Connected to the cluster, for use inside the ``with`` block only: client and cluster
        are closed when it exits.

    See Also
    --------
    distributed.LocalCluster : The cluster started here.
    transform : Lazy ``est.transform`` on a dask array, run by this client's cluster.
    fit_rmt_ridge : Fit an RMTRidge from blockwise sums, on this client's cluster.

    Notes
    -----
    A context manager (``with loopback_client() as client:``). While it is open the client is
    dask's default scheduler, so ``.compute()`` on any dask collection runs on the cluster;
    after it closes, dask falls back to its local scheduler. Nothing listens beyond the
    machine, which keeps tests and examples off the network and lets parallel runs coexist
    (every port is chosen free). Threads (``processes=False``) start in about a second and
    suit tests; processes check that everything shipped to the workers pickles.

    References
    ----------
    .. [1] M. Rocklin, "Dask: parallel computation with blocked algorithms and task
       scheduling", Proc. 14th Python in Science Conf. (SciPy 2015), pp. 126-132.

    Examples
    --------
    >>> import dask.array as da
    >>> from skrmt.scale_out import loopback_client
    >>> with loopback_client(1, processes=False) as client:
    ...     total = da.arange(100, chunks=25).sum().compute()
    ...     address = client.scheduler.address
    >>> int(total)
    4950
    >>> address.startswith("tcp://127.0.0.1:")
    True
    >>> client.status
    'closed'
    """
    distributed = import_distributed()
    if isinstance(memory_limit, str) and memory_limit == "auto":
        memory_limit = "1GiB" if processes else 0
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
