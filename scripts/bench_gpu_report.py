#!/usr/bin/env python
"""Finish and report the GPU benchmark (issue #5), on any machine (no GPU needed).

    python scripts/bench_gpu_report.py --counts counts.npz   # float64 check, then the table
    python scripts/bench_gpu_report.py                       # the table only

``scripts/bench_gpu.py --counts-out counts.npz`` saves, for N <= 1e6, the W2 spike count of
every neuron from the Pallas kernel and from the reference loop, with the currents. Here the
same neurons are simulated again by the reference path in **float64** (``exp_euler``, the
same dt, on the CPU), and the number of neurons whose count differs from float64 is added to
``scripts/bench_gpu.json`` as ``float64_check``: the rounding error of each float32 path. The
Markdown table for the README is then printed from the JSON; nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CHUNK = 50_000


def float64_counts(amps, duration, dt):
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    import hhjax

    out = []
    for i in range(0, len(amps), CHUNK):
        tr = hhjax.simulate(hhjax.presets.NEURON, hhjax.stimulus.constant(jnp.asarray(amps[i:i + CHUNK], jnp.float64)),
                            duration=duration, dt=dt, record_every=int(round(duration / dt)))
        out.append(np.asarray(tr.spike_count))
        print(f"\rfloat64: {min(i + CHUNK, len(amps))}/{len(amps)} neurons", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return np.concatenate(out)


def float64_check(counts_path, res):
    import numpy as np

    data = np.load(counts_path)
    rows = []
    for key in sorted(k for k in data.files if k.endswith("_amps")):
        n = int(key[1:-len("_amps")])
        w2 = next(r for r in res["w2_counts"] if r["n"] == n)
        c64 = float64_counts(data[key].astype(np.float64), w2["steps"] * 0.025, 0.025)
        row = {"n": n, "float64_spikes": int(c64.sum())}
        for path in ("pallas", "reference"):
            counts = data[f"n{n}_{path}"].astype(np.int64)
            assert int(counts.sum()) == w2[path]["spikes"], "counts file is not from this JSON's run"
            row[f"{path}_spikes"] = int(counts.sum())
            row[f"{path}_count_mismatches_vs_float64"] = int(np.sum(counts != c64))
        rows.append(row)
    return {"what": "W2 counts: neurons whose float32 count differs from the reference path's in "
                    "float64 (exp_euler, dt 0.025 ms, the same currents), computed on the CPU",
            "rows": rows}


def _e(x):
    return f"{x:.1e}".replace("e+0", "e").replace("e+", "e")


def markdown(res):
    lines = [f"Measured on {res['device'].split(': ')[-1]} at commit {res['commit']}, jax {res['jax']}, "
             f"{res['started'][:10]}; `{res['command']}`, medians of {res['w2_counts'][0]['pallas']['repeats']} "
             "runs after a compile-and-run call.", "",
             "| W2 (100 ms, dt 0.025, currents 2–20 µA/cm²) | N | Pallas kernel (`simulate`) | reference "
             "`lax.scan` loop | kernel ÷ loop | first call, kernel | target |",
             "|---|---|---|---|---|---|---|"]
    for case, rows, target in (("spikes counted", res["w2_counts"], "≥ 1e11"),
                               ("V, m, h, n recorded every 10 steps", res["w2_recorded"], "≥ 3e10")):
        for r in rows:
            k, ref = r["pallas"], r["reference"]
            lines.append(f"| {case} | {_e(r['n'])} | **{_e(k['neuron_steps_per_s'])}** | "
                         f"{_e(ref['neuron_steps_per_s'])} | {k['neuron_steps_per_s'] / ref['neuron_steps_per_s']:.1f}× | "
                         f"{k['first_s']:.2f} s | {target} |")
    g = res["gradient"]
    lines += ["", f"- **Gradient** of the summed voltage MSE over {_e(g['n'])} neurons, {g['steps'] * 0.025:g} ms, "
              f"with respect to (g_Na, g_K, g_L) of each (`jax.grad`, reference path): {g['run_s']:.3f} s "
              f"(first call {g['first_s']:.1f} s; target < 10 s); all finite: {g['all_finite']}."]
    mem = {m["path"]: m for m in res.get("memory", [])}
    if "pallas" in mem and "peak_over_trace" in mem["pallas"]:
        lines.append(f"- **Memory**, W2 recorded every 10 steps at N = {_e(mem['pallas']['n'])} (one call in a fresh "
                     f"process, the device's peak bytes in use over the {mem['pallas']['trace_bytes'] / 1e9:.1f} GB trace): "
                     f"kernel {mem['pallas']['peak_over_trace']:.2f}×, reference loop "
                     f"{mem['reference']['peak_over_trace']:.2f}× (target ≤ 2×).")
    variants = [v for v in res.get("kernel_variants", []) if "neuron_steps_per_s" in v]
    if variants:
        lo = min(v["neuron_steps_per_s"] for v in variants)
        hi = max(v["neuron_steps_per_s"] for v in variants)
        lines.append(f"- **Kernel alone** at N = {_e(variants[0]['n'])} (V not recorded, no input checks), "
                     f"{len(variants)} block sizes / warp counts "
                     f"({', '.join('%d/%d' % (v['block'], v['num_warps']) for v in variants)}): "
                     f"{_e(lo) if _e(lo) == _e(hi) else _e(lo) + '–' + _e(hi)} neuron-steps/s.")
    acc = [f"kernel and loop disagree on {r['count_mismatches']} of {_e(r['n'])} neurons"
           for r in res["w2_counts"]]
    lines.append(f"- **Spike counts**: {'; '.join(acc)}.")
    for r in res.get("float64_check", {}).get("rows", []):
        lines.append(f"- **Against float64** (same scheme, N = {_e(r['n'])}, computed on the CPU): the kernel's count "
                     f"differs on {r['pallas_count_mismatches_vs_float64']} neurons, the float32 reference loop's "
                     f"on {r['reference_count_mismatches_vs_float64']}.")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default=os.path.join(HERE, "bench_gpu.json"))
    ap.add_argument("--counts", help="npz from bench_gpu.py --counts-out: add the float64 check")
    args = ap.parse_args()
    with open(args.json) as f:
        res = json.load(f)
    if args.counts:
        res["float64_check"] = float64_check(args.counts, res)
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    print(markdown(res))


if __name__ == "__main__":
    main()
