"""Activation registry: names, parameters, kinks, parity, degree, torch evaluation."""

import math
import pickle

import numpy as np
import pytest
import scipy.special as sc

from skrmt._backend import get_ops
from skrmt._theory._activations import (
    ACTIVATION_NAMES,
    Activation,
    StepFunction,
    is_even,
    is_odd,
    resolve_activation,
)

LISTED = {
    "linear", "relu", "leaky_relu", "abs", "step", "sign", "quadratic", "cos", "sin", "rbf", "erf",
    "gauss", "tanh", "sigmoid", "gelu", "swish", "silu", "softplus", "elu", "hardtanh",
}
T = np.array([-3.0, -1.2, -0.5, -1e-3, 0.0, 1e-3, 0.4, 1.0, 2.5, 7.0])


def _reference(name, t):
    return {
        "linear": t,
        "relu": np.maximum(t, 0),
        "leaky_relu": np.where(t > 0, t, 0.01 * t),
        "abs": np.abs(t),
        "step": (t > 0).astype(float),
        "sign": np.sign(t),
        "quadratic": t * t,
        "cos": np.cos(t),
        "sin": np.sin(t),
        "rbf": np.cos(t) + np.sin(t),
        "erf": sc.erf(t),
        "gauss": np.exp(-t * t / 2),
        "tanh": np.tanh(t),
        "sigmoid": 1 / (1 + np.exp(-t)),
        "gelu": t * sc.ndtr(t),
        "swish": t / (1 + np.exp(-t)),
        "silu": t / (1 + np.exp(-t)),
        "softplus": np.log1p(np.exp(t)),
        "elu": np.where(t > 0, t, np.exp(t) - 1),
        "hardtanh": np.clip(t, -1, 1),
    }[name]


def test_names():
    assert ACTIVATION_NAMES == LISTED
    assert isinstance(ACTIVATION_NAMES, frozenset)


