"""RMTRidge, the estimator: scikit-learn contract, readout, alpha selection, theory methods.

Acceptance tests AT2 and AT8-AT11 of ``rmt_ridge.md`` §11 plus the input checks and warnings
of issue 4. DE-level tests (AT1, AT3-AT7) are in ``test_rmt_ridge_de.py``.
"""

import functools
import math
import pickle
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import Ridge
from sklearn.utils import estimator_checks as ec

from skrmt._theory import _rmt_ridge_de as de
from skrmt.datasets import make_gmm
from skrmt.linear_model import RMTRidge
from skrmt.linear_model import _rmt_ridge as rr

from _helpers import quiet_fit, ridge_errors, small_problem


# =============================================================================================
# data
# =============================================================================================
@functools.lru_cache(maxsize=None)
def gmm(n, p=None, seed=0):
    """make_gmm pm2 (target 2y - 1). Its noise is RandomState(seed).standard_normal, so the
    feature draws below use other seeds (>= 1000): W = RandomState(0).standard_normal would
    repeat the training noise vectors and align features with samples."""
    X, y = make_gmm(n, n if p is None else p, preset="pm2", random_state=seed)
    return X, 2.0 * y - 1.0


@functools.lru_cache(maxsize=None)
def digits():
    """Digits even (+1) vs odd (-1), RandomState(0) permutation, 1024 train / 773 test."""
    from sklearn.datasets import load_digits

    X, d = load_digits(return_X_y=True)
    y = np.where(d % 2 == 0, 1.0, -1.0)
    perm = np.random.RandomState(0).permutation(len(y))
    X, y = X[perm], y[perm]
    return X[:1024], X[1024:], y[:1024], y[1024:]








# =============================================================================================
# scikit-learn contract (AT11)
# =============================================================================================
def test_check_estimator():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ec.check_estimator(RMTRidge(n_components=128, random_state=0))
    est = RMTRidge(n_components=128)
    ec.check_param_validation("RMTRidge", est)
    ec.check_inplace_ensure_writeable("RMTRidge", est)


@pytest.mark.slow
@pytest.mark.parametrize(
    "params", [dict(features="ternary", sparsity=0.5), dict(device="cpu"),
               dict(alpha=0.1, alpha_selection="gcv", activation="erf")],
    ids=["ternary", "torch-cpu", "fixed-alpha-erf"],
)
def test_check_estimator_variants(params):
    if params.get("device") == "cpu":
        pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ec.check_estimator(RMTRidge(n_components=128, random_state=0, **params))


def test_same_seed_same_draw_and_theory_free_of_draw():
    X, y = small_problem()
    a = quiet_fit(RMTRidge(64, random_state=3), X, y)
    b = quiet_fit(RMTRidge(64, random_state=3), X, y)
    c = quiet_fit(RMTRidge(64, random_state=4), X, y)
    np.testing.assert_array_equal(a.components_, b.components_)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    # first values of the draw pinned: W = RandomState(seed).standard_normal((N, p))
    np.testing.assert_array_equal(a.components_, np.random.RandomState(3).standard_normal((64, 10)))
    assert not np.allclose(a.components_, c.components_)
    assert a.alpha_ == c.alpha_ and a.predicted_train_mse_ == c.predicted_train_mse_
    Xt, yt = small_problem(seed=1)
    assert a.predict_risk(Xt, yt) == c.predict_risk(Xt, yt)
    pa, pc = a.risk_path([0.01, 0.1], Xt, yt), c.risk_path([0.01, 0.1], Xt, yt)
    for key in pa:
        np.testing.assert_array_equal(pa[key], pc[key])


def test_float32_in_float32_out():
    X, y = small_problem()
    m64 = quiet_fit(RMTRidge(64, random_state=0), X, y)
    m32 = quiet_fit(RMTRidge(64, random_state=0), X.astype(np.float32), y)
    pred = m32.predict(X.astype(np.float32))
    assert pred.dtype == np.float32 and m32.coef_.dtype == np.float32
    assert m64.predict(X).dtype == np.float64
    np.testing.assert_allclose(pred, m64.predict(X), rtol=1e-4, atol=1e-4)


