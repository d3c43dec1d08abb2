"""Gaussian expectations of activations: the single home of every such computation in skrmt.

Design note: ``moments.md``. Everything here takes **variances** (``tau``, ``A``, ``B``), works in
float64, and is pure: no estimator logic, no device choice beyond the ``ops`` argument.

Order of methods (moments.md §4):

1. closed forms (§5 one-dimensional moments, §6 dual kernels, step functions through Owen's T);
2. a composite Gauss-Legendre rule on the standardised window [-10, 10] with panel breaks at every
   declared kink (the single numerical engine);
3. for user callables, the same rule with 40 and 80 panels; when they disagree, an adaptive
   ``scipy.integrate`` fallback and a ``UserWarning`` asking to declare the kinks.

Dual kernels: closed forms of §6; exact bivariate-normal forms for step functions (Owen's T) and
for the piecewise linear/exponential activations hardtanh and elu (Stein's identity on
rectangles and the Gaussian tilt); the Hermite (Mehler) series with an adaptive order and the
Parseval truncation bound for the smooth rest (tanh, sigmoid, gelu, swish, softplus, callables).
The diagonal of a series kernel always comes from the one-dimensional ``s2``.
"""

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.special as sc
from scipy import integrate

from .._backend import host_ops
from ._activations import StepFunction, resolve_activation

__all__ = [
    "GaussianMoments",
    "bvn_cdf",
    "dual_kernel",
    "dual_kernel_diag",
    "dual_kernel_prime",
    "dual_kernel_prime_diag",
    "gauss_rule",
    "gaussian_moments",
    "hermite_coefficients",
    "staircase_moments",
]

_SQRT_2PI = math.sqrt(2.0 * math.pi)
_HALF_WIDTH = 10.0  # standardised window: neglected Gaussian mass 1.5e-23
_N_PANELS = 40
_N_NODES = 16
_PHI_AT_EDGE = math.exp(-0.5 * _HALF_WIDTH**2) / _SQRT_2PI
_GROWTH_TOL = 1e-16  # |sigma(+-10 sqrt(tau))| phi(10) above this: the window misses mass
_CALLABLE_RTOL = 1e-9  # 40- vs 80-panel agreement required of a user callable
_MAX_ORDER = 80
_SERIES_RTOL = 1e-8  # Parseval bound that must be met (else a warning), relative to sqrt(s2 s2)
_SERIES_AIM = 1e-12  # the order is raised (up to 80) until the bound meets this, when it can
_DIAG_RTOL = 1e-12  # rho and A/B this close to the diagonal use the 1-D s2
_ROW_BLOCK = 2048



# =============================================================================================
# results
# =============================================================================================
@dataclass
class GaussianMoments:
    """Gaussian moments of an activation at variance ``tau`` (moments.md §2).

    With ``u = sqrt(tau) xi``, ``xi ~ N(0, 1)``: ``m0 = E sigma(u)``, ``s2 = E sigma(u)^2``,
    ``m1 = E sigma'(u)``, ``m2 = E sigma''(u)`` (Stein forms, exact for kinks and jumps),
    ``e3 = E[(sigma - m0)^2]''`` with ``m0`` held fixed, ``q = E sigma'(u)^2`` (``+inf`` when
    ``sigma`` jumps). Fields are floats for a scalar ``tau`` and arrays of its shape otherwise.
    """

    tau: object
    m0: object
    s2: object
    m1: object
    m2: object
    e3: object
    q: object

    @property
    def var(self):
        """``Var sigma(u) = s2 - m0^2``."""
        return self.s2 - self.m0 * self.m0

    @property
    def d0(self):
        """ICML-2018 ``d0 = Var - tau m1^2`` (energy outside the linear part)."""
        return self.var - self.tau * self.m1 * self.m1

    @property
    def d1(self):
        """ICML-2018 ``d1 = m1^2``."""
        return self.m1 * self.m1

    @property
    def d2(self):
        """ICML-2018 ``d2 = m2^2 / 4``."""
        return self.m2 * self.m2 / 4.0


_KEYS = ("m0", "s2", "m1", "m2", "e3", "q")


# =============================================================================================
# input checks
# =============================================================================================
def _as_variance(tau, name="tau", allow_zero=False):
    """float64 copy of a variance argument (any shape) and whether it was a scalar."""
    if hasattr(tau, "detach"):  # a torch tensor
        tau = tau.detach().cpu().numpy()
    try:
        arr = np.array(tau, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number or an array of real numbers.") from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} (a variance) must be finite.")
    if allow_zero:
        if np.any(arr < 0):
            raise ValueError(f"{name} (a variance) must be >= 0, got min {arr.min()!r}.")
    elif np.any(arr <= 0):
        raise ValueError(f"{name} (a variance) must be > 0, got min {arr.min()!r}.")
    return arr, arr.ndim == 0


# =============================================================================================
# the composite Gauss-Legendre rule
# =============================================================================================
@lru_cache(maxsize=1024)
def _rule(breaks, n_panels, n_nodes, half_width):
    t, wl = np.polynomial.legendre.leggauss(n_nodes)
    edges = np.linspace(-half_width, half_width, n_panels + 1)
    extra = [b for b in breaks if -half_width < b < half_width]
    edges = np.unique(np.concatenate([edges, [0.0], np.asarray(extra, dtype=np.float64)]))
    lo, hi = edges[:-1], edges[1:]
    half = 0.5 * (hi - lo)
    mid = 0.5 * (hi + lo)
    x = (mid[:, None] + half[:, None] * t[None, :]).ravel()
    w = (half[:, None] * wl[None, :]).ravel() * np.exp(-0.5 * x * x) / _SQRT_2PI
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


def gauss_rule(kinks_std=(), n_panels=_N_PANELS, n_nodes=_N_NODES, half_width=_HALF_WIDTH):
    """Composite Gauss-Legendre rule for ``E f(xi)``, ``xi ~ N(0, 1)``.

    Parameters
    ----------
    kinks_std : sequence of float
        Kinks and jumps of ``f`` in standardised units (``kink / sqrt(tau)``); each becomes a
        panel break, as does 0.
    n_panels, n_nodes : int
        Equal panels on ``[-half_width, half_width]`` and Legendre nodes per panel.
    half_width : float
        Half-width of the standardised window (10 neglects a Gaussian mass of 1.5e-23).

    Returns
    -------
    x, w : ndarray
        Nodes and weights (the normal density is folded into ``w``): ``E f(xi) ~ sum w f(x)``.
    """
    values = np.atleast_1d(np.asarray(kinks_std, dtype=np.float64))
    breaks = tuple(sorted({float(k) for k in values}))
    return _rule(breaks, int(n_panels), int(n_nodes), float(half_width))


def _eval(act, U):
    Y = np.asarray(act.fn(U), dtype=np.float64)
    if Y.shape != U.shape:
        Y = np.broadcast_to(Y, U.shape)
    if not np.all(np.isfinite(Y)):
        raise ValueError(
            f"activation {act.name!r} returned non-finite values on the quadrature nodes."
        )
    return Y


def _derivative(act, U):
    """sigma' on the nodes: the declared derivative, else central differences (callables)."""
    if act.dfn is not None:
        return np.asarray(act.dfn(U), dtype=np.float64) + np.zeros_like(U)
    h = 1e-6 * np.maximum(1.0, np.abs(U))
    return (_eval(act, U + h) - _eval(act, U - h)) / (2.0 * h)


