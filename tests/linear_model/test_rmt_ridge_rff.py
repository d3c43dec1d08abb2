"""Random Fourier features in RMTRidge: the two-block theory (skrmt._theory._rmt_ridge_rff).

Acceptance test AT12 of ``rmt_ridge.md`` §11 (r-parametrisation = joint fixed point, ``K_s = 0``
gives one block, simulation as in §7, peak at ``2N = n``) at the DE level on raw
``make_gmm(..., preset="pm2")`` data with target 2y - 1, then ``RMTRidge(activation="rff")``:
the readout against scikit-learn's Ridge, predicted against realised errors, ``alpha="auto"``,
the scikit-learn contract. The literal joint fixed point and the literal 2 x 2 algebra of §7
live here as oracles only.
"""

import functools
import math
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.utils import estimator_checks as ec

from skrmt._theory import _rmt_ridge_de as de
from skrmt._theory import _rmt_ridge_rff as rf
from skrmt._theory._activations import ACTIVATION_NAMES, resolve_activation
from skrmt.datasets import make_gmm
from skrmt.linear_model import RMTRidge

from _helpers import check_accuracy, quiet_fit, ridge_errors, small_problem


# =============================================================================================
# data and oracles
# =============================================================================================
@functools.lru_cache(maxsize=None)
def gmm_task(n, p=None, seeds=(0, 1)):
    """Raw pm2 mixture, train and test, targets centred with the training mean. The feature
    draws of the simulations use other seeds (100 + m)."""
    X, y = make_gmm(n, n if p is None else p, preset="pm2", random_state=seeds[0])
    Xt, yt = make_gmm(n, n if p is None else p, preset="pm2", random_state=seeds[1])
    y, yt = 2.0 * y - 1.0, 2.0 * yt - 1.0
    ym = y.mean()
    return X, Xt, y - ym, yt - ym


@functools.lru_cache(maxsize=None)
def setup(n):
    X, Xt, yc, ytc = gmm_task(n)
    return rf.RFFKernels.from_data(X, yc), rf.RFFTest.from_data(Xt, X, ytc)


def joint_fixed_point(Kc, Ks, Nc, Ns, gamma, rtol=1e-14, max_iter=20000):
    """The literal fixed point delta_a <- (1/n) tr K_a Q(delta), one n x n inverse each."""
    n = Kc.shape[0]
    dc = ds = 0.0
    for it in range(1, max_iter + 1):
        Q = np.linalg.inv((Nc / n) * Kc / (1 + dc) + (Ns / n) * Ks / (1 + ds)
                          + gamma * np.eye(n))
        new_c, new_s = np.sum(Kc * Q) / n, np.sum(Ks * Q) / n
        done = abs(new_c - dc) <= rtol * new_c and abs(new_s - ds) <= rtol * new_s
        dc, ds = new_c, new_s
        if done:
            return dc, ds, Q, it
    raise AssertionError("the oracle fixed point did not converge")


def literal_errors(kern, test, Nc, Ns, gamma):
    """§7 with literal matrices: D, S, M = D (I - S D)^{-1}, u, v, B_a (P = Psi_t Q).

    With unequal widths each block's N_a enters D (this file's generalisation; equal widths
    give §7 exactly).
    """
    Kc, Ks, y = kern.Kc, kern.Ks, kern.y[:, 0]
    n, nt = Kc.shape[0], test.Kc.shape[0]
    dc, ds, Q, it = joint_fixed_point(Kc, Ks, Nc, Ns, gamma)
    K, Kt, d, dg, Na = [Kc, Ks], [test.Kc, test.Ks], [dc, ds], [test.dc, test.ds], [Nc, Ns]
    D = np.diag([(Na[a] / n) / (1 + d[a]) ** 2 for a in range(2)])
    S = np.array([[np.trace(K[a] @ Q @ K[b] @ Q) / n for b in range(2)] for a in range(2)])
    M = D @ np.linalg.inv(np.eye(2) - S @ D)
    u = np.array([y @ Q @ K[a] @ Q @ y / n for a in range(2)])
    v = np.array([np.trace(K[a] @ Q @ Q) / n for a in range(2)])
    Qy = Q @ y
    train = gamma**2 / n * (Qy @ Qy) + gamma**2 * (u @ M @ v)
    P = sum((Na[a] / n) * Kt[a] / (1 + d[a]) for a in range(2)) @ Q
    B = np.array([(dg[a].sum() - 2 * np.trace(P @ Kt[a].T) + np.trace(P @ K[a] @ P.T)) / nt
                  for a in range(2)])
    res = test.y[:, 0] - P @ y
    return {"delta_c": dc, "delta_s": ds, "train_mse": train,
            "test_mse": res @ res / nt + u @ M @ B, "iterations": it}


