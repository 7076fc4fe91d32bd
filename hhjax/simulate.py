"""``simulate``: the one entry point that runs any model over time with ``lax.scan``."""

from __future__ import annotations

import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ._pytree import as_dict, pytree_dataclass
from ._inputs import GATE_RULES, PARAM_RULES, _batch_shape, _check_finite, _check_time, _check_y0, _float_dtype
from .devices import batch_layout
from .models import model_of
from .solvers import get_step
from .stimulus import as_stimulus


@pytree_dataclass
class Trace:
    """A simulation result (a pytree). Time is the last axis; batch axes lead.

    Attributes:
        t: sample times (ms), shape ``(n_samples,)``, starting at 0 with the initial state.
        state: the model's state pytree, each leaf of shape ``batch + (n_samples,)``; its
            fields are also available directly (``trace.v`` in mV, ``trace.m``, ...).
        spike_count: upward crossings of ``spike_threshold`` counted at every step (not
            only recorded ones), shape ``batch``.
        diverged: ``True`` where the run blew up (non-finite or |V| > 1000 mV), shape
            ``batch``. ``simulate`` also warns when called outside ``jit``.
    """

    t: jax.Array
    state: object
    spike_count: jax.Array
    diverged: jax.Array

    def __getattr__(self, name):
        # Only reached for names that are not fields: forward v, m, h, n, ... to the state.
        if name.startswith("__"):
            raise AttributeError(name)
        state = object.__getattribute__(self, "state")
        try:
            return getattr(state, name)
        except AttributeError:
            raise AttributeError(f"Trace has no field or state variable {name!r}") from None

    @property
    def dt(self) -> float:
        """Sampling interval of the recorded trace (ms)."""
        return float(self.t[1] - self.t[0])


def steady_state(params, v):
    """The model state with every gate at its steady state for membrane potential ``v`` (mV).

    >>> from hhjax.presets import NEURON
    >>> s = steady_state(NEURON, -65.0)
    >>> round(float(s.m), 4), round(float(s.h), 4), round(float(s.n), 4)
    (0.0529, 0.5961, 0.3177)
    """
    model = model_of(params)
    v = jnp.asarray(v, _float_dtype())
    gates = {name: x_inf for name, (x_inf, _) in model.kinetics(params, v).items()}
    return model.state_type(v=v, **gates)


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
        "layout",
    ),
)
def _run(params, stim, grid, y0, *, batch, n_steps, dt, method, record_every, checkpoint_every,
         spike_threshold, layout=(1, None)):
    model = model_of(params)
    step_fn = get_step(method)
    dtype = _float_dtype()
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
        state, count, vmax, k = carry
        if grid is not None:
            currents = [x * scale] * len(fracs)
        else:
            kf = k.astype(dtype)
            currents = [stim((kf + f) * dt) * scale for f in fracs]
        i_ext = tuple(currents) if method == "rk4" else currents[0]
        new = step_fn(model, params, state, i_ext, dt)
        if spike_threshold is not None:
            crossed = (state.v < spike_threshold) & (new.v >= spike_threshold)
            count = count + crossed.astype(count.dtype)
        vmax = jnp.maximum(vmax, jnp.abs(new.v))
        return (new, count, vmax, k + 1), None

    # Reverse mode keeps only the carry of each step and recomputes the step's insides on
    # the way back: the stacked residuals (58 per neuron-step for HH) cost more memory
    # traffic than the recomputation, so jax.grad runs about 2x faster (one neuron and
    # 1000 alike) and compiles faster. It is free without reverse mode. prevent_cse=False:
    # scan already keeps XLA from merging the recomputation with the forward pass.
    one_step = jax.checkpoint(one_step, prevent_cse=False,
                              policy=jax.checkpoint_policies.nothing_saveable)

    def one_record(carry, xs):
        carry, _ = jax.lax.scan(one_step, carry, xs, length=record_every)
        return carry, carry[0]

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
    carry0 = (state0, jnp.zeros(flat_batch, jnp.int32), jnp.abs(state0.v), jnp.zeros((), jnp.int32))
    if record_every == 1 and checkpoint_every is None:
        # One flat scan: nested loops of length 1 would only slow compilation.
        def flat(carry, x):
            carry, _ = one_step(carry, x)
            return carry, carry[0]

        xs_flat = None if xs is None else xs.reshape((n_steps,) + xs.shape[3:])
        (final, count, vmax, _), recs = jax.lax.scan(flat, carry0, xs_flat, length=n_steps)
        recs = jax.tree_util.tree_map(lambda r: r[None], recs)
    else:
        (final, count, vmax, _), recs = jax.lax.scan(one_chunk, carry0, xs, length=n_chunks)

    n_rec = n_chunks * recs_per_chunk + 1

    def assemble(x0, r):
        r = r.reshape((n_rec - 1,) + r.shape[2:])
        out = jnp.moveaxis(jnp.concatenate([x0[None], r], axis=0), 0, -1)
        return unpad(out).reshape(tuple(batch) + (n_rec,))

    states = jax.tree_util.tree_map(assemble, state0, recs)
    finite = jnp.ones(flat_batch, bool)
    for leaf in jax.tree_util.tree_leaves(final):
        finite = finite & jnp.isfinite(leaf)
    diverged = unpad(~finite | ~(vmax <= 1000.0)).reshape(batch)
    count = unpad(count).reshape(batch)
    t = jnp.arange(n_chunks * recs_per_chunk + 1, dtype=dtype) * (dt * record_every)
    return Trace(t=t, state=states, spike_count=count, diverged=diverged)


