"""RMTRidge fitted from a row-chunked ``dask.array`` by sufficient statistics (``scale_out.md`` §3).

The readout of RMTRidge minimises ``(1/n)||Y_c - F beta||^2 + gamma ||beta||^2`` with
``F = sigma(X_std W^T)`` (n x N, never centred) and ``Y_c = Y - mean(Y)``. Its normal equations
``(F^T F + n gamma I) beta = F^T Y_c`` need only sums over row blocks:

- pass 1, the moments: ``n``, the column means of ``X`` and ``tau`` (Chan's pairwise combination
  of per-block means and centred sums of squares, stable for data far from the origin), and the
  mean of ``Y``;
- pass 2, one fused task per row block (the weights are drawn on the client in between, as in
  ``fit``): transform the block and reduce it to ``G = F^T F`` (N x N, float64),
  ``B = F^T Y_c`` (N x k) and ``||Y_c||^2`` (k), summed by a tree of fan-in ``split_every``.
  ``F`` never exists outside a task.

The client then solves one N x N system. The theory of RMTRidge (the kernel ``Phi`` of the
training inputs, ``n x n``, and its ``O(n^3)`` eigendecomposition) has no form in sums over rows,
see :func:`fit_rmt_ridge`.
"""

import copy
import math
import warnings

import numpy as np
from scipy import optimize
from sklearn.utils import check_random_state

from .._backend import DeviceCache, get_ops, resolve_device
from .._theory import _rmt_ridge_de as _de
from ..linear_model import RMTRidge
from ..linear_model._rmt_ridge import _centred_moments, solve_regularised_gram
from ..utils._sklearn_compat import validate_data
from ._dask import as_row_chunked, estimator_argument

__all__ = ["THEORY_SAMPLES", "fit_rmt_ridge", "ridge_statistics"]

# Largest n for which the theory runs on all rows (one n x n eigendecomposition on the client,
# ~5 s and 0.4 GB at 4096); above it, on a uniform subsample of this many rows.
THEORY_SAMPLES = 4096
# Points of the leave-one-out grid of the spectral selection (20 per decade over 12 decades):
# the pass that evaluates it cannot be repeated cheaply for a Brent refinement.
_LOO_GRID_POINTS = 241
_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))


# ---------------------------------------------------------------------------------------------
# block tasks (module level: workers unpickle them by reference)
# ---------------------------------------------------------------------------------------------
def _moment_block(xb):
    """``(n_b, mean_b, sum ||x - mean_b||^2)`` of one block, float64."""
    xb = np.asarray(xb, dtype=np.float64)
    mean = xb.mean(axis=0)
    centred = xb - mean
    return xb.shape[0], mean, float(np.einsum("ij,ij->", centred, centred))


def _combine_moments(parts):
    """Column mean and ``tau = (1/n) sum ||x_i - mean||^2`` from per-block moments (Chan)."""
    counts = np.array([p[0] for p in parts], dtype=np.float64)
    means = np.stack([p[1] for p in parts])
    n = counts.sum()
    mean = (counts[:, None] * means).sum(axis=0) / n
    spread = means - mean
    m2 = sum(p[2] for p in parts) + float(counts @ np.einsum("ij,ij->i", spread, spread))
    return mean, m2 / n


def _block_ops(est):
    return get_ops(resolve_device(est.device, at_predict=True), np.float64)


def _ridge_block(xb, yb, est, y_mean):
    """``(G, B, ||Y_c||^2)`` of one row block: its features are made and dropped here."""
    ops = _block_ops(est)
    F = ops.asarray(est._train_features(ops, xb), dtype=np.float64)
    Yc = np.asarray(yb, dtype=np.float64).reshape(xb.shape[0], -1) - y_mean
    G = ops.to_numpy(ops.matmul(F.T, F))
    B = ops.to_numpy(ops.matmul(F.T, ops.asarray(Yc, dtype=np.float64)))
    return np.asarray(G), np.asarray(B), np.einsum("ij,ij->j", Yc, Yc)


