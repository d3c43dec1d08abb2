"""load_mlbench (data.md §4, §8.3): Letter, Shuttle, Satellite from r-cran-mlbench.

The resolution and integrity tests use fake files and run everywhere; the content tests
need the .rda files and ``rdata`` and skip without them.
"""

import shutil

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import skrmt.datasets._base as base
import skrmt.datasets._mlbench as mlb
from skrmt.datasets import DatasetIntegrityError, DatasetNotFoundError, load_mlbench

from .conftest import load_mlbench_or_skip


@pytest.fixture
def no_system(monkeypatch):
    monkeypatch.setattr(base.shutil, "which", lambda name: None)
    monkeypatch.delenv("SKRMT_DATA_DIR", raising=False)


def test_not_found_names_install(tmp_path, no_system):
    with pytest.raises(DatasetNotFoundError, match="apt-get install r-cran-mlbench"):
        load_mlbench("letter", tmp_path)
    with pytest.raises(DatasetNotFoundError, match="dpkg-deb -x"):
        load_mlbench("satellite")
    with pytest.raises(pytest.skip.Exception, match="r-cran-mlbench not installed"):
        load_mlbench_or_skip("shuttle", tmp_path)


def test_wrong_content_is_integrity_error(tmp_path, no_system, monkeypatch):
    (tmp_path / "Satellite.rda").write_bytes(b"not the real file")
    with pytest.raises(DatasetIntegrityError, match="sha256"):
        load_mlbench("satellite", tmp_path)
    # Found through $SKRMT_DATA_DIR/mlbench as well.
    (tmp_path / "mlbench").mkdir()
    shutil.copy(tmp_path / "Satellite.rda", tmp_path / "mlbench" / "Satellite.rda")
    monkeypatch.setenv("SKRMT_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetIntegrityError):
        load_mlbench("satellite")


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(name="iris"), ValueError, "name"),
        (dict(name="letter", split="train"), ValueError, "split"),
        (dict(name="letter", verify=0), TypeError, "verify"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        load_mlbench(path=tmp_path, **kwargs)


# ---------------------------------------------------------------------------------------
# real files (skipped when r-cran-mlbench or rdata is absent)
# ---------------------------------------------------------------------------------------


@pytest.mark.data
def test_letter(mlbench_letter):
    X_tr, y_tr, X_te, y_te = mlbench_letter
    assert X_tr.shape == (16000, 16) and X_te.shape == (4000, 16)
    assert X_tr.dtype == np.float64 and X_tr.flags.c_contiguous and y_tr.dtype == np.int64
    X = np.vstack([X_tr, X_te])
    assert X.min() == 0 and X.max() == 15 and np.array_equal(X, np.round(X))
    counts = np.bincount(np.concatenate([y_tr, y_te]), minlength=26)
    assert counts.size == 26 and counts.min() == 734 and counts.max() == 813
    assert len(X) - len(np.unique(X, axis=0)) == 1332


@pytest.mark.data
def test_shuttle():
    X_tr, y_tr, X_te, y_te = load_mlbench_or_skip("shuttle")
    assert X_tr.shape == (43500, 9) and X_te.shape == (14500, 9)
    assert_array_equal(np.bincount(y_tr, minlength=7), [34108, 37, 132, 6748, 2458, 6, 11])
    assert_array_equal(np.bincount(y_te, minlength=7), [11478, 13, 39, 2155, 809, 4, 2])
    X = np.vstack([X_tr, X_te])
    assert X.min() == -26739 and X.max() == 15164


@pytest.mark.data
def test_satellite_all_and_uci():
    X, y = load_mlbench_or_skip("satellite", split="all")
    assert X.shape == (6435, 36) and X.min() == 27 and X.max() == 157
    assert_array_equal(np.bincount(y), [1533, 703, 1358, 626, 707, 1508])
    X_tr, y_tr, X_te, y_te = load_mlbench("satellite")
    assert_array_equal(np.bincount(y_tr), [1072, 479, 961, 415, 470, 1038])
    assert_array_equal(np.bincount(y_te), [461, 224, 397, 211, 237, 470])
    assert_array_equal(np.vstack([X_tr, X_te]), X)


@pytest.mark.data
def test_flipped_byte_copy(tmp_path):
    X, _ = load_mlbench_or_skip("satellite", split="all")  # skips when absent
    src = base.resolve_file(None, "Satellite.rda", folder_name=("mlbench", "mlbench/data"),
                            system_locator=mlb._dpkg_locator("Satellite.rda"),
                            name="mlbench", install="")
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0x01
    (tmp_path / "Satellite.rda").write_bytes(bytes(data))
    with pytest.raises(DatasetIntegrityError, match="sha256"):
        load_mlbench("satellite", tmp_path)
    # A file argument (any name) is read directly; an intact copy loads the same data.
    shutil.copy(src, tmp_path / "copy.rda")
    X2, _ = load_mlbench("satellite", tmp_path / "copy.rda", split="all")
    assert_array_equal(X2, X)
