#!/usr/bin/env python
"""hhjax benchmark (issue #5): workloads W1-W4 on hhjax, the installed peers and a C ceiling.

    python scripts/bench.py               # full: W2 at N = 1e3, 1e4, 1e5, all installed peers
    python scripts/bench.py --quick       # N = 1e3, 1e4; 3 repeats; W3 batch of 100
    python scripts/bench.py --no-peers    # hhjax (+ C ceiling) only

Classic HH (``hhjax.presets.NEURON`` = NEURON ``hh``), 6.3 °C, dt 0.025 ms, 100 ms = 4000 steps.
hhjax runs its one path: ``hhjax.simulate`` with the default ``exp_euler``, float32.

* W1 one neuron, 10 µA/cm² for 10-90 ms; spike times vs the scipy Radau reference
  (tests/reference.py, rtol 1e-10).
* W2 N uncoupled neurons, I = linspace(2, 20, N) µA/cm², V recorded every 10 steps, spikes
  counted; neuron-steps/s = N x 4000 / median wall time after compilation.
* W3 jit(value_and_grad) of mean((V - V_target)^2) (W1 protocol, target at the defaults) w.r.t.
  (g_na, g_k, g_l) at 1.1 x the defaults: one neuron, and a batch of parameter sets; for one
  neuron also in forward mode, with hhjax.value_and_grad_forward (one unbatched jvp per
  parameter) and with jax.jacfwd (the three tangents batched).
* W4 fresh process: import, first simulate (W1), first gradient (jax.value_and_grad, and
  hhjax.value_and_grad_forward in another process); JAX's persistent
  compilation cache off (cold), and warm (``hhjax.enable_compilation_cache``).
* Peak memory of W2 (N = 1e4): VmHWM increase of one call in a fresh process, vs the output size.
* C ceiling: scripts/cpu_ceiling.c (hand-vectorised loop of the same scheme) if gcc exists.

Peers run in their own venvs via scripts/peers/run_*.py (default /tmp/venv-<peer>/bin/python,
override with PEERS_VENV_<PEER>); a missing one is skipped with a note. Writes
scripts/bench_results.json, scripts/bench_results.md and docs/figures/bench.png.
"""

from __future__ import annotations

import argparse, json, os, platform, shutil, statistics, subprocess, sys, tempfile, textwrap, time

from bench_figure import figure  # scripts/bench_figure.py
from bench_report import markdown, spike_error, targets  # scripts/bench_report.py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))  # reference.py (scipy Radau)
STEPS, DT, DURATION = 4000, 0.025, 100.0


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def loadavg():
    return [round(x, 2) for x in os.getloadavg()]


def machine():
    import jax, jaxlib
    from hhjax.simulation.devices import cpu_cores
    info = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, val = line.partition(":")
            info.setdefault(key.strip(), val.strip())
    flags = f" {info.get('flags', '')} "
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpu": info.get("model name"), "cores": cpu_cores(),
            "isa": [x for x in ("avx512f", "avx2", "fma") if f" {x} " in flags],
            "ram_gb": round(mem / 2**30, 1), "python": platform.python_version(),
            "jax": jax.__version__, "jaxlib": jaxlib.__version__, "backend": jax.default_backend(),
            "platform": platform.platform()}


COMPILE_S = [0.0]  # trace + lower + XLA compile seconds, from JAX's own monitoring events


def _on_event(name, secs, **_):
    if name.startswith("/jax/core/compile/"):
        COMPILE_S[0] += secs


def timed(fn, repeats):
    """One call (compile + run), then ``repeats`` timed calls with block_until_ready."""
    import jax
    COMPILE_S[0] = 0.0
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    first, compile_s = time.perf_counter() - t0, COMPILE_S[0]
    walls, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        jax.block_until_ready(fn())
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return out, {"first_s": first, "compile_s": compile_s, "run_s": statistics.median(walls),
                 "run_s_all": walls, "cpu_s": statistics.median(cpus), "repeats": repeats}


