"""Pospischil et al. (2008) minimal HH-type model of cortical neurons (Na, Kd, M, leak).

M. Pospischil, M. Toledo-Rodriguez, C. Monier, Z. Piwkowska, T. Bal, Y. Frégnac,
H. Markram & A. Destexhe (2008), "Minimal Hodgkin–Huxley type models for different classes
of cortical and thalamic neurons", *Biol. Cybern.* 99:427–441 (ModelDB 123623: ``HH2.mod``
for Na/Kd, ``IM.mod`` for the M current). V in mV, t in ms, ``u = V - VT``::

    I_Na = g_na m^3 h (V - e_na)        I_Kd = g_k n^4 (V - e_k)
    I_M  = g_m p (V - e_k)              I_L  = g_l (V - e_l)

    alpha_m = -0.32 (u - 13) / (exp(-(u - 13)/4) - 1)
    beta_m  =  0.28 (u - 40) / (exp((u - 40)/5) - 1)
    alpha_h =  0.128 exp(-(u - 17)/18)
    beta_h  =  4 / (1 + exp(-(u - 40)/5))
    alpha_n = -0.032 (u - 15) / (exp(-(u - 15)/5) - 1)
    beta_n  =  0.5 exp(-(u - 10)/40)
    p_inf   = 1 / (1 + exp(-(V + 35)/10))
    tau_p   = tau_max / (3.3 exp((V + 35)/20) + exp(-(V + 35)/20))

No temperature factor: the equations are the paper's, at its 36 °C (ModelDB's mod files
scale rates by ``q10 ** ((celsius - 36) / 10)``, which is 1 there). The cell is a single
compartment of membrane ``area`` (cm²), so stimuli are in pA: ``stimulus_scale = 1e-6 / area``
turns pA into µA/cm².

Presets (registered here): ``"pospischil"`` is the paper's regular-spiking (RS) fit and
``"pospischil_fs"`` its fast-spiking (FS) fit; see :data:`RS` and :data:`FS`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .._pytree import pytree_dataclass
from .rates import from_alpha_beta, exprel
from .base import Model, na_k_leak, register


def cylinder_area(diameter_um, length_um):
    """Lateral area (cm²) of a cylinder of ``diameter_um`` and ``length_um`` (µm), as NEURON's.

    >>> round(cylinder_area(61.4, 61.4) * 1e4, 6)   # the RS cell, 1.184e-4 cm²
    1.184368
    """
    return math.pi * diameter_um * length_um * 1e-8


@pytree_dataclass
class PospischilParams:
    """Parameters of the Pospischil et al. (2008) model. Defaults: the paper's RS cell.

    Attributes:
        g_na, g_k, g_m, g_l: maximal Na, delayed-rectifier K (Kd), M-type K and leak
            conductances (mS/cm²).
        tau_max: maximal time constant of the M current (ms).
        v_t: ``VT`` (mV), the shift of the Na and Kd rate functions (sets the threshold).
        e_na, e_k, e_l: reversal potentials (mV).
        c_m: membrane capacitance (µF/cm²).
        area: membrane area (cm²); stimuli in pA are divided by it.

    Example:
        >>> p = PospischilParams()
        >>> p.g_na, p.g_k, p.v_t
        (56.0, 6.0, -56.2)
    """

    g_na: float = 56.0
    g_k: float = 6.0
    g_m: float = 0.075
    tau_max: float = 608.0
    v_t: float = -56.2
    g_l: float = 0.0205
    e_na: float = 50.0
    e_k: float = -90.0
    e_l: float = -70.3
    c_m: float = 1.0
    area: float = cylinder_area(61.4, 61.4)


@pytree_dataclass
class PospischilState:
    """State: ``v`` (mV), Na gates ``m``, ``h``, Kd gate ``n`` and M gate ``p`` (1)."""

    v: float
    m: float
    h: float
    n: float
    p: float


def pospischil_rates(params: PospischilParams, v):
    """The six Na/Kd rates ``(alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n)`` in 1/ms.

    The three ``x / (exp(x / k) - 1)`` rates go through :func:`hhjax.rates.exprel`, so they
    are finite with correct gradients at their 0/0 points ``V = VT + 13, VT + 40, VT + 15``;
    the logistic ``beta_h`` uses ``jax.nn.sigmoid``, which keeps full relative precision in
    its tail (tiny values at hyperpolarised V), unlike ``1 - tanh``.

    >>> a_m = pospischil_rates(PospischilParams(), -56.2 + 13.0)[0]   # 0/0: 0.32 * 4
    >>> round(float(a_m), 6)
    1.28
    """
    u = v - params.v_t
    alpha_m = 1.28 / exprel((13.0 - u) / 4.0)
    beta_m = 1.4 / exprel((u - 40.0) / 5.0)
    alpha_h = 0.128 * jnp.exp((17.0 - u) / 18.0)
    beta_h = 4.0 * jax.nn.sigmoid((u - 40.0) / 5.0)
    alpha_n = 0.16 / exprel((15.0 - u) / 5.0)
    beta_n = 0.5 * jnp.exp((10.0 - u) / 40.0)
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


def m_current_kinetics(params: PospischilParams, v):
    """``(p_inf, 1/tau_p)`` of the M current (Yamada et al. 1989 form, ``IM.mod``)."""
    w = (v + 35.0) / 20.0
    p_inf = jax.nn.sigmoid(2.0 * w)
    rate = (3.3 * jnp.exp(w) + jnp.exp(-w)) / params.tau_max
    return p_inf, rate


def _kinetics(params: PospischilParams, v):
    a_m, b_m, a_h, b_h, a_n, b_n = pospischil_rates(params, v)
    return from_alpha_beta(m=(a_m, b_m), h=(a_h, b_h), n=(a_n, b_n)) | {"p": m_current_kinetics(params, v)}


def _channels(params: PospischilParams, s: PospischilState):
    # Keys name the conductance parameter (channel "x" <-> g_x), which the direct estimate
    # relies on: "k" is the delayed rectifier, "m" the slow M-type K current.
    return na_k_leak(params, params.g_na * s.m * s.m * s.m * s.h, s.n, s.v, m=(params.g_m * s.p, params.e_k))


POSPISCHIL = register(Model(name="pospischil", params_type=PospischilParams, state_type=PospischilState,
                            kinetics=_kinetics, channels=_channels, default_voltage=lambda p: p.e_l,
                            stimulus_scale=lambda p: 1e-6 / p.area, stimulus_units="pA"))

#: The paper's fitted regular-spiking (RS) pyramidal cell: soma d = L = 61.4 µm,
#: g_leak 2.05e-5 S/cm², E_leak -70.3 mV, g_Na 0.056 S/cm², g_Kd 6e-3 S/cm², g_M 7.5e-5 S/cm²,
#: tau_max 608 ms, VT -56.2 mV; E_Na 50 mV, E_K -90 mV, 1 µF/cm². Rests at -71.9 mV.
#: (Same numbers in PySONIC's ``CorticalRS`` and the Brain Dynamics Toolbox ``Pospischil2008``.)
RS = PospischilParams()

#: The paper's fitted fast-spiking (FS) interneuron: d = L = 56.9 µm, g_leak 3.8e-5 S/cm²,
#: E_leak -70.4 mV, g_Na 0.058 S/cm², g_Kd 3.9e-3 S/cm², g_M 7.87e-5 S/cm² (the fit keeps a
#: weak I_M), tau_max 502 ms, VT -57.9 mV. Rests at -71.4 mV. (PySONIC's ``CorticalFS``.)
#: Not to be confused with ModelDB 123623's generic FS demo cell (no I_M, E_K -100 mV).
FS = PospischilParams(
    g_na=58.0, g_k=3.9, g_m=0.0787, tau_max=502.0, v_t=-57.9, g_l=0.038, e_l=-70.4,
    area=cylinder_area(56.9, 56.9),
)

#: Not from the paper: a cell that fires from a depolarised plateau, the RS cell with its
#: Na and Kd kinetics 30 mV depolarised (VT -26.2 mV), E_Na +20 mV, g_Kd 3e-3 and g_M 1e-4
#: S/cm². Weak steps give a few spikes and a plateau near -30 mV, strong ones spikes from
#: about -20 to +20 mV: the synthetic plateau cell (``scripts/synthetic_cells.py``) and the
#: spike detector's plateau test.
PLATEAU = PospischilParams(v_t=RS.v_t + 30.0, g_k=3.0, e_na=20.0, g_m=0.1)
