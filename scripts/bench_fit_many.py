"""Dask benchmark (issue 17): copies of one shared recording fitted by ``hhjax fit-many`` on
a LocalCluster of single-threaded workers, against the same fits one after another in one
process.

    python scripts/bench_fit_many.py --out scripts/bench_fit_many.json [--cells 8] [--workers 2]
        [--recording 18711001.abf] [--cache both|cold|warm] [--no-plot]

Both sides do the same work per cell: :func:`hhjax.cluster.fit_cell` with ``hhjax fit``'s
default settings (cell chosen sweeps, 16 x 160 search, 4 starts, 4 LM steps, dt 0.1 ms),
then the evaluation on every sweep, ``fit.json``, ``eval.json`` and the figure.

- sequential: one fresh Python process that fits the cells one after another (JAX compiles
  once), with the environment a user has by default: ``XLA_FLAGS``, ``OMP_NUM_THREADS``
  and ``HHJAX_SHARD`` unset, so XLA uses its default CPU thread pool (one thread per core)
  and one CPU device.
- cli: one ``hhjax fit CELL --out CELL/fit.json --plot CELL/fit.png`` command after
  another, as a user without ``fit-many`` runs them (the issue's reference: "sequential
  ``hhjax fit`` calls"), each a new process with the user's default environment and
  hhjax's own compilation cache (in a fresh ``HOME``; cold: empty, warm: filled by the
  cold run). It evaluates every sweep and draws the figure, as the others do, but writes
  no ``eval.json`` (its ``fit.json`` holds the evaluation).
- dask: ``hhjax fit-many CELLS --out OUT --workers W --cache-dir CACHE`` as a user runs it
  (the cluster's start and stop included); workers get ``hhjax.cluster.worker_env`` and
  are pinned to a core each (:mod:`hhjax.cluster.pinning`).

Each side is timed from process start to exit (imports included); CPU time is the user +
system time of the process and every process it started (``os.wait4``). "cold" runs start
from empty persistent compilation caches, "warm" ones reuse the cache their side filled in
the cold run (the state of a lab's second batch); with ``both`` the order is sequential
cold, cli cold, dask cold, dask warm, cli warm, sequential warm, so that a drifting load
hits every side alike.
The 1-minute load average (sampled every 2 s) and the CPU share that other processes took
(from /proc/stat) are recorded per run. The fitted parameters of every cell are compared
between the two sides.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's hhjax, not an installed one
sys.path.insert(0, str(ROOT / "scripts"))
from bench_machine import Watch  # noqa: E402
PARAMS = ("g_na", "g_k", "g_m", "tau_max", "v_t", "g_l", "e_l", "area")
# What a user has by default: none of the thread or device settings that workers get.
UNSET = ("XLA_FLAGS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "HHJAX_SHARD",
         "JAX_PLATFORMS", "JAX_COMPILATION_CACHE_DIR", "HHJAX_CACHE_DIR",
         "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES")

SEQUENTIAL = r"""
import json, sys
from hhjax.cluster import FitSettings, find_cells, fit_cell, input_hash
settings = FitSettings(**json.loads(sys.argv[3]))
rows = [fit_cell(c, sys.argv[2], settings, input_hash(c, settings), cache_dir=sys.argv[4])
        for c in find_cells([sys.argv[1]])]
print(json.dumps(rows))
"""


def _timed(cmd, env, label):
    """Run ``cmd``: wall and CPU seconds (of it and every process it started and waited
    for, e.g. the Dask workers), the load average and the CPU share others took."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, Watch() as watch:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # not proc.wait: wait4 gives the CPU time too
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode:
        raise RuntimeError(f"{label} failed ({proc.returncode}): {stderr[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall_s": wall, "cpu_s": cpu, **watch.summary(cpu, wall)}, stdout


SMALL = {"n_starts": 1, "steps": 1, "generations": 1, "population": 8}  # --small: checks the script
SMALL_FLAGS = ["--starts", "1", "--steps", "1", "--generations", "1", "--population", "8"]


