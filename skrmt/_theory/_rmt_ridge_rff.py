"""Deterministic equivalents of random Fourier features ridge: two blocks (``rmt_ridge.md`` §7).

The features are ``F = [cos(X W^T), sin(X W_s^T)]`` with ``W`` of ``N_c`` Gaussian rows
(frequencies) and ``W_s`` its first ``N_s`` rows: ``N_c`` cos and ``N_s`` sin features, ``N_s =
N_c = N`` in §7 (an odd feature count has ``N_s = N_c - 1``). Conventions as in
:mod:`._rmt_ridge_de`: standardised rows, ``w ~ N(0, I_p)``, ridge ``gamma`` in the papers'
scale. The two blocks are uncorrelated (``w -> -w``), with kernels ``K_c = e^{-(A+B)/2} cosh C``
and ``K_s = e^{-(A+B)/2} sinh C`` (the ``"cos"`` and ``"sin"`` dual kernels), and each gets its
own ``delta``: ``Q = ((N_c/n) K_c/(1+delta_c) + (N_s/n) K_s/(1+delta_s) + gamma I)^{-1}``,
``delta_a = (1/n) tr K_a Q``.

Solver (§7). With ``r = (N_s/N_c)(1+delta_c)/(1+delta_s)``, ``t = gamma n (1+delta_c)/N_c``,
``K_r = K_c + r K_s`` and ``R = (K_r + t I)^{-1}``, the pair of fixed-point equations becomes

- ``t (N_c - a_c(t)) = gamma n`` with ``a_c = tr K_c R`` (inner, scalar, ``O(n)`` per step in
  the eigenbasis of ``K_r``), then ``delta_c = a_c/(N_c - a_c)``, ``delta_s = a_s/(N_c - a_c)``,
  ``a_s = tr K_s R``;
- ``r = N_s / (N_c - a_c + a_s)`` (outer, on ``log r``; each evaluation is one ``eigh`` of
  ``K_r`` and the diagonals of ``V^T K_c V`` and ``V^T K_s V``). The design note's outer Brent
  is the fallback: a fixed-point first step and secant steps reach ``|residual| <= 1e-10`` in
  4-6 evaluations from a cold start and 2-4 along a warm-started grid.

``Q = (t/gamma) R``, so the average predictor is kernel ridge with the kernel ``K_r`` and the
ridge ``t``. Unlike one block, ``r`` changes with ``gamma``: each point of a ``gamma`` grid costs
a few ``eigh`` (warm-started along the sorted grid), not a share of one.

Errors in the eigenbasis ``K_r = V diag(mu) V^T``, with ``G_c = V^T K_c V``,
``G_s = r V^T K_s V`` (so ``G_c + G_s = diag(mu)``), ``1/(mu + t)`` written ``inv``,
``z = V^T y``, ``a = inv z``:

- ``X_ab = tr(G_a R G_b R)`` (2 x 2), ``yh_a = a^T G_a a``, ``vh_a = tr G_a R^2``,
  ``q = (diag(N_c, N_s) - X)^{-1} yh``;
- ``E_train = (1/n) sum z^2 (t inv)^2 + (t^2/n) q . vh``;
- ``E_test = (1/n_t)||y_t - K_r,t R y||^2 + q . Bt`` with, per block, the mean squared error of
  predicting a fresh test feature of the block from the training features through
  ``P = K_r,t R``: ``Bt_c = mean_j K_c(x_j, x_j) - (2/n_t) tr(P K_c,t^T) + (1/n_t) tr(P K_c P^T)``
  and ``Bt_s`` the same with ``r K_s``.

This is the 2 x 2 algebra of §7 rewritten in ``(t, r)``: with
``D~ = diag((N_a/n)(1+delta_a)^{-2})`` and ``S'_ab = (1/n) tr(K_a Q K_b Q)`` (§7's ``D`` and ``S``
with the widths moved into ``D``),
``D~ S' = Lambda diag(N_a)^{-1} X Lambda^{-1}``, ``Lambda = diag(1, r)``. With ``K_s = 0`` (or
``N_s = 0``) it is exactly the one-block effective-ridge form of :mod:`._rmt_ridge_de`.

RMT leave-one-out (``alpha="auto"``), derived in this project like the one-block criterion
(§6): the bias part is the exact leave-one-out error of kernel ridge ``(K_r, t)``,
``mean_i ((R y)_i / R_ii)^2``; the variance part is ``q . mean_i Bt_a(i)`` with ``Bt_a`` at each
held-out training point, which the Schur complement reduces to ``(R G_a R)_ii / R_ii^2`` (in the
original basis, with ``G_a`` the block kernel ``K_c`` or ``r K_s``): the two-block analogue of
``1/R_ii - t (R^2)_ii / R_ii^2``, which is their sum. ``O(n^3)`` per ridge (two products), no
more than the ridge's eigendecompositions. RMT-GCV is ``E_train / ((t/n) tr R)^2``.
"""

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize
from sklearn.exceptions import ConvergenceWarning

