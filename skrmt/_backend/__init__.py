"""Backend dispatch (numpy / torch): the only package in skrmt that imports torch."""

from ._device import (
    cuda_available,
    cuda_description,
    resolve_device,
    torch_available,
    torch_num_threads,
)
from ._ops import DeviceCache, NumpyOps, TorchOps, as_numpy_input, get_ops, host_ops

__all__ = [
    "DeviceCache",
    "NumpyOps",
    "TorchOps",
    "as_numpy_input",
    "cuda_available",
    "cuda_description",
    "get_ops",
    "host_ops",
    "resolve_device",
    "torch_available",
    "torch_num_threads",
]
