"""Electrophysiology features of voltage traces (NumPy; analysis only, not differentiable).

Units: ``t`` ms (1-D), ``v`` mV, 1-D or 2-D ``(n_sweeps, n_samples)`` (2-D gives one
result per sweep: an array for scalar features, a list for per-spike arrays / dicts);
``stim_start`` / ``stim_end`` ms, currents pA, resistances MOhm, frequencies Hz.

Definitions follow eFEL (checked against efel 5.7.34; the eFEL name is given in each
docstring).  As in eFEL, every feature but :func:`spike_times` first resamples the trace
onto a uniform ``interp_step = 0.1`` ms grid (:func:`resample`, bit-identical to eFEL;
``interp_step=None`` uses the samples as given) and detects spikes at ``threshold =
-20`` mV.  A spike is a run of samples with ``v > threshold`` that falls back to
``<= threshold`` (a run still above threshold at the end of the trace is ignored); its
time / voltage is the run's first maximum (eFEL ``peak_time`` / ``peak_voltage``).
eFEL's strict ``<``/``>`` crossing tests can miss or merge spikes when a sample equals
the threshold exactly; here such a sample simply counts as below.
"""
from __future__ import annotations

import functools

import numpy as np

from .spike_trains import gamma_coincidence  # re-exported: compares trains, not a feature

EFEL_THRESHOLD = -20.0  # mV, eFEL default "Threshold"
EFEL_INTERP_STEP = 0.1  # ms, eFEL default "interp_step"
THR, STEP = EFEL_THRESHOLD, EFEL_INTERP_STEP

__all__ = [
    "EFEL_THRESHOLD", "EFEL_INTERP_STEP", "resample", "spike_times", "peak_times",
    "spike_count", "first_spike_latency", "mean_frequency", "isi_cv", "adaptation_index",
    "peak_voltage", "ap_peaks", "ahp_depth", "ap_width", "resting_potential",
    "steady_state_voltage", "input_resistance", "membrane_time_constant", "sag_ratio",
    "extract_features", "gamma_coincidence",
]


# ----------------------------------------------------------------------------- helpers
def _per_sweep(fn):
    """Let ``fn(t, v, ...)`` accept 2-D ``v`` (n_sweeps, n_samples) by mapping over rows."""

    @functools.wraps(fn)
    def wrapper(t, v, *args, **kwargs):
        t, v = np.asarray(t, dtype=float), np.asarray(v, dtype=float)
        if v.ndim == 1:
            return fn(t, v, *args, **kwargs)
        if v.ndim != 2:
            raise ValueError(f"v must be 1-D or 2-D, got shape {v.shape}")
        out = [fn(t if t.ndim == 1 else t[k], v[k], *args, **kwargs) for k in range(len(v))]
        return out if out and isinstance(out[0], (np.ndarray, dict)) else np.asarray(out)

    return wrapper


def resample(t, v, interp_step=STEP):
    """Resample a 1-D trace linearly onto a uniform grid of step ``interp_step`` (ms).

    Bit-identical to eFEL's interpolation (grid built by repeated addition of the step
    from ``t[0]``, plus one point past ``t[-1]`` holding ``v[-1]`` if the grid falls
    short), so ties in sample comparisons (peaks, AHP minima) resolve as in eFEL.
    Returns ``(t_new, v_new)``; ``interp_step=None`` returns the input.

    >>> t2, v2 = resample(np.arange(0, 10, 0.05), np.zeros(200))   # 0.1 ms grid
    """
    t, v = np.asarray(t, dtype=float), np.asarray(v, dtype=float)
    if interp_step is None or len(t) < 3:
        return t, v
    n = int(np.ceil((t[-1] - t[0]) / interp_step))
    t_new = np.add.accumulate(np.r_[t[0], np.full(n, interp_step)])  # n + 1 points
    if t_new[-2] >= t[-1]:
        t_new = t_new[:-1]
    j = np.clip(np.searchsorted(t, t_new, side="left") - 1, 0, len(t) - 2)
    slope = (v[j + 1] - v[j]) / (t[j + 1] - t[j])
    return t_new, np.where(t_new > t[-1], v[-1], v[j] + slope * (t_new - t[j]))


def _peak_idx(v, threshold):
    above = np.diff(np.concatenate(([0], (v > threshold).astype(np.int8))))
    ups, downs = np.flatnonzero(above == 1), np.flatnonzero(above == -1)
    ups = ups[ups > 0]  # a trace starting above threshold has no crossing there
    downs = downs[downs > ups[0]] if ups.size else downs[:0]
    return np.array([u + int(np.argmax(v[u:d])) for u, d in zip(ups, downs)], dtype=int)


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


