"""Files hhjax has no reader of its own for, read through ``neo`` when it is installed.

neo (https://neo.readthedocs.io, BSD) reads some 50 electrophysiology formats
(Spike2 ``.smr``, HEKA ``.dat``, WinWCP ``.wcp``, Axograph, Neuralynx, Plexon, ...)
into one object model whose signals carry their units. Reading them through it
saves a reader per format: hhjax only maps neo's objects to a :class:`Recording`.

- each neo Segment is a sweep (numbered 0, 1, ... in the file's order);
- each channel of each AnalogSignal is voltage or current by its units
  (anything convertible to V or to A); ``channel=k`` picks the k-th voltage channel,
  paired with the k-th current channel, or the only one;
- values are rescaled to mV and pA, time to ms from the sweep start.

The native readers stay: they know things neo's generic model does not (pyABF's
command waveform ``sweepC``, NWB's stimulus series, Igor file sets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from .protocols import choose_group, spikes_in_steps
from .recording import Recording, check_sweeps, fail, format_sweeps
from .units import UNITS, unit_factor


def _signal_kind(sig: Any) -> Optional[str]:
    """'v' or 'i' for a signal whose units convert to mV or pA, else None."""
    for kind in ("v", "i"):
        try:
            sig.units.rescale(UNITS[kind])
            return kind
        except ValueError:   # quantities: "Unable to convert between units"
            continue
    return None


def _segment_channels(seg: Any) -> dict[str, list[tuple[str, Any]]]:
    out: dict[str, list[tuple[str, Any]]] = {"v": [], "i": []}
    for sig in seg.analogsignals:
        kind = _signal_kind(sig)
        if kind is not None:
            for j in range(sig.shape[1]):
                out[kind].append((f"{sig.name or 'signal'}[{j}]", sig[:, j]))
    return out


def load_with_neo(path: Any, p: Path, sweeps: Optional[Any], channel: int,
                  v_units: Optional[str], i_units: Optional[str], native: tuple) -> Recording:
    """Read ``p`` with neo; a one-line ValueError naming ``path`` if neo is absent or fails."""
    ext = p.suffix.lower() or "(none)"
    unsupported = f"unsupported file type {ext!r}; hhjax reads {', '.join(native)}"
    try:
        # neo is optional (pip install neo): only files hhjax cannot read itself need it.
        import neo
    except ImportError:
        raise fail(path, f"{unsupported}; other rig formats (Spike2, HEKA, WinWCP, ...) are "
                         "read through neo: pip install neo") from None
    try:
        reader = neo.io.get_io(str(p))
        block = reader.read_block()
    except Exception as e:  # unknown extension, or a reader's own error
        raise fail(path, f"{unsupported}, and neo cannot read it either: "
                         f"{type(e).__name__}: {e}") from None
    segs = [_segment_channels(seg) for seg in block.segments]
    if not segs or not segs[0]["v"]:
        raise fail(path, "neo found no voltage signal (units convertible to V)")
    if not segs[0]["i"]:
        raise fail(path, "no stimulus (current) channel: neo found no signal with units "
                         "convertible to A")
    n_v, n_i = len(segs[0]["v"]), len(segs[0]["i"])
    if channel >= n_v:
        raise fail(path, f"channel {channel} out of range; voltage channels are 0-{n_v - 1}")
    if n_i not in (1, n_v):
        raise fail(path, f"{n_v} voltage and {n_i} current channels: cannot pair them")
    pairs = [(s["v"][channel], s["i"][channel if n_i == n_v else 0]) for s in segs]

    converted: dict = {}

    def values(k: int, kind: str) -> np.ndarray:
        """Segment ``k``'s voltage or current in hhjax's units, converted once (the
        protocol scores and the recording use the same arrays)."""
        if (k, kind) not in converted:
            sig, override = pairs[k][kind == "i"][1], v_units if kind == "v" else i_units
            if override is not None:   # the user says the file's units are wrong
                converted[k, kind] = np.asarray(sig.magnitude, np.float64).ravel() * \
                    unit_factor(path, kind, None, override)
            else:
                converted[k, kind] = np.asarray(sig.rescale(UNITS[kind]).magnitude, np.float64).ravel()
        return converted[k, kind]

    def shape(k: int) -> tuple:
        return tuple((sig.shape[0], float(sig.sampling_rate.rescale("Hz"))) for sig in (pairs[k][0][1], pairs[k][1][1]))

    wanted = list(range(len(pairs))) if sweeps is None else \
        check_sweeps(path, sweeps, range(len(pairs)))
    if sweeps is None and len({shape(k) for k in wanted}) > 1:
        # Segments of several protocols: one is the recording, by the package's one rule.
        picked = choose_group(path, "groups of segments of different lengths", [shape(k) for k in wanted],
                              lambda g, js: f"segments {format_sweeps([wanted[j] for j in js])} ({g[0][0] / g[0][1]:g} s)",
                              lambda g, js: sum(spikes_in_steps(values(wanted[j], "v"), values(wanted[j], "i"), g[0][1])
                                                for j in js) if g[0] == g[1] else -1)
        wanted = [wanted[j] for j in picked]
    sigs = [sig for k in wanted for sig in (pairs[k][0][1], pairs[k][1][1])]
    lengths = {sig.shape[0] for sig in sigs}
    rates = {float(sig.sampling_rate.rescale("Hz")) for sig in sigs}
    if len(lengths) != 1 or len(rates) != 1:
        raise fail(path, f"sweeps differ in length ({sorted(lengths)} samples) or sampling "
                         f"({sorted(rates)} Hz); the sweeps of one recording must agree")
    n, fs = lengths.pop(), rates.pop()
    v = np.stack([values(k, "v") for k in wanted])
    i = np.stack([values(k, "i") for k in wanted])
    v_name, i_name = pairs[0][0][0], pairs[0][1][0]
    md = {"format": f"neo:{type(reader).__name__}", "units": dict(UNITS),
          "protocol": None, "channel": channel, "voltage_signal": v_name,
          "current_signal": i_name, "current_source": "neo current signal",
          "units_in_file": {"v": str(pairs[0][0][1].units.dimensionality),
                            "i": str(pairs[0][1][1].units.dimensionality)}}
    t = np.arange(n) * (1000.0 / fs)
    return Recording(t, v, i, tuple(wanted), fs, str(p.resolve()), md)
