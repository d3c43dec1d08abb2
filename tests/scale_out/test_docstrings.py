"""The Examples sections of skrmt.scale_out run (doctest) without warnings."""

import doctest
import importlib
import warnings

import pytest

pytestmark = pytest.mark.dask
pytest.importorskip("dask.array")


@pytest.mark.parametrize("name", ["skrmt.scale_out._blocks", "skrmt.scale_out._ridge"])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
