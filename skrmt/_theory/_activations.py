"""Activation registry: names, callables, kinks, parity and homogeneity degree.

This module only *describes* activations. Every Gaussian expectation (moments, dual kernels,
Hermite coefficients) lives in :mod:`skrmt._theory._gaussian_moments`, which dispatches on the
``name`` and ``params`` recorded here.

An activation is evaluated on numpy arrays by ``act.fn`` (or ``act(x)``) and on the array type of
an ``ops`` namespace (numpy or torch, see :mod:`skrmt._backend`) by ``act.apply(x, ops)``.
torch is never imported at module level.
"""

import functools
import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import scipy.special

__all__ = [
    "ACTIVATION_NAMES",
    "Activation",
    "StepFunction",
    "is_even",
    "is_odd",
    "resolve_activation",
]


# ---------------------------------------------------------------------------------------------
# xp-generic elementwise implementations: ``xp`` is the numpy or the torch module. Only names
# that agree between the two, or the small helpers below, are used.
# ---------------------------------------------------------------------------------------------
def _is_torch(xp):
    return xp is not np


def _zeros_like(xp, x):
    return xp.zeros_like(x)


def _ones_like(xp, x):
    return xp.ones_like(x)


def _erf(xp, x):
    return xp.special.erf(x) if _is_torch(xp) else scipy.special.erf(x)


def _ndtr(xp, x):
    return xp.special.ndtr(x) if _is_torch(xp) else scipy.special.ndtr(x)


def _expit(xp, x):
    return xp.sigmoid(x) if _is_torch(xp) else scipy.special.expit(x)


def _impl_linear(x, xp):
    return x * 1.0


def _impl_relu(x, xp):
    return xp.where(x > 0, x, _zeros_like(xp, x))


def _impl_leaky_relu(x, xp, negative_slope):
    return xp.where(x > 0, x, negative_slope * x)


def _impl_abs(x, xp):
    return xp.abs(x)


def _impl_step(x, xp):
    # 1{t > 0}: the value at the jump is 0 (measure zero for every Gaussian expectation).
    return xp.where(x > 0, _ones_like(xp, x), _zeros_like(xp, x))


def _impl_sign(x, xp):
    return xp.sign(x)


def _impl_quadratic(x, xp, coef):
    q2, q1, q0 = coef
    return (q2 * x + q1) * x + q0


def _impl_cos(x, xp):
    return xp.cos(x)


def _impl_sin(x, xp):
    return xp.sin(x)


def _impl_rbf(x, xp):
    return xp.cos(x) + xp.sin(x)


def _impl_erf(x, xp):
    return _erf(xp, x)


def _impl_gauss(x, xp):
    return xp.exp(-0.5 * x * x)


def _impl_tanh(x, xp):
    return xp.tanh(x)


def _impl_sigmoid(x, xp):
    return _expit(xp, x)


def _impl_gelu(x, xp):
    # exact GELU t * Phi(t) (not the tanh approximation)
    return x * _ndtr(xp, x)


def _impl_swish(x, xp):
    return x * _expit(xp, x)


def _impl_softplus(x, xp):
    # log(1 + e^t) without overflow and without torch's linear cut-off at t > 20
    return xp.logaddexp(x, _zeros_like(xp, x))


def _impl_elu(x, xp, alpha):
    neg = xp.where(x < 0, x, _zeros_like(xp, x))  # keeps expm1 from overflowing
    return xp.where(x > 0, x, alpha * xp.expm1(neg))


def _impl_hardtanh(x, xp, amplitude, clip):
    return amplitude * xp.clip(x, -clip, clip)


# derivatives (numpy only: they enter q = E sigma'(u)^2 and the Hermite series of sigma')
def _d_linear(x):
    return np.ones_like(x)


def _d_relu(x):
    return (x > 0).astype(np.float64)


def _d_leaky_relu(x, negative_slope):
    return np.where(x > 0, 1.0, negative_slope)


def _d_abs(x):
    return np.sign(x)


def _d_quadratic(x, coef):
    q2, q1, _ = coef
    return 2.0 * q2 * x + q1


def _d_cos(x):
    return -np.sin(x)


def _d_sin(x):
    return np.cos(x)


def _d_rbf(x):
    return np.cos(x) - np.sin(x)


def _d_erf(x):
    return (2.0 / math.sqrt(math.pi)) * np.exp(-x * x)


def _d_gauss(x):
    return -x * np.exp(-0.5 * x * x)


def _d_tanh(x):
    t = np.tanh(x)
    return 1.0 - t * t


def _d_sigmoid(x):
    s = scipy.special.expit(x)
    return s * (1.0 - s)