from . import _rmt_ridge_de as _de

__all__ = [
    "RFFKernels",
    "split_components",
    "RFFPoint",
    "RFFTest",
    "rff_alpha_grid",
    "rff_interpolation_peak",
    "rff_point_errors",
    "rff_risk_grid",
    "rff_select_alpha",
    "solve_rff",
]

# outer solve on s = log r: the |residual| accepted (r to ~1e-10 relative, and the errors with
# it) and the eigendecompositions allowed
R_XTOL = 1e-10
MAX_OUTER = 60
# the same while alpha="auto" scans its grid: the criterion to ~1e-7 is plenty for an argmin
# refined to 0.01 decade, and saves a quarter of the eigendecompositions
SELECT_XTOL = 1e-7
# inner Brent on log t
_T_XTOL = 1e-14
_RTOL = 4 * np.finfo(float).eps
# alpha="auto" for two blocks: a coarser grid than one block's 61 points (each point costs a few
# eigendecompositions, §7); same span around the kernel scale, 0.5 decade apart
GRID_POINTS = 25
# below this r the sin-block diagonal is computed directly, not as (mu - kc)/r
_R_SUBTRACT = 1e-3
# diag(N_c, N_s) - X with an eigenvalue below this fraction of the width: the pole (off it the
# gap is >= gamma n / t > 0, or an O(1) width gap at gamma = 0)
_POLE_RTOL = 1e-9


# =============================================================================================
# data holders
# =============================================================================================
@dataclass(eq=False)
class RFFKernels:
    """The training side: the two block kernels and the centred targets.

    Attributes
    ----------
    Kc, Ks : ndarray of shape (n, n)
        ``cos`` and ``sin`` block kernels (float64, symmetric).
    y : ndarray of shape (n, k)
        Centred targets.
    """

    Kc: np.ndarray
    Ks: np.ndarray
    y: np.ndarray

    def __post_init__(self):
        self.Kc = np.asarray(self.Kc, dtype=np.float64)
        self.Ks = np.asarray(self.Ks, dtype=np.float64)
        y = np.asarray(self.y, dtype=np.float64)
        self.y = y[:, None] if y.ndim == 1 else y
        if self.Kc.shape != self.Ks.shape or self.Kc.shape[0] != self.y.shape[0]:
            raise ValueError("Kc, Ks and y must describe the same n samples.")

    @property
    def n(self):
        return self.Kc.shape[0]

    @property
    def trace(self):
        """``tr(K_c + K_s)``: the trace of ``E[F F^T]/N``."""
        return float(np.trace(self.Kc) + np.trace(self.Ks))

    @classmethod
    def from_data(cls, X, y_centred, ops=None):
        """Block kernels of standardised rows ``X`` (the ``"cos"`` and ``"sin"`` dual kernels)."""
        Kc = _de.kernel_gram("cos", X, ops=ops)
        Ks = _de.kernel_gram("sin", X, ops=ops)
        if ops is not None:
            Kc, Ks = ops.to_numpy(Kc), ops.to_numpy(Ks)
        return cls(Kc=Kc, Ks=Ks, y=y_centred)


@dataclass(eq=False)
class RFFTest:
    """The test side: test-train block kernels, test diagonals, centred test targets.

    Attributes
    ----------
    Kc, Ks : ndarray of shape (n_test, n)
    dc, ds : ndarray of shape (n_test,)
        ``K_c(x_j, x_j)`` and ``K_s(x_j, x_j)`` from the exact diagonal formulas.
    y : ndarray of shape (n_test, k) or None
    """

    Kc: np.ndarray
    Ks: np.ndarray
    dc: np.ndarray
    ds: np.ndarray
    y: np.ndarray = None

    def __post_init__(self):
        self.Kc = np.asarray(self.Kc, dtype=np.float64)
        self.Ks = np.asarray(self.Ks, dtype=np.float64)
        self.dc = np.asarray(self.dc, dtype=np.float64)
        self.ds = np.asarray(self.ds, dtype=np.float64)
        if self.y is not None:
            y = np.asarray(self.y, dtype=np.float64)
            self.y = y[:, None] if y.ndim == 1 else y

    @classmethod
    def from_data(cls, X_test, X, y_test_centred=None, ops=None):
        Kc = _de.kernel_cross("cos", X_test, X, ops=ops)
        Ks = _de.kernel_cross("sin", X_test, X, ops=ops)
        dc = _de.kernel_diag("cos", X_test, ops=ops)
        ds = _de.kernel_diag("sin", X_test, ops=ops)
        if ops is not None:
            Kc, Ks, dc, ds = (ops.to_numpy(v) for v in (Kc, Ks, dc, ds))
        return cls(Kc=Kc, Ks=Ks, dc=dc, ds=ds, y=y_test_centred)


