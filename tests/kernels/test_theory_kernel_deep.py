"""TheoryKernel, deep models (model="ck"/"ntk", n_layers >= 1; design note ntk_lc.md §2).

Oracles: a wide random network drawn in numpy (Monte Carlo CK), the single-layer kernels of the
moments engine, the ReLU table of ntk_lc.md §2.1, and the limit form against the equivalent.
"""

import math
import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from _helpers import spectral_error
from skrmt import TheoryKernel
from skrmt._theory._activations import StepFunction, resolve_activation
from skrmt._theory._ck_ntk import deep_kernel
from skrmt._theory._gaussian_moments import (
    dual_kernel,
    dual_kernel_diag,
    dual_kernel_prime,
    dual_kernel_prime_diag,
    gaussian_moments,
)
from skrmt.datasets import make_gmm

HIDDEN = StepFunction(levels=(-2.408743, 0.0, -2.408743), thresholds=(0.999531, 2.212533))


def _digits(n=120):
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X[:n]), y[:n]


def _random_network_ck(names, X, width, centres, seed):
    """Empirical CK ``h_L h_L^T`` of a random network with unit-variance Gaussian weights.

    ``h_0 = x / sqrt(p)``, ``h_l = (sigma_l(W_l h_{l-1}) - c_l) / sqrt(d)`` for the hidden
    layers and ``sigma_L(W_L h_{L-1}) / sqrt(d)`` (raw) at the output, as TheoryKernel's model.
    """
    rng = np.random.RandomState(seed)
    H = X / math.sqrt(X.shape[1])
    for ell, name in enumerate(names):
        S = resolve_activation(name).fn(H @ rng.standard_normal((H.shape[1], width)))
        if ell < len(names) - 1:
            S -= centres[ell]
        H = S / math.sqrt(width)
    return H @ H.T


@pytest.mark.parametrize("names", [("relu", "relu", "relu"), ("erf", "relu")])
def test_limit_matches_wide_random_network(names):
    X, _ = _digits(100)
    tk = TheoryKernel(n_layers=len(names), activation=list(names)).fit(X)
    K = tk.fit_transform(X)
    centres = [c["m0"] for c in tk.coefficients_]
    errors = {}
    with threadpool_limits(limits=1):
        for width in (500, 2000):
            emp = [_random_network_ck(names, X, width, centres, seed) for seed in (0, 1)]
            errors[width] = np.mean([np.linalg.norm(E - K) / np.linalg.norm(K) for E in emp])
    # measured (relu x 3): 0.18 at width 500, 0.10 at 2000 (the 1/sqrt(width) rate gives 0.5x)
    assert errors[2000] < 0.13, errors
    assert errors[2000] < 0.7 * errors[500], errors


