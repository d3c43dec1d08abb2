"""scikit-learn bundled sets (data.md §1) and the stratified 60/15/25 split (baselines.md §7)."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from skrmt.datasets import load_breast_cancer, load_diabetes, load_digits, train_val_test_split


def test_load_digits():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64 and X.flags.c_contiguous
    assert y.dtype == np.int64
    assert_array_equal(np.bincount(y), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    assert X.min() == 0.0 and X.max() == 16.0
    assert_array_equal(X, np.round(X))


def test_load_breast_cancer():
    X, y = load_breast_cancer()
    assert X.shape == (569, 30) and X.dtype == np.float64 and X.flags.c_contiguous
    assert y.dtype == np.int64
    assert_array_equal(np.bincount(y), [212, 357])


def test_load_diabetes():
    X, y = load_diabetes()
    assert X.shape == (442, 10) and X.dtype == np.float64 and X.flags.c_contiguous
    assert y.dtype == np.float64
    assert y.min() == 25.0 and y.max() == 346.0
    assert abs(y.var() - 5929.9) < 0.05
    # Scaled columns: centred, unit Euclidean norm.
    assert np.abs(X.mean(axis=0)).max() < 1e-12
    assert np.allclose(np.linalg.norm(X, axis=0), 1.0, atol=1e-6)
    X_raw, y_raw = load_diabetes(scaled=False)
    assert_array_equal(y_raw, y)
    assert X_raw[0, 0] == 59.0 and X_raw[0, 2] == 32.1  # age and BMI of the first patient
    with pytest.raises(TypeError, match="scaled"):
        load_diabetes(scaled="no")


def test_split_sizes_and_partition():
    X, y = load_digits()
    ids = np.arange(len(y), dtype=np.float64)
    Xi = np.column_stack([ids, X])
    X_tr, y_tr, X_va, y_va, X_te, y_te = train_val_test_split(Xi, y, random_state=0)
    # 0.25 * 1797 = 449.25 -> 449, 0.15 * 1797 = 269.55 -> 270, the rest 1078.
    assert (len(y_tr), len(y_va), len(y_te)) == (1078, 270, 449)
    parts = [X_tr[:, 0], X_va[:, 0], X_te[:, 0]]
    assert_array_equal(np.sort(np.concatenate(parts)), ids)
    for Xp, yp in ((X_tr, y_tr), (X_va, y_va), (X_te, y_te)):
        assert_array_equal(y[Xp[:, 0].astype(int)], yp)


def test_split_is_stratified():
    X, y = load_digits()
    counts = np.bincount(y)
    out = train_val_test_split(X, y, random_state=1)
    for part, frac in zip(out[1::2], (0.60, 0.15, 0.25)):
        # Each class is within one row of its share (two for train, which takes the rest).
        assert np.abs(np.bincount(part, minlength=10) - frac * counts).max() <= 2


def test_split_reproducible():
    X, y = load_breast_cancer()
    a = train_val_test_split(X, y, random_state=3)
    b = train_val_test_split(X, y, random_state=3)
    c = train_val_test_split(X, y, random_state=4)
    for u, v in zip(a, b):
        assert_array_equal(u, v)
    assert not np.array_equal(a[1], c[1]) or not np.array_equal(a[0], c[0])


def test_split_regression_needs_stratify_false():
    X, y = load_diabetes()
    with pytest.raises(ValueError, match="stratify=False"):
        train_val_test_split(X, y, random_state=0)
    out = train_val_test_split(X, y, stratify=False, random_state=0)
    assert [len(a) for a in out[1::2]] == [442 - 110 - 66, 66, 110]


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(val_size=0.0), ValueError, "val_size"),
        (dict(test_size=1.2), ValueError, "test_size"),
        (dict(val_size=0.5, test_size=0.5), ValueError, "< 1"),
        (dict(test_size="0.2"), TypeError, "test_size"),
        (dict(stratify=None), TypeError, "stratify"),
    ],
)
def test_split_bad_arguments(kwargs, exc, match):
    X, y = load_digits()
    with pytest.raises(exc, match=match):
        train_val_test_split(X, y, **kwargs)


def test_split_shape_mismatch():
    with pytest.raises(ValueError, match="rows"):
        train_val_test_split(np.zeros((10, 2)), np.zeros(9, dtype=int))