def test_pickle_drops_U_and_recomputes_locally():
    X, y = small_problem()
    Xt, yt = small_problem(seed=1)
    model = quiet_fit(RMTRidge(96, random_state=0), X, y)
    before = model.predict_risk(Xt, yt)
    path_before = model.risk_path([1e-3, 0.1, 1.0], Xt, yt, n_components=[32, 96])
    blob = pickle.dumps(model)
    assert len(blob) < 0.5 * len(pickle.dumps(model.__dict__))
    loaded = pickle.loads(blob)
    assert "_U" not in loaded.__dict__
    np.testing.assert_array_equal(loaded.predict(Xt), model.predict(Xt))
    state = dict(loaded.__dict__)
    after = loaded.predict_risk(Xt, yt)
    path_after = loaded.risk_path([1e-3, 0.1, 1.0], Xt, yt, n_components=[32, 96])
    assert set(loaded.__dict__) == set(state)
    assert all(loaded.__dict__[k] is state[k] for k in state)
    for key in before:
        np.testing.assert_allclose(after[key], before[key], rtol=1e-10)
    for key in path_before:
        np.testing.assert_allclose(path_after[key], path_before[key], rtol=1e-9)


def test_theory_methods_do_not_mutate():
    X, y = small_problem()
    model = quiet_fit(RMTRidge(64, random_state=0), X, y)
    state = dict(model.__dict__)
    model.predict_risk(X[:20], y[:20])
    model.risk_path([0.1, 1.0], X[:20], y[:20], n_components=[10, 64])
    model.risk_path([0.1])
    assert model.__dict__.keys() == state.keys()
    assert all(model.__dict__[k] is state[k] for k in state)


def test_torch_cpu_parity():
    pytest.importorskip("torch")
    X, y = gmm(256)
    Xt, yt = gmm(256, seed=1)
    for alpha in (0.05, "auto"):
        a = quiet_fit(RMTRidge(384, alpha=alpha, random_state=1000), X, y)
        b = quiet_fit(RMTRidge(384, alpha=alpha, random_state=1000, device="cpu"), X, y)
        assert b.device_ == "cpu"
        np.testing.assert_allclose(b.alpha_, a.alpha_, rtol=1e-8)
        np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-8, atol=1e-10 * np.abs(a.coef_).max())
        np.testing.assert_allclose(b.predict(Xt), a.predict(Xt), rtol=1e-8, atol=1e-10)
        for key in ("predicted_train_mse_", "effective_alpha_", "dof_", "predicted_loo_mse_"):
            np.testing.assert_allclose(getattr(b, key), getattr(a, key), rtol=1e-8)
        ra, rb = a.predict_risk(Xt, yt), b.predict_risk(Xt, yt)
        for key in ra:
            np.testing.assert_allclose(rb[key], ra[key], rtol=1e-8)


@pytest.mark.gpu
def test_cuda_parity():
    X, y = gmm(256)
    Xt, yt = gmm(256, seed=1)
    a = quiet_fit(RMTRidge(384, random_state=1000), X, y)
    b = quiet_fit(RMTRidge(384, random_state=1000, device="cuda"), X, y)
    assert b.device_.startswith("cuda")
    np.testing.assert_allclose(b.alpha_, a.alpha_, rtol=1e-8)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-8, atol=1e-10 * np.abs(a.coef_).max())
    ra, rb = a.predict_risk(Xt, yt), b.predict_risk(Xt, yt)
    for key in ra:
        np.testing.assert_allclose(rb[key], ra[key], rtol=1e-8)


def softsign(x):
    return x / (1.0 + np.abs(x))


