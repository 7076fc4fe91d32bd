"""Core simulator: accuracy vs an independent Radau reference, convergence, broadcasting,
vmap/jit, recording options, input validation and divergence reporting."""

from __future__ import annotations

import dataclasses
import importlib
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax.simulation.trace import DIVERGENCE_BOUND
from hhjax import stimulus as S
from hhjax.analysis import spike_times
from hhjax.presets import NEURON

sim_module = importlib.import_module("hhjax.simulation.scan")

DTS = (0.05, 0.025, 0.0125)
STEP = dict(amplitude=10.0, start=10.0, stop=90.0)
DURATION = 100.0


def _spikes(trace):
    sp = spike_times(trace.t, trace.v, threshold=0.0)
    n = int(sp.count)
    times = np.asarray(sp.times, dtype=np.float64)
    assert np.all(np.isinf(times[n:]))
    return times[:n]


def dense_v(sols, t):
    """The Radau reference's V at times ``t`` from its dense output."""
    t = np.asarray(t, np.float64)
    out = np.full(t.shape, np.nan)
    for sol in sols:
        sel = (t >= sol.t[0]) & (t <= sol.t[-1])
        out[sel] = sol.sol(t[sel])[0]
    assert np.all(np.isfinite(out))
    return out


def _run_step(method, dt):
    stim = S.step(STEP["amplitude"], STEP["start"], STEP["stop"])
    return hhjax.simulate(NEURON, stim, duration=DURATION, dt=dt, method=method)


@pytest.fixture(scope="module")
def f32_spikes():
    """float32 spike times of the convergence study (rk4 only at dt = 0.025 ms: in float32
    it sits near its rounding floor, so its convergence is studied in float64 below)."""
    out = {}
    for method in hhjax.METHODS:
        for dt in DTS if method != "rk4" else (0.025,):
            tr = _run_step(method, dt)
            assert tr.v.dtype == jnp.float32
            assert not bool(tr.diverged)
            out[method, dt] = _spikes(tr)
    return out


@pytest.fixture(scope="module")
def rk4_f64(radau_step):
    """float64 rk4: spike times and max |V - V_radau| at the grid points, per dt."""
    sols, _ = radau_step
    spikes, v_err = {}, {}
    with jax.enable_x64(True):
        for dt in DTS:
            tr = _run_step("rk4", dt)
            assert tr.v.dtype == jnp.float64
            spikes[dt] = _spikes(tr)
            v_err[dt] = float(np.max(np.abs(np.asarray(tr.v) - dense_v(sols, tr.t))))
    return spikes, v_err


# ---------------------------------------------------------------------------------------
# 1. Accuracy against the independent Radau reference (float32, dt = 0.025 ms)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, tol", [("rk4", 0.005), ("exp_euler", 0.05)])
def test_spike_times_match_radau(f32_spikes, radau_step_spikes, method, tol):
    got = f32_spikes[method, 0.025]
    assert len(got) == len(radau_step_spikes)
    np.testing.assert_allclose(got, radau_step_spikes, rtol=0, atol=tol)


def test_spike_count_field_matches_spike_times(radau_step_spikes):
    tr = _run_step("exp_euler", 0.025)
    assert int(tr.spike_count) == len(radau_step_spikes)
    assert tr.t.shape == (int(round(DURATION / 0.025)) + 1,)
    assert float(tr.t[0]) == 0.0
    assert float(tr.t[-1]) == pytest.approx(DURATION)


# ---------------------------------------------------------------------------------------
# 4. Convergence as dt shrinks
# ---------------------------------------------------------------------------------------


def _errors(spikes_by_dt, ref):
    errs = []
    for dt in DTS:
        got = spikes_by_dt[dt]
        assert len(got) == len(ref), (dt, got, ref)
        errs.append(float(np.max(np.abs(got - ref))))
    return errs


