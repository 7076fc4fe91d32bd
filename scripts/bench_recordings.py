"""Panel benchmark: fit every recording in a folder with default settings and score the
sweeps the fit did not see.

    python scripts/bench_recordings.py DIR --out results.json [--seeds N] [--figures FIGDIR]
                                       [--model pospischil|auto|...] [--quick]
                                       [--dask [--workers W | --scheduler tcp://HOST:8786]]

Within DIR a file is one recording, and so is a subfolder of ``.ibw`` waves (read by
:func:`hhjax.io.load_recording` as one recording); other subfolders are searched the same
way. Recordings are the formats of :data:`hhjax.io.RECORDING_FORMATS` (hhjax's readers and
the rig formats neo reads: Spike2, WinWCP, AxoGraph, ...); hidden entries and other files
(``.md``, ``.json``, figures) are skipped. Each recording is fitted on the sweeps chosen by
rule (at most 4,
:func:`hhjax.recordings.choice.choose_sweeps`) and evaluated on every sweep with the
rules of :mod:`hhjax.recordings.epochs` (observed and predicted alike). A recording that
fails (unreadable, fit error) is recorded with its ``error`` and the run goes on.

``results.json`` is ``{"cells": [...]}``, one entry per recording (per seed with
``--seeds N``, each with a ``seed`` key)::

    {"recording", "model", "fit_time_s", "fit_sweeps", ["seed"], ["model_selection"],
     "sweeps": [{"sweep", "held_out", "observed_spikes", "predicted_spikes",
                 "observed_rate_hz", "predicted_rate_hz", "observed_rest_mV", "predicted_rest_mV"}]}

with null where a value is undefined (no depolarising epoch: no rate; spontaneous firing:
no rest). With ``--model auto``, ``model_selection`` has ``why``, ``validation_sweeps`` and
each candidate's cross-validated ``scores`` (:mod:`hhjax.recordings.select`). A fit of one
model is the consensus of several fits from different search seeds
(:mod:`hhjax.recordings.consensus`; stderr says which was kept). ``fit_time_s`` is wall time,
compilation included, over every fit and search (the table says how many fits, and how
many searches the kept fit ran where a search missed a fitted sweep and was repeated).
A Markdown table per cell
(held-out targets, detector counts, CPU time and the load average, since the CPU may be
shared) goes to stdout and next to the JSON as ``.md``; a figure per cell goes to
``--figures``, with ``panel.png``, every cell's held-out sweeps at once
(:func:`hhjax.recordings.panel.plot_panel`).

With ``--dask`` every (recording, seed) entry is one task on a Dask cluster: a LocalCluster
of ``--workers`` single-threaded, pinned workers (default one per core) or the scheduler at
``--scheduler``, set up as for ``hhjax fit-many`` (:func:`hhjax.cluster.connect`). The
results are the same entries in the same order; fit times are then a worker's.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from hhjax import release_compiled_programs
from hhjax.cluster.cells import recordings_under
from hhjax.io import load_recording, save_json_atomic
from hhjax.recordings.bridge import balance_bridge
from hhjax.recordings.choice import choose_sweeps
from hhjax.recordings.evaluation import evaluate, fi_tolerance, plot_evaluation
from hhjax.recordings.panel import held_out_summary, plot_panel
from hhjax.recordings.select import fit_with_model

SWEEP_KEYS = ("sweep", "held_out", "observed_spikes", "predicted_spikes", "observed_rate_hz",
              "predicted_rate_hz", "observed_rest_mV", "predicted_rest_mV")
QUICK = {"generations": 2, "population": 16, "steps": 0, "n_starts": 1}


def find_recordings(folder):
    """The recordings in ``folder``, in name order, as ``hhjax fit-many`` finds cells
    (:func:`hhjax.cluster.cells.recordings_under`): files of a recording format (inside a
    ``.xz``/``.gz`` compression suffix too), a subfolder of Igor waves as one recording,
    and the recordings inside any other subfolder (a folder per cell)."""
    return list(recordings_under(Path(folder)))


def targets(rows):
    """The issue's held-out targets over sweep rows (``held_out`` ones), as a dict."""
    s = held_out_summary(rows)
    if s is None:
        return {"n_held_out": 0}
    top = max([r["observed_rate_hz"] or 0.0 for r in rows] + [0.0])
    fi_limit = fi_tolerance(top)
    return {"n_held_out": s["n_sweeps"], "count_ok_fraction": s["fraction_count_ok"],
            "count_target_met": s["fraction_count_ok"] >= 0.8, "fi_rms_hz": s["fi_rms_hz"], "fi_limit_hz": fi_limit,
            "fi_target_met": None if s["fi_rms_hz"] is None else s["fi_rms_hz"] < fi_limit,
            "rest_error_mV": s["rest_error_mV"], "rest_compared": s["rest_compared"],
            # A model that fires where the cell rests has no rest to compare: a miss, not a pass.
            "rest_missing": s["rest_missing"],
            "rest_target_met": False if s["rest_missing"] else
            None if s["rest_error_mV"] is None else s["rest_error_mV"] < 2.0,
            "qualitative_failures": s["qualitative_failures"]}


