"""The only module of skrmt that imports private scikit-learn helpers."""

from sklearn.base import _fit_context  # noqa: F401
from sklearn.utils._param_validation import Interval, StrOptions  # noqa: F401
from sklearn.utils.validation import _check_sample_weight  # noqa: F401
from sklearn.utils.validation import validate_data  # noqa: F401

__all__ = ["_fit_context", "Interval", "StrOptions", "_check_sample_weight", "validate_data"]
