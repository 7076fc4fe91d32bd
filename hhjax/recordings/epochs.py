"""Protocol epochs of a current-clamp sweep, and the features that follow from them.

A sweep's command current is cut into straight pieces (Douglas–Peucker on ``(t, i)`` after
splitting at jumps), which covers what rigs send:

* the **holding current**: the level of the first constant piece (the sweep's start);
* **steps**: constant pieces away from holding (pre-pulses, dual steps with a
  hyperpolarising epoch between them, test pulses);
* **ramps**: pieces whose current changes by more than the tolerance along the piece
  (a slow ramp in every sweep, or a ramp after a step).

A measured (noisy) current is median-filtered over ~1 ms first and only cut at jumps.

From the epochs, with ONE spike rule (:func:`detect`, the package's detector) applied alike
to observed and simulated voltage, :func:`epoch_features` gives

* ``rate_hz`` per depolarising epoch (spikes from its start to 2 ms after its end / its
  duration) and for the sweep (all depolarising epochs pooled: the f–I point); None
  when the sweep has no depolarising epoch;
* ``spontaneous_hz``: spikes in the *baseline windows* (current at holding, from
  ``SETTLE_MS`` after the previous epoch, ``REBOUND_MS`` after a hyperpolarising one, whose
  rebound spikes are a response, not spontaneous firing) / their duration; None without
  such windows;
* ``rest_mV``: the median voltage of the longest baseline window before the first epoch
  longer than ``TEST_PULSE_MS`` (the pre-stimulus window, or one after a test pulse; else
  the longest baseline window), and only when no baseline window holds a spike. A cell that
  fires spontaneously has no resting potential on that sweep: None, not a number;
* ``rebound_spikes``: spikes from the end of each hyperpolarising epoch to ``REBOUND_MS``
  after it (or to the next epoch, if sooner): the response to release, which a cell
  with a T-type Ca current (low-threshold spiking) or a strong Ih makes;
* ``start_spikes``: spikes in the pre-stimulus window (before the first epoch; the whole
  sweep if it has none). A cell that fires there was already firing when the sweep began:
  :func:`fires_at_start` is the rule by which a model run starts firing too
  (:func:`hhjax.recordings.evaluation.model_start`).

A short spike-free baseline does not prove a cell quiet (a cell firing at 5 Hz is often
silent for 150 ms), so :func:`cell_rests` applies the rule across a recording: where two or
more sweeps fire spontaneously at a holding current (or its only sweep does), no sweep at
that holding current has a rest. One spike in the baseline of one sweep of several (a
synaptic event in a slice, an afterdischarge long after a strong step) takes that sweep's
rest alone: a cell that fires spontaneously shows it on more than one sweep.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from ..analysis.spikes import spike_train

SETTLE_MS = 100.0    # a baseline window starts this long after the previous epoch ends
REBOUND_MS = 300.0   # ... or this long after a hyperpolarising epoch (rebound spikes are not spontaneous)
MIN_BASE_MS = 10.0   # shortest baseline window used for the resting potential
TEST_PULSE_MS = 50.0  # an epoch no longer than this is a test pulse: the rest may be read after it
RATE_TAIL_MS = 2.0   # a spike up to this long after an epoch ends belongs to it
CLEAN_TOL_PA = 1.0   # amplitude tolerance for command waveforms (pA)
_SHAPE_TOL_PA = 0.02  # Douglas–Peucker tolerance for command waveforms (pA), at least one stair:
# a ramp stored or resampled as a staircase (a quantised DAC, 4 kHz resampled to 10 kHz) strays from its
# line by up to one stair, and 0.02 pA alone cut one such ramp into 131-194 pieces


@dataclasses.dataclass(frozen=True)
class Epoch:
    """One protocol epoch: ``start``/``stop`` (ms); ``amp`` (pA above holding: the step
    level, or for a ramp the end with the larger excursion); ``kind`` "step" or "ramp";
    ``amp_start``/``amp_stop`` the current above holding at either end (pA)."""

    start: float
    stop: float
    amp: float
    kind: str = "step"
    amp_start: float | None = None
    amp_stop: float | None = None

    @property
    def depolarising(self) -> bool:
        return self.amp > 0


def detect(t: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Spike times (ms) of one trace: the ONE place the recordings code detects spikes, by
    the package's common rule (:func:`hhjax.analysis.spikes.spike_train`).

    >>> t = np.arange(0.0, 10.0, 0.1); v = np.where((t > 3) & (t < 4), 20.0, -70.0)
    >>> np.round(detect(t, v), 2).tolist()   # the 0 mV crossing, interpolated
    [3.08]
    """
    return np.asarray(spike_train(np.asarray(t, float), np.asarray(v, float)))


