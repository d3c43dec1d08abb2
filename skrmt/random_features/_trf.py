"""TernaryRandomFeatures: sparse ternary weights and a moment-matched ternary activation."""

import math
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._base import FeatureMapMixin
from .._backend import DeviceCache, get_ops, resolve_device
from .._theory._activations import ACTIVATION_NAMES
from .._theory._ck import data_tau
from .._theory._ternary import match_ternary, ternary_from_thresholds
from ..kernels._theory_kernel import TheoryKernel
from ..utils._sklearn_compat import Interval, StrOptions, _fit_context
from ._ternary_kernels import prepare_ternary_kernel, ternary_codes
from ._ternary_matrix import TernaryMatrix, draw_ternary

# Below this many nonzeros per weight row the weights are too few for universality (trf.md §6).
MIN_NONZEROS_PER_ROW = 20


def _moment_fields(mom):
    return {k: float(getattr(mom, k)) for k in ("m0", "m1", "m2", "d0", "d1", "d2", "var")}


class TernaryRandomFeatures(FeatureMapMixin, BaseEstimator):
    """Sparse ternary random features matching the kernel of a target activation.

    Each feature is ``z_k(x) = (c * sigma_ter(w_k^T x / sqrt(p (1 - sparsity))) + o) / sqrt(N)``
    with ternary weights ``w_k`` in {-1, 0, +1} (a fraction ``sparsity`` of zeros) and the
    ternary activation ``sigma_ter(t) = 1{t > s+} - 1{t < s-}``. The thresholds ``(s-, s+)``,
    the scale ``c`` and the offset ``o`` are solved so that the ternary map has the same
    Gaussian moments ``m0, m1, m2`` as the target activation at the data variance ``tau_``;
    random matrix theory then says that ``Z Z^T`` approximates the target's random-feature
    kernel (``kernel_``) up to a multiple ``Delta`` of the identity, with no multiplication in
    the projection and ~2 bits per weight.

    Read more in the design note ``trf.md``.

    Parameters
    ----------
    n_components : int, default=1000
        Number of features ``N``.
    activation : str or callable, default="relu"
        Target activation whose kernel is matched: a registered name (``"relu"``, ``"tanh"``,
        ``"erf"``, ``"gelu"``, ``"swish"``, ``"sigmoid"``, ``"sin"``, ``"leaky_relu"``,
        ``"linear"``, ``"rbf"`` ...) or a vectorised callable. Even activations (``"abs"``,
        ``"cos"``, ``"quadratic"``, ...: ``E sigma'(u) = 0``) cannot be matched by any ternary
        map and raise a ``ValueError`` in ``fit``.
    sparsity : float in [0, 1), default=0.0
        Fraction of zero weights.
    thresholds : "auto" or pair of float, default="auto"
        ``"auto"`` solves ``(s-, s+)`` from the target's moments, choosing among the matched
        maps the one with the least diagonal mismatch. A pair ``(s-, s+)`` (in units of the
        unit-variance pre-activation, ``s- <= s+``) is used as given; ``c`` and ``o`` are then
        fitted to ``m1`` and ``m0`` and a warning says when ``d2`` is not matched.
    random_state : int, RandomState instance or None, default=None
        Seed of the weight draw (one uniform per weight, row-major).
    device : str or None, default=None
        ``None``/``"numpy"``: numpy and a multiplication-free compiled kernel; ``"cpu"``,
        ``"cuda"``, ``"cuda:k"``, ``"auto"``: torch on that device. Input and output are numpy.

    Attributes
    ----------
    thresholds_ : tuple of float
        ``(s-, s+)`` in units of the unit-variance pre-activation.
    scale_ : float
        Output level ``c``.
    offset_ : float
        Output shift ``o`` (so that ``Z Z^T`` approximates the *uncentred* target Gram).
    tau_ : float
        ``||X||_F^2 / (n p)`` on the training data; frozen at fit.
    coefficients_ : dict
        ``"target"`` and ``"ternary"`` moments (``m0, m1, m2, d0, d1, d2, var``; the ternary
        entry includes ``c`` and ``o``) and ``"delta"``, the diagonal mismatch
        ``d0_ternary - d0_target``: kernel ridge on these features with ridge ``lambda`` acts
        like the target kernel with ridge ``lambda + delta``.
    components_ : TernaryMatrix of shape (n_components, n_features_in_)
        The ternary weights, held as +1/-1 index patterns (``uint16`` indices, no values) or as
        two bit planes, whichever is smaller; ``np.asarray(components_)`` gives an int8 array.
    kernel_ : TheoryKernel
        The limiting kernel of the target activation (unfitted: call ``kernel_(X, Y)``).
    memory_bytes_ : int
        Stored-model bytes under the project's memory convention (sign bit plus column
        index per nonzero, or 2 bits per weight, whichever is smaller).
    device_ : str
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when ``X`` has string feature names.

    See Also
    --------
    LowPrecisionRFF : Quantized random Fourier features (baseline).
    sklearn.kernel_approximation.RBFSampler : Float random Fourier features.
    TheoryKernel : The kernel these features approximate.

    Notes
    -----
    Standardise the inputs (``StandardScaler``) upstream: the theory assumes bounded
    per-sample norms, and for non-homogeneous activations the data scale acts as a bandwidth.
    The diagonal mismatch ``delta`` is an implicit extra ridge when positive.

    References
    ----------
    .. [1] H. Tiomoko Ali, Z. Liao, R. Couillet, "Random matrices in service of ML
       footprint: ternary random features with no performance loss", ICLR 2022.
    .. [2] Z. Liao, R. Couillet, "On the spectrum of random features maps of high
       dimensional data", ICML 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from skrmt import TernaryRandomFeatures
    >>> X = np.random.RandomState(0).randn(100, 500)
    >>> trf = TernaryRandomFeatures(2000, sparsity=0.9, random_state=0).fit(X)
    >>> Z = trf.transform(X)
    >>> Z.shape
    (100, 2000)
    >>> K = trf.kernel_(X)
    >>> bool(np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K) < 0.1)
    True
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(ACTIVATION_NAMES), callable],
        "sparsity": [Interval(Real, 0, 1, closed="left")],
        "thresholds": [StrOptions({"auto"}), "array-like"],
        "random_state": ["random_state"],
        "device": [None, str],
    }

    def __init__(
        self,
        n_components=1000,
        *,
        activation="relu",
        sparsity=0.0,
        thresholds="auto",
        random_state=None,
        device=None,
    ):
        self.n_components = n_components
        self.activation = activation
        self.sparsity = sparsity
        self.thresholds = thresholds
        self.random_state = random_state
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Estimate ``tau_``, solve the thresholds and draw the ternary weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (standardised, ideally).
        y : None
            Ignored.

        Returns
        -------
        self : TernaryRandomFeatures
        """
        X = self._validate_X(X, reset=True)
        rng = check_random_state(self.random_state)
        self.device_ = resolve_device(self.device)
        n_features = X.shape[1]
        tau = data_tau(X)
        if not np.isfinite(tau) or tau <= 0:
            raise ValueError(
                "X must not be identically zero: tau_ = ||X||^2/(n p) must be positive."
            )
        if (1.0 - self.sparsity) * n_features < MIN_NONZEROS_PER_ROW:
            warnings.warn(
                f"sparsity={self.sparsity} leaves (1 - sparsity) * n_features = "
                f"{(1.0 - self.sparsity) * n_features:.1f} nonzero weights per feature on "
                f"average (< {MIN_NONZEROS_PER_ROW}): the kernel equivalence degrades.",
                UserWarning,
                stacklevel=2,
            )
        label = self.activation if isinstance(self.activation, str) else None
        if isinstance(self.thresholds, str):
            match = match_ternary(self.activation, tau, activation_label=label)
        else:
            pair = np.asarray(self.thresholds, dtype=np.float64)
            if pair.shape != (2,) or not np.all(np.isfinite(pair)) or pair[0] > pair[1]:
                raise ValueError(
                    "thresholds must be 'auto' or a finite pair (s_minus, s_plus) with "
                    f"s_minus <= s_plus, got {self.thresholds!r}."
                )
            match = ternary_from_thresholds(
                self.activation, tau, float(pair[0]), float(pair[1]), activation_label=label
            )
        self.tau_ = float(tau)
        self.thresholds_ = (match.s_minus, match.s_plus)
        self.scale_ = match.scale
        self.offset_ = match.offset
        ternary = _moment_fields(match.ternary)
        ternary.update(c=match.scale, o=match.offset)
        self.coefficients_ = {
            "target": _moment_fields(match.target),
            "ternary": ternary,
            "delta": match.delta,
        }
        self.components_ = TernaryMatrix(
            draw_ternary(rng, self.n_components, n_features, self.sparsity)
        )
        self.kernel_ = TheoryKernel(model="ck", activation=self.activation, form="limit")
        self.memory_bytes_ = math.ceil(self.components_.charged_bits / 8)
        self._n_features_out = self.n_components
        self._device_cache = DeviceCache()
        return self

    def transform(self, X):
        """Ternary features of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Values ``(o - c)/sqrt(N)``, ``o/sqrt(N)`` or ``(o + c)/sqrt(N)``, in the dtype of
            ``X``; ``Z @ Z.T`` approximates ``kernel_(X)`` plus ``delta`` on the diagonal.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        ops = get_ops(resolve_device(self.device, at_predict=True), X.dtype)
        kappa = math.sqrt(X.shape[1] * (1.0 - self.sparsity))
        low, high = kappa * self.thresholds_[0], kappa * self.thresholds_[1]
        root_n = math.sqrt(self.n_components)
        levels = tuple(v / root_n for v in (self.offset_ - self.scale_, self.offset_,
                                            self.offset_ + self.scale_))
        if ops.is_torch:
            W = self._device_cache.get(
                ops, "components", lambda: ops.asarray(self.components_.toarray()).T.contiguous()
            )
            lv = [ops.scalar(v) for v in levels]

            def block(Xb):
                T = ops.matmul(Xb, W)
                return ops.xp.where(T < low, lv[0], ops.xp.where(T > high, lv[2], lv[1]))

        else:
            plan = self._device_cache.get(
                ops, "kernel", lambda: prepare_ternary_kernel(*self.components_.patterns(),
                                                              X.shape[1])
            )

            def block(Xb, out):
                ternary_codes(np.ascontiguousarray(Xb), plan, low, high, levels, out=out)

        return ops.map_rows(block, X, self.n_components, writes_out=not ops.is_torch)
