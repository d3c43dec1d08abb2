"""Thin numpy wrappers around the data sets bundled inside the scikit-learn wheel.

These read files shipped with scikit-learn and are always available offline.
"""

import numbers

import numpy as np
from sklearn import datasets as _skd
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

__all__ = ["load_digits", "load_breast_cancer", "load_diabetes", "train_val_test_split"]


def _classification(bunch):
    X = np.ascontiguousarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    return X, y


def load_digits():
    """Load scikit-learn's 8x8 handwritten digits (1797 x 64, pixel values 0..16).

    Returns
    -------
    X : ndarray of shape (1797, 64), float64, C-contiguous
        Raw pixel intensities 0..16 (the comparison benchmark divides by 16).
    y : ndarray of shape (1797,), int64
        Digit 0..9 (178 182 177 183 181 182 181 179 174 180 per class).
    """
    return _classification(_skd.load_digits())


def load_breast_cancer():
    """Load scikit-learn's Wisconsin breast-cancer set (569 x 30, binary).

    Returns
    -------
    X : ndarray of shape (569, 30), float64, C-contiguous
        Unscaled features (ranges differ by orders of magnitude: standardise first).
    y : ndarray of shape (569,), int64
        0 = malignant (212), 1 = benign (357).
    """
    return _classification(_skd.load_breast_cancer())


def load_diabetes(*, scaled=True):
    """Load scikit-learn's diabetes regression set (442 x 10).

    Parameters
    ----------
    scaled : bool, default=True
        True gives scikit-learn's mean-centred features scaled to unit Euclidean column
        norm; False gives raw units.

    Returns
    -------
    X : ndarray of shape (442, 10), float64, C-contiguous
    y : ndarray of shape (442,), float64
        Disease progression after one year, in [25, 346].
    """
    if not isinstance(scaled, (bool, np.bool_)):
        raise TypeError(f"scaled must be a bool, got {type(scaled).__name__}")
    bunch = _skd.load_diabetes(scaled=bool(scaled))
    X = np.ascontiguousarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.float64)
    return X, y


def _check_fraction(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value}")
    return float(value)


def train_val_test_split(X, y, *, val_size=0.15, test_size=0.25, stratify=True,
                         random_state=None):
    """Split into train / validation / test sets (default 60 / 15 / 25, stratified).

    The test and validation sizes are fractions of the whole set, rounded to whole rows;
    the training set gets the rest. The test rows are drawn first, then the validation
    rows from what remains, both stratified on ``y`` when ``stratify``.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        Features (any array that supports row indexing).
    y : array-like of shape (n_samples,)
        Targets.
    val_size : float, default=0.15
        Fraction of all rows used for validation.
    test_size : float, default=0.25
        Fraction of all rows held out for testing.
    stratify : bool, default=True
        Preserve class proportions in each part. Needs class labels: floating ``y``
        (regression) requires ``stratify=False``.
    random_state : int, RandomState instance or None, default=None
        Seed for both draws.

    Returns
    -------
    X_train, y_train, X_val, y_val, X_test, y_test : ndarray
        In the ``(X, y)`` pair order the loaders use for fixed splits.
    """
    val_size = _check_fraction(val_size, "val_size")
    test_size = _check_fraction(test_size, "test_size")
    if val_size + test_size >= 1.0:
        raise ValueError(
            f"val_size + test_size must be < 1, got {val_size} + {test_size}"
        )
    if not isinstance(stratify, (bool, np.bool_)):
        raise TypeError(f"stratify must be a bool, got {type(stratify).__name__}")
    X = np.asarray(X)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    n = y.shape[0]
    if X.shape[0] != n:
        raise ValueError(f"X has {X.shape[0]} rows but y has {n}")
    if stratify and y.dtype.kind == "f":
        raise ValueError(
            "stratify=True needs class labels but y is floating (regression); "
            "pass stratify=False"
        )
    n_test = int(round(test_size * n))
    n_val = int(round(val_size * n))
    if n_test < 1 or n_val < 1 or n - n_test - n_val < 1:
        raise ValueError(
            f"n_samples={n} is too small for val_size={val_size}, test_size={test_size}"
        )
    rs = check_random_state(random_state)
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=n_test, stratify=y if stratify else None, random_state=rs
    )
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=n_val, stratify=y_rest if stratify else None, random_state=rs
    )
    return X_train, y_train, X_val, y_val, X_test, y_test
