"""hhjax.sbi: summaries against NumPy/SciPy, the simulator's batch contract, torch round trip
and the sbi prior (the last two skip without torch / sbi: pip install hhjax[sbi])."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings

import jax
import numpy as np
import pytest
from scipy import stats

import hhjax
from hhjax.sbi import GONCALVES_NAMES, goncalves_summary, prior_bounds, simulator

T_ON, T_OFF, DURATION = 50.0, 250.0, 300.0
STIM = hhjax.stimulus.step(250.0, T_ON, T_OFF)


def _reference_summary(t, v, t_on, t_off, lag):
    """The same statistics written directly in NumPy / SciPy (float64)."""
    i = np.flatnonzero((v[:-1] < 0.0) & (v[1:] >= 0.0))
    times = t[i] + (0.0 - v[i]) / (v[i + 1] - v[i]) * (t[i + 1] - t[i])
    count = np.sum((times >= t_on) & (times < t_off))
    pre, on = v[t < t_on], v[(t >= t_on) & (t < t_off)]
    late = v[(t < t_on) & (t >= 0.9 * t_on)]
    k = int(round(lag / (t[1] - t[0])))
    d = on - on.mean()
    autocorr = np.mean(d[:-k] * d[k:]) / np.mean(d * d)
    return [count, pre.mean(), late.std(), on.mean(), on.std(), stats.skew(on),
            stats.kurtosis(on, fisher=True) + 3.0, autocorr]


def test_goncalves_summary_matches_numpy_and_scipy():
    params = dataclasses.replace(hhjax.presets.POSPISCHIL, g_na=np.array([56.0, 30.0, 56.0]),
                                 g_k=np.array([6.0, 6.0, 2.0]))
    stim = hhjax.stimulus.step(np.array([250.0, 250.0, 40.0]), T_ON, T_OFF)
    with jax.enable_x64(True):
        tr = hhjax.simulate(params, stim, duration=DURATION, dt=0.025, record_every=4)
        ours = np.asarray(goncalves_summary(tr, T_ON, T_OFF, lag=0.5))
        t, v = np.asarray(tr.t), np.asarray(tr.v)
    assert ours.shape == (3, len(GONCALVES_NAMES))
    for row, vi in zip(ours, v):
        np.testing.assert_allclose(row, _reference_summary(t, vi, T_ON, T_OFF, 0.5), rtol=1e-9, atol=1e-9)
    assert ours[0, 0] > 3 and ours[2, 0] == 0  # a spiking and a silent trace: both paths tested


def test_goncalves_spike_count_is_the_package_detector_not_a_crossing_count():
    # Noise around 0 mV during the step (a depolarised plateau) crosses 0 mV dozens of
    # times but holds no spike; two 60 mV spikes on the plateau are two.
    from types import SimpleNamespace
    t = np.arange(0.0, DURATION, 0.1)
    v = np.where((t >= T_ON) & (t < T_OFF), 0.0, -65.0) + np.random.default_rng(0).normal(0.0, 1.0, t.size)
    crossings = int(np.sum((v[:-1] < 0) & (v[1:] >= 0)))
    spiky = v.copy()
    for t_peak in (T_ON + 30.0, T_ON + 60.0):
        spiky += 60.0 * np.exp(-0.5 * ((t - t_peak) / 0.3) ** 2)
    counts = [float(goncalves_summary(SimpleNamespace(t=t, v=x), T_ON, T_OFF)[0]) for x in (v, spiky)]
    assert crossings > 20 and counts == [0.0, 2.0]


def test_simulator_numpy_batch_matches_single_runs():
    names = ["g_na", "g_k", "v_t"]
    sim = simulator(hhjax.presets.POSPISCHIL, STIM, names, duration=DURATION)
    theta = np.array([[56.0, 6.0, -56.2], [40.0, 4.0, -58.0], [70.0, 8.0, -55.0]])
    x = sim(theta)
    assert isinstance(x, np.ndarray) and x.shape == (3, 8)
    for row, th in zip(x, theta):
        p = dataclasses.replace(hhjax.presets.POSPISCHIL, **dict(zip(names, th)))
        one = goncalves_summary(hhjax.simulate(p, STIM, duration=DURATION, dt=0.025, record_every=4),
                                T_ON, T_OFF)
        np.testing.assert_allclose(row, np.asarray(one), rtol=2e-4, atol=2e-4)


def test_simulator_bad_columns_and_out_of_bounds_rows():
    sim = simulator("pospischil", STIM, ["g_na", "g_k"], duration=DURATION,
                    bounds={"g_na": (10.0, 100.0)})
    with pytest.raises(ValueError, match=r"theta: expected shape \(n, 2\)") as err:
        sim(np.zeros((4, 3)))
    assert "\n" not in str(err.value)
    theta = np.array([[56.0, 6.0], [150.0, 6.0], [56.0, np.nan], [56.0, 6.0]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x = sim(theta)
    msgs = [str(w.message) for w in caught if "bounds" in str(w.message)]
    assert len(msgs) == 1 and "2 of 4" in msgs[0]
    assert np.isnan(x[1]).all() and np.isnan(x[2]).all()
    assert np.isfinite(x[[0, 3]]).all()
    np.testing.assert_array_equal(x[0], x[3])


def test_simulator_custom_summary_and_bad_names():
    sim = simulator(hhjax.presets.NEURON, hhjax.stimulus.step(10.0, 10.0, 40.0), ["g_na"],
                    summary=lambda tr: tr.v.max(axis=-1, keepdims=True), duration=50.0)
    x = sim(np.array([[120.0], [60.0]]))
    assert x.shape == (2, 1) and x[0, 0] > 20.0  # mV: a spike
    with pytest.raises(ValueError, match="names"):
        simulator("hh", 0.0, ["g_xx"], duration=10.0)
    with pytest.raises(ValueError, match="summary"):
        simulator("hh", 0.0, ["g_na"], duration=10.0)  # no step: default summary impossible


def test_prior_bounds_are_hhjax_bounds():
    lo, hi = prior_bounds(hhjax.presets.POSPISCHIL, ["g_na", "v_t"], bounds={"g_na": (10.0, 90.0)})
    assert lo.tolist() == [10.0, -56.2 - 25.0] and hi.tolist() == [90.0, -56.2 + 25.0]


def test_core_does_not_import_torch_or_sbi():
    code = ("import sys, hhjax, hhjax.sbi, hhjax.export; "
            "bad = [m for m in ('torch', 'sbi', 'neuron', 'neuroml') if m in sys.modules]; "
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch", reason="torch is not installed (pip install hhjax[sbi])")
    sim = simulator("pospischil", STIM, ["g_na", "g_k"], duration=DURATION)
    theta = torch.tensor([[56.0, 6.0], [40.0, 5.0]], dtype=torch.float64)
    x = sim(theta)
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float64 and x.shape == (2, 8)
    np.testing.assert_allclose(x.numpy(), sim(theta.numpy()), rtol=0, atol=0)


def test_sbi_prior_samples_feed_the_simulator():
    pytest.importorskip("sbi", reason="sbi is not installed (pip install hhjax[sbi])")
    from hhjax.sbi import prior

    p = prior("pospischil", ["g_na", "g_k"], bounds={"g_na": (20.0, 80.0), "g_k": (1.0, 15.0)})
    theta = p.sample((16,))
    assert theta.shape == (16, 2)
    assert bool(((theta[:, 0] >= 20) & (theta[:, 0] <= 80)).all())
    x = simulator("pospischil", STIM, ["g_na", "g_k"], duration=DURATION)(theta)
    assert x.shape == (16, 8) and bool(x.isfinite().all())


def test_simulator_several_sweeps_concatenates_their_summaries():
    amps = np.array([150.0, 400.0])
    names = ["g_na", "g_k"]
    theta = np.array([[56.0, 6.0], [45.0, 4.0]])
    both = simulator("pospischil", hhjax.stimulus.step(amps, T_ON, T_OFF), names, duration=DURATION)(theta)
    assert both.shape == (2, 16)
    for j, amp in enumerate(amps):
        one = simulator("pospischil", hhjax.stimulus.step(amp, T_ON, T_OFF), names, duration=DURATION)(theta)
        np.testing.assert_allclose(both[:, 8 * j:8 * (j + 1)], one, rtol=1e-5, atol=1e-5)
    assert both[0, 8] > both[0, 0]  # more current, more spikes
