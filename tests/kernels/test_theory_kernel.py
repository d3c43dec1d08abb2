"""TheoryKernel, model="ck", n_layers=1: limit vs Monte Carlo, equivalent vs limit, sklearn use."""

import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from _helpers import centred_spectral_error, gmm_a, spectral_error
from skrmt import TheoryKernel
from skrmt._theory._activations import resolve_activation


def _digits(n=200):
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X[:n]), y[:n]


def _monte_carlo_gram(act_name, X, n_features, seed=0, chunk=20000):
    """Empirical Gram (1/N) sum_k sigma(w_k^T x/sqrt p) sigma(w_k^T y/sqrt p), Gaussian w."""
    act = resolve_activation(act_name)
    rng = np.random.RandomState(seed)
    n, p = X.shape
    K = np.zeros((n, n))
    for start in range(0, n_features, chunk):
        m = min(chunk, n_features - start)
        Z = act.fn(X @ rng.standard_normal((p, m)) / np.sqrt(p))
        K += Z @ Z.T
    return K / n_features


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["relu", "erf", "tanh", "sin", "gelu", "abs"])
def test_limit_matches_200k_random_features_on_digits(activation):
    X, _ = _digits(200)
    K = TheoryKernel(activation=activation).fit_transform(X)
    K_mc = _monte_carlo_gram(activation, X, 200_000)
    rel = np.linalg.norm(K - K_mc) / np.linalg.norm(K)
    assert rel < 0.01


def test_limit_diagonal_and_symmetry():
    X, _ = _digits(80)
    tk = TheoryKernel(activation="relu").fit(X)
    K = tk.fit_transform(X)
    np.testing.assert_allclose(K, K.T, rtol=0, atol=1e-14)
    A = (X**2).sum(1) / X.shape[1]
    np.testing.assert_allclose(np.diag(K), A / 2, rtol=1e-13)  # ReLU: s2 = tau / 2
    # cross Gram on the training rows differs from the self-Gram only by diagonal rounding
    np.testing.assert_allclose(tk.transform(X), K, rtol=1e-7, atol=1e-12)
    assert np.linalg.eigvalsh(K).min() > -1e-10 * np.linalg.eigvalsh(K).max()


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_equivalent_approaches_limit_as_p_grows(activation):
    errors, centred = [], []
    for p in (128, 512, 2048):
        X, _ = gmm_a(p, p, seed=1)
        K_lim = TheoryKernel(activation=activation).fit_transform(X)
        K_eq = TheoryKernel(activation=activation, form="equivalent").fit_transform(X)
        errors.append(spectral_error(K_eq, K_lim))
        centred.append(centred_spectral_error(K_eq, K_lim))
    assert errors[0] > errors[1] > errors[2]
    assert centred[0] > centred[1] > centred[2]
    assert centred[2] < 0.5 * centred[0]


def test_equivalent_uses_moments():
    X, _ = gmm_a(64, 40)
    tk = TheoryKernel(activation="relu", form="equivalent").fit(X)
    c = tk.coefficients_[0]
    assert c["tau"] == pytest.approx(tk.tau_)
    assert c["d1"] == pytest.approx(0.25)
    assert c["d0"] == pytest.approx((0.25 - 0.5 / np.pi) * tk.tau_)
    assert tk.tau_ == pytest.approx((X**2).sum() / X.size)


def test_svc_callable_and_precomputed_pipeline_agree():
    X, y = _digits(300)
    y = (y % 2 == 0).astype(int)
    tk = TheoryKernel(activation="relu")
    svc = SVC(kernel=tk, C=1.0).fit(X[:200], y[:200])
    pipe = make_pipeline(TheoryKernel(activation="relu"), SVC(kernel="precomputed", C=1.0))
    pipe.fit(X[:200], y[:200])
    np.testing.assert_array_equal(svc.predict(X[200:]), pipe.predict(X[200:]))
    assert svc.score(X[200:], y[200:]) > 0.85
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.85


def test_pairwise_callable_route_with_kernel_ridge():
    X, y = _digits(40)
    tk = TheoryKernel(activation="erf")
    value = tk(X[0], X[1])
    assert isinstance(value, float)
    assert value == pytest.approx(tk(X[:2])[0, 1], rel=1e-12)
    kr = KernelRidge(kernel=tk, alpha=1e-2).fit(X[:30], y[:30].astype(float))
    kr_pre = KernelRidge(kernel="precomputed", alpha=1e-2).fit(tk(X[:30], X[:30] + 0), y[:30])
    np.testing.assert_allclose(kr.predict(X[30:]), kr_pre.predict(tk(X[30:], X[:30])),
                               rtol=1e-8)


def test_equivalent_pair_call_needs_fit():
    X, _ = _digits(10)
    with pytest.raises(ValueError, match="precomputed"):
        TheoryKernel(form="equivalent")(X[0], X[1])


def test_activation_list_length_must_match_n_layers():
    X, _ = _digits(10)
    with pytest.raises(ValueError, match="activation has 1 entries but n_layers=2"):
        TheoryKernel(n_layers=2, activation=["relu"]).fit(X)


def test_float32_preserved_and_pickle():
    X, _ = _digits(30)
    tk = TheoryKernel(activation="tanh").fit(X.astype(np.float32))
    K = tk.transform(X.astype(np.float32))
    assert K.dtype == np.float32
    tk2 = pickle.loads(pickle.dumps(tk))
    np.testing.assert_array_equal(tk2.transform(X.astype(np.float32)), K)


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh", "sin"])
@pytest.mark.parametrize("form", ["limit", "equivalent"])
def test_torch_cpu_matches_numpy(activation, form):
    pytest.importorskip("torch")
    X, _ = _digits(50)
    K_np = TheoryKernel(activation=activation, form=form).fit_transform(X)
    K_t = TheoryKernel(activation=activation, form=form, device="cpu").fit_transform(X)
    np.testing.assert_allclose(K_t, K_np, rtol=1e-10, atol=1e-13)
    K32 = TheoryKernel(activation=activation, form=form, device="cpu").fit(
        X.astype(np.float32)).transform(X[:7].astype(np.float32))
    K_cross = TheoryKernel(activation=activation, form=form).fit(X).transform(X[:7])
    np.testing.assert_allclose(K32, K_cross, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_cuda_matches_numpy_and_pickles_to_cpu():
    X, _ = _digits(50)
    tk = TheoryKernel(activation="relu", device="cuda").fit(X)
    np.testing.assert_allclose(tk.transform(X), TheoryKernel().fit(X).transform(X), rtol=1e-10)
    assert tk.device_.startswith("cuda")
    tk2 = pickle.loads(pickle.dumps(tk))
    np.testing.assert_allclose(tk2.transform(X), tk.transform(X), rtol=1e-12)