@pytest.mark.parametrize("method", ["euler", "exp_euler", "neuron"])
def test_low_order_methods_converge_monotonically(f32_spikes, radau_step_spikes, method):
    errs = _errors({dt: f32_spikes[method, dt] for dt in DTS}, radau_step_spikes)
    assert errs[0] > errs[1] > errs[2], errs
    # At least first order: halving dt at least (nearly) halves the error.
    assert errs[0] / errs[1] > 1.7 and errs[1] / errs[2] > 1.7, errs


def test_rk4_converges_float64(rk4_f64, radau_step_spikes):
    spikes, v_err = rk4_f64
    errs = _errors(spikes, radau_step_spikes)
    assert errs[0] > errs[1] > errs[2], errs
    # Spike times come from linear interpolation between samples, an O(dt^2) error that
    # dominates rk4's O(dt^4) one: expect ~4x per halving here ...
    assert errs[0] / errs[1] > 3 and errs[1] / errs[2] > 3, errs
    assert errs[1] < 2e-4
    # ... while the trajectory itself at the grid points shows the fourth order (~16x).
    v = [v_err[dt] for dt in DTS]
    assert v[0] > v[1] > v[2], v
    assert v[0] / v[1] > 10 and v[1] / v[2] > 10, v


def test_methods_approach_each_other(f32_spikes, rk4_f64):
    def spread(dt):
        arr = np.stack([f32_spikes[m, dt] for m in hhjax.METHODS if m != "rk4"]
                       + [rk4_f64[0][dt]])
        return float(np.max(arr.max(axis=0) - arr.min(axis=0)))

    spreads = [spread(dt) for dt in DTS]
    assert spreads[0] > spreads[1] > spreads[2], spreads


def test_exp_euler_exact_for_passive_membrane_float64():
    """With g_na = g_k = 0 the conductance is constant, so the exponential Euler V update is
    the exact solution at the grid points (including when dt*G/C is tiny)."""
    t_end, dt, i_amp = 100.0, 0.025, 1.0
    with jax.enable_x64(True):
        for g_l in (1e-3, 0.3):  # dt*G/C = 2.5e-5 (series branch) and 7.5e-3 (direct)
            p = dataclasses.replace(NEURON, g_na=0.0, g_k=0.0, g_l=g_l, e_l=-65.0)
            tr = hhjax.simulate(p, i_amp, duration=t_end, dt=dt, method="exp_euler", y0=-65.0)
            t = np.arange(int(round(t_end / dt)) + 1) * dt
            exact = -65.0 + i_amp / g_l * -np.expm1(-g_l * t / p.c_m)
            np.testing.assert_allclose(np.asarray(tr.v), exact, rtol=1e-12, atol=1e-11)


# ---------------------------------------------------------------------------------------
# 7. Broadcasting and vmap equal per-neuron loops; 8. jit equals eager
# ---------------------------------------------------------------------------------------

SHORT = dict(duration=20.0, dt=0.025)


def test_broadcast_params_and_stimulus_equal_loop():
    g_na = np.array([90.0, 105.0, 120.0, 135.0], np.float32)
    amps = np.array([[0.0], [5.0], [12.0]], np.float32)
    p = dataclasses.replace(NEURON, g_na=jnp.asarray(g_na))
    tr = hhjax.simulate(p, S.step(jnp.asarray(amps), 2.0, 18.0), **SHORT)
    assert tr.v.shape == (3, 4, int(20.0 / 0.025) + 1)
    assert tr.m.shape == tr.v.shape and tr.spike_count.shape == (3, 4)
    assert tr.t.shape == (tr.v.shape[-1],)
    for i in range(3):
        for j in range(4):
            one = hhjax.simulate(dataclasses.replace(NEURON, g_na=float(g_na[j])),
                                 S.step(float(amps[i, 0]), 2.0, 18.0), **SHORT)
            for name in ("v", "m", "h", "n"):
                np.testing.assert_allclose(np.asarray(getattr(tr, name))[i, j],
                                           np.asarray(getattr(one, name)), rtol=1e-4, atol=1e-3)
            assert int(tr.spike_count[i, j]) == int(one.spike_count)
    # The batch is not degenerate: the amplitudes give different spike counts.
    assert len(set(np.asarray(tr.spike_count).ravel().tolist())) > 1


