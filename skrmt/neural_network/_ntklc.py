"""NTKLCClassifier: a deep random network compressed to sparse ternary weights and quantized
activations whose CK/NTK match the dense network's (design note ``ntk_lc.md``).

Only the linear softmax readout is trained (as in the NTK-LC paper's code): the hidden layers
are random and frozen, so the classifier is a deep random-feature model.

Forward pass of the compressed network (``ntk_lc.md`` §4.2 and §9): layer 1 sums input entries
(``T x``, additions and subtractions only, ``T`` ternary); every layer ``l`` emits a *level code*
``c in {0, ..., K_l - 1}`` per neuron (``K_l = 2^bits`` levels of its staircase, or the 3-level
1-bit family ``a 1{t < s1} + a 1{t > s2}``). From layer 2 on the input of a neuron is
``h_j = (L[c_j] - m) / sqrt(d)``, and ``L[c] = L_0 + sum_i J_i 1{c >= i}`` (``J_i`` the jumps), so

    z_k = (sum_i J_i (T b_i)_k + (L_0 - m) r_k) / sqrt((1 - eps) d),   b_i = 1{c >= i},

with ``r = T 1``. The counts ``(T b_i)_k`` are integers of magnitude <= d: one float32 product per
indicator vector computes them exactly whatever the summation order, and the code is
``#{j : sum_i J_i (T b_i)_k > theta_jk}`` with the per-neuron thresholds
``theta_jk = s_j sqrt((1 - eps) d) - (L_0 - m) r_k``, evaluated by the same float64 operations
on every backend, so hidden codes from layer 2 on are identical on numpy and torch.
"""

import math
import time
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from .._backend import (
    DeviceCache,
    as_numpy_input,
    get_ops,
    host_ops,
    resolve_device,
    torch_available,
    torch_num_threads,
)
from .._base import FLOAT_DTYPES
from .._theory._activations import ACTIVATION_NAMES, StepFunction, resolve_activation
from .._theory._ck_ntk import deep_coefficients
from .._theory._ntklc_matching import check_matchable, match_network
from ..kernels._theory_kernel import TheoryKernel
from ..random_features._ternary_matrix import TernaryMatrix, draw_ternary
from ..utils._memory import deep_ternary_memory_report
from ..utils._sklearn_compat import Interval, StrOptions, _fit_context, validate_data

# Below this many nonzeros per weight row sparse universality degrades (ntk_lc.md §3.6, §5).
MIN_NONZEROS_PER_ROW = 200
# Readout training (ntk_lc.md §4.3): MLPClassifier's early-stopping rule and Adam constants.
VALIDATION_FRACTION = 0.1
N_ITER_NO_CHANGE = 10
TOL = 1e-4
ADAM_BETA1, ADAM_BETA2, ADAM_EPS = 0.9, 0.999, 1e-8
READOUT_DTYPE = np.float32
# The input of every fit is normalised to v_0 = 1 (ntk_lc.md §1), so the matched chain
# depends only on (activations, depth, bits) and is memoised by the matching solver.
V0 = 1.0


# ---------------------------------------------------------------------------------- parameters
def _layer_sizes(hidden_layer_sizes):
    if isinstance(hidden_layer_sizes, Integral) and not isinstance(hidden_layer_sizes, bool):
        sizes = [hidden_layer_sizes]
    else:
        try:
            sizes = list(hidden_layer_sizes)
        except TypeError:
            sizes = None
    ok = (
        sizes is not None
        and len(sizes) > 0
        and all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in sizes)
    )
    if not ok:
        raise ValueError(
            "hidden_layer_sizes must be a positive integer or a non-empty sequence of positive "
            f"integers, got {hidden_layer_sizes!r}."
        )
    return tuple(int(s) for s in sizes)


def _layer_activations(activation, n_layers):
    names = [activation] * n_layers if isinstance(activation, str) else list(activation)
    if len(names) != n_layers:
        raise ValueError(
            f"activation must be one name or one name per hidden layer; got {len(names)} "
            f"names for {n_layers} layer(s)."
        )
    for name in names:
        if not isinstance(name, str) or name not in ACTIVATION_NAMES:
            raise ValueError(
                f"activation: unknown activation {name!r}; accepted names: "
                f"{sorted(ACTIVATION_NAMES)}."
            )
    return tuple(resolve_activation(name) for name in names)


def _resolve_fit_device(device):
    """``device=None`` means torch on the CPU for this torch-trained network (API.md)."""
    if device is None:
        if not torch_available():
            raise ImportError(
                "NTKLCClassifier trains its readout with PyTorch (device=None means torch on "
                "the CPU); install it with `pip install torch`, or use device='numpy'."
            )
        return resolve_device("cpu")
    return resolve_device(device)


def _resolve_predict_device(device):
    return resolve_device("cpu" if device is None else device, at_predict=True)


def _check_matchable(activations, bits):
    """The decision-table errors of ntk_lc.md §3.6, naming the ``activation`` parameter."""
    try:
        check_matchable(activations, bits)
    except ValueError as exc:
        msg = str(exc)
        if "activation" not in msg:
            msg = f"activation: {msg}"
        raise ValueError(msg) from exc