def _check_growth(act, tau):
    edge = _HALF_WIDTH * np.sqrt(np.atleast_1d(tau))
    vals = np.abs(np.asarray(act.fn(np.concatenate([edge, -edge])), dtype=np.float64))
    worst = np.max(np.where(np.isfinite(vals), vals, np.inf)) * _PHI_AT_EDGE
    if worst > _GROWTH_TOL:
        raise ValueError(
            f"activation {act.name!r} grows too fast for Gaussian moments at tau up to "
            f"{float(np.max(tau)):.4g}: |sigma(+-10 sqrt(tau))| phi(10) = {worst:.3g} > 1e-16 "
            "(exponentially growing activations are not supported)."
        )


def _rule_block(act, tau, breaks, n_panels, with_q=True):
    """Moments of ``act`` at variances ``tau`` (1-D) with one rule (standardised breaks)."""
    x, w = _rule(breaks, n_panels, _N_NODES, _HALF_WIDTH)
    rt = np.sqrt(tau)[:, None]
    U = rt * x[None, :]
    Y = _eval(act, U)
    x2m1 = x * x - 1.0
    # np.sum over the contiguous axis: a vector of tau and a loop over tau agree bit for bit
    m0 = np.sum(Y * w, axis=1)
    s2 = np.sum(Y * Y * w, axis=1)
    m1 = np.sum(Y * (x * w), axis=1) / rt[:, 0]
    m2 = np.sum(Y * (x2m1 * w), axis=1) / tau
    Yc = Y - m0[:, None]
    e3 = np.sum(Yc * Yc * (x2m1 * w), axis=1) / tau
    if act.jumps:
        q = np.full_like(tau, np.inf)
    elif with_q:
        D = _derivative(act, U)
        q = np.sum(D * D * w, axis=1)
    else:
        q = np.full_like(tau, np.nan)
    return dict(m0=m0, s2=s2, m1=m1, m2=m2, e3=e3, q=q)


def _quadrature_moments(act, tau, n_panels=_N_PANELS, with_q=True):
    """The composite rule for every moment at each variance of the 1-D array ``tau``."""
    tau = np.asarray(tau, dtype=np.float64)
    _check_growth(act, tau)
    moving = [k for k in act.kinks if k != 0.0]
    if not moving:
        return _rule_block(act, tau, (), n_panels, with_q)
    # breaks at kink / sqrt(tau) move with tau: one rule per variance
    out = {key: np.empty_like(tau) for key in _KEYS}
    for i, t in enumerate(tau):
        breaks = tuple(sorted({k / math.sqrt(t) for k in moving}))
        res = _rule_block(act, tau[i : i + 1], breaks, n_panels, with_q)
        for key in _KEYS:
            out[key][i] = res[key][0]
    return out


def _moment_scales(res, tau):
    s2 = np.abs(res["s2"])
    rs = np.sqrt(s2)
    return dict(m0=rs, s2=s2, m1=rs / np.sqrt(tau), m2=rs / tau, e3=s2 / tau, q=np.abs(res["q"]))