def _loo_block(xb, yb, est, y_mean, V, b_rot, mu, n, gammas):
    """Sum over the block's rows and outputs of the squared leave-one-out residuals, per ridge.

    With ``G = V diag(mu) V^T``, ``P = F V`` and ``s_k = 1/(mu_k + n gamma)``, the leverage is
    ``h_i = sum_k P_ik^2 s_k + 1/n`` (the ``1/n`` for the fitted mean of y) and the fitted value
    ``sum_k P_ik b_rot_k s_k``; the leave-one-out residual is ``r_i / (1 - h_i)``.
    """
    ops = _block_ops(est)
    F = np.asarray(est._train_features(ops, xb), dtype=np.float64)
    Yc = np.asarray(yb, dtype=np.float64).reshape(xb.shape[0], -1) - y_mean
    P = F @ V
    S = 1.0 / (mu[:, None] + n * gammas[None, :])  # N x n_gammas
    lev = (P * P) @ S + 1.0 / n
    out = np.zeros(gammas.size)
    for j in range(Yc.shape[1]):
        resid = Yc[:, j:j + 1] - P @ (b_rot[:, j:j + 1] * S)
        out += np.sum((resid / (1.0 - lev)) ** 2, axis=0)
    return out


def _sum_parts(*parts):
    first = parts[0]
    if isinstance(first, tuple):
        return tuple(_sum_parts(*column) for column in zip(*parts))
    total = np.array(first, dtype=np.float64, copy=True)
    for part in parts[1:]:
        total += part
    return total


def _tree_sum(parts, split_every):
    """Tree reduction of delayed parts: each task adds at most ``split_every`` of them."""
    import dask

    level = list(parts)
    while len(level) > 1:
        level = [dask.delayed(_sum_parts)(*level[i:i + split_every])
                 for i in range(0, len(level), split_every)]
    return level[0]


def _row_blocks(X, Y):
    xs = X.to_delayed().ravel()
    ys = Y.to_delayed().ravel()
    return list(zip(xs, ys))


# ---------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------
def _check_inputs(X, y, rows):
    X = as_row_chunked(X, rows, name="X")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}.")
    if X.dtype not in _FLOATS:
        X = X.astype(np.float64)
    y = as_row_chunked(y, None, name="y")
    if y.ndim == 2 and y.shape[1] == 0 or y.ndim not in (1, 2):
        raise ValueError(f"y must have shape (n_samples,) or (n_samples, n_targets), got {y.shape}.")
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X and y have inconsistent numbers of samples: {X.shape[0]} and {y.shape[0]}."
        )
    y = y.rechunk({0: X.chunks[0]})
    if not np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.complexfloating):
        raise ValueError(f"y must be real numeric, got dtype {y.dtype}.")
    return X, y


def _check_split_every(split_every):
    if isinstance(split_every, bool) or not isinstance(split_every, (int, np.integer)) \
            or split_every < 2:
        raise ValueError(f"split_every must be an integer >= 2, got {split_every!r}.")
    return int(split_every)


def _reset_fitted_state(est):
    params = est.get_params(deep=False)
    for key in list(vars(est)):
        if key not in params:
            delattr(est, key)


