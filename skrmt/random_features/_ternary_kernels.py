"""Multiplication-free ternary projection: codes of ``sign-threshold(W x)`` for ternary ``W``.

For every row ``x`` of ``X`` and every component ``k`` of a ternary matrix ``W`` (held as two
binary patterns, the +1 and the -1 positions, see ``_ternary_matrix.py``)::

    T_k = sum_{j in plus[k]} x_j - sum_{j in minus[k]} x_j
    code = levels[0] if T_k < low else levels[2] if T_k > high else levels[1]

Three functions:

- :func:`ternary_codes_reference` -- numpy/scipy (two transient CSR products); the reference
  the fast path is tested against;
- :func:`prepare_ternary_kernel` -- turns the two patterns into a :class:`TernaryKernelPlan`
  (padded, pre-scaled, tiled index lists) once per fitted model;
- :func:`ternary_codes` -- the fast path (numba), falling back to a plain numba kernel and then
  to the reference when a kernel cannot be compiled on this machine.

Why a hand-made kernel (design README, correction 3): at the benchmark size (p = 784, N = 4096,
sparsity 0.9) no library sparse product beats dense BLAS, and plain numba loops lose too because
LLVM cannot prove that the accumulators do not alias the input block, so it stores every partial
sum. Here a 16-lane vector type is defined through ``numba.extending.intrinsic`` (llvmlite IR, no
C compiler): 16 samples are transposed into a per-thread buffer (one row per input feature, plus
a negated copy so that the -1 entries are additions too, plus one zero row as the padding
target), and 8 components are accumulated at once in 8 vector registers, one ``add`` with a
memory operand per nonzero. Components are reordered by list length within windows of 128
so that the members of a tile need almost no padding. Codes are compared and selected in vector
form, scattered into a small staging tile whose row stride avoids cache-set aliasing, and copied
row-wise into the output. Dense components (sparsity below about 1/3) are summed through their
zeros instead, ``T = 2 sum_plus x + sum_zero x - sum_all x`` (or the mirror with the -1
entries), with ``2x = x + x`` and ``sum_all x`` precomputed per block: about half the additions
at sparsity 0.

Summation order differs from the reference's, so an entry whose ``T`` lies within floating
rounding of a threshold may get the other code (design note trf.md, pitfall 11); everything
else is identical. Thresholds and levels are rounded to ``X``'s dtype and the comparison is
done in that dtype on both paths.
"""

import threading

import numpy as np
import scipy.sparse as sp

__all__ = [
    "TernaryKernelPlan",
    "prepare_ternary_kernel",
    "ternary_codes",
    "ternary_codes_reference",
]

# Samples per block = lanes of the vector type (512 bits in float32; LLVM splits it on CPUs
# with narrower vectors).
LANES = 16
# Components accumulated together; their 8 accumulators stay in registers.
TILE = 8
# Components per output window. Within a window components are reordered by their number of
# nonzeros, so that the members of a tile have nearly equal list lengths and the padding of a
# tile to its longest member costs almost nothing; the window is small enough for its staging
# tile (LANES x WINDOW) to stay in the L1 cache while the scattered codes are written.
WINDOW = 128
# Row stride of the staging tile: not a multiple of 4 KiB, so that the 16 rows of one column
# fall into different cache sets.
_STAGE_STRIDE = WINDOW + 8

_METHODS = ("auto", "numba", "reference")


# --------------------------------------------------------------------------------- validation
def _check_pattern(pattern, name):
    try:
        indptr, indices = pattern
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an (indptr, indices) pair of arrays.") from None
    indptr = np.asarray(indptr)
    indices = np.asarray(indices)
    if indptr.ndim != 1 or indices.ndim != 1 or indptr.shape[0] < 1:
        raise ValueError(f"{name}: indptr and indices must be 1-D and indptr non-empty.")
    if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":
        raise TypeError(f"{name}: indptr and indices must have an integer dtype.")
    if indptr[0] != 0 or indptr[-1] != indices.shape[0] or np.any(np.diff(indptr) < 0):
        raise ValueError(
            f"{name}: indptr must start at 0, be non-decreasing and end at len(indices)."
        )
    if indices.shape[0] and indices.dtype.kind == "i" and indices.min() < 0:
        raise ValueError(f"{name}: indices must be non-negative.")
    return indptr, indices


def _check_patterns(plus, minus, n_features=None):
    plus = _check_pattern(plus, "plus")
    minus = _check_pattern(minus, "minus")
    if plus[0].shape[0] != minus[0].shape[0]:
        raise ValueError(
            "plus and minus must describe the same number of components "
            f"({plus[0].shape[0] - 1} != {minus[0].shape[0] - 1})."
        )
    if n_features is not None:
        for name, (_, indices) in (("plus", plus), ("minus", minus)):
            if indices.shape[0] and int(indices.max()) >= n_features:
                raise ValueError(
                    f"{name}: column index {int(indices.max())} out of range for "
                    f"{n_features} input features."
                )
    return plus, minus


