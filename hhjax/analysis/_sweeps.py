"""Plumbing shared by :mod:`hhjax.features` and :mod:`hhjax.subthreshold`: eFEL's default
resampling step, its resampling, its window masks, and the mapping of a
feature over the sweeps of a 2-D ``v``."""

from __future__ import annotations

import functools
import inspect

import numpy as np

EFEL_INTERP_STEP = 0.1  # ms, eFEL default "interp_step"
STEP = EFEL_INTERP_STEP


def _per_sweep(fn):
    """Let ``fn(t, v, ...)`` accept 2-D ``v`` (n_sweeps, n_samples) by mapping over rows.

    A step current ``i_pA`` (the third positional argument or a keyword) may then hold one
    value per sweep."""

    @functools.wraps(fn)
    def wrapper(t, v, *args, **kwargs):
        t, v = np.asarray(t, dtype=float), np.asarray(v, dtype=float)
        if t.shape[-1:] != v.shape[-1:]:
            raise ValueError(f"t and v: {t.shape[-1:]} times for {v.shape[-1:]} samples (shapes {t.shape}, "
                             f"{v.shape}); they must match on the last axis")
        if v.ndim == 1:
            return fn(t, v, *args, **kwargs)
        if v.ndim != 2:
            raise ValueError(f"v must be 1-D or 2-D, got shape {v.shape}")

        def per(k, x):
            x = np.asarray(x, dtype=float)
            if x.ndim == 0:
                return float(x)
            if x.shape != (len(v),):
                raise ValueError(f"i_pA: one value or one per sweep ({len(v)}), got shape {x.shape}")
            return float(x[k])

        bound = inspect.signature(fn).bind(t, v, *args, **kwargs).arguments

        def sweep(k):
            kw = dict(bound, t=t if t.ndim == 1 else t[k], v=v[k])
            if kw.get("i_pA") is not None:
                kw["i_pA"] = per(k, kw["i_pA"])
            return fn(**kw)

        out = [sweep(k) for k in range(len(v))]
        return out if out and isinstance(out[0], (np.ndarray, dict)) else np.asarray(out)

    return wrapper


def resample(t, v, interp_step=STEP):
    """Resample a 1-D trace linearly onto a uniform grid of step ``interp_step`` (ms).

    Bit-identical to eFEL's interpolation (grid built by repeated addition of the step
    from ``t[0]``, plus one point past ``t[-1]`` holding ``v[-1]`` if the grid falls
    short), so ties in sample comparisons (peaks, AHP minima) resolve as in eFEL.
    Returns ``(t_new, v_new)``; ``interp_step=None`` returns the input.

    >>> resample(np.arange(0, 1, 0.05), np.arange(20.0))[1]   # 0.1 ms grid
    array([ 0.,  2.,  4.,  6.,  8., 10., 12., 14., 16., 18., 19.])
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


def _mask(t, lo, hi, hi_inclusive=True):
    # eFEL's inclusive window end tolerates 1e-10 ms of grid round-off
    return (t >= lo) & ((t - hi < 1e-10) if hi_inclusive else (t < hi))