def simulate(X, Xt, yc, ytc, widths, gammas, M, seed=100):
    """Realised train/test MSE of the RFF ridge, arrays (M, len(widths), len(gammas)).

    ``widths`` holds (N_c, N_s) pairs; one W per draw serves all (its first rows are a draw of
    any smaller width); one eigendecomposition per (draw, width) serves every gamma.
    """
    gammas = np.asarray(gammas, dtype=float)
    tr = np.empty((M, len(widths), len(gammas)))
    te = np.empty_like(tr)
    rows = max(max(w) for w in widths)
    for m in range(M):
        W = np.random.RandomState(seed + m).standard_normal((rows, X.shape[1]))
        T, Tt = X @ W.T, Xt @ W.T
        for j, (Nc, Ns) in enumerate(widths):
            F = np.hstack([np.cos(T[:, :Nc]), np.sin(T[:, :Ns])])
            Ft = np.hstack([np.cos(Tt[:, :Nc]), np.sin(Tt[:, :Ns])])
            tr[m, j], te[m, j] = ridge_errors(F, Ft, yc, ytc, gammas)
    return tr, te






# =============================================================================================
# AT12: the r-parametrisation is the joint fixed point
# =============================================================================================
def test_at12_r_parametrisation_equals_joint_fixed_point():
    n = 128
    kern, test = setup(n)
    widths = [(16, 16), (32, 32), (64, 64), (128, 128), (33, 32), (48, 16)]
    for Nc, Ns in widths:
        for gamma in (1e-3, 1e-2, 0.1, 1.0):
            pt = rf.solve_rff(kern, gamma, Nc, n_sin=Ns)
            assert pt.converged and pt.n_eval <= 9  # observed 4-6 from a cold start
            got = rf.rff_point_errors(kern, pt, test=test)
            ref = literal_errors(kern, test, Nc, Ns, gamma)
            for key in ("delta_c", "delta_s", "train_mse", "test_mse"):
                val = got[key] if key in got else getattr(pt, key)
                assert val == pytest.approx(ref[key], rel=1e-8), (Nc, Ns, gamma, key)
            # the substitution itself: Q = (t/gamma) (K_c + r K_s + t I)^{-1}
            assert pt.t == pytest.approx(gamma * n * (1 + ref["delta_c"]) / Nc, rel=1e-8)
            assert pt.r == pytest.approx(Ns / Nc * (1 + ref["delta_c"]) / (1 + ref["delta_s"]),
                                         rel=1e-8)
            assert got["test_mse"] == pytest.approx(got["bias"] + got["variance"], rel=1e-12)


