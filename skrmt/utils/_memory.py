"""Memory accounting: one convention for every feature map (design note baselines.md §4).

Symbols: d = ``n_features_in_``, m = number of features, c = readout outputs, s = feature rows
held at once (default 250, LP-RFF's minibatch; s = n for a closed-form ridge that materializes
the whole feature matrix).

Entry widths: real parameters and full-precision features 32 bits whatever the dtype;
low-precision features b bits; ternary weights and features 2 bits; a ternary matrix with nnz
nonzeros costs ``min(2*m*d, nnz*(1 + ceil(log2 d)) + 32*(m + 1))`` bits
(:func:`skrmt.random_features._ternary_matrix.ternary_matrix_bits`, the one home of that
formula). Random matrices are charged as stored, never as "regenerated from a seed"; scalars
(gamma, scales, seeds, thresholds, intercepts) are ignored.

| map                                   | parameters P (bits)           | feature entry F |
|---------------------------------------|-------------------------------|-----------------|
| ``RBFSampler``                        | 32 m (d + 1)                  | 32              |
| ``LowPrecisionRFF`` (gaussian)        | 32 m (d + 1)                  | b               |
| ``LowPrecisionRFF`` (circulant)       | 32 B d + B d + 32 m, B = ceil(m/d) | b          |
| ``Nystroem``                          | 32 m (d + m)                  | 32              |
| ``TernaryRandomFeatures``             | ternary-matrix rule           | 2               |
| readout                               | M = 32 m c                    | --              |

Stored model = P + M bits, footprint = P + F m s + M bits; bytes = ceil(bits / 8).
"""

import math
from numbers import Integral

from sklearn.utils.validation import check_is_fitted

__all__ = [
    "deep_ternary_memory_report",
    "memory_bytes",
    "memory_report",
    "lprff_param_bits",
    "lprff_table_bits",
]

FLOAT_BITS = 32
TERNARY_ENTRY_BITS = 2


