"""The invariants of issue 16, shared by tests/test_properties.py (CI, a few hundred cases)
and scripts/fuzz.py (many thousands). One case is a batch of ``N`` neurons with random
parameters, initial voltages and step currents; for every neuron:

- no NaN or inf in V or a gate unless ``diverged``; gates in [0, 1] (to rounding) unless
  ``diverged``; |V| within the bound unless ``diverged``;
- where not diverged, the reverse-mode gradient of sum(V) with respect to every parameter
  and the forward-mode derivative along all parameters are finite;
- the batch equals a run of that neuron alone; ``jit(simulate)`` equals ``simulate``.

Two compilations of the same code (``jit`` of the whole check against ``simulate``'s own
jit; a vectorised batch against one scalar neuron) may round differently in the last bit.
In a well-conditioned run that stays at rounding level; in a numerically unstable one (an
explicit scheme beyond its stability limit, V swinging by ±190 mV every step) it grows
geometrically, from 1 ulp to whole millivolts within 20 steps. So the comparison allows, at
each step, the tolerance plus the *rounding spread* of that neuron: the largest difference
so far between the run and reruns of the same code with every parameter, current and
initial value moved by ``SHADOW_ULPS`` ulps (relative, fixed random signs; two reruns).
A well-conditioned neuron has a spread of ~1e-5 mV, far below the tolerance, so a real
discrepancy (a wrong step, a neuron mixed up with another, a stimulus off by a step) still
fails; only a neuron whose own inputs, moved by a few ulps, change its trajectory by as
much as the mismatch is excused. The spread is only computed when the plain comparison
fails, and ``counts["rounding_excused"]`` counts the neurons it excused.

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


RTOL, ATOL = 1e-4, 1e-3
"""Tolerance of the jit/eager and batch/single comparisons of V (relative, and mV)."""

SHADOW_ULPS = 16
"""Relative perturbation, in units of the float type's epsilon, of the reruns that measure a
neuron's rounding spread (two compilations differ by 1-2 ulps per operation)."""


def _tolerance(v):
    return ATOL + RTOL * np.abs(v)


def _rounding_spread(key, fields, amps, v0, v, div):
    """``(spread, diverged)``: per neuron and step, the largest |V difference| so far
    between the run ``v`` and two reruns of the same code with every input moved by
    ``SHADOW_ULPS`` ulps (inf from the step where a rerun is not finite); and whether a
    rerun's ``diverged`` flag differs from the run's."""
    dtype = hhjax._pytree.float_dtype()
    rel = SHADOW_ULPS * float(np.finfo(dtype).eps)
    spread, flipped = np.zeros_like(v), np.zeros(div.shape, bool)
    for seed in (1, 2):
        rng = np.random.default_rng(seed)

        def move(x):
            x = np.asarray(x)
            return jnp.asarray(x * (1 + rel * rng.choice((-1.0, 1.0), size=x.shape)), dtype)

        shadow = _simulate(*key, {k: move(x) for k, x in fields.items()}, move(amps), move(v0))
        d = np.abs(np.asarray(shadow.v) - v)
        spread = np.maximum(spread, np.maximum.accumulate(np.where(np.isfinite(d), d, np.inf), axis=-1))
        flipped |= np.asarray(shadow.diverged) != div
    return spread, flipped


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
        assert np.all(finite[ok]), f"[non-finite without diverged] non-finite state without diverged: {case}"
        assert np.all(np.abs(states["v"][ok]) <= DIVERGENCE_BOUND), f"[V beyond bound without diverged]: {case}"
        for name, x in states.items():
            if name != "v":
                assert np.all(x[ok] >= -GATE_TOLERANCE) and np.all(x[ok] <= 1 + GATE_TOLERANCE), \
                    f"[gate out of range] gate {name} out of range without diverged: {case}"
        for name, g in grads.items():
            assert np.all(np.isfinite(np.asarray(g)[ok])), f"[non-finite gradient] d/d{name} without diverged: {case}"
        assert np.all(np.isfinite(np.asarray(tangent)[ok])), f"[non-finite forward-mode] derivative: {case}"
        # jit equals eager, diverged flags included; the batch equals a run of one of its
        # neurons alone. Mismatches beyond the tolerance are checked against the rounding
        # spread (module docstring).
        i = case["pick"]
        one = _simulate(*key, {k: v[i] for k, v in fields.items()}, amps[i], v0[i])
        pairs = {"jit != eager": (np.asarray(traced.v), np.asarray(traced.diverged), np.arange(N)),
                 "batch != single": (np.asarray(one.v)[None], np.asarray(one.diverged)[None], np.array([i]))}
        spread = None
        for what, (other, other_div, rows) in pairs.items():
            ref, ref_div = states["v"][rows], div[rows]
            flags_differ = other_div != ref_div
            both_ok = ~ref_div & ~other_div
            excess = np.where(both_ok[:, None], np.abs(other - ref) - _tolerance(ref), -np.inf)
            bad = flags_differ | (excess > 0).any(axis=-1)
            if not bad.any():
                continue
            if spread is None:
                spread, shadow_div = _rounding_spread(key, fields, amps, v0, states["v"], div)
            sp, sdiv = spread[rows], shadow_div[rows]
            unexplained = (flags_differ & ~sdiv) | (excess > sp).any(axis=-1)
            if unexplained.any():
                n = int(rows[np.argmax(unexplained)])
                j = int(np.argmax(excess[np.argmax(unexplained)] > sp[np.argmax(unexplained)]))
                raise AssertionError(
                    f"[{what}] neuron {n}: diverged {bool(div[n])} vs "
                    f"{bool(other_div[np.argmax(unexplained)])}; at step {j} |difference| exceeds the "
                    f"tolerance by {excess[np.argmax(unexplained), j]:.3g} mV, rounding spread "
                    f"{sp[np.argmax(unexplained), j]:.3g} mV: {case}")
            if counts is not None:
                counts["rounding_excused"] = counts.get("rounding_excused", 0) + int(bad.sum())
    if counts is not None:
        counts["cases"] = counts.get("cases", 0) + 1
        counts["neurons"] = counts.get("neurons", 0) + N
        counts["diverged_neurons"] = counts.get("diverged_neurons", 0) + int(div.sum())
        counts["gradients_checked"] = counts.get("gradients_checked", 0) + int(ok.sum())
    return div