def _adaptive_moments(act, t):
    """``scipy.integrate.quad`` on the standardised window, split at the declared kinks."""
    rt = math.sqrt(t)
    pts = sorted({0.0} | {k / rt for k in act.kinks if abs(k / rt) < _HALF_WIDTH})
    edges = [-_HALF_WIDTH] + pts + [_HALF_WIDTH]
    has_jump = bool(act.jumps)

    def sigma(xi):
        return float(_eval(act, np.array([rt * xi]))[0])

    def dsigma(xi):
        return float(_derivative(act, np.array([rt * xi]))[0])

    def phi(xi):
        return math.exp(-0.5 * xi * xi) / _SQRT_2PI

    integrands = [
        lambda x: sigma(x) * phi(x),
        lambda x: sigma(x) ** 2 * phi(x),
        lambda x: x * sigma(x) * phi(x),
        lambda x: (x * x - 1.0) * sigma(x) * phi(x),
        lambda x: (x * x - 1.0) * sigma(x) ** 2 * phi(x),
        lambda x: dsigma(x) ** 2 * phi(x),
    ]
    total = np.zeros(6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        for i, g in enumerate(integrands):
            if i == 5 and has_jump:
                continue
            for a, b in zip(edges[:-1], edges[1:]):
                if b > a:
                    total[i] += integrate.quad(g, a, b, epsabs=1e-13, epsrel=1e-13, limit=500)[0]
    m0, s2 = total[0], total[1]
    m1 = total[2] / rt
    m2 = total[3] / t
    # e3 = m2(sigma^2) - 2 m0 m2: the centred definition expanded (m0 held fixed)
    e3 = total[4] / t - 2.0 * m0 * m2
    # without a declared derivative q comes from central differences: near an undeclared
    # kink it is only accurate to about the difference step (1e-6)
    q = np.inf if has_jump else total[5]
    return dict(m0=m0, s2=s2, m1=m1, m2=m2, e3=e3, q=q)


def _callable_moments(act, tau):
    res = _quadrature_moments(act, tau, _N_PANELS)
    fine = _quadrature_moments(act, tau, 2 * _N_PANELS)
    scales = _moment_scales(fine, tau)
    bad = np.zeros(tau.shape, dtype=bool)
    worst = 0.0
    for key in _KEYS:
        a, b = res[key], fine[key]
        finite = np.isfinite(a) & np.isfinite(b)
        diff = np.abs(np.where(finite, a, 0.0) - np.where(finite, b, 0.0))
        rel = np.where(scales[key] > 0, diff / np.where(scales[key] > 0, scales[key], 1.0), 0.0)
        bad |= rel > _CALLABLE_RTOL
        worst = max(worst, float(np.max(rel, initial=0.0)))
    if np.any(bad):
        warnings.warn(
            f"the activation callable looks non-smooth (40- and 80-panel quadratures differ by "
            f"{worst:.2g} relative): its moments were recomputed by adaptive quadrature. Declare "
            "its kinks and jumps (a `kinks` attribute, or resolve_activation(fn, kinks=...)) for "
            "fast exact moments.",
            UserWarning,
            stacklevel=4,
        )
        for i in np.flatnonzero(bad):
            adaptive = _adaptive_moments(act, float(tau[i]))
            for key in _KEYS:
                res[key][i] = adaptive[key]
    return res


# =============================================================================================
# one-dimensional closed forms (moments.md §5)
# =============================================================================================
def _step_levels(act):
    """(L0, heights, thresholds) of a step function, or None."""
    if isinstance(act, StepFunction):
        lv = np.asarray(act.levels, dtype=np.float64)
        return lv[0], np.diff(lv), np.asarray(act.thresholds, dtype=np.float64)
    if act.name == "step":
        return 0.0, np.array([1.0]), np.array([0.0])
    if act.name == "sign":
        return -1.0, np.array([2.0]), np.array([0.0])
    return None


def _step_moments(L0, h, s, tau):
    rt = np.sqrt(tau)[:, None]
    z = s[None, :] / rt
    lv = L0 + np.concatenate([[0.0], np.cumsum(h)])
    g = lv[1:] ** 2 - lv[:-1] ** 2
    Q = sc.ndtr(-z)
    phi = np.exp(-0.5 * z * z) / _SQRT_2PI
    m0 = L0 + Q @ h
    s2 = L0 * L0 + Q @ g
    m1 = (phi @ h) / rt[:, 0]
    m2 = ((z * phi) @ h) / tau
    e3 = ((z * phi) @ g) / tau - 2.0 * m0 * m2
    q = np.full_like(tau, np.inf if np.any(h != 0) else 0.0)
    return dict(m0=m0, s2=s2, m1=m1, m2=m2, e3=e3, q=q)


def _closed_moments(act, tau):
    """Closed-form moments (a possibly partial dict) or None."""
    name, p = act.name, dict(act.params)
    one = np.ones_like(tau)
    steps = _step_levels(act)
    if steps is not None:
        return _step_moments(*steps, tau)
    if name == "linear":
        return dict(m0=0 * one, s2=tau.copy(), m1=one, m2=0 * one, e3=2 * one, q=one)
    if name in ("relu", "leaky_relu", "abs"):
        a = {"relu": 0.0, "abs": -1.0}.get(name, p.get("negative_slope"))
        return dict(
            m0=(1 - a) * np.sqrt(tau / (2 * math.pi)),
            s2=(1 + a * a) * tau / 2,
            m1=(1 + a) / 2 * one,
            m2=(1 - a) / np.sqrt(2 * math.pi * tau),
            e3=((1 + a * a) - (1 - a) ** 2 / math.pi) * one,
            q=(1 + a * a) / 2 * one,
        )
    if name == "quadratic":
        q2, q1, q0 = p["coef"]
        m0 = q2 * tau + q0
        return dict(
            m0=m0,
            s2=m0 * m0 + 2 * q2 * q2 * tau * tau + q1 * q1 * tau,
            m1=q1 * one,
            m2=2 * q2 * one,
            e3=8 * q2 * q2 * tau + 2 * q1 * q1,
            q=4 * q2 * q2 * tau + q1 * q1,
        )
    if name in ("cos", "sin", "rbf"):
        e1, e2 = np.exp(-tau / 2), np.exp(-2 * tau)
        if name == "cos":
            return dict(
                m0=e1, s2=(1 + e2) / 2, m1=0 * one, m2=-e1, e3=2 * e1 * e1 - 2 * e2, q=(1 - e2) / 2
            )
        if name == "sin":
            return dict(m0=0 * one, s2=(1 - e2) / 2, m1=e1, m2=0 * one, e3=2 * e2, q=(1 + e2) / 2)
        return dict(m0=e1, s2=one, m1=e1, m2=-e1, e3=2 * e1 * e1, q=one)
    if name == "erf":
        return dict(
            m0=0 * one,
            s2=(2 / math.pi) * np.arcsin(2 * tau / (1 + 2 * tau)),
            m1=2 / np.sqrt(math.pi * (1 + 2 * tau)),
            m2=0 * one,
            e3=8 / (math.pi * (1 + 2 * tau) * np.sqrt(1 + 4 * tau)),
            q=4 / (math.pi * np.sqrt(1 + 4 * tau)),
        )
    if name == "gauss":
        return dict(
            m0=(1 + tau) ** -0.5,
            s2=(1 + 2 * tau) ** -0.5,
            m1=0 * one,
            m2=-((1 + tau) ** -1.5),
            e3=2 * (1 + tau) ** -2 - 2 * (1 + 2 * tau) ** -1.5,
            q=tau * (1 + 2 * tau) ** -1.5,
        )
    if name == "hardtanh":
        a, c = p["amplitude"], p["clip"]
        r = c / np.sqrt(2 * tau)
        er, ex = sc.erf(r), np.exp(-r * r)
        return dict(
            m0=0 * one,
            s2=a * a * (tau * er + c * c * sc.erfc(r) - c * np.sqrt(2 * tau / math.pi) * ex),
            m1=a * er,
            m2=0 * one,
            e3=2 * a * a * (er - 2 * r / math.sqrt(math.pi) * ex),
            q=a * a * er,
        )
    if name == "sigmoid":
        # sigmoid(t) = (1 + tanh(t/2)) / 2: the tanh moments at tau / 4
        th = _quadrature_moments(resolve_activation("tanh"), tau / 4)
        return dict(
            m0=0.5 * one,
            s2=(1 + th["s2"]) / 4,
            m1=th["m1"] / 4,
            m2=0 * one,
            e3=th["e3"] / 16,
            q=th["q"] / 16,
        )
    if name == "gelu":
        return dict(
            m0=tau / np.sqrt(2 * math.pi * (1 + tau)),
            m1=0.5 * one,
            m2=(2 + tau) / (_SQRT_2PI * (1 + tau) ** 1.5),
        )
    if name in ("swish", "softplus"):
        # t/2 + an even function: m1 = 1/2 exactly
        return dict(m1=0.5 * one)
    return None


@dataclass(frozen=True)
class StaircaseMoments:
    """Standardised Gaussian moments of a staircase (see :func:`staircase_moments`).

    With ``v`` the input variance and levels in units of ``sqrt(v)``: ``m0`` (the mean),
    ``m1``, ``m2s = sqrt(v) m2``, ``e3`` (centred at ``m0``) and ``var``; in the natural units
    of the pre-activation ``m0 -> sqrt(v) m0``, ``m2 = m2s / sqrt(v)``, ``Var -> v var``, while
    ``m1`` and ``e3`` are unchanged. With ``derivatives=True``, ``jac`` maps each name to the
    pair of arrays ``(d/dz, d/djumps)``.
    """

    m0: object
    m1: object
    m2s: object
    e3: object
    var: object
    jac: object = None


def _d_level_sum(upper, lower, w):
    """``d/dJ_j sum_k (c_k^2 - c_{k-1}^2) w_k = 2 sum_{k>=j} c_k w_k - 2 sum_{k>j} c_{k-1} w_k``.

    (The level just above ``z_k`` contains ``J_j`` for ``k >= j``, the one below for ``k > j``.)
    """

    def tail(x):
        return np.flip(np.cumsum(np.flip(x, -1), -1), -1)

    return 2.0 * tail(upper * w) - 2.0 * (tail(lower * w) - lower * w)


def staircase_moments(z, jumps, c0=0.0, derivatives=False):
    """Closed-form moments of a step function in standardised units, vectorised.

    The step function is ``c0 + sum_k J_k 1{xi > z_k}`` of ``xi ~ N(0, 1)`` (thresholds ``z``
    are ``s / sqrt(v)``, levels ``c_k = c0 + J_1 + ... + J_k`` are in units of ``sqrt(v)``):
    moments.md §5's step-function row in the form ntk_lc.md §9 uses,

    - ``m0 = c0 + sum_k J_k Q(z_k)``, ``var = sum_j P_j c_j^2 - m0^2``,
    - ``m1 = sum_k J_k phi(z_k)``, ``m2s = sum_k J_k z_k phi(z_k)``,
    - ``e3 = sum_k (c_k^2 - c_{k-1}^2) z_k phi(z_k) - 2 m0 m2s``.

    Parameters
    ----------
    z : array_like of shape (..., J)
        Standardised thresholds (any order; equal ones simply add their jumps).
    jumps : array_like of shape (..., J)
        Signed jumps ``J_k`` at ``z_k``.
    c0 : float or array_like of shape (...), default=0.0
        Level below every threshold.
    derivatives : bool, default=False
        Also return the exact first derivatives with respect to ``z`` and ``jumps``.

    Returns
    -------
    StaircaseMoments

    Examples
    --------
    >>> mom = staircase_moments([0.0], [1.0])  # the unit step 1{t > 0}
    >>> round(float(mom.m0), 6), round(float(mom.m1), 6), float(mom.var)
    (0.5, 0.398942, 0.25)
    """
    z = np.asarray(z, dtype=np.float64)
    J = np.asarray(jumps, dtype=np.float64)
    z, J = np.broadcast_arrays(z, J)
    c0 = np.asarray(c0, dtype=np.float64)[..., None]
    upper = c0 + np.cumsum(J, axis=-1)  # level just above z_k
    lower = upper - J  # level just below z_k
    phi = np.exp(-0.5 * z * z) / _SQRT_2PI
    Q = sc.ndtr(-z)
    zphi = z * phi
    g = J * (upper + lower)  # c_k^2 - c_{k-1}^2
    m0 = c0[..., 0] + np.sum(J * Q, axis=-1)
    s2 = c0[..., 0] ** 2 + np.sum(g * Q, axis=-1)
    m1 = np.sum(J * phi, axis=-1)
    m2s = np.sum(J * zphi, axis=-1)
    e3 = np.sum(g * zphi, axis=-1) - 2.0 * m0 * m2s
    var = s2 - m0 * m0
    jac = None
    if derivatives:
        mm = m0[..., None]
        dz_m0 = -J * phi
        dz_var = -g * phi - 2.0 * mm * dz_m0
        dz_m1 = -J * zphi
        dz_m2s = J * (1.0 - z * z) * phi
        dz_e3 = g * (1.0 - z * z) * phi - 2.0 * (dz_m0 * m2s[..., None] + mm * dz_m2s)
        # d/dJ_j: every level above z_j moves by one; P_k Q-differences give sum_{k>=j}
        dJ_m0 = Q
        dJ_var = _d_level_sum(upper, lower, Q) - 2.0 * mm * Q
        dJ_m1 = phi
        dJ_m2s = zphi
        dJ_e3 = _d_level_sum(upper, lower, zphi) - 2.0 * (Q * m2s[..., None] + mm * zphi)
        jac = dict(
            m0=(dz_m0, dJ_m0),
            m1=(dz_m1, dJ_m1),
            m2s=(dz_m2s, dJ_m2s),
            e3=(dz_e3, dJ_e3),
            var=(dz_var, dJ_var),
        )
    return StaircaseMoments(m0=m0, m1=m1, m2s=m2s, e3=e3, var=var, jac=jac)


# =============================================================================================
# gaussian_moments
# =============================================================================================
def _moments_arrays(act, tau):
    """All moments of a resolved activation on a flat array of positive variances."""
    res = _closed_moments(act, tau) or {}
    missing = [k for k in _KEYS if k not in res]
    if missing:
        if act.name == "callable":
            num = _callable_moments(act, tau)
        else:
            num = _quadrature_moments(act, tau)
        for k in missing:
            res[k] = num[k]
    res = {k: np.asarray(res[k], dtype=np.float64) + np.zeros_like(tau) for k in _KEYS}
    if act.parity == "odd":
        res["m0"][:] = 0.0
        res["m2"][:] = 0.0
    elif act.parity == "even":
        res["m1"][:] = 0.0
    return res


def gaussian_moments(act, tau):
    """Gaussian moments of an activation at variance(s) ``tau``.

    Parameters
    ----------
    act : str, Activation, StepFunction or callable
        Anything :func:`~skrmt._theory._activations.resolve_activation` accepts.
    tau : float or array_like
        Variance(s) of the Gaussian pre-activation (not standard deviations); > 0.

    Returns
    -------
    GaussianMoments
        Fields ``tau, m0, s2, m1, m2, e3, q`` (floats for a scalar ``tau``, arrays of its shape
        otherwise) and properties ``var, d0, d1, d2``.

    Warns
    -----
    UserWarning
        When a user callable looks non-smooth (undeclared kinks): its moments then come from
        adaptive quadrature.

    Examples
    --------
    >>> m = gaussian_moments("relu", 1.0)
    >>> round(m.m0, 6), m.m1, round(m.d0, 6)
    (0.398942, 0.5, 0.090845)
    """
    act = resolve_activation(act)
    arr, scalar = _as_variance(tau, "tau")
    flat = arr.ravel()
    res = _moments_arrays(act, flat)
    if scalar:
        return GaussianMoments(tau=float(arr), **{k: float(res[k][0]) for k in _KEYS})
    return GaussianMoments(tau=arr, **{k: res[k].reshape(arr.shape) for k in _KEYS})


# =============================================================================================
# Hermite coefficients
# =============================================================================================
def _hermite_matrix(x, K):
    """Normalised probabilists' Hermite ``He_k(x)/sqrt(k!)``, k = 0..K, shape (K+1, len(x))."""
    H = np.empty((K + 1, x.size))
    H[0] = 1.0
    if K >= 1:
        H[1] = x
    for k in range(1, K):
        H[k + 1] = (x * H[k] - math.sqrt(k) * H[k - 1]) / math.sqrt(k + 1)
    return H


@lru_cache(maxsize=64)
def _hermite_on_rule(breaks, K):
    x, w = _rule(breaks, _N_PANELS, _N_NODES, _HALF_WIDTH)
    Hw = _hermite_matrix(x, K) * w[None, :]
    Hw.setflags(write=False)
    return Hw


def _value_at_zero(act, with_q):
    y0 = float(_eval(act, np.zeros(1))[0])
    if not with_q:
        return y0, np.nan
    if 0.0 in act.jumps:
        return y0, np.inf
    return y0, float(_derivative(act, np.zeros(1))[0])


def _hermite_table(act, values, K, with_q=False):
    """Coefficients (nv, K+1), and s2, q on the same rule, at nonnegative ``values`` (1-D)."""
    nv = values.size
    coef = np.zeros((nv, K + 1))
    s2 = np.zeros(nv)
    q = np.full(nv, np.nan)
    zero = values == 0
    if np.any(zero):
        y0, d0 = _value_at_zero(act, with_q)
        coef[zero, 0] = y0
        s2[zero] = y0 * y0
        q[zero] = d0 * d0
    pos = np.flatnonzero(~zero)
    if pos.size == 0:
        return coef, s2, q
    _check_growth(act, values[pos])
    moving = [k for k in act.kinks if k != 0.0]
    if moving:
        blocks = [
            (pos[i : i + 1], tuple(sorted({k / math.sqrt(values[i]) for k in moving}))) for i in pos
        ]
    else:
        blocks = [(pos[i : i + _ROW_BLOCK], ()) for i in range(0, pos.size, _ROW_BLOCK)]
    for idx, breaks in blocks:
        x, w = _rule(breaks, _N_PANELS, _N_NODES, _HALF_WIDTH)
        Hw = _hermite_on_rule(breaks, K) if not moving else _hermite_matrix(x, K) * w[None, :]
        U = np.sqrt(values[idx])[:, None] * x[None, :]
        Y = _eval(act, U)
        coef[idx] = Y @ Hw.T
        s2[idx] = (Y * Y) @ w
        if with_q:
            if act.jumps:
                q[idx] = np.inf
            else:
                D = _derivative(act, U)
                q[idx] = (D * D) @ w
    return coef, s2, q


def hermite_coefficients(act, A, K):
    """Normalised Hermite coefficients ``c_k(A) = E[sigma(sqrt(A) xi) He_k(xi)] / sqrt(k!)``.

    Parameters
    ----------
    act : str, Activation, StepFunction or callable
    A : float or array_like of shape (n,)
        Variances (>= 0).
    K : int
        Highest order.

    Returns
    -------
    ndarray of shape (n, K + 1)
        ``c_0 = m0``, ``c_1 = sqrt(A) m1``, ``c_2 = A m2 / sqrt(2)``, and
        ``sum_k c_k^2 = s2`` (Parseval).
    """
    act = resolve_activation(act)
    arr, _ = _as_variance(A, "A", allow_zero=True)
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 0:
        raise ValueError(f"K must be a nonnegative integer, got {K!r}.")
    coef, _, _ = _hermite_table(act, arr.ravel(), int(K))
    return coef


# =============================================================================================
# bivariate normal CDF (Owen's T)
# =============================================================================================
def bvn_cdf(h, k, rho):
    """``P(Z1 <= h, Z2 <= k)`` for standard normals with correlation ``rho`` (vectorised).

    Owen's T form (exact to rounding), with the limits ``h = 0``/``k = 0``, ``rho = +-1`` and
    infinite arguments coded explicitly.

    Parameters
    ----------
    h, k, rho : array_like
        Broadcastable; ``rho`` in [-1, 1].

    Returns
    -------
    ndarray (float64)
    """
    h, k, rho = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (h, k, rho))
    )
    if np.any(np.isnan(h)) or np.any(np.isnan(k)) or np.any(np.isnan(rho)):
        raise ValueError("bvn_cdf arguments must not be NaN.")
    if np.any(np.abs(rho) > 1.0):
        raise ValueError("rho must lie in [-1, 1].")
    out = np.zeros(h.shape)
    Ph, Pk = sc.ndtr(h), sc.ndtr(k)
    neg_inf = np.isneginf(h) | np.isneginf(k)
    h_inf = np.isposinf(h) & ~neg_inf
    k_inf = np.isposinf(k) & ~neg_inf & ~h_inf
    out[h_inf] = Pk[h_inf]
    out[k_inf] = Ph[k_inf]
    finite = ~(neg_inf | h_inf | k_inf)
    one = finite & (rho == 1.0)
    out[one] = sc.ndtr(np.minimum(h[one], k[one]))
    mone = finite & (rho == -1.0)
    out[mone] = np.maximum(0.0, Ph[mone] - sc.ndtr(-k[mone]))
    gen = finite & (np.abs(rho) < 1.0)
    if np.any(gen):
        hh, kk, r = h[gen], k[gen], rho[gen]
        s = np.sqrt((1.0 - r) * (1.0 + r))
        hz, kz = hh == 0.0, kk == 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            ah = (kk - r * hh) / (hh * s)
            ak = (hh - r * kk) / (kk * s)
        # T(0, +-inf) = +-1/4: the h = 0 (k = 0) limit
        Th = sc.owens_t(np.where(hz, 1.0, hh), np.where(hz, 0.0, ah))
        Th = np.where(hz, np.sign(kk) / 4.0, Th)
        Tk = sc.owens_t(np.where(kz, 1.0, kk), np.where(kz, 0.0, ak))
        Tk = np.where(kz, np.sign(hh) / 4.0, Tk)
        hk = hh * kk
        beta = np.where((hk < 0) | ((hk == 0) & (hh + kk < 0)), 0.5, 0.0)
        F = 0.5 * Ph[gen] + 0.5 * Pk[gen] - Th - Tk - beta
        both = hz & kz
        F = np.where(both, 0.25 + np.arcsin(r) / (2.0 * math.pi), F)
        out[gen] = np.clip(F, 0.0, 1.0)
    return out


