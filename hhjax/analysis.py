"""Analysis of traces: spikes, rates, f–I curves, rheobase, conductances and currents.

Everything here is ``jnp`` and works under ``jit`` and ``vmap``; spike times come back as a
fixed-size padded array plus a count, so shapes never depend on the data.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from ._inputs import whole_steps
from ._pytree import pytree_dataclass
from .models import model_of
from .simulate import final_state, simulate, steady_state
from .stimulus import constant


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


def conductances(params, trace_or_state):
    """Channel conductances (mS/cm²) along a trace: ``{"na": g_Na(t), "k": ..., "l": ...}``.

    Example:
        >>> import hhjax
        >>> tr = hhjax.simulate(hhjax.presets.NEURON, 10.0, duration=20.0, dt=0.025)
        >>> sorted(conductances(hhjax.presets.NEURON, tr))
        ['k', 'l', 'na']
    """
    state = getattr(trace_or_state, "state", trace_or_state)
    model = model_of(params)
    p = jax.tree_util.tree_map(lambda x: jnp.asarray(x)[..., None], params) if _has_time(state) else params
    return {name: jnp.broadcast_to(g, jnp.shape(state.v)) for name, (g, _) in model.channels(p, state).items()}


def currents(params, trace_or_state):
    """Ionic currents (µA/cm², outward positive as in NEURON): ``I = g (V - E)``.

    Seed 000 plots inward-positive currents, ``g (E - V)``; that is ``-currents(...)``.

    Example:
        >>> import hhjax
        >>> rest = hhjax.steady_state(hhjax.presets.NEURON, -65.0)
        >>> {k: round(float(i), 2) for k, i in currents(hhjax.presets.NEURON, rest).items()}
        {'na': -1.22, 'k': 4.4, 'l': -3.21}
    """
    state = getattr(trace_or_state, "state", trace_or_state)
    model = model_of(params)
    p = jax.tree_util.tree_map(lambda x: jnp.asarray(x)[..., None], params) if _has_time(state) else params
    return {name: g * (state.v - e) for name, (g, e) in model.channels(p, state).items()}


def _has_time(state):
    return jnp.ndim(state.v) >= 1


def resting_state(params, i_ext=0.0, *, v_guess=None, n_iter=40):
    """The fixed point under a constant current ``i_ext``: gates at steady state and
    ``sum_i g_i(V) (V - e_i) = i_ext``, by damped Newton on ``V`` (differentiable).

    Returns the model state (``v`` in mV). For currents beyond the onset of repetitive
    firing the fixed point exists but is unstable.

    Example:
        >>> import hhjax
        >>> round(float(resting_state(hhjax.presets.NEURON).v), 2)
        -64.97
    """
    return _resting_state(params, jnp.asarray(i_ext), v_guess, n_iter=int(n_iter))


@partial(jax.jit, static_argnames=("n_iter",))
def _resting_state(params, i_ext, v_guess, *, n_iter):
    model = model_of(params)

    def net_current(v):
        s = steady_state(params, v)
        total = -i_ext * model.stimulus_scale(params)
        for g, e in model.channels(params, s).values():
            total = total + g * (v - e)
        return total

    v0 = model.default_voltage(params) if v_guess is None else v_guess
    batch = jnp.broadcast_shapes(jnp.shape(i_ext), *[jnp.shape(x) for x in jax.tree_util.tree_leaves(params)])
    v = jnp.broadcast_to(jnp.asarray(v0, jnp.zeros(()).dtype), batch)

    def newton(v, _):
        f = net_current(v)
        df = jax.grad(lambda x: jnp.sum(net_current(x)))(v)
        dv = jnp.clip(-f / jnp.where(jnp.abs(df) > 1e-12, df, 1e-12), -10.0, 10.0)
        return v + dv, None

    v, _ = jax.lax.scan(newton, v, None, length=n_iter)
    return steady_state(params, v)
