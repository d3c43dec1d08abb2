"""RMTRidge from a dask array by blockwise sufficient statistics equals the in-memory fit."""

import warnings

import numpy as np
import pytest

from skrmt import RMTRidge
from skrmt._backend import NumpyOps
from skrmt._theory import _rmt_ridge_de as _de

pytestmark = pytest.mark.dask
da = pytest.importorskip("dask.array")

from skrmt.scale_out import fit_rmt_ridge, ridge_statistics, spectral_gcv  # noqa: E402
from skrmt.scale_out._ridge import _LOO_GRID_POINTS, _spectral_grid  # noqa: E402

N_ROWS, N_FEATURES = 240, 10
THEORY_ATTRS = ("alpha_", "predicted_train_mse_", "predicted_loo_mse_", "effective_alpha_",
                "delta_", "dof_", "rank_", "x_mean_", "tau_")


def _data(n=N_ROWS, seed=0, offset=5.0):
    """A target that is a smooth function plus noise; X far from the origin (tests centring)."""
    rng = np.random.RandomState(seed)
    X = offset + 2.0 * rng.randn(n, N_FEATURES)
    y = np.tanh(X[:, 0] - offset) + 0.5 * np.sin(X[:, 1] - offset) + 0.1 * rng.randn(n)
    return X, y


def _chunked(X, y, rows=90):
    return da.from_array(X, chunks=(rows, 4)), da.from_array(y, chunks=rows)


def _rel(a, b):
    return np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max()


def test_ridge_statistics_equal_numpy(synchronous):
    X, y = _data()
    Y = np.c_[y, X[:, 2]]
    est = RMTRidge(64, alpha=1e-2, random_state=0).fit(X, Y)
    F = est._features(X)
    Yc = Y - Y.mean(axis=0)
    for rows in (90, 151):
        stats = ridge_statistics(est, *_chunked(X, Y, rows), split_every=2)
        assert stats["n"] == N_ROWS
        assert _rel(stats["G"], F.T @ F) < 1e-12
        assert _rel(stats["B"], F.T @ Yc) < 1e-12
        assert _rel(stats["yy"], (Yc**2).sum(axis=0)) < 1e-12
    # float32 inputs: features of float32 rows, still summed in float64
    X32 = X.astype(np.float32)
    est32 = RMTRidge(64, alpha=1e-2, random_state=0).fit(X32, y)
    F32 = est32._features(X32)
    stats = ridge_statistics(est32, *_chunked(X32, y))
    assert stats["G"].dtype == np.float64
    assert _rel(stats["G"], F32.T @ F32) < 1e-10


@pytest.mark.parametrize(
    "params, multi",
    [
        (dict(alpha=1e-2), False),
        (dict(alpha="auto"), False),  # RMT-LOO on all rows: the same alpha_
        (dict(alpha="auto", alpha_selection="gcv", activation="erf"), True),
        (dict(alpha=0.05, features="ternary", sparsity=0.5), False),
        (dict(alpha=1e-3, activation="rff"), False),
    ],
    ids=["fixed", "auto-loo", "auto-gcv-multi", "ternary", "rff"],
)
def test_fit_rmt_ridge_equals_fit(params, multi, synchronous):
    n = 80 if params.get("activation") == "rff" else N_ROWS
    X, y = _data(n)
    Y = np.c_[y, X[:, 3] / 3.0] if multi else y
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*nonzero weights per feature")
        ref = RMTRidge(48, random_state=0, **params).fit(X, Y)
        got = fit_rmt_ridge(RMTRidge(48, random_state=0, **params), *_chunked(X, Y))
    assert got.theory_n_samples_ == n
    assert got.coef_.shape == ref.coef_.shape
    assert _rel(got.coef_, ref.coef_) < 1e-10
    assert _rel(got.intercept_, ref.intercept_) < 1e-12
    assert abs(got.train_mse_ / ref.train_mse_ - 1) < 1e-10
    for key in THEORY_ATTRS:
        assert _rel(getattr(got, key), getattr(ref, key)) < 1e-10, key
    Xt, yt = _data(50, seed=1)
    assert _rel(got.predict(Xt), ref.predict(Xt)) < 1e-10
    yt2 = np.c_[yt, Xt[:, 3] / 3.0] if multi else yt
    assert _rel(got.predict_risk(Xt, yt2)["test_mse"], ref.predict_risk(Xt, yt2)["test_mse"]) < 1e-8


