"""Deep conjugate and neural tangent kernels of wide random networks (design note ``ntk_lc.md``).

Model (``ntk_lc.md`` §1): rows are samples, already scaled so that ``||x||^2 = O(1)`` (skrmt's
``x / sqrt(p)``); layers ``h_l = sigma_bar_l(W_l h_{l-1}) / sqrt(d_l)`` with i.i.d. zero-mean,
unit-variance weights and the **constant** centring ``sigma_bar_l = sigma_l - c_l``,
``c_l = m0(sigma_l, v_{l-1})`` from the scale recursion ``v_l = Var sigma_l(sqrt(v_{l-1}) xi)``,
``v_0`` the data variance.

Three descriptions of the same kernels live here, one home for the deep recursions:

- :func:`deep_coefficients`: the per-layer Gaussian moments and the coefficients alpha, beta,
  kappa^2 of the variance-form recursions (``moments.md`` §8, ``ntk_lc.md`` §2.1);
- the **limit** form (``ntk_lc.md`` §2.4): the exact infinite-width kernels, entrywise,
  ``K_l = Phi(A, B, C) - c_l (m0(A) + m0(B)) + c_l^2`` and ``Theta_l = K_l + Theta_{l-1} Phi'``,
  with the diagonal from the one-dimensional recursion;
- the **equivalent** (data) form (``ntk_lc.md`` §2.3):
  ``alpha_1 x^T y + alpha_2 delta_x delta_y + alpha_3 (x^T y)^2`` off the diagonal (beta for the
  NTK) and the exact per-sample diagonal; and the GMM form of the theorem (§2.2), a test oracle.

Every Gaussian expectation comes from :mod:`skrmt._theory._gaussian_moments`.
"""

import math
from dataclasses import dataclass

import numpy as np

from .._backend import get_ops
from ._activations import resolve_activation
from ._gaussian_moments import (
    dual_kernel,
    dual_kernel_diag,
    dual_kernel_prime,
    dual_kernel_prime_diag,
    gaussian_moments,
)

__all__ = [
    "DeepDiagonal",
    "LayerCoefficients",
    "check_ntk_activations",
    "deep_coefficients",
    "deep_diagonal",
    "deep_equivalent_block",
    "deep_gmm_equivalent",
    "deep_kernel",
    "deep_limit_block",
]

_KERNELS = ("ck", "ntk")


def _frozen(values):
    arr = np.array(values, dtype=np.float64)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class LayerCoefficients:
    """What layer ``l`` of the deep CK/NTK recursions needs and produces (variance form).

    Attributes
    ----------
    m0 : float
        Centring constant ``c_l = E sigma_l(u)``, ``u ~ N(0, v_in)``.
    m1, m2 : float
        ``E sigma_l'(u)`` and ``E sigma_l''(u)`` (Stein forms; signed).
    e3 : float
        ``E[(sigma_l - c_l)^2]''(u)`` ``= 2 dVar/dv``.
    q : float
        ``E sigma_l'(u)^2`` (``inf`` when ``sigma_l`` jumps).
    v_in, v_out : float
        ``v_{l-1}`` and ``v_l = Var sigma_l(u)``.
    alpha : ndarray of shape (4,)
        ``alpha_{l,1..4}``; ``alpha_{l,4}`` carries the norm fluctuation to the next layer.
    beta : ndarray of shape (3,)
        ``beta_{l,1..3}`` (NTK).
    kappa2 : float
        NTK diagonal ``kappa_l^2 = v_l + kappa_{l-1}^2 q_l`` (``inf`` after a jump).
    ck_identity, ntk_identity : float
        Identity terms ``v_l - alpha_{l,1} v_0`` and ``kappa_l^2 - beta_{l,1} v_0``.
    """

    m0: float
    m1: float
    m2: float
    e3: float
    q: float
    v_in: float
    v_out: float
    alpha: np.ndarray
    beta: np.ndarray
    kappa2: float
    ck_identity: float
    ntk_identity: float

    def as_dict(self):
        """Plain floats and lists (for ``coefficients_``)."""
        return {
            "m0": self.m0, "m1": self.m1, "m2": self.m2, "e3": self.e3, "q": self.q,
            "v_in": self.v_in, "v_out": self.v_out, "alpha": self.alpha.tolist(),
            "beta": self.beta.tolist(), "kappa2": self.kappa2,
            "ck_identity": self.ck_identity, "ntk_identity": self.ntk_identity,
        }