@pytest.mark.parametrize("activation", ["sin", "gelu", softsign], ids=["sin", "gelu", "callable"])
def test_other_activations_predicted_vs_realised(activation):
    """Closed-form, Hermite-series and quadrature kernels: DE within 8% of 4 draws' mean."""
    rng = np.random.RandomState(1)
    X = rng.randn(400, 20)
    y = np.tanh(X[:, 0] + X[:, 1]) + 0.1 * rng.randn(400)
    models = [RMTRidge(600, activation=activation, random_state=10 + s).fit(X[:300], y[:300])
              for s in range(4)]
    risk = models[0].predict_risk(X[300:], y[300:])["test_mse"]
    realised = [np.mean((m.predict(X[300:]) - y[300:]) ** 2) for m in models]
    assert abs(risk / np.mean(realised) - 1) < 0.08  # observed <= 4.2%


# =============================================================================================
# errors and warnings
# =============================================================================================
@pytest.mark.parametrize(
    "params, match",
    [
        (dict(alpha=-1.0), "alpha"),
        (dict(alpha=float("inf")), "alpha"),
        (dict(alpha=float("nan")), "alpha"),
        (dict(alpha="best"), "alpha"),
        (dict(n_components=0), "n_components"),
        (dict(features="binary"), "features"),
        (dict(activation="swishy"), "activation"),
        (dict(alpha_selection="cv"), "alpha_selection"),
        (dict(sparsity=1.0), "sparsity"),
    ],
)
def test_invalid_parameters(params, match):
    X, y = small_problem()
    with pytest.raises(ValueError, match=match):
        RMTRidge(**params).fit(X, y)


