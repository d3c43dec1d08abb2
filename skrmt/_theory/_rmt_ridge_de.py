"""Deterministic equivalents of random-features ridge regression (design note ``rmt_ridge.md``).

Pure math, no estimator: the kernel ``Phi`` of the random features, its eigendecomposition, the
effective ridge ``t`` (a vectorised, bracketed Newton solve), the deterministic equivalents of the
train and test mean squared errors, their ridgeless limits, the label-free RMT leave-one-out and
RMT-GCV criteria, and the selection of the ridge ``gamma`` from them.

Conventions (``rmt_ridge.md`` §1). Rows are samples. ``X`` here is already standardised
(``x = (x_raw - mean) / sqrt(tau)``, mean squared row norm 1) and the random weights
``w ~ N(0, I_p)`` carry no ``1/sqrt(p)``, so ``Phi(a, b) = E_w[sigma(w^T a) sigma(w^T b)]`` is the dual kernel of
:mod:`skrmt._theory._gaussian_moments` called with ``A = ||a||^2`` and ``C = a^T b``. The
library's single-layer CK helpers (:mod:`skrmt._theory._ck`) divide their inputs by ``sqrt(p)``
instead; ``ck_limit_block(ops, act, sqrt(p) X, sqrt(p) Y)`` is the same matrix.

With ``n`` samples, width ``N`` and ridge ``gamma`` (the papers' scale: the readout minimises
``(1/n)||y - F beta||^2 + gamma ||beta||^2`` with unscaled features ``F = sigma(X W^T)``), the
effective ridge ``t`` is the unique root of ``t (N - df1(t)) = gamma n`` with
``df1 = tr Phi (Phi + t I)^{-1}``, ``df2 = tr (Phi (Phi + t I)^{-1})^2``, and (§2.2)

- ``E_train = (t^2/n) y^T R [I + (df1 - df2)/(t (N - df2)) Phi] R y``, ``R = (Phi + t I)^{-1}``;
- ``E_test = (1/n_t)||y_t - Phi_t R y||^2 + V B``, ``V = y^T R Phi R y / (N - df2)``,
  ``B = mean_j [d_j - phi_j^T R (Phi + 2t I) R phi_j]``.

Everything below works in the eigenbasis ``Phi = U diag(lam) U^T`` with the cancellation-free sums
of §3 (``eps_k = t/(lam_k + t)``, ``rho_k = 1 - eps_k``), so a whole ``gamma x N`` grid costs one
eigendecomposition. Multi-output targets share ``t`` and the eigenbasis; errors are averaged over
the outputs.
"""

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from sklearn.exceptions import ConvergenceWarning

from ._gaussian_moments import dual_kernel, dual_kernel_diag

__all__ = [
    "KernelSpectrum",
    "TestProjection",
    "alpha_grid",
    "interpolation_peak",
    "kernel_cross",
    "kernel_diag",
    "kernel_eigh",
    "kernel_from_gram",
    "kernel_gram",
    "risk_grid",
    "select_alpha",
    "solve_effective_ridge",
    "spectral_sums",
]

# Newton on log t: iterations allowed before a ConvergenceWarning (<= 30 are needed in practice).
MAX_ITER = 100
# |step in log t| at which the root is accepted: 1e-13 relative in t.
XTOL = 1e-13
# alpha="auto": 61 log-spaced points over 12 decades around the kernel's scale (rmt_ridge.md §6).
GRID_DECADES = (-8.0, 4.0)
GRID_POINTS = 61
# Brent refinement on log10(gamma): 0.01 decade.
REFINE_XTOL = 0.01
# Interpolation-peak warning: N within this factor of rank(Phi) ...
PEAK_BAND = (0.9, 1.1)
# ... and gamma below this fraction of the kernel scale tr(Phi)/n.
PEAK_RIDGE = 1e-2
# B below this fraction of mean_j Phi(x_j, x_j) is rounding noise: exactly 0.
_B_RTOL = 1e-10
# Columns of an (n, points) work matrix per block: bounds memory on large grids.
_BLOCK_POINTS = 256