# ------------------------------------------------------------------------------- forward pass
class _StepLayer:
    """What the integer forward pass needs of one compressed layer (absolute thresholds)."""

    def __init__(self, weights, scale, thresholds, levels, center, v_out):
        self.weights = weights  # TernaryMatrix (d_l, d_{l-1})
        self.scale = float(scale)  # 1 / sqrt(1 - eps)
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.levels = np.asarray(levels, dtype=np.float64)
        self.center = float(center)
        self.v_out = float(v_out)

    @property
    def jumps(self):
        return np.diff(self.levels)


class _DenseLayer:
    def __init__(self, weights, activation, center, v_out):
        self.weights = weights  # float64 (d_l, d_{l-1})
        self.activation = activation
        self.center = float(center)
        self.v_out = float(v_out)


# Unit roundoff of float64: bounds the error of a float64 product in any summation order.
_U64 = 2.0**-53


def _ternary_host(cache, index, layer):
    """Host int8 copy of a layer's ternary matrix and its row sums ``r = T 1`` (float64)."""

    def make():
        dense = layer.weights.toarray()
        return dense, dense.sum(axis=1, dtype=np.int64).astype(np.float64)

    return cache.get(host_ops(), ("ternary", index), make)


def _theta_host(cache, index, layer, prev):
    """Per-neuron thresholds ``theta_jk = s_j sqrt((1 - eps) d) - (L'_0 - m') r_k`` (host,
    float64, shape (d_l, n_thresholds)). Computed once, on the host, so every backend
    compares against the same bits."""

    def make():
        _, row_sums = _ternary_host(cache, index, layer)
        unit = math.sqrt(layer.weights.shape[1]) / layer.scale  # sqrt((1 - eps) d_{l-1})
        shift = prev.levels[0] - prev.center
        return layer.thresholds[None, :] * unit - shift * row_sums[:, None]

    return cache.get(host_ops(), ("theta", index), make)


def _count_above(ops, A, thresholds):
    """Codes ``#{j : A > thresholds[j]}`` as uint8, one 2-D comparison per threshold.

    ``thresholds`` holds scalars (layer 1) or per-neuron columns of shape (n_neurons, n_thr)
    (layers >= 2), sorted along j.
    """
    per_neuron = getattr(thresholds, "ndim", 0) == 2
    n_thr = thresholds.shape[-1]
    if ops.is_torch:
        codes = ops.torch.zeros(A.shape, dtype=ops.torch.uint8, device=A.device)
    else:
        codes = np.zeros(A.shape, dtype=np.uint8)
    for j in range(n_thr):
        codes += A > (thresholds[:, j] if per_neuron else thresholds[j])
    return codes


def _on_device(ops, cache, key, make_host, dtype):
    """A host array, or its device copy kept in ``cache`` (torch), in ``dtype``."""
    if not ops.is_torch:
        return make_host()
    return cache.get(ops, key, lambda: ops.asarray(make_host(), dtype=dtype))


def _exact_sums(codes_rows, T_rows, jumps):
    """``sum_i J_i (T b_i)_k`` from integer counts, ``b_i = 1{c >= i}`` (host, float64).

    The counts are exact integers; the float64 combination runs in a fixed order. This is the
    definition every backend's codes agree with.
    """
    A = None
    for i, jump in enumerate(jumps, start=1):
        counts = np.einsum(
            "rj,rj->r", (codes_rows >= i).astype(np.int64), T_rows.astype(np.int64)
        ).astype(np.float64)
        A = jump * counts if A is None else A + jump * counts
    return A