@dataclass(eq=False)
class RFFPoint:
    """The solution at one point ``(gamma, N_c, N_s)`` and the eigenbasis of ``K_r`` there.

    Attributes
    ----------
    gamma : float
    n_frequencies, n_sin : float
        ``N_c`` and ``N_s``, the cos and sin feature counts.
    r : float
        ``(N_s/N_c)(1 + delta_c)/(1 + delta_s)`` (``(1 + delta_c)/(1 + delta_s)`` for
        ``N_s = N_c``).
    t : float
        Effective ridge of the kernel ``K_r = K_c + r K_s``.
    n_minus_ac : float
        ``N_c - tr K_c R`` (``gamma n / t`` for ``gamma > 0``).
    a_c, a_s : float
        ``tr K_c R`` and ``tr K_s R``.
    mu : ndarray of shape (n,)
        Eigenvalues of ``K_r`` (ascending, exact zeros below the rank threshold).
    V : ndarray of shape (n, n)
        Its eigenvectors.
    KcV, KsV : ndarray of shape (n, n)
        ``K_c V`` and ``K_s V`` (the latter None until :meth:`blocks` needs it).
    n_eval : int
        Eigendecompositions the solve used.
    converged : bool
    slope : float or None
        ``dh/d log r`` near the root: the first step of a neighbouring solve.
    """

    gamma: float
    n_frequencies: float
    n_sin: float
    r: float
    t: float
    n_minus_ac: float
    a_c: float
    a_s: float
    mu: np.ndarray
    V: np.ndarray
    KcV: np.ndarray
    KsV: np.ndarray
    n_eval: int = 0
    converged: bool = True
    slope: float = None
    _G: tuple = field(default=None, repr=False)

    @property
    def delta_c(self):
        return self.a_c / self.n_minus_ac if self.n_minus_ac > 0 else math.inf

    @property
    def delta_s(self):
        return self.a_s / self.n_minus_ac if self.n_minus_ac > 0 else math.inf

    @property
    def rank(self):
        return int(np.count_nonzero(self.mu > 0))

    def blocks(self, kern):
        """``(G_c, G_s) = (V^T K_c V, r V^T K_s V)``, symmetrised, computed once."""
        if self._G is None:
            if self.KsV is None:
                self.KsV = kern.Ks @ self.V
            Gc = self.V.T @ self.KcV
            Gs = self.V.T @ self.KsV
            Gc = 0.5 * (Gc + Gc.T)
            Gs = (0.5 * self.r) * (Gs + Gs.T)
            self._G = (Gc, Gs)
        return self._G


# =============================================================================================
# the solver
# =============================================================================================
def _decompose(kern, r, ops):
    Kr = kern.Kc + r * kern.Ks
    Kr = 0.5 * (Kr + Kr.T)
    if ops is not None and getattr(ops, "is_torch", False):
        Kr = ops.asarray(Kr, dtype=np.float64)
    mu, V = _de.kernel_eigh(Kr, ops)
    KcV = kern.Kc @ V
    kc = np.einsum("ik,ik->k", V, KcV)
    KsV = None
    if r >= _R_SUBTRACT:
        # diag(V^T K_r V) = mu: one product gives both diagonals; the absolute error of
        # r ks_k is eps mu_k, harmless in r a_s = sum r ks_k/(mu_k + t) <= n
        ks = (mu - kc) / r
    else:
        KsV = kern.Ks @ V
        ks = np.einsum("ik,ik->k", V, KsV)
    # on the null space of K_r both blocks vanish (K_c, K_s >= 0): rounding is set to 0
    null = mu == 0
    kc[null] = 0.0
    ks[null] = 0.0
    return mu, V, KcV, KsV, np.maximum(kc, 0.0), np.maximum(ks, 0.0)


class _Inner:
    """``N - a_c(t)`` and ``a_s(t)`` for one ``r``, in the eigenbasis of ``K_r``."""

    def __init__(self, mu, kc, ks, r, N):
        self.pos = mu > 0
        self.mu = mu[self.pos]
        self.kc = kc[self.pos]
        self.ks = ks[self.pos]
        self.n_null = int(mu.size - self.mu.size)
        self.n = mu.size
        self.r, self.N = r, N

    def a_s(self, t):
        return float(np.sum(self.ks / (self.mu + t)))

    def a_c(self, t):
        return float(np.sum(self.kc / (self.mu + t)))

    def n_minus_ac(self, t):
        if self.N >= self.n:
            # tr K_r R = n - sum eps, and a_c = tr K_r R - r a_s: a sum of non-negative terms,
            # free of the cancellation of N - a_c at N ~ n with a tiny t (§3)
            eps = float(np.sum(t / (self.mu + t))) + self.n_null
            return (self.N - self.n) + eps + self.r * self.a_s(t)
        return self.N - self.a_c(t)


