"""Stimuli (analytic values, sampled grids, OU statistics) and trace analysis (spike times,
f-I curve, rheobase, conductances/currents, resting and steady states)."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hhjax
import reference as R
from hhjax import stimulus as S
from hhjax.analysis import conductances, currents, fi_curve, resting_state, rheobase, spike_times
from hhjax.presets import NEURON

HYP = settings(max_examples=40, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow])


@jax.jit
def _ev(stim, t):
    return stim(t)


def ev(stim, t):
    """``stim(t)`` as float64 NumPy (jitted: one compile per stimulus structure)."""
    return np.asarray(_ev(stim, jnp.asarray(t, jnp.float32)), np.float64)


# ---------------------------------------------------------------------------------------
# 11. Stimuli evaluate to the right values
# ---------------------------------------------------------------------------------------


def test_step_and_pulse_values():
    s = S.step(3.0, 10.0, 90.0)
    np.testing.assert_array_equal(ev(s, [0.0, 9.99, 10.0, 50.0, 89.99, 90.0, 200.0]),
                                  [0, 0, 3, 3, 3, 0, 0])
    forever = S.step(-2.0, 5.0)
    np.testing.assert_array_equal(ev(forever, [4.9, 5.0, 1e6]), [0, -2, -2])
    p = S.pulse(10.0, 1.0, 2.0)  # seed 003's stimulus: [1, 3) ms
    np.testing.assert_array_equal(ev(p, [0.99, 1.0, 2.99, 3.0]), [0, 10, 10, 0])
    batch = S.step(jnp.array([5.0, 10.0]), 10.0, 90.0)
    np.testing.assert_array_equal(np.asarray(batch(50.0)), [5.0, 10.0])
    np.testing.assert_array_equal(np.asarray(batch(95.0)), [0.0, 0.0])


def test_pulses_and_pulse_train_values():
    s = S.pulses([150.0, 50.0, 7.0], [0.0, 10.0, 10.5], [1.0, 1.0, 2.0])
    np.testing.assert_array_equal(ev(s, [0.0, 0.5, 1.0, 5.0, 10.0, 10.6, 11.0, 12.4, 12.5]),
                                  [150, 150, 0, 0, 50, 57, 7, 7, 0])
    tr = S.pulse_train(2.0, 5.0, 1.0, 10.0, 3)
    times = [4.9, 5.0, 5.9, 6.0, 15.0, 15.5, 16.1, 25.0, 25.99, 35.0, 35.5, 45.2]
    want = [0, 2, 2, 0, 2, 2, 0, 2, 2, 0, 0, 0]  # only 3 pulses
    np.testing.assert_array_equal(ev(tr, times), want)


def test_ramp_values():
    r = S.ramp(1.0, 11.0, 10.0, 20.0)
    t = np.array([5.0, 10.0, 12.5, 15.0, 19.5, 20.0, 25.0])
    want = np.where((t >= 10) & (t < 20), 1.0 + (t - 10.0) / 10.0 * 10.0, 0.0)
    np.testing.assert_allclose(ev(r, t), want, rtol=1e-6, atol=1e-6)


def test_sine_values():
    s = S.sine(2.0, 50.0, phase=0.3, offset=1.0, start=10.0, stop=30.0)  # 50 Hz: 20 ms period
    t = np.array([0.0, 9.9, 10.0, 12.5, 15.0, 22.0, 29.9, 30.0, 40.0])
    want = np.where((t >= 10) & (t < 30), 1.0 + 2.0 * np.sin(2 * np.pi * 50.0 * t / 1000.0 + 0.3), 0.0)
    np.testing.assert_allclose(ev(s, t), want, rtol=0, atol=1e-5)
    # a quarter period (5 ms) after a zero-phase start the sine is at its peak
    assert float(S.sine(2.0, 50.0)(5.0)) == pytest.approx(2.0, abs=1e-6)


def test_sampled_values_hold_and_linear():
    vals = np.array([1.0, 3.0, -2.0, 4.0])
    hold = S.sampled(vals, 0.5, t0=1.0)
    lin = S.sampled(vals, 0.5, t0=1.0, interpolation="linear")
    t = np.array([0.0, 1.0, 1.2, 1.5, 1.74, 2.25, 2.5, 9.0])
    # by hand: index = floor((t - 1) / 0.5), held outside the samples
    np.testing.assert_allclose(ev(hold, t), [1, 1, 1, 3, 3, -2, 4, 4])
    np.testing.assert_allclose(ev(lin, t), [1, 1, 1 + 0.4 * 2, 3, 3 - 0.48 * 5, -2 + 0.5 * 6, 4, 4],
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="interpolation"):
        S.sampled(vals, 0.5, interpolation="cubic")


def test_sum_and_radd():
    s = S.step(3.0, 10.0, 90.0) + S.sine(1.0, 100.0) + 0.5
    assert isinstance(s, S.Sum)
    t = np.array([5.0, 12.5, 50.0, 95.0])
    want = 3.0 * ((t >= 10) & (t < 90)) + np.sin(2 * np.pi * 0.1 * t) + 0.5
    np.testing.assert_allclose(ev(s, t), want, atol=1e-5)
    s2 = 0.5 + S.step(3.0, 10.0, 90.0)
    np.testing.assert_allclose(ev(s2, t), 3.0 * ((t >= 10) & (t < 90)) + 0.5, atol=1e-6)


_amps = st.floats(-20, 20, allow_nan=False, width=32)
_times = st.floats(0, 100, allow_nan=False, width=32)
_positive = st.floats(0.125, 50, width=32)


@HYP
@given(a1=_amps, a2=_amps, a3=_amps, start=_times, width=_positive, freq=_positive, t=st.lists(_times, min_size=1, max_size=8))
def test_stimulus_sums_are_additive(a1, a2, a3, start, width, freq, t):
    parts = [S.step(a1, start, start + width), S.sine(a2, freq), S.ramp(a3, -a3, start, start + width)]
    total = parts[0] + parts[1] + parts[2]
    t = np.array(t)
    np.testing.assert_allclose(ev(total, t), sum(ev(p, t) for p in parts), rtol=1e-5, atol=1e-4)


def test_sampled_grid_equals_callable(monkeypatch):
    """Array stimuli on the grid (n_steps or n_steps + 1 samples) drive exactly like the
    equivalent callables: the zero-order-hold ``sampled`` waveform and, for a grid that
    holds a step, the step itself."""
    monkeypatch.setenv("HHJAX_CPU_KERNEL", "0")  # steps would take the C++ kernel, grids not
    dt, duration = 0.025, 20.0
    n = int(round(duration / dt))
    rng = np.random.default_rng(0)
    noisy = rng.normal(6.0, 4.0, n + 1).astype(np.float32)
    k = np.arange(n + 1)
    step_grid = np.where((k * dt >= 2.0) & (k * dt < 18.0), 10.0, 0.0).astype(np.float32)
    kw = dict(duration=duration, dt=dt)
    ref = hhjax.simulate(NEURON, S.sampled(noisy, dt), **kw)
    for grid in (noisy[:n], noisy):
        tr = hhjax.simulate(NEURON, grid, **kw)
        np.testing.assert_allclose(np.asarray(tr.v), np.asarray(ref.v), rtol=1e-5, atol=1e-4)
    ref_step = hhjax.simulate(NEURON, S.step(10.0, 2.0, 18.0), **kw)
    tr_step = hhjax.simulate(NEURON, step_grid[:n], **kw)
    np.testing.assert_allclose(np.asarray(tr_step.v), np.asarray(ref_step.v), rtol=1e-5, atol=1e-4)
    assert int(tr_step.spike_count) >= 1
    # rk4 evaluates a callable at three points inside each step; a grid holds one value
    ref4 = hhjax.simulate(NEURON, S.sampled(noisy, dt), method="rk4", **kw)
    tr4 = hhjax.simulate(NEURON, noisy[:n], method="rk4", **kw)
    np.testing.assert_allclose(np.asarray(tr4.v), np.asarray(ref4.v), rtol=1e-5, atol=1e-4)
    # the noisy drive is not a constant: it differs from its mean
    flat = hhjax.simulate(NEURON, float(noisy.mean()), duration=duration, dt=dt)
    assert np.max(np.abs(np.asarray(flat.v) - np.asarray(ref.v))) > 1.0


def test_batch_shape_follows_the_stimulus_each_call():
    # simulate remembers the output shape of hhjax's own stimuli by their leaves' shapes.
    run = lambda stim: hhjax.simulate(NEURON, stim, duration=1.0, dt=0.025).v.shape  # noqa: E731
    assert run(S.step(jnp.ones(3), 0.5, 1.0)) == (3, 41)
    assert run(S.step(jnp.ones(5), 0.5, 1.0)) == (5, 41)
    assert run(S.step(2.0, 0.5, 1.0) + S.sine(jnp.ones((2, 1)), 0.1)) == (2, 1, 41)
    assert run(lambda t: jnp.ones(2) * 5.0 * (t > 0.5)) == (2, 41)
    assert run(lambda t: jnp.ones(4) * 5.0 * (t > 0.5)) == (4, 41)


def test_plain_function_stimulus_equals_the_stimulus_object(monkeypatch):
    monkeypatch.setenv("HHJAX_CPU_KERNEL", "0")  # S.step would take the C++ kernel, fn not

    def fn(t):
        return jnp.where((t >= 10.0) & (t < 90.0), 10.0, 0.0)

    a = hhjax.simulate(NEURON, fn, duration=100.0, dt=0.025)
    b = hhjax.simulate(NEURON, S.step(10.0, 10.0, 90.0), duration=100.0, dt=0.025)
    np.testing.assert_array_equal(a.v, b.v)
    assert int(a.spike_count) == 6


def test_ou_noise_statistics():
    dt, tau, sigma, mean = 0.1, 5.0, 2.0, 1.5
    noise = S.ou_noise(jax.random.PRNGKey(42), duration=50.0, dt=dt, mean=mean, sigma=sigma,
                       tau=tau, shape=(4000,))
    x = np.asarray(noise.values, np.float64)
    assert x.shape == (4000, 501)  # batch axes lead, time last, duration/dt + 1 samples
    assert float(noise.dt) == dt
    # 4000 x 50 ms = 40000 correlation times: s.e. of the mean ~0.015, of the s.d. ~0.5%
    assert abs(x.mean() - mean) < 0.06
    assert x.std() == pytest.approx(sigma, rel=0.03)
    xc = x - x.mean()
    var = np.mean(xc * xc)
    for lag_ms in (dt, 2.5, 5.0, 10.0):
        lag = int(round(lag_ms / dt))
        acf = np.mean(xc[:, :-lag] * xc[:, lag:]) / var
        assert acf == pytest.approx(math.exp(-lag_ms / tau), abs=0.03), lag_ms
    # stationary from the first sample on (no burn-in): spread across realisations at t = 0
    # and at the end are both sigma
    assert x[:, 0].std() == pytest.approx(sigma, rel=0.05)
    assert x[:, -1].std() == pytest.approx(sigma, rel=0.05)
    # as a stimulus it interpolates linearly between its samples
    t = jnp.float32(0.25)
    np.testing.assert_allclose(np.asarray(noise(t)), 0.5 * (x[:, 2] + x[:, 3]), rtol=1e-5, atol=1e-5)
    # reproducible from the key; another key gives other noise
    again = S.ou_noise(jax.random.PRNGKey(42), duration=50.0, dt=dt, mean=mean, sigma=sigma,
                       tau=tau, shape=(4000,))
    np.testing.assert_array_equal(np.asarray(again.values), np.asarray(noise.values))
    other = S.ou_noise(jax.random.PRNGKey(43), duration=50.0, dt=dt, mean=mean, sigma=sigma,
                       tau=tau, shape=(4000,))
    assert not np.allclose(np.asarray(other.values), x)


# ---------------------------------------------------------------------------------------
# 12. Analysis
# ---------------------------------------------------------------------------------------


def np_crossings(t, v, threshold):
    out = []
    for i in range(len(v) - 1):
        if v[i] < threshold <= v[i + 1]:
            out.append(t[i] + (threshold - v[i]) / (v[i + 1] - v[i]) * (t[i + 1] - t[i]))
    return np.array(out)


def test_spike_times_exact_for_linear_segments():
    # a sawtooth: up-ramps of slope 20 mV/ms crossing 0 at known times between samples
    t = np.arange(0, 10.0, 0.1)
    crossings = np.array([1.234, 4.567, 8.321])
    v = np.full_like(t, -60.0)
    for c in crossings:
        seg = (t > c - 2.0) & (t < c + 1.0)
        v[seg] = 20.0 * (t[seg] - c)
    sp = spike_times(jnp.asarray(t, jnp.float32), jnp.asarray(v, jnp.float32), max_spikes=5)
    assert int(sp.count) == 3
    np.testing.assert_allclose(np.asarray(sp.times)[:3], crossings, rtol=0, atol=2e-5)
    assert np.all(np.isinf(np.asarray(sp.times)[3:]))
    # another threshold, same trace: 10 mV is crossed 0.5 ms after 0 mV
    # (inside a user's jit as well)
    f = jax.jit(lambda t, v: spike_times(t, v, threshold=10.0, max_spikes=5))
    sp10 = f(jnp.asarray(t, jnp.float32), jnp.asarray(v, jnp.float32))
    np.testing.assert_allclose(np.asarray(sp10.times)[:3], crossings + 0.5, atol=2e-5)


def test_spike_times_truncation_and_batch():
    # 1 ms samples: a spike is -60 -> +40 -> -60 mV; peaks 2 ms apart (min interval 1 ms)
    t = np.arange(13, dtype=np.float32)
    v = np.array([[-60, 40] * 6 + [-60], [-60] * 13, [40, -60] * 6 + [-60]], np.float32)
    sp = spike_times(t, v, max_spikes=4)
    assert sp.times.shape == (3, 4)
    # the last row starts on a spike's peak (not counted: its rise is not in the trace)
    np.testing.assert_array_equal(np.asarray(sp.count), [6, 0, 5])
    np.testing.assert_allclose(np.asarray(sp.times)[0], [0.6, 2.6, 4.6, 6.6], atol=1e-6)  # first 4 only
    assert np.all(np.isinf(np.asarray(sp.times)[1]))
    np.testing.assert_allclose(np.asarray(sp.times)[2], [1.6, 3.6, 5.6, 7.6], atol=1e-6)
    # exactly at the timing level counts as reached (below < level <= above), once
    sp0 = spike_times(np.arange(5.0, dtype=np.float32), np.array([-60, 0, 0, 40, -60], np.float32))
    assert int(sp0.count) == 1 and float(sp0.times[0]) == pytest.approx(1.0)


FI_KW = dict(start=10.0, stop=110.0)


@pytest.fixture(scope="module")
def rheo():
    r = float(rheobase(NEURON, hi=20.0, n_iter=4, **FI_KW))
    assert math.isfinite(r) and 0.0 < r < 20.0
    return r


def test_rheobase_brackets_firing(rheo):
    def n_spikes(amp):
        tr = hhjax.simulate(NEURON, S.step(amp, 10.0, 110.0), duration=110.0, dt=0.025)
        return int(tr.spike_count)

    assert n_spikes(rheo * 1.01) >= 1
    assert n_spikes(rheo * 0.99) == 0
    # and the independent Radau reference agrees on both sides
    _, up = R.reference_step_response(R.neuron_params(), rheo * 1.01, 10.0, 110.0, 110.0, rtol=1e-8)
    _, down = R.reference_step_response(R.neuron_params(), rheo * 0.99, 10.0, 110.0, 110.0, rtol=1e-8)
    assert len(up) >= 1 and len(down) == 0


def test_rheobase_nan_when_hi_does_not_fire():
    assert math.isnan(float(rheobase(NEURON, hi=1.0, n_iter=1, **FI_KW)))


def test_fi_curve_monotone_and_zero_below_rheobase(rheo):
    amps = np.arange(0.0, 21.0)
    rates = np.asarray(fi_curve(NEURON, jnp.asarray(amps), **FI_KW))
    assert rates.shape == amps.shape
    assert np.all(np.diff(rates) >= 0), rates
    np.testing.assert_array_equal(rates[amps < rheo], 0.0)
    assert np.all(rates[amps > rheo] > 0)
    # rates are spike counts in the 100 ms window; check one against a direct simulation
    tr = hhjax.simulate(NEURON, S.step(15.0, 10.0, 110.0), duration=110.0, dt=0.025)
    assert rates[15] == pytest.approx(1000.0 * int(tr.spike_count) / 100.0)


def test_fi_curve_counts_only_spikes_inside_the_window():
    """A neuron that fires before the step (a depolarised leak) and after it (rebound):
    only the crossings in [start, stop) count, as read off the full trace."""
    p = dataclasses.replace(NEURON, e_l=jnp.array([-54.3, -40.0]))
    amps = jnp.array([[-10.0], [4.0]])  # hyperpolarising (rebound after) and depolarising
    rates = np.asarray(fi_curve(p, amps, start=20.0, stop=60.0))
    tr = hhjax.simulate(p, S.step(amps, 20.0, 60.0), duration=100.0, dt=0.025)
    t, v = np.asarray(tr.t), np.asarray(tr.v)
    up = (v[..., :-1] < 0.0) & (v[..., 1:] >= 0.0)
    t_up = np.broadcast_to(t[1:], up.shape)
    assert np.sum(up & (t_up < 20.0)) > 0 and np.sum(up & (t_up >= 60.0)) > 0  # spikes outside exist
    inside = np.sum(up & (t_up >= 20.0) & (t_up < 60.0), axis=-1)
    np.testing.assert_array_equal(rates, 1000.0 * inside / 40.0)


def test_rheobase_of_a_batch_equals_each_alone():
    g_na = [10.0, 120.0, 90.0]
    batch = np.asarray(rheobase(dataclasses.replace(NEURON, g_na=jnp.array(g_na)), hi=20.0, n_iter=3, **FI_KW))
    alone = [float(rheobase(dataclasses.replace(NEURON, g_na=g), hi=20.0, n_iter=3, **FI_KW)) for g in g_na]
    np.testing.assert_array_equal(batch, np.array(alone, np.float32))
    assert np.isnan(batch[0]) and np.all(np.isfinite(batch[1:]))


def test_conductances_and_currents_by_hand():
    p = dataclasses.replace(NEURON, g_na=jnp.array([110.0, 130.0]))
    tr = hhjax.simulate(p, S.step(10.0, 2.0, 18.0), duration=20.0, dt=0.025)
    v, m, h, n = (np.asarray(getattr(tr, k), np.float64) for k in "vmhn")
    g_na = np.array([110.0, 130.0])[:, None]
    want_g = {"na": g_na * m**3 * h, "k": 36.0 * n**4, "l": 0.3 * np.ones_like(v)}
    want_i = {"na": want_g["na"] * (v - 50.0), "k": want_g["k"] * (v + 77.0),
              "l": want_g["l"] * (v + 54.3)}
    g = conductances(p, tr)
    i = currents(p, tr)
    assert set(g) == set(i) == {"na", "k", "l"}
    for name in g:
        np.testing.assert_allclose(np.asarray(g[name]), want_g[name], rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(np.asarray(i[name]), want_i[name], rtol=1e-5, atol=1e-4, err_msg=name)
    assert np.max(want_g["na"]) > 10.0  # it spiked: a real test of the Na conductance
    # a single state (no time axis) works too
    one = hhjax.HHState(v=-50.0, m=0.2, h=0.4, n=0.5)
    assert float(currents(NEURON, one)["k"]) == pytest.approx(36.0 * 0.5**4 * (-50.0 + 77.0), rel=1e-6)


def _ionic_current(v, p):
    m, h, n = R.steady_gates(v, p)
    return (p["g_na"] * m**3 * h * (v - p["e_na"]) + p["g_k"] * n**4 * (v - p["e_k"])
            + p["g_l"] * (v - p["e_l"]))


@pytest.mark.parametrize("i_ext", [0.0, 1.5])
def test_resting_state_current_balance(i_ext):
    rest = resting_state(NEURON, i_ext)
    v = float(rest.v)
    p = R.neuron_params()
    assert abs(_ionic_current(v, p) - i_ext) < 1e-4
    np.testing.assert_allclose([float(rest.m), float(rest.h), float(rest.n)], R.steady_gates(v, p),
                               atol=1e-6)


def test_resting_state_matches_radau_after_200ms(radau_rest_200ms):
    rest = resting_state(NEURON)
    got = np.array([float(rest.v), float(rest.m), float(rest.h), float(rest.n)])
    np.testing.assert_allclose(got[0], radau_rest_200ms[0], atol=1e-3)
    np.testing.assert_allclose(got[1:], radau_rest_200ms[1:], atol=1e-5)


def test_steady_state_gates_match_reference():
    vs = np.array([-100.0, -80.0, -65.0, -55.0, -40.0, -39.999, -20.0, 0.0, 40.0])
    for params, ref_p in ((NEURON, R.neuron_params()),
                          (hhjax.presets.HH1952, R.neuron_params(e_na=115.0, e_k=-12.0, e_l=10.613,
                                                                 v_offset=0.0))):
        s = hhjax.steady_state(params, jnp.asarray(vs, jnp.float32))
        m, h, n = R.steady_gates(vs, ref_p)
        np.testing.assert_allclose(np.asarray(s.v), vs, rtol=1e-7)
        for name, want in (("m", m), ("h", h), ("n", n)):
            np.testing.assert_allclose(np.asarray(getattr(s, name)), want, rtol=2e-5, atol=1e-7,
                                       err_msg=name)
    # celsius changes the rates but not the steady states (q10 cancels in a / (a + b))
    warm = hhjax.steady_state(dataclasses.replace(NEURON, celsius=20.0), jnp.float32(-50.0))
    cold = hhjax.steady_state(NEURON, jnp.float32(-50.0))
    assert float(warm.m) == pytest.approx(float(cold.m), rel=1e-5)


def test_plot_trace_panels():
    from hhjax.plot import plot_trace

    tr = hhjax.simulate(NEURON, 10.0, duration=5.0, dt=0.025)
    assert len(plot_trace(tr).axes) == 2  # V and gates without params
    assert len(plot_trace(tr, NEURON).axes) == 4
    for kwargs, match in ((dict(panels=("v", "voltage")), "unknown"),
                          (dict(panels=("currents",)), "need params"),
                          (dict(panels=("stimulus",)), "needs stimulus")):
        with pytest.raises(ValueError, match=match):  # these drew empty or no panels silently
            plot_trace(tr, **kwargs)
    pos = hhjax.presets.POSPISCHIL
    fig = plot_trace(hhjax.simulate(pos, 50.0, duration=5.0, dt=0.025), pos, panels=("stimulus",),
                     stimulus=S.constant(50.0))
    assert fig.axes[0].get_ylabel() == "I (pA)"
    import matplotlib.pyplot as plt

    plt.close("all")