def compressed_codes(ops, X, layers, cache=None, *, method="checked"):
    """Level codes of every hidden layer of a compressed network (``ntk_lc.md`` §4.2, §9).

    Parameters
    ----------
    ops : NumpyOps or TorchOps
    X : ndarray of shape (n_samples, n_features), float64
        Normalised input rows ``x~`` (mean squared norm ~ 1).
    layers : sequence of _StepLayer
    cache : DeviceCache, optional
        Keeps the torch device copies (int8 matrices, per-neuron thresholds) between calls.
        Host copies (an int8 matrix is 8 bits per weight, more than the compact storage
        charged by the memory convention) live only for the duration of the call.
    method : {"checked", "counts"}, default="checked"
        How layers >= 2 get ``A_k = sum_i J_i (T b_i)_k``. ``"counts"``: one float32 product
        per indicator vector ``b_i`` (exact integer counts), ``2^bits - 1`` products per layer.
        ``"checked"``: one float64 product ``T (L[c] - L_0)``, whose error in any summation
        order is below ``gamma_d sum_j |L[c_j] - L_0|``; entries that close to a threshold are
        recomputed from exact counts, so the codes are those of ``"counts"`` bit for bit, at
        the cost of a single product.

    Returns
    -------
    codes : list of ndarray of shape (n_samples, d_l), uint8
        Codes of every layer (host numpy arrays): the number of thresholds exceeded.
    """
    if method not in ("checked", "counts"):
        raise ValueError(f"method must be 'checked' or 'counts', got {method!r}.")
    cache = DeviceCache() if cache is None else cache
    host = DeviceCache()
    n = X.shape[0]
    widths = [layer.weights.shape[0] for layer in layers]
    max_levels = max(len(layer.levels) for layer in layers)
    max_in = max(X.shape[1], *widths)
    # one block's working set per row: indicator vectors and counts (float32) or the level
    # values (float64), the sums, the comparisons and the input row
    per_row = (max_levels - 1) * 8 * max_in + 32 * max_in + max_levels * max_in + 8 * X.shape[1]
    rows = ops.block_rows(n, 2 * per_row)
    out = [np.empty((n, w), dtype=np.uint8) for w in widths]
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        nb = stop - start
        xb = ops.asarray(X[start:start + nb], dtype=np.float64)
        codes = None
        for index, layer in enumerate(layers):
            T8 = _on_device(ops, cache, ("ternary", index),
                            lambda: _ternary_host(host, index, layer)[0], np.int8)
            d_out, d_in = layer.weights.shape
            if index == 0:
                # z = (T x) / sqrt(1 - eps) > s_j  <=>  T x > s_j sqrt(1 - eps)
                thr = ops.asarray(layer.thresholds / layer.scale, dtype=np.float64)
            else:
                prev = layers[index - 1]
                theta = _on_device(ops, cache, ("theta", index),
                                   lambda: _theta_host(host, index, layer, prev), np.float64)
                jumps = [float(j) for j in prev.jumps]
                if method == "counts":
                    # indicator vectors b_i = 1{c >= i}, i = 1..K'-1, stacked along the rows
                    ind = [codes >= i for i in range(1, len(jumps) + 1)]
                    if ops.is_torch:
                        ind = ops.torch.cat(ind, dim=0).to(ops.torch.float32)
                    else:
                        ind = np.concatenate(ind, axis=0).astype(np.float32)
                else:
                    rel = prev.levels - prev.levels[0]
                    table = ops.asarray(rel, dtype=np.float64)
                    values = table[codes.long()] if ops.is_torch else table[codes]
                    # error bound of the float64 product (any order, FMA included) plus the
                    # rounding of the exact path's own combination, with a safety factor 4
                    bound = 4.0 * _U64 * (d_in + len(jumps) + 2) * d_in * (
                        float(np.abs(rel).max()) + float(np.abs(prev.jumps).sum()))
            new = (
                ops.torch.empty((nb, d_out), dtype=ops.torch.uint8, device=ops.device)
                if ops.is_torch else np.empty((nb, d_out), dtype=np.uint8)
            )
            col_block = ops.block_rows(d_out, 8 * d_in * 2)
            for c0 in range(0, d_out, col_block):
                c1 = min(d_out, c0 + col_block)
                Tb = T8[c0:c1]
                if index == 0:
                    Tb = Tb.to(ops.torch.float64) if ops.is_torch else Tb.astype(np.float64)
                    new[:, c0:c1] = _count_above(ops, xb @ Tb.T, thr)
                elif method == "counts":
                    Tb = Tb.to(ops.torch.float32) if ops.is_torch else Tb.astype(np.float32)
                    counts = ind @ Tb.T  # exact integers (|count| <= d_in < 2^24)
                    A = None
                    for i, jump in enumerate(jumps):
                        c = counts[i * nb:(i + 1) * nb]
                        c = c.to(ops.torch.float64) if ops.is_torch else c.astype(np.float64)
                        # the same float64 operations, in the same order, on every backend
                        A = jump * c if A is None else A + jump * c
                    new[:, c0:c1] = _count_above(ops, A, theta[c0:c1])
                else:
                    Tb = Tb.to(ops.torch.float64) if ops.is_torch else Tb.astype(np.float64)
                    A = values @ Tb.T
                    # where A - bound and A + bound exceed the same thresholds, so does the
                    # exact sum; elsewhere recompute from exact counts
                    low = _count_above(ops, A - bound, theta[c0:c1])
                    high = _count_above(ops, A + bound, theta[c0:c1])
                    near = low != high
                    if bool(near.any()):
                        low = _fix_near(ops, host, index, layer, prev, codes, near, low, c0,
                                        jumps)
                    new[:, c0:c1] = low
            codes = new
            out[index][start:stop] = ops.to_numpy(codes)
    return out


def _fix_near(ops, host, index, layer, prev, codes, near, new, c0, jumps):
    """Recompute, from exact counts on the host, the codes of the (row, neuron) pairs whose
    float64 sum lies within its error bound of a threshold."""
    rows_, cols_ = np.nonzero(ops.to_numpy(near))
    T_host, _ = _ternary_host(host, index, layer)
    theta = _theta_host(host, index, layer, prev)
    A = _exact_sums(ops.to_numpy(codes)[rows_], T_host[c0 + cols_], jumps)
    exact = (A[:, None] > theta[c0 + cols_]).sum(axis=1).astype(np.uint8)
    fixed = ops.to_numpy(new).copy()
    fixed[rows_, cols_] = exact
    return ops.asarray(fixed, dtype=np.uint8) if ops.is_torch else fixed


