"""Independent NumPy/SciPy references, written from the published equations (not hhjax)."""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp


def hh_rates_np(v, v_offset=-65.0, celsius=6.3):
    """hh.mod rates written plainly (not sharing exponentials, scipy-safe away from 0/0)."""
    u = v - v_offset
    q = 3.0 ** ((celsius - 6.3) / 10.0)
    with np.errstate(all="ignore"):
        a_m = np.where(np.abs(25 - u) < 1e-7, 1.0, 0.1 * (25 - u) / (np.exp((25 - u) / 10) - 1))
        a_n = np.where(np.abs(10 - u) < 1e-7, 0.1, 0.01 * (10 - u) / (np.exp((10 - u) / 10) - 1))
    b_m = 4 * np.exp(-u / 18)
    a_h = 0.07 * np.exp(-u / 20)
    b_h = 1 / (np.exp((30 - u) / 10) + 1)
    b_n = 0.125 * np.exp(-u / 80)
    return q * a_m, q * b_m, q * a_h, q * b_h, q * a_n, q * b_n


def hh_rhs(t, y, p, current):
    v, m, h, n = y
    a_m, b_m, a_h, b_h, a_n, b_n = hh_rates_np(v, p["v_offset"], p["celsius"])
    i_ion = (
        p["g_na"] * m**3 * h * (v - p["e_na"])
        + p["g_k"] * n**4 * (v - p["e_k"])
        + p["g_l"] * (v - p["e_l"])
    )
    return [
        (current(t) - i_ion) / p["c_m"],
        a_m * (1 - m) - b_m * m,
        a_h * (1 - h) - b_h * h,
        a_n * (1 - n) - b_n * n,
    ]


def neuron_params(**kw):
    p = dict(g_na=120.0, g_k=36.0, g_l=0.3, e_na=50.0, e_k=-77.0, e_l=-54.3, c_m=1.0,
             v_offset=-65.0, celsius=6.3)
    p.update(kw)
    return p


def steady_gates(v, p):
    a_m, b_m, a_h, b_h, a_n, b_n = hh_rates_np(v, p["v_offset"], p["celsius"])
    return a_m / (a_m + b_m), a_h / (a_h + b_h), a_n / (a_n + b_n)


def reference_step_response(p, amplitude, start, stop, duration, v0=-65.0, rtol=1e-10):
    """Radau solve of the HH ODE under a step, integrated piecewise across the step edges.

    Returns ``(solutions, spike_times)`` with spike times the exact upward 0 mV crossings.
    """
    y = [v0, *steady_gates(v0, p)]
    edges = sorted({0.0, start, stop, duration})
    spikes = []
    sols = []
    for a, b in zip(edges[:-1], edges[1:]):
        if b <= a:
            continue
        amp = amplitude if (a >= start and b <= stop) else 0.0

        def crossing(t, y, *args):
            return y[0]

        crossing.direction = 1.0
        sol = solve_ivp(hh_rhs, (a, b), y, method="Radau", rtol=rtol, atol=1e-10,
                        args=(p, lambda t, amp=amp: amp), events=crossing, dense_output=True)
        spikes.extend(sol.t_events[0].tolist())
        sols.append(sol)
        y = sol.y[:, -1]
    return sols, np.array(spikes)
