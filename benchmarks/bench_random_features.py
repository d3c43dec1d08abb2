"""Transform time and memory of random-feature maps: TRF vs RBFSampler vs LP-RFF.

Run: ``python benchmarks/bench_random_features.py [--n 10000 --p 784 --N 4096 --threads 2]``.

One run, one process, one thread configuration for every method (README correction 6: numpy's
and scipy's OpenBLAS pools, and any OpenMP pool, are limited to ``--threads`` with
``threadpoolctl``; numba's pool and torch's intra-op pool get the same count). Times are the
best of ``--repeats`` transforms of the same float32 matrix after a warm-up call (which also
compiles numba kernels), the methods timed in turn so that load from other processes hits all
alike; only ratios within one run mean anything on a shared machine.

Data: the first ``n`` rows of Fashion-MNIST's official training set (centred ``X / 255``) when
the Debian package ``dataset-fashion-mnist`` is installed, else standardised Gaussian rows
(the header says which). All maps share gamma = 1 / median ||x_i - x_j||^2; TRF gets
``sqrt(2 gamma p) (x - mean)`` with the ``"rbf"`` target (the same Gaussian kernel).

Targets (README correction 1 and 3), printed as PASS/FAIL lines:
- TRF at sparsity 0.9 transforms >= 2x faster than ``RBFSampler``;
- TRF's ternary weights at sparsity 0.9 take >= 25x less memory than a float32 Gaussian
  (N, p) matrix under the project's convention (baselines.md §4).
"""

import argparse
import math
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

try:
    import skrmt  # noqa: F401
except ImportError:  # run from a source checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000, help="rows transformed (default 10000)")
    p.add_argument("--p", type=int, default=784,
                   help="input dimension for synthetic data (Fashion-MNIST: 784)")
    p.add_argument("--N", type=int, default=4096, help="number of features (default 4096)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for BLAS, OpenMP, numba and torch (default: all CPUs)")
    p.add_argument("--repeats", type=int, default=5, help="timed transforms per method")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--synthetic", action="store_true",
                   help="use Gaussian rows even when Fashion-MNIST is installed")
    p.add_argument("--lp-projection", choices=("circulant", "gaussian"), default="circulant")
    return p.parse_args()


def _load(args):
    from skrmt.datasets import fashion_mnist_available, load_fashion_mnist

    if not args.synthetic and fashion_mnist_available():
        X, _ = load_fashion_mnist(split="train", dtype=np.float32)
        X = X[: args.n]
        X = X - X.mean(axis=0, dtype=np.float64).astype(np.float32)
        return np.ascontiguousarray(X), (f"Fashion-MNIST: first {X.shape[0]} rows of the "
                                         "official training set, X/255 centred (float32)")
    rs = np.random.RandomState(args.seed)
    X = rs.standard_normal((args.n, args.p)).astype(np.float32)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return np.ascontiguousarray(X), (f"synthetic: {args.n} standardised Gaussian rows, "
                                     f"p = {args.p} (float32); Fashion-MNIST not used")


def _configure_threads(n_threads):
    """Limit every thread pool to ``n_threads`` (skrmt's one helper); limiter and description."""
    from skrmt.utils._threads import limit_threads

    limiter, lines = limit_threads(n_threads)
    return limiter, ["  " + line for line in lines]


def _numba_ran():
    import numba

    try:
        numba.threading_layer()
    except ValueError:
        return False
    return True


def _time_round_robin(cases, repeats):
    """Best and median wall time per case; cases timed in turn so that load hits all alike."""
    for fn in cases.values():
        fn()  # warm-up: numba compilation, caches
    times = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: (min(ts), statistics.median(ts)) for name, ts in times.items()}


