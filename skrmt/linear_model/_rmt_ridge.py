"""RMTRidge: random-features ridge regression whose errors and ridge come from the theory."""

import math
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_array, check_consistent_length, check_random_state
from sklearn.utils.validation import check_is_fitted

from .._backend import DeviceCache, as_numpy_input, get_ops, resolve_device
from .._theory import _rmt_ridge_de as _de
from .._theory import _rmt_ridge_rff as _rff
from .._theory._activations import ACTIVATION_NAMES, resolve_activation
from .._theory._gaussian_moments import dual_kernel_diag
from .._theory._ternary import ternary_step_function
from ..utils._sklearn_compat import Interval, StrOptions, _fit_context, validate_data

__all__ = ["RMTRidge"]

_DTYPES = [np.float64, np.float32]
_FLOAT_BITS = 32
# two blocks [cos, sin] of random Fourier features: a feature map of RMTRidge, not an activation
_RFF = "rff"


def _hstack(ops, a, b):
    return ops.xp.cat((a, b), dim=1) if ops.is_torch else np.concatenate((a, b), axis=1)


def solve_regularised_gram(ops, G, rhs, gamma, n, N):
    """``(G + n gamma I)^{-1} rhs`` in float64; ``gamma = 0``: the minimum-norm solution.

    ``G`` is a Gram matrix of the (n, N) feature matrix (dual n x n or primal N x N); the
    minimum-norm branch drops eigenvalues below the relative cutoff ``max(n, N) eps lambda_max``.
    Used by the in-memory fit and by ``skrmt.scale_out`` (from block sums of ``F^T F``).
    """
    xp = ops.xp
    Gd = ops.asarray(G, dtype=np.float64)
    rhs = ops.asarray(rhs, dtype=np.float64)
    if gamma > 0:
        Gd = Gd + (n * gamma) * ops.asarray(np.eye(Gd.shape[0]), dtype=np.float64)
        return xp.linalg.solve(Gd, rhs)
    lam, V = xp.linalg.eigh(Gd)
    top = float(ops.to_numpy(lam).max()) if lam.shape[0] else 0.0
    cut = max(n, N) * np.finfo(np.float64).eps * max(top, 0.0)
    inv = xp.where(lam > cut, 1.0 / xp.where(lam > cut, lam, 1.0), 0.0 * lam)
    return ops.matmul(V, inv[:, None] * ops.matmul(V.T, rhs))


def _solve_readout(ops, F, Y, gamma):
    """Ridge readout ``argmin (1/n)||Y - F B||^2 + gamma ||B||^2`` (float64, one solve).

    ``N >= n`` solves the n x n dual system, ``N < n`` the N x N primal one; ``gamma = 0`` gives
    the minimum-norm interpolator from an eigendecomposition with a relative cutoff.
    """
    n, N = F.shape
    Fd = ops.asarray(F, dtype=np.float64)
    Yd = ops.asarray(Y, dtype=np.float64)
    dual = N >= n
    G = ops.matmul(Fd, Fd.T) if dual else ops.matmul(Fd.T, Fd)
    rhs = Yd if dual else ops.matmul(Fd.T, Yd)
    sol = solve_regularised_gram(ops, G, rhs, gamma, n, N)
    beta = ops.matmul(Fd.T, sol) if dual else sol
    return np.asarray(ops.to_numpy(beta), dtype=np.float64)


