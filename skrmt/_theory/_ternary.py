"""Thresholds of the ternary activation whose Gaussian moments match a target activation.

Math of the design note ``trf.md`` §2–§3. The ternary map is
``sigma_ter(t) = 1{t > s_plus} - 1{t < s_minus}`` with output ``c * sigma_ter + o``; with
standardised thresholds ``a = s_plus / sqrt(tau)``, ``b = s_minus / sqrt(tau)`` it matches the
target's signed ``m1`` and ``m2`` when

    c (phi(a) + phi(b))     = sqrt(tau) m1*
    c (a phi(a) + b phi(b)) = tau m2*

and its ``m0`` through the offset ``o``. Dividing the two equations leaves one curve of
solutions, ``R(a, b) = r = sqrt(tau) m2*/m1*``; ``"auto"`` takes the member with the least
diagonal mismatch ``Delta = d0_ter - d0*`` (the 3-level Lloyd-Max quantiser for odd targets).
Every moment is taken from ``_gaussian_moments`` (the ternary map is a ``StepFunction``).
"""

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.stats import norm

from ._activations import StepFunction, resolve_activation
from ._gaussian_moments import gaussian_moments

# |r| above this puts the ternary map far from the target in orders >= 3 (G > 3): warn.
NEAR_EVEN_R = 1.5
_ODD_R = 1e-12


@dataclass(frozen=True)
class TernaryMatch:
    """A ternary activation matched to a target at variance ``tau``.

    Attributes
    ----------
    s_minus, s_plus : float
        Thresholds in units of the unit-variance pre-activation.
    scale, offset : float
        Output level ``c`` and shift ``o``: outputs are ``o - c``, ``o``, ``o + c``.
    tau : float
        Variance at which the match holds.
    target, ternary : GaussianMoments
        Moments of the target activation and of the scaled, shifted ternary map.
    """

    s_minus: float
    s_plus: float
    scale: float
    offset: float
    tau: float
    target: object
    ternary: object

    @property
    def delta(self):
        """Diagonal mismatch ``d0_ter - d0_target`` (an implicit ridge when positive)."""
        return float(self.ternary.d0 - self.target.d0)

    @property
    def levels(self):
        return (self.offset - self.scale, self.offset, self.offset + self.scale)

    def step_function(self):
        return ternary_step_function(self.s_minus, self.s_plus, self.scale, self.offset)


def ternary_step_function(s_minus, s_plus, scale=1.0, offset=0.0):
    """The ternary map ``scale * sigma_ter + offset`` as a :class:`StepFunction`."""
    return StepFunction(
        levels=(offset - scale, offset, offset + scale), thresholds=(s_minus, s_plus)
    )


_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


def _phi(x):
    # scalar standard normal density; scipy.stats.norm.pdf costs ~100x more per call
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


def _curve_partner(a, r, branch="inner"):
    """``b`` on the matched curve ``R(a, b) = r`` (r >= 0, a > r).

    ``g(x) = |x - r| phi(x)`` takes the value ``g(a)`` exactly once on each side of
    ``b_dagger = -1/a_dagger``: the inner partner lies in ``[b_dagger, r)``, the outer one below.
    """
    a_dagger = (r + np.sqrt(r * r + 4.0)) / 2.0
    b_dagger = -1.0 / a_dagger
    target = (a - r) * _phi(a)

    def f(b):
        return (r - b) * _phi(b) - target

    if target <= 0.0:
        return r if branch == "inner" else -np.inf
    if branch == "inner":
        return optimize.brentq(f, b_dagger, r, xtol=1e-15, rtol=1e-15, maxiter=500)
    lo = b_dagger - 1.0
    while f(lo) > 0.0:
        lo = 2.0 * lo - 1.0
        if lo < -60.0:
            return -np.inf
    return optimize.brentq(f, lo, b_dagger, xtol=1e-15, rtol=1e-15, maxiter=500)


