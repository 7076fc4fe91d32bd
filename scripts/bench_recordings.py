"""Fit the Pospischil model to real recordings and check it on the sweeps it did not see.

For each recording (``hhjax.io.example_recording``: the repo's ``data/recordings``, else
``../shared/data/recordings``): pick at most 4 sweeps by rule
(:func:`hhjax.recordings.cell_fit.choose_sweeps`), fit them (:func:`fit_recording`, defaults),
then score every *other* sweep with :func:`hhjax.recordings.evaluation.evaluate` against these
targets (voltage as measured, no liquid-junction correction):

* resting potential within 2 mV (mean |error| over the held-out sweeps; the max and the
  fraction of sweeps within 2 mV are reported too);
* spike count (whole sweep, upward crossings of -20 mV) within ±1 on >= 80 % of them;
* f–I curve (spikes in the depolarising steps / their duration) RMS error < 3 Hz.

The search is random, so every file is fitted with several seeds (default 0, 1, 2) and
each run is reported. Writes ``scripts/bench_recordings.json`` and prints a Markdown table.
Wall times are on this machine's CPU, compilation included (``--quick``: a tiny search, a
smoke test only).

    python scripts/bench_recordings.py [--files 18711001.abf,...] [--seeds 0,1,2] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

from hhjax.io import example_recording, load_recording, save_json_atomic
from hhjax.recordings.evaluation import evaluate
from hhjax.recordings.cell_fit import choose_sweeps, fit_recording

TARGETS = {"18711001.abf": True, "171116sh_0018.abf": True, "File_axon_5.abf": False}
HERE = Path(__file__).resolve().parent


def score(rows):
    d_n = np.array([r["predicted_spikes"] - r["observed_spikes"] for r in rows])
    d_f = np.array([r["predicted_rate_hz"] - r["observed_rate_hz"] for r in rows])
    d_r = np.array([r["predicted_rest_mV"] - r["observed_rest_mV"] for r in rows])
    gam = [r["gamma"] for r in rows if r["gamma"] is not None and r["observed_spikes"] > 0]
    return {"n_sweeps": len(rows), "within_1_spike": float(np.mean(np.abs(d_n) <= 1)),
            "fi_rms_hz": float(np.sqrt(np.mean(d_f ** 2))), "rest_mean_abs_mV": float(np.mean(np.abs(d_r))),
            "rest_max_abs_mV": float(np.max(np.abs(d_r))), "rest_within_2mV": float(np.mean(np.abs(d_r) <= 2.0)),
            "mean_gamma_spiking": float(np.mean(gam)) if gam else None}


def bench(path, seed, quick):
    name = path.name.removesuffix(".xz").removesuffix(".gz")   # the repo keeps some compressed
    rec = load_recording(path)
    sweeps = choose_sweeps(rec)
    kw = dict(generations=3, population=48, steps=1) if quick else {}
    res = fit_recording(rec, sweeps=sweeps, key=seed, progress=False, **kw)
    held = [k for k in rec.sweeps if k not in sweeps]
    t0 = time.perf_counter()
    ev = evaluate(res.params, rec, sweeps=held, dt=res.settings["dt_ms"])
    eval_s = time.perf_counter() - t0
    fine = evaluate(res.params, rec, sweeps=held, dt=res.settings["dt_ms"] / 2)  # numerical check
    s = score(ev["sweeps"])
    met = {"rest_2mV": s["rest_mean_abs_mV"] < 2.0, "count_80pct": s["within_1_spike"] >= 0.8,
           "fi_rms_3hz": s["fi_rms_hz"] < 3.0}
    return {"file": name, "sweeps_fitted": list(sweeps), "sweeps_held_out": held,
            "fit_wall_s": res.wall_time, "fit_timing_s": res.settings["timing_s"], "evaluate_wall_s": eval_s,
            "loss": res.loss, "params": {k: getattr(res.params, k) for k in res.settings["trainable"]},
            "stderr": res.stderr, "fitted_sweeps": score(res.features["sweeps"]), "held_out": s,
            "held_out_at_half_dt": score(fine["sweeps"]), "targets_met": met,
            "targets_apply": TARGETS.get(name, False), "per_sweep": ev["sweeps"],
            "settings": {k: res.settings[k] for k in ("dt_ms", "method", "generations", "population",
                                                        "n_starts", "steps", "lm_iterations", "rows", "weights")}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", default=",".join(TARGETS))
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated search seeds")
    ap.add_argument("--quick", action="store_true", help="tiny search (smoke test; targets not expected)")
    ap.add_argument("--out", default=str(HERE / "bench_recordings.json"))
    args = ap.parse_args(argv)
    results = []
    for name in [f for f in args.files.split(",") if f]:
        try:
            path = example_recording(name)
        except FileNotFoundError as e:
            print(f"skip {e}", file=sys.stderr)
            continue
        for seed in [int(x) for x in args.seeds.split(",") if x.strip()]:
            print(f"fitting {name}, seed {seed} ...", file=sys.stderr, flush=True)
            results.append({"seed": seed, **bench(path, seed, args.quick)})
    out = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "jax": jax.__version__,
                       "backend": jax.default_backend(), "note": "CPU shared with other jobs; timings noisy"},
           "load_average_at_end": os.getloadavg(), "quick": args.quick, "results": results}
    save_json_atomic(args.out, out)
    print("| file | seed | fitted sweeps | fit time (s) | rest error mean / max (mV) | within ±1 spike | "
          "f–I RMS (Hz) | Γ (spiking) | targets met |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s, m = r["held_out"], r["targets_met"]
        met = ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in m.items()) if r["targets_apply"] else "(no targets)"
        g = "–" if s["mean_gamma_spiking"] is None else f"{s['mean_gamma_spiking']:.2f}"
        print(f"| {r['file']} | {r['seed']} | {r['sweeps_fitted']} | {r['fit_wall_s']:.0f} | {s['rest_mean_abs_mV']:.2f} / "
              f"{s['rest_max_abs_mV']:.2f} | {100 * s['within_1_spike']:.0f} % of {s['n_sweeps']} | "
              f"{s['fi_rms_hz']:.2f} | {g} | {met} |")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
