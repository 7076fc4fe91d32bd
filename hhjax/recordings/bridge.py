"""An unbalanced bridge, measured and removed: the voltage drop across the uncompensated
series (pipette and access) resistance.

In current clamp the recorded voltage is the membrane's plus ``R_s · I``. Where the
amplifier's bridge balance was off, every current step makes the recorded voltage *jump*
by ``R_s · ΔI`` within a sample, which the membrane (time constant ≥ a few ms) cannot: the
pyABF recordings of the panel jump by about 1 mV per 100 pA (171116sh_0018, 17o05028,
18711001: 9–10 MΩ). A model fitted to such a trace takes the drop for membrane voltage
(a larger input resistance, a plateau shifted by several mV at 500 pA).

:func:`series_resistance` reads ``R_s`` from the jumps: at every step edge of the command
(``|ΔI| ≥ MIN_STEP_PA``, the current flat for ``FIT_MS`` on both sides), a line is fitted
to the voltage over ``FIT_MS`` before the edge and another over ``FIT_MS`` after it, from
``SETTLE_MS`` on (the amplifier's filter and a one-sample lag between command and
response), both extrapolated to the edge; ``R_s`` is the median over edges of
jump / ΔI. An edge where either line leaves residuals over ``REJECT_NOISE`` times the
sweep's noise (RMS, plus ``REJECT_FLOOR_MV``) is left out: a spike or an artefact lies in
its window, and its line extrapolates to nothing. The median alone does not guard against
those where most edges have one: a ramp that ends while the cell fires has one edge per
sweep, inside a spike train (a synthetic cell with no series resistance read 9.4 MΩ so).
Known limit: on a membrane with a time constant of 1-2 ms the charging curve bends within
the line's millisecond, and the line reads the bend as a jump (6-9 MΩ on
``scripts/foreign_cells.py``'s Connor-Stevens cells, which have none; docs/real_cells.md).
:func:`balance_bridge` removes the drop (:meth:`hhjax.io.Recording.correct_bridge`) where ``R_s`` exceeds
``MIN_RS_MOHM``, and either way marks the recording as balanced, so that work passed the
balanced recording (a fit's evaluation, its figure) sees the same voltage without measuring
again; recording fits and their evaluation both use it, once per recording.
"""

from __future__ import annotations

import numpy as np

from .epochs import robust_sd

MIN_STEP_PA = 20.0   # smaller steps: a jump within the recording noise
SETTLE_MS = 0.2      # skipped after an edge (filter settling, command-to-response lag)
FIT_MS = 1.0         # each side's line: the membrane's curvature is negligible over it where τ ≳ 5 ms
MIN_RS_MOHM = 2.0    # below this (1 mV at 500 pA) left alone: the estimate scatters by ±1.5 MΩ on clean traces
REJECT_NOISE = 4.0   # residual RMS over this many noise SDs: the window is not a line (a spike in it)
REJECT_FLOOR_MV = 0.05  # added to that bound, for traces with next to no noise


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x * x)))