# =============================================================================================
# dual kernels (moments.md §6)
# =============================================================================================
_CLOSED_PHI = frozenset(
    {"linear", "relu", "leaky_relu", "abs", "step", "sign", "erf", "cos", "sin", "rbf", "gauss",
     "quadratic"}
)


def _prepare(ops, A, B, C):
    """float64 device arrays, checked, and the clipped correlation."""
    xp = ops.xp
    A = ops.asarray(A, dtype=np.float64)
    B = ops.asarray(B, dtype=np.float64)
    C = ops.asarray(C, dtype=np.float64)
    for name, arr in (("A", A), ("B", B), ("C", C)):
        if not bool(xp.all(xp.isfinite(arr))):
            raise ValueError(f"{name} must be finite.")
    if bool(xp.any(A < 0)) or bool(xp.any(B < 0)):
        raise ValueError("A and B (squared norms, i.e. variances) must be >= 0.")
    try:
        np.broadcast_shapes(tuple(A.shape), tuple(B.shape), tuple(C.shape))
    except ValueError as exc:
        raise ValueError(
            f"A, B and C must be broadcastable; got shapes {tuple(A.shape)}, {tuple(B.shape)}, "
            f"{tuple(C.shape)}."
        ) from exc
    sq = xp.sqrt(A * B)
    pos = sq > 0
    rho = xp.where(pos, C / xp.where(pos, sq, xp.ones_like(sq)), xp.zeros_like(sq) * C)
    rho = xp.clip(rho, -1.0, 1.0)
    return A, B, C, sq, rho