def test_fit_rmt_ridge_float32(synchronous):
    X, y = _data(120)
    X32 = X.astype(np.float32)
    ref = RMTRidge(64, alpha=1e-2, random_state=0).fit(X32, y)
    got = fit_rmt_ridge(RMTRidge(64, alpha=1e-2, random_state=0), *_chunked(X32, y))
    assert got.coef_.dtype == np.float32 and got.predict(X32[:5]).dtype == np.float32
    np.testing.assert_allclose(got.coef_, ref.coef_, rtol=1e-5)


def test_subsampled_theory_is_the_theory_of_the_subsample(synchronous):
    """Above theory_samples rows: exact readout; theory on a uniform subsample, recorded."""
    X, y = _data()
    m, N, alpha = 100, 48, 1e-2
    ref = RMTRidge(N, alpha=alpha, random_state=0).fit(X, y)
    got = fit_rmt_ridge(RMTRidge(N, alpha=alpha, random_state=0), *_chunked(X, y),
                        theory_samples=m, split_every=3)
    assert got.theory_n_samples_ == m
    assert _rel(got.coef_, ref.coef_) < 1e-10
    assert abs(got.train_mse_ / ref.train_mse_ - 1) < 1e-10
    assert _rel(got.x_mean_, ref.x_mean_) < 1e-12 and abs(got.tau_ / ref.tau_ - 1) < 1e-12
    # the subsample is drawn after the weights from the same random_state
    rng = np.random.RandomState(0)
    rng.standard_normal((N, N_FEATURES))
    idx = np.sort(rng.choice(N_ROWS, size=m, replace=False))
    Xs = (X[idx] - ref.x_mean_) / np.sqrt(ref.tau_)
    spec = _de.KernelSpectrum.from_kernel(_de.kernel_gram("relu", Xs, ops=NumpyOps()),
                                          (y[idx] - y.mean())[:, None])
    point = _de.risk_grid(spec, [alpha], N, loo=True, gcv=False)
    assert abs(got.predicted_train_mse_ / point["train_mse"][0] - 1) < 1e-8
    assert abs(got.predicted_loo_mse_ / point["loo_mse"][0] - 1) < 1e-8


def _direct_criteria(F, Yc, gamma):
    """GCV and leave-one-out of the realised ridge fit, from the hat matrix (no eigh)."""
    n = F.shape[0]
    H = F @ np.linalg.solve(F.T @ F + n * gamma * np.eye(F.shape[1]), F.T)
    resid = Yc - H @ Yc
    df = np.trace(H)
    gcv = np.mean(resid**2) / (1 - (df + 1) / n) ** 2
    lev = np.diag(H)[:, None] + 1.0 / n
    loo = np.mean((resid / (1 - lev)) ** 2)
    return gcv, loo


