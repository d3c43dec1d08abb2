"""Ternary threshold matching (design note trf.md §3, acceptance §10 items 1-5)."""

import numpy as np
import pytest

from skrmt._theory._gaussian_moments import gaussian_moments
from skrmt._theory._ternary import match_ternary, ternary_from_thresholds, ternary_step_function

# trf.md §4, "auto" at tau = 1: s-, s+, c, o, Delta
AUTO_TAU1 = {
    "relu": (0.53475, 1.46092, 1.03514, 1.05271, 0.06283),
    "leaky_relu": (0.51551, 1.44755, 1.03223, 1.03807, 0.06361),
    "gelu": (0.59321, 1.50169, 1.07813, 0.99031, 0.07114),
    "swish": (0.41627, 1.37899, 0.96155, 0.76186, 0.06775),
    "elu": (-0.06447, 1.04981, 1.21263, 0.55753, 0.13665),
    "tanh": (-0.61200, 0.61200, 0.91549, 0.0, 0.05874),
    "erf": (-0.61200, 0.61200, 0.98466, 0.0, 0.05952),
    "sin": (-0.61200, 0.61200, 0.91674, 0.0, 0.02194),
    "sigmoid": (-0.61200, 0.61200, 0.31230, 0.5, 0.00934),
    "linear": (-0.61200, 0.61200, 1.51144, 0.0, 0.23483),
    "rbf": (-1.62995, -0.77472, 1.51179, -0.49585, 0.05487),
}


@pytest.mark.parametrize("name", sorted(AUTO_TAU1))
def test_auto_table_tau1(name):
    s_minus, s_plus, c, o, delta = AUTO_TAU1[name]
    m = match_ternary(name, 1.0)
    assert m.s_minus == pytest.approx(s_minus, abs=1e-4)
    assert m.s_plus == pytest.approx(s_plus, abs=1e-4)
    assert m.scale == pytest.approx(c, abs=1e-5)
    assert m.offset == pytest.approx(o, abs=1e-5)
    assert m.delta == pytest.approx(delta, abs=1e-5)
    # d1 and d2 matched exactly (the authors' sqrt(2) bug gives d2_ter/d2* = 0.5)
    assert m.ternary.d1 / m.target.d1 == pytest.approx(1.0, abs=1e-10)
    if m.target.d2 > 1e-14:
        assert m.ternary.d2 / m.target.d2 == pytest.approx(1.0, abs=1e-10)
    # m0 matched through the offset; reported delta is d0_ter - d0*
    assert m.ternary.m0 == pytest.approx(m.target.m0, abs=1e-12)
    assert m.delta == pytest.approx(m.ternary.d0 - m.target.d0, abs=1e-15)


@pytest.mark.parametrize(
    "name, s_minus, s_plus, c, delta",
    [
        ("relu", 0.37813, 1.03302, 0.73196, 0.03141),
        ("gelu", 0.35214, 1.01499, 0.71452, 0.03501),
        ("swish", 0.18118, 0.89763, 0.62655, 0.03237),
        ("tanh", -0.43275, 0.43275, 0.77626, 0.05204),
        ("rbf", -0.97839, -0.29913, 1.06318, 0.06993),
    ],
)
def test_auto_table_tau_half(name, s_minus, s_plus, c, delta):
    m = match_ternary(name, 0.5)
    assert (m.s_minus, m.s_plus) == pytest.approx((s_minus, s_plus), abs=1e-4)
    assert m.scale == pytest.approx(c, abs=1e-5)
    assert m.delta == pytest.approx(delta, abs=1e-5)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 2.0, 10.0])
def test_relu_auto_is_homogeneous(tau):
    m = match_ternary("relu", tau)
    rt = np.sqrt(tau)
    assert m.s_minus / rt == pytest.approx(0.53475, abs=1e-4)
    assert m.s_plus / rt == pytest.approx(1.46092, abs=1e-4)
    assert m.scale / rt == pytest.approx(1.03514, abs=1e-5)
    assert m.delta / tau == pytest.approx(0.06283, abs=1e-5)
    unit = gaussian_moments(ternary_step_function(m.s_minus / rt, m.s_plus / rt), 1.0)
    assert unit.var / unit.m1**2 == pytest.approx(1.614689, abs=1e-6)
    for field in ("m1", "m2"):
        assert getattr(m.ternary, field) == pytest.approx(getattr(m.target, field), rel=1e-10)


@pytest.mark.parametrize("name", ["tanh", "erf", "sin", "sigmoid", "linear"])
@pytest.mark.parametrize("tau", [0.3, 1.0, 4.0])
def test_odd_targets_lloyd_max(name, tau):
    m = match_ternary(name, tau)
    assert m.s_plus == pytest.approx(0.612003 * np.sqrt(tau), abs=1e-6)
    assert m.s_minus == pytest.approx(-0.612003 * np.sqrt(tau), abs=1e-6)


@pytest.mark.parametrize(
    "tau, s_minus, s_plus",
    [
        (0.10, -0.72166, 0.47584),
        (0.25, -1.25899, 0.51804),
        (0.50, 0.46317, 1.59199),
        (1.00, 0.53860, 1.37543),
        (1.20, 0.64937, 1.22693),
    ],
)
def test_unit_amplitude_relu_table(tau, s_minus, s_plus):
    m = match_ternary("relu", tau, mode="unit")
    assert (m.s_minus, m.s_plus) == pytest.approx((s_minus, s_plus), abs=1e-4)
    assert m.scale == 1.0
    assert m.ternary.d1 == pytest.approx(m.target.d1, rel=1e-9)
    assert m.ternary.d2 == pytest.approx(m.target.d2, rel=1e-9)