def _check_X(X):
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}.")
    if X.dtype not in (np.float32, np.float64):
        raise TypeError(f"X must be float32 or float64, got dtype {X.dtype}.")
    return np.ascontiguousarray(X)


def _check_thresholds(low, high, levels, dtype):
    try:
        low = float(low)
        high = float(high)
    except (TypeError, ValueError):
        raise TypeError("low and high must be real scalars.") from None
    if np.isnan(low) or np.isnan(high):
        raise ValueError("low and high must not be NaN.")
    if low > high:
        raise ValueError(f"low must be <= high, got low={low!r} > high={high!r}.")
    levels = np.asarray(levels, dtype=np.float64)
    if levels.shape != (3,):
        raise ValueError(f"levels must hold exactly 3 values, got shape {levels.shape}.")
    dt = np.dtype(dtype).type
    return dt(low), dt(high), tuple(dt(v) for v in levels)


def _check_out(out, shape, dtype):
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError("out must be a numpy array.")
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(
            f"out must have shape {shape} and dtype {np.dtype(dtype)}, "
            f"got {out.shape} {out.dtype}."
        )
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be C-contiguous and writeable.")
    return out


def _parse_call(X, plus, minus, low, high, levels):
    """Normalise both call forms to (X, plan or None, plus, minus, low, high, levels)."""
    if isinstance(plus, TernaryKernelPlan):
        plan = plus
        if minus is not None:
            # Plan form called positionally: the values sit one slot to the left.
            if levels is None:
                low, high, levels = minus, low, high
            elif low is not None and high is not None:
                raise TypeError("with a TernaryKernelPlan pass only low, high and levels.")
            else:
                low, high = minus, (low if low is not None else high)
        if low is None or high is None or levels is None:
            raise TypeError("low, high and levels are required.")
        X = _check_X(X)
        if X.shape[1] != plan.n_features:
            raise ValueError(
                f"X has {X.shape[1]} features, the plan expects {plan.n_features}."
            )
        return X, plan, plan.plus, plan.minus, low, high, levels
    if minus is None or low is None or high is None or levels is None:
        raise TypeError("plus, minus, low, high and levels are required.")
    X = _check_X(X)
    plus, minus = _check_patterns(plus, minus, X.shape[1])
    return X, None, plus, minus, low, high, levels