def _phi_closed(act, xp, A, B, sq, rho, prime):
    """Closed-form Phi or Phi' (moments.md §6) written against ``xp``."""
    name, p = act.name, dict(act.params)
    pi = math.pi
    Cc = rho * sq  # the clipped inner product
    zero = xp.zeros_like(Cc)
    if name == "linear":
        return zero + 1.0 if prime else Cc
    if name in ("relu", "leaky_relu", "abs"):
        a = {"relu": 0.0, "abs": -1.0}.get(name, p.get("negative_slope"))
        sp, sm = 1.0, -a  # sigma = sp max(t,0) + sm max(-t,0)
        lin, arc = (sp - sm) ** 2 / 4.0, (sp + sm) ** 2 / (2.0 * pi)
        if prime:
            return lin + arc * xp.arcsin(rho)
        s = xp.sqrt(xp.clip(1.0 - rho * rho, 0.0, None))
        return lin * Cc + arc * sq * (rho * xp.arcsin(rho) + s)
    if name in ("step", "sign"):
        scale = 1.0 / (2.0 * pi) if name == "step" else 2.0 / pi
        if prime:
            det = sq * sq * (1.0 - rho * rho)
            if bool(xp.any(det <= 0)):
                raise ValueError(
                    f"dual_kernel_prime of {name!r} is infinite where |rho| = 1 (the diagonal) or "
                    "a norm is 0: a jump has a Dirac derivative."
                )
            return scale / xp.sqrt(det)
        if name == "step":
            # sigma(0) = 0: a zero-norm input gives Phi = 0
            return xp.where(sq > 0, 0.25 + xp.arcsin(rho) / (2.0 * pi), zero)
        return scale * xp.arcsin(rho)
    if name == "erf":
        D = (1.0 + 2.0 * A) * (1.0 + 2.0 * B)
        if prime:
            return (4.0 / pi) / xp.sqrt(D - 4.0 * Cc * Cc)
        return (2.0 / pi) * xp.arcsin(2.0 * Cc / xp.sqrt(D))
    if name in ("cos", "sin"):
        half = -(A + B) / 2.0
        ep, em = xp.exp(half + Cc), xp.exp(half - Cc)
        even = (ep + em) / 2.0  # e^{-(A+B)/2} cosh C
        odd = (ep - em) / 2.0  # e^{-(A+B)/2} sinh C
        return (odd if prime else even) if name == "cos" else (even if prime else odd)
    if name == "rbf":
        return xp.exp(-(A + B - 2.0 * Cc) / 2.0)
    if name == "gauss":
        D = (1.0 + A) * (1.0 + B) - Cc * Cc
        return Cc * D**-1.5 if prime else D**-0.5
    if name == "quadratic":
        q2, q1, q0 = p["coef"]
        if prime:
            return 4.0 * q2 * q2 * Cc + q1 * q1
        return q2 * q2 * (A * B + 2.0 * Cc * Cc) + q1 * q1 * Cc + q2 * q0 * (A + B) + q0 * q0
    raise AssertionError(name)  # pragma: no cover