@pytest.fixture
def reference_path(monkeypatch):
    """Eager constant-current calls take a fused kernel (Pallas on a GPU, C++ on a CPU) and
    traced ones the reference path (they agree to ~0.05 mV, tests/test_pallas.py,
    tests/test_cpu_kernel.py); these tests compare a transformation of one path with itself."""
    monkeypatch.setenv("HHJAX_PALLAS", "0")
    monkeypatch.setenv("HHJAX_CPU_KERNEL", "0")


def test_vmap_over_stacked_params_equals_loop(reference_path):
    plist = [dataclasses.replace(NEURON, g_na=g, g_k=k, c_m=c)
             for g, k, c in ((100.0, 30.0, 1.0), (120.0, 36.0, 0.9), (140.0, 40.0, 1.2))]
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack([jnp.float32(x) for x in xs]), *plist)
    vs = jax.vmap(lambda p: hhjax.simulate(p, 10.0, **SHORT).v)(stacked)
    assert vs.shape == (3, int(20.0 / 0.025) + 1)
    for k, p in enumerate(plist):
        one = hhjax.simulate(p, 10.0, **SHORT).v
        np.testing.assert_allclose(np.asarray(vs[k]), np.asarray(one), rtol=1e-4, atol=1e-3)
    assert not np.allclose(np.asarray(vs[0]), np.asarray(vs[2]), atol=1.0)


def test_jit_equals_eager(reference_path):
    f = jax.jit(lambda p: hhjax.simulate(p, 10.0, **SHORT).v)
    eager = hhjax.simulate(NEURON, 10.0, **SHORT).v
    p2 = dataclasses.replace(NEURON, g_k=30.0)
    np.testing.assert_allclose(np.asarray(f(NEURON)), np.asarray(eager), rtol=1e-5, atol=1e-4)
    # the jitted function takes params as data: a second parameter set gives its own answer
    np.testing.assert_allclose(np.asarray(f(p2)), np.asarray(hhjax.simulate(p2, 10.0, **SHORT).v),
                               rtol=1e-5, atol=1e-4)
    assert np.max(np.abs(np.asarray(eager) - np.asarray(f(p2)))) > 1.0
    assert np.max(np.asarray(eager)) > 0.0  # it spiked


# ---------------------------------------------------------------------------------------
# 9. record_every and checkpoint_every (values; gradients are in test_gradients.py)
# ---------------------------------------------------------------------------------------


