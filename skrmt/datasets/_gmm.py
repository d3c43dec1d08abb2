"""The K-class Gaussian-mixture data model of the random-matrix-theory papers.

A sample of class a is ``x = (mu_a + C_a^{1/2} g) / sqrt(p)``, ``g ~ N(0, I_p)``, so that
``||x||^2 = O(1)`` and the non-trivial regime holds (``data.md`` §3). Rows are samples
(the papers write columns).
"""

import numbers

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["make_gmm", "GMM_PRESETS"]

GMM_PRESETS = ("iid", "means", "var", "mixed", "toeplitz", "pm2")


# ---------------------------------------------------------------------------------------
# Covariance descriptions. Each class covariance is one of
#   ("scaled", s)          s * I
#   ("toeplitz", s, rho)   s * Toep(rho), Toep(rho)_ij = rho^|i-j|
#   ("full", C)            a (p, p) symmetric positive-definite matrix
# so that traces and tr(C_a C_b) have closed forms where possible and no p x p matrix is
# built for the scaled-identity presets.
# ---------------------------------------------------------------------------------------


def _toeplitz(rho, p):
    idx = np.arange(p)
    return rho ** np.abs(idx[:, None] - idx[None, :]).astype(np.float64)


def _cov_matrix(cov, p):
    kind = cov[0]
    if kind == "scaled":
        return cov[1] * np.eye(p)
    if kind == "toeplitz":
        return cov[1] * _toeplitz(cov[2], p)
    return cov[1]


def _cov_trace_over_p(cov, p):
    kind = cov[0]
    if kind in ("scaled", "toeplitz"):
        # Toep(rho) has a unit diagonal, so tr/p is the scale alone.
        return float(cov[1])
    return float(np.trace(cov[1])) / p


def _toeplitz_pair_factor(r, p):
    """(1/p) tr(Toep(rho_a) Toep(rho_b)) with r = rho_a * rho_b.

    Entry (i, j) of each factor is rho^|i-j|, so the trace sums r^|i-j| over all pairs:
    p + 2 sum_{k>=1} (p - k) r^k.
    """
    if r == 0.0 or p == 1:
        return 1.0
    k = np.arange(1, p, dtype=np.float64)
    return 1.0 + 2.0 * float(np.sum((1.0 - k / p) * r**k))


def _cov_pair_trace_over_p(ca, cb, p):
    """tr(C_a C_b) / p, in closed form when both are scaled identities or Toeplitz."""
    structured = ("scaled", "toeplitz")
    if ca[0] in structured and cb[0] in structured:
        rho_a = ca[2] if ca[0] == "toeplitz" else 0.0
        rho_b = cb[2] if cb[0] == "toeplitz" else 0.0
        return float(ca[1] * cb[1]) * _toeplitz_pair_factor(rho_a * rho_b, p)
    if ca[0] == "scaled":
        return float(ca[1]) * _cov_trace_over_p(cb, p)
    if cb[0] == "scaled":
        return float(cb[1]) * _cov_trace_over_p(ca, p)
    A = _cov_matrix(ca, p)
    B = _cov_matrix(cb, p)
    # Both symmetric: tr(AB) = sum(A * B) without forming the product.
    return float(np.sum(A * B)) / p


def _cov_public(cov):
    """The form ``return_params`` reports: s, (s, rho) or the full matrix."""
    if cov[0] == "scaled":
        return float(cov[1])
    if cov[0] == "toeplitz":
        return (float(cov[1]), float(cov[2]))
    return cov[1].copy()


def _preset_params(preset, K, p):
    means = np.zeros((K, p))
    sqrt_p = np.sqrt(p)
    covs = []
    for a in range(K):
        if preset == "iid":
            covs.append(("scaled", 1.0))
        elif preset == "means":
            means[a, a] = 4.0
            covs.append(("scaled", 1.0))
        elif preset == "var":
            covs.append(("scaled", 1.0 + 8.0 * a / sqrt_p))
        elif preset == "mixed":
            means[a, 8 * a] = 8.0
            covs.append(("scaled", 1.0 + 8.0 * a / sqrt_p))
        elif preset == "toeplitz":
            means[a, a] = 4.0
            rho = 0.4 * a
            s = 1.0 + 4.0 * a / sqrt_p
            # rho = 0 is the identity: no Cholesky factor needed.
            covs.append(("toeplitz", s, rho) if rho != 0.0 else ("scaled", s))
        elif preset == "pm2":
            means[a, 0] = -2.0 if a == 0 else 2.0
            covs.append(("scaled", 1.0 if a == 0 else 1.0 + 4.0 / sqrt_p))
    return means, covs