def _as_activations(activations):
    if isinstance(activations, (str, bytes)) or callable(activations):
        raise TypeError("activations must be a sequence of activations, one per layer.")
    acts = tuple(resolve_activation(a) for a in activations)
    if not acts:
        raise ValueError("activations must name at least one layer.")
    return acts


def deep_coefficients(activations, v0):
    """Per-layer moments and CK/NTK coefficients of a deep centred random network.

    Parameters
    ----------
    activations : sequence of Activation (or anything ``resolve_activation`` accepts)
        One activation per layer, first layer first.
    v0 : float
        Input variance ``v_0 = mean ||x||^2`` (a variance), > 0.

    Returns
    -------
    tuple of LayerCoefficients
        One record per layer. Recursions (``moments.md`` §8): from ``alpha_0 = (1, 0, 0, 1)``,
        ``beta_0 = (1, 0, 0)``, ``kappa_0^2 = v_0`` and the moments of ``sigma_l`` at ``v_{l-1}``,

        - ``alpha_1 <- m1^2 alpha_1``,
          ``alpha_2 <- m1^2 alpha_2 + (m2^2/4) alpha_4^2``,
          ``alpha_3 <- m1^2 alpha_3 + (m2^2/2) alpha_1^2``, ``alpha_4 <- (e3/2) alpha_4``;
        - ``beta_1 <- alpha_1' + m1^2 beta_1``, ``beta_2 <- alpha_2' + m1^2 beta_2``,
          ``beta_3 <- alpha_3' + m1^2 beta_3 + m2^2 alpha_1 beta_1`` (primes: the new alphas);
        - ``kappa^2 <- v_l + q_l kappa^2``.

    Examples
    --------
    >>> from skrmt._theory._activations import resolve_activation
    >>> relu = resolve_activation("relu")
    >>> layers = deep_coefficients([relu, relu], 1.0)
    >>> [round(float(a), 6) for a in layers[1].alpha]
    [0.0625, 0.023509, 0.034486, 0.116175]
    >>> round(layers[1].ntk_identity, 6)
    0.349098
    """
    acts = _as_activations(activations)
    v0 = float(v0)
    if not math.isfinite(v0) or v0 <= 0:
        raise ValueError(f"v0 (the input variance) must be finite and > 0, got {v0!r}.")
    alpha = (1.0, 0.0, 0.0, 1.0)
    beta = (1.0, 0.0, 0.0)
    kappa2, v_in = v0, v0
    out = []
    for act in acts:
        mom = gaussian_moments(act, v_in)
        m1s, m2s = mom.m1 * mom.m1, mom.m2 * mom.m2
        a1, a2, a3, a4 = alpha
        new_alpha = (
            m1s * a1,
            m1s * a2 + 0.25 * m2s * a4 * a4,
            m1s * a3 + 0.5 * m2s * a1 * a1,
            0.5 * mom.e3 * a4,
        )
        b1, b2, b3 = beta
        new_beta = (
            new_alpha[0] + m1s * b1,
            new_alpha[1] + m1s * b2,
            new_alpha[2] + m1s * b3 + m2s * a1 * b1,
        )
        v_out = float(mom.var)
        kappa2 = v_out + kappa2 * mom.q if math.isfinite(mom.q) else math.inf
        out.append(
            LayerCoefficients(
                m0=float(mom.m0), m1=float(mom.m1), m2=float(mom.m2), e3=float(mom.e3),
                q=float(mom.q), v_in=v_in, v_out=v_out, alpha=_frozen(new_alpha),
                beta=_frozen(new_beta), kappa2=kappa2,
                ck_identity=v_out - new_alpha[0] * v0,
                ntk_identity=kappa2 - new_beta[0] * v0,
            )
        )
        alpha, beta, v_in = new_alpha, new_beta, v_out
    return tuple(out)