def dense_features(ops, X, layers, cache=None):
    """Last hidden layer ``sigma_L(z_L) - c_L`` of the dense reference network, float64.

    ``h_l = (sigma_l(W_l h_{l-1}) - c_l) / sqrt(d_l)`` with Gaussian ``W_l`` (variance 1).
    """
    cache = DeviceCache() if cache is None else cache
    n = X.shape[0]
    max_w = max(X.shape[1], *(layer.weights.shape[0] for layer in layers))
    rows = ops.block_rows(n, 8 * 4 * max_w)
    d_last = layers[-1].weights.shape[0]
    out = np.empty((n, d_last), dtype=np.float64)
    for start in range(0, n, rows):
        h = ops.asarray(X[start:start + rows], dtype=np.float64)
        for index, layer in enumerate(layers):
            W = cache.get(ops, ("dense", index), lambda: ops.asarray(layer.weights, np.float64))
            z = h @ W.T
            g = layer.activation.apply(z, ops) - layer.center
            h = g / math.sqrt(layer.weights.shape[0])
        out[start:start + rows] = ops.to_numpy(g)
    return out


# -------------------------------------------------------------------------------------- readout
def _softmax_parts(ops, logits):
    """(probabilities, log-probabilities) of float64 logits, rows stabilised by their max."""
    xp = ops.xp
    if ops.is_torch:
        shifted = logits - logits.amax(dim=1, keepdim=True)
        log_norm = xp.log(xp.exp(shifted).sum(dim=1, keepdim=True))
    else:
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_norm
    return xp.exp(log_p), log_p


def _mean_xent(ops, log_p, y):
    """Mean cross-entropy of integer labels ``y`` (device int64)."""
    n = log_p.shape[0]
    if ops.is_torch:
        picked = log_p[ops.torch.arange(n, device=log_p.device), y]
    else:
        picked = log_p[np.arange(n), y]
    return -float(picked.sum()) / n