def test_invalid_data():
    X, y = small_problem()
    with pytest.raises(ValueError, match="NaN"):
        RMTRidge(32).fit(X, np.r_[y[:-1], np.nan])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        RMTRidge(32).fit(X, y[:-1])
    with pytest.raises(ValueError, match="1 sample"):
        RMTRidge(32).fit(X[:1], y[:1])
    with pytest.raises(ValueError, match="abs"):
        RMTRidge(32, features="ternary", activation="abs").fit(X, y)
    model = quiet_fit(RMTRidge(32, random_state=0), X, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        model.predict_risk(X, y[:-1])
    with pytest.raises(ValueError, match="NaN"):
        model.predict_risk(X, np.r_[y[:-1], np.nan])
    with pytest.raises(ValueError, match="target"):
        model.predict_risk(X, np.c_[y, y])
    with pytest.raises(ValueError, match="alphas"):
        model.risk_path([-1.0])
    with pytest.raises(ValueError, match="alphas"):
        model.risk_path([np.inf])
    with pytest.raises(ValueError, match="n_components"):
        model.risk_path([1.0], n_components=[0, 10])
    with pytest.raises(ValueError, match="X together with y"):
        model.risk_path([1.0], y=y)


def test_convergence_warning(monkeypatch):
    X, y = small_problem()
    monkeypatch.setattr(de, "MAX_ITER", 1)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        RMTRidge(64, alpha=0.1, random_state=0).fit(X, y)


def test_interpolation_peak_warning():
    X, y = small_problem(n=128)
    with pytest.warns(UserWarning, match="interpolation peak"):
        model = RMTRidge(128, alpha=1e-6, random_state=0).fit(X, y)
    assert model.rank_ == 128
    with pytest.warns(UserWarning, match="interpolation peak"):
        model.predict_risk(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RMTRidge(128, alpha=1.0, random_state=0).fit(X, y)
        RMTRidge(512, alpha=1e-6, random_state=0).fit(X, y)
        RMTRidge(128, random_state=0).fit(X, y)  # auto


def test_grid_edge_warning():
    rng = np.random.RandomState(0)
    X = rng.randn(100, 5)
    with pytest.warns(UserWarning, match="grid edge"):
        RMTRidge(64, random_state=0).fit(X, rng.randn(100))  # pure noise: infinite ridge


# =============================================================================================
# AT2: the readout is scikit-learn's Ridge on the same features
# =============================================================================================
@pytest.mark.parametrize("features", ["gaussian", "ternary"])
@pytest.mark.parametrize("N", [48, 300])
def test_at2_coef_equals_sklearn_ridge(features, N):
    X, y = small_problem()
    n = X.shape[0]
    Y2 = np.c_[y, np.cos(X[:, 1])]
    kw = dict(features=features, sparsity=0.3) if features == "ternary" else {}
    for target in (y, Y2):
        model = quiet_fit(RMTRidge(N, random_state=0, **kw), X, target)
        F = model._features(X)
        assert F.shape == (n, N)
        yc = target - target.mean(axis=0)
        ref = Ridge(alpha=n * model.alpha_, fit_intercept=False).fit(F, yc)
        np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
        # the Z = F/sqrt(N) route: alpha = n gamma / N, coef = sqrt(N) beta
        refz = Ridge(alpha=n * model.alpha_ / N, fit_intercept=False).fit(F / math.sqrt(N), yc)
        np.testing.assert_allclose(model.coef_, refz.coef_ / math.sqrt(N), rtol=1e-10,
                                   atol=1e-12)
        np.testing.assert_allclose(model.predict(X), F @ model.coef_.T + target.mean(axis=0),
                                   rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(model.train_mse_, np.mean((yc - F @ model.coef_.T) ** 2),
                                   rtol=1e-10)
        assert model.coef_.shape == ((N,) if target.ndim == 1 else (2, N))


@pytest.mark.parametrize("N", [40, 400])
def test_alpha_zero_is_min_norm(N):
    X, y = small_problem()
    model = quiet_fit(RMTRidge(N, alpha=0.0, random_state=0), X, y)
    F = model._features(X)
    ref = np.linalg.lstsq(F, y - y.mean(), rcond=None)[0]
    np.testing.assert_allclose(model.coef_, ref, rtol=1e-6, atol=1e-8 * np.abs(ref).max())
    assert math.isnan(model.predicted_loo_mse_)
    if N > X.shape[0]:
        assert model.train_mse_ < 1e-12 and model.predicted_train_mse_ < 1e-12


def test_sparse_input_matches_dense():
    X, y = small_problem()
    X[X < 4.0] = 0.0
    dense = quiet_fit(RMTRidge(80, random_state=0), X, y)
    sparse = quiet_fit(RMTRidge(80, random_state=0), sp.csr_matrix(X), y)
    assert sparse.alpha_ == pytest.approx(dense.alpha_, rel=1e-8)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(sparse.predict(sp.csr_matrix(X)), dense.predict(X), rtol=1e-8)
    np.testing.assert_allclose(sparse.predict(X), dense.predict(X), rtol=1e-8)
    rs, rd = sparse.predict_risk(sp.csr_matrix(X[:30]), y[:30]), dense.predict_risk(X[:30], y[:30])
    for key in rd:
        np.testing.assert_allclose(rs[key], rd[key], rtol=1e-7)


def test_standardisation_and_attributes():
    X, y = small_problem()
    model = quiet_fit(RMTRidge(64, alpha=0.1, random_state=0), X, y)
    np.testing.assert_allclose(model.x_mean_, X.mean(0))
    np.testing.assert_allclose(model.tau_, np.mean(np.sum((X - X.mean(0)) ** 2, 1)))
    assert model.intercept_ == pytest.approx(y.mean())
    assert model.alpha_ == 0.1
    n, N = X.shape[0], 64
    # the effective ridge solves t (N - df1(t)) = alpha n, delta = df1/(N - df1)
    Xs = (X - model.x_mean_) / math.sqrt(model.tau_)
    lam = np.linalg.eigvalsh(de.kernel_gram("relu", Xs))
    t = model.effective_alpha_
    df1 = np.sum(lam / (lam + t))
    assert t * (N - df1) == pytest.approx(0.1 * n, rel=1e-9)
    assert model.dof_ == pytest.approx(df1, rel=1e-9)
    assert model.delta_ == pytest.approx(df1 / (N - df1), rel=1e-8)
    assert model.memory_bytes_ == (32 * 64 * 10 + 32 * 64) // 8
    assert model.rank_ == n


def test_risk_path_shapes_and_consistency():
    X, y = small_problem()
    Xt, yt = small_problem(seed=1)
    model = quiet_fit(RMTRidge(64, alpha=0.2, random_state=0), X, y)
    alphas = np.logspace(-3, 1, 5)
    base = model.risk_path(alphas)
    assert set(base) == {"alpha", "n_components", "train_mse", "loo_mse", "gcv_mse",
                         "effective_alpha", "dof"}
    assert base["train_mse"].shape == (5,)
    unlabelled = model.risk_path(alphas, Xt)
    assert "variance" in unlabelled and "test_mse" not in unlabelled
    full = model.risk_path(alphas, Xt, yt, n_components=[16, 64, 256])
    for key in ("train_mse", "loo_mse", "gcv_mse", "effective_alpha", "dof", "variance",
                "bias", "test_mse"):
        assert full[key].shape == (3, 5), key
    np.testing.assert_allclose(full["test_mse"], full["bias"] + full["variance"])
    np.testing.assert_allclose(full["variance"][1], unlabelled["variance"])
    np.testing.assert_allclose(full["train_mse"][1], base["train_mse"])
    point = model.risk_path([0.2], Xt, yt)
    risk = model.predict_risk(Xt, yt)
    assert risk["test_mse"] == pytest.approx(point["test_mse"][0], rel=1e-12)
    assert risk["train_mse"] == pytest.approx(model.predicted_train_mse_, rel=1e-12)
    assert risk["effective_alpha"] == pytest.approx(model.effective_alpha_, rel=1e-12)
    # gamma = 0 in a path: ridgeless limits, criteria undefined
    zero = model.risk_path([0.0, 0.1], Xt, yt, n_components=256)
    assert np.isnan(zero["loo_mse"][0]) and np.isfinite(zero["test_mse"][0])


def test_multi_output_theory_is_average():
    X, y = small_problem()
    Xt, yt = small_problem(seed=1)
    Y = np.c_[y, np.sin(X[:, 2])]
    Yt = np.c_[yt, np.sin(Xt[:, 2])]
    both = quiet_fit(RMTRidge(64, alpha=0.05, random_state=0), X, Y)
    assert both.predict(Xt).shape == (120, 2)
    single = [quiet_fit(RMTRidge(64, alpha=0.05, random_state=0), X, Y[:, k]) for k in range(2)]
    rb = both.predict_risk(Xt, Yt)
    rs = [m.predict_risk(Xt, Yt[:, k]) for k, m in enumerate(single)]
    for key in ("test_mse", "train_mse", "bias", "variance"):
        assert rb[key] == pytest.approx(0.5 * (rs[0][key] + rs[1][key]), rel=1e-10)
    np.testing.assert_allclose(both.coef_, np.vstack([m.coef_ for m in single]), rtol=1e-10)


def test_gcv_selection():
    X, y = small_problem()
    model = quiet_fit(RMTRidge(64, alpha_selection="gcv", random_state=0), X, y)
    path = model.risk_path(model.alpha_ * np.logspace(-0.5, 0.5, 41))
    assert abs(np.argmin(path["gcv_mse"]) - 20) <= 1
    loo = quiet_fit(RMTRidge(64, random_state=0), X, y)
    path = loo.risk_path(loo.alpha_ * np.logspace(-0.5, 0.5, 41))
    assert abs(np.argmin(path["loo_mse"]) - 20) <= 1
    assert loo.predicted_loo_mse_ == pytest.approx(path["loo_mse"][20], rel=1e-10)


# =============================================================================================
# AT10: cost structure
# =============================================================================================
def test_at10_one_eigendecomposition(monkeypatch):
    X, y = gmm(128)
    calls = {"eigh": 0, "solve": 0}
    eigh, solve = de.kernel_eigh, rr._solve_readout

    def counting_eigh(*args, **kwargs):
        calls["eigh"] += 1
        return eigh(*args, **kwargs)

    def counting_solve(*args, **kwargs):
        calls["solve"] += 1
        return solve(*args, **kwargs)

    monkeypatch.setattr(de, "kernel_eigh", counting_eigh)
    monkeypatch.setattr(rr, "_solve_readout", counting_solve)
    model = RMTRidge(256, random_state=1000).fit(X, y)
    assert calls == {"eigh": 1, "solve": 1}
    loaded = pickle.loads(pickle.dumps(model))
    Xt, yt = gmm(128, seed=1)
    path = loaded.risk_path(np.logspace(-5, 3, 49), Xt, yt,
                            n_components=np.linspace(32, 1024, 10).astype(int))
    assert path["test_mse"].shape == (10, 49)
    assert calls == {"eigh": 2, "solve": 1}
    loaded.predict_risk(Xt, yt)  # the recomputed spectrum is kept in the device cache
    model.risk_path(np.logspace(-5, 3, 49), Xt, yt, n_components=[64, 128])
    assert calls["eigh"] == 2  # the fitted model holds U


# =============================================================================================
# AT2 (slow): the mean of many RF predictors is kernel ridge with the effective ridge
# =============================================================================================
@pytest.mark.slow
def test_at2_mean_predictor_is_kernel_ridge():
    n = 512
    X, y = gmm(n)
    Xt, _ = gmm(n, seed=1)
    gaps, preds = {}, []
    model = None
    for m in range(64):
        model = RMTRidge(n // 2, alpha=0.1, random_state=1000 + m).fit(X, y)
        preds.append(model.predict(Xt))
        if m + 1 in (4, 16, 64):
            Xs = (X - model.x_mean_) / math.sqrt(model.tau_)
            Xts = (Xt - model.x_mean_) / math.sqrt(model.tau_)
            krr = KernelRidge(alpha=model.effective_alpha_, kernel="precomputed")
            krr.fit(de.kernel_gram("relu", Xs), y - y.mean())
            ref = krr.predict(de.kernel_cross("relu", Xts, Xs)) + y.mean()
            mean = np.mean(preds, axis=0)
            gaps[m + 1] = np.linalg.norm(mean - ref) / np.linalg.norm(ref - y.mean())
    assert gaps[64] / gaps[4] <= 0.35, gaps  # observed 0.24-0.26


# =============================================================================================
# real data: digits even vs odd
# =============================================================================================
def test_digits_predicted_vs_realised():
    Xtr, Xte, ytr, yte = digits()
    risks, realised = [], []
    for m in range(3):
        model = RMTRidge(2048, alpha=0.1, random_state=m).fit(Xtr, ytr)
        realised.append(np.mean((model.predict(Xte) - yte) ** 2))
        risks.append(model.predict_risk(Xte, yte)["test_mse"])
    assert np.ptp(risks) == 0.0
    mean, se = np.mean(realised), np.std(realised, ddof=1) / math.sqrt(3)
    assert abs(risks[0] - mean) <= 0.06 * mean + 3 * se  # observed < 1%
    assert model.score(Xte, yte) > 0.7


@pytest.mark.slow
@pytest.mark.parametrize("ratio", [0.5, 2, 8])
def test_at9_auto_on_digits(ratio):
    Xtr, Xte, ytr, yte = digits()
    n = Xtr.shape[0]
    N = int(ratio * n)
    grid = np.logspace(-6, 3, 55)
    est = RMTRidge(N, random_state=0).fit(Xtr, ytr)
    path = est.risk_path(grid, Xte, yte)
    best_theory = grid[np.argmin(path["test_mse"])]
    assert 1 / 3 <= est.alpha_ / best_theory <= 3
    yc, ytc = ytr - ytr.mean(), yte - ytr.mean()
    mse_grid, mse_auto = [], []
    for m in range(3):
        model = est if m == 0 else RMTRidge(N, random_state=m).fit(Xtr, ytr)
        assert model.alpha_ == est.alpha_
        _, te = ridge_errors(model._features(Xtr), model._features(Xte), yc, ytc,
                             np.r_[grid, est.alpha_])
        mse_grid.append(te[:-1])
        mse_auto.append(np.mean((model.predict(Xte) - yte) ** 2))
        assert mse_auto[-1] == pytest.approx(te[-1], rel=1e-8)
    excess = np.mean(mse_auto) / np.min(np.mean(mse_grid, axis=0)) - 1
    assert excess <= 0.02, excess  # observed <= 0.1%


# =============================================================================================
# AT8 (slow): alpha="auto" on the Gaussian mixture, against the theory and 5-fold CV
# =============================================================================================
def _eigen_cv(F, yc, gammas, n_folds=5):
    """5-fold CV of the readout in the gamma scale (sklearn alpha = n_train gamma).

    One eigendecomposition per fold.
    """
    from sklearn.model_selection import KFold

    err = np.zeros(len(gammas))
    for train, val in KFold(n_folds, shuffle=True, random_state=0).split(F):
        _, te = ridge_errors(F[train], F[val], yc[train] - yc[train].mean(),
                             yc[val] - yc[train].mean(), gammas)
        err += te * len(val)
    return err / len(yc)


@pytest.mark.slow
@pytest.mark.parametrize("act", ["relu", "erf"])
def test_at8_auto_on_gmm(act):
    n = 1024
    X, y = gmm(n)
    Xt, yt = gmm(n, seed=1)
    grid = np.logspace(-5, 3, 49)
    step = math.log10(grid[1] / grid[0])
    est = RMTRidge(2 * n, activation=act, random_state=1000).fit(X, y)
    path = est.risk_path(grid, Xt, yt)
    best_theory = grid[np.argmin(path["test_mse"])]
    assert abs(math.log10(est.alpha_ / best_theory)) <= step * 1.01
    yc, ytc = y - y.mean(), yt - y.mean()
    F = est._features(X)
    cv = _eigen_cv(F, yc, grid)
    assert abs(math.log10(est.alpha_ / grid[np.argmin(cv)])) <= step * 1.01
    mse_grid, mse_auto = [], []
    for m in range(4):
        model = est if m == 0 else RMTRidge(2 * n, activation=act,
                                            random_state=1000 + m).fit(X, y)
        Fm = F if m == 0 else model._features(X)
        _, te = ridge_errors(Fm, model._features(Xt), yc, ytc, np.r_[grid, model.alpha_])
        mse_grid.append(te[:-1])
        mse_auto.append(te[-1])
    excess = np.mean(mse_auto) / np.min(np.mean(mse_grid, axis=0)) - 1
    assert excess <= 0.01, excess  # observed 0.0%


# =============================================================================================
# AT10 (slow): timing against GridSearchCV
# =============================================================================================
@pytest.mark.slow
def test_at10_faster_than_gridsearch():
    from sklearn.model_selection import GridSearchCV
    from threadpoolctl import threadpool_limits

    n = 1024
    X, y = gmm(n)
    grid = np.logspace(-5, 3, 49)
    with threadpool_limits(1):
        start = time.perf_counter()
        est = RMTRidge(2 * n, random_state=1000).fit(X, y)
        t_auto = time.perf_counter() - start
        F = est._features(X)
        # 7 of the 49 alphas, extrapolated (a full run costs ~45 s single-threaded)
        sub = grid[::8][:7]
        search = GridSearchCV(Ridge(fit_intercept=False), {"alpha": 0.8 * n * sub}, cv=5,
                              scoring="neg_mean_squared_error")
        start = time.perf_counter()
        search.fit(F, y - y.mean())
        t_grid = (time.perf_counter() - start) * len(grid) / len(sub)
    assert t_grid / t_auto >= 5, (t_auto, t_grid)  # observed 16-20x
