"""The reduced two-variable HH model of seed 001 (a teaching explorer).

Sodium activation is instantaneous, ``m = m_inf(V)``, and inactivation is slaved to the
potassium gate, ``h = 0.89 - 1.1 n``; only ``V`` and ``n`` are dynamic::

    C dV/dt = -g_na m_inf(V)^3 h (V - e_na) - g_k n^4 (V - e_k) - g_l (V - e_l) + I
    dn/dt   = (n_inf(V) - n) / tau_n
    m_inf   = 1 / (1 + exp((v_half_m - V) / k_m)),   n_inf = 1 / (1 + exp((v_half_n - V) / k_n))
"""

from __future__ import annotations

import jax.numpy as jnp

from .._pytree import pytree_dataclass
from .rates import sigmoid_exp
from .base import Model, na_k_leak, register


@pytree_dataclass
class ReducedParams:
    """Parameters of the reduced model; defaults are seed 001's sliders and constants.

    Attributes:
        c_m: capacitance (µF/cm²). g_na, g_k, g_l: conductances (mS/cm²).
        e_na, e_k, e_l: reversal potentials (mV).
        v_half_m, k_m: half-activation (mV) and slope (mV) of ``m_inf``.
        v_half_n, k_n: the same for ``n_inf``. tau_n: time constant of ``n`` (ms).

    Example:
        >>> ReducedParams().g_k
        1.44
    """

    c_m: float = 1.0
    g_na: float = 2.0
    g_k: float = 1.44
    g_l: float = 0.2
    e_na: float = 50.0
    e_k: float = -80.0
    e_l: float = -65.0
    v_half_m: float = -40.0
    k_m: float = 7.0
    v_half_n: float = -45.0
    k_n: float = 15.0
    tau_n: float = 10.0


@pytree_dataclass
class ReducedState:
    """State of the reduced model: ``v`` (mV) and the potassium gate ``n``."""

    v: float
    n: float


def m_inf(params: ReducedParams, v):
    """Instantaneous Na activation of the reduced model."""
    return sigmoid_exp((params.v_half_m - v) / params.k_m)


def n_inf(params: ReducedParams, v):
    """Steady-state K activation of the reduced model."""
    return sigmoid_exp((params.v_half_n - v) / params.k_n)


def _kinetics(params: ReducedParams, v):
    return {"n": (n_inf(params, v), jnp.ones_like(v) / params.tau_n)}


def _channels(params: ReducedParams, s: ReducedState):
    m = m_inf(params, s.v)
    return na_k_leak(params, params.g_na * m * m * m * (0.89 - 1.1 * s.n), s.n, s.v)


REDUCED = register(Model(name="reduced", params_type=ReducedParams, state_type=ReducedState,
                         kinetics=_kinetics, channels=_channels, default_voltage=lambda p: p.e_l))
