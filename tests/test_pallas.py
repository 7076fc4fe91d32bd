"""The fused Pallas HH kernel (hhjax/simulation/pallas.py) against the reference path of
``hhjax.simulate``, run in Pallas' interpreter on CPU, and the hook that lets ``simulate``
pick the kernel on a GPU.

Interpret mode compiles slowly (~3 s per configuration), so the kernel runs here use few
distinct shapes and short durations.
"""

from __future__ import annotations

import dataclasses
import importlib
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax.simulation import backends, pallas
from hhjax import stimulus as S
from hhjax.simulation.pallas import simulate_pallas
from hhjax.presets import NEURON
from hhjax.solvers import exp_euler_step

sim_module = importlib.import_module("hhjax.simulation.scan")

DT = 0.025
N = 40
AMPS = jnp.linspace(0.0, 20.0, N)  # subthreshold (< ~2.2), single spikes, repetitive firing
V_TOL = 0.05      # mV; reference float32 vs float64 differs by ~0.07 mV here
GATE_TOL = 1e-3


def _reference(params, amps, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # divergence warnings
        return hhjax.simulate(params, S.constant(amps), dt=DT, method="exp_euler", **kw)


def _assert_matches(got, ref, v_tol=V_TOL, gates=True):
    assert got.v.shape == ref.v.shape
    np.testing.assert_array_equal(np.asarray(got.t), np.asarray(ref.t))
    np.testing.assert_allclose(np.asarray(got.v), np.asarray(ref.v), rtol=0, atol=v_tol)
    if gates:
        for name in "mhn":
            np.testing.assert_allclose(np.asarray(getattr(got, name)),
                                       np.asarray(getattr(ref, name)), rtol=0, atol=GATE_TOL)
    np.testing.assert_array_equal(np.asarray(got.spike_count), np.asarray(ref.spike_count))
    np.testing.assert_array_equal(np.asarray(got.diverged), np.asarray(ref.diverged))
    assert got.spike_count.dtype == jnp.int32 and got.diverged.dtype == jnp.bool_


# ---------------------------------------------------------------------------------------
# The step itself, at and near the 0/0 points of alpha_m (-40 mV) and alpha_n (-55 mV)
# ---------------------------------------------------------------------------------------


def test_one_step_matches_reference_step_including_singular_points():
    v = jnp.array([-40.0, -55.0, -40.001, -39.999, -55.002, -54.999, -65.0, -90.0, 0.0, 40.0],
                  jnp.float32)
    gates = hhjax.steady_state(NEURON, v - 3.0)
    state = hhjax.HHState(v=v, m=gates.m, h=gates.h, n=gates.n)
    amp = jnp.full(v.shape, 5.0, jnp.float32)
    c = {k: jnp.broadcast_to(x, v.shape) for k, x in pallas._constants(NEURON, amp, DT).items()}
    got = pallas._step(c, state.v, state.m, state.h, state.n)
    ref = exp_euler_step(hhjax.model_of(NEURON), NEURON, state, amp, DT)
    for name, g, r in zip("vmhn", got, (ref.v, ref.m, ref.h, ref.n)):
        assert np.all(np.isfinite(np.asarray(g))), name
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=2e-6, atol=1e-6,
                                   err_msg=name)


# ---------------------------------------------------------------------------------------
# Whole runs against simulate's reference path
# ---------------------------------------------------------------------------------------


def test_kernel_matches_reference_every_step():
    got = simulate_pallas(NEURON, AMPS, duration=30.0, dt=DT, record_every=1)
    ref = _reference(NEURON, AMPS, duration=30.0, record_every=1)
    counts = np.asarray(ref.spike_count)
    assert (counts == 0).any() and (counts >= 2).any()  # both regimes are exercised
    _assert_matches(got, ref)
    # Within float32 rounding: no further from float64 than the float32 reference is.
    with jax.enable_x64(True):
        ref64 = _reference(NEURON, jnp.asarray(AMPS, jnp.float64), duration=30.0)
    v64 = np.asarray(ref64.v)
    err_kernel = np.max(np.abs(np.asarray(got.v, np.float64) - v64))
    err_ref32 = np.max(np.abs(np.asarray(ref.v, np.float64) - v64))
    assert err_kernel <= 2.0 * err_ref32 + 1e-3, (err_kernel, err_ref32)


def test_kernel_matches_reference_recorded_every_10_with_padding():
    # 40 neurons in blocks of 32: two programs, the second one padded.
    got = simulate_pallas(NEURON, AMPS, duration=30.0, dt=DT, record_every=10, block=32)
    ref = _reference(NEURON, AMPS, duration=30.0, record_every=10)
    assert got.v.shape == (N, 121)
    _assert_matches(got, ref)
    np.testing.assert_allclose(np.asarray(hhjax.final_state(got).v),
                               np.asarray(hhjax.final_state(ref).v), rtol=0, atol=V_TOL)