# =============================================================================================
# kernel and spectrum
# =============================================================================================
def kernel_from_gram(act, A, B, C, ops=None):
    """``Phi`` from squared norms and inner products of standardised rows.

    Parameters
    ----------
    act : str, Activation, StepFunction or callable
    A : array of shape (n_a,)
        Squared row norms of the first set.
    B : array of shape (n_b,)
        Squared row norms of the second set.
    C : array of shape (n_a, n_b)
        Inner products.
    ops : array namespace, optional
        From :func:`skrmt._backend.get_ops`; None means numpy.

    Returns
    -------
    Phi : array of shape (n_a, n_b), float64 (on the device of ``ops``)
    """
    return dual_kernel(act, A[:, None], B[None, :], C, ops=ops)


def kernel_diag(act, X, ops=None):
    """``Phi(x_j, x_j)`` from the exact one-dimensional formula, for the rows of ``X``."""
    A = _sqnorms(X, ops)
    return dual_kernel_diag(act, A, ops=ops)


def _sqnorms(X, ops):
    if ops is None:
        X = np.asarray(X, dtype=np.float64)
        return np.einsum("ij,ij->i", X, X)
    return ops.sqnorm_rows(X)


def _matmul(ops, a, b):
    return np.asarray(a) @ np.asarray(b) if ops is None else ops.matmul(a, b)


def kernel_gram(act, X, ops=None):
    """Training kernel ``Phi(X, X)`` (n, n), symmetric, with the exact diagonal.

    ``X`` holds standardised rows (numpy, or a device array of ``ops``).
    """
    A = _sqnorms(X, ops)
    K = kernel_from_gram(act, A, A, _matmul(ops, X, X.T), ops=ops)
    K = 0.5 * (K + K.T)
    diag = dual_kernel_diag(act, A, ops=ops)
    n = K.shape[0]
    K.reshape(-1)[:: n + 1] = diag
    return K


def kernel_cross(act, X_test, X, ops=None):
    """Test-train kernel ``Phi(X_test, X)`` of shape (n_test, n)."""
    return kernel_from_gram(
        act, _sqnorms(X_test, ops), _sqnorms(X, ops), _matmul(ops, X_test, X.T), ops=ops
    )


def kernel_eigh(Phi, ops=None):
    """Eigendecomposition of the kernel matrix in float64.

    Parameters
    ----------
    Phi : array of shape (n, n)
        Symmetric kernel matrix (numpy, or a device array of ``ops``; the device's
        ``linalg.eigh`` runs there).
    ops : array namespace, optional

    Returns
    -------
    lam : ndarray of shape (n,)
        Eigenvalues in ascending order, clipped at 0; those at or below the rank threshold
        ``n * eps * max(lam)`` are set to exactly 0 (so that the null space is exact and
        ``rank`` counts the rest).
    U : ndarray of shape (n, n)
        Orthonormal eigenvectors (columns), numpy float64.
    """
    if ops is None or not getattr(ops, "is_torch", False):
        lam, U = np.linalg.eigh(np.asarray(Phi, dtype=np.float64))
    else:
        lam, U = ops.xp.linalg.eigh(Phi)
        lam, U = ops.to_numpy(lam), ops.to_numpy(U)
    lam = np.asarray(lam, dtype=np.float64).copy()
    U = np.ascontiguousarray(U, dtype=np.float64)
    n = lam.shape[0]
    top = float(lam.max()) if n else 0.0
    lam[lam <= n * np.finfo(np.float64).eps * max(top, 0.0)] = 0.0
    return lam, U


