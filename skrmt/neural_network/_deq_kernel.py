"""DEQKernelClassifier: kernel ridge on the implicit (deep-equilibrium) CK, or on its matched
shallow explicit network."""

import math
import time
from numbers import Integral, Real

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .._backend import DeviceCache, as_numpy_input, get_ops, resolve_device
from .._base import FLOAT_DTYPES
from .._theory._activations import ACTIVATION_NAMES, resolve_activation
from .._theory._ck import data_tau
from .._theory._deq_fixed_point import (
    deq_scalars,
    explicit_features,
    implicit_cross_gram,
    implicit_gram,
    match_explicit,
)
from ..kernels._theory_kernel import TheoryKernel
from ..utils._sklearn_compat import Interval, StrOptions, _fit_context, validate_data

_DEFAULT_WIDTH = 2048


def _ridge_solve(ops, A, B, lam, rebuild=None):
    """``(A + lam I)^{-1} B`` for a symmetric PSD ``A`` (which may be overwritten).

    Cholesky first; when it fails (``lam = 0`` and a singular ``A``: duplicated samples),
    a pseudo-inverse from ``eigh`` on the matrix ``rebuild()`` returns (or on ``A``).
    """
    n = A.shape[0]
    if ops.is_torch:
        torch = ops.torch
        eye = torch.eye(n, dtype=A.dtype, device=A.device)
        chol, info = torch.linalg.cholesky_ex(A + lam * eye)
        if int(info) == 0:
            return torch.cholesky_solve(B, chol)
        w, V = torch.linalg.eigh(A)
        w = w + lam
        keep = w > n * torch.finfo(w.dtype).eps * torch.abs(w).max()
        inv = torch.where(keep, 1.0 / torch.where(keep, w, torch.ones_like(w)), torch.zeros_like(w))
        return V @ (inv[:, None] * (V.T @ B))
    A[np.diag_indices(n)] += lam
    try:
        factor = scipy.linalg.cho_factor(A, lower=True, overwrite_a=True, check_finite=False)
        return scipy.linalg.cho_solve(factor, B, check_finite=False)
    except np.linalg.LinAlgError:
        A = rebuild() if rebuild is not None else A - lam * np.eye(n)
        w, V = scipy.linalg.eigh(A, check_finite=False)
        w = w + lam
        keep = w > n * np.finfo(np.float64).eps * np.abs(w).max()
        inv = np.where(keep, 1.0 / np.where(keep, w, 1.0), 0.0)
        return V @ (inv[:, None] * (V.T @ B))