def main():
    args = _parse()
    n_threads = args.threads or os.cpu_count() or 1
    # Load every library that brings a thread pool first: threadpoolctl limits only the
    # pools loaded when it is called.
    import scipy.linalg  # noqa: F401
    from sklearn.kernel_approximation import RBFSampler

    import skrmt
    from skrmt import LowPrecisionRFF, TernaryRandomFeatures
    from skrmt._compare import _held_bytes, median_gamma, trf_input
    from skrmt.utils import memory_report

    limiter, pool_lines = _configure_threads(n_threads)

    X, source = _load(args)
    n, p = X.shape
    N = args.N
    gamma = median_gamma(X)
    X_trf = trf_input(X, np.zeros(p, dtype=X.dtype), gamma)  # X is already centred

    print("bench_random_features: transform time and memory of random-feature maps")
    print(f"  data: {source}")
    print(f"  n = {n}, p = {p}, N = {N}, dtype = {X.dtype}, gamma = {gamma:.6g} "
          "(median heuristic)")
    print(f"  python {platform.python_version()}, numpy {np.__version__}, skrmt "
          f"{skrmt.__version__}, {os.cpu_count()} CPUs, {n_threads} threads per pool:")
    for line in pool_lines:
        print(line)
    print(f"  LP-RFF projection: {args.lp_projection}; times: best (median) of "
          f"{args.repeats} transforms after a warm-up, cases timed round-robin")
    print()

    methods = [
        ("TRF eps=0", TernaryRandomFeatures(N, activation="rbf", sparsity=0.0,
                                            random_state=args.seed), X_trf),
        ("TRF eps=0.9", TernaryRandomFeatures(N, activation="rbf", sparsity=0.9,
                                              random_state=args.seed), X_trf),
        ("RBFSampler", RBFSampler(gamma=gamma, n_components=N, random_state=args.seed), X),
        ("LP-RFF 8-bit", LowPrecisionRFF(N, gamma=gamma, n_bits=8, projection=args.lp_projection,
                                         random_state=args.seed), X),
    ]
    results = {}
    for name, est, data in methods:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # near-even rbf target at tau ~ 1
            est.fit(data)
        rep = memory_report(est)
        results[name] = {"est": est, "fit_s": time.perf_counter() - t0, "P_bits": rep["P"],
                         "held": _held_bytes(est)}

    # Reference: the dense float32 GEMM X W^T that any dense-weight map pays (correction 3).
    W = np.random.RandomState(args.seed).standard_normal((p, N)).astype(np.float32)
    cases = {name: (lambda est=est, data=data: est.transform(data))
             for name, est, data in methods}
    cases["dense GEMM X W^T"] = lambda: X @ W
    print(f"  timing {len(cases)} cases x {args.repeats} rounds ...", file=sys.stderr, flush=True)
    timed = _time_round_robin(cases, args.repeats)
    del W
    for name in results:
        results[name]["best"], results[name]["median"] = timed[name]
    gemm_best = timed["dense GEMM X W^T"][0]

    t_rbf = results["RBFSampler"]["best"]
    print("transform time (float32, same threads)")
    print(f"  {'method':<16}{'best_s':>9}{'median_s':>10}{'speed vs RBFSampler':>22}{'fit_s':>8}")
    for name, r in results.items():
        print(f"  {name:<16}{r['best']:>9.3f}{r['median']:>10.3f}{t_rbf / r['best']:>21.2f}x"
              f"{r['fit_s']:>8.2f}")
    print(f"  {'dense GEMM X W^T':<16}{gemm_best:>9.3f}{'':>10}{t_rbf / gemm_best:>21.2f}x")
    print()

    gauss_bits = 32 * N * p  # a float32 Gaussian (N, p) matrix
    print("weight memory (the map's parameters P; readout and features excluded)")
    print(f"  {'method':<16}{'held_bytes':>12}{'convention_bytes':>18}{'held/conv':>11}"
          f"{'x less than f32 W (conv)':>26}{'(held)':>9}")
    for name, r in results.items():
        conv = math.ceil(r["P_bits"] / 8)
        print(f"  {name:<16}{r['held']:>12d}{conv:>18d}{r['held'] / conv:>11.3f}"
              f"{gauss_bits / r['P_bits']:>25.1f}x{gauss_bits / 8 / r['held']:>8.1f}x")
    trf = results["TRF eps=0.9"]["est"]
    comp = trf.components_
    print(f"  float32 Gaussian W: {gauss_bits // 8} bytes; TRF eps=0.9 holds "
          f"{comp.storage!r} storage, nnz = {comp.nnz} ({comp.nnz / (N * p):.4f} of entries); "
          f"ternary floor log2(3) = 1.585 bits/entry would be "
          f"{math.ceil(math.log2(3) * N * p / 8)} bytes dense (never used in totals)")
    print()

    speed = t_rbf / results["TRF eps=0.9"]["best"]
    mem = gauss_bits / trf.components_.charged_bits
    ok_speed, ok_mem = speed >= 2.0, mem >= 25.0
    print(f"{'PASS' if ok_speed else 'FAIL'}: TRF eps=0.9 transforms {speed:.2f}x faster than "
          "RBFSampler (target >= 2x)")
    print(f"{'PASS' if ok_mem else 'FAIL'}: TRF eps=0.9 weights take {mem:.1f}x less memory than "
          "a float32 Gaussian matrix under the convention (target >= 25x)")
    limiter.restore_original_limits()
    return 0 if (ok_speed and ok_mem) else 1


if __name__ == "__main__":
    sys.exit(main())