def _solve_t(inner, gamma, n):
    """Root ``t`` of ``t (N - a_c(t)) = gamma n`` (``gamma = 0``: the ridgeless limits).

    ``f(t) = (N - a_c(t)) - gamma n / t`` is increasing (``-a_c' = tr K_c R^2 > 0``), negative at
    ``t = gamma n / N`` and non-negative at ``(tr K_c + gamma n)/N`` (``a_c <= tr K_c / t``).
    Returns ``t`` and ``N - a_c`` there.
    """
    N = inner.N
    kc_tr = float(inner.kc.sum())
    if gamma > 0:
        gn = gamma * n

        def f(s):
            t = math.exp(s)
            return inner.n_minus_ac(t) - gn / t

        lo, hi = math.log(gn / N), math.log((kc_tr + gn) / N)
        if f(lo) >= 0:
            return math.exp(lo), gn / math.exp(lo)
        if hi <= lo or f(hi) <= 0:
            return math.exp(hi), gn / math.exp(hi)
        s = optimize.brentq(f, lo, hi, xtol=_T_XTOL, rtol=_RTOL, maxiter=200)
        t = math.exp(s)
        return t, gn / t
    # gamma = 0: t = 0 while N - a_c(0+) > 0 (interpolation), else the root of a_c(t) = N
    nac0 = inner.n_minus_ac(0.0) if inner.mu.size else float(N)
    if nac0 > 0 or kc_tr <= 0:
        return 0.0, max(nac0, 0.0)

    def f0(s):
        return inner.n_minus_ac(math.exp(s))

    hi = math.log(kc_tr / N)
    lo = hi - 5.0
    for _ in range(60):
        if f0(lo) < 0:
            break
        lo -= 5.0
    else:
        return 0.0, 0.0
    s = optimize.brentq(f0, lo, hi, xtol=_T_XTOL, rtol=_RTOL, maxiter=200)
    return math.exp(s), 0.0


def split_components(n_components):
    """``(n_cos, n_sin)`` of ``n_components`` features: ``n_components // 2`` frequencies with
    both features, plus, for an odd count, one frequency with its cos feature only."""
    n_components = int(n_components)
    return (n_components + 1) // 2, n_components // 2


def _widths(n_frequencies, n_sin):
    N_c = float(n_frequencies)
    N_s = N_c if n_sin is None else float(n_sin)
    if not math.isfinite(N_c) or N_c <= 0:
        raise ValueError(f"n_frequencies must be finite and > 0, got {n_frequencies!r}.")
    if not math.isfinite(N_s) or N_s < 0:
        raise ValueError(f"n_sin must be finite and >= 0, got {n_sin!r}.")
    return N_c, N_s


