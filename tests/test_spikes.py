"""The one spike detector (hhjax.analysis.spikes): synthetic traces whose spike counts are
known by construction, hypothesis invariants, and the by-eye reference counts of every
sweep of every recording (tests/data/spike_counts.csv)."""

from __future__ import annotations

import csv
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hhjax
from hhjax.analysis.spikes import MIN_INTERVAL, spike_peaks, spike_times, spike_train

from recordings_all import data_dir, sweeps

REFERENCE = Path(__file__).resolve().parent / "data" / "spike_counts.csv"


def train(times, *, base=-65.0, peak=30.0, ahp=None, rise=0.5, fall=1.0, rec=8.0,
          t_end=200.0, dt=0.05):
    """Piecewise-linear spikes: from ``base`` up to ``peak`` over ``rise`` ms (peak at each
    time), down to ``ahp`` over ``fall`` ms, back to ``base`` over ``rec`` ms."""
    ahp = base - 10.0 if ahp is None else ahp
    tk, vk = [0.0], [base]
    for s in times:
        tk += [s - rise, s, s + fall, s + fall + rec]
        vk += [base, peak, ahp, base]
    t = np.arange(0.0, t_end, dt)
    return t, np.interp(t, tk + [t_end + 1.0], vk + [base])


def count(t, v, **kw):
    return int(spike_times(t, v, **kw).count)


# --------------------------------------------------------------------------- by construction
def test_ordinary_spikes_are_timed_at_their_0mv_crossing():
    t, v = train([20.0, 60.0, 100.0])
    sp = spike_times(t, v)
    assert int(sp.count) == 3
    # rise from -65 to +30 over 0.5 ms: 0 mV is reached 0.5 * 30/95 ms before the peak
    np.testing.assert_allclose(np.asarray(sp.times[:3]), np.array([20, 60, 100]) - 0.5 * 30 / 95, atol=1e-4)
    np.testing.assert_allclose(np.asarray(sp.peak_times[:3]), [20, 60, 100], atol=1e-4)
    np.testing.assert_allclose(np.asarray(sp.peak_v[:3]), 30.0, atol=1e-4)
    assert np.all(np.isinf(np.asarray(sp.times[3:]))) and np.all(np.asarray(sp.peak_index[3:]) == -1)


def test_plateau_spikes_whose_troughs_stay_above_minus_20mv():
    # the cell: spikes from -20 to +10 mV, troughs at -20 mV, never below
    t, v = train(np.arange(10.0, 190.0, 15.0), base=-18.0, peak=10.0, ahp=-20.0, rise=1.0, fall=2.0,
                 rec=4.0)
    assert count(t, v) == 12
    # spikes that never reach the 0 mV timing level (23 mV high) are timed at their peak
    t2, v2 = train([50.0, 100.0], base=-25.0, peak=-2.0, ahp=-27.0, rise=1.0, fall=2.0)
    sp = spike_times(t2, v2)
    assert int(sp.count) == 2
    np.testing.assert_allclose(np.asarray(sp.times[:2]), [50.0, 100.0], atol=1e-4)


def test_a_simulated_cell_that_fires_from_a_plateau():
    # scripts/synthetic_cells.py's rs_plateau_10khz: an RS cell with its Na and Kd kinetics
    # 30 mV depolarised and E_Na +20 mV, driven by strong steps plus a noise current, fires
    # irregular spikes from about -20 mV to +20 mV. Reference: upward 0 mV crossings of the
    # noise-free voltage; the detector sees it sampled at 10 kHz with 0.2 mV of noise.
    from hhjax import stimulus
    from hhjax.models.pospischil import PLATEAU as cell

    dt, amps = 0.01, jnp.array([800.0, 900.0])
    noise = stimulus.ou_noise(jax.random.PRNGKey(3), duration=600.0, dt=dt, sigma=8.0, shape=(2,))
    t_ms = jnp.arange(noise.values.shape[-1]) * dt
    drive = jnp.where((t_ms >= 50.0) & (t_ms < 550.0), amps[:, None], 0.0) + noise.values
    v = np.asarray(hhjax.simulate(cell, stimulus.sampled(drive, dt), duration=600.0, dt=dt).v)
    truth = np.sum((v[:, :-1] < 0.0) & (v[:, 1:] >= 0.0), 1)
    sampled = v[:, ::10] + 0.2 * np.random.default_rng(0).standard_normal(v[:, ::10].shape)
    t = np.arange(sampled.shape[1]) * 0.1
    late = (t > 150.0) & (t < 550.0)
    assert np.all(sampled[:, late].min(1) > -30.0) and np.all(sampled[:, late].max(1) < 30.0)  # a plateau
    assert np.all(truth >= 10)
    assert [count(t, x) for x in sampled] == truth.tolist()


