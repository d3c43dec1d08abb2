"""Deep-equilibrium (DEQ) kernels: the implicit CK/NTK fixed point, its RMT equivalent, and the
shallow explicit network whose kernel matches it.

Design note: ``deq.md`` (Ling et al., ICML 2024). Conventions of this module (those of the note,
translated by ``moments.md`` §2):

- inputs are in the **DEQ scale**: rows ``x`` with ``||x|| = O(1)`` (skrmt's estimators pass
  ``x / sqrt(p)``); ``L = X X^T``, ``q_i = ||x_i||^2``, ``tau0_sq = mean_i q_i``;
- ``sigma_b2 = 1 - sigma_a2``; the activation is centred, ``phi = phi0 - c`` with
  ``c = E phi0(tau xi)`` frozen at the equilibrium pre-activation scale of the training set;
- the note's ``tau``, ``tau0`` are standard deviations; fields named ``*_sq`` or ``tau_star2``
  are variances; the note's ``d1, d2, d4`` are skrmt's ``m1, m2, e3`` at variance ``tau^2``.

The exact kernel solves, entry by entry (entries decouple),

    K = sigma_a2 Phi(K) + sigma_b2 L,   G = Phi(K),   Phi(K)_ij = E[phi(u) phi(v)],

with ``(u, v) ~ N(0, [[K_ii, K_ij], [K_ij, K_jj]])``: first the per-row diagonals ``k_i``, then
every off-diagonal entry as one scalar equation. For the positively homogeneous piecewise-linear
activations (relu, leaky_relu, abs, linear) the off-diagonal equation is
``g(rho) = rho - sigma_a2 Jg(rho) = s_ij`` with ``s_ij`` a closed form of ``(L_ij, k_i, k_j)``;
``g^{-1}`` depends on ``sigma_a2`` (and the slope) alone, so it is tabulated once and each entry
costs one table look-up and one Newton polish step (README Correction 4). Other activations
iterate Picard sweeps on the closed-form dual kernels of ``_gaussian_moments`` or on a Hermite
(Mehler) series with per-row coefficients.

Everything runs in float64; functions taking ``ops`` work on numpy or torch arrays
(``skrmt._backend``). No estimator logic lives here.
"""

import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from scipy import optimize
from scipy.special import erf, erfc
from sklearn.exceptions import ConvergenceWarning

from .._backend import get_ops
from ._activations import resolve_activation
from ._gaussian_moments import (
    dual_kernel,
    dual_kernel_diag,
    dual_kernel_prime,
    dual_kernel_prime_diag,
    gaussian_moments,
    hermite_coefficients,
)

__all__ = [
    "DEQScalars",
    "ExplicitMatch",
    "FixedPointInfo",
    "deq_diagonal",
    "deq_equivalent",
    "deq_equivalent_population",
    "deq_random_features",
    "deq_scalars",
    "explicit_ck",
    "explicit_features",
    "homogeneous_slope",
    "implicit_cross_gram",
    "implicit_gram",
    "match_explicit",
]

_TWO_PI = 2.0 * math.pi
_SQRT_2PI = math.sqrt(_TWO_PI)
_TABLE_POINTS = 65537  # interpolation error ~1e-10; one Newton step then reaches ~1e-16
_TILE = 256  # 256 x 256 float64 tiles (512 KiB) stay in cache through a dozen passes
_K_FLOOR = 1e-200  # a zero input row of an odd network has k_i = 0: keep 1/sqrt(k) finite
_BLOCK_ENTRIES = 2**24  # entries of one test-vs-train block (128 MiB in float64)
_CPU_TORCH_ENTRIES = 2**21  # torch on a CPU: a dozen temporaries per block stay nearer cache
_MEHLER_MAX_ORDER = 80
_MEHLER_AIM = 1e-12  # relative Parseval bound the Hermite order is raised to meet
_MEHLER_WARN = 1e-8
_DIAG_TOL = 1e-14


def _n_threads():
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


# =============================================================================================
# scalars (deq.md §1, §3)
# =============================================================================================
@dataclass(frozen=True)
class DEQScalars:
    """Scalars of a DEQ kernel at a training scale (deq.md §1, §3).

    Attributes
    ----------
    activation : Activation
        The (uncentred) activation ``phi0``.
    sigma_a2, sigma_b2 : float
        ``sigma_a^2`` and ``1 - sigma_a^2``.
    tau0_sq : float
        Mean squared norm of the training rows in the DEQ scale (``tau0^2`` of the note).
    tau_sq : float
        Equilibrium pre-activation variance ``tau^2``.
    shift : float
        Centring constant ``c = E phi0(tau xi)`` (0 for odd activations).
    tau_star2 : float
        Post-activation variance ``E phi^2(tau xi)`` (diagonal level of ``G*``).
    m1, m2, e3 : float
        Moments of the centred activation at ``tau^2`` (the note's ``d1, d2, d4``).
    alpha1, alpha2, alpha3 : float
        Coefficients of the RMT equivalent (nan when a denominator is not positive).
    n_iter : int
        Picard steps of the scalar fixed point.
    slope : float or None
        ``beta`` when ``phi0(t) = beta t + (1 - beta) relu(t)`` (relu 0, leaky_relu its slope,
        abs -1, linear 1): those activations take the table path; None otherwise.
    """

    activation: object
    sigma_a2: float
    sigma_b2: float
    tau0_sq: float
    tau_sq: float
    shift: float
    tau_star2: float
    m1: float
    m2: float
    e3: float
    alpha1: float
    alpha2: float
    alpha3: float
    n_iter: int
    slope: object = None

    @property
    def tau0(self):
        """Standard deviation ``tau0`` of the training rows."""
        return math.sqrt(self.tau0_sq)

    @property
    def tau(self):
        """Equilibrium pre-activation standard deviation ``tau``."""
        return math.sqrt(self.tau_sq)

    @property
    def equivalent_defined(self):
        """Whether both denominators of the RMT equivalent are positive."""
        return bool(np.isfinite(self.alpha1) and np.isfinite(self.alpha2))

    @property
    def ridge(self):
        """White-noise level ``tau*^2 - tau0^2 alpha1 - alpha3 tau0^4`` of the data form."""
        return self.tau_star2 - self.tau0_sq * self.alpha1 - self.alpha3 * self.tau0_sq**2

    def as_dict(self):
        """Plain floats (skrmt names: ``tau`` is the variance ``tau^2``, ``m0`` the shift ``c``)."""
        return {
            "sigma_a2": self.sigma_a2,
            "sigma_b2": self.sigma_b2,
            "tau0": self.tau0_sq,
            "tau": self.tau_sq,
            "m0": self.shift,
            "var": self.tau_star2,
            "m1": self.m1,
            "m2": self.m2,
            "e3": self.e3,
            "alpha1": self.alpha1,
            "alpha2": self.alpha2,
            "alpha3": self.alpha3,
            "ridge": self.ridge,
        }


def homogeneous_slope(act):
    """``beta`` with ``phi0(t) = beta t + (1 - beta) relu(t)``, or None.

    The positively homogeneous piecewise-linear activations (relu, leaky_relu, abs, linear)
    have closed-form diagonals and the tabulated off-diagonal solve.
    """
    act = resolve_activation(act)
    if act.name == "relu":
        return 0.0
    if act.name == "leaky_relu":
        return float(dict(act.params)["negative_slope"])
    if act.name == "abs":
        return -1.0
    if act.name == "linear":
        return 1.0
    return None