def test_at12_sin_block_zero_gives_one_block():
    """K_s = 0 (any N_s), or N_s = 0 (the cos block alone): the one-block formulas."""
    X, Xt, yc, ytc = gmm_task(256)
    n = X.shape[0]
    gammas = [0.0, 1e-4, 1e-2, 1.0]
    for act, zero_sin in (("relu", "kernel"), ("cos", "width")):
        Phi, Phit, dt = de.kernel_gram(act, X), de.kernel_cross(act, Xt, X), de.kernel_diag(act,
                                                                                             Xt)
        spec = de.KernelSpectrum.from_kernel(Phi, yc)
        one_test = de.TestProjection.from_kernels(spec.U, Phit, dt, ytc)
        if zero_sin == "kernel":
            kern = rf.RFFKernels(Kc=Phi, Ks=np.zeros_like(Phi), y=yc)
            test = rf.RFFTest(Kc=Phit, Ks=np.zeros_like(Phit), dc=dt, ds=np.zeros_like(dt),
                              y=ytc)
        else:
            kern, test = setup(256)
        for N in (64, 256, 512):
            one = de.risk_grid(spec, gammas, N, test=one_test)
            two = rf.rff_risk_grid(kern, gammas, N, n_sin=N if zero_sin == "kernel" else 0,
                                   test=test)
            assert np.all(two["n_eval"] == 1)
            for key in ("effective_alpha", "dof", "train_mse", "test_mse", "bias", "variance",
                        "loo_mse", "gcv_mse"):
                sl = slice(1, None) if key in ("loo_mse", "gcv_mse") else slice(None)
                np.testing.assert_allclose(two[key][sl], one[key][sl], rtol=1e-10,
                                           atol=1e-14, err_msg=f"{act} {N} {key}")
    assert n == 256


def test_ridgeless_limits():
    """gamma = 0 (t = 0 when 2N > n, the root of tr K_c R = N_c when 2N < n) = gamma = 1e-12."""
    kern, test = setup(256)
    for N in (64, 96, 192, 256):
        zero = rf.rff_point_errors(kern, rf.solve_rff(kern, 0.0, N), test=test)
        tiny = rf.rff_point_errors(kern, rf.solve_rff(kern, 1e-12, N), test=test)
        for key in ("test_mse", "bias", "variance"):
            assert zero[key] == pytest.approx(tiny[key], rel=1e-6), (N, key)
        if 2 * N > 256:
            assert zero["effective_alpha"] == 0.0 and zero["train_mse"] == 0.0
            assert tiny["train_mse"] < 1e-12
        else:
            assert zero["effective_alpha"] > 0
            assert zero["train_mse"] == pytest.approx(tiny["train_mse"], rel=1e-6)
    # the pole: N_c + N_s = rank K_r = n, one feature fewer is finite
    for Nc, Ns in ((128, 128), (129, 127)):
        assert rf.rff_point_errors(kern, rf.solve_rff(kern, 0.0, Nc, n_sin=Ns),
                                   test=test)["test_mse"] == np.inf
    below = rf.rff_point_errors(kern, rf.solve_rff(kern, 0.0, 128, n_sin=127), test=test)
    assert 10 < below["test_mse"] < np.inf and below["effective_alpha"] > 0


def test_solver_cost_and_convergence_warning():
    kern, _ = setup(128)
    gammas = np.logspace(-6, 3, 25)
    res = rf.rff_risk_grid(kern, gammas[::-1], 64, loo=False)
    # warm start along the sorted grid: <= 6 eigendecompositions a point, ~3 on average
    assert res["n_eval"].max() <= 6 and res["n_eval"].mean() <= 4, res["n_eval"]
    # results do not depend on the order of the grid (it is sorted internally)
    again = rf.rff_risk_grid(kern, gammas, 64, loo=False)
    np.testing.assert_allclose(again["train_mse"], res["train_mse"][::-1], rtol=1e-8)
    np.testing.assert_allclose(again["r"], res["r"][::-1], rtol=1e-9)
    # r -> 1 (both deltas -> 0) as gamma grows; ~0.73 at small gamma here (n = 2N = 128)
    assert np.all((again["r"] > 0.6) & (again["r"] < 1.01)) and abs(again["r"][-1] - 1) < 1e-3
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        pt = rf.solve_rff(kern, 0.01, 64, max_eval=2)
    assert not pt.converged
    with pytest.raises(ValueError, match="gamma"):
        rf.solve_rff(kern, -1.0, 64)
    with pytest.raises(ValueError, match="n_frequencies"):
        rf.solve_rff(kern, 1.0, 0)


