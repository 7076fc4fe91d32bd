"""Sanity checks of an ABF file's header before pyabf acts on it (issue 16).

pyabf trusts the header: section entry counts drive Python loops, the sweep count becomes
``list(range(n))``, the synch array's sweep lengths and the epoch table's durations become
``np.full`` sizes and pulse loops. A corrupted header (a block of zeros, a shifted section)
made one load of a 366 KB file take 193 s and gigabytes. These checks compare every such
number with what the file can hold, so a corrupted file is one ``ValueError`` within
milliseconds, and a real file passes unchanged:

* :func:`check_abf_header` reads the raw header (before pyabf): each section pyabf reads
  must lie inside the file, the sweep count must not exceed the samples, the channel count
  must be 1-16 (ABF's maximum).
* :func:`check_abf_layout` looks at what pyabf parsed (before any sweep is read): fixed-
  length sweeps must divide the samples evenly, variable-length sweeps (the synch array)
  must add up to no more than the samples, the sample rate must be positive, and the
  channel's epoch table must stay inside its sweep.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

from .recording import fail

# ABF2 section table: byte offset of each section's (block, entry size, entry count) entry,
# for the sections pyabf reads (pyabf/abf2/*Section.py).
_ABF2_SECTIONS = {"protocol": 76, "ADC": 92, "DAC": 108, "epoch": 124, "epoch-per-DAC": 156,
                  "user list": 172, "strings": 220, "data": 236, "tag": 252, "synch array": 316}
_BLOCK = 512
_MAX_CHANNELS = 16
_ABF1_TAG_BYTES = 64


def check_abf_header(path: Any, p: Path) -> None:
    """Reject an ABF file whose raw header declares more than the file holds.

    ``path`` names the file in messages; ``p`` is the (decompressed) file to read.

    Example:
        >>> from hhjax.io import example_recording
        >>> check_abf_header("File_axon_5.abf", example_recording("File_axon_5.abf"))  # passes
    """
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(_BLOCK)
    if len(head) < 350:
        raise fail(path, f"cannot read ABF file: {size} bytes is shorter than an ABF header")
    if head[:4] == b"ABF2":
        _check_abf2(path, head, size)
    elif head[:4] == b"ABF ":
        _check_abf1(path, head, size)
    # Anything else: pyabf's own "invalid ABF file format" error.


def _section_end(path, name, block, entry_size, count, size) -> int:
    if count < 0:
        raise fail(path, f"corrupted ABF header: the {name} section has {count} entries")
    if count == 0:
        return 0
    end = block * _BLOCK + entry_size * count
    if entry_size == 0 or end > size:
        raise fail(path, f"corrupted or truncated ABF file: the header's {name} section "
                         f"({count} entries of {entry_size} bytes from byte {block * _BLOCK}) "
                         f"ends past the file's {size} bytes")
    return end


def _check_abf2(path, head, size):
    counts = {}
    for name, offset in _ABF2_SECTIONS.items():
        block, entry_size, count = struct.unpack_from("<IIi", head, offset)
        _section_end(path, name, block, entry_size, count, size)
        counts[name] = count
    n_samples, n_channels = counts["data"], counts["ADC"]
    if not 1 <= n_channels <= _MAX_CHANNELS:
        raise fail(path, f"corrupted ABF header: {n_channels} input channels (expected 1-{_MAX_CHANNELS})")
    (n_sweeps,) = struct.unpack_from("<I", head, 12)
    if n_sweeps > max(n_samples // n_channels, 1):
        raise fail(path, f"corrupted ABF header: {n_sweeps} sweeps but only {n_samples} samples "
                         f"on {n_channels} channel(s)")


def _check_abf1(path, head, size):
    n_samples, n_sweeps = struct.unpack_from("<i", head, 10)[0], struct.unpack_from("<i", head, 16)[0]
    data_block, tag_block, n_tags = struct.unpack_from("<iii", head, 40)
    (n_channels,) = struct.unpack_from("<h", head, 120)
    if data_block < 0 or tag_block < 0:
        raise fail(path, "corrupted ABF header: negative section pointer")
    _section_end(path, "data", data_block, 2, n_samples, size)
    _section_end(path, "tag", tag_block, _ABF1_TAG_BYTES, n_tags, size)
    if not 1 <= n_channels <= _MAX_CHANNELS:
        raise fail(path, f"corrupted ABF header: {n_channels} input channels (expected 1-{_MAX_CHANNELS})")
    if not 0 <= n_sweeps <= max(n_samples // n_channels, 1):
        raise fail(path, f"corrupted ABF header: {n_sweeps} sweeps but only {n_samples} samples "
                         f"on {n_channels} channel(s)")


def check_abf_layout(path: Any, abf: Any, channel: int) -> None:
    """Reject a parsed ``pyabf.ABF`` whose sweeps or epochs do not fit its samples.

    Call it before reading any sweep: ``abf`` may be opened with ``loadData=False``.

    Example:
        >>> import pyabf
        >>> from hhjax.io import example_recording
        >>> abf = pyabf.ABF(str(example_recording("File_axon_5.abf")), loadData=False)
        >>> check_abf_layout("File_axon_5.abf", abf, 0)   # passes
    """
    n, n_ch, n_sweeps = int(abf.dataPointCount), int(abf.channelCount), int(abf.sweepCount)
    rate = float(abf.dataRate)
    if not (math.isfinite(rate) and rate > 0):
        raise fail(path, f"corrupted ABF header: sample rate {rate} Hz")
    if abf.sweepPointCount < 1:
        raise fail(path, f"corrupted ABF header: {n_sweeps} sweeps of {n_ch} channel(s) in {n} samples "
                         "leave no sample per sweep")
    lengths = list(getattr(getattr(abf, "_synchArraySection", None), "lLength", []) or [])
    variable = len(set(lengths)) > 1
    if variable:
        if min(lengths) < 0 or sum(lengths) > n:
            raise fail(path, f"corrupted ABF file: the synch array's sweep lengths (sum {sum(lengths)}, "
                             f"smallest {min(lengths)}) do not fit the {n} samples")
    elif n_sweeps > 1 and n % (n_sweeps * n_ch):
        raise fail(path, f"corrupted ABF header: {n} samples do not divide into {n_sweeps} sweeps "
                         f"of {n_ch} channel(s)")
    if channel < n_ch:
        _check_epochs(path, abf, channel)


def _check_epochs(path, abf, channel):
    # pyabf builds the command waveform from the epoch table (pyabf.stimulus.Stimulus):
    # np.full(duration) per epoch and a Python loop per pulse, durations straight from
    # the header. Built here once; it must lie inside the sweep.
    with_epochs = False
    if abf.abfVersion["major"] == 2:
        dac = abf._dacSection
        with_epochs = channel < len(dac.nWaveformEnable) and dac.nWaveformEnable[channel] != 0 \
            and dac.nWaveformSource[channel] == 1
    elif abf.abfVersion["major"] == 1:
        h = abf._headerV1
        with_epochs = channel < len(h.nWaveformEnable) and h.nWaveformEnable[channel] != 0 \
            and h.nWaveformSource[channel] == 1
    if not with_epochs:
        return
    import pyabf.waveform  # optional dependency, imported by the caller already

    try:
        table = pyabf.waveform.EpochTable(abf, channel)
    except Exception as e:  # noqa: BLE001 - pyabf's own error on a malformed table
        raise fail(path, f"cannot read the ABF epoch table: {type(e).__name__}: {e}") from None
    points = abf.sweepPointCount
    for sweep, ep in enumerate(table.epochWaveformsBySweep):
        for p1, p2, period in zip(ep.p1s, ep.p2s, ep.pulsePeriods):
            if not 0 <= p1 <= p2 <= points or period < 0:
                raise fail(path, f"corrupted ABF protocol: sweep {sweep} has an epoch from sample "
                                 f"{p1} to {p2} (pulse period {period}) in a sweep of {points} samples")
