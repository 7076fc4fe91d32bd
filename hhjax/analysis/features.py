"""Electrophysiology features of voltage traces (NumPy; analysis only, not differentiable).

Units: ``t`` ms (1-D), ``v`` mV, 1-D or 2-D ``(n_sweeps, n_samples)`` (2-D gives one
result per sweep: an array for scalar features, a list for per-spike arrays / dicts);
``stim_start`` / ``stim_end`` ms, currents pA, resistances MOhm, frequencies Hz.

Definitions follow eFEL (checked against efel 5.7.34; the eFEL name is given in each
docstring).  As in eFEL, every feature first resamples the trace onto a uniform
``interp_step = 0.1`` ms grid (:func:`resample`, bit-identical to eFEL;
``interp_step=None`` uses the samples as given).  Spikes are found by the package's one
detector (:mod:`hhjax.analysis.spikes`), not by eFEL's -20 mV threshold, so plateau
spikes and depolarisation block are judged as everywhere else in hhjax; a spike's time /
voltage is its peak sample (eFEL ``peak_time`` / ``peak_voltage``).  On ordinary spike
trains the peaks are eFEL's; ``scripts/compare_detectors.py`` reports where they differ.

The subthreshold features live in :mod:`hhjax.subthreshold` and are re-exported here.
The examples use ``t, v``: NEURON's ``hh`` under 10 µA/cm² from 100 to 600 ms.

>>> import hhjax
>>> tr = hhjax.simulate(hhjax.presets.NEURON, hhjax.stimulus.step(10.0, 100.0, 600.0),
...                     duration=700.0, dt=0.025)
>>> t, v = np.asarray(tr.t, float), np.asarray(tr.v, float)
"""
from __future__ import annotations

import numpy as np

from ._sweeps import EFEL_INTERP_STEP, STEP, _per_sweep, resample
from .spikes import spike_peaks
from .spike_trains import gamma_coincidence  # re-exported: compares trains, not a feature
from .subthreshold import input_resistance, membrane_time_constant, resting_potential, sag_ratio, steady_state_voltage

__all__ = [
    "EFEL_INTERP_STEP", "resample", "peak_times",
    "spike_count", "first_spike_latency", "mean_frequency", "isi_cv", "adaptation_index",
    "peak_voltage", "ap_peaks", "ahp_depth", "ap_width", "onset_voltage", "resting_potential",
    "steady_state_voltage", "input_resistance", "membrane_time_constant", "sag_ratio",
    "extract_features", "gamma_coincidence",
]


# ----------------------------------------------------------------------------- helpers
def _peak_idx(t, v):
    """Sample indices of the spike peaks (:func:`hhjax.analysis.spikes.spike_peaks`)."""
    return spike_peaks(t, v)


def _first_ahp_idx(v, peaks):
    """eFEL ``min_AHP_indices``: the first sample after each peak that is not above the
    next two (the first local minimum, robust to one-sample noise), searched up to the
    next peak / trace end; -1 where that is the trace's last sample (eFEL drops it)."""
    out = np.full(len(peaks), -1, dtype=int)
    for k, (p, e) in enumerate(zip(peaks, np.append(peaks[1:], len(v)))):
        seg = np.concatenate((v[p:e], [np.inf, np.inf]))
        j = p + int(np.argmax((seg[:-2] <= seg[1:-1]) & (seg[:-2] <= seg[2:])))
        out[k] = j if j != len(v) - 1 else -1
    return out


def _peaks(t, v, interp_step):
    """``(times, voltages)`` of the spike peaks on the resampled trace."""
    t, v = resample(t, v, interp_step)
    idx = _peak_idx(t, v)
    return t[idx], v[idx]


def _in_window(tp, stim_start, stim_end):
    return tp[(tp >= stim_start) & (tp <= stim_end)]


# ------------------------------------------------------------------------ spike events
@_per_sweep
def peak_times(t, v, interp_step=STEP):
    """eFEL ``peak_time``: times (ms) of all spike peaks in the trace.

    >>> print(np.round(peak_times(t, v)[:3], 1))
    [102.1 117.1 131.7]
    """
    return _peaks(t, v, interp_step)[0]


@_per_sweep
def spike_count(t, v, stim_start=None, stim_end=None, interp_step=STEP):
    """Number of spikes: eFEL ``Spikecount`` (whole trace) or, given ``stim_start`` and
    ``stim_end``, eFEL ``Spikecount_stimint`` (peaks with start <= t <= end).

    >>> print(spike_count(t, v, stim_start=100.0, stim_end=600.0))
    35
    """
    tp = peak_times(t, v, interp_step)
    if stim_start is not None and stim_end is not None:
        tp = _in_window(tp, stim_start, stim_end)
    return int(tp.size)