def test_record_every_equals_subsampled_full_trace():
    stim = S.step(10.0, 2.0, 18.0)
    full = hhjax.simulate(NEURON, stim, **SHORT)
    for k in (4, 10):
        sub = hhjax.simulate(NEURON, stim, record_every=k, **SHORT)
        assert sub.v.shape == (int(20.0 / 0.025) // k + 1,)
        np.testing.assert_allclose(np.asarray(sub.t), np.asarray(full.t)[::k], rtol=1e-6, atol=1e-6)
        for name in ("v", "m", "h", "n"):
            np.testing.assert_allclose(np.asarray(getattr(sub, name)),
                                       np.asarray(getattr(full, name))[::k], rtol=1e-6, atol=1e-5)
        # spikes are counted at every step, not only at recorded samples
        assert int(sub.spike_count) == int(full.spike_count) >= 1


def test_checkpoint_every_gives_identical_values(reference_path):
    stim = S.step(10.0, 2.0, 18.0)
    full = hhjax.simulate(NEURON, stim, **SHORT)
    ck = hhjax.simulate(NEURON, stim, checkpoint_every=100, **SHORT)
    for name in ("t", "v", "m", "h", "n"):
        np.testing.assert_array_equal(np.asarray(getattr(ck, name)), np.asarray(getattr(full, name)))
    assert int(ck.spike_count) == int(full.spike_count)


# ---------------------------------------------------------------------------------------
# 10. Bad input is rejected before compilation, naming the argument
# ---------------------------------------------------------------------------------------


@pytest.fixture
def no_compile(monkeypatch):
    """Fail the test if validation lets a bad call reach the compiled kernel."""
    monkeypatch.setenv("HHJAX_PALLAS", "0")  # on a GPU, compute would otherwise bypass _run
    monkeypatch.setenv("HHJAX_CPU_KERNEL", "0")  # and on a CPU the fused C++ kernel would

    def boom(*args, **kwargs):
        raise AssertionError("_run reached: validation should have raised first")

    monkeypatch.setattr(sim_module, "_run", boom)


def test_no_compile_fixture_is_effective(no_compile):
    # a valid call does reach the kernel, so the checks below really run before it
    with pytest.raises(AssertionError, match="_run reached"):
        hhjax.simulate(NEURON, 10.0, duration=10.0, dt=0.025)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(dt=0.0), ValueError, r"^dt"),
        (dict(dt=-0.025), ValueError, r"^dt"),
        (dict(dt=math.nan), ValueError, r"^dt"),
        (dict(dt=math.inf), ValueError, r"^dt"),
        (dict(dt="0.025x"), TypeError, r"^dt"),
        (dict(duration=0.0), ValueError, r"^duration"),
        (dict(duration=-5.0), ValueError, r"^duration"),
        (dict(duration=math.nan), ValueError, r"^duration"),
        (dict(dt=0.3), ValueError, r"^dt.*divide"),
        (dict(method="rk5"), ValueError, r"^method.*rk5"),
        (dict(record_every=0), ValueError, r"^record_every"),
        (dict(record_every=3), ValueError, r"^record_every"),  # 400 steps
        (dict(checkpoint_every=7), ValueError, r"^checkpoint_every"),
    ],
)
def test_bad_time_and_method_arguments(no_compile, kwargs, exc, match):
    args = dict(duration=10.0, dt=0.025)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        hhjax.simulate(NEURON, 10.0, **args)


def test_shapes_that_do_not_broadcast(no_compile):
    p = dataclasses.replace(NEURON, g_na=jnp.ones(3) * 120.0)
    with pytest.raises(ValueError, match=r"shape.*g_na.*\(3,\).*stimulus.*\(4,\)"):
        hhjax.simulate(p, S.step(jnp.ones(4), 1.0, 5.0), duration=10.0, dt=0.025)


@pytest.mark.parametrize("field, value", [("g_na", math.nan), ("g_k", math.inf), ("e_l", -math.inf)])
def test_non_finite_params(no_compile, field, value):
    p = dataclasses.replace(NEURON, **{field: value})
    with pytest.raises(ValueError, match=rf"^params.*{field}.*(NaN|inf)"):
        hhjax.simulate(p, 10.0, duration=10.0, dt=0.025)


@pytest.mark.parametrize("params, y0, match", [
    (dict(c_m=0.0), None, r"^params.c_m: must be > 0"),
    (dict(c_m=jnp.array([1.0, -1.0])), None, r"^params.c_m: must be > 0"),
    (dict(g_na=-120.0), None, r"^params.g_na: must be >= 0"),
    ({}, hhjax.HHState(v=-60.0, m=2.0, h=0.5, n=0.3), r"^y0.m: must be in \[0, 1\]"),
])
def test_unphysical_values_are_rejected(no_compile, params, y0, match):
    # They used to run: c_m = 0 gave NaN blamed on dt, negative g_na ran silently.
    with pytest.raises(ValueError, match=match):
        hhjax.simulate(dataclasses.replace(NEURON, **params), 10.0, duration=10.0, dt=0.025, y0=y0)


def test_unphysical_check_lets_traced_values_through():
    # Under grad the values are unknown; the check must not get in the way.
    grad = jax.grad(lambda c: hhjax.simulate(dataclasses.replace(NEURON, c_m=c), 10.0, duration=2.0,
                                             dt=0.025).v[-1])(1.0)
    assert np.isfinite(float(grad))