def _mask(t, lo, hi, hi_inclusive=True):
    # eFEL's inclusive window end tolerates 1e-10 ms of grid round-off
    return (t >= lo) & ((t - hi < 1e-10) if hi_inclusive else (t < hi))


def _in_window(tp, stim_start, stim_end):
    return tp[(tp >= stim_start) & (tp <= stim_end)]


# ------------------------------------------------------------------------ spike events
@_per_sweep
def spike_times(t, v, threshold=THR):
    """Upward threshold-crossing times (ms), one per crossing ``v[i-1] <= thr < v[i]``,
    linearly interpolated between the two samples; no resampling.  This is the spike
    time for spike-train comparison (:func:`gamma_coincidence`); it precedes eFEL
    ``peak_time`` and differs from eFEL's dV/dt-based ``AP_begin_time``.

    >>> spike_times(t, v)          # array([12.31, 40.07, ...])
    """
    i = np.flatnonzero((v[:-1] <= threshold) & (v[1:] > threshold)) + 1
    return t[i - 1] + (threshold - v[i - 1]) / (v[i] - v[i - 1]) * (t[i] - t[i - 1])


@_per_sweep
def peak_times(t, v, threshold=THR, interp_step=STEP):
    """eFEL ``peak_time``: times (ms) of all spike peaks in the trace.

    >>> peak_times(t, v)           # array([12.9, 40.6, ...])
    """
    t, v = resample(t, v, interp_step)
    return t[_peak_idx(v, threshold)]


@_per_sweep
def spike_count(t, v, threshold=THR, stim_start=None, stim_end=None, interp_step=STEP):
    """Number of spikes: eFEL ``Spikecount`` (whole trace) or, given ``stim_start`` and
    ``stim_end``, eFEL ``Spikecount_stimint`` (peaks with start <= t <= end).

    >>> spike_count(t, v, -20.0, stim_start=100.0, stim_end=600.0)   # 7
    """
    tp = peak_times(t, v, threshold, interp_step)
    if stim_start is not None and stim_end is not None:
        tp = _in_window(tp, stim_start, stim_end)
    return int(tp.size)


@_per_sweep
def first_spike_latency(t, v, stim_start, threshold=THR, interp_step=STEP):
    """eFEL ``time_to_first_spike`` (ms): first peak time minus ``stim_start``.  As in
    eFEL the first peak of the whole trace counts, so a spontaneous spike before the
    stimulus gives a negative value.  NaN without spikes.

    >>> first_spike_latency(t, v, stim_start=100.0)   # 17.2
    """
    tp = peak_times(t, v, threshold, interp_step)
    return float(tp[0] - stim_start) if tp.size else np.nan


@_per_sweep
def mean_frequency(t, v, stim_start, stim_end, threshold=THR, interp_step=STEP):
    """eFEL ``mean_frequency`` (Hz): ``1000 N / (t_last - stim_start)`` over the N peaks
    in ``[stim_start, stim_end]``, ``t_last`` the last of them.  0.0 when none is in the
    window (eFEL: -0.0, or no value for a trace without spikes).

    >>> mean_frequency(t, v, 100.0, 600.0)   # 13.5
    """
    tp = _in_window(peak_times(t, v, threshold, interp_step), stim_start, stim_end)
    if tp.size == 0:
        return 0.0
    return float(1000.0 * tp.size / (tp[-1] - stim_start)) if tp[-1] > stim_start else np.nan


@_per_sweep
def isi_cv(t, v, threshold=THR, interp_step=STEP, ignore_first_isi=True):
    """eFEL ``ISI_CV``: ``std(ISI, ddof=1) / mean(ISI)`` over the inter-peak intervals of
    the whole trace without the first one (eFEL ``ignore_first_ISI=True``).  NaN with
    fewer than 2 intervals.

    >>> isi_cv(t, v)   # 0.34
    """
    isi = np.diff(peak_times(t, v, threshold, interp_step))[1 if ignore_first_isi else 0:]
    return float(np.std(isi, ddof=1) / np.mean(isi)) if isi.size >= 2 else np.nan