@_per_sweep
def first_spike_latency(t, v, stim_start, interp_step=STEP):
    """eFEL ``time_to_first_spike`` (ms): first peak time minus ``stim_start``.  As in
    eFEL the first peak of the whole trace counts, so a spontaneous spike before the
    stimulus gives a negative value.  NaN without spikes.

    >>> print(round(first_spike_latency(t, v, stim_start=100.0), 1))
    2.1
    """
    tp = peak_times(t, v, interp_step)
    return float(tp[0] - stim_start) if tp.size else np.nan


@_per_sweep
def mean_frequency(t, v, stim_start, stim_end, interp_step=STEP):
    """eFEL ``mean_frequency`` (Hz): ``1000 N / (t_last - stim_start)`` over the N peaks
    in ``[stim_start, stim_end]``, ``t_last`` the last of them.  0.0 when none is in the
    window (eFEL: -0.0, or no value for a trace without spikes).

    >>> print(round(mean_frequency(t, v, 100.0, 600.0), 1))
    70.0
    """
    tp = _in_window(peak_times(t, v, interp_step), stim_start, stim_end)
    if tp.size == 0:
        return 0.0
    return float(1000.0 * tp.size / (tp[-1] - stim_start)) if tp[-1] > stim_start else np.nan


@_per_sweep
def isi_cv(t, v, interp_step=STEP, ignore_first_isi=True):
    """eFEL ``ISI_CV``: ``std(ISI, ddof=1) / mean(ISI)`` over the inter-peak intervals of
    the whole trace without the first one (eFEL ``ignore_first_ISI=True``).  NaN with
    fewer than 2 intervals.

    >>> print(round(isi_cv(t, v), 2))   # HH fires regularly
    0.0
    """
    isi = np.diff(peak_times(t, v, interp_step))[1 if ignore_first_isi else 0:]
    return float(np.std(isi, ddof=1) / np.mean(isi)) if isi.size >= 2 else np.nan


@_per_sweep
def adaptation_index(t, v, stim_start, stim_end, interp_step=STEP):
    """eFEL ``adaptation_index2``: ``mean((I[k+1] - I[k]) / (I[k+1] + I[k]))`` over the
    ISIs ``I`` of the peaks in ``[stim_start, stim_end]`` without the first ISI; > 0 when
    firing slows down.  NaN with fewer than 4 spikes in the window.

    >>> print(round(adaptation_index(t, v, 100.0, 600.0), 2))
    0.0
    """
    tp = _in_window(peak_times(t, v, interp_step), stim_start, stim_end)
    isi = np.diff(tp)[1:]
    if isi.size < 2:
        return np.nan
    return float(np.mean((isi[1:] - isi[:-1]) / (isi[1:] + isi[:-1])))


# ------------------------------------------------------------------------- spike shape
@_per_sweep
def peak_voltage(t, v, interp_step=STEP):
    """eFEL ``peak_voltage``: voltage (mV) at each spike peak (array, one per spike).

    >>> print(np.round(peak_voltage(t, v)[:3], 1))
    [39.7 30.5 30.5]
    """
    return _peaks(t, v, interp_step)[1]


ap_peaks = peak_voltage


@_per_sweep
def ahp_depth(t, v, interp_step=STEP):
    """eFEL ``AHP_depth_abs`` (= ``min_AHP_values``): voltage (mV) of the *first*
    after-hyperpolarisation minimum after each spike (array, one per spike): the first
    sample after the peak not above the next two samples.  This is the fast AHP, not the
    global minimum between spikes (eFEL ``min_between_peaks_values``).  NaN for the last
    spike if the trace is still falling at its end (eFEL omits that value).

    >>> print(np.round(ahp_depth(t, v)[:3], 1))
    [-75.1 -74.9 -74.9]
    """
    t, v = resample(t, v, interp_step)
    a = _first_ahp_idx(v, _peak_idx(t, v))
    return np.where(a >= 0, v[np.maximum(a, 0)], np.nan)


ONSET_FRACTION = 0.1  # of a spike's steepest upstroke: where its onset is read


@_per_sweep
def onset_voltage(t, v, frac=ONSET_FRACTION, interp_step=STEP):
    """Voltage (mV) at each spike's onset (array, one per spike): searching back from the
    spike's steepest upstroke (within 3 ms before its peak), the first sample where dV/dt
    is at most ``frac`` of that slope. This is IPFX's threshold rule (a fraction of the
    upstroke, there 5 % of the mean one after a 10 kHz filter) on the package's detector's
    spikes and eFEL's 0.1 ms grid, so a spike riding on a plateau has its onset on the
    plateau. eFEL ``AP_begin_voltage`` (dV/dt above 12 mV/ms) finds spikes by a -20 mV
    threshold, which counts the noise on a plateau; on ordinary spikes the two agree within
    3 mV (`tests/test_features.py`).

    >>> print(np.round(onset_voltage(t, v)[:3], 1))
    [-49.7 -48.7 -49.2]
    """
    t, v = resample(t, v, interp_step)
    dv = np.gradient(v, t)
    back = max(1, int(round(3.0 / float(t[1] - t[0]))))
    out = []
    for p in _peak_idx(t, v):
        a = max(0, p - back)
        j = a + int(np.argmax(dv[a:p + 1]))
        below = np.nonzero(dv[a:j + 1] <= frac * dv[j])[0]
        out.append(v[a + below[-1]] if below.size else v[a])
    return np.asarray(out, float)