def _batch_sharder(n_shards):
    """``shard(x, axis=0)``: ask XLA to split ``x``'s flat neuron axis over ``n_shards``
    devices (see :mod:`hhjax.devices`); the identity for one."""
    if n_shards == 1:
        return lambda x, axis=0: x
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(jax.devices()[:n_shards]), ("neurons",))

    def shard(x, axis=0):
        spec = [None] * x.ndim
        spec[axis] = "neurons"
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, PartitionSpec(*spec)))

    return shard


def simulate(params, stimulus=0.0, *, duration, dt, method="exp_euler", y0=None,
             record_every=1, checkpoint_every=None, spike_threshold=0.0):
    """Simulate a point neuron (or a batch of them) and return a :class:`Trace`.

    Args:
        params: model parameters, e.g. :class:`hhjax.HHParams` or a preset. Any leaf may
            be an array; batch axes broadcast against the stimulus.
        stimulus: injected current, in µA/cm² for density models (pA for models with a
            membrane area): a number, an array sampled on the simulation grid (time on the
            last axis, ``n_steps`` or ``n_steps + 1`` long: sample ``k`` drives the step
            from ``k*dt`` to ``(k+1)*dt``), or a callable ``I(t)``: one of
            :mod:`hhjax.stimulus`, or any function of ``t`` (ms), which is traced once per
            function object (see :class:`hhjax.stimulus.Function`).
        duration: simulated time (ms); ``dt``: time step (ms). ``dt`` must divide
            ``duration`` (this raises rather than rounds).
        method: ``"exp_euler"`` (default), ``"euler"``, ``"rk4"`` or ``"neuron"``; see
            :mod:`hhjax.solvers`.
        y0: ``None`` (gates at steady state at the model's resting reference voltage, -65 mV
            for NEURON's ``hh``), a voltage in mV (gates at steady state there), or a full
            state such as ``hhjax.HHState(v=..., m=..., h=..., n=...)``.
        record_every: keep every k-th sample; the others are never stored.
        checkpoint_every: reverse mode (``jax.grad``) always keeps just the state of each
            step (about 7 numbers per neuron) and recomputes the rest; with this set it
            keeps one state per chunk of this many steps and recomputes the chunk, so its
            memory no longer grows with the step count.
        spike_threshold: voltage (mV) whose upward crossings are counted at every step into
            ``trace.spike_count``; ``None`` disables counting.

    Returns:
        A :class:`Trace` with ``t`` (ms) and the state variables (``v`` in mV, gates).

    Large batches on a multi-core CPU run faster after :func:`hhjax.use_all_cores`; the
    gradient with respect to a few parameters of a small run is fastest with
    :func:`hhjax.value_and_grad_forward`.

    Example:
        >>> import hhjax
        >>> tr = hhjax.simulate(hhjax.presets.NEURON, hhjax.stimulus.step(10.0, 10.0, 90.0),
        ...                     duration=100.0, dt=0.025)
        >>> tr.v.shape, int(tr.spike_count)
        ((4001,), 6)
    """
    model = model_of(params)
    n_steps = _check_time(duration, dt, record_every, checkpoint_every)
    get_step(method)
    _check_finite(params, "params", rules=PARAM_RULES)
    _check_finite(stimulus, "stimulus")
    _check_y0(y0, model.state_type, GATE_RULES)

    grid, stim = None, None
    if not callable(stimulus) and jnp.ndim(stimulus) >= 1:
        grid = jnp.asarray(stimulus)
        if grid.shape[-1] not in (n_steps, n_steps + 1):
            raise ValueError(
                f"stimulus: a sampled stimulus needs {n_steps} or {n_steps + 1} samples on its "
                f"last (time) axis for duration={duration} and dt={dt}, got shape {grid.shape}; "
                f"for one constant current per neuron use hhjax.stimulus.constant(amplitudes)"
            )
    else:
        stim = as_stimulus(stimulus)
    batch = _batch_shape(params, stim, y0 if not isinstance(y0, (int, float)) else None, grid)
    from . import pallas_dispatch  # noqa: PLC0415 (the kernel imports this module)

    # GPU only: the fused Pallas kernel (hhjax/pallas_hh.py) when it applies, else None.
    trace = None
    if pallas_dispatch.applies(params, stim, method=method, checkpoint_every=checkpoint_every,
                               y0=y0):
        trace = pallas_dispatch.try_simulate(params, stim, batch=tuple(batch), n_steps=n_steps,
                                             dt=dt, y0=y0, record_every=record_every,
                                             spike_threshold=spike_threshold)
    trace = trace if trace is not None else _run(
        params, stim, grid, y0, batch=tuple(batch), n_steps=n_steps, dt=float(dt), method=method,
        record_every=int(record_every), checkpoint_every=checkpoint_every,
        spike_threshold=None if spike_threshold is None else float(spike_threshold),
        layout=batch_layout(int(np.prod(batch))) if batch else (1, None),
    )
    _warn_if_diverged(trace, method, dt)
    return trace


def _warn_if_diverged(trace, method, dt):
    if isinstance(trace.diverged, jax.core.Tracer):
        return
    n_bad = int(np.sum(np.asarray(trace.diverged)))
    if n_bad:
        advice = "reduce dt" + ("" if method == "exp_euler" else " or use 'exp_euler'")
        warnings.warn(
            f"simulate: {n_bad} neuron(s) diverged (non-finite or |V| > 1000 mV) with "
            f"method={method!r}, dt={dt} ms; {advice}, or check the parameters. "
            f"See trace.diverged.",
            RuntimeWarning,
            stacklevel=3,
        )


def final_state(trace: Trace):
    """The last recorded state of a trace (for chaining simulations).

    Example:
        >>> import hhjax
        >>> rest = final_state(hhjax.simulate(hhjax.presets.NEURON, 0.0, duration=5.0, dt=0.025))
        >>> round(float(rest.v), 1)   # mV; continue with hhjax.simulate(..., y0=rest)
        -65.0
    """
    return jax.tree_util.tree_map(lambda x: x[..., -1], trace.state)


def state_fields(state) -> dict:
    """``{name: array}`` of a state pytree."""
    return as_dict(state)