@_per_sweep
def adaptation_index(t, v, stim_start, stim_end, threshold=THR, interp_step=STEP):
    """eFEL ``adaptation_index2``: ``mean((I[k+1] - I[k]) / (I[k+1] + I[k]))`` over the
    ISIs ``I`` of the peaks in ``[stim_start, stim_end]`` without the first ISI; > 0 when
    firing slows down.  NaN with fewer than 4 spikes in the window.

    >>> adaptation_index(t, v, 100.0, 600.0)   # 0.18
    """
    tp = _in_window(peak_times(t, v, threshold, interp_step), stim_start, stim_end)
    isi = np.diff(tp)[1:]
    if isi.size < 2:
        return np.nan
    return float(np.mean((isi[1:] - isi[:-1]) / (isi[1:] + isi[:-1])))


# ------------------------------------------------------------------------- spike shape
@_per_sweep
def peak_voltage(t, v, threshold=THR, interp_step=STEP):
    """eFEL ``peak_voltage``: voltage (mV) at each spike peak (array, one per spike).

    >>> peak_voltage(t, v)   # array([59.7, 50.5, ...])
    """
    t, v = resample(t, v, interp_step)
    return v[_peak_idx(v, threshold)]


ap_peaks = peak_voltage


@_per_sweep
def ahp_depth(t, v, threshold=THR, interp_step=STEP):
    """eFEL ``AHP_depth_abs`` (= ``min_AHP_values``): voltage (mV) of the *first*
    after-hyperpolarisation minimum after each spike (array, one per spike): the first
    sample after the peak not above the next two samples.  This is the fast AHP, not the
    global minimum between spikes (eFEL ``min_between_peaks_values``).  NaN for the last
    spike if the trace is still falling at its end (eFEL omits that value).

    >>> ahp_depth(t, v)   # array([-37.4, -39.4, ...])
    """
    t, v = resample(t, v, interp_step)
    a = _first_ahp_idx(v, _peak_idx(v, threshold))
    return np.where(a >= 0, v[np.maximum(a, 0)], np.nan)


def _cross(t, v, i, level):
    """Time where the segment (i-1, i) reaches ``level``."""
    if i <= 0 or v[i] == v[i - 1]:
        return t[i]
    return t[i - 1] + (level - v[i - 1]) / (v[i] - v[i - 1]) * (t[i] - t[i - 1])


@_per_sweep
def ap_width(t, v, threshold=THR, stim_start=None, interp_step=STEP):
    """eFEL ``spike_half_width`` (ms) per spike: width at ``v_half = (v_peak + v_ahp)/2``
    with ``v_ahp`` the spike's following AHP (:func:`ahp_depth`).  Rising edge: first
    sample >= v_half after the previous AHP (first spike: after ``stim_start``);
    falling edge: first sample <= v_half after the peak; both linearly interpolated.
    NaN where the AHP is undefined.  Differs from eFEL only for a first spike before
    ``stim_start`` (eFEL searches an empty range there and returns garbage; here the
    search starts at the trace start).  eFEL ``AP_duration_half_width`` (dV/dt-based
    onset, no interpolation) is not reproduced.

    >>> ap_width(t, v, stim_start=100.0)   # array([1.83, 2.83, ...])
    """
    t, v = resample(t, v, interp_step)
    pk = _peak_idx(v, threshold)
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


# ------------------------------------------------------------------------ subthreshold
@_per_sweep
def resting_potential(t, v, stim_start, interp_step=STEP):
    """eFEL ``voltage_base`` (mV): mean voltage over ``[0.9 stim_start, stim_start]``.

    >>> resting_potential(t, v, stim_start=100.0)   # -67.4
    """
    t, v = resample(t, v, interp_step)
    return float(np.mean(v[_mask(t, 0.9 * stim_start, stim_start)]))


@_per_sweep
def steady_state_voltage(t, v, stim_start, stim_end, interp_step=STEP):
    """eFEL ``steady_state_voltage_stimend`` (mV): mean voltage over the last 10 % of the
    stimulus, ``[stim_end - 0.1 (stim_end - stim_start), stim_end)``.

    >>> steady_state_voltage(t, v, 23.4, 323.4)   # -85.8
    """
    t, v = resample(t, v, interp_step)
    lo = stim_end - 0.1 * (stim_end - stim_start)
    return float(np.mean(v[_mask(t, lo, stim_end, hi_inclusive=False)]))


@_per_sweep
def input_resistance(t, v, i_pA, stim_start, stim_end, interp_step=STEP):
    """eFEL ``ohmic_input_resistance_vb_ssse`` (MOhm): ``(steady_state_voltage -
    resting_potential) / I`` for a step of ``i_pA`` pA (mV/nA = MOhm); meant for a
    subthreshold (hyperpolarising) step.  NaN for ``i_pA == 0``.

    >>> input_resistance(t, v, -100.0, 23.4, 323.4)   # 191.2
    """
    dv = (steady_state_voltage(t, v, stim_start, stim_end, interp_step)
          - resting_potential(t, v, stim_start, interp_step))
    return float(dv / (i_pA * 1e-3)) if i_pA else np.nan


