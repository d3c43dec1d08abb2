"""Fixtures for the offline data sets: skip when absent, fail when corrupt (data.md rule 5)."""

import numpy as np
import pytest

from skrmt.datasets import FASHION_MNIST_INSTALL, DatasetNotFoundError, load_fashion_mnist

FASHION_MNIST_SKIP = f"dataset-fashion-mnist not installed ({FASHION_MNIST_INSTALL})"


def load_fashion_mnist_or_skip(path=None):
    """Load both Fashion-MNIST splits as raw uint8 (N, 28, 28) images, or skip.

    Only a missing copy skips; DatasetIntegrityError (a corrupt copy) propagates.
    """
    try:
        return load_fashion_mnist(path, split="both", dtype=np.uint8, flatten=False)
    except DatasetNotFoundError as exc:
        pytest.skip(f"{FASHION_MNIST_SKIP}: {exc}")


@pytest.fixture(scope="session")
def fashion_mnist():
    """``(X_train, y_train, X_test, y_test)``: uint8 images (N, 28, 28) and int64 labels."""
    return load_fashion_mnist_or_skip()
