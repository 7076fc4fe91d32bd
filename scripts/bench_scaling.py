"""Scaling benchmark (issue 17): W2 over devices and processes, and an on-paper table for
1e9 neurons derived from measured rates.

    python scripts/bench_scaling.py --n 1e6 --out scripts/bench_scaling.json [--repeats 3]
    python scripts/bench_scaling.py --paper-only --out scripts/bench_scaling.json  # redo the table

W2 (classic HH, currents 2-20 µA/cm², 100 ms at dt 0.025 = 4,000 steps, V recorded every
10 steps, spikes counted) with 1 process x 1 CPU device, 1 process x 2 devices, and 2
processes x 1 device (``jax.distributed`` on localhost, gloo collectives), each in fresh
processes. The batch comes from :func:`hhjax.distributed.population` and the call is
``jax.jit(simulate)``, compiled ahead of time (``lower().compile()``, timed apart), so
all three run the same program: the reference loop, split over the devices with sharding
constraints (the fused C++ kernel runs one device per process and is measured by
bench_cpu.py). Then the median of ``--repeats`` runs, each ended by block_until_ready;
CPU time per run; the load average and the CPU share of other processes. Spike counts of
the three are compared in full (SHA-256 of the gathered counts).

Memory at N = 1e6: V is 1e6 x 401 x 4 B = 1.6 GB (about twice that at the peak).
Time at N = 1e6: a run is 4e9 neuron-steps, about 30 CPU-seconds here (1.3e8 per
CPU-second), so on 2 quiet cores ~15-30 s a run and ~3 min for the three setups with 2
repeats (15 min under a load of 12 on the shared machine).

On paper: 1e9 neurons x 1 s at dt 0.025, spikes counted, start and end state kept, from
the rates and memory measured here (this JSON), in bench_gpu.json (H100) and in
bench_cpu_quiet.json (the fused C++ kernel on this machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from bench_machine import Watch  # noqa: E402

STEPS = 4000  # 100 ms at dt 0.025

W2_CHILD = r"""
import json, sys, time
pid, nproc, ndev, port, n, repeats = sys.argv[1:7]
pid, nproc, ndev, n, repeats = int(pid), int(nproc), int(ndev), int(float(n)), int(repeats)
import jax
jax.config.update("jax_platforms", "cpu")
jax.config.update("jax_num_cpu_devices", ndev)
if nproc > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=nproc, process_id=pid,
                               heartbeat_timeout_seconds=60)
import numpy as np, hhjax, hashlib
from hhjax.distributed import population, Linspace, gather
pop = population(n, current=Linspace(2.0, 20.0))
params, amps = pop.params(hhjax.presets.NEURON), pop["current"]

def w2(params, amps):
    tr = hhjax.simulate(params, hhjax.stimulus.constant(amps), duration=100.0, dt=0.025,
                        record_every=10, record=("v",))
    return tr.v, tr.spike_count

t = time.perf_counter()
compiled = jax.jit(w2).lower(params, amps).compile()
compile_s = time.perf_counter() - t
times, cpus = [], []
for _ in range(repeats):
    t, c = time.perf_counter(), time.process_time()
    v, counts = jax.block_until_ready(compiled(params, amps))
    times.append(time.perf_counter() - t)
    cpus.append(time.process_time() - c)
    devices = len(v.sharding.device_set)
    del v