def _standard_moments(a, b):
    """Moments of the unit ternary map with standardised thresholds, at tau = 1."""
    return gaussian_moments(StepFunction(levels=(-1.0, 0.0, 1.0), thresholds=(b, a)), 1.0)


def _G(a, b):
    """``Var / m1^2`` of the unit ternary map at tau = 1: ``d0_ter = tau d1* (G - 1)``."""
    mom = _standard_moments(a, b)
    return float(mom.var / mom.m1**2)


def _min_mismatch_on_curve(r):
    """Standardised (b, a) on the curve ``R = r >= 0`` with the least ``G`` (trf.md §3.3)."""
    offsets = 10.0 ** np.linspace(-6.0, np.log10(8.0), 400)
    a_grid = r + offsets
    b_grid = np.array([_curve_partner(a, r) for a in a_grid])
    G_grid = np.array([_G(a, b) for a, b in zip(a_grid, b_grid)])
    k = int(np.argmin(G_grid))
    lo = a_grid[max(k - 1, 0)]
    hi = a_grid[min(k + 1, len(a_grid) - 1)]
    res = optimize.minimize_scalar(
        lambda a: _G(a, _curve_partner(a, r)),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-12},
    )
    a = float(res.x) if res.fun <= G_grid[k] else float(a_grid[k])
    return _curve_partner(a, r), a


def _unit_amplitude_on_curve(r, target_sum):
    """Standardised (b, a) on the curve with ``phi(a) + phi(b) = target_sum`` (c = 1).

    The paper's Algorithm 1: inner and outer branches are searched and the root with least
    ``G`` is kept. Feasible iff ``target_sum <= 2 phi(r)``.
    """
    if target_sum > 2.0 * _phi(r) * (1.0 + 1e-12):
        raise ValueError(
            "unit-amplitude thresholds are infeasible: sqrt(tau)*|m1| = "
            f"{target_sum:.6g} exceeds 2*phi(r) = {2.0 * _phi(r):.6g}; use thresholds='auto'."
        )
    a_grid = r + 10.0 ** np.linspace(-8.0, np.log10(12.0), 600)
    roots = []
    for branch in ("inner", "outer"):

        def h(a, branch=branch):
            b = _curve_partner(a, r, branch)
            return _phi(a) + (_phi(b) if np.isfinite(b) else 0.0) - target_sum

        values = np.array([h(a) for a in a_grid])
        for i in np.nonzero(np.sign(values[:-1]) * np.sign(values[1:]) <= 0)[0]:
            a = optimize.brentq(h, a_grid[i], a_grid[i + 1], xtol=1e-15, rtol=1e-15)
            b = _curve_partner(a, r, branch)
            if np.isfinite(b):
                roots.append((_G(a, b), b, a))
    if not roots:
        raise ValueError("unit-amplitude thresholds are infeasible for this target and tau.")
    _, b, a = min(roots)
    return b, a


def _check_target(act, target, tau, activation_label):
    if act.parity == "even" or abs(target.m1) <= 1e-10 * np.sqrt(max(target.s2, 0.0) / tau):
        raise ValueError(
            f"activation={activation_label!r} is even (E sigma'(u) = 0 at tau={tau:.4g}): no "
            "ternary map can match it, since a ternary map always has d1 > 0. Even targets "
            "remain valid for TheoryKernel and RMTRidge."
        )


def _finish(act_label, target, tau, b, a, scale=None):
    """Scale, offset and moments from standardised thresholds (b, a)."""
    sqrt_tau = np.sqrt(tau)
    if scale is None:
        scale = sqrt_tau * target.m1 / (_phi(a) + _phi(b))
    offset = target.m0 - scale * (norm.sf(a) - norm.cdf(b))
    s_minus, s_plus = float(sqrt_tau * b), float(sqrt_tau * a)
    ternary = gaussian_moments(ternary_step_function(s_minus, s_plus, scale, offset), tau)
    return TernaryMatch(s_minus, s_plus, float(scale), float(offset), float(tau), target, ternary)


