"""Summary statistics of voltage traces for simulation-based inference (``jnp``, run under jit).

:func:`goncalves_summary` follows the Hodgkin–Huxley example of Gonçalves et al. (2020),
*eLife* 9:e56261 (and sbi's HH tutorial): for a current step from ``t_on`` to ``t_off`` (ms)

====================  ===============================================================  =====
name                  definition                                                       unit
====================  ===============================================================  =====
``spike_count``       upward crossings of ``threshold`` with ``t_on <= t < t_off``     1
                      (:func:`hhjax.spike_times` and :func:`hhjax.firing_rate`)
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

import jax.numpy as jnp

from ..analysis.excitability import firing_rate
from ..analysis.spikes import spike_times

GONCALVES_NAMES = ("spike_count", "rest_mean", "rest_std", "v_mean", "v_std", "v_skew",
                   "v_kurtosis", "v_autocorr")


def goncalves_summary(trace, t_on: float, t_off: float, *, threshold: float = 0.0,
                      lag: float = 1.0, max_spikes: int = 512):
    """The 8 statistics of :data:`GONCALVES_NAMES` for each trace, shape ``batch + (8,)``.

    Args:
        trace: a :class:`hhjax.Trace` (``t`` in ms, ``v`` in mV), sampled finely enough to
            see each spike cross ``threshold`` (0.1 ms is plenty).
        t_on, t_off: the step's start and end (ms); some time before ``t_on`` is needed.
        threshold: spike detection level (mV). lag: autocorrelation lag (ms), rounded to
            whole samples. max_spikes: spikes stored per trace (more are not counted).

    Example:
        >>> import hhjax
        >>> tr = hhjax.simulate(hhjax.presets.POSPISCHIL, hhjax.stimulus.step(300.0, 50.0, 250.0),
        ...                     duration=300.0, dt=0.025, record_every=4)
        >>> s = goncalves_summary(tr, 50.0, 250.0)
        >>> int(s[0]), round(float(s[1]), 1)    # spikes during the step, resting V (mV)
        (11, -71.0)
    """
    t, v = trace.t, trace.v
    sp = spike_times(t, v, threshold=threshold, max_spikes=max_spikes)
    count = firing_rate(sp, t_on, t_off) * (t_off - t_on) / 1000.0
    dt = t[1] - t[0]
    pre = t < t_on
    late = pre & (t >= 0.9 * t_on)
    rest_mean = _masked_mean(v, pre)
    rest_std = jnp.sqrt(_masked_mean((v - _masked_mean(v, late)[..., None]) ** 2, late))
    on = (t >= t_on) & (t < t_off)
    mean = _masked_mean(v, on)
    d = v - mean[..., None]
    m2 = _masked_mean(d * d, on)
    m3 = _masked_mean(d ** 3, on)
    m4 = _masked_mean(d ** 4, on)
    autocorr = _autocorr(d, on, jnp.maximum(jnp.round(lag / dt).astype(jnp.int32), 1), m2)
    return jnp.stack([count.astype(v.dtype), rest_mean, rest_std, mean, jnp.sqrt(m2),
                      m3 / m2 ** 1.5, m4 / (m2 * m2), autocorr], axis=-1)


def _masked_mean(x, mask):
    return jnp.sum(jnp.where(mask, x, 0.0), axis=-1) / jnp.sum(mask)


def _autocorr(d, mask, k, m2):
    """``mean(d[i] d[i+k]) / m2`` over pairs with both samples inside ``mask`` (``d``:
    deviations from the mean; ``k`` samples, may be traced)."""
    n = mask.shape[-1]
    both = mask & jnp.roll(mask, -k) & (jnp.arange(n) < n - k)
    return _masked_mean(d * jnp.roll(d, -k, axis=-1), both) / m2