@_per_sweep
def membrane_time_constant(t, v, stim_start, stim_end, interp_step=STEP):
    """Membrane time constant (ms) from the charging response at step onset.

    Least-squares fit (scipy ``curve_fit``) of ``V_inf + A exp(-(t - stim_start)/tau)``
    to the samples from ``stim_start`` to the response's extremum (minimum for a
    hyperpolarising, maximum for a depolarising step: the sag peak, or ``stim_end`` if
    monotonic).  Exact for a passive membrane.  Not eFEL's ``time_constant`` (which fits
    until |dV/dt| drops below a fixed level); on the bundled recording the two agree
    within ~12 %.  NaN if the fit fails or tau exceeds the step duration.

    >>> membrane_time_constant(t, v, 23.4, 323.4)   # 16.7
    """
    from scipy.optimize import curve_fit

    t, v = resample(t, v, interp_step)
    m = _mask(t, stim_start, stim_end, hi_inclusive=False)
    tw, vw = t[m] - stim_start, v[m]
    if tw.size < 5:
        return np.nan
    hyper = vw[-1] < resting_potential(t, v, stim_start, None)
    ext = int(np.argmin(vw) if hyper else np.argmax(vw))
    tw, vw = tw[: ext + 1], vw[: ext + 1]
    if tw.size < 5 or vw[-1] == vw[0]:
        return np.nan
    frac = (vw - vw[0]) / (vw[-1] - vw[0])
    tau0 = max(float(tw[int(np.argmax(frac >= 1 - np.exp(-1)))]), float(tw[1]))
    try:
        p, _ = curve_fit(lambda x, vinf, a, tau: vinf + a * np.exp(-x / tau), tw, vw,
                         p0=(vw[-1], vw[0] - vw[-1], tau0), maxfev=5000,
                         bounds=([-np.inf, -np.inf, 1e-6], [np.inf, np.inf, np.inf]))
    except (RuntimeError, ValueError):
        return np.nan
    return float(p[2]) if p[2] <= stim_end - stim_start else np.nan


@_per_sweep
def sag_ratio(t, v, stim_start, stim_end, interp_step=STEP):
    """eFEL ``sag_ratio1``: ``(V_ss - V_min) / (V_base - V_min)``, with ``V_ss`` =
    :func:`steady_state_voltage`, ``V_base`` = :func:`resting_potential`, ``V_min`` the
    minimum over ``[stim_start, stim_end)``.  0 = no sag; NaN unless ``V_ss < V_base``.

    >>> sag_ratio(t, v, 23.4, 323.4)   # 0.036
    """
    t, v = resample(t, v, interp_step)
    vb = resting_potential(t, v, stim_start, None)
    vss = steady_state_voltage(t, v, stim_start, stim_end, None)
    if not vss < vb:
        return np.nan
    vmin = float(np.min(v[_mask(t, stim_start, stim_end, hi_inclusive=False)]))
    return float((vss - vmin) / (vb - vmin))


# ---------------------------------------------------------------------------- summary
def _nanmean(x):
    x = np.asarray(x, dtype=float)
    return float(np.nanmean(x)) if np.isfinite(x).any() else np.nan


@_per_sweep
def extract_features(t, v, *, stim_start, stim_end, i_pA=None, threshold=THR,
                     interp_step=STEP):
    """All features of one sweep as a dict of floats (NaN where undefined).

    Keys: ``spike_count`` (in the stimulus window), ``spike_count_total``,
    ``first_spike_latency``, ``mean_frequency``, ``isi_cv``, ``adaptation_index``,
    ``peak_voltage``, ``ap_width``, ``ahp_depth`` (means over spikes, as BluePyOpt does
    with eFEL's per-spike values), ``resting_potential``, ``steady_state_voltage``,
    ``input_resistance`` (needs ``i_pA``), ``membrane_time_constant``, ``sag_ratio``; the
    last three are NaN when the step evokes spikes or ``i_pA == 0``.  2-D ``v`` gives a
    list of dicts.

    >>> extract_features(t, v, stim_start=23.4, stim_end=323.4, i_pA=-100.0)
    """
    t, v = resample(t, v, interp_step)
    kw = dict(threshold=threshold, interp_step=None)
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


# ------------------------------------------------------------------ spike-train metric
