"""Pospischil et al. (2008) models with a calcium current: intrinsically bursting (IB, an
L-type current) and low-threshold spiking (LTS, a T-type current) cells.

Both add one current to the Na/Kd/M/leak model of :mod:`hhjax.models.pospischil` (same
equations, same ``v_t``, same membrane ``area`` so stimuli are in pA). V in mV, t in ms,
``e_ca`` fixed at 120 mV as in the paper:

IB — high-threshold L-type current (Reuveni et al. 1993 kinetics)::

    I_CaL = g_cal q^2 r (V - e_ca)
    alpha_q = 0.055 (-27 - V) / (exp((-27 - V)/3.8) - 1)     beta_q = 0.94 exp((-75 - V)/17)
    alpha_r = 0.000457 exp((-13 - V)/50)                       beta_r = 0.0065 / (exp((-15 - V)/28) + 1)

LTS — low-threshold T-type current (Destexhe et al. 1996 form; ``v_x`` shifts it)::

    I_CaT = g_cat s_inf^2 u (V - e_ca)            (s at steady state)
    s_inf = 1 / (1 + exp(-(V + v_x + 57)/6.2))     u_inf = 1 / (1 + exp((V + v_x + 81)/4))
    tau_u = (30.8 + (211.4 + exp((V + v_x + 113.2)/5)) / (1 + exp((V + v_x + 84)/3.2))) / 3.7

The equations follow the paper (also written out in the Brain Dynamics Toolbox's
``Pospischil2008``; its code groups tau_u's parentheses differently, we use the paper's
Destexhe form above, with 3.7 = 3^1.2 the Q10 factor to 36 °C). The presets :data:`IB` and
:data:`LTS` are *starting points* for fitting — the RS cell's Na/K/M/leak values plus the
calcium conductance at the level of the paper's demonstration cells (g_L 0.1 mS/cm²;
g_T 0.4 mS/cm², v_x 2 mV: the shift for 2 mM external Ca²⁺ of Destexhe's ``IT.mod``) —
not the paper's fitted IB and LTS cells.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from .._pytree import pytree_dataclass
from .base import Model, na_k_leak, register
from .pospischil import RS, PospischilParams, _kinetics
from .rates import exprel, from_alpha_beta


@pytree_dataclass
class PospischilIBParams(PospischilParams):
    """:class:`~hhjax.models.pospischil.PospischilParams` plus the L-type current:
    ``g_cal`` (mS/cm²) and ``e_ca`` (mV).

    >>> p = PospischilIBParams(); p.g_cal, p.e_ca
    (0.1, 120.0)
    """

    g_cal: float = 0.1
    e_ca: float = 120.0


@pytree_dataclass
class PospischilIBState:
    """State: ``v`` (mV), gates ``m``, ``h``, ``n``, ``p`` and the L-type ``q``, ``r`` (1)."""

    v: float
    m: float
    h: float
    n: float
    p: float
    q: float
    r: float


@pytree_dataclass
class PospischilLTSParams(PospischilParams):
    """:class:`~hhjax.models.pospischil.PospischilParams` plus the T-type current:
    ``g_cat`` (mS/cm²), its voltage shift ``v_x`` (mV) and ``e_ca`` (mV).

    >>> p = PospischilLTSParams(); p.g_cat, p.v_x
    (0.4, 2.0)
    """

    g_cat: float = 0.4
    v_x: float = 2.0
    e_ca: float = 120.0


@pytree_dataclass
class PospischilLTSState:
    """State: ``v`` (mV), gates ``m``, ``h``, ``n``, ``p`` and the T-type inactivation ``u`` (1)."""

    v: float
    m: float
    h: float
    n: float
    p: float
    u: float


def l_type_kinetics(v):
    """``{"q": (q_inf, rate), "r": (r_inf, rate)}`` of the L-type current (1/ms).

    ``alpha_q`` is 0/0 at V = -27 mV and goes through :func:`exprel` (value 0.055 * 3.8):

    >>> q_inf, rate = l_type_kinetics(jnp.float32(-27.0))["q"]
    >>> round(float(rate), 4)      # 0.209 + 0.94 exp(-48/17)
    0.2648
    """
    alpha_q = 0.209 / exprel((-27.0 - v) / 3.8)
    beta_q = 0.94 * jnp.exp((-75.0 - v) / 17.0)
    alpha_r = 0.000457 * jnp.exp((-13.0 - v) / 50.0)
    beta_r = 0.0065 * jax.nn.sigmoid((v + 15.0) / 28.0)
    return from_alpha_beta(q=(alpha_q, beta_q), r=(alpha_r, beta_r))


def t_type_kinetics(params, v):
    """``(s_inf, u_inf, 1/tau_u)`` of the T-type current. The ratio in tau_u is written
    with sigmoid/softplus, so it stays finite for any V.

    >>> s, u, rate = t_type_kinetics(PospischilLTSParams(v_x=0.0), jnp.float32(-84.0))
    >>> round(1.0 / float(rate), 2)   # (30.8 + (211.4 + exp(29.2/5)) / 2) / 3.7
    83.35
    """
    w = v + params.v_x
    s_inf = jax.nn.sigmoid((w + 57.0) / 6.2)
    u_inf = jax.nn.sigmoid(-(w + 81.0) / 4.0)
    a2 = (w + 84.0) / 3.2
    ratio = 211.4 * jax.nn.sigmoid(-a2) + jnp.exp((w + 113.2) / 5.0 - jax.nn.softplus(a2))
    return s_inf, u_inf, 3.7 / (30.8 + ratio)


def _ib_kinetics(params, v):
    return {**_kinetics(params, v), **l_type_kinetics(v)}


def _pospischil_channels(params, s, **extra):
    """The Na/Kd/M/leak channels of :mod:`hhjax.models.pospischil` plus ``extra`` currents."""
    return na_k_leak(params, params.g_na * s.m * s.m * s.m * s.h, s.n, s.v, m=(params.g_m * s.p, params.e_k), **extra)


def _ib_channels(params, s):
    return _pospischil_channels(params, s, cal=(params.g_cal * s.q * s.q * s.r, params.e_ca))


def _lts_kinetics(params, v):
    _, u_inf, rate = t_type_kinetics(params, v)
    return {**_kinetics(params, v), "u": (u_inf, rate)}


def _lts_channels(params, s):
    s_inf = t_type_kinetics(params, s.v)[0]
    return _pospischil_channels(params, s, cat=(params.g_cat * s_inf * s_inf * s.u, params.e_ca))


def _pa(name, params_type, state_type, kinetics, channels):
    return register(Model(name=name, params_type=params_type, state_type=state_type, kinetics=kinetics,
                          channels=channels, default_voltage=lambda p: p.e_l,
                          stimulus_scale=lambda p: 1e-6 / p.area, stimulus_units="pA"))


POSPISCHIL_IB = _pa("pospischil_ib", PospischilIBParams, PospischilIBState, _ib_kinetics, _ib_channels)
POSPISCHIL_LTS = _pa("pospischil_lts", PospischilLTSParams, PospischilLTSState, _lts_kinetics, _lts_channels)

_RS = {f.name: getattr(RS, f.name) for f in dataclasses.fields(PospischilParams)}
#: Starting point for an IB fit: the RS cell plus an L-type current of 0.1 mS/cm².
IB = PospischilIBParams(**_RS)
#: Starting point for an LTS fit: the RS cell plus a T-type current of 0.4 mS/cm², v_x 2 mV.
LTS = PospischilLTSParams(**_RS)