def test_depolarisation_block_oscillations_are_not_spikes():
    # one spike at the step onset, then V settles near -25 mV with 4 mV oscillations
    t = np.arange(0.0, 300.0, 0.025)
    _, spike = train([20.0], t_end=300.0, dt=0.025)
    block = np.where(t > 25.0, -25.0 + 4.0 * np.sin(2 * np.pi * t / 8.0) * np.exp(-(t - 25) / 400), 0.0)
    v = np.where(t > 25.0, block, spike)
    assert count(t, v) == 1


@pytest.mark.parametrize("khz", [4, 10, 20, 50])
def test_every_sampling_rate_from_4_to_50_khz(khz):
    times = [15.0, 27.0, 33.0, 80.0, 150.0]     # an 6 ms doublet included
    t, v = train(times, dt=1.0 / khz, rise=0.4, fall=0.8, rec=5.0)
    sp = spike_times(t, v)
    assert int(sp.count) == 5
    np.testing.assert_allclose(np.asarray(sp.peak_times[:5]), times, atol=1.0 / khz)


def test_recording_noise_adds_no_spike():
    rng = np.random.default_rng(0)
    t, v = train([30.0, 90.0, 150.0], dt=0.02)                       # 50 kHz
    for sigma in (0.5, 1.0, 2.0):       # mV RMS, white at 50 kHz (rigs: < 1 mV, filtered)
        assert count(t, v + rng.normal(0.0, sigma, v.size)) == 3
    t, v = train([], dt=0.02)
    assert count(t, v + rng.normal(0.0, 2.0, v.size)) == 0
    slow = np.convolve(rng.normal(0.0, 1.0, v.size), np.ones(50) / 50 ** 0.5, "same")  # 1 ms
    assert count(t, v + 3.0 * slow) == 0                                # 3 mV RMS, band-limited


def test_spikes_on_a_hyperpolarised_baseline():
    t, v = train([40.0, 90.0], base=-95.0, peak=25.0, ahp=-100.0)
    assert count(t, v) == 2
    assert count(t, v + 20.0) == 2 and count(t, v - 20.0) == 2       # offsets do not matter


def test_slow_depolarisations_steps_and_charging_are_not_spikes():
    t = np.arange(0.0, 600.0, 0.05)
    hump = 25.0 * (1 - np.exp(-np.clip(t - 100, 0, None) / 10.0)) * np.exp(-np.clip(t - 100, 0, None) / 60.0)
    assert count(t, -70.0 + hump) == 0                                 # a 25 mV Ca2+-like hump
    on = (t >= 100) & (t < 400)
    charge = np.where(on, 60.0 * (1 - np.exp(-(t - 100) / 10.0)), 0.0)
    charge = np.where(t >= 400, 60.0 * (1 - np.exp(-300 / 10.0)) * np.exp(-(t - 400) / 10.0), charge)
    assert count(t, -100.0 + charge) == 0                              # 60 mV step response
    bridge = np.where(on, 30.0, 0.0)                                   # bridge-balance jumps
    assert count(t, -70.0 + bridge + np.random.default_rng(1).normal(0, 0.5, t.size)) == 0
    assert count(t, -70.0 + 8.0 * np.exp(-((t - 300) / 5.0) ** 2)) == 0   # an 8 mV EPSP