def crossings(t, v, thr=0.0):
    import numpy as np
    t, v = np.asarray(t, float), np.asarray(v, float)
    k = np.nonzero((v[:-1] < thr) & (v[1:] >= thr))[0]
    return (t[k] + (thr - v[k]) / (v[k + 1] - v[k]) * (t[k + 1] - t[k])).tolist()


# ----------------------------------------------------------------------------- hhjax workloads
def w1(repeats):
    import jax
    import hhjax, reference
    _, radau = reference.reference_step_response(reference.neuron_params(), 10.0, 10.0, 90.0, DURATION)
    stim = hhjax.stimulus.step(10.0, 10.0, 90.0)
    sim = lambda: hhjax.simulate(hhjax.presets.NEURON, stim, duration=DURATION, dt=DT)
    tr, out = timed(sim, repeats)
    out["spike_times_ms"] = crossings(tr.t, tr.v)
    out["spike_error_ms"] = spike_error(out["spike_times_ms"], radau)
    out["radau_spike_times_ms"] = radau.tolist()
    with jax.enable_x64(True):
        tr64 = sim()
        out["float64_spike_error_ms"] = spike_error(crossings(tr64.t, tr64.v), radau)
    return out


def w2(sizes, repeats):
    import jax.numpy as jnp, numpy as np
    import hhjax
    out, counts = {}, {}
    for n in sizes:
        reps = repeats if n < 100_000 else max(3, repeats // 2 + 1)
        log(f"hhjax W2 N={n} ({reps} repeats)")
        stim = hhjax.stimulus.constant(jnp.linspace(2.0, 20.0, n))
        tr, t = timed(lambda: hhjax.simulate(hhjax.presets.NEURON, stim, duration=DURATION, dt=DT,
                                             record_every=10), reps)
        counts[n] = np.asarray(tr.spike_count)
        t.update(neuron_steps_per_s=n * STEPS / t["run_s"], neuron_steps_per_cpu_s=n * STEPS / t["cpu_s"],
                 spikes_total=int(counts[n].sum()), v_shape=list(tr.v.shape), dtype=str(tr.v.dtype),
                 loadavg=loadavg())
        out[str(n)] = t
        del tr
    return out, counts


W2_ALL_CORES_CODE = textwrap.dedent("""
    import json, os, sys
    import hhjax
    devices = hhjax.use_all_cores()
    import jax, numpy as np
    sys.path.insert(0, os.path.join(os.getcwd(), "scripts"))
    import bench
    jax.monitoring.register_event_duration_secs_listener(bench._on_event)
    out, counts = bench.w2(json.loads(sys.argv[1]), int(sys.argv[2]))
    np.savez(sys.argv[3], **{str(n): c for n, c in counts.items()})
    print(json.dumps(dict(out, devices=devices)))
""")


def w2_all_cores(sizes, repeats, counts):
    """W2 again in a fresh process after ``hhjax.use_all_cores()`` (one JAX CPU device per
    core, the batch split across them); spike counts compared with the one-device run."""
    import numpy as np
    log("hhjax W2 with use_all_cores (fresh process)")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "counts.npz")
        out = subproc_json(["-c", W2_ALL_CORES_CODE, json.dumps(sizes), str(repeats), path])
        if "error" not in out:
            with np.load(path) as got:
                for n in sizes:
                    out[str(n)]["neurons_count_differs_from_one_device"] = int(np.sum(got[str(n)] != counts[n]))
    return out