def check_ntk_activations(activations, param="activation"):
    """ValueError when an activation jumps: the NTK diagonal is then infinite (q = inf)."""
    for layer, act in enumerate(_as_activations(activations), start=1):
        if act.jumps:
            raise ValueError(
                f"{param}: the NTK of activation {act.name!r} (layer {layer}) is infinite on "
                "the diagonal (a jump has a Dirac derivative, q = E sigma'^2 = inf); use "
                "model='ck' or a continuous activation."
            )


def _check_kernel(kernel):
    if kernel not in _KERNELS:
        raise ValueError(f"kernel must be one of {_KERNELS}, got {kernel!r}.")


def _check_layers(acts, layers):
    if len(layers) != len(acts):
        raise ValueError(
            f"layers has {len(layers)} records for {len(acts)} activations; pass "
            "deep_coefficients(activations, v0)."
        )


# =============================================================================================
# exact one-dimensional (diagonal) recursion
# =============================================================================================
@dataclass(frozen=True, eq=False)
class DeepDiagonal:
    """Per-sample diagonal of the deep kernels, layer by layer (numpy, float64).

    ``inputs[l]``: the pre-activation variance ``K_{l-1}(x, x)`` entering layer ``l + 1``;
    ``m0[l]``: ``E sigma_{l+1}(u)`` at that variance; ``ck_layers[l]`` and ``ntk_layers[l]``:
    ``K_{l+1}(x, x)`` and ``Theta_{l+1}(x, x)`` (the latter None for the CK).
    """

    inputs: tuple
    m0: tuple
    ck_layers: tuple
    ntk_layers: tuple

    @property
    def ck(self):
        """``K_L(x, x)``."""
        return self.ck_layers[-1]

    @property
    def ntk(self):
        """``Theta_L(x, x)`` (None for the CK)."""
        return self.ntk_layers[-1]


def _one_dim(act, A, need_q):
    """``m0(A)``, ``s2(A)`` and (optionally) ``q(A)`` at per-sample variances ``A >= 0``."""
    A = np.asarray(A, dtype=np.float64)
    vals, inv = np.unique(A, return_inverse=True)
    m0 = np.empty_like(vals)
    pos = vals > 0
    if np.any(pos):
        m0[pos] = gaussian_moments(act, vals[pos]).m0
    if not np.all(pos):
        m0[~pos] = float(np.asarray(act.fn(np.zeros(1)))[0])  # u = 0 exactly
    s2 = np.asarray(dual_kernel_diag(act, vals), dtype=np.float64)
    q = np.asarray(dual_kernel_prime_diag(act, vals), dtype=np.float64) if need_q else None
    shape = A.shape
    return (
        m0[inv].reshape(shape),
        s2[inv].reshape(shape),
        None if q is None else q[inv].reshape(shape),
    )