# ---------------------------------------------------------------------------------------------
# public: the statistics
# ---------------------------------------------------------------------------------------------
def ridge_statistics(est, X, y, *, y_mean=None, split_every=4, rows=None):
    """Sufficient statistics of a fitted RMTRidge's readout on ``(X, y)``, blockwise.

    Parameters
    ----------
    est : fitted RMTRidge
        Its feature map ``F = sigma(X_std W^T)`` (``x_mean_``, ``tau_`` and the weights) is
        applied to each row block.
    X : dask.array.Array or array-like of shape (n_samples, n_features)
        Input rows; columns are merged into one chunk, a numpy array is wrapped.
    y : dask.array.Array or array-like of shape (n_samples,) or (n_samples, n_targets)
        Targets, rechunked like the rows of ``X``.
    y_mean : array-like of shape (n_targets,), default=None
        Centre of ``y``; ``None`` uses the mean of ``y`` (one cheap extra reduction).
    split_every : int, default=4
        Fan-in of the tree sum; a reduction task holds about ``split_every + 1`` N x N float64
        arrays.
    rows : int, default=None
        Rows per chunk; ``None`` keeps the chunks of ``X``.

    Returns
    -------
    stats : dict
        ``n``; ``y_mean`` (k,); ``G = F^T F`` (N, N); ``B = F^T (Y - y_mean)`` (N, k);
        ``yy = ||Y - y_mean||^2`` per output (k,). All float64 numpy.

    Raises
    ------
    ValueError
        If ``split_every`` is not an integer >= 2, or ``X`` and ``y`` have inconsistent
        shapes or a non-numeric ``y``.

    See Also
    --------
    fit_rmt_ridge : Fits an RMTRidge from these statistics.
    spectral_gcv : Generalised cross-validation from the eigendecomposition of ``G``.
    skrmt.RMTRidge : The estimator whose readout these statistics determine.

    Notes
    -----
    One task per row block makes the block's features (float64), reduces them to its share
    of ``G``, ``B`` and ``yy`` and drops them; the shares are added by a tree of fan-in
    ``split_every``. ``F`` never exists outside a task and the result has size ``O(N^2)``
    whatever ``n``. The readout of ``est`` at ridge ``gamma`` solves the normal equations
    ``(G + n gamma I) beta = B`` (``coef_ = beta.T``, ``intercept_ = y_mean``), and its
    training MSE is ``(yy - 2 beta^T B + beta^T G beta) / n`` per output. The sums are exact
    up to rounding; their order, and hence the last bits, depends on the chunking.

    References
    ----------
    .. [1] M. Rocklin, "Dask: parallel computation with blocked algorithms and task
       scheduling", Proc. 14th Python in Science Conf. (SciPy 2015), pp. 126-132.

    Examples
    --------
    >>> import dask
    >>> import dask.array as da
    >>> import numpy as np
    >>> from skrmt import RMTRidge
    >>> from skrmt.scale_out import ridge_statistics
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(200, 10)
    >>> y = np.tanh(X[:, 0]) + 0.1 * rng.randn(200)
    >>> model = RMTRidge(32, alpha=1e-3, random_state=0).fit(X, y)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     stats = ridge_statistics(model, da.from_array(X, chunks=(50, 10)), y)
    >>> stats["n"], stats["G"].shape, stats["B"].shape
    (200, (32, 32), (32, 1))
    >>> beta = np.linalg.solve(stats["G"] + 200 * 1e-3 * np.eye(32), stats["B"])
    >>> bool(np.allclose(beta[:, 0], model.coef_, rtol=1e-9, atol=0))
    True
    """
    import dask

    split_every = _check_split_every(split_every)
    X, y = _check_inputs(X, y, rows)
    n = X.shape[0]
    if y_mean is None:
        y_mean = np.atleast_1d(np.asarray(y.astype(np.float64).mean(axis=0).compute()))
    y_mean = np.atleast_1d(np.asarray(y_mean, dtype=np.float64))
    est_arg = estimator_argument(est)
    parts = [dask.delayed(_ridge_block)(xb, yb, est_arg, y_mean) for xb, yb in _row_blocks(X, y)]
    G, B, yy = dask.compute(_tree_sum(parts, split_every))[0]
    return {"n": n, "y_mean": y_mean, "G": G, "B": B, "yy": yy}


# ---------------------------------------------------------------------------------------------
# client side: solve and spectral selection
# ---------------------------------------------------------------------------------------------
def _solve_normal(ops, G, B, n, gamma):
    """``(G + n gamma I)^{-1} B``: the primal branch of RMTRidge's readout solve, in float64."""
    sol = solve_regularised_gram(ops, G, B, gamma, n, G.shape[0])
    return np.asarray(ops.to_numpy(sol), dtype=np.float64)


