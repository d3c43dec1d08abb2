"""Resolution of the ``device`` parameter (the only place that names devices)."""

import importlib
import re
import warnings

from ..exceptions import DeviceFallbackWarning

_CUDA_RE = re.compile(r"^cuda(:(\d+))?$")
_ACCEPTED = '"numpy", None, "cpu", "cuda", "cuda:k", "mps" or "auto"'


def _import_torch():
    try:
        return importlib.import_module("torch")
    except ImportError:  # pragma: no cover - torch is a dependency of the package
        return None


def torch_available():
    return _import_torch() is not None


def cuda_available():
    torch = _import_torch()
    return torch is not None and torch.cuda.is_available()


def _parse(device):
    """Return the canonical device string, without checking availability."""
    if device is None or device == "numpy":
        return "numpy"
    if not isinstance(device, str):
        raise TypeError(f"device must be None or a str, got {type(device).__name__}.")
    if device in ("cpu", "mps", "auto"):
        return device
    m = _CUDA_RE.match(device)
    if m:
        return f"cuda:{m.group(2) or 0}"
    raise ValueError(f"device={device!r} is not understood; accepted values: {_ACCEPTED}.")


def _available(canonical):
    if canonical == "numpy":
        return True
    torch = _import_torch()
    if torch is None:
        return False
    if canonical == "cpu":
        return True
    if canonical == "mps":
        return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    index = int(canonical.split(":")[1])
    return torch.cuda.is_available() and index < torch.cuda.device_count()


def resolve_device(device, *, at_predict=False):
    """Resolve a ``device`` parameter to a canonical device string.

    Parameters
    ----------
    device : None or str
        The estimator's ``device`` parameter.
    at_predict : bool, default=False
        At fit time an unavailable device raises. At transform/predict time (a model
        fitted on a GPU used on a CPU-only host) it falls back to torch CPU, else numpy,
        with a :class:`~skrmt.exceptions.DeviceFallbackWarning`.

    Returns
    -------
    device_ : str
        ``"numpy"``, ``"cpu"``, ``"cuda:k"`` or ``"mps"``.
    """
    canonical = _parse(device)
    if canonical == "auto":
        if cuda_available():
            return "cuda:0"
        return "cpu" if torch_available() else "numpy"
    if _available(canonical):
        return canonical
    if not at_predict:
        if not torch_available():
            raise ImportError(
                f"device={device!r} needs PyTorch; install it with `pip install torch` "
                "or use device=None (numpy)."
            )
        raise RuntimeError(f"device={device!r} is not available on this machine.")
    fallback = "cpu" if torch_available() else "numpy"
    warnings.warn(
        f"device={device!r} is not available here; computing on {fallback!r} instead.",
        DeviceFallbackWarning,
        stacklevel=3,
    )
    return fallback


def torch_num_threads(n_threads=None):
    """Threads of torch's intra-op pool, or None when torch is not loaded.

    With ``n_threads`` set, set them and return the previous count. torch is not imported
    here: a process that never loaded it has no pool to limit.
    """
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return None
    before = torch.get_num_threads()
    if n_threads is not None:
        torch.set_num_threads(int(n_threads))
    return before


def cuda_description():
    """``"<CUDA version> (<device 0 name>)"`` when torch sees a CUDA device, else None."""
    if not cuda_available():
        return None
    torch = _import_torch()
    return f"{torch.version.cuda} ({torch.cuda.get_device_name(0)})"
