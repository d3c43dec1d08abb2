"""Memory-versus-accuracy comparison of random-feature maps (``skrmt compare``).

Private module behind ``python -m skrmt compare`` (design note ``baselines.md`` §7), reused by
the example gallery and the benchmarks. Every feature map is followed by the same readout: a
ridge classifier (one-vs-all ±1 targets with an intercept, as scikit-learn's
``RidgeClassifier``) whose ``alpha`` is picked on a validation split from one grid shared by all
methods. All alphas come from one symmetric eigendecomposition of the centred features per
configuration, so the grid costs little more than one fit.

Methods, all at the same Gaussian-kernel bandwidth ``gamma`` (k(x, y) = exp(-gamma ||x - y||^2)):

- ``FP-RFF``: scikit-learn's ``RBFSampler``;
- ``LP-RFF``: :class:`~skrmt.LowPrecisionRFF` for each number of bits (circulant projection by
  default, the LP-RFF paper's structured map, so the baseline is as strong as published);
- ``Nystroem``: scikit-learn's ``Nystroem(kernel="rbf")``, only while m <= min(n_train, 4096);
- ``TRF``: :class:`~skrmt.TernaryRandomFeatures` with the ``"rbf"`` target (cos + sin) for each
  sparsity, fed ``sqrt(2 gamma) (x - mean_train)`` in the library's per-coordinate units
  (see :func:`trf_input`), so it approximates the same Gaussian kernel.

Memory figures follow the one convention of ``baselines.md`` §4 through
:func:`skrmt.utils.memory_report`.
"""

import csv
import hashlib
import io
import json
import math
import platform
import sys
import time
import warnings

import numpy as np

from .utils._threads import limit_threads  # noqa: F401  (re-exported for benchmarks)

__all__ = [
    "ALPHAS",
    "CSV_FIELDS",
    "TIMING_FIELDS",
    "compare",
    "compression_table",
    "format_compression",
    "format_header",
    "format_table",
    "limit_threads",
    "load_comparison_data",
    "median_gamma",
    "plot_comparison",
    "ridge_decision_path",
    "ridge_select",
    "summarize",
    "trf_input",
    "versions",
    "write_csv",
    "write_json",
]

#: One ridge grid for every method: 10^-6 .. 10^2, 9 values.
ALPHAS = tuple(float(a) for a in np.logspace(-6, 2, 9))

#: Nyström is run only up to this many landmarks (and never beyond n_train).
NYSTROEM_MAX_COMPONENTS = 4096

#: Columns of ``compare_<data>.csv``, one row per (method, m, bits or sparsity, seed).
CSV_FIELDS = (
    "dataset",
    "method",
    "label",
    "n_components",
    "bits",
    "sparsity",
    "projection",
    "seed",
    "gamma",
    "alpha",
    "val_accuracy",
    "test_accuracy",
    "test_error",
    "P_bits",
    "F_bits",
    "M_bits",
    "stored_bits",
    "footprint_bits",
    "footprint_full_bits",
    "map_bytes",
    "stored_bytes",
    "footprint_bytes",
    "held_bytes",
    "tau",
    "delta",
    "fit_s",
    "transform_s",
    "ridge_s",
)
#: Wall-clock columns: the only ones allowed to differ between two runs with the same seeds.
TIMING_FIELDS = ("fit_s", "transform_s", "ridge_s")

_FAMILY_ORDER = ("FP-RFF", "Nystroem", "LP-RFF", "TRF")


