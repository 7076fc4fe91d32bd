#!/usr/bin/env python
"""CPU benchmark of the fused C++ kernel (issue 19) beside the reference XLA loop, the C
ceiling (scripts/cpu_ceiling.c) and Jaxley, in one run.

    python scripts/bench_cpu.py                 # N = 1e3, 1e4, 1e5, 1e6
    python scripts/bench_cpu.py --sizes 1000,10000 --repeats 3 --no-peers

Workloads (classic HH = ``hhjax.presets.NEURON``, 6.3 °C, exp_euler, float32, dt 0.025 ms,
100 ms = 4000 steps, I = linspace(2, 20, N) µA/cm², spikes counted at every step):

* W2: V recorded every 10 steps (``record=("v",)``, the ceiling's output), and also with
  every state variable recorded (``simulate``'s default); neuron-steps/s = N x 4000 / median.
  The reference loop is ``hhjax.simulate`` with ``HHJAX_CPU_KERNEL=0``.
* V every step: ``record_every=1, record=("v",)`` at N = 1e3, 1e4, beside Jaxley's W2
  (jit(vmap) of one compartment; Jaxley records V at every step).
* First call: a fresh process, no persistent compilation cache: import, then the first
  W2 ``simulate`` at N = 1e4 (compile + run).
* Head to head: W2 at N = 1e4, the kernel and the C ceiling alternately (9 rounds), so
  that both see the same load on a shared machine.
* Peak memory: VmHWM increase of one W2 call (N = 1e5, all variables recorded) in a fresh
  process, against the bytes of the returned trace.

Brian2 and NEURON are not run (scripts/bench.py covers them). Writes scripts/bench_cpu.json
and prints the README table.
"""

from __future__ import annotations

import argparse, json, os, statistics, subprocess, sys, tempfile, textwrap, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]  # this checkout's hhjax, and bench.py beside this file
from bench import _on_event, ceiling_runs, loadavg, log, machine, run_peer, subproc_json, timed  # noqa: E402

STEPS, DT, DURATION = 4000, 0.025, 100.0


def vector_width(flags):
    return 512 if "avx512f" in flags else 256 if "avx2" in flags else 128


def hhjax_w2(n, repeats, *, kernel, record_every=10, record=("v",)):
    import jax.numpy as jnp, numpy as np
    import hhjax
    from hhjax.simulation import last_backend
    os.environ["HHJAX_CPU_KERNEL"] = "1" if kernel else "0"
    stim = hhjax.stimulus.constant(jnp.linspace(2.0, 20.0, n))
    run = lambda: hhjax.simulate(hhjax.presets.NEURON, stim, duration=DURATION, dt=DT,
                                 record_every=record_every, record=record)
    tr, t = timed(run, repeats)
    t.update(backend=last_backend(), neuron_steps_per_s=n * STEPS / t["run_s"],
             neuron_steps_per_cpu_s=n * STEPS / t["cpu_s"], spikes_total=int(np.sum(tr.spike_count)),
             record=list(record) if record is not None else "all", record_every=record_every,
             v_shape=list(tr.v.shape), loadavg=loadavg())
    counts = np.asarray(tr.spike_count)
    os.environ.pop("HHJAX_CPU_KERNEL", None)
    return t, counts


