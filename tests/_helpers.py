"""Shared test helpers: Gaussian-mixture data of the theory and exact kernel Grams."""

import math
import warnings

import numpy as np

from skrmt._backend import NumpyOps
from skrmt._theory._ck import ck_limit_block, ck_limit_diag


def gmm_a(p, n, seed=0):
    """GMM-A of trf.md §5.3, raw scale: x = +-2 e_1 + z, z ~ N(0, I) or N(0, (1 + 4/sqrt(p)) I).

    Returned unscaled: skrmt's estimators divide by sqrt(p) themselves.
    """
    rng = np.random.RandomState(seed)
    half = n // 2
    X = rng.standard_normal((n, p))
    X[half:] *= np.sqrt(1.0 + 4.0 / np.sqrt(p))
    X[:half, 0] += 2.0
    X[half:, 0] -= 2.0
    y = np.r_[np.ones(half), -np.ones(n - half)]
    return X, y


def exact_gram(act, X):
    """Self-Gram of the limiting single-layer CK (exact diagonal)."""
    ops = NumpyOps()
    K = ck_limit_block(ops, act, X, X)
    np.fill_diagonal(K, ck_limit_diag(ops, act, X))
    return K


def operator_norm(M):
    """Largest |eigenvalue| of a symmetric matrix (Lanczos: the full spectrum is not needed)."""
    from scipy.sparse.linalg import eigsh

    M = 0.5 * (M + M.T)
    if len(M) <= 64:
        return np.abs(np.linalg.eigvalsh(M)).max()
    v0 = np.ones(len(M)) / np.sqrt(len(M))
    return float(np.abs(eigsh(M, k=1, which="LM", v0=v0, tol=1e-10)[0]).max())


def centred_spectral_error(A, B):
    """||P (A - B) P|| / ||P B P|| in operator norm, P = I - 11^T/n."""
    def centre(M):
        return M - M.mean(0, keepdims=True) - M.mean(1, keepdims=True) + M.mean()

    return operator_norm(centre(A - B)) / operator_norm(centre(B))


def spectral_error(A, B):
    return operator_norm(A - B) / operator_norm(B)


def ridge_errors(F, Ft, yc, ytc, gammas):
    """Realised train/test MSE of the ridge readout for each gamma (one eigendecomposition).

    ``F``/``Ft``: train/test features; ``yc``/``ytc``: centred targets; the readout minimises
    ``(1/n)||yc - F b||^2 + gamma ||b||^2`` (RMTRidge's convention).
    """
    n, N = F.shape
    gammas = np.asarray(gammas, dtype=float)
    if N >= n:
        lam, V = np.linalg.eigh(F @ F.T)
        a = (V.T @ yc)[:, None] / (lam[:, None] + n * gammas[None, :])
        pred = (Ft @ (F.T @ V)) @ a
        fit = V @ (lam[:, None] * a)
    else:
        lam, V = np.linalg.eigh(F.T @ F)
        c = (V.T @ (F.T @ yc))[:, None] / (lam[:, None] + n * gammas[None, :])
        pred = (Ft @ V) @ c
        fit = (F @ V) @ c
    return np.mean((yc[:, None] - fit) ** 2, 0), np.mean((ytc[:, None] - pred) ** 2, 0)


def check_accuracy(pred, sims, tau):
    """rmt_ridge.md AT6/AT12 rule ``|pred - mean| <= tau mean + 3 SE``; returns the max
    relative error."""
    mean = sims.mean(axis=0)
    se = sims.std(axis=0, ddof=1) / math.sqrt(sims.shape[0])
    assert np.all(np.abs(pred - mean) <= tau * mean + 3 * se), (pred, mean, se)
    return float(np.max(np.abs(pred - mean) / mean))


def small_problem(n=120, p=10, seed=0):
    """A small off-centre, scaled regression problem (the estimators standardise)."""
    rng = np.random.RandomState(500 + seed)  # not the feature seeds of the tests
    X = rng.randn(n, p) * 3.0 + 5.0
    y = np.tanh(X[:, 0] - 5.0) + 0.1 * rng.randn(n) + 2.0
    return X, y


def quiet_fit(est, X, y):
    """``est.fit(X, y)`` with its UserWarnings (small-data theory warnings) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return est.fit(X, y)