@dataclass
class KernelSpectrum:
    """What every deterministic equivalent needs from the training data.

    Attributes
    ----------
    lam : ndarray of shape (n,)
        Eigenvalues of ``Phi`` (ascending, exact zeros below the rank threshold).
    z : ndarray of shape (n, k)
        ``U^T y_c`` for the centred targets (k outputs).
    U : ndarray of shape (n, n) or None
        Eigenvectors; needed by the LOO criterion and by test-set projections only.
    """

    lam: np.ndarray
    z: np.ndarray
    U: np.ndarray = None

    def __post_init__(self):
        self.lam = np.asarray(self.lam, dtype=np.float64)
        z = np.asarray(self.z, dtype=np.float64)
        self.z = z[:, None] if z.ndim == 1 else z
        pos = self.lam > 0
        self._pos = pos
        self.lam_pos = self.lam[pos]
        self.z2 = self.z * self.z  # (n, k)

    @property
    def n(self):
        return self.lam.shape[0]

    @property
    def U2(self):
        """``U * U`` (elementwise), computed once: the LOO diagonals are ``U2 @ f(lam)``."""
        if getattr(self, "_U2", None) is None:
            self._U2 = self.U * self.U
        return self._U2

    @property
    def rank(self):
        return int(self._pos.sum())

    @property
    def trace(self):
        return float(self.lam.sum())

    @property
    def n_outputs(self):
        return self.z.shape[1]

    @classmethod
    def from_kernel(cls, Phi, y_centred, ops=None):
        """Eigendecompose ``Phi`` and project the centred targets."""
        lam, U = kernel_eigh(Phi, ops)
        y = np.asarray(y_centred, dtype=np.float64)
        y = y[:, None] if y.ndim == 1 else y
        return cls(lam=lam, z=U.T @ y, U=U)


# =============================================================================================
# the effective ridge
# =============================================================================================
def _broadcast_points(gamma, n_components):
    gamma = np.asarray(gamma, dtype=np.float64)
    N = np.asarray(n_components, dtype=np.float64)
    gamma, N = np.broadcast_arrays(gamma, N)
    return gamma, N