# ---------------------------------------------------------------------------------- reference
def ternary_codes_reference(
    X, plus, minus=None, low=None, high=None, levels=None, *, out=None, n_threads=None
):
    """Ternary codes by scipy CSR products (the reference).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
        Input rows.
    plus, minus : tuple of (indptr, indices)
        The +1 and the -1 positions of each of the ``n_components`` rows of ``W`` in CSR form
        without data (``TernaryMatrix.patterns()``); ``indptr`` has length ``n_components + 1``,
        ``indices`` are column indices into the input features (any unsigned or signed integer
        dtype). As in :func:`ternary_codes`, a :class:`TernaryKernelPlan` may replace both
        (``ternary_codes_reference(X, plan, low, high, levels)``); its patterns are used.
    low, high : float
        Thresholds on ``T = W x`` (``low <= high``), rounded to ``X``'s dtype.
    levels : sequence of 3 floats
        Output values for ``T < low``, ``low <= T <= high`` and ``T > high`` (rounded to ``X``'s
        dtype). A NaN ``T`` gets ``levels[1]``.
    out : ndarray of shape (n_samples, n_components), optional
        C-contiguous array of ``X``'s dtype to write into.
    n_threads : None
        Ignored (the scipy products are single-threaded); accepted for drop-in calls.

    Returns
    -------
    out : ndarray of shape (n_samples, n_components)
        The codes, in ``X``'s dtype.

    Notes
    -----
    ``T`` is computed as ``X @ P.T - X @ M.T`` with transient float CSR matrices ``P`` and ``M``
    of ``X``'s dtype, by row chunks to bound the transient memory.
    """
    X, _, plus, minus, low, high, levels = _parse_call(X, plus, minus, low, high, levels)
    low, high, (l0, l1, l2) = _check_thresholds(low, high, levels, X.dtype)
    n, p = X.shape
    n_components = plus[0].shape[0] - 1
    out = _check_out(out, (n, n_components), X.dtype)

    def as_csr(pattern):
        indptr, indices = pattern
        data = np.ones(indices.shape[0], dtype=X.dtype)
        return sp.csr_matrix(
            (data, indices.astype(np.int64), indptr.astype(np.int64)), shape=(n_components, p)
        )

    P_t = as_csr(plus).T.tocsr()
    M_t = as_csr(minus).T.tocsr()
    chunk = max(1, (1 << 24) // max(1, n_components))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        Xc = X[start:stop]
        T = np.asarray(Xc @ P_t, dtype=X.dtype) - np.asarray(Xc @ M_t, dtype=X.dtype)
        codes = np.full(T.shape, l1, dtype=X.dtype)
        codes[T < low] = l0
        codes[T > high] = l2
        out[start:stop] = codes
    return out


# --------------------------------------------------------------------------------------- plan
class TernaryKernelPlan:
    """Index lists of a ternary matrix laid out for the vector kernel (opaque).

    Built by :func:`prepare_ternary_kernel`; holds numpy arrays only, so it pickles. The
    original patterns are kept (by reference) for the reference and fallback paths.

    Attributes
    ----------
    n_features : int
    n_components : int
    plus, minus : tuple of (indptr, indices)
        The patterns the plan was built from.
    indices : ndarray of int32
        Per tile of ``TILE`` components, the interleaved index lists (row ``e`` of a tile holds
        the ``e``-th entry of each member), pre-scaled by ``LANES``: with ``p = n_features``,
        entry ``j`` stands for ``x_j``, ``p + j`` for ``-x_j``, ``2p + j`` for ``2 x_j``,
        ``3p + j`` for ``-2 x_j``, ``4p`` for ``s = sum_j x_j``, ``4p + 1`` for ``-s``, and the
        padding row (``2p``, or ``4p + 2`` if ``wide``) holds zeros.
    tile_ptr : ndarray of int64
        Start of each tile in ``indices``.
    columns : ndarray of int32
        Column, within its ``WINDOW``, of each tile member; ``WINDOW`` for padding members.
    wide : bool
        Whether some component goes through its zeros (``2x``, ``-2x`` and ``s`` rows needed).
    nbytes : int
        Bytes held by the plan's own arrays (not counting the patterns).
    """

    def __init__(self, n_features, n_components, plus, minus, indices, tile_ptr, columns, wide):
        self.n_features = int(n_features)
        self.wide = bool(wide)
        self.n_components = int(n_components)
        self.plus = plus
        self.minus = minus
        self.indices = indices
        self.tile_ptr = tile_ptr
        self.columns = columns

    @property
    def nbytes(self):
        return int(self.indices.nbytes + self.tile_ptr.nbytes + self.columns.nbytes)

    def __repr__(self):
        return (
            f"TernaryKernelPlan(n_features={self.n_features}, n_components={self.n_components}, "
            f"nbytes={self.nbytes})"
        )


def prepare_ternary_kernel(plus, minus, n_features):
    """Lay out the +1/-1 patterns of a ternary matrix for :func:`ternary_codes`.

    Parameters
    ----------
    plus, minus : tuple of (indptr, indices)
        The +1 and -1 positions per component (``TernaryMatrix.patterns()``).
    n_features : int
        Number of input features ``p`` (columns of ``W``).

    Returns
    -------
    plan : TernaryKernelPlan
        Picklable; cache it once per fitted model and pass it to :func:`ternary_codes`.
    """
    n_features = int(n_features)
    if n_features < 1:
        raise ValueError(f"n_features must be >= 1, got {n_features}.")
    if (4 * n_features + 3) * LANES >= 2**31:
        raise ValueError(f"n_features={n_features} is too large for int32 kernel indices.")
    plus, minus = _check_patterns(plus, minus, n_features)
    n_components = plus[0].shape[0] - 1
    p = n_features

    n_plus = np.diff(plus[0]).astype(np.int64)
    n_minus = np.diff(minus[0]).astype(np.int64)
    n_zero = p - n_plus - n_minus
    # Dense components are cheaper through their zeros: with s = sum_j x_j,
    # T = 2 sum_plus x + sum_zero x - s = s - 2 sum_minus x - sum_zero x, which needs
    # min(n_plus, n_minus) + n_zero + 1 additions instead of n_plus + n_minus (2x = x + x is
    # precomputed per block: still no multiplication). At sparsity 0 this halves the work.
    cost = np.stack([n_plus + n_minus, n_plus + n_zero + 1, n_minus + n_zero + 1])
    form = np.argmin(cost, axis=0)  # first minimum: the direct form on ties
    counts = cost[form, np.arange(n_components)]
    wide = bool(np.any(form > 0))
    pad = (4 * p + 2) if wide else 2 * p

    # Order within each window by count (stable, so equal counts keep their order).
    window_id = np.arange(n_components) // WINDOW
    order = np.lexsort((counts, window_id)).astype(np.int64)
    n_tiles = -(-n_components // TILE)
    n_slots = n_tiles * TILE
    slot_count = np.zeros(n_slots, dtype=np.int64)
    slot_count[:n_components] = counts[order]
    tile_len = slot_count.reshape(n_tiles, TILE).max(axis=1) if n_tiles else np.zeros(0, np.int64)
    tile_ptr = np.zeros(n_tiles + 1, dtype=np.int64)
    np.cumsum(tile_len * TILE, out=tile_ptr[1:])

    columns = np.full(n_slots, WINDOW, dtype=np.int32)
    columns[:n_components] = order % WINDOW

    # Entry e of component k's list goes to row e of k's tile, column (k's slot in the tile).
    # Buffer rows (see _vector_kernel_py): x_j at j, -x_j at p + j, 2x_j at 2p + j, -2x_j at
    # 3p + j, s at 4p, -s at 4p + 1, zeros at the padding row.
    slot_of = np.empty(n_components, dtype=np.int64)
    slot_of[order] = np.arange(n_components)
    slot_base = tile_ptr[slot_of // TILE] + slot_of % TILE
    indices = np.full(int(tile_ptr[-1]), pad * LANES, dtype=np.int32)
    filled = np.zeros(n_components, dtype=np.int64)  # entries placed so far per component

    def place(comp, rank, rows):
        target = slot_base[comp] + (filled[comp] + rank) * TILE
        indices[target] = rows * LANES

    def place_pattern(indptr, idx, keep, shift):
        comp = np.repeat(np.arange(n_components), np.diff(indptr).astype(np.int64))
        rank = np.arange(idx.shape[0], dtype=np.int64) - indptr[:-1].astype(np.int64)[comp]
        sel = keep[comp]
        place(comp[sel], rank[sel], idx[sel].astype(np.int64) + shift[comp[sel]])
        filled[:] += np.where(keep, np.diff(indptr), 0)

    place_pattern(*plus, form != 2, np.where(form == 1, 2 * p, 0))
    place_pattern(*minus, form != 1, np.where(form == 2, 3 * p, p))
    dense = np.flatnonzero(form > 0)
    step = max(1, (1 << 24) // p)
    for start in range(0, dense.shape[0], step):
        ks = dense[start : start + step]
        mask = np.ones((ks.shape[0], p), dtype=bool)
        for indptr, idx in (plus, minus):
            sizes = (indptr[ks + 1] - indptr[ks]).astype(np.int64)
            local = np.repeat(np.arange(ks.shape[0]), sizes)
            starts = np.repeat(indptr[ks].astype(np.int64) - np.cumsum(sizes) + sizes, sizes)
            mask[local, idx[starts + np.arange(sizes.sum())]] = False
        local, j = np.nonzero(mask)
        comp = ks[local]
        rank = np.arange(j.shape[0]) - np.searchsorted(local, local)
        place(comp, rank, j + np.where(form[comp] == 1, 0, p))
    filled[dense] += n_zero[dense]
    place(dense, np.zeros(dense.shape[0], np.int64), np.where(form[dense] == 1, 4 * p + 1, 4 * p))
    return TernaryKernelPlan(p, n_components, plus, minus, indices, tile_ptr, columns, wide)


# ------------------------------------------------------------------------------ numba kernels
# The kernel bodies are plain module-level functions; ``_numba`` imports numba, puts the
# intrinsics and ``prange`` into this module's globals and jit-compiles them (lazily: numba is
# imported on first use only). Module-level functions keep numba's on-disk cache usable.


def _vector_kernel_py(X, idx, tile_ptr, columns, wide, low, high, l0, l1, l2, out, n_chunks):
    n, p = X.shape
    n_out = out.shape[1]
    n_blocks = (n + LANES - 1) // LANES
    n_tiles = tile_ptr.shape[0] - 1
    tiles_per_window = WINDOW // TILE
    n_windows = (n_tiles + tiles_per_window - 1) // tiles_per_window
    n_rows = 4 * p + 3 if wide else 2 * p + 1
    for chunk in prange(n_chunks):  # noqa: F821 (numba.prange, injected by _numba)
        b_start = chunk * n_blocks // n_chunks
        b_stop = (chunk + 1) * n_blocks // n_chunks
        # One 64-byte aligned transposed block per chunk: row j holds x_j of the LANES samples,
        # row p + j holds -x_j; if wide, rows 2p + j and 3p + j hold 2x_j and -2x_j and rows
        # 4p, 4p + 1 hold s = sum_j x_j and -s; the last row is the zero padding target.
        raw = np.empty(n_rows * LANES + LANES, dtype=X.dtype)
        shift = ((64 - raw.ctypes.data % 64) % 64) // raw.itemsize
        buf = raw[shift : shift + n_rows * LANES]
        for r in range(LANES):
            buf[(n_rows - 1) * LANES + r] = 0
        stage = np.empty((LANES, _STAGE_STRIDE), dtype=X.dtype)
        for b in range(b_start, b_stop):
            i0 = b * LANES
            rows = min(LANES, n - i0)
            for r in range(rows):
                if wide:
                    total = buf[(n_rows - 1) * LANES]  # a zero of X's dtype
                    for j in range(p):
                        v = X[i0 + r, j]
                        total += v
                        buf[j * LANES + r] = v
                        buf[(p + j) * LANES + r] = -v
                        buf[(2 * p + j) * LANES + r] = v + v
                        buf[(3 * p + j) * LANES + r] = -(v + v)
                    buf[4 * p * LANES + r] = total
                    buf[(4 * p + 1) * LANES + r] = -total
                else:
                    for j in range(p):
                        v = X[i0 + r, j]
                        buf[j * LANES + r] = v
                        buf[(p + j) * LANES + r] = -v
            # Lanes past the last sample only produce codes that are never copied; zero them
            # anyway so that stale bits cannot be slow denormals.
            for r in range(rows, LANES):
                for j in range(n_rows - 1):
                    buf[j * LANES + r] = 0
            for w in range(n_windows):
                t_stop = min((w + 1) * tiles_per_window, n_tiles)
                for t in range(w * tiles_per_window, t_stop):
                    _tile(  # noqa: F821 (resolved by the overload in _define_intrinsics)
                        buf, idx, tile_ptr[t], tile_ptr[t + 1], stage, columns, t * TILE,
                        low, high, l0, l1, l2,
                    )
                c0 = w * WINDOW
                width = min(WINDOW, n_out - c0)
                for r in range(rows):
                    for c in range(width):
                        out[i0 + r, c0 + c] = stage[r, c]


def _tile(buf, idx, q0, q1, stage, columns, s, low, high, l0, l1, l2):
    """Accumulate one tile (entries ``q0:q1`` of ``idx``) and scatter its codes into ``stage``.

    A stub: numba resolves it (``_define_intrinsics``) to ``_tile_8`` for float32 and to
    ``_tile_4x2`` for float64, where 8 accumulators of 16 doubles would not fit in registers.
    """
    raise NotImplementedError("only callable from the numba kernel")


def _tile_8(buf, idx, q0, q1, stage, columns, s, low, high, l0, l1, l2):
    a0 = _vzero(buf)  # noqa: F821 (intrinsics injected by _numba)
    a1 = _vzero(buf)  # noqa: F821
    a2 = _vzero(buf)  # noqa: F821
    a3 = _vzero(buf)  # noqa: F821
    a4 = _vzero(buf)  # noqa: F821
    a5 = _vzero(buf)  # noqa: F821
    a6 = _vzero(buf)  # noqa: F821
    a7 = _vzero(buf)  # noqa: F821
    for q in range(q0, q1, TILE):
        a0 = _vacc(a0, buf, idx, q)  # noqa: F821
        a1 = _vacc(a1, buf, idx, q + 1)  # noqa: F821
        a2 = _vacc(a2, buf, idx, q + 2)  # noqa: F821
        a3 = _vacc(a3, buf, idx, q + 3)  # noqa: F821
        a4 = _vacc(a4, buf, idx, q + 4)  # noqa: F821
        a5 = _vacc(a5, buf, idx, q + 5)  # noqa: F821
        a6 = _vacc(a6, buf, idx, q + 6)  # noqa: F821
        a7 = _vacc(a7, buf, idx, q + 7)  # noqa: F821
    _vcode_scatter(a0, stage, columns[s], low, high, l0, l1, l2)  # noqa: F821
    _vcode_scatter(a1, stage, columns[s + 1], low, high, l0, l1, l2)  # noqa: F821
    _vcode_scatter(a2, stage, columns[s + 2], low, high, l0, l1, l2)  # noqa: F821
    _vcode_scatter(a3, stage, columns[s + 3], low, high, l0, l1, l2)  # noqa: F821
    _vcode_scatter(a4, stage, columns[s + 4], low, high, l0, l1, l2)  # noqa: F821
    _vcode_scatter(a5, stage, columns[s + 5], low, high, l0, l1, l2)  # noqa: F821
    _vcode_scatter(a6, stage, columns[s + 6], low, high, l0, l1, l2)  # noqa: F821
    _vcode_scatter(a7, stage, columns[s + 7], low, high, l0, l1, l2)  # noqa: F821


def _tile_4x2(buf, idx, q0, q1, stage, columns, s, low, high, l0, l1, l2):
    for h in range(0, TILE, 4):
        a0 = _vzero(buf)  # noqa: F821
        a1 = _vzero(buf)  # noqa: F821
        a2 = _vzero(buf)  # noqa: F821
        a3 = _vzero(buf)  # noqa: F821
        for q in range(q0 + h, q1, TILE):
            a0 = _vacc(a0, buf, idx, q)  # noqa: F821
            a1 = _vacc(a1, buf, idx, q + 1)  # noqa: F821
            a2 = _vacc(a2, buf, idx, q + 2)  # noqa: F821
            a3 = _vacc(a3, buf, idx, q + 3)  # noqa: F821
        _vcode_scatter(a0, stage, columns[s + h], low, high, l0, l1, l2)  # noqa: F821
        _vcode_scatter(a1, stage, columns[s + h + 1], low, high, l0, l1, l2)  # noqa: F821
        _vcode_scatter(a2, stage, columns[s + h + 2], low, high, l0, l1, l2)  # noqa: F821
        _vcode_scatter(a3, stage, columns[s + h + 3], low, high, l0, l1, l2)  # noqa: F821


def _scalar_kernel_py(X, pp, pi, mp, mi, low, high, l0, l1, l2, zero, out):
    n = X.shape[0]
    n_out = out.shape[1]
    for i in prange(n):  # noqa: F821
        for k in range(n_out):
            s = zero
            for q in range(pp[k], pp[k + 1]):
                s += X[i, pi[q]]
            m = zero
            for q in range(mp[k], mp[k + 1]):
                m += X[i, mi[q]]
            t = s - m
            if t < low:
                out[i, k] = l0
            elif t > high:
                out[i, k] = l2
            else:
                out[i, k] = l1


def _define_intrinsics(numba):
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic, models, overload, register_model

    class VecType(types.Type):
        """``LANES`` values of one float dtype, held as one LLVM vector."""

        def __init__(self, dtype):
            self.dtype = dtype
            super().__init__(name=f"skrmt_ternary_vec{LANES}[{dtype}]")

    @register_model(VecType)
    class VecModel(models.PrimitiveModel):
        def __init__(self, dmm, fe_type):
            element = dmm.lookup(fe_type.dtype).get_value_type()
            super().__init__(dmm, fe_type, ir.VectorType(element, LANES))

    i32 = ir.IntType(32)
    i64 = ir.IntType(64)

    def data_ptr(context, builder, aryty, ary):
        return cgutils.create_struct_proxy(aryty)(context, builder, value=ary).data

    def splat(builder, value, vecty):
        one = builder.insert_element(ir.Constant(vecty, ir.Undefined), value, ir.Constant(i32, 0))
        mask = ir.Constant(ir.VectorType(i32, LANES), None)
        return builder.shuffle_vector(one, ir.Constant(vecty, ir.Undefined), mask)

    @intrinsic
    def vzero(typingctx, arr):
        """A zero vector of ``arr``'s dtype."""
        vt = VecType(arr.dtype)

        def codegen(context, builder, sig, args):
            return ir.Constant(context.get_value_type(vt), None)

        return vt(arr), codegen

    @intrinsic
    def vacc(typingctx, acc, buf, idx, pos):
        """``acc + buf[idx[pos] : idx[pos] + LANES]``, unchecked (the plan keeps it in bounds)."""

        def codegen(context, builder, sig, args):
            a, b, ix, ps = args
            vt = context.get_value_type(sig.args[0])
            idx_data = data_ptr(context, builder, sig.args[2], ix)
            offset = builder.load(builder.gep(idx_data, [ps], inbounds=True))
            offset = builder.sext(offset, i64)
            ptr = builder.gep(data_ptr(context, builder, sig.args[1], b), [offset], inbounds=True)
            element_size = context.get_abi_sizeof(vt.element)
            v = builder.load(builder.bitcast(ptr, vt.as_pointer()), align=element_size)
            return builder.fadd(a, v)

        return acc(acc, buf, idx, pos), codegen

    @intrinsic
    def vcode_scatter(typingctx, acc, stage, col, low, high, l0, l1, l2):
        """``stage[r, col] = code(acc[r])`` for the ``LANES`` rows of a 2-D ``stage``."""

        def codegen(context, builder, sig, args):
            a, st, cl = args[:3]
            vt = context.get_value_type(sig.args[0])
            dtype = sig.args[0].dtype
            scalars = [
                context.cast(builder, v, t, dtype) for v, t in zip(args[3:], sig.args[3:])
            ]
            lo, hi, v0, v1, v2 = [splat(builder, v, vt) for v in scalars]
            below = builder.fcmp_ordered("<", a, lo)
            above = builder.fcmp_ordered(">", a, hi)
            codes = builder.select(below, v0, builder.select(above, v2, v1))
            proxy = cgutils.create_struct_proxy(sig.args[1])(context, builder, value=st)
            row_stride = cgutils.unpack_tuple(builder, proxy.strides, 2)[0]
            element_size = context.get_abi_sizeof(vt.element)
            cl = context.cast(builder, cl, sig.args[2], types.int64)
            base = builder.mul(cl, ir.Constant(i64, element_size))
            bytes_ptr = builder.bitcast(proxy.data, ir.IntType(8).as_pointer())
            for lane in range(LANES):
                offset = builder.add(base, builder.mul(ir.Constant(i64, lane), row_stride))
                ptr = builder.gep(bytes_ptr, [offset], inbounds=True)
                ptr = builder.bitcast(ptr, vt.element.as_pointer())
                value = builder.extract_element(codes, ir.Constant(i32, lane))
                builder.store(value, ptr, align=element_size)
            return context.get_dummy_value()

        return types.none(acc, stage, col, low, high, l0, l1, l2), codegen

    @overload(_tile, inline="always")
    def tile_overload(buf, idx, q0, q1, stage, columns, s, low, high, l0, l1, l2):
        return _tile_8 if buf.dtype == types.float32 else _tile_4x2

    return vzero, vacc, vcode_scatter


class _NumbaState:
    """Lazily built numba dispatchers and what failed, per kernel kind."""

    def __init__(self):
        self.lock = threading.Lock()  # serialises kernel launches where needed
        self.init_lock = threading.Lock()  # one import / intrinsic definition / jit per process
        self.numba = None
        self.import_error = None
        self.kernels = {}
        self.failed = {}  # (kind, dtype) -> repr of the exception
        self.serialize = True  # until the threading layer is known to be thread-safe


_STATE = _NumbaState()


def _numba():
    with _STATE.init_lock:
        return _numba_locked()


def _numba_locked():
    if _STATE.numba is None and _STATE.import_error is None:
        try:
            import numba
        except Exception as exc:  # pragma: no cover - numba is a dependency
            _STATE.import_error = repr(exc)
            return None
        globals()["prange"] = numba.prange
        try:
            vzero, vacc, vscatter = _define_intrinsics(numba)
        except Exception as exc:  # pragma: no cover - depends on numba internals
            _STATE.failed["intrinsics"] = repr(exc)
        else:
            globals().update(_vzero=vzero, _vacc=vacc, _vcode_scatter=vscatter)
        _STATE.numba = numba
    return _STATE.numba


def _jit(kind):
    numba = _numba()
    if numba is None:
        return None
    with _STATE.init_lock:
        if kind in _STATE.kernels:
            return _STATE.kernels[kind]
        py_func = _vector_kernel_py if kind == "vector" else _scalar_kernel_py
        options = dict(parallel=True, boundscheck=False, nogil=True)
        try:
            dispatcher = numba.njit(cache=True, **options)(py_func)
        except Exception:
            # No usable cache location: compile in memory.
            dispatcher = numba.njit(cache=False, **options)(py_func)
        _STATE.kernels[kind] = dispatcher
    return _STATE.kernels[kind]


class _Threads:
    """Context manager setting numba's thread count (thread-local in numba) and restoring it."""

    def __init__(self, numba, n_threads):
        self.numba = numba
        self.n_threads = n_threads

    def __enter__(self):
        self.previous = self.numba.get_num_threads()
        self.numba.set_num_threads(self.n_threads)
        return self

    def __exit__(self, *exc):
        self.numba.set_num_threads(self.previous)
        return False


def _check_n_threads(n_threads):
    if n_threads is None:
        return None
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)):
        raise TypeError(f"n_threads must be None or an int, got {n_threads!r}.")
    n_threads = int(n_threads)
    if n_threads != -1 and n_threads < 1:
        raise ValueError(f"n_threads must be None, -1 or >= 1, got {n_threads}.")
    return n_threads


def _resolve_threads(numba, n_threads):
    limit = int(numba.config.NUMBA_NUM_THREADS)
    if n_threads is None:
        return numba.get_num_threads()
    return limit if n_threads == -1 else min(n_threads, limit)


def _run(kind, dtype, args, n_threads):
    """Run one numba kernel kind on ``args(threads)``; False (reason recorded) if it fails."""
    key = (kind, dtype.name)
    if key in _STATE.failed or (kind == "vector" and "intrinsics" in _STATE.failed):
        return False
    dispatcher = _jit(kind)
    if dispatcher is None:
        return False
    numba = _STATE.numba
    threads = _resolve_threads(numba, n_threads)
    call_args = args(threads)
    with _Threads(numba, threads):
        try:
            if _STATE.serialize:
                with _STATE.lock:
                    dispatcher(*call_args)
                    # omp and tbb accept concurrent launches from several Python threads;
                    # numba's fallback workqueue layer aborts on them, so keep the lock there.
                    _STATE.serialize = numba.threading_layer() == "workqueue"
            else:
                dispatcher(*call_args)
        except Exception as exc:
            # Typing, lowering or LLVM errors on an unusual CPU or numba version: fall back.
            _STATE.failed[key] = repr(exc)
            return False
    return True


def ternary_codes(
    X, plus, minus=None, low=None, high=None, levels=None, *, out=None, n_threads=None,
    method="auto",
):
    """Ternary codes of ``W x`` for ternary ``W``, without multiplications.

    Two call forms::

        ternary_codes(X, plus, minus, low, high, levels, ...)   # raw patterns
        ternary_codes(X, plan, low, high, levels, ...)          # plan from prepare_ternary_kernel

    For each row ``x`` of ``X`` and each component ``k``,
    ``T_k = sum_{j in plus[k]} x_j - sum_{j in minus[k]} x_j`` and the output is ``levels[0]``
    if ``T_k < low``, ``levels[2]`` if ``T_k > high``, else ``levels[1]``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
        Input rows (copied if not C-contiguous). Must be finite: a NaN or an infinity makes
        the codes of its row unspecified (a NaN ``T`` gives ``levels[1]``, and dense components
        involve every feature through ``sum_all x``).
    plus : tuple of (indptr, indices) or TernaryKernelPlan
        The +1 pattern (``indptr`` int32/int64 of length ``n_components + 1``, ``indices`` of any
        integer dtype, e.g. uint16 or uint32), or a plan, in which case ``minus`` is omitted.
    minus : tuple of (indptr, indices)
        The -1 pattern (raw form only).
    low, high : float
        Thresholds in units of ``T`` (``low <= high``), rounded to ``X``'s dtype.
    levels : sequence of 3 floats
        Output values (rounded to ``X``'s dtype).
    out : ndarray of shape (n_samples, n_components), optional
        C-contiguous array of ``X``'s dtype to write into.
    n_threads : int, optional
        Threads for the numba kernels (``None``: numba's current setting; ``-1``: all numba
        threads; larger values are clipped to numba's maximum). The setting is restored on
        return. The reference path is single-threaded.
    method : {"auto", "numba", "reference"}, default="auto"
        ``"numba"`` and ``"auto"`` use the vector kernel, falling back silently to a plain numba
        kernel and then to :func:`ternary_codes_reference` if a kernel cannot be compiled on
        this machine. ``"reference"`` forces the scipy path.

    Returns
    -------
    out : ndarray of shape (n_samples, n_components)
        The codes in ``X``'s dtype. They equal the reference's except, possibly, where ``T``
        lies within rounding error of a threshold (different summation order).

    Notes
    -----
    With raw patterns the numba path builds a plan on every call (a few milliseconds for
    thousands of components); call :func:`prepare_ternary_kernel` once and pass the plan when
    transforming repeatedly.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    n_threads = _check_n_threads(n_threads)
    X, plan, plus, minus, low, high, levels = _parse_call(X, plus, minus, low, high, levels)
    low_t, high_t, (l0, l1, l2) = _check_thresholds(low, high, levels, X.dtype)
    n_components = plus[0].shape[0] - 1
    n = X.shape[0]
    out = _check_out(out, (n, n_components), X.dtype)
    if n == 0 or n_components == 0:
        return out

    if method != "reference":

        def vector_args(threads):
            layout = plan if plan is not None else prepare_ternary_kernel(plus, minus, X.shape[1])
            n_chunks = max(1, min(threads, -(-n // LANES)))
            return (X, layout.indices, layout.tile_ptr, layout.columns, layout.wide,
                    low_t, high_t, l0, l1, l2, out, n_chunks)

        def scalar_args(threads):
            (pp, pi), (mp, mi) = plus, minus
            return (X, pp, pi, mp, mi, low_t, high_t, l0, l1, l2, X.dtype.type(0), out)

        if _run("vector", X.dtype, vector_args, n_threads):
            return out
        if _run("scalar", X.dtype, scalar_args, n_threads):
            return out
    return ternary_codes_reference(X, plus, minus, low_t, high_t, (l0, l1, l2), out=out)


def _kernel_status():
    """Which numba dispatchers were built and which kernels failed, and why (diagnostics)."""
    return {
        "numba_import_error": _STATE.import_error,
        "built": sorted(_STATE.kernels),
        "failed": dict(_STATE.failed),
    }