def w3(batch, repeats):
    import dataclasses, jax, jax.numpy as jnp, numpy as np
    import hhjax
    p0, stim = hhjax.presets.NEURON, hhjax.stimulus.step(10.0, 10.0, 90.0)
    target = hhjax.simulate(p0, stim, duration=DURATION, dt=DT).v

    def loss(g):
        p = dataclasses.replace(p0, g_na=g[..., 0], g_k=g[..., 1], g_l=g[..., 2])
        v = hhjax.simulate(p, stim, duration=DURATION, dt=DT).v
        return jnp.sum(jnp.mean((v - target) ** 2, axis=-1))

    g1 = 1.1 * jnp.array([p0.g_na, p0.g_k, p0.g_l], jnp.float32)
    gb = g1 * jax.random.uniform(jax.random.PRNGKey(0), (batch, 3), minval=0.8, maxval=1.2)
    def jacfwd(g):  # batched forward mode: the three tangents as one vmapped simulation
        return loss(g), jax.jacfwd(loss)(g)

    out = {}
    for label, g, fn in (("single", g1, jax.value_and_grad(loss)),
                         ("single_forward", g1, hhjax.value_and_grad_forward(loss)),
                         ("single_jacfwd", g1, jacfwd), (f"batch{batch}", gb, jax.value_and_grad(loss))):
        log(f"hhjax W3 {label}")
        f = jax.jit(fn)
        (val, grad), t = timed(lambda: f(g), repeats)
        t.update(loss=float(val), grad=np.asarray(grad).tolist() if g.ndim == 1 else None,
                 all_finite=bool(np.isfinite(np.asarray(grad)).all()), sets=int(g.size // 3))
        out[label] = t
    return out


W4_CODE = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    import jax, jax.numpy as jnp
    if sys.argv[1] == "cold":
        jax.config.update("jax_enable_compilation_cache", False)
    jnp.zeros(1).block_until_ready()
    t1 = time.perf_counter()
    import dataclasses, hhjax
    t2 = time.perf_counter()
    if sys.argv[1] != "cold":
        hhjax.enable_compilation_cache(sys.argv[2], min_compile_time_s=0.0)
    p0, stim = hhjax.presets.NEURON, hhjax.stimulus.step(10.0, 10.0, 90.0)
    sim = lambda p: hhjax.simulate(p, stim, duration=100.0, dt=0.025).v
    t3 = time.perf_counter(); target = sim(p0).block_until_ready(); t4 = time.perf_counter()
    def loss(g):
        return jnp.mean((sim(dataclasses.replace(p0, g_na=g[0], g_k=g[1], g_l=g[2])) - target) ** 2)
    g0 = 1.1 * jnp.array([120.0, 36.0, 0.3])
    grad = hhjax.value_and_grad_forward if sys.argv[3] == "forward" else jax.value_and_grad
    t5 = time.perf_counter(); jax.block_until_ready(jax.jit(grad(loss))(g0))
    t6 = time.perf_counter()
    print(json.dumps(dict(import_jax_s=t1 - t0, import_hhjax_s=t2 - t1, first_simulate_s=t4 - t3,
                          first_grad_s=t6 - t5)))
""")


def subproc_json(args, env=None, timeout=900):
    env = {k: v for k, v in (env or os.environ).items() if not k.startswith("JAX_COMPILATION_CACHE")}
    r = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT)
    if r.returncode:
        return {"error": r.stderr[-1500:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def w4(runs):
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        for grad in ("grad", "forward"):  # jax.value_and_grad, hhjax.value_and_grad_forward
            subproc_json(["-c", W4_CODE, "warm", cache, grad])  # populate the cache (not reported)
            for mode in ("cold", "warm"):
                log(f"hhjax W4 {mode} {grad} x{runs}")
                rs = [subproc_json(["-c", W4_CODE, mode, cache, grad]) for _ in range(runs)]
                ok = [r for r in rs if "error" not in r]
                key = mode if grad == "grad" else f"{mode}_forward"
                out[key] = {k: statistics.median(r[k] for r in ok) for k in ok[0]} if ok else rs[0]
                out[key]["runs"] = rs
    return out


MEM_CODE = textwrap.dedent("""
    import gc, json, sys
    import jax, jax.numpy as jnp, hhjax
    def status(key):
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key))
    n = int(sys.argv[1])
    stim = hhjax.stimulus.constant(jnp.linspace(2.0, 20.0, n))
    run = lambda: jax.block_until_ready(hhjax.simulate(hhjax.presets.NEURON, stim, duration=100.0,
                                                       dt=0.025, record_every=10))
    tr = run(); del tr; gc.collect()          # compile and warm the allocator first
    base = status("VmRSS:")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                          # reset the peak-RSS counter VmHWM to VmRSS
    tr = run()
    peak = status("VmHWM:")
    leaves = jax.tree_util.tree_leaves(tr)
    print(json.dumps(dict(n=n, rss_before=base, peak_increase_bytes=peak - base,
                          v_bytes=tr.v.nbytes, trace_bytes=sum(x.nbytes for x in leaves))))
