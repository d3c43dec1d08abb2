"""Neural-network models whose kernels random matrix theory predicts."""

from ._deq_kernel import DEQKernelClassifier
from ._ntklc import NTKLCClassifier

__all__ = ["DEQKernelClassifier", "NTKLCClassifier"]