def deep_diagonal(activations, layers, A0, *, kernel="ck", center_output=True):
    """Exact per-sample diagonal ``K_L(x, x)`` (and ``Theta_L(x, x)``) from the 1-D recursion.

    Parameters
    ----------
    activations : sequence of Activation
    layers : tuple of LayerCoefficients
        From :func:`deep_coefficients` (the centring constants ``c_l``).
    A0 : array_like
        ``||x||^2`` per sample (scaled inputs), >= 0.
    kernel : {"ck", "ntk"}
    center_output : bool
        Centre the last layer too (else its raw output ``E sigma_L sigma_L``).

    Returns
    -------
    DeepDiagonal
        ``K_l(x, x) = s2_l(A) - 2 c_l m0_l(A) + c_l^2`` (``s2_l(A)`` for a raw output layer),
        ``Theta_l(x, x) = K_l(x, x) + Theta_{l-1}(x, x) q_l(A)``, ``A = K_{l-1}(x, x)``.
    """
    acts = _as_activations(activations)
    _check_kernel(kernel)
    _check_layers(acts, layers)
    if kernel == "ntk":
        check_ntk_activations(acts)
    A = np.asarray(A0, dtype=np.float64)
    theta = A.copy() if kernel == "ntk" else None
    inputs, m0s, ck_layers, ntk_layers = [], [], [], []
    n_layers = len(acts)
    for ell, (act, lc) in enumerate(zip(acts, layers)):
        m0, s2, q = _one_dim(act, A, kernel == "ntk")
        inputs.append(A)
        m0s.append(m0)
        if ell == n_layers - 1 and not center_output:
            K = s2
        else:
            c = lc.m0
            K = s2 - 2.0 * c * m0 + c * c
        if theta is not None:
            theta = K + theta * q
        A = np.clip(K, 0.0, None)  # a variance: clip rounding below 0
        ck_layers.append(A)
        ntk_layers.append(theta)
    return DeepDiagonal(inputs=tuple(inputs), m0=tuple(m0s), ck_layers=tuple(ck_layers),
                        ntk_layers=tuple(ntk_layers))


# =============================================================================================
# limit form: exact infinite-width kernels, entrywise (ntk_lc.md §2.4)
# =============================================================================================
def deep_limit_block(ops, activations, layers, Xb, Y, *, kernel="ck", center_output=True,
                     row_diag=None, col_diag=None, all_layers=False):
    """Rows ``Xb`` against ``Y`` of the exact deep CK or NTK (no diagonal handling).

    Parameters
    ----------
    ops : array namespace
        From :func:`skrmt._backend.get_ops` (float64).
    activations, layers
        Per-layer activations and their :func:`deep_coefficients`.
    Xb, Y : device arrays of shape (n_b, p), (m, p)
        Scaled inputs (``||x||^2 = O(1)``).
    kernel : {"ck", "ntk"}
    center_output : bool
    row_diag, col_diag : DeepDiagonal, optional
        Diagonal recursions of ``Xb`` and ``Y`` (computed when omitted); pass ``col_diag``
        to share it between row blocks.
    all_layers : bool, default=False
        Return the list of the kernels after each layer (hidden layers centred) instead of
        the last one.

    Returns
    -------
    device array of shape (n_b, m), or a list of them
        ``K_l = Phi_l(A, B, C) - c_l (m0_l(A) + m0_l(B)) + c_l^2``, ``K_0 = x^T y``, and for
        the NTK ``Theta_l = K_l + Theta_{l-1} Phi'_l(A, B, C)``, ``Theta_0 = x^T y``, where
        ``(A, B, C) = (K_{l-1}(x, x), K_{l-1}(y, y), K_{l-1}(x, y))``. Test and train blocks are
        independent: each entry needs only its own triple.
    """
    acts = _as_activations(activations)
    _check_kernel(kernel)
    _check_layers(acts, layers)
    ntk = kernel == "ntk"
    if ntk:
        check_ntk_activations(acts)
    if row_diag is None:
        row_diag = deep_diagonal(acts, layers, ops.to_numpy(ops.sqnorm_rows(Xb)),
                                 kernel=kernel, center_output=center_output)
    if col_diag is None:
        col_diag = deep_diagonal(acts, layers, ops.to_numpy(ops.sqnorm_rows(Y)),
                                 kernel=kernel, center_output=center_output)
    C = ops.matmul(Xb, Y.T)
    theta = C if ntk else None
    n_layers = len(acts)
    history = []
    for ell, (act, lc) in enumerate(zip(acts, layers)):
        A = ops.asarray(row_diag.inputs[ell][:, None])
        B = ops.asarray(col_diag.inputs[ell][None, :])
        Phi = dual_kernel(act, A, B, C, ops=ops)
        if ntk:
            Phi_prime = dual_kernel_prime(act, A, B, C, ops=ops)
        if ell < n_layers - 1 or center_output:
            c = lc.m0
            m0A = ops.asarray(row_diag.m0[ell][:, None])
            m0B = ops.asarray(col_diag.m0[ell][None, :])
            Phi = Phi - c * (m0A + m0B) + c * c
        if ntk:
            theta = Phi + theta * Phi_prime
        C = Phi
        if all_layers:
            history.append(theta if ntk else C)
    if all_layers:
        return history
    return theta if ntk else C


