"""What ``load_recording`` is given: a file, a compressed file, or a set of files.

- a path to one file (``.gz``/``.xz`` compressed files are opened transparently);
- a glob pattern (``'cells/B6_*.ibw'``), a list of paths, or a folder: a *file set*,
  assembled by :mod:`hhjax.io.igor`;

and the plausibility check every loaded recording passes through.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import lzma
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Union

import numpy as np

from .. import _validate as check
from .recording import Recording, fail
from .units import unit_factor

# Compressed files are read through a temporary copy: pyabf and igor2 want a path.
_OPENERS: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".xz": lzma.open}
# Formats that hold one channel of one sweep per file, so that only a set makes a recording.
SET_FORMATS = (".ibw",)
#: Columns (CSV) or arrays (NPZ) of an hhjax *trace*, one simulated neuron that ``hhjax fit``
#: fits per area: time (ms), voltage (mV), current density (µA/cm²). A file with a current in
#: pA or nA instead is a recording (:func:`names_a_recording`).
TRACE_COLUMNS = ("t_ms", "v_mV", "i_uA_cm2")

PathArg = Union[str, os.PathLike, list, tuple]


def inner_suffix(p: Path) -> str:
    """The format's extension, looking through ``.gz``/``.xz`` (``x.abf.xz`` -> ``.abf``)."""
    return Path(p.stem).suffix.lower() if p.suffix.lower() in _OPENERS else p.suffix.lower()


def expand_sources(path: PathArg) -> tuple[str, list[Path], bool]:
    """Resolve ``load_recording``'s ``path`` into (label, files, is_set).

    ``label`` is what errors and ``Recording.source`` name: the path, the glob
    pattern, the folder, or the listed files. Raises a one-line FileNotFoundError
    for a pattern that matches nothing, a missing file or a folder with no waves.

    Example:
        >>> label, files, is_set = expand_sources(["a_1.ibw", "a_2.ibw"])
        >>> is_set, [f.name for f in files]
        (True, ['a_1.ibw', 'a_2.ibw'])
    """
    if isinstance(path, (list, tuple)):
        if not path:
            raise fail("<recording>", "empty list of files", FileNotFoundError)
        files = [Path(p) for p in path]
        return ", ".join(map(str, path)), files, len(files) > 1
    text = os.fspath(path)
    p = Path(text)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if inner_suffix(f) in SET_FORMATS)
        if not files:
            raise fail(text, f"folder holds no {'/'.join(SET_FORMATS)} files; a folder is read "
                             "as one recording made of one file per sweep and channel",
                       FileNotFoundError)
        return text, files, True
    if not p.exists() and glob.has_magic(text):
        files = sorted(Path(f) for f in glob.glob(text))
        if not files:
            raise fail(text, "no file matches this pattern", FileNotFoundError)
        return text, files, len(files) > 1
    return text, [p], False


def open_stream(p: Path) -> Any:
    """Open ``p`` for binary reading, decompressing ``.gz``/``.xz`` on the fly."""
    return _OPENERS.get(p.suffix.lower(), open)(p, "rb")


# Extensions that are only ever recordings (CSV and NPZ may also be hhjax trace files).
_RECORDING_ONLY = (".abf", ".nwb", ".txt", ".tsv") + SET_FORMATS
_TRACE_OR_RECORDING = (".csv", ".npz")


def names_a_recording(arg: Union[str, os.PathLike]) -> bool:
    """Whether a command-line path must be a recording (not an hhjax trace CSV/NPZ).

    True for a folder, a glob pattern, a file set's format, ABF/NWB/text, and any
    extension only neo reads; compressed files are judged by their inner extension.

    Example:
        >>> names_a_recording("B6_*.ibw"), names_a_recording("c.abf.xz"), names_a_recording("t.csv")
        (True, True, False)
    """
    text = os.fspath(arg)
    p = Path(text)
    if p.is_dir() or (not p.exists() and glob.has_magic(text)):
        return True
    ext = inner_suffix(p)
    if ext in _TRACE_OR_RECORDING and p.suffix == ext and p.is_file():
        return _holds_recording(p)
    return ext in _RECORDING_ONLY or ext not in _TRACE_OR_RECORDING


def _holds_recording(p: Path) -> bool:
    """A plain CSV/NPZ file is a recording, not an hhjax trace (:data:`TRACE_COLUMNS`),
    when its current is in pA/nA: NPZ arrays ``t, v, i`` (:meth:`Recording.to_npz`), or a
    CSV header such as ``t_ms,v_mV,i_pA``. Unreadable files go to the trace reader, which
    reports them."""
    try:
        if p.suffix == ".npz":
            with np.load(p) as z:
                return {"t", "v", "i"} <= set(z.files) and TRACE_COLUMNS[2] not in z.files
        with open(p, encoding="utf-8", errors="replace") as fh:
            header = fh.readline()
        return TRACE_COLUMNS[2] not in header and any(u in header for u in ("pA", "nA"))
    except Exception:  # noqa: BLE001 - any failure: leave it to the trace reader's message
        return False