counts = gather(counts, pop.size)
print(json.dumps(dict(compile_s=compile_s, median_s=float(np.median(times)), times_s=times,
                      cpu_s=cpus, devices=devices, processes=jax.process_count(),
                      padded=pop.padded,
                      spikes=int(counts.sum()),
                      counts_sha=hashlib.sha256(counts.astype(np.int32).tobytes()).hexdigest())))
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS", "HHJAX_SHARD")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def w2(n, repeats, nproc, ndev):
    """One configuration of W2 in fresh processes; the slowest process's numbers."""
    port = _free_port()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with Watch() as watch:
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", W2_CHILD, str(i), str(nproc), str(ndev),
                                   str(port), str(n), str(repeats)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=_env())
                 for i in range(nproc)]
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=3600)
            if p.returncode:
                raise RuntimeError(f"W2 child failed: {err[-2000:]}")
            outs.append(json.loads(out.strip().splitlines()[-1]))
        wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_all = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime  # the children, start to end
    worst = max(outs, key=lambda o: o["median_s"])
    cpu_per_run = [sum(o["cpu_s"][k] for o in outs) for k in range(repeats)]
    cpu_median = sorted(cpu_per_run)[len(cpu_per_run) // 2]
    return {**worst, "processes": nproc, "devices_per_process": ndev, "wall_all_s": wall,
            "cpu_all_s": cpu_all, "cpu_s_per_run_all_processes": cpu_per_run,
            "rate": n * STEPS / worst["median_s"], "rate_per_cpu_s": n * STEPS / cpu_median,
            "same_counts_on_every_process": len({o["counts_sha"] for o in outs}) == 1,
            **watch.summary(cpu_all, wall)}


def _gpu_rate_and_bytes(path):
    """The H100 W2 rate with spikes counted and start/end state kept (the largest N in
    bench_gpu.json), and its measured peak bytes per neuron."""
    g = json.loads(Path(path).read_text())
    row = max(g["w2_counts"], key=lambda r: r["n"])
    return {"device": g["device"], "n": row["n"], "rate": row["pallas"]["neuron_steps_per_s"],
            "bytes_per_neuron": row["pallas"]["peak_bytes_after"] / row["n"], "source": Path(path).name}


def _cpu_kernel_rate(path):
    """The fused C++ kernel's best W2 rate (V every 10 steps) in bench_cpu_quiet.json, if any."""
    try:
        rows = json.loads(Path(path).read_text())["W2"]["kernel_v"]
    except (OSError, ValueError, KeyError):
        return None
    return max(r["neuron_steps_per_s"] for r in rows.values())


def on_paper(res, gpu_json, cpu_kernel_rate=None, cores_per_big_host=64):
    """1e9 neurons x 1 s (dt 0.025, 40,000 steps), spikes counted, start and end state kept,
    from measured per-device rates; memory per device from the H100's measured bytes per
    neuron (the same arrays on a CPU)."""
    n, steps = 1e9, 1000.0 / 0.025
    work = n * steps
    gpu = _gpu_rate_and_bytes(gpu_json)
    cores = res["machine"]["cores"]
    # Per core: neuron-steps per CPU-second (robust to other jobs on a shared machine; on a
    # quiet one it equals the wall rate per core). A host: that times its cores.
    best_label = max(res["w2"], key=lambda k: res["w2"][k]["rate_per_cpu_s"])
    per_core = res["w2"][best_label]["rate_per_cpu_s"]
    host_rate = per_core * cores
    rows = [("8 × H100, fused Pallas kernel", 8, gpu["rate"],
             f"{gpu['source']}: W2 at N = {gpu['n']:.0e}, {gpu['device']}")]
    rows.append((f"64 CPU hosts like this one ({cores} cores), sharded reference loop (what jax.distributed "
                 f"runs today)", 64, host_rate,
                 f"this JSON: {best_label}, N = {res['n']:.0e}, {per_core:.2e} per CPU-second × {cores} cores"))
    if cpu_kernel_rate:
        rows.append(("64 CPU hosts like this one, if each ran the fused C++ kernel on its shard (not "
                     "wired into the multi-process path)", 64, cpu_kernel_rate,
                     "bench_cpu_quiet.json: the kernel's best W2 rate on this machine"))
    rows.append((f"64 CPU hosts × {cores_per_big_host} cores, sharded reference loop (assumes linear "
                 f"scaling over cores)", 64, per_core * cores_per_big_host,
                 f"this JSON: {per_core:.2e} per CPU-second × {cores_per_big_host}"))
    out = []
    for name, devices, rate, source in rows:
        out.append({"setup": name, "devices": devices, "rate_per_device": rate, "rate_source": source,
                    "seconds": work / (devices * rate), "neurons_per_device": n / devices,
                    "gb_per_device": n / devices * gpu["bytes_per_neuron"] / 1e9})
    return {"work_neuron_steps": work, "bytes_per_neuron": gpu["bytes_per_neuron"],
            "bytes_per_neuron_source": f"{gpu['source']}: peak device memory / N at N = {gpu['n']:.0e}",
            "rows": out}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=float, default=1e6, help="W2 neurons (default 1e6)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", required=True, help="results JSON")
    ap.add_argument("--paper-only", action="store_true",
                    help="recompute the on-paper table of --out from its measured rates")
    ap.add_argument("--gpu-json", default=str(ROOT / "scripts" / "bench_gpu.json"))
    ap.add_argument("--cpu-json", default=str(ROOT / "scripts" / "bench_cpu_quiet.json"))
    args = ap.parse_args(argv)
    if args.paper_only:
        res = json.loads(Path(args.out).read_text())
    else:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=ROOT).stdout.strip()
        res = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                           "load_before": os.getloadavg()}, "commit": commit, "n": int(args.n),
               "steps": STEPS, "repeats": args.repeats, "w2": {}}
        for label, nproc, ndev in (("1 process × 1 device", 1, 1), ("1 process × 2 devices", 1, 2),
                                   ("2 processes × 1 device", 2, 1)):
            res["w2"][label] = w2(int(args.n), args.repeats, nproc, ndev)
            print(label, json.dumps(res["w2"][label]), flush=True)
        res["identical_spike_counts"] = len({v["counts_sha"] for v in res["w2"].values()}) == 1
        two_dev = res["w2"]["1 process × 2 devices"]["rate"]
        res["two_processes_over_two_devices"] = res["w2"]["2 processes × 1 device"]["rate"] / two_dev
        res["machine"]["load_after"] = os.getloadavg()
    res["on_paper"] = on_paper(res, args.gpu_json, _cpu_kernel_rate(args.cpu_json))
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(report(res))


