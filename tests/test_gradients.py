"""Gradients: float64 reverse mode vs central finite differences, finite and correct
derivatives at the rate functions' removable singularities, and checkpointing."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax import stimulus as S
from hhjax.models import hh_rates
from hhjax.presets import NEURON

# One loss structure for every simulation-gradient test, so that compiled gradients are
# shared between them (duration, dt, method and stimulus type are static).
DURATION, DT = 25.0, 0.025
STIM = S.step(10.0, 2.0, 24.0)  # spikes twice inside the window
PARAM_NAMES = ("g_na", "g_k", "g_l", "e_na", "e_k", "e_l", "c_m")


def loss(params, stim, method="exp_euler", y0=-65.0, checkpoint_every=None):
    """Mean membrane potential over the run: smooth in every parameter."""
    tr = hhjax.simulate(params, stim, duration=DURATION, dt=DT, method=method, y0=y0,
                        checkpoint_every=checkpoint_every)
    return jnp.mean(tr.v)


# ---------------------------------------------------------------------------------------
# 5. float64 gradients vs central finite differences
# ---------------------------------------------------------------------------------------


def grad_all(*args):
    """d(loss)/d(params, stimulus); always w.r.t. both so the compiled gradient is shared."""
    return jax.grad(loss, argnums=(0, 1))(*args)


@pytest.fixture(scope="module")
def f64_grads():
    with jax.enable_x64(True):
        out = {m: grad_all(NEURON, STIM, m) for m in ("exp_euler", "rk4")}
    for g_params, g_stim in out.values():
        assert isinstance(g_params, hhjax.HHParams) and isinstance(g_stim, S.Step)
        assert g_params.g_na.dtype == jnp.float64
    return out


@pytest.mark.parametrize("method", ["exp_euler", "rk4"])
def test_float64_gradients_match_finite_differences(x64, f64_grads, method):
    g_params, g_stim = f64_grads[method]

    def f(params=NEURON, stim=STIM):
        return float(loss(params, stim, method))

    # the run spikes: gradients through spikes, not just a passive membrane
    assert int(hhjax.simulate(NEURON, STIM, duration=DURATION, dt=DT, method=method).spike_count) == 2

    checked = {}
    for name in PARAM_NAMES + ("amplitude",):
        if name == "amplitude":
            x, grad = STIM.amplitude, float(g_stim.amplitude)

            def at(val):
                return f(stim=dataclasses.replace(STIM, amplitude=val))
        else:
            x, grad = getattr(NEURON, name), float(getattr(g_params, name))

            def at(val, name=name):
                return f(params=dataclasses.replace(NEURON, **{name: val}))

        h = 1e-5 * abs(x)
        fd = (at(x + h) - at(x - h)) / (2 * h)
        assert math.isfinite(grad)
        assert abs(fd) > 1e-3  # a real sensitivity, not 0 == 0
        rel = abs(grad - fd) / abs(fd)
        checked[name] = rel
        assert rel < 1e-5, (name, grad, fd, rel)
    assert len(checked) == len(PARAM_NAMES) + 1


def test_methods_agree_on_gradients(f64_grads):
    """Both integrators approximate the same ODE sensitivities (to within their own error)."""
    (ge, se), (gr, sr) = f64_grads["exp_euler"], f64_grads["rk4"]
    for name in PARAM_NAMES:
        a, b = float(getattr(ge, name)), float(getattr(gr, name))
        assert abs(a - b) <= 1e-2 * abs(b) + 1e-6, (name, a, b)
    assert float(se.amplitude) == pytest.approx(float(sr.amplitude), rel=1e-2)


# ---------------------------------------------------------------------------------------
# 6. Rates at the removable singularities V = -40 (alpha_m) and -55 mV (alpha_n)
# ---------------------------------------------------------------------------------------


def _bernoulli(z):
    """B(z) = z / (exp(z) - 1) and B'(z), float64, series near 0 (derived by hand:
    B = 1 - z/2 + z^2/12 - z^4/720 + z^6/30240, B' = -1/2 + z/6 - z^3/180 + z^5/5040)."""
    z = float(z)
    if abs(z) < 1e-2:
        b = 1 - z / 2 + z**2 / 12 - z**4 / 720 + z**6 / 30240
        db = -0.5 + z / 6 - z**3 / 180 + z**5 / 5040
    else:
        em1 = math.expm1(z)
        b = z / em1
        db = (em1 - z * math.exp(z)) / em1**2
    return b, db


