"""Fitting benchmarks (issue 3 targets). Writes scripts/bench_fit.json and a Markdown table.

    python scripts/bench_fit.py            # full: 100 recovery trials, 1000-target batch, 10 s trace
    python scripts/bench_fit.py --quick    # small sizes

Targets: the NEURON preset with g_na, g_k, g_l, e_l each moved by up to ±30 %, 100 ms under
a 10 µA/cm² step (10–90 ms), 0.5 mV Gaussian noise; starts drawn within ±50 % of the truth.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

NAMES = ("g_na", "g_k", "g_l", "e_l")
DT, DURATION = 0.025, 100.0
# Wide enough for truths at ±30 % and starts at ±50 % around them.
BOUNDS = {"g_na": (20.0, 400.0), "g_k": (5.0, 150.0), "g_l": (0.03, 1.5), "e_l": (-115.0, -10.0)}


def _problem(n, seed):
    import jax
    import jax.numpy as jnp

    import hhjax

    rng = np.random.default_rng(seed)
    base = hhjax.presets.NEURON
    truth = {k: getattr(base, k) * (1 + rng.uniform(-0.3, 0.3, n)) for k in NAMES}
    params = dataclasses.replace(base, **{k: jnp.asarray(v, jnp.float32) for k, v in truth.items()})
    stim = hhjax.stimulus.step(10.0, 10.0, 90.0)
    v = hhjax.simulate(params, stim, duration=DURATION, dt=DT).v
    v = v + 0.5 * jax.random.normal(jax.random.PRNGKey(seed), v.shape)
    return truth, stim, v, rng


def recovery(n_trials, n_starts, use_direct, seed=0):
    import hhjax

    truth, stim, v, rng = _problem(n_trials, seed)
    starts = {k: truth[k][:, None] * (1 + rng.uniform(-0.5, 0.5, (n_trials, n_starts))) for k in NAMES}
    t0 = time.perf_counter()
    # With use_direct, the direct estimate replaces the first of the random starts.
    res = hhjax.fit(v, stim, dt=DT, trainable=NAMES, starts=starts, direct=use_direct, progress=False,
                    bounds=BOUNDS)
    wall = time.perf_counter() - t0
    err = np.stack([np.abs(np.asarray(getattr(res.params, k)) / truth[k] - 1) for k in NAMES], -1)
    ok = np.all(err < 0.01, axis=-1)
    # What an ideal (unbiased, Cramér–Rao-efficient) estimator would score: per trial, the
    # Gaussian probability that every parameter lands within 1 % given its Laplace standard
    # error (which tests/test_fit.py checks against the spread over noise realisations).
    from math import erf, sqrt

    z = np.stack([0.01 * np.abs(truth[k]) / np.maximum(np.asarray(res.stderr[k]), 1e-30) for k in NAMES], -1)
    p_ideal = np.prod(np.vectorize(lambda x: erf(x / sqrt(2)))(z), axis=-1)
    return {"trials": n_trials, "starts": n_starts, "direct_estimate": use_direct,
            "within_1pct": int(ok.sum()), "ideal_estimator_expected_within_1pct": float(p_ideal.sum()),
            "median_max_rel_err": float(np.median(err.max(-1))),
            "worst_max_rel_err": float(err.max()), "wall_s": wall, "targets_per_s": n_trials / wall}


def adam_baseline(n_trials, steps=300, lr=0.02, seed=0):
    """Plain Adam on voltage MSE in log-parameter space, one target at a time (the recipe of
    Jaxley's tutorials, written here with hhjax's simulator)."""
    import jax
    import jax.numpy as jnp
    import optax

    import hhjax

    truth, stim, v, rng = _problem(n_trials, seed)
    start = {k: truth[k] * (1 + rng.uniform(-0.5, 0.5, n_trials)) for k in NAMES}
    base = hhjax.presets.NEURON
    sign = {k: (-1.0 if getattr(base, k) < 0 else 1.0) for k in NAMES}
    opt = optax.adam(lr)

    def loss(logp, target):
        p = dataclasses.replace(base, **{k: sign[k] * jnp.exp(logp[i]) for i, k in enumerate(NAMES)})
        return jnp.mean((hhjax.simulate(p, stim, duration=DURATION, dt=DT, y0=target[0]).v - target) ** 2)

    @jax.jit
    def step(logp, state, target):
        l, g = jax.value_and_grad(loss)(logp, target)
        upd, state = opt.update(g, state, logp)
        return optax.apply_updates(logp, upd), state, l

    errs, times = [], []
    for b in range(n_trials):
        t0 = time.perf_counter()
        logp = jnp.log(jnp.array([abs(start[k][b]) for k in NAMES], jnp.float32))
        state = opt.init(logp)
        for _ in range(steps):
            logp, state, _ = step(logp, state, v[b])
        logp.block_until_ready()
        times.append(time.perf_counter() - t0)
        fitted = np.exp(np.asarray(logp)) * np.array([sign[k] for k in NAMES])
        errs.append(np.abs(fitted / np.array([truth[k][b] for k in NAMES]) - 1))
    errs = np.array(errs)
    return {"trials": n_trials, "steps": steps, "lr": lr, "within_1pct": int(np.all(errs < 0.01, -1).sum()),
            "median_max_rel_err": float(np.median(errs.max(-1))), "first_fit_s": times[0],
            "median_fit_s_after_compile": float(np.median(times[1:])) if len(times) > 1 else None}


def _run_fresh(code):
    """Run ``code`` in a fresh Python process; it prints one JSON object last."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def single_fit_fresh_process(cache_dir=None):
    """Wall time of one fit (4 starts together) in a fresh Python process, compilation included
    (with ``cache_dir``: JAX's persistent compilation cache, cold on the first call)."""
    code = (
        "import time; t0=time.perf_counter()\n"
        + (f"import hhjax; hhjax.enable_compilation_cache({cache_dir!r})\n" if cache_dir else "")
        + "import time\n"
        "import jax, jax.numpy as jnp; jnp.zeros(1).block_until_ready(); t_jax=time.perf_counter()-t0\n"
        "import sys; sys.path.insert(0, 'scripts'); from bench_fit import _problem\n"
        "import hhjax\n"
        "truth, stim, v, rng = _problem(1, 7)\n"
        "t1=time.perf_counter()\n"
        "res = hhjax.fit(v[0], stim, dt=0.025, trainable=('g_na','g_k','g_l','e_l'), n_starts=4, progress=False)\n"
        "import json, numpy as np\n"
        "err = max(abs(float(getattr(res.params,k))/truth[k][0]-1) for k in ('g_na','g_k','g_l','e_l'))\n"
        "print(json.dumps({'jax_init_s': t_jax, 'fit_s_incl_compile': time.perf_counter()-t1, 'max_rel_err': err,"
        " 'iterations': res.settings['iterations']}))\n"
    )
    return _run_fresh(code)


