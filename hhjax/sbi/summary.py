"""Summary statistics of voltage traces for simulation-based inference (``jnp``, run under jit).

:func:`goncalves_summary` follows the Hodgkin–Huxley example of Gonçalves et al. (2020),
*eLife* 9:e56261 (and sbi's HH tutorial): for a current step from ``t_on`` to ``t_off`` (ms)

====================  ===============================================================  =====
name                  definition                                                       unit
====================  ===============================================================  =====
``spike_count``       spikes timed at ``t_on <= t < t_off`` by hhjax's one detector    1
                      (:func:`hhjax.spike_times`; a spike's time is its upward
                      crossing of ``threshold``, as in the paper)
``rest_mean``         mean V for ``t < t_on``                                          mV
``rest_std``          std of V over the last 10 % of the time before ``t_on``          mV
``v_mean``            mean V for ``t_on <= t < t_off``                                 mV
``v_std``             its standard deviation                                           mV
``v_skew``            its skewness, ``m3 / m2^1.5`` (central moments)                  1
``v_kurtosis``        its kurtosis, ``m4 / m2^2`` (not excess: 3 for a Gaussian)       1
``v_autocorr``        autocorrelation of V during the step at ``lag`` ms               1
====================  ===============================================================  =====

A custom summary is any function ``summary(trace) -> array (n, k)`` written in ``jnp`` (it
runs inside the simulator's ``jit``); :func:`hhjax.sbi.simulator` NaNs rows whose
simulation diverged.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..analysis.spikes import MAX_WIDTH, MIN_INTERVAL, spike_times

GONCALVES_NAMES = ("spike_count", "rest_mean", "rest_std", "v_mean", "v_std", "v_skew",
                   "v_kurtosis", "v_autocorr")


def goncalves_summary(trace, t_on: float, t_off: float, *, sample_dt: float | None = None,
                      threshold: float = 0.0, lag: float = 1.0):
    """The 8 statistics of :data:`GONCALVES_NAMES` for each trace, shape ``batch + (8,)``.

    Args:
        trace: a :class:`hhjax.Trace` (``t`` in ms, ``v`` in mV), sampled finely enough to
            see each spike cross ``threshold`` (0.1 ms is plenty).
        t_on, t_off: the step's start and end (ms); some time before ``t_on`` is needed.
        sample_dt: the trace's sampling interval (ms, ``dt * record_every``); read from
            ``trace.t`` when omitted, which is impossible under ``jit`` (the windows become
            static slices, much faster than masks).
        threshold: spike timing level (mV): a spike counts when its upward crossing of
            it lies in the step (detection itself is :func:`hhjax.spike_times`' rule).
        lag: autocorrelation lag (ms), rounded to whole samples.

    Example:
        >>> import hhjax
        >>> tr = hhjax.simulate(hhjax.presets.POSPISCHIL, hhjax.stimulus.step(300.0, 50.0, 250.0),
        ...                     duration=300.0, dt=0.025, record_every=4)
        >>> s = goncalves_summary(tr, 50.0, 250.0)
        >>> int(s[0]), round(float(s[1]), 1)    # spikes during the step, resting V (mV)
        (11, -71.0)
    """
    t, v = trace.t, jnp.asarray(trace.v)  # NumPy float64 input computes in JAX's float dtype
    if sample_dt is None:
        try:
            sample_dt = float(t[1] - t[0])
        except jax.errors.ConcretizationTypeError:
            raise ValueError("sample_dt: give the sampling interval (ms) when calling "
                             "goncalves_summary under jit") from None
    n = v.shape[-1]
    i_on, i_off, i_late = (min(n, math.ceil(x / sample_dt - 1e-6)) for x in (t_on, t_off, 0.9 * t_on))
    k = max(1, round(lag / sample_dt))
    if not (0 < i_late < i_on < i_off < n and i_off - i_on > k):
        raise ValueError(f"t_on, t_off: need time before t_on={t_on} and a step longer than the "
                         f"lag within the trace ({n} samples every {sample_dt} ms), got t_off={t_off}")
    # The detector runs on the step plus room for a spike's rise before t_on and its fall
    # after t_off (MAX_WIDTH); a spike counts where its time lies in [t_on, t_off).
    m = math.ceil(MAX_WIDTH / sample_dt)
    a, b = max(0, i_on - m), min(n, i_off + m)
    seg_t = jnp.arange(a, b, dtype=v.dtype) * sample_dt
    spikes = spike_times(seg_t, v[..., a:b], threshold=threshold,
                         max_spikes=math.ceil((b - a) * sample_dt / MIN_INTERVAL) + 1)
    slot = jnp.arange(spikes.times.shape[-1])
    count = jnp.sum((slot < spikes.count[..., None]) & (spikes.times >= t_on) & (spikes.times < t_off), axis=-1)
    rest_mean = jnp.mean(v[..., :i_on], axis=-1)
    rest_std = jnp.std(v[..., i_late:i_on], axis=-1)
    on = v[..., i_on:i_off]
    mean = jnp.mean(on, axis=-1)
    d = on - mean[..., None]
    d2 = d * d
    m2 = jnp.mean(d2, axis=-1)
    m3 = jnp.mean(d2 * d, axis=-1)
    m4 = jnp.mean(d2 * d2, axis=-1)
    autocorr = jnp.mean(d[..., :-k] * d[..., k:], axis=-1) / m2
    return jnp.stack([count.astype(v.dtype), rest_mean, rest_std, mean, jnp.sqrt(m2),
                      m3 / m2 ** 1.5, m4 / (m2 * m2), autocorr], axis=-1)