class RMTRidge(RegressorMixin, BaseEstimator):
    """Ridge regression on random features, with its risk and ridge predicted by RMT.

    The model is ``y ~ sigma(W x_std) . beta + intercept`` with ``W`` a random Gaussian
    (``features="gaussian"``) or sparse ternary (``features="ternary"``) matrix of
    ``n_components`` rows and only the readout ``beta`` trained (ridge); with
    ``activation="rff"``, random Fourier features ``[cos(W x_std), sin(W x_std)]``. Random
    matrix theory gives deterministic equivalents of its train and test mean squared errors
    over the random draw of ``W`` (Louart, Liao, Couillet 2018), computed from one
    eigendecomposition of the limiting kernel ``Phi``: ``predict_risk`` and ``risk_path``
    report them without using the fitted draw, and ``alpha="auto"`` picks the ridge that
    minimises a label-free RMT leave-one-out estimate of the test error, without
    cross-validation.

    Read more in the design note ``rmt_ridge.md``.

    Parameters
    ----------
    n_components : int, default=1000
        Number of random features ``N`` (columns of ``F``). With ``activation="rff"`` it
        counts features, as scikit-learn's ``RBFSampler`` does, not frequencies: the model
        draws ``ceil(n_components / 2)`` frequencies and keeps a cos and a sin feature of
        each, except that for an odd ``n_components`` the last frequency keeps its cos
        feature only (the theory handles unequal blocks exactly).
    activation : str or callable, default="relu"
        Activation ``sigma``: a registered name (``"relu"``, ``"erf"``, ``"tanh"``, ``"cos"``,
        ``"sin"``, ``"gelu"``, ``"abs"``, ``"linear"`` ...) or a numpy-vectorised callable
        (its kernel then comes from Gaussian quadrature; use a module-level function if the
        model is to be pickled). ``"rff"`` (RMTRidge only, not an activation): random Fourier
        features ``F = [cos(X_std W^T), sin(X_std W^T)]``, two uncorrelated blocks whose theory
        has one ``delta`` per block (``rmt_ridge.md`` §7; Gaussian features only). Their
        ``K_c + K_s`` is the Gaussian kernel ``exp(-||a - b||^2 / 2)`` of the standardised
        data (bandwidth fixed by the standardisation).
    alpha : float >= 0 or "auto", default="auto"
        Ridge ``gamma`` in the papers' scale: the readout minimises
        ``(1/n)||y - F beta||^2 + gamma ||beta||^2`` with the unscaled features
        ``F = sigma(X_std W^T)``, i.e. scikit-learn's ``Ridge(alpha=n*gamma,
        fit_intercept=False)`` on ``F`` and the centred targets. ``0`` fits the minimum-norm
        interpolator. ``"auto"`` minimises the criterion of ``alpha_selection``.
    features : {"gaussian", "ternary"}, default="gaussian"
        ``"gaussian"``: ``W`` with i.i.d. N(0, 1) entries. ``"ternary"``: the weights and
        moment-matched ternary activation of
        :class:`~skrmt.random_features.TernaryRandomFeatures` (even activations such as
        ``"abs"`` or ``"cos"`` cannot be matched and raise a ``ValueError``); the theory then
        uses the exact kernel of the ternary step function.
    sparsity : float in [0, 1), default=0.0
        Fraction of zero weights for ``features="ternary"``; ignored for Gaussian features.
    alpha_selection : {"loo", "gcv"}, default="loo"
        Criterion of ``alpha="auto"``: ``"loo"``, the RMT leave-one-out estimate (default;
        reliable on real data with heterogeneous leverage), or ``"gcv"``, the cheaper RMT
        generalised cross-validation (it drifts to too-small ridges on data of low intrinsic
        dimension). Both are biased low: use them to choose, not to report, the test error.
        With ``activation="rff"`` both exist in their two-block form (the leave-one-out one
        derived in this project, see ``skrmt._theory._rmt_ridge_rff``); the grid is coarser
        (25 ridges instead of 61, then the same refinement) because each ridge costs a few
        eigendecompositions instead of a share of one.
    random_state : int, RandomState instance or None, default=None
        Seed of the random weights (the only random draw).
    device : str or None, default=None
        ``None``/``"numpy"``: numpy/scipy; ``"cpu"``, ``"cuda"``, ``"cuda:k"``, ``"auto"``:
        torch on that device for the kernel, its eigendecomposition, the features and the
        readout solve (float64); the grid algebra runs in numpy. Input and output are numpy.

    Attributes
    ----------
    alpha_ : float
        The ridge ``gamma`` used (``alpha``, or the selected one).
    coef_ : ndarray of shape (n_components,) or (n_targets, n_components)
        Readout ``beta`` on the unscaled features ``F``.
    intercept_ : float or ndarray of shape (n_targets,)
        Training mean of ``y``.
    predicted_train_mse_ : float
        Deterministic equivalent of the training MSE at ``alpha_`` (averaged over outputs).
    train_mse_ : float
        Realised training MSE of this draw.
    predicted_loo_mse_ : float
        RMT leave-one-out criterion at ``alpha_`` (NaN for ``alpha=0``); biased low on
        structured data.
    effective_alpha_ : float
        Effective ridge ``t`` of the kernel-ridge reading of the model:
        ``t (N - df1(t)) = alpha_ n``. With ``activation="rff"``: the ridge of the kernel
        ``K_r = K_c + block_ratio_ K_s``, ``t (N_c - tr K_c (K_r + t I)^{-1}) = alpha_ n`` with
        ``N_c = ceil(n_components / 2)`` cos features.
    delta_ : float
        ``delta = df1 / (N - df1)`` of the papers (``activation="rff"``: the cos block's).
    dof_ : float
        ``df1 = tr Phi (Phi + t I)^{-1}`` (``activation="rff"``: ``tr K_r (K_r + t I)^{-1}``).
    block_deltas_ : ndarray of shape (2,)
        ``(delta_c, delta_s)`` of the cos and sin blocks (``activation="rff"`` only).
    block_ratio_ : float
        ``(N_s / N_c)(1 + delta_c) / (1 + delta_s)`` with ``N_c``, ``N_s`` the cos and sin
        feature counts (``activation="rff"`` only).
    rank_ : int
        Numerical rank of the training kernel ``Phi``; the interpolation peak sits at
        ``n_components = rank_``.
    x_mean_ : ndarray of shape (n_features_in_,)
        Training mean of ``X``.
    tau_ : float
        Mean squared norm of the centred training rows; ``X`` is standardised as
        ``(X - x_mean_) / sqrt(tau_)``.
    components_ : ndarray of shape (n_components, n_features_in_)
        Gaussian weights ``W`` (``features="gaussian"`` only); shape
        ``(ceil(n_components / 2), n_features_in_)`` with ``activation="rff"`` (the
        frequencies).
    random_features_ : TernaryRandomFeatures
        The fitted ternary feature map (``features="ternary"`` only); it sees the standardised
        data times ``sqrt(n_features_in_)``.
    memory_bytes_ : int
        Stored-model bytes under the project's convention: the weights (32 bits per Gaussian
        entry, or the ternary-matrix rule) plus a 32-bit readout.
    device_ : str
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when ``X`` has string feature names.

    See Also
    --------
    TernaryRandomFeatures : The ternary feature map of ``features="ternary"``.
    TheoryKernel : The limiting kernel ``Phi``.
    sklearn.linear_model.Ridge : ``Ridge(alpha=n*alpha_, fit_intercept=False)`` on the same
        features gives ``coef_``.
    sklearn.linear_model.RidgeCV : Empirical leave-one-out on the realised features.

    Notes
    -----
    ``X`` is centred and scaled to mean squared row norm 1 (the theory needs a bounded operator
    norm; for erf, tanh, cos, sin this scale acts as a bandwidth), ``y`` is centred; the features
    are not centred (their mean acts as an implicit intercept). The theory is an average over
    ``W``: one draw deviates from it by ``O(n^{-1/2})`` relative, most near
    ``n_components = rank_`` with a small ridge, where a warning is raised. The fit costs one
    ``n x n`` eigendecomposition (``O(n^3)``) besides the readout; keep ``n`` below ~10^4.

    With ``activation="rff"`` the limiting kernel of the average predictor depends on the
    ridge (``K_c + r K_s``, ``r`` solved with it), so every ridge costs a few
    eigendecompositions (2-6, warm-started along a sorted grid): at n = 512 (one thread)
    ``alpha="auto"`` takes ~7 s against 0.2 s for one activation, a 25-ridge ``risk_path``
    ~7 s against 0.03 s; keep paths to about 25 ridges.

    References
    ----------
    .. [1] C. Louart, Z. Liao, R. Couillet, "A random matrix approach to neural networks",
       Ann. Appl. Probab. 28(2), 2018.
    .. [2] A. Jacot, B. Simsek, F. Spadaro, C. Hongler, F. Gabriel, "Implicit regularization
       of random feature models", ICML 2020.
    .. [3] S. Mei, A. Montanari, "The generalization error of random features regression",
       Comm. Pure Appl. Math., 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skrmt.linear_model import RMTRidge
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(300, 20)
    >>> y = np.tanh(X[:, 0]) + 0.1 * rng.randn(300)
    >>> model = RMTRidge(n_components=400, random_state=0).fit(X[:200], y[:200])
    >>> risk = model.predict_risk(X[200:], y[200:])
    >>> sorted(risk)
    ['bias', 'effective_alpha', 'test_mse', 'train_mse', 'variance']
    >>> bool(model.score(X[200:], y[200:]) > 0.5)
    True
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATION_NAMES) | {_RFF}), callable],
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "features": [StrOptions({"gaussian", "ternary"})],
        "sparsity": [Interval(Real, 0, 1, closed="left")],
        "alpha_selection": [StrOptions({"loo", "gcv"})],
        "random_state": ["random_state"],
        "device": [None, str],
    }

    def __init__(
        self,
        n_components=1000,
        *,
        activation="relu",
        alpha="auto",
        features="gaussian",
        sparsity=0.0,
        alpha_selection="loo",
        random_state=None,
        device=None,
    ):
        self.n_components = n_components
        self.activation = activation
        self.alpha = alpha
        self.features = features
        self.sparsity = sparsity
        self.alpha_selection = alpha_selection
        self.random_state = random_state
        self.device = device

    # -----------------------------------------------------------------------------------------
    # fit
    # -----------------------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Compute the kernel spectrum, choose the ridge, draw the features, fit the readout.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (centred and scaled internally).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.

        Returns
        -------
        self : RMTRidge
        """
        rff = self._is_rff()
        if rff:
            self._check_rff_params()
        X, y = validate_data(
            self, as_numpy_input(X), y, accept_sparse="csr", dtype=_DTYPES, y_numeric=True,
            multi_output=True,
        )
        n, p = X.shape
        self._check_n_samples_and_alpha(n)
        rng = check_random_state(self.random_state)
        self.device_ = resolve_device(self.device)
        ops = get_ops(self.device_, np.float64)
        N = int(self.n_components)

        Y = np.asarray(y, dtype=np.float64)
        y_1d = Y.ndim == 1
        Y = Y.reshape(n, -1)
        y_mean = Y.mean(axis=0)
        Yc = Y - y_mean

        self.x_mean_, self.tau_ = _centred_moments(X)
        self._sparse_fit = sp.issparse(X)
        self._X_fit = X.astype(np.float64, copy=True) if self._sparse_fit else self._standardise(X)
        self._device_cache = DeviceCache()

        # the one random draw, before anything else, so that random_state fixes W
        if self.features == "ternary":
            self._fit_ternary_map(X, rng)
        else:
            rows = _rff.split_components(N)[0] if rff else N
            self.components_ = rng.standard_normal((rows, p))
        self._Yc = Yc
        # the theory state of the other branch (a previous fit) must not survive a refit
        self._lam = self._z = self._U = None
        self._rff_kernels = self._rff_point = None
        if rff:
            self._fit_rff_theory(ops, Yc, N)
        else:
            self._fit_theory(ops, Yc, N)

        F = self._train_features(ops, X)
        beta = _solve_readout(ops, F, Yc, self.alpha_)
        resid = Yc - F @ beta
        self.train_mse_ = float(np.mean(resid * resid))
        del F
        coef = beta.T.astype(X.dtype, copy=False)
        self.coef_ = coef[0] if y_1d else coef
        self.intercept_ = float(y_mean[0]) if y_1d else y_mean.astype(X.dtype)
        self._y_1d = y_1d
        self.memory_bytes_ = self._memory_bytes(Y.shape[1])
        return self

    def _fit_theory(self, ops, Yc, N):
        Phi = self._kernel_with_fit(ops, self._kernel_activation(), None, train=True)
        spec = _de.KernelSpectrum.from_kernel(Phi, Yc, ops)
        del Phi
        self._lam, self._z, self._U = spec.lam, spec.z, spec.U
        self.rank_ = spec.rank

        if self.alpha == "auto":
            alpha, _ = _de.select_alpha(spec, N, criterion=self.alpha_selection)
        else:
            alpha = float(self.alpha)
            self._warn_peak(_de.interpolation_peak(spec, alpha, N), spec.rank, alpha, N)
        self.alpha_ = alpha
        point = _de.risk_grid(spec, [alpha], N, loo=True, gcv=False)
        self.effective_alpha_ = float(point["effective_alpha"][0])
        self.delta_ = float(point["delta"][0])
        self.dof_ = float(point["dof"][0])
        self.predicted_train_mse_ = float(point["train_mse"][0])
        loo = float(point["loo_mse"][0]) if alpha > 0 else math.nan
        self.predicted_loo_mse_ = loo

    # -----------------------------------------------------------------------------------------
    # random Fourier features (two blocks, rmt_ridge.md §7)
    # -----------------------------------------------------------------------------------------
    def _check_n_samples_and_alpha(self, n):
        """Checks of ``fit`` beyond the parameter constraints (shared with the Dask fit)."""
        if n < 2:
            raise ValueError(
                f"RMTRidge needs at least 2 samples, got 1 sample (n_samples = {n}): the "
                "theory's ridge and risk are not defined for one sample."
            )
        if self.alpha != "auto" and not math.isfinite(float(self.alpha)):
            raise ValueError(f"alpha must be a finite number >= 0 or 'auto', got {self.alpha!r}.")

    def _is_rff(self):
        return isinstance(self.activation, str) and self.activation == _RFF

    def _check_rff_params(self):
        if self.features == "ternary":
            raise ValueError(
                "activation='rff' (random Fourier features, cos and sin blocks) has Gaussian "
                "weights only: it cannot be combined with features='ternary'."
            )

    def _rff_kernels_of_fit(self, ops, Yc):
        Kc = ops.to_numpy(self._kernel_with_fit(ops, "cos", None, train=True))
        Ks = ops.to_numpy(self._kernel_with_fit(ops, "sin", None, train=True))
        return _rff.RFFKernels(Kc=Kc, Ks=Ks, y=Yc)

    def _fit_rff_theory(self, ops, Yc, N):
        kern = self._rff_kernels_of_fit(ops, Yc)
        n_cos, n_sin = _rff.split_components(N)
        r0 = None
        if self.alpha == "auto":
            alpha, info = _rff.rff_select_alpha(kern, n_cos, n_sin=n_sin,
                                                criterion=self.alpha_selection, ops=ops)
            r0 = info["r_alpha"]
        else:
            alpha = float(self.alpha)
        pt = _rff.solve_rff(kern, alpha, n_cos, n_sin=n_sin, r0=r0, ops=ops)
        if self.alpha != "auto":
            self._warn_peak(_rff.rff_interpolation_peak(pt, alpha, N), pt.rank, alpha, N)
        res = _rff.rff_point_errors(kern, pt, loo=alpha > 0)
        self._rff_kernels, self._rff_point = kern, pt
        self.rank_ = pt.rank
        self.alpha_ = alpha
        self.effective_alpha_ = float(pt.t)
        self.block_ratio_ = float(pt.r)
        self.block_deltas_ = np.array([pt.delta_c, pt.delta_s])
        self.delta_ = float(pt.delta_c)
        self.dof_ = float(res["dof"])
        self.predicted_train_mse_ = float(res["train_mse"])
        self.predicted_loo_mse_ = float(res["loo_mse"]) if alpha > 0 else math.nan

    def _rff_state(self, ops):
        """Block kernels and the solved point at ``alpha_``.

        After unpickling they are recomputed once (warm-started at ``block_ratio_``) and kept
        in the device cache; no attribute of ``self`` is rebound.
        """
        pt = self.__dict__.get("_rff_point")
        if pt is not None:
            return self._rff_kernels, pt

        def make():
            kern = self._rff_kernels_of_fit(ops, self._Yc)
            n_cos, n_sin = _rff.split_components(self.n_components)
            return kern, _rff.solve_rff(kern, self.alpha_, n_cos, n_sin=n_sin,
                                        r0=self.block_ratio_, ops=ops)

        return self._device_cache.get(ops, "rff_state", make)

    def _rff_test(self, ops, X, y=None):
        yc = None
        if y is not None:
            yc = y.reshape(y.shape[0], -1) - np.atleast_1d(self.intercept_).astype(np.float64)
        return _rff.RFFTest(
            Kc=ops.to_numpy(self._kernel_with_fit(ops, "cos", X)),
            Ks=ops.to_numpy(self._kernel_with_fit(ops, "sin", X)),
            dc=self._test_diag(ops, "cos", X),
            ds=self._test_diag(ops, "sin", X),
            y=yc,
        )

    def _fit_ternary_map(self, X, rng):
        from ..random_features._trf import TernaryRandomFeatures

        trf = TernaryRandomFeatures(
            n_components=self.n_components,
            activation=self.activation,
            sparsity=self.sparsity,
            random_state=rng,
            device=self.device,
        )
        self.random_features_ = trf.fit(self._ternary_input(X))

    def _memory_bytes(self, n_targets):
        N, p = self.n_components, self.n_features_in_
        readout = _FLOAT_BITS * N * n_targets
        if self.features == "ternary":
            return int(self.random_features_.memory_bytes_) + math.ceil(readout / 8)
        rows = _rff.split_components(N)[0] if self._is_rff() else N
        return math.ceil((_FLOAT_BITS * rows * p + readout) / 8)

    # -----------------------------------------------------------------------------------------
    # standardisation, kernels, features
    # -----------------------------------------------------------------------------------------
    def _standardise(self, X, dtype=np.float64):
        """``(X - x_mean_) / sqrt(tau_)`` as a new dense array (never in place)."""
        if sp.issparse(X):
            X = X.toarray()
        Xs = np.asarray(X, dtype=np.float64) - self.x_mean_
        Xs *= 1.0 / math.sqrt(self.tau_)
        return Xs.astype(dtype, copy=False)

    def _ternary_input(self, X, dtype=np.float64):
        # TernaryRandomFeatures divides by sqrt(p) (library convention); rmt_ridge.md's standard
        # is mean squared norm 1 without it, hence the factor sqrt(p) here.
        return self._standardise(X, dtype) * np.asarray(math.sqrt(X.shape[1]), dtype=dtype)

    def _kernel_activation(self):
        """The activation whose dual kernel is the theory's ``Phi``."""
        if self.features == "ternary":
            trf = self.random_features_
            return ternary_step_function(*trf.thresholds_, trf.scale_, trf.offset_)
        return resolve_activation(self.activation)

    def _gram_with_fit(self, ops, X):
        """Squared norms and inner products of standardised rows of ``X`` and of the fit set.

        ``X`` is raw (numpy or CSR), or None for the fit set itself.
        """
        if X is None and not self._sparse_fit:
            Xf = self._device_cache.get(ops, "X_fit", lambda: ops.asarray(self._X_fit))
            A = ops.sqnorm_rows(Xf)
            return A, A, ops.matmul(Xf, Xf.T)
        if X is None:
            X = self._X_fit
        if not self._sparse_fit:
            Xf = self._device_cache.get(ops, "X_fit", lambda: ops.asarray(self._X_fit))
            Xs = ops.asarray(self._standardise(X))
            return ops.sqnorm_rows(Xs), ops.sqnorm_rows(Xf), ops.matmul(Xs, Xf.T)
        # sparse training data: centre implicitly, (x - m)^T (x' - m) = x^T x' - ... (§1.3)
        Xf, m, scale = self._X_fit, self.x_mean_, 1.0 / self.tau_
        mm = float(m @ m)
        mf = np.asarray(Xf @ m).ravel()
        Af = (np.asarray(Xf.multiply(Xf).sum(axis=1)).ravel() - 2.0 * mf + mm) * scale
        if sp.issparse(X):
            X = X.astype(np.float64)
            G = np.asarray((X @ Xf.T).toarray())
            sq = np.asarray(X.multiply(X).sum(axis=1)).ravel()
        else:
            X = np.asarray(X, dtype=np.float64)
            G = np.asarray(Xf @ X.T).T
            sq = np.einsum("ij,ij->i", X, X)
        mx = np.asarray(X @ m).ravel()
        C = (G - mx[:, None] - mf[None, :] + mm) * scale
        A = np.maximum((sq - 2.0 * mx + mm) * scale, 0.0)
        return ops.asarray(A), ops.asarray(np.maximum(Af, 0.0)), ops.asarray(C)

    def _kernel_with_fit(self, ops, act, X, train=False):
        A, Af, C = self._gram_with_fit(ops, X)
        K = _de.kernel_from_gram(act, A, Af, C, ops=ops)
        if train:
            n = K.shape[0]
            K = 0.5 * (K + K.T)
            K.reshape(-1)[:: n + 1] = dual_kernel_diag(act, A, ops=ops)
        return K

    def _test_diag(self, ops, act, X):
        A, _, _ = self._gram_pieces_self(X)
        return ops.to_numpy(dual_kernel_diag(act, ops.asarray(A), ops=ops))

    def _gram_pieces_self(self, X):
        if sp.issparse(X):
            X = X.astype(np.float64)
            m = self.x_mean_
            sq = np.asarray(X.multiply(X).sum(axis=1)).ravel()
            mx = np.asarray(X @ m).ravel()
            A = np.maximum((sq - 2.0 * mx + float(m @ m)) / self.tau_, 0.0)
            return A, None, None
        Xs = self._standardise(X)
        return np.einsum("ij,ij->i", Xs, Xs), None, None

    def _feature_block(self, ops, dtype):
        """A function mapping a dense block of raw rows to its random features ``F``."""
        if self.features == "ternary":
            trf = self.random_features_
            root_n = math.sqrt(self.n_components)

            def block(Xb):
                Z = trf.transform(self._ternary_input(ops.to_numpy(Xb), dtype))
                return ops.asarray(Z * np.asarray(root_n, dtype=Z.dtype))

            return block
        key = str(np.dtype(dtype))
        W = self._device_cache.get(ops, "W_T" + key,
                                   lambda: ops.asarray(self.components_.T, dtype=dtype))
        mean = self._device_cache.get(ops, "x_mean" + key,
                                      lambda: ops.asarray(self.x_mean_, dtype=dtype))
        inv_scale = 1.0 / math.sqrt(self.tau_)
        if self._is_rff():
            xp = ops.xp
            n_sin = _rff.split_components(self.n_components)[1]

            def block(Xb):
                T = ops.matmul((Xb - mean) * inv_scale, W)
                return _hstack(ops, xp.cos(T), xp.sin(T[:, :n_sin]))

            return block
        act = resolve_activation(self.activation)

        def block(Xb):
            return act.apply(ops.matmul((Xb - mean) * inv_scale, W), ops)

        return block

    def _train_features(self, ops, X):
        block = self._feature_block(ops, np.float64)
        return ops.map_rows(block, X, self.n_components, out_dtype=np.float64)

    def _features(self, X):
        """Random features ``F = sigma(X_std W^T)`` of new data (float64, unscaled)."""
        check_is_fitted(self)
        X = validate_data(self, as_numpy_input(X), accept_sparse="csr", dtype=_DTYPES,
                          reset=False)
        ops = get_ops(resolve_device(self.device, at_predict=True), np.float64)
        return self._train_features(ops, X)

    # -----------------------------------------------------------------------------------------
    # prediction
    # -----------------------------------------------------------------------------------------
    def predict(self, X):
        """Predict with the fitted random-features model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            In the dtype of ``X`` (float32 or float64).
        """
        check_is_fitted(self)
        X = validate_data(self, as_numpy_input(X), accept_sparse="csr", dtype=_DTYPES,
                          reset=False)
        dtype = X.dtype
        ops = get_ops(resolve_device(self.device, at_predict=True), dtype)
        features = self._feature_block(ops, dtype)
        coef2d = np.atleast_2d(self.coef_)
        key = str(np.dtype(dtype))
        B = self._device_cache.get(ops, "coef_T" + key, lambda: ops.asarray(coef2d.T, dtype=dtype))
        b0 = self._device_cache.get(
            ops, "intercept" + key, lambda: ops.asarray(np.atleast_1d(self.intercept_), dtype=dtype)
        )
        k = coef2d.shape[0]
        N = self.n_components
        bytes_per_row = (X.shape[1] + 2 * N + k) * np.dtype(dtype).itemsize

        def block(Xb):
            return ops.matmul(features(Xb), B) + b0

        out = ops.map_rows(block, X, k, bytes_per_row=bytes_per_row, out_dtype=dtype)
        return out[:, 0] if self._y_1d else out

    # -----------------------------------------------------------------------------------------
    # theory
    # -----------------------------------------------------------------------------------------
    def __getstate__(self):
        # a copy: object.__getstate__ may hand back the live __dict__
        state = dict(super().__getstate__())
        # U is n x n: recomputed where needed rather than pickled (rmt_ridge.md §4); so are
        # the two block kernels of activation="rff" and their eigenbasis
        for key in ("_U", "_rff_kernels", "_rff_point"):
            state.pop(key, None)
        return state

    def _spectrum(self, ops):
        """The training spectrum.

        After unpickling (no ``_U``) it is recomputed once and kept in the device cache, a
        holder created in ``fit`` whose content may change (it pickles empty): no attribute of
        ``self`` is rebound.
        """
        U = self.__dict__.get("_U")
        if U is not None:
            return _de.KernelSpectrum(lam=self._lam, z=self._z, U=U)

        def make():
            Phi = self._kernel_with_fit(ops, self._kernel_activation(), None, train=True)
            return _de.KernelSpectrum.from_kernel(Phi, self._Yc, ops)

        return self._device_cache.get(ops, "spectrum", make)

    def _test_projection(self, ops, spec, X, y=None):
        act = self._kernel_activation()
        Phi_t = ops.to_numpy(self._kernel_with_fit(ops, act, X))
        d_t = self._test_diag(ops, act, X)
        yc = None
        if y is not None:
            yc = y.reshape(y.shape[0], -1) - np.atleast_1d(self.intercept_).astype(np.float64)
        return _de.TestProjection.from_kernels(spec.U, Phi_t, d_t, yc)

    def _check_labelled(self, X, y):
        X = validate_data(self, as_numpy_input(X), accept_sparse="csr", dtype=_DTYPES,
                          reset=False)
        if y is None:
            return X, None
        y = check_array(as_numpy_input(y), ensure_2d=False, dtype=np.float64, input_name="y")
        check_consistent_length(X, y)
        k = 1 if self._y_1d else np.atleast_2d(self.coef_).shape[0]
        if (y.ndim == 1 and k != 1) or (y.ndim == 2 and y.shape[1] != k) or y.ndim > 2:
            raise ValueError(
                f"y has shape {y.shape}, but the model was fitted on {k} target(s)."
            )
        return X, y

    def _warn_peak(self, at_peak, rank, gamma, N):
        if at_peak:
            warnings.warn(
                f"n_components={N} is within 10% of the kernel rank {rank} with a tiny "
                f"alpha={gamma:.3g}: this is the interpolation peak (double descent), where "
                "the test error is huge and a single random draw deviates wildly from its "
                "prediction. Increase alpha (or use alpha='auto') or move n_components away.",
                UserWarning,
                stacklevel=3,
            )

    def predict_risk(self, X, y):
        """Deterministic equivalents of the test and train MSE at ``(alpha_, n_components)``.

        They describe the average over the random draw of the features and do not use the
        fitted draw (the same for every ``random_state``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Test inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Test targets.

        Returns
        -------
        risk : dict of float
            ``test_mse`` (= ``bias + variance``), ``train_mse``, ``bias`` (the test error of
            kernel ridge with kernel ``Phi`` and ridge ``effective_alpha``), ``variance`` (the
            finite-width term) and ``effective_alpha``; MSEs averaged over targets.
        """
        check_is_fitted(self)
        X, y = self._check_labelled(X, y)
        if y is None:
            raise ValueError("predict_risk needs the test targets y.")
        ops = get_ops(resolve_device(self.device, at_predict=True), np.float64)
        if self._is_rff():
            kern, pt = self._rff_state(ops)
            self._warn_peak(_rff.rff_interpolation_peak(pt, self.alpha_, self.n_components),
                            pt.rank, self.alpha_, self.n_components)
            res = _rff.rff_point_errors(kern, pt, test=self._rff_test(ops, X, y))
            return {key: float(res[key]) for key in
                    ("test_mse", "train_mse", "bias", "variance", "effective_alpha")}
        spec = self._spectrum(ops)
        self._warn_peak(_de.interpolation_peak(spec, self.alpha_, self.n_components), spec.rank,
                        self.alpha_, self.n_components)
        test = self._test_projection(ops, spec, X, y)
        res = _de.risk_grid(spec, [self.alpha_], self.n_components, test=test, loo=False,
                            gcv=False)
        return {
            "test_mse": float(res["test_mse"][0]),
            "train_mse": float(res["train_mse"][0]),
            "bias": float(res["bias"][0]),
            "variance": float(res["variance"][0]),
            "effective_alpha": float(res["effective_alpha"][0]),
        }

    def risk_path(self, alphas, X=None, y=None, *, n_components=None):
        """Predicted errors over a grid of ridges (and widths) from one eigendecomposition.

        Parameters
        ----------
        alphas : array-like of shape (n_alphas,)
            Ridges ``gamma >= 0`` (papers' scale, like ``alpha``).
        X : {array-like, sparse matrix} of shape (n_samples, n_features), default=None
            Test inputs: adds ``variance`` (it needs no labels).
        y : array-like of shape (n_samples,) or (n_samples, n_targets), default=None
            Test targets (with ``X``): adds ``bias`` and ``test_mse``.
        n_components : int or array-like of int, default=None
            Widths; ``None`` means ``self.n_components``. The width axis costs nothing extra
            (except with ``activation="rff"``, where each width is its own solve).

        Returns
        -------
        path : dict of ndarray
            ``alpha``, ``n_components``, and arrays of shape (n_alphas,) for a scalar width,
            (n_widths, n_alphas) otherwise: ``train_mse``, ``loo_mse`` (RMT leave-one-out),
            ``gcv_mse`` (RMT-GCV), ``effective_alpha``, ``dof``; with ``X`` also
            ``variance``; with ``X`` and ``y`` also ``bias`` and ``test_mse``. The criteria are
            NaN at ``alpha = 0``. With ``activation="rff"`` also ``block_ratio``.

        Notes
        -----
        With ``activation="rff"`` each (alpha, width) point is its own solve of a few
        eigendecompositions (warm-started along the sorted alphas, ``rmt_ridge.md`` §7), not a
        share of one: use about 25 alphas, and few widths.
        """
        check_is_fitted(self)
        alphas = np.asarray(alphas, dtype=np.float64)
        if alphas.ndim == 0:
            alphas = alphas.reshape(1)
        if alphas.ndim != 1 or alphas.size == 0:
            raise ValueError("alphas must be a non-empty 1-D array of ridges >= 0.")
        if not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
            raise ValueError("alphas must be finite and >= 0.")
        nc = self.n_components if n_components is None else n_components
        nc_arr = np.asarray(nc)
        if nc_arr.ndim > 1 or nc_arr.size == 0:
            raise ValueError("n_components must be a positive integer or a 1-D array of them.")
        if not np.all(np.isfinite(nc_arr.astype(np.float64))) or np.any(nc_arr < 1):
            raise ValueError(f"n_components must be >= 1, got {nc!r}.")
        if y is not None and X is None:
            raise ValueError("risk_path needs X together with y (the test inputs).")
        ops = get_ops(resolve_device(self.device, at_predict=True), np.float64)
        if self._is_rff():
            return self._rff_risk_path(ops, alphas, X, y, nc_arr)
        test = None
        if X is not None:
            X, y = self._check_labelled(X, y)
        spec = self._spectrum(ops)
        if X is not None:
            test = self._test_projection(ops, spec, X, y)
        widths = float(nc_arr) if nc_arr.ndim == 0 else nc_arr.astype(np.float64)
        res = _de.risk_grid(spec, alphas, widths, test=test, loo=True, gcv=True)
        with np.errstate(invalid="ignore"):
            zero = alphas == 0
            for key in ("loo_mse", "gcv_mse"):
                res[key] = np.where(zero, np.nan, res[key])
        out = {"alpha": alphas.copy(), "n_components": nc_arr.copy()}
        for key in ("train_mse", "loo_mse", "gcv_mse", "effective_alpha", "dof"):
            out[key] = res[key]
        for key in ("variance", "bias", "test_mse"):
            if key in res:
                out[key] = res[key]
        return out

    def _rff_risk_path(self, ops, alphas, X, y, nc_arr):
        if X is not None:
            X, y = self._check_labelled(X, y)
        kern, pt = self._rff_state(ops)
        test = None if X is None else self._rff_test(ops, X, y)
        total = nc_arr.astype(np.float64)
        n_cos = np.ceil(total / 2.0)
        n_sin = total - n_cos
        if nc_arr.ndim == 0:
            n_cos, n_sin = float(n_cos), float(n_sin)
        res = _rff.rff_risk_grid(kern, alphas, n_cos, n_sin=n_sin, test=test, loo=True,
                                 gcv=True, ops=ops, r0=pt.r if pt.r > 0 else None)
        out = {"alpha": alphas.copy(), "n_components": nc_arr.copy()}
        for key in ("train_mse", "loo_mse", "gcv_mse", "effective_alpha", "dof"):
            out[key] = res[key]
        with np.errstate(invalid="ignore"):
            for key in ("loo_mse", "gcv_mse"):
                out[key] = np.where(alphas == 0, np.nan, out[key])
        out["block_ratio"] = res["r"]
        for key in ("variance", "bias", "test_mse"):
            if key in res:
                out[key] = res[key]
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        return tags


def _centred_moments(X):
    """Column means and ``tau = (1/n) sum ||x_i - mean||^2`` (numpy or CSR, float64)."""
    n = X.shape[0]
    if sp.issparse(X):
        Xd = X.astype(np.float64)
        mean = np.asarray(Xd.mean(axis=0)).ravel()
        total = float(Xd.multiply(Xd).sum()) / n - float(mean @ mean)
    else:
        Xd = np.asarray(X, dtype=np.float64)
        mean = Xd.mean(axis=0)
        D = Xd - mean
        total = float(np.einsum("ij,ij->", D, D)) / n
    if not np.isfinite(total) or total <= 1e-300:
        # identical rows: nothing to scale (the standardised data is 0)
        total = 1.0
    return mean, total
