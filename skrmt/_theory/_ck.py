"""Single-layer conjugate kernel: its infinite-width limit and its RMT equivalent.

Rows are samples; inputs are scaled by ``1/sqrt(p)`` (library convention) so that the
pre-activation ``w^T x / sqrt(p)`` of a unit-variance weight has variance ``||x||^2 / p``.

- limit: ``K_ij = Phi(A_i, B_j, C_ij)`` with ``A = ||x_i||^2/p``, ``C = x_i^T y_j / p`` (the dual
  kernels of ``_gaussian_moments``); the self-Gram diagonal is the exact 1-D ``s2(A_i)``.
- equivalent (Liao & Couillet, ICML 2018, data form): with ``G = X Y^T / p``,
  ``delta_i = A_i - tau``,
  ``K = d1 G + d2 (delta_x delta_y^T + 2 G o G) + m0^2 + (m0 m2/2)(delta_x 1^T + 1 delta_y^T)``,
  plus ``d0 I`` and the removal of the diagonal of ``2 d2 G o G`` on a self-Gram.
"""

import numpy as np

from ._gaussian_moments import dual_kernel, dual_kernel_diag


def scaled_sqnorms(ops, X):
    """``||x_i||^2 / p`` for the rows of a device array."""
    return ops.sqnorm_rows(X) / X.shape[1]


def ck_limit_block(ops, act, Xb, Y, B=None):
    """Rows ``Xb`` against ``Y`` (device arrays) of the limiting CK; no diagonal handling."""
    p = Xb.shape[1]
    A = scaled_sqnorms(ops, Xb)
    if B is None:
        B = scaled_sqnorms(ops, Y)
    C = ops.matmul(Xb, Y.T) / p
    return dual_kernel(act, A[:, None], B[None, :], C, ops=ops)


def ck_limit_diag(ops, act, X):
    """Exact diagonal ``s2(||x_i||^2/p)`` of the limiting CK."""
    return dual_kernel_diag(act, scaled_sqnorms(ops, X), ops=ops)


def ck_equivalent_block(ops, moments, Xb, Y, tau, B=None):
    """Rows ``Xb`` against ``Y`` of the ICML-2018 equivalent, cross form (no identity term)."""
    p = Xb.shape[1]
    G = ops.matmul(Xb, Y.T) / p
    dx = scaled_sqnorms(ops, Xb) - tau
    dy = (scaled_sqnorms(ops, Y) if B is None else B) - tau
    m0, m2 = float(moments.m0), float(moments.m2)
    d1, d2 = float(moments.d1), float(moments.d2)
    K = d1 * G + d2 * (dx[:, None] * dy[None, :] + 2.0 * G * G)
    K = K + m0 * m0 + (m0 * m2 / 2.0) * (dx[:, None] + dy[None, :])
    return K


def ck_equivalent_self_diag_correction(ops, moments, X):
    """What a self-Gram's diagonal adds to the cross form: ``d0 - 2 d2 G_ii^2``."""
    Gii = scaled_sqnorms(ops, X)
    return float(moments.d0) - 2.0 * float(moments.d2) * Gii * Gii


def data_tau(X):
    """``tau_ = ||X||_F^2 / (n p)``: the mean of ``||x_i||^2/p`` (numpy or CSR input)."""
    import scipy.sparse as sp

    if sp.issparse(X):
        total = float(X.multiply(X).sum())
    else:
        Xd = np.asarray(X, dtype=np.float64)
        total = float(np.einsum("ij,ij->", Xd, Xd))
    return total / (X.shape[0] * X.shape[1])
