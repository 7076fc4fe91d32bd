"""``hhjax fit``: fit a model to a trace file (CSV/NPZ) or to a recording (ABF/NWB/...)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import warnings
from typing import Optional

import numpy as np

from .. import plot
from ..fitting.fitter import fit
from ..fitting.resume import fingerprint
from ..io import load_recording
from ..io.sources import TRACE_COLUMNS, names_a_recording
from ..io.results import save_fit, save_params
from ..models import model_of
from ..recordings.cell_fit import DEFAULT_TRAINABLE
from ..recordings.start import ONSET_MARGIN
from ..recordings.select import RECORDING_MODELS, check_members, check_recording_model, fit_with_model
from ..recordings.choice import coverage_warning
from ..recordings.evaluation import evaluate, format_value, parse_sweeps, plot_evaluation
from ..simulation.entry import simulate
from .. import _validate as check
from ._common import (CLIError, Outputs, add_recording_options, build_params, load_recording_for,
                      positive_int)


def load_trace_file(path):
    """Read a trace for fitting: CSV with the columns ``t_ms,v_mV,i_uA_cm2``
    (:data:`hhjax.io.sources.TRACE_COLUMNS`) or NPZ with those arrays.

    Returns ``(t, v, i)`` as float arrays. Errors name the file.
    """
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    try:
        if path.endswith(".npz"):
            with np.load(path) as z:
                missing = [k for k in TRACE_COLUMNS if k not in z]
                if missing:
                    raise CLIError(f"{path}: missing arrays {missing} (need {', '.join(TRACE_COLUMNS)})")
                t, v, i = (np.asarray(z[k], float) for k in TRACE_COLUMNS)
        else:
            with open(path) as f:
                header = [h.strip() for h in f.readline().strip().split(",")]
            if any(h not in header for h in TRACE_COLUMNS):
                raise CLIError(f"{path}: expected CSV columns {','.join(TRACE_COLUMNS)}, got {','.join(header)}")
            with warnings.catch_warnings():  # an empty body is reported below, in one line
                warnings.simplefilter("ignore", UserWarning)
                data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
            if data.shape[0] < 3:
                raise CLIError(f"{path}: needs at least 3 samples, found {data.shape[0]}")
            t, v, i = (data[:, header.index(h)] for h in TRACE_COLUMNS)
    except CLIError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure becomes one line naming the file
        raise CLIError(f"{path}: could not read trace ({type(exc).__name__}: {exc})") from None
    if t.size < 3:
        raise CLIError(f"{path}: needs at least 3 samples")
    try:
        check.columns(path, dict(zip(TRACE_COLUMNS, ((t, None), (v, check.VOLTAGE_LIMIT), (i, check.CURRENT_LIMIT)))))
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    # Against the grid, not sample to sample: times written in float32 (about 7 digits)
    # wobble by more than 1e-4 dt between neighbours, but never by 1 % of dt.
    dt = (t[-1] - t[0]) / (t.size - 1)
    if not dt > 0 or np.max(np.abs(t - t[0] - dt * np.arange(t.size))) > 0.01 * dt:
        raise CLIError(f"{path}: time column {TRACE_COLUMNS[0]} must be uniformly increasing")
    return t, v, i


def _fit_recording_model(model, rec, kw, init, checkpoint, args):
    """The recording fit of ``hhjax fit`` (``--model auto`` or one model)."""
    if model == "auto":
        if init is not None:
            raise CLIError("--preset: --model auto starts each candidate at its own preset; leave --preset out")
        kw.pop("init")
    search = {k: getattr(args, k) for k in ("generations", "population", "steps") if getattr(args, k) is not None}
    members = getattr(args, "members", None)
    try:
        check_members(model, members)
    except ValueError as exc:  # "members: ..." becomes "--members: ..."
        raise CLIError(f"--{exc}") from None
    res = fit_with_model(rec, model, search=search, checkpoint=checkpoint, members=members, **kw)
    consensus = res.settings.get("consensus")
    if consensus is not None and len(consensus["members"]) > 1:
        print(f"fits: {len(consensus['members'])} (search seeds "
              f"{', '.join(str(m['seed']) for m in consensus['members'])}): {consensus['why']}")
    sel = res.settings.get("model_selection")
    if sel is not None:
        for n, c in sel["candidates"].items():
            print(f"candidate {n}: cross-validated score {format_value(c['score'], '.3g')}, "
                  f"training failures {c['training_failures']}, {c['fit_time_s']:.0f} s")
        for n, score in (sel.get("final_scores") or {}).items():
            print(f"final fit {n}: score {score:.3g} on the same validation sweeps")
        print(f"model: {sel['winner']} ({sel['why']})")
    return res


def cmd_fit_recording(args):
    """``hhjax fit RECORDING [--model pospischil] [--sweeps 4,6,8] --out fit.json [--plot fit.png]``."""
    model = args.model or "pospischil"
    try:
        check_recording_model(model)
    except ValueError as exc:
        raise CLIError(f"--{exc}") from None
    rec = load_recording_for("fit", args.trace, parse_sweeps(args.sweeps), args.v_units, args.channel,
                             bridge="auto" if args.bridge is None else args.bridge, ljp=args.ljp or 0.0,
                             i_units=args.i_units)
    # A recording fit takes 10-60 s with the default search: it checkpoints by default
    # (removed once the outputs are written), so a killed fit resumes when rerun.
    auto_checkpoint = args.checkpoint is None and not args.no_checkpoint
    checkpoint = default_checkpoint(args, rec) if auto_checkpoint else args.checkpoint
    # fit_cli's --trainable default is meant for HH traces: take the recording default then.
    trainable = DEFAULT_TRAINABLE if args.trainable is None else \
        tuple(n.strip() for n in args.trainable.split(",") if n.strip())
    init = build_params(args.preset, {}) if args.preset is not None else None
    if args.sweeps is not None:  # before the fit, so the user can stop a fit they would not want
        try:
            with warnings.catch_warnings():   # already reported for the sweeps loaded above
                warnings.simplefilter("ignore")
                full = load_recording(args.trace, v_units=args.v_units, channel=args.channel,
                                      i_units=args.i_units)
            warning = coverage_warning(full, list(rec.sweeps))
        except ValueError:  # the whole file does not load as one (e.g. NWB sweeps of unequal length)
            warning = ""
        if warning:
            print(f"hhjax fit: warning: {warning}", file=sys.stderr)
    kw = dict(sweeps=None if args.sweeps is None else list(rec.sweeps), trainable=trainable,
              n_starts=args.starts,
              progress=args.progress, init=init, dt=0.1 if args.dt is None else args.dt, method=args.method)
    with warnings.catch_warnings(record=True) as caught:  # the fit's own warnings: one line each
        warnings.simplefilter("always", UserWarning)
        res = _fit_recording_model(model, rec, kw, init, checkpoint, args)
    hhjax_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ours = [w for w in caught
            if issubclass(w.category, UserWarning) and os.path.abspath(w.filename).startswith(hhjax_dir)]
    for message in dict.fromkeys(" ".join(str(w.message).split()) for w in ours):  # auto: once, not per candidate
        print(f"hhjax fit: warning: {message}", file=sys.stderr)
    for w in caught:
        if w not in ours:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if not np.isfinite(res.loss):
        raise CLIError(f"{args.trace}: fit failed (no parameter set gave a finite loss)")
    for n in trainable:
        se = None if n == "e_l" else res.stderr.get(n)
        print(f"{n} = {getattr(res.params, n):.6g}" + ("" if se is None else f" ± {se:.3g}"))
    if any(not np.isfinite(se) for se in res.stderr.values()):
        print("(no standard errors: a spike appears or vanishes under tiny parameter changes here, "
              "so the Laplace approximation does not hold)")
    rs = res.settings.get("bridge_corrected_MOhm", 0.0)
    if rs:  # the voltage fitted is not the file's: say by how much
        how = "as given" if args.bridge is not None else "measured from the jumps at current steps"
        print(f"bridge: removed {rs:.1f} MΩ × I from the voltage (series resistance, {how}; "
              "--bridge 0 keeps the voltage as recorded)")
    if args.ljp:
        print(f"ljp: subtracted {args.ljp:g} mV from the voltage (hhjax evaluate applies it too)")
    for line in search_report(res.settings):
        print(line)
    s = res.features["summary"]
    print(f"sweeps {list(res.sweeps)}: loss {res.loss:.4g}; within ±1 spike {100 * s['fraction_within_1_spike']:.0f} %, "
          f"f–I RMS {format_value(s['fi_rms_hz'])} Hz, rest error {format_value(s['rest_error_mV'])} mV; {res.wall_time:.0f} s")
    outputs = Outputs()
    if args.out:
        outputs.add("--out", args.out, lambda tmp: save_params(
            tmp, res.params, stderr=res.stderr, loss=res.loss, sweeps=list(res.sweeps),
            features=res.features, settings=res.settings, wall_time_s=res.wall_time,
            model_selection=res.settings.get("model_selection"),
            stderr_note="Laplace (Gauss-Newton) from the subthreshold residuals; v_rest stands "
                        "for e_l; lower bounds (residuals are autocorrelated)"))
    if args.plot:
        out, (t, v) = evaluate(res.params, rec, dt=res.settings["dt_ms"], return_traces=True,
                               bridge=res.settings["bridge_corrected_MOhm"])
        outputs.add("--plot", args.plot, lambda tmp: plot_evaluation(out, rec, t, v, str(tmp)))
    outputs.commit()
    if auto_checkpoint and checkpoint is not None:
        shutil.rmtree(checkpoint, ignore_errors=True)
    return 0


CHECKPOINTS = os.path.join(os.path.expanduser("~"), ".cache", "hhjax", "checkpoints")
_NOT_SETTINGS = ("out", "plot", "progress", "checkpoint", "no_checkpoint", "func", "out_suffixes")


def default_checkpoint(args, rec) -> Optional[str]:
    """Where a recording fit checkpoints unless told otherwise: ``OUT.checkpoint`` beside
    ``--out``, else a folder in ``~/.cache/hhjax/checkpoints`` named by a digest of the
    recording's samples and the command's settings (so the same command finds it again);
    None when that folder cannot be made."""
    if args.out:
        return f"{args.out}.checkpoint"
    try:
        os.makedirs(CHECKPOINTS, exist_ok=True)
    except OSError:  # no writable home: the fit runs without a checkpoint
        return None
    settings = {k: v for k, v in vars(args).items() if k not in _NOT_SETTINGS}
    text = fingerprint(settings=settings, t=rec.t, v=rec.v, i=rec.i, sweeps=list(rec.sweeps))
    return os.path.join(CHECKPOINTS, hashlib.sha256(text.encode()).hexdigest()[:20])


def simulation_step(spacing, dt=None, finest=0.025):
    """``(dt, record_every)`` for a trace sampled every ``spacing`` ms: ``dt`` as given (it
    must divide the spacing), else the spacing split into steps of at most ``finest`` ms
    (coarser steps bias the fit: the trace's own sampling is rarely a good ODE step)."""
    if dt is None:
        k = max(1, int(np.ceil(spacing / finest - 1e-9)))
        return spacing / k, k
    k = int(round(spacing / dt))
    if not dt > 0 or k < 1 or abs(k * dt - spacing) > 1e-6 * spacing:
        raise CLIError(f"--dt: {dt} ms does not divide the trace's sample spacing {spacing:g} ms")
    return spacing / k, k


def cmd_fit(args):
    if args.dt is not None:
        check.positive_number(args.dt, "--dt", "ms")
    if names_a_recording(args.trace) or args.model in RECORDING_MODELS:
        return cmd_fit_recording(args)
    if args.model is not None:
        raise CLIError(f"--model: {args.model!r} is not a model for traces (recordings: --model "
                       f"{'|'.join(RECORDING_MODELS)})")
    if args.sweeps is not None:
        raise CLIError("--sweeps: a trace file has one sweep (sweeps apply to recordings)")
    t, v, i = load_trace_file(args.trace)
    spacing = float(np.round((t[-1] - t[0]) / (t.size - 1), 9))
    dt, record_every = simulation_step(spacing, args.dt)
    params = build_params(args.preset or "neuron", {})
    if model_of(params).stimulus_units != "µA/cm²":
        raise CLIError(f"--preset {args.preset}: its stimulus is in {model_of(params).stimulus_units}; a trace "
                       f"file's current is in µA/cm² (fit a recording with --model pospischil instead)")
    trainable = tuple(n.strip() for n in (args.trainable or "g_na,g_k,g_l").split(",") if n.strip())
    # The current of each sample drives every simulation step until the next sample.
    current = np.repeat(i[:-1], record_every)
    result = fit(v, current, init=params, dt=dt, record_every=record_every,
                 trainable=trainable, n_starts=args.starts, steps=args.steps, direct=True,
                 method=args.method, progress=args.progress, checkpoint=args.checkpoint)
    for name in trainable:
        print(f"{name} = {float(getattr(result.params, name)):.6g} ± {float(result.stderr[name]):.3g}")
    print(f"loss (MSE) = {float(result.loss):.4g} mV², {result.wall_time:.1f} s")
    if not np.all(np.isfinite(np.asarray(result.loss))):
        raise CLIError("fit: no start reached a finite loss")
    outputs = Outputs()
    if args.out:
        outputs.add("--out", args.out, lambda tmp: save_fit(
            tmp, result, source=os.path.abspath(args.trace), preset=args.preset or "neuron"))
    if args.plot:
        fitted = simulate(result.params, current, duration=spacing * (len(t) - 1),
                          dt=dt, method=args.method, y0=float(v[0]), record_every=record_every).v
        fig = plot.plot_fit(t, v, np.asarray(fitted))
        outputs.add("--plot", args.plot, lambda tmp: plot.save(fig, str(tmp)))
    outputs.commit()
    return 0


def add_command(sub) -> None:
    f = sub.add_parser("fit", help="fit parameters to a trace (CSV/NPZ) or a recording (ABF/NWB/CSV)")
    f.add_argument("trace", help="CSV t_ms,v_mV,i_uA_cm2 or NPZ; or a recording (.abf, .nwb, .csv t_ms,v_mV,i_pA, "
                                 ".npz from Recording.to_npz, a quoted glob such as 'B6_*.ibw', or a folder of "
                                 ".ibw files)")
    f.add_argument("--preset", default=None,
                   help="starting/fixed parameters (default: neuron for traces, pospischil for recordings)")
    f.add_argument("--model", default=None,
                   help="model for recordings: " + ", ".join(RECORDING_MODELS) + " (default pospischil; auto fits "
                        "every candidate and keeps the best on held-out sweeps)")
    f.add_argument("--trainable", default=None,
                   help="comma-separated names (default: g_na,g_k,g_l for traces; the model's active and passive set for recordings)")
    f.add_argument("--starts", type=positive_int, default=4, help="starting points (default 4)")
    f.add_argument("--steps", type=positive_int, default=None,
                   help="maximum iterations (recordings: Levenberg–Marquardt, default 4; --model auto: 2 per candidate)")
    f.add_argument("--dt", type=float, default=None,
                   help="simulation step, ms (traces: default the sample spacing split into steps of at most "
                        "0.025; recordings: default 0.1)")
    f.add_argument("--method", default="exp_euler", choices=("exp_euler", "euler", "rk4", "neuron"),
                   help="integration method (default exp_euler); fit with the one that made a simulated trace")
    f.add_argument("--sweeps", default=None, help="recording sweeps to fit, e.g. 4,6,8 or 0-9")
    f.add_argument("--out", default=None, help="write fit.json")
    f.add_argument("--plot", default=None, help="write a PNG of target, fit and residual")
    f.add_argument("--progress", action="store_true", default=None, help="show a progress bar")
    add_recording_options(f)
    f.add_argument("--no-checkpoint", action="store_true",
                   help="recordings: do not checkpoint. By default a recording fit (10-60 s with the default "
                        "search) saves its state after every generation/iteration in OUT.checkpoint, or without "
                        "--out in ~/.cache/hhjax/checkpoints, resumes from it when the same command is rerun, "
                        "and removes it once the outputs are written (--model auto: one subfolder per candidate)")
    f.add_argument("--generations", type=positive_int, default=None,
                   help="recordings: generations of the cross-entropy search (default 16; --model auto: 8 per candidate)")
    f.add_argument("--population", type=positive_int, default=None,
                   help="recordings: parameter sets per generation (default 160; --model auto: 96 per candidate)")
    f.add_argument("--members", type=positive_int, default=None,
                   help="recordings: fits of the model from different search seeds, the one nearest their "
                        "consensus on the sweeps not fitted kept (default 3; 1: one fit; not with --model auto)")
    f.add_argument("--checkpoint", default=None, metavar="DIR",
                   help="save the fit's state in DIR after every generation/iteration (recordings) or "
                        "iteration (traces); rerunning the same command resumes there (DIR is kept)")
    f.set_defaults(func=cmd_fit, out_suffixes=(".json",))


def search_report(settings: dict) -> list[str]:
    """What ``hhjax fit`` says of a recording fit's searches (``settings`` of
    :func:`hhjax.recordings.cell_fit.fit_recording`): why it searched again, which search it
    kept, and where it stopped although its model misses a fitted sweep; [] after one search
    that met its sweeps.

    >>> tries = [dict(loss=3.32, worst_count_miss=0.5, worst_sweep=7, v_t_start=-56.2),
    ...          dict(loss=0.56, worst_count_miss=0.2, worst_sweep=3, v_t_start=-25.4)]
    >>> search_report(dict(attempts=tries, kept_attempt=1, retry_tolerances=1.0, retries=2))
    ["searched 2 times: the cell's spike onsets lie more than 10 mV from the model's; kept search 2 (losses 3.32, 0.56); the second started at v_t -25.4 mV, where the cell's spike onsets put it"]
    """
    lines = []
    tries, tol = settings.get("attempts", []), settings.get("retry_tolerances")
    if len(tries) > 1:
        first, onset = tries[0], tries[1].get("v_t_start") not in (None, tries[0].get("v_t_start"))
        why = (f"the first model missed fitted sweep {first['worst_sweep']} by {first['worst_count_miss']:.1f} "
               f"count tolerances (more than {tol:g})" if first["worst_count_miss"] > tol else
               f"the cell's spike onsets lie more than {ONSET_MARGIN:g} mV from the model's")
        lines.append(f"searched {len(tries)} times: {why}; kept search {settings['kept_attempt'] + 1} (losses "
                     + ", ".join(f"{a['loss']:.3g}" for a in tries) + ")"
                     + (f"; the second started at v_t {tries[1]['v_t_start']:.1f} mV, where the cell's spike "
                        "onsets put it" if onset else ""))
    kept = tries[settings["kept_attempt"]] if tries else None
    if kept and kept["worst_count_miss"] > tol and len(tries) <= settings["retries"]:
        lines.append(f"not searched again although the model misses fitted sweep {kept['worst_sweep']} by "
                     f"{kept['worst_count_miss']:.1f} count tolerances: " + (
                         "another search would have ended too late, at this machine's pace (the fit's time "
                         "limit; a quieter machine searches again)" if settings.get("stopped_at_deadline") else
                         f"one search simulates {settings['row_seconds']:.0f} s of rows, and all searches "
                         f"together at most {settings['retry_row_seconds']:g} s"))
    return lines
