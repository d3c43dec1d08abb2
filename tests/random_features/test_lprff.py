"""LowPrecisionRFF: baselines.md §2.4 acceptance tests, circulant projection, contract."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats
from sklearn.exceptions import NotFittedError
from sklearn.kernel_approximation import RBFSampler
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.utils.estimator_checks import (
    check_estimator,
    check_set_output_transform,
    check_transformer_get_feature_names_out,
)

from skrmt._backend import get_ops
from skrmt._backend._counter_rng import counter_uniform
from skrmt.random_features._lprff import LowPrecisionRFF, _circulant_projection, quantize

PROJECTIONS = ["gaussian", "circulant"]


def _data(n=300, d=7, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def _unquantized(lp, X):
    """rho cos(X W + a) in float64 from the dense equivalent of the fitted projection."""
    return lp.scale_ * np.cos(X @ lp._dense_weights() + lp.random_offset_.astype(np.float64))


def _c_b(b, n=1_000_000):
    """c_b = 4 E[f(1 - f)] over a uniform phase (midpoint rule in the phase)."""
    theta = (np.arange(n) + 0.5) * np.pi / n
    t = (np.cos(theta) + 1.0) * (2**b - 1) / 2.0
    f = t - np.floor(t)
    return 4.0 * np.mean(f * (1.0 - f))


# ---------------------------------------------------------------- 1. same draw as RBFSampler
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_projection_equals_rbf_sampler(dtype):
    X = _data().astype(dtype)
    for seed in (0, 42):
        rbf = RBFSampler(gamma=0.3, n_components=50, random_state=seed).fit(X)
        lp = LowPrecisionRFF(50, gamma=0.3, n_bits=8, random_state=seed).fit(X)
        assert lp.random_weights_.dtype == rbf.random_weights_.dtype == dtype
        assert np.array_equal(lp.random_weights_, rbf.random_weights_)
        assert np.array_equal(lp.random_offset_, rbf.random_offset_)
        # third draw of the same stream
        rs = np.random.RandomState(seed)
        rs.normal(size=(7, 50)), rs.uniform(0, 2 * np.pi, size=50)
        assert lp._rounding_seed == rs.randint(2**31)
        # every quantized entry lies within one level of RBFSampler's feature
        Q = lp.transform(X).astype(np.float64)
        Z = rbf.transform(X).astype(np.float64)
        assert np.all(np.abs(Q - Z) <= lp.step_ * (1 + 1e-6) + 1e-6 * (dtype == np.float32))


def test_fitted_scalars():
    lp = LowPrecisionRFF(200, n_bits=3, random_state=0).fit(_data())
    assert lp.scale_ == pytest.approx(np.sqrt(2 / 200), rel=1e-15)
    assert lp.step_ == pytest.approx(2 * np.sqrt(2 / 200) / 7, rel=1e-15)
    assert lp.n_features_in_ == 7 and lp.device_ == "numpy"


# ---------------------------------------------------------------- 2. levels
@pytest.mark.parametrize("projection", PROJECTIONS)
@pytest.mark.parametrize("n_bits", [1, 2, 3, 8, 16, 32])
def test_outputs_on_levels(projection, n_bits):
    X = _data(200, 6)
    lp = LowPrecisionRFF(64, gamma=0.5, n_bits=n_bits, projection=projection, random_state=1)
    Z = lp.fit(X).transform(X)
    k = (Z + lp.scale_) / lp.step_
    assert np.allclose(k, np.round(k), rtol=1e-12, atol=1e-12 * 2**n_bits)
    assert np.round(k).min() >= 0 and np.round(k).max() <= 2**n_bits - 1
    codes, low, step = lp.transform_codes(X)
    assert codes.dtype == (np.uint8 if n_bits <= 8 else np.uint16 if n_bits <= 16 else np.uint32)
    assert low == -lp.scale_ and step == lp.step_
    assert np.array_equal(low + codes.astype(np.float64) * step, Z)
    if n_bits == 1:
        assert set(np.unique(Z)) <= {-lp.scale_, lp.scale_}
        assert np.allclose((Z**2).sum(axis=1), 2.0, rtol=1e-12)
    if n_bits <= 2:  # every level is used
        assert len(np.unique(codes)) == 2**n_bits


# ---------------------------------------------------------------- 3. unbiased rounding
@pytest.mark.parametrize("n_bits", [1, 4, 8])
@pytest.mark.parametrize("position", [0.5, 0.03, 0.77])
def test_rounding_unbiased_with_exact_variance(n_bits, position):
    """10^6 counter dithers at a fixed v: mean v within 4 sd, variance r^2 f(1-f) within 1%."""
    ops = get_ops("numpy")
    m = 100
    rho = np.sqrt(2 / m)
    n_levels = 2**n_bits - 1
    r = 2 * rho / n_levels
    k0 = n_levels // 3
    v = -rho + (k0 + position) * r
    N = 10**6
    u = counter_uniform(ops, np.arange(N, dtype=np.int64), 1, 2718)[:, 0]
    codes = quantize(ops, np.full(N, v), u, rho, r, n_levels)
    assert set(np.unique(codes)) == {k0, k0 + 1}
    q = -rho + codes * r
    f = position
    sd = r * np.sqrt(f * (1 - f))
    assert abs(q.mean() - v) < 4 * sd / np.sqrt(N)
    assert q.var() == pytest.approx(r**2 * f * (1 - f), rel=0.01)


def test_quantize_clamps_overshoot():
    ops = get_ops("numpy")
    rho, n_levels = 0.5, 15
    v = np.array([-0.5000001, 0.50000001, -rho, rho])
    u = np.array([0.999, 0.999, 0.0, 0.999])
    codes = quantize(ops, v, u, rho, 2 * rho / n_levels, n_levels)
    assert codes.tolist() == [0, 15, 0, 15]


# ---------------------------------------------------------------- 4. quantization error
@pytest.mark.slow
@pytest.mark.parametrize(
    "n_bits, published", [(1, 1.000), (2, 0.1261), (4, 5.53e-3), (8, 2.02e-5)]
)
def test_mean_squared_quantization_error(n_bits, published):
    """Row mean of ||q - z||^2 at m = 4096, n = 2000 within 2% of 2 c_b / (2^b - 1)^2."""
    X = np.random.default_rng(3).normal(size=(2000, 16))
    lp = LowPrecisionRFF(4096, gamma=0.1, n_bits=n_bits, random_state=0).fit(X)
    err = ((lp.transform(X) - _unquantized(lp, X)) ** 2).sum(axis=1).mean()
    expected = 2 * _c_b(n_bits) / (2**n_bits - 1) ** 2
    assert expected == pytest.approx(published, rel=3e-3)
    assert err == pytest.approx(expected, rel=0.02)


def test_c_b_values():
    """c_b of baselines.md §2.1 (0.500, 0.568, 0.622, 0.656, 0.666), by quadrature."""
    for b, c in [(1, 0.500), (2, 0.568), (4, 0.622), (8, 0.656), (16, 0.666)]:
        assert _c_b(b) == pytest.approx(c, abs=6e-4)


@pytest.mark.parametrize("n_bits", [1, 2])
def test_quantized_gram_unbiased_off_diagonal(n_bits):
    """E[Q Q^T] = Z Z^T + diagonal: off-diagonal products carry no rounding bias.

    With q = z + e, e independent with variance v = r^2 f (1 - f) (known per entry),
    the sum of the off-diagonal differences sum_{i<j} (q_i.q_j - z_i.z_j) has mean 0 and
    variance sum_k [sum_i v_ik (S_k - z_ik)^2 + sum_{i<j} v_ik v_jk], S_k = sum_i z_ik.
    """
    n, m = 40, 20000
    X = _data(n, 5, seed=9)
    lp = LowPrecisionRFF(m, gamma=0.2, n_bits=n_bits, random_state=0).fit(X)
    Q, Z = lp.transform(X), _unquantized(lp, X)
    t = (Z + lp.scale_) / lp.step_
    f = t - np.floor(t)
    v = lp.step_**2 * f * (1 - f)
    upper = np.triu(np.ones((n, n), dtype=bool), 1)
    total = (Q @ Q.T - Z @ Z.T)[upper].sum()
    S = Z.sum(axis=0)
    var = (v * (S - Z) ** 2).sum() + ((v.sum(0) ** 2 - (v**2).sum(0)) / 2).sum()
    assert abs(total) < 4 * np.sqrt(var)
    # diagonal: b = 1 has |q| = rho exactly; otherwise E||q||^2 - ||z||^2 = sum_k v_ik
    if n_bits == 1:
        assert np.allclose(np.diag(Q @ Q.T), 2.0)
    else:
        excess = (Q**2).sum(1) - (Z**2).sum(1)
        assert excess.mean() == pytest.approx(v.sum(1).mean(), rel=0.1)


# ---------------------------------------------------------------- 5. pure function of the row
@pytest.mark.parametrize("projection", PROJECTIONS)
def test_transform_is_pure_function_of_row(projection):
    X = _data(300, 7, seed=4)
    lp = LowPrecisionRFF(96, gamma=0.4, n_bits=4, projection=projection, random_state=3).fit(X)
    Z = lp.transform(X)
    assert np.array_equal(lp.transform(X), Z)
    perm = np.random.default_rng(0).permutation(300)
    assert np.array_equal(lp.transform(X[perm]), Z[perm])
    assert np.array_equal(lp.transform(X[:17]), Z[:17])
    assert np.array_equal(lp.transform(X[[5]]), Z[[5]])
    # refitting with the same seed is idempotent; another seed changes the codes
    assert np.array_equal(lp.fit(X).transform(X), Z)
    other = LowPrecisionRFF(96, gamma=0.4, n_bits=4, projection=projection, random_state=4)
    assert not np.array_equal(other.fit(X).transform(X), Z)
    # pickle round trip (the device cache travels empty)
    lp2 = pickle.loads(pickle.dumps(lp))
    assert len(lp2._device_cache) == 0
    assert np.array_equal(lp2.transform(X), Z)
    # block size cannot matter
    import sklearn

    with sklearn.config_context(working_memory=0.01):
        assert np.array_equal(lp.transform(X), Z)


def test_random_state_none_gives_one_fixed_stream():
    X = _data(50, 4)
    lp = LowPrecisionRFF(32, n_bits=2).fit(X)
    assert np.array_equal(lp.transform(X), lp.transform(X[::-1])[::-1])


def test_identical_rows_identical_codes_distinct_rows_independent():
    X = _data(2, 5, seed=1)
    # a tiny gamma makes every row's unquantized features rho cos(a)
    lp = LowPrecisionRFF(4096, gamma=1e-300, n_bits=1, random_state=0).fit(X)
    Q = lp.transform(np.vstack([X, X[:1]]))
    assert np.array_equal(Q[0], Q[2])
    # rows 0 and 1 see the same v, so their codes differ only through independent noise
    v = lp.scale_ * np.cos(lp.random_offset_)
    f = (v + lp.scale_) / lp.step_
    p_same = np.mean(f**2 + (1 - f) ** 2)
    agree = np.mean(Q[0] == Q[1])
    assert abs(agree - p_same) < 4 * np.sqrt(p_same * (1 - p_same) / 4096)


@pytest.mark.parametrize("projection", PROJECTIONS)
def test_sparse_equals_dense(projection):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(120, 30))
    X[rng.random(X.shape) < 0.8] = 0.0
    lp = LowPrecisionRFF(64, gamma=0.1, n_bits=3, projection=projection, random_state=0)
    Z = lp.fit(X).transform(X)
    assert np.array_equal(lp.transform(sp.csr_matrix(X)), Z)
    lp_sparse_fit = LowPrecisionRFF(64, gamma=0.1, n_bits=3, projection=projection, random_state=0)
    assert np.array_equal(lp_sparse_fit.fit(sp.csr_matrix(X)).transform(sp.csr_matrix(X)), Z)


@pytest.mark.parametrize("projection", PROJECTIONS)
def test_float32_preserved(projection):
    X = _data(100, 6)
    X32 = X.astype(np.float32)
    lp = LowPrecisionRFF(40, n_bits=4, projection=projection, random_state=0).fit(X32)
    Z32 = lp.transform(X32)
    assert Z32.dtype == np.float32
    assert lp.random_offset_.dtype == np.float32
    Z64 = lp.transform(X32.astype(np.float64))
    assert Z64.dtype == np.float64
    # same rows, same keys: float32 and float64 runs agree except for rare level flips
    assert np.mean(np.abs(Z32 - Z64) > lp.step_ / 2) < 1e-3


@pytest.mark.parametrize("projection", PROJECTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_torch_cpu_same_codes(projection, dtype):
    pytest.importorskip("torch")
    X = _data(400, 9, seed=6).astype(dtype)
    kw = dict(n_components=256, gamma=0.2, n_bits=8, projection=projection, random_state=0)
    np_codes, _, _ = LowPrecisionRFF(**kw).fit(X).transform_codes(X)
    lt = LowPrecisionRFF(device="cpu", **kw).fit(X)
    assert lt.device_ == "cpu"
    t_codes, _, _ = lt.transform_codes(X)
    diff = np.abs(np_codes.astype(np.int64) - t_codes.astype(np.int64))
    assert diff.max() <= 1
    # float64: at most 1e-6 of entries one level apart (here 1e5 entries, so none);
    # float32 projections differ in their last bits more often
    assert diff.mean() <= (1e-6 if dtype == np.float64 else 1e-3)
    assert lt.transform(X).dtype == dtype
    assert len(lt._device_cache) > 0
    lt2 = pickle.loads(pickle.dumps(lt))
    assert len(lt2._device_cache) == 0
    assert np.array_equal(lt2.transform_codes(X)[0], t_codes)


# ---------------------------------------------------------------- circulant projection
def test_circulant_fft_equals_dense_blocks():
    X = _data(30, 5, seed=7)
    lp = LowPrecisionRFF(13, gamma=0.7, projection="circulant", random_state=2).fit(X)
    assert lp.n_blocks_ == 3 and lp.circulant_vectors_.shape == (3, 5)
    assert lp.circulant_vectors_.dtype == np.float32 and lp.circulant_signs_.dtype == np.uint8
    assert lp.circulant_signs_.nbytes == 2  # 15 sign bits, packed
    ops = get_ops("numpy")
    g_hat = np.fft.rfft(lp.circulant_vectors_.astype(np.float64))
    fft_proj = _circulant_projection(ops, X, g_hat, lp._signs().astype(np.float64), 13)
    # explicit circulant blocks: block k maps x to circ(g_k) (s_k * x)
    g, s = lp.circulant_vectors_.astype(np.float64), lp._signs()
    blocks = []
    for k in range(3):
        C = np.array([[g[k][(i - j) % 5] for j in range(5)] for i in range(5)])
        blocks.append((C @ (s[k][:, None] * X.T)).T)
    explicit = np.hstack(blocks)[:, :13]
    assert np.allclose(fft_proj, explicit, rtol=1e-12, atol=1e-12)
    assert np.allclose(X @ lp._dense_weights(), explicit, rtol=1e-12, atol=1e-12)


def test_circulant_draw_order():
    X = _data(10, 4)
    lp = LowPrecisionRFF(10, gamma=0.5, projection="circulant", random_state=11).fit(X)
    rs = np.random.RandomState(11)
    g = (1.0 * rs.normal(size=(3, 4))).astype(np.float32)
    s = 2 * rs.randint(0, 2, size=(3, 4)) - 1
    offset = rs.uniform(0, 2 * np.pi, size=10)
    seed = rs.randint(2**31)
    assert np.array_equal(lp.circulant_vectors_, g)
    assert np.array_equal(lp._signs(), s)
    assert np.array_equal(lp.random_offset_, offset)
    assert lp._rounding_seed == seed
    assert not hasattr(lp, "random_weights_")


@pytest.mark.parametrize("projection", PROJECTIONS)
def test_kernel_approximation(projection):
    """Z Z^T estimates exp(-gamma ||x - y||^2) without bias (rows of W ~ N(0, 2 gamma I)).

    Pairs share one W, so the pooled off-diagonal error of one fit is noisy (its sd was
    0.003 Gaussian, 0.006 circulant at m = 16384); the test averages 8 independent fits and
    uses their own spread.
    """
    X = _data(60, 8, seed=8) * 0.5
    gamma = 0.25
    K = rbf_kernel(X, gamma=gamma)
    off = ~np.eye(60, dtype=bool)
    means = []
    for seed in range(8):
        lp = LowPrecisionRFF(8192, gamma=gamma, n_bits=8, projection=projection, random_state=seed)
        Z = lp.fit(X).transform(X)
        err = Z @ Z.T - K
        # the entrywise sd of the estimate is about sqrt(1/m) ~ 0.011
        assert np.abs(err).max() < 0.08
        means.append(err[off].mean())
    assert abs(np.mean(means)) < 4 * np.std(means, ddof=1) / np.sqrt(len(means))
    assert np.std(means, ddof=1) < 0.02


def test_circulant_rows_have_gaussian_marginals():
    """Each column of the equivalent W is a signed permutation of one g ~ N(0, 2 gamma I)."""
    d, m, gamma = 64, 65536, 2.0
    lp = LowPrecisionRFF(m, gamma=gamma, projection="circulant", random_state=5)
    lp.fit(np.zeros((2, d)))
    W = lp._dense_weights()
    g = lp.circulant_vectors_.astype(np.float64)
    for j in (0, 1, 63, 64, 1000, m - 1):
        assert np.array_equal(np.sort(np.abs(W[:, j])), np.sort(np.abs(g[j // d])))
    # B d = 65536 independent entries: the variance is 2 gamma within 4 sd (sqrt(2 / 65536))
    assert (g**2).mean() == pytest.approx(2 * gamma, rel=4 * np.sqrt(2 / g.size))
    assert stats.kurtosis(g.ravel()) == pytest.approx(0.0, abs=4 * np.sqrt(24 / g.size))
    assert abs(np.mean(lp._signs())) < 4 / np.sqrt(g.size)


# ---------------------------------------------------------------- memory
def test_memory_bytes():
    X = np.zeros((3, 119))
    lp = LowPrecisionRFF(10_000, n_bits=8, random_state=0).fit(X)
    assert lp.memory_bytes_ == 32 * 10_000 * 120 // 8
    lpc = LowPrecisionRFF(10_000, n_bits=8, projection="circulant", random_state=0).fit(X)
    n_blocks = -(-10_000 // 119)
    assert lpc.n_blocks_ == n_blocks == 85
    bits = 32 * n_blocks * 119 + n_blocks * 119 + 32 * 10_000
    assert lpc.memory_bytes_ == -(-bits // 8)
    # hold what you charge: g, packed signs and offsets
    held = lpc.circulant_vectors_.nbytes + lpc.circulant_signs_.nbytes + 4 * 10_000
    assert abs(held - lpc.memory_bytes_) <= 1


# ---------------------------------------------------------------- scikit-learn contract
@pytest.mark.parametrize("projection", PROJECTIONS)
def test_check_estimator(projection):
    check_estimator(LowPrecisionRFF(n_components=64, n_bits=4, projection=projection))


@pytest.mark.parametrize("projection", PROJECTIONS)
def test_feature_names_and_set_output(projection):
    est = LowPrecisionRFF(n_components=16, n_bits=4, projection=projection)
    check_transformer_get_feature_names_out("LowPrecisionRFF", est)
    check_set_output_transform("LowPrecisionRFF", est)
    names = est.fit(_data(5, 3)).get_feature_names_out()
    assert names[0] == "lowprecisionrff0" and names[-1] == "lowprecisionrff15"


def test_pandas_output():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(_data(10, 3), columns=["a", "b", "c"])
    lp = LowPrecisionRFF(8, random_state=0).set_output(transform="pandas").fit(X)
    out = lp.transform(X)
    assert list(out.columns) == [f"lowprecisionrff{i}" for i in range(8)]
    assert list(lp.feature_names_in_) == ["a", "b", "c"]


def test_tags():
    tags = LowPrecisionRFF().__sklearn_tags__()
    assert tags.input_tags.sparse
    assert tags.transformer_tags.preserves_dtype == ["float64", "float32"]
    assert not tags.non_deterministic


@pytest.mark.parametrize(
    "params, name",
    [
        (dict(n_bits=0), "n_bits"),
        (dict(n_bits=33), "n_bits"),
        (dict(n_bits=2.5), "n_bits"),
        (dict(gamma=0.0), "gamma"),
        (dict(gamma=-1.0), "gamma"),
        (dict(projection="fastfood"), "projection"),
        (dict(n_components=0), "n_components"),
        (dict(device=3), "device"),
    ],
)
def test_bad_parameters_name_the_parameter(params, name):
    with pytest.raises((ValueError, TypeError), match=name):
        LowPrecisionRFF(**params).fit(_data(5, 3))


def test_bad_device_string():
    with pytest.raises(ValueError, match="device"):
        LowPrecisionRFF(device="tpu").fit(_data(5, 3))


def test_bad_input():
    X = _data(10, 3)
    lp = LowPrecisionRFF(8, random_state=0)
    with pytest.raises(NotFittedError):
        lp.transform(X)
    X_nan = X.copy()
    X_nan[2, 1] = np.nan
    with pytest.raises(ValueError, match="X"):
        lp.fit(X_nan)
    lp.fit(X)
    with pytest.raises(ValueError, match="X"):
        lp.transform(X_nan)
    with pytest.raises(ValueError, match="features"):
        lp.transform(_data(4, 5))
    with pytest.raises(ValueError, match="features"):
        lp.transform_codes(_data(4, 5))


@pytest.mark.gpu
@pytest.mark.parametrize("projection", PROJECTIONS)
def test_numpy_cuda_same_codes(projection):
    pytest.importorskip("torch")
    X = _data(2000, 9, seed=6)
    kw = dict(n_components=512, gamma=0.2, n_bits=8, projection=projection, random_state=0)
    np_codes = LowPrecisionRFF(**kw).fit(X).transform_codes(X)[0].astype(np.int64)
    lc = LowPrecisionRFF(device="cuda", **kw).fit(X)
    assert lc.device_ == "cuda:0"
    cu_codes = lc.transform_codes(X)[0].astype(np.int64)
    diff = np.abs(np_codes - cu_codes)
    assert diff.max() <= 1 and diff.mean() <= 1e-5
    lc2 = pickle.loads(pickle.dumps(lc))
    assert len(lc2._device_cache) == 0
    assert np.array_equal(lc2.transform_codes(X)[0].astype(np.int64), cu_codes)


@pytest.mark.parametrize("projection", ["gaussian", "circulant"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_numba_quantizer_equals_numpy_reference(projection, dtype, monkeypatch):
    """The compiled cos/dither/rounding pass gives the numpy reference's codes exactly."""
    import skrmt.random_features._lprff as lprff_module

    X = np.random.RandomState(5).randn(300, 40).astype(dtype)
    est = LowPrecisionRFF(257, gamma=0.3, n_bits=3, projection=projection, random_state=0).fit(X)
    fused = est.transform(X)
    assert lprff_module._fused_quantizer() is not None
    monkeypatch.setattr(lprff_module, "_fused_quantizer", lambda: None)
    reference = est.transform(X)
    np.testing.assert_array_equal(fused, reference)