def _d_gelu(x):
    return scipy.special.ndtr(x) + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _d_swish(x):
    s = scipy.special.expit(x)
    return s + x * s * (1.0 - s)


def _d_softplus(x):
    return scipy.special.expit(x)


def _d_elu(x, alpha):
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))


def _d_hardtanh(x, amplitude, clip):
    return np.where(np.abs(x) < clip, float(amplitude), 0.0)


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------
def _finite_real(name, value, param):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(
            f"{param} of activation {name!r} must be a finite real number, got {value!r}."
        )
    return float(value)


def _check_coef(name, value, param):
    try:
        coef = tuple(float(c) for c in value)
    except TypeError as exc:
        raise ValueError(f"{param} of activation {name!r} must be a triple (q2, q1, q0).") from exc
    if len(coef) != 3 or not all(np.isfinite(coef)):
        raise ValueError(
            f"{param} of activation {name!r} must be three finite numbers (q2, q1, q0), "
            f"got {value!r}."
        )
    return coef


def _check_clip(name, value, param):
    value = _finite_real(name, value, param)
    if value <= 0:
        raise ValueError(f"{param} of activation {name!r} must be > 0, got {value!r}.")
    return value


def _kinks_none(**_):
    return ()


def _kinks_zero(**_):
    return (0.0,)


def _parity(value):
    return lambda **_: value


def _degree(value):
    return lambda **_: value


def _quadratic_parity(coef):
    return "even" if coef[1] == 0.0 else ("odd" if coef[0] == 0.0 and coef[2] == 0.0 else None)


def _quadratic_degree(coef):
    q2, q1, q0 = coef
    if q1 == 0.0 and q0 == 0.0:
        return 2 if q2 != 0.0 else None
    if q2 == 0.0 and q0 == 0.0:
        return 1
    return None


def _leaky_parity(negative_slope):
    return "odd" if negative_slope == 1.0 else ("even" if negative_slope == -1.0 else None)


def _elu_parity(alpha):
    return None


@dataclass(frozen=True)
class _Spec:
    impl: object
    dfn: object
    params: tuple = ()  # ((param, default, checker), ...)
    kinks: object = _kinks_none
    jumps: object = _kinks_none
    parity: object = _parity(None)
    degree: object = _degree(None)


_REGISTRY = {
    "linear": _Spec(_impl_linear, _d_linear, parity=_parity("odd"), degree=_degree(1)),
    "relu": _Spec(_impl_relu, _d_relu, kinks=_kinks_zero, degree=_degree(1)),
    "leaky_relu": _Spec(
        _impl_leaky_relu,
        _d_leaky_relu,
        params=(("negative_slope", 0.01, _finite_real),),
        kinks=_kinks_zero,
        parity=_leaky_parity,
        degree=_degree(1),
    ),
    "abs": _Spec(_impl_abs, _d_abs, kinks=_kinks_zero, parity=_parity("even"), degree=_degree(1)),
    "step": _Spec(_impl_step, None, kinks=_kinks_zero, jumps=_kinks_zero, degree=_degree(0)),
    "sign": _Spec(
        _impl_sign,
        None,
        kinks=_kinks_zero,
        jumps=_kinks_zero,
        parity=_parity("odd"),
        degree=_degree(0),
    ),
    "quadratic": _Spec(
        _impl_quadratic,
        _d_quadratic,
        params=(("coef", (1.0, 0.0, 0.0), _check_coef),),
        parity=_quadratic_parity,
        degree=_quadratic_degree,
    ),
    "cos": _Spec(_impl_cos, _d_cos, parity=_parity("even")),
    "sin": _Spec(_impl_sin, _d_sin, parity=_parity("odd")),
    "rbf": _Spec(_impl_rbf, _d_rbf),
    "erf": _Spec(_impl_erf, _d_erf, parity=_parity("odd")),
    "gauss": _Spec(_impl_gauss, _d_gauss, parity=_parity("even")),
    "tanh": _Spec(_impl_tanh, _d_tanh, parity=_parity("odd")),
    "sigmoid": _Spec(_impl_sigmoid, _d_sigmoid),
    "gelu": _Spec(_impl_gelu, _d_gelu),
    "swish": _Spec(_impl_swish, _d_swish),
    "softplus": _Spec(_impl_softplus, _d_softplus),
    "elu": _Spec(
        _impl_elu,
        _d_elu,
        params=(("alpha", 1.0, _finite_real),),
        kinks=_kinks_zero,
        parity=_elu_parity,
    ),
    "hardtanh": _Spec(
        _impl_hardtanh,
        _d_hardtanh,
        params=(("amplitude", 1.0, _finite_real), ("clip", 1.0, _check_clip)),
        kinks=lambda amplitude, clip: (-clip, clip),
        parity=_parity("odd"),
    ),
}

