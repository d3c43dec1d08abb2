"""One way to limit every thread pool: BLAS/OpenMP (threadpoolctl), numba and torch.

numpy's and scipy's wheels each carry their own OpenBLAS; with both pools spinning on a small
or shared machine, alternating their calls slows solves by an order of magnitude (design README,
correction 6). The benchmarks and ``skrmt compare`` call :func:`limit_threads` and print its
description so that timings say how they were taken.
"""

import numpy as np

from .._backend import torch_num_threads


class _ThreadLimits:
    """Undo handle of :func:`limit_threads` (BLAS / OpenMP pools, numba, torch)."""

    def __init__(self, limiter, numba_threads, torch_threads):
        self._limiter = limiter
        self._numba = numba_threads
        self._torch = torch_threads

    def restore_original_limits(self):
        self._limiter.restore_original_limits()
        if self._numba is not None:
            import numba

            numba.set_num_threads(self._numba)
        if self._torch is not None:
            torch_num_threads(self._torch)


def limit_threads(n_threads):
    """Limit every BLAS / OpenMP pool (threadpoolctl), numba and torch to ``n_threads``.

    numpy's and scipy's wheels each carry their own OpenBLAS; with both pools spinning on a
    small or shared machine, alternating their calls slows solves by an order of magnitude
    (design README, correction 6). One count for every pool also keeps timings comparable.

    Returns
    -------
    limits : object
        Its ``restore_original_limits()`` restores every pool.
    description : list of str
        One line per pool, for printing.
    """
    # threadpoolctl limits only the pools already loaded: load scipy's OpenBLAS and
    # scikit-learn's OpenMP runtime first.
    import scipy.linalg  # noqa: F401
    import sklearn.kernel_approximation  # noqa: F401
    from threadpoolctl import threadpool_info, threadpool_limits

    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) \
            or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer, got {n_threads!r}")
    n_threads = int(n_threads)
    limiter = threadpool_limits(limits=n_threads)
    lines = [f"{pool['user_api']}/{pool['internal_api']} ({pool['prefix']}, "
             f"{pool['filepath'].split('/')[-2]}): {pool['num_threads']} thread(s)"
             for pool in threadpool_info()]
    numba_before = torch_before = None
    try:
        import numba
    except ImportError:
        pass
    else:
        numba_before = numba.get_num_threads()
        numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
        lines.append(f"numba: {numba.get_num_threads()} thread(s)")
    torch_before = torch_num_threads(n_threads)
    if torch_before is not None:
        lines.append(f"torch: {torch_num_threads()} thread(s)")
    return _ThreadLimits(limiter, numba_before, torch_before), lines
