"""Implicit (DEQ) CK: time of the train Gram, and the explicit twin's time at the same accuracy.

Run: ``python benchmarks/bench_deq.py [--n 5000 --n-test 10000 --threads 2]``.

Part 1, the train Gram ``G*`` of a ReLU DEQ (sigma_a^2 = 0.2), for the digits (n = 1797, p = 64)
and ``--n`` rows of Fashion-MNIST (p = 784; synthetic Gaussian rows of the same shape when the
Debian package ``dataset-fashion-mnist`` is absent, or with ``--synthetic``):

- ``X X^T``: the matrix product every method starts with (the floor);
- skrmt, numpy: ``implicit_gram`` (table of ``g^{-1}`` + one Newton polish step per entry,
  256 x 256 tiles on threads, in place in one n x n array; README correction 4);
- skrmt, torch CPU / CUDA: the same solve written against torch (row blocks);
- Picard in place: the honest peer, full-matrix sweeps ``rho <- s + sigma_a^2 J(rho)`` with
  preallocated arrays (tol 1e-6: the default; 1e-12: to rounding);
- per-entry Newton from ``clip(s)`` (the note's first fast method, numpy, not in place).

Part 2, classification (``--n`` training rows, ``--n-test`` test rows of the official test
split; digits: 1000 / 797): fit + predict time and accuracy of ``DEQKernelClassifier``
implicit and explicit (widths ``--widths``, alpha 1e-2 to stay off the interpolation peak),
next to the baselines of deq.md §6: linear kernel ridge, the one-layer ReLU kernel
(``TheoryKernel(model="ck")``), one-layer ReLU random features and an unmatched two-layer
ReLU net, all with the same preprocessing and relative ridge. Targets (README correction 4):
the n = 5000 Gram in <= 5 s on 2 cores (printed as PASS/FAIL).

One process, one thread configuration for every method: numpy's and scipy's OpenBLAS pools
(README correction 6) and torch's intra-op pool are limited to ``--threads`` and printed. Times
are the best of ``--repeats`` runs; only ratios within one run mean much on a shared machine.
"""

import argparse
import math
import os
import platform
import sys
import time

import numpy as np

try:
    import skrmt  # noqa: F401
except ImportError:  # run from a source checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=5000, help="training rows of the large set")
    p.add_argument("--n-test", type=int, default=10000, help="test rows of the large set")
    p.add_argument("--threads", type=int, default=2, help="threads for BLAS and torch")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per Gram method")
    p.add_argument("--widths", default="1024,2048,4096", help="explicit-net widths")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--synthetic", action="store_true",
                   help="Gaussian rows even when Fashion-MNIST is installed")
    p.add_argument("--skip-classification", action="store_true")
    return p.parse_args()