def _check_positive_int(value, name, *, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def lprff_param_bits(n_components, n_features, projection="gaussian"):
    """Bits charged for a :class:`~skrmt.random_features.LowPrecisionRFF` model's parameters.

    Parameters
    ----------
    n_components : int
        m, the number of features.
    n_features : int
        d, the input dimension.
    projection : {"gaussian", "circulant"}, default="gaussian"
        ``"gaussian"``: the dense (d, m) projection and m offsets, 32 m (d + 1) bits.
        ``"circulant"``: B = ceil(m / d) blocks, each a float32 Gaussian vector g (32 d bits)
        and a Rademacher sign vector s (1 bit per entry, stored packed), plus m offsets:
        32 B d + B d + 32 m bits. When d divides m this is 32 m + m + 32 m, i.e. the LP-RFF
        paper's 32 m for the projection plus what the paper left out (signs and offsets).

    Returns
    -------
    bits : int
    """
    m = _check_positive_int(n_components, "n_components")
    d = _check_positive_int(n_features, "n_features")
    if projection == "gaussian":
        return FLOAT_BITS * m * (d + 1)
    if projection == "circulant":
        n_blocks = -(-m // d)
        return FLOAT_BITS * n_blocks * d + n_blocks * d + FLOAT_BITS * m
    raise ValueError(f"projection must be 'gaussian' or 'circulant', got {projection!r}.")


def _is_class(est, module, name):
    cls = type(est)
    return cls.__name__ == name and cls.__module__.startswith(module)


def _feature_map_parts(est):
    """(P bits, F bits per feature entry, m) of a fitted feature map."""
    if _is_class(est, "sklearn.kernel_approximation", "RBFSampler"):
        check_is_fitted(est)
        d, m = est.random_weights_.shape
        return FLOAT_BITS * m * (d + 1), FLOAT_BITS, m
    if _is_class(est, "sklearn.kernel_approximation", "Nystroem"):
        check_is_fitted(est)
        m, d = est.components_.shape
        return FLOAT_BITS * m * (d + m), FLOAT_BITS, m
    if _is_class(est, "skrmt.", "LowPrecisionRFF"):
        check_is_fitted(est)
        m = est.n_components
        bits = lprff_param_bits(m, est.n_features_in_, est.projection)
        return bits, int(est.n_bits), m
    components = getattr(est, "components_", None)
    if components is not None and hasattr(components, "charged_bits"):
        # A ternary feature map (TernaryRandomFeatures): one formula, in _ternary_matrix.
        from ..random_features._ternary_matrix import ternary_matrix_bits

        m, d = components.shape
        return ternary_matrix_bits(components.nnz, m, d), TERNARY_ENTRY_BITS, m
    raise TypeError(
        f"est must be a fitted feature map (RBFSampler, Nystroem, LowPrecisionRFF or "
        f"TernaryRandomFeatures), got {type(est).__name__}."
    )


def memory_bytes(est):
    """Stored-model bytes of a fitted feature map under the project's convention.

    Parameters
    ----------
    est : estimator
        A fitted skrmt estimator (its ``memory_bytes_`` is returned), or a fitted
        scikit-learn ``RBFSampler`` (32 m (d + 1) bits) or ``Nystroem`` (32 m (d + m) bits).

    Returns
    -------
    n_bytes : int
        ceil(bits / 8).

    Raises
    ------
    TypeError
        If ``est`` is none of the above.
    sklearn.exceptions.NotFittedError
        If ``est`` is not fitted.

    See Also
    --------
    memory_report : The same convention split into parameters, features and readout.
    skrmt.TernaryRandomFeatures : Its ``memory_bytes_`` is what this returns for it.

    Notes
    -----
    One convention for every map, so that memory-against-accuracy comparisons are fair: 32
    bits per real parameter whatever the dtype; a ternary weight matrix with ``nnz`` nonzeros
    costs ``min(2 m d, nnz (1 + ceil(log2 d)) + 32 (m + 1))`` bits (2 bits per entry, or a sign
    bit and a column index per nonzero); random matrices are charged as stored, never as
    regenerated from a seed; O(1) scalars are ignored. For ``RBFSampler`` the map's
    parameters are ``W`` and the offsets, ``32 m (d + 1)`` bits; for ``Nystroem`` the
    landmarks and the normalisation, ``32 m (d + m)`` bits. Estimators with a readout
    (``RMTRidge``) add it, ``32 m c`` bits.

    References
    ----------
    .. [1] J. Zhang, A. May, T. Dao and C. Re, "Low-precision random Fourier features for
       memory-constrained kernel approximation", AISTATS 2019 (Table 1: the accounting this
       convention extends).
    .. [2] H. Tiomoko Ali, Z. Liao and R. Couillet, "Random matrices in service of ML
       footprint: ternary random features with no performance loss", ICLR 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.kernel_approximation import RBFSampler
    >>> from skrmt import TernaryRandomFeatures
    >>> from skrmt.utils import memory_bytes
    >>> X = np.zeros((5, 3))
    >>> memory_bytes(RBFSampler(n_components=10, random_state=0).fit(X))
    160
    >>> X = np.random.RandomState(0).standard_normal((20, 100))
    >>> trf = TernaryRandomFeatures(64, sparsity=0.5, random_state=0).fit(X)
    >>> memory_bytes(trf)  # 2 bits per ternary weight: 64 * 100 / 4 bytes
    1600
    """
    if type(est).__module__.startswith("skrmt."):
        check_is_fitted(est)
        if hasattr(est, "memory_bytes_"):
            return int(est.memory_bytes_)
    bits, _, _ = _feature_map_parts(est)
    return math.ceil(bits / 8)


def memory_report(est, n_outputs=1, batch_size=250, n_rows=None):
    """Memory breakdown of a fitted feature map followed by a linear readout, in bits.

    Parameters
    ----------
    est : estimator
        A fitted ``RBFSampler``, ``Nystroem``, ``LowPrecisionRFF`` or
        ``TernaryRandomFeatures``; or a fitted ``NTKLCClassifier``, whose hidden layers are
        P, whose last-layer activation bits are F and whose own readout is M.
    n_outputs : int, default=1
        c, the readout's outputs (1 for regression or binary, K for K classes); ignored for
        ``NTKLCClassifier``.
    batch_size : int, default=250
        s, feature rows held at once (LP-RFF's minibatch).
    n_rows : int, default=None
        When given, s = n_rows: the "full" footprint of a closed-form ridge, which
        materializes the whole feature matrix.

    Returns
    -------
    report : dict
        ``"P"`` (parameter bits of the map), ``"F"`` (bits per feature entry: 32 for float
        features, b for LP-RFF, 2 for ternary features), ``"M"`` (readout bits, 32 m c),
        ``"stored"`` (P + M) and ``"footprint"`` (P + F m s + M), all ints.

    Raises
    ------
    TypeError
        If ``est`` is not one of the feature maps above.
    ValueError
        If ``n_outputs``, ``batch_size`` or ``n_rows`` is not a positive integer.

    See Also
    --------
    memory_bytes : The stored-model total alone, for any skrmt estimator.
    skrmt.LowPrecisionRFF : Whose ``n_bits`` sets ``F``.

    Notes
    -----
    With m features, d inputs, c outputs and s rows of features held at once: ``P`` is the
    map's parameters under the convention of :func:`memory_bytes`, ``M = 32 m c`` the float
    readout, ``stored = P + M`` the model a deployment keeps and ``footprint = P + F m s + M``
    what training holds at once, the quantity the LP-RFF paper plots. Solver workspace (an
    m x m Gram, optimizer state) is excluded for every method.

    References
    ----------
    .. [1] J. Zhang, A. May, T. Dao and C. Re, "Low-precision random Fourier features for
       memory-constrained kernel approximation", AISTATS 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.kernel_approximation import RBFSampler
    >>> from skrmt.utils import memory_report
    >>> X = np.zeros((5, 3))
    >>> memory_report(RBFSampler(n_components=10, random_state=0).fit(X))
    {'P': 1280, 'F': 32, 'M': 320, 'stored': 1600, 'footprint': 81600}
    """
    c = _check_positive_int(n_outputs, "n_outputs")
    s = _check_positive_int(batch_size, "batch_size")
    n = _check_positive_int(n_rows, "n_rows", allow_none=True)
    if n is not None:
        s = n
    if _is_class(est, "skrmt.", "NTKLCClassifier"):
        # a deep network with its own readout: P = hidden layers, F = bits per last-layer
        # activation, M = the fitted readout (n_outputs is ignored)
        check_is_fitted(est)
        project = est.memory_report_["project"]
        P, M = sum(project["layers"]), project["readout"]
        F = int(est.activation_bits) if est.compress else FLOAT_BITS
        m = est.coef_.shape[0]
        return {"P": int(P), "F": F, "M": int(M), "stored": int(P + M),
                "footprint": int(P + F * m * s + M)}
    P, F, m = _feature_map_parts(est)
    M = FLOAT_BITS * m * c
    return {"P": int(P), "F": int(F), "M": int(M), "stored": int(P + M),
            "footprint": int(P + F * m * s + M)}


_TABLE_METHODS = ("nystrom", "fp_rff", "circulant_fp_rff", "lp_rff")


def lprff_table_bits(method, m, d, s=250, c=1, b=32, *, halp_bits=None):
    """Memory in bits as the LP-RFF paper's Table 1 counts it (Zhang et al., 2019).

    This reproduces the paper's x-axis values; it is *not* skrmt's convention (which charges
    offsets and sign vectors, see :func:`memory_report`).

    Parameters
    ----------
    method : {"nystrom", "fp_rff", "circulant_fp_rff", "lp_rff"}
        ``"nystrom"``: 32 (m d + m^2) + 32 m s + 32 m c; ``"fp_rff"``: 32 m d + 32 m s + 32 m c;
        ``"circulant_fp_rff"``: 32 m + 32 m s + 32 m c; ``"lp_rff"`` (circulant, b-bit
        features): 32 m + b m s + 32 m c.
    m : int
        Number of features (landmarks for Nyström).
    d : int
        Input dimension.
    s : int, default=250
        Minibatch size.
    c : int, default=1
        Readout outputs.
    b : int, default=32
        Feature bits (``"lp_rff"`` only).
    halp_bits : int, default=None
        ``"lp_rff"`` only: with LM-HALP low-precision training of the readout, its model term
        is 3 * halp_bits * m * c instead of 32 m c.

    Returns
    -------
    bits : int

    Examples
    --------
    >>> lprff_table_bits("lp_rff", 10_000, 119, b=8)
    20640000
    """
    m = _check_positive_int(m, "m")
    d = _check_positive_int(d, "d")
    s = _check_positive_int(s, "s")
    c = _check_positive_int(c, "c")
    b = _check_positive_int(b, "b")
    readout = FLOAT_BITS * m * c
    if method == "nystrom":
        return FLOAT_BITS * (m * d + m * m) + FLOAT_BITS * m * s + readout
    if method == "fp_rff":
        return FLOAT_BITS * m * d + FLOAT_BITS * m * s + readout
    if method == "circulant_fp_rff":
        return FLOAT_BITS * m + FLOAT_BITS * m * s + readout
    if method == "lp_rff":
        if halp_bits is not None:
            readout = 3 * _check_positive_int(halp_bits, "halp_bits") * m * c
        return FLOAT_BITS * m + b * m * s + readout
    raise ValueError(f"method must be one of {_TABLE_METHODS}, got {method!r}.")


def deep_ternary_memory_report(layer_sizes, n_features, n_outputs, *, nnz=None, sparsity=0.0,
                               compress=True, activation_bits=1):
    """Stored-model bits of a deep ternary network with a float32 readout, two accountings.

    The network is ``n_features``-[``layer_sizes``]-``n_outputs``
    (:class:`~skrmt.neural_network.NTKLCClassifier`, design note ``ntk_lc.md`` §5).

    - **project** (``baselines.md`` §4): each hidden layer is a ternary matrix charged by
      :func:`~skrmt.random_features._ternary_matrix.ternary_matrix_bits`,
      ``min(2 d_l d_{l-1}, nnz_l (1 + ceil(log2 d_{l-1})) + 32 (d_l + 1))``, the readout
      ``32 d_L c``; scalars (thresholds, levels, scales, intercepts) are ignored. The dense
      reference charges 32 bits per weight, readout included.
    - **paper** (Gu et al., 2022): dense ``32 (W + N)``, compressed ``(1 - eps) W + b N``, with
      ``W`` all weights including the readout, ``N = sum_l d_l`` hidden activations charged
      ``b`` bits each (``activation_bits``), and no index cost. With actual counts the hidden
      weights are charged ``nnz_l`` bits and the readout ``(1 - eps) d_L c``.

    Parameters
    ----------
    layer_sizes : sequence of int
        Hidden widths ``d_1, ..., d_L``.
    n_features : int
        ``d_0``.
    n_outputs : int
        ``c``, the stored readout columns.
    nnz : sequence of int, optional
        Nonzeros of each hidden matrix; default ``round((1 - sparsity) d_l d_{l-1})``.
    sparsity : float, default=0.0
        ``eps`` (the paper's readout charge, and the default ``nnz``).
    compress : bool, default=True
        False: the dense network (both accountings then equal their dense figures).
    activation_bits : int, default=1
        Bits per hidden activation in the paper's accounting.

    Returns
    -------
    report : dict
        ``{"project": {"layers": [bits per hidden layer], "readout", "bits", "dense_bits",
        "ratio"}, "paper": {"bits", "dense_bits", "ratio"}}``; bits are ints, ratios
        ``dense_bits / bits``.

    Examples
    --------
    >>> r = deep_ternary_memory_report((2000, 2000, 1000), 784, 10, sparsity=0.9)
    >>> r["project"]["bits"], r["paper"]["bits"], round(r["paper"]["ratio"], 1)
    (9404896, 762800, 318.1)
    """
    from ..random_features._ternary_matrix import ternary_matrix_bits

    sizes = [_check_positive_int(d, "layer_sizes") for d in layer_sizes]
    if not sizes:
        raise ValueError("layer_sizes must name at least one hidden layer.")
    d0 = _check_positive_int(n_features, "n_features")
    c = _check_positive_int(n_outputs, "n_outputs")
    b = _check_positive_int(activation_bits, "activation_bits")
    eps = float(sparsity)
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}.")
    fan_in = [d0, *sizes[:-1]]
    shapes = list(zip(sizes, fan_in))
    if nnz is None:
        nnz = [round((1.0 - eps) * d * d_in) for d, d_in in shapes]
    nnz = [int(k) for k in nnz]
    if len(nnz) != len(sizes) or any(k < 0 or k > d * d_in for k, (d, d_in) in zip(nnz, shapes)):
        raise ValueError("nnz must hold one count in [0, d_l d_{l-1}] per hidden layer.")
    n_hidden_weights = sum(d * d_in for d, d_in in shapes)
    n_readout = sizes[-1] * c
    dense_project = FLOAT_BITS * (n_hidden_weights + n_readout)
    dense_paper = FLOAT_BITS * (n_hidden_weights + n_readout + sum(sizes))
    readout = FLOAT_BITS * n_readout
    if compress:
        layers = [ternary_matrix_bits(k, d, d_in) for k, (d, d_in) in zip(nnz, shapes)]
        paper = sum(nnz) + round((1.0 - eps) * n_readout) + b * sum(sizes)
    else:
        layers = [FLOAT_BITS * d * d_in for d, d_in in shapes]
        paper = dense_paper
    project = sum(layers) + readout
    return {
        "project": {"layers": layers, "readout": readout, "bits": int(project),
                    "dense_bits": int(dense_project), "ratio": dense_project / project},
        "paper": {"bits": int(paper), "dense_bits": int(dense_paper),
                  "ratio": dense_paper / paper},
    }
