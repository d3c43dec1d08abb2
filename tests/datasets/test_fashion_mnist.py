"""Fashion-MNIST loader and IDX parser (data.md §2, §8.1-8.2).

Synthetic IDX files in ``tmp_path`` exercise the parser, the path resolution and the
integrity check on every machine; the ``data``-marked tests read the installed Debian
package and skip when it is absent.
"""

import gzip
import hashlib
import os
import shutil
import stat

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import skrmt.datasets._base as base
import skrmt.datasets._fashion_mnist as fm
from skrmt.datasets import (
    FASHION_MNIST_CLASSES,
    DatasetIntegrityError,
    DatasetNotFoundError,
    fashion_mnist_available,
    load_fashion_mnist,
)

from .conftest import load_fashion_mnist_or_skip

INSTALL = "apt-get install dataset-fashion-mnist"
STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_bytes(array, type_byte=0x08):
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, type_byte, array.ndim])
    header += np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.tobytes()


def write_fake_set(folder, *, n_train=6, n_test=4, gz=True, seed=0):
    """Write four tiny Fashion-MNIST-shaped IDX files; return their contents and sha256."""
    rng = np.random.RandomState(seed)
    folder.mkdir(parents=True, exist_ok=True)
    content = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
        labels = rng.randint(0, 10, size=n).astype(np.uint8)
        for stem, arr in zip(STEMS[split], (images, labels)):
            raw = idx_bytes(arr)
            if gz:
                (folder / (stem + ".gz")).write_bytes(gzip.compress(raw))
            else:
                (folder / stem).write_bytes(raw)
            content[stem] = (arr, hashlib.sha256(raw).hexdigest())
    return content


@pytest.fixture
def no_dpkg(monkeypatch):
    """Hide the system's dpkg and $SKRMT_DATA_DIR so only the test's files are seen."""
    monkeypatch.setattr(base.shutil, "which", lambda name: None)
    monkeypatch.delenv("SKRMT_DATA_DIR", raising=False)


@pytest.fixture
def fake_set(tmp_path, monkeypatch):
    folder = tmp_path / "fashion-mnist"
    content = write_fake_set(folder)
    monkeypatch.setattr(fm, "_SHA256", {k: v[1] for k, v in content.items()})
    return folder, content


# ---------------------------------------------------------------------------------------
# IDX parser (§8.2)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 28, 28), (5,), (2, 3), (0, 28, 28)])
def test_parse_idx_roundtrip(shape):
    arr = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape) % 256
    out = base.parse_idx(idx_bytes(arr))
    assert out.dtype == np.uint8 and out.shape == shape
    assert_array_equal(out, arr)


def test_parse_idx_reads_big_endian_sizes():
    # 300 rows: the size field is 00 00 01 2c; a little-endian read would give 0x2c010000.
    arr = (np.arange(300) % 7).astype(np.uint8)
    payload = idx_bytes(arr)
    assert payload[4:8] == b"\x00\x00\x01\x2c"
    assert base.parse_idx(payload).shape == (300,)


def test_parse_idx_rejects_type_0x0d():
    payload = idx_bytes(np.zeros((2, 28, 28)), type_byte=0x0D)
    with pytest.raises(ValueError, match="0x0d"):
        base.parse_idx(payload)


@pytest.mark.parametrize("cut", [1, 100, 28 * 28])
def test_parse_idx_rejects_short_payload(cut):
    payload = idx_bytes(np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="bytes"):
        base.parse_idx(payload[:-cut])


@pytest.mark.parametrize(
    "payload",
    [
        idx_bytes(np.zeros(4)) + b"\x00",  # trailing byte
        b"\x00\x01\x08\x01\x00\x00\x00\x01\x00",  # nonzero magic byte 1
        b"\x00\x00\x08",  # shorter than the fixed 4-byte prefix
        b"\x00\x00\x08\x03\x00\x00\x00\x02",  # header cut inside the size fields
        b"\x00\x00\x08\x00",  # zero dimensions
    ],
)
def test_parse_idx_rejects_malformed(payload):
    with pytest.raises(ValueError):
        base.parse_idx(payload)


# ---------------------------------------------------------------------------------------
# hashing helpers
# ---------------------------------------------------------------------------------------


