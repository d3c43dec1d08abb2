"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (never downloaded)."""

import os
import re
from pathlib import Path

import numpy as np

from ._base import (
    check_sha256,
    dpkg_files,
    env_data_dir,
    not_found,
    parse_idx,
    read_payload,
    warn_unverified,
)

__all__ = [
    "load_fashion_mnist",
    "fashion_mnist_available",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_INSTALL",
]

FASHION_MNIST_INSTALL = "apt-get install dataset-fashion-mnist"
_PACKAGE = "dataset-fashion-mnist"
_FOLDER = "fashion-mnist"

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# sha256 of the *decompressed* IDX files. Debian recompressed the upstream .gz files, so
# only the decompressed content identifies the data whatever the compression.
_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
# sha256 of the Debian .gz files as shipped; informational (not used for verification).
_SHA256_DEBIAN_GZ = {
    "train-images-idx3-ubyte": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}

_SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_ALL_STEMS = _SPLIT_FILES["train"] + _SPLIT_FILES["test"]
_DPKG_PATTERN = re.compile(r"idx[13]-ubyte\.gz$")
_SIDE = 28
_N_CLASSES = 10


def _files_in(folder, stems):
    """Map each stem to its file in ``folder`` (raw before .gz); None if any is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = {}
    for stem in stems:
        # The raw file skips decompression; both are verified on their decompressed content.
        for name in (stem, stem + ".gz"):
            candidate = folder / name
            if candidate.is_file():
                found[stem] = candidate
                break
        else:
            return None
    return found


def _dpkg_folder():
    files = dpkg_files(_PACKAGE)
    if not files:
        return None
    hits = [f for f in files if _DPKG_PATTERN.search(f.name)]
    if not hits:
        return None
    return Path(os.path.commonpath([str(f.parent) for f in hits]))


def _locate(path, stems):
    """Resolve the files for ``stems``: argument, then $SKRMT_DATA_DIR, then dpkg."""
    searched = []
    if path is not None:
        folder = Path(os.fspath(path)).expanduser()
        # A file argument names one of the four files; its siblings are the others.
        if folder.is_file():
            folder = folder.parent
        found = _files_in(folder, stems)
        if found is None:
            raise not_found("Fashion-MNIST", FASHION_MNIST_INSTALL, [str(folder)])
        return found
    env_folder = env_data_dir(_FOLDER)
    if env_folder is not None:
        searched.append(str(env_folder))
        found = _files_in(env_folder, stems)
        if found is not None:
            return found
    dpkg_folder = _dpkg_folder()
    searched.append(f"dpkg -L {_PACKAGE}" + (f" ({dpkg_folder})" if dpkg_folder else ""))
    if dpkg_folder is not None:
        found = _files_in(dpkg_folder, stems)
        if found is not None:
            return found
    raise not_found("Fashion-MNIST", FASHION_MNIST_INSTALL, searched)


def fashion_mnist_available(path=None):
    """Tell whether the four Fashion-MNIST files can be found, without reading them.

    Cheap: resolves the location (argument, ``$SKRMT_DATA_DIR/fashion-mnist``, then
    ``dpkg -L dataset-fashion-mnist``) but neither reads nor hashes the files.

    Parameters
    ----------
    path : str or os.PathLike, default=None
        Folder holding the files (or one of them); None searches as described above.

    Returns
    -------
    available : bool
        True when all four files were found.

    See Also
    --------
    load_fashion_mnist : Read and verify the files.

    Notes
    -----
    Use it to gate optional code paths (examples and tests fall back to the bundled digits
    when it returns False). Nothing is downloaded: install the data with
    ``apt-get install dataset-fashion-mnist`` or point ``$SKRMT_DATA_DIR`` at a copy.

    References
    ----------
    .. [1] H. Xiao, K. Rasul and R. Vollgraf, "Fashion-MNIST: a novel image dataset for
       benchmarking machine learning algorithms", arXiv:1708.07747, 2017.

    Examples
    --------
    >>> from skrmt.datasets import fashion_mnist_available
    >>> fashion_mnist_available("/nonexistent")
    False
    >>> isinstance(fashion_mnist_available(), bool)
    True
    """
    try:
        _locate(path, _ALL_STEMS)
    except FileNotFoundError:
        return False
    return True


def _read(file, stem, verify):
    payload, digest = read_payload(file)
    if verify:
        check_sha256(digest, _SHA256[stem], f"{file} (decompressed {stem})")
    return parse_idx(payload)


def _load_split(files, split, verify, dtype, flatten):
    img_stem, lab_stem = _SPLIT_FILES[split]
    images = _read(files[img_stem], img_stem, verify)
    labels = _read(files[lab_stem], lab_stem, verify)
    if images.ndim != 3 or images.shape[1:] != (_SIDE, _SIDE):
        raise ValueError(
            f"{files[img_stem]}: expected images of shape (N, 28, 28), got {images.shape}"
        )
    if labels.ndim != 1:
        raise ValueError(f"{files[lab_stem]}: expected labels of shape (N,), got {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"Fashion-MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels"
        )
    if labels.size and labels.max() >= _N_CLASSES:
        raise ValueError(f"{files[lab_stem]}: label {labels.max()} outside 0..9")
    n = images.shape[0]
    shaped = images.reshape(n, _SIDE * _SIDE) if flatten else images
    if dtype == np.uint8:
        # frombuffer views are read-only; hand out an owned, writeable array.
        X = np.array(shaped, dtype=np.uint8, order="C", copy=True)
    else:
        X = shaped.astype(dtype, order="C")
        X /= dtype.type(255)
    return X, labels.astype(np.int64)


def load_fashion_mnist(path=None, *, split="train", dtype=np.float32, flatten=True, verify=True):
    """Load Fashion-MNIST from local files (Debian ``dataset-fashion-mnist``); never downloads.

    The files are looked for in ``path``; when it is None, in
    ``$SKRMT_DATA_DIR/fashion-mnist``, then in the folder ``dpkg -L dataset-fashion-mnist``
    lists. Either the ``.gz`` files or their decompressed IDX copies are accepted; the
    decompressed content is checked against pinned sha256 values before use.

    Parameters
    ----------
    path : str or os.PathLike, default=None
        Folder holding ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
        ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]`` (or one of those
        files, standing for its folder).
    split : {"train", "test", "both"}, default="train"
        Official 60000-image training set, 10000-image test set, or both.
    dtype : numpy dtype, default=np.float32
        A floating dtype gives pixels scaled to [0, 1] (``uint8 / 255``); ``np.uint8``
        gives the raw 0..255 values.
    flatten : bool, default=True
        Return images as rows of 784 pixels; otherwise as (N, 28, 28).
    verify : bool, default=True
        Check the sha256 of each decompressed file; False skips the check with a
        ``UserWarning``.

    Returns
    -------
    X, y : ndarray
        For ``split="train"`` or ``"test"``: images (C-contiguous, ``dtype``) and int64
        labels 0..9 (see ``FASHION_MNIST_CLASSES``).
    X_train, y_train, X_test, y_test : ndarray
        For ``split="both"``.

    Raises
    ------
    DatasetNotFoundError
        The files are not found; the message names ``apt-get install dataset-fashion-mnist``.
    DatasetIntegrityError
        A file's decompressed sha256 differs from the pinned value.
    ValueError
        Invalid arguments, or a malformed IDX file.

    See Also
    --------
    fashion_mnist_available : Check for the files without reading them.
    load_digits : A small image set that is always available.

    Notes
    -----
    Ten classes of 28 x 28 grey-level clothing images (``FASHION_MNIST_CLASSES``), 6000
    training and 1000 test images per class. ``skrmt compare --dataset fashion-mnist`` and
    the NTK-LC and DEQ benchmarks use it; p = 784 is large enough for the kernel
    equivalents to be accurate to a few percent.

    References
    ----------
    .. [1] H. Xiao, K. Rasul and R. Vollgraf, "Fashion-MNIST: a novel image dataset for
       benchmarking machine learning algorithms", arXiv:1708.07747, 2017.

    Examples
    --------
    >>> from skrmt.datasets import fashion_mnist_available, load_fashion_mnist
    >>> from skrmt.exceptions import DatasetNotFoundError
    >>> try:
    ...     load_fashion_mnist("/nonexistent")
    ... except DatasetNotFoundError as err:
    ...     print(str(err)[:31])
    Fashion-MNIST not found (looked
    >>> if fashion_mnist_available():
    ...     X, y = load_fashion_mnist(split="test")
    ...     assert X.shape == (10000, 784) and X.dtype.name == "float32"
    """
    if split not in ("train", "test", "both"):
        raise ValueError(f"split must be 'train', 'test' or 'both', got {split!r}")
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be a numpy dtype, got {dtype!r}") from exc
    if dtype != np.uint8 and dtype.kind != "f":
        raise ValueError(f"dtype must be np.uint8 or a floating dtype, got {dtype}")
    if not isinstance(flatten, (bool, np.bool_)):
        raise TypeError(f"flatten must be a bool, got {type(flatten).__name__}")
    if not isinstance(verify, (bool, np.bool_)):
        raise TypeError(f"verify must be a bool, got {type(verify).__name__}")

    splits = ("train", "test") if split == "both" else (split,)
    stems = tuple(s for sp in splits for s in _SPLIT_FILES[sp])
    files = _locate(path, stems)
    if not verify:
        warn_unverified("Fashion-MNIST")
    out = []
    for sp in splits:
        out.extend(_load_split(files, sp, bool(verify), dtype, bool(flatten)))
    return tuple(out)
