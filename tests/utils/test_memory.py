"""Memory accounting (baselines.md §4, §4.1, §7.1): one convention, exact numbers."""

import math

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.kernel_approximation import Nystroem, RBFSampler
from sklearn.linear_model import Ridge

from skrmt.random_features._lprff import LowPrecisionRFF
from skrmt.random_features._ternary_matrix import TernaryMatrix
from skrmt.utils._memory import lprff_param_bits, lprff_table_bits, memory_bytes, memory_report


# ------------------------------------------------------------------ LP-RFF paper, Table 1
@pytest.mark.parametrize(
    "method, m, b, expected",
    [
        ("nystrom", 1250, 32, 64.8e6),
        ("nystrom", 10_000, 32, 3_318.4e6),
        ("nystrom", 20_000, 32, 13_036.8e6),
        ("fp_rff", 1250, 32, 14.8e6),
        ("fp_rff", 10_000, 32, 118.4e6),
        ("fp_rff", 400_000, 32, 4_736e6),
        ("lp_rff", 1250, 8, 2.58e6),
        ("lp_rff", 10_000, 8, 20.64e6),
        ("lp_rff", 400_000, 8, 825.6e6),
        ("lp_rff", 1250, 4, 1.33e6),
        ("lp_rff", 400_000, 4, 425.6e6),
        ("circulant_fp_rff", 1250, 32, 10.08e6),
    ],
)
def test_lprff_table_1_census(method, m, b, expected):
    """The published plot data's x-values at the Census shape (d = 119, s = 250, c = 1)."""
    bits = lprff_table_bits(method, m, 119, s=250, c=1, b=b)
    assert isinstance(bits, int)
    assert bits == round(expected)


def test_lprff_table_bits_formulas():
    m, d, s, c = 300, 17, 50, 3
    assert lprff_table_bits("nystrom", m, d, s, c) == 32 * (m * d + m * m) + 32 * m * s + 32 * m * c
    assert lprff_table_bits("fp_rff", m, d, s, c) == 32 * m * d + 32 * m * s + 32 * m * c
    assert lprff_table_bits("circulant_fp_rff", m, d, s, c) == 32 * m + 32 * m * s + 32 * m * c
    assert lprff_table_bits("lp_rff", m, d, s, c, b=2) == 32 * m + 2 * m * s + 32 * m * c
    # LM-HALP: the model term becomes 3 * b_hat * m * c
    assert lprff_table_bits("lp_rff", m, d, s, c, b=2, halp_bits=8) == 32 * m + 2 * m * s + 24 * m * c
    # b = 32 LP-RFF is the circulant FP-RFF
    assert lprff_table_bits("lp_rff", m, d, s, c) == lprff_table_bits("circulant_fp_rff", m, d, s, c)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(method="rff"), "method"),
        (dict(m=0), "m"),
        (dict(d=-1), "d"),
        (dict(s=0), "s"),
        (dict(c=1.5), "c"),
        (dict(b=0), "b"),
    ],
)
def test_lprff_table_bits_bad_input(kwargs, name):
    args = dict(method="fp_rff", m=10, d=3, s=250, c=1, b=32) | kwargs
    with pytest.raises(ValueError, match=name):
        lprff_table_bits(**args)


# ------------------------------------------------------------------ skrmt's convention
class _TernaryStandIn:
    """Duck-typed fitted TernaryRandomFeatures: what the accounting reads from it."""

    def __init__(self, dense):
        self.components_ = TernaryMatrix(dense)
        self.n_components, self.n_features_in_ = dense.shape
        self.memory_bytes_ = math.ceil(self.components_.charged_bits / 8)


def _ternary(m, d, density, seed=0):
    """m x d ternary matrix with exactly round(density m d) nonzeros."""
    rng = np.random.default_rng(seed)
    flat = np.zeros(m * d, dtype=np.int8)
    nnz = round(density * m * d)
    idx = rng.choice(m * d, size=nnz, replace=False)
    flat[idx] = rng.choice(np.array([-1, 1], dtype=np.int8), size=nnz)
    return flat.reshape(m, d)