def long_trace_memory(seconds):
    """Peak resident memory of fitting a long trace (fresh process)."""
    code = (
        "import resource, time, dataclasses, jax, hhjax\n"
        f"dur = {seconds * 1000.0}\n"
        "truth = dataclasses.replace(hhjax.presets.NEURON, g_na=110.0, g_k=40.0, g_l=0.33)\n"
        "stim = hhjax.stimulus.pulse_train(10.0, 10.0, 50.0, 100.0, dur / 100.0)\n"
        "v = hhjax.simulate(truth, stim, duration=dur, dt=0.025).v\n"
        "v = v + 0.5 * jax.random.normal(jax.random.PRNGKey(0), v.shape)\n"
        "t0 = time.perf_counter()\n"
        "res = hhjax.fit(v, stim, dt=0.025, trainable=('g_na','g_k','g_l'), n_starts=2, progress=False)\n"
        "import json\n"
        "print(json.dumps({'steps': int(dur/0.025), 'fit_s': time.perf_counter()-t0,"
        " 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
        " 'g_na': float(res.params.g_na), 'g_k': float(res.params.g_k), 'g_l': float(res.params.g_l)}))\n"
    )
    return _run_fresh(code)


def machine():
    import jax

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "jax": jax.__version__, "device": str(jax.devices()[0]),
            "python": platform.python_version()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "bench_fit.json"))
    args = ap.parse_args()
    n_trials = 10 if args.quick else 100
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    results = {"machine": machine(), "command": "python scripts/bench_fit.py" + (" --quick" if args.quick else ""),
               "commit": commit, "loadavg_start": os.getloadavg()}
    results["single_fit"] = single_fit_fresh_process()
    print("single fit:", results["single_fit"], flush=True)
    import tempfile

    cache = tempfile.mkdtemp(prefix="hhjax-bench-cache-")
    results["single_fit_cache_cold"] = single_fit_fresh_process(cache)
    results["single_fit_cache_warm"] = single_fit_fresh_process(cache)
    print("single fit, persistent cache cold/warm:", results["single_fit_cache_cold"],
          results["single_fit_cache_warm"], flush=True)
    results["recovery_random_starts"] = recovery(n_trials, 4, use_direct=False)
    print("recovery, random starts only:", results["recovery_random_starts"], flush=True)
    results["recovery_with_direct"] = recovery(n_trials, 4, use_direct=True)
    print("recovery, direct estimate + random starts:", results["recovery_with_direct"], flush=True)
    results["adam_baseline"] = adam_baseline(3 if args.quick else 10)
    print("plain Adam baseline:", results["adam_baseline"], flush=True)
    batch = recovery(100 if args.quick else 1000, 2, use_direct=True, seed=1)
    results["batch"] = batch
    print("batch:", batch, flush=True)
    results["long_trace"] = long_trace_memory(1.0 if args.quick else 10.0)
    print("long trace:", results["long_trace"], flush=True)
    results["loadavg_end"] = os.getloadavg()
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
