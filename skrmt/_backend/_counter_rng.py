"""Counter-based, content-keyed noise (design note backend.md §5).

Stochastic rounding in :class:`~skrmt.random_features.LowPrecisionRFF` needs noise that is a
pure function of (fitted model, row content, column): then a transform does not depend on the
batch, the row order, which rows are in the call, pickling or the backend, and scikit-learn's
invariance checks pass. A stateful generator cannot give that, so the noise is a hash:

- ``mix`` is the murmur3 32-bit finalizer (xor-shift, multiply, xor-shift, multiply,
  xor-shift) evaluated on int64 lanes holding values in [0, 2**32);
- every 32-bit multiply is split into 16-bit halves of the constant, so no intermediate
  exceeds 2**49: int64 arithmetic never overflows, and numpy, torch CPU and torch CUDA give
  the same integers;
- ``key_i = sum_j mix(bits(x_ij) ^ mix(j*C2 + seed)) mod 2**32`` over the **non-zero**
  entries of row i, where ``bits`` folds the float64 bit pattern to 32 bits (float32 is
  upcast exactly first). Zeros are skipped, so a dense row and its CSR form share a key;
- ``h_ij = mix(mix(key_i*C1 + seed) ^ j)`` and ``u_ij = (h_ij >> 8) * 2**-24`` in [0, 1):
  24-bit resolution, exactly representable in float32 and float64.

Every function takes an ``ops`` object (``skrmt._backend.get_ops``) and is written once
against ``ops.xp``; only the reinterpretation of float bits differs between the libraries.
"""

import numpy as np
import scipy.sparse as sp

__all__ = ["mix32", "row_keys", "counter_bits", "counter_uniform"]

MASK32 = 0xFFFFFFFF
# Odd 32-bit constants: C1 and C2 spread keys and column indices before mixing (odd, so
# multiplication is a bijection mod 2**32); M1, M2 are murmur3's finalizer constants.
C1 = 0x9E3779B1
C2 = 0x85EBCA77
M1 = 0x85EBCA6B
M2 = 0xC2B2AE35
U_SCALE = 2.0**-24


def _mulmod32(a, c):
    """``a * c mod 2**32`` for int64 lanes ``a`` in [0, 2**32) and a 32-bit constant ``c``.

    a*c = a*c_lo + 2**16 * a*c_hi; only the low 16 bits of a*c_hi survive the shift, and each
    partial product stays below 2**48 (the sum below 2**49).
    """
    c_lo = c & 0xFFFF
    c_hi = c >> 16
    high = a * c_hi
    high &= 0xFFFF
    high <<= 16
    out = a * c_lo
    out += high
    out &= MASK32
    return out


def mix32(h):
    """murmur3's 32-bit finalizer on int64 lanes in [0, 2**32) (returns a new array)."""
    h = h ^ (h >> 16)
    h = _mulmod32(h, M1)
    h ^= h >> 13
    h = _mulmod32(h, M2)
    h ^= h >> 16
    return h


def _check_seed(seed):
    seed = int(seed)
    if not 0 <= seed <= MASK32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed}.")
    return seed


def _int64(ops, values):
    """An int64 array on the ops device from host integers."""
    return ops.asarray(np.asarray(values, dtype=np.int64), dtype=np.int64)


def _float_bits32(ops, x):
    """The float64 bit pattern of ``x`` (any float dtype, upcast exactly) folded to 32 bits."""
    if ops.is_torch:
        bits = x.to(ops.torch.float64).contiguous().view(ops.torch.int64)
    else:
        bits = np.ascontiguousarray(x, dtype=np.float64).view(np.int64)
    # The arithmetic shift of a negative pattern sign-extends; the mask keeps the high word.
    return (bits & MASK32) ^ ((bits >> 32) & MASK32)


def _column_hashes(ops, n_cols, seed):
    j = _int64(ops, np.arange(n_cols))
    return mix32((_mulmod32(j, C2) + seed) & MASK32)


def _row_keys_csr(X, seed):
    """Keys of CSR rows, computed on the host from the stored entries only."""
    X = sp.csr_matrix(X)
    from ._ops import NumpyOps

    ops = NumpyOps(np.float64)
    col = _column_hashes(ops, X.shape[1], seed)
    data = np.asarray(X.data, dtype=np.float64)
    h = mix32(_float_bits32(ops, data) ^ col[X.indices])
    h[data == 0] = 0  # explicit zeros count as absent, like zeros of a dense row
    # Per-row sums by differences of one running sum: exact in int64 below 2**31 entries.
    csum = np.concatenate(([0], np.cumsum(h, dtype=np.int64)))
    indptr = X.indptr.astype(np.int64)
    return (csum[indptr[1:]] - csum[indptr[:-1]]) & MASK32