def deq_scalars(activation, sigma_a2, tau0_sq, *, tol=1e-15, max_iter=500):
    """Equilibrium scalars of a DEQ with activation ``phi0`` on data of scale ``tau0_sq``.

    ``tau^2 = sigma_a2 E phi^2(tau xi) + sigma_b2 tau0^2`` with ``phi`` re-centred at the current
    ``tau`` (Picard from ``tau = tau0``; closed form for the homogeneous activations), then the
    moments and the coefficients ``alpha1..3`` of deq.md §3.

    Parameters
    ----------
    activation : str, Activation or callable
    sigma_a2 : float in (0, 1)
    tau0_sq : float > 0
        Mean squared norm of the (DEQ-scale) training rows.
    tol : float, default=1e-15
        Relative tolerance of the scalar fixed point.
    max_iter : int, default=500

    Returns
    -------
    DEQScalars

    Raises
    ------
    ValueError
        ``sigma_a2`` outside (0, 1), ``tau0_sq`` not positive, or a diverging fixed point.
    """
    act = resolve_activation(activation)
    sigma_a2 = float(sigma_a2)
    if not 0.0 < sigma_a2 < 1.0:
        raise ValueError(f"sigma_a2 must lie in (0, 1), got {sigma_a2!r}.")
    tau0_sq = float(tau0_sq)
    if not (np.isfinite(tau0_sq) and tau0_sq > 0):
        raise ValueError(f"tau0_sq (mean squared norm of the data) must be > 0, got {tau0_sq!r}.")
    sigma_b2 = 1.0 - sigma_a2
    beta = homogeneous_slope(act)
    n_iter = 1
    if beta is not None:
        var1 = gaussian_moments(act, 1.0).var  # Var phi0(xi); Var at tau^2 is tau^2 var1
        denom = 1.0 - sigma_a2 * var1
        if denom <= 0:
            raise ValueError(
                f"the scalar fixed point diverges: sigma_a2 * Var phi0(xi) = {sigma_a2 * var1:.3g}"
                " >= 1; lower sigma_a2."
            )
        tau_sq = sigma_b2 * tau0_sq / denom
    else:
        tau_sq = tau0_sq
        converged = False
        for n_iter in range(1, max_iter + 1):
            new = sigma_a2 * gaussian_moments(act, tau_sq).var + sigma_b2 * tau0_sq
            if not np.isfinite(new) or new > 1e12 * tau0_sq:
                raise ValueError(
                    f"the scalar fixed point of activation {act.name!r} diverges at "
                    f"sigma_a2={sigma_a2}; lower sigma_a2."
                )
            done = abs(new - tau_sq) <= tol * new
            tau_sq = new
            if done:
                converged = True
                break
        if not converged:
            warnings.warn(
                f"the scalar fixed point tau^2 did not reach tol={tol:g} in {max_iter} "
                "iterations.",
                ConvergenceWarning,
                stacklevel=2,
            )
    m = gaussian_moments(act, tau_sq)
    shift = 0.0 if act.parity == "odd" else float(m.m0)
    d1, d2, d4 = float(m.m1), float(m.m2), float(m.e3)
    den1 = 1.0 - sigma_a2 * d1 * d1
    den4 = 1.0 - 0.5 * sigma_a2 * d4
    if den1 > 0 and den4 > 0:
        a1 = sigma_b2 / den1
        a4 = sigma_b2 / den4
        alpha1 = d1 * d1 * a1
        alpha2 = d2 * d2 * a4 * a4 / (4.0 * den1)
        alpha3 = d2 * d2 * a1 * a1 / (2.0 * den1)
    else:
        alpha1 = alpha2 = alpha3 = float("nan")
    return DEQScalars(
        activation=act,
        sigma_a2=sigma_a2,
        sigma_b2=sigma_b2,
        tau0_sq=tau0_sq,
        tau_sq=float(tau_sq),
        shift=shift,
        tau_star2=float(m.var),
        m1=d1,
        m2=d2,
        e3=d4,
        alpha1=float(alpha1),
        alpha2=float(alpha2),
        alpha3=float(alpha3),
        n_iter=int(n_iter),
        slope=beta,
    )


# =============================================================================================
# per-row diagonal (deq.md §2 step 2)
# =============================================================================================
def _homog_constants(sc):
    """``s2(1) = (1 + beta^2)/2`` and ``mu1 = m0(1) = (1 - beta)/sqrt(2 pi)`` of ``phi0``."""
    beta = sc.slope
    return (1.0 + beta * beta) / 2.0, (1.0 - beta) / _SQRT_2PI


def deq_diagonal(sc, q, *, tol=_DIAG_TOL, max_iter=500):
    """Per-row pre-activation variances ``k_i`` and post-activation diagonals ``G*_ii``.

    ``k_i = sigma_a2 E phi^2(sqrt(k_i) xi) + sigma_b2 q_i`` with the frozen centring ``c``:
    a quadratic in ``sqrt(k_i)`` for the homogeneous activations, a vectorised Picard
    iteration otherwise (contraction factor ``sigma_a2 q <= sigma_a2 L_phi^2``).

    Parameters
    ----------
    sc : DEQScalars
    q : ndarray of shape (n,)
        Squared norms of the rows (DEQ scale).

    Returns
    -------
    k : ndarray of shape (n,)
        Diagonal of ``K*`` (floored at 1e-200).
    g : ndarray of shape (n,)
        Diagonal of ``G*``, ``E phi^2(sqrt(k_i) xi)``.
    """
    q = np.asarray(q, dtype=np.float64)
    sa2, sb2, c = sc.sigma_a2, sc.sigma_b2, sc.shift
    if sc.slope is not None:
        s2_1, mu1 = _homog_constants(sc)
        a = 1.0 - sa2 * s2_1
        b = 2.0 * sa2 * c * mu1
        cc = -(sa2 * c * c + sb2 * q)
        # the root b/(...) form avoids cancellation when b^2 >> |a cc|
        disc = np.sqrt(b * b - 4.0 * a * cc)
        root = np.where(b >= 0, -2.0 * cc / (b + disc), (disc - b) / (2.0 * a))
        k = np.maximum(root * root, _K_FLOOR)
        d = np.sqrt(k)
        g = k * s2_1 - 2.0 * c * mu1 * d + c * c
        return k, g
    act = sc.activation
    # Newton on F(k) = sa2 E phi^2(sqrt(k) xi) + sb2 q - k, with
    # dE phi^2 / dk = e3/2 + (m0 - c) m2 (moments.md §3 identities); a step that leaves
    # (0, inf) falls back to the Picard step (a contraction: factor sa2 E phi'^2)
    k = np.maximum(sb2 * q + sa2 * sc.tau_star2 * q / sc.tau0_sq, _K_FLOOR)
    converged = k.size == 0
    for _ in range(max_iter):
        if converged:
            break
        m = gaussian_moments(act, k)
        g = m.s2 - 2.0 * c * m.m0 + c * c
        picard = np.maximum(sa2 * g + sb2 * q, _K_FLOOR)
        slope = sa2 * (m.e3 / 2.0 + (m.m0 - c) * m.m2) - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = k - (picard - k) / slope
        ok = np.isfinite(newton) & (newton > 0) & (slope < 0)
        new = np.where(ok, newton, picard)
        delta = float(np.max(np.abs(new - k)))
        k = np.maximum(new, _K_FLOOR)
        converged = delta <= tol * float(np.max(k))
    if not converged:
        warnings.warn(
            f"the per-row diagonal fixed point did not reach tol={tol:g} in {max_iter} "
            "iterations.",
            ConvergenceWarning,
            stacklevel=2,
        )
    m = gaussian_moments(act, k)
    return k, m.s2 - 2.0 * c * m.m0 + c * c


def _diag_from_k(sc, k):
    """``E phi^2(sqrt(k) xi)`` with the frozen centring, from stored diagonals."""
    m = gaussian_moments(sc.activation, np.maximum(k, _K_FLOOR))
    return np.asarray(m.s2 - 2.0 * sc.shift * m.m0 + sc.shift**2, dtype=np.float64)


def _diag_prime(sc, k):
    """``E phi'(u)^2`` at the per-row variances (the NTK diagonal's ``Gdot_ii``)."""
    if sc.slope is not None:
        return np.full_like(k, _homog_constants(sc)[0])
    return np.asarray(dual_kernel_prime_diag(sc.activation, k), dtype=np.float64)


