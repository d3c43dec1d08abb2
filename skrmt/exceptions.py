"""Warnings and errors raised by skrmt."""


class DeviceFallbackWarning(UserWarning):
    """The requested compute device is unavailable; a fallback device is used instead.

    Raised at transform/predict time when a model fitted on a GPU is used on a host without
    one: computation falls back to torch on the CPU, or to numpy when torch is absent.
    """


class DatasetNotFoundError(FileNotFoundError):
    """An offline data set is not installed; the message names the install command."""


class DatasetIntegrityError(ValueError):
    """An offline data set is present but its content does not match the pinned checksum."""


__all__ = ["DeviceFallbackWarning", "DatasetNotFoundError", "DatasetIntegrityError"]