# =============================================================================================
# the selection criteria
# =============================================================================================
def test_loo_equals_literal_leave_one_out():
    """Two-block RMT-LOO = exact LOO of KRR(K_r, t) + q . Bt_a at each held-out point, the
    latter by literal deletion (Bt_a(i) = (R G_a R)_ii / R_ii^2 in the solver)."""
    X, _, yc, _ = gmm_task(256)
    X, yc = X[:60], yc[:60] - yc[:60].mean()
    kern = rf.RFFKernels.from_data(X, yc)
    n = 60
    for gamma, N in ((1e-2, 15), (0.3, 60), (0.05, 31)):
        pt = rf.solve_rff(kern, gamma, N)
        res = rf.rff_point_errors(kern, pt, loo=True, gcv=True)
        t, r = pt.t, pt.r
        Kr = kern.Kc + r * kern.Ks
        blocks = (kern.Kc, r * kern.Ks)
        bias, post = [], []
        for i in range(n):
            keep = np.arange(n) != i
            Rm = np.linalg.inv(Kr[np.ix_(keep, keep)] + t * np.eye(n - 1))
            k = Kr[keep, i]
            bias.append((yc[i] - k @ Rm @ yc[keep]) ** 2)
            post.append([G[i, i] - 2 * k @ Rm @ G[keep, i] + k @ Rm @ G[np.ix_(keep, keep)] @ Rm @ k
                         for G in blocks])
        ref = np.mean(bias) + res["q"] @ np.mean(post, axis=0)
        assert res["loo_mse"] == pytest.approx(ref, rel=1e-9)
        R = np.linalg.inv(Kr + t * np.eye(n))
        assert res["gcv_mse"] == pytest.approx(res["train_mse"] / (t * np.trace(R) / n) ** 2,
                                               rel=1e-10)


def test_select_alpha_refines_and_warns_at_edge():
    kern, _ = setup(128)
    N = 128
    alpha, info = rf.rff_select_alpha(kern, N)
    assert not info["at_edge"] and info["grid"].size == 25
    assert info["value"] <= info["values"].min()
    assert info["n_eval"] <= 4 * (25 + info["n_refine"])
    dense_grid = alpha * np.logspace(-0.3, 0.3, 25)
    dense = rf.rff_risk_grid(kern, dense_grid, N, loo=True, gcv=False)["loo_mse"]
    assert abs(math.log10(dense_grid[np.argmin(dense)] / alpha)) <= 0.03
    gcv_alpha, _ = rf.rff_select_alpha(kern, N, criterion="gcv")
    assert gcv_alpha > 0
    noise = np.random.RandomState(0).randn(kern.n)
    noisy = rf.RFFKernels(Kc=kern.Kc, Ks=kern.Ks, y=noise - noise.mean())
    with pytest.warns(UserWarning, match="grid edge"):
        _, info = rf.rff_select_alpha(noisy, N)
    assert info["at_edge"]
    with pytest.raises(ValueError, match="criterion"):
        rf.rff_select_alpha(kern, N, criterion="cv")


# =============================================================================================
# AT12: accuracy against simulation, and the peak at 2N = n
# =============================================================================================
_GAMMAS = (1e-3, 1e-2, 1e-1, 1.0)