def every_target_met(t: dict):
    """Whether :func:`targets` ``t`` meets every held-out target (counts, f–I where rates are
    compared, rest where rests are, no qualitative failure); None where nothing is held out."""
    if not t.get("n_held_out"):
        return None
    return bool(t["count_target_met"] and t["fi_target_met"] is not False and t["rest_target_met"] is not False
                and not t["qualitative_failures"])


def bench_one(path, folder, seed, args):
    """One cell entry (and the extras for the Markdown table)."""
    name = str(path.relative_to(folder))
    cell = {"recording": name, "model": None, "fit_time_s": None, "fit_sweeps": [], "sweeps": []}
    if seed is not None:
        cell["seed"] = seed
    extra = {}
    try:
        rec = balance_bridge(load_recording(path))  # marked: the fit, evaluate and the figure see this voltage
        train = choose_sweeps(rec)
        kw = dict(sweeps=train, key=seed or 0, progress=False)
        cpu0, t0 = time.process_time(), time.perf_counter()
        res = fit_with_model(rec, args.model, search=QUICK if args.quick else None, **kw)
        sel = res.settings.get("model_selection")
        if sel is not None:
            print(f"  model {sel['winner']}: {sel['why']}", file=sys.stderr)
        cell.update(model=res.settings["model"], fit_time_s=round(time.perf_counter() - t0, 2),
                    fit_sweeps=[int(k) for k in res.sweeps])
        if sel is not None:
            cell["model_selection"] = {"why": sel["why"], "validation_sweeps": sel["validation_sweeps"],
                                       "scores": {n: c["score"] for n, c in sel["candidates"].items()},
                                       "final_scores": sel.get("final_scores")}
        con = res.settings.get("consensus")
        if con is not None and len(con["members"]) > 1:  # the table's; the JSON keeps the schema
            extra["members"] = len(con["members"])
            print(f"  consensus: {con['why']}", file=sys.stderr)
        extra["searches"] = len(res.settings.get("attempts", [None]))
        extra["cpu_s"] = time.process_time() - cpu0
        used = set(cell["fit_sweeps"]) | set(sel["validation_sweeps"] if sel is not None else ())
        out, (t_sim, v_sim) = evaluate(res.params, rec, dt=res.settings["dt_ms"], return_traces=True)
        cell["sweeps"] = [{**{k: r[k] for k in SWEEP_KEYS if k != "held_out"}, "held_out": r["sweep"] not in used}
                          for r in out["sweeps"]]
        cell["sweeps"] = [{k: s[k] for k in SWEEP_KEYS} for s in cell["sweeps"]]
        if args.figures:
            stem = name.replace(os.sep, "_") + ("" if seed is None else f"_seed{seed}")
            plot_evaluation(out, rec, t_sim, v_sim, Path(args.figures) / f"{stem}.png")
    except Exception as exc:  # noqa: BLE001 - one bad cell must not stop the panel
        cell["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        extra["traceback"] = traceback.format_exc()
    release_compiled_programs()  # cell after cell, the process's memory mappings run out otherwise
    return cell, extra


def _f(x, spec=".2f"):
    return "–" if x is None else format(x, spec)


def table(cells, extras):
    lines = ["| recording | seed | model | fit sweeps | fit time s (CPU s) | held out | count within ±max(1,10 %) | "
             "f–I RMS / limit (Hz) | rest error (mV, sweeps) | qualitative failures | observed spikes per sweep |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c, e in zip(cells, extras):
        if "error" in c:
            lines.append(f"| {c['recording']} | {c.get('seed', '–')} | – | – | – | – | error: {c['error']} | | | | |")
            continue
        t = targets(c["sweeps"])
        ok = lambda m: "" if m is None else (" ✓" if m else " ✗")  # noqa: E731
        frac = t.get("count_ok_fraction")
        count = "– (none held out)" if frac is None else f"{100 * frac:.0f} %"
        searches = (f", {e['members']} fits" if e.get("members", 1) > 1 else "") + \
            (f", {e['searches']} searches" if e.get("searches", 1) > 1 else "")
        missing = f"; model fires at rest on {t['rest_missing']}" if t.get("rest_missing") else ""
        lines.append(
            f"| {c['recording']} | {c.get('seed', '–')} | {c['model']} | {c['fit_sweeps']} | {c['fit_time_s']:.0f} "
            f"({e['cpu_s']:.0f}){searches} | {t['n_held_out']} | {count}"
            f"{ok(t.get('count_target_met'))} | {_f(t.get('fi_rms_hz'))} / {_f(t.get('fi_limit_hz'), '.1f')}"
            f"{ok(t.get('fi_target_met'))} | {_f(t.get('rest_error_mV'))} ({t.get('rest_compared', 0)}{missing})"
            f"{ok(t.get('rest_target_met'))} | {t.get('qualitative_failures', '–')} | "
            f"{[s['observed_spikes'] for s in c['sweeps']]} |")
    return "\n".join(lines)


def _label(path, seed):
    return f"{path.name}" + ("" if seed is None else f", seed {seed}")


def run_here(jobs, folder, args):
    """``(index, (cell, extra))`` for every job, one after another in this process."""
    for k, (path, seed) in enumerate(jobs):
        print(f"fitting {_label(path, seed)} ...", file=sys.stderr, flush=True)
        yield k, bench_one(path, folder, seed, args)


def run_on_dask(jobs, folder, args):
    """``(index, (cell, extra))`` for every job as its Dask task finishes."""
    from dask.distributed import as_completed  # noqa: PLC0415 (optional: hhjax[cluster])

    from hhjax.cluster import connect  # noqa: PLC0415

    cache = Path(args.out).resolve().parent / ".xla-cache"
    client, cluster = connect(args.scheduler, args.workers, cache_dir=cache)
    try:
        futures = {client.submit(bench_one, path, folder, seed, args, pure=False): k
                   for k, (path, seed) in enumerate(jobs)}
        print(f"{len(jobs)} fits submitted to {client.scheduler.address}", file=sys.stderr, flush=True)
        for future in as_completed(futures):
            k = futures[future]
            print(f"done {_label(*jobs[k])}", file=sys.stderr, flush=True)
            yield k, future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", help="folder of recordings (a file or a subfolder is one recording)")
    ap.add_argument("--out", required=True, help="results JSON")
    ap.add_argument("--seeds", type=int, default=None, help="repeat each fit with search seeds 0..N-1")
    ap.add_argument("--figures", default=None,
                    help="folder for one figure per cell, and panel.png: every cell's held-out sweeps")
    ap.add_argument("--model", default="pospischil", help="fit target, as hhjax fit --model (default pospischil)")
    ap.add_argument("--quick", action="store_true", help="tiny search (a smoke test; targets not expected)")
    ap.add_argument("--dask", action="store_true", help="run the fits as tasks on a Dask cluster")
    ap.add_argument("--workers", type=int, default=None, help="--dask: LocalCluster workers (default: cores)")
    ap.add_argument("--scheduler", default=None, help="--dask: tcp://HOST:8786 of a running scheduler")
    args = ap.parse_args(argv)
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"bench_recordings: {folder}: not a folder", file=sys.stderr)
        return 2
    if args.figures:
        Path(args.figures).mkdir(parents=True, exist_ok=True)
    jobs = [(path, seed) for path in find_recordings(folder) for seed in (range(args.seeds) if args.seeds else [None])]
    if (args.workers or args.scheduler) and not args.dask:
        print("bench_recordings: --workers and --scheduler need --dask", file=sys.stderr)
        return 2
    done = {}
    try:
        for k, (cell, extra) in (run_on_dask(jobs, folder, args) if args.dask else run_here(jobs, folder, args)):
            if "error" in cell:
                print(f"  {cell['recording']}: error: {cell['error']}", file=sys.stderr)
            done[k] = (cell, extra)
            save_json_atomic(args.out, {"cells": [done[j][0] for j in sorted(done)]})  # progress survives a stop
    except (ImportError, ConnectionError) as exc:  # no Dask; a scheduler that does not answer
        print(f"bench_recordings: {exc}", file=sys.stderr)
        return 2
    cells, extras = [done[j][0] for j in sorted(done)], [done[j][1] for j in sorted(done)]
    md = table(cells, extras)
    load = os.getloadavg()
    note = (f"\n\nMachine: {platform.platform()}, {os.cpu_count()} CPUs; load average at the end "
            f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}. Fit time is wall time, compilation included; "
            f"CPU time in brackets.")
    Path(args.out).with_suffix(".md").write_text(md + note + "\n")
    if args.figures:
        plot_panel(cells, Path(args.figures) / "panel.png")
    print(md + note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