def test_neurons_starting_exactly_at_the_singular_voltages():
    y0 = jnp.array([-40.0, -55.0, -40.0, -55.0, -65.0])
    amps = jnp.array([0.0, 0.0, 10.0, 10.0, 10.0])
    got = simulate_pallas(NEURON, amps, duration=10.0, dt=DT, y0=y0, record_every=1)
    ref = _reference(NEURON, amps, duration=10.0, y0=y0, record_every=1)
    for name in "vmhn":
        assert np.all(np.isfinite(np.asarray(getattr(got, name)))), name
    assert not np.asarray(got.diverged).any()
    _assert_matches(got, ref)


def test_broadcast_parameters_temperature_and_2d_batch():
    # Per-neuron g_na (3, 1) and celsius (3, 1) against per-neuron currents (4,): batch (3, 4).
    params = dataclasses.replace(NEURON, g_na=jnp.array([[80.0], [120.0], [160.0]]),
                                 celsius=jnp.array([[6.3], [10.0], [16.3]]))
    amps = jnp.array([0.0, 5.0, 10.0, 20.0])
    got = simulate_pallas(params, amps, duration=20.0, dt=DT, record_every=20,
                          spike_threshold=-20.0)
    ref = _reference(params, amps, duration=20.0, record_every=20, spike_threshold=-20.0)
    assert got.v.shape == (3, 4, 41) and got.spike_count.shape == (3, 4)
    assert len(set(np.asarray(ref.spike_count).ravel().tolist())) > 2  # parameters matter
    _assert_matches(got, ref)


def test_divergence_flag_and_no_spike_counting():
    # A normal neuron, huge currents of both signs, and one starting beyond 1000 mV.
    amps = jnp.array([5.0, 1e5, -1e5, 0.0])
    y0 = jnp.array([-65.0, -65.0, -65.0, 1500.0])
    got = simulate_pallas(NEURON, amps, duration=2.0, dt=DT, y0=y0, spike_threshold=None)
    ref = _reference(NEURON, amps, duration=2.0, y0=y0, record_every=80, spike_threshold=None)
    np.testing.assert_array_equal(np.asarray(got.diverged), np.asarray(ref.diverged))
    assert np.asarray(ref.diverged).tolist() == [False, True, True, True]
    np.testing.assert_array_equal(np.asarray(got.spike_count), np.asarray(ref.spike_count))
    assert got.v.shape == (4, 2)  # record_every=None: initial and final state only
    np.testing.assert_allclose(np.asarray(got.v[0]), np.asarray(ref.v[0]), atol=V_TOL)


def test_full_initial_state_and_voltage_only_records():
    # Chain from a reference run's final state (per neuron), recording V only.
    amps = AMPS[::5]
    start = hhjax.final_state(_reference(NEURON, amps, duration=5.0))
    got = simulate_pallas(NEURON, amps, duration=20.0, dt=DT, y0=start, record_every=4,
                          gates=False)
    ref = _reference(NEURON, amps, duration=20.0, y0=start, record_every=4)
    assert got.m is None and got.h is None and got.n is None
    _assert_matches(got, ref, gates=False)


def test_single_neuron_and_empty_batch_shapes():
    got = simulate_pallas(NEURON, 10.0, duration=10.0, dt=DT, record_every=8)
    ref = _reference(NEURON, 10.0, duration=10.0, record_every=8)
    assert got.v.shape == ref.v.shape == (51,) and got.spike_count.shape == ()
    _assert_matches(got, ref)
    empty = simulate_pallas(NEURON, jnp.zeros((0, 3)), duration=1.0, dt=DT, record_every=4)
    ref = _reference(NEURON, jnp.zeros((0, 3)), duration=1.0, record_every=4)
    for name in ("v", "m", "spike_count", "diverged", "t"):
        assert getattr(empty, name).shape == getattr(ref, name).shape, name


# ---------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("call, exc, match", [
    (lambda: simulate_pallas(hhjax.ReducedParams(), 1.0, duration=1.0, dt=DT), TypeError,
     "HHParams"),
    (lambda: simulate_pallas(NEURON, S.step(10.0, 1.0, 2.0), duration=1.0, dt=DT), TypeError,
     "time-varying"),
    (lambda: simulate_pallas(NEURON, jnp.array([1.0, jnp.nan]), duration=1.0, dt=DT),
     ValueError, "amplitudes: contains NaN"),
    (lambda: simulate_pallas(NEURON, 1.0, duration=1.0, dt=0.3), ValueError, "dt"),
    (lambda: simulate_pallas(NEURON, 1.0, duration=1.0, dt=DT, record_every=3), ValueError,
     "record_every"),
    (lambda: simulate_pallas(NEURON, 1.0, duration=1.0, dt=DT, block=48), ValueError, "block"),
    (lambda: simulate_pallas(dataclasses.replace(NEURON, g_na=jnp.ones(3)), jnp.ones(4),
                             duration=1.0, dt=DT), ValueError, "do not broadcast"),
    (lambda: simulate_pallas(NEURON, 1.0, duration=1.0, dt=DT, y0="rest"), TypeError, "y0"),
    (lambda: simulate_pallas(NEURON, 1.0, duration=1.0, dt=DT, spike_threshold=float("inf")),
     ValueError, "spike_threshold"),
])
def test_bad_inputs_raise_clear_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------------------------------
# The hook in hhjax.simulate
# ---------------------------------------------------------------------------------------


