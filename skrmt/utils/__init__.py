"""Public utilities: memory accounting and estimator discovery."""

from ._memory import memory_bytes, memory_report

__all__ = ["memory_bytes", "memory_report"]