def solve_effective_ridge(spec, gamma, n_components, *, xtol=XTOL, max_iter=None,
                          return_info=False):
    """Effective ridge ``t`` for every point ``(gamma, N)``, vectorised.

    ``t`` is the unique root of ``t (N - df1(t)) = gamma n`` (``rmt_ridge.md`` §3). Each point
    runs a safeguarded Newton iteration on ``s = log t`` inside a bracket that is known in
    closed form, on one of two monotone, nearly linear functions:

    - ``N >= rank``: ``f(s) = log(t (N - df1)) - log(gamma n)``, slope between 1 and 2;
    - ``N < rank``: ``f(s) = log N - log(df1 + gamma n / t)``, which stays defined where
      ``df1 > N`` (the finite width regularises by itself there).

    Brackets: ``t >= gamma n / N`` (``N - df1 <= N``), ``t <= (tr Phi + gamma n)/N``
    (``df1 <= tr Phi / t``) and, for ``N < rank``, ``t > lam_min (rank - N) / N``. A step that
    leaves the bracket is replaced by bisection. ``N - df1`` and ``df1 - df2`` come from the
    cancellation-free sums of §3, so ``N = n`` with tiny ``gamma`` is as easy as any other point.

    ``gamma = 0`` gives the ridgeless limits of §5: ``t = 0`` when ``N >= rank``, and the root
    ``t0`` of ``df1(t0) = N`` when ``N < rank``.

    Parameters
    ----------
    spec : KernelSpectrum or ndarray
        The spectrum (or the eigenvalue array alone).
    gamma : float or array
        Ridges, >= 0.
    n_components : float or array
        Widths ``N`` > 0; broadcast against ``gamma``.
    xtol : float, default=1e-13
        Accepted Newton step in ``log t``.
    max_iter : int, default=None
        Function evaluations allowed per point (None: the module's ``MAX_ITER``, 100);
        points left unconverged raise a ``ConvergenceWarning`` and keep their last iterate.
    return_info : bool, default=False
        Also return ``{"n_eval": max evaluations over the points, "converged": mask}``.

    Returns
    -------
    t : ndarray of the broadcast shape
    info : dict, only when ``return_info``
    """
    lam = spec.lam if isinstance(spec, KernelSpectrum) else np.asarray(spec, dtype=np.float64)
    max_iter = MAX_ITER if max_iter is None else int(max_iter)
    gamma, N = _broadcast_points(gamma, n_components)
    shape = gamma.shape
    gamma, N = gamma.ravel(), N.ravel()
    if np.any(~np.isfinite(gamma)) or np.any(gamma < 0):
        raise ValueError("gamma (alpha) must be finite and >= 0.")
    if np.any(~np.isfinite(N)) or np.any(N <= 0):
        raise ValueError("n_components must be finite and > 0.")
    n = lam.shape[0]
    lam_pos = lam[lam > 0]
    r = lam_pos.shape[0]
    trace = float(lam_pos.sum())
    t = np.zeros_like(gamma)
    converged = np.ones(gamma.shape, dtype=bool)
    n_eval = 0
    if r == 0:
        # Phi = 0: df1 = 0 and t = gamma n / N exactly.
        t = gamma * n / N
    else:
        wide = N >= r
        todo = ~(wide & (gamma == 0.0))  # gamma = 0, N >= rank: t = 0 (ridgeless)
        idx = np.flatnonzero(todo)
        if idx.size:
            t[idx], conv, n_eval = _newton_log_t(lam_pos, n, r, trace, gamma[idx], N[idx],
                                                 wide[idx], xtol, max_iter)
            converged[idx] = conv
    if not np.all(converged):
        warnings.warn(
            f"The effective-ridge solver did not converge at {int((~converged).sum())} of "
            f"{converged.size} (alpha, n_components) points within {max_iter} evaluations; "
            "the deterministic equivalents there are approximate.",
            ConvergenceWarning,
            stacklevel=2,
        )
    t = t.reshape(shape)
    if return_info:
        return t, {"n_eval": int(n_eval), "converged": converged.reshape(shape)}
    return t


def _newton_log_t(lam_pos, n, r, trace, gamma, N, wide, xtol, max_iter):
    gn = gamma * n
    with np.errstate(divide="ignore"):
        s_lo = np.log(gn / N)  # -inf where gamma = 0 (only with N < rank)
    s_hi = np.log((trace + gn) / N)
    lam_min = float(lam_pos.min())
    narrow = ~wide
    if np.any(narrow):
        # r lam_min/(lam_min + t) > N below this t, so df1 > N: f < 0 there.
        floor = np.log(0.5 * lam_min * (r - N[narrow]) / N[narrow])
        s_lo[narrow] = np.maximum(s_lo[narrow], floor)
    s = s_hi.copy()
    active = np.ones(N.shape, dtype=bool)
    converged = np.zeros(N.shape, dtype=bool)
    n_eval = 0
    log_gn = np.where(gn > 0, np.log(np.where(gn > 0, gn, 1.0)), 0.0)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        n_eval += 1
        si = s[idx]
        ti = np.exp(si)
        Ni, gni = N[idx], gn[idx]
        f, df = _newton_values(lam_pos, r, ti, Ni, gni, log_gn[idx], wide[idx])
        lo, hi = s_lo[idx], s_hi[idx]
        neg = f < 0
        lo = np.where(neg, si, lo)
        hi = np.where(neg, hi, si)
        s_lo[idx], s_hi[idx] = lo, hi
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(df > 0, -f / df, np.nan)
        new = si + step
        small = np.isfinite(step) & (np.abs(step) <= xtol)
        # a tiny final step may round onto the bracket end just set: accept it as it is
        bad = ~small & (~np.isfinite(new) | (new <= lo) | (new >= hi))
        new = np.where(bad, 0.5 * (lo + hi), new)
        done = (f == 0) | small | (hi - lo <= xtol)
        s[idx] = np.where(f == 0, si, new)
        converged[idx[done]] = True
        active[idx[done]] = False
    return np.exp(s), converged, n_eval


