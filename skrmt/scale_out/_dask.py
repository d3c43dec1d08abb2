"""The one place where skrmt imports Dask, always lazily (``import skrmt`` must not)."""

_MISSING = (
    "skrmt.scale_out needs the optional dependencies dask[array] and distributed: "
    "pip install 'skrmt[dask]'."
)


def import_dask_array():
    """``dask.array``, or an ImportError that names the extra to install."""
    try:
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(_MISSING) from exc
    return da


def import_distributed():
    """``distributed``, or an ImportError that names the extra to install."""
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(_MISSING) from exc
    return distributed


def as_row_chunked(X, rows=None, name="X"):
    """``X`` as a dask array with all columns in one chunk (rows only, ``scale_out.md`` §2).

    numpy input is wrapped (``rows`` per chunk, or dask's automatic size); a dask array keeps
    its row chunks unless ``rows`` is given. Unknown chunk sizes (NaN, e.g. after boolean
    indexing) raise: the row count must be known to build the output.
    """
    import numpy as np

    da = import_dask_array()
    if not isinstance(X, da.Array):
        X = da.from_array(np.asarray(X), chunks=(rows or "auto", -1) if np.ndim(X) == 2
                          else (rows or "auto",))
    if X.ndim not in (1, 2):
        raise ValueError(f"{name} must be a 1-D or 2-D array, got {X.ndim} dimensions.")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            f"{name} has unknown row-chunk sizes; call {name}.compute_chunk_sizes() first."
        )
    target = {0: rows} if rows is not None else {}
    if X.ndim == 2 and X.numblocks[1] > 1:
        target[1] = -1
    return X.rechunk(target) if target else X


def estimator_argument(est):
    """The estimator as a graph argument: a Delayed literal, or a scattered Future as given.

    A Delayed (``pure=False``: no hashing of a large estimator) sits once in the graph and is
    shipped once per worker that needs it; a Future from ``client.scatter(est,
    broadcast=True)`` is already on the workers.
    """
    import dask

    if _is_future(est):
        return est
    return dask.delayed(est, pure=False, traverse=False)


def _is_future(obj):
    try:
        from distributed import Future
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, Future)
