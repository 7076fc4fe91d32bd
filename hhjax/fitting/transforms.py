"""Bounds and the unconstrained parametrisation used by the optimisers.

A bounded parameter is optimised as ``z`` in R with ``theta = lo + (hi - lo) sigmoid(z)``
(voltages, anything that may be ≤ 0), or ``theta = exp(log lo + (log hi - log lo)
sigmoid(z))`` for strictly positive quantities spanning decades (conductances, areas, time
constants). Either way every iterate stays strictly inside its bounds.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..models.base import parameter_kind

# Absolute bounds for positive quantities (units as in the params classes).
_POSITIVE = {
    "g_na": (1.0, 1000.0), "g_k": (0.1, 500.0), "g_l": (1e-3, 10.0), "g_m": (1e-5, 5.0),
    "c_m": (0.1, 10.0), "area": (1e-6, 1e-2), "tau_max": (10.0, 5000.0), "tau_n": (0.5, 100.0),
    "k_m": (1.0, 30.0), "k_n": (1.0, 50.0),
}
# Half-widths (mV) around the starting value for voltages, whose origin depends on convention.
_VOLTAGE = {"e_na": 40.0, "e_k": 30.0, "e_l": 30.0, "v_t": 25.0, "v_offset": 20.0,
            "v_half_m": 20.0, "v_half_n": 20.0}


def default_bounds(name: str, value: float):
    """Physiological default ``(low, high)`` for parameter ``name`` whose start is ``value``.

    >>> default_bounds("g_na", 120.0)
    (1.0, 1000.0)
    >>> [round(b, 6) for b in default_bounds("e_l", -54.3)]   # the start ± 30 mV
    [-84.3, -24.3]
    """
    if name in _POSITIVE:
        return _POSITIVE[name]
    if name in _VOLTAGE:
        half = _VOLTAGE[name]
        return (float(value) - half, float(value) + half)
    if name == "celsius":
        return (0.0, 45.0)
    value = float(value)
    if value > 0:
        return (value / 10.0, value * 10.0)
    return (value - max(10.0, abs(value)), value + max(10.0, abs(value)))


def is_log_scaled(name: str, low: float) -> bool:
    """Conductances, areas and time constants are searched on a log scale."""
    return low > 0 and parameter_kind(name)[0] in ("conductance", "time constant", "area", "capacitance")


def resolve_bounds(trainable, base_values: dict, bounds=None):
    """``{name: (low, high, log)}`` for the trainable names, validating user bounds."""
    bounds = dict(bounds or {})
    unknown = sorted(set(bounds) - set(trainable))
    if unknown:
        raise ValueError(f"bounds: given for non-trainable parameter(s) {unknown}")
    out = {}
    for name in trainable:
        lo, hi = bounds.get(name, default_bounds(name, np.max(np.asarray(base_values[name]))))
        lo, hi = float(lo), float(hi)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"bounds: {name} bounds must be finite, got ({lo}, {hi})")
        if lo >= hi:
            raise ValueError(f"bounds: {name} has low >= high ({lo} >= {hi})")
        out[name] = (lo, hi, is_log_scaled(name, lo))
    return out


def to_unconstrained(name, value, spec):
    """``z`` such that :func:`from_unconstrained` gives ``value`` (must lie inside bounds).

    Host-side NumPy (float64): it runs once per fit, outside ``jit``.
    """
    lo, hi, log = spec
    v = np.asarray(value, dtype=float)
    if np.any(v <= lo) or np.any(v >= hi):
        raise ValueError(f"init: {name}={np.round(v, 6).tolist()} lies outside its bounds ({lo}, {hi})")
    if log:
        frac = (np.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo))
    else:
        frac = (v - lo) / (hi - lo)
    return np.log(frac) - np.log1p(-frac)


def dtheta_dz(z, spec):
    """Derivative of :func:`from_unconstrained` (NumPy), to map Jacobians to natural units."""
    lo, hi, log = spec
    z = np.asarray(z, dtype=float)
    sig = 1.0 / (1.0 + np.exp(-z))
    dfrac = sig * (1.0 - sig)
    if log:
        theta = np.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * sig)
        return theta * (math.log(hi) - math.log(lo)) * dfrac
    return (hi - lo) * dfrac


def affine_of(spec) -> tuple:
    """``(offset, span, lo, hi)`` of the (log-)interval ``spec = (lo, hi, log)``: a
    fraction ``frac`` of it is ``offset + span * frac``, exponentiated where ``log``."""
    lo, hi, log = spec
    return (math.log(lo), math.log(hi) - math.log(lo), lo, hi) if log else (lo, hi - lo, lo, hi)


def natural_from_affine(frac, offset, span, lo, hi, log: bool, xp):
    """``frac`` in (0, 1) to the interval of :func:`affine_of`'s values, which may be traced
    (a recording fit's loss takes them as data); ``xp`` is jnp or np."""
    theta = xp.exp(offset + span * frac) if log else offset + span * frac
    # Rounding (exp/log in float32) can land one ulp outside; bounds are hard.
    return xp.clip(theta, lo, hi)


def _natural(frac, spec, xp):
    """``frac`` in (0, 1) to the (log-)interval of ``spec``; ``xp`` is jnp or np."""
    return natural_from_affine(frac, *affine_of(spec), spec[2], xp)


def from_unconstrained(z, spec):
    """Map an unconstrained ``z`` into ``(low, high)``."""
    return _natural(jax.nn.sigmoid(z), spec, jnp)


def from_unconstrained_np(z, spec):
    """:func:`from_unconstrained` on the host (NumPy float64), for results and reports:
    calling the ``jnp`` version eagerly compiles each operation once, which a cold
    :func:`hhjax.fit` would wait for."""
    return _natural(1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float))), spec, np)


def _numpy_rng(key):
    """A NumPy generator seeded from a JAX PRNG key (raw or typed) or an int."""
    if isinstance(key, (int, np.integer)):
        return np.random.default_rng(int(key))
    if jax.dtypes.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.random.default_rng(np.asarray(key, dtype=np.uint32).ravel().tolist())


def sample_in_bounds(key, specs: dict, shape=()):
    """Random starting values (NumPy), uniform in each parameter's (log-)range.

    ``key`` is a JAX PRNG key or an int. The draws are made on the host with NumPy: a
    ``jax.random`` call outside ``jit`` would compile a kernel just for them.
    """
    u_all = _numpy_rng(key).uniform(0.02, 0.98, (len(specs),) + tuple(shape))
    out = {}
    for u, (name, (lo, hi, log)) in zip(u_all, specs.items()):
        out[name] = np.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if log else lo + u * (hi - lo)
    return out