def _newton_values(lam_pos, r, t, N, gn, log_gn, wide):
    """``f`` and ``df/ds`` of :func:`solve_effective_ridge` at ``t`` (one column per point)."""
    E = t[None, :] / (lam_pos[:, None] + t[None, :])  # eps_k on the range of Phi
    sum_e = E.sum(axis=0)
    sum_re = ((1.0 - E) * E).sum(axis=0)  # df1 - df2
    f = np.empty_like(t)
    df = np.empty_like(t)
    w = wide
    if np.any(w):
        D = (N[w] - r) + sum_e[w]  # N - df1 > 0
        f[w] = np.log(t[w]) + np.log(D) - log_gn[w]
        df[w] = 1.0 + sum_re[w] / D
    nw = ~w
    if np.any(nw):
        df1 = r - sum_e[nw]
        K = df1 + gn[nw] / t[nw]
        f[nw] = np.log(N[nw]) - np.log(K)
        df[nw] = (sum_re[nw] + gn[nw] / t[nw]) / K
    return f, df


# =============================================================================================
# spectral sums and errors in the eigenbasis
# =============================================================================================
def _resolvent_parts(lam, t):
    """``eps``, ``rho`` and ``1/(lam + t)`` as (n, m) arrays, with the null space exact.

    At ``t = 0`` (ridgeless, ``N >= rank``) ``1/(lam + t)`` is the pseudo-inverse (0 on the null
    space) and ``eps = 1`` there.
    """
    lam_c = lam[:, None]
    t_r = t[None, :]
    den = lam_c + t_r
    pos = den > 0
    safe = np.where(pos, den, 1.0)
    inv = np.where(pos, 1.0 / safe, 0.0)
    eps = np.where(pos, t_r / safe, 1.0)
    rho = 1.0 - eps
    return eps, rho, inv


def spectral_sums(spec, gamma, t, n_components):
    """Degrees of freedom at the points ``(gamma, t, N)``, without cancellation.

    ``t`` must be the effective ridge of ``(gamma, N)``. The sums of §3 give ``n - df1``
    (``sum eps``) and ``df1 - df2`` (``sum rho eps``) directly; ``N - df1`` is taken from the
    root equation, ``N - df1 = gamma n / t``, because ``(N - n) + sum eps`` cancels when
    ``N`` is well below ``n`` (it is used only where ``t = 0``: ``N - rank``); then
    ``N - df2 = (N - df1) + (df1 - df2)``, a sum of two non-negative terms.

    Returns
    -------
    dict of arrays of the broadcast shape
        ``df1``, ``df2``, ``n_minus_df1``, ``N_minus_df1``, ``N_minus_df2``, ``df1_minus_df2``,
        ``delta`` (``df1 / (N - df1)``, infinite where ``N - df1 = 0``).
    """
    lam = spec.lam if isinstance(spec, KernelSpectrum) else np.asarray(spec, dtype=np.float64)
    gamma, t, N = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64)
                                        for v in (gamma, t, n_components)))
    shape = t.shape
    gamma, t, N = gamma.ravel(), t.ravel(), N.ravel()
    out = _dof_sums(lam, gamma, t, N)
    return {k: v.reshape(shape) for k, v in out.items()}


def _dof_sums(lam, gamma, t, N, parts=None):
    n = lam.shape[0]
    pos = lam > 0
    r = int(pos.sum())
    if parts is None:
        eps, rho, _ = _resolvent_parts(lam[pos], t)
    else:
        eps, rho = parts[0][pos], parts[1][pos]
    sum_e = eps.sum(axis=0)
    sum_re = (rho * eps).sum(axis=0)
    df1 = rho.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        N_df1 = np.where(t > 0, gamma * n / np.where(t > 0, t, 1.0), N - r)
        # delta = df1/(N - df1) = df1 t/(gamma n) at the root: no difference taken
        delta = np.where(t > 0, df1 * t / (gamma * n), df1 / (N - r))
    delta = np.where(N_df1 > 0, delta, np.inf)
    return {
        "df1": df1,
        "df2": (rho * rho).sum(axis=0),
        "n_minus_df1": (n - r) + sum_e,
        "N_minus_df1": N_df1,
        "N_minus_df2": N_df1 + sum_re,
        "df1_minus_df2": sum_re,
        "delta": delta,
    }


