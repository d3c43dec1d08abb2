"""Letter, Shuttle and Satellite from the Debian package ``r-cran-mlbench``, read with ``rdata``.

Optional: needs the package's ``.rda`` files (or an extracted copy) and the PyPI reader
``rdata``; nothing is downloaded.
"""

import io
import warnings

import numpy as np

from ._base import dpkg_files, read_verified_bytes, resolve_file, warn_unverified

__all__ = ["load_mlbench", "MLBENCH_INSTALL", "RDATA_INSTALL"]

MLBENCH_INSTALL = (
    "apt-get install r-cran-mlbench (or, without R: apt-get download r-cran-mlbench && "
    "dpkg-deb -x r-cran-mlbench_*.deb DIR, then pass DIR/usr/lib/R/site-library/mlbench/data)"
)
RDATA_INSTALL = "pip install rdata"
_PACKAGE = "r-cran-mlbench"

# name -> (R object / file stem, label column, sha256 of the .rda file, n_train of UCI split,
#          expected shape of X)
_SETS = {
    "letter": (
        "LetterRecognition", "lettr",
        "967a1a3e10b548d7269cbe50182bcecd6365cc58ea07638bbc34c51f17f34f1d", 16000, (20000, 16),
    ),
    "shuttle": (
        "Shuttle", "Class",
        "5b1db218b76a47c83f575f1ff38d7a7d36e569b0e27d8bf4aa92eae6c0bcb826", 43500, (58000, 9),
    ),
    "satellite": (
        "Satellite", "classes",
        "29f8cf9bb1bc51b769d694c9caf740fd1c36ed6a7c87603edf5985962e330f64", 4435, (6435, 36),
    ),
}


def _dpkg_locator(filename):
    def locate():
        files = dpkg_files(_PACKAGE)
        for f in files or ():
            if f.name == filename and f.parent.name == "data" and f.parent.parent.name == "mlbench":
                return f, f"dpkg -L {_PACKAGE} ({f})"
        return None, f"dpkg -L {_PACKAGE}"

    return locate


def load_mlbench(name, path=None, *, split="uci", verify=True):
    """Load Letter, Shuttle or Satellite from R's ``mlbench`` data files; never downloads.

    The ``.rda`` file is looked for in ``path``; when it is None, in
    ``$SKRMT_DATA_DIR/mlbench`` (or ``$SKRMT_DATA_DIR/mlbench/data``), then among the files
    ``dpkg -L r-cran-mlbench`` lists. Its sha256 is checked before ``rdata`` parses it.

    Parameters
    ----------
    name : {"letter", "shuttle", "satellite"}
        Data set.
    path : str or os.PathLike, default=None
        The ``mlbench/data`` folder, or the ``.rda`` file itself.
    split : {"uci", "all"}, default="uci"
        ``"uci"``: the original UCI train/test split, a row range (first 16000 / last 4000
        for letter, 43500 / 14500 for shuttle, 4435 / 2000 for satellite). ``"all"``: every
        row.
    verify : bool, default=True
        Check the file's sha256; False skips the check with a ``UserWarning``.

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        For ``split="uci"``: float64 C-contiguous features and int64 class codes in the
        R factor's level order.
    X, y : ndarray
        For ``split="all"``.

    Raises
    ------
    DatasetNotFoundError
        The ``.rda`` file is not found; the message names the install command.
    ImportError
        ``rdata`` is not installed (``pip install rdata``).
    DatasetIntegrityError
        The file's sha256 differs from the pinned value.

    Notes
    -----
    Feature ranges differ by orders of magnitude (Shuttle: four): standardise with
    training statistics before any kernel. Shuttle's majority class holds 78.6% of the
    rows; report balanced accuracy as well.

    The ``.rda`` files are R data; ``rdata`` (pure Python, from PyPI) parses them without R.

    See Also
    --------
    load_fashion_mnist : Another offline multi-class image set.
    load_diamonds : An offline regression set from R.

    References
    ----------
    .. [1] F. Leisch and E. Dimitriadou, "mlbench: Machine Learning Benchmark Problems",
       R package.
    .. [2] D. Dua and C. Graff, "UCI Machine Learning Repository", University of
       California, Irvine (Letter Recognition, Statlog Shuttle and Landsat Satellite).

    Examples
    --------
    >>> from skrmt.datasets import load_mlbench
    >>> from skrmt.exceptions import DatasetNotFoundError
    >>> try:
    ...     X_train, y_train, X_test, y_test = load_mlbench("letter")
    ... except (DatasetNotFoundError, ImportError):
    ...     pass  # not installed here: the message names the install command
    ... else:
    ...     assert X_train.shape == (16000, 16) and X_test.shape == (4000, 16)
    """
    if name not in _SETS:
        raise ValueError(f"name must be one of {sorted(_SETS)}, got {name!r}")
    if split not in ("uci", "all"):
        raise ValueError(f"split must be 'uci' or 'all', got {split!r}")
    if not isinstance(verify, (bool, np.bool_)):
        raise TypeError(f"verify must be a bool, got {type(verify).__name__}")
    obj, label, sha, n_train, shape = _SETS[name]
    filename = f"{obj}.rda"
    file = resolve_file(
        path, filename, folder_name=("mlbench", "mlbench/data"),
        system_locator=_dpkg_locator(filename), name=f"mlbench {obj}", install=MLBENCH_INSTALL,
    )
    if not verify:
        warn_unverified(f"mlbench {obj}")
    # Hash first: a corrupt copy is reported as such even where rdata is missing.
    data = read_verified_bytes(file, sha, str(file), verify=bool(verify))
    try:
        import rdata
    except ImportError as exc:
        raise ImportError(f"load_mlbench needs the rdata reader: {RDATA_INSTALL}") from exc
    with warnings.catch_warnings():
        # The files declare no string encoding; rdata's ASCII assumption is right for them.
        warnings.filterwarnings("ignore", message="Unknown encoding", category=UserWarning)
        frames = rdata.read_rda(io.BytesIO(data))
    if obj not in frames:
        raise ValueError(f"{file} holds {sorted(frames)}, not {obj!r}")
    df = frames[obj]
    columns = [str(c) for c in df.columns]
    if label not in columns:
        raise ValueError(f"{file}: label column {label!r} missing (columns: {columns})")
    labels = df[df.columns[columns.index(label)]]
    y = np.asarray(labels.cat.codes, dtype=np.int64)
    features = df.drop(columns=df.columns[columns.index(label)])
    X = np.ascontiguousarray(features.to_numpy(dtype=np.float64))
    if X.shape != shape or np.isnan(X).any() or (y < 0).any():
        raise ValueError(f"{file}: unexpected content (X shape {X.shape}, expected {shape})")
    if split == "all":
        return X, y
    return X[:n_train].copy(), y[:n_train].copy(), X[n_train:].copy(), y[n_train:].copy()

