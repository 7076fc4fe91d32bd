"""The :class:`Recording` container and atomic file writes (units: :mod:`hhjax.io.units`).

Internal units are fixed so the rest of hhjax never has to guess:
time in ms, membrane voltage in mV, injected current in pA.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Union

import numpy as np
from scipy.ndimage import convolve1d

def fail(path: Any, problem: str, exc: type = ValueError) -> Exception:
    """Build a one-line ``exc`` whose message starts with ``path`` (for ``raise``)."""
    # Library messages (h5py, struct) can span lines; callers grep logs by file.
    return exc(f"{path}: " + " ".join(str(problem).split()))


def format_sweeps(sweeps: Iterable[int]) -> str:
    """Describe available sweeps compactly: ``'0-29'`` when contiguous, else a list."""
    s = sorted(int(k) for k in sweeps)
    if not s:
        return "none"
    if s == list(range(s[0], s[-1] + 1)) and len(s) > 2:
        return f"{s[0]}-{s[-1]}"
    return ", ".join(map(str, s))


def check_sweeps(path: Any, requested: Any, available: Iterable[int]) -> list[int]:
    """Validate ``requested`` sweep numbers against ``available``; return them as a list."""
    available = list(available)
    req = [int(k) for k in np.atleast_1d(requested)]
    if not req:
        raise fail(path, "no sweeps requested (sweeps=[])")
    bad = [k for k in req if k not in available]
    if bad:
        raise fail(path, f"sweep(s) {bad} out of range; valid sweeps are "
                         f"{format_sweeps(available)}")
    return req


@dataclass(frozen=True, eq=False)
class Recording:
    """Current-clamp sweeps on one shared time base.

    Attributes:
        t: time, ms, shape ``(n_samples,)``; the same for every sweep
            (relative to the sweep start for ABF/NWB).
        v: membrane voltage, mV, shape ``(n_sweeps, n_samples)``.
        i: injected current, pA, same shape as ``v`` (positive = depolarising).
        sweeps: original sweep numbers in the file, one per row of ``v``.
        sampling_rate_hz: samples per second.
        source: path of the file it came from ('' if built in memory).
        metadata: protocol, file format, units in the file, processing history.

    Arrays are stored read-only float64, so a Recording can be shared freely.

    Example:
        >>> t = np.arange(4) * 0.1
        >>> rec = Recording(t, np.full((1, 4), -65.0), np.zeros((1, 4)), (0,), 10_000.0)
        >>> rec.dt, rec.n_sweeps, rec.duration
        (0.1, 1, 0.4)
    """

    t: np.ndarray
    v: np.ndarray
    i: np.ndarray
    sweeps: tuple
    sampling_rate_hz: float
    source: str = ""
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = self.source or "<recording>"
        t = np.array(self.t, dtype=np.float64).reshape(-1)
        v = np.array(self.v, dtype=np.float64)
        i = np.array(self.i, dtype=np.float64)
        v = v[None, :] if v.ndim == 1 else v
        i = i[None, :] if i.ndim == 1 else i
        sweeps = tuple(int(k) for k in np.atleast_1d(self.sweeps))
        if v.ndim != 2 or v.shape != i.shape or v.shape[1] != t.size or t.size == 0:
            raise fail(where, f"inconsistent shapes: t {t.shape}, v {v.shape}, i {i.shape}; "
                              "need v and i of shape (n_sweeps, len(t))")
        if len(sweeps) != v.shape[0]:
            raise fail(where, f"{len(sweeps)} sweep numbers for {v.shape[0]} sweeps")
        fs = float(self.sampling_rate_hz)
        if not (math.isfinite(fs) and fs > 0):
            raise fail(where, f"sampling rate {fs} Hz is not positive")
        for a in (t, v, i):
            a.setflags(write=False)
        fields = dict(t=t, v=v, i=i, sweeps=sweeps, sampling_rate_hz=fs,
                      source=str(self.source), metadata=dict(self.metadata))
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return (f"Recording({self.n_sweeps} sweeps x {self.n_samples} samples, "
                f"{self.sampling_rate_hz:g} Hz, sweeps {format_sweeps(self.sweeps)}, "
                f"source={self.source!r})")

    @property
    def dt(self) -> float:
        """Sampling interval, ms."""
        return 1000.0 / self.sampling_rate_hz

    @property
    def n_sweeps(self) -> int:
        """Number of sweeps (rows of ``v`` and ``i``)."""
        return self.v.shape[0]

    @property
    def n_samples(self) -> int:
        """Samples per sweep."""
        return self.t.size

    @property
    def duration(self) -> float:
        """Sweep length, ms (``n_samples * dt``: a 1.5 s sweep gives 1500.0)."""
        return self.n_samples * self.dt

    @property
    def ljp_corrected_mV(self) -> float:
        """mV subtracted so far by :meth:`correct_ljp` (0 if none); fits and evaluations
        record it, so that work on this voltage can subtract the same again."""
        return float(self.metadata.get("ljp_corrected_mV", 0.0))

    def _with(self, **changes: Any) -> "Recording":
        return dataclasses.replace(self, **changes)

    def _history(self, step: str) -> dict:
        md = dict(self.metadata)
        md["history"] = list(md.get("history", [])) + [step]
        return md

    def select(self, sweeps: Union[int, Iterable[int]]) -> "Recording":
        """Keep only the given original sweep numbers, in the order given.

        Raises ValueError naming the file and the valid sweeps when one is absent.

        Example:
            >>> rec.select([0, 29]).sweeps      # doctest: +SKIP
            (0, 29)
        """
        req = check_sweeps(self.source or "<recording>", sweeps, self.sweeps)
        rows = [self.sweeps.index(k) for k in req]
        return self._with(v=self.v[rows], i=self.i[rows], sweeps=tuple(req))

    def time_window(self, start_ms: float, stop_ms: float, *, rezero: bool = False) -> "Recording":
        """Samples with ``start_ms <= t < stop_ms`` (ms); ``rezero=True`` shifts t to start at 0.

        Example:
            >>> rec.time_window(800.0, 1400.0).duration   # doctest: +SKIP
            600.0
        """
        where = self.source or "<recording>"
        if not stop_ms > start_ms:
            raise fail(where, f"time window [{start_ms}, {stop_ms}) ms is empty")
        # Tolerance: t is a float grid, 823.4 may be stored as 823.4000000001.
        eps = 1e-6 * self.dt
        keep = (self.t >= start_ms - eps) & (self.t < stop_ms - eps)
        if not keep.any():
            raise fail(where, f"time window [{start_ms}, {stop_ms}) ms holds no samples; "
                              f"data span {self.t[0]:g}-{self.t[-1]:g} ms")
        t = self.t[keep]
        return self._with(t=t - t[0] if rezero else t, v=self.v[:, keep], i=self.i[:, keep],
                          metadata=self._history(f"time_window({start_ms}, {stop_ms})"))

    def correct_ljp(self, ljp_mV: float) -> "Recording":
        """Correct for the liquid junction potential: ``V_corrected = V_measured - ljp_mV``.

        Sign convention (Neher 1992): ``ljp_mV`` is the junction potential of the
        bath with respect to the pipette solution, positive (about +10 to +15 mV)
        for the usual K-gluconate internals, so correction makes V *more negative*.
        The total applied is kept in ``metadata['ljp_corrected_mV']``.

        Example:
            >>> rec.correct_ljp(14.0)       # eFEL's current.txt: about 14 mV  # doctest: +SKIP
        """
        md = self._history(f"correct_ljp({ljp_mV})")
        md["ljp_corrected_mV"] = self.ljp_corrected_mV + float(ljp_mV)
        return self._with(v=self.v - float(ljp_mV), metadata=md)

    def correct_bridge(self, rs_mohm: float) -> "Recording":
        """Remove the drop across an unbalanced series resistance:
        ``V_corrected = V_measured - rs_mohm * I / 1000`` (MΩ × pA = µV; I the injected
        current, holding included), as the amplifier's bridge balance would have. The drop
        jumps with every current step, where the membrane cannot:
        :func:`hhjax.recordings.bridge.series_resistance` measures it. The total removed is
        kept in ``metadata['bridge_corrected_MOhm']``.

        Example:
            >>> t = np.arange(4) * 0.1
            >>> rec = Recording(t, np.full((1, 4), -65.0), np.array([[0.0, 0.0, 100.0, 100.0]]), (0,), 1e4)
            >>> rec.correct_bridge(10.0).v    # 10 MΩ × 100 pA = 1 mV
            array([[-65., -65., -66., -66.]])
        """
        md = self._history(f"correct_bridge({rs_mohm})")
        md["bridge_corrected_MOhm"] = float(md.get("bridge_corrected_MOhm", 0.0)) + float(rs_mohm)
        return self._with(v=self.v - float(rs_mohm) * self.i / 1000.0, metadata=md)

    def resample(self, dt: float) -> "Recording":
        """Return the recording on a new time step ``dt`` (ms), same start time and duration.

        Voltage: when coarsening (``dt`` > current dt) it is first averaged over a
        box ``dt`` wide *centred* on each new sample (anti-aliasing without a time
        shift; an integer factor k is a plain k-point block average), then read off
        at the new times, by linear interpolation if the grids do not align.
        Current: each new sample is the exact mean, under zero-order hold, of the
        old current over ``[t_j, t_j + dt)`` (integer factor: block average; integer
        upsampling: repetition). That is the charge a ZOH simulator with step
        ``dt`` must inject, and it keeps steps as steps with the same amplitude.

        Example:
            >>> rec.resample(0.1).sampling_rate_hz    # 20 kHz -> 10 kHz  # doctest: +SKIP
            10000.0
        """
        where = self.source or "<recording>"
        dt_new, dt_old = float(dt), self.dt
        if not (math.isfinite(dt_new) and dt_new > 0):
            raise fail(where, f"resample dt={dt} ms must be positive")
        if abs(dt_new - dt_old) <= 1e-9 * dt_old:
            return self
        n_old = self.n_samples
        r = dt_new / dt_old
        # Same duration n*dt: the last old sample is held for one old dt.
        n_new = max(1, int(math.floor(n_old / r + 1e-9)))
        pos = np.arange(n_new) * r  # new sample times in units of old samples
        k = round(r)
        m = round(1 / r)
        v_src = _centred_box(self.v, r) if r > 1 else self.v
        v_new = _interp_rows(v_src, pos)
        if r > 1 and abs(r - k) < 1e-9:
            pad = n_new * k - n_old
            i_pad = np.pad(self.i, ((0, 0), (0, max(pad, 0))), mode="edge")
            i_new = i_pad[:, : n_new * k].reshape(self.n_sweeps, n_new, k).mean(axis=2)
        elif r < 1 and abs(1 / r - m) < 1e-9:
            i_new = np.repeat(self.i, m, axis=1)[:, :n_new]
        else:
            i_new = _interval_mean(self.i, pos, r)
        t_new = self.t[0] + np.arange(n_new) * dt_new
        return self._with(t=t_new, v=v_new, i=i_new, sampling_rate_hz=1000.0 / dt_new,
                          metadata=self._history(f"resample({dt_old:g} -> {dt_new:g} ms)"))

    def to_npz(self, path: Union[str, os.PathLike]) -> Path:
        """Write t (ms), v (mV), i (pA), sweeps, sampling rate and metadata to ``.npz``, atomically.

        ``load_recording`` reads it back unchanged.

        Example:
            >>> rec.to_npz("cell1.npz")     # doctest: +SKIP
        """
        arrays: dict[str, Any] = dict(t=self.t, v=self.v, i=self.i, sweeps=np.asarray(self.sweeps, dtype=np.int64),
                      sampling_rate_hz=np.float64(self.sampling_rate_hz),
                      source=np.str_(self.source), t_units=np.str_("ms"),
                      v_units=np.str_("mV"), i_units=np.str_("pA"),
                      metadata_json=np.str_(json.dumps(self.metadata, default=_json_default)))

        def _write(tmp: Path) -> None:
            # A file object, not a name: np.savez appends '.npz' to bare names.
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

        return write_atomic(path, _write)


def _centred_box(x: np.ndarray, width: float) -> np.ndarray:
    # Box of `width` samples centred on each sample; edge taps get their fractional
    # overlap, so the filter is symmetric (zero phase) and sums to 1.
    half = width / 2.0
    reach = int(math.ceil(half - 0.5 + 1e-12))
    offs = np.arange(-reach, reach + 1)
    w = np.clip(np.minimum(offs + 0.5, half) - np.maximum(offs - 0.5, -half), 0.0, 1.0)
    return convolve1d(x, w / w.sum(), axis=1, mode="nearest")


def _interp_rows(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    n = x.shape[1]
    if n == 1:
        return np.repeat(x, pos.size, axis=1)
    lo = np.clip(np.floor(pos + 1e-9).astype(np.int64), 0, n - 2)
    frac = np.clip(pos - lo, 0.0, 1.0)
    return x[:, lo] * (1.0 - frac) + x[:, lo + 1] * frac


def _interval_mean(x: np.ndarray, pos: np.ndarray, width: float) -> np.ndarray:
    # Mean of the zero-order-hold signal over [pos, pos+width) (in old samples),
    # from its running integral; the last sample is held beyond the end.
    n = x.shape[1]
    q = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)

    def integral(p: np.ndarray) -> np.ndarray:
        inside = np.minimum(p, n)
        lo = np.clip(np.floor(inside).astype(np.int64), 0, n - 1)
        val = q[:, lo] + x[:, lo] * (inside - lo)
        return val + x[:, -1:] * np.maximum(p - n, 0.0)

    return (integral(pos + width) - integral(pos)) / width


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic) or hasattr(obj, "__array__"):  # NumPy and JAX values
        return np.asarray(obj).tolist()
    if isinstance(obj, (Path, os.PathLike)):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def write_atomic(path: Union[str, os.PathLike],
                 data: Union[bytes, bytearray, memoryview, str, Callable[[Path], Any]]) -> Path:
    """Write a file so that readers see either the old file or the complete new one.

    The content goes to a hidden temporary file in the same directory (same
    filesystem, so ``os.replace`` is atomic), is fsync'ed, then renamed over
    ``path``. On any error the temporary file is removed and ``path`` is left as
    it was. Parent directories are created.

    Args:
        path: destination.
        data: bytes (``str`` is written as UTF-8), or a callable that receives
            the temporary file's :class:`~pathlib.Path` and writes it. The temporary
            name ends with the destination's suffix, so ``fig.savefig`` can infer
            the format from it.

    Returns:
        The destination as a Path.

    Example:
        >>> write_atomic("out/fig.png", lambda tmp: fig.savefig(tmp, dpi=150))  # doctest: +SKIP
        >>> write_atomic("out/notes.txt", b"done\\n")                              # doctest: +SKIP
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.",
                                    suffix=f".tmp{dest.suffix}")
    tmp = Path(tmp_name)
    try:
        if callable(data):
            os.close(fd)
            fd = -1
            data(tmp)
            if tmp.stat().st_size == 0:
                raise fail(dest, f"writer callable left {tmp.name} empty "
                                 "(did it write to another name?)")
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        else:
            payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
            with os.fdopen(fd, "wb") as fh:
                fd = -1
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
        # mkstemp makes 0600 files; give the result ordinary permissions.
        mode = dest.stat().st_mode & 0o777 if dest.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    return dest


def save_json_atomic(path: Union[str, os.PathLike], obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (see :func:`write_atomic`).

    NumPy/JAX scalars and arrays become numbers and lists, Paths become
    strings. NaN and inf are written as ``NaN``/``Infinity`` (Python's json
    reads them back; strict JSON parsers do not).

    Example:
        >>> save_json_atomic("runs/fit.json", {"gNa": np.float32(120.0), "loss": 0.03})  # doctest: +SKIP
    """
    text = json.dumps(obj, indent=indent, default=_json_default) + "\n"
    return write_atomic(path, text.encode("utf-8"))