def rates_and_slopes(v):
    """(value, d/dV) of the six hh.mod rates at v (mV, -65 mV convention, 6.3 °C)."""
    u = float(v) + 65.0
    b_m, db_m = _bernoulli((25.0 - u) / 10.0)  # alpha_m = 0.1(25-u)/(exp((25-u)/10)-1) = B
    b_n, db_n = _bernoulli((10.0 - u) / 10.0)  # alpha_n = 0.01(10-u)/(...) = 0.1 B
    e_h = math.exp((30.0 - u) / 10.0)
    return [
        (b_m, -0.1 * db_m),
        (4.0 * math.exp(-u / 18.0), -4.0 / 18.0 * math.exp(-u / 18.0)),
        (0.07 * math.exp(-u / 20.0), -0.07 / 20.0 * math.exp(-u / 20.0)),
        (1.0 / (e_h + 1.0), e_h / (10.0 * (e_h + 1.0) ** 2)),
        (0.1 * b_n, -0.01 * db_n),
        (0.125 * math.exp(-u / 80.0), -0.125 / 80.0 * math.exp(-u / 80.0)),
    ]


SINGULAR_VS = [c + d for c in (-40.0, -55.0) for d in (0.0, 1e-4, -1e-4, 1e-3, -1e-3)]
# fine grids across both series/direct switch-overs, plus ordinary voltages
GRID_VS = np.concatenate([np.linspace(-41.0, -39.0, 161), np.linspace(-56.0, -54.0, 161),
                          [-80.0, -65.0, -20.0, 0.0, 30.0]]).tolist()
RATE_NAMES = ("alpha_m", "beta_m", "alpha_h", "beta_h", "alpha_n", "beta_n")


def test_reference_rates_at_singular_points_by_hand():
    # alpha_m(-40) = lim z/(e^z - 1) = 1 /ms, slope -B'(0)/10 = +0.05 /ms/mV;
    # alpha_n(-55) = 0.1 /ms, slope +0.005 /ms/mV. Cross-check the helper itself.
    am, dam = rates_and_slopes(-40.0)[0]
    an, dan = rates_and_slopes(-55.0)[4]
    assert (am, dam, an, dan) == (1.0, 0.05, 0.1, 0.005)
    # and against plain central differences of the textbook formula away from the point
    for v in (-40.3, -55.7, -62.0):
        for k, formula in ((0, lambda u: 0.1 * (25 - u) / (math.exp((25 - u) / 10) - 1)),
                           (4, lambda u: 0.01 * (10 - u) / (math.exp((10 - u) / 10) - 1))):
            u, h = v + 65.0, 1e-5
            fd = (formula(u + h) - formula(u - h)) / (2 * h)
            assert rates_and_slopes(v)[k][0] == pytest.approx(formula(u), rel=1e-12)
            assert rates_and_slopes(v)[k][1] == pytest.approx(fd, rel=1e-7)


@jax.jit
def _rates_and_grads_jit(vs):
    values = jnp.stack(hh_rates(NEURON, vs))
    slopes = jnp.stack([jax.vmap(jax.grad(lambda v, k=k: hh_rates(NEURON, v)[k]))(vs)
                        for k in range(6)])
    return values, slopes


ALL_VS = SINGULAR_VS + GRID_VS


@pytest.fixture(scope="module", params=["float32", "float64"])
def rates_table(request):
    """(dtype, v, values, slopes) for every test voltage, computed in one jitted call."""
    dtype = request.param
    with jax.enable_x64(dtype == "float64"):
        vs = jnp.asarray(ALL_VS, dtype=dtype)
        values, slopes = _rates_and_grads_jit(vs)
        assert values.dtype == jnp.dtype(dtype) and slopes.dtype == jnp.dtype(dtype)
    return dtype, np.asarray(vs, np.float64), np.asarray(values, np.float64), np.asarray(slopes, np.float64)


@pytest.mark.parametrize("where, sel, rtol_v, rtol_d", [
    # rtol_v, rtol_d: (float32, float64)
    ("at and within 1e-3 mV of -40/-55", slice(0, len(SINGULAR_VS)), (1e-6, 1e-13), (1e-6, 1e-11)),
    ("grid across the switch-over", slice(len(SINGULAR_VS), None), (5e-6, 1e-12), (1e-4, 1e-9)),
])
def test_rates_and_their_gradients_near_singular_points(rates_table, where, sel, rtol_v, rtol_d):
    dtype, vs, values, slopes = rates_table
    vs, values, slopes = vs[sel], values[:, sel], slopes[:, sel]
    k32 = 0 if dtype == "float32" else 1
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(slopes))
    ref = np.array([rates_and_slopes(v) for v in vs])  # at the (rounded) voltages used
    ref_v, ref_d = ref[..., 0].T, ref[..., 1].T
    for k, name in enumerate(RATE_NAMES):
        np.testing.assert_allclose(values[k], ref_v[k], rtol=rtol_v[k32], atol=0, err_msg=name)
        np.testing.assert_allclose(slopes[k], ref_d[k], rtol=rtol_d[k32], atol=1e-12, err_msg=name)


