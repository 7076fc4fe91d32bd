"""The fused CPU kernel (hhjax/simulation/cpu_kernel.py, an XLA FFI call into
hhjax/simulation/_cpu/hh_kernel.cc) against simulate's reference ``lax.scan`` path, float64,
and the Radau reference of tests/reference.py.

Skipped with the reason when the kernel was not built (no C++ compiler at install time).
"""

from __future__ import annotations

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax import stimulus as S
from hhjax.presets import NEURON
from hhjax.simulation import cpu_kernel
from hhjax.simulation.cpu_kernel import simulate_cpu

pytestmark = pytest.mark.skipif(not cpu_kernel.available(),
                                reason=f"CPU kernel not available: {cpu_kernel.unavailable_reason()}")

DT = 0.025
V_TOL = 0.05      # mV, over 30 ms; the float32 reference differs from float64 by ~0.07 mV
GATE_TOL = 1e-3


def _reference(params, stim, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # divergence warnings
        return hhjax.simulate(params, stim, dt=DT, method="exp_euler", **kw)


def _kernel(params, stim, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return simulate_cpu(params, stim, dt=DT, **kw)


def _assert_matches(got, ref, v_tol=V_TOL):
    np.testing.assert_array_equal(np.asarray(got.t), np.asarray(ref.t))
    assert got.v.shape == ref.v.shape
    np.testing.assert_allclose(np.asarray(got.v), np.asarray(ref.v), rtol=0, atol=v_tol)
    for name in "mhn":
        np.testing.assert_allclose(np.asarray(getattr(got, name)), np.asarray(getattr(ref, name)),
                                   rtol=0, atol=GATE_TOL, err_msg=name)
    np.testing.assert_array_equal(np.asarray(got.spike_count), np.asarray(ref.spike_count))
    np.testing.assert_array_equal(np.asarray(got.diverged), np.asarray(ref.diverged))
    assert got.spike_count.dtype == jnp.int32 and got.diverged.dtype == jnp.bool_


def test_counts_agree_on_1e5_neurons_except_at_count_transitions():
    # 1e5 neurons, currents 0-20 µA/cm² in increasing order, 20 ms (800 steps): counts 0-3.
    n = 100_000
    amps = jnp.linspace(0.0, 20.0, n)
    got = _kernel(NEURON, amps, duration=20.0, record_every=800)
    ref = _reference(NEURON, S.constant(amps), duration=20.0, record_every=800)
    k, r = np.asarray(got.spike_count), np.asarray(ref.spike_count)
    assert len(np.unique(r)) >= 3
    bad = np.nonzero(k != r)[0]
    assert len(bad) <= n // 10_000, bad  # >= 99.99 % agree
    # A disagreement is a neuron on the edge between two counts: its current is within
    # float32 rounding of the current where the count steps up, so the kernel's count is
    # that of a neighbour on the current axis.
    for i in bad:
        assert abs(int(k[i]) - int(r[i])) == 1
        assert k[i] in (r[max(i - 1, 0)], r[min(i + 1, n - 1)]), (i, k[i], r[i - 1:i + 2])
    np.testing.assert_array_equal(np.asarray(got.diverged), np.asarray(ref.diverged))
    np.testing.assert_allclose(np.asarray(got.v[:, 0]), np.asarray(ref.v[:, 0]), atol=1e-4)


def test_recorded_every_step_within_float32_rounding_of_float64():
    amps = jnp.linspace(0.0, 20.0, 40)  # subthreshold, single spikes, repetitive firing
    got = _kernel(NEURON, amps, duration=30.0)
    ref = _reference(NEURON, S.constant(amps), duration=30.0)
    counts = np.asarray(ref.spike_count)
    assert (counts == 0).any() and (counts >= 2).any()
    _assert_matches(got, ref)
    with jax.enable_x64(True):
        ref64 = _reference(NEURON, S.constant(jnp.asarray(amps, jnp.float64)), duration=30.0)
    v64 = np.asarray(ref64.v)
    err_kernel = np.max(np.abs(np.asarray(got.v, np.float64) - v64))
    err_ref32 = np.max(np.abs(np.asarray(ref.v, np.float64) - v64))
    assert err_kernel <= 2.0 * err_ref32 + 1e-3, (err_kernel, err_ref32)


def test_step_current_spike_times_match_radau(radau_step_spikes):
    # W1: 10 µA/cm² from 10 to 90 ms; the Radau solution is independent of hhjax.
    stim = S.step(10.0, 10.0, 90.0)
    got = _kernel(NEURON, stim, duration=100.0)
    ref = _reference(NEURON, stim, duration=100.0)
    _assert_matches(got, ref, v_tol=0.5)  # 100 ms: spike-time rounding drift grows
    t, v = np.asarray(got.t), np.asarray(got.v)
    i = np.nonzero((v[:-1] < 0) & (v[1:] >= 0))[0]
    times = t[i] + (0 - v[i]) / (v[i + 1] - v[i]) * DT
    assert len(times) == len(radau_step_spikes) == int(got.spike_count)
    np.testing.assert_allclose(times, radau_step_spikes, atol=0.05)


def test_step_edges_per_neuron_and_holding_current():
    # Edges on grid points and between them, a per-neuron start, and a holding current.
    starts = jnp.array([0.0, 2.5, 2.51, 5.0125, 7.0])
    stim = S.constant(-1.0) + S.step(jnp.array([15.0, 15.0, 15.0, 15.0, 30.0]), starts, 12.5)
    got = _kernel(NEURON, stim, duration=20.0, record_every=1)
    ref = _reference(NEURON, stim, duration=20.0, record_every=1)
    _assert_matches(got, ref)
    assert (np.asarray(ref.spike_count) >= 1).all()


def test_parameters_temperature_y0_and_2d_batch():
    params = dataclasses.replace(NEURON, g_na=jnp.array([[80.0], [120.0], [160.0]]),
                                 celsius=jnp.array([[6.3], [10.0], [16.3]]))
    amps = jnp.array([0.0, 5.0, 10.0, 20.0])
    y0 = jnp.array([-40.0, -55.0, -65.0, -70.0])  # two at the 0/0 points of the rates
    got = _kernel(params, amps, duration=20.0, record_every=20, y0=y0, spike_threshold=-20.0)
    ref = _reference(params, S.constant(amps), duration=20.0, record_every=20, y0=y0,
                     spike_threshold=-20.0)
    assert got.v.shape == (3, 4, 41) and got.spike_count.shape == (3, 4)
    assert len(set(np.asarray(ref.spike_count).ravel().tolist())) > 2
    _assert_matches(got, ref)


def test_divergence_flags_and_no_spike_counting():
    amps = jnp.array([5.0, 1e5, -1e5, 0.0])
    y0 = jnp.array([-65.0, -65.0, -65.0, 1500.0])
    got = _kernel(NEURON, amps, duration=2.0, y0=y0, record_every=80, spike_threshold=None)
    ref = _reference(NEURON, S.constant(amps), duration=2.0, y0=y0, record_every=80,
                     spike_threshold=None)
    assert np.asarray(ref.diverged).tolist() == [False, True, True, True]
    np.testing.assert_array_equal(np.asarray(got.diverged), np.asarray(ref.diverged))
    assert np.asarray(got.spike_count).tolist() == [0, 0, 0, 0]
    np.testing.assert_allclose(np.asarray(got.v[0]), np.asarray(ref.v[0]), atol=V_TOL)


def test_record_subset_keeps_only_named_variables():
    amps = jnp.array([0.0, 10.0, 20.0])
    full = _kernel(NEURON, amps, duration=10.0, record_every=4)
    only_v = _kernel(NEURON, amps, duration=10.0, record_every=4, record=("v",))
    assert only_v.m is None and only_v.h is None and only_v.n is None
    np.testing.assert_array_equal(np.asarray(only_v.v), np.asarray(full.v))
    np.testing.assert_array_equal(np.asarray(only_v.spike_count), np.asarray(full.spike_count))
    nothing = _kernel(NEURON, amps, duration=10.0, record=())
    assert nothing.v is None
    np.testing.assert_array_equal(np.asarray(nothing.spike_count), np.asarray(full.spike_count))
    with pytest.raises(ValueError, match="record"):
        _kernel(NEURON, amps, duration=10.0, record=("x",))


def test_unsupported_inputs_are_refused_with_one_line():
    with pytest.raises(TypeError, match="stimulus"):
        simulate_cpu(NEURON, S.sine(1.0, 10.0), duration=1.0, dt=DT)
    with pytest.raises(TypeError, match="params"):
        simulate_cpu(hhjax.presets.POSPISCHIL_RS if hasattr(hhjax.presets, "POSPISCHIL_RS")
                     else hhjax.ReducedParams(), 1.0, duration=1.0, dt=DT)


# ---------------------------------------------------------------------------------------
# simulate's choice of backend, and record= on every backend
# ---------------------------------------------------------------------------------------


def test_simulate_takes_the_kernel_only_where_it_applies(monkeypatch):
    from hhjax.simulation import last_backend

    amps = jnp.array([0.0, 10.0])
    tr = hhjax.simulate(NEURON, S.constant(amps), duration=5.0, dt=DT)
    assert last_backend() == "cpu_kernel"
    direct = simulate_cpu(NEURON, amps, duration=5.0, dt=DT)
    np.testing.assert_array_equal(np.asarray(tr.v), np.asarray(direct.v))
    hhjax.simulate(NEURON, S.step(10.0, 1.0, 4.0) + S.constant(1.0), duration=5.0, dt=DT)
    assert last_backend() == "cpu_kernel"
    # Everything else runs on the reference loop.
    for kw in (dict(method="rk4"), dict(checkpoint_every=40), dict(stimulus=S.sine(1.0, 50.0)),
               dict(stimulus=jnp.zeros(200)), dict(params=hhjax.ReducedParams())):
        args = dict(params=NEURON, stimulus=S.constant(amps), duration=5.0, dt=DT) | kw
        hhjax.simulate(**args)
        assert last_backend() == "scan", kw
    jax.jit(lambda a: hhjax.simulate(NEURON, S.constant(a), duration=5.0, dt=DT).v)(amps)
    assert last_backend() == "scan"
    g = jax.grad(lambda a: hhjax.simulate(NEURON, S.constant(a), duration=5.0, dt=DT).v.sum())(amps)
    assert last_backend() == "scan" and np.all(np.isfinite(np.asarray(g)))
    with jax.enable_x64(True):
        hhjax.simulate(NEURON, S.constant(amps), duration=5.0, dt=DT)
        assert last_backend() == "scan"
    monkeypatch.setenv("HHJAX_CPU_KERNEL", "0")
    hhjax.simulate(NEURON, S.constant(amps), duration=5.0, dt=DT)
    assert last_backend() == "scan"


@pytest.mark.parametrize("method", ["exp_euler", "rk4"])  # the kernel, then the scan loop
def test_record_subset_on_every_backend(method):
    amps = jnp.array([0.0, 10.0])
    full = hhjax.simulate(NEURON, S.constant(amps), duration=5.0, dt=DT, method=method,
                          record_every=2)
    part = hhjax.simulate(NEURON, S.constant(amps), duration=5.0, dt=DT, method=method,
                          record_every=2, record=("n", "v"))
    assert part.m is None and part.h is None
    for name in "vn":
        np.testing.assert_array_equal(np.asarray(getattr(part, name)),
                                      np.asarray(getattr(full, name)))
    np.testing.assert_array_equal(np.asarray(part.spike_count), np.asarray(full.spike_count))
    with pytest.raises(ValueError, match="record: unknown state variable"):
        hhjax.simulate(NEURON, 1.0, duration=1.0, dt=DT, method=method, record=("w",))


def test_unused_records_cost_nothing_under_jit():
    # XLA drops the gates' records when only V leaves the jitted function: the compiled
    # program is the size of the one that records V alone.
    amps = jnp.linspace(2.0, 20.0, 256)

    def sim(a, record=None):
        return hhjax.simulate(NEURON, S.constant(a), duration=10.0, dt=DT, record=record)

    sizes = []
    for fn in (lambda a: sim(a).v, lambda a: sim(a, ("v",)).v, lambda a: sim(a)):
        mem = jax.jit(fn).lower(amps).compile().memory_analysis()
        sizes.append(mem.temp_size_in_bytes + mem.output_size_in_bytes)
    assert sizes[0] == sizes[1] < sizes[2] / 3