def _custom_params(means, covariances, n_classes, p):
    K = None
    if means is not None:
        means = np.asarray(means, dtype=np.float64)
        if means.ndim != 2 or means.shape[1] != p:
            raise ValueError(f"means must have shape (n_classes, {p}), got {means.shape}")
        K = means.shape[0]
    if covariances is not None:
        covariances = np.asarray(covariances, dtype=np.float64)
        if covariances.ndim == 1:
            Kc = covariances.shape[0]
        elif covariances.ndim == 3 and covariances.shape[1:] == (p, p):
            Kc = covariances.shape[0]
        else:
            raise ValueError(
                f"covariances must have shape (n_classes,) of scales or (n_classes, {p}, {p}),"
                f" got {covariances.shape}"
            )
        if K is not None and Kc != K:
            raise ValueError(
                f"means has {K} classes but covariances has {Kc}; they must agree"
            )
        K = Kc
    if K is None:
        K = n_classes
    elif n_classes != 2 and n_classes != K:
        # 2 is the signature default; any other explicit value must agree with the arrays.
        raise ValueError(f"n_classes={n_classes} does not match the {K} classes given")
    if K < 1:
        raise ValueError("means/covariances must describe at least one class")
    if means is None:
        means = np.zeros((K, p))
    if not np.all(np.isfinite(means)):
        raise ValueError("means must be finite")
    covs = []
    if covariances is None:
        covs = [("scaled", 1.0)] * K
    elif covariances.ndim == 1:
        if not np.all(np.isfinite(covariances)) or np.any(covariances <= 0):
            raise ValueError("covariance scales must be finite and > 0")
        covs = [("scaled", float(s)) for s in covariances]
    else:
        for a in range(K):
            C = covariances[a]
            if not np.all(np.isfinite(C)):
                raise ValueError(f"covariances[{a}] must be finite")
            if not np.allclose(C, C.T, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(C).max())):
                raise ValueError(f"covariances[{a}] must be symmetric")
            covs.append(("full", np.array(C, dtype=np.float64, order="C")))
    return means.copy(), covs


def _class_sizes(n, weights):
    """n_a = floor(n c_a), remainder one each by largest fractional part (ties: lower a)."""
    raw = n * weights
    # The tolerance keeps n * (1/K)-type products that round just below an integer exact.
    base = np.floor(raw + 1e-9).astype(np.int64)
    # sum(base) <= n + K * 1e-9, hence <= n: the remainder is never negative.
    remainder = n - int(base.sum())
    if remainder > 0:
        order = np.argsort(-(raw - base), kind="stable")
        base[order[:remainder]] += 1
    return base