def _spectral_grid(G, n, n_points):
    # the in-memory grid's scale (N/n) tr(Phi)/n, since E tr(F^T F) = N tr(Phi)
    scale = float(np.trace(G)) / n**2
    if not np.isfinite(scale) or scale <= 0:
        scale = 1.0
    return scale * np.logspace(_de.GRID_DECADES[0], _de.GRID_DECADES[1], n_points)


def spectral_gcv(mu, b_rot, yy, n, gammas):
    """Generalised cross-validation of the realised ridge fit for every ``gamma``, from ``G``.

    Parameters
    ----------
    mu : ndarray of shape (N,)
        Eigenvalues of ``G = F^T F`` (clipped at 0), as returned by ``numpy.linalg.eigh``.
    b_rot : ndarray of shape (N, k)
        The right-hand side ``B = F^T Y_c`` rotated into the eigenbasis, ``V^T B``, with
        ``G = V diag(mu) V^T``; one column per output.
    yy : float or ndarray of shape (k,)
        ``||Y_c||^2`` per output (only the sum over outputs is used).
    n : int
        Number of training rows.
    gammas : float or array-like of shape (n_gammas,)
        Ridges, in RMTRidge's convention (the readout solves ``(G + n gamma I) beta = B``).

    Returns
    -------
    gcv : ndarray of shape (n_gammas,)
        The GCV criterion at each ridge, ``(RSS / (n k)) / (1 - (df + 1)/n)^2``. It is
        meaningless once ``df + 1`` reaches ``n`` (the fit interpolates; infinite at
        equality), so callers minimise it over the finite values of a grid.

    See Also
    --------
    ridge_statistics : Computes ``G``, ``B`` and ``yy`` blockwise.
    fit_rmt_ridge : Uses this criterion for ``alpha="auto"``, ``alpha_selection="gcv"`` above
        ``theory_samples`` rows.
    sklearn.linear_model.RidgeCV : Efficient leave-one-out (not GCV) on in-memory features.

    Notes
    -----
    With ``s_j = 1/(mu_j + n gamma)`` the residual sum of squares of the ridge fit, over the
    ``k`` outputs, is ``RSS = ||Y_c||^2 - sum_j ||b_j||^2 (mu_j + 2 n gamma) s_j^2`` (``b_j``
    the ``j``-th row of ``b_rot``) and its degrees of freedom, the trace of the hat matrix,
    are ``df = sum_j mu_j s_j``; the ``+1`` counts the fitted mean of ``y``. Each ridge costs
    ``O(N k)`` once the ``O(N^3)`` eigendecomposition of ``G`` is done, so a whole grid is
    cheap and needs no pass over the data. It is the empirical criterion on the realised
    features, not RMTRidge's random-matrix estimate of the risk.

    References
    ----------
    .. [1] G. H. Golub, M. Heath and G. Wahba, "Generalized cross-validation as a method for
       choosing a good ridge parameter", Technometrics 21(2), 1979, pp. 215-223.

    Examples
    --------
    The criterion from the eigendecomposition equals the one from the hat matrix
    ``H = F (G + n gamma I)^{-1} F^T``:

    >>> import numpy as np
    >>> from skrmt.scale_out import spectral_gcv
    >>> rng = np.random.RandomState(0)
    >>> n, N = 50, 8
    >>> F = rng.randn(n, N)
    >>> Yc = rng.randn(n, 2)
    >>> Yc -= Yc.mean(axis=0)
    >>> G, B = F.T @ F, F.T @ Yc
    >>> mu, V = np.linalg.eigh(G)
    >>> gammas = np.array([1e-3, 1e-1])
    >>> gcv = spectral_gcv(mu, V.T @ B, (Yc**2).sum(axis=0), n, gammas)
    >>> H = [F @ np.linalg.solve(G + n * g * np.eye(N), F.T) for g in gammas]
    >>> direct = [np.sum((Yc - h @ Yc) ** 2) / (2 * n) / (1 - (np.trace(h) + 1) / n) ** 2
    ...           for h in H]
    >>> bool(np.allclose(gcv, direct, rtol=1e-10, atol=0))
    True
    """
    gammas = np.atleast_1d(np.asarray(gammas, dtype=np.float64))
    denom = mu[:, None] + n * gammas[None, :]
    weight = (mu[:, None] + 2.0 * n * gammas[None, :]) / denom**2
    rss = float(np.sum(yy)) - np.sum(b_rot * b_rot, axis=1) @ weight
    df = np.sum(mu[:, None] / denom, axis=0)
    k = b_rot.shape[1]
    return np.maximum(rss, 0.0) / (n * k) / (1.0 - (df + 1.0) / n) ** 2


