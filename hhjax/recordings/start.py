"""Where :func:`hhjax.recordings.cell_fit.fit_recording` starts: the observed resting
potential and, where a hyperpolarising step (else a silent depolarising one) allows it, the
direct least-squares passive estimate (:func:`hhjax.direct_estimate`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..fitting.direct import direct_estimate

DIRECT_EL_TOL = 15.0  # mV: largest |e_l - rest| of a passive estimate that is used


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
    if rests.size >= 2 and np.ptp(holds) > 1.0:
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