def _best(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def _load_large(args):
    from skrmt.datasets import fashion_mnist_available, load_fashion_mnist

    rng = np.random.RandomState(args.seed)
    if not args.synthetic and fashion_mnist_available():
        Xtr, ytr, Xte, yte = load_fashion_mnist(split="both", dtype=np.float64)
        idx = rng.choice(len(ytr), args.n, replace=False)
        tdx = rng.choice(len(yte), min(args.n_test, len(yte)), replace=False)
        return "Fashion-MNIST (official train subset / test split)", Xtr[idx], ytr[idx], \
            Xte[tdx], yte[tdx]
    print("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): synthetic "
          "Gaussian rows of the same shape; accuracies are meaningless there.")
    X = rng.standard_normal((args.n + args.n_test, 784))
    y = (X[:, :10].argmax(axis=1)).astype(int)
    return "synthetic N(0, I_784)", X[: args.n], y[: args.n], X[args.n:], y[args.n:]


def _normalise(Xtr, Xte):
    mu = Xtr.mean(axis=0)
    s = math.sqrt(((Xtr - mu) ** 2).sum(axis=1).mean())
    return (Xtr - mu) / s, (Xte - mu) / s


# ------------------------------------------------------------------------------ Gram methods
def picard_inplace(sc, X, tol):
    """Full-matrix Picard on rho = K / sqrt(k_i k_j) with preallocated n x n arrays."""
    from skrmt._theory._deq_fixed_point import deq_diagonal

    sa2, sb2, c = sc.sigma_a2, sc.sigma_b2, sc.shift
    q = np.einsum("ij,ij->i", X, X)
    k, g = deq_diagonal(sc, q)
    d = np.sqrt(k)
    u = 1.0 / d
    v = sa2 * c * u / math.sqrt(2 * math.pi)
    S = X @ X.T
    S *= sb2
    R = S * u[:, None]  # start from K = sb2 L
    R *= u[None, :]
    np.clip(R, -1.0, 1.0, out=R)
    S += sa2 * c * c
    S *= u[:, None]
    S *= u[None, :]
    S -= v[:, None]
    S -= v[None, :]
    T1, T2 = np.empty_like(S), np.empty_like(S)
    dmax2 = float(d.max()) ** 2
    sweeps = 0
    for sweeps in range(1, 100):
        np.arccos(R, out=T1)
        np.subtract(math.pi, T1, out=T1)
        T1 *= R  # (pi - theta) rho
        np.multiply(R, R, out=T2)
        np.subtract(1.0, T2, out=T2)
        np.maximum(T2, 0.0, out=T2)
        np.sqrt(T2, out=T2)  # sin theta
        T2 += T1
        T2 *= sa2 / (2 * math.pi)
        T2 += S  # new rho
        np.clip(T2, -1.0, 1.0, out=T2)
        np.subtract(T2, R, out=T1)
        np.abs(T1, out=T1)
        step = float(T1.max()) * dmax2
        R, T2 = T2, R
        if step <= tol * float(k.max()):
            break
    # G = d d J(rho) + c^2 - c (d_i + d_j) / sqrt(2 pi)
    np.arccos(R, out=T1)
    np.subtract(math.pi, T1, out=T1)
    T1 *= R
    np.multiply(R, R, out=T2)
    np.subtract(1.0, T2, out=T2)
    np.maximum(T2, 0.0, out=T2)
    np.sqrt(T2, out=T2)
    T2 += T1
    T2 *= 1.0 / (2 * math.pi)
    T2 *= d[:, None]
    T2 *= d[None, :]
    T2 += c * c
    T2 -= (c / math.sqrt(2 * math.pi)) * (d[:, None] + d[None, :])
    np.fill_diagonal(T2, g)
    return T2, sweeps


def bench_gram(name, X, args, results):
    from skrmt._backend import cuda_available, get_ops, torch_available
    from skrmt._theory._deq_fixed_point import deq_scalars, implicit_gram

    n, p = X.shape
    sc = deq_scalars("relu", 0.2, float(np.einsum("ij,ij->", X, X)) / n)
    print(f"\n{name}: n = {n}, p = {p}")
    rows = []
    t, _ = _best(lambda: X @ X.T, args.repeats)
    rows.append(("X X^T (numpy matmul, the floor)", t, "", ""))
    t, (G, info) = _best(lambda: implicit_gram(sc, X), args.repeats)
    rows.append(("skrmt numpy: table + Newton polish", t, info.n_iter, 0.0))
    ref = G
    t, (G13, info13) = _best(lambda: implicit_gram(sc, X, tol=1e-13), 1)
    rows.append(("skrmt numpy, tol 1e-13", t, info13.n_iter, float(np.abs(G13 - ref).max())))
    del G13
    for tol in (1e-6, 1e-12):
        t, (Gp, sweeps) = _best(lambda tol=tol: picard_inplace(sc, X, tol), 1)
        rows.append((f"Picard in place, tol {tol:g}", t, sweeps, float(np.abs(Gp - ref).max())))
        del Gp
    t, (Gn, infon) = _best(lambda: implicit_gram(sc, X, tol=1e-13, solver="newton"), 1)
    rows.append(("per-entry Newton from clip(s)", t, infon.n_iter, float(np.abs(Gn - ref).max())))
    del Gn
    if torch_available():
        ops = get_ops("cpu")
        t, (Gt, infot) = _best(lambda: implicit_gram(sc, X, ops=ops), 1)
        rows.append(("skrmt torch CPU", t, infot.n_iter,
                     float(np.abs(ops.to_numpy(Gt) - ref).max())))
        del Gt
    if cuda_available():
        ops = get_ops("cuda:0")
        import torch

        def run_cuda():
            out = implicit_gram(sc, X, ops=ops)
            torch.cuda.synchronize()
            return out

        run_cuda()
        t, (Gc, infoc) = _best(run_cuda, args.repeats)
        rows.append(("skrmt torch CUDA", t, infoc.n_iter,
                     float(np.abs(ops.to_numpy(Gc) - ref).max())))
        del Gc
    print(f"  {'method':38s} {'seconds':>8s} {'steps':>6s} {'max |G - G_skrmt|':>18s}")
    for label, t, steps, diff in rows:
        diff_s = f"{diff:18.1e}" if diff != "" else " " * 18
        print(f"  {label:38s} {t:8.2f} {str(steps):>6s} {diff_s}")
    results[name] = dict(rows=rows)
    return rows


# ------------------------------------------------------------------------------ classification
def _ridge_readout(Ftr, Fte, ytr, alpha, kernel=False):
    """One-vs-rest +-1 ridge (kernel or primal/dual features) with relative penalty."""
    import scipy.linalg

    classes = np.unique(ytr)
    Y = -np.ones((len(ytr), len(classes)))
    Y[np.arange(len(ytr)), np.searchsorted(classes, ytr)] = 1.0
    b = Y.mean(axis=0)
    n = len(ytr)
    if kernel:
        lam = alpha * np.trace(Ftr) / n
        W = scipy.linalg.solve(Ftr + lam * np.eye(n), Y - b, assume_a="pos")
        return classes[np.argmax(Fte @ W + b, axis=1)]
    lam = alpha * float(np.sum(Ftr**2)) / n
    if Ftr.shape[1] <= n:
        W = scipy.linalg.solve(Ftr.T @ Ftr + lam * np.eye(Ftr.shape[1]), Ftr.T @ (Y - b),
                               assume_a="pos")
    else:
        W = Ftr.T @ scipy.linalg.solve(Ftr @ Ftr.T + lam * np.eye(n), Y - b, assume_a="pos")
    return classes[np.argmax(Fte @ W + b, axis=1)]


def _relu_net(A, weights):
    H = A
    for W in weights:
        scale_in = math.sqrt(np.mean(np.sum(H**2, axis=1)))
        H = (np.maximum(H @ W.T, 0) - scale_in / math.sqrt(2 * math.pi)) / math.sqrt(W.shape[0])
    return H


def bench_classification(name, Xtr, ytr, Xte, yte, args):
    from skrmt import TheoryKernel
    from skrmt.neural_network import DEQKernelClassifier

    widths = [int(w) for w in args.widths.split(",")]
    print(f"\n{name}: classification, {len(ytr)} train / {len(yte)} test, sigma_a2 = 0.2")
    rows = []

    def timed(label, fn):
        t0 = time.perf_counter()
        pred = fn()
        rows.append((label, time.perf_counter() - t0, float(np.mean(pred == yte)), pred))
        print(f"  {label:46s} {rows[-1][1]:8.2f} s  accuracy {rows[-1][2]:.4f}", flush=True)
        return pred

    p_imp = timed("DEQ implicit (exact G*), alpha 1e-3",
                  lambda: DEQKernelClassifier().fit(Xtr, ytr).predict(Xte))
    timed("DEQ implicit (exact G*), alpha 1e-2",
          lambda: DEQKernelClassifier(alpha=1e-2).fit(Xtr, ytr).predict(Xte))
    for m in widths:
        timed(f"DEQ explicit twin, width {m}, alpha 1e-2",
              lambda m=m: DEQKernelClassifier(method="explicit", n_components=m, alpha=1e-2,
                                              random_state=args.seed).fit(Xtr, ytr).predict(Xte))
    A, B = _normalise(Xtr, Xte)
    timed("linear kernel ridge, alpha 1e-3",
          lambda: _ridge_readout(A @ A.T, B @ A.T, ytr, 1e-3, kernel=True))

    def one_layer_kernel():
        tk = TheoryKernel(model="ck", activation="relu")
        p = A.shape[1]
        Ktr = tk.fit_transform(A * math.sqrt(p))
        return _ridge_readout(Ktr, tk.transform(B * math.sqrt(p)), ytr, 1e-3, kernel=True)

    timed("1-layer ReLU kernel (uncentred), alpha 1e-3", one_layer_kernel)
    rng = np.random.RandomState(args.seed)
    m = max(widths)
    W1, W2 = rng.standard_normal((m, A.shape[1])), rng.standard_normal((m, m))
    timed(f"1-layer ReLU random features, width {m}, alpha 1e-2",
          lambda: _ridge_readout(_relu_net(A, [W1]), _relu_net(B, [W1]), ytr, 1e-2))
    timed(f"unmatched 2-layer ReLU, width {m}, alpha 1e-2",
          lambda: _ridge_readout(_relu_net(A, [W1, W2]), _relu_net(B, [W1, W2]), ytr, 1e-2))
    explicit_rows = rows[2:2 + len(widths)]
    print("  same predictions as the implicit model (alpha 1e-3): " + ", ".join(
        f"width {m} {np.mean(pred == p_imp):.4f}"
        for m, (_, _, _, pred) in zip(widths, explicit_rows)))
    target = rows[0][2]
    for label, t, acc, _ in explicit_rows:
        if acc >= target - 0.005:
            print(f"  first explicit width within 0.5 pt of the implicit accuracy: {label} "
                  f"({t:.2f} s vs implicit {rows[0][1]:.2f} s)")
            break
    else:
        print("  no explicit width within 0.5 pt of the implicit accuracy (widen --widths)")
    return rows


def main():
    args = _parse()
    from skrmt._backend import torch_available
    from skrmt.utils._threads import limit_threads

    torch_available()  # loads torch, so that its pool is limited too
    _, pool_lines = limit_threads(args.threads)
    print(f"skrmt DEQ benchmark | python {platform.python_version()} | numpy {np.__version__} "
          f"| {os.cpu_count()} CPUs visible")
    for line in pool_lines:
        print("  " + line)

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    Xd, yd = load_digits(return_X_y=True)
    An, _ = _normalise(Xd, Xd)
    results = {}
    bench_gram("digits", An, args, results)
    name, Xtr, ytr, Xte, yte = _load_large(args)
    A, _ = _normalise(Xtr, Xte)
    rows = bench_gram(name, A, args, results)
    gram_t = rows[1][1]
    verdict = "PASS" if gram_t <= 5.0 else "FAIL"
    print(f"\n{verdict}: n = {len(A)} implicit Gram in {gram_t:.2f} s (target <= 5 s on 2 cores; "
          f"X X^T alone {rows[0][1]:.2f} s)")
    if args.skip_classification:
        return
    Dtr, Dte, dtr, dte = train_test_split(Xd, yd, train_size=1000, stratify=yd,
                                          random_state=args.seed)
    bench_classification("digits", Dtr, dtr, Dte, dte, args)
    bench_classification(name, Xtr, ytr, Xte, yte, args)


if __name__ == "__main__":
    main()