@pytest.mark.parametrize("name", sorted(LISTED))
def test_values_and_metadata(name):
    act = resolve_activation(name)
    assert isinstance(act, Activation)
    np.testing.assert_allclose(act.fn(T), _reference(name, T), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(act(T.tolist()), _reference(name, T), rtol=1e-14, atol=1e-15)
    assert act.fn(T).dtype == np.float64
    # parity as declared, and only when it holds
    y, ym = act.fn(T), act.fn(-T)
    if act.parity == "odd":
        np.testing.assert_allclose(ym, -y, atol=1e-15)
    elif act.parity == "even":
        np.testing.assert_allclose(ym, y, atol=1e-15)
    else:
        assert not np.allclose(ym, -y) and not np.allclose(ym, y)
    # homogeneity degree as declared
    if act.degree is not None:
        for c in (0.3, 2.0):
            np.testing.assert_allclose(act.fn(c * T), c**act.degree * y, rtol=1e-14, atol=1e-15)
    else:
        assert not np.allclose(act.fn(2.0 * T), 2.0 * y)


@pytest.mark.parametrize("name", sorted(LISTED - {"step", "sign"}))
def test_derivative_matches_central_differences(name):
    act = resolve_activation(name)
    t = np.linspace(-4, 4, 81) + 0.0123  # away from the kinks
    h = 1e-6
    fd = (act.fn(t + h) - act.fn(t - h)) / (2 * h)
    np.testing.assert_allclose(act.dfn(t), fd, atol=2e-8)


def test_kinks_and_jumps():
    expect = {
        "relu": (0.0,), "leaky_relu": (0.0,), "abs": (0.0,), "step": (0.0,), "sign": (0.0,),
        "elu": (0.0,), "hardtanh": (-1.0, 1.0), "tanh": (), "gelu": (), "quadratic": (),
    }
    for name, kinks in expect.items():
        assert resolve_activation(name).kinks == kinks, name
    assert resolve_activation("hardtanh", clip=0.3).kinks == (-0.3, 0.3)
    assert resolve_activation("step").jumps == (0.0,)
    assert resolve_activation("sign").jumps == (0.0,)
    assert resolve_activation("relu").jumps == ()
    assert resolve_activation("step").dfn is None
    # each declared kink is a real kink: the one-sided slopes differ there
    for name in ("relu", "leaky_relu", "abs", "hardtanh"):
        act = resolve_activation(name)
        for k in act.kinks:
            e = 1e-4
            left = (act.fn(k) - act.fn(k - e)) / e
            right = (act.fn(k + e) - act.fn(k)) / e
            assert abs(left - right) > 1e-3, (name, k)


def test_parameters():
    assert resolve_activation("leaky_relu").params == (("negative_slope", 0.01),)
    act = resolve_activation("leaky_relu", negative_slope=0.2)
    np.testing.assert_allclose(act.fn([-1.0, 2.0]), [-0.2, 2.0])
    q = resolve_activation("quadratic", coef=(0.5, -0.3, 0.2))
    np.testing.assert_allclose(q.fn(T), 0.5 * T * T - 0.3 * T + 0.2)
    assert q.parity is None and q.degree is None
    assert resolve_activation("quadratic").degree == 2
    assert resolve_activation("quadratic", coef=(1, 0, 3)).parity == "even"
    e = resolve_activation("elu", alpha=0.5)
    np.testing.assert_allclose(e.fn([-1.0, 1.0]), [0.5 * (math.exp(-1) - 1), 1.0])
    h = resolve_activation("hardtanh", amplitude=2.0, clip=0.5)
    np.testing.assert_allclose(h.fn([-3.0, 0.25, 3.0]), [-1.0, 0.5, 1.0])
    assert resolve_activation("leaky_relu", negative_slope=-1.0).parity == "even"


def test_bad_specs():
    with pytest.raises(ValueError, match="activation") as info:
        resolve_activation("swishh")
    assert "relu" in str(info.value) and "silu" in str(info.value)
    with pytest.raises(TypeError, match="activation"):
        resolve_activation(3)
    with pytest.raises(TypeError, match="activation"):
        resolve_activation(None)
    with pytest.raises(ValueError, match="negative_slope"):
        resolve_activation("relu", negative_slope=0.1)
    with pytest.raises(ValueError, match="negative_slope"):
        resolve_activation("leaky_relu", negative_slope="big")
    with pytest.raises(ValueError, match="negative_slope"):
        resolve_activation("leaky_relu", negative_slope=np.nan)
    with pytest.raises(ValueError, match="clip"):
        resolve_activation("hardtanh", clip=0.0)
    with pytest.raises(ValueError, match="coef"):
        resolve_activation("quadratic", coef=(1.0, 2.0))
    with pytest.raises(ValueError, match="parameters"):
        resolve_activation(resolve_activation("relu"), alpha=1.0)
    with pytest.raises(ValueError, match="vectorised"):
        resolve_activation(lambda t: 1.0)
    with pytest.raises(ValueError, match="kinks"):
        resolve_activation(np.tanh, kinks=(np.inf,))


def test_identity_and_caching():
    a, b = resolve_activation("silu"), resolve_activation("swish")
    assert a is b and a.name == "swish"
    assert resolve_activation("leaky_relu", negative_slope=0.2) == resolve_activation(
        "leaky_relu", negative_slope=0.2
    )
    assert resolve_activation("leaky_relu") != resolve_activation("leaky_relu", negative_slope=0.2)
    assert resolve_activation(a) is a
    assert len({resolve_activation("relu"), resolve_activation("relu"), resolve_activation("abs")}) == 2
    assert is_odd("tanh") and not is_odd("relu") and is_even("cos") and not is_even("sigmoid")


def _module_level_square(t):
    return np.asarray(t) ** 2


def test_pickle_roundtrip():
    for act in (
        resolve_activation("relu"),
        resolve_activation("hardtanh", amplitude=2.0, clip=0.5),
        StepFunction((-1.0, 0.0, 1.0), (-0.3, 0.9)),
        resolve_activation(_module_level_square),
    ):
        back = pickle.loads(pickle.dumps(act))
        assert back == act and hash(back) == hash(act)
        np.testing.assert_array_equal(back.fn(T), act.fn(T))


def test_callables():
    def f(t):
        return np.maximum(t - 0.37, 0.0)

    f.kinks = [0.37]
    act = resolve_activation(f)
    assert act.name == "callable" and act.kinks == (0.37,) and act.jumps == ()
    assert act.fn is f and act.dfn is None
    assert resolve_activation(f, kinks=(0.1, -0.2)).kinks == (-0.2, 0.1)
    g = resolve_activation(np.sign, kinks=(0.0,))
    assert g.jumps == (0.0,)
    assert resolve_activation(np.tanh, dfn=lambda t: 1 - np.tanh(t) ** 2).dfn is not None
    assert resolve_activation(np.tanh) == resolve_activation(np.tanh)
    assert resolve_activation(np.tanh) != resolve_activation(np.sin)


def test_step_function():
    sf = StepFunction(levels=(-1.0, 0.0, 1.0), thresholds=(-0.3, 0.9))
    assert resolve_activation(sf) is sf
    assert sf.name == "step_function" and sf.kinks == (-0.3, 0.9) and sf.jumps == (-0.3, 0.9)
    assert sf.heights == (1.0, 1.0) and sf.dfn is None
    # 1{t > s}: the value at a threshold is the left level
    np.testing.assert_array_equal(sf.fn([-1.0, -0.3, 0.0, 0.9, 2.0]), [-1.0, -1.0, 0.0, 0.0, 1.0])
    # equal thresholds merge into one jump; zero jumps disappear
    merged = StepFunction((-1.0, 0.0, 1.0), (0.2, 0.2))
    assert merged.levels == (-1.0, 1.0) and merged.thresholds == (0.2,)
    np.testing.assert_array_equal(merged.fn(T), np.where(T > 0.2, 1.0, -1.0))
    assert StepFunction((0.0, 0.0, 1.0), (-1.0, 0.5)).thresholds == (0.5,)
    assert StepFunction((0.0, 1.0, 0.0), (0.3, 0.3)).thresholds == ()
    # parity and degree
    assert StepFunction((-1.0, 0.0, 1.0), (-0.5, 0.5)).parity == "odd"
    assert StepFunction((2.0, 0.0, 2.0), (-0.5, 0.5)).parity == "even"
    assert sf.parity is None and sf.degree is None
    assert StepFunction((-1.0, 1.0), (0.0,)).degree == 0
    assert StepFunction((0.0, 1.0), (0.0,)) == StepFunction([0, 1], [0])
    for levels, thresholds, match in (
        ((0.0, 1.0), (0.0, 1.0), "one more"),
        ((0.0, 1.0, 2.0), (1.0, 0.0), "non-decreasing"),
        ((0.0, np.nan), (0.0,), "levels"),
        ((0.0, 1.0), (np.inf,), "thresholds"),
    ):
        with pytest.raises(ValueError, match=match):
            StepFunction(levels, thresholds)


@pytest.mark.parametrize("name", sorted(LISTED))
def test_apply_on_torch(name, torch_or_skip):
    torch = torch_or_skip
    ops = get_ops("cpu", np.float64)
    act = resolve_activation(name)
    x = torch.from_numpy(T.copy())
    y = act.apply(x, ops)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float64
    np.testing.assert_allclose(y.numpy(), act.fn(T), rtol=1e-15, atol=1e-16)
    y32 = act.torch_fn(x.to(torch.float32))
    assert y32.dtype == torch.float32
    np.testing.assert_allclose(y32.numpy(), act.fn(T), rtol=2e-6, atol=2e-7)
    # numpy ops: plain numpy
    np.testing.assert_array_equal(act.apply(T), act.fn(T))
    np.testing.assert_array_equal(act.apply(T, get_ops("numpy")), act.fn(T))


def test_apply_on_torch_step_function_and_callable(torch_or_skip):
    torch = torch_or_skip
    ops = get_ops("cpu", np.float64)
    x = torch.from_numpy(T.copy())
    sf = StepFunction((-1.0, 0.0, 1.0), (-0.3, 0.9))
    np.testing.assert_array_equal(sf.apply(x, ops).numpy(), sf.fn(T))
    f = resolve_activation(lambda t: np.maximum(t, 0.0) ** 1.5)
    out = f.apply(x, ops)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_array_equal(out.numpy(), np.maximum(T, 0.0) ** 1.5)
