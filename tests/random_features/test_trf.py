"""TernaryRandomFeatures (design note trf.md §10)."""

import math
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from _helpers import centred_spectral_error, exact_gram, gmm_a, spectral_error
from skrmt import TernaryRandomFeatures
from skrmt._theory._ternary import match_ternary
from skrmt.random_features._ternary_matrix import ternary_matrix_bits


def _codes(trf, Z):
    return (math.sqrt(trf.n_components) * Z - trf.offset_) / trf.scale_


def test_transform_values_shape_dtype():
    X, _ = gmm_a(100, 60)
    trf = TernaryRandomFeatures(500, sparsity=0.5, random_state=0).fit(X)
    Z = trf.transform(X)
    assert Z.shape == (60, 500) and Z.dtype == np.float64
    codes = _codes(trf, Z)
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-9)
    assert set(np.unique(np.round(codes))) <= {-1.0, 0.0, 1.0}
    Z32 = trf.transform(X.astype(np.float32))
    assert Z32.dtype == np.float32
    assert np.mean(np.abs(Z32 - Z) > 1e-5) < 1e-3  # only near-threshold entries may flip


def test_codes_equal_float_reference_path():
    """Integer path (compare W x with kappa s+-) equals the float path u = W x / kappa."""
    X, _ = gmm_a(64, 50, seed=3)
    trf = TernaryRandomFeatures(300, sparsity=0.3, random_state=1).fit(X)
    W = np.asarray(trf.components_, dtype=np.float64)
    u = X @ W.T / math.sqrt(X.shape[1] * (1 - trf.sparsity))
    s_minus, s_plus = trf.thresholds_
    expected = (u > s_plus).astype(float) - (u < s_minus)
    np.testing.assert_array_equal(np.round(_codes(trf, trf.transform(X))), expected)


def test_sampler_statistics_and_memory():
    X = np.random.RandomState(0).randn(20, 500)
    for eps in (0.0, 0.5, 0.9):
        trf = TernaryRandomFeatures(2000, sparsity=eps, random_state=0).fit(X)
        W = np.asarray(trf.components_)
        n = W.size
        assert set(np.unique(W)) <= {-1, 0, 1}
        zero = np.mean(W == 0)
        assert abs(zero - eps) <= 4 * math.sqrt(max(eps * (1 - eps), 1e-12) / n) + 1e-12
        assert abs(np.mean(W == 1) - np.mean(W == -1)) <= 4 * math.sqrt((1 - eps) / n)
        nnz = np.count_nonzero(W)
        assert trf.memory_bytes_ == math.ceil(ternary_matrix_bits(nnz, 2000, 500) / 8)
        # hold what you charge: bytes held within 2x of the charged figure (+ row pointers)
        assert trf.components_.nbytes <= 2 * trf.memory_bytes_ + 8 * 2001
        assert trf.components_.nbytes < 2000 * 500  # never more than int8 dense
    same = TernaryRandomFeatures(100, sparsity=0.9, random_state=7).fit(X)
    again = TernaryRandomFeatures(100, sparsity=0.9, random_state=7).fit(X)
    assert same.components_ == again.components_


def test_weights_50x_smaller_than_float32_at_eps09_p784():
    X = np.random.RandomState(0).randn(5, 784)
    trf = TernaryRandomFeatures(4096, sparsity=0.9, random_state=0).fit(X)
    float32_bytes = 4 * 4096 * 784
    assert float32_bytes / trf.memory_bytes_ >= 25  # design README correction 1


def test_fitted_attributes_and_kernel():
    X, _ = gmm_a(128, 100)
    trf = TernaryRandomFeatures(100, activation="gelu", random_state=0).fit(X)
    m = match_ternary("gelu", trf.tau_)
    assert trf.thresholds_ == pytest.approx((m.s_minus, m.s_plus), rel=1e-12)
    assert trf.tau_ == pytest.approx((X**2).sum() / X.size, rel=1e-12)
    co = trf.coefficients_
    assert co["ternary"]["d1"] == pytest.approx(co["target"]["d1"], rel=1e-10)
    assert co["ternary"]["d2"] == pytest.approx(co["target"]["d2"], rel=1e-10)
    assert co["delta"] == pytest.approx(co["ternary"]["d0"] - co["target"]["d0"], abs=1e-15)
    assert trf.kernel_.activation == "gelu" and trf.kernel_.model == "ck"
    np.testing.assert_allclose(trf.kernel_(X), exact_gram("gelu", X), rtol=1e-12)


