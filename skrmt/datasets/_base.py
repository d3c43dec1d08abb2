"""Shared helpers for the offline loaders: hashing, path resolution, IDX parsing.

Nothing here touches the network: a data set is either at a path the user gives, under
``$SKRMT_DATA_DIR``, or installed by the system package manager (see ``data.md`` rule 2).
"""

import gzip
import hashlib
import os
import shutil
import subprocess
import warnings
import zlib
from pathlib import Path

import numpy as np

from ..exceptions import DatasetIntegrityError, DatasetNotFoundError

__all__ = [
    "CHUNK_SIZE",
    "DATA_DIR_ENV",
    "sha256_file",
    "read_payload",
    "check_sha256",
    "warn_unverified",
    "dpkg_files",
    "env_data_dir",
    "not_found",
    "parse_idx",
    "resolve_file",
    "read_verified_bytes",
]

# 1 MiB: large enough that hashing a 47 MB file costs ~50 calls, small enough to stream.
CHUNK_SIZE = 1 << 20
DATA_DIR_ENV = "SKRMT_DATA_DIR"

_GZIP_MAGIC = b"\x1f\x8b"
# dpkg -L answers in milliseconds; the bound only guards against a wedged dpkg database lock.
_DPKG_TIMEOUT_S = 30


def sha256_file(path, chunk_size=CHUNK_SIZE):
    """Stream the sha256 of a file's bytes as stored on disk.

    Parameters
    ----------
    path : str or os.PathLike
        File to hash.
    chunk_size : int, default=1 MiB
        Bytes read per step.

    Returns
    -------
    str
        Lower-case hexadecimal digest.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def _is_gzip(path):
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def read_payload(path, chunk_size=CHUNK_SIZE):
    """Read a file, transparently decompressing gzip, and hash what was read.

    Gzip is recognised by its magic bytes rather than the file name, so a renamed or
    decompressed copy is read correctly.

    Parameters
    ----------
    path : str or os.PathLike
        File to read (raw or gzip-compressed).
    chunk_size : int, default=1 MiB
        Bytes read (after decompression) per step.

    Returns
    -------
    payload : bytes
        The decompressed content.
    sha256 : str
        Hex sha256 of ``payload`` (the decompressed bytes), computed while streaming.
    """
    opener = gzip.open if _is_gzip(path) else open
    h = hashlib.sha256()
    parts = []
    try:
        with opener(path, "rb") as f:
            while chunk := f.read(chunk_size):
                h.update(chunk)
                parts.append(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        # A truncated or damaged gzip stream is a corrupt copy, not a missing one.
        raise DatasetIntegrityError(f"cannot decompress {os.fspath(path)!r}: {exc}") from exc
    return b"".join(parts), h.hexdigest()


def check_sha256(actual, expected, what):
    """Raise :class:`DatasetIntegrityError` when two hex digests differ.

    Parameters
    ----------
    actual, expected : str
        Hex digests (case-insensitive).
    what : str
        Name of the checked file, used in the message.
    """
    if actual.lower() != expected.lower():
        raise DatasetIntegrityError(
            f"sha256 mismatch for {what}: expected {expected}, got {actual}. "
            "The copy is corrupt or a different version; reinstall it "
            "(or pass verify=False to load it anyway)."
        )


def warn_unverified(name):
    """Emit the ``UserWarning`` that ``verify=False`` promises."""
    warnings.warn(
        f"verify=False: {name} is loaded without checking its sha256 against the pinned value.",
        UserWarning,
        stacklevel=3,
    )


def dpkg_files(package):
    """List the files a Debian package installed, or None when it is not installed.

    Parameters
    ----------
    package : str
        Debian package name.

    Returns
    -------
    list of pathlib.Path or None
        Paths printed by ``dpkg -L`` that exist as regular files; None when ``dpkg`` is not
        on ``PATH``, exits non-zero (not installed) or cannot be run.
    """
    dpkg = shutil.which("dpkg")
    if dpkg is None:
        return None
    try:
        proc = subprocess.run(
            [dpkg, "-L", package],
            capture_output=True,
            text=True,
            timeout=_DPKG_TIMEOUT_S,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    # A removed-but-not-purged package still lists its files; keep only those present.
    files = [Path(line.strip()) for line in proc.stdout.splitlines() if line.strip()]
    return [f for f in files if f.is_file()]


def env_data_dir(folder_name):
    """Return ``$SKRMT_DATA_DIR/<folder_name>`` when the variable is set and non-empty."""
    root = os.environ.get(DATA_DIR_ENV, "")
    if not root:
        return None
    return Path(root).expanduser() / folder_name


def not_found(name, install, searched):
    """Build the :class:`DatasetNotFoundError` every loader raises when data is absent.

    Parameters
    ----------
    name : str
        Human-readable data set name.
    install : str
        Exact install command to print.
    searched : list of str
        Places looked at, listed in the message.
    """
    where = "; ".join(searched) if searched else "nowhere"
    return DatasetNotFoundError(
        f"{name} not found (looked in: {where}). Install it with `{install}`, "
        f"or pass its folder as `path`, or set {DATA_DIR_ENV}."
    )


_IDX_UBYTE = 0x08


def parse_idx(payload):
    """Parse an IDX (MNIST-style) file held in memory.

    Header: two zero bytes, one element-type byte (only ``0x08``, unsigned byte, is
    accepted), one byte k = number of dimensions, then k big-endian uint32 sizes; the
    row-major data follows and must fill the rest of the payload exactly.

    Parameters
    ----------
    payload : bytes
        Complete (decompressed) file content.

    Returns
    -------
    numpy.ndarray of uint8
        Read-only view of ``payload`` with the sizes from the header as shape.

    Raises
    ------
    ValueError
        Bad magic, an element type other than unsigned byte, or a payload whose length
        does not match the header.
    """
    payload = bytes(payload) if not isinstance(payload, bytes) else payload
    if len(payload) < 4:
        raise ValueError(f"IDX payload too short for a header: {len(payload)} bytes")
    if payload[0] != 0 or payload[1] != 0:
        raise ValueError(
            f"not an IDX file: first two bytes are {payload[0]:#04x} {payload[1]:#04x}, not zero"
        )
    dtype_code = payload[2]
    if dtype_code != _IDX_UBYTE:
        raise ValueError(
            f"unsupported IDX element type {dtype_code:#04x}; only 0x08 (unsigned byte) is read"
        )
    ndim = payload[3]
    if ndim == 0:
        raise ValueError("IDX header declares zero dimensions")
    header = 4 + 4 * ndim
    if len(payload) < header:
        raise ValueError(
            f"IDX payload too short: {len(payload)} bytes, header alone needs {header}"
        )
    shape = tuple(int(s) for s in np.frombuffer(payload, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(payload) != expected:
        raise ValueError(
            f"IDX payload has {len(payload)} bytes but header {shape} implies {expected}"
        )
    return np.frombuffer(payload, dtype=np.uint8, offset=header).reshape(shape)


def resolve_file(path, filename, *, folder_name, system_locator, name, install):
    """Find one data file: ``path`` argument, then ``$SKRMT_DATA_DIR``, then the system copy.

    Parameters
    ----------
    path : str, os.PathLike or None
        A folder holding ``filename``, or the file itself (any name).
    filename : str
        File name looked for in folders.
    folder_name : str or sequence of str
        Sub-folder(s) of ``$SKRMT_DATA_DIR`` to look in, in order.
    system_locator : callable
        ``system_locator() -> (Path or None, description)``: the installed copy, if any,
        and a short text for the error message.
    name, install : str
        Data set name and install command for :class:`DatasetNotFoundError`.

    Returns
    -------
    pathlib.Path
    """
    if path is not None:
        p = Path(os.fspath(path)).expanduser()
        if p.is_file():
            return p
        if (p / filename).is_file():
            return p / filename
        raise not_found(name, install, [str(p / filename) if p.is_dir() else str(p)])
    searched = []
    folders = (folder_name,) if isinstance(folder_name, str) else tuple(folder_name)
    for sub in folders:
        env_folder = env_data_dir(sub)
        if env_folder is None:
            break
        searched.append(str(env_folder / filename))
        if (env_folder / filename).is_file():
            return env_folder / filename
    found, description = system_locator()
    searched.append(description)
    if found is not None and Path(found).is_file():
        return Path(found)
    raise not_found(name, install, searched)


def read_verified_bytes(path, expected_sha256, what, verify=True):
    """Read a whole file and check its sha256 (as stored) before anything parses it.

    Returns the bytes that were hashed, so the parser sees exactly the verified content.
    """
    data = Path(path).read_bytes()
    if verify:
        check_sha256(hashlib.sha256(data).hexdigest(), expected_sha256, what)
    return data
