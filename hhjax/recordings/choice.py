"""Which sweeps of a recording to fit: :func:`choose_sweeps` (at most 4, by rule), from
:func:`sweep_table`, one row per sweep by the rules of :mod:`hhjax.recordings.evaluation`;
:func:`coverage_warning` when hand-picked sweeps cover the f–I range too thinly;
:func:`unresponsive_sweeps`, sweeps whose steps leave the voltage all but unmoved, which
it never picks."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from .epochs import current_levels, detect
from .evaluation import stimulus_epochs, sweep_features

BLOCK_FRACTION = 0.5  # a sweep under this fraction of the peak rate, past the peak: depolarisation block
# A step whose voltage response per pA is under this fraction of the recording's median,
# where that median predicts at least UNRESPONSIVE_EXPECT_MV: a dead or mispaired channel.
UNRESPONSIVE_FRACTION = 0.1
UNRESPONSIVE_EXPECT_MV = 5.0
_PRE_MS = 20.0  # the baseline a step's response is measured from: this long before the first epoch
_ADJACENT_MS = 1.0  # an epoch starting within this of another's end follows it directly


class SweepRow(NamedTuple):
    """One row of :func:`sweep_table` (a tuple: ``row[1]`` is ``row.current_pA``)."""

    sweep: int
    current_pA: float        # main epoch's current, holding included (pA)
    spiking: bool            # spikes during its depolarising steps
    hyperpolarising: bool    # has a hyperpolarising step
    holding_pA: float
    rate_hz: float           # 0 without a depolarising step
    rebound: bool            # rebound spikes on a silent baseline
    spontaneous_spikes: int  # spikes in its baseline windows (at holding, away from epochs)


def sweep_table(recording) -> list:
    """One :class:`SweepRow` per sweep of ``recording``, by the rules of
    :mod:`hhjax.recordings.evaluation`."""
    info = []
    for k, sweep in enumerate(recording.sweeps):
        hold, epochs = stimulus_epochs(recording.t, recording.i[k])
        f = sweep_features(recording.t, recording.v[k], epochs, hold)
        info.append(SweepRow(sweep, f["current_pA"], bool(f["rate_hz"]), any(e.amp < 0 for e in epochs), float(hold),
                             float(f["rate_hz"] or 0.0),
                             bool(f["rebound_spikes"] and not f["spontaneous_spikes"] and not f["start_spikes"]),
                             int(f["spontaneous_spikes"] or 0)))
    return info


def unresponsive_sweeps(recording) -> list:
    """Sweeps with a hyperpolarising step that leaves the voltage all but unmoved: a dead
    or mispaired channel, not a cell. A step's response is the median voltage over its
    second half minus the median over the 20 ms before the sweep's first epoch (mV; only
    where no spike falls there), per pA of the step. Only hyperpolarising steps without
    spikes are judged: during a depolarising one, one the cell fires through (a step down
    from a holding current above its rheobase), or from a baseline with spikes, the median
    voltage of a firing cell need not move at all; nor one that follows another epoch
    directly (the middle of a dual step), which starts from wherever that epoch left the
    cell, not from the baseline (a simulated cell in depolarisation block after a +340 pA
    step stayed at -16 mV through the 150 ms, -100 pA epoch that followed). A step at
    least as large as the median step is unresponsive where the recording's median
    response per pA predicts at least :data:`UNRESPONSIVE_EXPECT_MV` for it and it moves
    under :data:`UNRESPONSIVE_FRACTION` of that, or the wrong way. Relative to the recording's own steps, so no input
    resistance is assumed; a recording with fewer than 3 such steps gives none. (A
    Hippocampus Hub file in BluePyEfe's tests: its -2 to -1.2 nA sweeps move the voltage by
    0 to ±2.5 mV, its others 70-110 MΩ.)

    >>> from hhjax.io import Recording
    >>> t = np.arange(0.0, 300.0, 0.1); amps = [-100.0, -50.0, -150.0, -200.0]
    >>> i = np.array([np.where((t >= 50) & (t < 250), a, 0.0) for a in amps])
    >>> v = -70.0 + 0.1 * i; v[3] = -70.0            # 100 MΩ, but the last sweep never moves
    >>> unresponsive_sweeps(Recording(t, v, i, (0, 1, 2, 3), 1e4, "cell"))
    [3]
    """
    steps = []  # (sweep, pA, mV)
    for k, sweep in enumerate(recording.sweeps):
        _, epochs = stimulus_epochs(recording.t, recording.i[k])
        t, v = recording.t, recording.v[k]
        before = (t >= epochs[0].start - _PRE_MS) & (t < epochs[0].start) if epochs else None
        if before is None or not before.any() or detect(t[before], v[before]).size:
            continue
        base = float(np.median(v[before]))
        spikes = detect(t, v)
        for e in epochs:
            late = v[(t >= (e.start + e.stop) / 2) & (t < e.stop)]
            # A step the cell fires through is one it responds to, whatever its median.
            fired = np.any((spikes >= e.start) & (spikes < e.stop))
            from_hold = not any(abs(o.stop - e.start) <= _ADJACENT_MS for o in epochs if o is not e)
            if e.kind == "step" and e.amp < 0 and late.size and not fired and from_hold:
                steps.append((int(sweep), e.amp, float(np.median(late)) - base))
    if len(steps) < 3:
        return []
    per_pA = float(np.median([dv / amp for _, amp, dv in steps]))
    # Near threshold a cell's I-V curve is far from straight (17o05028, firing at rest: 1.3 mV
    # for its -10 pA steps, 62 mV for -50 pA), so only steps at least as large as the median
    # are judged by the median's slope; a dead channel fails on every step, large ones too.
    large = float(np.median([abs(amp) for _, amp, _ in steps]))
    return sorted({s for s, amp, dv in steps if abs(amp) >= large
                   and per_pA * abs(amp) >= UNRESPONSIVE_EXPECT_MV and dv / amp < UNRESPONSIVE_FRACTION * per_pA})


def warn_if_unresponsive(recording, sweeps) -> None:
    """Warn (one line naming the file) about :func:`unresponsive_sweeps`, saying whether
    the fitted ``sweeps`` include any."""
    dead = unresponsive_sweeps(recording)
    if not dead:
        return
    fitted = sorted(set(dead) & {int(k) for k in sweeps})
    warnings.warn(f"{recording.source or '<recording>'}: sweep{'s' if len(dead) > 1 else ''} {dead}: hyperpolarising "
                  f"steps move the voltage under {UNRESPONSIVE_FRACTION:g} of the recording's median response per "
                  "pA, or the wrong way (a dead or mispaired channel?); " +
                  (f"the fit includes {fitted}, as asked" if fitted else "the fit leaves them out") +
                  ", and their evaluation compares the model with a trace that is not the cell's",
                  UserWarning, stacklevel=3)


def choose_sweeps(recording, n=4):
    """Up to ``n`` sweeps, by rule, never one of :func:`unresponsive_sweeps`: one
    subthreshold sweep, then spiking sweeps spread evenly over the f–I range, the lowest and
    the highest included. Where the strongest sweep fires
    at under :data:`BLOCK_FRACTION` of the peak rate (depolarisation block), the spiking
    picks are the lowest, the peak and the first sweep past the peak under that fraction:
    the onset of block lies between the last two, and nothing else fitted would place it.

    The subthreshold sweep is the strongest silent one with a depolarising step below the
    weakest spiking sweep: it brackets the rheobase from below with data, where otherwise
    only the f–I prior would (a fitted hyperpolarising sweep left block cells' models firing
    3–7 spikes on the held-out sweep just below the weakest fitted spiking one); the passive
    estimate then takes its charging curve (:mod:`hhjax.recordings.rows`). Without one, it is
    the one with a hyperpolarising step if any (the passive estimate needs one), else the one
    with the largest step; of equal ones, the one with the most spontaneous spikes: where the
    cell fires at rest, that sweep is the fit's measure of its spontaneous rate. (17o05028's
    quiet sweeps all have a -50 pA step. Its first, 10 spikes, left models firing 2-4 too few
    on the sweep with the most, 16; fitting that one instead, the count target was met on
    97 rather than 92 of 108 sweeps of its synthetic twins over draws and seeds, docs/real_cells.md.)
    Where the sweeps hold different currents (a protocol that raises
    the holding current sweep by sweep), the resting potentials at those currents are the
    cell's I–V curve, and the spiking sweeps sit at its top: the subthreshold pick then goes
    to the lowest holding current first, so that the fitted rests span the I–V curve
    instead of extrapolating it.

    A cell that never fires gets its strongest depolarising sweep as well: fitted to a
    hyperpolarising sweep alone, the passive properties are met but nothing keeps the
    model's spiking currents from firing on the stronger steps (a synthetic cell without
    Na current, held out on seven sweeps: the model fired on four, 37 Hz f–I RMS). A pick
    left over (fewer spiking sweeps than picks for them) goes to the most hyperpolarising
    sweep, where a low-threshold (T-type) cell shows its rebound (draw 4's synthetic LTS
    cell, with two spiking sweeps: ``--model auto`` chose the RS model without it, 0 % of
    held-out counts, and the LTS model with it, 100 %).
    """
    dead = set(unresponsive_sweeps(recording))
    table = sweep_table(recording)
    info = [x for x in table if x.sweep not in dead] or table
    quiet = [x for x in info if not x.spiking]
    spiking = sorted((x for x in info if x.spiking), key=lambda x: x.current_pA)
    holds_differ = bool(np.any(current_levels([x.holding_pA for x in info])))
    pick = []
    if quiet:
        foot = [x for x in quiet if x.holding_pA < x.current_pA < spiking[0].current_pA] \
            if spiking and not holds_differ else []
        if foot:
            q = max(foot, key=lambda x: x.current_pA)
        else:
            level = dict(zip((x.sweep for x in quiet), current_levels([x.current_pA for x in quiet])))
            q = max(quiet, key=lambda x: (x.hyperpolarising, -x.holding_pA if holds_differ else 0.0,
                                          level[x.sweep], x.spontaneous_spikes))
        pick.append(q.sweep)
        if not foot and not q.hyperpolarising and any(x.hyperpolarising for x in info):
            pick.append(min((x for x in info if x.hyperpolarising), key=lambda x: x.current_pA).sweep)
        if not spiking:  # a cell that never fires: silent up to its strongest step
            top = max((x for x in quiet if x.sweep not in pick), key=lambda x: x.current_pA, default=None)
            if top is not None and top.current_pA > top.holding_pA:
                pick.append(top.sweep)
    m = max(0, n - len(pick))
    if spiking and m:
        idx = sorted({int(round(j)) for j in np.linspace(0, len(spiking) - 1, min(m, len(spiking)))})
        rate = [x.rate_hz for x in spiking]
        peak = int(np.argmax(rate))
        if len(idx) >= 3 and rate[-1] < BLOCK_FRACTION * rate[peak]:
            # Depolarisation block: the sweeps that bracket its onset (the f–I peak and the
            # first weaker sweep under BLOCK_FRACTION of it) replace the strongest and the
            # middle ones, which leave the onset anywhere between them.
            onset = next(j for j in range(peak, len(rate)) if rate[j] < BLOCK_FRACTION * rate[peak])
            chosen = {0, peak, onset} | set(idx[1:-1][: max(0, len(idx) - 3)])
            for j in reversed(idx):  # the peak at the lowest sweep frees a pick: the strongest first
                if len(chosen) < len(idx):
                    chosen.add(j)
            idx = sorted(chosen)
        pick += [spiking[j].sweep for j in idx]
    hyper = [x for x in info if x.hyperpolarising and x.sweep not in pick]
    if spiking and hyper and len(set(pick)) < n:
        pick.append(min(hyper, key=lambda x: x.current_pA).sweep)
    return sorted(dict.fromkeys(pick[:n])) or [info[0].sweep]


def coverage_warning(recording, sweeps):
    """A sentence if ``sweeps`` cover the recording's f–I range too thinly to predict the
    other sweeps (fewer than two spiking sweeps, or none near the largest current), else ''."""
    info = sweep_table(recording)
    chosen = [x for x in info if x.sweep in set(sweeps)]
    top = max(x.current_pA for x in info)
    n_spiking = sum(x.spiking for x in chosen)
    hi = max(x.current_pA for x in chosen)
    if any(x.spiking for x in info) and (n_spiking < 2 or hi < 0.75 * top):
        return (f"the fitted sweeps reach {hi:.0f} pA and include {n_spiking} spiking sweep(s), while the "
                f"recording goes up to {top:.0f} pA; predictions for the other sweeps are extrapolations. "
                f"Leave out --sweeps to let hhjax pick sweeps across the f–I range.")
    return ""
