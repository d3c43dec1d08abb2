"""Array namespaces: one small protocol over numpy and torch.

Estimators and ``skrmt._theory`` functions receive an ``ops`` object and write their
arithmetic against ``ops.xp`` (``numpy`` or ``torch``, whose elementwise function names agree
for everything skrmt uses) plus the few methods below where the two libraries differ.
"""

import functools
import importlib

import numpy as np
import scipy.sparse as sp
import scipy.special
from sklearn import get_config
from sklearn.utils import gen_batches


def _block_rows(n_rows, bytes_per_row, budget_bytes):
    """Rows per block so that one block's working set stays within ``budget_bytes``."""
    return int(max(1, min(n_rows, budget_bytes // max(1, int(bytes_per_row)))))


class NumpyOps:
    """numpy/scipy arithmetic (the reference implementation)."""

    name = "numpy"
    device = "numpy"
    is_torch = False

    def __init__(self, dtype=np.float64):
        self.xp = np
        self.dtype = np.dtype(dtype)

    # conversions ---------------------------------------------------------------
    def asarray(self, x, dtype=None):
        dtype = self.dtype if dtype is None else dtype
        if sp.issparse(x):
            x = x.toarray()
        return np.asarray(x, dtype=dtype)

    def to_numpy(self, x):
        return np.asarray(x)

    def scalar(self, value, dtype=None):
        return np.asarray(value, dtype=self.dtype if dtype is None else dtype)

    # functions whose names differ between numpy and torch ------------------------
    def erf(self, x):
        return scipy.special.erf(x)

    def ndtr(self, x):
        return scipy.special.ndtr(x)

    def matmul(self, a, b):
        return a @ b

    def sqnorm_rows(self, x):
        return np.einsum("ij,ij->i", x, x)

    # memory budget and row blocks ---------------------------------------------
    def budget_bytes(self):
        return int(get_config()["working_memory"] * 2**20)

    def block_rows(self, n_rows, bytes_per_row):
        """Rows per block so that one block's working set fits the working-memory budget."""
        return _block_rows(n_rows, bytes_per_row, self.budget_bytes())

    def map_rows(self, func, X, n_out, *, bytes_per_row=None, out_dtype=None, writes_out=False):
        """Apply ``func`` to row blocks of ``X`` (numpy or CSR) and stack a numpy result.

        ``func`` receives a dense device block and returns a device array with ``n_out``
        columns; with ``writes_out=True`` (numpy only) it receives ``(block, out_block)`` and
        writes its result into ``out_block``, a C-contiguous row slice of the output, which
        saves one copy of the output. Each output row depends only on its input row, so the
        block size cannot change results.
        """
        n = X.shape[0]
        out = np.empty((n, n_out), dtype=self.dtype if out_dtype is None else out_dtype)
        if bytes_per_row is None:
            bytes_per_row = (X.shape[1] + 2 * n_out) * self.dtype.itemsize
        size = self.block_rows(n, bytes_per_row)
        for rows in gen_batches(n, size):
            if writes_out and not self.is_torch:
                func(self.asarray(X[rows]), out[rows])
            else:
                out[rows] = self.to_numpy(func(self.asarray(X[rows])))
        return out


class TorchOps(NumpyOps):
    """torch arithmetic on a given device (CPU, CUDA or MPS)."""

    is_torch = True

    def __init__(self, device, dtype=np.float64):
        torch = importlib.import_module("torch")
        self.torch = torch
        self.xp = torch
        self.device = device
        self.name = f"torch:{device}"
        self.dtype = np.dtype(dtype)
        self.tdtype = torch.float32 if self.dtype == np.float32 else torch.float64

    def _tdtype(self, dtype):
        if dtype is None:
            return self.tdtype
        return {
            np.dtype(np.float32): self.torch.float32,
            np.dtype(np.float64): self.torch.float64,
            np.dtype(np.int8): self.torch.int8,
            np.dtype(np.int32): self.torch.int32,
            np.dtype(np.int64): self.torch.int64,
            np.dtype(np.uint8): self.torch.uint8,
            np.dtype(bool): self.torch.bool,
        }[np.dtype(dtype)]

    def asarray(self, x, dtype=None):
        if sp.issparse(x):
            x = x.toarray()
        if isinstance(x, self.torch.Tensor):
            return x.to(device=self.device, dtype=self._tdtype(dtype))
        x = np.asarray(x)
        if dtype is not None:
            x = x.astype(dtype, copy=False)
        elif x.dtype.kind == "f" or x.dtype.kind in "iub":
            x = x.astype(self.dtype, copy=False)
        return self.torch.from_numpy(np.ascontiguousarray(x)).to(self.device)

    def to_numpy(self, x):
        if isinstance(x, self.torch.Tensor):
            return x.detach().cpu().numpy()
        return np.asarray(x)

    def scalar(self, value, dtype=None):
        return self.torch.tensor(value, dtype=self._tdtype(dtype), device=self.device)

    def erf(self, x):
        return self.torch.special.erf(x)

    def ndtr(self, x):
        return self.torch.special.ndtr(x)

    def sqnorm_rows(self, x):
        return (x * x).sum(dim=1)

    def budget_bytes(self):
        budget = super().budget_bytes()
        if self.device.startswith("cuda"):
            free, _ = self.torch.cuda.mem_get_info(self.torch.device(self.device))
            budget = min(budget, free // 2)
        return int(budget)


def get_ops(device, dtype=np.float64):
    """The array namespace for a resolved device string and a compute dtype."""
    if device == "numpy":
        return NumpyOps(dtype)
    return TorchOps(device, dtype)


@functools.lru_cache(maxsize=None)
def host_ops():
    """The shared float64 numpy namespace (host-side reference computations and caches)."""
    return NumpyOps(np.float64)


def as_numpy_input(X):
    """Let torch tensors through ``validate_data``: CPU tensors become numpy (dtype kept).

    numpy, pandas and scipy inputs pass untouched so that feature names survive.
    """
    module = type(X).__module__
    if module.startswith("torch"):
        if X.device.type != "cpu":
            raise TypeError(
                "X is a torch tensor on a non-CPU device; pass X.cpu() (skrmt takes numpy "
                "input and moves data to the estimator's `device` itself)."
            )
        return X.detach().numpy()
    return X


class DeviceCache:
    """Holder of device copies of fitted arrays, created anew in ``fit``.

    Transform-time code fills it by mutating its content (never by rebinding an estimator
    attribute), and it pickles empty, so a model fitted on a GPU carries no tensors.
    """

    def __init__(self):
        self._store = {}

    def get(self, ops, key, make):
        """Return the cached value for (ops device, dtype, key), computing ``make()`` once."""
        full_key = (ops.device, str(ops.dtype), key)
        value = self._store.get(full_key)
        if value is None:
            value = make()
            self._store[full_key] = value
        return value

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self._store = {}

    def __deepcopy__(self, memo):
        return DeviceCache()

    def __len__(self):
        return len(self._store)
