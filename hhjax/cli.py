"""The ``hhjax`` command line: ``demo``, ``simulate``, ``fit``, ``evaluate``.

Every error is printed as one line on stderr with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import numpy as np


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line (no usage block), like every other error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def _parse_assignments(items, what):
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
    from . import presets

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
    from .models import model_of
    from .simulate import steady_state

    if not init:
        return None
    model = model_of(params)
    values = _parse_assignments([init], "--init")
    names = {f.name for f in dataclasses.fields(model.state_type)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise CLIError(f"--init: unknown state variable(s) {unknown}; expected {sorted(names)}")
    if "v" not in values:
        raise CLIError("--init: needs at least v=... (mV)")
    state = steady_state(params, values["v"])
    return dataclasses.replace(state, **values)


def write_trace(trace, path, current=None, units="µA/cm²", dt=None):
    """Write a single-neuron trace to CSV (``t_ms,v_mV,<gates>[,i_uA_cm2]``) or NPZ, atomically.

    ``current`` (``units``: µA/cm², or pA for models with a membrane area), sampled like
    ``trace.t``, becomes the column ``i_uA_cm2`` (``i_pA``), so that ``hhjax fit`` reads
    the file back as it is. ``dt`` (ms), the spacing of ``trace.t``, writes the time column
    as exact multiples of it instead of ``trace.t``'s float32 values.
    """
    from .io.recording import write_atomic

    t = np.asarray(trace.t)
    if dt is not None:
        t = np.arange(t.size) * float(dt)
    fields = {("v_mV" if f.name == "v" else f.name): np.reshape(np.asarray(getattr(trace.state, f.name)),
                                                                (-1, t.size))[0]
              for f in dataclasses.fields(trace.state)}
    if current is not None:
        fields["i_pA" if units == "pA" else "i_uA_cm2"] = np.broadcast_to(np.asarray(current, float), t.shape)
    if path.lower().endswith(".npz"):
        import io

        buf = io.BytesIO()
        np.savez(buf, t_ms=t, **fields)
        write_atomic(path, buf.getvalue())
        return
    if not path.lower().endswith(".csv"):
        raise CLIError(f"--out: {path}: expected a .csv or .npz file name")
    cols = np.column_stack([t, *fields.values()])
    lines = [",".join(["t_ms", *fields])] + [",".join(f"{x:.9g}" for x in row) for row in cols]
    write_atomic(path, ("\n".join(lines) + "\n").encode())


def cmd_simulate(args):
    from . import plot, simulate, stimulus
    from .analysis import spike_times
    from .models import model_of

    params = build_params(args.preset, _parse_assignments(args.set, "--set"))
    y0 = build_init(params, args.init)
    stim = stimulus.step(args.amplitude, args.start, args.stop if args.stop is not None else np.inf)
    trace = simulate(params, stim, duration=args.duration, dt=args.dt, method=args.method,
                     y0=y0, record_every=args.record_every)
    # 0 mV in NEURON's convention; the 1952 convention (rest at 0 mV) shifts it by 65 mV.
    threshold = args.threshold if args.threshold is not None else float(getattr(params, "v_offset", -65.0)) + 65.0
    spikes = spike_times(trace.t, trace.v, threshold=threshold)
    times = np.asarray(spikes.times)[: int(spikes.count)]
    print(f"{int(spikes.count)} spike(s) at t = " + ", ".join(f"{x:.3f}" for x in times) + " ms"
          if len(times) else "0 spikes")
    if args.out:
        # The current that drives the step starting at each sample (simulate evaluates
        # stimuli mid-step), i.e. what `hhjax fit` feeds back in for that step.
        current = stim(np.asarray(trace.t) + 0.5 * args.dt)
        write_trace(trace, args.out, current, model_of(params).stimulus_units, args.dt * args.record_every)
        print(f"wrote {args.out}")
    if args.plot:
        fig = plot.plot_trace(trace, params, title=f"{args.preset}, {args.amplitude} step")
        plot.save(fig, args.plot)
        print(f"wrote {args.plot}")
    return 0


def cmd_demo(args):
    from . import plot, presets, simulate, stimulus
    from .analysis import spike_times

    params = presets.NEURON
    stim = stimulus.step(10.0, 10.0, 90.0)
    trace = simulate(params, stim, duration=100.0, dt=0.025)
    spikes = spike_times(trace.t, trace.v)
    times = np.asarray(spikes.times)[: int(spikes.count)]
    print("hhjax demo: NEURON's hh, 10 µA/cm² from 10 to 90 ms, exp_euler, dt = 0.025 ms")
    print(f"{int(spikes.count)} spikes at t = " + ", ".join(f"{x:.3f}" for x in times) + " ms")
    fig = plot.plot_trace(trace, params, panels=("stimulus", "v", "gates", "conductances", "currents"),
                          stimulus=stim, title="Hodgkin–Huxley neuron under a 10 µA/cm² step")
    plot.save(fig, args.plot)
    print(f"wrote {args.plot}")
    if not args.no_fit:
        from .demo_fit import run_demo_fit

        run_demo_fit(progress=args.progress)
    return 0


def make_parser():
    p = _Parser(prog="hhjax", description="Differentiable Hodgkin–Huxley simulation and fitting in JAX.")
    sub = p.add_subparsers(dest="verb", metavar="VERB")

    d = sub.add_parser("demo", help="simulate the classic HH neuron, plot it, and fit it (built-in defaults)")
    d.add_argument("--plot", default="hhjax_demo.png", help="output PNG (default hhjax_demo.png)")
    d.add_argument("--no-fit", action="store_true", help="skip the fitting part")
    d.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("simulate", help="simulate one neuron under a step current")
    s.add_argument("--preset", default="neuron", help="neuron, hh1952, dayan_abbott, seed000, reduced, pospischil")
    s.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a parameter (repeatable)")
    s.add_argument("--init", metavar="v=..,m=..,h=..,n=..", help="initial state (gates default to steady state at v)")
    s.add_argument("--amplitude", type=float, default=10.0, help="step current (µA/cm², pA for pospischil)")
    s.add_argument("--start", type=float, default=10.0, help="step onset (ms)")
    s.add_argument("--stop", type=float, default=None, help="step offset (ms; default: never)")
    s.add_argument("--duration", type=float, default=100.0, help="simulated time (ms)")
    s.add_argument("--dt", type=float, default=0.025, help="time step (ms)")
    s.add_argument("--method", default="exp_euler", help="exp_euler, euler, rk4, neuron")
    s.add_argument("--record-every", type=int, default=1, help="keep every k-th sample")
    s.add_argument("--threshold", type=float, default=None,
                   help="spike threshold (mV; default 0, or 65 for rates written around rest at 0 mV: hh1952)")
    s.add_argument("--out", help="write the trace to .csv (t_ms,v_mV,<gates>,i_uA_cm2; i_pA for "
                   "models with an area) or .npz; `hhjax fit` reads it back")
    s.add_argument("--plot", help="write a PNG of V, gates, conductances and currents")
    s.set_defaults(func=cmd_simulate)

    try:
        from .fit_cli import add_fit_commands
    except ImportError:
        pass
    else:
        add_fit_commands(sub)
    return p


_OUT_SUFFIXES = {"simulate": (".csv", ".npz"), "fit": (".json",), "evaluate": (".json",)}
_PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def _check_output_names(args):
    """Before any work: a mistyped --out or --plot should not cost a whole run first."""
    for flag, path, allowed in (("--out", getattr(args, "out", None), _OUT_SUFFIXES.get(args.verb, ())),
                                ("--plot", getattr(args, "plot", None), _PLOT_SUFFIXES)):
        if path and allowed and not str(path).lower().endswith(allowed):
            raise CLIError(f"{flag}: {path}: expected a file name ending in {' or '.join(allowed)}")


def main(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    if not os.environ.get("HHJAX_NO_CACHE"):
        from .cache import enable_compilation_cache

        enable_compilation_cache()
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        _check_output_names(args)
        return args.func(args)
    except (CLIError, ValueError, TypeError, FileNotFoundError, OSError) as exc:
        message = " ".join(str(exc).split())
        print(f"hhjax {args.verb}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
