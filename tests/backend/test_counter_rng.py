"""Counter-based, content-keyed noise (backend.md §5): exactness, quality, parity."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from skrmt._backend import get_ops
from skrmt._backend import _counter_rng as crng
from skrmt._backend._counter_rng import counter_bits, counter_uniform, mix32, row_keys

NP = get_ops("numpy")
MASK = 2**32 - 1


def _mix_reference(h):
    """murmur3 fmix32 on Python ints (arbitrary precision, masked)."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK
    h ^= h >> 16
    return h


def _key_reference(row, seed):
    """row_keys on Python ints and struct-level float bits, for one dense row."""
    key = 0
    for j, x in enumerate(row):
        if x == 0:
            continue
        bits = int(np.float64(x).view(np.uint64))
        folded = (bits & MASK) ^ (bits >> 32)
        col = _mix_reference(((j * crng.C2) & MASK) + seed & MASK)
        key = (key + _mix_reference(folded ^ col)) & MASK
    return key


def test_mix32_matches_python_int_reference():
    rng = np.random.default_rng(0)
    values = np.r_[0, 1, 2, 2**16 - 1, 2**16, 2**31, MASK, rng.integers(0, 2**32, 5000)]
    got = mix32(values.astype(np.int64))
    assert got.dtype == np.int64
    assert [int(g) for g in got] == [_mix_reference(int(v)) for v in values]
    # published anchor values of murmur3's finalizer
    assert int(got[0]) == 0 and int(got[1]) == 0x514E28B7


def test_mulmod32_exact():
    rng = np.random.default_rng(1)
    a = np.r_[0, 1, MASK, rng.integers(0, 2**32, 5000)].astype(np.int64)
    for c in (crng.C1, crng.C2, crng.M1, crng.M2, MASK, 1):
        got = crng._mulmod32(a, c)
        assert [int(g) for g in got] == [(int(x) * c) & MASK for x in a]


def test_row_keys_match_reference_and_pinned_stream():
    X = np.array([[1.0, 0.0, -2.5], [0.0, 0.0, 0.0], [3.0, 1e-300, 7.0]])
    keys = row_keys(NP, X, 12345)
    assert [int(k) for k in keys] == [_key_reference(r, 12345) for r in X]
    # Pinned values: the stream is part of LowPrecisionRFF's contract.
    assert keys.tolist() == [536180417, 0, 4151404942]
    assert counter_bits(NP, keys, 4, 12345).tolist() == [
        [2213120496, 3318605586, 973032940, 4204266974],
        [1667532479, 4274281754, 2623378513, 4006837267],
        [989449490, 3079989546, 4264465227, 1536075065],
    ]


def test_keys_dense_equal_csr_and_float32_upcast():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 37))
    X[rng.random(X.shape) < 0.7] = 0.0
    X[5, 3] = -0.0  # a negative zero is a zero
    X[7] = 0.0  # an empty row
    dense = row_keys(NP, X, 99)
    csr = sp.csr_matrix(X)
    assert np.array_equal(row_keys(NP, csr, 99), dense)
    # explicit zeros stored in the CSR structure do not change the key
    with_zeros = csr.copy()
    with_zeros.data[::3] = 0.0
    X_zeroed = with_zeros.toarray()
    assert np.array_equal(row_keys(NP, with_zeros, 99), row_keys(NP, X_zeroed, 99))
    assert dense[7] == 0
    # float32 rows get the key of their exact float64 upcast
    X32 = X.astype(np.float32)
    assert np.array_equal(row_keys(NP, X32, 99), row_keys(NP, X32.astype(np.float64), 99))


def test_keys_sensitive_to_value_position_and_seed():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2000, 10))
    base = row_keys(NP, X, 7)
    assert len(np.unique(base)) == 2000
    moved = X.copy()
    moved[:, 0] = np.nextafter(moved[:, 0], np.inf)  # one ulp
    assert np.all(row_keys(NP, moved, 7) != base)
    swapped = X[:, [1, 0] + list(range(2, 10))]
    assert np.all(row_keys(NP, swapped, 7) != base)
    assert np.mean(row_keys(NP, X, 8) == base) < 1e-2


def test_uniform_range_and_resolution():
    keys = np.arange(1000, dtype=np.int64)
    u = counter_uniform(NP, keys, 1000, 5)
    assert u.dtype == np.float64 and u.shape == (1000, 1000)
    assert u.min() >= 0.0 and u.max() < 1.0
    scaled = u * 2**24
    assert np.array_equal(scaled, np.floor(scaled))
    assert np.array_equal(u, np.float32(u).astype(np.float64))