# =============================================================================================
# results of a fixed point
# =============================================================================================
@dataclass
class FixedPointInfo:
    """How the entrywise fixed point went.

    Attributes
    ----------
    n_iter : int
        Newton polish steps (table path) or Picard sweeps, max over blocks; >= 1.
    max_delta : float
        Last max ``|Delta K|`` divided by ``max_i k_i``.
    converged : bool
    k_rows, k_cols : ndarray
        Per-row pre-activation variances of the two sides.
    history : list of float
        Per step, max ``|Delta K| / max k`` over all blocks.
    contraction : float
        ``sigma_a2 max_i E phi'(sqrt(k_i) xi)^2``, a bound on every entry's contraction
        factor ``sigma_a2 E[phi'(u) phi'(v)]`` (Cauchy-Schwarz); below 1 the fixed point is
        unique and Picard converges (``inf`` for activations with jumps).
    """

    n_iter: int = 0
    max_delta: float = 0.0
    converged: bool = True
    k_rows: object = None
    k_cols: object = None
    history: list = field(default_factory=list)
    contraction: float = float("nan")

    def merge(self, n_iter, history, converged):
        """Fold one block's result in (steps: max; history: per-step max)."""
        self.n_iter = max(self.n_iter, int(n_iter))
        self.converged = self.converged and bool(converged)
        for i, h in enumerate(history):
            if i < len(self.history):
                self.history[i] = max(self.history[i], h)
            else:
                self.history.append(h)
        if history:
            self.max_delta = max(self.max_delta, float(history[-1]))


def _finish(info, tol, max_iter, verbose, what, kmax):
    info.n_iter = max(info.n_iter, 1)
    scale = 1.0 / kmax if kmax > 0 else 1.0  # report |dK| relative to max_i k_i
    info.history = [h * scale for h in info.history]
    info.max_delta *= scale
    if verbose:
        for i, h in enumerate(info.history, 1):
            print(f"[DEQ] {what} step {i}: max |dK| / max k = {h:.3e}")
    if not info.converged:
        hint = "increase max_iter or tol."
        if not info.contraction < 1.0:
            hint = (f"sigma_a2 E phi'^2 = {info.contraction:.3g} >= 1: the entrywise map is "
                    "not a guaranteed contraction; lower sigma_a2.")
        warnings.warn(
            f"the implicit-kernel fixed point did not reach tol={tol:g} within max_iter="
            f"{max_iter} steps (last max |dK| / max k = {info.max_delta:.2e}); {hint}",
            ConvergenceWarning,
            stacklevel=3,
        )
    return info


def _contraction(sc, *ks):
    """``sigma_a2 max_i E phi'^2`` over the per-row variances (nan if not computable)."""
    if sc.slope is not None:
        return sc.sigma_a2 * _homog_constants(sc)[0]
    if sc.activation.jumps:
        return float("inf")
    try:
        k = np.concatenate([np.ravel(a) for a in ks])
        return sc.sigma_a2 * float(np.max(_diag_prime(sc, k))) if k.size else float("nan")
    except (ValueError, TypeError):  # e.g. a callable without a derivative
        return float("nan")


# =============================================================================================
# homogeneous activations: the table of g^{-1} and the per-entry solve
# =============================================================================================
@lru_cache(maxsize=16)
def _rho_table(sigma_a2, beta, n_points=_TABLE_POINTS):
    """``rho = g^{-1}(s)`` on a uniform grid of ``[g(-1), g(1)]`` (read-only arrays).

    ``g(rho) = rho - sigma_a2 (beta rho + (1 - beta)^2 J(rho))`` is increasing with
    ``g' >= 1 - sigma_a2 (1 + beta^2)/2 > 0``, so Newton from ``rho = clip(s)`` converges.
    """
    arc = (1.0 - beta) ** 2
    lo = -1.0 + sigma_a2 * beta
    hi = 1.0 - sigma_a2 * (1.0 + beta * beta) / 2.0
    s = np.linspace(lo, hi, n_points)
    rho = np.clip(s, -1.0, 1.0)
    for _ in range(60):
        th = np.arccos(rho)
        jv = (np.sqrt(np.maximum(1.0 - rho * rho, 0.0)) + (math.pi - th) * rho) / _TWO_PI
        jp = (math.pi - th) / _TWO_PI
        step = (rho - sigma_a2 * (beta * rho + arc * jv) - s) / (1.0 - sigma_a2 * (beta + arc * jp))
        rho = np.clip(rho - step, -1.0, 1.0)
        if np.max(np.abs(step)) < 1e-16:
            break
    rho[0], rho[-1] = -1.0, 1.0
    drho = np.diff(rho)
    rho.setflags(write=False)
    drho.setflags(write=False)
    return lo, hi, (n_points - 1) / (hi - lo), rho, drho


def _max_abs(ops, x):
    size = x.numel() if ops.is_torch else x.size
    return float(ops.xp.max(ops.xp.abs(x))) if size else 0.0


def _empty(ops, shape):
    if ops.is_torch:
        return ops.torch.empty(shape, dtype=ops.torch.float64, device=ops.device)
    return np.empty(shape)


def _homog_row_terms(sc, k):
    """Per-row ``d = sqrt(k)``, ``u = 1/d`` and ``v = sigma_a2 c mu1 u``."""
    d = np.sqrt(k)
    u = 1.0 / d
    mu1 = _homog_constants(sc)[1]
    return d, u, sc.sigma_a2 * sc.shift * mu1 * u


def _homog_tile_numpy(S, sc, tab, di, dj, ui, uj, vi, vj, tol_abs, max_iter, ntk):
    """Turn a tile of ``L`` into ``G`` (or the NTK) in place; table start, Newton polish.

    Returns the number of Newton steps and the per-step max ``|Delta K|``.
    """
    sa2, sb2, c, beta = sc.sigma_a2, sc.sigma_b2, sc.shift, sc.slope
    arc = (1.0 - beta) ** 2
    mu1 = _homog_constants(sc)[1]
    lo, hi, inv_h, R, dR = tab
    # s_ij = (sb2 L_ij + sa2 c^2) u_i u_j - sa2 c mu1 (u_i + u_j)
    S *= sb2
    S += sa2 * c * c
    S *= ui
    S *= uj
    S -= vi
    S -= vj
    np.clip(S, lo, hi, out=S)
    t = S - lo
    t *= inv_h
    idx = t.astype(np.intp)
    np.minimum(idx, R.size - 2, out=idx)
    t -= idx  # fractional part
    rho = np.take(dR, idx)
    rho *= t
    rho += np.take(R, idx)
    del idx
    ddij = di * dj
    history = []
    n_steps = 0
    converged = False
    jv = jp = None
    while n_steps < max_iter:
        n_steps += 1
        th = np.arccos(rho)
        jv = rho * rho
        np.subtract(1.0, jv, out=jv)
        np.maximum(jv, 0.0, out=jv)
        np.sqrt(jv, out=jv)  # sin(theta)
        np.subtract(math.pi, th, out=th)  # pi - theta
        t = th * rho
        jv += t
        jv *= 1.0 / _TWO_PI  # J(rho)
        th *= 1.0 / _TWO_PI  # J'(rho)
        jp = th
        if arc != 1.0 or beta != 0.0:
            jv *= arc
            jv += beta * rho
            jp *= arc
            jp += beta
        # Newton step delta = (rho - sa2 Jg - s) / (1 - sa2 Jg')
        np.multiply(jv, -sa2, out=t)
        t += rho
        t -= S
        den = jp * (-sa2)
        den += 1.0
        t /= den
        rho -= t
        np.clip(rho, -1.0, 1.0, out=rho)
        # Jg at the new rho to first order (never (rho - s)/sa2: it divides the error by sa2)
        np.multiply(jp, t, out=den)
        jv -= den
        np.abs(t, out=t)
        t *= ddij
        step = float(t.max())
        history.append(step)
        if step <= tol_abs:
            converged = True
            break
    # G_ij = d_i d_j Jg(rho) + c^2 - c mu1 (d_i + d_j)
    jv *= ddij
    if c != 0.0:
        jv += c * c
        jv -= (c * mu1) * di
        jv -= (c * mu1) * dj
    if ntk:
        th = np.arccos(rho)
        np.subtract(math.pi, th, out=th)
        th *= arc / _TWO_PI
        th += beta
        th *= -sa2
        th += 1.0
        jv /= th
    S[...] = jv
    return n_steps, history, converged


