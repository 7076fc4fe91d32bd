"""What the *true* model of each synthetic cell scores under the panel's targets: the ceiling
for any deterministic fit.

    python scripts/synthetic_ceiling.py DIR [--bench scripts/bench_synthetic.json]
                                        [--out scripts/synthetic_ceiling.json]

DIR is a folder written by ``scripts/synthetic_cells.py`` (the recordings and TRUTH.json).
Each cell's true parameters are evaluated on its recording exactly as a fitted model is
(:func:`hhjax.recordings.evaluation.evaluate`, dt 0.1 ms as the fit uses, no noise current),
and scored on the sweeps the benchmark held out for that cell (``--bench``; every sweep
where the cell is not in it). The recordings were made with an unrecorded noise current, so
a cell near a bifurcation (rheobase, depolarisation block) fires differently from its own
deterministic model: where the true model misses a target, no deterministic fit can be
expected to meet it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from hhjax.io import load_recording, save_json_atomic
from hhjax.recordings.cell_fit import MODELS
from hhjax.recordings.evaluation import evaluate, summarise


def ceiling(folder: Path, bench: dict, dt: float = 0.1) -> list:
    """One entry per cell of ``folder/TRUTH.json``: the true model's summary on the held-out sweeps."""
    truth = json.loads((folder / "TRUTH.json").read_text())
    held = {c["recording"]: [s["sweep"] for s in c["sweeps"] if s["held_out"]] for c in bench.get("cells", [])}
    out = []
    for name, t in truth.items():
        base = MODELS[t["model"]][0]
        params = dataclasses.replace(base, **{k: v for k, v in t["params"].items() if hasattr(base, k)})
        rec = load_recording(folder / f"{name}.npz")
        rows = evaluate(params, rec, dt=dt)["sweeps"]
        sweeps = held.get(f"{name}.npz") or [r["sweep"] for r in rows]
        s = summarise([{**r, "gamma": None} for r in rows if r["sweep"] in sweeps])
        out.append({"cell": name, "model": t["model"], "scored_sweeps": sweeps,
                    "observed_spikes": [r["observed_spikes"] for r in rows],
                    "true_model_spikes": [r["predicted_spikes"] for r in rows],
                    **{k: s[k] for k in ("fraction_count_ok", "fi_rms_hz", "rest_error_mV", "qualitative_failures")}})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--bench", type=Path, default=Path(__file__).with_name("bench_synthetic.json"))
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("synthetic_ceiling.json"))
    args = ap.parse_args()
    bench = json.loads(args.bench.read_text()) if args.bench.exists() else {}
    cells = ceiling(args.folder, bench)
    save_json_atomic(args.out, {"dt_ms": 0.1, "bench": str(args.bench.name), "cells": cells})
    fmt = lambda x: "–" if x is None else f"{x:.2f}"  # noqa: E731
    print("| cell | true model: counts within target | f–I RMS (Hz) | rest error (mV) | qualitative failures |")
    print("|---|---|---|---|---|")
    for c in cells:
        print(f"| {c['cell']} | {100 * c['fraction_count_ok']:.0f} % | {fmt(c['fi_rms_hz'])} | "
              f"{fmt(c['rest_error_mV'])} | {c['qualitative_failures']} |")


if __name__ == "__main__":
    main()
