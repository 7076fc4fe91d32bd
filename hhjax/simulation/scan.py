"""The reference backend: any model, any method, stepped with ``lax.scan``."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .._pytree import as_dict, float_dtype
from ..models import model_of
from ..models.steady import steady_state
from ..solvers import get_step
from .sharding import neuron_sharding
from .trace import Trace, state_in_range, upward_crossing


def _stage_fracs(method):
    # Stimuli are evaluated strictly inside each step, so a step edge that falls on a grid
    # point switches on for exactly the intended steps despite float rounding of t.
    if method == "rk4":
        return (0.01, 0.5, 0.99)
    return (0.5,)


@partial(
    jax.jit,
    static_argnames=(
        "batch", "n_steps", "dt", "method", "record_every", "checkpoint_every", "spike_threshold",
        "layout", "record", "trim",
    ),
)
def _run(params, stim, grid, y0, *, batch, n_steps, dt, method, record_every, checkpoint_every,
         spike_threshold, layout=(1, None), record=None, trim=True):
    model = model_of(params)
    step_fn = get_step(method)
    dtype = float_dtype()
    # Work on one flat batch axis whatever the batch rank: XLA's compile time grows with
    # the rank of the loop-carried arrays, the run time does not depend on it.
    size = int(np.prod(batch)) if batch else 0
    # Padded to a size XLA vectorises and splits well (an odd size ran 3x slower): the
    # extra neurons copy the last one and are cut off the results.
    n_shards, padded = layout
    padded = padded or size

    def pad(x, axis=0):
        if padded == size:
            return x
        widths = [(0, 0)] * x.ndim
        widths[axis] = (0, padded - size)
        return jnp.pad(x, widths, mode="edge")

    def unpad(x):  # the flat neuron axis leads
        return x if padded == size else x[:size]

    def flatten(x):
        x = jnp.asarray(x, dtype)
        return pad(jnp.broadcast_to(x, batch).reshape(size)) if (batch and x.ndim) else x

    params = jax.tree_util.tree_map(flatten, params)
    if y0 is None:
        state0 = steady_state(params, model.default_voltage(params))
    elif isinstance(y0, model.state_type):
        state0 = jax.tree_util.tree_map(flatten, y0)
    else:
        state0 = steady_state(params, flatten(y0))
    state0 = jax.tree_util.tree_map(
        lambda x: jnp.broadcast_to(jnp.asarray(x, dtype), (padded,) if batch else ()), state0)
    shard = _batch_sharder(n_shards)
    params = jax.tree_util.tree_map(lambda x: shard(x) if jnp.ndim(x) else x, params)
    state0 = jax.tree_util.tree_map(shard, state0)
    scale = model.stimulus_scale(params)
    if batch and stim is not None:
        user_stim = stim

        def stim(t):
            # Zeros, not copies, for the padding neurons: an edge copy would make each device
            # fetch the last neuron's current from the one that holds it, every step.
            i_ext = jnp.broadcast_to(user_stim(t), batch).reshape(size)
            return jnp.concatenate([i_ext, jnp.zeros(padded - size, i_ext.dtype)])
    fracs = _stage_fracs(method)
    chunk = checkpoint_every or n_steps
    n_chunks = n_steps // chunk
    recs_per_chunk = chunk // record_every

    def one_step(carry, x):
        state, count, bad, k = carry
        if grid is not None:
            currents = [x * scale] * len(fracs)
        else:
            kf = k.astype(dtype)
            currents = [stim((kf + f) * dt) * scale for f in fracs]
        i_ext = tuple(currents) if method == "rk4" else currents[0]
        new = step_fn(model, params, state, i_ext, dt)
        if spike_threshold is not None:
            crossed = upward_crossing(state.v, new.v, spike_threshold)
            count = count + crossed.astype(count.dtype)
        bad = bad | ~state_in_range(new)
        return (new, count, bad, k + 1), None

    # Reverse mode keeps only the carry of each step and recomputes the step's insides on
    # the way back: the stacked residuals (58 per neuron-step for HH) cost more memory
    # traffic than the recomputation, so jax.grad runs about 2x faster (one neuron and
    # 1000 alike) and compiles faster. It is free without reverse mode. prevent_cse=False:
    # scan already keeps XLA from merging the recomputation with the forward pass.
    one_step = jax.checkpoint(one_step, prevent_cse=False,
                              policy=jax.checkpoint_policies.nothing_saveable)

    def kept(state):
        # Only the recorded variables leave the loop (record=None: all of them).
        return {k: x for k, x in as_dict(state).items() if record is None or k in record}

    def one_record(carry, xs):
        carry, _ = jax.lax.scan(one_step, carry, xs, length=record_every)
        return carry, kept(carry[0])

    def one_chunk(carry, xs):
        return jax.lax.scan(one_record, carry, xs, length=recs_per_chunk)

    if checkpoint_every is not None:
        one_chunk = jax.checkpoint(one_chunk)

    xs = None
    if grid is not None:
        g = jnp.asarray(grid, dtype)[..., :n_steps]
        if batch:
            g = pad(jnp.broadcast_to(g, tuple(batch) + (n_steps,)).reshape(size, n_steps))
        g = jnp.moveaxis(g, -1, 0)
        if batch:
            g = shard(g, axis=1)
        xs = g.reshape((n_chunks, recs_per_chunk, record_every) + g.shape[1:])

    flat_batch = state0.v.shape
    carry0 = (state0, jnp.zeros(flat_batch, jnp.int32), ~state_in_range(state0), jnp.zeros((), jnp.int32))
    if record_every == 1 and checkpoint_every is None:
        # One flat scan: nested loops of length 1 would only slow compilation.
        def flat(carry, x):
            carry, _ = one_step(carry, x)
            return carry, kept(carry[0])

        xs_flat = None if xs is None else xs.reshape((n_steps,) + xs.shape[3:])
        (final, count, bad, _), recs = jax.lax.scan(flat, carry0, xs_flat, length=n_steps)
        recs = jax.tree_util.tree_map(lambda r: r[None], recs)
    else:
        (final, count, bad, _), recs = jax.lax.scan(one_chunk, carry0, xs, length=n_chunks)

    n_rec = n_chunks * recs_per_chunk + 1
    # trim=False: the padded flat batch, still split (sharding.gather_uneven cuts it)
    out_batch = tuple(batch) if trim else (padded,)

    def cut(x):
        return unpad(x) if trim else x

    def assemble(x0, r):
        r = r.reshape((n_rec - 1,) + r.shape[2:])
        out = jnp.moveaxis(jnp.concatenate([x0[None], r], axis=0), 0, -1)
        return cut(out).reshape(out_batch + (n_rec,))

    x0 = as_dict(state0)
    states = model.state_type(**{k: assemble(x0[k], recs[k]) if k in recs else None for k in x0})
    finite = jnp.ones(flat_batch, bool)
    for leaf in jax.tree_util.tree_leaves(final):
        finite = finite & jnp.isfinite(leaf)
    diverged = cut(~finite | bad).reshape(out_batch)
    count = cut(count).reshape(out_batch)
    t = jnp.arange(n_chunks * recs_per_chunk + 1, dtype=dtype) * (dt * record_every)
    return Trace(t=t, state=states, spike_count=count, diverged=diverged)


def _batch_sharder(n_shards):
    """``shard(x, axis=0)``: ask XLA to split ``x``'s flat neuron axis over ``n_shards``
    devices (see :mod:`hhjax.simulation.sharding`); the identity for one."""
    if n_shards == 1:
        return lambda x, axis=0: x

    def shard(x, axis=0):
        return jax.lax.with_sharding_constraint(x, neuron_sharding(n_shards, x.ndim, axis))

    return shard