@pytest.mark.slow
def test_at12_simulation_512():
    """n = p = 512, 8 draws, 2N/n in {1/4, 1/2, 1, 2}: test within 10% + 3 SE, train 15% + 3 SE."""
    n = 512
    X, Xt, yc, ytc = gmm_task(n)
    Ns = (n // 8, n // 4, n // 2, n)
    tr, te = simulate(X, Xt, yc, ytc, [(N, N) for N in Ns], _GAMMAS, 8)
    kern, test = setup(n)
    res = rf.rff_risk_grid(kern, _GAMMAS, np.array(Ns, float), test=test, loo=False,
                           gcv=False)
    for j in range(len(Ns)):
        check_accuracy(res["test_mse"][j], te[:, j], 0.10)  # observed max 3.4%
        check_accuracy(res["train_mse"][j], tr[:, j], 0.15)  # observed max 10.7% (0.7 SE)
    # the peak at 2N = n: the DE and the simulation agree there too (3.45 vs 3.43)
    assert res["test_mse"][2, 0] > 3.0


def test_at12_simulation_256_unequal_blocks():
    """n = p = 256, 8 draws; equal blocks and the unequal ones of odd feature counts."""
    n = 256
    X, Xt, yc, ytc = gmm_task(n)
    widths = [(32, 32), (128, 128), (65, 64), (96, 32)]
    tr, te = simulate(X, Xt, yc, ytc, widths, _GAMMAS, 8)
    kern, test = setup(n)
    for j, (Nc, Ns) in enumerate(widths):
        res = rf.rff_risk_grid(kern, _GAMMAS, Nc, n_sin=Ns, test=test, loo=False, gcv=False)
        check_accuracy(res["test_mse"], te[:, j], 0.10)
        check_accuracy(res["train_mse"], tr[:, j], 0.15)


def test_at12_peak_at_2n_equals_n():
    kern, test = setup(512)
    ratios = np.array([0.5, 0.75, 0.9, 1.0, 1.1, 1.5, 2.0])  # 2N / n
    res = rf.rff_risk_grid(kern, [1e-3], ratios * 256, test=test, loo=False, gcv=False)
    curve = res["test_mse"][:, 0]
    assert ratios[np.argmax(curve)] == 1.0
    assert curve[3] / curve[-1] > 4  # observed 3.45 / 0.68
    assert np.all(np.diff(curve[:4]) > 0) and np.all(np.diff(curve[3:]) < 0)
    assert res["train_mse"][-1, 0] < 1e-3 * res["train_mse"][0, 0]


# =============================================================================================
# RMTRidge(activation="rff")
# =============================================================================================
@functools.lru_cache(maxsize=None)
def data(n=256, p=128):
    """make_gmm with seeds >= 1000 (the feature draws use seeds 0..7: RandomState(s) of the
    data and of W must differ)."""
    X, y = make_gmm(n, p, preset="pm2", random_state=1000)
    Xt, yt = make_gmm(n, p, preset="pm2", random_state=1001)
    return X, 2.0 * y - 1.0, Xt, 2.0 * yt - 1.0






def test_check_estimator():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ec.check_estimator(RMTRidge(n_components=128, activation="rff", random_state=0))


def test_rff_is_not_an_activation():
    X, y = small_problem()
    assert "rff" not in ACTIVATION_NAMES
    with pytest.raises(ValueError):
        resolve_activation("rff")
    with pytest.raises(ValueError, match="features='ternary'"):
        RMTRidge(64, activation="rff", features="ternary").fit(X, y)
    with pytest.raises(ValueError, match="activation"):
        RMTRidge(64, activation="rfff").fit(X, y)


@pytest.mark.parametrize("N", [48, 49, 300])
def test_coef_equals_sklearn_ridge_on_cos_sin_features(N):
    X, y = small_problem()
    n = X.shape[0]
    Y2 = np.c_[y, np.cos(X[:, 1])]
    for target in (y, Y2):
        model = quiet_fit(RMTRidge(N, activation="rff", random_state=0), X, target)
        n_cos, n_sin = (N + 1) // 2, N // 2
        # W: ceil(N/2) Gaussian frequencies; F = [cos(X_std W^T), sin(X_std W[:N//2]^T)]
        W = np.random.RandomState(0).standard_normal((n_cos, X.shape[1]))
        np.testing.assert_array_equal(model.components_, W)
        T = (X - X.mean(0)) / math.sqrt(model.tau_) @ W.T
        F = model._features(X)
        np.testing.assert_allclose(F, np.hstack([np.cos(T), np.sin(T[:, :n_sin])]), rtol=1e-12,
                                   atol=1e-12)
        yc = target - target.mean(axis=0)
        ref = Ridge(alpha=n * model.alpha_, fit_intercept=False).fit(F, yc)
        np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(model.predict(X), F @ model.coef_.T + target.mean(axis=0),
                                   rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(model.train_mse_, np.mean((yc - F @ model.coef_.T) ** 2),
                                   rtol=1e-10)
        assert model.coef_.shape == ((N,) if target.ndim == 1 else (2, N))
    assert model.memory_bytes_ == (32 * n_cos * X.shape[1] + 32 * N * 2) // 8


def test_fitted_attributes_solve_the_two_block_equations():
    X, y = small_problem()
    model = quiet_fit(RMTRidge(64, activation="rff", alpha=0.05, random_state=0), X, y)
    n, Nc = X.shape[0], 32
    Xs = (X - model.x_mean_) / math.sqrt(model.tau_)
    Kc, Ks = de.kernel_gram("cos", Xs), de.kernel_gram("sin", Xs)
    np.testing.assert_allclose(Kc + Ks, np.exp(-0.5 * ((Xs[:, None] - Xs[None]) ** 2).sum(-1)),
                               rtol=1e-10)
    dc, ds, _, _ = joint_fixed_point(Kc, Ks, Nc, Nc, 0.05)
    np.testing.assert_allclose(model.block_deltas_, [dc, ds], rtol=1e-8)
    assert model.delta_ == pytest.approx(dc, rel=1e-8)
    assert model.block_ratio_ == pytest.approx((1 + dc) / (1 + ds), rel=1e-8)
    t, r = model.effective_alpha_, model.block_ratio_
    R = np.linalg.inv(Kc + r * Ks + t * np.eye(n))
    assert t * (Nc - np.sum(Kc * R)) == pytest.approx(0.05 * n, rel=1e-8)
    assert model.dof_ == pytest.approx(np.trace((Kc + r * Ks) @ R), rel=1e-8)
    assert model.rank_ == n


def test_predict_risk_matches_simulation():
    """predict_risk vs the mean realised error over 8 draws of W (seeds 0..7)."""
    X, y, Xt, yt = data()
    for N, alpha in ((128, 0.05), (512, 0.01), (512, 1.0)):
        models = [RMTRidge(N, activation="rff", alpha=alpha, random_state=s).fit(X, y)
                  for s in range(8)]
        risks = [m.predict_risk(Xt, yt) for m in models[:2]]
        assert risks[0] == risks[1]  # the theory does not see the draw
        test = np.array([np.mean((m.predict(Xt) - yt) ** 2) for m in models])
        train = np.array([m.train_mse_ for m in models])
        check_accuracy(np.array([risks[0]["test_mse"]]), test[:, None], 0.10)
        check_accuracy(np.array([models[0].predicted_train_mse_]), train[:, None], 0.15)
        assert risks[0]["train_mse"] == models[0].predicted_train_mse_


def test_auto_alpha():
    X, y, Xt, yt = data()
    est = RMTRidge(512, activation="rff", random_state=0).fit(X, y)
    grid = np.logspace(-4, 1, 21)
    path = est.risk_path(grid, Xt, yt)
    assert np.all((path["block_ratio"] > 0.5) & (path["block_ratio"] < 2))
    # the LOO choice costs at most 2% of the best predicted test error on the grid
    chosen = est.predict_risk(Xt, yt)["test_mse"]
    assert chosen <= 1.02 * path["test_mse"].min(), (est.alpha_, chosen, path["test_mse"].min())
    assert grid[0] < est.alpha_ < grid[-1]
    assert est.predicted_loo_mse_ == pytest.approx(
        est.risk_path([est.alpha_])["loo_mse"][0], rel=1e-8)
    gcv = RMTRidge(512, activation="rff", alpha_selection="gcv", random_state=0).fit(X, y)
    assert gcv.alpha_ != est.alpha_ and gcv.predict_risk(Xt, yt)["test_mse"] <= 1.1 * chosen


def test_risk_path_shapes_and_consistency():
    X, y = small_problem()
    Xt, yt = small_problem(seed=1)
    model = quiet_fit(RMTRidge(64, activation="rff", alpha=0.2, random_state=0), X, y)
    alphas = np.logspace(-3, 1, 5)
    base = model.risk_path(alphas)
    assert set(base) == {"alpha", "n_components", "train_mse", "loo_mse", "gcv_mse",
                         "effective_alpha", "dof", "block_ratio"}
    assert base["train_mse"].shape == (5,)
    unlabelled = model.risk_path(alphas, Xt)
    assert "variance" in unlabelled and "test_mse" not in unlabelled
    full = model.risk_path(alphas, Xt, yt, n_components=[16, 64, 255])
    for key in ("train_mse", "loo_mse", "gcv_mse", "effective_alpha", "dof", "variance",
                "bias", "test_mse", "block_ratio"):
        assert full[key].shape == (3, 5), key
    np.testing.assert_allclose(full["test_mse"], full["bias"] + full["variance"])
    np.testing.assert_allclose(full["variance"][1], unlabelled["variance"], rtol=1e-8)
    np.testing.assert_allclose(full["train_mse"][1], base["train_mse"], rtol=1e-8)
    # the odd width 255: 128 cos and 127 sin features
    kern = rf.RFFKernels.from_data((X - model.x_mean_) / math.sqrt(model.tau_), y - y.mean())
    odd = rf.rff_risk_grid(kern, alphas, 128, n_sin=127, loo=False, gcv=False)
    np.testing.assert_allclose(full["train_mse"][2], odd["train_mse"], rtol=1e-8)
    point = model.risk_path([0.2], Xt, yt)
    risk = model.predict_risk(Xt, yt)
    assert risk["test_mse"] == pytest.approx(point["test_mse"][0], rel=1e-8)
    assert risk["train_mse"] == pytest.approx(model.predicted_train_mse_, rel=1e-12)
    assert risk["effective_alpha"] == pytest.approx(model.effective_alpha_, rel=1e-12)
    zero = model.risk_path([0.0, 0.1], Xt, yt, n_components=256)
    assert np.isnan(zero["loo_mse"][0]) and np.isfinite(zero["test_mse"][0])
    assert zero["train_mse"][0] == 0.0


def test_multi_output_theory_is_average():
    X, y = small_problem()
    Xt, yt = small_problem(seed=1)
    Y, Yt = np.c_[y, np.sin(X[:, 2])], np.c_[yt, np.sin(Xt[:, 2])]
    both = quiet_fit(RMTRidge(64, activation="rff", alpha=0.05, random_state=0), X, Y)
    single = [quiet_fit(RMTRidge(64, activation="rff", alpha=0.05, random_state=0), X, Y[:, k])
              for k in range(2)]
    rb = both.predict_risk(Xt, Yt)
    rs = [m.predict_risk(Xt, Yt[:, k]) for k, m in enumerate(single)]
    for key in ("test_mse", "train_mse", "bias", "variance"):
        assert rb[key] == pytest.approx(0.5 * (rs[0][key] + rs[1][key]), rel=1e-10)
    assert both.predicted_loo_mse_ == pytest.approx(
        0.5 * (single[0].predicted_loo_mse_ + single[1].predicted_loo_mse_), rel=1e-10)
    np.testing.assert_allclose(both.coef_, np.vstack([m.coef_ for m in single]), rtol=1e-10)


def test_pickle_recomputes_locally_and_methods_do_not_mutate():
    X, y = small_problem()
    Xt, yt = small_problem(seed=1)
    model = quiet_fit(RMTRidge(96, activation="rff", random_state=0), X, y)
    before = model.predict_risk(Xt, yt)
    path_before = model.risk_path([1e-3, 0.1, 1.0], Xt, yt, n_components=[32, 96])
    blob = pickle.dumps(model)
    assert len(blob) < 0.3 * len(pickle.dumps(model.__dict__))
    loaded = pickle.loads(blob)
    assert "_rff_kernels" not in loaded.__dict__ and "_rff_point" not in loaded.__dict__
    np.testing.assert_array_equal(loaded.predict(Xt), model.predict(Xt))
    for est in (loaded, model):
        state = dict(est.__dict__)
        after = est.predict_risk(Xt, yt)
        path_after = est.risk_path([1e-3, 0.1, 1.0], Xt, yt, n_components=[32, 96])
        assert set(est.__dict__) == set(state)
        assert all(est.__dict__[k] is state[k] for k in state)
        for key in before:
            np.testing.assert_allclose(after[key], before[key], rtol=1e-8)
        for key in path_before:
            np.testing.assert_allclose(path_after[key], path_before[key], rtol=1e-8)


def test_float32_sparse_and_peak_warning():
    X, y = small_problem()
    m64 = quiet_fit(RMTRidge(64, activation="rff", random_state=0), X, y)
    m32 = quiet_fit(RMTRidge(64, activation="rff", random_state=0), X.astype(np.float32), y)
    pred = m32.predict(X.astype(np.float32))
    assert pred.dtype == np.float32 and m32.coef_.dtype == np.float32
    np.testing.assert_allclose(pred, m64.predict(X), rtol=1e-4, atol=1e-4)
    Xz = X.copy()
    Xz[Xz < 4.0] = 0.0
    dense = quiet_fit(RMTRidge(80, activation="rff", alpha=0.1, random_state=0), Xz, y)
    sparse = quiet_fit(RMTRidge(80, activation="rff", alpha=0.1, random_state=0),
                       sp.csr_matrix(Xz), y)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-7, atol=1e-9)
    rs, rd = sparse.predict_risk(sp.csr_matrix(Xz[:30]), y[:30]), dense.predict_risk(Xz[:30],
                                                                                     y[:30])
    for key in rd:
        np.testing.assert_allclose(rs[key], rd[key], rtol=1e-7)
    Xp, yp = small_problem(n=128)
    with pytest.warns(UserWarning, match="interpolation peak"):
        RMTRidge(128, activation="rff", alpha=1e-6, random_state=0).fit(Xp, yp)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RMTRidge(128, activation="rff", alpha=1.0, random_state=0).fit(Xp, yp)


def test_torch_cpu_parity():
    pytest.importorskip("torch")
    X, y, Xt, yt = data(192, 64)
    a = quiet_fit(RMTRidge(256, activation="rff", alpha=0.05, random_state=0), X, y)
    b = quiet_fit(RMTRidge(256, activation="rff", alpha=0.05, random_state=0, device="cpu"),
                  X, y)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-8, atol=1e-10 * np.abs(a.coef_).max())
    np.testing.assert_allclose(b.predict(Xt), a.predict(Xt), rtol=1e-8, atol=1e-10)
    for key in ("predicted_train_mse_", "effective_alpha_", "block_ratio_",
                "predicted_loo_mse_"):
        np.testing.assert_allclose(getattr(b, key), getattr(a, key), rtol=1e-8)
    ra, rb = a.predict_risk(Xt, yt), b.predict_risk(Xt, yt)
    for key in ra:
        np.testing.assert_allclose(rb[key], ra[key], rtol=1e-8)


@pytest.mark.gpu
def test_cuda_parity():
    X, y, Xt, yt = data(192, 64)
    a = quiet_fit(RMTRidge(256, activation="rff", random_state=0), X, y)
    b = quiet_fit(RMTRidge(256, activation="rff", random_state=0, device="cuda"), X, y)
    assert b.device_.startswith("cuda")
    np.testing.assert_allclose(b.alpha_, a.alpha_, rtol=1e-8)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-8, atol=1e-10 * np.abs(a.coef_).max())
    ra, rb = a.predict_risk(Xt, yt), b.predict_risk(Xt, yt)
    for key in ra:
        np.testing.assert_allclose(rb[key], ra[key], rtol=1e-8)
