"""``hhjax simulate``: one neuron under a step current, to the screen, CSV/NPZ and PNG."""

from __future__ import annotations

import dataclasses
import io

import numpy as np

from .. import plot, stimulus
from ..analysis.spikes import spike_times
from ..io.recording import write_atomic
from ..io.sources import TRACE_COLUMNS
from ..models import model_of
from ..simulation.entry import simulate
from .. import _validate as check
from ._common import CLIError, Outputs, build_init, build_params, parse_assignments


def write_trace(trace, path, current=None, units="µA/cm²", dt=None):
    """Write a single-neuron trace to CSV (``t_ms,v_mV,<gates>[,i_uA_cm2]``) or NPZ, atomically.

    ``current`` (``units``: µA/cm², or pA for models with a membrane area), sampled like
    ``trace.t``, becomes the column ``i_uA_cm2`` (``i_pA``), so that ``hhjax fit`` reads
    the file back as it is. ``dt`` (ms), the spacing of ``trace.t``, writes the time column
    as exact multiples of it instead of ``trace.t``'s float32 values.
    """
    t = np.asarray(trace.t)
    if dt is not None:
        t = np.arange(t.size) * float(dt)
    t_col, v_col, i_col = TRACE_COLUMNS
    fields = {(v_col if f.name == "v" else f.name): np.reshape(np.asarray(getattr(trace.state, f.name)),
                                                                (-1, t.size))[0]
              for f in dataclasses.fields(trace.state)}
    if current is not None:
        fields["i_pA" if units == "pA" else i_col] = np.broadcast_to(np.asarray(current, float), t.shape)
    if path.lower().endswith(".npz"):
        buf = io.BytesIO()
        np.savez(buf, **{t_col: t}, **fields)
        write_atomic(path, buf.getvalue())
        return
    if not path.lower().endswith(".csv"):
        raise CLIError(f"--out: {path}: expected a .csv or .npz file name")
    cols = np.column_stack([t, *fields.values()])
    lines = [",".join([t_col, *fields])] + [",".join(f"{x:.9g}" for x in row) for row in cols]
    write_atomic(path, ("\n".join(lines) + "\n").encode())


def cmd_simulate(args):
    params = build_params(args.preset, parse_assignments(args.set, "--set"))
    y0 = build_init(params, args.init)
    check.number(args.amplitude, "--amplitude", "µA/cm² or pA")
    check.interval(args.start, args.stop if args.stop is not None else np.inf, "--start", "--stop")
    check.number(args.threshold, "--threshold", "mV", allow_none=True)
    stim = stimulus.step(args.amplitude, args.start, args.stop if args.stop is not None else np.inf)
    trace = simulate(params, stim, duration=args.duration, dt=args.dt, method=args.method,
                     y0=y0, record_every=args.record_every)
    # 0 mV in NEURON's convention; the 1952 convention (rest at 0 mV) shifts it by 65 mV.
    threshold = args.threshold if args.threshold is not None else float(getattr(params, "v_offset", -65.0)) + 65.0
    spikes = spike_times(trace.t, trace.v, threshold=threshold)
    times = np.asarray(spikes.times)[: int(spikes.count)]
    print(f"{int(spikes.count)} spike(s) at t = " + ", ".join(f"{x:.3f}" for x in times) + " ms"
          if len(times) else "0 spikes")
    outputs = Outputs()
    if args.out:
        # The current that drives the step starting at each sample (simulate evaluates
        # stimuli mid-step), i.e. what `hhjax fit` feeds back in for that step.
        current = stim(np.asarray(trace.t) + 0.5 * args.dt)
        outputs.add("--out", args.out, lambda tmp: write_trace(
            trace, str(tmp), current, model_of(params).stimulus_units, args.dt * args.record_every))
    if args.plot:
        fig = plot.plot_trace(trace, params, title=f"{args.preset}, {args.amplitude} step")
        outputs.add("--plot", args.plot, lambda tmp: plot.save(fig, str(tmp)))
    outputs.commit()
    return 0


def add_command(sub) -> None:
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
                   help="level (mV) whose upward crossing times each spike; detection does not depend on it (default 0, or 65 for rates written around rest at 0 mV: hh1952)")
    s.add_argument("--out", help="write the trace to .csv (t_ms,v_mV,<gates>,i_uA_cm2; i_pA for "
                   "models with an area) or .npz; `hhjax fit` reads it back")
    s.add_argument("--plot", help="write a PNG of V, gates, conductances and currents")
    s.set_defaults(func=cmd_simulate, out_suffixes=(".csv", ".npz"))

