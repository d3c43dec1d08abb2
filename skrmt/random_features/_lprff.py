"""Low-precision random Fourier features (LP-RFF), the quantized RFF baseline."""

import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._base import FeatureMapMixin
from .._backend import DeviceCache, get_ops, resolve_device
from .._backend import _counter_rng
from .._backend._counter_rng import (
    C1,
    MASK32,
    U_SCALE,
    _mulmod32,
    counter_uniform,
    mix32,
    row_keys,
)
from ..utils._sklearn_compat import Interval, StrOptions, _fit_context


def quantize(ops, v, u, scale, step, n_levels):
    """Unbiased stochastic rounding of ``v`` in [-scale, scale] onto ``n_levels + 1`` levels.

    Parameters
    ----------
    ops : NumpyOps or TorchOps
        Array namespace.
    v : float array
        Values to round (clamped to [-scale, scale] first, against float overshoot).
    u : float64 array, same shape as ``v``
        Dither in [0, 1).
    scale : float
        rho; the levels are ``-scale + k * step``, k = 0..n_levels.
    step : float
        r = 2 rho / n_levels.
    n_levels : int
        L = 2**b - 1 intervals.

    Returns
    -------
    codes : int64 array
        k = clip(floor(t + u), 0, L) with t = (v + rho) / r, computed as floor(t) + [f + u >= 1]
        (f = t - floor(t), exact) so that large t loses no dither bits.
    """
    xp = ops.xp
    v = ops.asarray(v, dtype=np.float64)
    v = xp.clip(v, -scale, scale)
    t = (v + scale) / step
    floor_t = xp.floor(t)
    up = (t - floor_t) + u >= 1.0
    codes = ops.asarray(floor_t, dtype=np.int64) + ops.asarray(up, dtype=np.int64)
    return xp.clip(codes, 0, n_levels)


_FUSED = []


def _fused_quantizer():
    """Compiled ``cos -> dither -> stochastic rounding`` for the numpy path, or None.

    The same arithmetic as ``block_codes`` + :func:`quantize` + ``counter_uniform`` (float
    addition in the projection's dtype, cosine and rounding in float64, the murmur3 counter
    hash in 64-bit integers masked to 32), fused into one pass: numpy needs about a dozen
    temporaries of the output's size and spends 6-8x RBFSampler's time there.
    """
    if not _FUSED:
        if _counter_rng.compiled_index_hash() is None:  # pragma: no cover - numba is a dependency
            _FUSED.append(None)
            return None
        import numba

        @numba.njit(cache=True, parallel=True)
        def fused(proj, offset, base, scale, step, n_levels, out):
            for i in numba.prange(proj.shape[0]):
                b = np.uint64(base[i])
                for j in range(proj.shape[1]):
                    a = proj[i, j] + offset[j]
                    v = scale * np.cos(np.float64(a))
                    v = min(max(v, -scale), scale)
                    t = (v + scale) / step
                    floor_t = np.floor(t)
                    u = np.float64(_counter_rng.index_hash(b, j) >> np.uint64(8)) * U_SCALE
                    code = np.int64(floor_t)
                    if (t - floor_t) + u >= 1.0:
                        code += 1
                    out[i, j] = min(max(code, 0), n_levels)

        _FUSED.append(fused)
    return _FUSED[0]


def _circulant_projection(ops, X, g_hat, signs, n_components):
    """Rows of ``X @ W`` for W built from B stacked blocks circ(g_k) diag(s_k), truncated.

    ``g_hat`` is rfft(g) of shape (B, d // 2 + 1); ``signs`` is (B, d) of +-1 in X's dtype.
    circ(g) v = irfft(rfft(g) * rfft(v)) (circular convolution), so the (n, B, d) product
    costs O(n m log d) instead of O(n m d).
    """
    xp = ops.xp
    d = X.shape[1]
    signed = X[:, None, :] * signs[None, :, :]
    proj = xp.fft.irfft(xp.fft.rfft(signed) * g_hat[None, :, :], d)
    return proj.reshape(X.shape[0], -1)[:, :n_components]