def test_rates_exactly_at_singular_points(rates_table):
    dtype, vs, values, slopes = rates_table
    i40, i55 = ALL_VS.index(-40.0), ALL_VS.index(-55.0)
    assert vs[i40] == -40.0 and vs[i55] == -55.0
    tol = 1e-6 if dtype == "float32" else 1e-14
    assert values[0][i40] == pytest.approx(1.0, abs=tol)     # alpha_m(-40)
    assert slopes[0][i40] == pytest.approx(0.05, abs=tol)    # d alpha_m / dV (-40)
    assert values[4][i55] == pytest.approx(0.1, abs=tol)     # alpha_n(-55)
    assert slopes[4][i55] == pytest.approx(0.005, abs=tol)   # d alpha_n / dV (-55)


@jax.jit
def _gate_slopes(v):
    return jnp.stack([jax.grad(lambda vv, g=g: getattr(hhjax.steady_state(NEURON, vv), g))(v)
                      for g in "mhn"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_steady_state_gate_slopes_at_singular_points(dtype):
    """d(x_inf)/dV = (a' b - a b') / (a + b)^2 from the hand-derived slopes."""
    with jax.enable_x64(dtype == "float64"):
        for v in (-40.0, -55.0):
            grads = _gate_slopes(jnp.asarray(v, dtype))
            ref = rates_and_slopes(v)
            for g, (ia, ib), got in zip("mhn", ((0, 1), (2, 3), (4, 5)), grads):
                (a, da), (b, db) = ref[ia], ref[ib]
                want = (da * b - a * db) / (a + b) ** 2
                assert float(got) == pytest.approx(want, rel=1e-9 if dtype == "float64" else 1e-4), (g, v)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("v0", [-40.0, -55.0])
def test_simulation_gradient_finite_when_started_at_singular_voltage(dtype, v0):
    with jax.enable_x64(dtype == "float64"):
        g = grad_all(NEURON, STIM, "exp_euler", v0)[0]
        leaves = {name: float(getattr(g, name)) for name in PARAM_NAMES}
        assert all(math.isfinite(x) for x in leaves.values()), leaves
        assert any(abs(x) > 1e-3 for x in leaves.values())
        if dtype == "float64":  # and it is the right number
            h = 1e-5 * NEURON.g_k
            fd = (float(loss(dataclasses.replace(NEURON, g_k=NEURON.g_k + h), STIM, "exp_euler", v0))
                  - float(loss(dataclasses.replace(NEURON, g_k=NEURON.g_k - h), STIM, "exp_euler", v0))) / (2 * h)
            assert leaves["g_k"] == pytest.approx(fd, rel=1e-5)


# ---------------------------------------------------------------------------------------
# 9. checkpoint_every: same gradients as storing everything
# ---------------------------------------------------------------------------------------


def test_checkpointing_gives_identical_gradients():
    g_plain = grad_all(NEURON, STIM, "exp_euler", -40.0)
    g_ck = grad_all(NEURON, STIM, "exp_euler", -40.0, 100)
    flat_plain, tree_plain = jax.tree_util.tree_flatten(g_plain)
    flat_ck, tree_ck = jax.tree_util.tree_flatten(g_ck)
    assert tree_plain == tree_ck
    for a, b in zip(flat_plain, flat_ck):
        # recomputation may reorder float32 operations: equal to a few ulp
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-7)
    assert abs(float(g_plain[0].g_na)) > 1e-3


@pytest.mark.parametrize("batch", [(), (3,)])
def test_reverse_mode_keeps_only_the_state_of_each_step(batch):
    # Residuals of jax.vjp through simulate: each step may keep its carry (v, m, h, n, spike
    # count, running max |V|, step index ~ 7 numbers per neuron), not the ~30 intermediates
    # of the rate computations, which would make jax.grad memory-bound.
    n_steps = 400
    g_na = jnp.full(batch, NEURON.g_na, jnp.float32)

    def trace(g):
        p = dataclasses.replace(NEURON, g_na=g)
        return hhjax.simulate(p, STIM, duration=n_steps * 0.025, dt=0.025).v

    _, vjp = jax.vjp(trace, g_na)
    kept = sum(leaf.size for leaf in jax.tree_util.tree_leaves(vjp))
    per_neuron_step = kept / (n_steps * max(1, int(np.prod(batch))))
    assert per_neuron_step <= 8, per_neuron_step
    (ct,) = vjp(jnp.ones((*batch, n_steps + 1), jnp.float32))
    assert np.all(np.isfinite(np.asarray(ct))) and np.all(np.asarray(ct) != 0)