def test_read_payload_hashes_decompressed_content(tmp_path):
    # Longer than one 1 MiB chunk, so the streaming loop runs several times.
    raw = np.random.RandomState(0).bytes(3 * (1 << 20) + 17)
    ref = hashlib.sha256(raw).hexdigest()
    (tmp_path / "plain").write_bytes(raw)
    # The gzip file is named without .gz: gzip is detected from its magic bytes.
    (tmp_path / "packed").write_bytes(gzip.compress(raw, compresslevel=1))
    for name in ("plain", "packed"):
        payload, digest = base.read_payload(tmp_path / name)
        assert payload == raw and digest == ref
    assert base.sha256_file(tmp_path / "plain") == ref
    assert base.sha256_file(tmp_path / "packed") == hashlib.sha256(
        (tmp_path / "packed").read_bytes()
    ).hexdigest()


def test_truncated_gzip_is_an_integrity_error(tmp_path):
    packed = gzip.compress(idx_bytes(np.zeros((4, 28, 28))))
    (tmp_path / "cut.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DatasetIntegrityError, match="decompress"):
        base.read_payload(tmp_path / "cut.gz")


# ---------------------------------------------------------------------------------------
# loader on synthetic files
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_load_synthetic_set(tmp_path, monkeypatch, no_dpkg, gz):
    folder = tmp_path / "fm"
    content = write_fake_set(folder, gz=gz)
    monkeypatch.setattr(fm, "_SHA256", {k: v[1] for k, v in content.items()})
    img_tr = content["train-images-idx3-ubyte"][0]
    lab_tr = content["train-labels-idx1-ubyte"][0]
    img_te = content["t10k-images-idx3-ubyte"][0]

    X, y = load_fashion_mnist(folder)
    assert X.shape == (6, 784) and X.dtype == np.float32 and X.flags.c_contiguous
    assert y.dtype == np.int64
    assert_array_equal(y, lab_tr)
    assert_allclose(X, img_tr.reshape(6, 784).astype(np.float32) / np.float32(255), rtol=0,
                    atol=0)
    assert X.min() >= 0.0 and X.max() <= 1.0

    Xu, _ = load_fashion_mnist(folder, split="test", dtype=np.uint8, flatten=False)
    assert Xu.dtype == np.uint8 and Xu.shape == (4, 28, 28) and Xu.flags.writeable
    assert_array_equal(Xu, img_te)

    X64, _ = load_fashion_mnist(folder, split="test", dtype=np.float64)
    assert X64.dtype == np.float64
    assert_allclose(X64, img_te.reshape(4, -1) / 255.0, rtol=1e-15)

    out = load_fashion_mnist(folder, split="both")
    assert len(out) == 4
    assert [a.shape[0] for a in out] == [6, 6, 4, 4]


def test_file_argument_stands_for_its_folder(fake_set, no_dpkg):
    folder, content = fake_set
    _, y = load_fashion_mnist(folder / "t10k-labels-idx1-ubyte.gz", split="test")
    assert_array_equal(y, content["t10k-labels-idx1-ubyte"][0])


def test_pinned_hash_rejects_other_content(tmp_path, no_dpkg):
    # Default (real) pinned hashes: the synthetic files must fail verification.
    write_fake_set(tmp_path)
    with pytest.raises(DatasetIntegrityError, match="sha256"):
        load_fashion_mnist(tmp_path, split="test")


def test_verify_false_warns_and_loads(tmp_path, no_dpkg):
    content = write_fake_set(tmp_path)
    with pytest.warns(UserWarning, match="verify=False"):
        _, y = load_fashion_mnist(tmp_path, split="test", verify=False)
    assert_array_equal(y, content["t10k-labels-idx1-ubyte"][0])


@pytest.mark.parametrize("stem", ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
def test_flipped_byte_in_raw_copy(fake_set, tmp_path, no_dpkg, stem):
    folder, _ = fake_set
    copy = tmp_path / "copy"
    copy.mkdir()
    for other in STEMS["test"]:
        raw = gzip.decompress((folder / (other + ".gz")).read_bytes())
        if other == stem:
            raw = bytearray(raw)
            raw[-1] ^= 0x01  # last payload byte: the header stays valid
            raw = bytes(raw)
        (copy / other).write_bytes(raw)
    with pytest.raises(DatasetIntegrityError, match=stem):
        load_fashion_mnist(copy, split="test")


def test_flipped_byte_in_gz_copy(fake_set, tmp_path, no_dpkg):
    folder, _ = fake_set
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    target = copy / "t10k-images-idx3-ubyte.gz"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    # Either the gzip CRC or the content hash catches it; both are integrity errors.
    with pytest.raises(DatasetIntegrityError):
        load_fashion_mnist(copy, split="test")


def test_count_mismatch_and_bad_label(tmp_path, monkeypatch, no_dpkg):
    images = np.zeros((3, 28, 28), np.uint8)
    files = {
        "t10k-images-idx3-ubyte": idx_bytes(images),
        "t10k-labels-idx1-ubyte": idx_bytes(np.array([1, 2], np.uint8)),
    }
    for stem, raw in files.items():
        (tmp_path / stem).write_bytes(raw)
    hashes = {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
    monkeypatch.setattr(fm, "_SHA256", hashes)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        load_fashion_mnist(tmp_path, split="test")

    raw = idx_bytes(np.array([1, 10, 2], np.uint8))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(raw)
    hashes["t10k-labels-idx1-ubyte"] = hashlib.sha256(raw).hexdigest()
    with pytest.raises(ValueError, match="outside 0..9"):
        load_fashion_mnist(tmp_path, split="test")

    raw = idx_bytes(np.zeros((3, 27, 28), np.uint8))
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(raw)
    hashes["t10k-images-idx3-ubyte"] = hashlib.sha256(raw).hexdigest()
    with pytest.raises(ValueError, match="28, 28"):
        load_fashion_mnist(tmp_path, split="test")


def test_bad_type_byte_in_file_raises_value_error(tmp_path, monkeypatch, no_dpkg):
    files = {
        "t10k-images-idx3-ubyte": idx_bytes(np.zeros((2, 28, 28)), type_byte=0x0D),
        "t10k-labels-idx1-ubyte": idx_bytes(np.zeros(2)),
    }
    for stem, raw in files.items():
        (tmp_path / stem).write_bytes(raw)
    monkeypatch.setattr(fm, "_SHA256", {k: hashlib.sha256(v).hexdigest() for k, v in files.items()})
    with pytest.raises(ValueError, match="element type"):
        load_fashion_mnist(tmp_path, split="test")


# ---------------------------------------------------------------------------------------
# path resolution
# ---------------------------------------------------------------------------------------


def test_empty_folder_not_found(tmp_path, no_dpkg):
    with pytest.raises(DatasetNotFoundError, match=INSTALL) as info:
        load_fashion_mnist(tmp_path)
    assert isinstance(info.value, FileNotFoundError)
    assert fashion_mnist_available(tmp_path) is False
    # The fixture helper turns the same absence into a skip carrying the install command.
    with pytest.raises(pytest.skip.Exception, match=INSTALL):
        load_fashion_mnist_or_skip(tmp_path)


def test_missing_test_files_only_affects_test_split(fake_set, no_dpkg):
    folder, _ = fake_set
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    load_fashion_mnist(folder, split="train")
    with pytest.raises(DatasetNotFoundError):
        load_fashion_mnist(folder, split="test")
    assert fashion_mnist_available(folder) is False


def test_environment_variable(fake_set, monkeypatch, no_dpkg):
    folder, content = fake_set
    monkeypatch.setenv("SKRMT_DATA_DIR", str(folder.parent))
    assert fashion_mnist_available() is True
    _, y = load_fashion_mnist(split="test")
    assert_array_equal(y, content["t10k-labels-idx1-ubyte"][0])

    monkeypatch.setenv("SKRMT_DATA_DIR", str(folder.parent / "elsewhere"))
    assert fashion_mnist_available() is False
    with pytest.raises(DatasetNotFoundError, match="elsewhere"):
        load_fashion_mnist()


def _fake_dpkg(bin_dir, body):
    bin_dir.mkdir()
    script = bin_dir / "dpkg"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def test_dpkg_listing_is_used(fake_set, tmp_path, monkeypatch):
    folder, content = fake_set
    monkeypatch.delenv("SKRMT_DATA_DIR", raising=False)
    listing = "\n".join(
        ["/.", "/usr/share/doc/dataset-fashion-mnist/copyright"]
        + [str(folder / (s + ".gz")) for s in STEMS["train"] + STEMS["test"]]
    )
    _fake_dpkg(tmp_path / "bin",
               f'[ "$1" = "-L" ] && [ "$2" = "dataset-fashion-mnist" ] || exit 1\n'
               f"cat <<'EOF'\n{listing}\nEOF\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert fashion_mnist_available() is True
    _, y = load_fashion_mnist(split="test")
    assert_array_equal(y, content["t10k-labels-idx1-ubyte"][0])


def test_dpkg_nonzero_exit_means_not_installed(tmp_path, monkeypatch):
    monkeypatch.delenv("SKRMT_DATA_DIR", raising=False)
    _fake_dpkg(tmp_path / "bin",
               "echo \"dpkg-query: package '$2' is not installed\" >&2\nexit 1\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert base.dpkg_files("dataset-fashion-mnist") is None
    assert fashion_mnist_available() is False
    with pytest.raises(DatasetNotFoundError, match=INSTALL):
        load_fashion_mnist()


# ---------------------------------------------------------------------------------------
# argument validation
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(split="validation"), ValueError, "split"),
        (dict(dtype=np.int32), ValueError, "dtype"),
        (dict(dtype="not-a-dtype"), TypeError, "dtype"),
        (dict(flatten=1), TypeError, "flatten"),
        (dict(verify="yes"), TypeError, "verify"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        load_fashion_mnist(tmp_path, **kwargs)


# ---------------------------------------------------------------------------------------
# the real data (§8.1): skipped when dataset-fashion-mnist is absent
# ---------------------------------------------------------------------------------------


@pytest.mark.data
def test_real_content(fashion_mnist):
    X_tr, y_tr, X_te, y_te = fashion_mnist
    assert X_tr.shape == (60000, 28, 28) and X_te.shape == (10000, 28, 28)
    assert X_tr.dtype == np.uint8 and y_tr.dtype == np.int64
    assert_array_equal(np.bincount(y_tr, minlength=10), np.full(10, 6000))
    assert_array_equal(np.bincount(y_te, minlength=10), np.full(10, 1000))
    assert_array_equal(y_tr[:10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5])
    assert_array_equal(y_te[:10], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7])
    # Exact integer moments: no 376 MB float copy (255^2 fits in uint16).
    sq = X_tr.astype(np.uint16)
    sq *= sq
    mean_tr = X_tr.sum(dtype=np.int64) / X_tr.size
    std_tr = np.sqrt(sq.sum(dtype=np.int64) / X_tr.size - mean_tr**2)
    assert abs(mean_tr - 72.940) < 5e-4
    assert abs(X_te.sum(dtype=np.int64) / X_te.size - 73.147) < 5e-4
    assert abs(mean_tr / 255 - 0.28604) < 5e-6
    assert abs(std_tr / 255 - 0.35302) < 5e-6
    assert len(FASHION_MNIST_CLASSES) == 10 and FASHION_MNIST_CLASSES[9] == "Ankle boot"


@pytest.mark.data
def test_real_default_float32(fashion_mnist):
    X, y = load_fashion_mnist(split="test")
    assert X.shape == (10000, 784) and X.dtype == np.float32 and X.flags.c_contiguous
    assert_array_equal(y, fashion_mnist[3])
    assert_array_equal(X, fashion_mnist[2].reshape(10000, 784).astype(np.float32) / 255)
    assert abs(X.mean(dtype=np.float64) * 255 - 73.147) < 5e-4


@pytest.mark.data
def test_real_decompressed_sha256(fashion_mnist):
    files = fm._locate(None, fm._ALL_STEMS)
    for stem, path in files.items():
        _, digest = base.read_payload(path)
        assert digest == fm._SHA256[stem]


@pytest.mark.data
def test_real_flipped_byte_and_raw_copy(fashion_mnist, tmp_path):
    files = fm._locate(None, fm._ALL_STEMS)
    good = tmp_path / "good"
    bad = tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    for stem in STEMS["test"]:
        raw, _ = base.read_payload(files[stem])
        (good / stem).write_bytes(raw)  # decompressed copies are accepted too
        if stem == "t10k-labels-idx1-ubyte":
            raw = bytearray(raw)
            raw[8] ^= 0x01  # first label 9 -> 8: still a valid IDX file and label
            raw = bytes(raw)
        (bad / stem).write_bytes(raw)
    _, y = load_fashion_mnist(good, split="test", dtype=np.uint8)
    assert_array_equal(y, fashion_mnist[3])
    with pytest.raises(DatasetIntegrityError, match="t10k-labels"):
        load_fashion_mnist(bad, split="test")
    with pytest.warns(UserWarning):
        _, y_bad = load_fashion_mnist(bad, split="test", dtype=np.uint8, verify=False)
    assert y_bad[0] == 8 and np.count_nonzero(y_bad != fashion_mnist[3]) == 1


@pytest.mark.data
def test_real_available(fashion_mnist):
    assert fashion_mnist_available() is True