def match_ternary(activation, tau, *, mode="auto", activation_label=None):
    """Solve the ternary thresholds whose moments match ``activation`` at variance ``tau``.

    Parameters
    ----------
    activation : str, callable or Activation
        Target activation (anything ``resolve_activation`` accepts).
    tau : float
        Variance of the pre-activation (``tau_`` of the data), > 0.
    mode : {"auto", "unit"}, default="auto"
        ``"auto"``: free scale, least diagonal mismatch (the estimator's default).
        ``"unit"``: the paper's unit amplitude (``c = 1`` up to sign, no offset term in the
        match), raising ``ValueError`` where it is infeasible.
    activation_label : str, optional
        Name used in error messages.

    Returns
    -------
    match : TernaryMatch
    """
    act = resolve_activation(activation)
    label = activation_label if activation_label is not None else act.name
    tau = float(tau)
    if not np.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau must be a positive finite variance, got {tau!r}.")
    target = gaussian_moments(act, tau)
    _check_target(act, target, tau, label)
    r = np.sqrt(tau) * target.m2 / target.m1
    if act.parity == "odd" or abs(r) < _ODD_R:
        r = 0.0
    if abs(r) > NEAR_EVEN_R:
        warnings.warn(
            f"activation={label!r} at tau={tau:.4g} is close to even (r = {r:.3g}): the "
            "ternary map matches d1 and d2 but leaves a large diagonal mismatch and converges "
            "slowly in the number of features.",
            UserWarning,
            stacklevel=3,
        )
    if mode == "auto":
        b, a = _min_mismatch_on_curve(abs(r))
        scale = None
    elif mode == "unit":
        b, a = _unit_amplitude_on_curve(abs(r), np.sqrt(tau) * abs(target.m1))
        scale = float(np.sign(target.m1))
    else:
        raise ValueError(f"mode must be 'auto' or 'unit', got {mode!r}.")
    if r < 0:
        b, a = -a, -b
    match = _finish(label, target, tau, b, a, scale)
    _check_residual(match, mode)
    return match


def _check_residual(match, mode):
    target, ternary = match.target, match.ternary
    scale_free = mode == "auto"
    for field in ("m1", "m2"):
        want, got = getattr(target, field), getattr(ternary, field)
        ref = max(abs(target.m1), abs(want))
        if abs(got - want) > 1e-8 * ref and (scale_free or field == "m2"):
            # In unit mode only the ratio is matched exactly when c = +-1 is not exact; the
            # free-scale solution must match both to rounding: anything else is a bug.
            if scale_free or abs(abs(got / want) - 1) > 1e-6:
                raise RuntimeError(
                    f"ternary threshold solver did not match {field}: {got!r} vs {want!r}."
                )


def ternary_from_thresholds(activation, tau, s_minus, s_plus, *, activation_label=None):
    """User-supplied thresholds: fit ``c`` to ``m1`` and ``o`` to ``m0`` (trf.md §3.5).

    Warns when the pair is off the matched curve, i.e. when the ternary ``d2`` differs from
    the target's by more than 1 % relative.
    """
    act = resolve_activation(activation)
    label = activation_label if activation_label is not None else act.name
    tau = float(tau)
    target = gaussian_moments(act, tau)
    _check_target(act, target, tau, label)
    a, b = s_plus / np.sqrt(tau), s_minus / np.sqrt(tau)
    match = _finish(label, target, tau, b, a)
    d2_t, d2_ter = target.d2, match.ternary.d2
    if abs(d2_ter - d2_t) > 0.01 * max(abs(d2_t), 1e-12) and abs(d2_ter - d2_t) > 1e-12:
        warnings.warn(
            f"thresholds=({s_minus:.4g}, {s_plus:.4g}) are off the matched curve for "
            f"activation={label!r} at tau={tau:.4g}: ternary d2 = {d2_ter:.4g} vs target "
            f"d2 = {d2_t:.4g}. Use thresholds='auto' to match both d1 and d2.",
            UserWarning,
            stacklevel=3,
        )
    return match
