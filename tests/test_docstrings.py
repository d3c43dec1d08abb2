"""The Examples sections of the public docstrings run (doctest) without warnings."""

import doctest
import importlib
import importlib.util
import warnings

import pytest

MODULES = [
    "skrmt.random_features._trf",
    "skrmt.random_features._lprff",
    "skrmt.linear_model._rmt_ridge",
    "skrmt.neural_network._deq_kernel",
    "skrmt.neural_network._ntklc",
    "skrmt.kernels._theory_kernel",
    "skrmt.utils._memory",
    "skrmt.datasets._gmm",
    "skrmt.datasets._fashion_mnist",
    "skrmt.datasets._bundled",
    "skrmt.datasets._mlbench",
    "skrmt.datasets._diamonds",
    "skrmt._theory._gaussian_moments",
    "skrmt._theory._activations",
    "skrmt._theory._ntklc_matching",
    "skrmt._theory._ck_ntk",
]
# skrmt.scale_out needs the optional extra skrmt[dask] (its examples run dask; loopback_client's
# starts a threads-only cluster on 127.0.0.1)
_NO_DASK = pytest.mark.skipif(
    importlib.util.find_spec("dask") is None or importlib.util.find_spec("distributed") is None,
    reason="needs the dask extra: pip install -e .[dask]")
MODULES += [pytest.param(name, marks=_NO_DASK) for name in
            ("skrmt.scale_out._blocks", "skrmt.scale_out._cluster", "skrmt.scale_out._ridge")]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
