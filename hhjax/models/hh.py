"""The classic Hodgkin–Huxley squid-axon model, with the rate functions of NEURON's hh.mod.

Rates are written in ``u = V - v_offset`` (mV): ``v_offset = -65`` gives NEURON's
convention (rest near -65 mV), ``v_offset = 0`` the 1952 paper's (rest at 0 mV)::

    alpha_m = 0.1 (25 - u) / (exp((25 - u)/10) - 1)    beta_m = 4 exp(-u/18)
    alpha_h = 0.07 exp(-u/20)                          beta_h = 1 / (exp((30 - u)/10) + 1)
    alpha_n = 0.01 (10 - u) / (exp((10 - u)/10) - 1)   beta_n = 0.125 exp(-u/80)

all multiplied by ``q10 = 3 ** ((celsius - 6.3) / 10)``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from .._pytree import pytree_dataclass
from .rates import from_alpha_beta, exprel_from_exp, q10_factor
from .base import Model, na_k_leak, register

# math.exp, not jnp.exp: computed at import time, jnp would round them to float32 and cap
# float64 runs at ~1e-6 relative accuracy in alpha_m and alpha_n.
_E1 = math.e
_E25 = math.exp(2.5)
_E3 = math.exp(3.0)


@pytree_dataclass
class HHParams:
    """Parameters of the classic HH model. Defaults are NEURON's ``hh`` mechanism.

    Attributes:
        g_na, g_k, g_l: maximal Na, K and leak conductances (mS/cm²).
        e_na, e_k, e_l: reversal potentials (mV).
        c_m: membrane capacitance (µF/cm²).
        v_offset: the voltage (mV) the rate functions are written relative to
            (-65 for NEURON's convention, 0 for the 1952 convention).
        celsius: temperature (°C); rates scale by ``3 ** ((celsius - 6.3) / 10)``.

    Example:
        >>> import dataclasses
        >>> p = dataclasses.replace(HHParams(), g_na=100.0)
        >>> p.g_na, p.g_k
        (100.0, 36.0)
    """

    g_na: float = 120.0
    g_k: float = 36.0
    g_l: float = 0.3
    e_na: float = 50.0
    e_k: float = -77.0
    e_l: float = -54.3
    c_m: float = 1.0
    v_offset: float = -65.0
    celsius: float = 6.3


@pytree_dataclass
class HHState:
    """State of the HH model: membrane potential ``v`` (mV) and gates ``m``, ``h``, ``n`` (1)."""

    v: float
    m: float
    h: float
    n: float


def hh_rates(params: HHParams, v):
    """The six rates ``(alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n)`` in 1/ms.

    Four exponentials of ``u/10``, ``u/20`` and ``u/80`` are the same number raised to
    different powers, so one ``exp`` and three ``sqrt`` serve them all; the 0/0 points
    go through a series (finite value and gradient at V = -40 and -55 mV).

    >>> a_m = hh_rates(HHParams(), -40.0)[0]   # the removable singularity: exactly 1/ms
    >>> round(float(a_m), 6)
    1.0
    """
    u = v - params.v_offset
    q = q10_factor(params.celsius)
    e10 = jnp.exp(-u / 10.0)
    e20 = jnp.sqrt(e10)
    e80 = jnp.sqrt(jnp.sqrt(e20))
    z_m = (25.0 - u) / 10.0
    z_n = (10.0 - u) / 10.0
    alpha_m = q / exprel_from_exp(z_m, _E25 * e10)
    beta_m = q * 4.0 * jnp.exp(-u / 18.0)
    alpha_h = q * 0.07 * e20
    beta_h = q / (_E3 * e10 + 1.0)
    alpha_n = q * 0.1 / exprel_from_exp(z_n, _E1 * e10)
    beta_n = q * 0.125 * e80
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


def _kinetics(params: HHParams, v):
    a_m, b_m, a_h, b_h, a_n, b_n = hh_rates(params, v)
    return from_alpha_beta(m=(a_m, b_m), h=(a_h, b_h), n=(a_n, b_n))


def _channels(params: HHParams, s: HHState):
    return na_k_leak(params, params.g_na * s.m * s.m * s.m * s.h, s.n, s.v)


HH = register(Model(name="hh", params_type=HHParams, state_type=HHState, kinetics=_kinetics,
                    channels=_channels, default_voltage=lambda p: p.v_offset))