@pytest.fixture
def as_if_gpu(monkeypatch):
    """Make the hook believe the backend is a GPU (the kernel then runs interpreted)."""
    monkeypatch.setattr(backends, "_backend", lambda: "gpu")
    monkeypatch.setattr(backends, "_FAILED", [])
    monkeypatch.delenv("HHJAX_PALLAS", raising=False)


def test_hook_applies_only_to_plain_float32_hh_exp_euler_constant_calls(as_if_gpu, monkeypatch):
    stim = S.constant(AMPS)
    kw = dict(method="exp_euler", checkpoint_every=None)
    assert backends.applies(NEURON, stim, **kw)
    assert not backends.applies(NEURON, stim, method="rk4", checkpoint_every=None)
    assert not backends.applies(NEURON, stim, method="exp_euler", checkpoint_every=40)
    assert not backends.applies(NEURON, S.step(1.0, 1.0, 2.0), **kw)
    assert not backends.applies(hhjax.ReducedParams(), stim, **kw)
    seen = []
    jax.jit(lambda g: seen.append(backends.applies(dataclasses.replace(NEURON, g_na=g),
                                                          stim, **kw)) or g)(120.0)
    assert seen == [False]  # traced (jit / grad / vmap): reference path
    with jax.enable_x64(True):
        assert not backends.applies(NEURON, stim, **kw)
    monkeypatch.setenv("HHJAX_PALLAS", "0")
    assert not backends.applies(NEURON, stim, **kw)
    monkeypatch.setattr(backends, "_backend", lambda: "cpu")
    monkeypatch.delenv("HHJAX_PALLAS")
    assert not backends.applies(NEURON, stim, **kw)


def test_hook_follows_default_device_and_pinned_inputs(monkeypatch):
    # On a GPU machine, jax.default_device(cpu) or inputs put on the CPU run the call on the
    # CPU, where the compiled kernel cannot run: the hook must see that.
    monkeypatch.setattr(backends.jax, "default_backend", lambda: "gpu")
    assert backends._backend() == "gpu"
    with jax.default_device(jax.devices("cpu")[0]):
        assert backends._backend() == "cpu"
    pinned = jax.device_put(AMPS, jax.devices("cpu")[0])
    assert not backends._not_committed_elsewhere((NEURON, S.constant(pinned), None))
    assert backends._not_committed_elsewhere((NEURON, S.constant(AMPS), None))


def test_simulate_uses_the_kernel_when_it_applies(as_if_gpu, monkeypatch):
    calls = []
    real = pallas._launch
    monkeypatch.setattr(pallas, "_launch",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    got = hhjax.simulate(NEURON, S.constant(AMPS), duration=30.0, dt=DT)
    assert calls == [1]
    monkeypatch.setenv("HHJAX_PALLAS", "0")
    ref = hhjax.simulate(NEURON, S.constant(AMPS), duration=30.0, dt=DT)
    assert calls == [1]
    _assert_matches(got, ref)


def test_simulate_falls_back_with_one_warning_when_the_kernel_fails(as_if_gpu, monkeypatch):
    def broken(*args, **kwargs):
        raise NotImplementedError("lowering failed")

    monkeypatch.setattr(pallas, "_launch", broken)
    with pytest.warns(RuntimeWarning, match="Pallas HH kernel failed"):
        got = hhjax.simulate(NEURON, S.constant(AMPS[:3]), duration=5.0, dt=DT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = hhjax.simulate(NEURON, S.constant(AMPS[:3]), duration=5.0, dt=DT)
    monkeypatch.setenv("HHJAX_PALLAS", "0")
    ref = hhjax.simulate(NEURON, S.constant(AMPS[:3]), duration=5.0, dt=DT)
    _assert_matches(got, ref, v_tol=0.0)
    _assert_matches(again, ref, v_tol=0.0)


def test_jax_deprecation_of_the_triton_backend_does_not_disable_the_kernel(as_if_gpu, monkeypatch):
    # JAX 0.11 warns at lowering; under -W error that became an exception, and the
    # dispatcher then left the whole process on the reference path.
    real = pallas._run

    def warns_then_runs(*a, **k):
        warnings.warn("The Pallas Triton backend is deprecated and will be removed",
                      DeprecationWarning, stacklevel=1)
        return real(*a, **k)

    monkeypatch.setattr(pallas, "_run", warns_then_runs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hhjax.simulate(NEURON, S.constant(AMPS[:3]), duration=5.0, dt=DT)
    assert backends._FAILED == []


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="checks the CPU behaviour")
def test_cpu_backend_never_calls_the_kernel(monkeypatch):
    monkeypatch.setattr(pallas, "_launch", lambda *a, **k: pytest.fail("kernel used"))
    tr = hhjax.simulate(NEURON, S.constant(AMPS[:3]), duration=5.0, dt=DT)
    assert tr.v.shape == (3, 201)