""")


def memory(n):
    log(f"hhjax W2 peak memory N={n}")
    r = subproc_json(["-c", MEM_CODE, str(n)])
    if "error" not in r:
        r["ratio_to_v"] = r["peak_increase_bytes"] / r["v_bytes"]
        r["ratio_to_trace"] = r["peak_increase_bytes"] / r["trace_bytes"]
    return r


def ceiling(sizes, repeats, counts, cores):
    import numpy as np
    gcc = shutil.which("gcc")
    if not gcc:
        return {"skipped": True, "note": "gcc not found"}
    out = {}
    with tempfile.TemporaryDirectory() as d:
        exe = os.path.join(d, "cpu_ceiling")
        cmd = [gcc, "-O3", "-mavx2", "-mfma", "-ffast-math", "-fopenmp",
               os.path.join(HERE, "cpu_ceiling.c"), "-o", exe, "-lm"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            return {"skipped": True, "note": "gcc failed: " + r.stderr[-500:]}
        out["compile_command"] = " ".join(cmd[:6] + ["scripts/cpu_ceiling.c", "-lm"])
        out.update(ceiling_runs(exe, d, sizes, repeats, cores, lambda c, n: {
            "spikes_total_minus_hhjax": int(c.sum() - counts[n].sum()),
            "neurons_count_differs": int(np.sum(c != counts[n]))}))
    return out


def ceiling_runs(exe, d, sizes, repeats, cores, compare):
    """The compiled C ceiling ``exe`` at each N (scratch files in ``d``): its JSON result,
    the load average, and ``compare(its spike counts, N)`` (a dict of checks)."""
    import numpy as np
    out = {}
    for n in sizes:
        log(f"C ceiling N={n}")
        cpath = os.path.join(d, f"counts{n}.bin")
        r = subprocess.run([exe, str(n), str(repeats), cpath], capture_output=True, text=True,
                           env=dict(os.environ, OMP_NUM_THREADS=str(cores)))
        out[str(n)] = dict(json.loads(r.stdout), loadavg=loadavg(), **compare(np.fromfile(cpath, np.int32), n))
    return out


# ----------------------------------------------------------------------------- peers
PEERS = {"neuron": "run_neuron.py", "brian2": "run_brian2.py", "jaxley": "run_jaxley.py"}


def peer_cases(sizes, repeats):
    """(label, peer, workload, n, repeats, extra args). Slow cases get fewer repeats."""
    r10 = min(3, repeats)
    cases = [("neuron", "neuron", "W1", 1, repeats, ["--advance", "psolve"])]
    cases += [("neuron", "neuron", "W2", n, repeats if n < 10_000 else r10, ["--advance", "psolve"])
              for n in sizes if n <= 10_000]
    for tgt in ("cpp_standalone", "cython"):
        lab, mx = "brian2-" + tgt, 100_000 if tgt == "cpp_standalone" else 10_000
        cases.append((lab, "brian2", "W1", 1, repeats, ["--target", tgt]))
        cases += [(lab, "brian2", "W2", n, repeats if n < 10_000 else (r10 if n < 100_000 else 1),
                   ["--target", tgt]) for n in sizes if n <= mx]
    f32 = ["--float32"]
    cases.append(("jaxley-f32", "jaxley", "W1", 1, repeats, f32))
    cases += [("jaxley-f32", "jaxley", "W2", n, repeats if n < 10_000 else (r10 if n < 100_000 else 1), f32)
              for n in sizes]
    cases += [("jaxley-f32", "jaxley", "W3", 1, repeats, f32), ("jaxley-f64", "jaxley", "W3", 1, repeats, []),
              ("jaxley-f32", "jaxley", "W4", 1, 0, f32)]
    return cases


def run_peer(peer, workload, n, repeats, extra, timeout):
    venv = os.environ.get(f"PEERS_VENV_{peer.upper()}", f"/tmp/venv-{peer}")
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        return {"skipped": True, "note": f"{peer}: no interpreter at {py}"}
    cmd = [py, os.path.join(HERE, "peers", PEERS[peer]), "--workload", workload, "--n", str(n),
           "--repeats", str(repeats), *extra]
    log("peer:", peer, " ".join(cmd[2:]))
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"skipped": True, "note": f"{peer} {workload} N={n}: timed out after {timeout} s"}
    try:
        obj = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"skipped": True, "note": f"{peer} {workload}: no JSON (exit {r.returncode}): "
                                         f"{r.stderr.strip()[-300:]}"}
    obj["command"] = " ".join([os.path.relpath(c, ROOT) if c.startswith(HERE) else c for c in cmd])
    return obj


def peers(sizes, repeats, timeout):
    out, missing = {}, {}
    for label, peer, wl, n, reps, extra in peer_cases(sizes, repeats):
        if peer in missing:
            continue
        res = run_peer(peer, wl, n, reps, extra, timeout)
        if res.get("skipped") and any(x in res.get("note", "") for x in ("no interpreter", "not installed")):
            missing[peer] = res["note"]
            continue
        out[f"{label}:{wl}:{n}"] = res
    return out, missing


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 1e3, 1e4; 3 repeats; W3 batch of 100")
    ap.add_argument("--no-peers", action="store_true", help="skip NEURON / Brian2 / Jaxley")
    ap.add_argument("--repeats", type=int, help="timed repeats (default 5, quick 3)")
    ap.add_argument("--peer-timeout", type=float, default=1200.0)
    ap.add_argument("--out", default=os.path.join(HERE, "bench_results.json"))
    args = ap.parse_args()
    repeats = args.repeats or (3 if args.quick else 5)
    sizes = [1000, 10_000] if args.quick else [1000, 10_000, 100_000]
    t_start = time.perf_counter()
    res = {"command": "python " + " ".join(["scripts/bench.py"] + sys.argv[1:]),
           "started": time.strftime("%Y-%m-%d %H:%M:%S"), "loadavg_start": loadavg(), "repeats": repeats,
           "machine": machine(),
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                    cwd=ROOT).stdout.strip()}
    log("machine:", res["machine"])
    import jax
    jax.monitoring.register_event_duration_secs_listener(_on_event)
    res["W1"] = w1(repeats)
    res["W2"], counts = w2(sizes, repeats)
    res["W2_all_cores"] = w2_all_cores(sizes, repeats, counts)
    res["ceiling"] = ceiling(sizes, repeats, counts, res["machine"]["cores"])
    res["memory"] = memory(10_000)
    res["W3"] = w3(100 if args.quick else 1000, repeats)
    res["W4"] = w4(3)
    if args.no_peers:
        res["peers_missing"] = {"all": "peers not run (--no-peers)"}
    else:
        res["peers"], res["peers_missing"] = peers(sizes, repeats, args.peer_timeout)
    res["loadavg_end"], res["elapsed_s"] = loadavg(), time.perf_counter() - t_start
    res["targets"] = targets(res)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    md = markdown(res)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
        f.write(md)
    print(md)
    if args.out == ap.get_default("out"):  # the README's figure only from the README's run
        print(figure(res, os.path.join(ROOT, "docs", "figures", "bench.png")))


if __name__ == "__main__":
    main()
