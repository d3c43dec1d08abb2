"""Scaling skrmt beyond one machine with Dask (the optional extra ``skrmt[dask]``).

Three patterns (design note ``scale_out.md``):

- model selection on a cluster: scikit-learn's ``GridSearchCV`` under
  ``joblib.parallel_config(backend="dask")``, nothing skrmt-specific;
- :func:`transform` / :func:`predict` / :func:`map_method`: any fitted estimator applied lazily
  to the row chunks of a ``dask.array``;
- :func:`fit_rmt_ridge`: an ``RMTRidge`` fitted from blockwise sums of ``F^T F`` and ``F^T y``.

Dask is imported inside the functions, never by ``import skrmt`` or ``import skrmt.scale_out``.
"""

from ._blocks import map_method, predict, transform
from ._cluster import loopback_client
from ._ridge import THEORY_SAMPLES, fit_rmt_ridge, ridge_statistics, spectral_gcv

__all__ = [
    "THEORY_SAMPLES",
    "fit_rmt_ridge",
    "loopback_client",
    "map_method",
    "predict",
    "ridge_statistics",
    "spectral_gcv",
    "transform",
]
