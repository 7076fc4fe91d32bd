"""Pospischil et al. (2008) minimal cortical model: checked against an independent NumPy/SciPy
re-typing of the paper's equations, against the physiology it was built to reproduce
(spike-frequency adaptation from I_M), and for the JAX machinery (grad, vmap, batching)."""

from __future__ import annotations

import contextlib
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

import hhjax
from hhjax.models import model_by_name
from hhjax.models.pospischil import (
    PospischilParams,
    PospischilState,
    m_current_kinetics,
    pospischil_rates,
)
from hhjax.presets import get_preset

# ---------------------------------------------------------------------------------------------
# Independent reference: the paper's equations typed out plainly in NumPy (no hhjax code).
# ---------------------------------------------------------------------------------------------

# The paper's RS cell, in the paper's own units (S/cm², µm), converted here by hand.
RS_PAPER = dict(
    g_na=0.056e3, g_k=6e-3 * 1e3, g_m=7.5e-5 * 1e3, tau_max=608.0, v_t=-56.2,
    g_l=2.05e-5 * 1e3, e_na=50.0, e_k=-90.0, e_l=-70.3, c_m=1.0,
    area=math.pi * (61.4e-4) * (61.4e-4),  # cm², soma cylinder d = L = 61.4 µm
)


def _rates_np(v, p):
    u = v - p["v_t"]
    with np.errstate(all="ignore"):
        a_m = -0.32 * (u - 13.0) / (np.exp(-(u - 13.0) / 4.0) - 1.0)
        b_m = 0.28 * (u - 40.0) / (np.exp((u - 40.0) / 5.0) - 1.0)
        a_n = -0.032 * (u - 15.0) / (np.exp(-(u - 15.0) / 5.0) - 1.0)
    a_h = 0.128 * np.exp(-(u - 17.0) / 18.0)
    b_h = 4.0 / (1.0 + np.exp(-(u - 40.0) / 5.0))
    b_n = 0.5 * np.exp(-(u - 10.0) / 40.0)
    p_inf = 1.0 / (1.0 + np.exp(-(v + 35.0) / 10.0))
    tau_p = p["tau_max"] / (3.3 * np.exp((v + 35.0) / 20.0) + np.exp(-(v + 35.0) / 20.0))
    return a_m, b_m, a_h, b_h, a_n, b_n, p_inf, tau_p


def _rhs_np(t, y, p, i_pa):
    v, m, h, n, q = y
    a_m, b_m, a_h, b_h, a_n, b_n, p_inf, tau_p = _rates_np(v, p)
    i_ion = (
        p["g_na"] * m**3 * h * (v - p["e_na"])
        + p["g_k"] * n**4 * (v - p["e_k"])
        + p["g_m"] * q * (v - p["e_k"])
        + p["g_l"] * (v - p["e_l"])
    )
    i_density = i_pa * 1e-6 / p["area"]  # pA -> µA/cm²
    return [
        (i_density - i_ion) / p["c_m"],
        a_m * (1 - m) - b_m * m,
        a_h * (1 - h) - b_h * h,
        a_n * (1 - n) - b_n * n,
        (p_inf - q) / tau_p,
    ]


def _steady_np(v, p):
    a_m, b_m, a_h, b_h, a_n, b_n, p_inf, _ = _rates_np(v, p)
    return [v, a_m / (a_m + b_m), a_h / (a_h + b_h), a_n / (a_n + b_n), p_inf]


def _reference_spikes(p, amplitude, start, stop, duration, rtol=1e-8):
    """Radau solve under a pA step, piecewise across the step edges; exact 0 mV up-crossings."""
    y = _steady_np(p["e_l"], p)
    spikes = []

    def crossing(t, y, *args):
        return y[0]

    crossing.direction = 1.0
    for a, b in zip([0.0, start, stop], [start, stop, duration]):
        amp = amplitude if a == start else 0.0
        sol = solve_ivp(_rhs_np, (a, b), y, method="Radau", rtol=rtol, atol=1e-8,
                        args=(p, amp), events=crossing)
        assert sol.success, sol.message
        spikes.extend(sol.t_events[0].tolist())
        y = sol.y[:, -1]
    return np.array(spikes)


def _crossings(t, v, level=0.0):
    """Upward crossings of ``level``, linearly interpolated (NumPy, for hhjax traces)."""
    t, v = np.asarray(t, float), np.asarray(v, float)
    k = np.nonzero((v[:-1] < level) & (v[1:] >= level))[0]
    return t[k] + (level - v[k]) * (t[k + 1] - t[k]) / (v[k + 1] - v[k])


