"""Spike detection: one rule for observed and simulated traces."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from .._pytree import pytree_dataclass


@pytree_dataclass
class Spikes:
    """Spike times (ms), padded with ``inf`` to ``max_spikes``, and the true ``count``.

    ``count`` may exceed ``max_spikes``; then only the first ``max_spikes`` times are kept.
    """

    times: jax.Array
    count: jax.Array


def spike_times(t, v, *, threshold=0.0, max_spikes=64):
    """Upward crossings of ``threshold`` (mV), one event per crossing, linearly interpolated.

    Args:
        t: sample times (ms), shape ``(n,)``; v: voltage (mV), shape ``batch + (n,)``.
        threshold: crossing level (mV). max_spikes: size of the padded output.

    Returns:
        :class:`Spikes` with ``times`` of shape ``batch + (max_spikes,)`` and ``count``.

    Example:
        >>> import hhjax
        >>> tr = hhjax.simulate(hhjax.presets.NEURON, hhjax.stimulus.step(10., 10., 90.),
        ...                     duration=100.0, dt=0.025)
        >>> sp = spike_times(tr.t, tr.v)
        >>> int(sp.count), round(float(sp.times[0]), 1)
        (6, 11.9)
    """
    return _spike_times(jnp.asarray(t), jnp.asarray(v), jnp.asarray(threshold),
                        max_spikes=int(max_spikes))


@partial(jax.jit, static_argnames=("max_spikes",))
def _spike_times(t, v, threshold, *, max_spikes):
    below, above = v[..., :-1], v[..., 1:]
    crossed = (below < threshold) & (above >= threshold)
    frac = (threshold - below) / jnp.where(crossed, above - below, 1.0)
    t_cross = t[:-1] + frac * (t[1:] - t[:-1])
    n = crossed.shape[-1]
    # top_k of (n - index) over crossings picks the earliest ones, in order; it compiles far
    # faster on CPU than nonzero (which needs a cumsum).
    score = jnp.where(crossed, n - jnp.arange(n), 0)
    k = min(max_spikes, n)
    top, idx = jax.lax.top_k(score, k)
    times = jnp.where(top > 0, jnp.take_along_axis(t_cross, idx, axis=-1), jnp.inf)
    if k < max_spikes:
        times = jnp.concatenate([times, jnp.full(times.shape[:-1] + (max_spikes - k,), jnp.inf, times.dtype)], -1)
    return Spikes(times=times, count=jnp.sum(crossed, axis=-1))
