"""make_gmm: data.md §3 acceptance (i)-(v) plus the sampling protocol and theory scalars."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.linalg import toeplitz

from skrmt.datasets import GMM_PRESETS, make_gmm


def _toep(rho, p):
    return toeplitz(rho ** np.arange(p, dtype=np.float64))


def _mean_sq_norm(X):
    return float(np.einsum("ij,ij->i", X, X).mean())


# ---------------------------------------------------------------------------------------
# (i) shapes, dtype, class sizes, block order
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", GMM_PRESETS)
def test_shapes_dtype_blocks(preset):
    K = 2
    n, p = 101, 64
    X, y = make_gmm(n, p, preset=preset, n_classes=K, random_state=0)
    assert X.shape == (n, p) and X.dtype == np.float64 and X.flags.c_contiguous
    assert y.shape == (n,) and y.dtype == np.int64
    # Equal weights: 51 / 50, remainder to the lower class; rows in class blocks.
    assert_array_equal(np.bincount(y), [51, 50])
    assert_array_equal(y, np.repeat([0, 1], [51, 50]))


@pytest.mark.parametrize(
    "n, weights, expected",
    [
        (10, None, [4, 3, 3]),  # equal weights, remainder to class 0
        (11, [0.5, 0.3, 0.2], [6, 3, 2]),  # 5.5 3.3 2.2 -> largest fraction is class 0
        (6, [0.25, 0.25, 0.5], [2, 1, 3]),  # 1.5 1.5 3 -> tie between 0 and 1 goes to 0
        (7, [1.0, 1.0, 5.0], [1, 1, 5]),  # weights are normalised
        (10, [0.06, 0.47, 0.47], [0, 5, 5]),  # 0.6 4.7 4.7: floors 0 4 4, +1 to 1 and 2
    ],
)
def test_class_sizes_rule(n, weights, expected):
    _, y, params = make_gmm(
        n, 32, preset="iid", n_classes=3, weights=weights, random_state=0, return_params=True
    )
    assert_array_equal(np.bincount(y, minlength=3), expected)
    assert_array_equal(params["class_sizes"], expected)
    assert_allclose(params["proportions"], np.array(expected) / n, rtol=0, atol=0)
    assert_array_equal(y, np.repeat(np.arange(3), expected))


def test_class_sizes_random_weights():
    rng = np.random.RandomState(0)
    for _ in range(200):
        K = rng.randint(1, 7)
        n = rng.randint(1, 500)
        w = rng.dirichlet(np.ones(K))
        _, y = make_gmm(n, 8, preset="iid", n_classes=K, weights=w, random_state=0)
        sizes = np.bincount(y, minlength=K)
        assert sizes.sum() == n
        assert np.all(np.abs(sizes - n * w) < 1)


# ---------------------------------------------------------------------------------------
# (ii) reproducibility and the documented drawing order
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["pm2", "toeplitz"])
def test_same_seed_same_array(preset):
    X1, y1 = make_gmm(200, 64, preset=preset, random_state=7)
    X2, y2 = make_gmm(200, 64, preset=preset, random_state=7)
    X3, _ = make_gmm(200, 64, preset=preset, random_state=8)
    assert_array_equal(X1, X2)
    assert_array_equal(y1, y2)
    assert np.abs(X1 - X3).max() > 0.1


def test_drawing_protocol_toeplitz_three_classes():
    # Rebuild X by hand from data.md: per class, G = standard_normal((n_a, p)) in order,
    # X_a = (mu_a + G L_a^T) / sqrt(p) with L_a the lower Cholesky factor of C_a.
    n, p = 90, 40
    X, y = make_gmm(n, p, preset="toeplitz", n_classes=3, random_state=3)
    rs = np.random.RandomState(3)
    parts = []
    for a in range(3):
        mu = np.zeros(p)
        mu[a] = 4.0
        C = (1 + 4 * a / np.sqrt(p)) * _toep(0.4 * a, p)
        L = np.linalg.cholesky(C)
        G = rs.standard_normal((30, p))
        parts.append((mu + G @ L.T) / np.sqrt(p))
    assert_allclose(X, np.vstack(parts), rtol=1e-12, atol=1e-14)


def test_shuffle_permutes_last_with_same_state():
    n, p = 64, 24
    X, y, P = make_gmm(n, p, preset="mixed", random_state=5, return_params=True)
    Xs, ys, Ps = make_gmm(n, p, preset="mixed", shuffle=True, random_state=5, return_params=True)
    rs = np.random.RandomState(5)
    for n_a in (32, 32):
        rs.standard_normal((n_a, p))
    perm = rs.permutation(n)
    assert_array_equal(Xs, X[perm])
    assert_array_equal(ys, y[perm])
    assert_array_equal(Ps["omega"], P["omega"][perm])
    assert_array_equal(Ps["psi"], P["psi"][perm])
    assert_array_equal(Ps["J"], P["J"][perm])
    assert not np.array_equal(ys, y)


def test_random_state_instance_is_advanced():
    rs = np.random.RandomState(0)
    X1, _ = make_gmm(20, 16, preset="iid", random_state=rs)
    X2, _ = make_gmm(20, 16, preset="iid", random_state=rs)
    assert not np.array_equal(X1, X2)


# ---------------------------------------------------------------------------------------
# (iii) mean squared norm against tau + sum_a c_a ||mu_a||^2 / p, p = 512, n = 2p
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "preset, expected",
    [
        ("pm2", lambda p: 1 + 2 / np.sqrt(p) + 4 / p),
        ("mixed", lambda p: 1 + 4 / np.sqrt(p) + 64 / p),
        ("toeplitz", lambda p: 1 + 2 / np.sqrt(p) + 16 / p),
        ("iid", lambda p: 1.0),
        ("means", lambda p: 1 + 16 / p),
        ("var", lambda p: 1 + 4 / np.sqrt(p)),
    ],
)
def test_mean_squared_norm(preset, expected):
    p = 512
    X, _, P = make_gmm(2 * p, p, preset=preset, random_state=0, return_params=True)
    target = expected(p)
    # The returned params give the same closed form.
    formula = P["tau"] + float(P["proportions"] @ np.sum(P["means"] ** 2, axis=1)) / p
    assert_allclose(formula, target, rtol=1e-12)
    assert abs(_mean_sq_norm(X) / target - 1) < 0.02


# ---------------------------------------------------------------------------------------
# (iv) toeplitz tau-hat table, n = 2p
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "p, expected, tol",
    [(128, 1.294, 0.03), (256, 1.186, 0.01), (512, 1.119, 0.01), (1024, 1.077, 0.01)],
)
def test_toeplitz_tau_hat(p, expected, tol):
    X, _ = make_gmm(2 * p, p, preset="toeplitz", random_state=0)
    assert abs(_mean_sq_norm(X) - expected) <= tol


# ---------------------------------------------------------------------------------------
# (v) theory scalars
# ---------------------------------------------------------------------------------------


def test_toeplitz_T_matches_explicit_traces():
    p = 512
    _, _, P = make_gmm(2 * p, p, preset="toeplitz", random_state=0, return_params=True)
    s1 = 1 + 4 / np.sqrt(p)
    C = [np.eye(p), s1 * _toep(0.4, p)]
    T_ref = np.array([[np.trace(C[a] @ C[b]) / p for b in range(2)] for a in range(2)])
    assert_allclose(P["T"], T_ref, rtol=0, atol=1e-12)
    assert_allclose(P["T"][0, 1], 1.17678, atol=5e-6)
    assert_allclose(P["T"][1, 1], 1.91112, atol=5e-6)
    assert P["covariances"] == [1.0, (s1, 0.4)]
    assert_allclose(P["tau"], 1 + 2 / np.sqrt(p), rtol=1e-14)
    assert_allclose(P["t"], [-2.0, 2.0], rtol=1e-12)  # (s_a - tau) sqrt(p) = -/+ 2


def test_toeplitz_three_classes_T():
    p = 96
    _, _, P = make_gmm(3 * p, p, preset="toeplitz", n_classes=3, random_state=0,
                       return_params=True)
    C = [(1 + 4 * a / np.sqrt(p)) * _toep(0.4 * a, p) for a in range(3)]
    T_ref = np.array([[np.trace(C[a] @ C[b]) / p for b in range(3)] for a in range(3)])
    assert_allclose(P["T"], T_ref, rtol=0, atol=1e-12)
    tr = np.array([np.trace(Ca) / p for Ca in C])
    tau = float(P["proportions"] @ tr)
    assert_allclose(P["tau"], tau, rtol=1e-14)
    assert_allclose(P["t"], (tr - tau) * np.sqrt(p), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("preset", ["pm2", "mixed", "var"])
def test_scaled_identity_T(preset):
    p = 256
    _, _, P = make_gmm(2 * p, p, preset=preset, random_state=1, return_params=True)
    s = np.array(P["covariances"])
    assert_allclose(P["T"], np.outer(s, s), rtol=1e-14)
    assert_allclose(P["tau"], s.mean(), rtol=1e-14)
    # Balanced classes: sum_a c_a t_a = 0.
    assert abs(P["proportions"] @ P["t"]) < 1e-12


def test_omega_psi_J_consistent():
    p = 256
    X, y, P = make_gmm(2 * p, p, preset="toeplitz", random_state=2, return_params=True)
    assert_allclose(P["omega"], X - P["means"][y] / np.sqrt(p), rtol=0, atol=1e-14)
    tr = np.array([1.0, P["covariances"][1][0]])
    assert_allclose(P["psi"], np.sum(P["omega"] ** 2, axis=1) - tr[y], rtol=0, atol=1e-12)
    assert_array_equal(P["J"], np.eye(2)[y])
    assert P["J"].dtype == np.float64


def test_psi_variance_matches_T():
    # For Gaussian noise, Var ||omega||^2 = 2 tr(C_a^2) / p^2 = 2 T_aa / p and E psi = 0.
    p = 256
    n = 8 * p
    _, y, P = make_gmm(n, p, preset="toeplitz", random_state=11, return_params=True)
    for a in range(2):
        psi = P["psi"][y == a]
        var_ref = 2 * P["T"][a, a] / p
        assert abs(psi.mean()) < 4 * np.sqrt(var_ref / psi.size)
        assert abs(psi.var() / var_ref - 1) < 0.12


def test_toeplitz_noise_covariance():
    # Lag-k autocovariance of sqrt(p) * omega in class 1 is s_1 * 0.4^k.
    p = 256
    _, y, P = make_gmm(4 * p, p, preset="toeplitz", random_state=4, return_params=True)
    W = P["omega"][y == 1] * np.sqrt(p)
    s1 = P["covariances"][1][0]
    for k, tol in [(0, 0.02), (1, 0.02), (2, 0.02), (5, 0.02)]:
        emp = float(np.mean(W[:, : p - k] * W[:, k:]))
        assert abs(emp - s1 * 0.4**k) < tol, (k, emp)


# ---------------------------------------------------------------------------------------
# custom mixtures
# ---------------------------------------------------------------------------------------


def test_custom_full_covariance_and_scalars():
    p = 16
    rng = np.random.RandomState(0)
    A = rng.standard_normal((p, p))
    C0 = A @ A.T / p + 0.5 * np.eye(p)
    C1 = 2.0 * np.eye(p)
    means = np.zeros((2, p))
    means[1, 3] = 5.0
    n = 40000
    X, y, P = make_gmm(n, p, preset=None, means=means, covariances=np.stack([C0, C1]),
                       random_state=0, return_params=True)
    W0 = P["omega"][y == 0] * np.sqrt(p)
    # Entrywise SE of a covariance estimate from 20000 rows is ~ sqrt(2/20000) * scale.
    assert np.abs(W0.T @ W0 / W0.shape[0] - C0).max() < 0.06
    assert_allclose(P["T"][0, 1], np.trace(C0 @ C1) / p, rtol=1e-12)
    assert_allclose(P["T"][0, 0], np.trace(C0 @ C0) / p, rtol=1e-12)
    assert_allclose(X[y == 1].mean(0) * np.sqrt(p), means[1], atol=0.05)

    # Per-class scalars give the same draw as the matching full scaled identities.
    Xs, _, Ps = make_gmm(50, p, preset=None, covariances=[1.0, 2.0], random_state=3,
                         return_params=True)
    Xf, _ = make_gmm(50, p, preset=None, covariances=np.stack([np.eye(p), 2 * np.eye(p)]),
                     random_state=3)
    assert_allclose(Xs, Xf, rtol=1e-12, atol=1e-15)
    assert Ps["covariances"] == [1.0, 2.0]
    assert_allclose(Ps["T"], [[1, 2], [2, 4]], rtol=1e-14)


def test_custom_infers_n_classes():
    X, y = make_gmm(30, 8, preset=None, means=np.zeros((3, 8)), random_state=0)
    assert_array_equal(np.bincount(y), [10, 10, 10])
    with pytest.raises(ValueError, match="n_classes"):
        make_gmm(30, 8, preset=None, n_classes=4, means=np.zeros((3, 8)))


# ---------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(preset="nope"), ValueError, "preset"),
        (dict(preset="pm2", n_classes=3), ValueError, "pm2"),
        (dict(preset="toeplitz", n_classes=4), ValueError, "toeplitz"),
        (dict(preset="mixed", n_classes=3, n_features=20), ValueError, "n_features"),
        (dict(preset="means", n_classes=5, n_features=4), ValueError, "n_features"),
        (dict(n_samples=0), ValueError, "n_samples"),
        (dict(n_samples=10.0), TypeError, "n_samples"),
        (dict(n_features=True), TypeError, "n_features"),
        (dict(n_classes=0), ValueError, "n_classes"),
        (dict(weights=[0.5, 0.3, 0.2]), ValueError, "weights"),
        (dict(weights=[-0.5, 1.5]), ValueError, "weights"),
        (dict(means=np.zeros((2, 64))), ValueError, "preset=None"),
        (dict(preset=None, means=np.zeros((2, 5))), ValueError, "means"),
        (dict(preset=None, covariances=[1.0, -1.0]), ValueError, "covariance"),
        (dict(preset=None, means=np.zeros((2, 64)), covariances=[1.0, 1.0, 1.0]),
         ValueError, "agree"),
        (dict(preset=None, covariances=np.stack([np.eye(64), -np.eye(64)])),
         ValueError, "positive definite"),
        (dict(preset=None, covariances=np.triu(np.ones((2, 64, 64)))), ValueError,
         "symmetric"),
        (dict(shuffle=1), TypeError, "shuffle"),
    ],
)
def test_bad_input(kwargs, exc, match):
    args = dict(n_samples=20, n_features=64)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        make_gmm(args.pop("n_samples"), args.pop("n_features"), **args)