def run_side(side, cells, work, cache, env, workers, plot, small=False):
    """One timed run of ``side`` ("sequential" or "dask") into a fresh output folder."""
    out = work / f"out-{side}-{len(list(work.glob(f'out-{side}-*')))}"
    if side == "cli":
        return run_cli(cells, out, cache, env, plot, small)
    if side == "sequential":
        settings = {"plot": plot, **(SMALL if small else {})}
        cmd = [sys.executable, "-c", SEQUENTIAL, str(cells), str(out), json.dumps(settings), str(cache)]
    else:
        cmd = [sys.executable, "-c", "import sys, hhjax.cli as c; sys.exit(c.main())", "fit-many",
               str(cells), "--out", str(out), "--workers", str(workers), "--cache-dir", str(cache)]
        cmd += ([] if plot else ["--no-plot"]) + (SMALL_FLAGS if small else [])
    res, stdout = _timed(cmd, env, side)
    if side == "sequential":
        rows = json.loads(stdout.strip().splitlines()[-1])
    else:
        rows = json.loads((out / "summary.json").read_text())["cells"]
    bad = [r for r in rows if r.get("status") != "ok"]
    if bad:
        raise RuntimeError(f"{side}: cells failed: {bad}")
    res["cells"] = [{k: r.get(k) for k in ("cell", "worker", "wall_time_s", "cpu_time_s", "xla_programs",
                                          "xla_cache_hits", *PARAMS)} for r in rows]
    shutil.rmtree(out, ignore_errors=True)
    return res


CLI_LOOP = r"""
import json, os, subprocess, sys, time
cells, out, flags = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
from hhjax.cluster import find_cells  # finding files only; each fit is its own process
rows = []
for c in find_cells([cells]):
    folder = os.path.join(out, c.name)
    os.makedirs(folder)
    t0 = time.perf_counter()
    args = ["fit", c.path, "--out", os.path.join(folder, "fit.json"), *flags]
    if "--no-plot" in args:
        args.remove("--no-plot")
    else:
        args += ["--plot", os.path.join(folder, "fit.png")]
    subprocess.run([sys.executable, "-c", "import sys, hhjax.cli as m; sys.exit(m.main())", *args],
                   check=True, capture_output=True)
    p = json.load(open(os.path.join(folder, "fit.json")))["params"]
    rows.append({"cell": c.name, "status": "ok", "worker": "cli", "wall_time_s": time.perf_counter() - t0, **p})
print(json.dumps(rows))
"""


def run_cli(cells, out, home, env, plot, small=False):
    """The cells fitted by one ``hhjax fit`` command after another (see the module doc):
    ``home`` is the ``HOME`` whose ``~/.cache/hhjax`` holds hhjax's compilation cache."""
    env = {k: v for k, v in env.items() if k != "HHJAX_NO_CACHE"}
    home.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    flags = (SMALL_FLAGS if small else []) + ([] if plot else ["--no-plot"])
    cmd = [sys.executable, "-c", CLI_LOOP, str(cells), str(out), json.dumps(flags)]
    res, stdout = _timed(cmd, env, "cli")
    rows = json.loads(stdout.strip().splitlines()[-1])
    res["cells"] = [{k: r.get(k) for k in ("cell", "worker", "wall_time_s", *PARAMS)} for r in rows]
    shutil.rmtree(out, ignore_errors=True)
    return res