_ALIASES = {"silu": "swish"}

#: Every accepted activation name, aliases included.
ACTIVATION_NAMES = frozenset(_REGISTRY) | frozenset(_ALIASES)


def _numpy_call(impl, params, x):
    x = np.asarray(x, dtype=np.float64)
    return impl(x, np, **dict(params))


def _numpy_derivative(dfn, params, x):
    x = np.asarray(x, dtype=np.float64)
    return dfn(x, **dict(params))


# ---------------------------------------------------------------------------------------------
# Activation
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Activation:
    """An activation function and what the theory needs to know about it.

    Build instances with :func:`resolve_activation` (or :class:`StepFunction`).

    Parameters
    ----------
    name : str
        Canonical registry name (``"relu"``, ``"swish"`` for ``"silu"`` ...), ``"step_function"``
        for a :class:`StepFunction`, ``"callable"`` for a user function.
    fn : callable
        numpy-vectorised ``sigma``; float64 in, float64 out.
    dfn : callable or None
        numpy-vectorised derivative (None for functions with jumps, or user callables that do
        not provide one).
    params : tuple
        Hashable ``((param_name, value), ...)`` of the named activation.
    kinks : tuple of float
        Absolute abscissae where ``sigma`` or a derivative is not smooth (jumps included).
    parity : {"odd", "even", None}
        Exact symmetry ``sigma(-t) = -sigma(t)`` or ``sigma(-t) = sigma(t)``.
    degree : int or None
        Positive-homogeneity degree ``d`` (``sigma(c t) = c^d sigma(t)`` for ``c > 0``).
    jumps : tuple of float
        The kinks where ``sigma`` itself is discontinuous (``q = E sigma'^2`` is then infinite).
    """

    name: str
    fn: object
    dfn: object = None
    params: tuple = ()
    kinks: tuple = ()
    parity: object = None
    degree: object = None
    jumps: tuple = ()
    _impl: object = field(default=None, repr=False)

    # identity ---------------------------------------------------------------------------------
    def _key(self):
        if self.name == "callable":
            return ("callable", self.fn, self.dfn, self.kinks)
        return (type(self).__name__, self.name, self.params)

    def __eq__(self, other):
        if not isinstance(other, Activation):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __reduce__(self):
        # named activations rebuild from the registry: their callables need not be picklable
        if self.name in _REGISTRY:
            return (_rebuild_named, (self.name, self.params))
        return (
            Activation,
            (self.name, self.fn, self.dfn, self.params, self.kinks, self.parity, self.degree,
             self.jumps, self._impl),
        )

    # evaluation -------------------------------------------------------------------------------
    def __call__(self, x):
        """``sigma(x)`` on a numpy array (float64)."""
        return self.fn(x)

    @property
    def is_smooth(self):
        """True when no kink is declared (a user callable may still hide one)."""
        return len(self.kinks) == 0

    @property
    def has_jumps(self):
        return len(self.jumps) > 0

    def apply(self, x, ops=None):
        """``sigma(x)`` on the array type of ``ops`` (numpy when ``ops`` is None).

        Registered activations and step functions run natively in torch; a user callable is
        evaluated in numpy and its result moved back to the device and dtype of ``x``.
        """
        if ops is None or not getattr(ops, "is_torch", False):
            return self.fn(x)
        if self._impl is not None:
            return self._impl(x, ops.xp, **dict(self.params))
        y = np.asarray(self.fn(ops.to_numpy(x).astype(np.float64)), dtype=np.float64)
        return ops.asarray(y).to(dtype=x.dtype)

    def torch_fn(self, x):
        """``sigma(x)`` on a torch tensor (dtype and device kept)."""
        from .._backend import get_ops

        ops = get_ops(str(x.device), np.float64)
        return self.apply(x, ops)


def _rebuild_named(name, params):
    return _named_activation(name, params)


@functools.lru_cache(maxsize=256)
def _named_activation(name, params):
    spec = _REGISTRY[name]
    kw = dict(params)
    return Activation(
        name=name,
        fn=functools.partial(_numpy_call, spec.impl, params),
        dfn=None if spec.dfn is None else functools.partial(_numpy_derivative, spec.dfn, params),
        params=params,
        kinks=tuple(float(k) for k in spec.kinks(**kw)),
        parity=spec.parity(**kw),
        degree=spec.degree(**kw),
        jumps=tuple(float(k) for k in spec.jumps(**kw)),
        _impl=spec.impl,
    )


