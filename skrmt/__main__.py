"""Command line: ``python -m skrmt [compare ...]`` (also the ``skrmt`` console script).

``python -m skrmt`` alone prints the versions of the numerical stack and the offline data sets
found, then runs ``compare --quick``. ``python -m skrmt compare`` fits ternary random features,
random Fourier features (full and low precision) and Nyström on the same data, each followed by
a validated ridge readout, and prints and writes test accuracy against memory (design note
``baselines.md`` §7).
"""

import argparse
import math
import os
import sys
import time

__all__ = ["main", "build_parser"]

_DEFAULT_COMPONENTS = (128, 256, 512, 1024, 2048)
_DEFAULT_BITS = (8, 4, 2, 1)
_DEFAULT_SPARSITIES = (0.0, 0.5, 0.9)
_QUICK_COMPONENTS = (128, 256, 512, 1024)
_QUICK_BITS = (8, 1)
_QUICK_SPARSITIES = (0.0,)


def _int_list(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return tuple(values)


def _bits_list(text):
    values = _int_list(text)
    if max(values) > 32:
        raise argparse.ArgumentTypeError(f"bits must lie in 1..32, got {text!r}")
    return values


def _sparsity_list(text):
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated floats, got {text!r}") from exc
    if not values or any(not 0.0 <= v < 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"sparsities must lie in [0, 1), got {text!r}")
    return values


def _positive_int(text):
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_compare_arguments(p):
    p.add_argument("--dataset", choices=("digits", "fashion-mnist"), default="digits",
                   help="data set (default: digits, bundled with scikit-learn; fashion-mnist "
                        "needs `apt-get install dataset-fashion-mnist`)")
    p.add_argument("--output", "--out", dest="output", default="skrmt_output", metavar="DIR",
                   help="folder for compare_<data>.csv/.json/.png/.pdf (default ./skrmt_output)")
    p.add_argument("--n-components", "--components", dest="n_components", type=_int_list,
                   default=None, metavar="M1,M2,...",
                   help="grid of n_components (default 128,256,512,1024,2048; --quick: "
                        "128,256,512,1024)")
    p.add_argument("--bits", type=_bits_list, default=None, metavar="B1,B2,...",
                   help="LP-RFF bits (default 8,4,2,1; --quick: 8,1)")
    p.add_argument("--sparsity", type=_sparsity_list, default=None, metavar="E1,E2,...",
                   help="TRF sparsities (default 0,0.5,0.9; --quick: 0)")
    p.add_argument("--seeds", type=_positive_int, default=None, metavar="S",
                   help="number of feature-map seeds: random_state, random_state+1, ... "
                        "(default 1)")
    p.add_argument("--random-state", type=int, default=0,
                   help="seed of the data split and first feature-map seed (default 0)")
    p.add_argument("--batch-size", type=_positive_int, default=250, metavar="S",
                   help="feature rows held at once in the footprint (default 250)")
    p.add_argument("--lp-projection", choices=("circulant", "gaussian"), default="circulant",
                   help="LowPrecisionRFF projection (default circulant, as the LP-RFF paper)")
    p.add_argument("--n-train", type=_positive_int, default=10_000,
                   help="fashion-mnist: training rows (default 10000)")
    p.add_argument("--n-val", type=_positive_int, default=5_000,
                   help="fashion-mnist: validation rows (default 5000)")
    p.add_argument("--data-dir", default=None, metavar="PATH",
                   help="fashion-mnist: folder of the IDX files (default $SKRMT_DATA_DIR, "
                        "then the Debian package)")
    p.add_argument("--device", default=None,
                   help="device of the skrmt maps: numpy (default), cpu, cuda, cuda:k, auto")
    p.add_argument("--threads", type=_positive_int, default=1,
                   help="threads of every BLAS/OpenMP pool, numba and torch (default 1: "
                        "numpy's and scipy's OpenBLAS pools contend on small machines)")
    p.add_argument("--quick", action="store_true",
                   help="small grid: m in 128..1024, bits 8,1, TRF sparsity 0, one seed")
    p.add_argument("--no-plot", action="store_true", help="skip the figure")


def build_parser():
    """The argument parser of ``python -m skrmt``."""
    parser = argparse.ArgumentParser(
        prog="skrmt",
        description="skrmt: random-matrix-theory estimators. Without a command: print "
                    "versions and data sets found, then run `compare --quick`.",
    )
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser(
        "compare",
        help="memory vs accuracy of TRF, RBFSampler, LP-RFF and Nystroem",
        description="Fit TernaryRandomFeatures (several sparsities), RBFSampler (FP-RFF), "
                    "LowPrecisionRFF (several bits) and Nystroem, each with a ridge readout "
                    "whose alpha is chosen on a validation split; print and write test "
                    "accuracy against memory.",
    )
    _add_compare_arguments(p)
    return parser


def _progress(line):
    print(line, file=sys.stderr, flush=True)


def _trf_match_info(X_train, gamma, sparsity, seed):
    """Threshold match of the TRF rbf target on the benchmark's input (printed in the header)."""
    import warnings

    import numpy as np

    from ._compare import trf_input
    from .random_features import TernaryRandomFeatures

    mean = X_train.mean(axis=0, dtype=np.float64).astype(X_train.dtype)
    est = TernaryRandomFeatures(8, activation="rbf", sparsity=sparsity, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(trf_input(X_train, mean, gamma))
    target = est.coefficients_["target"]
    tau = float(est.tau_)
    r = math.sqrt(tau) * target["m2"] / target["m1"]
    phi_r = math.exp(-0.5 * r * r) / math.sqrt(2.0 * math.pi)
    return {
        "tau": tau,
        "thresholds": [float(t) for t in est.thresholds_],
        "scale": float(est.scale_),
        "offset": float(est.offset_),
        "delta": float(est.coefficients_["delta"]),
        # Paper's unit-amplitude ternary map exists iff sqrt(tau)|m1| <= 2 phi(r) (trf.md §3).
        "unit_residual": math.sqrt(tau) * abs(target["m1"]) - 2.0 * phi_r,
    }


def run_compare(args):
    """Run ``compare`` from parsed arguments; returns the exit status."""
    from . import _compare

    n_components = args.n_components or (_QUICK_COMPONENTS if args.quick else _DEFAULT_COMPONENTS)
    bits = args.bits or (_QUICK_BITS if args.quick else _DEFAULT_BITS)
    sparsities = args.sparsity or (_QUICK_SPARSITIES if args.quick else _DEFAULT_SPARSITIES)
    n_seeds = args.seeds or 1
    seeds = tuple(args.random_state + i for i in range(n_seeds))

    t_start = time.perf_counter()
    limiter, pool_lines = _compare.limit_threads(args.threads)
    try:
        return _run_compare(args, n_components, bits, sparsities, seeds, pool_lines, t_start)
    finally:
        limiter.restore_original_limits()


def _run_compare(args, n_components, bits, sparsities, seeds, pool_lines, t_start):
    import numpy as np

    from . import _compare
    from .exceptions import DatasetIntegrityError, DatasetNotFoundError

    try:
        data = _compare.load_comparison_data(
            args.dataset, random_state=args.random_state, n_train=args.n_train,
            n_val=args.n_val, path=args.data_dir,
        )
    except DatasetNotFoundError as exc:
        print(f"skrmt compare: error: the {args.dataset} data set is not installed.\n"
              f"  Install it with:  apt-get install dataset-fashion-mnist\n"
              f"  (without root: apt-get download dataset-fashion-mnist && dpkg-deb -x "
              f"dataset-fashion-mnist_*.deb DIR, then --data-dir "
              f"DIR/usr/share/datasets/fashion-mnist)\n  details: {exc}", file=sys.stderr)
        return 2
    except DatasetIntegrityError as exc:
        print(f"skrmt compare: error: {exc}", file=sys.stderr)
        return 2
    X_tr, y_tr = data["X_train"], data["y_train"]
    gamma = _compare.median_gamma(X_tr)
    n_classes = int(np.unique(y_tr).shape[0])
    info = {
        "dataset": args.dataset, "source": data["source"], "verified": data["verified"],
        "sha256": data["sha256"], "n_train": X_tr.shape[0], "n_val": data["X_val"].shape[0],
        "n_test": data["X_test"].shape[0], "n_features": X_tr.shape[1],
        "n_classes": n_classes, "c": n_classes if n_classes > 2 else 1, "gamma": gamma,
        "lp_projection": args.lp_projection, "bits": list(bits),
        "sparsities": list(sparsities), "batch_size": args.batch_size, "seeds": list(seeds),
        "n_components": list(n_components), "device": args.device or "numpy",
        "alphas": list(_compare.ALPHAS), "dtype": str(X_tr.dtype),
        "threads": args.threads, "thread_pools": pool_lines,
    }
    info["trf_match"] = _trf_match_info(X_tr, gamma, sparsities[0], seeds[0])
    print(_compare.format_header(info), flush=True)
    print(f"gamma = {gamma:.6g}", file=sys.stderr, flush=True)

    rows = _compare.compare(
        X_tr, y_tr, data["X_val"], data["y_val"], data["X_test"], data["y_test"],
        n_components=n_components, sparsities=sparsities, bits=bits, gamma=gamma,
        seeds=seeds, batch_size=args.batch_size, lp_projection=args.lp_projection,
        device=args.device, dataset=args.dataset, progress=_progress, n_threads=args.threads,
    )
    summary = _compare.summarize(rows)
    compression = _compare.compression_table(summary)
    print()
    print(_compare.format_table(summary))
    print()
    print(_compare.format_compression(compression))

    os.makedirs(args.output, exist_ok=True)
    stem = os.path.join(args.output, f"compare_{args.dataset}")
    _compare.write_csv(rows, stem + ".csv")
    elapsed = time.perf_counter() - t_start
    payload = {
        "settings": {k: v for k, v in info.items() if k != "trf_match"},
        "trf_match": info["trf_match"],
        "versions": _compare.versions(),
        "data": {"name": args.dataset, "sha256": data["sha256"], "source": data["source"],
                 "verified": data["verified"]},
        "gamma": gamma,
        "elapsed_s": elapsed,
        "rows": rows,
        "summary": summary,
        "compression": compression,
    }
    _compare.write_json(payload, stem + ".json")
    written = [stem + ".csv", stem + ".json"]
    if not args.no_plot:
        try:
            import matplotlib
        except ImportError:
            print("matplotlib is not installed: skipping the plot", file=sys.stderr)
        else:
            if "matplotlib.pyplot" not in sys.modules:
                matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig = _compare.plot_comparison(
                rows, stem + ".png",
                title=f"{args.dataset}: test error vs memory (gamma={gamma:.3g}, "
                      f"LP-RFF {args.lp_projection})",
            )
            fig.savefig(stem + ".pdf")
            plt.close(fig)
            written += [stem + ".png", stem + ".pdf"]
    print()
    print("wrote " + ", ".join(written))
    print(f"total time {time.perf_counter() - t_start:.1f} s")
    return 0


_MISSING_TEXT = {"cuda": "no CUDA device"}


def _version_text(name, version):
    if version is not None:
        return version
    return _MISSING_TEXT.get(name, "not installed")


def print_environment(file=None):
    """Print versions and the offline data sets found, with their verification status."""
    import numpy as np

    from . import _compare

    file = file or sys.stdout
    print("skrmt environment", file=file)
    for name, version in _compare.versions().items():
        print(f"  {name:<14} {_version_text(name, version)}", file=file)
    print("offline data sets:", file=file)
    import sklearn

    print(f"  digits         bundled with scikit-learn {sklearn.__version__}", file=file)
    from .datasets import load_fashion_mnist
    from .exceptions import DatasetIntegrityError, DatasetNotFoundError

    try:
        t0 = time.perf_counter()
        load_fashion_mnist(split="both", dtype=np.uint8)
        status = f"found, sha256 verified ({time.perf_counter() - t0:.1f} s)"
    except DatasetNotFoundError:
        status = "not installed (apt-get install dataset-fashion-mnist)"
    except DatasetIntegrityError as exc:
        status = f"found but corrupt: {exc}"
    print(f"  fashion-mnist  {status}", file=file)
    file.flush()


def main(argv=None):
    """Entry point of ``python -m skrmt`` and of the ``skrmt`` console script.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name (None: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success, 2 on a usage or missing-data error.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        print_environment()
        print()
        args = parser.parse_args(["compare", "--quick"])
    return run_compare(args)


if __name__ == "__main__":
    sys.exit(main())