# =============================================================================================
# equivalent forms (ntk_lc.md §2.2-§2.3)
# =============================================================================================
def _coefficient_vector(layers, kernel):
    last = layers[-1]
    return last.beta[:3] if kernel == "ntk" else last.alpha[:3]


def _raw_output_terms(layers):
    """Constant and slope of ``delta`` that a raw (uncentred) output layer adds (§2.5)."""
    last = layers[-1]
    a4_prev = 1.0 if len(layers) == 1 else float(layers[-2].alpha[3])
    return last.m0 * last.m0, 0.5 * last.m0 * last.m2 * a4_prev


def deep_equivalent_block(ops, layers, Xb, Y, v0, *, kernel="ck", center_output=True):
    """Rows ``Xb`` against ``Y`` of the data-form equivalent, off-diagonal entries.

    ``alpha_1 x^T y + alpha_2 delta_x delta_y + alpha_3 (x^T y)^2`` (beta for the NTK) with
    ``delta = ||x||^2 - v0``; a raw output layer adds ``c_L^2 + (c_L m2_L alpha_{L-1,4}/2)
    (delta_x + delta_y)``. Inputs are scaled device arrays; no identity term (the diagonal is
    the exact per-sample value, :func:`deep_diagonal`).
    """
    _check_kernel(kernel)
    a1, a2, a3 = (float(a) for a in _coefficient_vector(layers, kernel))
    G = ops.matmul(Xb, Y.T)
    dx = ops.sqnorm_rows(Xb) - v0
    dy = ops.sqnorm_rows(Y) - v0
    K = a1 * G + a2 * (dx[:, None] * dy[None, :]) + a3 * (G * G)
    if not center_output:
        const, slope = _raw_output_terms(layers)
        K = K + const + slope * (dx[:, None] + dy[None, :])
    return K


def deep_gmm_equivalent(layers, X, params, v0, *, kernel="ck"):
    """GMM form of the theorem (``ntk_lc.md`` §2.2), all layers centred; a test oracle.

    ``alpha_1 X X^T + V A V^T + identity * I`` with ``V = [J / sqrt(p), psi]``,
    ``A = [[alpha_2 t t^T + alpha_3 T, alpha_2 t], [alpha_2 t^T, alpha_2]]`` (beta for the
    NTK), identity ``v_L - alpha_{L,1} v0`` (CK) or ``kappa_L^2 - beta_{L,1} v0`` (NTK).

    Parameters
    ----------
    layers : tuple of LayerCoefficients
    X : ndarray of shape (n, p)
        Scaled samples (``make_gmm`` returns them so).
    params : dict
        ``make_gmm(..., return_params=True)``'s third output (``J``, ``psi``, ``t``, ``T``).
    v0 : float
        The ``v_0`` the coefficients were computed at.
    kernel : {"ck", "ntk"}
    """
    _check_kernel(kernel)
    X = np.asarray(X, dtype=np.float64)
    p = X.shape[1]
    a1, a2, a3 = (float(a) for a in _coefficient_vector(layers, kernel))
    last = layers[-1]
    ident = last.ntk_identity if kernel == "ntk" else last.ck_identity
    J = np.asarray(params["J"], dtype=np.float64)
    psi = np.asarray(params["psi"], dtype=np.float64)
    t = np.asarray(params["t"], dtype=np.float64)
    T = np.asarray(params["T"], dtype=np.float64)
    V = np.column_stack([J / math.sqrt(p), psi])
    K_ = len(t)
    Amat = np.empty((K_ + 1, K_ + 1))
    Amat[:K_, :K_] = a2 * np.outer(t, t) + a3 * T
    Amat[:K_, K_] = Amat[K_, :K_] = a2 * t
    Amat[K_, K_] = a2
    K = a1 * (X @ X.T) + V @ Amat @ V.T
    K[np.diag_indices_from(K)] += ident
    return K


