"""Random-feature transformers: ternary (TRF) and low-precision Fourier (LP-RFF) maps."""

from ._lprff import LowPrecisionRFF
from ._trf import TernaryRandomFeatures

__all__ = ["LowPrecisionRFF", "TernaryRandomFeatures"]
