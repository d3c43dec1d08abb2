"""Neural-network models whose kernels random matrix theory predicts."""

from ._deq_kernel import DEQKernelClassifier

__all__ = ["DEQKernelClassifier"]
