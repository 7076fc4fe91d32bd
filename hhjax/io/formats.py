"""Readers for current-clamp files: ABF (pyabf), NWB 2 (pynwb) and NWB 1 (h5py,
:mod:`hhjax.io.nwb1`), CSV/TSV/text, NPZ, sets of Igor waves (:mod:`hhjax.io.igor`), and
some 50 rig formats through neo (Spike2, HEKA, WinWCP, ...: :mod:`hhjax.io.neo_fallback`),
so hhjax needs no reader of its own for them.

Every reader returns a :class:`Recording` in ms / mV / pA, and every failure is
a one-line FileNotFoundError or ValueError whose message starts with the path.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import numpy as np

from .. import _validate as check
from .abf import load_abf
from .igor import load_ibw_set
from .neo_fallback import load_with_neo
from .nwb2 import load_nwb
from .recording import Recording, check_sweeps, fail
from .units import UNITS, unit_factor
from .sources import SET_FORMATS, check_current_plausible, check_finite, check_voltage_plausible, expand_sources, \
    inner_suffix, opened, rate_from_times

SUPPORTED = (".abf", ".nwb", ".csv", ".tsv", ".txt", ".npz", ".ibw")
#: Rig formats read through neo that a folder of cells may hold (Spike2, WinWCP, WinEDR,
#: AxoGraph, CED CFS, Igor packed experiments, NIX); with :data:`SUPPORTED`, what
#: ``hhjax fit-many`` and ``scripts/bench_recordings.py`` take from a folder.
RECORDING_FORMATS = SUPPORTED + (".smr", ".smrx", ".wcp", ".edr", ".axgd", ".axgx", ".cfs", ".pxp", ".nix")


def load_recording(path: Union[str, os.PathLike, list, tuple], *,
                   sweeps: Optional[Iterable[int]] = None,
                   channel: Optional[int] = None, v_units: Optional[str] = None,
                   i_units: Optional[str] = None) -> Recording:
    """Load a current-clamp recording, choosing the reader by file extension.

    ``path`` is one file, or a *file set* making one recording: a glob pattern
    (``'cells/B6_*.ibw'``), a list of paths, or a folder (its ``.ibw`` files).
    Files compressed as ``.gz`` or ``.xz`` (``18711001.abf.xz``) are read directly.

    Formats:
        ``.abf``: Axon ABF via pyabf. Voltage is input ``channel`` (by default the first
            input in mV or V); the injected current is the command waveform, or where the
            file has none, a recorded current input (rules: :mod:`hhjax.io.abf`).
        ``.nwb``: NWB via pynwb. ``CurrentClampSeries`` in /acquisition paired with
            the ``CurrentClampStimulusSeries`` in /stimulus of the same sweep number
            (or, lacking sweep numbers, the same position in name order); a series
            without one is skipped with a warning;
            ``channel`` picks the intracellular electrode (sorted by name).
            Values are ``data * conversion + offset`` in volts/amperes.
            IZeroClampSeries (no stimulus) are ignored. Allen's long current steps are the
            recording where a file has them, and sweeps cut short (NaN or zero padding)
            are left out (:mod:`hhjax.io.protocols`). An NWB 1 file (the Allen Cell Types
            Database's ``ephys.nwb``) is read with h5py instead (:mod:`hhjax.io.nwb1`).
        ``.csv``/``.tsv``/``.txt``: one sweep per file, a header naming the columns
            with their units, e.g. ``t_ms,v_mV,i_pA`` (``t_s``, ``v_V``, ``i_nA``,
            ``time (s)`` also work). A file with *no header* and exactly 3 columns
            is read as eFEL's test-data format: time (s), current (pA), voltage (mV),
            whitespace separated.
        ``.npz``: arrays ``t`` (ms), ``v`` (mV), ``i`` (pA), optional ``sweeps``,
            as written by :meth:`Recording.to_npz`.
        ``.ibw``: Igor waves via igor2, one channel of one sweep per file (a file set);
            voltage/current and sampling from each header; sweeps 0, 1, ... in the
            order of the numbers in the file names (rules: :mod:`hhjax.io.igor`).
        Anything else: through neo, if installed (one neo Segment per sweep).

    Args:
        path: the file, or a glob pattern, list of files or folder (a file set).
        sweeps: original sweep numbers to load (default all).
        channel: ABF input channel / NWB electrode / Igor or neo voltage channel
            index; other formats only 0. Default: the first voltage input for ABF, the channel
            whose sweeps spike most during depolarising steps for Igor sets, else 0.
        v_units, i_units: what the voltage/current really are, overriding the
            file's labels ('mV' or 'V'; 'pA', 'nA' or 'A').

    Returns:
        A Recording: t in ms (from 0 except for text files), v in mV, i in pA;
        ``metadata['read_with']`` keeps the ``channel``, ``v_units`` and ``i_units`` given. Voltage
        implausible for mV warns (:func:`~hhjax.io.sources.check_voltage_plausible`), and so
        does a current implausible for pA (:func:`~hhjax.io.sources.check_current_plausible`).

    Raises:
        FileNotFoundError: the file does not exist, or a pattern matches nothing.
        ValueError: unsupported, truncated or corrupted file, no current channel,
            sweeps, channel or units out of place, or a file set that disagrees.

    Example:
        >>> from hhjax.io import example_recording    # the repo's data/recordings
        >>> rec = load_recording(example_recording("18711001.abf"), sweeps=[10, 20])
        >>> rec.v.shape, rec.dt
        ((2, 30000), 0.05)
        >>> load_recording(example_recording("B6")).n_sweeps    # 10 .ibw files, 5 sweeps
        5
    """
    if channel is not None and (isinstance(channel, bool) or not isinstance(channel, (int, np.integer))
                                or channel < 0):
        raise fail(path, f"channel={channel!r} must be a non-negative integer")
    label, files, is_set = expand_sources(path)
    for f in files:
        where = f if is_set else label   # errors name the path as the user gave it
        if not f.exists():
            raise fail(where, "file not found", FileNotFoundError)
        if not f.is_file():
            raise fail(where, "is not a regular file")
    exts = {inner_suffix(f) for f in files}
    if is_set or exts <= set(SET_FORMATS):
        if not exts <= set(SET_FORMATS):
            raise fail(label, f"a set of several files must be Igor waves "
                              f"({'/'.join(SET_FORMATS)}); got {', '.join(sorted(exts))}")
        rec = load_ibw_set(label, files, sweeps, None if channel is None else int(channel), v_units, i_units)
    else:
        rec = _load_file(label, files[0], sweeps, None if channel is None else int(channel), v_units, i_units)
    given = {k: v for k, v in (("channel", None if channel is None else int(channel)), ("v_units", v_units),
                               ("i_units", i_units)) if v is not None}
    if given:  # kept so that a fit's settings can say how to read the file again (hhjax evaluate)
        rec = dataclasses.replace(rec, metadata={**rec.metadata, "read_with": given})
    check_finite(rec, label)
    check_voltage_plausible(rec, label)
    check_current_plausible(rec, label, i_units if i_units is not None
                            else rec.metadata.get("units_in_file", {}).get("i"))
    return rec


def _load_file(path: str, p: Path, sweeps, channel, v_units, i_units) -> Recording:
    ext = inner_suffix(p)
    readers = {".abf": load_abf, ".nwb": load_nwb, ".csv": _load_text, ".tsv": _load_text,
               ".txt": _load_text, ".npz": _load_npz}
    with opened(path, p) as plain:
        if ext in readers:
            rec = readers[ext](path, plain, sweeps, channel if ext == ".abf" else channel or 0, v_units, i_units)
        else:
            rec = load_with_neo(path, plain, sweeps, channel or 0, v_units, i_units, SUPPORTED)
    return rec if plain == p else dataclasses.replace(rec, source=str(p.resolve()))


def _single_channel(path: Any, channel: int) -> None:
    if channel != 0:
        raise fail(path, f"channel {channel} out of range; this file has one channel (0)")


def _metadata(fmt: str, **kw: Any) -> dict:
    return {"format": fmt, "units": dict(UNITS), **kw}


# ---------------------------------------------------------------------- CSV/text

_KINDS = {"t": "t", "time": "t", "v": "v", "vm": "v", "voltage": "v",
          "i": "i", "current": "i", "iinj": "i"}
_HEADER = re.compile(r"^(?P<base>[A-Za-z]+)(?:[_ ]+(?P<u1>[A-Za-zµ]+)"
                     r"|\s*[(\[](?P<u2>[^)\]]*)[)\]])?$")


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _load_text(path, p, sweeps, channel, v_units, i_units) -> Recording:
    _single_channel(path, channel)
    try:
        lines = p.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise fail(path, f"cannot read as text: {type(e).__name__}: {e}") from None
    first = next((n for n, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")),
                 None)
    if first is None:
        raise fail(path, "file is empty")
    head = lines[first]
    ext = p.suffix.lower()
    delim = "," if ext == ".csv" else "\t" if ext == ".tsv" else \
        ("," if "," in head else "\t" if "\t" in head else None)
    fields = [f.strip() for f in (head.split(delim) if delim else head.split())]
    try:
        data = np.loadtxt(p, delimiter=delim, comments="#", ndmin=2, encoding="utf-8-sig",
                          skiprows=first + (0 if all(map(_is_number, fields)) else 1))
    except Exception as e:
        raise fail(path, f"cannot parse numbers: {type(e).__name__}: {e}") from None
    if all(map(_is_number, fields)):
        # eFEL test data (e.g. tests/testdata/basic/current.txt): no header,
        # time in s, current in pA, voltage in mV.
        if data.shape[1] != 3:
            raise fail(path, f"headerless file has {data.shape[1]} columns; expected eFEL's "
                             "3 columns (time s, current pA, voltage mV) or a header such "
                             "as 't_ms,v_mV,i_pA'")
        cols, units, fmt = {"t": 0, "i": 1, "v": 2}, {"t": "s", "i": "pA", "v": "mV"}, "efel-txt"
        fields = ["time (s)", "current (pA)", "voltage (mV)"]
    else:
        cols, units, fmt = {}, {}, "csv"
        for n, name in enumerate(fields):
            m = _HEADER.match(name)
            kind = _KINDS.get(m.group("base").lower()) if m else None
            if kind is None or m is None:
                continue  # extra columns (e.g. sweep notes) are ignored
            if kind in cols:
                raise fail(path, f"two {kind!r} columns in the header {head.strip()!r}")
            cols[kind], units[kind] = n, (m.group("u1") or m.group("u2") or "")
        if "t" not in cols or "v" not in cols:
            raise fail(path, f"header {head.strip()!r} needs time and voltage columns, "
                             "e.g. 't_ms,v_mV,i_pA'")
        if "i" not in cols:
            raise fail(path, f"no current column in header {head.strip()!r}; "
                             "expected e.g. 'i_pA'")
        if data.shape[1] < len(fields):
            raise fail(path, f"rows have {data.shape[1]} values but the header has {len(fields)}")
    if not units["t"]:
        raise fail(path, "time column has no unit; name it t_ms or t_s")
    check.columns(path, {fields[cols[k]]: (data[:, cols[k]], None) for k in ("t", "v", "i")})
    t = data[:, cols["t"]] * unit_factor(path, "t", units["t"], None)
    v = data[:, cols["v"]] * unit_factor(path, "v", units["v"], v_units)
    i = data[:, cols["i"]] * unit_factor(path, "i", units["i"], i_units)
    fs = rate_from_times(path, t)
    if sweeps is not None:
        check_sweeps(path, sweeps, [0])
    t_grid = t[0] + np.arange(t.size) * (1000.0 / fs)
    md = _metadata(fmt, protocol=None, units_in_file=units,
                   current_source="measured current" if fmt == "efel-txt" else "file column")
    return Recording(t_grid, v[None], i[None], (0,), fs, str(p.resolve()), md)


# --------------------------------------------------------------------------- NPZ

def _load_npz(path, p, sweeps, channel, v_units, i_units) -> Recording:
    _single_channel(path, channel)
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise fail(path, f"cannot read NPZ file (truncated or corrupted?): "
                         f"{type(e).__name__}: {e}") from None
    for key in ("t", "v", "i"):
        if key not in arrays:
            what = "no current array 'i'" if key == "i" else f"no array {key!r}"
            raise fail(path, f"{what}; expected arrays t (ms), v (mV), i (pA)")

    def unit(key: str, default: str) -> str:
        return str(arrays[key]) if key in arrays else default

    t = np.asarray(arrays["t"], dtype=np.float64).reshape(-1) * \
        unit_factor(path, "t", unit("t_units", "ms"), None)
    v = np.atleast_2d(arrays["v"]) * unit_factor(path, "v", unit("v_units", "mV"), v_units)
    i = np.atleast_2d(arrays["i"]) * unit_factor(path, "i", unit("i_units", "pA"), i_units)
    if v.shape != i.shape or v.shape[1] != t.size:
        raise fail(path, f"inconsistent shapes: t {t.shape}, v {v.shape}, i {i.shape}")
    numbers = tuple(int(k) for k in arrays.get("sweeps", np.arange(v.shape[0])))
    fs = float(arrays["sampling_rate_hz"]) if "sampling_rate_hz" in arrays else \
        rate_from_times(path, t)
    md = json.loads(str(arrays["metadata_json"])) if "metadata_json" in arrays else {}
    md = {**md, "original_format": md.get("format"), "format": "npz", "units": dict(UNITS)}
    if "source" in arrays and str(arrays["source"]):
        md.setdefault("original_source", str(arrays["source"]))
    rec = Recording(t, v, i, numbers, fs, str(p.resolve()), md)
    return rec if sweeps is None else rec.select(check_sweeps(path, sweeps, numbers))
