"""Excitability: firing rates, f–I curves and rheobase (all ``jnp``, batched in one call)."""

from __future__ import annotations

import math
from typing import Any, Optional

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ..simulation.inputs import whole_steps
from .spikes import MAX_WIDTH, MIN_INTERVAL, TIME_LEVEL, Spikes, spike_times
from ..simulation.trace import final_state
from ..simulation.entry import simulate
from ..stimulus import constant


def firing_rate(spikes: Spikes, start: float, stop: float) -> jax.Array:
    """Mean firing rate (Hz) of spikes with ``start <= time < stop`` (ms).

    Counts only the stored (first ``max_spikes``) times.

    Example:
        >>> import hhjax
        >>> tr = hhjax.simulate(hhjax.presets.NEURON, hhjax.stimulus.step(10., 10., 90.),
        ...                     duration=100.0, dt=0.025)
        >>> float(firing_rate(spike_times(tr.t, tr.v), 10.0, 90.0))   # 6 spikes in 80 ms
        75.0
    """
    inside = (spikes.times >= start) & (spikes.times < stop)
    return 1000.0 * jnp.sum(inside, axis=-1) / (stop - start)


def fi_curve(params: Any, amplitudes: ArrayLike, *, start: float = 10.0, stop: float = 510.0,
             duration: Optional[float] = None, dt: float = 0.025, method: str = "exp_euler",
             threshold: float = TIME_LEVEL) -> jax.Array:
    """Firing rate (Hz) for each step amplitude, all simulated in one batched call.

    Spikes are found by :func:`hhjax.spike_times` (the package's one rule) on V recorded at
    0.1 ms (or every step for ``dt > 0.1``); the run continues ``MAX_WIDTH`` (10 ms) past
    ``stop`` under the same current so that a spike begun before ``stop`` is complete.

    Args:
        params: model parameters (may be batched; broadcast against ``amplitudes``).
        amplitudes: step currents (µA/cm², or pA for area-based models), any shape.
        start, stop: step window (ms), multiples of ``dt``; the rate is the number of spikes
            timed inside ``[start, stop)`` over its length (rebound spikes after the step and
            spontaneous ones before it do not count).
        duration: unused (the simulation ends at ``stop``); kept for old calls.
        dt: time step (ms).
        threshold: the level (mV) that times a spike (see :func:`hhjax.spike_times`); it
            does not decide what is a spike.

    Returns:
        Rates in Hz, shape ``broadcast(params, amplitudes)``.

    Example:
        >>> import jax.numpy as jnp, hhjax
        >>> rates = fi_curve(hhjax.presets.NEURON, jnp.array([0.0, 10.0]), stop=210.0)
        >>> rates.tolist()[0], rates.tolist()[1] > 50
        (0.0, True)
    """
    del duration
    if not 0.0 <= start < stop:
        raise ValueError(f"fi_curve: need 0 <= start < stop (ms), got start={start}, stop={stop}")
    n_before, n_window = (_steps_in(x, dt, name) for x, name in ((start, "start"), (stop - start, "stop - start")))
    # Run up to the step once (it does not depend on the amplitude), then detect spikes
    # over the window only, starting from that state.
    y0 = None
    if n_before:
        y0 = final_state(simulate(params, 0.0, duration=start, dt=dt, method=method,
                                  record_every=n_before, spike_threshold=None))
    every = max(1, int(0.1 / dt + 1e-9))
    n_steps = -(-(n_window + int(math.ceil(MAX_WIDTH / dt))) // every) * every
    trace = simulate(params, constant(amplitudes), duration=n_steps * dt, dt=dt, method=method,
                     y0=y0, record_every=every, spike_threshold=None)
    window = stop - start
    spikes = spike_times(trace.t, trace.v, threshold=threshold,
                         max_spikes=int(window / MIN_INTERVAL) + 2)
    return firing_rate(spikes, 0.0, window)


def _steps_in(interval, dt, name):
    n = whole_steps(interval, dt)
    if n is None:
        raise ValueError(f"fi_curve: {name} = {interval} ms is not a multiple of dt = {dt} ms")
    return n


def rheobase(params: Any, *, lo: float = 0.0, hi: float = 50.0, start: float = 10.0, stop: float = 210.0,
             dt: float = 0.025, n_iter: int = 6, points: int = 8, method: str = "exp_euler",
             threshold: float = TIME_LEVEL) -> jax.Array:
    """Smallest step current (µA/cm² or pA) that elicits a spike, by vectorised k-section.

    Each iteration simulates ``points`` currents inside every bracket in one batched call
    and shrinks the bracket ``points + 1``-fold, so ``n_iter=6`` with ``points=8`` gives a
    resolution of ``(hi - lo) / 9**6``. Returns ``nan`` where ``hi`` does not spike.

    Example:
        >>> import hhjax
        >>> round(float(rheobase(hhjax.presets.NEURON, hi=20.0, n_iter=4)), 1)
        2.2
    """

    def spikes_at(params, amps):
        return fi_curve(params, amps, start=start, stop=stop, dt=dt, method=method,
                        threshold=threshold) > 0

    batch = jnp.broadcast_shapes(*[jnp.shape(x) for x in jax.tree_util.tree_leaves(params)])
    lo_b = jnp.broadcast_to(jnp.asarray(lo, jnp.zeros(()).dtype), batch)
    hi_b = jnp.broadcast_to(jnp.asarray(hi, jnp.zeros(()).dtype), batch)
    # A trailing axis on every leaf lines each neuron's parameters up with its own currents.
    params_b = jax.tree_util.tree_map(lambda x: jnp.asarray(x)[..., None], params)
    ok = spikes_at(params_b, hi_b[..., None])[..., 0]
    frac = jnp.arange(1, points + 1) / (points + 1)
    for _ in range(n_iter):
        amps = lo_b[..., None] + (hi_b - lo_b)[..., None] * frac
        fired = spikes_at(params_b, amps)
        # First firing point: bracket becomes (previous point, that point].
        first = jnp.argmax(fired, axis=-1)
        any_fired = jnp.any(fired, axis=-1)
        new_hi = jnp.where(any_fired, jnp.take_along_axis(amps, first[..., None], -1)[..., 0], hi_b)
        prev = jnp.take_along_axis(amps, jnp.maximum(first - 1, 0)[..., None], -1)[..., 0]
        new_lo = jnp.where(any_fired, jnp.where(first > 0, prev, lo_b), amps[..., -1])
        lo_b, hi_b = new_lo, new_hi
    return jnp.where(ok, hi_b, jnp.nan)