def _eig_of_stats(G, B):
    mu, V = np.linalg.eigh(G)
    mu = np.maximum(mu, 0.0)
    return mu, V, V.T @ B


def _select_gcv(G, B, yy, n):
    mu, _, b_rot = _eig_of_stats(G, B)
    grid = _spectral_grid(G, n, _de.GRID_POINTS)
    values = spectral_gcv(mu, b_rot, yy, n, grid)
    k = int(np.argmin(np.where(np.isfinite(values), values, np.inf)))
    if k in (0, grid.size - 1):
        _de.warn_grid_edge("gcv", grid, k)
        return float(grid[k])
    res = optimize.minimize_scalar(
        lambda s: float(spectral_gcv(mu, b_rot, yy, n, 10.0**s)[0]),
        bounds=(math.log10(grid[k - 1]), math.log10(grid[k + 1])), method="bounded",
        options={"xatol": _de.REFINE_XTOL},
    )
    return float(10.0**res.x) if res.fun < values[k] else float(grid[k])


def _select_loo(G, B, blocks, est_arg, y_mean, n, split_every):
    import dask

    mu, V, b_rot = _eig_of_stats(G, B)
    grid = _spectral_grid(G, n, _LOO_GRID_POINTS)
    V_d, b_d, mu_d, grid_d = (dask.delayed(a, pure=False) for a in (V, b_rot, mu, grid))
    parts = [dask.delayed(_loo_block)(xb, yb, est_arg, y_mean, V_d, b_d, mu_d, n, grid_d)
             for xb, yb in blocks]
    values = dask.compute(_tree_sum(parts, split_every))[0] / (n * B.shape[1])
    k = int(np.argmin(np.where(np.isfinite(values), values, np.inf)))
    if k in (0, grid.size - 1):
        _de.warn_grid_edge("loo", grid, k)
    return float(grid[k]), values, grid