@pytest.mark.parametrize(
    "stim",
    [S.Step(math.nan, 1.0, 5.0), S.Sine(1.0, math.nan, 0.0, 0.0, 0.0, math.inf), math.nan,
     np.array([0.0, np.nan] * 200)],
)
def test_nan_in_stimulus(no_compile, stim):
    with pytest.raises(ValueError, match=r"^stimulus"):
        hhjax.simulate(NEURON, stim, duration=10.0, dt=0.025)


@pytest.mark.parametrize("where, bad, match", [
    ("stimulus", math.nan, r"^stimulus.amplitude: contains NaN"),
    ("stimulus", math.inf, r"^stimulus.amplitude: contains inf"),
    ("g_na", -1.0, r"^params.g_na: must be >= 0"),
])
def test_large_device_arrays_are_checked_on_the_device(monkeypatch, where, bad, match):
    # On a GPU, batches of >= 65536 values are checked by a jitted reduction instead of
    # NumPy; here on CPU, make every large array take that branch.
    from hhjax import _validate
    monkeypatch.setattr(_validate, "on_device",
                        lambda leaf: isinstance(leaf, jax.Array) and leaf.size >= 1 << 16)
    good = jnp.full(1 << 16, 10.0)
    hhjax.simulate(dataclasses.replace(NEURON, g_na=good * 12), S.constant(good), duration=0.05,
                   dt=0.025)  # valid: passes
    amps, g_na = good, good * 12
    if where == "stimulus":
        amps = amps.at[123].set(bad)
    else:
        g_na = g_na.at[123].set(bad)
    with pytest.raises(ValueError, match=match):
        hhjax.simulate(dataclasses.replace(NEURON, g_na=g_na), S.constant(amps), duration=0.05,
                       dt=0.025)


def test_sampled_stimulus_of_wrong_length(no_compile):
    with pytest.raises(ValueError, match=r"^stimulus.*399"):
        hhjax.simulate(NEURON, np.zeros(399), duration=10.0, dt=0.025)


def test_unknown_params_type_and_preset(no_compile):
    with pytest.raises(TypeError, match=r"^params"):
        hhjax.simulate({"g_na": 120.0}, 10.0, duration=10.0, dt=0.025)
    with pytest.raises(ValueError, match=r"preset.*no_such_cell"):
        hhjax.presets.get_preset("no_such_cell")
    assert hhjax.presets.get_preset("NEURON") is NEURON
    assert hhjax.presets.get_preset("Dayan-Abbott") is hhjax.presets.DAYAN_ABBOTT


def test_forward_euler_blowup_is_flagged_and_warned():
    with pytest.warns(RuntimeWarning, match="diverged"):
        tr = hhjax.simulate(NEURON, 10.0, duration=50.0, dt=0.5, method="euler")
    assert bool(tr.diverged)
    v = np.asarray(tr.v)
    assert not np.all(np.isfinite(v)) or np.max(np.abs(v)) > DIVERGENCE_BOUND


def test_stable_run_is_not_flagged():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr = hhjax.simulate(NEURON, 10.0, duration=50.0, dt=0.5, method="exp_euler")
    assert not bool(tr.diverged)
    assert np.all(np.isfinite(np.asarray(tr.v)))


def test_batched_divergence_flags_only_the_bad_neuron():
    c_m = jnp.array([1.0, 0.02])  # tiny capacitance makes forward Euler at dt=0.025 blow up
    with pytest.warns(RuntimeWarning, match="1 neuron"):
        tr = hhjax.simulate(dataclasses.replace(NEURON, c_m=c_m), 10.0, duration=10.0,
                            dt=0.025, method="euler")
    assert np.asarray(tr.diverged).tolist() == [False, True]
    assert np.all(np.isfinite(np.asarray(tr.v)[0]))