def _homog_inplace(sc, L, k_rows, k_cols, *, symmetric, tol_abs, max_iter, ntk, n_threads=None):
    """Overwrite a numpy ``L`` block with the implicit kernel, in 256 x 256 tiles on threads."""
    tab = _rho_table(sc.sigma_a2, sc.slope)
    dr, ur, vr = _homog_row_terms(sc, k_rows)
    dc, uc, vc = _homog_row_terms(sc, k_cols)
    n, m = L.shape
    tiles = [
        (i, j)
        for i in range(0, n, _TILE)
        for j in range(i if symmetric else 0, m, _TILE)
    ]
    info = FixedPointInfo()

    def work(ij):
        i, j = ij
        ri = slice(i, min(i + _TILE, n))
        cj = slice(j, min(j + _TILE, m))
        S = L[ri, cj]
        out = _homog_tile_numpy(
            S, sc, tab, dr[ri, None], dc[None, cj], ur[ri, None], uc[None, cj],
            vr[ri, None], vc[None, cj], tol_abs, max_iter, ntk,
        )
        if symmetric and i != j:
            L[cj, ri] = S.T
        elif symmetric:  # X X^T from BLAS is not bitwise symmetric: keep the upper triangle
            low = np.tril_indices(S.shape[0], -1)
            S[low] = S.T[low]
        return out

    threads = _n_threads() if n_threads is None else n_threads
    if threads > 1 and len(tiles) > 4:
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(work, tiles))
    else:
        results = [work(t) for t in tiles]
    for n_steps, history, converged in results:
        info.merge(n_steps, history, converged)
    return info


def _homog_block_xp(ops, sc, L, k_rows, k_cols, *, tol_abs, max_iter, ntk, start="table",
                    update="newton"):
    """The same per-entry solve written against ``ops.xp`` (torch, or numpy as a reference).

    ``start``: ``"table"`` (interpolated ``g^{-1}``) or ``"clip"`` (``rho = clip(s)``; with
    ``update="picard"`` it starts from ``K = sigma_b2 L``); ``update``: ``"newton"`` or
    ``"picard"`` (``rho <- s + sigma_a2 Jg(rho)``).
    """
    xp = ops.xp
    sa2, sb2, c, beta = sc.sigma_a2, sc.sigma_b2, sc.shift, sc.slope
    arc = (1.0 - beta) ** 2
    mu1 = _homog_constants(sc)[1]
    lo, hi, inv_h, R, dR = _rho_table(sa2, beta)
    dr, ur, vr = (ops.asarray(a)[:, None] for a in _homog_row_terms(sc, k_rows))
    dc, uc, vc = (ops.asarray(a)[None, :] for a in _homog_row_terms(sc, k_cols))
    S = (sb2 * L + sa2 * c * c) * ur * uc - vr - vc
    S = xp.clip(S, lo, hi)
    if start == "table":
        t = (S - lo) * inv_h
        fl = xp.floor(t)
        frac = t - fl
        idx = fl.long() if ops.is_torch else fl.astype(np.intp)
        idx = xp.clip(idx, 0, R.size - 2)
        Rd, dRd = ops.asarray(np.array(R)), ops.asarray(np.array(dR))
        rho = Rd[idx] + frac * dRd[idx]
    elif update == "picard":
        rho = xp.clip(sb2 * L * ur * uc, -1.0, 1.0)
    else:
        rho = xp.clip(S, -1.0, 1.0)
    ddij = dr * dc
    history, n_steps, converged = [], 0, False

    def jg(r):
        th = xp.arccos(r)
        jv = (xp.sqrt(xp.clip(1.0 - r * r, 0.0, None)) + (math.pi - th) * r) / _TWO_PI
        jp = (math.pi - th) / _TWO_PI
        return beta * r + arc * jv, beta + arc * jp

    jv = jp = None
    while n_steps < max_iter:
        n_steps += 1
        jv, jp = jg(rho)
        if update == "newton":
            delta = (rho - sa2 * jv - S) / (1.0 - sa2 * jp)
            rho = xp.clip(rho - delta, -1.0, 1.0)
            jv = jv - jp * delta
        else:
            new = xp.clip(S + sa2 * jv, -1.0, 1.0)
            delta = rho - new
            rho = new
            jv = jv - jp * delta
        step = _max_abs(ops, delta * ddij)
        history.append(step)
        if step <= tol_abs:
            converged = True
            break
    if update == "picard" or start == "clip":
        jv, jp = jg(rho)  # exact at the final rho (references, not the fast path)
    G = ddij * jv + (c * c - c * mu1 * (dr + dc))
    if ntk:
        _, jp = jg(rho)
        G = G / (1.0 - sa2 * jp)
    return G, (n_steps, history, converged)


# =============================================================================================
# other activations: Picard sweeps on closed-form dual kernels or a Mehler series
# =============================================================================================
_SERIES_NAMES = frozenset({"tanh", "sigmoid", "gelu", "swish", "softplus", "callable"})


def _uses_series(act):
    return act.name in _SERIES_NAMES


