"""Backend dispatch (numpy / torch): the only package in skrmt that imports torch."""

from ._device import cuda_available, resolve_device, torch_available
from ._ops import DeviceCache, NumpyOps, TorchOps, as_numpy_input, get_ops

__all__ = [
    "DeviceCache",
    "NumpyOps",
    "TorchOps",
    "as_numpy_input",
    "cuda_available",
    "get_ops",
    "resolve_device",
    "torch_available",
]
