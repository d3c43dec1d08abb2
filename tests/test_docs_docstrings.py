"""The public docstrings have every numpydoc section the API reference shows.

Parameters (each with its actual default), Attributes (classes), Returns (functions), See Also,
Notes, References and a runnable Examples section (run by tests/test_docstrings.py).
"""

import inspect
import re

import pytest

numpydoc_docscrape = pytest.importorskip("numpydoc.docscrape")

import skrmt  # noqa: E402
import skrmt.datasets as datasets  # noqa: E402
import skrmt.scale_out as scale_out  # noqa: E402  (dask is imported lazily, inside the functions)

CLASSES = [skrmt.TernaryRandomFeatures, skrmt.LowPrecisionRFF, skrmt.RMTRidge,
           skrmt.DEQKernelClassifier, skrmt.TheoryKernel, skrmt.NTKLCClassifier]
FUNCTIONS = [skrmt.memory_bytes, skrmt.memory_report, datasets.make_gmm, datasets.load_digits,
             datasets.load_breast_cancer, datasets.load_diabetes, datasets.load_fashion_mnist,
             datasets.fashion_mnist_available, datasets.load_mlbench, datasets.load_diamonds,
             datasets.train_val_test_split]
FUNCTIONS += [scale_out.transform, scale_out.predict, scale_out.map_method,
              scale_out.fit_rmt_ridge, scale_out.ridge_statistics, scale_out.spectral_gcv]
# context managers written as generators document what they yield (numpydoc YD01), not Returns
CONTEXT_MANAGERS = [scale_out.loopback_client]
COMMON = ("See Also", "Notes", "References", "Examples")


def _doc(obj):
    return numpydoc_docscrape.NumpyDocString(inspect.getdoc(obj))


def _documented_default(type_spec):
    match = re.search(r"default\s*[=:]?\s*(.+?)\s*$", type_spec)
    return match.group(1) if match else None


@pytest.mark.parametrize("obj", CLASSES + FUNCTIONS + CONTEXT_MANAGERS, ids=lambda o: o.__name__)
def test_sections_present(obj):
    doc = _doc(obj)
    required = COMMON + (("Attributes",) if inspect.isclass(obj) else
                         ("Yields",) if obj in CONTEXT_MANAGERS else ("Returns",))
    missing = [section for section in required if not doc[section]]
    assert not missing, f"{obj.__name__}: missing {missing}"
    assert ">>>" in "\n".join(doc["Examples"])


@pytest.mark.parametrize("obj", CLASSES + FUNCTIONS + CONTEXT_MANAGERS, ids=lambda o: o.__name__)
def test_parameters_documented_with_their_defaults(obj):
    doc = _doc(obj)
    documented = {}
    for param in doc["Parameters"]:
        for name in param.name.split(","):
            documented[name.strip()] = param.type
    signature = inspect.signature(obj)
    for name, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        assert name in documented, f"{obj.__name__}: parameter {name!r} is not documented"
        if param.default is inspect.Parameter.empty:
            continue
        shown = _documented_default(documented[name])
        assert shown is not None, f"{obj.__name__}: {name!r} does not state its default"
        if isinstance(param.default, (int, float)) and not isinstance(param.default, bool):
            assert float(shown) == param.default, (
                f"{obj.__name__}: {name!r} documents default {shown}, "
                f"the signature says {param.default!r}")
        elif isinstance(param.default, (bool, str, type(None))):
            assert shown.strip("'\"") == str(param.default), (
                f"{obj.__name__}: {name!r} documents default {shown}, "
                f"the signature says {param.default!r}")