def _gram_error(trf, X, K_target):
    Z = trf.transform(X)
    K_hat = Z @ Z.T - trf.coefficients_["delta"] * np.eye(len(X))
    return np.linalg.norm(K_hat - K_target) / np.linalg.norm(K_target)


@pytest.mark.parametrize("sparsity", [0.0, 0.9])
def test_gram_error_decreases_like_inverse_sqrt_n(sparsity):
    """Z Z^T - Delta I approaches the target kernel_ Gram; error ~ 1/sqrt(N)."""
    X, _ = gmm_a(512, 300, seed=2)
    K = TernaryRandomFeatures(10, random_state=0).fit(X).kernel_(X)
    errs = []
    for N in (1000, 4000, 16000):
        errs.append(np.mean([
            _gram_error(TernaryRandomFeatures(N, sparsity=sparsity, random_state=s).fit(X), X, K)
            for s in range(3)
        ]))
    ratios = [errs[0] / errs[1], errs[1] / errs[2]]
    # 4x the features halves the Monte Carlo error; the remaining bias is O(1/sqrt(p))
    assert 1.5 < ratios[0] < 2.5, errs
    assert 1.3 < ratios[1] < 2.5, errs
    assert errs[-1] < 0.05


def _exact_trf_and_target(p, activation="relu"):
    X, _ = gmm_a(p, 2 * p, seed=0)
    trf = TernaryRandomFeatures(1, activation=activation, random_state=0).fit(X)
    m = match_ternary(activation, trf.tau_)
    K_trf = exact_gram(m.step_function(), X)
    K_sig = exact_gram(activation, X)
    return K_trf, K_sig, m.delta


@pytest.mark.parametrize("p, bound", [(256, 0.03), (512, 0.018)])
def test_exact_kernel_equivalence_gmm_a(p, bound):
    """trf.md §10 items 8-9: centred and uncentred equivalence of exact kernels."""
    K_trf, K_sig, delta = _exact_trf_and_target(p)
    eye = np.eye(len(K_trf))
    corrected = centred_spectral_error(K_trf - delta * eye, K_sig)
    uncorrected = centred_spectral_error(K_trf, K_sig)
    assert corrected <= bound
    assert uncorrected >= 0.02
    # uncentred contract: with the fitted offset Z Z^T approximates the uncentred Gram
    assert spectral_error(K_trf - delta * eye, K_sig) <= 0.01


@pytest.mark.slow
def test_exact_kernel_equivalence_decreases_with_p():
    errs = []
    for p in (256, 512, 1024):
        K_trf, K_sig, delta = _exact_trf_and_target(p)
        errs.append(centred_spectral_error(K_trf - delta * np.eye(len(K_trf)), K_sig))
    assert errs[2] <= 0.013
    assert errs[1] / errs[0] <= 0.8 and errs[2] / errs[1] <= 0.8


def _relu_gaussian_features(X_tr, X_te, N, seed):
    rng = np.random.RandomState(seed)
    W = rng.standard_normal((X_tr.shape[1], N)) / np.sqrt(X_tr.shape[1])
    return (np.maximum(X_tr @ W, 0) / np.sqrt(N), np.maximum(X_te @ W, 0) / np.sqrt(N))


def test_digits_accuracy_sparse_trf_vs_dense_gaussian_relu():
    """Real data: N = 2000, sparsity 0.9 within 1.5 points of dense Gaussian ReLU features."""
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    acc_trf, acc_rf = [], []
    for seed in range(3):
        with pytest.warns(UserWarning, match="nonzero weights per feature"):
            trf = TernaryRandomFeatures(2000, sparsity=0.9, random_state=seed).fit(X_tr)
        clf = RidgeClassifier(alpha=1e-2).fit(trf.transform(X_tr), y_tr)
        acc_trf.append(clf.score(trf.transform(X_te), y_te))
        Z_tr, Z_te = _relu_gaussian_features(X_tr, X_te, 2000, seed)
        acc_rf.append(RidgeClassifier(alpha=1e-2).fit(Z_tr, y_tr).score(Z_te, y_te))
    assert np.mean(acc_rf) > 0.95
    assert np.mean(acc_trf) >= np.mean(acc_rf) - 0.015, (acc_trf, acc_rf)


def test_sparse_input_equals_dense():
    X, _ = gmm_a(64, 30)
    X[np.abs(X) < 0.8] = 0.0
    trf = TernaryRandomFeatures(200, sparsity=0.5, random_state=0).fit(sp.csr_matrix(X))
    np.testing.assert_array_equal(trf.transform(sp.csr_matrix(X)), trf.transform(X))


