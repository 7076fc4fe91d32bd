"""What every verb of the command line shares: the one-line error, the parser, presets
with ``--set`` overrides, and the check of output names before any work."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from typing import Optional

from .. import presets
from ..io import Recording, load_recording
from ..models import model_of
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
    """Before any work: a mistyped --out or --plot should not cost a whole run first."""
    for flag, path, allowed in (("--out", getattr(args, "out", None), getattr(args, "out_suffixes", ())),
                                ("--plot", getattr(args, "plot", None), PLOT_SUFFIXES)):
        if path and allowed and not str(path).lower().endswith(allowed):
            raise CLIError(f"{flag}: {path}: expected a file name ending in {' or '.join(allowed)}")


def add_v_units_option(parser: argparse.ArgumentParser) -> None:
    """``--v-units``: the recording's true voltage units, when its file says otherwise."""
    parser.add_argument("--v-units", default=None, metavar="UNITS",
                        help="the recording's voltage is really in UNITS (mV or V), whatever "
                             "its file says; for a gain or unit mistake in the file")


def load_recording_for(verb: str, path: str, sweeps: Optional[list[int]],
                       v_units: Optional[str]) -> Recording:
    """``load_recording`` for a command: its warnings become one line each on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = load_recording(path, sweeps=sweeps, v_units=v_units)
    for w in caught:
        print(f"hhjax {verb}: warning: {' '.join(str(w.message).split())}", file=sys.stderr)
    return rec
