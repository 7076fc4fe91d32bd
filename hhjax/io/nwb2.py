"""NWB files: NWB 2 read with pynwb (each ``CurrentClampSeries`` in /acquisition with the
``CurrentClampStimulusSeries`` in /stimulus of its sweep number), NWB 1 handed to
:mod:`hhjax.io.nwb1`. Which sweeps make the recording, where a file holds several
protocols, is :mod:`hhjax.io.protocols`' rule; :func:`hhjax.io.load_recording` documents
the whole behaviour.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..simulation.memory import available
from .nwb1 import is_nwb1, load_nwb1
from .protocols import STEP_PROTOCOL, not_cut_short, one_protocol, prefer_steps, protocol_family, \
    settle_protocol, spikes_in_steps
from .recording import Recording, check_sweeps, fail, format_sweeps
from .sources import rate_from_times
from .units import UNITS, unit_factor


def _natural_key(name: str) -> list:
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", name)]


def _series_rate(path: Any, s: Any) -> float:
    if getattr(s, "rate", None):
        return float(s.rate)
    ts = getattr(s, "timestamps", None)
    if ts is None:
        raise fail(path, f"series {s.name!r} has neither a rate nor timestamps")
    return rate_from_times(path, np.asarray(ts[:], dtype=np.float64) * 1e3)


def _series_values(path: Any, s: Any) -> np.ndarray:
    need = 16 * int(np.prod(np.shape(s.data)))  # the stored samples and their float64 copy
    if need > available("cpu"):  # a corrupted or hostile header can declare any size
        raise fail(path, f"series {s.name!r} declares {np.shape(s.data)} samples ({need / 1e9:.3g} GB "
                         "to load), more than the free memory")
    offset = getattr(s, "offset", 0.0) or 0.0
    return np.asarray(s.data[:], dtype=np.float64).reshape(-1) * float(s.conversion) + offset


def load_nwb(path: Any, p: Path, sweeps: Any, channel: int, v_units: Any, i_units: Any) -> Recording:
    """The current-clamp sweeps of NWB file ``p`` as a :class:`Recording` (ms, mV, pA);
    ``path`` names the file in errors."""
    if is_nwb1(p):  # pynwb reads NWB 2 and later only
        return load_nwb1(path, p, sweeps, channel, v_units, i_units)
    from pynwb import NWBHDF5IO
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries, IZeroClampSeries

    try:
        io = NWBHDF5IO(str(p), "r")
    except Exception as e:  # h5py OSError for non-HDF5, KeyError/ValueError for non-NWB
        raise fail(path, f"cannot read NWB file (corrupted or not NWB?): "
                         f"{type(e).__name__}: {e}") from None
    try:
        with io:
            nwb = io.read()
            cc = [s for s in nwb.acquisition.values()
                  if isinstance(s, CurrentClampSeries) and not isinstance(s, IZeroClampSeries)]
            stim = [s for s in nwb.stimulus.values() if isinstance(s, CurrentClampStimulusSeries)]
            return _assemble_nwb(path, p, cc, stim, sweeps, channel, v_units, i_units,
                                 nwb.session_description)
    except Exception as e:
        if str(e).startswith(f"{path}: "):  # already ours, from _assemble_nwb
            raise
        raise fail(path, f"cannot read NWB file (corrupted?): {type(e).__name__}: {e}") from None


def _protocol_name(sv: Any, si: Any) -> str:
    """A sweep's protocol: the voltage series' ``stimulus_description``, else the stimulus
    series' (pynwb writes "N/A" where none was given)."""
    names = [str(getattr(s, "stimulus_description", "") or "") for s in (sv, si)]
    return next((n for n in names if n not in ("", "N/A")), "N/A")