def test_spectral_selection_above_theory_samples(synchronous):
    X, y = _data()
    N = 48
    got_gcv = fit_rmt_ridge(RMTRidge(N, alpha_selection="gcv", random_state=0),
                            *_chunked(X, y), theory_samples=80)
    got_loo = fit_rmt_ridge(RMTRidge(N, alpha_selection="loo", random_state=0),
                            *_chunked(X, y), theory_samples=80)
    ref = RMTRidge(N, alpha=1.0, random_state=0).fit(X, y)  # same weights
    F, Yc = ref._features(X), (y - y.mean())[:, None]
    G = F.T @ F
    mu, V = np.linalg.eigh(G)
    b_rot = V.T @ (F.T @ Yc)
    grid = _spectral_grid(G, N_ROWS, _LOO_GRID_POINTS)
    for gamma in grid[::60]:
        gcv, _ = _direct_criteria(F, Yc, gamma)
        spectral = spectral_gcv(np.maximum(mu, 0), b_rot, (Yc**2).sum(0), N_ROWS, gamma)[0]
        assert abs(spectral / gcv - 1) < 1e-8
    # GCV: a local minimum (Brent-refined); LOO: the argmin over its grid
    a = got_gcv.alpha_
    values = [_direct_criteria(F, Yc, a * f)[0] for f in (10**-0.05, 1.0, 10**0.05)]
    assert values[1] <= min(values[0], values[2])
    # leave-one-out over the whole grid through the SVD of F (another route than eigh of the
    # blockwise G): H = U diag(s^2 / (s^2 + n gamma)) U^T
    U, sv, _ = np.linalg.svd(F, full_matrices=False)
    shrink = sv[:, None] ** 2 / (sv[:, None] ** 2 + N_ROWS * grid[None, :])
    lev = (U * U) @ shrink + 1.0 / N_ROWS
    resid = Yc - U @ ((U.T @ Yc) * shrink)
    loo = np.mean((resid / (1 - lev)) ** 2, axis=0)
    assert abs(loo[100] / _direct_criteria(F, Yc, grid[100])[1] - 1) < 1e-8
    assert got_loo.alpha_ == pytest.approx(grid[np.argmin(loo)], rel=1e-12)
    assert got_gcv.alpha_ == pytest.approx(got_loo.alpha_, rel=1.0)  # same decade
    assert _rel(got_loo.coef_, RMTRidge(N, alpha=got_loo.alpha_, random_state=0).fit(X, y).coef_) \
        < 1e-10


def test_fit_rmt_ridge_on_cluster(dask_client):
    X, y = _data(seed=3)
    chunked = _chunked(X, y, rows=50)
    ref = RMTRidge(48, alpha=3e-3, activation="erf", random_state=1).fit(X, y)
    got = fit_rmt_ridge(RMTRidge(48, alpha=3e-3, activation="erf", random_state=1), *chunked,
                        theory_samples=100)
    assert _rel(got.coef_, ref.coef_) < 1e-10
    assert abs(got.train_mse_ / ref.train_mse_ - 1) < 1e-10
    # Ternary features above theory_samples: the moment match is refitted on tau = 1 computed
    # from sums; the threshold solve resolves only ~1e-8 (a 1e-15 change of tau moves s+ by
    # 4e-8), hence the looser tolerance here (with all rows gathered it is 1e-10, see above).
    params = dict(alpha=3e-3, features="ternary", sparsity=0.3, random_state=1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*nonzero weights per feature")
        ref = RMTRidge(48, **params).fit(X, y)
        got = fit_rmt_ridge(RMTRidge(48, **params), *chunked, theory_samples=100)
    assert _rel(got.coef_, ref.coef_) < 1e-6


def test_bad_arguments(synchronous):
    X, y = _data(20)
    with pytest.raises(TypeError, match="RMTRidge"):
        fit_rmt_ridge(object(), X, y)
    with pytest.raises(ValueError, match="theory_samples"):
        fit_rmt_ridge(RMTRidge(8), X, y, theory_samples=1)
    with pytest.raises(ValueError, match="split_every"):
        fit_rmt_ridge(RMTRidge(8), X, y, split_every=1)
    with pytest.raises(ValueError, match="inconsistent"):
        fit_rmt_ridge(RMTRidge(8), X, y[:-1])
    Xn = X.copy()
    Xn[7, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_rmt_ridge(RMTRidge(8, alpha=1.0), Xn, y, theory_samples=10)
    with pytest.raises(ValueError, match="n_components"):
        fit_rmt_ridge(RMTRidge(0), X, y)


def test_subsample_at_its_interpolation_peak_warns(synchronous):
    X, y = _data()
    ref = RMTRidge(48, alpha=1e-6, random_state=0).fit(X, y)  # n = 240: far from the peak
    with pytest.warns(UserWarning, match="theory_samples=50 puts the subsampled theory"):
        got = fit_rmt_ridge(RMTRidge(48, alpha=1e-6, random_state=0), *_chunked(X, y),
                            theory_samples=50)
    assert _rel(got.coef_, ref.coef_) < 1e-8
