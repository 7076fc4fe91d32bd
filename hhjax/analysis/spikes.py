"""Spike detection: one rule for observed and simulated traces, at any sampling rate.

Every part of hhjax that asks "how many spikes, and when?" calls :func:`spike_times`
(``jnp``, batched, jit/vmap-friendly) or its host wrapper :func:`spike_peaks` (NumPy, for
feature extraction); nothing else compares V with a threshold to find spikes. The one
exception is the cheap in-loop counter of :func:`hhjax.simulate` (``Trace.spike_count``),
an upward crossing of :data:`COUNT_THRESHOLD` counted at every solver step.

The rule
--------
A spike is an excursion of V that **rises fast by at least** ``min_amplitude`` **and then
falls by at least** ``min_amplitude`` **below its peak within** ``max_width``. Formally, a
single pass over the samples (a ``lax.scan`` state machine) keeps

* a *slew-limited trough* ``T_i = min(V_i, T_{i-1} + slow_rate * (t_i - t_{i-1}))``: the
  lowest recent voltage, which follows V upwards no faster than ``slow_rate``. So
  ``V_i - T_i >= A`` means that for some earlier sample j, ``V_i - V_j >= A +
  slow_rate * (t_i - t_j)``: 20.5 mV within 1 ms, 25 mV within 10 ms, 40 mV within 40 ms.
  That opens a candidate spike (the trough restarts from V when a candidate ends);
* the candidate's *peak*: its highest sample while ``V - T >= A`` still holds (so noise on
  a plateau reached by a slow rise cannot keep raising it). The spike is accepted when V
  falls to ``peak - A``, and dropped when V has not done so ``max_width`` after the peak
  (a step, a plateau, a charging curve, a bridge-balance jump). An accepted spike within
  ``min_interval`` of the previous one is dropped too;
* the spike's *time* is the last upward crossing of ``threshold`` (default 0 mV, linearly
  interpolated) between the previous spike and the peak, as in NEURON's ``NetCon`` and the
  Radau references of the tests; a spike that never reaches ``threshold`` (a plateau spike,
  or an undersampled one at 4 kHz) is timed at its peak sample. ``threshold`` affects only
  timing, never detection.

Only differences of V enter the rule, so it is the same on a hyperpolarised baseline, on
a depolarised plateau and under a constant offset (liquid-junction potential, a model's
``v_offset``). It needs no derivative, so it works from 4 kHz (4 samples per spike
upstroke) to any finer sampling. A spike whose fall is not in the trace (it ends mid-spike)
and one already under way at the first sample are not counted. Noise is tolerated up to
about 2 mV RMS white at 50 kHz (and more when band-limited, as amplifier filters make it;
rigs record < 1 mV RMS); white noise of 4 mV RMS sample to sample does fake spikes.

Defaults and why (the one place they are defined)
-------------------------------------------------

=================  ===========  =========================================================
parameter          default      physiological reason
=================  ===========  =========================================================
``min_amplitude``  20 mV        Na+ spikes rise 60-110 mV from their trough; plateau
                                spikes of cells near depolarisation block still rise
                                about 30 mV (-20 to +10 mV). Recording noise (< 1 mV
                                RMS), EPSPs (< 10 mV), and the oscillations of
                                depolarisation block (a few mV) stay well below 20 mV.
``slow_rate``      0.5 mV/ms    Only forgets troughs older than A / slow_rate = 40 ms
                                (a few membrane time constants), so V must rise A
                                "recently". Spike upstrokes (>= 10 mV/ms; the broad
                                plateau-like spikes of 17o05028 sweep 15: ~12 mV/ms)
                                lose < 5 % of their rise to it; slow humps (Ca2+, sag,
                                EPSP summation: <= 1 mV/ms over tens of ms) do not open.
``max_width``      10 ms        Na+ spikes fall 20 mV below their peak within 0.5-3 ms
                                (half-widths 0.2-2 ms, room temperature and 6.3 degC
                                squid included); steps, plateaus and charging curves
                                last >= one membrane time constant (10-30 ms).
``min_interval``   1 ms         The absolute refractory period: no neuron fires
                                faster than 1 kHz.
``threshold``      0 mV         Timing level only (see above).
=================  ===========  =========================================================

Spike counts of every sweep of the recordings in ``data/recordings`` were counted by eye and are
in ``tests/data/spike_counts.csv``; the detector matches all 95. The defaults sit inside
the range that does (each changed alone: ``min_amplitude`` 6-25 mV, ``slow_rate``
0.1-1 mV/ms, ``max_width`` 5-20 ms, ``min_interval`` 1-3 ms all match every sweep), not at
its edge. ``scripts/compare_detectors.py`` compares the rule with eFEL and IPFX.

>>> import numpy as np
>>> t = np.arange(0, 50, 0.05)                           # 20 kHz, 50 ms
>>> v = -20 + 30 * np.exp(-((t[:, None] - [10, 25, 40]) / 0.5) ** 2).sum(1)  # 3 plateau spikes
>>> int(spike_times(t, v).count)
3
>>> int(spike_times(t, -20 + 3 * np.sin(t)).count)      # depolarisation block: no spikes
0
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .._pytree import pytree_dataclass
from ..simulation.trace import COUNT_THRESHOLD

MIN_AMPLITUDE = 20.0  # mV: rise over the slew-limited trough, and fall below the peak
SLOW_RATE = 0.5       # mV/ms: the trough follows V upwards no faster than this
MAX_WIDTH = 10.0      # ms: the fall must come within this time after the peak
MIN_INTERVAL = 1.0    # ms: closer spikes are dropped
TIME_LEVEL = COUNT_THRESHOLD  # mV (0): a spike's time is its upward crossing of this level
SPIKE_RULE = {"min_amplitude_mV": MIN_AMPLITUDE, "slow_rate_mV_per_ms": SLOW_RATE,
              "max_width_ms": MAX_WIDTH, "min_interval_ms": MIN_INTERVAL, "time_level_mV": TIME_LEVEL}
"""The defaults as a JSON-ready record (written into evaluation results)."""


@pytree_dataclass
class Spikes:
    """Detected spikes, padded to ``max_spikes`` along the last axis, and the true ``count``.

    ``times`` (ms; upward ``threshold`` crossing, or the peak, see the module docstring)
    and ``peak_times`` (ms) are padded with ``inf``, ``peak_v`` (mV) with ``nan`` and
    ``peak_index`` (the peak's sample, int32) with ``-1``. ``count``
    (int32) may exceed ``max_spikes``; then only the first ``max_spikes`` spikes are kept.
    """

    times: jax.Array
    count: jax.Array
    peak_times: jax.Array
    peak_v: jax.Array
    peak_index: jax.Array


def spike_times(t: ArrayLike, v: ArrayLike, *, threshold: float = TIME_LEVEL, max_spikes: int = 64,
                min_amplitude: float = MIN_AMPLITUDE, slow_rate: float = SLOW_RATE,
                max_width: float = MAX_WIDTH, min_interval: float = MIN_INTERVAL) -> Spikes:
    """Detect spikes in ``v`` (mV) sampled at ``t`` (ms) by the module's rule.

    Works on NumPy or JAX arrays, under ``jit`` and ``vmap``; any leading batch axes of
    ``v`` are detected independently (one ``lax.scan`` over time for the whole batch).

    Args:
        t: sample times (ms), shape ``(n,)`` (increasing, any spacing) or ``v``'s shape.
        v: voltage (mV), shape ``batch + (n,)``.
        threshold: timing level (mV); does not affect detection.
        max_spikes: size of the padded outputs (static).
        min_amplitude (mV), slow_rate (mV/ms), max_width (ms), min_interval (ms): the
            rule's parameters; the defaults are justified in the module docstring.

    Returns:
        :class:`Spikes` with arrays of shape ``batch + (max_spikes,)`` and ``count`` of
        shape ``batch``.

    Example:
        >>> import hhjax
        >>> tr = hhjax.simulate(hhjax.presets.NEURON, hhjax.stimulus.step(10., 10., 90.),
        ...                     duration=100.0, dt=0.025)
        >>> sp = spike_times(tr.t, tr.v)
        >>> int(sp.count), round(float(sp.times[0]), 1)
        (6, 11.9)
    """
    t, v = jnp.asarray(t), jnp.asarray(v)
    if not jnp.issubdtype(v.dtype, jnp.floating):
        v = v.astype(jnp.zeros(()).dtype)
    if v.ndim < 1 or t.ndim < 1 or t.shape[-1] != v.shape[-1]:
        raise ValueError(f"spike_times: t and v must share their last axis (samples), got shapes "
                         f"{t.shape} and {v.shape}")
    if int(max_spikes) < 1:
        raise ValueError(f"spike_times: max_spikes must be >= 1, got {max_spikes}")
    rule = jnp.asarray([threshold, min_amplitude, slow_rate, max_width, min_interval], v.dtype)
    return _detect(t.astype(v.dtype), v, rule, max_spikes=int(max_spikes))


@partial(jax.jit, static_argnames=("max_spikes",))
def _detect(t, v, rule, *, max_spikes):
    level, amp, rate, width, gap = (rule[k] for k in range(5))
    batch, n = v.shape[:-1], v.shape[-1]
    shared = t.ndim == 1                                  # one time axis for the batch
    t = t if shared else jnp.broadcast_to(t, v.shape)
    vs = jnp.moveaxis(v.reshape(-1, n), -1, 0)          # (n, B): scan over time
    ts = t if shared else jnp.moveaxis(t.reshape(-1, n), -1, 0)
    n_b = vs.shape[1]
    rows = jnp.arange(n_b)
    inf = jnp.asarray(jnp.inf, v.dtype)
    nan = jnp.asarray(jnp.nan, v.dtype)

    def step(c, x):
        v_i, t_i, v_p, t_p, i = x
        trough = jnp.minimum(v_i, c["trough"] + rate * (t_i - t_p))
        # the upward crossing of the timing level that V has stayed above since (else nan)
        up = (v_p < level) & (v_i >= level)
        t_up = t_p + (level - v_p) / jnp.where(up, v_i - v_p, 1.0) * (t_i - t_p)
        cross = jnp.where(up, t_up, jnp.where(v_i < level, nan, c["cross"]))
        risen = v_i - trough >= amp
        trigger = ~c["on"] & risen
        on = c["on"] | trigger
        higher = trigger | (on & risen & (v_i > c["pv"]))   # only a fast rise raises the peak
        pv = jnp.where(higher, v_i, c["pv"])
        pt = jnp.where(higher, t_i, c["pt"])
        pi = jnp.where(higher, i, c["pi"])
        pc = jnp.where(higher, cross, c["pc"])               # crossing before the peak
        fell = on & (v_i <= pv - amp)
        wide = on & ~fell & (t_i - pt > width)
        emit = fell & (pt - c["last"] >= gap * (1.0 - 1e-4))   # 1e-4: float32 sample times
        slot = jnp.where(emit & (c["count"] < max_spikes), c["count"], max_spikes)
        # one flat scatter per step (out-of-range slots are dropped)
        flat = jnp.where(slot < max_spikes, rows * max_spikes + slot, n_b * max_spikes)
        out = c["out"].at[flat].set(jnp.where(jnp.isnan(pc), pt, pc), mode="drop")
        idx = c["idx"].at[flat].set(pi, mode="drop")
        end = fell | wide
        return {"trough": jnp.where(end, v_i, trough), "on": on & ~end, "pv": pv, "pt": pt, "pi": pi, "pc": pc,
                "cross": cross, "last": jnp.where(emit, pt, c["last"]),
                "count": c["count"] + emit, "out": out, "idx": idx}, None

    zeros = jnp.zeros(n_b, v.dtype)
    init = {"trough": vs[0], "on": jnp.zeros(n_b, bool), "pv": zeros, "pt": zeros,
            "pi": jnp.zeros(n_b, jnp.int32), "pc": zeros + nan, "cross": zeros + nan,
            "last": zeros - inf, "count": jnp.zeros(n_b, jnp.int32),
            "out": jnp.full((n_b * max_spikes,), inf, v.dtype),
            "idx": jnp.full((n_b * max_spikes,), -1, jnp.int32)}
    steps = jnp.arange(1, n, dtype=jnp.int32)
    c, _ = jax.lax.scan(step, init, (vs[1:], ts[1:], vs[:-1], ts[:-1], steps))
    idx = c["idx"].reshape(batch + (max_spikes,))
    kept = idx >= 0
    at = jnp.maximum(idx, 0)
    return Spikes(times=c["out"].reshape(batch + (max_spikes,)), count=c["count"].reshape(batch),
                  peak_times=jnp.where(kept, t[at] if shared else jnp.take_along_axis(t, at, -1), inf),
                  peak_v=jnp.where(kept, jnp.take_along_axis(v, at, -1), nan), peak_index=idx)


def _all_spikes(t, v, rule):
    """Every spike of one 1-D trace (host; the padded size grows as needed), times in ms."""
    t, v = np.asarray(t, float), np.asarray(v, float)
    if t.ndim != 1 or t.shape != v.shape:
        raise ValueError(f"t and v must be 1-D of one length, got shapes {t.shape} and {v.shape}")
    if t.size < 2:
        return np.zeros(0, int), np.zeros(0)
    k = 64
    while True:
        # times relative to the first sample keep float32 precise on long recordings
        sp = spike_times(t - t[0], v, max_spikes=k, **rule)
        n = int(sp.count)
        if n <= k:
            return np.asarray(sp.peak_index)[:n].astype(int), np.asarray(sp.times, float)[:n] + t[0]
        k = 1 << int(np.ceil(np.log2(n)))


def spike_peaks(t: Any, v: Any, **rule: float) -> np.ndarray:
    """Sample indices of the spike peaks of one observed or simulated trace (NumPy).

    The host wrapper of :func:`spike_times` for feature extraction: ``t`` (ms) and ``v``
    (mV) are 1-D arrays of any sampling; ``rule`` takes :func:`spike_times`'s keywords.
    Every spike is returned.

    Example:
        >>> t = np.arange(0, 30, 0.25)                   # 4 kHz
        >>> v = -70 + 90 * np.exp(-((t - 10) / 0.4) ** 2)
        >>> spike_peaks(t, v).tolist()
        [40]
    """
    return _all_spikes(t, v, rule)[0]


def spike_train(t: Any, v: Any, **rule: float) -> np.ndarray:
    """Times (ms) of every spike of one 1-D trace, as :func:`spike_times` times them (NumPy).

    Example:
        >>> t = np.arange(0, 30, 0.25)
        >>> v = -70 + 90 * np.exp(-((t - 10) / 0.4) ** 2)
        >>> np.round(spike_train(t, v), 2).tolist()
        [9.83]
    """
    return _all_spikes(t, v, rule)[1]
