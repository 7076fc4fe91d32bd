"""``hhjax evaluate``: score a fit.json against a recording's sweeps."""

from __future__ import annotations

import json
import sys

from ..io import save_json_atomic
from ..io.results import load_params
from ..models import model_of
from ..recordings.evaluation import evaluate, parse_sweeps, plot_evaluation
from ..recordings.evaluation import format_value as fv
from .. import _validate as check
from ._common import CLIError, Outputs, add_recording_options, load_recording_for


def cmd_evaluate(args):
    try:
        params = load_params(args.fit)
        with open(args.fit) as f:
            settings = json.load(f).get("settings", {})
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CLIError(f"{args.fit}: not a fit.json written by hhjax fit ({type(exc).__name__}: {exc})") from None
    if model_of(params).stimulus_units != "pA":
        raise CLIError(f"{args.fit}: a {model_of(params).name} model takes currents in "
                       f"{model_of(params).stimulus_units}, a recording's are in pA (fit a recording "
                       "with --model pospischil to evaluate it)")
    dt = check.positive_number(args.dt if args.dt is not None else settings.get("dt_ms", settings.get("dt", 0.1)),
                               "--dt", "ms")
    method = settings.get("method", "exp_euler")
    # The voltage the model was fitted to: the fit's own offset and bridge corrections, unless told otherwise.
    bridge = args.bridge if args.bridge is not None else settings.get("bridge_corrected_MOhm", "auto")
    ljp = args.ljp if args.ljp is not None else float(settings.get("ljp_corrected_mV", 0.0))
    read = _read_as_fitted(args, settings)
    rec = load_recording_for("evaluate", args.recording, parse_sweeps(args.sweeps), read["v_units"], read["channel"],
                             bridge=bridge, ljp=ljp, i_units=read["i_units"])
    result, (t_sim, v_sim) = evaluate(params, rec, dt=dt, method=method, return_traces=True)
    result["fit"] = str(args.fit)
    s = result["summary"]
    for r in result["sweeps"]:
        gamma = "–" if r["gamma"] is None else f"{r['gamma']:.2f}"
        print(f"sweep {r['sweep']:3d} {r['current_pA']:+7.1f} pA: spikes {r['observed_spikes']:2d} obs "
              f"{r['predicted_spikes']:2d} model, rate {fv(r['observed_rate_hz'], '5.1f')}/{fv(r['predicted_rate_hz'], '5.1f')} Hz, "
              f"rest {fv(r['observed_rest_mV'], '6.1f')}/{fv(r['predicted_rest_mV'], '6.1f')} mV, Γ {gamma}")
    print(f"within ±1 spike: {100 * s['fraction_within_1_spike']:.0f} % of {s['n_sweeps']} sweeps; "
          f"f–I RMS {fv(s['fi_rms_hz'])} Hz; rest error {fv(s['rest_error_mV'])} mV (max {fv(s['max_rest_error_mV'])})"
          + (f"; the model fires where the cell rests on {s['rest_missing']} sweep(s)" if s["rest_missing"] else ""))
    outputs = Outputs()
    if args.out:
        outputs.add("--out", args.out, lambda tmp: save_json_atomic(tmp, result))
    if args.plot:
        outputs.add("--plot", args.plot, lambda tmp: plot_evaluation(result, rec, t_sim, v_sim, str(tmp)))
    outputs.commit()
    return 0


def _read_as_fitted(args, settings: dict) -> dict:
    """``--channel``, ``--v-units`` and ``--i-units``: as given, else as the fit read its recording
    (``settings["read_with"]``), saying so, since a unit mistake the fit corrected would otherwise
    come back unannounced."""
    fitted = settings.get("read_with") or {}
    read = {}
    for name in ("channel", "v_units", "i_units"):
        read[name] = getattr(args, name)
        if read[name] is None and fitted.get(name) is not None:
            read[name] = fitted[name]
            flag = "--" + name.replace("_", "-")
            print(f"hhjax evaluate: {flag} {read[name]}, as the fit read its recording ({args.fit}); "
                  f"give {flag} to read it otherwise", file=sys.stderr)
    return read


def add_command(sub) -> None:
    e = sub.add_parser("evaluate", help="score a fit.json against a recording's sweeps")
    e.add_argument("fit", help="fit.json written by hhjax fit")
    e.add_argument("recording", help="recording (.abf, .nwb, .csv/.tsv/.txt, .npz, a quoted glob "
                                     "such as 'B6_*.ibw', or a folder of .ibw files)")
    e.add_argument("--sweeps", default=None, help="sweeps, e.g. 0-9 or 4,6,8 (default: all)")
    e.add_argument("--dt", type=float, default=None, help="simulation step, ms (default: the fit's)")
    e.add_argument("--out", default=None, help="write eval.json")
    e.add_argument("--plot", default=None, help="write a PNG of traces and f–I curves")
    add_recording_options(e)
    e.set_defaults(func=cmd_evaluate, out_suffixes=(".json",))

