"""``simulate``: the one entry point. It checks its inputs, then hands the call to the
first backend that supports it (:mod:`hhjax.simulation.backends`)."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import warnings
import jax
import jax.numpy as jnp

from .. import _validate as check
from .inputs import GATE_RULES, PARAM_RULES, _batch_shape, _check_finite, _check_record, _check_time, _check_y0
from . import memory
from .backends import SimulationCall, run_call
from .sharding import count_true
from .trace import COUNT_THRESHOLD, DIVERGENCE_BOUND, Trace
from ..models import model_of
from ..solvers import get_step
from ..stimulus import as_stimulus


def simulate(params: Any, stimulus: Any = 0.0, *, duration: float, dt: float, method: str = "exp_euler",
             y0: Any = None, record_every: int = 1, checkpoint_every: Optional[int] = None,
             spike_threshold: Optional[float] = COUNT_THRESHOLD, shard: Optional[bool] = None,
             max_memory: Optional[int] = None, record: Optional[Sequence[str]] = None) -> Trace:
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
        spike_threshold: voltage (mV, default :data:`~hhjax.simulation.trace.COUNT_THRESHOLD`)
            whose upward crossings are counted at every step into ``trace.spike_count`` (a
            cheap in-loop count; evaluation uses :func:`hhjax.spike_times`); ``None``
            disables counting.
        shard: split a batch over all devices of the default backend (CPU devices, GPUs,
            every process's devices under ``jax.distributed``); results stay sharded.
            ``None`` (default): yes unless the environment variable ``HHJAX_SHARD=0``;
            ``False``: one device. See :mod:`hhjax.simulation.sharding`.
        max_memory: bytes the call may use (default: what the device has free, or the
            ``HHJAX_MAX_MEMORY`` environment variable). Before compiling, the peak is
            estimated (1.25x the trace, measured; 1.8x under 16 MB); a call over it runs in chunks of neurons
            when the result fits, else raises a one-line ``MemoryError`` with the fix.
        record: names of the state variables to record, e.g. ``("v",)``; the others are
            never stored and are ``None`` in the trace. ``None`` (default) records all.

    Returns:
        A :class:`Trace` with ``t`` (ms) and the state variables (``v`` in mV, gates).

    Backends: classic HH with ``exp_euler`` in float32 under constant or step currents, with
    concrete (not traced) inputs, runs on a fused kernel: Pallas on a GPU, C++ on a CPU
    (:mod:`hhjax.simulation.cpu_kernel`); everything else, and every call under ``jit``,
    ``grad`` or ``vmap``, on the reference ``lax.scan`` loop.
    :func:`hhjax.simulation.last_backend` names the one that ran the latest call.

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
    check.params(params)
    model = model_of(params)
    n_steps = _check_time(duration, dt, record_every, checkpoint_every)
    get_step(method)
    check.stimulus(stimulus)
    check.threshold(spike_threshold)
    check.number(max_memory, "max_memory", "bytes", low=0.0, low_open=True, allow_none=True)
    _check_finite(params, "params", rules=PARAM_RULES)
    _check_finite(stimulus, "stimulus")
    _check_y0(y0, model.state_type, GATE_RULES)
    recorded = _check_record(record, model.state_type)

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
    call = SimulationCall(
        params=params, stim=stim, grid=grid, y0=y0, batch=tuple(batch), n_steps=n_steps, dt=float(dt),
        method=method, record_every=int(record_every), checkpoint_every=checkpoint_every,
        spike_threshold=None if spike_threshold is None else float(spike_threshold),
        shard=shard, record=recorded)
    chunk = memory.plan(call, max_memory if max_memory is not None else memory.max_memory_from_env())
    trace = run_call(call) if chunk is None else memory.run_chunked(call, chunk, run_call)
    _warn_if_diverged(trace, method, dt)
    return trace


def _warn_if_diverged(trace, method, dt):
    if isinstance(trace.diverged, jax.core.Tracer):
        return
    n_bad = count_true(trace.diverged)  # on the devices: diverged may span processes
    if n_bad:
        advice = "reduce dt" + ("" if method == "exp_euler" else " or use 'exp_euler'")
        warnings.warn(
            f"simulate: {n_bad} neuron(s) diverged (non-finite, |V| > {DIVERGENCE_BOUND:g} mV or a gate outside [0, 1]) with "
            f"method={method!r}, dt={dt} ms; {advice}, or check the parameters. "
            f"See trace.diverged.",
            RuntimeWarning,
            stacklevel=3,
        )


