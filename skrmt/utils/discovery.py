"""The public estimators of skrmt, listed statically."""


def all_estimators():
    """Return ``[(name, class), ...]`` for every public estimator, sorted by name."""
    from .. import LowPrecisionRFF, RMTRidge, TernaryRandomFeatures, TheoryKernel

    estimators = [
        ("LowPrecisionRFF", LowPrecisionRFF),
        ("RMTRidge", RMTRidge),
        ("TernaryRandomFeatures", TernaryRandomFeatures),
        ("TheoryKernel", TheoryKernel),
    ]
    return sorted(estimators)
