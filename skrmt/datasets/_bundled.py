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

    See Also
    --------
    sklearn.datasets.load_digits : The scikit-learn loader this wraps (a Bunch).
    train_val_test_split : The stratified 60 / 15 / 25 split ``skrmt compare`` uses.

    Notes
    -----
    The file ships inside the scikit-learn wheel: no download, always available. It is the
    default data set of ``skrmt compare``. With only p = 64 pixels, ternary features at
    sparsity >= 0.7 see fewer than 20 nonzero weights each and warn that the kernel
    equivalence degrades.

    References
    ----------
    .. [1] E. Alpaydin and C. Kaynak, "Optical recognition of handwritten digits", UCI
       Machine Learning Repository, 1998.

    Examples
    --------
    >>> from skrmt.datasets import load_digits
    >>> X, y = load_digits()
    >>> X.shape, y.shape, X.dtype, int(X.max())
    ((1797, 64), (1797,), dtype('float64'), 16)
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

    See Also
    --------
    sklearn.datasets.load_breast_cancer : The scikit-learn loader this wraps (a Bunch).
    sklearn.preprocessing.StandardScaler : Standardise the features before random features.

    Notes
    -----
    The file ships inside the scikit-learn wheel: no download, always available. Feature
    scales differ by orders of magnitude, and random-feature maps see a single variance
    ``tau_`` for all of them: standardise first.

    References
    ----------
    .. [1] W. N. Street, W. H. Wolberg and O. L. Mangasarian, "Nuclear feature extraction
       for breast tumor diagnosis", IS&T/SPIE 1993.

    Examples
    --------
    >>> import numpy as np
    >>> from skrmt.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer()
    >>> X.shape, np.bincount(y)
    ((569, 30), array([212, 357]))
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
        Age, sex, body-mass index, blood pressure and six blood serum measurements.
    y : ndarray of shape (442,), float64
        Disease progression after one year, in [25, 346].

    Raises
    ------
    TypeError
        If ``scaled`` is not a bool.

    See Also
    --------
    sklearn.datasets.load_diabetes : The scikit-learn loader this wraps (a Bunch).
    skrmt.RMTRidge : A regressor whose risk the theory predicts.

    Notes
    -----
    The file ships inside the scikit-learn wheel: no download, always available. A small
    regression set (n = 442, p = 10): far from the high-dimensional regime of the theory,
    useful for API checks rather than for testing predictions.

    References
    ----------
    .. [1] B. Efron, T. Hastie, I. Johnstone and R. Tibshirani, "Least angle regression",
       Annals of Statistics 32(2), 2004.

    Examples
    --------
    >>> from skrmt.datasets import load_diabetes
    >>> X, y = load_diabetes()
    >>> X.shape, y.shape
    ((442, 10), (442,))
    >>> round(float((X ** 2).sum(axis=0)[0]), 6)  # unit column norm when scaled=True
    1.0
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

    Raises
    ------
    TypeError
        If a size is not a float or ``stratify`` is not a bool.
    ValueError
        If a size is outside (0, 1), the sizes sum to 1 or more, ``X`` and ``y`` disagree in
        length, a part would be empty, or ``stratify=True`` with a floating ``y``.

    See Also
    --------
    sklearn.model_selection.train_test_split : The two-way split applied twice here.

    Notes
    -----
    Model selection on the validation part and a single final score on the test part is the
    protocol of ``skrmt compare``: each ridge is chosen on validation accuracy, never on the
    test rows.

    References
    ----------
    .. [1] T. Hastie, R. Tibshirani and J. Friedman, "The Elements of Statistical Learning",
       2nd ed., Springer, 2009, Section 7.2.

    Examples
    --------
    >>> from skrmt.datasets import load_digits, train_val_test_split
    >>> X, y = load_digits()
    >>> X_train, y_train, X_val, y_val, X_test, y_test = train_val_test_split(
    ...     X, y, random_state=0)
    >>> len(y_train), len(y_val), len(y_test)
    (1078, 270, 449)
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