@pytest.mark.parametrize("structured_keys", [True, False])
def test_uniform_chi_square_and_adjacent_correlation(structured_keys):
    """10^6 draws: the histogram is uniform and neighbours (columns, rows) are uncorrelated."""
    n = 1000
    if structured_keys:  # worst case for a weak mixer: consecutive keys
        keys = np.arange(n, dtype=np.int64)
    else:
        keys = row_keys(NP, np.random.default_rng(4).normal(size=(n, 5)), 2024)
    h = counter_bits(NP, keys, n, 2024)
    u = counter_uniform(NP, keys, n, 2024)
    n_draws = u.size
    assert n_draws == 10**6
    # top bits, and the lowest bits that reach u
    for cells in (np.floor(u * 256).astype(int), (h >> 8) & 255):
        counts = np.bincount(cells.ravel(), minlength=256)
        chi2 = ((counts - n_draws / 256) ** 2 / (n_draws / 256)).sum()
        assert stats.chi2.sf(chi2, 255) > 1e-4
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / n_draws)
    for a, b in ((u[:, :-1], u[:, 1:]), (u[:-1], u[1:])):
        corr = np.corrcoef(a.ravel(), b.ravel())[0, 1]
        assert abs(corr) < 3 / np.sqrt(a.size)
    # per-column correlation of adjacent columns, each over n rows: 3/sqrt(n) holds for
    # all but a ~0.3% share of the 999 pairs
    uc = u - u.mean(axis=0)
    per_col = (uc[:, :-1] * uc[:, 1:]).sum(0) / np.sqrt(
        (uc[:, :-1] ** 2).sum(0) * (uc[:, 1:] ** 2).sum(0)
    )
    assert np.mean(np.abs(per_col) >= 3 / np.sqrt(n)) < 0.01


def test_numpy_torch_bit_identical():
    torch = pytest.importorskip("torch")
    TO = get_ops("cpu")
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 2**32, size=1000).astype(np.int64)
    h_np = counter_bits(NP, keys, 1000, 31337)
    h_t = counter_bits(TO, TO.asarray(keys, dtype=np.int64), 1000, 31337)
    assert isinstance(h_t, torch.Tensor) and h_t.numel() == 10**6
    assert np.array_equal(h_t.numpy(), h_np)
    u_t = counter_uniform(TO, TO.asarray(keys, dtype=np.int64), 1000, 31337)
    assert u_t.dtype == torch.float64
    assert np.array_equal(u_t.numpy(), counter_uniform(NP, keys, 1000, 31337))
    X = rng.normal(size=(500, 20))
    X[rng.random(X.shape) < 0.5] = 0.0
    for dtype in (np.float64, np.float32):
        Xd = X.astype(dtype)
        assert np.array_equal(
            row_keys(get_ops("cpu", dtype), get_ops("cpu", dtype).asarray(Xd), 3).numpy(),
            row_keys(NP, Xd, 3),
        )
    # a CSR input on a torch ops is keyed on the host and moved to the device
    keys_csr = row_keys(TO, sp.csr_matrix(X), 3)
    assert isinstance(keys_csr, torch.Tensor)
    assert np.array_equal(keys_csr.numpy(), row_keys(NP, X, 3))


@pytest.mark.parametrize("seed", [-1, 2**32, 2**40])
def test_seed_out_of_range(seed):
    with pytest.raises(ValueError, match="seed"):
        row_keys(NP, np.ones((2, 2)), seed)
    with pytest.raises(ValueError, match="seed"):
        counter_uniform(NP, np.zeros(2, dtype=np.int64), 2, seed)


@pytest.mark.gpu
def test_numpy_cuda_bit_identical():
    pytest.importorskip("torch")
    CU = get_ops("cuda:0")
    rng = np.random.default_rng(6)
    keys = rng.integers(0, 2**32, size=1000).astype(np.int64)
    h = counter_bits(CU, CU.asarray(keys, dtype=np.int64), 1000, 99)
    assert np.array_equal(CU.to_numpy(h), counter_bits(NP, keys, 1000, 99))
    X = rng.normal(size=(300, 40))
    X[rng.random(X.shape) < 0.5] = 0.0
    assert np.array_equal(CU.to_numpy(row_keys(CU, CU.asarray(X), 5)), row_keys(NP, X, 5))


def test_compiled_counter_bits_equal_the_split_multiply_reference():
    """The numba path of counter_bits gives the same integers as the 16-bit-split formula."""
    from skrmt._backend import _counter_rng as c
    from skrmt._backend import get_ops

    keys = np.random.RandomState(0).randint(0, 2**32, size=300, dtype=np.int64)
    got = c.counter_bits(get_ops("numpy"), keys, 777, 12345)
    base = c.mix32((c._mulmod32(keys, c.C1) + 12345) & c.MASK32)
    ref = c.mix32(base[:, None] ^ np.arange(777, dtype=np.int64)[None, :])
    np.testing.assert_array_equal(got, ref)
