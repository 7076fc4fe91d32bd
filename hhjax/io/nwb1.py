"""NWB 1 files, as the Allen Cell Types Database serves them (``ephys.nwb``), read with h5py.

pynwb reads NWB 2 only, and the largest public collection of current-clamp recordings (mouse
and human cortical cells of every class, fast-spiking interneurons among them) is NWB 1. The
layout read here is the one the AllenSDK's ``NwbDataSet`` reads:

* ``/epochs/Sweep_N``: one sweep, its ``stimulus`` and ``response`` each an ``idx_start``,
  a ``count`` and a link ``timeseries`` to the series (in ``/stimulus/presentation`` and
  ``/acquisition/timeseries``), whose ``data`` carries ``unit`` and ``conversion`` and whose
  ``starting_time`` carries the sampling ``rate`` (Hz);
* ``/epochs/Experiment_N``: the same sweep without its test pulse, ending earlier where the
  recording was cut short;
* the stimulus's ``aibs_stimulus_name`` ("Long Square", "Short Square", "Ramp", "Noise 1",
  "Test", ...): the protocol.

Rules: a sweep whose stimulus is a voltage (voltage clamp) is left out, and so is one whose
experiment ends before its sweep does or that :func:`~hhjax.io.protocols.cut_short` finds
padded (the recording was cut short, so its tail is not the cell's), each with a warning.
Values are ``data * conversion`` in volts and amperes where the Allen pipeline that wrote the file is
version 1.1 or later (``/general/generated_by``), and ``data`` as stored for earlier files
(whose ``conversion`` was wrong and whose data are in volts and amperes already), as the
AllenSDK does. Of several protocols, the sweeps named "Long Square" are the recording where
there are any (the Allen f–I protocol: 1 s steps); otherwise the rule of
:mod:`hhjax.io.protocols` chooses, as for NWB 2. Only the chosen sweeps' samples are read
(a file holds 50-100 sweeps at 200 kHz, some of them 20 s of noise). Sweeps keep the file's
numbers.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..simulation.memory import available
from .protocols import not_cut_short, prefer_steps, settle_protocol
from .recording import Recording, check_sweeps, fail, format_sweeps
from .units import UNITS, unit_factor


def is_nwb1(p: Path) -> bool:
    """Whether ``p`` is an HDF5 file in NWB 1's layout (a root ``nwb_version`` saying 1, or
    ``/epochs/Sweep_*`` without one).

    >>> is_nwb1(Path("not_a_file.nwb"))
    False
    """
    try:
        import h5py
        with h5py.File(p, "r") as f:
            version = f.attrs.get("nwb_version", f["nwb_version"][()] if "nwb_version" in f else None)
            if version is not None:
                return _text(version).removeprefix("NWB-").startswith("1")
            return "epochs" in f and any(k.startswith("Sweep_") for k in f["epochs"])
    except Exception:  # not HDF5, or no such file: not NWB 1
        return False


def _text(x: Any) -> str:
    """A string stored by h5py (bytes, str, or a one-element array of either)."""
    if isinstance(x, np.ndarray):
        x = x.reshape(-1)[0] if x.size else ""
    return x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)


def _pipeline_version(f: Any) -> tuple[int, int]:
    """The Allen pipeline's (major, minor) from ``/general/generated_by`` (key, value, key,
    value, ...), (0, 0) without one."""
    try:
        info = [_text(x) for x in f["general/generated_by"][()]]
        version = info[info.index("version") + 1]
        major, minor = (int(x) for x in version.split(".")[:2])
        return major, minor
    except Exception:
        return 0, 0


def _unit_label(data: Any) -> str:
    return _text(data.attrs.get("unit", "")).strip()  # "Volts", "Amps" in Allen files


class _Sweep(NamedTuple):
    number: int
    protocol: str
    rate: float
    units: dict          # as the file writes them: {"v": ..., "i": ...}
    response: tuple      # (series, idx_start, count)
    stimulus: tuple


def _sweep(path: Any, f: Any, n: int) -> "_Sweep | str":
    """Sweep ``n``'s layout, or why it is left out ("clamp": voltage clamp; "cut": cut short)."""
    ep = f[f"epochs/Sweep_{n}"]
    try:
        stim, resp = ep["stimulus"], ep["response"]
        s_ts, r_ts = stim["timeseries"], resp["timeseries"]
        units = {"v": _unit_label(r_ts["data"]), "i": _unit_label(s_ts["data"])}
        rate, r_rate = float(s_ts["starting_time"].attrs["rate"]), float(r_ts["starting_time"].attrs["rate"])
        start, count = int(stim["idx_start"][()]), int(stim["count"][()])
        response = (r_ts, int(resp["idx_start"][()]), int(resp["count"][()]))
    except KeyError as e:
        raise fail(path, f"Sweep_{n}: not NWB 1's layout ({e})") from None
    if units["i"].upper().startswith("V"):  # a voltage command
        return "clamp"
    exp = f.get(f"epochs/Experiment_{n}/response")
    if exp is not None and int(exp["idx_start"][()]) + int(exp["count"][()]) < start + count:
        return "cut"
    if r_rate != rate:
        raise fail(path, f"sweep {n}: voltage at {r_rate:g} Hz, stimulus at {rate:g} Hz")
    if response[2] != count:
        raise fail(path, f"sweep {n}: voltage has {response[2]} samples, stimulus {count}")
    name = _text(s_ts["aibs_stimulus_name"][()]) if "aibs_stimulus_name" in s_ts else \
        _text(s_ts.attrs.get("description", "protocol"))
    return _Sweep(n, name, rate, units, response, (s_ts, start, count))


