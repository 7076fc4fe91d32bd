"""The invariants of issue 16, shared by tests/test_properties.py (CI, a few hundred cases)
and scripts/fuzz.py (many thousands). One case is a batch of ``N`` neurons with random
parameters, initial voltages and step currents; for every neuron:

- no NaN or inf in V or a gate unless ``diverged``; gates in [0, 1] (to rounding) unless
  ``diverged``; |V| within the bound unless ``diverged``;
- where not diverged, the reverse-mode gradient of sum(V) with respect to every parameter
  and the forward-mode derivative along all parameters are finite;
- the batch equals a run of that neuron alone; ``jit(simulate)`` equals ``simulate``.

Shapes are fixed (``N`` neurons, ``STEPS`` steps) so that each (model, method, dt, dtype)
compiles once per process.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

import hhjax
from hhjax import stimulus as S
from hhjax.simulation.trace import DIVERGENCE_BOUND, GATE_TOLERANCE

N = 8
STEPS = 40

# (low, high, log) per drawn parameter; wide enough that some neurons diverge.
RANGES = {
    "hh": {"g_na": (1.0, 1000.0, True), "g_k": (0.1, 500.0, True), "g_l": (1e-3, 10.0, True),
           "e_na": (0.0, 150.0, False), "e_k": (-120.0, -30.0, False), "e_l": (-100.0, 150.0, False),
           "c_m": (0.05, 10.0, True), "celsius": (-10.0, 45.0, False)},
    "pospischil": {"g_na": (1.0, 500.0, True), "g_k": (0.1, 100.0, True), "g_m": (1e-4, 5.0, True),
                   "g_l": (1e-3, 5.0, True), "v_t": (-80.0, -30.0, False), "c_m": (0.1, 10.0, True),
                   "e_l": (-100.0, 0.0, False)},
    "reduced": {"g_na": (1.0, 500.0, True), "g_k": (0.1, 200.0, True), "g_l": (1e-3, 10.0, True),
                "c_m": (0.1, 10.0, True), "tau_n": (0.5, 100.0, True)},
}
BASE = {"hh": hhjax.presets.NEURON, "pospischil": hhjax.presets.POSPISCHIL,
        "reduced": hhjax.presets.REDUCED}
# Current ranges in the model's units (µA/cm²; pA for Pospischil).
CURRENT = {"hh": 500.0, "pospischil": 5000.0, "reduced": 500.0}


def _value(low, high, log):
    if log:
        return st.floats(np.log(low), np.log(high)).map(np.exp)
    return st.floats(low, high)


@st.composite
def cases(draw, models=("hh",), methods=("exp_euler", "euler", "rk4", "neuron"), dts=(0.05,)):
    """A case: ``dict(model, method, dt, fields={name: (N,)}, amps, v0, pick)``."""
    model = draw(st.sampled_from(models))
    fields = {name: np.array(draw(st.lists(_value(*r), min_size=N, max_size=N)))
              for name, r in RANGES[model].items()}
    amp = CURRENT[model]
    amps = np.array(draw(st.lists(st.floats(-amp, amp), min_size=N, max_size=N)))
    v0 = np.array(draw(st.lists(st.floats(-120.0, 80.0), min_size=N, max_size=N)))
    return dict(model=model, method=draw(st.sampled_from(methods)), dt=draw(st.sampled_from(dts)),
                fields=fields, amps=amps, v0=v0, pick=draw(st.integers(0, N - 1)))


def _stim(amps, dt):
    return S.step(amps, 0.25 * STEPS * dt, 0.75 * STEPS * dt)


def _simulate(model, method, dt, fields, amps, v0):
    params = dataclasses.replace(BASE[model], **fields)
    return hhjax.simulate(params, _stim(amps, dt), duration=STEPS * dt, dt=dt, method=method, y0=v0)


@functools.lru_cache(maxsize=None)
def _jitted(model, method, dt, dtype):
    """``(trace, grads, tangent)`` in one compiled function."""
    del dtype  # part of the cache key only

    def loss(fields, amps, v0):
        return jnp.sum(_simulate(model, method, dt, fields, amps, v0).v, axis=-1)

    def run(fields, amps, v0):
        trace = _simulate(model, method, dt, fields, amps, v0)
        grads = jax.grad(lambda f: jnp.sum(loss(f, amps, v0)))(fields)
        ones = jax.tree_util.tree_map(jnp.ones_like, fields)
        _, tangent = jax.jvp(lambda f: loss(f, amps, v0), (fields,), (ones,))
        return trace, grads, tangent

    return jax.jit(run)


def check_case(case, counts=None):
    """Assert every invariant for one case; ``counts`` (a dict) accumulates tallies."""
    dtype = hhjax._pytree.float_dtype()
    fields = {k: jnp.asarray(v, dtype) for k, v in case["fields"].items()}
    amps, v0 = jnp.asarray(case["amps"], dtype), jnp.asarray(case["v0"], dtype)
    key = (case["model"], case["method"], case["dt"])
    with np.errstate(invalid="ignore", over="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the divergence warning
            eager = _simulate(*key, fields, amps, v0)
        traced, grads, tangent = _jitted(*key, jnp.dtype(dtype).name)(fields, amps, v0)
        div = np.asarray(eager.diverged)
        ok = ~div
        states = {f.name: np.asarray(getattr(eager.state, f.name)) for f in dataclasses.fields(eager.state)}
        finite = np.all([np.isfinite(x).all(axis=-1) for x in states.values()], axis=0)
        assert np.all(finite[ok]), f"non-finite state without diverged: {case}"
        assert np.all(np.abs(states["v"][ok]) <= DIVERGENCE_BOUND)
        for name, x in states.items():
            if name != "v":
                assert np.all(x[ok] >= -GATE_TOLERANCE) and np.all(x[ok] <= 1 + GATE_TOLERANCE), \
                    f"gate {name} out of range without diverged: {case}"
        for name, g in grads.items():
            assert np.all(np.isfinite(np.asarray(g)[ok])), f"non-finite grad d/d{name} without diverged: {case}"
        assert np.all(np.isfinite(np.asarray(tangent)[ok])), f"non-finite forward-mode derivative: {case}"
        # jit equals eager, diverged flags included.
        np.testing.assert_array_equal(np.asarray(traced.diverged), div)
        np.testing.assert_allclose(np.asarray(traced.v)[ok], states["v"][ok], rtol=1e-4, atol=1e-3)
        # The batch equals a run of one of its neurons alone.
        i = case["pick"]
        one = _simulate(*key, {k: v[i] for k, v in fields.items()}, amps[i], v0[i])
        assert bool(one.diverged) == bool(div[i]), f"batch and single disagree on diverged: {case}"
        if ok[i]:
            np.testing.assert_allclose(np.asarray(one.v), states["v"][i], rtol=1e-4, atol=1e-3)
    if counts is not None:
        counts["cases"] = counts.get("cases", 0) + 1
        counts["neurons"] = counts.get("neurons", 0) + N
        counts["diverged_neurons"] = counts.get("diverged_neurons", 0) + int(div.sum())
        counts["gradients_checked"] = counts.get("gradients_checked", 0) + int(ok.sum())
    return div