@dataclass
class TestProjection:
    """The test set in the eigenbasis (``rmt_ridge.md`` §4): computed once per test set.

    Attributes
    ----------
    C : ndarray of shape (n, n_test)
        ``U^T Phi_test^T``.
    c : ndarray of shape (n,)
        ``sum_j C_kj^2``.
    mean_diag : float
        ``mean_j Phi(x_j, x_j)``.
    y : ndarray of shape (n_test, k) or None
        Test targets centred with the training mean.
    """

    C: np.ndarray
    c: np.ndarray
    mean_diag: float
    y: np.ndarray = None

    @classmethod
    def from_kernels(cls, U, Phi_test, diag_test, y_test_centred=None):
        C = U.T @ np.asarray(Phi_test, dtype=np.float64).T
        y = None
        if y_test_centred is not None:
            y = np.asarray(y_test_centred, dtype=np.float64)
            y = y[:, None] if y.ndim == 1 else y
        return cls(C=C, c=np.einsum("kj,kj->k", C, C),
                   mean_diag=float(np.mean(np.asarray(diag_test, dtype=np.float64))), y=y)


def _point_errors(spec, gamma, t, N, test=None, loo=False, gcv=False):
    """Errors at the points ``(gamma_g, t_g, N_g)`` (1-D arrays of equal length)."""
    lam, z2 = spec.lam, spec.z2
    n, k = spec.n, spec.n_outputs
    eps, rho, inv = _resolvent_parts(lam, t)
    dof = _dof_sums(lam, gamma, t, N, parts=(eps, rho))
    sum_re = dof["df1_minus_df2"]
    N_df2 = dof["N_minus_df2"]
    n_df1 = dof["n_minus_df1"]
    # z^T (eps^2) z, z^T (rho eps) z, z^T lam inv^2 z, each averaged over the outputs
    zz_ee = np.einsum("kg,k->g", eps * eps, z2.sum(axis=1)) / k
    zz_re = np.einsum("kg,k->g", rho * eps, z2.sum(axis=1)) / k
    zz_lii = np.einsum("kg,k->g", lam[:, None] * inv * inv, z2.sum(axis=1)) / k
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(sum_re == 0, 0.0, sum_re / N_df2)
        V = zz_lii / N_df2
    train = (zz_ee + ratio * zz_re) / n
    out = {
        "t": t,
        "train_mse": train,
        "dof": dof["df1"],
        "delta": dof["delta"],
        "V": V,
    }
    if gcv:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["gcv_mse"] = train / (n_df1 / n) ** 2
    if loo:
        out["loo_mse"] = _loo(spec, t, inv, V)
    if test is not None:
        with np.errstate(invalid="ignore"):
            B = test.mean_diag - (test.c @ ((lam[:, None] + 2.0 * t[None, :]) * inv * inv)) / (
                test.C.shape[1]
            )
        # B = 0 (up to rounding) when the test inputs lie in the span of the training inputs
        # in feature space (linear sigma with p < n): the variance term then vanishes, even
        # at the pole N = rank where V is infinite.
        B = np.where(B <= _B_RTOL * abs(test.mean_diag), 0.0, B)
        with np.errstate(invalid="ignore"):
            out["variance"] = np.where(B == 0.0, 0.0, V * B)
        out["B"] = B
        if test.y is not None:
            out["bias"] = _bias(spec.z, inv, test)
            out["test_mse"] = out["bias"] + out["variance"]
    return out


