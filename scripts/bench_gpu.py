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
compared with the reference path's (``HHJAX_PALLAS=0``) on the same inputs. Writes
``scripts/bench_gpu.json``; nothing is written by hand.
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
from hhjax import pallas_dispatch, pallas_hh

DT = 0.025


def w2(n, duration, record_every, repeats):
    steps = int(round(duration / DT))
    amps = jnp.linspace(2.0, 20.0, n, dtype=jnp.float32)
    stim = hhjax.stimulus.constant(amps)
    rec = record_every or steps
    row = {"n": n, "steps": steps, "record_every": rec}
    counts = {}
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
        row[path] = t
    os.environ.pop("HHJAX_PALLAS", None)
    if len(counts) == 2:
        row["count_mismatches"] = int(np.sum(counts["pallas"] != counts["reference"]))
    return row


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
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_gpu.json"))
    args = ap.parse_args()
    sizes = [256] if args.quick else [1_000_000, 10_000_000]
    duration = 5.0 if args.quick else 100.0
    repeats = 2 if args.quick else args.repeats
    jax.monitoring.register_event_duration_secs_listener(_on_event)  # fills timed()'s compile_s
    dev = jax.devices()[0]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    res = {"command": "python " + " ".join(["scripts/bench_gpu.py"] + sys.argv[1:]), "commit": commit,
           "device": f"{dev.platform}: {getattr(dev, 'device_kind', '')}", "jax": jax.__version__,
           "started": time.strftime("%Y-%m-%d %H:%M:%S"), "w2_counts": [], "w2_recorded": []}
    for n in sizes:
        res["w2_counts"].append(w2(n, duration, None, repeats))
        print(json.dumps(res["w2_counts"][-1])[:400], flush=True)
    for n in sizes[:1]:
        res["w2_recorded"].append(w2(n, duration, 10, repeats))
        print(json.dumps(res["w2_recorded"][-1])[:400], flush=True)
    res["gradient"] = gradient(sizes[0], 2.0 if args.quick else 20.0, repeats)
    print(json.dumps(res["gradient"])[:400], flush=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