def _cross(t, v, i, level):
    """Time where the segment (i-1, i) reaches ``level``."""
    if i <= 0 or v[i] == v[i - 1]:
        return t[i]
    return t[i - 1] + (level - v[i - 1]) / (v[i] - v[i - 1]) * (t[i] - t[i - 1])


@_per_sweep
def ap_width(t, v, stim_start=None, interp_step=STEP):
    """eFEL ``spike_half_width`` (ms) per spike: width at ``v_half = (v_peak + v_ahp)/2``
    with ``v_ahp`` the spike's following AHP (:func:`ahp_depth`).  Rising edge: first
    sample >= v_half after the previous AHP (first spike: after ``stim_start``);
    falling edge: first sample <= v_half after the peak; both linearly interpolated.
    NaN where the AHP is undefined.  Differs from eFEL only for a first spike before
    ``stim_start`` (eFEL searches an empty range there and returns garbage; here the
    search starts at the trace start).  eFEL ``AP_duration_half_width`` (dV/dt-based
    onset, no interpolation) is not reproduced.

    >>> print(np.round(ap_width(t, v, stim_start=100.0)[:3], 1))
    [1.6 1.5 1.5]
    """
    t, v = resample(t, v, interp_step)
    pk = _peak_idx(t, v)
    ahp = _first_ahp_idx(v, pk)
    out = np.full(len(pk), np.nan)
    start = int(np.searchsorted(t, stim_start)) if stim_start is not None else 0
    start = start if pk.size and start < pk[0] else 0
    for k, (p, a) in enumerate(zip(pk, ahp)):
        if a < 0:
            continue
        half = 0.5 * (v[p] + v[a])
        r = start + int(np.argmax(v[start:p + 1] >= half))
        f = p + int(np.argmax(v[p:a + 1] <= half))
        out[k] = _cross(t, v, f, half) - _cross(t, v, r, half)
        start = a
    return out


# ---------------------------------------------------------------------------- summary
def _nanmean(x):
    x = np.asarray(x, dtype=float)
    return float(np.nanmean(x)) if np.isfinite(x).any() else np.nan


@_per_sweep
def extract_features(t, v, *, stim_start, stim_end, i_pA=None,
                     interp_step=STEP):
    """All features of one sweep as a dict of floats (NaN where undefined).

    Keys: ``spike_count`` (in the stimulus window), ``spike_count_total``,
    ``first_spike_latency``, ``mean_frequency``, ``isi_cv``, ``adaptation_index``,
    ``peak_voltage``, ``ap_width``, ``ahp_depth`` (means over spikes, as BluePyOpt does
    with eFEL's per-spike values), ``resting_potential``, ``steady_state_voltage``,
    ``input_resistance`` (needs ``i_pA``), ``membrane_time_constant``, ``sag_ratio``; the
    last three are NaN when the step evokes spikes or ``i_pA == 0``.  2-D ``v`` gives a
    list of dicts.

    >>> f = extract_features(t, v, stim_start=100.0, stim_end=600.0)
    >>> f["spike_count"], round(f["mean_frequency"], 1), f["input_resistance"]
    (35.0, 70.0, nan)
    """
    t, v = resample(t, v, interp_step)
    kw = dict(interp_step=None)
    win = dict(stim_start=stim_start, stim_end=stim_end, interp_step=None)
    n_stim = spike_count(t, v, stim_start=stim_start, stim_end=stim_end, **kw)
    passive = n_stim == 0 and i_pA != 0
    return {
        "spike_count": float(n_stim),
        "spike_count_total": float(spike_count(t, v, **kw)),
        "first_spike_latency": first_spike_latency(t, v, stim_start, **kw),
        "mean_frequency": mean_frequency(t, v, stim_start, stim_end, **kw),
        "isi_cv": isi_cv(t, v, **kw),
        "adaptation_index": adaptation_index(t, v, stim_start, stim_end, **kw),
        "peak_voltage": _nanmean(peak_voltage(t, v, **kw)),
        "ap_width": _nanmean(ap_width(t, v, stim_start=stim_start, **kw)),
        "ahp_depth": _nanmean(ahp_depth(t, v, **kw)),
        "resting_potential": resting_potential(t, v, stim_start, None),
        "steady_state_voltage": steady_state_voltage(t, v, **win),
        "input_resistance": (input_resistance(t, v, i_pA, **win)
                             if passive and i_pA is not None else np.nan),
        "membrane_time_constant": membrane_time_constant(t, v, **win) if passive else np.nan,
        "sag_ratio": sag_ratio(t, v, **win) if passive else np.nan,
    }
