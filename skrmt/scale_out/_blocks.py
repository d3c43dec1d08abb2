"""Chunked transform and predict of any fitted estimator on a row-chunked ``dask.array``."""

import numpy as np

from ._dask import as_row_chunked, estimator_argument

__all__ = ["map_method", "predict", "transform"]


def _call_method(xb, est, method):
    # module level, so that workers unpickle it by reference
    return np.asarray(getattr(est, method)(xb))


def _output_spec(xb, est, method):
    out = _call_method(xb, est, method)
    return out.ndim, (out.shape[1] if out.ndim == 2 else None), out.dtype


def map_method(est, X, method="transform", *, rows=None):
    """Apply ``est.<method>`` block by block to the row chunks of ``X`` (lazy).

    Every skrmt transform and prediction is row-independent (a row's output depends on that
    row and the fitted state only), so the blockwise result equals the in-memory one.

    Parameters
    ----------
    est : fitted estimator or distributed.Future
        The model, or a Future from ``client.scatter(est, broadcast=True)`` (shipped once).
    X : dask.array.Array or array-like of shape (n_samples, n_features)
        Input; columns are merged into one chunk (a column chunk would split a row).
    method : str, default="transform"
        ``"transform"``, ``"predict"``, ``"predict_proba"``, ``"decision_function"``...
    rows : int, default=None
        Rows per chunk; ``None`` keeps the chunks of ``X``.

    Returns
    -------
    out : dask.array.Array of shape (n_samples,) or (n_samples, n_outputs)
        Lazy; ``compute()``, ``to_zarr()`` or reduce it. Dtype and width come from running the
        method on the first two rows (one small task).
    """
    import dask

    X = as_row_chunked(X, rows)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}.")
    if not isinstance(method, str):
        raise TypeError(f"method must be a method name (str), got {type(method).__name__}.")
    est_arg = estimator_argument(est)
    head = X[: min(2, X.shape[0])]
    ndim, width, dtype = dask.compute(dask.delayed(_output_spec)(head, est_arg, method))[0]
    meta = np.empty((0,) * ndim, dtype=dtype)
    if ndim == 2:
        return X.map_blocks(_call_method, est_arg, method, dtype=dtype, meta=meta,
                            chunks=(X.chunks[0], (width,)))
    if ndim == 1:
        return X.map_blocks(_call_method, est_arg, method, dtype=dtype, meta=meta,
                            chunks=(X.chunks[0],), drop_axis=1)
    raise ValueError(f"{method} returned a {ndim}-D array; only 1-D and 2-D outputs are chunked.")


def transform(est, X, *, rows=None):
    """Lazy ``est.transform(X)`` on the row chunks of a dask array.

    Parameters
    ----------
    est : fitted transformer or distributed.Future
    X : dask.array.Array or array-like of shape (n_samples, n_features)
    rows : int, default=None
        Rows per chunk; ``None`` keeps the chunks of ``X``. About
        ``128 MiB / ((n_features + n_components) * itemsize)`` is a good size.

    Returns
    -------
    Z : dask.array.Array of shape (n_samples, n_outputs)

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from skrmt import TernaryRandomFeatures
    >>> from skrmt.scale_out import transform
    >>> X = np.random.RandomState(0).randn(1000, 20)
    >>> trf = TernaryRandomFeatures(64, random_state=0).fit(X[:200])
    >>> Z = transform(trf, da.from_array(X, chunks=(250, 20)))
    >>> Z.chunks
    ((250, 250, 250, 250), (64,))
    >>> bool(np.array_equal(Z.compute(scheduler="synchronous"), trf.transform(X)))
    True
    """
    return map_method(est, X, "transform", rows=rows)


def predict(est, X, *, rows=None):
    """Lazy ``est.predict(X)`` on the row chunks of a dask array (1-D or 2-D output).

    Parameters
    ----------
    est : fitted predictor or distributed.Future
    X : dask.array.Array or array-like of shape (n_samples, n_features)
    rows : int, default=None

    Returns
    -------
    y_pred : dask.array.Array of shape (n_samples,) or (n_samples, n_targets)
    """
    return map_method(est, X, "predict", rows=rows)