# ---------------------------------------------------------------------------------------------
# public: the fit
# ---------------------------------------------------------------------------------------------
def fit_rmt_ridge(est, X, y, *, theory_samples=THEORY_SAMPLES, split_every=4, rows=None):
    """Fit an RMTRidge on a row-chunked ``dask.array`` without materialising its features.

    The readout (``coef_``, ``intercept_``, ``train_mse_``) equals the in-memory
    ``est.fit(X, y)`` for the same ``random_state`` (the same weights are drawn, the same
    centring and ``alpha`` convention are used) up to the rounding of the blockwise sums.

    Two or three passes over ``X``: the moments (column means, ``tau_``, mean of ``y``); the
    fused statistics ``F^T F`` and ``F^T Y_c`` (tree sum); and, for ``alpha="auto"`` with
    ``alpha_selection="loo"`` above ``theory_samples`` rows, the leave-one-out pass. The client
    solves one ``n_components x n_components`` system.

    **The theory at scale.** ``predict_risk``, ``risk_path``, ``predicted_train_mse_`` and
    the RMT ``alpha="auto"`` need the ``n x n`` limiting kernel ``Phi`` of the training rows
    and its eigendecomposition, ``O(n^2)`` memory and ``O(n^3)`` time: they have no form in
    sums over row blocks. Hence:

    - ``n <= theory_samples``: the rows are gathered on the client and the theory runs on all
      of them, exactly as in ``fit`` (``alpha_``, ``predicted_*``, ``rank_`` ... equal the
      in-memory fit's);
    - ``n > theory_samples``: ``alpha="auto"`` is chosen from the eigendecomposition of
      ``G = F^T F`` instead, by the criterion ``alpha_selection`` applied to the realised
      features (``"gcv"``: generalised cross-validation, no extra pass; ``"loo"``: exact
      leave-one-out residuals, one more pass). This is the empirical counterpart of the RMT
      criteria (no refit, no cross-validation), not the same number. The theory state is then
      built on a uniform subsample of ``theory_samples`` rows (drawn after the weights with the
      estimator's ``random_state``) at the chosen ``alpha_``: ``predicted_train_mse_``,
      ``predict_risk`` and ``risk_path`` describe the same model (``n_components``, ``alpha_``)
      trained on those rows, not on all ``n``; the fitted attribute ``theory_n_samples_``
      records the number of rows the theory saw.

    Parameters
    ----------
    est : RMTRidge
        Unfitted or fitted (it is refitted in place); its parameters are validated as in fit.
    X : dask.array.Array or array-like of shape (n_samples, n_features)
        Dense; float32 stays float32 in the features, sums are float64.
    y : dask.array.Array or array-like of shape (n_samples,) or (n_samples, n_targets)
        Rechunked like the rows of ``X``.
    theory_samples : int, default=4096
        Rows the theory may use (its ``n x n`` kernel must fit on the client).
    split_every : int, default=4
        Fan-in of the tree reductions.
    rows : int, default=None
        Rows per chunk of ``X``; ``None`` keeps its chunks.

    Returns
    -------
    est : RMTRidge
        Fitted, with numpy state only, plus ``theory_n_samples_``.

    Raises
    ------
    TypeError
        If ``est`` is not an RMTRidge.
    ValueError
        If ``theory_samples`` or ``split_every`` is not an integer >= 2, the parameters of
        ``est`` are invalid, ``X`` and ``y`` have inconsistent shapes, there are fewer than 2
        rows, or the data contain NaN or infinity.

    See Also
    --------
    skrmt.RMTRidge : The estimator; ``fit`` is the in-memory counterpart.
    ridge_statistics : The blockwise statistics ``G``, ``B`` and ``yy`` of a fitted RMTRidge.
    spectral_gcv : The selection criterion of ``alpha="auto"`` above ``theory_samples`` rows.
    predict : Lazy predictions of the fitted model on a dask array.

    Notes
    -----
    The readout minimises ``(1/n)||Y_c - F beta||^2 + alpha ||beta||^2`` with
    ``F = sigma(X_std W^T)`` (not centred) and ``Y_c = Y - mean(Y)``, so it solves
    ``(F^T F + n alpha I) beta = F^T Y_c``, which needs only sums over row blocks. The column
    means and ``tau_`` are combined from per-block means and centred sums of squares by Chan,
    Golub and LeVeque's pairwise update [2]_, stable for data far from the origin; the
    leave-one-out residuals of ``alpha_selection="loo"`` are ``r_i / (1 - h_ii)`` with the
    leverages ``h_ii`` of the ridge hat matrix plus ``1/n`` for the fitted mean.

    Memory: each worker task holds one block of X, its features (float64) and one
    ``8 N^2``-byte partial sum; a reduction task about ``split_every + 1`` of those; the
    client 3-4 of them, plus the ``theory_samples x theory_samples`` kernel of the theory.

    References
    ----------
    .. [1] C. Louart, Z. Liao and R. Couillet, "A random matrix approach to neural networks",
       Ann. Appl. Probab. 28(2), 2018.
    .. [2] T. F. Chan, G. H. Golub and R. J. LeVeque, "Algorithms for computing the sample
       variance: analysis and recommendations", Amer. Statist. 37(3), 1983, pp. 242-247.
    .. [3] G. H. Golub, M. Heath and G. Wahba, "Generalized cross-validation as a method for
       choosing a good ridge parameter", Technometrics 21(2), 1979, pp. 215-223.
    .. [4] M. Rocklin, "Dask: parallel computation with blocked algorithms and task
       scheduling", Proc. 14th Python in Science Conf. (SciPy 2015), pp. 126-132.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from skrmt import RMTRidge
    >>> from skrmt.scale_out import fit_rmt_ridge
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(400, 10)
    >>> y = np.tanh(X[:, 0]) + 0.1 * rng.randn(400)
    >>> Xd, yd = da.from_array(X, chunks=(100, 10)), da.from_array(y, chunks=100)
    >>> model = fit_rmt_ridge(RMTRidge(64, alpha=1e-3, random_state=0), Xd, yd,
    ...                       theory_samples=200)
    >>> reference = RMTRidge(64, alpha=1e-3, random_state=0).fit(X, y)
    >>> bool(np.allclose(model.coef_, reference.coef_, rtol=1e-9, atol=0))
    True
    >>> model.theory_n_samples_
    200
    """
    import dask

    if not isinstance(est, RMTRidge):
        raise TypeError(f"est must be an RMTRidge, got {type(est).__name__}.")
    if isinstance(theory_samples, bool) or not isinstance(theory_samples, (int, np.integer)) \
            or theory_samples < 2:
        raise ValueError(f"theory_samples must be an integer >= 2, got {theory_samples!r}.")
    split_every = _check_split_every(split_every)
    est._validate_params()
    if est._is_rff():
        est._check_rff_params()
    X, y = _check_inputs(X, y, rows)
    n, p = X.shape
    est._check_n_samples_and_alpha(n)
    _reset_fitted_state(est)
    # n_features_in_ (and the checks of validate_data) from the first rows
    head = min(n, 2)
    validate_data(est, *dask.compute(X[:head], y[:head]), dtype=[np.float64, np.float32],
                  y_numeric=True, multi_output=True)
    y_1d = y.ndim == 1
    rng = check_random_state(est.random_state)
    est.device_ = resolve_device(est.device)
    ops = get_ops(est.device_, np.float64)
    N = int(est.n_components)
    small = n <= theory_samples

    # pass 1: moments (all rows gathered when the theory will use all of them)
    if small:
        X_theory, Y_theory = dask.compute(X, y)
        X_theory = np.asarray(X_theory)
        Y_theory = np.asarray(Y_theory, dtype=np.float64).reshape(n, -1)
        _check_finite(X_theory, Y_theory)
        y_mean = Y_theory.mean(axis=0)
        est.x_mean_, est.tau_ = _centred_moments(X_theory)
    else:
        parts = [dask.delayed(_moment_block)(xb) for xb in X.to_delayed().ravel()]
        moments, y_sum = dask.compute(parts, y.astype(np.float64).sum(axis=0))
        y_mean = np.atleast_1d(np.asarray(y_sum)) / n
        x_mean, tau = _combine_moments(moments)
        _check_finite(x_mean, np.asarray([tau]), y_mean)
        if tau <= 1e-300:  # identical rows, as in the in-memory fit
            tau = 1.0
        est.x_mean_, est.tau_ = x_mean, float(tau)
    est._sparse_fit = False
    est._device_cache = DeviceCache()

    # the one random draw, in the order of the in-memory fit, then the theory subsample
    if est.features == "ternary":
        est._fit_ternary_map(X_theory if small else _tau_surrogate(est, p), rng)
    else:
        rows_w = _rff_split(N)[0] if est._is_rff() else N
        est.components_ = rng.standard_normal((rows_w, p))
    idx = None if small else np.sort(rng.choice(n, size=theory_samples, replace=False))

    # pass 2: fused statistics (and the theory subsample, from the same blocks)
    blocks = _row_blocks(X, y)
    est_arg = estimator_argument(est)
    parts = [dask.delayed(_ridge_block)(xb, yb, est_arg, y_mean) for xb, yb in blocks]
    total = _tree_sum(parts, split_every)
    if small:
        G, B, yy = dask.compute(total)[0]
    else:
        (G, B, yy), X_theory, Y_theory = dask.compute(total, X[idx], y[idx])
        X_theory = np.asarray(X_theory)
        Y_theory = np.asarray(Y_theory, dtype=np.float64).reshape(idx.size, -1)

    est._X_fit = est._standardise(X_theory)
    Yc_theory = Y_theory - y_mean
    est._Yc = Yc_theory
    est._lam = est._z = est._U = None
    est._rff_kernels = est._rff_point = None
    if small:
        # exactly the in-memory theory (alpha="auto" included)
        if est._is_rff():
            est._fit_rff_theory(ops, Yc_theory, N)
        else:
            est._fit_theory(ops, Yc_theory, N)
    else:
        if est.alpha == "auto" and est.alpha_selection == "gcv":
            alpha = _select_gcv(G, B, yy, n)
        elif est.alpha == "auto":
            alpha = _select_loo(G, B, blocks, est_arg, y_mean, n, split_every)[0]
        else:
            alpha = float(est.alpha)
        _theory_at(est, ops, Yc_theory, N, alpha)
    est.theory_n_samples_ = int(X_theory.shape[0])

    # client: one N x N solve
    beta = _solve_normal(ops, G, B, n, est.alpha_)
    rss = yy - 2.0 * np.einsum("ij,ij->j", beta, B) + np.einsum("ij,ij->j", beta, G @ beta)
    est.train_mse_ = float(np.maximum(rss, 0.0).sum() / (n * beta.shape[1]))
    coef = beta.T.astype(X.dtype, copy=False)
    est.coef_ = coef[0] if y_1d else coef
    est.intercept_ = float(y_mean[0]) if y_1d else y_mean.astype(X.dtype)
    est._y_1d = y_1d
    est.memory_bytes_ = est._memory_bytes(beta.shape[1])
    return est