class _Adam:
    """Adam (Kingma & Ba) with MLPClassifier's bias correction folded into the step size."""

    def __init__(self, params, lr):
        self.params = params
        self.lr = lr
        self.t = 0
        self.m = [p * 0 for p in params]
        self.v = [p * 0 for p in params]

    def step(self, grads):
        self.t += 1
        lr_t = self.lr * math.sqrt(1 - ADAM_BETA2**self.t) / (1 - ADAM_BETA1**self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= ADAM_BETA1
            m += (1 - ADAM_BETA1) * g
            v *= ADAM_BETA2
            v += (1 - ADAM_BETA2) * (g * g)
            p -= lr_t * m / (v**0.5 + ADAM_EPS)


# ----------------------------------------------------------------------------------- estimator
class NTKLCClassifier(ClassifierMixin, BaseEstimator):
    """Deep random network with sparse ternary weights and quantized activations whose
    conjugate and neural tangent kernels match a dense network's (NTK-LC), with a trained
    softmax readout.

    The dense reference (``compress=False``) is the random network
    ``h_l = (sigma_l(W_l h_{l-1}) - c_l) / sqrt(d_l)``, ``W_l`` i.i.d. standard Gaussian, centred
    by the constants ``c_l`` of the scale recursion, on inputs normalised with training
    statistics. With ``compress=True`` each ``W_l`` becomes a ternary matrix ``T_l`` (a fraction
    ``sparsity`` of zeros, the scale ``1/sqrt(1 - sparsity)`` kept apart) and each activation a
    staircase with ``2^activation_bits`` levels (``activation_bits=1``: the paper's two-level
    family ``a 1{t < s1} + a 1{t > s2}``) whose thresholds and levels are solved, layer by layer,
    so that the three Gaussian moments that determine the deep CK/NTK equal the dense
    network's. Random matrix theory then says that the compressed network's kernels equal the
    dense ones up to a multiple ``delta_`` of the identity. The hidden layers are frozen; only a
    linear softmax readout is trained (Adam, early stopping on a validation split).

    Read more in the design note ``ntk_lc.md``.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(2000, 2000, 1000)
        Widths ``d_1, ..., d_L`` of the hidden layers.
    activation : str or sequence of str, default="relu"
        Activation of the dense network (one name, or one per layer): ``"relu"``,
        ``"leaky_relu"``, ``"gelu"``, ``"swish"``, ``"tanh"``, ``"erf"`` ... Even activations
        (``"abs"``, ``"cos"``, ...) cannot be matched and raise a ``ValueError`` with
        ``compress=True``.
    sparsity : float in [0, 1), default=0.9
        Fraction of zero hidden weights (``compress=True``).
    compress : bool, default=True
        ``True``: the NTK-LC network; ``False``: the dense Gaussian reference.
    activation_bits : {1, 2, 3}, default=3
        Bits per hidden activation: 1 is the paper's exact three-moment match with a large
        identity shift ``delta_``; 2 and 3 are 4- and 8-level staircases meeting the same match
        with the least output variance (``delta_`` and the finite-width noise nearly vanish).
        Ignored when ``compress=False``.
    alpha : float >= 0, default=1e-4
        L2 penalty of the readout weights (``alpha ||W||^2 / (2 batch)``, as MLPClassifier).
    max_iter : int >= 1, default=200
        Largest number of readout epochs.
    batch_size : int >= 1, default=256
        Minibatch size (clipped to the number of training rows).
    learning_rate_init : float > 0, default=1e-3
        Adam step size.
    random_state : int, RandomState instance or None, default=None
        Drives every draw, in this order: hidden weights layer 1..L (one uniform per ternary
        weight, or one normal per Gaussian weight, row-major), the validation split, one
        permutation per epoch. The same seed gives the same hidden network whatever the data.
    device : str or None, default=None
        ``None``: torch on the CPU; ``"numpy"``: numpy; ``"cpu"``, ``"cuda"``, ``"cuda:k"``,
        ``"auto"``: torch on that device. Input, output and the fitted state are numpy.
    verbose : int, default=0
        Print one line per epoch (loss, validation loss and accuracy, seconds).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    layers_ : list of dict
        Per hidden layer: ``"weights"`` (a compact ``TernaryMatrix`` for ``compress=True``,
        float64 for ``compress=False``), ``"weight_scale"`` (``1/sqrt(1 - sparsity)`` or 1),
        ``"activation"`` (the activation applied, a ``StepFunction`` with absolute thresholds
        when compressed), ``"thresholds"``, ``"levels"``, ``"amplitude"`` (the largest level
        magnitude, ``|a|`` for 1 bit), ``"center"`` (the centring constant), ``"tau_in"``,
        ``"tau_out"`` (variances ``v_{l-1}``, ``v_l`` of the network's own recursion),
        ``"targets"`` and ``"moments"`` (matched and achieved ``m1, m2, e3``) and
        ``"residual"`` of the matching equations (None / 0 for the dense network).
    delta_ : float
        Identity shift ``Delta = v_L^c - v_L^d`` of the compressed CK (0 for ``compress=False``).
    coefficients_ : list of dict
        Per layer, ``{"dense": ..., "compressed": ...}`` records of the deep recursions
        (``m0, m1, m2, e3, q, v_in, v_out, alpha, beta, kappa2, ck_identity, ntk_identity``);
        ``"compressed"`` is None for ``compress=False``.
    kernel_ : TheoryKernel
        ``TheoryKernel(model="ck", n_layers=L, form="limit")`` of the dense network, fitted on
        the normalised training rows in skrmt's ``x / sqrt(p)`` scale (so ``tau_ = 1``). It
        centres layers 1..L-1 and returns the raw last layer (the difference from this
        network's centred last layer is absorbed by the readout's intercept).
    memory_bytes_ : int
        Stored model (hidden layers and readout) under the project's convention
        (``baselines.md`` §4), ``ceil(bits / 8)``.
    dense_memory_bytes_ : int
        The same for the dense float32 network of the same widths.
    compression_ratio_ : float
        ``dense_memory_bytes_ / memory_bytes_`` in bits (1 for ``compress=False``).
    memory_report_ : dict
        ``{"project": ..., "paper": ...}``: both accountings (bits, dense bits, ratio).
    tau_ : float
        Mean squared norm of the normalised training rows (1).
    input_mean_ : ndarray of shape (n_features,)
    input_scale_ : float
        Inputs are mapped to ``(x - input_mean_) / input_scale_``.
    readout_scale_ : float
        ``sqrt(d_L / v_L)``: the readout sees ``h_L * readout_scale_`` (unit variance per feature).
    coef_ : ndarray of shape (d_L, n_classes)
    intercept_ : ndarray of shape (n_classes,)
    loss_curve_ : list of float
        Mean training loss per epoch.
    validation_scores_ : list of float or None
        Validation accuracy per epoch (None when the training set is too small to split).
    n_iter_ : int
        Epochs run (>= 1).
    device_ : str
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when ``X`` has string feature names.

    See Also
    --------
    TernaryRandomFeatures : One ternary layer matching a random-feature kernel.
    TheoryKernel : The deep CK/NTK of the dense network.
    sklearn.neural_network.MLPClassifier : A fully trained network.

    Notes
    -----
    Width is the cost of depth: a compressed layer adds more random-feature noise than a dense
    one, more so with 1-bit activations (``ntk_lc.md`` §6, §9). Sparse universality needs
    ``(1 - sparsity) * fan_in`` well above 200: ``fit`` warns when a layer falls short.
    Memory is reported under two accountings; the paper's ignores index costs and charges
    ``1 - sparsity`` bit per weight.

    References
    ----------
    .. [1] L. Gu, Y. Du, Y. Zhang, D. Xie, S. Pu, R. C. Qiu, Z. Liao, "'Lossless' compression of
       deep neural networks: a high-dimensional neural tangent kernel approach", NeurIPS 2022.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skrmt import NTKLCClassifier
    >>> X, y = make_classification(1200, 400, n_informative=40, n_classes=3, random_state=0)
    >>> clf = NTKLCClassifier((1000, 500), sparsity=0.5, random_state=0, device="numpy")
    >>> clf = clf.fit(X[:900], y[:900])
    >>> bool(clf.score(X[900:], y[900:]) > 0.6)
    True
    >>> round(clf.delta_, 4)  # identity shift of the compressed CK (3-bit activations)
    0.0012
    >>> clf.layers_[0]["weights"].shape, clf.layers_[0]["levels"].__len__()
    ((1000, 400), 8)
    >>> round(clf.compression_ratio_, 1), round(clf.memory_report_["paper"]["ratio"], 1)
    (15.6, 63.4)
    """

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(ACTIVATION_NAMES), list, tuple],
        "sparsity": [Interval(Real, 0, 1, closed="left")],
        "compress": ["boolean"],
        "activation_bits": [Interval(Integral, 1, 3, closed="both")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "device": [None, str],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(2000, 2000, 1000),
        *,
        activation="relu",
        sparsity=0.9,
        compress=True,
        activation_bits=3,
        alpha=1e-4,
        max_iter=200,
        batch_size=256,
        learning_rate_init=1e-3,
        random_state=None,
        device=None,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.sparsity = sparsity
        self.compress = compress
        self.activation_bits = activation_bits
        self.alpha = alpha
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Draw the hidden network, solve its activations and train the readout.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : NTKLCClassifier
        """
        X, y = validate_data(self, as_numpy_input(X), y, dtype=FLOAT_DTYPES)
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(
                "NTKLCClassifier needs samples of at least 2 classes; got "
                f"{self.classes_.size} class."
            )
        sizes = _layer_sizes(self.hidden_layer_sizes)
        acts = _layer_activations(self.activation, len(sizes))
        if self.compress:
            _check_matchable(acts, int(self.activation_bits))
        self.device_ = _resolve_fit_device(self.device)
        rng = check_random_state(self.random_state)
        t_start = time.perf_counter()

        # 1. hidden weights, layer 1..L (first in the draw order: independent of the data)
        n, p = X.shape
        fan_in = (p, *sizes[:-1])
        eps = float(self.sparsity)
        if self.compress:
            weights = [
                TernaryMatrix(draw_ternary(rng, d, d_in, eps)) for d, d_in in zip(sizes, fan_in)
            ]
            short = [
                (layer, d_in) for layer, d_in in enumerate(fan_in, start=1)
                if (1.0 - eps) * d_in < MIN_NONZEROS_PER_ROW
            ]
            if short:
                listing = ", ".join(f"layer {layer} (fan-in {d_in})" for layer, d_in in short)
                warnings.warn(
                    f"sparsity={eps}: fewer than {MIN_NONZEROS_PER_ROW} nonzero weights per "
                    f"row ((1 - sparsity) * fan-in) at {listing}; the ternary network's kernel "
                    "then departs from the dense one's (sparse universality, ntk_lc.md §5).",
                    UserWarning,
                    stacklevel=3,
                )
        else:
            weights = [rng.standard_normal((d, d_in)) for d, d_in in zip(sizes, fan_in)]

        # 2. input normalisation, frozen (ntk_lc.md §1)
        Xf = np.asarray(X, dtype=np.float64)
        self.input_mean_ = Xf.mean(axis=0)
        Xc = Xf - self.input_mean_
        scale = math.sqrt(float(np.einsum("ij,ij->", Xc, Xc)) / n)
        self.input_scale_ = scale if scale > 0 else 1.0
        Xc /= self.input_scale_
        self.tau_ = V0

        # 3. dense recursion; compressed chain
        dense = deep_coefficients(acts, V0)
        self._build_layers(sizes, acts, weights, dense, eps)

        # 4. hidden features of the training rows, then the readout
        self._device_cache = DeviceCache()
        ops = get_ops(self.device_, np.float64)
        t_hidden = time.perf_counter()
        F = self._hidden(ops, Xc)
        t_hidden = time.perf_counter() - t_hidden
        # Minibatch products are small: one CPU thread (BLAS and torch's pool) avoids spinning
        # thread pools that made them 10-40x slower on a loaded 2-core machine.
        torch_threads = torch_num_threads(1)
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                self._train_readout(ops, rng, F, y_idx)
        finally:
            if torch_threads is not None:
                torch_num_threads(torch_threads)

        # 5. memory and the theory kernel
        nnz = [w.nnz for w in weights] if self.compress else None
        self.memory_report_ = deep_ternary_memory_report(
            sizes, p, self.coef_.shape[1], nnz=nnz, sparsity=eps, compress=bool(self.compress),
            activation_bits=int(self.activation_bits),
        )
        project = self.memory_report_["project"]
        self.memory_bytes_ = math.ceil(project["bits"] / 8)
        self.dense_memory_bytes_ = math.ceil(project["dense_bits"] / 8)
        self.compression_ratio_ = float(project["ratio"])
        self.kernel_ = self._theory_kernel(acts, Xc)
        if self.verbose:
            print(f"[NTKLC] hidden features {t_hidden:.2f} s; "
                  f"fit {time.perf_counter() - t_start:.2f} s")
        return self

    def _build_layers(self, sizes, acts, weights, dense, eps):
        self.coefficients_ = [{"dense": rec.as_dict(), "compressed": None} for rec in dense]
        self.layers_ = []
        if not self.compress:
            net = []
            for act, W, rec in zip(acts, weights, dense):
                self.layers_.append({
                    "weights": W, "weight_scale": 1.0, "activation": act, "thresholds": None,
                    "levels": None, "amplitude": None, "center": rec.m0, "tau_in": rec.v_in,
                    "tau_out": rec.v_out, "targets": None,
                    "moments": {"m1": rec.m1, "m2": rec.m2, "e3": rec.e3}, "residual": 0.0,
                })
                net.append(_DenseLayer(W, act, rec.m0, rec.v_out))
            self.delta_ = 0.0
            self.readout_scale_ = math.sqrt(sizes[-1] / dense[-1].v_out)
            self._net = net
            return
        # v_0 = 1 for every fit (normalisation): the chain is memoised / read from tables
        match = match_network(acts, int(self.activation_bits), v0=V0)
        scale = 1.0 / math.sqrt(1.0 - eps)
        steps = [layer.activation for layer in match.layers]
        compressed = deep_coefficients(steps, V0)
        net = []
        for ell, (lm, T, rec) in enumerate(zip(match.layers, weights, compressed)):
            step = lm.activation
            if not isinstance(step, StepFunction):
                raise TypeError(f"layer {ell + 1}: the matched activation is not a StepFunction.")
            levels = np.asarray(step.levels, dtype=np.float64)
            self.layers_.append({
                "weights": T, "weight_scale": scale, "activation": step,
                "thresholds": tuple(float(s) for s in step.thresholds),
                "levels": tuple(float(v) for v in levels),
                "amplitude": float(np.abs(levels).max()), "center": float(lm.center),
                "tau_in": float(lm.v_in_compressed), "tau_out": float(lm.v_out_compressed),
                "targets": _as_plain(lm.targets), "moments": _as_plain(lm.moments),
                "residual": _as_plain(lm.residual),
            })
            self.coefficients_[ell]["compressed"] = rec.as_dict()
            net.append(_StepLayer(T, scale, step.thresholds, levels, lm.center,
                                  lm.v_out_compressed))
        self.delta_ = float(match.delta)
        self.readout_scale_ = math.sqrt(sizes[-1] / net[-1].v_out)
        self._net = net

    def _theory_kernel(self, acts, Xc):
        names = [act.name for act in acts]
        activation = names[0] if len(set(names)) == 1 else names
        kernel = TheoryKernel(model="ck", activation=activation, n_layers=len(acts),
                              form="limit", device="numpy")
        # fitted in skrmt's x / sqrt(p) convention: x = sqrt(p) x~, so its tau_ is 1
        return kernel.fit(Xc * math.sqrt(Xc.shape[1]))

    # ------------------------------------------------------------------ hidden layers
    def _hidden(self, ops, Xn):
        """Readout inputs of normalised rows: uint8 codes (compressed) or float64 features."""
        if self.compress:
            return compressed_codes(ops, Xn, self._net, self._device_cache)[-1]
        return dense_features(ops, Xn, self._net, self._device_cache)

    def _readout_inputs(self, ops, F, dtype):
        """Readout inputs ``u = h_L * readout_scale_`` of hidden features on the device.

        Compressed: a lookup of the last layer's codes in ``(L[c] - m_L) / sqrt(v_L)``;
        dense: ``(sigma_L(z_L) - c_L) / sqrt(v_L)``.
        """
        last = self._net[-1]
        if not self.compress:
            u = F * (1.0 / math.sqrt(last.v_out))
            return u.to(ops._tdtype(dtype)) if ops.is_torch else u.astype(dtype, copy=False)
        table = ops.asarray((last.levels - last.center) / math.sqrt(last.v_out), dtype=dtype)
        if ops.is_torch:
            return table[F.long()]
        return np.take(table, F)

    # ------------------------------------------------------------------ readout
    def _train_readout(self, ops, rng, F_host, y_idx):
        n, d = F_host.shape
        K = self.classes_.size
        counts = np.bincount(y_idx, minlength=K)
        n_val = max(K, int(round(VALIDATION_FRACTION * n)))
        split = n >= 20 and counts.min() >= 2 and n - n_val >= K
        if split:
            splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=rng)
            train, val = next(splitter.split(np.zeros((n, 1)), y_idx))
        else:
            train, val = np.arange(n), None
        self._validation_rows = val  # private record: which training rows validated

        # float32 arithmetic (as any torch network): the readout's minibatch products and
        # the code lookups are memory bound
        dt = READOUT_DTYPE
        F = ops.asarray(F_host, dtype=np.uint8 if self.compress else np.float64)
        # Expand (codes) or scale (dense) once when the float32 inputs fit in a quarter of the
        # working memory; otherwise look the codes up per minibatch.
        expand_once = not self.compress or 4 * n * d <= ops.budget_bytes() // 4
        if expand_once:
            F = self._readout_inputs(ops, F, dt)

        def inputs(rows):
            return F[rows] if expand_once else self._readout_inputs(ops, F[rows], dt)

        y_dev = ops.asarray(y_idx, dtype=np.int64)
        n_train = train.shape[0]
        B = int(min(self.batch_size, n_train))
        W = ops.asarray(np.zeros((d, K)), dtype=dt)
        b = ops.asarray(np.zeros(K), dtype=dt)
        adam = _Adam([W, b], float(self.learning_rate_init))
        alpha = float(self.alpha)
        if split:
            val_dev = ops.asarray(val, dtype=np.int64)
            U_val = inputs(val_dev)
            y_val = y_dev[val_dev]
        eye = ops.asarray(np.eye(K), dtype=dt)

        self.loss_curve_ = []
        self.validation_scores_ = [] if split else None
        best_loss, best, no_change = math.inf, None, 0
        stopped = False
        for epoch in range(int(self.max_iter)):
            t0 = time.perf_counter()
            perm = train[rng.permutation(n_train)]
            perm_dev = ops.asarray(perm, dtype=np.int64)
            total = 0.0
            for start in range(0, n_train, B):
                rows = perm_dev[start:start + B]
                Bb = int(rows.shape[0])
                U = inputs(rows)
                yb = y_dev[rows]
                P, log_p = _softmax_parts(ops, U @ W + b)
                sq = float((W * W).sum())
                total += _mean_xent(ops, log_p, yb) * Bb + 0.5 * alpha * sq
                G = (P - eye[yb]) / Bb
                gW = U.T @ G + (alpha / Bb) * W
                gb = G.sum(0)
                adam.step([gW, gb])
            loss = total / n_train
            self.loss_curve_.append(float(loss))
            if split:
                P_val, log_val = _softmax_parts(ops, U_val @ W + b)
                val_loss = _mean_xent(ops, log_val, y_val)
                pred = P_val.argmax(1)
                acc = float((pred == y_val).sum()) / int(y_val.shape[0])
                self.validation_scores_.append(acc)
                monitored = val_loss
            else:
                monitored = loss
            if monitored < best_loss - TOL:
                best_loss, no_change = monitored, 0
                best = (W.clone(), b.clone()) if ops.is_torch else (W.copy(), b.copy())
            else:
                no_change += 1
            if self.verbose:
                extra = f", validation loss {val_loss:.5f}, accuracy {acc:.4f}" if split else ""
                print(f"[NTKLC] epoch {epoch + 1}: loss {loss:.5f}{extra}, "
                      f"{time.perf_counter() - t0:.3f} s")
            if no_change >= N_ITER_NO_CHANGE:
                stopped = True
                break
        self.n_iter_ = len(self.loss_curve_)
        if best is not None:
            W, b = best
        if not stopped:
            warnings.warn(
                f"NTKLCClassifier: the readout reached max_iter={self.max_iter} epochs without "
                "meeting the stopping rule; increase max_iter.",
                ConvergenceWarning,
            )
        self.coef_ = np.asarray(ops.to_numpy(W), dtype=np.float64)
        self.intercept_ = np.asarray(ops.to_numpy(b), dtype=np.float64)

    # ------------------------------------------------------------------ predict
    def _logits(self, X):
        check_is_fitted(self)
        X = validate_data(self, as_numpy_input(X), dtype=FLOAT_DTYPES, reset=False)
        ops = get_ops(_resolve_predict_device(self.device), np.float64)
        Xn = (np.asarray(X, dtype=np.float64) - self.input_mean_) / self.input_scale_
        F = ops.asarray(self._hidden(ops, Xn),
                        dtype=np.uint8 if self.compress else np.float64)
        W = self._device_cache.get(ops, "coef", lambda: ops.asarray(self.coef_, np.float64))
        b = self._device_cache.get(ops, "intercept",
                                   lambda: ops.asarray(self.intercept_, np.float64))
        return ops, self._readout_inputs(ops, F, np.float64) @ W + b, X.dtype

    def decision_function(self, X):
        """Logits of the readout (binary: their difference, favouring ``classes_[1]``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) for two classes, else (n_samples, n_classes)
            In the dtype of ``X``.
        """
        ops, logits, dtype = self._logits(X)
        logits = np.asarray(ops.to_numpy(logits), dtype=np.float64)
        if logits.shape[1] == 2:
            logits = logits[:, 1] - logits[:, 0]
        return logits.astype(dtype, copy=False)

    def predict_proba(self, X):
        """Softmax of the logits.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            In the dtype of ``X``.
        """
        ops, logits, dtype = self._logits(X)
        P, _ = _softmax_parts(ops, logits)
        return np.asarray(ops.to_numpy(P), dtype=np.float64).astype(dtype, copy=False)

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`, computed stably.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        ops, logits, dtype = self._logits(X)
        _, log_p = _softmax_parts(ops, logits)
        return np.asarray(ops.to_numpy(log_p), dtype=np.float64).astype(dtype, copy=False)

    def predict(self, X):
        """Predicted classes, ``classes_[argmax]`` of the logits.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        ops, logits, _ = self._logits(X)
        logits = np.asarray(ops.to_numpy(logits), dtype=np.float64)
        return self.classes_[np.argmax(logits, axis=1)]


def _as_plain(value):
    """Floats, tuples and dicts of floats for the fitted records (no numpy scalars)."""
    if isinstance(value, dict):
        return {k: _as_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(_as_plain(v) for v in np.asarray(value, dtype=np.float64).ravel())
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return value
