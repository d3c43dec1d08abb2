"""Offline data sets for skrmt: synthetic mixtures, bundled and locally installed sets.

Nothing in this package downloads. Real data comes from a path the user gives,
``$SKRMT_DATA_DIR``, or a system package (``apt-get install dataset-fashion-mnist``);
a missing set raises :class:`DatasetNotFoundError` naming the install command, and a
corrupt one raises :class:`DatasetIntegrityError`.
"""

from ..exceptions import DatasetIntegrityError, DatasetNotFoundError
from ._bundled import load_breast_cancer, load_diabetes, load_digits, train_val_test_split
from ._fashion_mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_INSTALL,
    fashion_mnist_available,
    load_fashion_mnist,
)
from ._gmm import GMM_PRESETS, make_gmm

__all__ = [
    "DatasetIntegrityError",
    "DatasetNotFoundError",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_INSTALL",
    "GMM_PRESETS",
    "fashion_mnist_available",
    "load_breast_cancer",
    "load_diabetes",
    "load_digits",
    "load_fashion_mnist",
    "make_gmm",
    "train_val_test_split",
]