def _isis(trace):
    return np.diff(_crossings(trace.t, trace.v))


class _Row:
    """One neuron of a batched trace (t shared, v indexed)."""

    def __init__(self, trace, i):
        self.t = trace.t
        self.v = np.asarray(trace.v)[i]


@contextlib.contextmanager
def _float64():
    ctx = getattr(jax, "enable_x64", None)
    if ctx is None:
        ctx = getattr(getattr(jax, "experimental", None), "enable_x64", None)
    if ctx is not None:
        with ctx(True):
            yield
        return
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", old)


STEP = hhjax.stimulus.step(200.0, 20.0, 280.0)


@pytest.fixture(scope="module")
def reference_spikes():
    return _reference_spikes(RS_PAPER, 200.0, 20.0, 280.0, 300.0)


# ---------------------------------------------------------------------------------------------
# Registration and parameter values
# ---------------------------------------------------------------------------------------------


def test_registered_model_and_presets():
    rs = get_preset("pospischil")
    assert isinstance(rs, PospischilParams)
    assert hhjax.model_of(rs).name == "pospischil"
    assert model_by_name("pospischil").stimulus_units == "pA"
    for name, value in RS_PAPER.items():
        assert getattr(rs, name) == pytest.approx(value, rel=1e-12), name
    fs = get_preset("pospischil_fs")
    assert (fs.g_na, fs.g_k, fs.v_t, fs.tau_max) == (58.0, 3.9, -57.9, 502.0)
    assert fs.area == pytest.approx(math.pi * 56.9e-4**2)
    assert hhjax.model_of(rs).gates == ("m", "h", "n", "p")


def test_resting_potential_matches_numpy_root():
    """With no input each cell settles at the root of the NumPy steady-state I-V curve
    (-71.9 mV RS, -71.4 mV FS, the resting potentials quoted for these fits)."""
    fs_paper = dict(RS_PAPER, g_na=58.0, g_k=3.9, g_m=0.0787, tau_max=502.0, v_t=-57.9,
                    g_l=0.038, e_l=-70.4, area=math.pi * 56.9e-4**2)
    for name, p, quoted in (("pospischil", RS_PAPER, -71.9), ("pospischil_fs", fs_paper, -71.4)):
        def net(v):
            return _rhs_np(0.0, _steady_np(v, p), p, 0.0)[0]

        v_rest = brentq(net, -80.0, -65.0, xtol=1e-10)
        assert v_rest == pytest.approx(quoted, abs=0.05)
        # exp_euler's fixed point is the exact one, so a coarse step settles on the true rest.
        tr = hhjax.simulate(get_preset(name), 0.0, duration=1500.0, dt=0.5, record_every=3000)
        assert float(tr.v[-1]) == pytest.approx(v_rest, abs=2e-3)


# ---------------------------------------------------------------------------------------------
# (1) Spike times against the Radau reference
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method,tol", [("rk4", 0.05), ("exp_euler", 0.5)])
def test_spike_times_match_radau_reference(reference_spikes, method, tol):
    assert 5 <= len(reference_spikes) <= 40
    tr = hhjax.simulate(get_preset("pospischil"), STEP, duration=300.0, dt=0.025, method=method)
    got = _crossings(tr.t, tr.v)
    assert len(got) == len(reference_spikes)
    assert int(tr.spike_count) == len(reference_spikes)
    np.testing.assert_allclose(got, reference_spikes, atol=tol, rtol=0)


# ---------------------------------------------------------------------------------------------
# (2) Spike-frequency adaptation comes from I_M
# ---------------------------------------------------------------------------------------------


def test_rs_cell_adapts_and_im_is_the_cause():
    rs = get_preset("pospischil")
    stim = hhjax.stimulus.step(200.0, 50.0, 650.0)
    batch = dataclasses.replace(rs, g_m=jnp.array([rs.g_m, 0.0]))
    tr = hhjax.simulate(batch, stim, duration=700.0, dt=0.025)
    with_m, without_m = _isis(_Row(tr, 0)), _isis(_Row(tr, 1))
    # With I_M the interspike intervals lengthen steadily over the 600 ms step ...
    assert len(with_m) >= 5
    assert with_m[-1] > 1.5 * with_m[0]
    assert np.all(np.diff(with_m[:4]) > 0)
    # ... and without it the cell fires faster and almost regularly.
    assert len(without_m) > len(with_m)
    assert without_m[-1] < 1.1 * without_m[0]
    adapt_with = with_m[-1] / with_m[0] - 1.0
    adapt_without = without_m[-1] / without_m[0] - 1.0
    assert adapt_without < 0.2 * adapt_with


