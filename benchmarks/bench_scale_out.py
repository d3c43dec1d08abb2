"""skrmt on Dask: an out-of-core RMTRidge fit, its throughput and memory, and a grid search.

Run: ``python benchmarks/bench_scale_out.py [--quick] [--workers 1 2] [--repeats 1] [--n N]``.

Design note ``scale_out.md`` §7, on one machine (a ``LocalCluster`` on 127.0.0.1: it measures
parallel efficiency and out-of-core behaviour, not network cost).

Part 1, out-of-core fit. ``X`` (n x d, float64) is generated lazily block by block
(``dask.array.random.RandomState(0)``), never as one array, and regenerated on each pass;
``y = tanh(X w1) + 0.5 sin(X w2) + 0.1 x_d`` blockwise. ``skrmt.scale_out.fit_rmt_ridge`` fits
``RMTRidge(D, alpha=1e-3)`` (ReLU, Gaussian weights) in two passes (moments; fused features ->
``F^T F``, ``F^T y`` with a tree sum), then one D x D solve on the client, the theory on a
1000-row subsample. The features ``F`` (n x D float64) would take ``8 n D`` bytes; no task holds
more than one block of them. Full size: n = 2,000,000, d = 100, D = 2048 (``F`` would be
30.5 GiB, ``X`` 1.5 GiB); ``--quick``: n = 200,000, D = 512. For 1 and 2 worker processes (one
thread each, as the nanny sets BLAS to one thread per worker) it prints the wall time of the
fit on a warm cluster (startup and a small warm-up fit excluded), the throughput in rows/s
(n / wall time; two passes over X), the speed-up, the peak resident memory of each worker
process (``ru_maxrss``, over its whole life, warm-up included), the peak of the client's numpy
and Python allocations during the fit (``tracemalloc``) and the held-out MSE on 20,000 fresh
rows (identical across worker counts: same result, other schedule).

Part 2, model selection. ``GridSearchCV(cv=3)`` over ``TernaryRandomFeatures`` ``sparsity`` x
``activation`` (x ``n_components`` in the full run: 24 candidates; ``--quick``: 4) in a
``StandardScaler -> TernaryRandomFeatures -> RidgeClassifier`` pipeline on digits, with
``n_jobs=1`` and under ``joblib.parallel_config(backend="dask")`` on 2 workers; it prints the
wall times, the speed-up and whether ``best_params_`` and every ``mean_test_score`` agree.

Thread pools: the client is limited to one thread per pool (``skrmt.utils._threads``); worker
processes get one BLAS thread from the nanny. Numbers are medians of ``--repeats`` runs; timing
ratios only mean something within one run on a shared machine.
"""

import argparse
import math
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
import warnings

import numpy as np


def _target(xb, w1, w2):
    # module level: workers unpickle it by reference
    return np.tanh(xb @ w1) + 0.5 * np.sin(xb @ w2) + 0.1 * xb[:, -1]


def _peak_rss_mib():
    # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_data(n, d, rows, seed=0):
    import dask.array as da

    # the same target function for every seed (train, held-out and warm-up data)
    rng = np.random.RandomState(12345)
    w1, w2 = rng.randn(d) / math.sqrt(d), rng.randn(d) / math.sqrt(d)
    X = da.random.RandomState(seed).standard_normal((n, d), chunks=(rows, d))
    y = X.map_blocks(_target, w1, w2, drop_axis=1, dtype=np.float64,
                     meta=np.empty((0,), np.float64))
    return X, y


