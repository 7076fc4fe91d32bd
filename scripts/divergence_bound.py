"""Find the voltage band in which every model's rates, one step of every method and their
derivatives (forward and reverse mode) stay finite, in float32 and float64; this justifies
``hhjax.simulation.trace.DIVERGENCE_BOUND``.

For each preset, each method, each dtype and each voltage V on a 1 mV grid (with gates at
0, 0.5, 1 and at steady state, and the rate-shifting voltages ``v_offset``/``v_t`` moved
by their fitting half-width either way) it evaluates ``step(state)`` and the Jacobian of
the step with respect to the state and every parameter. Prints and writes JSON:
the smallest |V| at which anything was non-finite.

    python scripts/divergence_bound.py [--out scripts/divergence_bound.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json

import jax

jax.config.update("jax_enable_x64", True)  # float64 runs; float32 inputs stay float32

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from hhjax import presets  # noqa: E402
from hhjax.models import model_of  # noqa: E402
from hhjax.models.steady import steady_state  # noqa: E402
from hhjax.simulation.trace import in_range  # noqa: E402
from hhjax.solvers import METHODS, get_step  # noqa: E402

MODELS = {}
SHIFTS = {"v_offset": 20.0, "v_t": 25.0, "v_half_m": 20.0, "v_half_n": 20.0}


@functools.lru_cache(maxsize=None)
def _checker(model_name, method, dtype_name, dt=0.025, i_ext=0.0):
    """A jitted ``all_finite(params, v)`` per model, method and dtype (params are arguments,
    so presets and shifted variants of one model share the compilation)."""
    model = MODELS[model_name]
    step = get_step(method)
    dtype = jnp.dtype(dtype_name)
    gate_names = [f.name for f in dataclasses.fields(model.state_type) if f.name != "v"]

    def one(p, state):
        i = jnp.asarray(i_ext, dtype)
        out = step(model, p, state, (i, i, i) if method == "rk4" else i, dt)
        return jnp.stack(jax.tree_util.tree_leaves(out))

    @jax.jit
    def all_finite(p, v):
        ss = steady_state(p, v)
        ok = jnp.ones(v.shape, bool)
        for gate_value in (None, 0.0, 1.0):
            fields = {"v": v}
            for g in gate_names:
                fields[g] = getattr(ss, g) if gate_value is None else jnp.full_like(v, gate_value)
            state = model.state_type(**fields)
            # A step whose result leaves the valid range is flagged diverged anyway (rk4's
            # stages can leave the band from a state far from steady state, e.g. m = h = 1).
            out = jax.vmap(one, in_axes=(None, 0))(p, state)
            flagged = ~in_range(out[:, 0], *out[:, 1:].T)
            for fn in (one, jax.jacfwd(one, argnums=1), jax.jacrev(one, argnums=0)):
                out = jax.vmap(fn, in_axes=(None, 0))(p, state)
                for leaf in jax.tree_util.tree_leaves(out):
                    ok &= jnp.isfinite(leaf.reshape(v.shape[0], -1)).all(axis=1) | flagged
        return ok

    return all_finite


def first_bad(params, method, dtype, v_grid):
    model = model_of(params)
    MODELS[model.name] = model
    p = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), params)
    ok = np.asarray(_checker(model.name, method, jnp.dtype(dtype).name)(p, jnp.asarray(v_grid, dtype)))
    bad = np.abs(np.asarray(v_grid))[~ok]
    return float(bad.min()) if bad.size else float("inf")


def variants(params):
    yield "", params
    for name, half in SHIFTS.items():
        if hasattr(params, name):
            for sign in (-1, 1):
                yield f" {name}{sign * half:+g}", dataclasses.replace(
                    params, **{name: getattr(params, name) + sign * half})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--limit", type=float, default=2000.0)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--presets", default="neuron,hh1952,reduced,pospischil,pospischil_fs")
    args = ap.parse_args()
    v_grid = np.arange(-args.limit, args.limit + 1.0, 1.0)
    rows = []
    # One preset per model (the others differ only in values the shifts below cover).
    for pname in args.presets.split(","):
        params = presets.get_preset(pname)
        for label, p in variants(params):
            for dtype in (jnp.float32, jnp.float64):
                for method in args.methods.split(","):
                    bad = first_bad(p, method, dtype, v_grid)
                    rows.append(dict(preset=pname + label, dtype=jnp.dtype(dtype).name, method=method,
                                     first_nonfinite_abs_v_mV=bad))
                    print(f"{pname + label:28s} {jnp.dtype(dtype).name:8s} {method:10s} {bad:g}", flush=True)
    worst = {d: min(r["first_nonfinite_abs_v_mV"] for r in rows if r["dtype"] == d)
             for d in ("float32", "float64")}
    print("smallest |V| with a non-finite value or derivative (steps that stay in range):", worst)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(worst=worst, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
