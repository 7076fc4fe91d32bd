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
    n_rec = n_chunks * recs_per_chunk + 1

    g = None
    if grid is not None:
        # Time-major, read one row per step (any block length can then read its steps).
        g = jnp.asarray(grid, dtype)[..., :n_steps]
        if batch:
            g = pad(jnp.broadcast_to(g, tuple(batch) + (n_steps,)).reshape(size, n_steps))
        g = jnp.moveaxis(g, -1, 0)
        if batch:
            g = shard(g, axis=1)

    def one_step(carry, _):
        state, count, bad, k = carry
        if g is not None:
            currents = [jax.lax.dynamic_index_in_dim(g, k, 0, keepdims=False) * scale] * len(fracs)
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

    def one_record(carry, _):
        if record_every > 1:
            carry, _ = jax.lax.scan(one_step, carry, None, length=record_every)
        else:
            carry, _ = one_step(carry, None)
        return carry, kept(carry[0])

    def block(carry, length):
        """``length`` records: the carry after them and each variable's (length, padded)."""
        return jax.lax.scan(one_record, carry, None, length=length)

    flat_batch = state0.v.shape
    carry0 = (state0, jnp.zeros(flat_batch, jnp.int32), ~state_in_range(state0), jnp.zeros((), jnp.int32))
    # trim=False: the padded flat batch, still split (sharding.gather_uneven cuts it)
    out_batch = tuple(batch) if trim else (padded,)

    def cut(x):
        return unpad(x) if trim else x

    x0 = as_dict(state0)
    kept0 = kept(state0)
    itemsize = jnp.dtype(dtype).itemsize
    n_records = n_rec - 1
    # A large trace is written straight into time-last buffers, one block of records at a
    # time (see _write_blocks); a small one is stacked time-major and transposed once,
    # which compiles faster (one loop fewer; jax.grad of one neuron compiled ~1.5x slower
    # in blocks) and holds little memory twice.
    blocked = (size or 1) * n_rec * len(kept0) * itemsize >= RECORD_BLOCKS_FROM
    if checkpoint_every is not None:
        per_block = recs_per_chunk
        run_block = jax.checkpoint(lambda carry: block(carry, per_block))
    else:
        per_block = record_block(n_records, padded or 1, itemsize) if blocked else n_records
        run_block = lambda carry: block(carry, per_block)  # noqa: E731
    n_blocks = n_records // per_block
    if blocked:
        rows = padded if n_shards > 1 else size  # one device: the padding never enters the buffers
        carry, bufs = _write_blocks(run_block, carry0, kept0, n_blocks, per_block, n_rec,
                                    rows if batch else None, dtype, shard)
        keep = size if trim else rows
        states = model.state_type(**{
            k: ((bufs[k][:keep] if rows != keep else bufs[k]).reshape(out_batch + (n_rec,))
                if batch else bufs[k]) if k in bufs else None for k in x0})
    else:
        if n_blocks == 1:
            carry, recs = run_block(carry0)
        else:
            carry, recs = jax.lax.scan(lambda c, _: run_block(c), carry0, None, length=n_blocks)
            recs = {k: r.reshape((n_records,) + r.shape[2:]) for k, r in recs.items()}

        def assemble(x, r):
            out = jnp.moveaxis(jnp.concatenate([x[None], r], axis=0), 0, -1)
            return cut(out).reshape(out_batch + (n_rec,))

        states = model.state_type(**{k: assemble(x0[k], recs[k]) if k in recs else None for k in x0})
    final, count, bad, _ = carry
    finite = jnp.ones(flat_batch, bool)
    for leaf in jax.tree_util.tree_leaves(final):
        finite = finite & jnp.isfinite(leaf)
    diverged = cut(~finite | bad).reshape(out_batch)
    count = cut(count).reshape(out_batch)
    t = jnp.arange(n_rec, dtype=dtype) * (dt * record_every)
    return Trace(t=t, state=states, spike_count=count, diverged=diverged)


RECORD_BLOCK_BYTES = 1 << 18
"""Bytes of one recorded variable per block written into the trace (without
``checkpoint_every``): 256 KB stays in cache while it is transposed, and is 64 float32
records (256 contiguous bytes of each neuron's row) for 1000 neurons."""


def record_block(n_records: int, n_neurons: int = 1, itemsize: int = 4) -> int:
    """Records per block: the largest divisor of ``n_records`` up to ``RECORD_BLOCK_BYTES /
    (n_neurons * itemsize)`` records, held between 64 and 1024, so that every block has the
    same length and the step is compiled once (a remainder block doubled the compile
    time). A prime count above the limit gets blocks of one record (each record then goes
    to the trace as it is made).

    >>> record_block(40), record_block(4000, 1000), record_block(4000), record_block(4001)
    (40, 50, 1000, 1)
    """
    limit = min(max(RECORD_BLOCK_BYTES // max(n_neurons * itemsize, 1), 64), 1024)
    for b in range(min(n_records, limit), 1, -1):
        if n_records % b == 0:
            return b
    return 1


RECORD_BLOCKS_FROM = 1 << 24
"""Trace bytes from which the records are written in blocks (:func:`_write_blocks`)."""


def _write_blocks(run_block, carry0, first, n_blocks, per_block, n_rec, rows, dtype, shard):
    """Run ``n_blocks`` blocks of ``per_block`` records (``run_block(carry) -> (carry,
    {name: (per_block, padded)})``) and write each into a time-last buffer per variable
    (``(rows, n_rec)``, or ``(n_rec,)`` for one neuron when ``rows`` is None) whose column 0
    is ``first``. Stacking every record time-major and transposing at the end held the
    trace twice (the CPU peak was 1.75x the trace); this holds the trace plus one block."""

    def write(bufs, recs, col):
        if rows is None:
            return {k: jax.lax.dynamic_update_slice(b, recs[k], (col,)) for k, b in bufs.items()}
        return {k: jax.lax.dynamic_update_slice(b, jnp.moveaxis(recs[k], 0, -1)[:rows], (0, col))
                for k, b in bufs.items()}

    shape = (n_rec,) if rows is None else (rows, n_rec)
    bufs = {k: shard(jnp.zeros(shape, dtype).at[..., 0].set(x if rows is None else x[:rows]))
            for k, x in first.items()}
    if n_blocks == 1:
        carry, recs = run_block(carry0)
        return carry, write(bufs, recs, 1)

    def outer(c, b):
        carry, bufs = c
        carry, recs = run_block(carry)
        return (carry, write(bufs, recs, 1 + b * per_block)), None

    (carry, bufs), _ = jax.lax.scan(outer, (carry0, bufs), jnp.arange(n_blocks, dtype=jnp.int32))
    return carry, bufs


def _batch_sharder(n_shards):
    """``shard(x, axis=0)``: ask XLA to split ``x``'s flat neuron axis over ``n_shards``
    devices (see :mod:`hhjax.simulation.sharding`); the identity for one."""
    if n_shards == 1:
        return lambda x, axis=0: x

    def shard(x, axis=0):
        return jax.lax.with_sharding_constraint(x, neuron_sharding(n_shards, x.ndim, axis))

    return shard


