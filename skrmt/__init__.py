"""skrmt: scikit-learn estimators designed with random matrix theory.

Small (ternary, sparse, quantized) random-feature models whose kernels are predicted, and
matched, by the Gaussian moments of their activations.
"""

from .kernels import TheoryKernel
from .linear_model import RMTRidge
from .neural_network import DEQKernelClassifier, NTKLCClassifier
from .random_features import LowPrecisionRFF, TernaryRandomFeatures
from .utils import memory_bytes, memory_report

__version__ = "0.1.0.dev0"

__all__ = [
    "DEQKernelClassifier",
    "LowPrecisionRFF",
    "NTKLCClassifier",
    "RMTRidge",
    "TernaryRandomFeatures",
    "TheoryKernel",
    "memory_bytes",
    "memory_report",
    "__version__",
]
