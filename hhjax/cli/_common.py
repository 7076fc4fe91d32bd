"""What every verb of the command line shares: the one-line error, the parser, presets
with ``--set`` overrides, and the check of output names before any work."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .. import presets
from ..io import ImplausibleVoltageWarning, Recording, load_recording
from ..io.sources import check_voltage_plausible
from ..models import model_of
from ..recordings.bridge import balance_bridge
from ..models.steady import steady_state

PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line (no usage block), like every other error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def parse_assignments(items, what):
    out = {}
    for item in items or []:
        for part in item.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise CLIError(f"{what}: expected NAME=VALUE, got {part!r}")
            name, value = part.split("=", 1)
            try:
                out[name.strip()] = float(value)
            except ValueError:
                raise CLIError(f"{what}: {name.strip()}={value!r} is not a number") from None
    return out


def build_params(preset, assignments):
    """A preset with ``--set`` overrides applied (unknown names are errors)."""
    try:
        params = presets.get_preset(preset)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    fields = {f.name for f in dataclasses.fields(params)}
    unknown = sorted(set(assignments) - fields)
    if unknown:
        raise CLIError(f"--set: unknown parameter(s) {unknown}; {type(params).__name__} has {sorted(fields)}")
    return dataclasses.replace(params, **assignments)


def build_init(params, init):
    if not init:
        return None
    model = model_of(params)
    values = parse_assignments([init], "--init")
    names = {f.name for f in dataclasses.fields(model.state_type)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise CLIError(f"--init: unknown state variable(s) {unknown}; expected {sorted(names)}")
    if "v" not in values:
        raise CLIError("--init: needs at least v=... (mV)")
    state = steady_state(params, values["v"])
    return dataclasses.replace(state, **values)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def check_output_names(args: argparse.Namespace) -> None:
    """Before any work: a mistyped --out or --plot, or one that cannot be written, should
    not cost a whole run first."""
    outputs = [(flag, path) for flag, path in (("--out", getattr(args, "out", None)),
                                               ("--plot", getattr(args, "plot", None))) if path]
    if len(outputs) == 2 and os.path.abspath(outputs[0][1]) == os.path.abspath(outputs[1][1]):
        raise CLIError(f"--plot: {outputs[1][1]}: the same file as --out")
    for flag, path, allowed in (("--out", getattr(args, "out", None), getattr(args, "out_suffixes", ())),
                                ("--plot", getattr(args, "plot", None), PLOT_SUFFIXES)):
        if path and allowed and not str(path).lower().endswith(allowed):
            raise CLIError(f"{flag}: {path}: expected a file name ending in {' or '.join(allowed)}")
        if path and not (flag == "--out" and getattr(args, "out_is_folder", False)):
            _check_writable(flag, path)


def _check_writable(flag, path):
    """A probe file in the destination's nearest existing directory (removed at once)."""
    if os.path.isdir(path):
        raise CLIError(f"{flag}: {path}: is a directory")
    d = os.path.dirname(os.path.abspath(path))
    while not os.path.isdir(d):
        if os.path.exists(d):
            raise CLIError(f"{flag}: {path}: {d} is not a directory")
        d = os.path.dirname(d)
    try:
        fd, probe = tempfile.mkstemp(dir=d, prefix=".hhjax-probe.")
    except OSError as exc:
        raise CLIError(f"{flag}: {path}: cannot write there ({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)


class Outputs:
    """A command's output files, written only after every step has succeeded.

    ``add(flag, path, writer)`` registers ``writer(tmp_path)``; :meth:`commit` runs every
    writer into a hidden temporary file next to its destination and, once all succeeded,
    renames them into place. Any failure (or Ctrl-C) removes every temporary file and
    leaves no output behind; the error names the user's path, never a temporary one.
    """

    def __init__(self):
        self._items = []

    def add(self, flag, path, writer):
        self._items.append((flag, str(path), writer))

    def commit(self):
        staged, made = [], []
        try:
            for flag, path, writer in self._items:
                dest = Path(path)
                _COMMITTING.add(dest)
                made += _make_parents(dest.parent)
                try:
                    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.",
                                               suffix=f".tmp{dest.suffix}")
                    os.close(fd)
                    staged.append((Path(tmp), dest))
                    writer(Path(tmp))
                except CLIError:
                    raise
                except Exception as exc:  # noqa: BLE001 - any write failure is one line naming the path
                    reason = getattr(exc, "strerror", None) or str(exc).replace(str(staged[-1][0]) if staged else "", path)
                    raise CLIError(f"{flag}: {path}: cannot write ({reason})") from None
            for tmp, dest in staged:
                os.chmod(tmp, 0o644)
                os.replace(tmp, dest)
            staged = []
        finally:
            _COMMITTING.clear()
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            if staged:
                for d in reversed(made):
                    try:
                        d.rmdir()
                    except OSError:
                        pass
        for flag, path, _ in self._items:
            print(f"wrote {path}")