def row_keys(ops, X_block, seed):
    """32-bit content keys of the rows of ``X_block``.

    Parameters
    ----------
    ops : NumpyOps or TorchOps
        Array namespace (see :func:`skrmt._backend.get_ops`).
    X_block : array of shape (n_rows, n_cols) on the ops device, or scipy sparse matrix
        Rows to key. A scipy sparse matrix is keyed on the host from its stored entries and the
        result moved to the ops device.
    seed : int
        Stream seed in [0, 2**32) (``LowPrecisionRFF._rounding_seed``).

    Returns
    -------
    keys : int64 array of shape (n_rows,)
        Values in [0, 2**32). Zero entries do not contribute, so a dense row and its CSR form
        get the same key; a float32 row gets the key of its exact float64 upcast.
    """
    seed = _check_seed(seed)
    if sp.issparse(X_block):
        return _int64(ops, _row_keys_csr(X_block, seed))
    col = _column_hashes(ops, X_block.shape[1], seed)
    h = mix32(_float_bits32(ops, X_block) ^ col[None, :])
    h = ops.xp.where(X_block != 0, h, 0)
    # At most n_cols * 2**32 per row: no int64 overflow below 2**31 columns.
    return h.sum(axis=1) & MASK32


def _index_hash_py(b, j):
    """``mix(b ^ j)`` on uint64 scalars in [0, 2**32): the per-entry counter hash.

    Compiled by :func:`compiled_index_hash` for the numba kernels (here and in
    LowPrecisionRFF's fused quantizer). numba widens integer arithmetic to 64 bits, so every
    product is masked back to 32 (exactly the 16-bit-split ``_mulmod32``).
    """
    mask = np.uint64(MASK32)
    h = b ^ np.uint64(j)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(M1)) & mask
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(M2)) & mask
    h ^= h >> np.uint64(16)
    return h


index_hash = None  # the compiled _index_hash_py, set by compiled_index_hash()
_NUMBA_COUNTER = []


def compiled_index_hash():
    """The numba-compiled per-entry hash (module global ``index_hash``), or None."""
    global index_hash
    if index_hash is None:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba is a dependency
            return None
        index_hash = numba.njit(cache=True, inline="always")(_index_hash_py)
    return index_hash


def _numba_counter_bits():
    """A compiled ``counter_bits`` for the numpy path, or None without numba.

    One pass instead of a dozen temporaries of size n_rows x n_cols: the noise no longer
    dominates LowPrecisionRFF.transform.
    """
    if not _NUMBA_COUNTER:
        if compiled_index_hash() is None:  # pragma: no cover - numba is a dependency
            _NUMBA_COUNTER.append(None)
            return None
        import numba

        @numba.njit(cache=True, parallel=True)
        def bits(base, n_cols):
            out = np.empty((base.shape[0], n_cols), dtype=np.int64)
            for i in numba.prange(base.shape[0]):
                b = np.uint64(base[i])
                for j in range(n_cols):
                    out[i, j] = np.int64(index_hash(b, j))
            return out

        _NUMBA_COUNTER.append(bits)
    return _NUMBA_COUNTER[0]


def counter_bits(ops, keys, n_cols, seed):
    """32-bit hashes ``h_ij = mix(mix(key_i*C1 + seed) ^ j)`` for j < n_cols.

    Parameters
    ----------
    ops : NumpyOps or TorchOps
        Array namespace.
    keys : int64 array of shape (n_rows,)
        Row keys from :func:`row_keys`, values in [0, 2**32).
    n_cols : int
        Number of columns of noise.
    seed : int
        Stream seed in [0, 2**32).

    Returns
    -------
    h : int64 array of shape (n_rows, n_cols)
        Values in [0, 2**32), identical on every backend.
    """
    seed = _check_seed(seed)
    base = mix32((_mulmod32(keys, C1) + seed) & MASK32)
    if not ops.is_torch and n_cols > 0:
        compiled = _numba_counter_bits()
        if compiled is not None:
            return compiled(np.ascontiguousarray(base, dtype=np.int64), int(n_cols))
    j = _int64(ops, np.arange(int(n_cols)))
    return mix32(base[:, None] ^ j[None, :])


def counter_uniform(ops, keys, n_cols, seed):
    """Uniform noise ``u_ij = (h_ij >> 8) * 2**-24`` in [0, 1), float64, on the ops device.

    The values are multiples of 2**-24, so they are exact in float32 and float64 and equal
    on every backend. See :func:`counter_bits` for the parameters.
    """
    h = counter_bits(ops, keys, n_cols, seed)
    return ops.asarray(h >> 8, dtype=np.float64) * U_SCALE