def test_one_layer_ck_unchanged_and_list_of_one_is_the_same():
    X, _ = _digits(40)
    for form in ("limit", "equivalent"):
        K = TheoryKernel(activation="tanh", form=form).fit_transform(X)
        K_list = TheoryKernel(activation=["tanh"], form=form).fit_transform(X)
        np.testing.assert_array_equal(K_list, K)
    # the limit is E sigma(u) sigma(v) of the engine, diagonal s2(A)
    Xs = X / math.sqrt(X.shape[1])
    A, G = (Xs**2).sum(1), Xs @ Xs.T
    K = TheoryKernel(activation="relu").fit_transform(X)
    want = dual_kernel("relu", A[:, None], A[None, :], G)
    np.fill_diagonal(want, dual_kernel_diag("relu", A))
    np.testing.assert_allclose(K, want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("activation", ["relu", "erf", "gelu"])
def test_one_layer_ntk_is_phi_plus_gram_times_phi_prime(activation):
    X, _ = _digits(40)
    Xs = X / math.sqrt(X.shape[1])
    A, G = (Xs**2).sum(1), Xs @ Xs.T
    want = dual_kernel(activation, A[:, None], A[None, :], G) + G * dual_kernel_prime(
        activation, A[:, None], A[None, :], G
    )
    np.fill_diagonal(want, dual_kernel_diag(activation, A) + A * dual_kernel_prime_diag(
        activation, A))
    K = TheoryKernel("ntk", activation=activation).fit_transform(X)
    np.testing.assert_allclose(K, want, rtol=1e-12, atol=1e-14)


def test_raw_output_differs_from_centred_by_the_centring_terms():
    # ntk_lc.md §2.5, exact form: raw - centred = c_L (m0(A) + m0(B)) - c_L^2 (CK and NTK)
    X, _ = _digits(50)
    tk = TheoryKernel(n_layers=3).fit(X)
    Xs = X / math.sqrt(X.shape[1])
    acts = [resolve_activation("relu")] * 3
    c = tk.coefficients_[-1]["m0"]
    centred = deep_kernel(acts, Xs, v0=tk.tau_, center_output=True, all_layers=True)
    m0 = gaussian_moments("relu", np.diag(centred[1])).m0  # layer-3 input variances
    for model in ("ck", "ntk"):
        raw = TheoryKernel(model, n_layers=3).fit_transform(X)
        cen = deep_kernel(acts, Xs, kernel=model, v0=tk.tau_, center_output=True)
        np.testing.assert_allclose(raw - cen, c * (m0[:, None] + m0[None, :]) - c * c,
                                   rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("model", ["ck", "ntk"])
def test_equivalent_approaches_limit_with_raw_output(model):
    # the raw output layer's c_L^2 + (c_L m2_L alpha_{L-1,4}/2)(delta 1^T + 1 delta^T): measured
    # 0.0068/0.0034 (CK), 0.0080/0.0037 (NTK) at p = 128/256; without the delta term 0.07-0.1
    errors = []
    for p in (128, 256):
        X, _ = make_gmm(2 * p, p, preset="pm2", random_state=0)
        X = X * math.sqrt(p)  # TheoryKernel divides by sqrt(p) itself
        K_lim = TheoryKernel(model, n_layers=2).fit_transform(X)
        K_eq = TheoryKernel(model, n_layers=2, form="equivalent").fit_transform(X)
        errors.append(spectral_error(K_eq, K_lim))
    assert errors[1] < 0.01
    assert errors[1] < 0.7 * errors[0]


def test_coefficients_per_layer_follow_relu_table():
    X, _ = _digits(60)
    X = X / math.sqrt((X**2).sum() / X.size)  # tau_ = 1 exactly
    tk = TheoryKernel("ntk", n_layers=3, form="equivalent").fit(X)
    assert tk.tau_ == pytest.approx(1.0, rel=1e-14)
    assert len(tk.coefficients_) == 3
    alphas = [(0.25, 0.039789, 0.079577, 0.340845), (0.0625, 0.023509, 0.034486, 0.116175),
              (0.015625, 0.010500, 0.011297, 0.039598)]
    betas = [(0.5, 0.039789, 0.238732), (0.1875, 0.033456, 0.152537),
             (0.0625, 0.018864, 0.065486)]
    kappa2 = (0.840845, 0.536598, 0.307897)
    for co, a, b, k in zip(tk.coefficients_, alphas, betas, kappa2):
        np.testing.assert_allclose(co["alpha"], a, atol=6e-7)
        np.testing.assert_allclose(co["beta"], b, atol=6e-7)
        assert co["kappa2"] == pytest.approx(k, abs=6e-7)
        assert co["d1"] == pytest.approx(0.25)
        assert co["d0"] == pytest.approx(co["v_out"] - 0.25 * co["tau"], rel=1e-12)
    assert tk.coefficients_[1]["tau"] == pytest.approx(0.340845, abs=6e-7)
    assert tk.coefficients_[2]["ck_identity"] == pytest.approx(0.023973, abs=6e-7)
    assert tk.coefficients_[2]["ntk_identity"] == pytest.approx(0.245397, abs=6e-7)


@pytest.mark.parametrize("activation", ["step", "sign", HIDDEN, ["relu", "sign"]])
@pytest.mark.parametrize("form", ["limit", "equivalent"])
def test_ntk_with_jumps_raises(activation, form):
    X, _ = _digits(10)
    tk = TheoryKernel("ntk", n_layers=2, activation=activation, form=form)
    with pytest.raises(ValueError, match="activation.*infinite on the diagonal"):
        tk.fit(X)
    with pytest.raises(ValueError, match="infinite"):
        tk(X)
    # the CK of the same network is finite
    K = TheoryKernel("ck", n_layers=2, activation=activation, form=form).fit_transform(X)
    assert np.all(np.isfinite(K))


def test_activation_validation():
    X, _ = _digits(10)
    with pytest.raises(ValueError, match="activation has 3 entries but n_layers=2"):
        TheoryKernel(n_layers=2, activation=["relu", "relu", "tanh"]).fit(X)
    with pytest.raises(ValueError, match="activation='bogus'"):
        TheoryKernel(n_layers=2, activation=["relu", "bogus"]).fit(X)
    with pytest.raises(ValueError, match="activation: a list"):
        TheoryKernel("implicit_ck", activation=["relu"]).fit(X)


def test_transform_call_and_pairs_agree():
    X, _ = _digits(30)
    for model, form in (("ntk", "limit"), ("ck", "equivalent"), ("ntk", "equivalent")):
        tk = TheoryKernel(model, n_layers=2, activation=["relu", "tanh"], form=form)
        K = tk.fit_transform(X)
        np.testing.assert_allclose(K, K.T, rtol=0, atol=1e-14)
        np.testing.assert_allclose(tk.transform(X), K, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(tk(X, X), K, rtol=1e-9, atol=1e-12)
        assert tk(X[3], X[7]) == pytest.approx(K[3, 7], rel=1e-10)
        assert tk(X[4], X[4]) == pytest.approx(K[4, 4], rel=1e-12)
        np.testing.assert_allclose(tk.transform(X[:5]), K[:5], rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="n_layers=2"):
        TheoryKernel(n_layers=2)(X[0], X[1])


def test_svc_pipeline_float32_and_pickle():
    X, y = _digits(300)
    y = (y % 2 == 0).astype(int)
    pipe = make_pipeline(TheoryKernel("ntk", n_layers=3), SVC(kernel="precomputed"))
    assert pipe.fit(X[:200], y[:200]).score(X[200:], y[200:]) > 0.85
    tk = TheoryKernel("ck", n_layers=2, activation=["gelu", "relu"]).fit(X[:50].astype(np.float32))
    K32 = tk.transform(X[50:60].astype(np.float32))
    assert K32.dtype == np.float32
    K64 = TheoryKernel("ck", n_layers=2, activation=["gelu", "relu"]).fit(X[:50]).transform(
        X[50:60])
    np.testing.assert_allclose(K32, K64, rtol=1e-5, atol=1e-6)
    tk2 = pickle.loads(pickle.dumps(tk))
    np.testing.assert_array_equal(tk2.transform(X[50:60].astype(np.float32)), K32)


@pytest.mark.parametrize("form", ["limit", "equivalent"])
def test_torch_cpu_matches_numpy(form):
    pytest.importorskip("torch")
    X, _ = _digits(40)
    for model, acts in (("ntk", ["relu", "tanh"]), ("ck", ["relu", HIDDEN])):
        kw = dict(n_layers=2, activation=acts, form=form)
        K_np = TheoryKernel(model, **kw).fit_transform(X)
        K_t = TheoryKernel(model, device="cpu", **kw).fit_transform(X)
        np.testing.assert_allclose(K_t, K_np, rtol=1e-10, atol=1e-13)
