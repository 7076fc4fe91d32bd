"""Fused kernels write records time-major, padded to whole blocks of neurons; these turn
them into the :class:`~hhjax.Trace` layout (batch axes first, time last)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp


def _padded_size(size, block):
    """The batch rounded up to whole programs of ``block`` neurons (the kernel's outputs)."""
    return -(-size // block) * block


_TRANSPOSES: dict = {}


def _compiled_transpose(shape, size, batch):
    """:func:`_batch_major` compiled for ``shape`` before the kernel runs: XLA's GPU
    autotuner allocates scratch copies of its operands while compiling (two records' worth),
    which on a first call made after the kernel's outputs exist put the peak at 1.76x the
    trace instead of 1.25x (H100, N = 1e6)."""
    key = (shape, size, batch, str(jax.config.jax_default_device))  # compiled for one device
    if key not in _TRANSPOSES:
        if len(_TRANSPOSES) >= 64:
            _TRANSPOSES.clear()
        _TRANSPOSES[key] = _batch_major.lower(jax.ShapeDtypeStruct(shape, jnp.float32),
                                              size=size, batch=batch).compile()
    return _TRANSPOSES[key]


@partial(jax.jit, static_argnames=("size", "batch"))
def _batch_major(x, *, size, batch):
    """``(..., padded)`` kernel output -> ``batch + (...)`` (the :class:`~hhjax.Trace` layout)."""
    x = x[..., :size]
    return jnp.moveaxis(x, -1, 0).reshape(tuple(batch) + x.shape[:-1])
