"""loopback_client: thread workers keep running when the host process is large."""

import numpy as np
import pytest

pytestmark = pytest.mark.dask
da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")


def test_thread_workers_run_while_the_host_process_holds_more_than_a_gib():
    # Thread workers share the host's memory: a per-worker limit would count the whole process
    # (a long test session passes 1 GiB) and pause every worker, so "auto" sets none for them.
    from skrmt.scale_out import loopback_client

    ballast = np.ones(int(1.3 * 2**30) // 8)  # touched pages: real resident memory
    with loopback_client(1, processes=False) as client:
        future = client.compute(da.arange(1000, chunks=100).sum())
        assert int(future.result(timeout=30)) == 499500
    assert ballast[-1] == 1.0