def _check_int(value, name, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def make_gmm(
    n_samples,
    n_features,
    *,
    preset="mixed",
    n_classes=2,
    weights=None,
    means=None,
    covariances=None,
    shuffle=False,
    random_state=None,
    return_params=False,
):
    """Draw a K-class Gaussian mixture in the scaling of the random-matrix-theory papers.

    A sample of class a is ``x = (mu_a + C_a^{1/2} g) / sqrt(p)`` with ``g ~ N(0, I_p)``,
    so ``||x||^2 = O(1)``. Rows come in class blocks (class 0 first) unless ``shuffle``.

    Parameters
    ----------
    n_samples : int
        Number of rows n.
    n_features : int
        Dimension p.
    preset : {"iid", "means", "var", "mixed", "toeplitz", "pm2"} or None, default="mixed"
        Class means mu_a (raw, before the 1/sqrt(p) scaling) and covariances C_a, with
        ``e_k`` the k-th canonical vector (0-based):

        - ``"iid"``: mu_a = 0, C_a = I.
        - ``"means"``: mu_a = 4 e_a, C_a = I.
        - ``"var"``: mu_a = 0, C_a = (1 + 8a/sqrt(p)) I.
        - ``"mixed"``: mu_a = 8 e_{8a}, C_a = (1 + 8a/sqrt(p)) I; needs p >= 8K.
        - ``"toeplitz"``: mu_a = 4 e_a, C_a = (1 + 4a/sqrt(p)) Toep(0.4a) with
          Toep(rho)_ij = rho^|i-j|; needs K <= 3.
        - ``"pm2"``: K = 2, mu = -2 e_0 and +2 e_0, C = I and (1 + 4/sqrt(p)) I.
        - None: a custom mixture from ``means`` and ``covariances``.

        Presets other than ``"mixed"`` need p >= K.
    n_classes : int, default=2
        Number of classes K. With ``preset=None`` it is taken from ``means`` or
        ``covariances`` when given (a value other than the default 2 must then agree).
    weights : array-like of shape (K,), default=None
        Class proportions (non-negative, normalised to sum 1); default 1/K each. Class
        sizes are n_a = floor(n c_a) plus the remainder, one each, by largest fractional
        part (ties to the lower class), so they sum to n exactly.
    means : array-like of shape (K, p), default=None
        Raw class means for ``preset=None``; default zeros.
    covariances : array-like of shape (K,) or (K, p, p), default=None
        For ``preset=None``: per-class scales s_a (C_a = s_a I) or full symmetric
        positive-definite matrices; default identities.
    shuffle : bool, default=False
        Permute the rows (after drawing, with the same random state).
    random_state : int, RandomState instance or None, default=None
        Seed; class a = 0..K-1 draws ``standard_normal((n_a, p))`` in order.
    return_params : bool, default=False
        Also return a dict of the model parameters and the theory scalars.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
        Samples.
    y : ndarray of shape (n_samples,), int64
        Class codes 0..K-1.
    params : dict
        Only when ``return_params``. Keys:

        - ``"means"``: (K, p) raw means mu_a.
        - ``"covariances"``: list of K entries, the scale s_a (C_a = s_a I), the pair
          (s_a, rho_a) (C_a = s_a Toep(rho_a)) or the full (p, p) matrix.
        - ``"proportions"``: (K,) c_a = n_a / n; ``"class_sizes"``: (K,) n_a.
        - ``"J"``: (n, K) one-hot class matrix (float64).
        - ``"omega"``: (n, p) noise part ``C_a^{1/2} g / sqrt(p)``, i.e. x_i - mu_a/sqrt(p).
        - ``"tau"``: sum_a c_a tr(C_a)/p.
        - ``"t"``: (K,) t_a = (tr(C_a)/p - tau) sqrt(p).
        - ``"T"``: (K, K) T_ab = tr(C_a C_b)/p (uncentred).
        - ``"psi"``: (n,) psi_i = ||omega_i||^2 - tr(C_a)/p.

    Notes
    -----
    E||x||^2 = tau + sum_a c_a ||mu_a||^2 / p; for K = 2 this is 1 + 2/sqrt(p) + 4/p
    ("pm2"), 1 + 4/sqrt(p) + 64/p ("mixed") and 1 + 2/sqrt(p) + 16/p ("toeplitz"). For
    squared-loss binary tasks use targets ``2 y - 1``.

    This is the data model under which the kernel equivalents of skrmt are theorems: the
    class information sits in ``O(1)`` mean and covariance differences that the Gaussian
    moments of an activation carry into the kernel (``TheoryKernel(form="equivalent")``).
    Real data are not Gaussian mixtures; the mixture is for checking kernels, not accuracy.

    See Also
    --------
    skrmt.TheoryKernel : The limiting and equivalent kernels checked on these mixtures.
    sklearn.datasets.make_classification : A generic synthetic classification set.

    References
    ----------
    .. [1] Z. Liao and R. Couillet, "On the spectrum of random features maps of high
       dimensional data", ICML 2018.
    .. [2] R. Couillet and Z. Liao, "Random Matrix Methods for Machine Learning", Cambridge
       University Press, 2022, Chapter 4.

    Examples
    --------
    >>> import numpy as np
    >>> from skrmt.datasets import make_gmm
    >>> X, y = make_gmm(100, 64, preset="pm2", random_state=0)
    >>> X.shape, np.bincount(y)
    ((100, 64), array([50, 50]))
    >>> X, y, params = make_gmm(100, 64, preset="mixed", random_state=0, return_params=True)
    >>> round(params["tau"], 4), params["T"].shape
    (1.5, (2, 2))
    """
    n = _check_int(n_samples, "n_samples", 1)
    p = _check_int(n_features, "n_features", 1)
    K = _check_int(n_classes, "n_classes", 1)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be a bool, got {type(shuffle).__name__}")
    if not isinstance(return_params, (bool, np.bool_)):
        raise TypeError(f"return_params must be a bool, got {type(return_params).__name__}")

    if preset is None:
        mu, covs = _custom_params(means, covariances, K, p)
        K = mu.shape[0]
    else:
        if preset not in GMM_PRESETS:
            raise ValueError(f"preset must be one of {GMM_PRESETS} or None, got {preset!r}")
        if means is not None or covariances is not None:
            raise ValueError("means and covariances are only used with preset=None")
        if preset == "pm2" and K != 2:
            raise ValueError(f"preset='pm2' needs n_classes=2, got {K}")
        if preset == "toeplitz" and K > 3:
            raise ValueError(f"preset='toeplitz' needs n_classes <= 3, got {K}")
        min_p = 8 * K if preset == "mixed" else K
        if p < min_p:
            raise ValueError(f"preset={preset!r} with n_classes={K} needs n_features >= {min_p}")
        mu, covs = _preset_params(preset, K, p)

    if weights is None:
        c = np.full(K, 1.0 / K)
    else:
        c = np.asarray(weights, dtype=np.float64)
        if c.shape != (K,):
            raise ValueError(f"weights must have shape ({K},), got {c.shape}")
        if not np.all(np.isfinite(c)) or np.any(c < 0) or c.sum() <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        c = c / c.sum()

    if weights is None:
        # Exact integer split for equal weights (no floating-point floor at all).
        sizes = np.full(K, n // K, dtype=np.int64)
        sizes[: n % K] += 1
    else:
        sizes = _class_sizes(n, c)

    # Factors L_a with C_a = L_a L_a^T; scaled identities never build a matrix.
    factors = []
    for a, cov in enumerate(covs):
        if cov[0] == "scaled":
            factors.append(np.sqrt(cov[1]))
        else:
            try:
                factors.append(np.linalg.cholesky(_cov_matrix(cov, p)))
            except np.linalg.LinAlgError as exc:
                raise ValueError(f"covariances[{a}] is not positive definite") from exc

    rs = check_random_state(random_state)
    sqrt_p = np.sqrt(p)
    X = np.empty((n, p), dtype=np.float64)
    omega = np.empty((n, p), dtype=np.float64) if return_params else None
    y = np.repeat(np.arange(K, dtype=np.int64), sizes)
    start = 0
    for a in range(K):
        stop = start + int(sizes[a])
        G = rs.standard_normal((stop - start, p))
        L = factors[a]
        noise = G * L if np.ndim(L) == 0 else G @ L.T
        X[start:stop] = (mu[a] + noise) / sqrt_p
        if omega is not None:
            omega[start:stop] = noise / sqrt_p
        start = stop

    perm = rs.permutation(n) if shuffle else None
    if perm is not None:
        X = X[perm]
        y = y[perm]

    if not return_params:
        return X, y

    if perm is not None:
        omega = omega[perm]
    tr = np.array([_cov_trace_over_p(cov, p) for cov in covs])
    props = sizes / n
    tau = float(np.dot(props, tr))
    T = np.empty((K, K))
    for a in range(K):
        for b in range(a, K):
            T[a, b] = T[b, a] = _cov_pair_trace_over_p(covs[a], covs[b], p)
    J = np.zeros((n, K))
    J[np.arange(n), y] = 1.0
    psi = np.einsum("ij,ij->i", omega, omega) - tr[y]
    params = {
        "means": mu,
        "covariances": [_cov_public(cov) for cov in covs],
        "proportions": props,
        "class_sizes": sizes.copy(),
        "J": J,
        "omega": omega,
        "tau": tau,
        "t": (tr - tau) * sqrt_p,
        "T": T,
        "psi": psi,
    }
    return X, y, params
