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
- **User lists**: Clampex can take an epoch's level, sweep by sweep, from a list in the
  protocol (f–I steps of -200, -150, ..., 25, 50, 100, ... pA), which pyabf's ``sweepC``
  does not apply: it keeps the epoch table's first level plus its delta. In ABF 2 files
  the list's values are set as that step epoch's levels, with a warning
  (:func:`apply_user_list`); where the list changes anything else in the waveform (an
  epoch's duration, a pulse train) the recorded current is used where the file has one,
  else the command is kept with a warning. ABF 1 headers are left as they are: pyabf reads
  their user-list fields from one offset, so they cannot be trusted.
"""

from __future__ import annotations

import warnings
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


# Clampex's codes for what a user list varies (ABFHEADR.H): ABF_EPOCHINITLEVEL + epoch is
# 21 + epoch in headers of 10 epochs (ABF 1.x, Clampex 10: pyabf's 19212027.abf, epoch D, 24)
# and 61 + epoch in headers of 50 (Clampex 11: its 2020_03_02_0000.abf, epoch B, 62); the
# codes after them (durations, train periods, pulse widths) change the waveform otherwise.
_LEVEL_CODES = ((21, 10), (61, 50))
_WAVEFORM_CODES = ((21, 40), (61, 200))


def apply_user_list(path: Any, abf: Any, channel: int, wanted: list, c: np.ndarray) -> tuple[np.ndarray, bool]:
    """``(command, ok)``: the command ``c`` (one row per sweep in ``wanted``, the file's units)
    with the levels that an ABF 2 protocol's user list gives one step epoch of DAC
    ``channel`` set sweep by sweep (a warning says so), and whether the command now matches
    what was injected (False: the list varies something else, which a recorded current
    should replace). A list shorter than the sweeps repeats, as Clampex repeats it."""
    if abf.abfVersion["major"] != 2:
        return c, True
    codes = [int(x) for x, on in zip(abf.userListParamToVary or [], abf.userListEnable or []) if on and x]
    values = list(abf.userList or [])
    if not codes or not any(lo <= codes[0] < lo + n for lo, n in _WAVEFORM_CODES):
        return c, True   # no list, or one that varies no epoch (holding, start-to-start, ...)
    import pyabf.waveform

    table = pyabf.waveform.EpochTable(abf, channel)
    epoch = next((codes[0] - lo for lo, n in _LEVEL_CODES if 0 <= codes[0] - lo < n), None)
    pos = next((j for j, e in enumerate(table.epochs) if e.epochNumber == epoch), None)
    # The list's first value is the epoch table's first level in Clampex's files: a check that
    # the code was read as the header meant it.
    if epoch is None or pos is None or not values or table.epochs[pos].epochTypeStr != "Step" \
            or not np.isclose(table.epochs[pos].level, values[0]):
        return c, False
    c = np.array(c, dtype=np.float64)
    for row, k in enumerate(wanted):
        sweep = table.epochWaveformsBySweep[k]
        c[row, sweep.p1s[pos + 1]:sweep.p2s[pos + 1]] = values[k % len(values)]  # [0] is pyabf's pre-epoch
    letter = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[epoch] if epoch < 26 else str(epoch)
    warnings.warn(f"{path}: the protocol sets epoch {letter}'s level sweep by sweep from a user list "
                  f"({', '.join(f'{x:g}' for x in values)}), which pyabf's command waveform does not apply; "
                  "the command's levels are taken from the list", UserWarning, stacklevel=5)
    return c, True


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
    c, command_ok = apply_user_list(path, abf, channel, wanted, c)
    units_c = abf.sweepUnitsC
    source = "command waveform (sweepC)"
    recorded = _current_input(abf, skip=channel)
    if not command_ok:
        warnings.warn(f"{path}: the protocol's user list changes the command waveform in a way pyabf does not "
                      "apply (" + ("the recorded current is used instead)" if recorded is not None else
                                   "and no input records the current: the currents read may be wrong)"),
                      UserWarning, stacklevel=4)
    if recorded is not None and not (command_ok and np.all(np.isfinite(c)) and np.any(c)):
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