@pytest.mark.parametrize("tau", [1.35, 1.5])
def test_unit_amplitude_infeasible(tau):
    with pytest.raises(ValueError, match="infeasible"):
        match_ternary("relu", tau, mode="unit")


def _feasibility_bound(name, lo, hi):
    for _ in range(26):
        mid = 0.5 * (lo + hi)
        try:
            match_ternary(name, mid, mode="unit")
            lo = mid
        except ValueError:
            hi = mid
    return 0.5 * (lo + hi)


def test_unit_amplitude_bounds():
    assert _feasibility_bound("relu", 1.2, 1.4) == pytest.approx(1.347286, abs=1e-5)
    assert _feasibility_bound("rbf", 0.5, 0.7) == pytest.approx(0.636620, abs=1e-5)


@pytest.mark.parametrize(
    "tau, s_minus, s_plus", [(0.1, -0.56433, 0.34549), (0.25, 0.13984, 0.98366), (0.5, 0.30957, 0.86675)]
)
def test_unit_amplitude_rbf(tau, s_minus, s_plus):
    """trf.md §4 lists the paper's pair, which matches d2 = m2^2/4 but not the sign of m2
    (rbf has m2 < 0). skrmt matches the signed m2, which gives the mirrored map
    -sigma_ter(-t): thresholds (-s+, -s-), same d1 and d2."""
    m = match_ternary("rbf", tau, mode="unit")
    assert (m.s_minus, m.s_plus) == pytest.approx((-s_plus, -s_minus), abs=1e-4)
    assert m.ternary.m2 == pytest.approx(m.target.m2, rel=1e-9)
    assert m.ternary.d1 == pytest.approx(m.target.d1, rel=1e-9)


@pytest.mark.parametrize("name, s", [("tanh", 0.7424), ("erf", 0.6368), ("sin", 0.7406)])
def test_unit_amplitude_odd(name, s):
    m = match_ternary(name, 1.0, mode="unit")
    assert (m.s_minus, m.s_plus) == pytest.approx((-s, s), abs=1e-4)


@pytest.mark.parametrize("name", ["abs", "cos", "gauss", "quadratic"])
def test_even_targets_raise_naming_activation(name):
    with pytest.raises(ValueError, match=f"activation='{name}'"):
        match_ternary(name, 1.0, activation_label=name)


def test_near_even_target_warns():
    with pytest.warns(UserWarning, match="close to even"):
        match_ternary("rbf", 3.0)


def test_user_thresholds_fit_scale_and_warn_off_curve():
    on_curve = match_ternary("relu", 1.0)
    m = ternary_from_thresholds("relu", 1.0, on_curve.s_minus, on_curve.s_plus)
    assert m.scale == pytest.approx(on_curve.scale, rel=1e-10)
    assert m.offset == pytest.approx(on_curve.offset, rel=1e-10)
    with pytest.warns(UserWarning, match="off the matched curve"):
        off = ternary_from_thresholds("relu", 1.0, 0.0, 0.5)
    assert off.ternary.m1 == pytest.approx(off.target.m1, rel=1e-12)
    assert off.ternary.m0 == pytest.approx(off.target.m0, abs=1e-12)
    # the paper's unit pair at a feasible tau gives c = 1 exactly
    unit = match_ternary("relu", 0.5, mode="unit")
    m = ternary_from_thresholds("relu", 0.5, unit.s_minus, unit.s_plus)
    assert m.scale == pytest.approx(1.0, abs=1e-9)


def test_check_point_of_trf_section2():
    """c = 1, o = 0, s = (-0.3, 0.9), tau = 0.5 (trf.md §2)."""
    mom = gaussian_moments(ternary_step_function(-0.3, 0.9), 0.5)
    expected = dict(m0=-0.234141, m1=0.766615, m2=0.142393, d0=0.0885616, d1=0.587698,
                    d2=0.005069, e3=0.827830)
    for field, value in expected.items():
        assert getattr(mom, field) == pytest.approx(value, abs=1e-6), field


def _named_activations_with_linear_part():
    from skrmt._theory._activations import ACTIVATION_NAMES

    names = []
    for name in sorted(ACTIVATION_NAMES):
        if abs(gaussian_moments(name, 1.0).m1) > 1e-8:
            names.append(name)
    return names


@pytest.mark.parametrize("name", _named_activations_with_linear_part())
@pytest.mark.parametrize("tau", [0.05, 1.0, 3.0])
def test_every_named_activation_is_matched(name, tau):
    """Issue requirement: (d1, d2) of the ternary map equal the target's to 1e-6 relative."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # near-even rbf at large tau
        m = match_ternary(name, tau)
    assert m.ternary.d1 == pytest.approx(m.target.d1, rel=1e-6)
    assert m.ternary.d2 == pytest.approx(m.target.d2, rel=1e-6, abs=1e-14)
    assert m.ternary.m0 == pytest.approx(m.target.m0, rel=1e-9, abs=1e-12)
    assert m.s_minus <= m.s_plus


def test_every_even_named_activation_is_refused():
    from skrmt._theory._activations import ACTIVATION_NAMES

    even = [n for n in sorted(ACTIVATION_NAMES) if abs(gaussian_moments(n, 1.0).m1) <= 1e-8]
    assert set(even) >= {"abs", "cos", "gauss", "quadratic"}
    for name in even:
        with pytest.raises(ValueError, match="even"):
            match_ternary(name, 1.0)
