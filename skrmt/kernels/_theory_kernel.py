"""TheoryKernel: the limiting and asymptotic-equivalent kernels of random networks."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, check_is_fitted

from .._base import FLOAT_DTYPES, FeatureMapMixin
from .._backend import as_numpy_input, get_ops, resolve_device
from .._theory._activations import ACTIVATION_NAMES, resolve_activation
from .._theory._ck import (
    ck_equivalent_block,
    ck_equivalent_self_diag_correction,
    ck_limit_block,
    ck_limit_diag,
    data_tau,
)
from .._theory._ck_ntk import (
    check_ntk_activations,
    deep_coefficients,
    deep_diagonal,
    deep_equivalent_block,
    deep_limit_block,
)
from .._theory._deq_fixed_point import (
    _diag_prime,
    deq_diagonal,
    deq_equivalent,
    deq_scalars,
    implicit_cross_gram,
    implicit_gram,
)
from .._theory._gaussian_moments import gaussian_moments
from ..utils._sklearn_compat import Interval, StrOptions, _fit_context



def _identical_rows(X, Y):
    """Index pairs (i, j) with ``X[i] == Y[j]`` exactly (compared as float64 bytes)."""
    import scipy.sparse as sp

    def row_keys(M):
        M = M.toarray() if sp.issparse(M) else M
        M = np.ascontiguousarray(M, dtype=np.float64) + 0.0  # +0.0 folds -0.0 into 0.0
        return [row.tobytes() for row in M]

    where = {}
    for j, key in enumerate(row_keys(Y)):
        where.setdefault(key, []).append(j)
    rows, cols = [], []
    for i, key in enumerate(row_keys(X)):
        for j in where.get(key, ()):
            rows.append(i)
            cols.append(j)
    return np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp)


_IMPLICIT_MODELS = ("implicit_ck", "implicit_ntk")


def _sqnorms(X):
    import scipy.sparse as sp

    if sp.issparse(X):
        return np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel()
    Xd = np.asarray(X, dtype=np.float64)
    return np.einsum("ij,ij->i", Xd, Xd)


def _layer_dict(lc):
    """``coefficients_`` entry of one layer: ICML names at its input variance, then the deep
    recursion's (d0 = Var - tau m1^2, d1 = m1^2, d2 = m2^2 / 4)."""
    out = {
        "tau": lc.v_in,
        "m0": lc.m0,
        "m1": lc.m1,
        "m2": lc.m2,
        "d0": lc.v_out - lc.v_in * lc.m1 * lc.m1,
        "d1": lc.m1 * lc.m1,
        "d2": lc.m2 * lc.m2 / 4.0,
    }
    out.update(lc.as_dict())
    return out


