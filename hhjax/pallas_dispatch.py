"""When :func:`hhjax.simulate` hands a call to the fused Pallas kernel
(:mod:`hhjax.pallas_hh`), and the fallback to the reference path when the kernel fails."""

from __future__ import annotations

import os
import warnings

import jax
import jax.numpy as jnp

from . import pallas_hh
from ._inputs import _float_dtype
from .models.hh import HHParams
from .stimulus import Constant

__all__ = ["applies", "enabled", "try_simulate"]


def enabled() -> bool:
    """Whether ``HHJAX_PALLAS`` allows :func:`hhjax.simulate` to use the kernel (not "0")."""
    return os.environ.get("HHJAX_PALLAS", "1").strip().lower() not in ("0", "false", "no", "off")


_FAILED: list[str] = []  # set once lowering/compiling failed on this process's GPU


def _backend() -> str:
    """The platform a call would run on: ``jax.default_device`` if set, else the default backend."""
    device = jax.config.jax_default_device
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


def applies(params, stim, *, method, checkpoint_every, y0=None) -> bool:
    """Whether :func:`hhjax.simulate` may run this call on the kernel (the conditions are listed in :mod:`hhjax.pallas_hh`)."""
    return (
        not _FAILED
        and enabled()
        and _backend() == "gpu"
        and type(params) is HHParams
        and type(stim) is Constant
        and method == "exp_euler"
        and checkpoint_every is None
        and _float_dtype() == jnp.float32
        and _concrete((params, stim, y0))
        and _not_committed_elsewhere((params, stim, y0))
    )


def try_simulate(params, stim, *, batch, n_steps, dt, y0, record_every, spike_threshold):
    """The kernel's trace for :func:`hhjax.simulate`, or ``None`` if the kernel failed to
    lower, compile or run here: then warn once and leave this and every later call to the
    reference path. Out-of-memory errors are raised (the reference needs at least as much)."""
    try:
        # simulate reads trace.diverged right after (to warn), so waiting here costs nothing.
        # simulate has checked the inputs and found batch and n_steps; simulate_pallas
        # would do it again.
        return jax.block_until_ready(pallas_hh._launch(
            params, jnp.asarray(stim.amplitude), y0, batch=batch, n_steps=n_steps, dt=dt,
            record_every=record_every,
            spike_threshold=None if spike_threshold is None else float(spike_threshold)))
    except Exception as exc:  # noqa: BLE001 (any lowering/compile failure -> reference)
        if "RESOURCE_EXHAUSTED" in str(exc) or "out of memory" in str(exc).lower():
            raise
        _FAILED.append(f"{type(exc).__name__}: {exc}")
        warnings.warn(
            "hhjax.simulate: the Pallas HH kernel failed on this GPU "
            f"({type(exc).__name__}: {str(exc)[:300]}); using the reference path from now on "
            "(set HHJAX_PALLAS=0 to skip the attempt).",
            RuntimeWarning, stacklevel=3)
        return None