class LowPrecisionRFF(FeatureMapMixin, BaseEstimator):
    """Low-precision random Fourier features of the RBF kernel (LP-RFF).

    Random Fourier features ``z_j(x) = rho * cos(w_j^T x + a_j)``, ``rho = sqrt(2 / m)``,
    whose inner products approximate ``k(x, y) = exp(-gamma ||x - y||^2)``, each quantized to
    ``n_bits`` bits by unbiased stochastic rounding onto the ``2**n_bits`` levels
    ``-rho + k * r``, ``r = 2 rho / (2**n_bits - 1)``. This is the baseline of Zhang et al.
    (2019), used to compare memory against accuracy.

    Parameters
    ----------
    n_components : int, default=1000
        m, the number of features.
    gamma : float, default=1.0
        Kernel parameter, ``k(x, y) = exp(-gamma ||x - y||^2)`` (gamma = 1 / (2 sigma^2)).
    n_bits : int, default=8
        b, bits per feature, in [1, 32]. b = 1 gives features +-rho only.
    projection : {"gaussian", "circulant"}, default="gaussian"
        ``"gaussian"``: the dense (d, m) projection drawn exactly as scikit-learn's
        :class:`~sklearn.kernel_approximation.RBFSampler` draws it.
        ``"circulant"``: the LP-RFF paper's structured projection, ``ceil(m / d)`` stacked
        blocks ``circ(g) diag(s)`` with ``g ~ N(0, 2 gamma I_d)`` and Rademacher ``s``, rows
        truncated to m, applied by FFT; every row of W is still ``N(0, 2 gamma I_d)``, so the
        kernel estimate stays unbiased, at O(m) stored parameters instead of O(m d).
    random_state : int, RandomState instance or None, default=None
        Drives the projection, the offsets and the seed of the rounding noise.
    device : str or None, default=None
        ``None`` or ``"numpy"``: numpy; ``"cpu"``, ``"cuda"``, ``"cuda:k"``, ``"auto"``: torch.
        Every backend gives the same codes, up to rare one-level flips where the unquantized
        values differ in their last bits.

    Attributes
    ----------
    random_weights_ : ndarray of shape (n_features_in_, n_components)
        The projection W (``projection="gaussian"`` only); float32 if fitted on float32.
    circulant_vectors_ : ndarray of shape (n_blocks_, n_features_in_), dtype float32
        The Gaussian vectors g of the circulant blocks (``projection="circulant"`` only).
    circulant_signs_ : ndarray of dtype uint8
        The Rademacher vectors s of the circulant blocks, bit-packed (``np.packbits`` of
        ``s > 0``, row-major over ``(n_blocks_, n_features_in_)``; ``projection="circulant"``
        only).
    n_blocks_ : int
        Number of circulant blocks, ``ceil(n_components / n_features_in_)`` (circulant only).
    random_offset_ : ndarray of shape (n_components,)
        The phases a, uniform on [0, 2 pi); float32 if fitted on float32.
    scale_ : float
        rho = sqrt(2 / n_components).
    step_ : float
        r = 2 rho / (2**n_bits - 1), the distance between levels.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string feature names.
    device_ : str
        The device resolved at fit time.
    memory_bytes_ : int
        Stored-model bytes under the project's convention (:mod:`skrmt.utils`): 32 bits per
        real parameter. Gaussian: 32 m (d + 1) bits (W and offsets). Circulant:
        32 B d (g) + B d (signs, 1 bit each) + 32 m (offsets) bits, B = ``n_blocks_``.
        The b bits per feature count in the footprint (:func:`skrmt.utils.memory_report`),
        not in the stored model.

    See Also
    --------
    sklearn.kernel_approximation.RBFSampler : The full-precision map (same W for the same seed).
    sklearn.kernel_approximation.Nystroem : Nyström features, the other classical baseline.
    TernaryRandomFeatures : Ternary weights and ternary features.
    skrmt.utils.memory_report : Parameter, feature and readout bits of any feature map.

    Notes
    -----
    **Fit draw order** (part of the contract): ``rs = check_random_state(random_state)``;
    gaussian: ``random_weights_ = sqrt(2 gamma) * rs.normal(size=(d, m))`` then
    ``random_offset_ = rs.uniform(0, 2 pi, size=m)`` (bit for bit ``RBFSampler``'s arrays);
    circulant: ``g = sqrt(2 gamma) * rs.normal(size=(B, d))`` (stored as float32), then
    ``s = 2 * rs.randint(0, 2, size=(B, d)) - 1``, then the offsets as above. Both then draw
    the rounding-noise seed ``rs.randint(2**31)``. Block k maps x to
    ``circ(g_k) (s_k * x)`` with ``circ(g)`` the circulant matrix whose first column is g,
    i.e. ``W[i, k d + l] = g_k[(l - i) mod d] * s_k[i]`` in the (d, m) orientation.

    **Quantizer.** With ``t = (v + rho) / r`` and ``f = t - floor(t)``, the code is
    ``floor(t) + 1`` with probability f, so ``E[q] = v`` and ``Var[q] = r^2 f (1 - f)``; the
    mean squared quantization error per row is ``2 c_b / (2**b - 1)**2`` with c_b between 1/2
    (b = 1) and 2/3 (large b). The Gram of quantized training features is therefore biased by
    a diagonal (an implicit ridge); cross Grams between distinct rows stay unbiased.

    **Deterministic noise.** The dither is counter-based and keyed by the row's content
    (``skrmt._backend._counter_rng``): the output is a pure function of the fitted model and
    the row, the same whatever the batch, the row order, sparse or dense storage, pickling or
    the backend. Identical rows get identical codes; distinct rows (train or test) get
    independent noise. Its resolution is 2**-24, so ``|E[q] - v| <= r 2**-24``.

    References
    ----------
    .. [1] J. Zhang, A. May, T. Dao, C. Ré, "Low-Precision Random Fourier Features for
       Memory-Constrained Kernel Approximation", AISTATS 2019, arXiv:1811.00155.
    .. [2] A. Rahimi, B. Recht, "Random Features for Large-Scale Kernel Machines", NIPS 2007.
    .. [3] Q. Le, T. Sarlós, A. Smola, "Fastfood: approximating kernel expansions in
       loglinear time", ICML 2013 (structured projections).

    Examples
    --------
    >>> import numpy as np
    >>> from skrmt import LowPrecisionRFF
    >>> X = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    >>> lp = LowPrecisionRFF(n_components=8, gamma=0.5, n_bits=1, random_state=0).fit(X)
    >>> Z = lp.transform(X)
    >>> Z.shape
    (4, 8)
    >>> bool(np.allclose(np.abs(Z), lp.scale_))
    True
    >>> lp.memory_bytes_
    96
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "gamma": [Interval(Real, 0, None, closed="neither")],
        "n_bits": [Interval(Integral, 1, 32, closed="both")],
        "projection": [StrOptions({"gaussian", "circulant"})],
        "random_state": ["random_state"],
        "device": [None, str],
    }

    def __init__(
        self,
        n_components=1000,
        *,
        gamma=1.0,
        n_bits=8,
        projection="gaussian",
        random_state=None,
        device=None,
    ):
        self.n_components = n_components
        self.gamma = gamma
        self.n_bits = n_bits
        self.projection = projection
        self.random_state = random_state
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Draw the projection, the offsets and the seed of the rounding noise.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; only its shape and dtype are used.
        y : None
            Ignored.

        Returns
        -------
        self : LowPrecisionRFF
            The fitted transformer.
        """
        X = self._validate_X(X, reset=True)
        rs = check_random_state(self.random_state)
        self.device_ = resolve_device(self.device)
        d = X.shape[1]
        m = self.n_components
        std = (2.0 * self.gamma) ** 0.5
        if self.projection == "gaussian":
            self.random_weights_ = std * rs.normal(size=(d, m))
        else:
            n_blocks = -(-m // d)
            self.n_blocks_ = n_blocks
            self.circulant_vectors_ = (std * rs.normal(size=(n_blocks, d))).astype(np.float32)
            signs = 2 * rs.randint(0, 2, size=(n_blocks, d)) - 1
            self.circulant_signs_ = np.packbits(signs > 0, axis=None)
        self.random_offset_ = rs.uniform(0, 2 * np.pi, size=m)
        self._rounding_seed = int(rs.randint(2**31))
        if X.dtype == np.float32:
            if self.projection == "gaussian":
                self.random_weights_ = self.random_weights_.astype(np.float32)
            self.random_offset_ = self.random_offset_.astype(np.float32)
        self.scale_ = math.sqrt(2.0 / m)
        self.step_ = 2.0 * self.scale_ / (2**self.n_bits - 1)
        self._n_features_out = m
        self._device_cache = DeviceCache()

        from ..utils._memory import lprff_param_bits

        self.memory_bytes_ = math.ceil(lprff_param_bits(m, d, self.projection) / 8)
        return self

    def _signs(self):
        """The circulant sign vectors unpacked to +-1, shape (n_blocks_, n_features_in_)."""
        d = self.n_features_in_
        bits = np.unpackbits(self.circulant_signs_, count=self.n_blocks_ * d)
        return (2 * bits.astype(np.int8) - 1).reshape(self.n_blocks_, d)

    def _dense_weights(self):
        """The (d, m) projection as a dense float64 array (reference and tests)."""
        if self.projection == "gaussian":
            return np.asarray(self.random_weights_, dtype=np.float64)
        d, m, n_blocks = self.n_features_in_, self.n_components, self.n_blocks_
        g = self.circulant_vectors_.astype(np.float64)
        s = self._signs().astype(np.float64)
        rows, cols = np.meshgrid(np.arange(d), np.arange(d), indexing="ij")
        # circ(g)[l, i] = g[(l - i) mod d]; W[:, block] = (circ(g) diag(s))^T
        blocks = [(g[k][(cols - rows) % d] * s[k][:, None]) for k in range(n_blocks)]
        return np.concatenate(blocks, axis=1)[:, :m]

    def _codes(self, X):
        """Validated X -> (int64 codes as numpy, ops)."""
        ops = get_ops(resolve_device(self.device, at_predict=True), X.dtype)
        cache = self._device_cache
        offset = cache.get(ops, "offset", lambda: ops.asarray(self.random_offset_))
        m = self.n_components
        n_levels = 2**self.n_bits - 1
        seed = self._rounding_seed
        if self.projection == "gaussian":
            W = cache.get(ops, "weights", lambda: ops.asarray(self.random_weights_))

            def project(xb):
                return ops.matmul(xb, W)

        else:
            g_hat = cache.get(
                ops, "g_hat", lambda: ops.xp.fft.rfft(ops.asarray(self.circulant_vectors_))
            )
            signs = cache.get(ops, "signs", lambda: ops.asarray(self._signs()))

            def project(xb):
                return _circulant_projection(ops, xb, g_hat, signs, m)

        fused = None if ops.is_torch else _fused_quantizer()
        if fused is not None:

            def block_codes_into(xb, out):
                keys = row_keys(ops, xb, seed)
                base = mix32((_mulmod32(keys, C1) + seed) & MASK32)
                proj = np.ascontiguousarray(project(xb))
                fused(proj, offset, base, float(self.scale_), float(self.step_), n_levels, out)

            return ops.map_rows(
                block_codes_into, X, m, bytes_per_row=(X.shape[1] + 2 * m) * X.dtype.itemsize
                + 8 * m, out_dtype=np.int64, writes_out=True
            )

        def block_codes(xb):
            proj = project(xb) + offset
            # cos in float64 (float32 inputs too): backends then agree to the last bit far
            # more often, and the quantizer works in float64 anyway.
            v = self.scale_ * ops.xp.cos(ops.asarray(proj, dtype=np.float64))
            u = counter_uniform(ops, row_keys(ops, xb, seed), m, seed)
            return quantize(ops, v, u, self.scale_, self.step_, n_levels)

        d = X.shape[1]
        # input, projection and about five float64/int64 temporaries of width m
        bytes_per_row = (d + 2 * m) * X.dtype.itemsize + 6 * m * 8
        codes = ops.map_rows(block_codes, X, m, bytes_per_row=bytes_per_row, out_dtype=np.int64)
        return codes

    def transform(self, X):
        """Quantized random Fourier features of X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Values ``-scale_ + k * step_``, k integer in [0, 2**n_bits - 1], in X's dtype
            (float32 stays float32, anything else becomes float64).
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        codes = self._codes(X)
        Z = codes * self.step_ - self.scale_
        return Z.astype(X.dtype, copy=False)

    def transform_codes(self, X):
        """The integer codes of :meth:`transform`, as stored in b bits per feature.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_components)
            k in [0, 2**n_bits - 1]; dtype uint8 (n_bits <= 8), uint16 (<= 16) or uint32.
        low : float
            The lowest level, ``-scale_``.
        step : float
            The level spacing ``step_``; ``transform(X) == low + codes * step``.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        dtype = np.uint8 if self.n_bits <= 8 else np.uint16 if self.n_bits <= 16 else np.uint32
        return self._codes(X).astype(dtype), -self.scale_, self.step_
