#!/usr/bin/env python
"""Print a markdown table from scripts/peers/results_local.json (stdlib only).

    python3 scripts/peers/summarize.py [path/to/results.json]

Columns: wall-clock median of the timed runs, their CPU time (process time of
the runner; for single-threaded code on a busy machine this is close to the
wall time the run would take on an idle core), neuron-steps/s from both.
"""

from __future__ import annotations

import json
import os
import statistics
import sys


def fmt(x, spec=".3g"):
    return "–" if x is None else format(x, spec)


def cpu_median(r):
    if r.get("cpu_s_median") is not None:
        return r["cpu_s_median"]
    c = r.get("cpu_s_all_incl_warmup")
    if c and len(c) > 1 and r.get("workload") in ("W1", "W2", "W3"):
        return statistics.median(c[1:])
    return None


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "results_local.json")
    with open(path) as f:
        res = json.load(f)["results"]
    rows = sorted(res.items(), key=lambda kv: (kv[1].get("workload", ""),
                                               kv[1].get("n", 0),
                                               kv[1].get("system", "")))
    print("| system | options | W | N | setup/compile s | first run s | run s (median wall) "
          "| run s (CPU) | neuron-steps/s (wall) | neuron-steps/s (CPU) | spikes | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, r in rows:
        if r.get("skipped") or r.get("failed"):
            print(f"| {r.get('system')} | {label} | | | | | FAILED/SKIPPED: "
                  f"{r.get('note', '')} | | | | | |")
            continue
        opts = " ".join(a for a in r.get("argv", []) if a.startswith("--") and a not in
                        ("--workload", "--n", "--repeats"))
        argv = r.get("argv", [])
        opts = " ".join(argv[argv.index("--repeats") + 2:]) if "--repeats" in argv else opts
        w, n, steps = r["workload"], r["n"], r["steps"]
        cpu = cpu_median(r)
        run = r.get("run_s_median")
        if r.get("run_s_internal_median") is not None:
            run_txt = f"{fmt(run)} (loop {fmt(r['run_s_internal_median'])})"
        else:
            run_txt = fmt(run)
        if w == "W3":
            nsps = "–"
            nsps_cpu = "–"
            run_txt = f"{fmt(run)} / grad"
        elif w == "W4":
            nsps = nsps_cpu = "–"
            extra = r.get("first_grad_s")
            run_txt = "–" if extra is None else f"first grad {fmt(extra)}"
        else:
            nsps = fmt(r.get("neuron_steps_per_s"))
            nsps_cpu = fmt(n * steps / cpu) if cpu else "–"
        if w == "W4":
            comp = r.get("compile_s") if r.get("compile_s") is not None else r.get("setup_s")
        else:
            comp = r.get("compile_s")
        spikes = ""
        if r.get("spike_counts_summary"):
            spikes = str(r["spike_counts_summary"]["total"])
        elif r.get("spike_times_ms"):
            spikes = str(len(r["spike_times_ms"]))
        load = r.get("loadavg_at_start")
        load = fmt(load[0], ".1f") if load else ""
        print(f"| {r['system']} | {opts} | {w} | {n} | {fmt(comp)} | "
              f"{fmt(r.get('first_run_s'))} | {run_txt} | {fmt(cpu)} | {nsps} | "
              f"{nsps_cpu} | {spikes} | {load} |")


if __name__ == "__main__":
    main()
