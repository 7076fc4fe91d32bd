"""Subthreshold features of voltage traces under a current step (NumPy, eFEL definitions):
resting potential, steady-state voltage, input resistance, membrane time constant and sag.

Units as in :mod:`hhjax.features` (which re-exports everything here): ``t`` ms, ``v`` mV
(1-D, or 2-D for one result per sweep), currents pA, resistances MOhm.

The examples use ``t_sub, v_sub``: NEURON's ``hh`` under -2 µA/cm² from 23.4 to 323.4 ms,
which is -100 pA on 5000 µm² of membrane:

>>> import hhjax
>>> tr = hhjax.simulate(hhjax.presets.NEURON, hhjax.stimulus.step(-2.0, 23.4, 323.4),
...                     duration=400.0, dt=0.025)
>>> t_sub, v_sub = np.asarray(tr.t, float), np.asarray(tr.v, float)
"""

from __future__ import annotations

import numpy as np

from ._sweeps import STEP, _mask, _per_sweep, resample

__all__ = ["resting_potential", "steady_state_voltage", "input_resistance",
           "membrane_time_constant", "sag_ratio"]


@_per_sweep
def resting_potential(t, v, stim_start, interp_step=STEP):
    """eFEL ``voltage_base`` (mV): mean voltage over ``[0.9 stim_start, stim_start]``.

    >>> print(round(resting_potential(t_sub, v_sub, stim_start=23.4), 1))
    -65.0
    """
    t, v = resample(t, v, interp_step)
    return float(np.mean(v[_mask(t, 0.9 * stim_start, stim_start)]))


@_per_sweep
def steady_state_voltage(t, v, stim_start, stim_end, interp_step=STEP):
    """eFEL ``steady_state_voltage_stimend`` (mV): mean voltage over the last 10 % of the
    stimulus, ``[stim_end - 0.1 (stim_end - stim_start), stim_end)``.

    >>> print(round(steady_state_voltage(t_sub, v_sub, 23.4, 323.4), 1))
    -67.0
    """
    t, v = resample(t, v, interp_step)
    lo = stim_end - 0.1 * (stim_end - stim_start)
    return float(np.mean(v[_mask(t, lo, stim_end, hi_inclusive=False)]))


@_per_sweep
def input_resistance(t, v, i_pA, stim_start, stim_end, interp_step=STEP):
    """eFEL ``ohmic_input_resistance_vb_ssse`` (MOhm): ``(steady_state_voltage -
    resting_potential) / I`` for a step of ``i_pA`` pA (mV/nA = MOhm); meant for a
    subthreshold (hyperpolarising) step.  NaN for ``i_pA == 0``.

    >>> print(round(input_resistance(t_sub, v_sub, -100.0, 23.4, 323.4), 1))
    20.0
    """
    dv = (steady_state_voltage(t, v, stim_start, stim_end, interp_step)
          - resting_potential(t, v, stim_start, interp_step))
    return float(dv / (i_pA * 1e-3)) if i_pA else np.nan


@_per_sweep
def membrane_time_constant(t, v, stim_start, stim_end, interp_step=STEP):
    """Membrane time constant (ms) from the charging response at step onset.

    Least-squares fit (scipy ``curve_fit``) of ``V_inf + A exp(-(t - stim_start)/tau)``
    to the samples from ``stim_start`` to the response's extremum (minimum for a
    hyperpolarising, maximum for a depolarising step: the sag peak, or ``stim_end`` if
    monotonic).  Exact for a passive membrane.  Not eFEL's ``time_constant`` (which fits
    until |dV/dt| drops below a fixed level); on the bundled recording the two agree
    within ~12 %.  NaN if the fit fails or tau exceeds the step duration.

    >>> print(round(membrane_time_constant(t_sub, v_sub, 23.4, 323.4), 1))
    1.5
    """
    from scipy.optimize import curve_fit

    t, v = resample(t, v, interp_step)
    m = _mask(t, stim_start, stim_end, hi_inclusive=False)
    tw, vw = t[m] - stim_start, v[m]
    if tw.size < 5:
        return np.nan
    hyper = vw[-1] < resting_potential(t, v, stim_start, None)
    ext = int(np.argmin(vw) if hyper else np.argmax(vw))
    tw, vw = tw[: ext + 1], vw[: ext + 1]
    if tw.size < 5 or vw[-1] == vw[0]:
        return np.nan
    frac = (vw - vw[0]) / (vw[-1] - vw[0])
    tau0 = max(float(tw[int(np.argmax(frac >= 1 - np.exp(-1)))]), float(tw[1]))
    try:
        p, _ = curve_fit(lambda x, vinf, a, tau: vinf + a * np.exp(-x / tau), tw, vw,
                         p0=(vw[-1], vw[0] - vw[-1], tau0), maxfev=5000,
                         bounds=([-np.inf, -np.inf, 1e-6], [np.inf, np.inf, np.inf]))
    except (RuntimeError, ValueError):
        return np.nan
    return float(p[2]) if p[2] <= stim_end - stim_start else np.nan


@_per_sweep
def sag_ratio(t, v, stim_start, stim_end, interp_step=STEP):
    """eFEL ``sag_ratio1``: ``(V_ss - V_min) / (V_base - V_min)``, with ``V_ss`` =
    :func:`steady_state_voltage`, ``V_base`` = :func:`resting_potential`, ``V_min`` the
    minimum over ``[stim_start, stim_end)``.  0 = no sag; NaN unless ``V_ss < V_base``.

    >>> print(round(sag_ratio(t_sub, v_sub, 23.4, 323.4), 2))   # HH's resonance
    0.36
    """
    t, v = resample(t, v, interp_step)
    vb = resting_potential(t, v, stim_start, None)
    vss = steady_state_voltage(t, v, stim_start, stim_end, None)
    if not vss < vb:
        return np.nan
    vmin = float(np.min(v[_mask(t, stim_start, stim_end, hi_inclusive=False)]))
    return float((vss - vmin) / (vb - vmin))
