"""Linear models on random features: :class:`RMTRidge`."""

from ._rmt_ridge import RMTRidge

__all__ = ["RMTRidge"]