def test_incomplete_spikes_at_the_trace_edges_are_not_counted():
    t, v = train([20.0, 60.0, 100.0])
    assert count(t[t < 100.2], v[t < 100.2]) == 2      # trace ends before the fall
    assert count(t[t > 20.1], v[t > 20.1]) == 2        # trace starts on a falling spike


def test_max_spikes_truncates_but_counts_all():
    t, v = train(np.arange(10.0, 190.0, 10.0))
    sp = spike_times(t, v, max_spikes=4)
    assert int(sp.count) == 18 and sp.times.shape == (4,)
    assert spike_peaks(t, v).size == 18 and spike_train(t, v).size == 18


def test_batched_jit_and_vmap_agree_with_single_traces():
    t, a = train([20.0, 70.0])
    _, b = train([30.0, 80.0, 130.0], base=-20.0, peak=10.0, ahp=-22.0, rise=1.0, fall=2.0)
    _, c = train([])
    v = np.stack([a, b, c])
    batch = spike_times(t, v)
    jitted = jax.jit(lambda t, v: spike_times(t, v))(jnp.asarray(t), jnp.asarray(v))
    mapped = jax.vmap(lambda x: spike_times(t, x))(jnp.asarray(v))
    assert np.asarray(batch.count).tolist() == [2, 3, 0]
    for k, x in enumerate(v):
        one = spike_times(t, x)
        for res in (batch, jitted, mapped):
            np.testing.assert_array_equal(np.asarray(res.count)[k], np.asarray(one.count))
            np.testing.assert_array_equal(np.asarray(res.peak_index)[k], np.asarray(one.peak_index))
    two_d_t = spike_times(np.broadcast_to(t, v.shape), v)         # per-trace time axes
    np.testing.assert_array_equal(np.asarray(two_d_t.peak_index), np.asarray(batch.peak_index))


def test_simulated_population_matches_the_in_loop_counter():
    # HH under constant currents: complete spikes only (the run continues 20 ms after the
    # last counted window), so the detector and the 0 mV in-loop counter must agree
    tr = hhjax.simulate(hhjax.presets.NEURON, hhjax.stimulus.constant(jnp.linspace(0.0, 40.0, 64)),
                        duration=120.0, dt=0.025)
    sp = spike_times(tr.t, tr.v)
    late = np.isfinite(sp.times) & (np.asarray(sp.times) >= 100.0)
    n_det = np.asarray(sp.count) - late.sum(-1)
    tr100 = hhjax.simulate(hhjax.presets.NEURON, hhjax.stimulus.constant(jnp.linspace(0.0, 40.0, 64)),
                           duration=100.0, dt=0.025, record_every=4000)
    np.testing.assert_array_equal(n_det, np.asarray(tr100.spike_count))
    assert len(set(n_det.tolist())) > 3


def test_bad_input_names_the_arguments():
    with pytest.raises(ValueError, match="t and v"):
        spike_times(np.arange(5.0), np.zeros(6))
    with pytest.raises(ValueError, match="max_spikes"):
        spike_times(np.arange(5.0), np.zeros(5), max_spikes=0)
    with pytest.raises(ValueError, match="t and v"):
        spike_peaks(np.arange(5.0), np.zeros((2, 5)))


# ------------------------------------------------------------------------------ hypothesis
DT_CHOICES = (0.02, 0.05, 0.25)          # 50, 20 and 4 kHz; fixed lengths avoid recompiling
T_END = 300.0


@st.composite
def spike_trains(draw):
    n = draw(st.integers(0, 12))
    gaps = draw(st.lists(st.floats(8.0, 40.0), min_size=n, max_size=n))  # > rise+fall+rec
    times = 10.0 + np.cumsum(gaps)
    times = times[times < T_END - 20.0]
    base = draw(st.floats(-95.0, -20.0))
    amp = draw(st.floats(30.0, 110.0))
    return times, dict(base=base, peak=base + amp, ahp=base - draw(st.floats(0.0, 15.0)),
                       rise=draw(st.floats(0.3, 1.5)), fall=draw(st.floats(0.5, 3.0)), rec=3.0)


