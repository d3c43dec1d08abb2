"""Theory layer of skrmt: pure array functions, no estimators.

- ``_activations``: the activation registry (names, callables, kinks, parity, degree).
- ``_gaussian_moments``: every Gaussian expectation of an activation (moments, dual kernels,
  Hermite coefficients, the bivariate normal CDF).

Every function takes variances (``tau``, ``A``), never standard deviations.
"""
