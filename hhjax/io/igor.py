"""Igor Pro binary waves (``.ibw``), one channel of one sweep per file, read with igor2.

A recording made of such files (BluePyEfe's format: ``B6_Ch0_IDRest_181.ibw`` holds
the current of sweep 181, ``B6_Ch3_IDRest_181.ibw`` its voltage) is a *file set*:

- each file's kind (voltage or current) comes from the units in its wave header
  (``mV``/``V`` or ``pA``/``nA``/``A``), never from the channel number in its name;
- the sweep of a file is the last number in its name; files that differ only in that
  number form one *channel* (``B6_Ch3_IDRest_*``);
- a voltage channel is paired with the current channel whose name differs from its own
  in one number (``X_IDrest_ch1_*`` with ``X_IDrest_ch0_*``, ``B6_Ch3_*`` with ``B6_Ch0_*``);
  where no names pair that way, the k-th voltage channel (sorted by name) goes with the
  k-th current channel, or with the only one; ``channel=k`` picks the pair, and
  without it the channel whose sweeps hold the most spikes during depolarising steps
  (several protocols of one cell in one folder: the one that samples the f–I curve best);
- sweeps are numbered 0, 1, ... in the order of the numbers in the file names
  (``metadata['file_numbers']`` keeps the numbers themselves); a file whose number has
  no partner in the other channel (an aborted sweep saved one channel) is skipped with a
  warning naming it, and a pair with no number in common is an error;
- the sampling interval comes from the header's x scaling (``sfA``/``hsA``), in the
  header's x units, or in seconds when the header leaves them blank (as Igor
  acquisition packages do); every file must agree in length and sampling.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .protocols import choose_protocol, spikes_in_steps
from .sources import open_stream
from .recording import Recording, check_sweeps, fail
from .units import _TIME_TO_MS, UNITS, unit_factor, units_kind


def _text(raw: Any) -> str:
    """Header unit fields come as arrays of single bytes or as bytes; decode to str."""
    if isinstance(raw, np.ndarray):
        raw = b"".join(bytes(c) for c in raw.reshape(-1))
    if isinstance(raw, bytes):
        raw = raw.split(b"\x00", 1)[0].decode("latin-1")
    return str(raw or "").strip()


# Binary header of each wave version: struct format and the indices of the byte counts of
# the sections that follow it (TN003; pictSize is reserved and ignored).
_IBW_HEADERS = {1: ("hlh", (1,)), 2: ("hlllh", (1, 2)), 3: ("hllllh", (1, 2, 3)),
                5: ("hhllll4l4llll", tuple(range(2, 15)))}


def _check_ibw_sizes(path: Any, raw: bytes) -> None:
    """igor2 sizes its reads and parser by the header's byte counts: one beyond the file (a
    flipped bit) made it build a 2 GB parser. Refuse counts the file cannot hold."""
    if len(raw) < 2:
        return  # igor2's own error
    order = "<" if struct.unpack_from("<h", raw)[0] in _IBW_HEADERS else ">"
    fmt, idx = _IBW_HEADERS.get(struct.unpack_from(order + "h", raw)[0], (None, ()))
    if fmt is None or len(raw) < struct.calcsize(order + fmt):
        return  # igor2's own error
    fields = struct.unpack_from(order + fmt, raw)
    sizes = [fields[k] for k in idx]
    if min(sizes) < 0 or struct.calcsize(order + fmt) + sum(sizes) > len(raw):
        raise fail(path, f"corrupted Igor binary wave: its header declares sections of {sizes} bytes, "
                         f"more than the file's {len(raw)} bytes")


def read_ibw(path: Any) -> dict:
    """Read one Igor binary wave: its values and what its header says about them.

    Returns a dict with ``values`` (1-D float64, in the file's data units),
    ``units`` (data units as written, e.g. 'pA'), ``x_units`` ('' when blank),
    ``dx`` (x step in ``x_units``), ``version`` (1, 2, 3 or 5) and ``name``.
    Raises a one-line ValueError naming the file when it is not a readable
    1-D numeric wave.

    Example:
        >>> from hhjax.io import example_recording
        >>> w = read_ibw(example_recording("B6") / "B6_Ch3_IDRest_181.ibw")
        >>> w["units"], w["values"].size, w["dx"]
        ('mV', 12000, 0.00025)
    """
    # igor2 is an optional dependency (the 'io' extra), needed only for .ibw files.
    from igor2 import binarywave

    try:
        with open_stream(Path(path)) as fh:
            raw = fh.read()
    except (OSError, EOFError) as e:  # gzip/lzma errors are OSError/EOFError
        raise fail(path, f"cannot read file: {type(e).__name__}: {e}") from None
    _check_ibw_sizes(path, raw)
    # On a corrupted wave igor2 logs its raw bytes (the whole file) before raising; the
    # error below says it in one line instead.
    log = logging.getLogger(binarywave.__name__)
    was_disabled, log.disabled = log.disabled, True
    try:
        data = binarywave.load(io.BytesIO(raw))
        wave, version = data["wave"], int(data["version"])
        header = wave["wave_header"]
        values = np.asarray(wave["wData"])
    except Exception as e:  # igor2 raises ValueError, struct.error, IndexError, ...
        # igor2 reuses one parser per thread, and a failed parse can leave it sized for
        # the bad header (every later load then slow or a MemoryError): start afresh.
        vars(getattr(binarywave, "_thread_local", object())).pop("wave", None)
        raise fail(path, f"cannot read Igor binary wave (truncated or corrupted?): "
                         f"{type(e).__name__}: {str(e)[:200]}") from None
    finally:
        log.disabled = was_disabled
    if values.dtype.kind not in "fiu":
        raise fail(path, f"wave holds {values.dtype} data, not numbers")
    if values.ndim != 1:
        raise fail(path, f"wave has {values.ndim} dimensions {values.shape}; expected one "
                         "sweep of one channel per file")
    if version == 5:
        dx, x_units = float(header["sfA"][0]), _text(header["dimUnits"][0])
        units = _text(header["dataUnits"])
    else:
        dx, x_units = float(header["hsA"]), _text(header["xUnits"])
        units = _text(header["dataUnits"])
    # Units longer than 3 characters are stored in the extended fields.
    units = _text(wave.get("data_units")) or units
    ext_x = wave.get("dimension_units")
    x_units = (_text(ext_x[0]) if isinstance(ext_x, list) and ext_x else _text(ext_x)) or x_units
    return {"values": values.astype(np.float64), "units": units, "x_units": x_units,
            "dx": dx, "version": version, "name": _text(header.get("bname", ""))}


def _wave_kind(path: Any, units: str) -> str:
    kind = units_kind(units)
    if kind is not None:
        return kind
    raise fail(path, f"wave units {units!r} are neither voltage (mV, V) nor current "
                     "(pA, nA, A), so the file cannot be placed as voltage or current")


def _rate_hz(path: Any, wave: dict) -> float:
    unit = wave["x_units"] or "s"   # blank x units: Igor acquisition software writes seconds
    if unit.lower() not in _TIME_TO_MS:
        raise fail(path, f"x units {unit!r} are not time (s or ms); cannot know the sampling")
    dt_ms = wave["dx"] * _TIME_TO_MS[unit.lower()]
    fs = 1000.0 / dt_ms if dt_ms > 0 else float("nan")
    if not 100.0 <= fs <= 1e7:
        raise fail(path, f"sampling interval {wave['dx']!r} {unit} gives {fs:g} Hz, outside "
                         "100 Hz-10 MHz; the header's x scaling is wrong or not in seconds")
    return float(round(fs)) if abs(fs - round(fs)) < 1e-6 * fs else fs


def file_number(path: Any) -> tuple[int, str]:
    """The sweep number of a file (the last number in its name) and its channel key.

    The key is the name with that number replaced by ``*``.

    Example:
        >>> file_number("B6/B6_Ch3_IDRest_181.ibw")
        (181, 'B6_Ch3_IDRest_*.ibw')
    """
    name = Path(path).name
    digits = list(re.finditer(r"\d+", Path(name).stem))
    if not digits:
        raise fail(path, "no number in the file name to order the sweeps by "
                         "(expected e.g. cell_Ch0_181.ibw)")
    m = digits[-1]
    return int(m.group()), name[:m.start()] + "*" + name[m.end():]


def _group(waves: dict) -> dict[str, dict[str, dict[int, Path]]]:
    """{'v'|'i': {channel key: {file number: path}}}, the kind from each header's units."""
    channels: dict[str, dict[str, dict[int, Path]]] = {"v": {}, "i": {}}
    for f, w in waves.items():
        number, key = file_number(f)
        group = channels[_wave_kind(f, w["units"])].setdefault(key, {})
        if number in group:
            raise fail(f, f"same file number {number} as {group[number].name} in channel {key}")
        group[number] = f
    return channels


def _channel_names_pair(v_key: str, i_key: str) -> bool:
    """Names alike but for one number (the channel's): ``X_IDrest_ch1_*`` and ``X_IDrest_ch0_*``,
    not ``C060109A1_ch1_*`` and ``C060109A2_ch0_*`` (another cell too)."""
    a, b = re.split(r"(\d+)", v_key), re.split(r"(\d+)", i_key)
    return len(a) == len(b) and a[0::2] == b[0::2] and sum(x != y for x, y in zip(a[1::2], b[1::2])) == 1


def _pick_pair(label: str, channels: dict, channel: int, n_files: int) -> tuple[str, str]:
    """The voltage channel ``channel`` and the current channel that goes with it."""
    v_keys, i_keys = sorted(channels["v"]), sorted(channels["i"])
    if not v_keys:
        raise fail(label, f"no voltage wave: all {n_files} file(s) have current units; "
                          "a recording needs voltage (mV/V) waves too")
    if not i_keys:
        raise fail(label, f"no stimulus (current) channel: all {n_files} file(s) have "
                          "voltage units; add the current waves (pA/nA) of the same sweeps")
    if channel >= len(v_keys):
        raise fail(label, f"channel {channel} out of range; voltage channels are "
                          f"{', '.join(f'{k}: {n}' for k, n in enumerate(v_keys))}")
    # By name where the names pair at all: position pairing goes wrong as soon as one
    # protocol of a cell lacks a channel.
    if any(_channel_names_pair(v, i) for v in v_keys for i in i_keys):
        named = [k for k in i_keys if _channel_names_pair(v_keys[channel], k)]
        if len(named) != 1:
            raise fail(label, f"{len(named)} current channels named like {v_keys[channel]} (the same name "
                              f"but for one number) among {', '.join(i_keys)}: cannot tell which is its stimulus")
        return v_keys[channel], named[0]
    if len(i_keys) not in (1, len(v_keys)):
        raise fail(label, f"{len(v_keys)} voltage channels ({', '.join(v_keys)}) and "
                          f"{len(i_keys)} current channels ({', '.join(i_keys)}): "
                          "cannot tell which current belongs to which voltage")
    return v_keys[channel], i_keys[0] if len(i_keys) == 1 else i_keys[channel]


def _paired(v_files: dict, i_files: dict, keys: tuple) -> tuple[dict, dict, list]:
    """The two channels restricted to the file numbers both have, and the files left out;
    an error where they have none in common."""
    common = set(v_files) & set(i_files)
    if not common:
        number, f = min(v_files.items())
        raise fail(f, f"no current wave with file number {number} (looked in channel {keys[1]}), "
                      "nor any other number of this channel")
    left = sorted(f.name for files in (v_files, i_files) for n, f in files.items() if n not in common)
    return ({n: v_files[n] for n in common}, {n: i_files[n] for n in common}, left)


def _check_equal(waves: dict, v_files: dict, i_files: dict) -> None:
    """Every wave has the first one's length and rate."""
    first = v_files[min(v_files)]
    n0, fs0 = waves[first]["values"].size, _rate_hz(first, waves[first])
    for number in sorted(v_files):
        for f in (v_files[number], i_files[number]):
            n, fs = waves[f]["values"].size, _rate_hz(f, waves[f])
            if (n, fs) != (n0, fs0):
                raise fail(f, f"{n} samples at {fs:g} Hz, but {first.name} has {n0} samples "
                              f"at {fs0:g} Hz; the files of one recording must agree in "
                              "length and sampling")


def _spikes_in_steps(waves: dict, v_files: dict, i_files: dict) -> int:
    """:func:`hhjax.io.protocols.spikes_in_steps` summed over a channel pair's sweeps."""
    total = 0
    for number, vf in v_files.items():
        v = waves[vf]["values"] * unit_factor(vf, "v", waves[vf]["units"], None)
        total += spikes_in_steps(v, waves[i_files[number]]["values"], _rate_hz(vf, waves[vf]))
    return total


def _best_channel(label: str, channels: dict, waves: dict) -> int:
    """``channel`` when none is given: of several voltage channels (protocols of one cell,
    e.g. ``X_IDRest_ch1_*`` beside ``X_APWaveform_ch1_*``), the one chosen by the rule of
    :mod:`hhjax.io.protocols` (most spikes during depolarising steps), with its warning."""
    v_keys = sorted(channels["v"])
    if len(v_keys) <= 1:
        return 0
    scores = []
    for k in range(len(v_keys)):
        try:
            keys = _pick_pair(label, channels, k, len(waves))
            v_files, i_files, _ = _paired(channels["v"][keys[0]], channels["i"][keys[1]], keys)
            _check_equal(waves, v_files, i_files)
            scores.append(_spikes_in_steps(waves, v_files, i_files))
        except ValueError:  # a channel that cannot form a recording is not a candidate
            scores.append(-1)
    return choose_protocol(label, "voltage channels", v_keys, scores, "pass channel=N to choose another")


def load_ibw_set(label: str, files: Sequence[Path], sweeps: Optional[Any], channel: Optional[int],
                 v_units: Optional[str], i_units: Optional[str]) -> Recording:
    """Assemble Igor waves (one channel of one sweep each) into one Recording.

    ``label`` names the set in errors and becomes the Recording's ``source``
    (a glob pattern, a folder, or the files listed). See the module docstring for
    the pairing rules. Values are scaled to mV / pA, time to ms from 0.
    """
    waves = {Path(f): read_ibw(f) for f in files}
    channels = _group(waves)
    channel = _best_channel(label, channels, waves) if channel is None else channel
    v_key, i_key = _pick_pair(label, channels, channel, len(waves))
    v_files, i_files, left = _paired(channels["v"][v_key], channels["i"][i_key], (v_key, i_key))
    if left:
        warnings.warn(f"{label}: {len(left)} file(s) without a partner wave of the same number in "
                      f"{v_key} / {i_key}, skipped: {', '.join(left)}", stacklevel=3)
    _check_equal(waves, v_files, i_files)
    numbers = sorted(v_files)
    first = v_files[numbers[0]]
    fs = _rate_hz(first, waves[first])
    wanted = list(range(len(numbers))) if sweeps is None else \
        check_sweeps(label, sweeps, range(len(numbers)))

    def scaled(f: Path, kind: str, override: Optional[str]) -> np.ndarray:
        return waves[f]["values"] * unit_factor(f, kind, waves[f]["units"], override)

    v = np.stack([scaled(v_files[numbers[k]], "v", v_units) for k in wanted])
    i = np.stack([scaled(i_files[numbers[k]], "i", i_units) for k in wanted])
    md = {"format": "ibw", "units": dict(UNITS), "protocol": None,
          "channel": channel, "voltage_channel": v_key, "current_channel": i_key,
          "file_numbers": [numbers[k] for k in wanted],
          "files": {k: [str(v_files[numbers[k]]), str(i_files[numbers[k]])] for k in wanted},
          "units_in_file": {"v": waves[first]["units"], "i": waves[i_files[numbers[0]]]["units"],
                            "t": waves[first]["x_units"] or "(blank: s assumed)"},
          "current_source": "current wave"}
    t = np.arange(v.shape[1]) * (1000.0 / fs)
    return Recording(t, v, i, tuple(wanted), fs, str(label), md)