# --------------------------------------------------------------------------- data preparation
def median_gamma(X, *, n_rows=1000, random_state=0):
    """Median-heuristic bandwidth: ``1 / median ||x_i - x_j||^2`` over a row subsample.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Training rows.
    n_rows : int, default=1000
        Rows drawn (without replacement, ``RandomState(random_state).permutation``); all
        pairs ``i < j`` among them enter the median.
    random_state : int, default=0
        Seed of the row draw.

    Returns
    -------
    gamma : float
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"X must be 2-D with at least 2 rows, got shape {X.shape}")
    if not isinstance(n_rows, (int, np.integer)) or n_rows < 2:
        raise ValueError(f"n_rows must be an integer >= 2, got {n_rows!r}")
    rs = np.random.RandomState(random_state)
    S = X[rs.permutation(X.shape[0])[: min(n_rows, X.shape[0])]]
    sq = np.einsum("ij,ij->i", S, S)
    D = sq[:, None] + sq[None, :] - 2.0 * (S @ S.T)
    med = float(np.median(D[np.triu_indices(S.shape[0], 1)]))
    if not med > 0:
        raise ValueError("the median squared distance is zero: rows are (mostly) identical")
    return 1.0 / med


def trf_input(X, mean, gamma):
    """Input of ``TernaryRandomFeatures(activation="rbf")`` that targets exp(-gamma ||x - y||^2).

    The "rbf" target (cos u + sin u, u = w^T x / sqrt(p) for unit-variance w) has the kernel
    exp(-||x - y||^2 / (2 p)) in the library's per-coordinate units. Feeding
    ``sqrt(2 gamma p) (x - mean)`` makes it exp(-gamma ||x - y||^2); the data variance seen by
    the estimator is then ``tau = 2 gamma mean ||x - mean||^2`` (baselines.md §1). Centring
    keeps the per-sample norms, hence tau, small; the kernel itself is shift-invariant.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    mean : ndarray of shape (n_features,)
        Training mean.
    gamma : float

    Returns
    -------
    X_trf : ndarray, same dtype as ``X``
    """
    X = np.asarray(X)
    scale = math.sqrt(2.0 * gamma * X.shape[1])
    return ((X - mean) * scale).astype(X.dtype, copy=False)


def _sha256_arrays(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def load_comparison_data(dataset="digits", *, random_state=0, n_train=10_000, n_val=5_000,
                         path=None):
    """Load and split a data set the way ``skrmt compare`` does (baselines.md §7).

    - ``"digits"``: scikit-learn's bundled 8x8 digits, ``X / 16``, stratified 60 / 15 / 25
      train / validation / test split (``random_state``), float64.
    - ``"fashion-mnist"``: Debian package ``dataset-fashion-mnist`` (never downloaded);
      ``n_train`` + ``n_val`` rows of the official training set
      (``RandomState(random_state).permutation``), the official 10,000-image test set;
      ``X / 255`` centred on the training mean, float32.

    Parameters
    ----------
    dataset : {"digits", "fashion-mnist"}, default="digits"
    random_state : int, default=0
        Seed of the split.
    n_train, n_val : int, default=10000, 5000
        Fashion-MNIST only.
    path : str or path-like, default=None
        Fashion-MNIST only: folder holding the IDX files (None: ``$SKRMT_DATA_DIR``, then
        the installed Debian package).

    Returns
    -------
    data : dict
        ``X_train, y_train, X_val, y_val, X_test, y_test`` and metadata: ``name``,
        ``sha256`` (of the loaded arrays), ``source``, ``verified`` (str).

    Raises
    ------
    skrmt.exceptions.DatasetNotFoundError
        Fashion-MNIST is not installed; the message names
        ``apt-get install dataset-fashion-mnist``.
    """
    from .datasets import load_digits, load_fashion_mnist

    if dataset == "digits":
        X, y = load_digits()
        X = X / 16.0
        X_tr, y_tr, X_val, y_val, X_te, y_te = _split_60_15_25(X, y, random_state)
        import sklearn

        source = f"scikit-learn {sklearn.__version__} bundled load_digits, X/16"
        verified = "bundled with scikit-learn (no pinned hash)"
        sha = _sha256_arrays(X, y)
    elif dataset == "fashion-mnist":
        for name, value in (("n_train", n_train), ("n_val", n_val)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if n_train + n_val > 60_000:
            raise ValueError(
                f"n_train + n_val must be <= 60000 (official training set), got "
                f"{n_train} + {n_val}"
            )
        X_all, y_all, X_te, y_te = load_fashion_mnist(path, split="both", dtype=np.float32)
        perm = np.random.RandomState(random_state).permutation(X_all.shape[0])
        tr, va = perm[:n_train], perm[n_train:n_train + n_val]
        X_tr, y_tr, X_val, y_val = X_all[tr], y_all[tr], X_all[va], y_all[va]
        mean = X_tr.mean(axis=0, dtype=np.float64).astype(np.float32)
        X_tr, X_val, X_te = X_tr - mean, X_val - mean, X_te - mean
        source = "Debian dataset-fashion-mnist (official train/test files), X/255 - train mean"
        verified = "sha256 of the four decompressed IDX files verified against pinned values"
        sha = _sha256_arrays(X_tr, y_tr, X_val, y_val, X_te, y_te)
    else:
        raise ValueError(f"dataset must be 'digits' or 'fashion-mnist', got {dataset!r}")
    return {
        "name": dataset,
        "X_train": X_tr, "y_train": y_tr,
        "X_val": X_val, "y_val": y_val,
        "X_test": X_te, "y_test": y_te,
        "sha256": sha, "source": source, "verified": verified,
    }


def _split_60_15_25(X, y, random_state):
    try:
        from .datasets import train_val_test_split
    except ImportError:  # pragma: no cover - only while the datasets package is incomplete
        train_val_test_split = None
    if train_val_test_split is not None:
        return train_val_test_split(X, y, val_size=0.15, test_size=0.25, stratify=True,
                                    random_state=random_state)
    from sklearn.model_selection import train_test_split

    n = len(y)
    rs = np.random.RandomState(random_state)
    X_r, X_te, y_r, y_te = train_test_split(X, y, test_size=int(round(0.25 * n)), stratify=y,
                                            random_state=rs)
    X_tr, X_val, y_tr, y_val = train_test_split(X_r, y_r, test_size=int(round(0.15 * n)),
                                                stratify=y_r, random_state=rs)
    return X_tr, y_tr, X_val, y_val, X_te, y_te


# --------------------------------------------------------------------------- readout
def _pm_one_targets(y, classes):
    Y = -np.ones((y.shape[0], classes.shape[0]), dtype=np.float64)
    Y[np.arange(y.shape[0]), np.searchsorted(classes, y)] = 1.0
    return Y


class _RidgePath:
    """Centred ridge with intercept for many alphas from one symmetric eigendecomposition.

    With ``Zc`` the centred training features, the smaller of ``Zc^T Zc`` (m <= n) and
    ``Zc Zc^T`` (n < m, the kernel form that never builds an m x m matrix) is diagonalised
    once; each alpha is then a diagonal rescaling of precomputed projections.
    """

    def __init__(self, Z_train, Y):
        Z = np.asarray(Z_train, dtype=np.float64)
        self.z_mean = Z.mean(axis=0)
        self.Zc = Z - self.z_mean
        self.y_mean = Y.mean(axis=0)
        Yc = Y - self.y_mean
        n, m = self.Zc.shape
        self.primal = m <= n
        if self.primal:
            lam, self.V = np.linalg.eigh(self.Zc.T @ self.Zc)
            self.R = self.V.T @ (self.Zc.T @ Yc)
        else:
            lam, self.V = np.linalg.eigh(self.Zc @ self.Zc.T)
            self.R = self.V.T @ Yc
        # Rounding leaves tiny negative eigenvalues; the Gram is PSD.
        self.lam = np.clip(lam, 0.0, None)

    def project(self, Z_eval):
        E = np.asarray(Z_eval, dtype=np.float64) - self.z_mean
        return E @ self.V if self.primal else (E @ self.Zc.T) @ self.V

    def decision(self, A, alpha):
        return (A / (self.lam + alpha)) @ self.R + self.y_mean


def _check_alphas(alphas):
    alphas = np.asarray(alphas, dtype=np.float64)
    if alphas.ndim != 1 or alphas.size == 0 or not np.all(alphas > 0):
        raise ValueError(f"alphas must be a non-empty 1-D sequence of positive floats, "
                         f"got {alphas!r}")
    return alphas


def ridge_decision_path(Z_train, y_train, Z_eval, *, alphas=ALPHAS):
    """Decision functions of ``RidgeClassifier(alpha)`` for every alpha, in closed form.

    Parameters
    ----------
    Z_train : ndarray of shape (n_train, m)
    y_train : ndarray of shape (n_train,)
        Class labels (one-vs-all ±1 targets, one column per class).
    Z_eval : ndarray of shape (n_eval, m)
    alphas : sequence of float, default=ALPHAS

    Returns
    -------
    decisions : ndarray of shape (n_alphas, n_eval, n_classes)
    classes : ndarray of shape (n_classes,)
    """
    alphas = _check_alphas(alphas)
    y_train = np.asarray(y_train)
    classes = np.unique(y_train)
    path = _RidgePath(Z_train, _pm_one_targets(y_train, classes))
    A = path.project(Z_eval)
    return np.stack([path.decision(A, a) for a in alphas]), classes


def ridge_select(Z_train, y_train, Z_val, y_val, Z_test=None, y_test=None, *, alphas=ALPHAS):
    """Ridge classifier over a grid of alphas from one eigendecomposition; pick on validation.

    Solves, for every ``alpha``, ``min ||Y - Z B - 1 b^T||^2 + alpha ||B||^2`` with one-vs-all
    ±1 targets ``Y`` (scikit-learn's ``RidgeClassifier`` with ``fit_intercept=True``, one
    column per class). The selected alpha maximises validation accuracy, ties broken by the
    smaller validation squared error of the decision function (then the larger alpha).

    Parameters
    ----------
    Z_train : ndarray of shape (n_train, m)
    y_train : ndarray of shape (n_train,)
        Class labels.
    Z_val : ndarray of shape (n_val, m)
    y_val : ndarray of shape (n_val,)
    Z_test : ndarray of shape (n_test, m), default=None
    y_test : ndarray of shape (n_test,), default=None
    alphas : sequence of float, default=ALPHAS
        Positive ridge values.

    Returns
    -------
    result : dict
        ``alpha``, ``val_accuracy``, ``test_accuracy`` (None without a test set),
        ``val_accuracy_path`` (one per alpha), ``classes``.
    """
    alphas = _check_alphas(alphas)
    y_train, y_val = np.asarray(y_train), np.asarray(y_val)
    classes = np.unique(y_train)
    if classes.shape[0] < 2:
        raise ValueError("y_train must hold at least two classes")
    path = _RidgePath(Z_train, _pm_one_targets(y_train, classes))
    A_val = path.project(Z_val)
    Y_val = _pm_one_targets(y_val, classes) if np.isin(y_val, classes).all() else None
    best, accs = None, []
    for alpha in alphas:
        D = path.decision(A_val, alpha)
        acc = float(np.mean(classes[np.argmax(D, axis=1)] == y_val))
        mse = float(np.mean((D - Y_val) ** 2)) if Y_val is not None else 0.0
        accs.append(acc)
        key = (acc, -mse, float(alpha))
        if best is None or key > best:
            best = key
    alpha = best[2]
    out = {"alpha": alpha, "val_accuracy": best[0], "val_accuracy_path": accs,
           "test_accuracy": None, "classes": classes}
    if Z_test is not None:
        if y_test is None:
            raise ValueError("y_test is required with Z_test")
        D = path.decision(path.project(Z_test), alpha)
        out["test_accuracy"] = float(np.mean(classes[np.argmax(D, axis=1)] == np.asarray(y_test)))
    return out


# --------------------------------------------------------------------------- estimators
def _configurations(n_components, sparsities, bits, *, n_train, include, nystroem_max):
    """(method, m, param) triples in run order; param = sparsity (TRF), bits (LP-RFF) or None."""
    configs = []
    for m in n_components:
        for eps in sparsities:
            if "TRF" in include:
                configs.append(("TRF", m, float(eps)))
        if "FP-RFF" in include:
            configs.append(("FP-RFF", m, None))
        for b in bits:
            if "LP-RFF" in include:
                configs.append(("LP-RFF", m, int(b)))
        if "Nystroem" in include and m <= min(n_train, nystroem_max):
            configs.append(("Nystroem", m, None))
    return configs


def _label(method, param):
    if method == "TRF":
        return f"TRF eps={param:g}"
    if method == "LP-RFF":
        return f"LP-RFF {param}-bit"
    return method


def _make_estimator(method, m, param, *, gamma, seed, device, lp_projection):
    if method == "TRF":
        from .random_features import TernaryRandomFeatures

        return TernaryRandomFeatures(m, activation="rbf", sparsity=param, random_state=seed,
                                     device=device)
    if method == "LP-RFF":
        from .random_features import LowPrecisionRFF

        return LowPrecisionRFF(m, gamma=gamma, n_bits=param, projection=lp_projection,
                               random_state=seed, device=device)
    if method == "FP-RFF":
        from sklearn.kernel_approximation import RBFSampler

        return RBFSampler(gamma=gamma, n_components=m, random_state=seed)
    if method == "Nystroem":
        from sklearn.kernel_approximation import Nystroem

        return Nystroem(kernel="rbf", gamma=gamma, n_components=m, random_state=seed)
    raise ValueError(f"unknown method {method!r}")


def _held_bytes(est):
    """Bytes of the arrays a fitted map actually holds (its weights), next to the convention."""
    components = getattr(est, "components_", None)
    if components is not None and hasattr(components, "charged_bits"):
        return int(components.nbytes)
    total = 0
    for name, value in vars(est).items():
        if name.endswith("_") and not name.startswith("_") and name != "feature_names_in_":
            nbytes = getattr(value, "nbytes", None)
            if isinstance(nbytes, (int, np.integer)):
                total += int(nbytes)
    return total


def _warm_up_trf(X, device):
    from .random_features import TernaryRandomFeatures

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for eps in (0.0, 0.9):  # both storage forms of the ternary weights
            TernaryRandomFeatures(16, activation="rbf", sparsity=eps, random_state=0,
                                  device=device).fit(X).transform(X)


def compare(X_train, y_train, X_val, y_val, X_test, y_test, *,
            n_components=(128, 256, 512, 1024, 2048), sparsities=(0.0, 0.5, 0.9),
            bits=(8, 4, 2, 1), gamma=None, seeds=(0,), alphas=ALPHAS, batch_size=250,
            methods=("TRF", "FP-RFF", "LP-RFF", "Nystroem"), lp_projection="circulant",
            nystroem_max=NYSTROEM_MAX_COMPONENTS, device=None, dataset="data", progress=None,
            n_threads=1):
    """Fit every feature map with a validated ridge readout; one row per configuration and seed.

    Parameters
    ----------
    X_train, y_train, X_val, y_val, X_test, y_test : ndarray
        Preprocessed splits (class labels); ``alpha`` is chosen on the validation split only.
    n_components : sequence of int, default=(128, 256, 512, 1024, 2048)
        Grid of m.
    sparsities : sequence of float, default=(0.0, 0.5, 0.9)
        TRF sparsities.
    bits : sequence of int, default=(8, 4, 2, 1)
        LP-RFF bits.
    gamma : float, default=None
        Gaussian-kernel bandwidth shared by every method; None uses :func:`median_gamma`
        on the training rows.
    seeds : sequence of int, default=(0,)
        ``random_state`` of every feature map, one run per seed.
    alphas : sequence of float, default=ALPHAS
        Ridge grid, the same for every method.
    batch_size : int, default=250
        s of the footprint (feature rows held at once).
    methods : sequence of str, default=("TRF", "FP-RFF", "LP-RFF", "Nystroem")
    lp_projection : {"circulant", "gaussian"}, default="circulant"
        Projection of ``LowPrecisionRFF``.
    nystroem_max : int, default=4096
        Nyström runs only for m <= min(n_train, nystroem_max).
    device : str, default=None
        ``device`` of the skrmt maps (scikit-learn maps run on numpy).
    dataset : str, default="data"
        Name written in the rows.
    progress : callable, default=None
        Called with one line of text per finished configuration.
    n_threads : int or None, default=1
        Threads of every BLAS / OpenMP pool, numba and torch during the run (see
        :func:`limit_threads`; restored afterwards for BLAS / OpenMP); None leaves them alone.

    Returns
    -------
    rows : list of dict
        Keys :data:`CSV_FIELDS`; memory in bits per ``memory_report(est, n_outputs=c,
        batch_size=batch_size)`` (``footprint_full_bits`` with s = n_train), bytes =
        ceil(bits / 8).
    """
    X_train = np.asarray(X_train)
    X_val, X_test = np.asarray(X_val), np.asarray(X_test)
    y_train, y_val, y_test = np.asarray(y_train), np.asarray(y_val), np.asarray(y_test)
    for name, (X, y) in {"train": (X_train, y_train), "val": (X_val, y_val),
                         "test": (X_test, y_test)}.items():
        if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
            raise ValueError(f"X_{name} must be 2-D with as many rows as y_{name} (1-D), got "
                             f"{X.shape} and {y.shape}")
        if X.shape[1] != X_train.shape[1]:
            raise ValueError(f"X_{name} has {X.shape[1]} features, X_train {X_train.shape[1]}")
    n_components = [int(m) for m in n_components]
    if not n_components or min(n_components) < 1:
        raise ValueError(f"n_components must be positive integers, got {n_components!r}")
    sparsities = [float(e) for e in sparsities]
    if any(not 0.0 <= e < 1.0 for e in sparsities):
        raise ValueError(f"sparsities must lie in [0, 1), got {sparsities!r}")
    bits = [int(b) for b in bits]
    if any(not 1 <= b <= 32 for b in bits):
        raise ValueError(f"bits must lie in 1..32, got {bits!r}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must not be empty")
    unknown = set(methods) - set(_FAMILY_ORDER)
    if unknown:
        raise ValueError(f"methods must be among {_FAMILY_ORDER}, got {sorted(unknown)}")
    if lp_projection not in ("circulant", "gaussian"):
        raise ValueError(f"lp_projection must be 'circulant' or 'gaussian', got {lp_projection!r}")
    if gamma is None:
        gamma = median_gamma(X_train)
    gamma = float(gamma)
    if not gamma > 0:
        raise ValueError(f"gamma must be positive, got {gamma!r}")

    if device not in (None, "numpy"):
        from ._backend import torch_available

        torch_available()  # loads torch, hence its thread pools, before they are limited
    limiter = limit_threads(n_threads)[0] if n_threads is not None else None
    try:
        return _compare_rows(
            X_train, y_train, X_val, y_val, X_test, y_test, n_components=n_components,
            sparsities=sparsities, bits=bits, gamma=gamma, seeds=seeds, alphas=alphas,
            batch_size=batch_size, methods=methods, lp_projection=lp_projection,
            nystroem_max=nystroem_max, device=device, dataset=dataset, progress=progress,
        )
    finally:
        if limiter is not None:
            limiter.restore_original_limits()


def _compare_rows(X_train, y_train, X_val, y_val, X_test, y_test, *, n_components, sparsities,
                  bits, gamma, seeds, alphas, batch_size, methods, lp_projection, nystroem_max,
                  device, dataset, progress):
    from .utils import memory_report

    classes = np.unique(y_train)
    c = int(classes.shape[0]) if classes.shape[0] > 2 else 1
    n_train = X_train.shape[0]
    mean = X_train.mean(axis=0, dtype=np.float64).astype(X_train.dtype)
    trf_sets = None
    if "TRF" in methods:
        trf_sets = tuple(trf_input(X, mean, gamma) for X in (X_train, X_val, X_test))

    if trf_sets is not None:
        # Compile the numba kernel outside the timed region (first call only).
        _warm_up_trf(trf_sets[0][:32], device)

    configs = _configurations(n_components, sparsities, bits, n_train=n_train,
                              include=set(methods), nystroem_max=nystroem_max)
    total = len(configs) * len(seeds)
    rows, k = [], 0
    for method, m, param in configs:
        sets = trf_sets if method == "TRF" else (X_train, X_val, X_test)
        for seed in seeds:
            k += 1
            est = _make_estimator(method, m, param, gamma=gamma, seed=seed, device=device,
                                  lp_projection=lp_projection)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                # The rbf target at tau ~ 1 is near-even; the header reports the match itself.
                warnings.simplefilter("ignore", UserWarning)
                est.fit(sets[0])
            t1 = time.perf_counter()
            Z_tr, Z_val, Z_te = (est.transform(X) for X in sets)
            t2 = time.perf_counter()
            sel = ridge_select(Z_tr, y_train, Z_val, y_val, Z_te, y_test, alphas=alphas)
            t3 = time.perf_counter()
            rep = memory_report(est, n_outputs=c, batch_size=batch_size)
            full = memory_report(est, n_outputs=c, batch_size=batch_size, n_rows=n_train)
            row = {
                "dataset": dataset,
                "method": method,
                "label": _label(method, param),
                "n_components": m,
                "bits": {"TRF": 2, "LP-RFF": param}.get(method, 32),
                "sparsity": param if method == "TRF" else "",
                "projection": lp_projection if method == "LP-RFF" else "",
                "seed": seed,
                "gamma": gamma,
                "alpha": sel["alpha"],
                "val_accuracy": sel["val_accuracy"],
                "test_accuracy": sel["test_accuracy"],
                "test_error": 1.0 - sel["test_accuracy"],
                "P_bits": rep["P"],
                "F_bits": rep["F"],
                "M_bits": rep["M"],
                "stored_bits": rep["stored"],
                "footprint_bits": rep["footprint"],
                "footprint_full_bits": full["footprint"],
                "map_bytes": -(-rep["P"] // 8),
                "stored_bytes": -(-rep["stored"] // 8),
                "footprint_bytes": -(-rep["footprint"] // 8),
                "held_bytes": _held_bytes(est),
                "tau": float(est.tau_) if method == "TRF" else "",
                "delta": float(est.coefficients_["delta"]) if method == "TRF" else "",
                "fit_s": t1 - t0,
                "transform_s": t2 - t1,
                "ridge_s": t3 - t2,
            }
            rows.append(row)
            if progress is not None:
                progress(f"[{k:3d}/{total}] {row['label']:<16} m={m:<5d} seed={seed}: "
                         f"test acc {100 * row['test_accuracy']:.2f}%  alpha={row['alpha']:.0e}"
                         f"  fit+transform {row['fit_s'] + row['transform_s']:.2f} s")
    return rows


# --------------------------------------------------------------------------- summaries
def _group_key(row):
    return (row["method"], row["label"], int(row["n_components"]))


def summarize(rows):
    """Mean and standard deviation over seeds, one entry per (method, m, bits or sparsity).

    Returns
    -------
    summary : list of dict
        In first-seen row order; keys ``method, label, n_components, bits, sparsity, n_seeds``,
        ``test_accuracy`` / ``test_accuracy_std`` / ``test_error`` / ``test_error_std``,
        ``val_accuracy``, ``alpha`` (the most frequent choice), the memory fields (identical
        across seeds but for TRF's sparse count), and mean timings.
    """
    groups = {}
    for row in rows:
        groups.setdefault(_group_key(row), []).append(row)
    out = []
    for (method, label, m), members in groups.items():
        acc = np.array([r["test_accuracy"] for r in members], dtype=np.float64)
        alphas = [r["alpha"] for r in members]
        entry = {
            "method": method, "label": label, "n_components": m,
            "bits": members[0]["bits"], "sparsity": members[0]["sparsity"],
            "n_seeds": len(members),
            "test_accuracy": float(acc.mean()),
            "test_accuracy_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
            "test_error": float(1.0 - acc.mean()),
            "test_error_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
            "val_accuracy": float(np.mean([r["val_accuracy"] for r in members])),
            "alpha": max(set(alphas), key=alphas.count),
        }
        for field in ("P_bits", "F_bits", "M_bits", "stored_bits", "footprint_bits",
                      "footprint_full_bits", "map_bytes", "stored_bytes", "footprint_bytes",
                      "held_bytes"):
            values = [r[field] for r in members]
            entry[field] = values[0] if len(set(values)) == 1 else float(np.mean(values))
        for field in TIMING_FIELDS:
            entry[field] = float(np.mean([r[field] for r in members]))
        out.append(entry)
    return out


def _family(label):
    return label.split(" ")[0]


def compression_table(summary, *, tolerances=(1e-4, 1e-2), memory="footprint_bits"):
    """Compression at equal quality, the LP-RFF paper's definition (baselines.md §5).

    For each baseline (``FP-RFF``, ``Nystroem``) take its best and its median configuration
    over the m grid (by mean test error); for each other family find the configuration of
    least memory whose mean test error is at most ``err_ref * (1 + tol)``; report
    memory(baseline) / memory(found).

    Returns
    -------
    table : list of dict
        Keys ``baseline, reference ("best"/"median"), family, tolerance, ratio`` (None when no
        configuration reaches the reference) and ``match`` (label and m found).
    """
    families = {}
    for entry in summary:
        families.setdefault(_family(entry["label"]), []).append(entry)
    out = []
    for base in ("FP-RFF", "Nystroem"):
        if base not in families:
            continue
        ranked = sorted(families[base], key=lambda e: (e["test_error"], e[memory]))
        refs = {"best": ranked[0], "median": ranked[(len(ranked) - 1) // 2]}
        for ref_name, ref in refs.items():
            for family in _FAMILY_ORDER:
                if family == base or family not in families:
                    continue
                for tol in tolerances:
                    ok = [e for e in families[family]
                          if e["test_error"] <= ref["test_error"] * (1.0 + tol) + 1e-12]
                    found = min(ok, key=lambda e: e[memory]) if ok else None
                    out.append({
                        "baseline": base, "reference": ref_name,
                        "reference_config": f"{ref['label']} m={ref['n_components']}",
                        "family": family, "tolerance": tol,
                        "ratio": ref[memory] / found[memory] if found else None,
                        "match": (f"{found['label']} m={found['n_components']}"
                                  if found else None),
                    })
    return out


# --------------------------------------------------------------------------- threads
# --------------------------------------------------------------------------- text output
def _kib(n_bits):
    """KiB of a bit count, bytes rounded up (the convention): the one printed conversion."""
    return -(-int(round(n_bits)) // 8) / 1024.0


def format_header(info):
    """Header lines of the comparison (dict of settings from the command line)."""
    lines = [
        f"skrmt compare -- data set: {info['dataset']} ({info['source']})",
        f"  data integrity: {info['verified']}; arrays sha256 {info['sha256'][:16]}...",
        f"  n_train={info['n_train']} n_val={info['n_val']} n_test={info['n_test']} "
        f"d={info['n_features']} classes={info['n_classes']} (readout outputs c={info['c']})",
        f"  kernel exp(-gamma ||x - y||^2), gamma = 1/median ||x_i - x_j||^2 over 1000 train "
        f"rows = {info['gamma']:.6g}",
        "  readout: ridge classifier (one-vs-all +-1, intercept), alpha in 10^-6..10^2 "
        "(9 values) chosen on the validation split, one eigendecomposition per configuration",
        f"  LP-RFF: projection='{info['lp_projection']}'"
        + (" (the LP-RFF paper's structured map)" if info["lp_projection"] == "circulant"
           else " (dense, as RBFSampler)")
        + f", bits {info['bits']}; FP-RFF = RBFSampler; Nystroem = sklearn Nystroem(rbf), "
        f"m <= min(n_train, {NYSTROEM_MAX_COMPONENTS})",
        "  TRF: TernaryRandomFeatures(activation='rbf'), i.e. unit-variance projections of "
        "x' = sqrt(2 gamma) (x - mean_train) (the estimator gets sqrt(p) x', its inputs being "
        f"scaled by 1/sqrt(p)): the same Gaussian kernel; sparsities {info['sparsities']}",
    ]
    if info.get("trf_match"):
        tm = info["trf_match"]
        lines.append(
            f"    TRF match at tau = {tm['tau']:.4f}: thresholds (s-, s+) = "
            f"({tm['thresholds'][0]:.4f}, {tm['thresholds'][1]:.4f}), c = {tm['scale']:.4f}, "
            f"o = {tm['offset']:.4f}, diagonal mismatch Delta = {tm['delta']:.4f}; unit-amplitude "
            f"thresholds {'feasible' if tm['tau'] <= 2 / math.pi else 'infeasible'} "
            f"(tau {'<=' if tm['tau'] <= 2 / math.pi else '>'} 2/pi = 0.6366; residual "
            f"sqrt(tau)|m1| - 2 phi(r) = {tm['unit_residual']:+.4f}, > 0 infeasible)"
        )
    lines += [
        f"  memory (baselines.md sec. 4): stored = P + M, footprint = P + F m s + M, s = "
        f"{info['batch_size']}, 32-bit reals, b-bit LP features, 2-bit ternary; KiB = 1024 "
        "bytes",
        f"  seeds {info['seeds']}; n_components {info['n_components']}; device "
        f"{info['device']}; threads per pool {info['threads']}",
    ]
    return "\n".join(lines)


_TABLE_COLUMNS = ("method", "m", "bits", "test_acc%", "+-std", "val_acc%", "alpha",
                  "map_KiB", "stored_KiB", "footprint_KiB", "fit+tr_s")


def format_table(summary):
    """The results table (one line per method and m, means over seeds)."""
    widths = (16, 6, 4, 9, 6, 8, 7, 11, 11, 13, 8)
    head = " ".join(f"{h:>{w}}" if i else f"{h:<{w}}"
                    for i, (h, w) in enumerate(zip(_TABLE_COLUMNS, widths)))
    lines = [head, "-" * len(head)]
    for e in summary:
        cells = (
            e["label"], str(e["n_components"]), str(e["bits"]),
            f"{100 * e['test_accuracy']:.2f}", f"{100 * e['test_accuracy_std']:.2f}",
            f"{100 * e['val_accuracy']:.2f}", f"{e['alpha']:.0e}",
            f"{_kib(e['P_bits']):.2f}", f"{_kib(e['stored_bits']):.2f}",
            f"{_kib(e['footprint_bits']):.2f}", f"{e['fit_s'] + e['transform_s']:.3f}",
        )
        lines.append(" ".join(f"{c:>{w}}" if i else f"{c:<{w}}"
                              for i, (c, w) in enumerate(zip(cells, widths))))
    return "\n".join(lines)


def format_compression(table):
    """The compression block: memory of a baseline / memory of a family at equal error.

    One line per (baseline, reference configuration); one cell per family holding the ratio
    at each tolerance, ``-`` where no configuration of the family reaches the reference.
    """
    if not table:
        return "compression: no baseline in the run"
    tolerances = list(dict.fromkeys(e["tolerance"] for e in table))
    families = list(dict.fromkeys(e["family"] for e in table))
    lines = ["compression at equal test error: footprint(baseline) / footprint(least-memory "
             "configuration within tol), tol = " + " / ".join(f"{t:.0e}" for t in tolerances)
             + ", '-' = not reached"]
    groups = {}
    for e in table:
        groups.setdefault((e["baseline"], e["reference"], e["reference_config"]), {})[
            (e["family"], e["tolerance"])] = e
    for (base, ref, config), cells in groups.items():
        parts = []
        for family in families:
            if (family, tolerances[0]) not in cells:
                continue
            ratios = []
            for tol in tolerances:
                e = cells[(family, tol)]
                ratios.append(f"{e['ratio']:.2f}x" if e["ratio"] is not None else "-")
            parts.append(f"{family} {' / '.join(ratios)}")
        lines.append(f"  vs {base:<8} {ref:<6} ({config:<17}): " + "; ".join(parts))
    return "\n".join(lines)


def _csv_value(value):
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def write_csv(rows, path):
    """Write one row per (method, m, bits or sparsity, seed); floats as shortest repr."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for row in rows:
        writer.writerow([_csv_value(row[f]) for f in CSV_FIELDS])
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(buf.getvalue())


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def write_json(payload, path):
    """Write settings, versions, data hash and rows as JSON."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(_jsonable(payload), fh, indent=1, sort_keys=False)
        fh.write("\n")


def versions():
    """Versions of Python, skrmt and the numerical stack, and the CUDA device torch sees."""
    from importlib import metadata

    from . import __version__
    from ._backend import cuda_description

    out = {"python": platform.python_version(), "skrmt": __version__}
    for key, dist in (("numpy", "numpy"), ("scipy", "scipy"), ("sklearn", "scikit-learn"),
                      ("torch", "torch"), ("numba", "numba"), ("matplotlib", "matplotlib"),
                      ("threadpoolctl", "threadpoolctl")):
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = None
    out["cuda"] = cuda_description() if out["torch"] is not None else None
    return out


# --------------------------------------------------------------------------- plot
def _family_colours(labels):
    import matplotlib as mpl

    colours = {}
    lp = sorted({lab for lab in labels if _family(lab) == "LP-RFF"},
                key=lambda s: -int(s.split(" ")[1].split("-")[0]))
    trf = sorted({lab for lab in labels if _family(lab) == "TRF"},
                 key=lambda s: float(s.split("=")[1]))
    for i, lab in enumerate(lp):
        colours[lab] = mpl.colormaps["Blues"](0.9 - 0.55 * i / max(len(lp) - 1, 1))
    for i, lab in enumerate(trf):
        colours[lab] = mpl.colormaps["Reds"](0.9 - 0.5 * i / max(len(trf) - 1, 1))
    colours["FP-RFF"] = "black"
    colours["Nystroem"] = "tab:green"
    return colours


def plot_comparison(rows, path, *, title=None):
    """Test error against m, footprint and stored-model bytes (three panels, shared y axis).

    Mean ± standard deviation over seeds; one colour per family (FP-RFF black, Nyström green,
    LP-RFF blues shaded by bits, TRF reds shaded by sparsity). Uses matplotlib's Agg backend
    when no backend is chosen yet.

    Parameters
    ----------
    rows : list of dict
        Output of :func:`compare`.
    path : str or path-like
        Image path (the format follows the suffix: .png, .pdf, ...).
    title : str, default=None

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarize(rows)
    labels = list(dict.fromkeys(e["label"] for e in summary))
    colours = _family_colours(labels)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), sharey=True)
    panels = (("n_components", "number of features m", 2),
              ("footprint_bytes", "footprint bytes (P + F m s + M)", 10),
              ("stored_bytes", "stored-model bytes (P + M)", 10))
    for ax, (field, xlabel, base) in zip(axes, panels):
        for lab in labels:
            entries = sorted((e for e in summary if e["label"] == lab),
                             key=lambda e: e["n_components"])
            x = np.array([e[field] for e in entries], dtype=np.float64)
            y = np.array([100 * e["test_error"] for e in entries])
            err = np.array([100 * e["test_error_std"] for e in entries])
            style = "--" if _family(lab) == "Nystroem" else "-"
            ax.errorbar(x, y, yerr=err if err.any() else None, marker="o", ms=3.5,
                        ls=style, color=colours[lab], label=lab, capsize=2)
        ax.set_xscale("log", base=base)
        ax.set_xlabel(xlabel)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("test error (%)")
    if all(e["test_error"] > 0 for e in summary):
        # Errors span a decade between LP-1 and the float maps: a log axis keeps both legible.
        axes[0].set_yscale("log")
    axes[2].legend(fontsize=8, loc="upper right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return fig
