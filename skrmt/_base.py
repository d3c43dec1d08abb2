"""What every skrmt feature map shares: input validation and scikit-learn tags."""

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin

from ._backend import as_numpy_input
from .utils._sklearn_compat import validate_data

# float32 stays float32; everything else (ints, bools) becomes float64
FLOAT_DTYPES = [np.float64, np.float32]


class FeatureMapMixin(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """Mixin of skrmt's transformers (dense or CSR float input, dtype-preserving output)."""

    def _validate_X(self, X, *, reset):
        """``validate_data`` with the options of every skrmt transformer (torch CPU tensors ok)."""
        return validate_data(
            self, as_numpy_input(X), accept_sparse="csr", dtype=FLOAT_DTYPES, reset=reset
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
