"""Excitability: firing rates, f–I curves and rheobase (all ``jnp``, batched in one call)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from ..simulation.inputs import whole_steps
from .spikes import Spikes, spike_times
from ..models import model_of
from ..simulation.trace import final_state
from ..simulation.entry import simulate
from ..models.steady import steady_state
from ..stimulus import constant


def firing_rate(spikes: Spikes, start, stop):
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


def fi_curve(params, amplitudes, *, start=10.0, stop=510.0, duration=None, dt=0.025,
             method="exp_euler", threshold=0.0):
    """Firing rate (Hz) for each step amplitude, all simulated in one batched call.

    Args:
        params: model parameters (may be batched; broadcast against ``amplitudes``).
        amplitudes: step currents (µA/cm², or pA for area-based models), any shape.
        start, stop: step window (ms), multiples of ``dt``; the rate is the number of spikes
            inside ``[start, stop)`` over its length (rebound spikes after the step and
            spontaneous ones before it do not count).
        duration: unused (the simulation ends at ``stop``); kept for old calls.
        dt: time step (ms).

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
    # Run up to the step once (it does not depend on the amplitude), then count spikes over
    # the window only, starting from that state.
    y0 = None
    if n_before:
        y0 = final_state(simulate(params, 0.0, duration=start, dt=dt, method=method,
                                  record_every=n_before, spike_threshold=None))
    trace = simulate(params, constant(amplitudes), duration=stop - start, dt=dt, method=method,
                     y0=y0, record_every=n_window, spike_threshold=threshold)
    return 1000.0 * trace.spike_count / (stop - start)


def _steps_in(interval, dt, name):
    n = whole_steps(interval, dt)
    if n is None:
        raise ValueError(f"fi_curve: {name} = {interval} ms is not a multiple of dt = {dt} ms")
    return n


def rheobase(params, *, lo=0.0, hi=50.0, start=10.0, stop=210.0, dt=0.025, n_iter=6,
             points=8, method="exp_euler", threshold=0.0):
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
    lo = jnp.broadcast_to(jnp.asarray(lo, jnp.zeros(()).dtype), batch)
    hi = jnp.broadcast_to(jnp.asarray(hi, jnp.zeros(()).dtype), batch)
    # A trailing axis on every leaf lines each neuron's parameters up with its own currents.
    params_b = jax.tree_util.tree_map(lambda x: jnp.asarray(x)[..., None], params)
    ok = spikes_at(params_b, hi[..., None])[..., 0]
    frac = jnp.arange(1, points + 1) / (points + 1)
    for _ in range(n_iter):
        amps = lo[..., None] + (hi - lo)[..., None] * frac
        fired = spikes_at(params_b, amps)
        # First firing point: bracket becomes (previous point, that point].
        first = jnp.argmax(fired, axis=-1)
        any_fired = jnp.any(fired, axis=-1)
        new_hi = jnp.where(any_fired, jnp.take_along_axis(amps, first[..., None], -1)[..., 0], hi)
        prev = jnp.take_along_axis(amps, jnp.maximum(first - 1, 0)[..., None], -1)[..., 0]
        new_lo = jnp.where(any_fired, jnp.where(first > 0, prev, lo), amps[..., -1])
        lo, hi = new_lo, new_hi
    return jnp.where(ok, hi, jnp.nan)