def build_ceiling(d):
    exe = os.path.join(d, "cpu_ceiling")
    cmd = ["gcc", "-O3", "-march=native", "-ffast-math", "-fopenmp",
           os.path.join(HERE, "cpu_ceiling.c"), "-o", exe, "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return (None if r.returncode else exe), " ".join(cmd[:5] + ["scripts/cpu_ceiling.c", "-lm"]), r.stderr


def head_to_head(n, rounds, cores):
    """Kernel and C ceiling at W2 alternately, one timed run each per round, so that both
    see the same load from other jobs on a shared machine; medians over the rounds."""
    import jax, jax.numpy as jnp
    import hhjax
    stim = hhjax.stimulus.constant(jnp.linspace(2.0, 20.0, n))
    run = lambda: jax.block_until_ready(hhjax.simulate(hhjax.presets.NEURON, stim, duration=DURATION,
                                                       dt=DT, record_every=10, record=("v",)))
    run()
    kern, ceil, loads = [], [], []
    with tempfile.TemporaryDirectory() as d:
        exe, _, err = build_ceiling(d)
        if exe is None:
            return {"skipped": True, "note": "gcc failed: " + err[-500:]}
        for _ in range(rounds):
            t0 = time.perf_counter(); run(); kern.append(time.perf_counter() - t0)
            r = subprocess.run([exe, str(n), "1"], capture_output=True, text=True,
                               env=dict(os.environ, OMP_NUM_THREADS=str(cores)))
            ceil.append(json.loads(r.stdout)["run_s_median"])
            loads.append(loadavg()[0])
    k, c = statistics.median(kern), statistics.median(ceil)
    return {"n": n, "rounds": rounds, "kernel_run_s": kern, "ceiling_run_s": ceil, "loadavg_1min": loads,
            "kernel_neuron_steps_per_s": n * STEPS / k, "ceiling_neuron_steps_per_s": n * STEPS / c,
            "kernel_over_ceiling": c / k}


def ceiling(sizes, repeats, counts, cores):
    import numpy as np
    out = {}
    with tempfile.TemporaryDirectory() as d:
        exe, out["compile_command"], err = build_ceiling(d)
        if exe is None:
            return {"skipped": True, "note": "gcc failed: " + err[-500:]}
        out.update(ceiling_runs(exe, d, sizes, repeats, cores, lambda c, n: {
            "neurons_count_differs_from_kernel": int(np.sum(c != counts[n]))}))
    return out


FIRST_CODE = textwrap.dedent("""
    import json, time
    t0 = time.perf_counter()
    import jax
    jax.config.update("jax_enable_compilation_cache", False)
    import jax.numpy as jnp, hhjax
    from hhjax.simulation import cpu_kernel, last_backend
    t1 = time.perf_counter()
    stim = hhjax.stimulus.constant(jnp.linspace(2.0, 20.0, 10_000))
    run = lambda: jax.block_until_ready(hhjax.simulate(hhjax.presets.NEURON, stim, duration=100.0,
                                                       dt=0.025, record_every=10))
    t2 = time.perf_counter(); run(); t3 = time.perf_counter(); run(); t4 = time.perf_counter()
    print(json.dumps(dict(import_s=t1 - t0, first_call_s=t3 - t2, second_call_s=t4 - t3,
                          backend=last_backend(), isa=cpu_kernel.isa())))
""")

MEM_CODE = textwrap.dedent("""
    import gc, json, sys
    import jax, jax.numpy as jnp, hhjax
    from hhjax.simulation import last_backend
    def status(key):
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key))
    n, every, record = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
    stim = hhjax.stimulus.constant(jnp.linspace(2.0, 20.0, n))
    run = lambda: jax.block_until_ready(hhjax.simulate(hhjax.presets.NEURON, stim, duration=100.0,
                                                       dt=0.025, record_every=every, record=record))
    tr = run(); del tr; gc.collect()          # compile and warm the allocator first
    base = status("VmRSS:")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                          # reset the peak-RSS counter VmHWM to VmRSS
    tr = run()
    peak = status("VmHWM:")
    trace_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(tr))
    print(json.dumps(dict(n=n, record_every=every, record=record, backend=last_backend(),
                          peak_increase_bytes=peak - base, trace_bytes=trace_bytes,
                          ratio_to_trace=(peak - base) / trace_bytes)))
""")


def jaxley(sizes, repeats, timeout):
    out = {}
    for n in sizes:
        reps = repeats if n < 10_000 else min(3, repeats)
        res = run_peer("jaxley", "W2", n, reps, ["--float32"], timeout)
        if res.get("skipped"):
            return {"skipped": True, "note": res.get("note")}
        out[str(n)] = {k: res.get(k) for k in ("version", "run_s_median", "neuron_steps_per_s",
                                               "compile_s", "note", "command")}
    return out


def table(res):
    sizes = res["sizes"]
    head = "| | " + " | ".join(f"N = {n:.0e}".replace("e+0", "e") for n in sizes) + " |"
    lines = [head, "|---|" + "---|" * len(sizes)]

    def row(label, get):
        vals = []
        for n in sizes:
            x = get(str(n))
            vals.append("–" if x is None else f"{x:.2g}")
        lines.append(f"| {label} | " + " | ".join(vals) + " |")

    w2 = res["W2"]
    row("fused kernel, W2 (V every 10 steps)", lambda n: w2["kernel_v"].get(n, {}).get("neuron_steps_per_s"))
    row("fused kernel, W2 (V, m, h, n every 10 steps)", lambda n: w2["kernel_all"].get(n, {}).get("neuron_steps_per_s"))
    row("reference XLA loop, W2 (V every 10 steps)", lambda n: w2["reference_v"].get(n, {}).get("neuron_steps_per_s"))
    row("C ceiling (cpu_ceiling.c, -march=native)", lambda n: res["ceiling"].get(n, {}).get("neuron_steps_per_s"))
    row("kernel / ceiling", lambda n: _ratio(w2["kernel_v"].get(n), res["ceiling"].get(n)))
    ve = res["V_every_step"]
    row("fused kernel, V every step", lambda n: ve["kernel"].get(n, {}).get("neuron_steps_per_s"))
    row("reference XLA loop, V every step", lambda n: ve["reference"].get(n, {}).get("neuron_steps_per_s"))
    row("Jaxley (float32, V every step)", lambda n: ve["jaxley"].get(n, {}).get("neuron_steps_per_s"))
    row("kernel / Jaxley", lambda n: _ratio(ve["kernel"].get(n), ve["jaxley"].get(n)))
    return "\n".join(lines)


def _ratio(a, b):
    if not a or not b or not a.get("neuron_steps_per_s") or not b.get("neuron_steps_per_s"):
        return None
    return a["neuron_steps_per_s"] / b["neuron_steps_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "bench_cpu.json"))
    args = ap.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    import jax
    from hhjax.simulation import cpu_kernel
    if not cpu_kernel.available():
        sys.exit(f"bench_cpu: {cpu_kernel.unavailable_reason()}")
    jax.monitoring.register_event_duration_secs_listener(_on_event)
    m = machine()
    m.update(vector_width_bits=vector_width(m["isa"]), kernel_isa=cpu_kernel.isa())
    res = {"command": "python " + " ".join(["scripts/bench_cpu.py"] + sys.argv[1:]), "sizes": sizes,
           "started": time.strftime("%Y-%m-%d %H:%M:%S"), "loadavg_start": loadavg(),
           "machine": m, "repeats": args.repeats,
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True, cwd=ROOT).stdout.strip()}
    log("machine:", m)
    w2 = {"kernel_v": {}, "kernel_all": {}, "reference_v": {}}
    counts = {}
    for n in sizes:
        reps = args.repeats if n < 1_000_000 else 3
        log(f"W2 N={n}: kernel")
        w2["kernel_v"][str(n)], counts[n] = hhjax_w2(n, reps, kernel=True)
        if n < 1_000_000:  # all four variables at 1e6 are 6.4 GB a trace (two alive in timed)
            w2["kernel_all"][str(n)], _ = hhjax_w2(n, reps, kernel=True, record=None)
        log(f"W2 N={n}: reference loop")
        ref_reps = args.repeats if n <= 10_000 else (3 if n < 1_000_000 else 1)
        w2["reference_v"][str(n)], ref_counts = hhjax_w2(n, ref_reps, kernel=False)
        w2["reference_v"][str(n)]["neurons_count_differs_from_kernel"] = int((ref_counts != counts[n]).sum())
    res["W2"] = w2
    res["ceiling"] = ceiling(sizes, args.repeats, counts, m["cores"])
    if 10_000 in sizes:
        log("W2 N=1e4: kernel and ceiling alternately")
        res["head_to_head"] = head_to_head(10_000, 9, m["cores"])
    small = [n for n in sizes if n <= 10_000]
    ve = {"kernel": {}, "reference": {}}
    for n in small:
        log(f"V every step N={n}")
        ve["kernel"][str(n)], _ = hhjax_w2(n, args.repeats, kernel=True, record_every=1)
        ve["reference"][str(n)], _ = hhjax_w2(n, min(3, args.repeats), kernel=False, record_every=1)
    ve["jaxley"] = {"skipped": True, "note": "--no-peers"} if args.no_peers else jaxley(small, args.repeats, 1800)
    res["V_every_step"] = ve
    log("first call (fresh processes)")
    firsts = [subproc_json(["-c", FIRST_CODE]) for _ in range(3)]
    ok = [f for f in firsts if "error" not in f]
    res["first_call"] = dict({k: statistics.median(f[k] for f in ok) for k in
                              ("import_s", "first_call_s", "second_call_s")} if ok else {},
                             runs=firsts)
    log("peak memory (fresh processes)")
    res["memory"] = [subproc_json(["-c", MEM_CODE, str(n), str(every), json.dumps(rec)])
                     for n, every, rec in ((100_000, 10, None), (100_000, 10, ["v"]), (10_000, 1, ["v"]))]
    k, c = w2["kernel_v"].get("10000"), res["ceiling"].get("10000")
    jx = ve["jaxley"].get("10000") if isinstance(ve["jaxley"], dict) else None
    res["targets"] = {
        "W2_1e4_kernel_over_ceiling": _ratio(k, c), "W2_1e4_target": 0.8,
        "W2_1e4_kernel_over_ceiling_alternating": res.get("head_to_head", {}).get("kernel_over_ceiling"),
        "V_every_step_1e4_kernel_over_jaxley": _ratio(ve["kernel"].get("10000"), jx), "V_every_step_target": 5.0,
        "first_call_s": res["first_call"].get("first_call_s"), "first_call_target_s": 1.0,
        "peak_over_trace": [r.get("ratio_to_trace") for r in res["memory"]], "peak_target": 1.25,
    }
    res["loadavg_end"] = loadavg()
    res["table"] = table(res)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f, indent=1)
    os.replace(tmp, args.out)
    print(res["table"])
    print(json.dumps(res["targets"], indent=1))


if __name__ == "__main__":
    main()
