"""The one configuration of skrmt's common (scikit-learn compatibility) tests."""

from ..._backend import torch_available
from ... import (
    DEQKernelClassifier,
    LowPrecisionRFF,
    NTKLCClassifier,
    RMTRidge,
    TernaryRandomFeatures,
    TheoryKernel,
)

# Per class: one dict, or a list of dicts for the main parameter variants.
INIT_PARAMS = {
    TernaryRandomFeatures: [
        dict(n_components=64, random_state=0),
        dict(n_components=64, sparsity=0.8, activation="tanh", random_state=0),
        dict(n_components=64, activation="gelu", thresholds=(0.3, 1.2), random_state=0),
    ],
    LowPrecisionRFF: [
        dict(n_components=64, n_bits=4, random_state=0),
        dict(n_components=64, n_bits=1, projection="circulant", random_state=0),
    ],
    RMTRidge: [
        dict(n_components=128, random_state=0),
        dict(n_components=128, features="ternary", sparsity=0.5, random_state=0),
        dict(n_components=128, alpha=0.1, activation="erf", alpha_selection="gcv", random_state=0),
        dict(n_components=128, activation="rff", random_state=0),
    ],
    TheoryKernel: [
        dict(),
        dict(activation="erf", form="equivalent"),
        dict(activation="tanh"),
        dict(model="implicit_ck", form="equivalent"),
        dict(model="implicit_ntk"),
        dict(model="ntk", n_layers=2),
        dict(model="ck", n_layers=3, form="equivalent"),
        dict(model="ck", n_layers=2, activation=["relu", "erf"]),
    ],
    DEQKernelClassifier: [dict(), dict(method="explicit", n_components=128, random_state=0)],
    # ntk_lc.md §8 item 10: the dense reference at small widths and a compressed instance
    # at sparsity 0 (3-bit activations pass check_classifiers_train; 1 bit would not), both
    # on numpy (its device=None is torch, absent from the no-torch job); the "cpu" pass adds
    # their torch variants
    NTKLCClassifier: [
        dict(hidden_layer_sizes=(32, 16), compress=False, max_iter=30, batch_size=32,
             random_state=0, device="numpy"),
        dict(hidden_layer_sizes=(32, 16), sparsity=0.0, max_iter=30, batch_size=32,
             random_state=0, device="numpy"),
    ],
}

# The one xfail dict: {class or (class, backend): {check name: reason citing an issue}}.
PER_ESTIMATOR_XFAIL_CHECKS = {}


def _instances(device=None):
    for cls, params in INIT_PARAMS.items():
        for p in params if isinstance(params, list) else [params]:
            kwargs = dict(p)
            if device is not None:
                kwargs["device"] = device
            yield cls(**kwargs)


def _tested_estimators():
    """Every public estimator in every main variant, plus torch-CPU variants when torch imports."""
    yield from _instances()
    if torch_available():
        yield from _instances("cpu")


def _cuda_estimators():
    yield from _instances("cuda")


def _get_expected_failed_checks(estimator):
    backend = getattr(estimator, "device", None)
    out = dict(PER_ESTIMATOR_XFAIL_CHECKS.get(type(estimator), {}))
    out.update(PER_ESTIMATOR_XFAIL_CHECKS.get((type(estimator), backend), {}))
    return out