def _standardised(s, var):
    """``s / sqrt(var)`` with the limit of ``1{u > s}`` for a zero variance (u = 0 exactly)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = s / np.sqrt(var)
    return np.where(var > 0, z, np.where(s >= 0, np.inf, -np.inf))


def _phi_step_function(L0, h, s, A, B, rho, prime):
    """Step-function Phi (Owen's T) or Phi' (densities), numpy."""
    shape = np.broadcast_shapes(A.shape, B.shape, rho.shape)
    if prime and h.size == 0:
        return np.zeros(shape)
    if prime:
        det1 = 1.0 - rho * rho
        AB = A * B
        zero = AB <= 0
        # a zero-norm input is u = 0 exactly: sigma'(0) is 0 unless a jump sits at 0
        if np.any((det1 <= 0) & ~zero) or (np.any(zero) and np.any(s == 0.0)):
            raise ValueError(
                "dual_kernel_prime of a step function is infinite where |rho| = 1 (the diagonal): "
                "its jumps have Dirac derivatives."
            )
        safe_AB = np.where(zero, 1.0, AB)
        safe_det = np.where(zero, 1.0, det1)
        out = np.zeros(shape)
        for j in range(h.size):
            za = s[j] / np.sqrt(np.where(A > 0, A, 1.0))
            for kk in range(h.size):
                zb = s[kk] / np.sqrt(np.where(B > 0, B, 1.0))
                quad = (za * za - 2.0 * rho * za * zb + zb * zb) / (2.0 * safe_det)
                dens = np.exp(-quad) / (2.0 * math.pi * np.sqrt(safe_det * safe_AB))
                out = out + h[j] * h[kk] * dens
        return np.where(zero, 0.0, out)
    out = np.full(shape, L0 * L0)
    zA = [_standardised(sj, A) for sj in s]
    zB = [_standardised(sj, B) for sj in s]
    for j in range(h.size):
        out = out + L0 * h[j] * (sc.ndtr(-zA[j]) + sc.ndtr(-zB[j]))
    for j in range(h.size):
        for kk in range(h.size):
            out = out + h[j] * h[kk] * bvn_cdf(-zA[j], -zB[kk], rho)
    return out


def _pieces(act, prime):
    """``sigma`` (or ``sigma'``) as pieces ``(lo, hi, slope, intercept, exp_coef)``, or None.

    On ``lo < t < hi``, ``sigma(t) = slope t + intercept + exp_coef e^t``.
    """
    p = dict(act.params)
    if act.name == "hardtanh":
        a, c = p["amplitude"], p["clip"]
        if prime:
            return [(-c, c, 0.0, a, 0.0)]
        return [(-np.inf, -c, 0.0, -a * c, 0.0), (-c, c, a, 0.0, 0.0), (c, np.inf, 0.0, a * c, 0.0)]
    if act.name == "elu":
        al = p["alpha"]
        if prime:
            return [(-np.inf, 0.0, 0.0, 0.0, al), (0.0, np.inf, 0.0, 1.0, 0.0)]
        return [(-np.inf, 0.0, 0.0, -al, al), (0.0, np.inf, 1.0, 0.0, 0.0)]
    return None


def _pdf(x):
    return np.exp(-0.5 * x * x) / _SQRT_2PI


class _Rectangles:
    """Moments of standard bivariate normals ``(X, Y)`` (correlation ``rho``) on rectangles.

    A bound is a key ``(t, shift)``: the absolute abscissa ``t`` (possibly infinite) minus a
    shift (``"0"``, ``"A"``, ``"B"``, ``"C"``, ``"A+C"``, ``"B+C"``), standardised by ``sqrt(A)``
    on the ``X`` side and ``sqrt(B)`` on the ``Y`` side. Corner CDFs and edge integrals are
    memoised: neighbouring rectangles share them, and infinite bounds are handled exactly.
    """

    def __init__(self, A, B, rho):
        self.A, self.B, self.rho = A, B, rho
        self.C = rho * np.sqrt(A * B)
        self.s = np.sqrt(np.maximum((1.0 - rho) * (1.0 + rho), 1e-300))
        self._z, self._F, self._edge = {}, {}, {}

    def z(self, side, key):
        t, shift = key
        if np.isinf(t):
            return t
        ck = (side, key)
        if ck not in self._z:
            shifts = {"0": 0.0, "A": self.A, "B": self.B, "C": self.C,
                      "A+C": self.A + self.C, "B+C": self.B + self.C}
            var = self.A if side == "x" else self.B
            with np.errstate(divide="ignore", invalid="ignore"):
                # zero-variance entries get a placeholder: the caller overwrites them
                self._z[ck] = np.where(var > 0, (t - shifts[shift]) / np.sqrt(var), 0.0)
        return self._z[ck]

    def F(self, xk, yk):
        """``P(X < x, Y < y)``."""
        tx, ty = xk[0], yk[0]
        if tx == -np.inf or ty == -np.inf:
            return 0.0
        if tx == np.inf and ty == np.inf:
            return 1.0
        if tx == np.inf:
            return sc.ndtr(self.z("y", yk))
        if ty == np.inf:
            return sc.ndtr(self.z("x", xk))
        ck = (xk, yk)
        if ck not in self._F:
            self._F[ck] = bvn_cdf(self.z("x", xk), self.z("y", yk), self.rho)
        return self._F[ck]

    def edge(self, side, key, lo, hi):
        """``E[delta(X - x) 1{Y in (lo, hi)}]`` and ``E[Y delta(X - x) 1{...}]`` (sides swap)."""
        if np.isinf(key[0]):
            return 0.0, 0.0
        ck = (side, key, lo, hi)
        if ck not in self._edge:
            other = "y" if side == "x" else "x"
            x = self.z(side, key)
            rho, s = self.rho, self.s
            a = (self.z(other, lo) - rho * x) / s
            b = (self.z(other, hi) - rho * x) / s
            mass = sc.ndtr(b) - sc.ndtr(a)
            pa = 0.0 if np.isinf(lo[0]) else _pdf(a)
            pb = 0.0 if np.isinf(hi[0]) else _pdf(b)
            px = _pdf(x)
            self._edge[ck] = (px * mass, px * (rho * x * mass + s * (pa - pb)))
        return self._edge[ck]

    def moments(self, x1, x2, y1, y2, need_xy=True):
        """``P(R), E[X 1_R], E[Y 1_R], E[XY 1_R]`` on ``R = (x1, x2) x (y1, y2)``.

        Stein's identity ``E[X g] = E[g_x] + rho E[g_y]`` applied to ``g = 1_R`` and
        ``g = Y 1_R`` (whose derivatives are Diracs on the edges of R).
        """
        rho = self.rho
        P = self.F(x2, y2) - self.F(x1, y2) - self.F(x2, y1) + self.F(x1, y1)
        DX1, GX1 = self.edge("x", x1, y1, y2)
        DX2, GX2 = self.edge("x", x2, y1, y2)
        DY1, _ = self.edge("y", y1, x1, x2)
        DY2, _ = self.edge("y", y2, x1, x2)
        EX = DX1 - DX2 + rho * (DY1 - DY2)
        EY = DY1 - DY2 + rho * (DX1 - DX2)
        EXY = None
        if need_xy:
            fy1 = 0.0 if np.isinf(y1[0]) else self.z("y", y1)
            fy2 = 0.0 if np.isinf(y2[0]) else self.z("y", y2)
            EXY = GX1 - GX2 + rho * (P + fy1 * DY1 - fy2 * DY2)
        return P, EX, EY, EXY


def _phi_pieces(pieces, A, B, rho):
    """``E[sigma(u) sigma(v)]`` for a piecewise linear-plus-exponential ``sigma`` (numpy), exact.

    Exponential pieces reduce to shifted rectangles by the Gaussian tilt
    ``E[e^{a^T z} g(z)] = e^{a^T S a / 2} E[g(z + S a)]``, ``S = [[A, C], [C, B]]``.
    Entries with ``A = 0`` or ``B = 0`` are left to the caller.
    """
    shape = np.broadcast_shapes(A.shape, B.shape, rho.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        R = _Rectangles(A, B, rho)
        rA, rB, C = np.sqrt(A), np.sqrt(B), R.C
        out = np.zeros(shape)
        for lo_p, hi_p, a_p, b_p, g_p in pieces:
            for lo_q, hi_q, a_q, b_q, g_q in pieces:
                if a_p or b_p or a_q or b_q:
                    P, EX, EY, EXY = R.moments(
                        (lo_p, "0"), (hi_p, "0"), (lo_q, "0"), (hi_q, "0"), bool(a_p and a_q)
                    )
                    out = out + b_p * b_q * P + a_p * b_q * rA * EX + b_p * a_q * rB * EY
                    if a_p and a_q:
                        out = out + a_p * a_q * rA * rB * EXY
                if g_p and (a_q or b_q):
                    P, _, EY, _ = R.moments(
                        (lo_p, "A"), (hi_p, "A"), (lo_q, "C"), (hi_q, "C"), False
                    )
                    out = out + g_p * np.exp(A / 2.0) * (a_q * (rB * EY + C * P) + b_q * P)
                if g_q and (a_p or b_p):
                    P, EX, _, _ = R.moments(
                        (lo_p, "C"), (hi_p, "C"), (lo_q, "B"), (hi_q, "B"), False
                    )
                    out = out + g_q * np.exp(B / 2.0) * (a_p * (rA * EX + C * P) + b_p * P)
                if g_p and g_q:
                    P = R.moments(
                        (lo_p, "A+C"), (hi_p, "A+C"), (lo_q, "B+C"), (hi_q, "B+C"), False
                    )[0]
                    out = out + g_p * g_q * np.exp((A + B + 2.0 * C) / 2.0) * P
    return out


def _zero_norm_entries(act, prime, A, B, out):
    """Overwrite entries with ``A = 0`` or ``B = 0``: then ``u = 0`` exactly and
    ``Phi = sigma(0) E sigma(v)`` (``Phi' = sigma'(0) E sigma'(v)``)."""
    za, zb = A == 0, B == 0
    if not (np.any(za) or np.any(zb)):
        return out
    shape = out.shape
    y0, d0 = _value_at_zero(act, True)
    v0 = d0 if prime else y0

    def mean(var):
        vals, inv = np.unique(var.ravel(), return_inverse=True)
        res = np.empty(vals.shape)
        pos = vals > 0
        res[~pos] = v0
        if np.any(pos):
            m = _moments_arrays(act, vals[pos])
            res[pos] = m["m1"] if prime else m["m0"]
        return res[inv].reshape(var.shape)

    out = np.array(out, copy=True)
    out = np.where(np.broadcast_to(za, shape), v0 * np.broadcast_to(mean(B), shape), out)
    out = np.where(np.broadcast_to(zb, shape), v0 * np.broadcast_to(mean(A), shape), out)
    return out


def _diag_values(act, vals, prime):
    """``s2`` (or ``q``) at nonnegative variances, from the 1-D moments."""
    out = np.empty(vals.shape)
    zero = vals == 0
    if np.any(zero):
        y0, d0 = _value_at_zero(act, prime)
        out[zero] = d0 * d0 if prime else y0 * y0
    if np.any(~zero):
        res = _moments_arrays(act, vals[~zero])
        out[~zero] = res["q"] if prime else res["s2"]
    return out


def _mehler(act, ops, A, B, sq, rho, prime, order=None):
    """Hermite (Mehler) series for Phi or Phi' with the Parseval truncation bound."""
    xp = ops.xp
    A_np = np.asarray(ops.to_numpy(A), dtype=np.float64)
    B_np = np.asarray(ops.to_numpy(B), dtype=np.float64)
    # coefficients per distinct variance, shared by the A and B sides
    vals, inv = np.unique(np.concatenate([A_np.ravel(), B_np.ravel()]), return_inverse=True)
    invA = inv[: A_np.size].reshape(A_np.shape)
    invB = inv[A_np.size :].reshape(B_np.shape)
    kmax = _MAX_ORDER if order is None else int(order)
    coef, s2_rule, q_rule = _hermite_table(act, vals, kmax + (1 if prime else 0), with_q=prime)
    if prime:
        # Hermite coefficients of sigma': c'_j = sqrt(j+1) c_{j+1} / sqrt(A)
        j = np.arange(kmax + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            cp = coef[:, 1:] * np.sqrt(j + 1.0)[None, :] / np.sqrt(vals)[:, None]
        zero = vals == 0
        if np.any(zero):
            cp[zero] = 0.0
            cp[zero, 0] = np.sqrt(q_rule[zero])
        coef, energy = cp, q_rule
    else:
        energy = s2_rule
    tail = np.clip(energy[:, None] - np.cumsum(coef * coef, axis=1), 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(energy[:, None] > 0, np.sqrt(tail / energy[:, None]), 0.0)
    frac = np.where(np.isfinite(frac), frac, 1.0)

    iA = ops.asarray(invA, dtype=np.int64)
    iB = ops.asarray(invB, dtype=np.int64)
    # entries on the diagonal (a = b) take the exact 1-D value, not the slowly converging series
    near = (rho >= 1.0 - _DIAG_RTOL) & (xp.abs(A - B) <= _DIAG_RTOL * xp.maximum(A, B))
    any_near = bool(xp.any(near))
    if any_near:
        dv = ops.asarray(_diag_values(act, vals, prime), dtype=np.float64)
        if bool(xp.any(near & ~xp.isfinite(dv[iA]))):
            raise ValueError(
                f"dual_kernel_prime of activation {act.name!r} is infinite on the diagonal "
                "(a jump has a Dirac derivative)."
            )
    rho_off = xp.where(near, xp.zeros_like(rho), rho)
    rho_max = _max_abs(xp, rho_off)

    if order is None:
        fa = frac[np.unique(invA)].max(axis=0)
        fb = frac[np.unique(invB)].max(axis=0)
        bound = rho_max ** (np.arange(kmax + 1) + 1.0) * fa * fb
        ok = np.flatnonzero(bound <= _SERIES_AIM)
        K = int(ok[0]) if ok.size else kmax
        if bound[K] > _SERIES_RTOL:
            # the aggregate bound is pessimistic: check entry by entry before warning
            fK = ops.asarray(frac[:, K], dtype=np.float64)
            worst = _max_abs(xp, xp.abs(rho_off) ** (K + 1) * fK[iA] * fK[iB])
            if worst > _SERIES_RTOL:
                warnings.warn(
                    f"the Hermite series of activation {act.name!r} is truncated at order {K} "
                    f"with a relative error bound of {worst:.2g} (target {_SERIES_RTOL:g}): "
                    "entries with |rho| close to 1 converge slowly (kinks, or saturating "
                    "activations at large variance).",
                    UserWarning,
                    stacklevel=4,
                )
    else:
        K = kmax

    tab = ops.asarray(coef[:, : K + 1], dtype=np.float64)
    cA = tab[iA]
    cB = tab[iB]
    acc = cA[..., K] * cB[..., K] + xp.zeros_like(rho)
    for k in range(K - 1, -1, -1):
        acc = acc * rho + cA[..., k] * cB[..., k]
    if not any_near:
        return acc
    return xp.where(near, dv[iA] + xp.zeros_like(acc), acc)


def _max_abs(xp, x):
    n = x.numel() if hasattr(x, "numel") else np.size(x)
    return float(xp.max(xp.abs(x))) if n else 0.0


def _dual(act, A, B, C, ops, prime, order=None):
    act = resolve_activation(act)
    ops = host_ops() if ops is None else ops
    A, B, C, sq, rho = _prepare(ops, A, B, C)
    if act.name in _CLOSED_PHI and not isinstance(act, StepFunction):
        return _phi_closed(act, ops.xp, A, B, sq, rho, prime)
    pieces = _pieces(act, prime)
    if pieces is not None:
        A_np, B_np = np.asarray(ops.to_numpy(A)), np.asarray(ops.to_numpy(B))
        out = _phi_pieces(pieces, A_np, B_np, np.asarray(ops.to_numpy(rho)))
        out = _zero_norm_entries(act, prime, A_np, B_np, out)
        return ops.asarray(out, dtype=np.float64)
    if isinstance(act, StepFunction):
        L0, h, s = _step_levels(act)
        out = _phi_step_function(
            L0, h, s, np.asarray(ops.to_numpy(A)), np.asarray(ops.to_numpy(B)),
            np.asarray(ops.to_numpy(rho)), prime,
        )
        return ops.asarray(out, dtype=np.float64)
    return _mehler(act, ops, A, B, sq, rho, prime, order)


def dual_kernel(act, A, B, C, ops=None):
    """Limiting random-feature kernel ``Phi = E_w[sigma(w^T a) sigma(w^T b)]``, elementwise.

    Parameters
    ----------
    act : str, Activation, StepFunction or callable
    A, B : array_like
        Squared norms ``||a||^2``, ``||b||^2`` (variances of the pre-activations), >= 0.
    C : array_like
        Inner products ``a^T b``; ``rho = C / sqrt(AB)`` is clipped to [-1, 1].
        ``A``, ``B``, ``C`` broadcast (Gram use: shapes (n, 1), (1, m), (n, m)).
    ops : array namespace, optional
        From :func:`skrmt._backend.get_ops`; None means numpy. Closed forms and the Hermite
        series run in ``ops.xp``; the Owen's T forms and the Hermite coefficients are computed
        with numpy/scipy and moved.

    Returns
    -------
    array of the broadcast shape (float64, on the device of ``ops``)

    Warns
    -----
    UserWarning
        When a Hermite series cannot meet its truncation bound with 80 terms.

    Notes
    -----
    - Closed forms (moments.md §6) for linear, relu, leaky_relu, abs, step, sign, erf, cos, sin,
      rbf, gauss and quadratic.
    - Exact bivariate-normal forms (Owen's T) for every :class:`StepFunction` and for hardtanh
      and elu (linear and exponential pieces integrated over rectangles).
    - The Hermite (Mehler) series otherwise (tanh, sigmoid, gelu, swish, softplus, callables):
      coefficients once per distinct variance, the order raised (up to 80) until the Parseval
      bound ``|rho|^{K+1} sqrt(r_K(A) r_K(B))`` is below ``1e-12 sqrt(s2(A) s2(B))``, and a
      warning when even 80 terms leave it above ``1e-8``. Entries with ``rho = 1`` and
      ``A = B`` take the exact 1-D ``s2(A)``.

    For a Gram diagonal call :func:`dual_kernel_diag`: activations with jumps have a
    ``sqrt(1 - rho)`` singularity there, so a ``rho`` rounded to ``1 - 1e-16`` costs ``1e-8``.
    """
    return _dual(act, A, B, C, ops, prime=False)


def dual_kernel_prime(act, A, B, C, ops=None):
    """``Phi' = E_w[sigma'(w^T a) sigma'(w^T b)] = dPhi/dC`` (Price), elementwise.

    Same arguments as :func:`dual_kernel`. Raises ``ValueError`` for an activation with jumps
    where ``|rho| = 1`` (the value is infinite there).
    """
    return _dual(act, A, B, C, ops, prime=True)


def dual_kernel_diag(act, A, ops=None):
    """Diagonal ``Phi(a, a) = s2(||a||^2)`` from the one-dimensional moments.

    Parameters
    ----------
    act : str, Activation, StepFunction or callable
    A : array_like
        Squared norms (variances), >= 0.
    ops : array namespace, optional
        None means numpy.
    """
    act = resolve_activation(act)
    ops = host_ops() if ops is None else ops
    arr, _ = _as_variance(ops.to_numpy(A) if ops is not None else A, "A", allow_zero=True)
    vals, inv = np.unique(arr.ravel(), return_inverse=True)
    out = _diag_values(act, vals, prime=False)[inv].reshape(arr.shape)
    return ops.asarray(out, dtype=np.float64)


def dual_kernel_prime_diag(act, A, ops=None):
    """Diagonal ``Phi'(a, a) = q(||a||^2) = E sigma'(u)^2``; ``ValueError`` for jumps (infinite)."""
    act = resolve_activation(act)
    ops = host_ops() if ops is None else ops
    if act.jumps:
        raise ValueError(
            f"dual_kernel_prime_diag of activation {act.name!r} is infinite: it has jumps "
            "(Dirac derivatives)."
        )
    arr, _ = _as_variance(ops.to_numpy(A), "A", allow_zero=True)
    vals, inv = np.unique(arr.ravel(), return_inverse=True)
    out = _diag_values(act, vals, prime=True)[inv].reshape(arr.shape)
    return ops.asarray(out, dtype=np.float64)
