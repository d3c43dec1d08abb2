"""Compact storage of a ternary {-1, 0, +1} matrix.

The project's memory convention (design note baselines.md §4) charges a ternary m x d matrix
``min(2*m*d, nnz*(1 + ceil(log2 d)) + 32*(m + 1))`` bits. To *hold* roughly what is charged
(design README, correction 2) the matrix is kept in one of two forms, whichever is cheaper:

- ``"sparse"``: two binary patterns, the +1 and the -1 positions, as CSR row pointers (int32)
  and column indices of the smallest unsigned type (uint16 for d <= 65535), with no data
  array: ``W x = P x - N x`` needs no multiplication;
- ``"packed"``: two bit planes (``np.packbits``), 2 bits per entry.
"""

import math

import numpy as np
import scipy.sparse as sp


def ternary_matrix_bits(nnz, n_rows, n_cols):
    """Bits charged for a ternary ``n_rows x n_cols`` matrix with ``nnz`` nonzeros.

    Sign bit plus column index per nonzero and 32-bit row pointers, or 2 bits per entry,
    whichever is smaller (baselines.md §4).
    """
    index_bits = max(1, math.ceil(math.log2(n_cols))) if n_cols > 1 else 1
    sparse_bits = nnz * (1 + index_bits) + 32 * (n_rows + 1)
    return int(min(2 * n_rows * n_cols, sparse_bits))


def _index_dtype(n_cols):
    if n_cols <= np.iinfo(np.uint16).max + 1:
        return np.uint16
    return np.uint32


def draw_ternary(rng, n_rows, n_cols, sparsity):
    """Draw an i.i.d. ternary matrix: P(0) = sparsity, P(+1) = P(-1) = (1 - sparsity)/2.

    The draw order (one uniform per entry, row-major) is part of the estimator contract:
    the same ``rng`` state gives the same matrix on every backend.
    """
    w = np.zeros((n_rows, n_cols), dtype=np.int8)
    # Uniforms are drawn in row blocks (consecutive draws continue one stream, so the matrix
    # does not depend on the block size) to keep the float64 temporaries near 64 MB.
    block = max(1, (8 << 20) // max(1, n_cols))
    for start in range(0, n_rows, block):
        stop = min(n_rows, start + block)
        u = rng.uniform(size=(stop - start, n_cols))
        rows = w[start:stop]
        rows[(u >= sparsity) & (u < (1.0 + sparsity) / 2.0)] = 1
        rows[u >= (1.0 + sparsity) / 2.0] = -1
    return w


class TernaryMatrix:
    """A ternary matrix held compactly (see module docstring).

    Parameters
    ----------
    dense : ndarray of shape (n_rows, n_cols), dtype int8
        Entries in {-1, 0, +1}.
    storage : {"auto", "sparse", "packed"}, default="auto"
        ``"auto"`` picks the form that the memory convention charges less for.

    Attributes
    ----------
    shape : tuple of int
    nnz : int
        Number of nonzero entries.
    storage : str
        The form actually held.
    """

    def __init__(self, dense, storage="auto"):
        dense = np.asarray(dense)
        if dense.ndim != 2:
            raise ValueError("a ternary matrix must be 2-D.")
        if not np.isin(dense, (-1, 0, 1)).all():
            raise ValueError("a ternary matrix holds only -1, 0 and +1.")
        n_rows, n_cols = dense.shape
        self.shape = (int(n_rows), int(n_cols))
        self.nnz = int(np.count_nonzero(dense))
        if storage == "auto":
            sparse_cheaper = ternary_matrix_bits(self.nnz, n_rows, n_cols) < 2 * n_rows * n_cols
            storage = "sparse" if sparse_cheaper else "packed"
        if storage not in ("sparse", "packed"):
            raise ValueError(f"storage must be 'auto', 'sparse' or 'packed', got {storage!r}.")
        self.storage = storage
        if storage == "packed":
            self._plus_bits = np.packbits(dense == 1, axis=None)
            self._minus_bits = np.packbits(dense == -1, axis=None)
        else:
            self._plus = self._pattern(dense == 1)
            self._minus = self._pattern(dense == -1)

    def _pattern(self, mask):
        idx_dtype = _index_dtype(self.shape[1])
        indptr = np.zeros(self.shape[0] + 1, dtype=np.int32 if mask.sum() < 2**31 else np.int64)
        np.cumsum(mask.sum(axis=1), out=indptr[1:])
        indices = np.nonzero(mask)[1].astype(idx_dtype)
        return indptr, indices

    # ------------------------------------------------------------------ views
    def patterns(self):
        """The +1 and -1 patterns as ``((indptr, indices), (indptr, indices))``.

        Computed on the fly for the packed form (callers cache the result where it matters).
        """
        if self.storage == "sparse":
            return self._plus, self._minus
        dense = self.toarray()
        return self._pattern(dense == 1), self._pattern(dense == -1)

    def toarray(self):
        """Dense int8 copy."""
        if self.storage == "packed":
            count = self.shape[0] * self.shape[1]
            plus = np.unpackbits(self._plus_bits, count=count).reshape(self.shape)
            minus = np.unpackbits(self._minus_bits, count=count).reshape(self.shape)
            return plus.astype(np.int8) - minus.astype(np.int8)
        return self.tocsr().toarray()

    def tocsr(self, dtype=np.int8):
        """scipy CSR copy with explicit values (for interoperability and reference paths)."""
        (pp, pi), (mp, mi) = self.patterns()
        n_rows, n_cols = self.shape
        plus = sp.csr_matrix((np.ones(len(pi), dtype), pi.astype(np.int32), pp), shape=self.shape)
        minus = sp.csr_matrix((np.ones(len(mi), dtype), mi.astype(np.int32), mp), shape=self.shape)
        out = (plus - minus).tocsr()
        out.sort_indices()
        return out

    @property
    def nbytes(self):
        """Bytes actually held by the arrays of this object."""
        if self.storage == "packed":
            return int(self._plus_bits.nbytes + self._minus_bits.nbytes)
        return int(sum(a.nbytes for pair in (self._plus, self._minus) for a in pair))

    @property
    def charged_bits(self):
        """Bits charged by the project's memory convention."""
        return ternary_matrix_bits(self.nnz, *self.shape)

    def __array__(self, dtype=None, copy=None):
        dense = self.toarray()
        return dense if dtype is None else dense.astype(dtype)

    def __eq__(self, other):
        if not isinstance(other, TernaryMatrix):
            return NotImplemented
        return self.shape == other.shape and np.array_equal(self.toarray(), other.toarray())

    __hash__ = None

    def __repr__(self):
        return (
            f"TernaryMatrix(shape={self.shape}, nnz={self.nnz}, storage={self.storage!r}, "
            f"nbytes={self.nbytes})"
        )