def series_resistance(recording) -> tuple[float, int]:
    """``(R_s in MΩ, number of step edges used)``; ``(nan, 0)`` without usable edges (ramps,
    a measured noisy current, no steps).

    >>> from hhjax.io import Recording
    >>> t = np.arange(0.0, 200.0, 0.05)
    >>> i = np.where((t >= 50) & (t < 150), 200.0, 0.0)[None]
    >>> charge = lambda x: np.where(x > 0, 1 - np.exp(-np.clip(x, 0, None) / 20.0), 0.0)  # τ 20 ms
    >>> v = -70.0 + 20.0 * (charge(t - 50) - charge(t - 150))   # the membrane: 100 MΩ × 200 pA
    >>> v = v + 15.0 * i / 1000.0                               # and 15 MΩ of bridge
    >>> rs, n = series_resistance(Recording(t, v, i, (0,), 2e4)); abs(rs - 15.0) < 0.2, n
    (True, 2)
    """
    dt = float(recording.dt)
    skip = max(1, int(round(SETTLE_MS / dt)))
    m = max(3, int(round(FIT_MS / dt)))
    ratios = []
    for v, i in zip(np.asarray(recording.v, float), np.asarray(recording.i, float)):
        # White noise's SD from the sample-to-sample differences (√2 of it), which slow
        # trends do not move and spikes barely do.
        bound = REJECT_NOISE * robust_sd(np.diff(v)) / np.sqrt(2.0) + REJECT_FLOOR_MV
        di = np.abs(np.diff(i))
        edge = di >= MIN_STEP_PA
        # An edge of a step, not noise on a measured current: flat on the samples either side
        # (checked over the whole windows below; this keeps that loop short on noisy traces).
        edge[1:-1] &= (di[:-2] <= 1.0) & (di[2:] <= 1.0)
        for e in np.nonzero(edge)[0]:
            lo, hi = e + 1 - m, e + 1 + skip + m
            if lo < 0 or hi > i.size or np.ptp(i[lo:e + 1]) > 1.0 or np.ptp(i[e + 1:hi]) > 1.0:
                continue
            x_before, x_after = np.arange(-m + 1, 1) - 0.5, np.arange(1 + skip, 1 + skip + m) - 0.5  # edge at e + 1/2
            before = np.polyfit(x_before, v[lo:e + 1], 1)
            after = np.polyfit(x_after, v[e + 1 + skip:hi], 1)
            if max(_rms(v[lo:e + 1] - np.polyval(before, x_before)),
                   _rms(v[e + 1 + skip:hi] - np.polyval(after, x_after))) > bound:
                continue
            ratios.append(1000.0 * (after[1] - before[1]) / (i[e + 1] - i[e]))
    return (float(np.median(ratios)), len(ratios)) if ratios else (float("nan"), 0)


def removed(recording) -> float:
    """MΩ of series resistance already removed from ``recording`` (0 if none): the value to
    pass on as ``bridge=`` to work that must see the same voltage without measuring again.

    >>> from hhjax.io import Recording
    >>> rec = Recording(np.arange(3.0), np.zeros((1, 3)), np.ones((1, 3)), (0,), 1e3)
    >>> removed(rec), removed(rec.correct_bridge(7.5))
    (0.0, 7.5)
    """
    return float(recording.metadata.get("bridge_corrected_MOhm", 0.0))


def balance_bridge(recording, rs_mohm: float | str = "auto"):
    """``recording`` with the series-resistance drop removed: ``rs_mohm="auto"`` measures it
    (:func:`series_resistance`) and removes it where it exceeds ``MIN_RS_MOHM`` (else 0); a
    number (MΩ, e.g. from the amplifier's log) removes that much, and 0 keeps the voltage as
    recorded. The result is marked balanced (``metadata['bridge_corrected_MOhm']``, 0
    included), and a balanced recording is returned unchanged, so that calling this twice is
    calling it once.

    >>> from hhjax.io import Recording
    >>> t = np.arange(0.0, 200.0, 0.05)
    >>> i = np.where((t >= 50) & (t < 150), 200.0, 0.0)[None]
    >>> rec = Recording(t, -70.0 + 15.0 * i / 1000.0, i, (0,), 2e4)   # nothing but the bridge
    >>> fixed = balance_bridge(rec); round(fixed.metadata["bridge_corrected_MOhm"], 1), bool(np.ptp(fixed.v) < 1e-6)
    (15.0, True)
    >>> balance_bridge(fixed) is fixed, balance_bridge(rec, 0.0).metadata["bridge_corrected_MOhm"]
    (True, 0.0)
    >>> clean = Recording(t, np.full_like(i, -70.0), i, (0,), 2e4)    # no jump: nothing removed, marked
    >>> balance_bridge(clean).metadata["bridge_corrected_MOhm"]
    0.0
    """
    if "bridge_corrected_MOhm" in recording.metadata:
        return recording
    if isinstance(rs_mohm, str) and rs_mohm == "auto":
        rs, _ = series_resistance(recording)
        return recording.correct_bridge(rs if rs > MIN_RS_MOHM else 0.0)
    try:
        rs = float(rs_mohm)
    except (TypeError, ValueError):
        rs = float("nan")
    if not (np.isfinite(rs) and rs >= 0.0):
        raise ValueError(f"bridge: expected 'auto' or a series resistance in MΩ (>= 0), got {rs_mohm!r}")
    return recording.correct_bridge(rs)
