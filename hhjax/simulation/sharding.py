"""Populations on every device: the neuron batch split over all devices of the default
backend (CPU cores, GPUs, and under ``jax.distributed`` every process's devices).

:func:`hhjax.simulate` lays a flat batch out with :func:`hhjax.simulation.batch_layout` and
splits it over :func:`neuron_mesh`. The reference loop asks XLA to split it (sharding
constraints); on GPUs :func:`run_pallas_sharded` runs the fused kernel on each device's
shard with ``shard_map``, so the time loop has no cross-device traffic. Results stay
where they were computed (``trace.v.sharding``); :func:`count_true` reduces on the devices.

Switch it off with ``simulate(..., shard=False)`` or the environment variable
``HHJAX_SHARD=0`` (everything then runs on the default device).

The switch is read on every call of :func:`hhjax.simulate`. Inside a function that is
traced once and reused (your own ``jax.jit``, and the simulations inside :func:`hhjax.fit`),
it is read when that function is traced: a later change applies to new traces only
(``jax.clear_caches()`` forces them).

A batch whose size does not divide by the number of devices is padded (copies of the last
neuron), computed split over the devices, and cut back afterwards. JAX cannot hold an
unevenly split array, so in one process :func:`gather_uneven` brings such results (cut to
the batch) to the default device, uncommitted: one copy, not one per device, and they mix
with any other array. Under ``jax.distributed`` they come back replicated on every device
(each process must be able to read them); there, build the batch with
:func:`hhjax.distributed.population`, which rounds its size up to a whole number per device.
"""

from __future__ import annotations

import functools
import os
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from . import pallas as pallas_hh
from .._pytree import as_dict
from ..models.hh import HHState
from .trace import Trace

AXIS = "neurons"
"""The mesh axis the neuron batch is split along."""


def shard_enabled(shard=None) -> bool:
    """Whether :func:`hhjax.simulate` splits batches over devices: ``shard`` if given,
    else the environment variable ``HHJAX_SHARD`` (anything but "0", "false", "no",
    "off" means yes; unset means yes).

    >>> shard_enabled(False)
    False
    """
    if shard is not None:
        return bool(shard)
    return os.environ.get("HHJAX_SHARD", "1").strip().lower() not in ("0", "false", "no", "off")


@functools.lru_cache(maxsize=16)
def _mesh(devices: tuple) -> Mesh:
    return Mesh(np.array(devices), (AXIS,))


def neuron_mesh(n_shards: int | None = None) -> Mesh:
    """The one-axis (``"neurons"``) mesh over the first ``n_shards`` devices of the default
    backend (all of them by default; under ``jax.distributed``, those of every process).

    >>> neuron_mesh(1).axis_names
    ('neurons',)
    """
    devices = jax.devices()
    n = len(devices) if n_shards is None else int(n_shards)
    if not 1 <= n <= len(devices):
        raise ValueError(f"n_shards: expected 1..{len(devices)} devices, got {n_shards!r}")
    return _mesh(tuple(devices[:n]))


def neuron_sharding(n_shards: int | None = None, ndim: int = 1, axis: int = 0) -> NamedSharding:
    """A :class:`~jax.sharding.NamedSharding` that splits axis ``axis`` of an ``ndim``-d
    array over :func:`neuron_mesh` (``n_shards`` devices)."""
    spec: list = [None] * ndim
    spec[axis] = AXIS
    return NamedSharding(neuron_mesh(n_shards), PartitionSpec(*spec))


@jax.jit
def _sum_true(x):
    return jnp.sum(jnp.asarray(x, bool), dtype=jnp.int32)


def count_true(x) -> int:
    """The number of ``True`` entries of ``x``, summed where ``x`` lives (only a scalar
    leaves the devices): works on arrays that span several processes, where ``np.asarray``
    is refused.

    >>> count_true(jnp.array([True, False, True]))
    2
    """
    return int(_sum_true(x))


def _flat_padded(x, batch, size, padded, dtype=jnp.float32):
    """``x`` broadcast to ``batch``, flattened and padded with the last neuron to ``padded``."""
    x = jnp.broadcast_to(jnp.asarray(x, dtype), batch).reshape(size)
    return jnp.pad(x, (0, padded - size), mode="edge") if padded > size else x


@partial(jax.jit, static_argnames=("batch", "padded", "n_shards", "n_steps", "dt",
                                   "record_every", "spike_threshold", "block", "gates",
                                   "interpret", "num_warps", "trim"))
