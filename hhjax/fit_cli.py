"""``hhjax fit`` and ``hhjax evaluate`` (the fitting verbs of the command line)."""

from __future__ import annotations

import os

import numpy as np


def load_trace_file(path):
    """Read a trace for fitting: CSV with ``t_ms,v_mV,i_uA_cm2`` or NPZ with those arrays.

    Returns ``(t, v, i)`` as float arrays. Errors name the file.
    """
    from .cli import CLIError

    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    try:
        if path.endswith(".npz"):
            with np.load(path) as z:
                missing = [k for k in ("t_ms", "v_mV", "i_uA_cm2") if k not in z]
                if missing:
                    raise CLIError(f"{path}: missing arrays {missing} (need t_ms, v_mV, i_uA_cm2)")
                t, v, i = (np.asarray(z[k], float) for k in ("t_ms", "v_mV", "i_uA_cm2"))
        else:
            with open(path) as f:
                header = [h.strip() for h in f.readline().strip().split(",")]
            need = ["t_ms", "v_mV", "i_uA_cm2"]
            if any(h not in header for h in need):
                raise CLIError(f"{path}: expected CSV columns {','.join(need)}, got {','.join(header)}")
            data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
            t, v, i = (data[:, header.index(h)] for h in need)
    except CLIError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure becomes one line naming the file
        raise CLIError(f"{path}: could not read trace ({type(exc).__name__}: {exc})") from None
    if t.size < 3:
        raise CLIError(f"{path}: needs at least 3 samples")
    # Against the grid, not sample to sample: times written in float32 (about 7 digits)
    # wobble by more than 1e-4 dt between neighbours, but never by 1 % of dt.
    dt = (t[-1] - t[0]) / (t.size - 1)
    if not dt > 0 or np.max(np.abs(t - t[0] - dt * np.arange(t.size))) > 0.01 * dt:
        raise CLIError(f"{path}: time column t_ms must be uniformly increasing")
    for name, arr in (("v_mV", v), ("i_uA_cm2", i)):
        if not np.all(np.isfinite(arr)):
            raise CLIError(f"{path}: column {name} contains NaN or inf")
    return t, v, i


def cmd_fit(args):
    from . import fit, plot, simulate
    from .cli import CLIError, build_params
    from .results import save_fit

    if args.trace.lower().endswith((".abf", ".nwb", ".txt", ".tsv")) or args.model == "pospischil":
        from .recording_fit import cmd_fit_recording

        return cmd_fit_recording(args)
    t, v, i = load_trace_file(args.trace)
    dt = float(np.round((t[-1] - t[0]) / (t.size - 1), 9))
    params = build_params(args.preset or "neuron", {})
    trainable = tuple(n.strip() for n in (args.trainable or "g_na,g_k,g_l").split(",") if n.strip())
    result = fit(v - 0.0, i[:-1], init=params, dt=dt, trainable=trainable, n_starts=args.starts,
                 steps=args.steps, direct=True, progress=args.progress)
    for name in trainable:
        print(f"{name} = {float(getattr(result.params, name)):.6g} ± {float(result.stderr[name]):.3g}")
    print(f"loss (MSE) = {float(result.loss):.4g} mV², {result.wall_time:.1f} s")
    if args.out:
        save_fit(args.out, result, source=os.path.abspath(args.trace), preset=args.preset or "neuron")
        print(f"wrote {args.out}")
    if args.plot:
        fitted = simulate(result.params, i[:-1], duration=dt * (len(t) - 1), dt=dt, y0=float(v[0])).v
        fig = plot.plot_fit(t, v, np.asarray(fitted))
        plot.save(fig, args.plot)
        print(f"wrote {args.plot}")
    if not np.all(np.isfinite(np.asarray(result.loss))):
        raise CLIError("fit: no start reached a finite loss")
    return 0


def add_fit_commands(sub):
    f = sub.add_parser("fit", help="fit parameters to a trace (CSV/NPZ) or a recording (ABF/NWB/CSV)")
    f.add_argument("trace", help="CSV t_ms,v_mV,i_uA_cm2 or NPZ; or a recording (.abf, .nwb, .csv t_ms,v_mV,i_pA)")
    f.add_argument("--preset", default=None,
                   help="starting/fixed parameters (default: neuron for traces, pospischil for recordings)")
    f.add_argument("--model", default=None, help="model for recordings: pospischil")
    f.add_argument("--trainable", default=None,
                   help="comma-separated names (default: g_na,g_k,g_l for traces; the model's active and passive set for recordings)")
    f.add_argument("--starts", type=int, default=4, help="starting points (default 4)")
    f.add_argument("--steps", type=int, default=None, help="maximum iterations")
    f.add_argument("--sweeps", default=None, help="recording sweeps to fit, e.g. 4,6,8 or 0-9")
    f.add_argument("--out", default=None, help="write fit.json")
    f.add_argument("--plot", default=None, help="write a PNG of target, fit and residual")
    f.add_argument("--progress", action="store_true", default=None, help="show a progress bar")
    f.set_defaults(func=cmd_fit)
    try:
        from .recording_fit import add_evaluate_command
    except ImportError:
        return
    add_evaluate_command(sub)