def _make_parents(directory: Path):
    """Create ``directory`` and missing parents; return the ones created (deepest last)."""
    missing = []
    d = directory
    while not d.exists():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    for d in reversed(missing):
        d.mkdir()
    return list(reversed(missing))


_COMMITTING: set = set()  # destinations of the outputs being written right now


def _remove_staged():
    """Temporary files of the outputs being written (ours and write_atomic's inside them)."""
    for dest in list(_COMMITTING):
        for p in dest.parent.glob(f".*{dest.name}.*"):
            if ".tmp" in p.name:
                p.unlink(missing_ok=True)


def exit_on_ctrl_c(verb: str) -> None:
    """As a program: Ctrl-C prints one line, removes temporary files and exits with 130 at
    once, even while XLA runs (a Python handler would wait until the computation returns,
    minutes for a long simulation). The C-level handler writes to a wakeup pipe that a
    thread watches; exiting with ``os._exit`` also avoids tearing down the interpreter under
    a compiling XLA thread, which crashed with SIGSEGV."""
    r, w = os.pipe()
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w)
    signal.signal(signal.SIGINT, lambda signum, frame: None)

    def watch():
        while os.read(r, 1) != bytes([signal.SIGINT]):
            pass
        _remove_staged()
        sys.stdout.flush()
        sys.stderr.write(f"hhjax {verb}: interrupted\n")
        sys.stderr.flush()
        os._exit(130)

    threading.Thread(target=watch, name="hhjax-ctrl-c", daemon=True).start()


def add_recording_options(parser: argparse.ArgumentParser) -> None:
    """``--v-units`` and ``--i-units`` (the recording's true voltage and current units, when
    its file says otherwise), ``--channel`` (which voltage input), ``--ljp`` (an offset to
    subtract) and ``--bridge`` (series resistance to remove)."""
    parser.add_argument("--v-units", default=None, metavar="UNITS",
                        help="the recording's voltage is really in UNITS (mV or V), whatever "
                             "its file says; for a gain or unit mistake in the file")
    parser.add_argument("--i-units", default=None, metavar="UNITS",
                        help="the recording's current is really in UNITS (pA, nA or A), whatever "
                             "its file says; for a unit mistake in the file, or a file without units")
    parser.add_argument("--channel", type=int, default=None, metavar="N",
                        help="the voltage input: ABF input channel, NWB electrode or Igor/neo voltage "
                             "channel N (default: ABF's first input in mV or V, else 0)")
    parser.add_argument("--ljp", type=float, default=None, metavar="MV",
                        help="liquid-junction potential or pipette offset (mV) to subtract from the "
                             "voltage, V - MV (default: none, hhjax fit; the fit's own, hhjax evaluate)")
    parser.add_argument("--bridge", default=None, metavar="MOHM",
                        help="series resistance (MΩ) to remove from the voltage, as a bridge balance "
                             "would; 0 keeps the voltage as recorded (default: measured from the jumps at "
                             "current steps, hhjax fit; the fit's own value, hhjax evaluate)")


def load_recording_for(verb: str, path: str, sweeps: Optional[list[int]],
                       v_units: Optional[str], channel: Optional[int] = None,
                       bridge: Optional[Union[float, str]] = None, ljp: float = 0.0,
                       i_units: Optional[str] = None) -> Recording:
    """``load_recording`` for a command: its warnings become one line each on stderr. With
    ``ljp`` (mV, ``--ljp``), that offset is subtracted (:meth:`Recording.correct_ljp`) and
    the voltage's plausibility judged after it. With ``bridge`` (MΩ, a string from
    ``--bridge``, or ``"auto"``), the series resistance is removed as
    :func:`hhjax.recordings.bridge.balance_bridge` does; a bad value is a CLIError."""
    if not np.isfinite(ljp):
        raise CLIError(f"--ljp: expected a finite offset in mV, got {ljp}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = load_recording(path, sweeps=sweeps, v_units=v_units, channel=channel, i_units=i_units)
        if ljp:
            caught[:] = [w for w in caught if not issubclass(w.category, ImplausibleVoltageWarning)]
            rec = rec.correct_ljp(ljp)
            check_voltage_plausible(rec, str(path))
    for w in caught:
        print(f"hhjax {verb}: warning: {' '.join(str(w.message).split())}", file=sys.stderr)
    if bridge is None:
        return rec
    try:
        return balance_bridge(rec, bridge)
    except ValueError as exc:
        raise CLIError(f"--{exc}") from None
