"""Shared helpers for the peer runners (stdlib + numpy only).

Every runner in this folder runs inside its own virtual environment (NEURON,
Brian2 and Jaxley pin incompatible numpy/jax versions), so this module must
only depend on the standard library and numpy, which all peer venvs have.

The protocol with ``scripts/bench.py``: a runner is called as

    <venv>/bin/python scripts/peers/run_<peer>.py --workload W2 --n 1000 --repeats 3

and prints exactly ONE JSON object on stdout (all chatter goes to stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

# ---------------------------------------------------------------------------
# Workload definition (classic HH with NEURON `hh` parameters)
# ---------------------------------------------------------------------------
GNABAR = 0.12  # S/cm^2
GKBAR = 0.036  # S/cm^2
GL = 0.0003  # S/cm^2
EL = -54.3  # mV
ENA = 50.0  # mV
EK = -77.0  # mV
CM = 1.0  # uF/cm^2
CELSIUS = 6.3  # degC (q10 factor == 1)
V_INIT = -65.0  # mV
DT = 0.025  # ms
T_STOP = 100.0  # ms
STEPS = int(round(T_STOP / DT))  # 4000

# W1: single neuron, step current
W1_AMP = 10.0  # uA/cm^2
W1_DELAY = 10.0  # ms
W1_DUR = 80.0  # ms (10 -> 90 ms)

# W2: N uncoupled neurons, constant currents linearly spread over [2, 20]
W2_I_MIN = 2.0  # uA/cm^2
W2_I_MAX = 20.0  # uA/cm^2
W2_RECORD_EVERY = 10  # record V every 10 steps

SPIKE_THRESHOLD = 0.0  # mV, upward crossing

try:  # the machine is shared: record how busy it was
    LOADAVG_AT_START = list(os.getloadavg())
except OSError:  # pragma: no cover
    LOADAVG_AT_START = None


def w2_currents(n: int):
    import numpy as np

    if n == 1:
        return np.array([W2_I_MIN])
    return np.linspace(W2_I_MIN, W2_I_MAX, n)


def eprint(*a, **k):
    print(*a, file=sys.stderr, **k)


def parse_args(workloads=("W1", "W2", "W4"), extra=None):
    p = argparse.ArgumentParser()
    p.add_argument("--workload", required=True, choices=["W1", "W2", "W3", "W4"])
    p.add_argument("--n", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    if extra is not None:
        extra(p)
    return p.parse_args()


def upward_crossings(t, v, thr=SPIKE_THRESHOLD):
    """Times of upward crossings of ``thr`` (v[k] < thr <= v[k+1]), linearly
    interpolated between the two samples. ``t`` and ``v`` are 1-D arrays."""
    import numpy as np

    t = np.asarray(t, dtype=float)
    v = np.asarray(v, dtype=float)
    k = np.nonzero((v[:-1] < thr) & (v[1:] >= thr))[0]
    frac = (thr - v[k]) / (v[k + 1] - v[k])
    return (t[k] + frac * (t[k + 1] - t[k])).tolist()


def count_upward_crossings(v, thr=SPIKE_THRESHOLD):
    """Spike counts per row of a (n, time) array."""
    import numpy as np

    v = np.asarray(v)
    return ((v[:, :-1] < thr) & (v[:, 1:] >= thr)).sum(axis=1)


def counts_summary(counts, currents=None):
    import numpy as np

    counts = np.asarray(counts)
    out = {
        "total": int(counts.sum()),
        "min": int(counts.min()),
        "max": int(counts.max()),
        "mean": float(counts.mean()),
        "n_silent": int((counts == 0).sum()),
    }
    # A few probe neurons so results can be compared across peers/sizes.
    if currents is not None:
        currents = np.asarray(currents)
        probes = {}
        for target in (2.0, 5.0, 6.5, 10.0, 15.0, 20.0):
            i = int(np.argmin(np.abs(currents - target)))
            probes[f"{currents[i]:.4f}"] = int(counts[i])
        out["probes_I_uAcm2_to_count"] = probes
    return out


def median(xs):
    return float(statistics.median(xs)) if xs else None


def result(system, version, args, steps=STEPS, **kw):
    out = {
        "system": system,
        "version": version,
        "workload": args.workload,
        "n": args.n,
        "steps": steps,
        "dt_ms": DT,
        "t_stop_ms": T_STOP,
        "compile_s": None,
        "run_s_median": None,
        "run_s_all": [],
        "neuron_steps_per_s": None,
        "spike_times_ms": None,
        "spike_counts_summary": None,
        "note": "",
    }
    out.update(kw)
    if out.get("run_s_all") and out.get("run_s_median") is None:
        out["run_s_median"] = median(out["run_s_all"])
    if out.get("run_s_all"):
        out["run_s_min"] = float(min(out["run_s_all"]))
    if out.get("cpu_s_all"):
        out["cpu_s_median"] = median(out["cpu_s_all"])
    if out.get("run_s_median") and out.get("neuron_steps_per_s") is None:
        out["neuron_steps_per_s"] = args.n * steps / out["run_s_median"]
    out["cpu"] = cpu_name()
    out["loadavg_at_start"] = LOADAVG_AT_START
    try:
        out["loadavg_at_end"] = list(os.getloadavg())
    except OSError:
        pass
    return out


def skipped(system, note, args=None):
    out = {"system": system, "skipped": True, "note": note}
    if args is not None:
        out.update({"workload": args.workload, "n": args.n})
    emit(out)
    sys.exit(0)


def skip_w3(system, version, args, name):
    """W3 (a gradient) on simulator ``name``, which has no autodiff: emit the skip record."""
    emit({"system": system, "version": version, "workload": "W3", "n": args.n,
          "skipped": True, "note": f"{name} has no autodiff; W3 is Jaxley-only"})


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    return f"{name} x{os.cpu_count()}"
    except OSError:
        pass
    return None