@contextlib.contextmanager
def opened(path: Any, p: Path) -> Iterator[Path]:
    """Yield a plain file to read: ``p`` itself, or a decompressed temporary copy."""
    opener = _OPENERS.get(p.suffix.lower())
    if opener is None:
        yield p
        return
    with tempfile.TemporaryDirectory(prefix="hhjax-") as tmp:
        plain = Path(tmp) / p.stem
        try:
            with opener(p, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst)
        except (OSError, EOFError, lzma.LZMAError) as e:
            raise fail(path, f"cannot decompress: {type(e).__name__}: {e}") from None
        yield plain


class ImplausibleVoltageWarning(UserWarning):
    """Voltage that cannot be millivolts of a living cell (a gain or unit mistake)."""


# A living cell rests between -150 and -20 mV, and no action potential peaks above +100 mV.
REST_MAX_MV = -20.0
REST_MIN_MV = -150.0
PEAK_MAX_MV = 100.0
OFFSET_SPIKE_MV = (40.0, 150.0)  # peak over baseline that reads as a spike in mV, offset or not


def check_voltage_plausible(rec: Recording, label: str) -> None:
    """Warn (ImplausibleVoltageWarning) when ``rec.v`` cannot be mV of a living cell.

    Rest (the median over sweeps of each sweep's first 5 %, its baseline before the
    stimulus in the protocols we know) above -20 mV or below -150 mV, or a peak above
    +100 mV, usually means a gain or unit mistake:
    volts labelled as mV, or an amplifier gain applied twice or not at all. The warning names the likely cause and
    ``v_units`` (``--v-units`` on the command line); where the highest peak stands 40-150 mV
    above the baseline, the height of a spike in mV, it names an offset instead
    (:meth:`Recording.correct_ljp`, ``--ljp``).

    Example:
        >>> t = np.arange(5) * 0.1
        >>> rec = Recording(t, np.full((1, 5), -0.065), np.zeros((1, 5)), (0,), 10_000.0)
        >>> with warnings.catch_warnings(record=True) as w:
        ...     warnings.simplefilter("always")
        ...     check_voltage_plausible(rec, "cell.csv")
        >>> "v_units='V'" in str(w[0].message)
        True
    """
    # Not the whole sweep's median: where long steps drive a cell into depolarisation
    # block, that is the plateau's voltage (-18 mV on a synthetic FS block cell, a false alarm).
    head = rec.v[:, : max(1, rec.v.shape[1] // 20)]
    rest = float(np.median(np.median(head, axis=1)))
    peak = float(np.max(rec.v))
    problems = []
    if not REST_MIN_MV <= rest <= REST_MAX_MV:
        problems.append(f"rest {rest:.4g} mV is outside {REST_MIN_MV:g} to {REST_MAX_MV:g} mV")
    if peak > PEAK_MAX_MV:
        problems.append(f"peaks reach {peak:.4g} mV, above {PEAK_MAX_MV:g} mV")
    if not problems:
        return
    if abs(rest) < 1.0 and abs(peak) < 1.0:
        cause = "the values look like volts labelled as mV; pass v_units='V' (--v-units on the command line)"
    elif OFFSET_SPIKE_MV[0] <= peak - rest <= OFFSET_SPIKE_MV[1]:
        # A gain mistake scales spikes with the baseline; spikes of a normal height on a
        # baseline that is not a rest mean the scale is right and the zero is not.
        cause = (f"spikes rise {peak - rest:.0f} mV above that baseline, the height of spikes in mV, so "
                 "the voltage is likely offset (a pipette offset or junction potential left uncorrected); "
                 "subtract it with Recording.correct_ljp(mV) (--ljp on the command line)")
    else:
        cause = ("likely a gain or unit mistake (amplifier gain not applied, or the wrong "
                 "units in the file); check it and pass v_units=... with the true units "
                 "(--v-units on the command line)")
    warnings.warn(f"{label}: voltage implausible for mV: {'; '.join(problems)}: {cause}",
                  ImplausibleVoltageWarning, stacklevel=3)


class ImplausibleCurrentWarning(UserWarning):
    """Injected current that cannot be picoamperes of a patch-clamp stimulus (a unit mistake)."""


# The largest excursion of a sweep's current, in pA, that a patch-clamp stimulus of a cell
# makes: steps of a granule cell's 2 pA at the low end, a motoneuron's tens of nA at the
# top. The same steps read in the wrong unit land 1000 times (nA <-> pA) or 10^12 times
# (A) outside; a cell's own measured current noise alone spans a few pA.
I_SPAN_MIN_PA = 1.0
I_SPAN_MAX_PA = 50_000.0


def check_current_plausible(rec: Recording, label: str, read_as: Any = None) -> None:
    """Warn (ImplausibleCurrentWarning) when ``rec.i`` cannot be pA of a stimulus.

    The largest peak-to-peak excursion of any sweep's current outside
    :data:`I_SPAN_MIN_PA` to :data:`I_SPAN_MAX_PA` (1 pA to 50 nA) usually means a unit
    mistake: nA or A labelled as pA, or pA as nA. The fit would then look for a cell that
    fires at a thousandth (or a thousand times) of its rheobase, and fail in ways that do
    not name the cause. ``read_as`` is the unit the file's numbers were read in (the
    user's ``i_units``, else the file's label; pA if unknown); the warning names the unit
    that would bring the span into range and ``i_units`` (``--i-units`` on the command
    line). A current that never changes (no stimulus) is not judged.

    Example:
        >>> t = np.arange(5) * 0.1
        >>> rec = Recording(t, np.full((1, 5), -65.0), np.array([[0, 0, 0.2, 0.2, 0]]), (0,), 10_000.0)
        >>> with warnings.catch_warnings(record=True) as w:
        ...     warnings.simplefilter("always")
        ...     check_current_plausible(rec, "cell.csv", "pA")
        >>> "i_units='nA'" in str(w[0].message)
        True
    """
    span = float(np.max(np.ptp(rec.i, axis=1))) if rec.i.size else 0.0
    if span == 0.0 or I_SPAN_MIN_PA <= span <= I_SPAN_MAX_PA:
        return
    try:
        raw = span / unit_factor(label, "i", read_as if read_as is not None else "pA", None)
    except ValueError:  # a label this check cannot read: take the numbers as pA
        raw = span
    # The unit in which the file's own numbers would span a stimulus's range.
    spans = {u: raw * unit_factor(label, "i", u, None) for u in ("pA", "nA", "A")}
    unit = next((u for u, x in spans.items() if I_SPAN_MIN_PA <= x <= I_SPAN_MAX_PA), None)
    where = f"below {I_SPAN_MIN_PA:g}" if span < I_SPAN_MIN_PA else f"above {I_SPAN_MAX_PA:g}"
    if unit is not None:
        cause = (f"likely a unit mistake: read as {unit}, the file's numbers span {spans[unit]:.4g} pA; "
                 f"pass i_units='{unit}' (--i-units on the command line)")
    else:
        cause = ("likely a unit or gain mistake; check it and pass i_units=... with the true units "
                 "(--i-units on the command line)")
    warnings.warn(f"{label}: current implausible for pA: the largest step spans {span:.4g} pA, "
                  f"{where} pA: {cause}", ImplausibleCurrentWarning, stacklevel=3)


def rate_from_times(path: Any, t_ms: np.ndarray) -> float:
    """Sampling rate (Hz) of sample times ``t_ms`` (ms) that must be uniform within 1 % of a step.

    Example:
        >>> rate_from_times("x.csv", np.array([0.0, 0.1, 0.2]))
        10000.0
    """
    # Tolerate jitter from printed decimals but not gaps or reordering.
    if t_ms.size < 2:
        raise fail(path, "needs at least 2 samples to know the sampling rate")
    d = np.diff(t_ms)
    dt = (t_ms[-1] - t_ms[0]) / (t_ms.size - 1)
    if not dt > 0 or np.max(np.abs(d - dt)) > 0.01 * dt:
        raise fail(path, f"time is not uniformly sampled (steps from {d.min():g} to "
                         f"{d.max():g} ms); resample it before loading")
    fs = 1000.0 / dt
    return float(round(fs)) if abs(fs - round(fs)) < 1e-6 * fs else fs


def check_finite(rec: Recording, label: str) -> None:
    """Reject NaN or infinite samples, naming the sweep and the 1-based sample (the rule
    :func:`hhjax._validate.columns` applies to every input column).

    Example:
        >>> rec = Recording(np.arange(3) * 0.1, np.array([[-65.0, np.nan, -65.0]]), np.zeros((1, 3)), (4,), 1e4)
        >>> check_finite(rec, "cell.abf")
        Traceback (most recent call last):
        ...
        ValueError: cell.abf: column v (sweep 4), row 2: NaN
    """
    for k, n in enumerate(rec.sweeps):
        check.columns(label, {f"v (sweep {n})": (rec.v[k], None), f"i (sweep {n})": (rec.i[k], None)})