def _nystroem_shell(m, d):
    """A Nystroem with the fitted shapes of m landmarks in d dimensions (no O(m^3) fit)."""
    ny = Nystroem(n_components=m)
    ny.components_ = np.empty((m, d))
    ny.component_indices_ = np.arange(m)
    ny.normalization_ = np.empty((m, m))
    return ny


def test_census_convention_numbers():
    """baselines.md §4.1: the convention at d = 119, m = 10k, s = 250, c = 1."""
    d, m = 119, 10_000
    X = np.zeros((2, d))
    fp = memory_report(RBFSampler(n_components=m, random_state=0).fit(X))
    lp8 = memory_report(LowPrecisionRFF(m, n_bits=8, random_state=0).fit(X))
    lp1 = memory_report(LowPrecisionRFF(m, n_bits=1, random_state=0).fit(X))
    ny = memory_report(_nystroem_shell(m, d))
    trf0 = memory_report(_TernaryStandIn(_ternary(m, d, 1.0)))
    trf9 = memory_report(_TernaryStandIn(_ternary(m, d, 0.1)))
    assert fp["footprint"] == round(118.72e6)
    assert lp8["footprint"] == round(58.72e6)
    assert lp1["footprint"] == round(41.22e6)
    assert ny["footprint"] == round(3_318.4e6) == lprff_table_bits("nystrom", m, d)
    assert trf0["footprint"] == pytest.approx(7.70e6, rel=5e-3)
    assert trf9["footprint"] == pytest.approx(6.59e6, rel=5e-3)
    assert trf9["P"] == pytest.approx(1.27e6, rel=5e-3)
    # exact parts
    assert fp == {"P": 32 * m * (d + 1), "F": 32, "M": 32 * m, "stored": 32 * m * (d + 2),
                  "footprint": 118_720_000}
    assert lp8["P"] == fp["P"] and lp8["F"] == 8 and lp1["F"] == 1
    assert trf0["F"] == trf9["F"] == 2
    assert trf0["P"] == 2 * m * d
    assert trf9["P"] == 11_900 * 10 * 8 + 32 * (m + 1)  # nnz (1 + ceil(log2 119)) + pointers


def test_fashion_mnist_breakdown():
    """baselines.md §7.1 at m = 4096, d = 784, c = 10, s = 250 (MB = 1e6 bytes)."""
    d, m, c = 784, 4096, 10
    X = np.zeros((2, d))
    maps = {
        "fp": RBFSampler(n_components=m, random_state=0).fit(X),
        "lp8": LowPrecisionRFF(m, n_bits=8, random_state=0).fit(X),
        "lp1": LowPrecisionRFF(m, n_bits=1, random_state=0).fit(X),
        "ny": _nystroem_shell(m, d),
        "trf0": _TernaryStandIn(_ternary(m, d, 1.0)),
        "trf9": _TernaryStandIn(_ternary(m, d, 0.1)),
    }
    # printed values, compared at the digits printed
    footprint = {"fp": "17.1", "lp8": "14.0", "lp1": "13.2", "ny": "84.2", "trf0": "1.22",
                 "trf9": "0.88"}
    stored = {"fp": "13.0", "lp8": "13.0", "lp1": "13.0", "ny": "80.1", "trf0": "0.97",
              "trf9": "0.62"}
    for key, est in maps.items():
        rep = memory_report(est, n_outputs=c)
        for total, table in (("footprint", footprint), ("stored", stored)):
            digits = len(table[key].split(".")[1])
            assert f"{rep[total] / 8e6:.{digits}f}" == table[key], (key, total)
    # footprint order of the benchmark's acceptance: TRF < LP-1 < LP-8 < FP-RFF < Nystroem
    fp = {k: memory_report(e, n_outputs=c)["footprint"] for k, e in maps.items()}
    assert fp["trf9"] < fp["trf0"] < fp["lp1"] < fp["lp8"] < fp["fp"] < fp["ny"]