def _mehler_coefficients(sc, k):
    """Per-row Hermite coefficients of the centred ``phi`` at ``k`` (orders 0..80) and the
    per-row, per-order relative Parseval tails ``sqrt(sum_{r > K} c_r^2 / s2)``."""
    act = sc.activation
    coef = hermite_coefficients(act, k, _MEHLER_MAX_ORDER)
    s2 = np.asarray(dual_kernel_diag(act, k), dtype=np.float64)
    tail = np.clip(s2[:, None] - np.cumsum(coef * coef, axis=1), 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(s2[:, None] > 0, np.sqrt(tail / s2[:, None]), 0.0)
    coef[:, 0] -= sc.shift
    return coef, np.where(np.isfinite(frac), frac, 1.0)


class _GenericRows:
    """Per-row state of the Picard path for one side (rows or columns)."""

    def __init__(self, sc, q, k, g, ops):
        self.q = q
        self.k = k
        self.g = g  # exact diagonal E phi^2(sqrt(k) xi)
        self.sqrt_k = np.sqrt(k)
        act = sc.activation
        if _uses_series(act):
            self.coef, self.frac = _mehler_coefficients(sc, k)
            self.m0 = None
            self.g_ntk = g / (1.0 - sc.sigma_a2 * _diag_prime(sc, k))
        else:
            self.coef = self.frac = None
            self.m0 = np.asarray(gaussian_moments(act, k).m0, dtype=np.float64)
        self.ops = ops

    def dev(self, name, sl):
        return self.ops.asarray(np.ascontiguousarray(getattr(self, name)[sl]))


def _series_order(rmax, frac_r, frac_c):
    """Smallest order whose truncation bound at ``|rho| <= rmax`` meets ``_MEHLER_AIM``."""
    orders = np.arange(_MEHLER_MAX_ORDER + 1)
    bound = rmax ** (orders + 1.0) * frac_r.max(axis=0) * frac_c.max(axis=0)
    ok = np.flatnonzero(bound <= _MEHLER_AIM)
    return int(ok[0]) if ok.size else _MEHLER_MAX_ORDER


def _generic_block(ops, sc, L, rows, cols, rsl, csl, *, tol_abs, max_iter, ntk):
    """Picard sweeps ``K <- sigma_a2 Phi(K) + sigma_b2 L`` on one block (device arrays).

    Hermite-series activations: the order is chosen for the block from an a-priori bound on
    ``|rho|`` (``|K_ij| <= sigma_a2 sqrt(G_ii G_jj) + sigma_b2 |L_ij|``); pairs of identical
    rows (``rho = 1``, equal norms) take the exact diagonal value instead of the series.
    """
    xp = ops.xp
    act = sc.activation
    sa2, sb2, c = sc.sigma_a2, sc.sigma_b2, sc.shift
    kr = rows.dev("k", rsl)[:, None]
    kc = cols.dev("k", csl)[None, :]
    series = rows.coef is not None
    near = None
    if series:
        sq = rows.dev("sqrt_k", rsl)[:, None] * cols.dev("sqrt_k", csl)[None, :]
        qr = rows.dev("q", rsl)[:, None]
        qc = cols.dev("q", csl)[None, :]
        near = (L >= (1.0 - 1e-12) * xp.sqrt(qr * qc)) & (
            xp.abs(qr - qc) <= 1e-12 * xp.maximum(qr, qc))
        gr = rows.dev("g", rsl)[:, None]
        gc = cols.dev("g", csl)[None, :]
        bound = (sa2 * xp.sqrt(gr * gc) + sb2 * xp.abs(L)) / sq
        bound = xp.where(near, 0.0 * bound, bound)
        rmax = min(1.0, _max_abs(ops, bound))
        order = _series_order(rmax, rows.frac[rsl], cols.frac[csl])
        cr = rows.dev("coef", rsl)[:, : order + 1]
        cc = cols.dev("coef", csl)[:, : order + 1]

        def phi(K, prime=False):
            # Horner in place: the series is ~80 passes over the block, allocation-bound
            rho = xp.clip(K / sq, -1.0, 1.0)
            top, low = (order, 0) if not prime else (order, 1)
            weight = (lambda r: 1.0) if not prime else float
            if ops.is_torch:
                acc = weight(top) * cr[:, top, None] * cc[None, :, top] + 0.0 * rho
                for r in range(top - 1, low - 1, -1):
                    acc.mul_(rho).addr_(cr[:, r], cc[:, r], alpha=weight(r))
            else:
                acc = np.multiply.outer(weight(top) * cr[:, top], cc[:, top])
                buf = np.empty_like(acc)
                for r in range(top - 1, low - 1, -1):
                    acc *= rho
                    np.multiply.outer(weight(r) * cr[:, r], cc[:, r], out=buf)
                    acc += buf
            return acc / sq if prime else acc

    else:
        m0r = rows.dev("m0", rsl)[:, None]
        m0c = cols.dev("m0", csl)[None, :]

        def phi(K, prime=False):
            if prime:
                return dual_kernel_prime(act, kr, kc, K, ops=ops)
            out = dual_kernel(act, kr, kc, K, ops=ops)
            if c != 0.0:
                out = out - c * (m0r + m0c) + c * c
            return out

    # Entry-local stopping: an entry freezes at the first sweep whose own change is within
    # tol_abs, so its value does not depend on which block (or batch) it was computed in.
    K = sb2 * L
    active = None
    history, n_steps, converged = [], 0, False
    while n_steps < max_iter:
        n_steps += 1
        new = sa2 * phi(K) + sb2 * L
        change = xp.abs(new - K)
        if active is not None:
            change = xp.where(active, change, 0.0 * change)
            new = xp.where(active, new, K)
        K = new
        history.append(_max_abs(ops, change))
        active = change > tol_abs
        if not bool(xp.any(active)):
            converged = True
            break
    G = phi(K)  # at the final K
    if ntk:
        G = G / (1.0 - sa2 * phi(K, prime=True))
    if series:
        rho = xp.abs(xp.clip(K / sq, -1.0, 1.0))
        fr = ops.asarray(rows.frac[rsl, order])[:, None]
        fc = ops.asarray(cols.frac[csl, order])[None, :]
        worst = _max_abs(ops, xp.where(near, 0.0 * rho, rho ** (order + 1) * fr * fc))
        if worst > _MEHLER_WARN:
            warnings.warn(
                f"the Hermite series of activation {act.name!r} is truncated at order {order} "
                f"with a relative error bound of {worst:.2g} on some entries (|rho| close to 1: "
                "near-duplicate samples, or a saturating activation at large variance).",
                UserWarning,
                stacklevel=4,
            )
        if bool(xp.any(near)):
            exact = rows.dev("g_ntk" if ntk else "g", rsl)[:, None] + 0.0 * G
            G = xp.where(near, exact, G)
    return G, (n_steps, history, converged)


# =============================================================================================
# public Gram functions
# =============================================================================================
def _as_rows(X, ops):
    """Dense float64 device array of the rows of ``X`` (numpy, CSR or device array)."""
    if sp.issparse(X):
        X = X.toarray()
    return ops.asarray(X, dtype=np.float64)


def _sqnorms(X):
    if hasattr(X, "detach"):  # a torch tensor (reference rows cached on the device)
        return (X * X).sum(dim=1).detach().cpu().numpy().astype(np.float64)
    if sp.issparse(X):
        return np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel()
    Xd = np.asarray(X, dtype=np.float64)
    return np.einsum("ij,ij->i", Xd, Xd)


def _matmul_T(ops, A, B):
    """``A B^T`` on the device (numpy arrays in, a float64 device array out)."""
    if not ops.is_torch and sp.issparse(A) and sp.issparse(B):
        return np.asarray((A @ B.T).toarray(), dtype=np.float64)
    return ops.matmul(_as_rows(A, ops), _as_rows(B, ops).T)


def _block_rows(ops, n_cols):
    """Rows per block so that a block holds about ``_BLOCK_ENTRIES`` entries."""
    entries = _BLOCK_ENTRIES
    if ops.is_torch and not str(ops.device).startswith("cuda"):
        entries = min(entries, _CPU_TORCH_ENTRIES)
    return max(1, entries // max(n_cols, 1))


def _tol_abs(tol, k_rows, k_cols):
    kmax = max(float(np.max(k_rows)) if k_rows.size else 0.0,
               float(np.max(k_cols)) if k_cols.size else 0.0)
    return float(tol) * kmax


def implicit_gram(sc, X, *, kernel="ck", tol=1e-6, max_iter=100, ops=None, verbose=0,
                  solver="table", n_threads=None):
    """Exact implicit CK (or NTK) self-Gram of the rows of ``X`` (deq.md §2).

    Parameters
    ----------
    sc : DEQScalars
        Frozen scalars (training ``tau0``, ``tau``, ``c``).
    X : ndarray or CSR matrix of shape (n, p)
        Rows in the DEQ scale.
    kernel : {"ck", "ntk"}, default="ck"
        ``"ntk"``: ``Theta* = G* / (1 - sigma_a2 Gdot*)`` (A and the readout trained).
    tol : float, default=1e-6
        Stop when max ``|Delta K| <= tol * max_i k_i``.
    max_iter : int, default=100
        Bound on Newton steps (table path) or Picard sweeps; a ``ConvergenceWarning`` is
        emitted when it is reached first.
    ops : array namespace, optional
        numpy (default) or torch; the result lives on its device.
    verbose : int, default=0
        Print max ``|Delta K| / max k`` per step.
    solver : {"table", "newton", "picard"}, default="table"
        For the homogeneous activations: table start + Newton polish (fast path), Newton from
        ``clip(s)``, or Picard from ``K = sigma_b2 L`` (references). Ignored otherwise.
    n_threads : int, optional
        Threads of the numpy tile loop (default ``min(4, cores)``).

    Returns
    -------
    G : array of shape (n, n)
        Symmetric, with the exact per-row diagonal.
    info : FixedPointInfo
    """
    ops = get_ops("numpy", np.float64) if ops is None else ops
    q = _sqnorms(X)
    k, g_diag = deq_diagonal(sc, q)
    ntk = kernel == "ntk"
    tol_abs = _tol_abs(tol, k, k)
    n = q.size
    if sc.slope is not None and not ops.is_torch and solver == "table":
        L = _matmul_T(ops, X, X)
        L = np.ascontiguousarray(L)
        info = _homog_inplace(sc, L, k, k, symmetric=True, tol_abs=tol_abs, max_iter=max_iter,
                              ntk=ntk, n_threads=n_threads)
        G = L
    else:
        Xd = None if sp.issparse(X) else _as_rows(X, ops)
        info = FixedPointInfo()
        G = _empty(ops, (n, n))
        rows = cols = None if sc.slope is not None else _GenericRows(sc, q, k, g_diag, ops)
        step = _block_rows(ops, n)
        for start in range(0, n, step):
            sl = slice(start, min(start + step, n))
            Xb = X[sl] if Xd is None else Xd[sl]
            L = _matmul_T(ops, Xb, X) if Xd is None else ops.matmul(Xd[sl], Xd.T)
            if sc.slope is not None:
                Gb, res = _homog_block_xp(ops, sc, L, k[sl], k, tol_abs=tol_abs,
                                          max_iter=max_iter, ntk=ntk, start="table"
                                          if solver == "table" else "clip",
                                          update="picard" if solver == "picard" else "newton")
            else:
                Gb, res = _generic_block(ops, sc, L, rows, cols, sl, slice(None),
                                         tol_abs=tol_abs, max_iter=max_iter, ntk=ntk)
            G[sl] = Gb
            info.merge(*res)
        G = 0.5 * (G + G.T)
    diag = g_diag / (1.0 - sc.sigma_a2 * _diag_prime(sc, k)) if ntk else g_diag
    idx = np.arange(n)
    if ops.is_torch:
        it = ops.asarray(idx, dtype=np.int64)
        G[it, it] = ops.asarray(diag)
    else:
        G[idx, idx] = diag
    info.k_rows = info.k_cols = k
    info.contraction = _contraction(sc, k)
    kmax = float(np.max(k)) if k.size else 1.0
    return G, _finish(info, tol, max_iter, verbose, "implicit " + kernel, kmax)


def implicit_cross_gram(sc, X, Y, k_y=None, *, kernel="ck", tol=1e-6, max_iter=100, ops=None,
                        verbose=0, apply=None, n_threads=None):
    """Implicit CK (or NTK) between new rows ``X`` and reference rows ``Y``, blockwise.

    Test rows are solved against the stored reference diagonals ``k_y`` and the frozen
    scalars: the result equals the corresponding rows of the joint Gram, and memory stays
    ``O(block * n_y)`` (blocks of about ``2^24`` entries).

    Parameters
    ----------
    sc : DEQScalars
    X : ndarray or CSR of shape (n_x, p)
    Y : ndarray or CSR of shape (n_y, p)
    k_y : ndarray of shape (n_y,), optional
        Reference diagonals (from :func:`deq_diagonal`); computed when None.
    kernel, tol, max_iter, ops, verbose, n_threads
        As in :func:`implicit_gram`.
    apply : callable, optional
        Called on each block of kernel rows (a device array); its results are stacked
        (e.g. ``lambda G: G @ W`` gives decision scores without storing the Gram).

    Returns
    -------
    out : array of shape (n_x, n_y), or the stacked results of ``apply``
    info : FixedPointInfo
    """
    ops = get_ops("numpy", np.float64) if ops is None else ops
    q_x, q_y = _sqnorms(X), _sqnorms(Y)
    k_x, g_x = deq_diagonal(sc, q_x)
    if k_y is None:
        k_y, g_y = deq_diagonal(sc, q_y)
    else:
        k_y = np.asarray(k_y, dtype=np.float64)
        g_y = None
    ntk = kernel == "ntk"
    # the reference rows alone set the scale: a row's result must not depend on its batch
    tol_abs = _tol_abs(tol, k_y, k_y)
    n_x, n_y = k_x.size, k_y.size
    info = FixedPointInfo()
    Yd = None if sp.issparse(Y) else _as_rows(Y, ops)
    generic = sc.slope is None
    rows = cols = None
    if generic:
        if g_y is None:
            g_y = _diag_from_k(sc, k_y)
        rows = _GenericRows(sc, q_x, k_x, g_x, ops)
        cols = _GenericRows(sc, q_y, k_y, g_y, ops)
    step = _block_rows(ops, n_y)
    outs = []
    for start in range(0, n_x, step):
        sl = slice(start, min(start + step, n_x))
        if Yd is None or sp.issparse(X):
            L = _matmul_T(ops, X[sl], Y)
        else:
            L = ops.matmul(_as_rows(X[sl], ops), Yd.T)
        if not generic and not ops.is_torch:
            L = np.ascontiguousarray(L)
            res = _homog_inplace(sc, L, k_x[sl], k_y, symmetric=False, tol_abs=tol_abs,
                                 max_iter=max_iter, ntk=ntk, n_threads=n_threads)
            Gb = L
            info.merge(res.n_iter, res.history, res.converged)
        elif not generic:
            Gb, res = _homog_block_xp(ops, sc, L, k_x[sl], k_y, tol_abs=tol_abs,
                                      max_iter=max_iter, ntk=ntk)
            info.merge(*res)
        else:
            Gb, res = _generic_block(ops, sc, L, rows, cols, sl, slice(None), tol_abs=tol_abs,
                                     max_iter=max_iter, ntk=ntk)
            info.merge(*res)
        outs.append(Gb if apply is None else apply(Gb))
    info.k_rows, info.k_cols = k_x, k_y
    info.contraction = _contraction(sc, k_x, k_y)
    _finish(info, tol, max_iter, verbose, "implicit " + kernel,
            float(np.max(k_y)) if k_y.size else 1.0)
    if not outs:
        shape = (0, n_y)
        return (np.empty(shape) if not ops.is_torch else ops.asarray(np.empty(shape))), info
    if len(outs) == 1:
        return outs[0], info
    return (ops.xp.cat(outs) if ops.is_torch else np.concatenate(outs)), info


# =============================================================================================
# RMT equivalent (deq.md §3)
# =============================================================================================
def _check_equivalent(sc):
    if not sc.equivalent_defined:
        raise ValueError(
            f"the RMT equivalent of activation {sc.activation.name!r} at sigma_a2="
            f"{sc.sigma_a2} is not defined: 1 - sigma_a2 m1^2 or 1 - sigma_a2 e3 / 2 is not "
            "positive. Use form='limit'."
        )


def deq_equivalent(sc, X, Y=None, *, ops=None):
    """Data form of the RMT equivalent ``G-bar`` (deq.md §3a).

    ``alpha1 X Y^T + alpha2 delta_X delta_Y^T + alpha3 (X Y^T)^2 (entrywise)`` with
    ``delta_i = ||x_i||^2 - tau0^2``, plus the white-noise term ``ridge * I`` when ``Y`` is None.

    Parameters
    ----------
    sc : DEQScalars
    X : ndarray or CSR of shape (n_x, p)
    Y : ndarray or CSR of shape (n_y, p), optional
    ops : array namespace, optional

    Returns
    -------
    array of shape (n_x, n_y) on the device of ``ops``
    """
    _check_equivalent(sc)
    ops = get_ops("numpy", np.float64) if ops is None else ops
    self_gram = Y is None
    Y = X if self_gram else Y
    L = _matmul_T(ops, X, Y)
    dx = ops.asarray(_sqnorms(X) - sc.tau0_sq)[:, None]
    dy = ops.asarray(_sqnorms(Y) - sc.tau0_sq)[None, :]
    G = sc.alpha1 * L + sc.alpha2 * (dx * dy) + sc.alpha3 * (L * L)
    if self_gram:
        n = L.shape[0]
        eye = ops.asarray(np.eye(n))
        G = G + sc.ridge * eye
    return G


def deq_equivalent_population(sc, X, J, psi, t, T):
    """Population form of ``G-bar`` for a K-class Gaussian mixture (deq.md §3b; test oracle).

    ``alpha1 X X^T + V C* V^T + (tau*^2 - tau0^2 alpha1) I`` with ``V = [J/sqrt(p), psi]`` and
    ``C* = [[alpha2 t t^T + alpha3 T, alpha2 t], [alpha2 t^T, alpha2]]``; ``T`` must be the
    uncentred ``tr(C_a C_b)/p`` (pitfall 1).

    Parameters
    ----------
    sc : DEQScalars
        At ``tau0^2`` = empirical mean squared norm.
    X : ndarray of shape (n, p)
    J : ndarray of shape (n, K)
        One-hot classes.
    psi : ndarray of shape (n,)
        ``||omega_i||^2 - tr(C_a)/p``.
    t : ndarray of shape (K,)
        ``tr(C_a - C°)/sqrt(p)``.
    T : ndarray of shape (K, K)
        ``tr(C_a C_b)/p``.

    Returns
    -------
    ndarray of shape (n, n)
    """
    _check_equivalent(sc)
    X = np.asarray(X, dtype=np.float64)
    n, p = X.shape
    t = np.asarray(t, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    K = t.size
    V = np.hstack([np.asarray(J, dtype=np.float64) / math.sqrt(p),
                   np.asarray(psi, dtype=np.float64)[:, None]])
    C = np.empty((K + 1, K + 1))
    C[:K, :K] = sc.alpha2 * np.outer(t, t) + sc.alpha3 * T
    C[:K, K] = C[K, :K] = sc.alpha2 * t
    C[K, K] = sc.alpha2
    G = sc.alpha1 * (X @ X.T) + V @ C @ V.T
    G[np.diag_indices(n)] += sc.tau_star2 - sc.tau0_sq * sc.alpha1
    return G


# =============================================================================================
# explicit equivalent (deq.md §4)
# =============================================================================================
@dataclass
class ExplicitMatch:
    """Matched shallow explicit network.

    Attributes
    ----------
    layers : list of dict
        Per layer ``{"kind": "leaky_relu", "a", "b", "shift"}`` (slopes ``a`` for ``t >= 0``,
        ``b`` for ``t < 0``, output ``b t + (a - b) relu(t) - shift``) or
        ``{"kind": "hard_tanh", "a", "c"}`` (output ``a clip(t, -c, c)``).
    input_scales : list of float
        Pre-activation variance scale of each layer's input (``tau_{l-1}^2``).
    residual : float
        Max relative residual of the matching equations.
    n_iter : int
        Function evaluations of the matching solver (>= 1).
    """

    layers: list
    input_scales: list
    residual: float
    n_iter: int


def _lrelu_chain(params, tau0_sq):
    """``alpha_{2,1..4}`` and ``tau_2^2`` of the two-layer centred leaky-ReLU net (§4.1)."""
    a1, b1, b2 = params
    al = np.array([1.0, 0.0, 0.0, 1.0])
    tau_sq = tau0_sq
    for a, b in ((a1, b1), (1.0, b2)):
        e1 = (a + b) / 2.0
        e2sq = (a - b) ** 2 / (_TWO_PI * tau_sq)
        half_e4 = ((a * a + b * b) * (math.pi - 1.0) + 2.0 * a * b) / _TWO_PI
        al = np.array([
            e1 * e1 * al[0],
            e1 * e1 * al[1] + 0.25 * e2sq * al[3] ** 2,
            e1 * e1 * al[2] + 0.5 * e2sq * al[0] ** 2,
            half_e4 * al[3],
        ])
        tau_sq = tau_sq * half_e4
    return al, tau_sq


def _canonical_lrelu(a1, b1, b2):
    """Gauge ``a2 = 1`` and reflections so that ``a_l >= b_l`` (deq.md §4.3).

    Kernel-preserving moves: a positive gauge ``(s a1, s b1, a2/s, b2/s)``; a layer's sign flip
    ``(a, b) -> (-a, -b)``; a reflection ``(a, b) -> (b, a)`` (``sigma(t) -> -sigma(-t)``).
    """
    if 1.0 + b2 < 0:  # (1, b2) ~ (-1, -b2) ~ (-b2, -1) = (-b2) (1, 1/b2)
        a1, b1, b2 = -a1 * b2, -b1 * b2, 1.0 / b2
    elif b2 > 1.0:  # (1, b2) ~ (b2, 1) = b2 (1, 1/b2)
        a1, b1, b2 = a1 * b2, b1 * b2, 1.0 / b2
    if a1 + b1 < 0:
        a1, b1 = -a1, -b1
    if b1 > a1:
        a1, b1 = b1, a1
    return a1, b1, b2


def match_explicit(sc, *, x0=(1.0, 0.1, 0.5)):
    """Matched explicit network of a DEQ (deq.md §4).

    - odd activations (tanh, erf, sin, hardtanh, odd callables ...): one layer of hard-tanh
      ``a clip(t, -c, c)`` with ``a erf(r) = sqrt(alpha1)`` and ``E sigma^2(tau0 xi) = tau*^2``;
    - relu and leaky_relu: two layers of centred leaky ReLU, ``a2 = 1``, solved by least
      squares on relative residuals and canonicalised.

    Parameters
    ----------
    sc : DEQScalars
    x0 : tuple, default=(1, 0.1, 0.5)
        Start ``(a1, b1, b2)`` of the leaky-ReLU solve.

    Returns
    -------
    ExplicitMatch

    Raises
    ------
    ValueError
        Activations that neither family matches (swish, gelu, elu, even ones, ...), or a
        failed solve.
    """
    act = sc.activation
    tau0_sq = sc.tau0_sq
    beta = sc.slope
    if act.parity == "odd" and act.name != "linear":
        if not sc.equivalent_defined or sc.alpha1 <= 0:
            raise ValueError(f"activation {act.name!r}: the equivalent is not defined here.")
        ratio = sc.tau_star2 / sc.alpha1
        tau0 = math.sqrt(tau0_sq)

        def es2(cl):  # E sigma^2(tau0 xi) at a = 1
            r = cl / (math.sqrt(2.0) * tau0)
            tail = cl * tau0 * math.sqrt(2.0 / math.pi) * math.exp(-r * r)
            return tau0_sq * erf(r) + cl * cl * erfc(r) - tail

        def f(cl):
            return es2(cl) / erf(cl / (math.sqrt(2.0) * tau0)) ** 2 - ratio

        lo, hi = 1e-3 * tau0, 50.0 * tau0
        if not f(lo) * f(hi) < 0:
            raise ValueError(
                f"no hard-tanh matches the {act.name!r} DEQ at sigma_a2={sc.sigma_a2}: "
                f"tau*^2/alpha1 = {ratio:.4g} is outside the reachable range."
            )
        clip, res = optimize.brentq(f, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps,
                                    full_output=True)
        amp = math.sqrt(sc.alpha1) / erf(clip / (math.sqrt(2.0) * tau0))
        resid = abs(f(clip)) / ratio
        return ExplicitMatch(layers=[{"kind": "hard_tanh", "a": float(amp), "c": float(clip)}],
                             input_scales=[tau0_sq], residual=float(resid),
                             n_iter=max(1, int(res.iterations)))
    if beta is not None and act.parity is None:
        if not sc.equivalent_defined:
            raise ValueError(f"activation {act.name!r}: the equivalent is not defined here.")
        target = np.array([sc.alpha1, sc.alpha2, sc.alpha3, sc.tau_star2])

        def residuals(x):
            al, tau2_sq = _lrelu_chain(x, tau0_sq)
            return np.array([al[0], al[1], al[2], tau2_sq]) / target - 1.0

        sol = optimize.least_squares(residuals, np.asarray(x0, dtype=np.float64), xtol=1e-15,
                                     ftol=1e-15, gtol=1e-15)
        a1, b1, b2 = _canonical_lrelu(*sol.x)
        resid = float(np.max(np.abs(residuals((a1, b1, b2)))))
        if not resid < 1e-10:
            raise ValueError(
                f"the two-layer leaky-ReLU match of the {act.name!r} DEQ did not converge "
                f"(max relative residual {resid:.2g}); use method='implicit'."
            )
        half_e4_1 = ((a1 * a1 + b1 * b1) * (math.pi - 1.0) + 2.0 * a1 * b1) / _TWO_PI
        tau1_sq = tau0_sq * half_e4_1
        layers = [
            {"kind": "leaky_relu", "a": float(a1), "b": float(b1),
             "shift": float((a1 - b1) * math.sqrt(tau0_sq) / _SQRT_2PI)},
            {"kind": "leaky_relu", "a": 1.0, "b": float(b2),
             "shift": float((1.0 - b2) * math.sqrt(tau1_sq) / _SQRT_2PI)},
        ]
        return ExplicitMatch(layers=layers, input_scales=[tau0_sq, tau1_sq], residual=resid,
                             n_iter=max(1, int(sol.nfev)))
    raise ValueError(
        f"method='explicit' has no matched shallow network for activation {act.name!r}; "
        "supported: 'relu', 'leaky_relu' (two layers of leaky ReLU) and odd activations "
        "('tanh', 'erf', 'sin', 'hardtanh', 'sign', odd callables: one layer of hard-tanh). "
        "Use method='implicit' for the others."
    )


def _layer_apply(layer, T, ops):
    xp = ops.xp
    if layer["kind"] == "hard_tanh":
        return layer["a"] * xp.clip(T, -layer["c"], layer["c"])
    a, b = layer["a"], layer["b"]
    return b * T + (a - b) * xp.clip(T, 0.0, None) - layer["shift"]


def explicit_features(match, weights, X, *, ops=None, dtype=np.float64):
    """Random features ``y^(L)`` of the matched explicit net (rows are samples).

    ``y^(l) = sigma_l(W_l y^(l-1)) / sqrt(m)``, ``y^(0) = x`` (DEQ scale).

    Parameters
    ----------
    match : ExplicitMatch
    weights : list of ndarray
        ``W_1`` of shape (m, p), then (m, m) per further layer (i.i.d. N(0, 1)).
    X : ndarray or CSR of shape (n, p)
    ops : array namespace, optional

    Returns
    -------
    array of shape (n, m) on the device of ``ops``
    """
    ops = get_ops("numpy", dtype) if ops is None else ops
    Y = _as_rows(X, ops) if not sp.issparse(X) else None
    for li, (layer, W) in enumerate(zip(match.layers, weights)):
        Wd = ops.asarray(W, dtype=np.float64)
        if li == 0 and Y is None:
            T = ops.asarray(np.asarray((X @ np.asarray(W).T)), dtype=np.float64)
        else:
            T = ops.matmul(Y, Wd.T)
        Y = _layer_apply(layer, T, ops) / math.sqrt(W.shape[0])
    return Y


def _lrelu_ck(layer, vr, vc, C):
    """Exact CK of one centred leaky-ReLU layer from input variances and covariances."""
    a, b, sh = layer["a"], layer["b"], layer["shift"]
    sq = np.sqrt(np.outer(vr, vc))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.clip(np.where(sq > 0, C / np.where(sq > 0, sq, 1.0), 0.0), -1.0, 1.0)
    th = np.arccos(rho)
    J = (np.sqrt(np.clip(1.0 - rho * rho, 0.0, None)) + (math.pi - th) * rho) / _TWO_PI
    return (a * b * C + (a - b) ** 2 * sq * J
            - sh * (a - b) * (np.sqrt(vr)[:, None] + np.sqrt(vc)[None, :]) / _SQRT_2PI + sh * sh)


def _lrelu_diag(layer, v):
    a, b, sh = layer["a"], layer["b"], layer["shift"]
    return v * (a * a + b * b) / 2.0 - 2.0 * sh * (a - b) * np.sqrt(v / _TWO_PI) + sh * sh


def explicit_ck(match, X, Y=None):
    """Exact infinite-width CK of the matched explicit net (numpy; tests and baselines).

    Parameters
    ----------
    match : ExplicitMatch
    X : ndarray of shape (n_x, p)
    Y : ndarray of shape (n_y, p), optional
        None gives the self-Gram with exact diagonals.

    Returns
    -------
    ndarray of shape (n_x, n_y)
    """
    X = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    self_gram = Y is None
    Y = X if self_gram else np.asarray(Y.toarray() if sp.issparse(Y) else Y, dtype=np.float64)
    vr, vc = np.einsum("ij,ij->i", X, X), np.einsum("ij,ij->i", Y, Y)
    C = X @ Y.T
    for layer in match.layers:
        if layer["kind"] == "hard_tanh":
            act = resolve_activation("hardtanh", amplitude=layer["a"], clip=layer["c"])
            Cn = np.asarray(dual_kernel(act, vr[:, None], vc[None, :], C), dtype=np.float64)
            vr_n = np.asarray(dual_kernel_diag(act, vr), dtype=np.float64)
            vc_n = vr_n if self_gram else np.asarray(dual_kernel_diag(act, vc), dtype=np.float64)
        else:
            Cn = _lrelu_ck(layer, vr, vc, C)
            vr_n = _lrelu_diag(layer, vr)
            vc_n = vr_n if self_gram else _lrelu_diag(layer, vc)
        if self_gram:
            np.fill_diagonal(Cn, vr_n)
            Cn = 0.5 * (Cn + Cn.T)
        C, vr, vc = Cn, vr_n, vc_n
    return C


# =============================================================================================
# finite-width DEQ (deq.md §1; Monte-Carlo check of G*)
# =============================================================================================
def deq_random_features(sc, X, A, B, *, ops=None, tol=1e-7, max_iter=200):
    """Equilibrium features ``z*`` of one random width-m DEQ by forward (Picard) iteration.

    ``z <- m^{-1/2} phi(sigma_a A z + sigma_b B x)`` from ``z = 0`` with the frozen centred
    ``phi = phi0 - c``; ``Z Z^T`` is a Monte-Carlo estimate of ``G*`` (deq.md pitfall 7).

    Parameters
    ----------
    sc : DEQScalars
    X : ndarray of shape (n, p)
        DEQ-scale rows.
    A : ndarray of shape (m, m), B : ndarray of shape (m, p)
        i.i.d. N(0, 1) weights.
    ops : array namespace, optional
        numpy or torch (the iteration is a pair of matrix products per step).
    tol : float, default=1e-7
        Stop when ``||Z_new - Z||_F <= tol ||Z_new||_F``.
    max_iter : int, default=200

    Returns
    -------
    Z : array of shape (n, m) on the device of ``ops``
    n_iter : int
    """
    ops = get_ops("numpy", np.float64) if ops is None else ops
    xp = ops.xp
    m = A.shape[0]
    Ad = ops.asarray(A, dtype=np.float64)
    Bd = ops.asarray(B, dtype=np.float64)
    drive = math.sqrt(sc.sigma_b2) * ops.matmul(_as_rows(X, ops), Bd.T)
    sa = math.sqrt(sc.sigma_a2)
    scale = 1.0 / math.sqrt(m)
    act = sc.activation
    Z = xp.zeros_like(drive)
    for it in range(1, max_iter + 1):
        new = (act.apply(sa * ops.matmul(Z, Ad.T) + drive, ops) - sc.shift) * scale
        diff = float(xp.sqrt(xp.sum((new - Z) ** 2)))
        norm = float(xp.sqrt(xp.sum(new * new)))
        Z = new
        if diff <= tol * norm:
            return Z, it
    warnings.warn(
        f"the finite-width DEQ forward iteration did not reach tol={tol:g} in {max_iter} "
        "steps.",
        ConvergenceWarning,
        stacklevel=2,
    )
    return Z, max_iter
