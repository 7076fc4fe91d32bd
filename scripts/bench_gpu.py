#!/usr/bin/env python
"""GPU benchmark (issue #5): the fused Pallas kernel against the reference XLA loop.

    python scripts/bench_gpu.py                # on a machine with a GPU: N = 1e6, 1e7
    python scripts/bench_gpu.py --quick        # tiny sizes (also runs on CPU, interpreted)

Workloads (classic HH, NEURON preset, exp_euler, float32, dt = 0.025 ms):

* **W2 counts**: N neurons, I = linspace(2, 20, N) µA/cm², 100 ms, spikes counted, only the
  first and last states kept (``record_every = n_steps``).
* **W2 recorded**: the same with V and the gates recorded every 10 steps.
* **Gradient**: d/d(g_na, g_k, g_l) of the summed voltage MSE of N neurons over 20 ms (the
  reference path; the kernel has no gradient).

Each case: one call (compile + run), then the median of ``--repeats`` calls with
``block_until_ready`` (``timed`` from ``scripts/bench.py``); neuron-steps/s = N x steps / median. Spike counts of the kernel are
compared with the reference path's (``HHJAX_PALLAS=0``) on the same inputs (``--counts-out``
saves them per neuron, for a float64 check elsewhere), and so are the recorded voltages.
Kernel-only variants (``--blocks``) time other block sizes at the largest N. **Memory**: for
each path, a fresh process makes one W2-recorded call at the smallest N and reports the
device's peak bytes in use over the trace's size. Writes ``scripts/bench_gpu.json``;
nothing is written by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

import hhjax
from bench import _on_event, timed  # scripts/bench.py: one timing helper for every benchmark
from hhjax.simulation import backends as pallas_dispatch, pallas as pallas_hh

DT = 0.025


def _peak_bytes():
    """The device's peak bytes in use so far (None where the backend does not say)."""
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def w2(n, duration, record_every, repeats, counts_out=None):
    """One W2 case on both paths; ``counts_out`` (a dict) collects per-neuron counts (N <= 1e6)."""
    steps = int(round(duration / DT))
    amps = jnp.linspace(2.0, 20.0, n, dtype=jnp.float32)
    stim = hhjax.stimulus.constant(amps)
    rec = record_every or steps
    row = {"n": n, "steps": steps, "record_every": rec,
           "trace_bytes": 4 * 4 * n * (steps // rec + 1)}  # v, m, h, n in float32
    counts, traces = {}, {}
    for path in ("pallas", "reference"):
        os.environ["HHJAX_PALLAS"] = "1" if path == "pallas" else "0"
        run = partial(hhjax.simulate, hhjax.presets.NEURON, stim)
        if path == "pallas" and not pallas_dispatch.applies(
                hhjax.presets.NEURON, stim, method="exp_euler", checkpoint_every=None):
            # Not a GPU: simulate would not take the kernel, so call it directly (interpreted).
            row["pallas_called_directly"] = True
            run = partial(pallas_hh.simulate_pallas, hhjax.presets.NEURON, amps)
        try:
            tr, t = timed(lambda: run(duration=duration, dt=DT, record_every=rec), repeats)
        except Exception as exc:  # noqa: BLE001 - report an out-of-memory size and go on
            row[path] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            continue
        t["neuron_steps_per_s"] = n * steps / t["run_s"]
        counts[path] = np.asarray(tr.spike_count)
        t["spikes"] = int(counts[path].sum())
        # Process-wide peak: the kernel runs first at each size, so its value is the kernel's.
        t["peak_bytes_after"] = _peak_bytes()
        row[path] = t
        traces[path] = tr.v
        del tr
    os.environ.pop("HHJAX_PALLAS", None)
    if len(counts) == 2:
        row["count_mismatches"] = int(np.sum(counts["pallas"] != counts["reference"]))
        diff = jnp.max(jnp.abs(traces["pallas"] - traces["reference"]), axis=-1)
        row["v_max_abs_diff_mV"] = float(jnp.max(diff))
        row["neurons_v_diff_over_1mV"] = int(jnp.sum(diff > 1.0))
        if counts_out is not None and record_every is None and n <= 1_000_000:  # files stay small
            counts_out[f"n{n}_amps"] = np.asarray(amps)
            counts_out.update({f"n{n}_{k}": c.astype(np.int16) for k, c in counts.items()})
    return row


def memory_probe(path, n, duration):
    """In this fresh process: one W2 call with V and gates recorded every 10 steps; the
    device's peak bytes in use against the trace's size."""
    os.environ["HHJAX_PALLAS"] = "1" if path == "pallas" else "0"
    steps = int(round(duration / DT))
    amps = jnp.linspace(2.0, 20.0, n, dtype=jnp.float32)
    tr = jax.block_until_ready(hhjax.simulate(hhjax.presets.NEURON, hhjax.stimulus.constant(amps),
                                              duration=duration, dt=DT, record_every=10))
    trace_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(tr))
    peak = _peak_bytes()
    return {"path": path, "n": n, "steps": steps, "record_every": 10, "trace_bytes": trace_bytes,
            "peak_bytes": peak, "peak_over_trace": None if peak is None else peak / trace_bytes}


def kernel_variants(n, duration, repeats, blocks):
    """The kernel alone (direct call, counts only) at several block sizes / warps."""
    steps = int(round(duration / DT))
    amps = jnp.linspace(2.0, 20.0, n, dtype=jnp.float32)
    rows = []
    for block, warps in blocks:
        run = partial(pallas_hh.simulate_pallas, hhjax.presets.NEURON, amps, duration=duration,
                      dt=DT, block=block, num_warps=warps, gates=False)
        try:
            tr, t = timed(run, repeats)
        except Exception as exc:  # noqa: BLE001
            rows.append({"block": block, "num_warps": warps, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
            continue
        t.update(block=block, num_warps=warps, n=n, steps=steps,
                 neuron_steps_per_s=n * steps / t["run_s"], spikes=int(np.asarray(tr.spike_count).sum()))
        rows.append(t)
        print(json.dumps(t)[:300], flush=True)
    return rows


def gradient(n, duration, repeats):
    p0 = hhjax.presets.NEURON
    stim = hhjax.stimulus.step(10.0, 2.0, duration)
    target = hhjax.simulate(p0, stim, duration=duration, dt=DT).v
    g0 = 1.1 * jnp.array([p0.g_na, p0.g_k, p0.g_l], jnp.float32)
    g = g0 * jax.random.uniform(jax.random.PRNGKey(0), (n, 3), minval=0.8, maxval=1.2)

    def loss(g):
        p = dataclasses.replace(p0, g_na=g[:, 0], g_k=g[:, 1], g_l=g[:, 2])
        return jnp.sum(jnp.mean((hhjax.simulate(p, stim, duration=duration, dt=DT).v - target) ** 2, -1))

    f = jax.jit(jax.grad(loss))
    try:
        grad, t = timed(lambda: f(g), repeats)
    except Exception as exc:  # noqa: BLE001
        return {"n": n, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    t.update(n=n, steps=int(round(duration / DT)), all_finite=bool(np.isfinite(np.asarray(grad)).all()))
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (CPU: the kernel is interpreted)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--blocks", default="64:2,128:4,256:4,256:8,512:8",
                    help="block:num_warps pairs for the kernel-only variants at the largest N")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_gpu.json"))
    ap.add_argument("--commit", help="the commit measured (where the copy has no git history)")
    ap.add_argument("--counts-out", help="save the per-neuron spike counts of W2, N <= 1e6 "
                    "(npz, for scripts/bench_gpu_report.py)")
    ap.add_argument("--memory-probe", nargs=2, metavar=("PATH", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe[0], int(args.memory_probe[1]),
                                      5.0 if args.quick else 100.0)))
        return
    counts_out = {} if args.counts_out else None
    sizes = [256] if args.quick else [1_000_000, 10_000_000]
    duration = 5.0 if args.quick else 100.0
    repeats = 2 if args.quick else args.repeats
    jax.monitoring.register_event_duration_secs_listener(_on_event)  # fills timed()'s compile_s
    dev = jax.devices()[0]
    commit = args.commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                           capture_output=True, text=True).stdout.strip()
    res = {"command": "python " + " ".join(["scripts/bench_gpu.py"] + sys.argv[1:]), "commit": commit,
           "device": f"{dev.platform}: {getattr(dev, 'device_kind', '')}", "jax": jax.__version__,
           "started": time.strftime("%Y-%m-%d %H:%M:%S"), "w2_counts": [], "w2_recorded": []}
    for n in sizes:
        res["w2_counts"].append(w2(n, duration, None, repeats, counts_out))
        print(json.dumps(res["w2_counts"][-1])[:400], flush=True)
    for n in sizes[:1]:
        res["w2_recorded"].append(w2(n, duration, 10, repeats))
        print(json.dumps(res["w2_recorded"][-1])[:400], flush=True)
    blocks = [tuple(int(x) for x in b.split(":")) for b in args.blocks.split(",") if b]
    res["kernel_variants"] = kernel_variants(sizes[-1], duration, repeats, [] if args.quick else blocks)
    res["gradient"] = gradient(sizes[0], 2.0 if args.quick else 20.0, repeats)
    print(json.dumps(res["gradient"])[:400], flush=True)
    res["memory"] = []
    for path in ("pallas", "reference"):  # each in a fresh process: the peak is its own
        cmd = [sys.executable, os.path.abspath(__file__), "--memory-probe", path, str(sizes[0])]
        out = subprocess.run(cmd + (["--quick"] if args.quick else []), capture_output=True, text=True)
        try:
            res["memory"].append(json.loads(out.stdout.strip().splitlines()[-1]))
        except (IndexError, json.JSONDecodeError):
            res["memory"].append({"path": path, "error": out.stderr[-300:]})
        print(json.dumps(res["memory"][-1]), flush=True)
    if counts_out:
        np.savez_compressed(args.counts_out, **counts_out)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
