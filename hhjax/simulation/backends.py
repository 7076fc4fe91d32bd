"""Backends as strategies: each says whether it supports a call and runs it.

:func:`hhjax.simulate` checks its inputs once, packs them into a :class:`SimulationCall`,
and asks :data:`BACKENDS` in order; the first that supports the call and returns a trace
wins. Today: the fused Pallas kernel (GPU, :mod:`hhjax.simulation.pallas`), the fused
C++ kernel (CPU, :mod:`hhjax.simulation.cpu_kernel`), then the reference ``lax.scan`` loop
(:mod:`hhjax.simulation.scan`), which supports everything. A backend that fails at run
time returns ``None`` and the next one runs the call. :func:`last_backend` names the
backend that ran the latest call.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp

import dataclasses
from typing import Any, Optional, Protocol

from . import cpu_kernel
from . import pallas as pallas_hh
from . import scan
from . import sharding
from .devices import batch_layout
from .trace import Trace, kernel_failed
from .._pytree import as_dict, float_dtype
from ..models.hh import HHParams
from ..stimulus import Constant

__all__ = ["SimulationCall", "Backend", "PallasBackend", "CpuKernelBackend", "ScanBackend",
           "BACKENDS", "run_call", "enabled", "last_backend"]


def enabled() -> bool:
    """Whether ``HHJAX_PALLAS`` allows :func:`hhjax.simulate` to use the kernel (not "0")."""
    return os.environ.get("HHJAX_PALLAS", "1").strip().lower() not in ("0", "false", "no", "off")


_FAILED: list[str] = []  # set once lowering/compiling failed on this process's GPU


def _backend() -> str:
    """The platform a call would run on: ``jax.default_device`` if set, else the default backend."""
    device = jax.config.jax_default_device  # type: ignore[attr-defined]
    if device is None:
        return jax.default_backend()
    return device if isinstance(device, str) else device.platform


def _concrete(tree) -> bool:
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(tree))


def _not_committed_elsewhere(tree) -> bool:
    """No input is pinned to a non-GPU device (``jax.device_put(x, cpu)`` runs the call there)."""
    return not any(isinstance(x, jax.Array) and x.committed
                   and any(d.platform != "gpu" for d in x.devices())
                   for x in jax.tree_util.tree_leaves(tree))


def _on_one_device(tree) -> bool:
    """Some input is committed to a single device (an explicit ``jax.device_put``)."""
    return any(isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer) and x.committed
               and len(x.sharding.device_set) == 1 and jax.device_count() > 1
               for x in jax.tree_util.tree_leaves(tree))


def applies(params, stim, *, method, checkpoint_every, y0=None) -> bool:
    """Whether :func:`hhjax.simulate` may run this call on the kernel (the conditions are listed in :mod:`hhjax.simulation.pallas`)."""
    return (
        not _FAILED
        and enabled()
        and _backend() == "gpu"
        and type(params) is HHParams
        and type(stim) is Constant
        and method == "exp_euler"
        and checkpoint_every is None
        and float_dtype() == jnp.float32
        and _concrete((params, stim, y0))
        and _not_committed_elsewhere((params, stim, y0))
    )


def try_simulate(params, stim, *, batch, n_steps, dt, y0, record_every, spike_threshold,
                 layout=(1, None), record=None) -> Optional[Trace]:
    """The kernel's trace for :func:`hhjax.simulate`, or ``None`` if the kernel failed to
    lower, compile or run here: then warn once and leave this and every later call to the
    reference path. Out-of-memory errors are raised (the reference needs at least as much)."""
    try:
        # simulate reads trace.diverged right after (to warn), so waiting here costs nothing.
        # simulate has checked the inputs and found batch and n_steps; simulate_pallas
        # would do it again.
        if layout[0] > 1:  # one kernel per device, each on its shard (shard_map)
            return _keep(jax.block_until_ready(sharding.run_pallas_sharded(
                params, jnp.asarray(stim.amplitude), y0, batch=batch, n_steps=n_steps, dt=dt,
                record_every=record_every, n_shards=layout[0], padded=layout[1],
                spike_threshold=None if spike_threshold is None else float(spike_threshold))),
                record)
        trace = jax.block_until_ready(pallas_hh._launch(
            params, jnp.asarray(stim.amplitude), y0, batch=batch, n_steps=n_steps, dt=dt,
            record_every=record_every,
            spike_threshold=None if spike_threshold is None else float(spike_threshold),
            gates=record is None or any(k != "v" for k in record)))
        return _keep(trace, record)
    except Exception as exc:  # noqa: BLE001 (any lowering/compile failure -> reference)
        kernel_failed(exc, _FAILED, "the Pallas HH kernel failed on this GPU", "reference path", "HHJAX_PALLAS",
                      stacklevel=3)
        return None


@dataclasses.dataclass(frozen=True)
class SimulationCall:
    """One checked call of :func:`hhjax.simulate`: what a backend needs to run it.

    ``stim`` is a callable stimulus or ``None`` when ``grid`` (an array sampled on the
    simulation grid, time last) drives the run. ``batch`` is the broadcast batch shape,
    ``n_steps`` the number of steps of ``dt`` ms. ``shard``: split the batch over devices
    (``None``: as ``HHJAX_SHARD`` says; see :mod:`hhjax.simulation.sharding`).
    """

    params: Any
    stim: Any
    grid: Any
    y0: Any
    batch: tuple
    n_steps: int
    dt: float
    method: str
    record_every: int
    checkpoint_every: Optional[int]
    spike_threshold: Optional[float]
    shard: Optional[bool] = None
    record: Optional[tuple] = None  # names of the state variables to record; None: all

    @property
    def layout(self) -> tuple:
        """``(n_shards, padded)`` of the flat batch (:func:`batch_layout`); one device when
        an input was placed on one device explicitly (``jax.device_put(x, device)``) or a
        default device is set (``jax.default_device``): the call runs there."""
        if not self.batch:
            return (1, None)
        size = 1
        for d in self.batch:
            size *= int(d)
        pinned = getattr(jax.config, "jax_default_device", None) is not None or _on_one_device(
            (self.params, self.stim, self.grid, self.y0))
        return batch_layout(size, False if pinned else self.shard)


class Backend(Protocol):
    """A way to run a :class:`SimulationCall`."""

    name: str

    def supports(self, call: SimulationCall) -> bool:
        """Whether this backend can run ``call`` (cheap; no compilation)."""

    def run(self, call: SimulationCall) -> Optional[Trace]:
        """The trace, or ``None`` if the backend failed here and the next should run it."""


class PallasBackend:
    """The fused Pallas kernel on a GPU (:mod:`hhjax.simulation.pallas`)."""

    name = "pallas"

    def supports(self, call: SimulationCall) -> bool:
        return call.grid is None and applies(call.params, call.stim, method=call.method,
                                             checkpoint_every=call.checkpoint_every, y0=call.y0)

    def run(self, call: SimulationCall) -> Optional[Trace]:
        return try_simulate(call.params, call.stim, batch=call.batch, n_steps=call.n_steps, dt=call.dt,
                            y0=call.y0, record_every=call.record_every,
                            spike_threshold=call.spike_threshold, layout=call.layout,
                            record=call.record)


class CpuKernelBackend:
    """The fused C++ kernel on a CPU (:mod:`hhjax.simulation.cpu_kernel`): classic HH,
    ``exp_euler``, float32, constant or step currents, concrete inputs."""

    name = "cpu_kernel"

    def supports(self, call: SimulationCall) -> bool:
        return (call.grid is None
                and call.n_steps < 2**31  # the kernel counts steps in int32
                and call.method == "exp_euler"
                and call.checkpoint_every is None
                and type(call.params) is HHParams
                and cpu_kernel.enabled()
                and _backend() == "cpu"
                and float_dtype() == jnp.float32
                and cpu_kernel.supports_stimulus(call.stim)
                and _concrete((call.params, call.stim, call.y0))
                and _on_one_cpu_device((call.params, call.stim, call.y0))
                and cpu_kernel.available_or_note())

    def run(self, call: SimulationCall) -> Optional[Trace]:
        return cpu_kernel.try_simulate(call.params, call.stim, call.y0, batch=call.batch,
                                       n_steps=call.n_steps, dt=call.dt,
                                       record_every=call.record_every,
                                       spike_threshold=call.spike_threshold,
                                       record=call.record)


def _on_one_cpu_device(tree) -> bool:
    """No input is committed to a non-CPU device or spread over several devices (the
    kernel runs on one device and uses every core itself)."""
    return not any(isinstance(x, jax.Array) and x.committed
                   and (len(x.devices()) > 1 or any(d.platform != "cpu" for d in x.devices()))
                   for x in jax.tree_util.tree_leaves(tree))


def _keep(trace: Trace, record) -> Trace:
    """``trace`` with the state variables outside ``record`` set to None."""
    if record is None:
        return trace
    state = trace.state
    fields = {k: (x if k in record else None) for k, x in as_dict(state).items()}
    return dataclasses.replace(trace, state=type(state)(**fields))


class ScanBackend:
    """The reference ``lax.scan`` loop (:mod:`hhjax.simulation.scan`): every model, method,
    stimulus and transformation (``jit``, ``grad``, ``vmap``)."""

    name = "scan"

    def supports(self, call: SimulationCall) -> bool:
        return True

    def run(self, call: SimulationCall) -> Trace:
        layout = call.layout
        uneven = sharding.splits_unevenly(layout, call.batch)
        trace = scan._run(
            call.params, call.stim, call.grid, call.y0, batch=call.batch, n_steps=call.n_steps,
            dt=call.dt, method=call.method, record_every=call.record_every,
            checkpoint_every=call.checkpoint_every, spike_threshold=call.spike_threshold,
            layout=layout, record=call.record, trim=not uneven)
        return sharding.gather_uneven(trace, call.batch) if uneven else trace


BACKENDS: tuple = (PallasBackend(), CpuKernelBackend(), ScanBackend())
"""The backends :func:`hhjax.simulate` asks, in order."""

_LAST: list = [None]


def last_backend() -> Optional[str]:
    """The name of the backend that ran this process's latest :func:`hhjax.simulate` call
    (``"pallas"``, ``"cpu_kernel"`` or ``"scan"``; under ``jit`` the call is traced once,
    on ``"scan"``), or None before the first call.

    Example:
        >>> import hhjax
        >>> _ = hhjax.simulate(hhjax.presets.NEURON, 10.0, duration=1.0, dt=0.025, method="rk4")
        >>> hhjax.simulation.last_backend()
        'scan'
    """
    return _LAST[0]


def run_call(call: SimulationCall, backends: tuple = BACKENDS) -> Trace:
    """Run ``call`` on the first backend that supports it and succeeds."""
    for backend in backends:
        if backend.supports(call):
            trace = backend.run(call)
            if trace is not None:
                _LAST[0] = backend.name
                return trace
    raise RuntimeError("simulate: no backend ran this call")  # ScanBackend supports every call
