"""The rows :func:`hhjax.recordings.cell_fit.fit_recording` simulates, and what its loss
needs about each (see that module's docstring), as NumPy arrays.

Besides the voltage, spike counts and times, each row carries what the *regime* terms of
the loss need (:data:`LATE_FRACTION`): the window of the last half of the row's main
depolarising epoch and the observed spike count in it (a cell that keeps firing there
rules out a model in depolarisation block or fallen silent), and the observed shortest
interspike interval (a model ISI under half of it is a burst the cell does not make).

The direct passive estimate (:mod:`hhjax.recordings.start`) takes a row's hyperpolarising
epoch, or, where no row has one, the charging curve of a silent depolarising step (its first
:data:`DEPOL_PASSIVE_MS`, before slow currents such as the M current activate).

Each row starts where its sweep did (``fire0``: the cell was firing before the first epoch,
:func:`hhjax.recordings.epochs.fires_at_start`; the fit then starts that row in the model's
firing state, as :func:`hhjax.recordings.evaluation.evaluate` does).

Spike counts are kept per *segment* of a row (``seg_edges``, ``seg_obs``): each epoch, a
depolarising one with its spikes up to RATE_TAIL_MS after its end, and each baseline
between epochs, so that the fit charges spikes moved from one epoch to another.

Rows end :data:`POST_MS` after their last depolarising epoch (a sweep's f–I point pools all
of them, e.g. both steps of a dual-step protocol, so the fit sees all of them too; without
one, after the main hyperpolarising epoch); when a fitted sweep fires spontaneously, they
run on to the sweep's end (at most :data:`SPONTANEOUS_POST_MS` further), through later
epochs and baselines, so that the spontaneous rate, and whether the cell resumes firing
after a step or stays silent, are fitted too: a rate to 10 % takes seconds of baseline.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator

from .epochs import RATE_TAIL_MS, cell_rests, current_levels, detect, fires_at_start
from .evaluation import stimulus_epochs, sweep_features

POST_MS, MASK_MS = 100.0, (3.0, 6.0)  # fit rows: after the main step; no-spike mask around spikes
SPONTANEOUS_POST_MS = 3000.0  # ... on to the sweep's end, at most this much longer, where the cell fires spontaneously
LATE_FRACTION = 0.5  # the late window is the last half of the main depolarising epoch
# An interpolated row's count: the f–I curve's value at the midway current (fi_curve_centre)
# ± this fraction of the two sweeps' count difference. 0.25 around their mean count met 5 more
# count targets on 30 synthetic cells but cost 171116sh_0018 (92/77/92 -> 69/69/85 % over
# seeds 0-2), so it stays (docs/real_cells.md).
INTERP_BAND = 0.15
DEPOL_PASSIVE_MS = 60.0  # passive estimate on a silent depolarising step: its first 60 ms (slow currents later)


def _nan(x):
    return np.nan if x is None else float(x)


def _passive_window(e, sp, t0, dt):
    """Sample window (from 20 ms before to 100 ms after a hyperpolarising epoch ``e``) for the
    direct passive estimate, cut short before any spike in it; ``(-1, -1)`` if a spike
    falls before the epoch ends. ``sp``: spike times (ms, recording time)."""
    a, b = e.start - 20.0, e.stop + 100.0
    inside = sp[(sp >= a) & (sp < b)]
    if inside.size and inside[0] < e.stop + MASK_MS[0]:
        return (-1, -1)
    if inside.size:
        b = inside[0] - MASK_MS[0]
    return (int((a - t0) // dt), int((b - t0) // dt))


def _regime(sp, main, t0):
    """``(late_start, late_stop, observed late count, observed min ISI)`` of one row (ms from
    the row's start); zeros when the row has no depolarising main epoch."""
    if main is None or main.amp <= 0:
        return 0.0, 0.0, 0, 0.0
    a = main.start + (1.0 - LATE_FRACTION) * (main.stop - main.start)
    end = main.stop + RATE_TAIL_MS  # the epoch's spikes, as its rate counts them
    inside = sp[(sp >= main.start) & (sp < end)]
    isi = float(np.min(np.diff(inside))) if inside.size >= 2 else 0.0
    return a - t0, end - t0, int(np.sum((sp >= a) & (sp < end))), isi


def fi_curve_centre(current_pA: Sequence[float], count: Sequence[float], at_pA: float) -> float:
    """The spike count at ``at_pA`` on the f–I curve through the fitted sweeps' points
    (``current_pA``, ``count``): a monotone piecewise cubic (PCHIP) through the points up to
    the highest count, the sweeps past the peak (depolarisation block) left out.

    An interpolated row holds the count halfway between two fitted sweeps near this value.
    A straight line between the two assumed the curve's shape; the other fitted sweeps (with
    a depolarising step; the strongest silent one at 0 spikes) show it: concave for a cell
    whose rate saturates, convex for one whose rate climbs steeply towards block (a
    synthetic block cell: 42 spikes at the midway current where the line said 62).

    Args:
        current_pA: the fitted sweeps' depolarising step amplitudes (pA).
        count: their spike counts.
        at_pA: where to read the curve (pA); held to the points' range.

    Returns:
        The count there (spikes, a float).

    >>> round(fi_curve_centre([50, 100, 400], [0, 3, 121], 250), 1)   # convex: below the line's 62
    39.9
    >>> fi_curve_centre([100, 300], [4, 10], 200)                        # two points: the line
    7.0
    """
    # Sweeps at one current (current_levels) are one point, at their mean count.
    level = current_levels(current_pA)
    size = np.bincount(level)
    x, y = np.bincount(level, np.asarray(current_pA, float)) / size, np.bincount(level, np.asarray(count, float)) / size
    top = int(np.argmax(y)) + 1
    x, y = x[:top], y[:top]
    at = min(max(float(at_pA), x[0]), x[-1])  # the curve's ends hold on beyond them, never extrapolated
    return float(np.interp(at, x, y) if x.size < 3 else PchipInterpolator(x, y)(at))


def _segment_edges(epochs, t0, stop):
    """Edges (ms from the row's start) cutting a row into its epochs and the baseline
    between them. A depolarising epoch holds the spikes from its start to RATE_TAIL_MS
    after its end, as its rate does (:func:`hhjax.recordings.epochs.epoch_features`),
    unless the next epoch starts sooner."""
    starts = {e.start for e in epochs}
    cuts = set(starts)
    for e in epochs:
        end = e.stop + (RATE_TAIL_MS if e.amp > 0 else 0.0)
        cuts.add(min([end] + [s for s in starts if e.stop <= s < end]))
    return [-1e9, *sorted(round(x - t0, 6) for x in cuts if t0 < x < stop), 1e9]


def fit_rows(rec, dt):
    """The rows to simulate for recording ``rec`` (already on the ``dt`` grid, ms) and the
    loss's data (see the module docstring). Returns ``(data, rows, every, hyper_windows,
    layout)``."""
    t0, t_end = float(rec.t[0]), float(rec.t[0] + rec.duration)
    spans, hyper = [], []
    for k in range(rec.n_sweeps):
        hold, epochs = stimulus_epochs(rec.t, rec.i[k])
        pos = [e for e in epochs if e.amp > 0]
        main = max(pos, key=lambda e: e.amp) if pos else (min(epochs, key=lambda e: e.amp) if epochs else None)
        last = pos[-1] if pos else main  # the f–I point pools every depolarising epoch: fit them all
        stop = min(t_end, last.stop + POST_MS) if last is not None else min(t_end, t0 + 500.0)
        spans.append([k, stop, main, hold, epochs, last])
        hyper += [(e.stop, k) for e in epochs if e.amp < 0]
    if hyper and not any(stop <= spans[k][1] for stop, k in hyper):
        stop, k = min(hyper)
        spans[k][1] = min(t_end, stop + POST_MS)
    feats = [sweep_features(rec.t, rec.v[k], ep) for k, _, _, _, ep, _ in spans]
    if any(f["spontaneous_spikes"] for f in feats):  # the baseline after a step is data too
        for span in spans:
            span[1] = min(t_end, span[1] + SPONTANEOUS_POST_MS)
    rests = cell_rests(feats, [s[3] for s in spans])
    n_len = max(int(round((s[1] - t0) / dt)) for s in spans) + 1
    tt = np.arange(n_len) * dt
    cols = {k: [] for k in ("v_obs", "valid", "stim", "sub", "n_lo", "n_hi", "rest", "hold", "main", "regime",
                            "fire0", "edges")}
    times, rows, hyper_win, depol_win = [], [], [], None
    for k, stop, main, hold, epochs, _ in spans:
        w = rec.select([rec.sweeps[k]]).time_window(t0, stop)
        m = min(w.n_samples, n_len)
        v = np.concatenate([w.v[0, :m], np.full(n_len - m, w.v[0, m - 1])])
        sp = detect(tt[:m], v[:m])
        sub = tt < tt[m - 1] + dt / 2
        for s in sp:
            sub &= ~((tt > s - MASK_MS[0]) & (tt < s + MASK_MS[1]))
        neg = [e for e in epochs if e.amp < 0 and e.stop <= stop]
        hyper_win.append(_passive_window(neg[0], sp + t0, t0, dt) if neg else (-1, -1))
        pos = [e for e in epochs if e.amp > 0 and e.stop <= stop]
        # The first silent depolarising step, for the passive estimate where no row has a
        # hyperpolarising one.
        if depol_win is None and pos and not sp.size:
            e = pos[0]
            depol_win = (k, int(round((e.start - 20.0 - t0) / dt)),
                         int(round((min(e.stop, e.start + DEPOL_PASSIVE_MS) - t0) / dt)))
        for key, val in (("v_obs", v), ("valid", tt < tt[m - 1] + dt / 2), ("sub", sub), ("n_lo", sp.size),
                         ("n_hi", sp.size), ("rest", _nan(rests[k])),
                         ("regime", _regime(sp + t0, main, t0)),
                         ("hold", hold), ("stim", np.concatenate([w.i[0, : m - 1], np.full(n_len - m, hold)])),
                         ("main", (main.start, main.stop, main.amp) if main is not None else (0, 0, 0)),
                         ("fire0", fires_at_start(feats[k])), ("edges", _segment_edges(epochs, t0, stop))):
            cols[key].append(val)
        times.append(sp)
        rows.append((int(rec.sweeps[k]), t0, round(stop, 3), "sweep"))
    if depol_win is not None and all(w[0] < 0 for w in hyper_win):
        k, a, b = depol_win
        hyper_win[k] = (a, b)
    # Interpolated rows between consecutive spiking sweeps of the same protocol, and one
    # between the strongest silent sweep and the weakest spiking one (the f–I curve's foot).
    spk = sorted((r for r in range(len(spans)) if cols["n_hi"][r] > 0 and cols["main"][r][2] > 0),
                 key=lambda r: cols["main"][r][2])
    depol = [tuple((round(e.start, 6), round(e.stop, 6)) for e in span[4] if e.amp > 0) for span in spans]

    def same_protocol(a, b):
        """Rows ``a`` and ``b`` differ only inside ``b``'s depolarising epochs."""
        inside = np.zeros(tt.size - 1, bool)
        for s0, s1 in depol[b]:
            inside |= (tt[:-1] >= s0 - t0 - dt) & (tt[:-1] < s1 - t0 + dt)
        return not np.any((np.abs(cols["stim"][a] - cols["stim"][b]) > 1e-6) & ~inside)

    def interpolate(a, b, n_lo, n_hi):
        for key, val in (("v_obs", np.zeros(n_len)), ("valid", cols["valid"][a] & cols["valid"][b]),
                         ("sub", np.zeros(n_len, bool)), ("n_lo", n_lo), ("n_hi", n_hi),
                         ("rest", np.nan), ("hold", cols["hold"][a]), ("stim", (cols["stim"][a] + cols["stim"][b]) / 2),
                         ("main", cols["main"][a]), ("regime", (0.0, 0.0, 0, 0.0)), ("fire0", cols["fire0"][a]),
                         ("edges", [-1e9, 1e9])):
            cols[key].append(val)
        times.append(np.zeros(0))
        rows.append((int(rec.sweeps[a]), t0, rows[a][2], f"interpolated {rows[a][0]}-{rows[b][0]}"))

    n_sweep_rows = len(rows)
    silent = [r for r in range(n_sweep_rows) if cols["n_hi"][r] == 0 and not cols["fire0"][r]]
    below = [r for r in silent if spk and cols["main"][r][2] < cols["main"][spk[0]][2] and same_protocol(r, spk[0])]
    foot = max(below, key=lambda r: cols["main"][r][2]) if below else None
    for a, b in zip(spk[:-1], spk[1:]):
        if depol[a] != depol[b] or not same_protocol(a, b) or cols["n_hi"][b] - cols["n_lo"][a] < 2:
            continue
        lo, hi = cols["n_lo"][a], cols["n_hi"][b]
        family = [r for r in spk if depol[r] == depol[a] and same_protocol(r, a)]
        # The curve's points are sweeps with a depolarising step: where between a
        # hyperpolarising foot and the weakest spiking sweep the curve leaves 0 is unknown
        # (drawn through one, at its amplitude or at 0 pA, the curve scored as without it on
        # the synthetic cells that have one; docs/real_cells.md).
        if foot is not None and cols["main"][foot][2] > 0 and same_protocol(foot, a):
            family = [foot] + family
        mid = fi_curve_centre([cols["main"][r][2] for r in family], [cols["n_lo"][r] for r in family],
                              (cols["main"][a][2] + cols["main"][b][2]) / 2.0)
        tol = max(1.0, INTERP_BAND * (hi - lo))
        interpolate(a, b, max(lo, mid - tol), min(hi, mid + tol))
    # Below the weakest spiking sweep the f–I curve rises from silence: halfway down to the
    # strongest silent sweep a model fires at most as often (nothing else holds it there).
    if foot is not None:
        interpolate(foot, spk[0], 0.0, cols["n_hi"][spk[0]])
    data = {k: np.array(v) for k, v in cols.items() if k not in ("main", "regime", "edges")}
    n_edges = max(len(e) for e in cols["edges"])
    data["seg_edges"] = np.array([e + [1e9] * (n_edges - len(e)) for e in cols["edges"]])
    # Observed spikes per segment; interpolated rows (no spike times) count as one segment
    # whose target is their interval [n_lo, n_hi].
    data["seg_obs"] = np.array([[np.sum((s >= a) & (s < b)) for a, b in zip(e[:-1], e[1:])]
                                for s, e in zip(times, data["seg_edges"])], float)
    data["interpolated"] = np.array([r[3] != "sweep" for r in rows])
    reg = np.array(cols["regime"], float).reshape(-1, 4)
    data["late_t"] = reg[:, :2]
    data["late_obs"], data["isi_min"] = reg[:, 2], reg[:, 3]
    every = max(1, int(round(1.0 / dt)))
    data["sub"] = data["sub"][:, ::every]
    k_max = int(max(len(s) for s in times)) + 2
    data["t_obs"] = np.array([np.concatenate([s, np.full(k_max - len(s), -1.0)]) for s in times])
    data["n_pair"] = np.array([len(s) for s in times], float)
    lengths = data["valid"].sum(1) - 1
    return data, rows, every, np.array(hyper_win), _layout(data["stim"], lengths, len(set(data["fire0"].tolist())) > 1)


def _layout(stim, lengths, starts_differ=False, overhead=3000):
    """Static simulation plan: the steps all rows share (same current from the same start
    state) are simulated once; the remaining rows in at most two groups of similar length,
    each padded only to its own longest row. Returns ``(prefix_steps, (rows, steps), ...)``."""
    same = np.all(np.abs(stim - stim[:1]) < 1e-6, axis=0)
    p = int(np.argmin(same)) if not same.all() else int(stim.shape[1])
    p = min(p, int(lengths.min()) - 1) if p >= 1000 and not starts_differ else 0
    rest = np.maximum(lengths - p, 1)
    order = [int(r) for r in np.argsort(rest, kind="stable")]
    best = (int(rest.max()) * len(order), (tuple(order),))
    for j in range(1, len(order)):
        a, b = order[:j], order[j:]
        cost = int(rest[a].max()) * len(a) + int(rest[b].max()) * len(b) + overhead
        if cost < best[0]:
            best = (cost, (tuple(a), tuple(b)))
    return (p,) + tuple((g, int(rest[list(g)].max())) for g in best[1])


def warn_if_subthreshold(recording, sweeps, data):
    """Warn (one line naming the file) when the fitted rows ``data`` hold no spike: the fit
    then goes on with subthreshold data only. ``recording``: the whole recording."""
    if np.any(data["n_hi"] > 0):
        return
    never = not any(detect(recording.t, v).size for v in recording.v)
    have = [int(k) for k in recording.sweeps]
    have = f"{have[0]}–{have[-1]}" if have == list(range(have[0], have[-1] + 1)) and len(have) > 2 else str(have)
    warnings.warn(f"{recording.source or '<recording>'}: " + (
        f"the cell never fires (no spike in sweeps {have})" if never else f"no spikes in the fitted sweeps {list(sweeps)}")
        + ": the fit continues on subthreshold data only (passive properties, rest, and no spike on the fitted "
        "steps; the spike shape and the f–I curve are not constrained)", UserWarning, stacklevel=3)
