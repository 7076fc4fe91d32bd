"""Parity with the seed programs' own loops, re-typed here in plain Python/NumPy float64.

* seed 000 (Case Studies in Neural Data Analysis, ``HH(I0, T0)``): forward Euler, dt = 0.01,
  written in u = V + 65 with E_Na = 115, E_K = -12, E_L = 10.6 applied to V + 65.
* seed 001 (reduced two-variable explorer ``HH_model(C, Gna, Gk, Gleak, Iin)``): forward
  Euler, dt = 0.5 ms, 1000 ms, V0 = Eleak = -65, n0 = 0.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
import pytest

import hhjax
from hhjax.analysis import resting_state, spike_times

# ---------------------------------------------------------------------------------------
# Seed 000, re-typed
# ---------------------------------------------------------------------------------------


def alphaM(V):
    return (2.5 - 0.1 * (V + 65)) / (math.exp(2.5 - 0.1 * (V + 65)) - 1)


def betaM(V):
    return 4 * math.exp(-(V + 65) / 18)


def alphaH(V):
    return 0.07 * math.exp(-(V + 65) / 20)


def betaH(V):
    return 1 / (math.exp(3.0 - 0.1 * (V + 65)) + 1)


def alphaN(V):
    return (0.1 - 0.01 * (V + 65)) / (math.exp(1 - 0.1 * (V + 65)) - 1)


def betaN(V):
    return 0.125 * math.exp(-(V + 65) / 80)


def seed000_HH(I0, T0):
    dt = 0.01
    T = math.ceil(T0 / dt)  # [ms]
    gNa0 = 120  # [mS/cm^2]
    ENa = 115  # [mV]
    gK0 = 36  # [mS/cm^2]
    EK = -12  # [mV]
    gL0 = 0.3  # [mS/cm^2]
    EL = 10.6  # [mV]

    t = np.arange(0, T) * dt
    V = [0.0] * T
    m = [0.0] * T
    h = [0.0] * T
    n = [0.0] * T

    V[0] = -70.0
    m[0] = 0.05
    h[0] = 0.54
    n[0] = 0.34

    for i in range(0, T - 1):
        V[i + 1] = V[i] + dt * (gNa0 * m[i] ** 3 * h[i] * (ENa - (V[i] + 65)) + gK0 * n[i] ** 4 * (EK - (V[i] + 65)) + gL0 * (EL - (V[i] + 65)) + I0)
        m[i + 1] = m[i] + dt * (alphaM(V[i]) * (1 - m[i]) - betaM(V[i]) * m[i])
        h[i + 1] = h[i] + dt * (alphaH(V[i]) * (1 - h[i]) - betaH(V[i]) * h[i])
        n[i + 1] = n[i] + dt * (alphaN(V[i]) * (1 - n[i]) - betaN(V[i]) * n[i])
    return np.array(V), np.array(m), np.array(h), np.array(n), t


def np_crossings(t, v, threshold=0.0):
    """Upward threshold crossings, linearly interpolated (plain NumPy)."""
    i = np.nonzero((v[:-1] < threshold) & (v[1:] >= threshold))[0]
    return t[i] + (threshold - v[i]) / (v[i + 1] - v[i]) * (t[i + 1] - t[i])


SEED000_Y0 = hhjax.HHState(v=-70.0, m=0.05, h=0.54, n=0.34)
T0 = 100


@pytest.fixture(scope="module")
def seed000_runs():
    return {I0: seed000_HH(I0, T0) for I0 in (0.0, 10.0)}


@pytest.fixture(params=[0.0, 10.0])
def seed000_run(request, seed000_runs):
    return request.param, seed000_runs[request.param]


def _hhjax_seed000(I0):
    return hhjax.simulate(hhjax.presets.SEED000, I0, duration=float(T0), dt=0.01, method="euler",
                          y0=SEED000_Y0)


def test_seed000_parity_float64(seed000_run):
    I0, (V, m, h, n, t) = seed000_run
    with jax.enable_x64(True):
        tr = _hhjax_seed000(I0)
        assert tr.v.dtype == np.float64
    T = len(t)
    assert T == 10000 and tr.v.shape == (T + 1,)  # hhjax adds the sample at t = T0
    np.testing.assert_allclose(np.asarray(tr.t)[:T], t, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(tr.v)[:T], V, rtol=0, atol=1e-8)
    for name, ref in (("m", m), ("h", h), ("n", n)):
        np.testing.assert_allclose(np.asarray(getattr(tr, name))[:T], ref, rtol=0, atol=1e-10,
                                   err_msg=name)


def test_seed000_parity_float32(seed000_run):
    I0, (V, m, h, n, t) = seed000_run
    tr = _hhjax_seed000(I0)
    assert tr.v.dtype == np.float32
    T = len(t)
    ref_spikes = np_crossings(t, V)
    sp = spike_times(tr.t[:T], tr.v[:T])
    got = np.asarray(sp.times)[: int(sp.count)]
    if I0 == 0.0:
        assert len(ref_spikes) == 0 and len(got) == 0
        np.testing.assert_allclose(np.asarray(tr.v)[:T], V, atol=1e-2)
    else:
        assert len(ref_spikes) >= 6  # the seed's "repeated spikes"
        assert len(got) == len(ref_spikes)
        np.testing.assert_allclose(got, ref_spikes, rtol=0, atol=0.01)


def test_seed000_fixed_point_at_zero_current(seed000_runs):
    """Seed 000 Part 2: with I0 = 0 the dynamics approach a fixed point; its V, m, h, n after
    100 ms equal the fixed point that resting_state computes (to 1e-3)."""
    I0 = 0.0
    V, m, h, n, t = seed000_runs[I0]
    final = np.array([V[-1], m[-1], h[-1], n[-1]])
    rest = resting_state(hhjax.presets.SEED000)
    rest = np.array([float(rest.v), float(rest.m), float(rest.h), float(rest.n)])
    np.testing.assert_allclose(final, rest, rtol=0, atol=1e-3)
    # V + 65 near 0: the seed's rest is at (about) 0 mV in its u = V + 65 convention
    assert abs(final[0] + 65.0) < 0.01
    # the float32 hhjax run ends there too
    tr = _hhjax_seed000(I0)
    end = np.array([float(tr.v[-1]), float(tr.m[-1]), float(tr.h[-1]), float(tr.n[-1])])
    np.testing.assert_allclose(end, rest, rtol=0, atol=1e-3)


# ---------------------------------------------------------------------------------------
# Seed 001, re-typed
# ---------------------------------------------------------------------------------------


def seed001_HH_model(C, Gna, Gk, Gleak, Iin):
    dt = 0.5  # all time units in ms
    t_end = 1000
    num_timepoints = t_end / dt
    time = int(num_timepoints)
    Ena = 50.0
    Ek = -80.0
    Eleak = -65.0
    kn = 15.0
    km = 7.0
    tau = 10.0
    Vn = -45.0
    n = [0.0] * time
    V = [Eleak] * time
    for t in range(1, time):
        minf = 1 / (1 + math.exp((-40.0 - V[t - 1]) / km))
        ninf = 1 / (1 + math.exp((Vn - V[t - 1]) / kn))
        h = 0.89 - 1.1 * n[t - 1]
        dvdt = (1 / C) * (-Gna * minf**3 * h * (V[t - 1] - Ena) - Gk * n[t - 1] ** 4 * (V[t - 1] - Ek) - Gleak * (V[t - 1] - Eleak) + Iin)
        dndt = (1 / tau) * (ninf - n[t - 1])
        V[t] = V[t - 1] + dvdt * dt
        n[t] = n[t - 1] + dndt * dt
    return np.array(V), np.array(n), np.arange(0, t_end, 0.5, dtype=float)


SEED001_SETTINGS = [
    # (C, Gna, Gk, Gleak, Iin), expect spikes?
    ((1.0, 2.0, 1.44, 0.2, 2.0), False),  # the sliders' defaults: subthreshold
    ((1.0, 2.0, 1.44, 0.2, 10.0), True),  # max input current: repetitive spiking
    ((1.0, 5.0, 1.44, 0.2, 4.0), True),
    ((0.5, 3.0, 1.0, 0.1, 3.0), True),
]


def _hhjax_seed001(C, Gna, Gk, Gleak, Iin):
    p = dataclasses.replace(hhjax.presets.REDUCED, c_m=C, g_na=Gna, g_k=Gk, g_l=Gleak)
    return hhjax.simulate(p, Iin, duration=1000.0, dt=0.5, method="euler",
                          y0=hhjax.ReducedState(v=-65.0, n=0.0))


@pytest.fixture(scope="module")
def seed001_refs():
    return {args: seed001_HH_model(*args) for args, _ in SEED001_SETTINGS}


def test_reduced_preset_is_seed001():
    p = hhjax.presets.REDUCED
    assert (p.c_m, p.g_na, p.g_k, p.g_l) == (1.0, 2.0, 1.44, 0.2)
    assert (p.e_na, p.e_k, p.e_l, p.k_n, p.k_m, p.tau_n, p.v_half_n, p.v_half_m) == (
        50.0, -80.0, -65.0, 15.0, 7.0, 10.0, -45.0, -40.0)


@pytest.mark.parametrize("args, spiking", SEED001_SETTINGS)
def test_seed001_parity(seed001_refs, args, spiking):
    V, n, t = seed001_refs[args]
    T = len(t)
    ref_spikes = np_crossings(t, V)
    assert (len(ref_spikes) > 5) == spiking and (len(ref_spikes) == 0) == (not spiking)

    with jax.enable_x64(True):
        tr = _hhjax_seed001(*args)
        assert tr.v.dtype == np.float64
    assert tr.v.shape == (T + 1,)
    np.testing.assert_allclose(np.asarray(tr.t)[:T], t, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(tr.v)[:T], V, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.asarray(tr.n)[:T], n, rtol=0, atol=1e-11)

    tr32 = _hhjax_seed001(*args)
    assert tr32.v.dtype == np.float32
    np.testing.assert_allclose(np.asarray(tr32.v)[:T], V, rtol=0, atol=0.1)
    got = np_crossings(np.asarray(tr32.t, np.float64)[:T], np.asarray(tr32.v, np.float64)[:T])
    assert len(got) == len(ref_spikes)
    np.testing.assert_allclose(got, ref_spikes, rtol=0, atol=0.005)