SET = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SET
@given(spike_trains(), st.sampled_from(DT_CHOICES), st.floats(-60.0, 60.0),
       st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
def test_counts_constructed_spikes_at_any_rate_offset_and_noise(tr, dt, offset, sigma, seed):
    times, shape = tr
    t, v = train(times, t_end=T_END, dt=dt, **shape)
    v = v + np.random.default_rng(seed).normal(0.0, sigma, v.size)
    n = count(t, v)
    assert n == len(times)
    assert count(t, v + offset) == n                                  # offset invariance


@SET
@given(spike_trains(), st.integers(0, 2**31 - 1))
def test_decimating_50_to_4_khz_keeps_the_count(tr, phase):
    times, shape = tr
    t, v = train(times, t_end=T_END, dt=0.02, **shape)
    k = phase % 12                                                     # any sampling phase
    n_fine = count(t, v)
    coarse = count(t[k::12][:1240], v[k::12][:1240])                   # 0.24 ms: 4.2 kHz
    assert coarse == n_fine


@SET
@given(st.integers(0, 2**31 - 1), st.floats(1.0, 80.0), st.sampled_from(DT_CHOICES))
def test_count_never_exceeds_duration_over_min_interval(seed, scale, dt):
    t = np.arange(0.0, 50.0, dt)
    v = np.random.default_rng(seed).normal(-40.0, scale, t.size)       # anything at all
    sp = spike_times(t, v, max_spikes=64)
    n = int(sp.count)
    assert n <= (t[-1] - t[0]) / MIN_INTERVAL + 1
    isi = np.diff(np.asarray(sp.peak_times)[: min(n, 64)])
    assert np.all(isi >= MIN_INTERVAL - 1e-4)


# --------------------------------------------------------------- by-eye reference counts
def _reference():
    with open(REFERENCE, newline="") as f:
        return {(r["recording"], int(r["sweep"])): (int(r["true_count"]), r["ambiguous"] == "1")
                for r in csv.DictReader(f)}


def test_reference_table_is_complete_and_sane():
    ref = _reference()
    assert len(ref) == 95 and all(n >= 0 for n, _ in ref.values())


@pytest.mark.skipif(data_dir() is None, reason="recordings not available: neither data/recordings "
                    "nor ../shared/data/recordings is there")
def test_detector_matches_every_unambiguous_reference_count():
    ref = _reference()
    found = {}
    for rec, k, t, v in sweeps():
        found.setdefault(rec, []).append((k, t, v))
    # a trimmed copy (fewer sweeps than the original) cannot be matched sweep by sweep
    whole = {rec: s for rec, s in found.items() if len(s) == sum(1 for r, _ in ref if r == rec)}
    assert whole, f"no untrimmed recording in {data_dir()}"
    wrong = []
    for rec, items in whole.items():
        for k, t, v in items:
            true, ambiguous = ref[rec, k]
            got = spike_peaks(t, v).size
            if not ambiguous and got != true:
                wrong.append(f"{rec} sweep {k}: {got} detected, {true} by eye")
    assert not wrong, "; ".join(wrong)
    assert set(whole) == {r for r, _ in ref}, f"a recording of the table is missing from {data_dir()}"


def test_one_threshold_constant_for_every_in_loop_counter():
    import inspect

    from hhjax.analysis import spikes
    from hhjax.simulation import pallas, trace

    assert inspect.signature(hhjax.simulate).parameters["spike_threshold"].default is trace.COUNT_THRESHOLD
    assert inspect.signature(pallas.simulate_pallas).parameters["spike_threshold"].default is trace.COUNT_THRESHOLD
    assert spikes.TIME_LEVEL is trace.COUNT_THRESHOLD
