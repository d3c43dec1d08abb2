"""The Examples sections of the public docstrings run (doctest) without warnings."""

import doctest
import importlib
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


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
