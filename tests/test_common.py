"""scikit-learn compatibility of every public estimator (and the checks check_estimator skips)."""

import numpy as np
import pytest
import sklearn
from sklearn.utils import estimator_checks as ec
from sklearn.utils.estimator_checks import parametrize_with_checks

import skrmt
from skrmt.utils._test_common.instance_generator import (
    INIT_PARAMS,
    _cuda_estimators,
    _get_expected_failed_checks,
    _tested_estimators,
)
from skrmt.utils.discovery import all_estimators

_XFAIL_STRICT = {"xfail_strict": True} if sklearn.__version__ >= "1.8" else {}


@parametrize_with_checks(
    list(_tested_estimators()), expected_failed_checks=_get_expected_failed_checks, **_XFAIL_STRICT
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.gpu
@parametrize_with_checks(
    list(_cuda_estimators()), expected_failed_checks=_get_expected_failed_checks, **_XFAIL_STRICT
)
def test_sklearn_compatible_cuda(estimator, check):
    check(estimator)


def _ids(est):
    return f"{type(est).__name__}({est.get_params().get('device')})"


@pytest.mark.parametrize("estimator", list(_tested_estimators()), ids=_ids)
def test_param_validation(estimator):
    ec.check_param_validation(type(estimator).__name__, estimator)
    ec.check_inplace_ensure_writeable(type(estimator).__name__, estimator)


_TRANSFORMER_CHECKS = [
    ec.check_transformer_get_feature_names_out,
    ec.check_transformer_get_feature_names_out_pandas,
    ec.check_get_feature_names_out_error,
    ec.check_set_output_transform,
    ec.check_set_output_transform_pandas,
    ec.check_global_output_transform_pandas,
    ec.check_dataframe_column_names_consistency,
]


@pytest.mark.parametrize("check", _TRANSFORMER_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "estimator", [e for e in _tested_estimators() if hasattr(e, "transform")], ids=_ids
)
def test_transformer_extra_checks(estimator, check):
    pytest.importorskip("pandas")
    check(type(estimator).__name__, estimator)


def test_all_estimators_listed():
    names = {name for name, _ in all_estimators()}
    exported = {n for n in skrmt.__all__ if isinstance(getattr(skrmt, n), type)}
    assert names == exported
    for _, cls in all_estimators():
        assert cls in INIT_PARAMS


def test_pipeline_gridsearch_over_sparsity_and_activation():
    """The README's quick start: a grid over sparsity x activation in a Pipeline, n_jobs=2."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import RidgeClassifier
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    pipe = make_pipeline(
        StandardScaler(), skrmt.TernaryRandomFeatures(300, random_state=0), RidgeClassifier()
    )
    grid = {
        "ternaryrandomfeatures__sparsity": [0.0, 0.7],
        "ternaryrandomfeatures__activation": ["relu", "tanh"],
    }
    search = GridSearchCV(pipe, grid, cv=3, n_jobs=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_score_ > 0.85
    serial = GridSearchCV(pipe, grid, cv=3, n_jobs=1).fit(X, y)
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )


def test_no_mutation_in_extra_methods():
    """predict_risk and risk_path leave the fitted estimator's __dict__ unchanged."""
    import pickle

    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    for est in (skrmt.RMTRidge(n_components=64, random_state=0).fit(X[:300], y[:300]),):
        for model in (est, pickle.loads(pickle.dumps(est))):
            before = dict(model.__dict__)
            model.predict_risk(X[300:], y[300:])
            model.risk_path(np.logspace(-3, 1, 5), X[300:], y[300:], n_components=[32, 64])
            assert model.__dict__.keys() == before.keys()
            for key, value in before.items():
                assert model.__dict__[key] is value, key
