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
        Input; columns are merged into one chunk (a column chunk would split a row). A numpy
        array is wrapped in a dask array (``rows`` rows per chunk, or dask's automatic size).
    method : str, default="transform"
        ``"transform"``, ``"predict"``, ``"predict_proba"``, ``"decision_function"``...
    rows : int, default=None
        Rows per chunk; ``None`` keeps the chunks of ``X``.

    Returns
    -------
    out : dask.array.Array of shape (n_samples,) or (n_samples, n_outputs)
        Lazy; ``compute()``, ``to_zarr()`` or reduce it. Dtype and width come from running the
        method on the first two rows (one small task).

    Raises
    ------
    ValueError
        If ``X`` is not 2-D, has unknown row-chunk sizes, or the method returns an array of
        more than two dimensions.
    TypeError
        If ``method`` is not a string.

    See Also
    --------
    transform : ``map_method(est, X, "transform")``.
    predict : ``map_method(est, X, "predict")``.
    dask.array.Array.map_blocks : The dask primitive this builds on.

    Notes
    -----
    The graph holds the estimator once (a ``dask.delayed`` literal, not hashed) and one task
    per row chunk; on a cluster each worker receives the estimator once, with the first of
    its tasks. For a large model used by many graphs, scatter it first with
    ``client.scatter(est, broadcast=True)`` and pass the Future. Only the output's dtype and
    width are computed eagerly, from the first two rows. The method must be row-independent
    (true of every skrmt estimator and of scikit-learn's transformers and predictors); a
    method whose output for a row depends on the other rows of its chunk would give
    chunk-dependent results.

    References
    ----------
    .. [1] M. Rocklin, "Dask: parallel computation with blocked algorithms and task
       scheduling", Proc. 14th Python in Science Conf. (SciPy 2015), pp. 126-132.

    Examples
    --------
    >>> import dask
    >>> import dask.array as da
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from skrmt import TernaryRandomFeatures
    >>> from skrmt.scale_out import map_method
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(400, 40)
    >>> y = (X[:, 0] + 0.3 * rng.randn(400) > 0).astype(int)
    >>> model = make_pipeline(TernaryRandomFeatures(32, random_state=0),
    ...                       LogisticRegression()).fit(X[:100], y[:100])
    >>> proba = map_method(model, da.from_array(X, chunks=(100, 40)), "predict_proba")
    >>> proba.shape, proba.chunks[0]
    ((400, 2), (100, 100, 100, 100))
    >>> with dask.config.set(scheduler="synchronous"):
    ...     result = proba.compute()
    >>> bool(np.allclose(result, model.predict_proba(X), rtol=1e-12, atol=0))
    True
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
        The fitted transformer (any estimator with ``transform``), or a Future from
        ``client.scatter(est, broadcast=True)``.
    X : dask.array.Array or array-like of shape (n_samples, n_features)
        Input; columns are merged into one chunk, a numpy array is wrapped.
    rows : int, default=None
        Rows per chunk; ``None`` keeps the chunks of ``X``. About
        ``128 MiB / ((n_features + n_components) * itemsize)`` is a good size.

    Returns
    -------
    Z : dask.array.Array of shape (n_samples, n_outputs)
        Lazy transformed data, chunked like the rows of ``X`` with all output columns in one
        chunk; its dtype is the transformer's (float32 input stays float32 for skrmt's maps).

    See Also
    --------
    map_method : The same for any method name.
    predict : Lazy ``est.predict(X)``.
    skrmt.TernaryRandomFeatures : A feature map to apply this way.

    Notes
    -----
    Equal to ``est.transform(X)`` row for row: skrmt's feature maps are row-independent. One
    task per row chunk; the estimator is shipped once per worker (see :func:`map_method`).
    Each task holds one chunk of ``X`` and its output, so choose ``rows`` for the output
    width, not the input's.

    References
    ----------
    .. [1] M. Rocklin, "Dask: parallel computation with blocked algorithms and task
       scheduling", Proc. 14th Python in Science Conf. (SciPy 2015), pp. 126-132.

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
        The fitted predictor (any estimator with ``predict``), or a Future from
        ``client.scatter(est, broadcast=True)``.
    X : dask.array.Array or array-like of shape (n_samples, n_features)
        Input; columns are merged into one chunk, a numpy array is wrapped.
    rows : int, default=None
        Rows per chunk; ``None`` keeps the chunks of ``X``.

    Returns
    -------
    y_pred : dask.array.Array of shape (n_samples,) or (n_samples, n_targets)
        Lazy predictions, chunked like the rows of ``X``; 1-D when ``est.predict`` returns
        1-D (single target, class labels), 2-D otherwise.

    See Also
    --------
    map_method : The same for any method name (``predict_proba``, ``decision_function``...).
    transform : Lazy ``est.transform(X)``.
    fit_rmt_ridge : Fit an RMTRidge on a dask array, to predict with here.

    Notes
    -----
    Equal to ``est.predict(X)`` row for row, since predictions are row-independent. One task
    per row chunk; the estimator is shipped once per worker (see :func:`map_method`).

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
    >>> from skrmt.scale_out import predict
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(600, 10)
    >>> y = np.tanh(X[:, 0]) + 0.1 * rng.randn(600)
    >>> model = RMTRidge(64, alpha=1e-3, random_state=0).fit(X[:200], y[:200])
    >>> y_pred = predict(model, da.from_array(X, chunks=(150, 10)))
    >>> y_pred.shape, y_pred.chunks
    ((600,), ((150, 150, 150, 150),))
    >>> with dask.config.set(scheduler="synchronous"):
    ...     result = y_pred.compute()
    >>> bool(np.allclose(result, model.predict(X), rtol=1e-12, atol=0))
    True
    """
    return map_method(est, X, "predict", rows=rows)
