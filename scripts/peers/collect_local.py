#!/usr/bin/env python
"""Run the peer runners in their venvs and merge the JSON into results_local.json.

Stdlib only; run with any python:

    python3 scripts/peers/collect_local.py --group neuron
    python3 scripts/peers/collect_local.py --group brian2-cpp --group jaxley
    python3 scripts/peers/collect_local.py --list

Each case is keyed by a label; re-running a case replaces its entry. Venv
locations default to /tmp/venv-{neuron,brian2,jaxley} and can be overridden with
PEERS_VENV_NEURON / PEERS_VENV_BRIAN2 / PEERS_VENV_JAXLEY.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results_local.json")
VENV = {
    "neuron": os.environ.get("PEERS_VENV_NEURON", "/tmp/venv-neuron"),
    "brian2": os.environ.get("PEERS_VENV_BRIAN2", "/tmp/venv-brian2"),
    "jaxley": os.environ.get("PEERS_VENV_JAXLEY", "/tmp/venv-jaxley"),
}


def case(group, peer, workload, n, repeats, *extra):
    label = f"{group}:{workload}:n={n}" + ("" if not extra else ":" + " ".join(extra))
    return dict(group=group, peer=peer, label=label,
                argv=["--workload", workload, "--n", str(n), "--repeats", str(repeats),
                      *extra])


CASES = [
    # NEURON
    case("neuron", "neuron", "W1", 1, 5),
    case("neuron", "neuron", "W1", 1, 5, "--advance", "psolve"),
    case("neuron", "neuron", "W1", 1, 5, "--usetable"),
    case("neuron", "neuron", "W2", 1000, 3),
    case("neuron", "neuron", "W2", 1000, 3, "--advance", "psolve"),
    case("neuron", "neuron", "W4", 1, 0),
    case("neuron-1e4", "neuron", "W2", 10000, 3),
    case("neuron-1e4", "neuron", "W2", 10000, 3, "--advance", "psolve"),
    # Brian2
    case("brian2-numpy", "brian2", "W1", 1, 3, "--target", "numpy"),
    case("brian2-numpy", "brian2", "W2", 1000, 3, "--target", "numpy"),
    case("brian2-numpy", "brian2", "W2", 10000, 3, "--target", "numpy"),
    case("brian2-cython", "brian2", "W1", 1, 5, "--target", "cython"),
    case("brian2-cython", "brian2", "W2", 1000, 3, "--target", "cython"),
    case("brian2-cython", "brian2", "W2", 10000, 3, "--target", "cython"),
    case("brian2-cpp", "brian2", "W1", 1, 5, "--target", "cpp_standalone"),
    case("brian2-cpp", "brian2", "W2", 1000, 3, "--target", "cpp_standalone"),
    case("brian2-cpp", "brian2", "W2", 10000, 3, "--target", "cpp_standalone"),
    case("brian2-w4", "brian2", "W4", 1, 0, "--target", "numpy"),
    case("brian2-w4", "brian2", "W4", 1, 0, "--target", "cython"),
    case("brian2-w4", "brian2", "W4", 1, 0, "--target", "cpp_standalone"),
    # Jaxley
    case("jaxley", "jaxley", "W1", 1, 5),
    case("jaxley", "jaxley", "W2", 1000, 3),
    case("jaxley", "jaxley", "W2", 10000, 3),
    case("jaxley", "jaxley", "W3", 1, 5),
    case("jaxley", "jaxley", "W4", 1, 0),
    case("jaxley-f32", "jaxley", "W1", 1, 5, "--float32"),
    case("jaxley-f32", "jaxley", "W2", 1000, 3, "--float32"),
    case("jaxley-f32", "jaxley", "W2", 10000, 3, "--float32"),
    case("jaxley-f32", "jaxley", "W3", 1, 5, "--float32"),
    case("jaxley-net", "jaxley", "W2", 1000, 3, "--w2-mode", "network"),
    # N = 1e5 (only the peers that do one run in well under 2 minutes here)
    case("big", "brian2", "W2", 100000, 1, "--target", "cpp_standalone"),
    case("big", "jaxley", "W2", 100000, 1),
]


def run_case(c, timeout):
    py = os.path.join(VENV[c["peer"]], "bin", "python")
    script = os.path.join(HERE, f"run_{c['peer']}.py")
    if not os.path.exists(py):
        return {"system": c["peer"], "skipped": True,
                "note": f"venv {VENV[c['peer']]} missing"}
    cmd = [py, script, *c["argv"]]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"system": c["peer"], "failed": True, "note": f"timeout after {timeout}s"}
    wall = time.perf_counter() - t0
    lines = [ln for ln in p.stdout.splitlines() if ln.strip().startswith("{")]
    if p.returncode != 0 or not lines:
        return {"system": c["peer"], "failed": True, "returncode": p.returncode,
                "stderr_tail": p.stderr[-2000:]}
    res = json.loads(lines[-1])
    res["process_wall_s"] = wall
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--group", action="append", default=[])
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--timeout", type=float, default=900)
    a = ap.parse_args()
    if a.list:
        for c in CASES:
            print(c["group"], "|", c["label"])
        return
    todo = [c for c in CASES if c["group"] in a.group or c["label"] in a.label]
    data = {}
    if os.path.exists(OUT):
        with open(OUT) as f:
            data = json.load(f)
    data.setdefault("results", {})
    for c in todo:
        print(f"[collect] {c['peer']} {' '.join(c['argv'])}", file=sys.stderr, flush=True)
        res = run_case(c, a.timeout)
        res["argv"] = c["argv"]
        res["peer"] = c["peer"]
        res["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        data["results"][c["label"]] = res
        brief = {k: res.get(k) for k in ("system", "workload", "n", "compile_s",
                                         "run_s_median", "neuron_steps_per_s",
                                         "skipped", "failed")}
        print(f"[collect]   -> {json.dumps(brief)}", file=sys.stderr, flush=True)
        with open(OUT, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