def _kernel_on_shards(params, amplitude, y0, *, batch, padded, n_shards, n_steps, dt,
                      record_every, spike_threshold, block, gates, interpret, num_warps, trim=True):
    size = int(np.prod(batch)) if batch else 1
    flat = partial(_flat_padded, batch=batch, size=size, padded=padded)
    params = jax.tree_util.tree_map(flat, params)
    amplitude = flat(amplitude)
    if isinstance(y0, HHState):
        y0 = jax.tree_util.tree_map(flat, y0)
    elif y0 is not None:
        y0 = flat(y0)
    local = padded // n_shards
    P = PartitionSpec(AXIS)

    def per_device(p, a, y):
        t, rec, count, bad = pallas_hh._run(
            p, a, y, batch=(local,), n_steps=n_steps, dt=dt, record_every=record_every,
            spike_threshold=spike_threshold, block=block, gates=gates, interpret=interpret,
            num_warps=num_warps)
        return t, [r[:, :local] for r in rec], count, bad

    n_vars = 4 if gates else 1
    spec_y0 = None if y0 is None else jax.tree_util.tree_map(lambda _: P, y0)
    out = jax.shard_map(
        per_device, mesh=neuron_mesh(n_shards),
        in_specs=(jax.tree_util.tree_map(lambda _: P, params), P, spec_y0),
        out_specs=(PartitionSpec(), [PartitionSpec(None, AXIS)] * n_vars, P, P),
        check_vma=False)(params, amplitude, y0)
    t, rec, count, bad = out
    if not trim:  # still padded and split: gather_uneven cuts it
        return t, rec, count, bad
    return t, rec, count[:size].reshape(batch), bad[:size].reshape(batch)


@partial(jax.jit, static_argnames=("size", "batch"), donate_argnums=0)
def _to_trace_layout(x, *, size, batch):
    return jnp.moveaxis(x[:, :size], -1, 0).reshape(tuple(batch) + x.shape[:1])


def run_pallas_sharded(params, amplitude, y0, *, batch, n_steps, dt, record_every,
                       spike_threshold, n_shards, padded, gates=True, block=None,
                       num_warps=None, interpret=None):
    """The fused kernel (:mod:`hhjax.simulation.pallas`) on ``n_shards`` devices, each on
    its slice of the flat batch padded to ``padded`` neurons (a multiple of ``n_shards``,
    from :func:`hhjax.simulation.batch_layout`). Same arguments and
    :class:`~hhjax.Trace` as the kernel's single-device path; ``interpret`` defaults to
    ``True`` on CPU devices (Pallas' interpreter, for tests)."""
    if padded % n_shards:
        raise ValueError(f"padded: {padded} neurons do not split over {n_shards} devices")
    block = pallas_hh.DEFAULT_BLOCK if block is None else int(block)
    if num_warps is None:
        num_warps = max(1, min(8, block // 32))
    if interpret is None:
        interpret = jax.default_backend() == "cpu"
    uneven = splits_unevenly((n_shards, padded), batch)
    size = int(np.prod(batch)) if batch else 1
    t, rec, count, diverged = _kernel_on_shards(
        params, amplitude, y0, batch=tuple(batch), padded=int(padded), n_shards=int(n_shards),
        n_steps=int(n_steps), dt=float(dt), record_every=int(record_every),
        spike_threshold=spike_threshold, block=block, gates=bool(gates),
        interpret=bool(interpret), num_warps=int(num_warps), trim=not uneven)
    # One variable at a time, each time-major copy donated to its transpose: the peak stays
    # about one variable above the trace, as on one device.
    keep, shape = (padded, (padded,)) if uneven else (size, tuple(batch))
    records = [_to_trace_layout(rec.pop(0), size=keep, batch=shape) for _ in range(len(rec))]
    v = records[0]
    m, h, n = records[1:] if gates else (None, None, None)
    trace = Trace(t=t, state=HHState(v=v, m=m, h=h, n=n), spike_count=count, diverged=diverged)
    return gather_uneven(trace, batch) if uneven else trace


def splits_unevenly(layout, batch) -> bool:
    """Whether a batch of shape ``batch`` laid out as ``layout`` (``(n_shards, padded)``
    from :func:`hhjax.simulation.batch_layout`) is split over several devices of this one
    process but does not divide over them: its results are cut back with
    :func:`gather_uneven`.

    >>> splits_unevenly((2, 304), (301,)), splits_unevenly((2, 304), (302,))
    (True, False)
    """
    n_shards, padded = layout
    size = int(np.prod(batch)) if batch else 0
    return bool(batch) and n_shards > 1 and size % n_shards != 0 and jax.process_count() == 1


def gather_uneven(trace: Trace, batch) -> Trace:
    """``trace`` of a padded flat batch (neurons first, still split over the devices), cut
    to ``batch`` (the first ``prod(batch)`` neurons) and placed on the default device,
    uncommitted, so it mixes with arrays on any device. One process only (the arrays must
    be addressable here); traced arrays (under ``jit``) are cut in place.

    >>> tr = Trace(t=jnp.zeros(3), state=HHState(v=jnp.ones((4, 3)), m=None, h=None, n=None),
    ...            spike_count=jnp.arange(4), diverged=jnp.zeros(4, bool))
    >>> out = gather_uneven(tr, (3,))
    >>> out.v.shape, out.spike_count.tolist(), out.v.committed
    ((3, 3), [0, 1, 2], False)
    """
    batch = tuple(batch)
    size = int(np.prod(batch))

    def cut(x):
        if x is None:
            return None
        if isinstance(x, jax.core.Tracer):
            return x[:size].reshape(batch + x.shape[1:])
        host = np.asarray(jax.device_get(x))[:size]  # one process: every shard is addressable
        return jnp.asarray(host.reshape(batch + host.shape[1:]))

    state = trace.state
    return Trace(t=trace.t, state=type(state)(**{k: cut(x) for k, x in as_dict(state).items()}),
                 spike_count=cut(trace.spike_count), diverged=cut(trace.diverged))
