"""Chunked transform/predict on dask arrays equal the in-memory methods, for every estimator."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone, is_classifier

from skrmt.utils._test_common.instance_generator import INIT_PARAMS
from skrmt.utils.discovery import all_estimators

pytestmark = pytest.mark.dask
da = pytest.importorskip("dask.array")

from skrmt.scale_out import map_method, predict, transform  # noqa: E402

METHODS = ("transform", "predict", "predict_proba", "decision_function")
N_ROWS, N_FEATURES = 90, 12


def _first_instance(cls):
    params = INIT_PARAMS[cls]
    return cls(**(params[0] if isinstance(params, list) else params))


def _data(seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(N_ROWS, N_FEATURES)
    y_reg = np.tanh(X[:, 0]) + 0.1 * rng.randn(N_ROWS)
    y_clf = (X[:, 0] + 0.3 * rng.randn(N_ROWS) > 0).astype(int)
    return X, y_reg, y_clf


def _fitted(cls):
    X, y_reg, y_clf = _data()
    est = clone(_first_instance(cls))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence of tiny models is not the point here
        est.fit(X[:60], y_clf[:60] if is_classifier(est) else y_reg[:60])
    return est, X


def _assert_same(got, expected):
    assert got.shape == expected.shape and got.dtype == expected.dtype
    if np.issubdtype(expected.dtype, np.floating):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    else:
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name, cls", all_estimators(), ids=[n for n, _ in all_estimators()])
def test_map_method_equals_in_memory(name, cls, synchronous):
    est, X = _fitted(cls)
    methods = [m for m in METHODS if hasattr(est, m)]
    assert methods, f"{name} has none of {METHODS}"
    # unequal row chunks, and two column chunks that must be merged (a row is never split)
    Xd = da.from_array(X, chunks=(40, 7))
    for method in methods:
        out = map_method(est, Xd, method)
        assert out.chunks[0] == (40, 40, 10)
        _assert_same(out.compute(), np.asarray(getattr(est, method)(X)))


def test_lprff_codes_do_not_depend_on_chunking(synchronous):
    from skrmt import LowPrecisionRFF

    X, _, _ = _data()
    est = LowPrecisionRFF(64, n_bits=2, random_state=0).fit(X)
    a = transform(est, da.from_array(X, chunks=(13, -1))).compute()
    b = transform(est, da.from_array(X, chunks=(50, -1))).compute()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, est.transform(X))


@pytest.mark.filterwarnings("ignore:.*nonzero weights per feature")
def test_float32_stays_float32(synchronous):
    from skrmt import TernaryRandomFeatures

    X = _data()[0].astype(np.float32)
    est = TernaryRandomFeatures(32, random_state=0).fit(X)
    Z = transform(est, da.from_array(X, chunks=(30, -1)), rows=45)
    assert Z.dtype == np.float32 and Z.chunks == ((45, 45), (32,))
    np.testing.assert_array_equal(Z.compute(), est.transform(X))


@pytest.mark.filterwarnings("ignore:.*nonzero weights per feature")
def test_scattered_estimator_on_cluster(dask_client):
    from skrmt import RMTRidge, TernaryRandomFeatures

    X, y, _ = _data(1)
    trf = TernaryRandomFeatures(48, sparsity=0.5, random_state=0).fit(X)
    ridge = RMTRidge(48, alpha=1e-2, random_state=0).fit(X, y)
    Xd = da.from_array(X, chunks=(25, -1))
    for est, fn, method in ((trf, transform, "transform"), (ridge, predict, "predict")):
        future = dask_client.scatter(est, broadcast=True)
        got = fn(future, Xd).compute()
        np.testing.assert_allclose(got, getattr(est, method)(X), rtol=1e-12, atol=1e-14)


@pytest.mark.filterwarnings("ignore:.*nonzero weights per feature")
def test_bad_arguments():
    from skrmt import TernaryRandomFeatures

    X = _data()[0]
    est = TernaryRandomFeatures(8, random_state=0).fit(X)
    with pytest.raises(TypeError, match="method must be"):
        map_method(est, X, method=len)
    with pytest.raises(ValueError, match="2-D"):
        map_method(est, X[:, 0])