def compare(seq, dask):
    """Dask's run against another: wall and CPU time ratios, whether every cell's parameters
    are bitwise equal, and the largest relative difference."""
    a = {r["cell"]: r for r in seq["cells"]}
    diffs = [abs(r[k] - a[r["cell"]][k]) / max(abs(a[r["cell"]][k]), 1e-30)
             for r in dask["cells"] for k in PARAMS]
    same = all(r[k] == a[r["cell"]][k] for r in dask["cells"] for k in PARAMS)
    return {"ratio_wall": dask["wall_s"] / seq["wall_s"], "ratio_cpu": dask["cpu_s"] / seq["cpu_s"],
            "identical_parameters": same and len(a) == len(dask["cells"]),
            "max_relative_difference": max(diffs)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="results JSON")
    ap.add_argument("--cells", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--recording", default="18711001.abf", help="a name in data/recordings or a path")
    ap.add_argument("--cache", choices=("both", "cold", "warm"), default="both")
    ap.add_argument("--no-plot", action="store_true", help="skip the figures on both sides")
    ap.add_argument("--small", action="store_true", help="tiny fits (1 generation of 8): checks the script only")
    args = ap.parse_args(argv)
    from hhjax.io import example_recording  # noqa: PLC0415 (after sys.path)

    src = Path(args.recording) if Path(args.recording).exists() else Path(example_recording(args.recording))
    work = Path(tempfile.mkdtemp(prefix="hhjax-bench-fit-many-"))
    try:
        cells = work / "cells"
        cells.mkdir()
        for k in range(args.cells):
            shutil.copy(src, cells / f"copy{k}{''.join(src.suffixes)}")
        env = {k: v for k, v in os.environ.items() if k not in UNSET}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env["HHJAX_NO_CACHE"] = "1"  # the CLI's own default cache stays out of it
        caches = {s: work / f"cache-{s}" for s in ("sequential", "dask", "cli")}
        order = {"cold": [("sequential", "cold"), ("cli", "cold"), ("dask", "cold")],
                 "warm": [("sequential", "prime"), ("cli", "prime"), ("dask", "prime"), ("dask", "warm"),
                          ("cli", "warm"), ("sequential", "warm")],
                 "both": [("sequential", "cold"), ("cli", "cold"), ("dask", "cold"), ("dask", "warm"),
                          ("cli", "warm"), ("sequential", "warm")]}[args.cache]
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=ROOT).stdout.strip()
        res = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                           "load_before": os.getloadavg()},
               "commit": commit, "recording": src.name, "cells": args.cells, "workers": args.workers,
               "plot": not args.no_plot, "small": args.small,
               "sequential_env": f"one process, {', '.join(UNSET[:5])} unset (XLA's default thread pool, "
                                 "one CPU device)",
               "runs": {}}
        for side, state in order:
            r = run_side(side, cells, work, caches[side], env, args.workers, not args.no_plot, args.small)
            print(f"{side} {state}: wall {r['wall_s']:.1f} s, CPU {r['cpu_s']:.1f} s, "
                  f"load {r['load_1min']['mean']:.1f}", flush=True)
            if state != "prime":
                res["runs"][f"{side}_{state}"] = r
        for state in ("cold", "warm"):
            s, d = res["runs"].get(f"sequential_{state}"), res["runs"].get(f"dask_{state}")
            c = res["runs"].get(f"cli_{state}")
            if s and d:
                res[state] = compare(s, d)
            if c and d:
                res[state]["cli"] = compare(c, d)
        res["machine"]["load_after"] = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(report(res))


def report(res) -> str:
    """The README table from a results dict."""
    lines = [f"{res['cells']} copies of {res['recording']}, hhjax fit defaults, {res['workers']} workers "
             f"(commit {res['commit']}, {res['machine']['cores']} cores)", "",
             "| run | wall s | CPU s | load (1 min, mean) | others' CPU share | Dask ÷ this (wall) | "
             "parameters vs Dask |", "|---|---|---|---|---|---|---|"]
    names = {"sequential": "one process, cells in turn", "cli": "`hhjax fit` per cell, in turn",
             "dask": "`hhjax fit-many`, Dask"}
    for name, r in res["runs"].items():
        side, state = name.split("_")
        cmp = res.get(state, {})
        cmp = cmp.get("cli", {}) if side == "cli" else cmp if side == "sequential" else {}
        ratio = f"{cmp['ratio_wall']:.2f}" if cmp else ""
        same = ("identical" if cmp.get("identical_parameters") else
                f"max rel. diff {cmp['max_relative_difference']:.1e}") if cmp else ""
        lines.append(f"| {names[side]}, {state} cache | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                     f"{r['load_1min']['mean']:.1f} | {100 * r.get('others_cpu_share', float('nan')):.0f} % | "
                     f"{ratio} | {same} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
