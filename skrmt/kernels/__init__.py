"""Kernels of random networks as scikit-learn objects."""

from ._theory_kernel import TheoryKernel

__all__ = ["TheoryKernel"]
