"""Where :func:`hhjax.recordings.cell_fit.fit_recording` starts: the observed resting
potential and, where a hyperpolarising step (else a silent depolarising one) allows it, the
direct least-squares passive estimate (:func:`hhjax.direct_estimate`); for the second
search, the ``v_t`` at which the model's spikes start where the cell's do
(:func:`onset_v_t`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..analysis.features import onset_voltage
from ..fitting.direct import direct_estimate
from ..simulation.entry import simulate
from ..stimulus import step
from .epochs import current_levels

DIRECT_EL_TOL = 15.0  # mV: largest |e_l - rest| of a passive estimate that is used
ONSET_DRIVE = 4.0  # µA/cm²: a step that makes the Pospischil models fire repetitively
# mV: a shift of v_t within this is not used. On the synthetic cells, whose v_t lies within
# 3 mV of RS's, the onsets scatter by ±6 mV around RS's own (g_k, the M current, sampling).
ONSET_MARGIN = 10.0


def initial_values(data, hyper_win, base, names, dt):
    """Starting values ``(start, direct)``: ``v_rest`` (mV) from the observed resting
    potentials (eFEL ``voltage_base``), ``g_l`` (mS/cm²) and ``area`` (cm²) from the direct
    least-squares passive estimate in the window ``hyper_win`` gives (a hyperpolarising
    step, else a silent depolarising one; :mod:`hhjax.recordings.rows`), else ``base``'s.

    >>> from hhjax.models.pospischil import RS
    >>> d = {"rest": np.array([-70.0, -60.0]), "hold": np.array([0.0, 100.0]), "v_obs": np.zeros((2, 10))}
    >>> start, direct = initial_values(d, np.array([[-1, -1], [-1, -1]]), RS, ("g_na", "v_rest"), 0.1)
    >>> round(start["v_rest"], 1), direct   # on the I–V line at the mean holding current, 50 pA
    (-65.0, {})
    """
    start = {n: float(getattr(base, n)) for n in names if n != "v_rest"}
    has = np.isfinite(data["rest"])
    rests, holds = data["rest"][has], data["hold"][has]
    # v_rest is the rest at the rows' mean holding current (see _params_of); where the rests
    # were measured at several holding currents, read it off their I–V line there.
    if rests.size >= 2 and np.any(current_levels(holds)):
        slope, offset = np.polyfit(holds, rests, 1)
        start["v_rest"] = float(offset + slope * np.mean(data["hold"]))
    elif rests.size:
        start["v_rest"] = float(np.mean(rests))
    else:  # a cell firing spontaneously has no observed rest: start at the median baseline voltage
        start["v_rest"] = float(np.median(data["v_obs"][:, :max(2, int(20 / dt))]))
    direct = {}
    rows = [r for r in range(len(hyper_win)) if hyper_win[r, 0] >= 0]
    if rows and ("g_l" in names or "area" in names):
        a, b = np.maximum(hyper_win[rows[0]], 0)
        est_names = tuple(n for n in ("g_l", "e_l", "area") if n in names or n == "e_l")
        est = direct_estimate(data["v_obs"][rows[0], a:b + 1], data["stim"][rows[0], a:b],
                              dataclasses.replace(base, e_l=start["v_rest"]), dt=dt,
                              trainable=est_names, window_ms=1.0, warn=False)
        direct = {n: float(getattr(est.params, n)) for n in est_names}
        # The fit pins the rest at v_rest; a passive estimate that needs a leak reversal far
        # from it (active currents at rest, e.g. a spontaneously firing cell) is not used.
        direct["used"] = bool(abs(direct["e_l"] - start["v_rest"]) <= DIRECT_EL_TOL)
        for n in ("g_l", "area") if direct["used"] else ():
            if n in start and np.isfinite(direct.get(n, np.nan)) and direct[n] > 0:
                start[n] = direct[n]
    return start, direct


def onset_v_t(data, base, dt) -> float | None:
    """``v_t`` (mV) that puts ``base``'s spike onsets where the cell's are: ``base.v_t``
    moved by the median onset voltage (:func:`hhjax.features.onset_voltage`) of the spikes
    on the fitted sweeps' rows (``data`` from :func:`hhjax.recordings.rows.fit_rows`, on
    the ``dt`` grid, ms) minus that of ``base`` under a 500 ms step of
    :data:`ONSET_DRIVE` µA/cm². ``v_t`` moves the Na and Kd kinetics together, and the onset
    with them, mV for mV (RS: -40.2 mV at v_t -56.2, -11.6 at v_t -26.2 with a weaker Kd
    current; a cell whose spikes start at -12 mV lies 30 mV from the RS start, beyond the
    search's ±25 mV). None where ``base`` has no ``v_t``, either side has no spike, or the
    shift is within :data:`ONSET_MARGIN` (the estimate's own scatter on cells of the model's
    class: there the model's kinetics are not known to be off).

    >>> from hhjax.models.pospischil import RS
    >>> import dataclasses
    >>> cell = dataclasses.replace(RS, v_t=-40.0)
    >>> tr = simulate(cell, step(4.0 * RS.area * 1e6, 20.0, 520.0), duration=600.0, dt=0.1)
    >>> d = {"v_obs": np.asarray(tr.v)[None], "valid": np.ones((1, tr.v.shape[-1]), bool),
    ...      "interpolated": np.array([False])}
    >>> round(onset_v_t(d, RS, 0.1), 1)    # the cell's own v_t (-40), from its spikes alone
    -40.2
    """
    if not hasattr(base, "v_t"):
        return None
    rows = [r for r in range(len(data["v_obs"])) if not data["interpolated"][r]]
    t = np.arange(data["v_obs"].shape[-1]) * dt
    cell = [x for r in rows for x in onset_voltage(t[data["valid"][r]], data["v_obs"][r][data["valid"][r]],
                                                   interp_step=None)]
    model = simulate(base, step(ONSET_DRIVE * float(base.area) * 1e6, 50.0, 550.0), duration=600.0, dt=dt)
    own = onset_voltage(np.asarray(model.t, float), np.asarray(model.v, float), interp_step=None)
    if not cell or not own.size:
        return None
    shift = float(np.median(cell) - np.median(own))
    return float(base.v_t) + shift if abs(shift) > ONSET_MARGIN else None