def _douglas_peucker(x, y, tol):
    """Indices of the breakpoints of a piecewise-linear approximation of ``y(x)`` within ``tol``."""
    keep, stack = {0, x.size - 1}, [(0, x.size - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        xs, ys = x[a:b + 1], y[a:b + 1]
        line = y[a] + (y[b] - y[a]) * (xs - x[a]) / (x[b] - x[a])
        k = int(np.argmax(np.abs(ys - line)))
        if abs(ys[k] - line[k]) > tol:
            keep.add(a + k)
            stack += [(a, a + k), (a + k, b)]
    return sorted(keep)


def robust_sd(x) -> float:
    """1.4826 times the median absolute deviation of ``x``: the SD of Gaussian noise, in
    ``x``'s units, which a few outliers (spikes, the edges of steps) barely move.

    >>> round(robust_sd(np.random.default_rng(0).normal(0.0, 2.0, 10_000)), 1)
    2.0
    """
    x = np.asarray(x, float)
    return 1.4826 * float(np.median(np.abs(x - np.median(x))))


def parse_epochs(t: np.ndarray, i: np.ndarray, *, min_ms: float = 2.0) -> tuple:
    """Holding current (pA) and the list of :class:`Epoch` of one sweep.

    Args:
        t: sample times (ms), uniform. i: injected current (pA), command or measured.
        min_ms: shorter pieces are ignored (settling of a measured current).

    Returns:
        ``(hold_pA, [Epoch, ...])`` in time order.

    Example (a -50 pA pre-pulse, a step to +40 pA, then a ramp from 0 to 30 pA):
        >>> t = np.arange(0, 1000, 0.1)
        >>> i = np.where((t >= 100) & (t < 200), -50., 0.) + np.where((t >= 300) & (t < 500), 40., 0.)
        >>> i = i + np.where(t >= 600, (t - 600) * 0.075, 0.) + 5.0
        >>> hold, ep = parse_epochs(t, i)
        >>> hold, [(e.kind, round(e.start), round(e.stop), round(e.amp)) for e in ep]
        (5.0, [('step', 100, 200, -50), ('step', 300, 500, 40), ('ramp', 600, 1000, 30)])
    """
    t, i = np.asarray(t, float), np.asarray(i, float)
    if t.ndim != 1 or t.shape != i.shape or t.size < 3:
        raise ValueError("parse_epochs: t and i must be 1-D arrays of the same length (>= 3)")
    dt = float(t[1] - t[0])
    n0 = max(3, int(round(min(20.0, 0.05 * (t[-1] - t[0])) / dt)))
    head = i[:n0]
    noise = robust_sd(head)
    clean = 5.0 * noise <= CLEAN_TOL_PA
    tol = CLEAN_TOL_PA if clean else 5.0 * noise
    if not clean:  # measured current: median filter over ~1 ms, then cut at jumps only
        from scipy.ndimage import median_filter  # scipy: a dependency of hhjax already

        i = median_filter(i, size=max(3, int(round(1.0 / dt)) | 1), mode="nearest")
    di = np.diff(i)
    big = np.abs(di) > tol
    if clean:  # a steep ramp changes by more than tol every sample, and as much two samples away;
        # a step changes once (or over two samples, where resampling splits it), so keep those
        near = np.maximum(np.abs(np.r_[0.0, 0.0, di[:-2]]), np.abs(np.r_[di[2:], 0.0, 0.0]))
        big &= np.abs(di) > 3.0 * near
    jumps = np.flatnonzero(big) + 1
    bounds = np.concatenate([[0], jumps, [i.size]])
    pieces = []  # (a, b, level_a, level_b, change that makes it a ramp) with b exclusive
    for a, b in zip(bounds[:-1], bounds[1:]):
        if clean and b - a > 2:
            stair = 2.0 * float(np.max(np.abs(np.diff(i[a:b]))))  # a resampled stair is split over <= 2 samples
            cuts = _douglas_peucker(t[a:b], i[a:b], max(_SHAPE_TOL_PA, stair))
            for c0, c1 in zip(cuts[:-1], cuts[1:]):
                # A ramp changes by more than two of its own stairs (a plateau whose first
                # sample is the steep ramp's last, off by a fraction of a stair, is a step).
                own = 2.0 * float(np.max(np.abs(np.diff(i[a + c0: a + c1 + 1]))))
                pieces.append((a + c0, a + c1 + 1 if c1 == b - a - 1 else a + c1, i[a + c0], i[a + c1], max(tol, own)))
        else:
            med = float(np.median(i[a:b]))
            pieces.append((a, b, med, med, tol))
    first = pieces[0]
    hold = float(np.median(i[first[0]:first[1]])) if abs(first[3] - first[2]) <= first[4] else float(np.median(head))
    epochs = []
    for a, b, ia, ib, ramp_tol in pieces:
        if (b - a) * dt < min_ms:
            continue
        start, stop = float(t[a]), float(t[b - 1] + dt)
        if abs(ib - ia) > ramp_tol:  # ramp
            da, db = ia - hold, ib - hold
            epochs.append(Epoch(start, stop, db if abs(db) >= abs(da) else da, "ramp", float(da), float(db)))
            continue
        amp = float(np.median(i[a:b])) - hold
        if abs(amp) <= tol:
            continue
        prev = epochs[-1] if epochs else None
        if prev is not None and prev.kind == "step" and abs(prev.amp - amp) <= tol and start - prev.stop <= min_ms:
            epochs[-1] = dataclasses.replace(prev, stop=stop)
        else:
            epochs.append(Epoch(start, stop, amp, "step", amp, amp))
    return hold, epochs


def baseline_windows(t, epochs, *, settle_ms: float = SETTLE_MS, rebound_ms: float = REBOUND_MS) -> list:
    """``[(start, stop), ...]`` (ms) where the current is at holding: before the first
    epoch, and from ``settle_ms`` after each epoch (``rebound_ms`` after a hyperpolarising
    one: a low-threshold cell's rebound burst comes 50–200 ms after release) to the next
    (or the sweep's end).

    >>> baseline_windows(np.arange(0.0, 1000.0, 1.0), [Epoch(100.0, 300.0, 50.0)])
    [(0.0, 100.0), (400.0, 999.0)]
    >>> baseline_windows(np.arange(0.0, 1000.0, 1.0), [Epoch(100.0, 300.0, -50.0)])
    [(0.0, 100.0), (600.0, 999.0)]
    """
    t0, t_end = float(t[0]), float(t[-1])
    out, cursor = [], t0
    for e in epochs:
        if e.start > cursor:
            out.append((cursor, e.start))
        cursor = max(cursor, e.stop + (rebound_ms if e.amp < 0 else settle_ms))
    if t_end > cursor:
        out.append((cursor, t_end))
    return [(a, b) for a, b in out if b - a > 0]


def _count(spikes, a, b):
    return int(np.sum((spikes >= a) & (spikes < b)))


def epoch_features(t: np.ndarray, v: np.ndarray, epochs: list) -> dict:
    """Spikes, per-epoch and sweep rates, spontaneous rate and rest of one trace (see the
    module docstring). Units: ms, mV, Hz, pA.

    >>> t = np.arange(0, 600, 0.1)
    >>> v = np.full_like(t, -70.0); v[(t > 300) & (t < 301)] = 20.0    # one spike in the step
    >>> f = epoch_features(t, v, [Epoch(200.0, 400.0, 50.0)])
    >>> f["spikes"], f["rate_hz"], f["rest_mV"], f["spontaneous_hz"]
    (1, 5.0, -70.0, 0.0)
    """
    t, v = np.asarray(t, float), np.asarray(v, float)
    spikes = detect(t, v)
    per = []
    for e in epochs:
        n = _count(spikes, e.start, e.stop + RATE_TAIL_MS)
        per.append({"start": e.start, "stop": e.stop, "kind": e.kind, "amp_pA": e.amp, "spikes": n,
                    "rate_hz": 1000.0 * n / (e.stop - e.start)})
    depol = [p for p in per if p["amp_pA"] > 0]
    dur = sum(p["stop"] - p["start"] for p in depol)
    rate = 1000.0 * sum(p["spikes"] for p in depol) / dur if depol else None
    base = baseline_windows(t, epochs)
    base_ms = sum(b - a for a, b in base)
    n_base = sum(_count(spikes, a, b) for a, b in base)
    spont = 1000.0 * n_base / base_ms if base_ms > 0 else None
    n_start = _count(spikes, float(t[0]), epochs[0].start if epochs else float(t[-1]) + 1.0)
    rest = None
    long_enough = [(a, b) for a, b in base if b - a >= MIN_BASE_MS]
    if n_base == 0 and long_enough:
        # A test pulse leaves no trace by the time the next window starts (SETTLE_MS or
        # REBOUND_MS later); a longer epoch may (18711001's rests read 0.6 mV higher 300 ms
        # after its 300 ms, -100 pA pre-pulse). So the windows before the first longer epoch,
        # and the longest of them: a test pulse 20 ms into the sweep (Allen Cell Types, and
        # many rigs) must not leave the rest to the 20 ms before it, where membrane noise
        # moves it by 1-3 mV.
        first_long = min((e.start for e in epochs if e.stop - e.start > TEST_PULSE_MS), default=np.inf)
        quiet = [w for w in long_enough if w[1] <= first_long]
        a, b = max(quiet or long_enough, key=lambda w: w[1] - w[0])
        rest = float(np.median(v[(t >= a) & (t < b)]))
    starts = [e.start for e in epochs[1:]] + [np.inf]
    n_rebound = sum(_count(spikes, e.stop, min(e.stop + REBOUND_MS, nxt)) for e, nxt in zip(epochs, starts)
                    if e.amp < 0)
    amps = [e.amp for e in epochs]
    current = max(amps) if any(a > 0 for a in amps) else (min(amps) if amps else 0.0)
    return {"spike_times": spikes, "spikes": int(spikes.size), "rate_hz": rate, "rest_mV": rest,
            "spontaneous_hz": spont, "spontaneous_spikes": n_base, "start_spikes": n_start,
            "rebound_spikes": n_rebound,
            "current_pA": float(current),
            "epochs": per}


def current_levels(currents_pA: Sequence[float], tol_pA: float = CLEAN_TOL_PA) -> np.ndarray:
    """The level of each current (pA) among ``currents_pA``: 0 for the lowest, counting up.
    Sorted currents at most ``tol_pA`` apart are one level, because a measured command
    differs from sweep to sweep by fractions of a pA. The package's one rule for "the same
    current" across sweeps (holding currents, step amplitudes).

    >>> current_levels([100.3, 0.0, 99.8, 50.0]).tolist()
    [2, 0, 2, 1]
    """
    x = np.asarray(currents_pA, float).reshape(-1)
    order = np.argsort(x, kind="stable")
    level = np.zeros(x.size, int)
    level[order[1:]] = np.cumsum(np.diff(x[order]) > tol_pA)
    return level


def cell_rests(features: list, holds: list, *, tol_pA: float = CLEAN_TOL_PA) -> list:
    """Rests (mV or None) of a recording's sweeps: each sweep's ``rest_mV``, except None for
    every sweep whose holding current (pA; the same level by :func:`current_levels`) is one
    at which the cell fires spontaneously: two or more of its sweeps hold spikes in their
    baselines, or its only sweep does (the module docstring says why one is not enough).
    ``features``: :func:`epoch_features` of each sweep.

    >>> quiet, fired = {"rest_mV": -70.0, "spontaneous_spikes": 0}, {"rest_mV": None, "spontaneous_spikes": 4}
    >>> cell_rests([quiet, fired, fired, {"rest_mV": -60.0, "spontaneous_spikes": 0}], [0.0, 0.0, 0.0, 50.0])
    [None, None, None, -60.0]
    >>> cell_rests([quiet, fired, quiet], [0.0, 0.0, 0.0])     # one sweep's stray spike
    [-70.0, None, -70.0]
    """
    level = current_levels(holds, tol_pA)
    n_sweeps = np.bincount(level)
    n_fired = np.bincount(level, weights=[f["spontaneous_spikes"] > 0 for f in features], minlength=n_sweeps.size)
    firing = n_fired >= np.minimum(2, n_sweeps)
    return [None if firing[level[k]] else f["rest_mV"] for k, f in enumerate(features)]


def fires_at_start(features: dict) -> bool:
    """Whether the cell was firing when the sweep began: a spike in its pre-stimulus window
    (``features`` from :func:`epoch_features`). The state a sweep starts from is a boundary
    condition, like its holding current: it depends on the cell's history before the sweep
    (e.g. whether the previous sweep left a bistable cell firing or silent), which the file
    does not hold, but the pre-stimulus window shows which of the two it was.

    >>> fires_at_start({"start_spikes": 2}), fires_at_start({"start_spikes": 0})
    (True, False)
    """
    return features["start_spikes"] > 0