def test_memory_report_rows_and_outputs():
    X = np.zeros((3, 5))
    lp = LowPrecisionRFF(40, n_bits=4, random_state=0).fit(X)
    P = 32 * 40 * 6
    assert memory_report(lp) == {
        "P": P, "F": 4, "M": 32 * 40, "stored": P + 32 * 40, "footprint": P + 4 * 40 * 250 + 32 * 40
    }
    full = memory_report(lp, n_outputs=3, batch_size=10, n_rows=1000)
    assert full["M"] == 32 * 40 * 3
    assert full["footprint"] == P + 4 * 40 * 1000 + 32 * 40 * 3
    assert memory_report(lp, batch_size=10)["footprint"] == P + 4 * 40 * 10 + 32 * 40
    # memory_bytes_ is the transformer's stored map, without readout
    assert lp.memory_bytes_ == P // 8 == memory_bytes(lp)


def test_memory_report_circulant():
    X = np.zeros((3, 16))
    lp = LowPrecisionRFF(100, n_bits=2, projection="circulant", random_state=0).fit(X)
    n_blocks = 7  # ceil(100 / 16)
    P = 32 * n_blocks * 16 + n_blocks * 16 + 32 * 100
    assert lprff_param_bits(100, 16, "circulant") == P
    rep = memory_report(lp)
    assert rep["P"] == P and rep["F"] == 2
    assert memory_bytes(lp) == lp.memory_bytes_ == math.ceil(P / 8)
    # d divides m: 32 m for g, m for the signs, 32 m for the offsets
    assert lprff_param_bits(160, 16, "circulant") == 32 * 160 + 160 + 32 * 160


def test_memory_bytes_sklearn_maps():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 6))
    rbf = RBFSampler(n_components=30, random_state=0).fit(X)
    assert memory_bytes(rbf) == 32 * 30 * 7 // 8
    ny = Nystroem(n_components=20, random_state=0).fit(X)
    assert memory_bytes(ny) == 32 * 20 * (6 + 20) // 8
    # more landmarks than rows: the fitted m (= n) is charged
    with pytest.warns(UserWarning):
        ny_big = Nystroem(n_components=80, random_state=0).fit(X)
    assert memory_bytes(ny_big) == 32 * 50 * (6 + 50) // 8
    # bytes round up
    assert memory_bytes(RBFSampler(n_components=1).fit(np.zeros((2, 1)))) == 8
    trf = _TernaryStandIn(_ternary(7, 3, 1.0))
    assert memory_bytes(trf) == math.ceil(2 * 7 * 3 / 8)


def test_memory_errors():
    with pytest.raises(NotFittedError):
        memory_bytes(RBFSampler())
    with pytest.raises(NotFittedError):
        memory_bytes(LowPrecisionRFF())
    with pytest.raises(NotFittedError):
        memory_report(Nystroem())
    with pytest.raises(TypeError, match="est"):
        memory_bytes(Ridge().fit(np.zeros((3, 2)), np.zeros(3)))
    with pytest.raises(TypeError, match="est"):
        memory_report(object())
    lp = LowPrecisionRFF(8, random_state=0).fit(np.zeros((2, 2)))
    for kwargs, name in [
        (dict(n_outputs=0), "n_outputs"),
        (dict(batch_size=0), "batch_size"),
        (dict(n_rows=0), "n_rows"),
        (dict(batch_size=2.5), "batch_size"),
    ]:
        with pytest.raises(ValueError, match=name):
            memory_report(lp, **kwargs)
    with pytest.raises(ValueError, match="projection"):
        lprff_param_bits(10, 3, "fastfood")