# ---------------------------------------------------------------------------------------------
# (3) pA stimulus mapped through the membrane area
# ---------------------------------------------------------------------------------------------


def test_area_scaling_preserves_trace():
    rs = get_preset("pospischil")
    a = hhjax.simulate(rs, hhjax.stimulus.step(150.0, 10.0, 90.0), duration=100.0, dt=0.025)
    big = dataclasses.replace(rs, area=2.0 * rs.area)
    b = hhjax.simulate(big, hhjax.stimulus.step(300.0, 10.0, 90.0), duration=100.0, dt=0.025)
    assert int(a.spike_count) >= 1
    np.testing.assert_allclose(np.asarray(b.v), np.asarray(a.v), atol=1e-3)
    # and the same pA on twice the area is a weaker density: fewer (or no later) spikes
    c = hhjax.simulate(big, hhjax.stimulus.step(150.0, 10.0, 90.0), duration=100.0, dt=0.025)
    assert int(c.spike_count) < int(a.spike_count)


def test_stimulus_scale_is_pa_to_density():
    rs = get_preset("pospischil")
    model = hhjax.model_of(rs)
    # 200 pA on 1.1844e-4 cm² = 1.6887 µA/cm²
    assert float(model.stimulus_scale(rs)) * 200.0 == pytest.approx(200e-6 / RS_PAPER["area"])


# ---------------------------------------------------------------------------------------------
# (4) Rate functions at their removable singularities
# ---------------------------------------------------------------------------------------------


# (index into pospischil_rates, offset from VT of the 0/0 point, limit value, d rate / dV there)
SINGULAR = [
    (0, 13.0, 0.32 * 4.0, 0.32 * 4.0 / 8.0),     # alpha_m: k/exprel((13-u)/4)
    (1, 40.0, 0.28 * 5.0, -0.28 * 5.0 / 10.0),   # beta_m
    (4, 15.0, 0.032 * 5.0, 0.032 * 5.0 / 10.0),  # alpha_n
]


@jax.jit
def _rates_and_slopes(v, v_t):
    """All six Na/Kd rates, their d/dV and d/dVT, and every gate's (x_inf, rate) with d/dV."""
    p = dataclasses.replace(get_preset("pospischil"), v_t=v_t)

    def rates(v, v_t):
        return jnp.stack(pospischil_rates(dataclasses.replace(p, v_t=v_t), v))

    def kinetics(v):
        return jnp.stack([jnp.stack(xr) for xr in hhjax.model_of(p).kinetics(p, v).values()])

    return (rates(v, v_t), jax.jacfwd(rates, 0)(v, v_t), jax.jacfwd(rates, 1)(v, v_t),
            kinetics(v), jax.jacfwd(kinetics)(v))


def test_rates_finite_with_gradients_at_singular_points():
    v_t = get_preset("pospischil").v_t
    for index, offset, limit, slope in SINGULAR:
        v0 = v_t + offset
        val, dv, dvt, kin, dkin = _rates_and_slopes(jnp.float32(v0), jnp.float32(v_t))
        for x in (val, dv, dvt, kin, dkin):
            assert np.all(np.isfinite(np.asarray(x))), index
        assert float(val[index]) == pytest.approx(limit, rel=1e-6)
        assert float(dv[index]) == pytest.approx(slope, rel=1e-4)
        assert float(dvt[index]) == pytest.approx(-slope, rel=1e-4)
        # continuous with the plain NumPy formula just beside the singular point
        for eps in (-0.5, -0.05, 0.05, 0.5):
            ref = _rates_np(np.float64(v0 + eps), RS_PAPER)[index]
            got = _rates_and_slopes(jnp.float32(v0 + eps), jnp.float32(v_t))[0][index]
            assert float(got) == pytest.approx(ref, rel=2e-6)


def test_all_rates_match_numpy_over_voltage_range():
    p = get_preset("pospischil")
    v = np.linspace(-100.0, 60.0, 321)
    ref = _rates_np(v, RS_PAPER)

    @jax.jit
    def all_rates(v):
        p_inf, rate_p = m_current_kinetics(p, v)
        return (*pospischil_rates(p, v), p_inf, 1.0 / rate_p)

    for g, r in zip(all_rates(jnp.asarray(v, jnp.float32)), ref):
        np.testing.assert_allclose(np.asarray(g), r, rtol=2e-5, atol=1e-30)


# ---------------------------------------------------------------------------------------------
# (5) Gradients against float64 central differences
# ---------------------------------------------------------------------------------------------