def test_pickle_round_trip():
    X, _ = gmm_a(64, 30)
    trf = TernaryRandomFeatures(200, sparsity=0.9, random_state=0).fit(X)
    Z = trf.transform(X)
    blob = pickle.dumps(trf)
    assert len(blob) < 20_000  # compact weights, no device copies
    np.testing.assert_array_equal(pickle.loads(blob).transform(X), Z)


@pytest.mark.parametrize("activation", ["abs", "cos", "gauss", "quadratic"])
def test_even_activation_raises(activation):
    X, _ = gmm_a(64, 30)
    with pytest.raises(ValueError, match=f"activation='{activation}'"):
        TernaryRandomFeatures(10, activation=activation).fit(X)


def test_sparsity_warning_threshold():
    X = np.random.RandomState(0).randn(10, 512)
    with pytest.warns(UserWarning, match="nonzero weights"):
        TernaryRandomFeatures(10, sparsity=0.99).fit(X)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TernaryRandomFeatures(10, sparsity=0.95).fit(X)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(sparsity=1.0), "sparsity"),
        (dict(sparsity=-0.1), "sparsity"),
        (dict(n_components=0), "n_components"),
        (dict(activation="nope"), "activation"),
        (dict(thresholds=(1.0, 0.5)), "thresholds"),
        (dict(thresholds=(np.nan, 0.5)), "thresholds"),
        (dict(thresholds="manual"), "thresholds"),
        (dict(device="tpu"), "device"),
    ],
)
def test_bad_parameters(params, match):
    X, _ = gmm_a(16, 10)
    params = {"n_components": 10, **params}
    with pytest.raises(ValueError, match=match):
        TernaryRandomFeatures(**params).fit(X)


def test_bad_input():
    X, _ = gmm_a(16, 10)
    trf = TernaryRandomFeatures(10, random_state=0)
    with pytest.raises(ValueError, match="NaN"):
        trf.fit(np.where(X > 1, np.nan, X))
    with pytest.raises(ValueError, match="infinity|inf"):
        trf.fit(np.where(X > 1, np.inf, X))
    with pytest.raises(ValueError, match="[Cc]omplex"):
        trf.fit(X + 1j)
    with pytest.raises(ValueError, match="0 sample"):
        trf.fit(np.empty((0, 16)))
    with pytest.raises(ValueError, match="zero"):
        trf.fit(np.zeros((5, 16)))
    trf.fit(X)
    with pytest.raises(ValueError, match="features"):
        trf.transform(X[:, :8])


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_torch_cpu_parity(dtype, rtol):
    pytest.importorskip("torch")
    X, _ = gmm_a(100, 80, seed=4)
    X = X.astype(dtype)
    a = TernaryRandomFeatures(300, sparsity=0.7, random_state=0).fit(X)
    b = TernaryRandomFeatures(300, sparsity=0.7, random_state=0, device="cpu").fit(X)
    assert a.components_ == b.components_
    Za, Zb = a.transform(X), b.transform(X)
    assert Zb.dtype == dtype
    # trf.md pitfall 11: summation order may flip an entry lying at a threshold
    assert np.mean(~np.isclose(Za, Zb, rtol=rtol, atol=rtol)) <= 1e-4


@pytest.mark.gpu
def test_cuda_fit_pickles_and_predicts_on_cpu():
    X, _ = gmm_a(100, 80, seed=4)
    g = TernaryRandomFeatures(300, sparsity=0.7, random_state=0, device="cuda").fit(X)
    ref = TernaryRandomFeatures(300, sparsity=0.7, random_state=0).fit(X)
    assert np.mean(~np.isclose(g.transform(X), ref.transform(X), rtol=1e-12)) <= 1e-4
    g2 = pickle.loads(pickle.dumps(g))
    assert len(g2._device_cache) == 0


def test_draw_order_is_pinned_and_block_independent():
    """The weight draw is part of the contract: one uniform per weight, row-major."""
    from skrmt.random_features._ternary_matrix import draw_ternary

    n_rows, n_cols, eps = 12000, 1000, 0.6  # more rows than one internal block
    w = draw_ternary(np.random.RandomState(3), n_rows, n_cols, eps)
    u = np.random.RandomState(3).uniform(size=(n_rows, n_cols))
    expected = np.where(u < eps, 0, np.where(u < (1 + eps) / 2, 1, -1))
    np.testing.assert_array_equal(w, expected)
    X = np.ones((2, 40))
    first = np.asarray(TernaryRandomFeatures(3, random_state=0).fit(X).components_)
    # RandomState(0).uniform() starts 0.5488, 0.7152, 0.6028, 0.5449, 0.4237: +1 below 1/2
    np.testing.assert_array_equal(first[0, :5], [-1, -1, -1, -1, 1])