# ---------------------------------------------------------------------------------------------
# step functions
# ---------------------------------------------------------------------------------------------
def _impl_step_function(x, xp, levels, thresholds):
    out = levels[0] + _zeros_like(xp, x)
    for j, s in enumerate(thresholds):
        h = levels[j + 1] - levels[j]
        out = out + xp.where(x > s, h + _zeros_like(xp, x), _zeros_like(xp, x))
    return out


def _step_parity(levels, thresholds):
    s = np.asarray(thresholds)
    lv = np.asarray(levels)
    if len(s) and not np.allclose(s, -s[::-1], rtol=0.0, atol=0.0):
        return None
    if np.array_equal(lv, -lv[::-1]):
        return "odd"
    if np.array_equal(lv, lv[::-1]):
        return "even"
    return None


class StepFunction(Activation):
    """Piecewise-constant activation ``L_0 + sum_j (L_j - L_{j-1}) 1{t > s_j}``.

    Parameters
    ----------
    levels : sequence of float, length J + 1
        Output levels ``L_0, ..., L_J`` from left to right.
    thresholds : sequence of float, length J
        Jump abscissae ``s_1 <= ... <= s_J`` (absolute, in units of the pre-activation).
        Equal thresholds merge into one jump; jumps of height zero are dropped.

    Examples
    --------
    >>> ter = StepFunction(levels=(-1.0, 0.0, 1.0), thresholds=(-0.3, 0.9))
    >>> ter.fn([-1.0, 0.0, 1.0])
    array([-1.,  0.,  1.])
    """

    def __init__(self, levels, thresholds):
        levels = np.atleast_1d(np.asarray(levels, dtype=np.float64))
        thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
        if levels.ndim != 1 or thresholds.ndim != 1:
            raise ValueError("levels and thresholds of a StepFunction must be 1-D sequences.")
        if levels.size != thresholds.size + 1:
            raise ValueError(
                f"levels must have one more entry than thresholds; got {levels.size} levels and "
                f"{thresholds.size} thresholds."
            )
        if not np.all(np.isfinite(levels)):
            raise ValueError("levels of a StepFunction must be finite.")
        if not np.all(np.isfinite(thresholds)):
            raise ValueError("thresholds of a StepFunction must be finite.")
        if np.any(np.diff(thresholds) < 0):
            raise ValueError(f"thresholds must be non-decreasing, got {thresholds.tolist()}.")
        # merge equal thresholds and drop zero jumps: the remaining thresholds are the jumps
        keep_levels = [float(levels[0])]
        keep_thresholds = []
        for j, s in enumerate(thresholds):
            new_level = float(levels[j + 1])
            if keep_thresholds and keep_thresholds[-1] == s:
                keep_levels[-1] = new_level
                if keep_levels[-1] == keep_levels[-2]:
                    keep_levels.pop()
                    keep_thresholds.pop()
            elif new_level != keep_levels[-1]:
                keep_thresholds.append(float(s))
                keep_levels.append(new_level)
        lv, th = tuple(keep_levels), tuple(keep_thresholds)
        params = (("levels", lv), ("thresholds", th))
        degree = 0 if all(s == 0.0 for s in th) else None
        fields = dict(
            name="step_function",
            fn=functools.partial(_numpy_call, _impl_step_function, params),
            dfn=None,
            params=params,
            kinks=th,
            parity=_step_parity(lv, th),
            degree=degree,
            jumps=th,
            _impl=_impl_step_function,
        )
        for key, value in fields.items():
            object.__setattr__(self, key, value)
        object.__setattr__(self, "levels", lv)
        object.__setattr__(self, "thresholds", th)

    @property
    def heights(self):
        """Jump heights ``h_j = L_j - L_{j-1}``."""
        return tuple(b - a for a, b in zip(self.levels[:-1], self.levels[1:]))

    def __reduce__(self):
        return (StepFunction, (self.levels, self.thresholds))

    def __repr__(self):
        return f"StepFunction(levels={self.levels}, thresholds={self.thresholds})"


