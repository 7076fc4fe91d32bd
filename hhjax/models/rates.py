"""Numerically safe building blocks for rate functions.

The classic HH rates have the form ``x / (exp(x / k) - 1)``, which is 0/0 at ``x = 0``
(V = -40 mV for alpha_m and V = -55 mV for alpha_n in the -65 mV convention). Writing them
through ``exprel(z) = (exp(z) - 1) / z`` with a Taylor series near zero gives the correct
value *and* the correct derivative at, and arbitrarily near, the singular voltage. The
``where``-twice pattern keeps the unused branch from poisoning gradients with NaN.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# |z| below which the series is used. The direct quotient loses eps/|z| relative accuracy to
# cancellation (eps/z**2 in its derivative); the series' truncation error is < z**5/720.
# float64: at 1e-2 the series error is ~1.4e-13. float32: 1e-2 left d(alpha_m)/dV 3e-3 off
# at V = -40.1 mV; at 1e-1 the series error (1.4e-8) is below eps and the direct
# derivative's eps/z**2 is ~6e-6.
_SERIES_BELOW = 1e-2
_SERIES_BELOW_F32 = 1e-1


def _series_below(z):
    return _SERIES_BELOW if jnp.finfo(jnp.result_type(z)).bits >= 64 else _SERIES_BELOW_F32


def exprel_from_exp(z, exp_z):
    """``(exp(z) - 1) / z`` given ``exp(z)`` already computed (lets callers share exponentials).

    Finite with a finite, correct gradient everywhere, including ``z = 0`` (value 1,
    derivative 1/2).

    >>> float(exprel_from_exp(jnp.float32(0.0), jnp.float32(1.0)))
    1.0
    """
    small = jnp.abs(z) < _series_below(z)
    z_safe = jnp.where(small, 1.0, z)
    direct = (jnp.where(small, jnp.e, exp_z) - 1.0) / z_safe
    series = 1.0 + z * (1.0 / 2.0 + z * (1.0 / 6.0 + z * (1.0 / 24.0 + z * (1.0 / 120.0))))
    return jnp.where(small, series, direct)


def exprel(z):
    """``(exp(z) - 1) / z``, finite with correct gradient at ``z = 0``.

    >>> round(float(exprel(jnp.float32(1.0))), 6)  # e - 1
    1.718282
    """
    small = jnp.abs(z) < _series_below(z)
    z_safe = jnp.where(small, 1.0, z)
    return jnp.where(small, exprel_from_exp(z, 1.0 + z), jnp.expm1(z_safe) / z_safe)


def vtrap(x, k):
    """NEURON's ``vtrap(x, k) = x / (exp(x / k) - 1)`` (hh.mod), exact at ``x = 0`` (= k).

    >>> float(vtrap(jnp.float32(0.0), 10.0))
    10.0
    """
    return k / exprel(x / k)


def sigmoid_exp(x):
    """``1 / (1 + exp(x))``, i.e. ``sigmoid(-x)``: no overflow for large ``x`` and no
    rounding to 0 of small values in float32 (unlike ``0.5 * (1 - tanh(x / 2))``)."""
    return jax.nn.sigmoid(-x)


def q10_factor(celsius, reference=6.3, q10=3.0):
    """Temperature factor ``q10 ** ((celsius - reference) / 10)``, as in NEURON's hh.mod.

    >>> float(q10_factor(6.3))
    1.0
    """
    return q10 ** ((celsius - reference) / 10.0)


def from_alpha_beta(**rates: tuple) -> dict:
    """``{gate: (x_inf, 1/tau)}`` from ``gate=(alpha, beta)`` (1/ms): ``x_inf = alpha / (alpha +
    beta)`` and ``1/tau = alpha + beta``, the form a model's ``kinetics`` returns.

    >>> from_alpha_beta(m=(1.0, 3.0))
    {'m': (0.25, 4.0)}
    """
    out = {}
    for name, (a, b) in rates.items():
        rate = a + b
        out[name] = (a / rate, rate)
    return out