# =============================================================================================
# convenience: full Gram matrices
# =============================================================================================
def deep_kernel(activations, X, Y=None, *, kernel="ck", form="limit", v0=None,
                center_output=True, all_layers=False, ops=None):
    """Deep CK or NTK Gram ``K(X, Y)`` of scaled inputs, numpy float64.

    Parameters
    ----------
    activations : sequence
        One activation per layer.
    X : ndarray of shape (n, p)
        Scaled samples (``||x||^2 = O(1)``).
    Y : ndarray of shape (m, p), optional
        Default: ``X`` (a self-Gram, whose diagonal is the exact 1-D value in both forms).
    kernel : {"ck", "ntk"}
    form : {"limit", "equivalent"}
    v0 : float, optional
        Input variance of the scale recursion; default ``mean ||x||^2`` over ``Y`` (over
        ``X`` for a self-Gram).
    center_output : bool, default=True
        Centre every layer (the theory's convention); False returns the raw last layer.
    all_layers : bool, default=False
        Return a list with the Gram after each layer (depths 1..L; hidden layers centred),
        from one pass of the recursion.
    ops : array namespace, optional
        numpy by default.

    Returns
    -------
    ndarray of shape (n, m), or a list of L of them
        For a cross Gram the entries are the off-diagonal formula everywhere (callers that
        need exact values on identical rows substitute :func:`deep_diagonal`).
    """
    acts = _as_activations(activations)
    _check_kernel(kernel)
    if form not in ("limit", "equivalent"):
        raise ValueError(f"form must be 'limit' or 'equivalent', got {form!r}.")
    if kernel == "ntk":
        check_ntk_activations(acts)
    ops = get_ops("numpy", np.float64) if ops is None else ops
    self_gram = Y is None
    X = np.asarray(X, dtype=np.float64)
    Y = X if self_gram else np.asarray(Y, dtype=np.float64)
    if v0 is None:
        v0 = float(np.einsum("ij,ij->", Y, Y)) / Y.shape[0]
    layers = deep_coefficients(acts, v0)
    Xd, Yd = ops.asarray(X), ops.asarray(Y)
    depths = range(1, len(acts) + 1) if all_layers else (len(acts),)
    if form == "limit":
        col = deep_diagonal(acts, layers, np.einsum("ij,ij->i", Y, Y), kernel=kernel,
                            center_output=center_output)
        row = col if self_gram else None
        Ks = deep_limit_block(ops, acts, layers, Xd, Yd, kernel=kernel,
                              center_output=center_output, row_diag=row, col_diag=col,
                              all_layers=True)
        Ks = [Ks[d - 1] for d in depths]
    else:
        Ks = [deep_equivalent_block(ops, layers[:d], Xd, Yd, v0, kernel=kernel,
                                    center_output=center_output or d < len(acts))
              for d in depths]
    Ks = [np.array(ops.to_numpy(K), dtype=np.float64) for K in Ks]
    if self_gram:
        diag = deep_diagonal(acts, layers, np.einsum("ij,ij->i", X, X), kernel=kernel,
                             center_output=center_output)
        for d, K in zip(depths, Ks):
            np.fill_diagonal(K, (diag.ntk_layers if kernel == "ntk" else diag.ck_layers)[d - 1])
    return Ks if all_layers else Ks[0]