class DEQKernelClassifier(ClassifierMixin, BaseEstimator):
    """Kernel ridge classifier on the implicit CK of a deep-equilibrium model, or on the
    shallow explicit network whose kernel matches it.

    A random deep-equilibrium model (DEQ) of width ``m`` maps ``x`` to the fixed point
    ``z* = m^{-1/2} phi(sigma_a A z* + sigma_b B x)`` of one weight-tied layer (``A``, ``B``
    i.i.d. standard Gaussian and frozen, ``sigma_b^2 = 1 - sigma_a^2``, ``phi`` centred). As
    ``m`` grows, ``z*(x)^T z*(y)`` converges to the *implicit conjugate kernel* ``G*``, the
    solution of an entrywise fixed point. ``method="implicit"`` computes ``G*`` exactly and
    fits a one-vs-rest kernel ridge classifier on it. ``method="explicit"`` uses instead a
    shallow random network, two layers of leaky ReLU for a ReLU DEQ or one layer of hard-tanh
    for an odd activation, whose activation parameters are solved so that its kernel has the
    same random-matrix equivalent as ``G*`` (Ling et al., 2024); its random features of width
    ``n_components`` feed a ridge readout.

    Read more in the design note ``deq.md``.

    Parameters
    ----------
    activation : str or callable, default="relu"
        Activation ``phi`` of the DEQ (centred at its equilibrium scale). Any registered name or
        callable for ``method="implicit"`` (``"relu"``, ``"leaky_relu"``, ``"abs"`` and
        ``"linear"`` take the fast tabulated solve; the others Picard sweeps).
        ``method="explicit"`` supports ``"relu"``, ``"leaky_relu"`` and odd activations
        (``"tanh"``, ``"erf"``, ``"sin"``, ``"hardtanh"``, odd callables).
    sigma_a2 : float in (0, 1), default=0.2
        Variance ``sigma_a^2`` of the weight-tied layer; the input weights have
        ``sigma_b^2 = 1 - sigma_a^2``.
    method : {"implicit", "explicit"}, default="implicit"
        Exact implicit kernel, or random features of the matched explicit network.
    alpha : float >= 0, default=1e-3
        Relative ridge: the penalty is ``alpha * trace(G) / n`` (implicit) or
        ``alpha * ||F||_F^2 / n`` (explicit, ``F`` the features), so that the explicit model
        tends to the implicit one as ``n_components`` grows.
    n_components : int or None, default=None
        Width of the explicit network (None: 2048). Ignored by ``method="implicit"``.
    tol : float >= 0, default=1e-6
        Fixed-point tolerance: stop when the largest change of the pre-activation kernel is
        below ``tol * max_i K_ii``.
    max_iter : int >= 1, default=100
        Largest number of fixed-point steps (Newton polish steps of the tabulated solve, or
        Picard sweeps); a ``ConvergenceWarning`` is emitted when it is reached first.
    random_state : int, RandomState instance or None, default=None
        Seed of the explicit network's weights (``method="explicit"``).
    device : str or None, default=None
        ``None``/``"numpy"``: numpy (the fastest CPU path); ``"cpu"``, ``"cuda"``,
        ``"cuda:k"``, ``"auto"``: torch on that device (the fixed point and the solve).
    verbose : int, default=0
        Print the fixed point's progress and the fit's timings.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    kernel_ : TheoryKernel
        ``TheoryKernel(model="implicit_ck", form="limit")`` fitted on the normalised training
        data: the kernel of ``method="implicit"``, and the one the explicit features
        approximate. Its ``coefficients_`` hold the equilibrium scalars.
    n_iter_ : int
        ``"implicit"``: fixed-point steps (max over blocks, >= 1). ``"explicit"``: function
        evaluations of the matching solver (>= 1).
    dual_coef_ : ndarray of shape (n_samples, n_targets)
        ``"implicit"`` only: kernel ridge weights (``n_targets`` is 1 for two classes).
    coef_ : ndarray of shape (n_components, n_targets)
        ``"explicit"`` only: readout weights.
    intercept_ : ndarray of shape (n_targets,)
        Means of the ``+-1`` one-vs-rest targets.
    activation_params_ : list of dict
        ``"explicit"`` only: the matched layers, ``{"kind": "leaky_relu", "a", "b", "shift"}``
        (output ``b t + (a - b) relu(t) - shift``) or ``{"kind": "hard_tanh", "a", "c"}``
        (output ``a clip(t, -c, c)``).
    weights_ : list of ndarray
        ``"explicit"`` only: the Gaussian weights (float64), ``(n_components, n_features)``
        then ``(n_components, n_components)``.
    matching_residual_ : float
        ``"explicit"`` only: max relative residual of the matching equations.
    mean_ : ndarray of shape (n_features,)
        Training mean subtracted from every input.
    scale_ : float
        ``sqrt(mean_i ||x_i - mean_||^2)``: inputs are divided by it, so the DEQ sees rows of
        unit mean squared norm (``kernel_.tau_ = 1`` in skrmt's ``x / sqrt(p)`` scale).
    device_ : str
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when ``X`` has string feature names.

    See Also
    --------
    TheoryKernel : The implicit kernel (``model="implicit_ck"``) and its RMT equivalent.
    sklearn.kernel_ridge.KernelRidge : Kernel ridge regression with a given kernel.

    Notes
    -----
    Inputs are centred and scaled with statistics frozen at fit (the theory needs
    ``||x|| = O(1)``; the ReLU kernel is 2-homogeneous, so for it only centring matters).
    Sparse input is accepted and densified by the centring.

    Expectations: at ``sigma_a2 = 0.2`` the ReLU-DEQ kernel equals a one-hidden-layer
    (centred) ReLU kernel up to a global factor ~0.85 and a residual below 1% (deq.md §6), so
    a one-layer ReLU kernel or its random features classify as well; the point of this
    estimator is the exact implicit kernel and the proof that a not-so-deep explicit network
    reproduces it (same kernel to ~1e-4, same predictions), not an accuracy gain.
    With ``method="explicit"``, a small ``alpha`` and ``n_components`` close to the number of
    training samples, the ridge readout sits at the interpolation peak (double descent):
    use ``n_components >= 2 n`` or ``alpha >= 1e-2`` there.

    References
    ----------
    .. [1] Z. Ling, L. Li, Z. Feng, Y. Zhang, F. Zhou, R. C. Qiu, Z. Liao, "Deep equilibrium
       models are almost equivalent to not-so-deep explicit models for high-dimensional
       Gaussian mixtures", ICML 2024.
    .. [2] S. Bai, J. Z. Kolter, V. Koltun, "Deep equilibrium models", NeurIPS 2019.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skrmt.neural_network import DEQKernelClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = DEQKernelClassifier().fit(X[:1000], y[:1000])
    >>> bool(clf.score(X[1000:], y[1000:]) > 0.95)
    True
    >>> twin = DEQKernelClassifier(method="explicit", random_state=0).fit(X[:1000], y[:1000])
    >>> [layer["kind"] for layer in twin.activation_params_]
    ['leaky_relu', 'leaky_relu']
    """

    _parameter_constraints = {
        "activation": [StrOptions(ACTIVATION_NAMES), callable],
        "sigma_a2": [Interval(Real, 0, 1, closed="neither")],
        "method": [StrOptions({"implicit", "explicit"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "n_components": [None, Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "device": [None, str],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        activation="relu",
        sigma_a2=0.2,
        method="implicit",
        alpha=1e-3,
        n_components=None,
        tol=1e-6,
        max_iter=100,
        random_state=None,
        device=None,
        verbose=0,
    ):
        self.activation = activation
        self.sigma_a2 = sigma_a2
        self.method = method
        self.alpha = alpha
        self.n_components = n_components
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the one-vs-rest ridge readout on the implicit kernel or the explicit features.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : DEQKernelClassifier
        """
        X, y = validate_data(
            self, as_numpy_input(X), y, accept_sparse="csr", dtype=FLOAT_DTYPES
        )
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(
                "DEQKernelClassifier needs samples of at least 2 classes; got "
                f"{self.classes_.size} class."
            )
        rng = check_random_state(self.random_state)
        self.device_ = resolve_device(self.device)
        act = resolve_activation(self.activation)
        t0 = time.perf_counter()

        n, p = X.shape
        if sp.issparse(X):
            self.mean_ = np.asarray(X.mean(axis=0), dtype=np.float64).ravel()
            Xc = np.asarray(X.toarray(), dtype=np.float64) - self.mean_
        else:
            self.mean_ = np.asarray(X.mean(axis=0), dtype=np.float64)
            Xc = np.asarray(X, dtype=np.float64) - self.mean_
        scale = math.sqrt(float(np.einsum("ij,ij->", Xc, Xc)) / n)
        if not scale > 0:
            raise ValueError(
                "all training samples are identical (zero spread after centring): the DEQ "
                "kernel is constant."
            )
        self.scale_ = scale
        Xc *= math.sqrt(p) / scale  # skrmt's scale (||x||^2/p ~ 1); the DEQ sees Xc/sqrt(p)
        self.kernel_ = TheoryKernel(
            model="implicit_ck", activation=self.activation, form="limit",
            sigma_a2=self.sigma_a2, device=self.device,
        ).fit(Xc)
        sc = deq_scalars(act, self.sigma_a2, data_tau(Xc))
        self._device_cache = DeviceCache()
        ops = get_ops(self.device_, np.float64)
        Xd = self._deq_rows(ops, Xc)

        # one-vs-rest +-1 targets, column means as intercept (binary: one column)
        K = self.classes_.size
        Y = -np.ones((n, K))
        Y[np.arange(n), y_idx] = 1.0
        if K == 2:
            Y = Y[:, 1:]
        self.intercept_ = Y.mean(axis=0)
        Yc = ops.asarray(Y - self.intercept_)

        for attr in ("dual_coef_", "coef_", "activation_params_", "weights_",
                     "matching_residual_"):
            if hasattr(self, attr):
                delattr(self, attr)

        if self.method == "implicit":
            G, info = implicit_gram(sc, Xd, tol=self.tol, max_iter=self.max_iter, ops=ops,
                                    verbose=self.verbose)
            self.n_iter_ = int(info.n_iter)
            t1 = time.perf_counter()
            lam = self.alpha * float(ops.xp.trace(G)) / n

            def rebuild():
                return implicit_gram(sc, Xd, tol=self.tol, max_iter=self.max_iter, ops=ops)[0]

            W = _ridge_solve(ops, G, Yc, lam, rebuild)
            del G
            self.dual_coef_ = np.asarray(ops.to_numpy(W), dtype=np.float64)
            if self.verbose:
                print(f"[DEQ] implicit CK Gram {n} x {n}: {t1 - t0:.2f} s "
                      f"({self.n_iter_} step(s)); ridge solve {time.perf_counter() - t1:.2f} s")
        else:
            match = match_explicit(sc)
            m = _DEFAULT_WIDTH if self.n_components is None else int(self.n_components)
            weights = [rng.standard_normal((m, p))]
            weights += [rng.standard_normal((m, m)) for _ in match.layers[1:]]
            self.activation_params_ = [dict(layer) for layer in match.layers]
            self.weights_ = weights
            self.matching_residual_ = float(match.residual)
            self.n_iter_ = int(match.n_iter)
            self._match = match
            F = explicit_features(match, weights, Xd, ops=ops)
            lam = self.alpha * float((F * F).sum()) / n
            if m <= n:
                W = _ridge_solve(ops, F.T @ F, F.T @ Yc, lam)
            else:
                W = F.T @ _ridge_solve(ops, F @ F.T, Yc, lam)
            self.coef_ = np.asarray(ops.to_numpy(W), dtype=np.float64)
            if self.verbose:
                print(f"[DEQ] explicit net {[l['kind'] for l in match.layers]} width {m}: "
                      f"fit {time.perf_counter() - t0:.2f} s")
        self._scalars = sc
        return self

    # ------------------------------------------------------------------ predict
    def _deq_rows(self, ops, Xn):
        """DEQ-scale rows ``x / sqrt(p)`` of normalised (skrmt-scale) data, on the device."""
        Xs = Xn / math.sqrt(Xn.shape[1])
        return ops.asarray(Xs) if ops.is_torch else Xs

    def _normalise(self, X):
        """Frozen centring and scaling, in the DEQ scale (float64 copy; never in place)."""
        if sp.issparse(X):
            X = X.toarray()
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_

    def decision_function(self, X):
        """One-vs-rest ridge scores.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) for two classes, else (n_samples, n_classes)
            In the dtype of ``X``; positive scores favour ``classes_[1]`` in the binary case.
        """
        check_is_fitted(self)
        X = validate_data(self, as_numpy_input(X), accept_sparse="csr", dtype=FLOAT_DTYPES,
                          reset=False)
        ops = get_ops(resolve_device(self.device, at_predict=True), np.float64)
        Xt = self._normalise(X)
        if self.method == "implicit":
            W = self._device_cache.get(ops, "dual_coef", lambda: ops.asarray(self.dual_coef_))
            Xf = self._device_cache.get(
                ops, "X_fit", lambda: self._deq_rows(ops, self.kernel_.X_fit_)
            )
            k_fit = self.kernel_._k_fit
            scores, _ = implicit_cross_gram(
                self._scalars, Xt, Xf, k_fit, tol=self.tol, max_iter=self.max_iter, ops=ops,
                apply=lambda G: G @ W,
            )
        else:
            W = self._device_cache.get(ops, "coef", lambda: ops.asarray(self.coef_))
            Ws = self._device_cache.get(
                ops, "weights", lambda: [ops.asarray(w) for w in self.weights_]
            )

            def block(Xb):
                return explicit_features(self._match, Ws, Xb, ops=ops) @ W

            scores = ops.map_rows(
                block, Xt, W.shape[1],
                bytes_per_row=8 * (X.shape[1] + 3 * self.weights_[0].shape[0]),
            )
        scores = np.asarray(ops.to_numpy(scores), dtype=np.float64) + self.intercept_
        scores = scores.astype(X.dtype, copy=False)
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X):
        """Predicted classes (``classes_[argmax]`` of the one-vs-rest scores).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(np.intp)]
        return self.classes_[np.argmax(scores, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
