import pytest


@pytest.fixture(scope="session")
def dask_client():
    """Two single-threaded worker processes on 127.0.0.1, closed at the end of the session."""
    pytest.importorskip("dask.array")
    pytest.importorskip("distributed")
    from skrmt.scale_out import loopback_client

    with loopback_client(2, threads_per_worker=1, processes=False) as client:
        client.wait_for_workers(2, timeout=60)
        yield client


@pytest.fixture
def synchronous():
    """Dask's single-threaded scheduler for the graph-level tests (no cluster needed)."""
    dask = pytest.importorskip("dask")
    pytest.importorskip("dask.array")
    with dask.config.set(scheduler="synchronous"):
        yield