class TheoryKernel(FeatureMapMixin, BaseEstimator):
    """Limiting kernel of a random network, or its random-matrix equivalent.

    The conjugate kernel (CK) of a one-hidden-layer random network with i.i.d. zero-mean,
    unit-variance weights ``w`` and activation ``sigma`` is
    ``K(x, y) = E_w[sigma(w^T x / sqrt(p)) sigma(w^T y / sqrt(p))]``. It depends on the
    activation only through Gaussian expectations and on the weights only through their
    mean and variance (in high dimension), so it is the kernel that
    :class:`~skrmt.TernaryRandomFeatures` and Gaussian random features approximate. Deeper
    networks (``n_layers > 1``) and the neural tangent kernel (NTK) follow layer by layer.

    Read more in the design notes (``moments.md`` §6, §8; ``ntk_lc.md`` §2; ``deq.md``).

    Parameters
    ----------
    model : {"ck", "ntk", "implicit_ck", "implicit_ntk"}, default="ck"
        Kernel family. ``"ck"``: conjugate kernel (the Gram of the last hidden layer) of an
        ``n_layers`` random network. ``"ntk"``: its neural tangent kernel (every weight
        matrix trained); activations with jumps (``"step"``, ``"sign"``, step functions)
        have an infinite NTK diagonal and raise ``ValueError``. ``"implicit_ck"``: conjugate
        kernel of an infinitely wide random deep-equilibrium model
        ``z = phi(sigma_a A z + sigma_b B x)`` with ``sigma_b^2 = 1 - sigma_a^2`` and the
        activation centred at its equilibrium scale (design note ``deq.md``), computed
        exactly by its entrywise fixed point (``form="limit"``) or by its RMT equivalent
        ``alpha1 X Y^T + alpha2 delta delta^T + alpha3 (X Y^T)^2`` (``form="equivalent"``).
        ``"implicit_ntk"``: its neural tangent kernel ``G / (1 - sigma_a^2 Gdot)`` (``A`` and
        the readout trained; ``form="limit"`` only). The implicit kernels depend on the
        reference data's scale ``tau_`` (frozen at fit), ignore ``n_layers`` and need
        ``sparsity=0`` and a single activation.
    activation : str, callable or list, default="relu"
        Activation ``sigma``: a registered name (``"relu"``, ``"tanh"``, ``"erf"``, ``"abs"``,
        ``"cos"``, ...), a vectorised callable (its kernel is then computed by quadrature
        and a Hermite series; give the callable a ``kinks`` attribute if it is not smooth) or
        a :class:`~skrmt._theory._activations.StepFunction`; the same activation is used at
        every layer. A list (or tuple) gives one activation per layer, first layer first; its
        length must equal ``n_layers`` (models ``"ck"`` and ``"ntk"`` only).
    n_layers : int, default=1
        Depth ``L`` of the random network (models ``"ck"`` and ``"ntk"``).
    form : {"limit", "equivalent"}, default="limit"
        ``"limit"``: the exact infinite-width kernel (closed forms such as arc-cosine,
        arcsine and Owen's T, a Hermite series otherwise), layer by layer. ``"equivalent"``:
        the random-matrix deterministic equivalent built from the Gaussian moments at the
        data variance ``tau_`` (Liao & Couillet 2018 for one layer, Gu et al. 2022 for deep
        CK/NTK); close to the limit in operator norm when ``p`` is large.
    sigma_a2 : float in (0, 1), default=0.2
        Weight variance of the implicit (equilibrium) models (``sigma_b^2 = 1 - sigma_a2``);
        unused by ``"ck"`` and ``"ntk"``.
    sparsity : float, default=0.0
        Fraction of zero weights of the network. The limit does not depend on it
        (universality of the weight law); it is stored for the compressed models.
    device : str or None, default=None
        ``None``/``"numpy"``: numpy; ``"cpu"``, ``"cuda"``, ``"cuda:k"``, ``"auto"``: torch
        on that device. Input and output are numpy either way.

    Attributes
    ----------
    X_fit_ : ndarray of shape (n_fit, n_features)
        Reference data whose columns ``transform`` returns.
    tau_ : float
        ``||X||_F^2 / (n p)``, the mean pre-activation variance ``v_0`` on the reference data.
    coefficients_ : list of dict
        ``model="ck"`` or ``"ntk"``: one dict per layer, the Gaussian moments of that layer's
        activation at its input variance (``tau`` = ``v_in``, ``m0`` = the centring constant
        ``c_l``, ``m1, m2, e3, q, d0, d1, d2``), the scales ``v_in, v_out``, the recursion
        coefficients ``alpha`` (4 floats), ``beta`` (3 floats), ``kappa2``, and the identity
        terms ``ck_identity`` (``v_l - alpha_{l,1} tau_``) and ``ntk_identity``
        (``kappa_l^2 - beta_{l,1} tau_``). Implicit models: one dict of the equilibrium
        scalars, in skrmt's names (variances): ``tau0`` (= ``tau_``), ``tau`` (equilibrium
        pre-activation variance), ``m0`` (the centring shift ``c``), ``var`` (``tau*^2``),
        ``m1``, ``m2``, ``e3`` (deq.md's ``d1, d2, d4``), ``alpha1..3``, ``ridge``,
        ``sigma_a2``, ``sigma_b2``.
    device_ : str
        Resolved compute device.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when ``X`` has string feature names.

    See Also
    --------
    TernaryRandomFeatures : Sparse ternary random features of the same kernel.
    NTKLCClassifier : Compressed deep random network whose CK/NTK matches the dense one.
    DEQKernelClassifier : Kernel classifier on the implicit (equilibrium) CK.
    sklearn.kernel_approximation.Nystroem : Low-rank approximation of a kernel.

    Notes
    -----
    ``transform(X)`` returns the Gram matrix ``K(X, X_fit_)`` so that
    ``make_pipeline(TheoryKernel(), SVC(kernel="precomputed"))`` works under cross-validation;
    ``tk(X, Y)`` returns ``K(X, Y)`` so that ``SVC(kernel=tk)`` works. Pairs of identical
    samples are diagonal entries (decided by content, so ``fit_transform(X)``,
    ``transform(X)`` and ``tk(X, X)`` agree) and take the exact one-dimensional value.

    **Deep network** (``ntk_lc.md`` §1-§2). Inputs ``x~ = x / sqrt(p)``, ``v_0 = tau_``;
    layer ``l`` computes ``sigma_bar_l(W_l h_{l-1}) / sqrt(d_l)`` with the constant centring
    ``sigma_bar_l = sigma_l - c_l``, ``c_l = E sigma_l(sqrt(v_{l-1}) xi)`` and
    ``v_l = Var sigma_l(sqrt(v_{l-1}) xi)``. Layers ``1..L-1`` are centred and the output
    layer is raw, so ``n_layers=1`` is exactly ``E sigma(u) sigma(v)``.

    - ``form="limit"``, entrywise with ``(A, B, C) = (K_{l-1}(x, x), K_{l-1}(y, y),
      K_{l-1}(x, y))`` and ``K_0 = Theta_0 = x~^T y~``:
      ``K_l = Phi_l(A, B, C) - c_l (m0_l(A) + m0_l(B)) + c_l^2`` and
      ``Theta_l = K_l + Theta_{l-1} Phi'_l(A, B, C)``, with ``Phi = E sigma(u) sigma(v)``,
      ``Phi' = E sigma'(u) sigma'(v)``; the diagonal from the one-dimensional recursion.
    - ``form="equivalent"``, ``delta_i = ||x~_i||^2 - v_0``: off the diagonal
      ``K_ij = alpha_{L,1} x~_i^T x~_j + alpha_{L,2} delta_i delta_j
      + alpha_{L,3} (x~_i^T x~_j)^2`` (``beta`` for the NTK), plus the raw output's
      ``c_L^2 + (c_L m2_L alpha_{L-1,4} / 2)(delta_i + delta_j)``; the diagonal is the exact
      per-sample value of the limit. The coefficients follow
      ``alpha_{l,1} = m1^2 alpha_{l-1,1}``,
      ``alpha_{l,2} = m1^2 alpha_{l-1,2} + (m2^2/4) alpha_{l-1,4}^2``,
      ``alpha_{l,3} = m1^2 alpha_{l-1,3} + (m2^2/2) alpha_{l-1,1}^2``,
      ``alpha_{l,4} = (e3/2) alpha_{l-1,4}``, ``beta_{l,k} = alpha_{l,k} + m1^2 beta_{l-1,k}``
      (plus ``m2^2 alpha_{l-1,1} beta_{l-1,1}`` for ``k = 3``), from ``alpha_0 = (1, 0, 0, 1)``,
      ``beta_0 = (1, 0, 0)``, moments at ``v_{l-1}``. For ``n_layers=1`` and ``model="ck"``
      this is the one-layer equivalent of Liao & Couillet, kept with its own diagonal
      ``d1 ||x~||^2 + d2 delta^2 + d0 + m0^2 + m0 m2 delta``.

    References
    ----------
    .. [1] Z. Liao, R. Couillet, "On the spectrum of random features maps of high dimensional
       data", ICML 2018.
    .. [2] L. Gu, Y. Du, Y. Zhang, D. Xie, S. Pu, R. C. Qiu, Z. Liao, "'Lossless' compression
       of deep neural networks: a high-dimensional neural tangent kernel approach",
       NeurIPS 2022.
    .. [3] Y. Cho, L. Saul, "Kernel methods for deep learning", NeurIPS 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.svm import SVC
    >>> from skrmt import TheoryKernel
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(40, 5); y = (X[:, 0] > 0).astype(int)
    >>> K = TheoryKernel(activation="relu").fit_transform(X)
    >>> K.shape
    (40, 40)
    >>> SVC(kernel=TheoryKernel(activation="erf")).fit(X, y).score(X, y) > 0.8
    True
    >>> tk = TheoryKernel(model="ntk", n_layers=3, activation=["relu", "relu", "tanh"]).fit(X)
    >>> tk.transform(X[:3]).shape
    (3, 40)
    >>> [round(c["alpha"][0], 4) for c in TheoryKernel(n_layers=2).fit(X).coefficients_]
    [0.25, 0.0625]
    """

    _parameter_constraints = {
        "model": [StrOptions({"ck", "ntk", "implicit_ck", "implicit_ntk"})],
        "activation": [StrOptions(ACTIVATION_NAMES), callable, list, tuple],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "form": [StrOptions({"limit", "equivalent"})],
        "sigma_a2": [Interval(Real, 0, 1, closed="neither")],
        "sparsity": [Interval(Real, 0, 1, closed="left")],
        "device": [None, str],
    }

    def __init__(
        self,
        model="ck",
        *,
        activation="relu",
        n_layers=1,
        form="limit",
        sigma_a2=0.2,
        sparsity=0.0,
        device=None,
    ):
        self.model = model
        self.activation = activation
        self.n_layers = n_layers
        self.form = form
        self.sigma_a2 = sigma_a2
        self.sparsity = sparsity
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Store the reference data and estimate ``tau_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : TheoryKernel
        """
        X = self._validate_X(X, reset=True)
        implicit = self.model in _IMPLICIT_MODELS
        if implicit:
            self._check_implicit_params()
        acts = self._layer_activations()
        self.device_ = resolve_device(self.device)
        self._acts = acts
        self._act = acts[0]
        self.X_fit_ = X
        self.tau_ = data_tau(X)
        if not np.isfinite(self.tau_) or self.tau_ <= 0:
            raise ValueError("X must not be identically zero: tau_ = ||X||^2/(n p) is 0.")
        if implicit:
            # the DEQ scale is x / sqrt(p), so its tau0^2 is the library's tau_
            self._deq = deq_scalars(self._act, self.sigma_a2, self.tau_)
            if self.form == "equivalent" and not self._deq.equivalent_defined:
                raise ValueError(
                    f"form='equivalent' is not defined for activation {self._act.name!r} at "
                    f"sigma_a2={self.sigma_a2} (1 - sigma_a2 m1^2 or 1 - sigma_a2 e3/2 <= 0); "
                    "use form='limit'."
                )
            self._k_fit = deq_diagonal(self._deq, _sqnorms(X) / X.shape[1])[0]
            self.coefficients_ = [self._deq.as_dict()]
        else:
            self._layers = deep_coefficients(acts, self.tau_)
            self.coefficients_ = [_layer_dict(lc) for lc in self._layers]
        self._n_features_out = X.shape[0]
        return self

    def _layer_activations(self):
        """Resolved activations, one per layer (one for the implicit models), validated."""
        spec = self.activation
        implicit = self.model in _IMPLICIT_MODELS
        if isinstance(spec, (list, tuple)):
            if implicit:
                raise ValueError(
                    f"activation: a list of activations is only accepted by model='ck' and "
                    f"model='ntk' (one per layer); model={self.model!r} takes a single one."
                )
            if len(spec) != self.n_layers:
                raise ValueError(
                    f"activation has {len(spec)} entries but n_layers={self.n_layers}: give "
                    "one activation per layer, or a single activation for every layer."
                )
            acts = tuple(resolve_activation(a) for a in spec)
        else:
            acts = (resolve_activation(spec),) * (1 if implicit else self.n_layers)
        if self.model == "ntk":
            check_ntk_activations(acts, param="activation")
        return acts

    def _is_deep(self):
        """Whether the deep recursion (ntk_lc.md §2) computes this kernel."""
        return self.model == "ntk" or (self.model == "ck" and self.n_layers > 1)

    def _check_implicit_params(self):
        if self.sparsity != 0:
            raise ValueError(
                f"sparsity={self.sparsity} is not available for model={self.model!r}: the "
                "implicit kernels are those of dense Gaussian weights (use sparsity=0)."
            )
        if self.model == "implicit_ntk" and self.form == "equivalent":
            raise ValueError(
                "model='implicit_ntk' has no RMT equivalent in this release; use "
                "form='limit' (or model='implicit_ck' with form='equivalent')."
            )

    def transform(self, X):
        """Gram matrix against the reference data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        K : ndarray of shape (n_samples, n_fit)
            ``K(X, X_fit_)``, in the dtype of ``X``.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return self._gram(X, self.X_fit_, device=self.device)

    def fit_transform(self, X, y=None):
        """Fit on ``X`` and return its self-Gram (exact diagonal)."""
        self.fit(X)
        return self._gram(self.X_fit_, self.X_fit_, device=self.device)

    def __call__(self, X, Y=None):
        """Kernel matrix ``K(X, Y)`` (``K(X, X)`` when ``Y`` is None).

        Works unfitted (``SVC(kernel=TheoryKernel())`` clones it unfitted). One-dimensional
        ``X`` and ``Y`` (one pair of samples, as ``pairwise_kernels`` sends for callables)
        return a float. ``form="equivalent"`` uses ``tau_`` when fitted and otherwise the
        variance of ``Y`` (of ``X`` when ``Y`` is None).
        """
        pair = np.ndim(X) == 1 and (Y is None or np.ndim(Y) == 1)
        self_gram = Y is None
        X = check_array(as_numpy_input(np.atleast_2d(X) if pair else X), accept_sparse="csr",
                        dtype=FLOAT_DTYPES)
        Y = X if self_gram else check_array(
            as_numpy_input(np.atleast_2d(Y) if pair else Y), accept_sparse="csr", dtype=FLOAT_DTYPES
        )
        if X.shape[1] != Y.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features but Y has {Y.shape[1]}; they must agree."
            )
        implicit = self.model in _IMPLICIT_MODELS
        # the centring constants of hidden layers depend on the data variance too
        centred = self.model in ("ck", "ntk") and self.n_layers > 1
        needs_tau = self.form == "equivalent" or implicit or centred
        if pair and needs_tau and not hasattr(self, "tau_"):
            if implicit:
                what = f"model={self.model!r}"
            elif self.form == "equivalent":
                what = "form='equivalent'"
            else:
                what = f"n_layers={self.n_layers} (centred hidden layers)"
            raise ValueError(
                f"{what} needs the data variance tau_: fit the TheoryKernel first, "
                "or use it as make_pipeline(TheoryKernel(...), SVC(kernel='precomputed'))."
            )
        K = self._gram(X, Y, device=self.device)
        return float(K[0, 0]) if pair else K

    # ------------------------------------------------------------------ internals
    def _gram(self, X, Y, *, device):
        fitted = hasattr(self, "device_")
        acts = self._acts if fitted else self._layer_activations()
        act = acts[0]
        compute = resolve_device(device, at_predict=fitted)
        ops = get_ops(compute, np.float64)
        if self.model in _IMPLICIT_MODELS:
            return self._implicit_gram(X, Y, act, ops, fitted).astype(X.dtype, copy=False)
        if self._is_deep():
            return self._deep_gram(X, Y, acts, ops, fitted).astype(X.dtype, copy=False)
        Yd = ops.asarray(Y)
        if self.form == "limit":

            def block(Xb):
                return ck_limit_block(ops, act, Xb, Yd)

        else:
            tau = self.tau_ if hasattr(self, "tau_") else data_tau(Y)
            moments = gaussian_moments(act, tau)

            def block(Xb):
                return ck_equivalent_block(ops, moments, Xb, Yd, tau)

        K = ops.map_rows(block, X, Y.shape[0], bytes_per_row=8 * (X.shape[1] + 3 * Y.shape[0]))
        # A pair of identical samples is a diagonal entry of the kernel: the limit takes the
        # exact 1-D value E sigma(u)^2 there (arccos is ill-conditioned at rho = 1) and the
        # equivalent its identity term d0. Deciding by content, not by position, keeps
        # fit_transform(X), transform(X) and tk(X, X) equal.
        rows, cols = _identical_rows(X, Y)
        if len(rows):
            Xs = ops.asarray(X[rows])
            if self.form == "limit":
                K[rows, cols] = ops.to_numpy(ck_limit_diag(ops, act, Xs))
            else:
                corr = ck_equivalent_self_diag_correction(ops, moments, Xs)
                K[rows, cols] += ops.to_numpy(corr)
        return K.astype(X.dtype, copy=False)

    def _deep_gram(self, X, Y, acts, ops, fitted):
        """Deep CK/NTK between ``X`` and ``Y`` (ntk_lc.md §2.3-§2.5; raw output layer)."""
        v0 = self.tau_ if fitted else data_tau(Y)
        layers = self._layers if fitted else deep_coefficients(acts, v0)
        kernel = "ntk" if self.model == "ntk" else "ck"
        scale = 1.0 / np.sqrt(X.shape[1])  # library scale x / sqrt(p)
        Yd = ops.asarray(Y) * scale
        if self.form == "limit":
            col = deep_diagonal(acts, layers, _sqnorms(Y) * scale * scale, kernel=kernel,
                                center_output=False)

            def block(Xb):
                return deep_limit_block(ops, acts, layers, Xb * scale, Yd, kernel=kernel,
                                        center_output=False, col_diag=col)

        else:

            def block(Xb):
                return deep_equivalent_block(ops, layers, Xb * scale, Yd, v0, kernel=kernel,
                                             center_output=False)

        K = ops.map_rows(block, X, Y.shape[0], bytes_per_row=8 * (X.shape[1] + 12 * Y.shape[0]))
        # identical samples are diagonal entries: the exact 1-D recursion in both forms
        rows, cols = _identical_rows(X, Y)
        if len(rows):
            diag = deep_diagonal(acts, layers, _sqnorms(X[rows]) * scale * scale,
                                 kernel=kernel, center_output=False)
            K[rows, cols] = diag.ntk if kernel == "ntk" else diag.ck
        return K

    def _implicit_gram(self, X, Y, act, ops, fitted):
        """Implicit CK/NTK (or the CK's equivalent) between ``X`` and ``Y`` (library scale)."""
        if not fitted:
            self._check_implicit_params()
        sc = self._deq if fitted else deq_scalars(act, self.sigma_a2, data_tau(Y))
        scale = 1.0 / np.sqrt(X.shape[1])  # the DEQ scale: ||x / sqrt(p)|| = O(1)
        Xs = X * scale
        self_gram = X is Y
        Ys = Xs if self_gram else Y * scale
        kernel = "ntk" if self.model == "implicit_ntk" else "ck"
        if self.form == "equivalent":
            K = ops.to_numpy(deq_equivalent(sc, Xs, None if self_gram else Ys, ops=ops))
        elif self_gram:
            K, _ = implicit_gram(sc, Xs, kernel=kernel, ops=ops)
            K = ops.to_numpy(K)
        else:
            k_y = self._k_fit if fitted and Y is self.X_fit_ else None
            K, _ = implicit_cross_gram(sc, Xs, Ys, k_y, kernel=kernel, ops=ops)
            K = ops.to_numpy(K)
        K = np.asarray(K, dtype=np.float64)
        if not self_gram:
            # identical samples are diagonal entries (as for model="ck")
            rows, cols = _identical_rows(X, Y)
            if len(rows):
                if self.form == "equivalent":
                    K[rows, cols] += sc.ridge
                else:
                    k, g = deq_diagonal(sc, _sqnorms(X[rows]) * scale * scale)
                    if kernel == "ntk":
                        g = g / (1.0 - sc.sigma_a2 * _diag_prime(sc, k))
                    K[rows, cols] = g
        return K