def _assemble_nwb(path, p, cc, stim, sweeps, channel, v_units, i_units, description):
    if not cc:
        raise fail(path, "no CurrentClampSeries in /acquisition; not a current-clamp recording")
    electrodes = sorted({s.electrode.name for s in cc})
    if channel >= len(electrodes):
        raise fail(path, f"channel {channel} out of range; electrodes are "
                         f"{', '.join(f'{k}: {n}' for k, n in enumerate(electrodes))}")
    el = electrodes[channel]
    cc = sorted((s for s in cc if s.electrode.name == el), key=lambda s: _natural_key(s.name))
    stim = sorted((s for s in stim if s.electrode.name == el), key=lambda s: _natural_key(s.name))
    if not stim:
        raise fail(path, f"no current stimulus: no CurrentClampStimulusSeries in /stimulus "
                         f"for electrode {el!r}")
    numbers = [getattr(s, "sweep_number", None) for s in cc + stim]
    if all(n is not None for n in numbers):
        by_number = {int(s.sweep_number): s for s in stim}
        pairs = {int(s.sweep_number): (s, by_number[int(s.sweep_number)]) for s in cc
                 if int(s.sweep_number) in by_number}
        alone = [f"{s.name} (sweep {int(s.sweep_number)})" for s in cc if int(s.sweep_number) not in by_number]
        if not pairs:
            raise fail(path, f"no CurrentClampSeries has a CurrentClampStimulusSeries with its sweep number "
                             f"({', '.join(alone[:5])}{', ...' if len(alone) > 5 else ''})")
        if alone:  # a sweep stored without its stimulus (aborted, or a test pulse kept alone)
            warnings.warn(f"{path}: {len(alone)} voltage series without a CurrentClampStimulusSeries of the same "
                          f"sweep number, skipped: {', '.join(alone)}", stacklevel=4)
    else:
        if len(cc) != len(stim):
            raise fail(path, f"{len(cc)} voltage series but {len(stim)} stimulus series and no "
                             "sweep numbers to pair them")
        pairs = {k: pair for k, pair in enumerate(zip(cc, stim))}
    names = {k: _protocol_name(*pair) for k, pair in pairs.items()}
    wanted = prefer_steps(path, sorted(pairs), [names[k] for k in sorted(pairs)]) \
        if sweeps is None else check_sweeps(path, sweeps, sorted(pairs))

    def read(k: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Sweep ``k``'s voltage (mV), current (pA) and rate (Hz)."""
        sv, si = pairs[k]
        v = _series_values(path, sv) * unit_factor(path, "v", sv.unit, v_units)
        c = _series_values(path, si) * unit_factor(path, "i", si.unit, i_units)
        if v.size != c.size:
            raise fail(path, f"sweep {k}: voltage has {v.size} samples, stimulus {c.size}")
        rate = _series_rate(path, sv)
        if _series_rate(path, si) != rate:
            raise fail(path, f"sweep {k}: voltage at {rate:g} Hz, stimulus at {_series_rate(path, si):g} Hz")
        return v, c, rate

    if sweeps is None and not any(protocol_family(names[k]) == STEP_PROTOCOL for k in wanted) and \
            len({(int(np.prod(np.shape(pairs[k][0].data))), _series_rate(path, pairs[k][0])) for k in wanted}) > 1:
        # Series that declare one length and rate leave no choice: none is read twice for it.
        wanted = _one_protocol_lazily(path, wanted, names, read)
    vs, cs, rates, starts, cut = [], [], [], [], []
    for k, v, c, rate in not_cut_short(wanted, read, cut):
        vs.append(v)
        cs.append(c)
        rates.append(rate)
        starts.append(float(pairs[k][0].starting_time or 0.0))
    if cut:
        warnings.warn(f"{path}: sweeps cut short (NaN or zero padding where the recording stopped) "
                      f"left out: {format_sweeps(cut)}", UserWarning, stacklevel=4)
        wanted = [k for k in wanted if k not in cut]
    if not wanted:
        raise fail(path, "no current-clamp sweep to read (every sweep asked for was cut short)")
    keep, vs, cs = settle_protocol(path, wanted, [names[k] for k in wanted], vs, cs, rates, chosen=sweeps is not None)
    wanted, vs, cs, rates, starts = ([x[j] for j in keep] for x in (wanted, vs, cs, rates, starts))
    if len(set(rates)) != 1:
        raise fail(path, f"sweeps have different sampling rates {sorted(set(rates))} Hz")
    if len({v.size for v in vs}) != 1:
        raise fail(path, f"sweeps have different lengths {sorted({v.size for v in vs})}; "
                         "load equal-length sweeps with sweeps=[...]")
    sv, si = pairs[wanted[-1]]
    fs = rates[0]
    md = dict(format="nwb", units=dict(UNITS), protocol=names[wanted[-1]], electrode=el,
              session_description=description, units_in_file={"v": sv.unit, "i": si.unit},
              series={k: [pairs[k][0].name, pairs[k][1].name] for k in wanted},
              sweep_start_s=starts, current_source="CurrentClampStimulusSeries")
    t = np.arange(vs[0].size) * (1000.0 / fs)
    return Recording(t, np.stack(vs), np.stack(cs), tuple(wanted), fs, str(p.resolve()), md)


def _one_protocol_lazily(path: Any, wanted: list, names: dict, read: Callable) -> list:
    """The sweeps of ``wanted`` that make one protocol where they differ in length or rate
    (:func:`hhjax.io.protocols.one_protocol`), with the sweeps cut short among them (left
    out, with their warning, by the reading that follows). Each sweep is read (``read(k)``:
    voltage, current, rate), scored and let go in turn, so that a file of many protocols
    needs the memory of its longest sweep here and of one protocol after, not of every sweep.
    ``names``: sweep number -> protocol name."""
    kept, sizes, rates, spikes = [], [], [], []
    cut: list = []
    for k, v, c, rate in not_cut_short(wanted, read, cut):
        kept.append(k)
        sizes.append(v.size)
        rates.append(rate)
        spikes.append(spikes_in_steps(v, c, rate))
    chosen = {kept[j] for j in one_protocol(path, kept, [names[k] for k in kept], sizes, rates, spikes.__getitem__,
                                            by_name=False)}
    return [k for k in wanted if k in chosen or k in cut]