def report(res) -> str:
    """The README tables from a results dict."""
    lines = [f"W2, N = {res['n']:.0e}, 100 ms at dt 0.025, V every 10 steps, spikes counted "
             f"(commit {res['commit']}, {res['machine']['cores']} cores):", "",
             "| setup | neuron-steps/s | median run | CPU s per run | neuron-steps per CPU-s | compile | load (mean) "
             "| others' CPU share |", "|---|---|---|---|---|---|---|---|"]
    for label, r in res["w2"].items():
        cpu = sorted(r["cpu_s_per_run_all_processes"])[len(r["cpu_s_per_run_all_processes"]) // 2]
        lines.append(f"| {label} | {r['rate']:.2e} | {r['median_s']:.1f} s | {cpu:.1f} | {r['rate_per_cpu_s']:.2e} | "
                     f"{r['compile_s']:.1f} s | "
                     f"{r['load_1min']['mean']:.1f} | {100 * r.get('others_cpu_share', float('nan')):.0f} % |")
    lines += ["", f"Identical spike counts: {res['identical_spike_counts']}; 2 processes reach "
              f"{100 * res['two_processes_over_two_devices']:.0f} % of 1 process × 2 devices.", ""]
    p = res["on_paper"]
    lines += [f"1e9 neurons × 1 s ({p['work_neuron_steps']:.0e} neuron-steps), {p['bytes_per_neuron']:.0f} B "
              f"per neuron ({p['bytes_per_neuron_source']}):", "",
              "| setup | rate per device (neuron-steps/s) | from | time | neurons per device | memory per device |",
              "|---|---|---|---|---|---|"]
    for r in p["rows"]:
        t = r["seconds"]
        when = f"{t:.0f} s" if t < 600 else f"{t / 3600:.1f} h"
        lines.append(f"| {r['setup']} | {r['rate_per_device']:.1e} | {r['rate_source']} | {when} | "
                     f"{r['neurons_per_device']:.2e} | {r['gb_per_device']:.1f} GB |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