def _values(path: Any, series: tuple, convert: bool) -> np.ndarray:
    ts, start, count = series
    data = ts["data"]
    if 16 * count > available("cpu"):  # a corrupted header can declare any size
        raise fail(path, f"{ts.name}: {count} samples ({16 * count / 1e9:.3g} GB to load), more than the free memory")
    x = np.asarray(data[start:start + count], dtype=np.float64).reshape(-1)
    return x * float(data.attrs.get("conversion", 1.0)) if convert else x


def load_nwb1(path: Any, p: Path, sweeps: Any, channel: int, v_units: Any, i_units: Any) -> Recording:
    """The current-clamp sweeps of NWB 1 file ``p`` as a :class:`Recording` (ms, mV, pA),
    by the rules of the module docstring; ``path`` names the file in errors."""
    import h5py

    if channel != 0:
        raise fail(path, f"channel {channel} out of range; an NWB 1 file is read as one electrode (0)")
    left: dict = {"clamp": [], "cut": []}
    with h5py.File(p, "r") as f:
        convert = _pipeline_version(f) >= (1, 1)
        info = {}
        for n in sorted(int(m.group(1)) for k in f.get("epochs", {}) if (m := re.fullmatch(r"Sweep_(\d+)", k))):
            sw = _sweep(path, f, n)
            if isinstance(sw, str):
                left[sw].append(n)
            else:
                info[n] = sw

        def read(n: int) -> tuple:
            """Sweep ``n``'s v (mV), i (pA) and rate (Hz)."""
            sw = info[n]
            return (_values(path, sw.response, convert) * unit_factor(path, "v", sw.units["v"], v_units),
                    _values(path, sw.stimulus, convert) * unit_factor(path, "i", sw.units["i"], i_units), sw.rate)

        asked = (check_sweeps(path, sweeps, sorted(info)) if sweeps is not None
                 else prefer_steps(path, list(info), [info[n].protocol for n in info]))
        data = {n: (v, i) for n, v, i, _ in not_cut_short(asked, read, left["cut"])}
        ns = sorted(data)
        keep, vs, cs = settle_protocol(path, ns, [info[n].protocol for n in ns], [data[n][0] for n in ns],
                                       [data[n][1] for n in ns], [info[n].rate for n in ns],
                                       chosen=sweeps is not None, split_names=True)
        data = {ns[j]: (vs[j], cs[j]) for j in keep}
    for what, numbers in (("voltage-clamp sweeps (a voltage command)", left["clamp"]),
                          ("sweeps cut short (the experiment ends before the sweep, or NaN or zero padding)", left["cut"])):
        if numbers and (sweeps is None or set(numbers) & {int(k) for k in sweeps}):
            warnings.warn(f"{path}: {what} left out: {format_sweeps(sorted(numbers))}", UserWarning,
                          stacklevel=4)
    if not data:
        raise fail(path, "no current-clamp sweep to read (no sweep with a current stimulus that runs to its end)")
    wanted = sorted(data)
    if len({info[n].rate for n in wanted}) != 1 or len({data[n][0].size for n in wanted}) != 1:
        raise fail(path, "the sweeps asked for differ in length or sampling rate; load one protocol's sweeps "
                         "with sweeps=[...]")
    first = info[wanted[0]]
    md = {"format": "nwb1", "units": dict(UNITS), "protocol": first.protocol, "units_in_file": first.units,
          "current_source": "stimulus/presentation", "conversion_applied": convert}
    t = np.arange(data[wanted[0]][0].size) * (1000.0 / first.rate)
    return Recording(t, np.stack([data[n][0] for n in wanted]), np.stack([data[n][1] for n in wanted]),
                     tuple(wanted), first.rate, str(p.resolve()), md)