def solve_rff(kern, gamma, n_frequencies, *, n_sin=None, r0=None, slope0=None, ops=None,
              xtol=R_XTOL, max_eval=MAX_OUTER, warn=True):
    """Joint fixed point ``(delta_c, delta_s)`` at one point, by the ``r``-parametrisation.

    Outer: the root of ``h(s) = s + log(N_c - a_c + a_s) - log N_s`` in ``s = log r``
    (``r = N_s/(N_c - a_c + a_s)``), from ``r0``: a first step, secant steps, and if they
    stall a sign change and Brent (``scipy.optimize.brentq``). For ``gamma > 0`` the root lies
    in ``log(N_s/N_c) + [-log(1 + tr K_s/(gamma n)), log((tr K_c + gamma n)/(gamma n))]`` and
    the search never leaves it. Inner: for each ``r``, one eigendecomposition of ``K_r`` and
    the scalar root ``t``.

    Parameters
    ----------
    kern : RFFKernels
    gamma : float
        Ridge, >= 0 (0: the ridgeless limits).
    n_frequencies : float
        ``N_c``: rows of ``W``, i.e. cos features.
    n_sin : float, optional
        ``N_s``: sin features, ``<= N_c`` (the first ``N_s`` rows of ``W``); default ``N_c``.
        ``N_s = 0`` is the cos block alone (``r = 0``).
    r0 : float, optional
        Warm start (e.g. the ``r`` of a neighbouring grid point); default ``N_s/N_c``.
    slope0 : float, optional
        Estimate of ``dh/ds`` (the ``slope`` of a neighbouring point) for the first step;
        default 1 (the fixed-point step ``r <- N_s/(N_c - a_c + a_s)``).
    ops : array namespace, optional
        The eigendecompositions run with ``ops`` (torch device or numpy).
    xtol : float, default=1e-10
        Accepted ``|h|`` (the residual in ``log r``).
    max_eval : int, default=60
        Eigendecompositions allowed; beyond, a ``ConvergenceWarning`` and the best point.
    warn : bool, default=True

    Returns
    -------
    RFFPoint
    """
    gamma = float(gamma)
    if not math.isfinite(gamma) or gamma < 0:
        raise ValueError(f"gamma (alpha) must be finite and >= 0, got {gamma!r}.")
    N_c, N_s = _widths(n_frequencies, n_sin)
    n = kern.n
    best = {"abs_h": math.inf, "point": None}
    values = {}

    def point_at(r):
        mu, V, KcV, KsV, kc, ks = _decompose(kern, r, ops)
        inner = _Inner(mu, kc, ks, r, N_c)
        t, nac = _solve_t(inner, gamma, n)
        if t > 0 or not inner.mu.size:
            a_c, a_s = inner.a_c(t), inner.a_s(t)
        else:  # ridgeless interpolation: the pseudo-inverse of K_r
            a_c, a_s = float(np.sum(inner.kc / inner.mu)), float(np.sum(inner.ks / inner.mu))
        return RFFPoint(gamma=gamma, n_frequencies=N_c, n_sin=N_s, r=r, t=t, n_minus_ac=nac,
                        a_c=a_c, a_s=a_s, mu=mu, V=V, KcV=KcV, KsV=KsV)

    def evaluate(s):
        if s in values:
            return values[s]
        if len(values) >= max_eval:
            raise _Budget
        pt = point_at(math.exp(s))
        total = pt.n_minus_ac + pt.a_s
        h = s + math.log(total) - math.log(N_s) if total > 0 else -math.inf
        values[s] = h
        if abs(h) < best["abs_h"] or best["point"] is None:
            best["abs_h"] = abs(h)
            best["point"] = pt
        return h

    converged = True
    if N_s == 0 or not np.any(kern.Ks):
        # one block: the sin block is absent (r = 0) or zero (r plays no part)
        pt = point_at(0.0 if N_s == 0 else N_s / N_c)
        pt.n_eval = 1
        return pt
    base = math.log(N_s / N_c)
    if gamma > 0:
        gn = gamma * n
        s_min = base - math.log1p(float(np.trace(kern.Ks)) / gn)
        s_max = base + math.log((float(np.trace(kern.Kc)) + gn) / gn)
    else:
        s_min, s_max = base - 60.0, base + 60.0
    s0 = base if r0 is None or not (r0 > 0) else min(max(math.log(r0), s_min), s_max)
    try:
        converged = _outer(evaluate, s0, s_min, s_max, xtol, slope0)
    except (_Budget, RuntimeError):
        converged = False
    pt = best["point"]
    pt.n_eval = len(values)
    pt.converged = converged
    pt.slope = _slope(values)
    if not converged and warn:
        warnings.warn(
            f"The random-Fourier-features solver did not converge at alpha={gamma:.3g}, "
            f"({N_c:g}, {N_s:g}) (cos, sin) features within {max_eval} eigendecompositions "
            f"(|log r residual| = {best['abs_h']:.2g}); the deterministic equivalents there "
            "are approximate.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return pt


class _Budget(Exception):
    pass


def _slope(values):
    """``dh/ds`` from the two evaluations closest to the root (None if not measurable)."""
    pts = sorted((abs(h), s, h) for s, h in values.items() if math.isfinite(h))
    if len(pts) < 2 or pts[0][1] == pts[1][1]:
        return None
    slope = (pts[1][2] - pts[0][2]) / (pts[1][1] - pts[0][1])
    return slope if 0.05 < slope < 20 else None


def _outer(evaluate, s0, s_min, s_max, xtol, slope0=None):
    """Root of ``h`` on ``[s_min, s_max]`` from ``s0``; True when found to ``xtol``.

    The first step is ``s1 = s0 - h(s0)/slope0``; with the default slope 1 it is the
    fixed-point step ``r <- N_s/(N_c - a_c + a_s)``. Then secant steps while ``|h|`` at least
    halves (``h`` is nearly linear in ``log r``: 2-4 evaluations from a warm start); otherwise a
    sign change is searched (doubling steps) and Brent finishes on it.
    """
    pts = [(s0, evaluate(s0))]
    if abs(pts[0][1]) <= xtol:
        return True
    slope0 = 1.0 if slope0 is None or not 0.05 < slope0 < 20 else slope0
    s_new = min(max(s0 - pts[0][1] / slope0, s_min), s_max)
    for _ in range(8):
        if s_new == pts[-1][0]:
            break
        h_new = evaluate(s_new)
        pts.append((s_new, h_new))
        if abs(h_new) <= xtol:
            return True
        (sa, ha), (sb, hb) = pts[-2], pts[-1]
        if not math.isfinite(hb) or abs(hb) > 0.5 * abs(ha) or hb == ha:
            break
        s_new = min(max(sb - hb * (sb - sa) / (hb - ha), s_min), s_max)
        if abs(s_new - sb) <= xtol:
            return True
    # fall back: a sign change around the best point, then Brent
    lo = [(s, h) for s, h in pts if h < 0]
    hi = [(s, h) for s, h in pts if h > 0]
    if lo and hi:
        a = max(lo, key=lambda p: p[1])[0]
        b = min(hi, key=lambda p: p[1])[0]
    else:
        s_b, h_b = min(pts, key=lambda p: abs(p[1]) if math.isfinite(p[1]) else math.inf)
        a, b = _bracket(evaluate, s_b, h_b, s_min, s_max, xtol)
        if a is None:
            return False
        if a == b:
            return True
    a, b = min(a, b), max(a, b)
    optimize.brentq(evaluate, a, b, xtol=xtol, rtol=_RTOL, maxiter=MAX_OUTER)
    return True


def _bracket(evaluate, s0, h0, s_min, s_max, xtol):
    """A sign change of ``h`` from ``s0``: ``(a, b)``; ``(s, s)`` if a point hits the root;
    ``(None, None)`` if the interval ends first. Steps double in the descent direction."""
    direction = -1.0 if h0 > 0 else 1.0
    step = max(abs(h0) if math.isfinite(h0) else 1.0, 1e-3)
    s_prev, h_prev = s0, h0
    for _ in range(64):
        s = min(max(s_prev + direction * step, s_min), s_max)
        if s == s_prev:
            return None, None
        h = evaluate(s)
        if abs(h) <= xtol:
            return s, s
        if (h > 0) != (h_prev > 0):
            return s_prev, s
        s_prev, h_prev = s, h
        step *= 2.0
    return None, None


# =============================================================================================
# errors at a point
# =============================================================================================
def rff_point_errors(kern, pt, test=None, loo=False, gcv=False):
    """Deterministic equivalents at a solved point.

    Parameters
    ----------
    kern : RFFKernels
    pt : RFFPoint
    test : RFFTest, optional
        Adds ``variance`` (no labels needed), with labels ``bias`` and ``test_mse``.
    loo, gcv : bool, default=False

    Returns
    -------
    dict
        Floats ``effective_alpha`` (t), ``r``, ``delta_c``, ``delta_s``, ``dof``
        (``tr K_r R``), ``train_mse``; the two variance weights ``q = (diag(N_c, N_s) - X)^{-1}
        yh`` with ``X_ab = tr(G_a R G_b R)``; and the optional ``loo_mse``, ``gcv_mse``, ``B``
        (the two ``Bt_a``), ``variance``, ``bias``, ``test_mse``.

    Notes
    -----
    With equal widths ``N``, ``diag(N, N) - X = N (I - T)``: the form of the module docstring.
    Unequal widths (an odd feature count) give each block its own ``N_a``: ``D S`` of §7
    becomes ``Lambda^{-1} diag(N_a)^{-1} X Lambda``.
    """
    mu, V, t, r = pt.mu, pt.V, pt.t, pt.r
    n = kern.n
    Y = kern.y
    k = Y.shape[1]
    den = mu + t
    pos = den > 0
    inv = np.where(pos, 1.0 / np.where(pos, den, 1.0), 0.0)
    eps = np.where(pos, t * inv, 1.0)
    z = V.T @ Y  # (n, k)
    a = z * inv[:, None]
    Gc, Gs = pt.blocks(kern)
    W = inv[:, None] * inv[None, :]
    GcW, GsW = Gc * W, Gs * W
    Xm = np.array([[np.sum(GcW * Gc), np.sum(GcW * Gs)],
                   [np.sum(GcW * Gs), np.sum(GsW * Gs)]])
    yh = np.array([np.sum(a * (Gc @ a)), np.sum(a * (Gs @ a))]) / k
    vh = np.array([np.diag(Gc) @ (inv * inv), np.diag(Gs) @ (inv * inv)])
    q = _variance_weights(np.array([pt.n_frequencies, pt.n_sin]) - 0.0, Xm, yh)
    train0 = float(np.sum((z * eps[:, None]) ** 2)) / (n * k)
    train = train0 + (t * t / n) * float(q @ vh) if t > 0 else train0
    out = {
        "effective_alpha": t,
        "r": r,
        "delta_c": pt.delta_c,
        "delta_s": pt.delta_s,
        "dof": float(np.sum(np.where(pos, mu * inv, 0.0))),
        "train_mse": train,
        "q": q,
    }
    if gcv:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["gcv_mse"] = float(np.float64(train) / (np.sum(eps) / n) ** 2)
    if loo:
        Rii = (V * V) @ inv
        Ry = V @ a
        Vi = V * inv[None, :]
        post = np.array([np.sum((Vi @ Gc) * Vi, axis=1), np.sum((Vi @ Gs) * Vi, axis=1)])
        with np.errstate(divide="ignore", invalid="ignore"):
            bias_loo = float(np.sum((Ry / Rii[:, None]) ** 2)) / (n * k)
            post = np.maximum(np.mean(post / Rii[None, :] ** 2, axis=1), 0.0)
            out["loo_mse"] = bias_loo + _weighted(q, post)
    if test is not None:
        Cc = V.T @ test.Kc.T  # (n, n_test)
        Cs = V.T @ test.Ks.T
        Cr = Cc + r * Cs
        n_t = Cc.shape[1]
        H = Cr @ Cr.T
        mean_c, mean_s = float(test.dc.mean()), float(test.ds.mean())
        B = np.array([
            mean_c - 2.0 * float(inv @ np.einsum("kj,kj->k", Cr, Cc)) / n_t
            + float(np.sum(GcW * H)) / n_t,
            r * mean_s - 2.0 * r * float(inv @ np.einsum("kj,kj->k", Cr, Cs)) / n_t
            + float(np.sum(GsW * H)) / n_t,
        ])
        # each B_a is a mean squared error (>= 0): below 1e-10 of its scale it is rounding
        scale = np.array([mean_c, r * mean_s])
        B = np.where(B <= 1e-10 * np.abs(scale), 0.0, B)
        var = _weighted(q, B)
        out["B"] = B
        out["variance"] = var
        if test.y is not None:
            res = test.y - Cr.T @ a
            out["bias"] = float(np.sum(res * res)) / (n_t * k)
            out["test_mse"] = out["bias"] + var
    return out


def _variance_weights(widths, Xm, yh):
    """``(diag(widths) - X)^{-1} yh``; an absent block (width 0, ``r = 0``) has weight 0.

    ``diag(widths) - X`` is positive definite off the pole; at the pole (``gamma = 0`` with
    ``N_c + N_s = rank K_r``) it is singular and rounding leaves an eigenvalue of either sign
    near ``1e-13 N``: that is reported as an infinite weight, as one block's ``N - df2 = 0``.
    """
    q = np.zeros(2)
    keep = widths > 0
    A = np.diag(widths[keep]) - Xm[np.ix_(keep, keep)]
    if np.linalg.eigvalsh(A).min() <= _POLE_RTOL * widths.max():
        q[keep] = math.inf
        return q
    q[keep] = np.linalg.solve(A, yh[keep])
    return q


def _weighted(q, B):
    # a block whose B is exactly 0 adds nothing, even with an infinite weight at the pole
    with np.errstate(invalid="ignore"):
        return float(np.sum(np.where(B == 0.0, 0.0, q * B)))


# =============================================================================================
# grids and alpha selection
# =============================================================================================
_GRID_KEYS = ("effective_alpha", "r", "delta_c", "delta_s", "dof", "train_mse", "loo_mse",
              "gcv_mse", "variance", "bias", "test_mse", "n_eval")


def rff_risk_grid(kern, gammas, n_frequencies, *, n_sin=None, test=None, loo=True, gcv=True,
                  ops=None, r0=None, xtol=R_XTOL):
    """Deterministic equivalents over ridges (and widths), warm-started along the sorted grid.

    Every ``(gamma, N)`` needs its own ``r`` and so its own eigendecompositions (2 to 6 with
    the warm start: ``r`` is extrapolated in ``log gamma`` from the two previous points; see
    ``n_eval``): keep grids to about 25 ridges.

    Parameters
    ----------
    kern : RFFKernels
    gammas : array of shape (a,)
    n_frequencies : float or array of shape (b,)
        Cos feature counts ``N_c``.
    n_sin : float or array of shape (b,), optional
        Sin feature counts ``N_s`` (default ``N_c``).
    test : RFFTest, optional
    loo, gcv : bool, default=True
    ops : array namespace, optional
    r0 : float, optional
        Warm start of the first point.
    xtol : float, default=1e-10
        Accepted residual of each solve (see :func:`solve_rff`).

    Returns
    -------
    dict of arrays of shape (a,) for a scalar width, (b, a) otherwise: ``effective_alpha``,
    ``r``, ``delta_c``, ``delta_s``, ``dof``, ``train_mse``, ``n_eval`` and the optional
    ``loo_mse``, ``gcv_mse``, ``variance``, ``bias``, ``test_mse``.
    """
    gammas = np.atleast_1d(np.asarray(gammas, dtype=np.float64))
    scalar_n = np.ndim(n_frequencies) == 0
    Ns = np.atleast_1d(np.asarray(n_frequencies, dtype=np.float64))
    Ss = Ns if n_sin is None else np.broadcast_to(np.asarray(n_sin, dtype=np.float64),
                                                  Ns.shape)
    order = np.argsort(gammas, kind="stable")
    out = {}
    r_start = r0
    unconverged = 0
    for j, (N, S) in enumerate(zip(Ns, Ss)):
        r_prev = r_start
        slope = None
        last = []  # (log gamma, log r) of the previous points of this width
        for i in order:
            if len(last) == 2 and gammas[i] > 0 and last[0][0] < last[1][0]:
                # r is smooth in log gamma: extrapolate linearly from the last two points
                (g1, s1), (g2, s2) = last
                d = (s2 - s1) / (g2 - g1)
                r_prev = math.exp(s2 + d * min(math.log(gammas[i]) - g2, g2 - g1))
            pt = solve_rff(kern, gammas[i], N, n_sin=S, r0=r_prev, slope0=slope, ops=ops,
                           xtol=xtol, warn=False)
            slope = pt.slope if pt.slope is not None else slope
            unconverged += not pt.converged
            res = rff_point_errors(kern, pt, test=test, loo=loo, gcv=gcv)
            res["n_eval"] = pt.n_eval
            for key in _GRID_KEYS:
                if key in res:
                    out.setdefault(key, np.empty((Ns.size, gammas.size)))[j, i] = res[key]
            r_prev = pt.r
            if gammas[i] > 0 and pt.r > 0:
                last = (last + [(math.log(gammas[i]), math.log(pt.r))])[-2:]
            if i == order[0] and pt.r > 0:
                r_start = pt.r  # the next width starts from this width's first point
    if unconverged:
        warnings.warn(
            f"The random-Fourier-features solver did not converge at {unconverged} of "
            f"{gammas.size * Ns.size} (alpha, n_components) points; the deterministic "
            "equivalents there are approximate.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return {key: (val[0] if scalar_n else val) for key, val in out.items()}


def rff_alpha_grid(kern, n_frequencies, n_sin=None, n_points=GRID_POINTS,
                   decades=_de.GRID_DECADES):
    """The selection grid ``s * 10^{-8..4}``, ``s = tr(N_c K_c + N_s K_s)/n^2`` (25 points).

    As the one-block grid's ``(N/n) tr(Phi)/n``: the scale of ``E[F F^T]/n^2``.
    """
    N_c, N_s = _widths(n_frequencies, n_sin)
    n = kern.n
    scale = (N_c * float(np.trace(kern.Kc)) + N_s * float(np.trace(kern.Ks))) / n**2
    if not np.isfinite(scale) or scale <= 0:
        scale = 1.0
    return scale * np.logspace(decades[0], decades[1], n_points)


def rff_select_alpha(kern, n_frequencies, *, n_sin=None, criterion="loo", grid=None,
                     refine=True, ops=None):
    """Choose the ridge by minimising the two-block RMT-LOO (default) or RMT-GCV criterion.

    As :func:`skrmt._theory._rmt_ridge_de.select_alpha`, on a coarser default grid
    (:func:`rff_alpha_grid`, 25 points, 0.5 decade apart) because each point costs a few
    eigendecompositions; the argmin is refined by bounded Brent on ``log10(gamma)`` between its
    grid neighbours (xtol 0.01 decade), each evaluation warm-started from the nearest ``r``.
    An argmin at an end of the grid is kept, with a ``UserWarning``. The solves of the scan
    stop at ``|log r residual| <= 1e-7`` (``SELECT_XTOL``); solve again at ``alpha`` (warm
    start ``info["r_alpha"]``) for the full precision.

    Returns
    -------
    alpha : float
    info : dict
        ``grid``, ``values`` (the criterion on the grid), ``r`` (on the grid), ``value`` (at
        ``alpha``), ``r_alpha`` (``r`` at ``alpha``, a warm start), ``at_edge``, ``n_refine``
        (criterion evaluations of the refinement), ``n_eval`` (eigendecompositions in all).
    """
    if criterion not in ("loo", "gcv"):
        raise ValueError(f"criterion must be 'loo' or 'gcv', got {criterion!r}.")
    key = f"{criterion}_mse"
    N_c, N_s = _widths(n_frequencies, n_sin)
    grid = rff_alpha_grid(kern, N_c, N_s) if grid is None else np.asarray(grid, float)
    res = rff_risk_grid(kern, grid, N_c, n_sin=N_s, loo=criterion == "loo",
                        gcv=criterion == "gcv", ops=ops, xtol=SELECT_XTOL)
    values, rs = res[key], res["r"]
    finite = np.isfinite(values)
    if not np.any(finite):
        raise ValueError("the alpha-selection criterion is not finite anywhere on the grid.")
    k = int(np.argmin(np.where(finite, values, np.inf)))
    info = {"grid": grid, "values": values, "r": rs, "at_edge": k in (0, grid.size - 1),
            "n_refine": 0, "n_eval": int(res["n_eval"].sum())}
    alpha, best = float(grid[k]), float(values[k])
    best_r = float(rs[k])
    if info["at_edge"]:
        _de.warn_grid_edge(criterion, grid, k)
    elif refine:
        log_grid = np.log10(grid)
        found = {}

        def crit(log_gamma):
            info["n_refine"] += 1
            near = int(np.argmin(np.abs(log_grid - log_gamma)))
            pt = solve_rff(kern, 10.0**log_gamma, N_c, n_sin=N_s, r0=float(rs[near]), ops=ops,
                           xtol=SELECT_XTOL)
            info["n_eval"] += pt.n_eval
            val = rff_point_errors(kern, pt, loo=criterion == "loo",
                                   gcv=criterion == "gcv")[key]
            found[log_gamma] = pt.r
            return float(val) if np.isfinite(val) else math.inf

        opt = optimize.minimize_scalar(
            crit, bounds=(log_grid[k - 1], log_grid[k + 1]), method="bounded",
            options={"xatol": _de.REFINE_XTOL},
        )
        if np.isfinite(opt.fun) and opt.fun < best:
            alpha, best = float(10.0**opt.x), float(opt.fun)
            best_r = found.get(opt.x, best_r)
    info["value"] = best
    info["r_alpha"] = best_r
    return alpha, info


def rff_interpolation_peak(pt, gamma, n_components):
    """Whether ``(gamma, N_c + N_s)`` sits at the interpolation peak: ``n_components``
    features within ``[0.9, 1.1] * rank(K_r)`` and ``gamma`` below ``1e-2 * tr(K_r)/n``
    (the one-block rule with the kernel ``K_r``)."""
    spec = _de.KernelSpectrum(lam=pt.mu, z=np.zeros(pt.mu.size))
    return _de.interpolation_peak(spec, gamma, n_components)