def bench_fit(args, n_workers):
    import dask

    from skrmt import RMTRidge
    from skrmt.scale_out import fit_rmt_ridge, loopback_client

    X, y = make_data(args.n, args.d, args.rows)
    Xt, yt = (np.asarray(a) for a in dask.compute(*make_data(20000, args.d, 20000, seed=7)))
    with loopback_client(n_workers, threads_per_worker=1, processes=True,
                         memory_limit=args.memory_limit) as client:
        client.wait_for_workers(n_workers)
        # warm-up: imports and compiled kernels on every worker
        Xw, yw = make_data(4000, args.d, 1000, seed=3)
        fit_rmt_ridge(RMTRidge(64, alpha=1e-3, random_state=0), Xw, yw, theory_samples=200)
        times, client_peaks, worker_cpu, loads, model = [], [], [], [], None
        for _ in range(args.repeats):
            cpu0 = sum(client.run(_cpu_seconds).values())
            load0 = os.getloadavg()[0]
            tracemalloc.start()
            t0 = time.perf_counter()
            model = fit_rmt_ridge(RMTRidge(args.D, alpha=1e-3, random_state=0), X, y,
                                  theory_samples=args.theory_samples)
            times.append(time.perf_counter() - t0)
            client_peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
            worker_cpu.append(sum(client.run(_cpu_seconds).values()) - cpu0)
            loads.append((load0, os.getloadavg()[0]))
        worker_rss = client.run(_peak_rss_mib)
    mse = float(np.mean((model.predict(Xt) - yt) ** 2))
    return {
        "workers": n_workers,
        "wall_s": statistics.median(times),
        "rows_per_s": args.n / statistics.median(times),
        "worker_peak_mib": max(worker_rss.values()),
        "client_peak_mib": max(client_peaks),
        "client_rss_mib": _peak_rss_mib(),
        "test_mse": mse,
        "worker_cpu_s": statistics.median(worker_cpu),
        "load": loads[len(loads) // 2],
        "coef": model.coef_,
    }


def bench_grid(args):
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.linear_model import RidgeClassifier
    from sklearn.model_selection import GridSearchCV, ParameterGrid
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skrmt import TernaryRandomFeatures
    from skrmt.scale_out import loopback_client

    X, y = load_digits(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), TernaryRandomFeatures(500, random_state=0),
                         RidgeClassifier(alpha=1e-2))
    if args.quick:
        grid = {"ternaryrandomfeatures__sparsity": [0.0, 0.5],
                "ternaryrandomfeatures__activation": ["relu", "erf"]}
    else:
        grid = {"ternaryrandomfeatures__sparsity": [0.0, 0.5, 0.6, 0.7],
                "ternaryrandomfeatures__activation": ["relu", "erf", "tanh"],
                "ternaryrandomfeatures__n_components": [500, 1000]}
    warnings.filterwarnings("ignore", message=".*nonzero weights per feature")
    out = {"n_candidates": len(ParameterGrid(grid))}
    out["load"] = os.getloadavg()[0]
    t0 = time.perf_counter()
    serial = GridSearchCV(pipe, grid, cv=3, n_jobs=1).fit(X, y)
    out["serial_s"] = time.perf_counter() - t0
    with loopback_client(2, threads_per_worker=1, processes=True,
                         memory_limit=args.memory_limit) as client:
        client.wait_for_workers(2)
        with joblib.parallel_config(backend="dask", scatter=[X, y]):
            GridSearchCV(pipe, {k: v[:1] for k, v in grid.items()}, cv=2).fit(X, y)  # warm-up
            t0 = time.perf_counter()
            on_dask = GridSearchCV(pipe, grid, cv=3, n_jobs=-1).fit(X, y)
            out["dask_s"] = time.perf_counter() - t0
    out["same"] = (serial.best_params_ == on_dask.best_params_ and np.allclose(
        serial.cv_results_["mean_test_score"], on_dask.cv_results_["mean_test_score"],
        rtol=1e-12, atol=0))
    out["best"] = serial.best_params_
    out["best_score"] = serial.best_score_
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 200,000, D = 512, 4 candidates")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--memory-limit", default="3GiB", help="per worker")
    parser.add_argument("--skip-grid", action="store_true")
    parser.add_argument("--n", type=int, default=None, help="rows (overrides the preset)")
    parser.add_argument("--D", type=int, default=None, help="features (overrides the preset)")
    args = parser.parse_args(argv)
    n, D = args.n, args.D
    args.n, args.d, args.D = (200_000, 100, 512) if args.quick else (2_000_000, 100, 2048)
    args.n, args.D = n or args.n, D or args.D
    # rows per block: X block + its features (float64) + a working copy ~ 128 MiB
    args.rows = int(min(args.n, max(1000, 128 * 2**20 // ((args.d + 2 * args.D) * 8))))
    # away from D: a subsample of about D rows puts the theory at its interpolation peak
    args.theory_samples = 1000

    import dask
    import distributed
    import sklearn

    import skrmt
    from skrmt.utils._threads import limit_threads

    _, lines = limit_threads(1)
    print(f"# skrmt {skrmt.__version__}, dask {dask.__version__}, distributed "
          f"{distributed.__version__}, scikit-learn {sklearn.__version__}, numpy "
          f"{np.__version__}, Python {platform.python_version()}")
    print(f"# host {platform.node()}, {os.cpu_count()} cores; client pools: " + "; ".join(lines))
    print(f"# out-of-core fit: n = {args.n:,}, d = {args.d}, D = {args.D}, float64, "
          f"{args.rows} rows/block ({math.ceil(args.n / args.rows)} blocks), features would "
          f"take {8 * args.n * args.D / 2**30:.1f} GiB, X {8 * args.n * args.d / 2**30:.2f} GiB; "
          f"G = F^T F {8 * args.D**2 / 2**20:.0f} MiB; workers: 1 thread, memory limit "
          f"{args.memory_limit}; median of {args.repeats} run(s)")
    rows = [bench_fit(args, k) for k in args.workers]
    base = rows[0]["wall_s"] * rows[0]["workers"]
    print()
    print("| workers | fit wall (s) | rows/s | speed-up | efficiency | worker CPU (s) "
          "| rows per worker CPU-s | worker peak RSS (MiB) | client peak alloc (MiB) "
          "| held-out MSE | load avg start->end |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        speed = rows[0]["wall_s"] / r["wall_s"]
        eff = base / (r["workers"] * r["wall_s"])
        print(f"| {r['workers']} | {r['wall_s']:.1f} | {r['rows_per_s']:,.0f} | {speed:.2f}x "
              f"| {eff:.0%} | {r['worker_cpu_s']:.0f} | {args.n / r['worker_cpu_s']:,.0f} "
              f"| {r['worker_peak_mib']:.0f} | {r['client_peak_mib']:.0f} "
              f"| {r['test_mse']:.5f} | {r['load'][0]:.1f}->{r['load'][1]:.1f} |")
    print("(rows per worker CPU-second is the throughput free of other processes' load: on a "
          "shared machine the wall-time speed-up also measures them)")
    if len(rows) > 1:
        diff = max(np.abs(r["coef"] - rows[0]["coef"]).max() / np.abs(rows[0]["coef"]).max()
                   for r in rows)
        print(f"\ncoef_ across worker counts: max relative difference {diff:.1e}")
    print(f"client process peak RSS over the whole run: {_peak_rss_mib():.0f} MiB")
    if not args.skip_grid:
        g = bench_grid(args)
        print(f"\n# grid search: digits (1797 x 64), {g['n_candidates']} candidates x 3 folds; "
              f"best {g['best']} ({g['best_score']:.4f}); load avg {g['load']:.1f}")
        print("| backend | wall (s) | speed-up | same best_params_ and scores |")
        print("|---|---:|---:|---|")
        print(f"| n_jobs=1 | {g['serial_s']:.1f} | 1.00x | |")
        print(f"| dask, 2 workers x 1 thread | {g['dask_s']:.1f} | "
              f"{g['serial_s'] / g['dask_s']:.2f}x | {'yes' if g['same'] else 'NO'} |")
        if not g["same"]:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