def test_grad_matches_float64_central_differences():
    """d mean(V) / d(g_m, v_t, area) by reverse mode vs central differences, in float64.

    Below threshold the loss is smooth on any scale. With spikes it is smooth but sharply
    curved (spike timing), so the difference step must be small: 1e-6 relative, where the
    truncation error is ~1e-5 and float64 round-off still negligible.
    """
    with _float64():
        base = get_preset("pospischil")

        def loss(x, amplitude):
            p = dataclasses.replace(base, g_m=x[0], v_t=x[1], area=x[2])
            tr = hhjax.simulate(p, hhjax.stimulus.step(amplitude, 10.0, 50.0),
                                duration=60.0, dt=0.025)
            return jnp.mean(tr.v), tr.spike_count

        value_and_grad = jax.jit(jax.value_and_grad(loss, has_aux=True))
        value = jax.jit(lambda x, a: loss(x, a)[0])
        x0 = jnp.array([base.g_m, base.v_t, base.area], dtype=jnp.float64)
        for amplitude, n_spikes in ((40.0, 0), (200.0, 2)):
            (v0, spikes), grads = value_and_grad(x0, amplitude)
            assert v0.dtype == jnp.float64 and int(spikes) == n_spikes
            assert np.all(np.isfinite(np.asarray(grads)))
            for i in range(3):
                h = 1e-6 * abs(float(x0[i]))
                e = jnp.zeros(3, jnp.float64).at[i].set(h)
                fd = (float(value(x0 + e, amplitude)) - float(value(x0 - e, amplitude))) / (2 * h)
                assert abs(fd) > 0
                assert float(grads[i]) == pytest.approx(fd, rel=1e-4), (amplitude, i)


# ---------------------------------------------------------------------------------------------
# (6) simulate, vmap and batch broadcasting
# ---------------------------------------------------------------------------------------------


def test_vmap_and_batch_broadcasting_agree():
    rs = get_preset("pospischil")
    g_ms = jnp.array([0.0, 0.075, 0.3])
    stim = hhjax.stimulus.step(200.0, 10.0, 190.0)
    # a full state as y0 (shape () leaves, broadcast against the batch of g_m)
    y0 = PospischilState(v=-71.9, m=0.0, h=1.0, n=0.0, p=0.0)
    kw = dict(duration=200.0, dt=0.025, y0=y0)

    batch = hhjax.simulate(dataclasses.replace(rs, g_m=g_ms), stim, **kw)
    assert batch.v.shape == (3, 8001) and batch.p.shape == (3, 8001)
    assert batch.spike_count.shape == (3,)
    assert float(batch.v[1, 0]) == pytest.approx(-71.9) and float(batch.h[1, 0]) == 1.0

    @jax.jit
    def one(g_m):
        return hhjax.simulate(dataclasses.replace(rs, g_m=g_m), stim, **kw).v

    mapped = np.asarray(jax.vmap(one)(g_ms))
    # float32 rounding differs between the two programs; on a spike's upstroke (~100 mV/ms)
    # that shows as mV, so compare spike times tightly and voltages loosely.
    for got, want in zip(mapped, np.asarray(batch.v)):
        np.testing.assert_allclose(_crossings(batch.t, got), _crossings(batch.t, want), atol=1e-3)
        np.testing.assert_allclose(got, want, atol=0.5)
    # more M conductance, fewer spikes
    counts = np.asarray(batch.spike_count)
    assert counts[0] >= counts[1] >= counts[2] and counts[0] > counts[2]
    assert not np.any(np.asarray(batch.diverged))


def test_direct_estimate_recovers_every_channel_conductance():
    """The direct estimate solves for g_na, g_k (delayed rectifier) and g_m (M current):
    each channel ``x`` must map to its parameter ``g_x``. From a noiseless spiking trace
    and a start 30-50 % off, the estimate lands within the float32 / dt discretisation
    error (a few per cent) of the truth."""
    from hhjax.fitting.direct import direct_estimate, estimable

    p = get_preset("pospischil")
    names = ("g_na", "g_k", "g_m", "g_l", "e_l", "area")
    assert estimable(p, names) == names
    stim = hhjax.stimulus.step(300.0, 20.0, 480.0)
    v = hhjax.simulate(p, stim, duration=500.0, dt=0.025).v
    guess = dataclasses.replace(p, g_na=p.g_na * 1.3, g_k=p.g_k * 0.7, g_m=p.g_m * 1.5)
    est = direct_estimate(v, stim, guess, dt=0.025, trainable=("g_na", "g_k", "g_m"))
    for n in ("g_na", "g_k", "g_m"):
        assert float(getattr(est.params, n)) == pytest.approx(float(getattr(p, n)), rel=0.04), n