# ---------------------------------------------------------------------------------------------
# resolution
# ---------------------------------------------------------------------------------------------
def _callable_activation(func, kinks=None, dfn=None):
    if kinks is None:
        kinks = getattr(func, "kinks", ())
    try:
        values = np.atleast_1d(np.asarray(kinks, dtype=np.float64))
        kinks = tuple(sorted({float(k) for k in values}))
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"kinks of the activation callable must be real numbers, got {kinks!r}."
        ) from exc
    if not all(np.isfinite(kinks)):
        raise ValueError(f"kinks of the activation callable must be finite, got {kinks!r}.")
    if dfn is None:
        dfn = getattr(func, "dfn", None)
    if dfn is not None and not callable(dfn):
        raise TypeError(
            f"dfn of the activation callable must be callable, got {type(dfn).__name__}."
        )

    probe = np.linspace(-1.5, 1.5, 7)
    try:
        y = np.asarray(func(probe), dtype=np.float64)
    except Exception as exc:  # the user's code: report what went wrong, naming the parameter
        raise ValueError(
            f"activation callable {func!r} failed on a numpy float64 array: {exc!r}"
        ) from exc
    if y.shape != probe.shape:
        raise ValueError(
            f"activation callable must be numpy-vectorised (an array in, the same shape out); "
            f"it returned shape {y.shape} for input shape {probe.shape}."
        )
    parity = getattr(func, "parity", None)
    if parity not in (None, "odd", "even"):
        raise ValueError(
            f"parity of the activation callable must be 'odd', 'even' or None, got {parity!r}."
        )
    degree = getattr(func, "degree", None)
    jumps = _detect_jumps(func, kinks)
    return Activation(
        name="callable",
        fn=func,
        dfn=dfn,
        params=(),
        kinks=kinks,
        parity=parity,
        degree=degree,
        jumps=jumps,
        _impl=None,
    )


def _detect_jumps(func, kinks):
    """The declared kinks at which the callable is discontinuous (then q is infinite)."""
    if not kinks:
        return ()
    k = np.asarray(kinks, dtype=np.float64)
    eps = 1e-9 * np.maximum(1.0, np.abs(k))
    left = np.asarray(func(k - eps), dtype=np.float64)
    right = np.asarray(func(k + eps), dtype=np.float64)
    scale = np.maximum(1.0, np.maximum(np.abs(left), np.abs(right)))
    return tuple(float(x) for x in k[np.abs(right - left) > 1e-6 * scale])


def resolve_activation(spec, **params):
    """Turn an ``activation`` parameter into an :class:`Activation`.

    Parameters
    ----------
    spec : str, Activation, StepFunction or callable
        A registered name (see ``ACTIVATION_NAMES``), an :class:`Activation` (returned as is),
        or a numpy-vectorised callable. A callable may carry attributes ``kinks`` (abscissae of
        its kinks and jumps: declaring them is required for accurate moments), ``dfn`` (its
        derivative), ``parity`` and ``degree``.
    **params
        Parameters of a named activation: ``negative_slope`` (leaky_relu, default 0.01),
        ``coef=(q2, q1, q0)`` (quadratic, default (1, 0, 0)), ``alpha`` (elu, default 1),
        ``amplitude`` and ``clip`` (hardtanh, default 1 and 1); ``kinks`` and ``dfn`` for a
        callable.

    Returns
    -------
    Activation

    Examples
    --------
    >>> resolve_activation("leaky_relu", negative_slope=0.1).params
    (('negative_slope', 0.1),)
    >>> resolve_activation("silu").name
    'swish'
    """
    if isinstance(spec, Activation):
        if params:
            raise ValueError(
                f"activation parameters {sorted(params)} cannot be combined with an "
                "Activation instance."
            )
        return spec
    if isinstance(spec, str):
        name = _ALIASES.get(spec, spec)
        if name not in _REGISTRY:
            raise ValueError(
                f"activation={spec!r} is not a known activation; accepted names are "
                f"{sorted(ACTIVATION_NAMES)}, a StepFunction, or a numpy-vectorised callable."
            )
        reg = _REGISTRY[name]
        allowed = {p for p, _, _ in reg.params}
        unknown = set(params) - allowed
        if unknown:
            raise ValueError(
                f"activation {name!r} does not take parameter(s) {sorted(unknown)}; "
                f"it accepts {sorted(allowed) or 'none'}."
            )
        values = tuple(
            (p, check(name, params.get(p, default), p)) for p, default, check in reg.params
        )
        return _named_activation(name, values)
    if callable(spec):
        unknown = set(params) - {"kinks", "dfn"}
        if unknown:
            raise ValueError(
                "an activation callable accepts only the parameters 'kinks' and 'dfn', got "
                f"{sorted(unknown)}."
            )
        return _callable_activation(spec, **params)
    raise TypeError(
        "activation must be a name (str), an Activation/StepFunction or a callable, got "
        f"{type(spec).__name__}."
    )


def is_odd(act):
    """True when the resolved activation is exactly odd (then m0 = m2 = 0 at every tau)."""
    return resolve_activation(act).parity == "odd"


def is_even(act):
    """True when the resolved activation is exactly even (then m1 = 0 at every tau)."""
    return resolve_activation(act).parity == "even"