def _bias(z, inv, test):
    """``(1/n_t) ||y_t - C^T (z / (lam + t))||^2`` averaged over outputs, per point."""
    n_test, k = test.y.shape
    m = inv.shape[1]
    # A[:, g*k + o] = z[:, o] * inv[:, g]
    A = (inv[:, :, None] * z[:, None, :]).reshape(z.shape[0], m * k)
    P = (test.C.T @ A).reshape(n_test, m, k)
    res = test.y[:, None, :] - P
    return np.einsum("jgo,jgo->g", res, res) / (n_test * k)


def _loo(spec, t, inv, V):
    """RMT leave-one-out (``rmt_ridge.md`` §6), per point; O(n^2) each, BLAS-3 over the points."""
    U = spec.U
    if U is None:
        raise ValueError("the RMT leave-one-out criterion needs the eigenvectors U.")
    z = spec.z
    n, k = z.shape
    m = inv.shape[1]
    U2 = spec.U2
    Rii = U2 @ inv
    R2ii = U2 @ (inv * inv)
    A = (inv[:, :, None] * z[:, None, :]).reshape(n, m * k)
    Ry = (U @ A).reshape(n, m, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        bias = np.einsum("igo,igo->g", Ry, Ry / (Rii[:, :, None] ** 2)) / (n * k)
        post = np.mean(1.0 / Rii - t[None, :] * R2ii / Rii**2, axis=0)
        return bias + V * np.maximum(post, 0.0)


def risk_grid(spec, gammas, n_components, *, test=None, loo=True, gcv=True, max_iter=None):
    """Deterministic equivalents over a grid of ridges and widths from one eigendecomposition.

    Parameters
    ----------
    spec : KernelSpectrum
    gammas : array of shape (a,)
        Ridges >= 0 (``gamma = 0`` gives the ridgeless limits of §5).
    n_components : float or array of shape (b,)
        Widths.
    test : TestProjection, optional
        Adds ``variance`` (needs no labels), and with labels ``bias`` and ``test_mse``.
    loo, gcv : bool, default=True
        Add ``loo_mse`` (needs ``spec.U``) and ``gcv_mse``.

    Returns
    -------
    dict of arrays of shape (a,) for a scalar width, (b, a) otherwise: ``effective_alpha``
    (t), ``train_mse``, ``dof`` (df1), ``delta``, ``V`` (the variance factor), and the optional
    ``loo_mse``, ``gcv_mse``, ``variance``, ``B``, ``bias``, ``test_mse``. The criteria are not
    defined at ``gamma = 0``; use them for ``gamma > 0``.
    """
    gammas = np.atleast_1d(np.asarray(gammas, dtype=np.float64))
    scalar_n = np.ndim(n_components) == 0
    Ns = np.atleast_1d(np.asarray(n_components, dtype=np.float64))
    G, NN = np.meshgrid(gammas, Ns)  # (b, a)
    g, Nf = G.ravel(), NN.ravel()
    t = solve_effective_ridge(spec, g, Nf, max_iter=max_iter)
    out = {}
    for start in range(0, t.size, _BLOCK_POINTS):
        sl = slice(start, start + _BLOCK_POINTS)
        part = _point_errors(spec, g[sl], t[sl], Nf[sl], test=test, loo=loo, gcv=gcv)
        for key, val in part.items():
            out.setdefault(key, []).append(val)
    res = {}
    for key, parts in out.items():
        arr = np.concatenate(parts).reshape(G.shape)
        res["effective_alpha" if key == "t" else key] = arr[0] if scalar_n else arr
    return res


# =============================================================================================
# alpha="auto"
# =============================================================================================
def alpha_grid(spec, n_components, n_points=GRID_POINTS, decades=GRID_DECADES):
    """The selection grid ``s * 10^{-8..4}``, ``s = (N/n) tr(Phi)/n`` (61 points)."""
    n = spec.n
    scale = (n_components / n) * spec.trace / n
    if not np.isfinite(scale) or scale <= 0:
        scale = 1.0
    return scale * np.logspace(decades[0], decades[1], n_points)


def warn_grid_edge(criterion, grid, k):
    """UserWarning that the selection criterion is smallest at an end of its alpha grid."""
    warnings.warn(
        f"alpha_ at the grid edge: the {criterion.upper()} criterion is smallest at "
        f"alpha={grid[k]:.3g}, the {'smallest' if k == 0 else 'largest'} value of the grid "
        f"[{grid[0]:.3g}, {grid[-1]:.3g}].",
        UserWarning,
        stacklevel=3,
    )


def select_alpha(spec, n_components, *, criterion="loo", grid=None, refine=True):
    """Choose the ridge by minimising the RMT-LOO (default) or RMT-GCV criterion.

    The criterion is evaluated on ``grid`` (default :func:`alpha_grid`), batched; the global
    argmin is then refined by bounded Brent on ``log10(gamma)`` between its grid neighbours
    (xtol 0.01 decade). An argmin at an end of the grid is kept, with a ``UserWarning``.
    Multi-output targets use the output-averaged criterion.

    Parameters
    ----------
    spec : KernelSpectrum
        With ``U`` for ``criterion="loo"``.
    n_components : float
        Width ``N``.
    criterion : {"loo", "gcv"}, default="loo"
    grid : array, optional
    refine : bool, default=True

    Returns
    -------
    alpha : float
    info : dict
        ``grid``, ``values`` (the criterion on the grid), ``value`` (at ``alpha``),
        ``at_edge`` (bool), ``n_refine`` (criterion evaluations of the refinement).
    """
    if criterion not in ("loo", "gcv"):
        raise ValueError(f"criterion must be 'loo' or 'gcv', got {criterion!r}.")
    key = f"{criterion}_mse"
    grid = alpha_grid(spec, n_components) if grid is None else np.asarray(grid, dtype=float)
    values = risk_grid(spec, grid, float(n_components), loo=criterion == "loo",
                       gcv=criterion == "gcv")[key]
    finite = np.isfinite(values)
    if not np.any(finite):
        raise ValueError("the alpha-selection criterion is not finite anywhere on the grid.")
    k = int(np.argmin(np.where(finite, values, np.inf)))
    info = {"grid": grid, "values": values, "at_edge": k in (0, grid.size - 1), "n_refine": 0}
    alpha, best = float(grid[k]), float(values[k])
    if info["at_edge"]:
        warn_grid_edge(criterion, grid, k)
    elif refine:
        def crit(log_gamma):
            info["n_refine"] += 1
            val = risk_grid(spec, np.array([10.0**log_gamma]), float(n_components),
                            loo=criterion == "loo", gcv=criterion == "gcv")[key][0]
            return float(val) if np.isfinite(val) else math.inf

        res = optimize.minimize_scalar(
            crit, bounds=(math.log10(grid[k - 1]), math.log10(grid[k + 1])),
            method="bounded", options={"xatol": REFINE_XTOL},
        )
        if np.isfinite(res.fun) and res.fun < best:
            alpha, best = float(10.0**res.x), float(res.fun)
    info["value"] = best
    return alpha, info


def interpolation_peak(spec, gamma, n_components):
    """Whether ``(gamma, N)`` sits at the interpolation peak (``rmt_ridge.md`` §5, pitfall 5).

    True when ``N`` is within ``[0.9, 1.1] * rank(Phi)`` and ``gamma`` is below
    ``1e-2 * tr(Phi)/n``: the deterministic equivalent is finite but huge there and a single
    random draw deviates from it wildly.
    """
    r = spec.rank
    scale = spec.trace / spec.n if spec.trace > 0 else 1.0
    return bool(
        r > 0
        and PEAK_BAND[0] * r <= n_components <= PEAK_BAND[1] * r
        and gamma < PEAK_RIDGE * scale
    )
