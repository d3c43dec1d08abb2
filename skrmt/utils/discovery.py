"""The public estimators of skrmt, listed statically."""


def all_estimators():
    """Return ``[(name, class), ...]`` for every public estimator, sorted by name."""
    from .. import (
        DEQKernelClassifier,
        LowPrecisionRFF,
        NTKLCClassifier,
        RMTRidge,
        TernaryRandomFeatures,
        TheoryKernel,
    )

    estimators = [
        ("DEQKernelClassifier", DEQKernelClassifier),
        ("LowPrecisionRFF", LowPrecisionRFF),
        ("NTKLCClassifier", NTKLCClassifier),
        ("RMTRidge", RMTRidge),
        ("TernaryRandomFeatures", TernaryRandomFeatures),
        ("TheoryKernel", TheoryKernel),
    ]
    return sorted(estimators)
