"""Measure the peak memory of :func:`hhjax.simulate` on the CPU relative to the trace it
returns, which ``hhjax.simulation.memory`` uses to decide whether a call fits.

Each run is a fresh process that records its resident set size before ``simulate`` and its
peak (``ru_maxrss``) after. Compilation needs the same memory for N and 2N neurons, so the
peak factor is the growth of ``peak - before`` from N to 2N neurons over the growth of the
trace (the input stimulus, existing before the call, is not counted).

A sampled (grid) stimulus also costs its time-major copy (the memory guard adds it to the
estimate separately): with 4 recorded variables and ``record_every=1`` that is 1/4 of the
trace, with ``record_every=10`` 2.5x.

    python scripts/measure_memory.py [--out scripts/memory.json] [--mb 400]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, resource, sys
import jax, jax.numpy as jnp, numpy as np
import hhjax
from hhjax.simulation import last_backend
from hhjax import stimulus as S
n, steps, every, kind = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
dt = 0.025
amps = jnp.linspace(0.0, 20.0, n)
stim = jnp.broadcast_to(amps[:, None], (n, steps)) + 0.0 if kind == "grid" else S.constant(amps)
jax.block_until_ready(stim)
with open("/proc/self/status") as f:
    before = [int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:")][0]
tr = jax.block_until_ready(hhjax.simulate(hhjax.presets.NEURON, stim, duration=steps * dt, dt=dt,
                                          record_every=every))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(neurons=n, steps=steps, record_every=every, stimulus=kind, before=before, peak=peak,
                      backend=last_backend(),
                      trace_bytes=sum(x.nbytes for x in jax.tree_util.tree_leaves(tr.state)))))
"""


def measure(n, steps, every, kind, kernel=True):
    env = dict(os.environ, HHJAX_CPU_KERNEL="1" if kernel else "0")
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(steps), str(every), kind],
                         capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--mb", type=float, default=400.0, help="trace size per configuration (MB)")
    args = ap.parse_args()
    rows = []
    # Constant currents run on the fused CPU kernel, or on the lax.scan path with
    # HHJAX_CPU_KERNEL=0 (the path of every other model, method and dtype); sampled
    # (grid) currents always run on the scan path.
    for every, kind, kernel in ((1, "constant", True), (10, "constant", True), (1, "constant", False),
                                (10, "constant", False), (1, "grid", False), (10, "grid", False)):
        # Compilation costs the same for N and 2N neurons: the slope is the run's peak.
        n = 500
        n_rec = int(args.mb * 1e6 / (4 * 4 * 2 * n))
        steps = n_rec * every
        small, big = measure(n, steps, every, kind, kernel), measure(2 * n, steps, every, kind, kernel)
        growth = (big["peak"] - big["before"]) - (small["peak"] - small["before"])
        row = dict(record_every=every, stimulus=kind, backend=big["backend"], steps=steps, neurons=(n, 2 * n),
                   trace_bytes=(small["trace_bytes"], big["trace_bytes"]),
                   peak_factor=round(growth / (big["trace_bytes"] - small["trace_bytes"]), 3),
                   load_average=[round(x, 2) for x in os.getloadavg()])
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
