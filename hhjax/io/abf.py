"""Axon ABF files (ABF1 and ABF2), read with pyabf.

Which input channel is the membrane voltage, and where the injected current comes from,
are decided here, because rigs lay them out differently:

- **Voltage**: input ``channel`` when given; by default the first input in ``mV`` (else
  the first in ``V``: an input left in volts is usually an auxiliary signal), so a file
  that records the amplifier's current output, or a stimulator's monitor, on input 0 and
  the membrane potential on input 1 loads as it is.
- **Current**: the command waveform (pyabf's ``sweepC``, built from the protocol's epoch
  table) of that channel. Where the file has no usable command (not finite, or zero in
  every sweep: a stimulus from an external stimulator, or an ABF1 file whose waveform is
  off) but records a current input (units ``pA``, ``nA``, ...; an amplifier's
  membrane-current output), the recorded current is the stimulus instead, as in eFEL's
  text traces. ``Recording.metadata["current_source"]`` says which was used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from .abf_checks import check_abf_header, check_abf_layout
from .recording import Recording, check_sweeps, fail
from .units import UNITS, unit_factor, units_kind


def _current_input(abf: Any, skip: int) -> Optional[int]:
    """Index of the first input channel (not ``skip``) that records a current (pA, nA, A)."""
    return next((k for k, u in enumerate(abf.adcUnits) if k != skip and units_kind(u) == "i"), None)


def _voltage_input(path: Any, abf: Any) -> Optional[int]:
    """The first input in mV, else the first in V: Clampex scales the membrane potential to
    mV, so an input left in volts is usually an auxiliary signal (a stimulator's monitor)."""
    volts = [k for k, u in enumerate(abf.adcUnits) if units_kind(u) == "v"]
    mv = [k for k in volts if unit_factor(path, "v", abf.adcUnits[k], None) == 1.0]
    return (mv or volts)[0] if volts else None


def _command(abf: Any, shape: tuple) -> np.ndarray:
    """The current sweep's command waveform, NaN where pyabf has none for this input (an
    ABF1 header describes the waveforms of two outputs only)."""
    try:
        return np.array(abf.sweepC, dtype=np.float64)
    except IndexError:
        return np.full(shape, np.nan)


def _read(path: Any, abf: Any, wanted: list, channel: int) -> tuple:
    """``(sweepY, sweepC, number of protocol epochs)`` of input ``channel`` for the sweeps ``wanted``."""
    ys, cs, n_epochs = [], [], 0
    try:
        for k in wanted:
            abf.setSweep(k, channel=channel)
            ys.append(np.array(abf.sweepY, dtype=np.float64))
            cs.append(_command(abf, ys[-1].shape))
            ep = getattr(abf, "sweepEpochs", None)
            # pyabf wraps the protocol's epochs in a pre- and a post-epoch.
            n_epochs = max(n_epochs, len(ep.types) - 2 if ep is not None else 0)
    except Exception as e:
        raise fail(path, f"cannot read ABF sweep data (truncated or corrupted?): {type(e).__name__}: {e}") from None
    return np.stack(ys), np.stack(cs), n_epochs


def load_abf(path: Any, p: Path, sweeps: Any, channel: Optional[int], v_units: Optional[str],
             i_units: Optional[str]) -> Recording:
    """Read ABF file ``p`` (named ``path`` in errors) as a :class:`Recording` (see the module
    docstring; the arguments as for :func:`hhjax.io.load_recording`)."""
    # pyabf's first import calls np.set_printoptions(threshold=5, ...) for the whole
    # process; loading a file should not change how the user's arrays print.
    with np.printoptions():
        import pyabf

    check_abf_header(path, p)  # pyabf sizes loops and arrays by the header's numbers
    try:
        abf = pyabf.ABF(str(p), loadData=False)
    except Exception as e:  # pyabf raises struct.error, ValueError, ... on bad files
        raise fail(path, f"cannot read ABF file (truncated or corrupted?): {type(e).__name__}: {e}") from None
    if channel is None:
        channel = (_voltage_input(path, abf) if v_units is None else None) or 0
    if channel >= abf.channelCount:
        raise fail(path, f"channel {channel} out of range; this file has "
                         f"{abf.channelCount} channel(s) (0-{abf.channelCount - 1})")
    check_abf_layout(path, abf, channel)
    units_y = abf.adcUnits[channel]
    fv = unit_factor(path, "v", units_y, v_units)  # the wrong input named is the likelier mistake
    wanted = list(abf.sweepList) if sweeps is None else check_sweeps(path, sweeps, abf.sweepList)
    v, c, n_epochs = _read(path, abf, wanted, channel)
    units_c = abf.sweepUnitsC
    source = "command waveform (sweepC)"
    recorded = _current_input(abf, skip=channel)
    if recorded is not None and not (np.all(np.isfinite(c)) and np.any(c)):
        c = _read(path, abf, wanted, recorded)[0]
        units_c = abf.adcUnits[recorded]
        source = f"recorded input channel {recorded} ({str(abf.adcNames[recorded]).strip()})"
    elif not np.all(np.isfinite(c)):
        raise fail(path, "no usable current/command channel: the command waveform "
                         "(sweepC) is not finite and no input channel records a current")
    elif not np.any(c) and n_epochs <= 0:
        raise fail(path, "no current/command channel: the command waveform (sweepC) is all "
                         "zeros, the protocol has no epochs and no input channel records a current "
                         "(gap-free or voltage-only file?)")
    fi = unit_factor(path, "i", units_c, i_units)
    fs = float(abf.sampleRate)
    t = np.arange(v.shape[1]) * (1000.0 / fs)
    md = {"format": "abf", "units": dict(UNITS), "protocol": abf.protocol, "abf_version": abf.abfVersionString,
          "channel": channel, "channel_name": abf.adcNames[channel],
          "units_in_file": {"v": units_y, "i": units_c}, "current_source": source,
          "n_sweeps_in_file": abf.sweepCount, "abf_id": abf.abfID,
          "recorded": str(getattr(abf, "abfDateTime", ""))}
    return Recording(t, v * fv, c * fi, tuple(wanted), fs, str(p.resolve()), md)
