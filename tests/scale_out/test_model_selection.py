"""GridSearchCV under joblib's dask backend: the serial results, and small CUDA-free pickles."""

import pickle
import pickletools

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrmt import RMTRidge, TernaryRandomFeatures

pytestmark = pytest.mark.dask
pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")


def _pickled_modules(obj):
    """Top-level module names that a pickle imports (GLOBAL / STACK_GLOBAL)."""
    data = pickle.dumps(obj)
    modules, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL":
            modules.add(strings[-2].split(".")[0])
        elif op.name == "GLOBAL":
            modules.add(arg.split(" ")[0].split(".")[0])
    return len(data), modules


def _search(estimator, grid, X, y, backend, **kwargs):
    search = GridSearchCV(estimator, grid, cv=3, **kwargs)
    if backend is None:
        return search.fit(X, y)
    with joblib.parallel_config(backend=backend, scatter=[X, y]):
        return search.fit(X, y)


def _assert_same_search(a, b):
    assert a.best_params_ == b.best_params_
    assert [p for p in a.cv_results_["params"]] == [p for p in b.cv_results_["params"]]
    np.testing.assert_allclose(a.cv_results_["mean_test_score"],
                               b.cv_results_["mean_test_score"], rtol=1e-12)
    np.testing.assert_allclose(a.cv_results_["split0_test_score"],
                               b.cv_results_["split0_test_score"], rtol=1e-12)


def test_gridsearch_dask_equals_serial(dask_client):
    X, y = load_digits(return_X_y=True)
    X, y = X[:240], y[:240]
    pipe = make_pipeline(StandardScaler(), TernaryRandomFeatures(100, random_state=0),
                         RidgeClassifier(alpha=1e-2))
    grid = {"ternaryrandomfeatures__sparsity": [0.0, 0.5],
            "ternaryrandomfeatures__activation": ["relu", "erf"]}
    serial = _search(pipe, grid, X, y, None, n_jobs=1)
    on_dask = _search(pipe, grid, X, y, "dask", n_jobs=-1)
    _assert_same_search(on_dask, serial)
    assert serial.best_score_ > 0.75

    Xr, yr = X[:120] / 16.0, (y[:120] % 2).astype(float)
    grid = {"n_components": [32, 64], "alpha": [1e-3, 1e-1]}
    serial = _search(RMTRidge(random_state=0), grid, Xr, yr, None, n_jobs=1)
    on_dask = _search(RMTRidge(random_state=0), grid, Xr, yr, "dask", n_jobs=-1)
    _assert_same_search(on_dask, serial)

    # what comes back from the workers: numpy state only, a small pickle
    for model in (on_dask.best_estimator_,):
        size, modules = _pickled_modules(model)
        n, p = Xr.shape
        N = model.n_components
        # weights + readout + the kept standardised training rows and targets, + 64 KiB
        budget = 8 * (N * p + N + n * p + n) + 65536
        assert size < budget, (size, budget)
        assert "torch" not in modules and "dask" not in modules and "distributed" not in modules


def test_torch_fitted_model_pickles_without_torch():
    pytest.importorskip("torch")
    X = np.random.RandomState(0).randn(50, 30)
    est = TernaryRandomFeatures(64, random_state=0, device="cpu").fit(X)
    est.transform(X)  # fills the device cache, which must pickle empty
    size, modules = _pickled_modules(est)
    assert "torch" not in modules
    assert size < 64 * 30 + 16384