def _rff_split(N):
    from .._theory import _rmt_ridge_rff

    return _rmt_ridge_rff.split_components(N)


def _check_finite(*arrays):
    for a in arrays:
        if not np.all(np.isfinite(a)):
            raise ValueError("Input X or y contains NaN or infinity.")


def _tau_surrogate(est, p):
    """Two rows ``x_mean_ +- sqrt(tau_) e_1``: mean squared standardised norm exactly 1.

    The ternary feature map is fitted on the standardised data times ``sqrt(p)``, and uses from
    it only ``||.||^2 / (n p)`` (which is 1 for the full data by construction) and ``p``.
    """
    rows = np.tile(est.x_mean_, (2, 1))
    rows[0, 0] += math.sqrt(est.tau_)
    rows[1, 0] -= math.sqrt(est.tau_)
    return rows


def _theory_at(est, ops, Yc, N, alpha):
    """The in-memory theory state at a given ridge, on ``est._X_fit`` (a subsample here)."""
    proxy = copy.copy(est)
    proxy.alpha = alpha
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if proxy._is_rff():
            proxy._fit_rff_theory(ops, Yc, N)
        else:
            proxy._fit_theory(ops, Yc, N)
    for w in caught:
        if "interpolation peak" in str(w.message):
            # the peak is the subsample's (rank <= theory_samples), not the fit's
            warnings.warn(
                f"theory_samples={Yc.shape[0]} puts the subsampled theory at its interpolation "
                f"peak (n_components={N} within 10% of its kernel rank): predicted_train_mse_, "
                "predict_risk and risk_path describe a model at its double-descent peak. The "
                "fitted coefficients are not affected; choose theory_samples away from "
                "n_components.",
                UserWarning,
                stacklevel=3,
            )
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    params = est.get_params(deep=False)
    for key, value in vars(proxy).items():
        if key not in params:
            setattr(est, key, value)
