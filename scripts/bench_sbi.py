"""Benchmark of hhjax.sbi.simulator against a NumPy/Python HH simulator in the style of sbi's
HH tutorial (issue 18 target: 1e5 parameter sets x 500 ms into summary statistics < 60 s on
the 2-core CPU). Writes scripts/bench_sbi.json.

    python scripts/bench_sbi.py                   # 1e5 sets in batches of 1e4 (sbi's way)
    python scripts/bench_sbi.py --n 20000         # smaller, when the machine is shared

Both sides: the Pospischil RS cell with (g_na, g_k) drawn uniformly from (20-80, 1-15)
mS/cm², a 300 pA step from 50 to 450 ms, 500 ms at dt 0.025 ms, exponential-Euler
(Rush-Larsen) steps, V kept every 0.1 ms, the 8 Gonçalves et al. (2020) summaries.

The reference is written here from the model's equations, the way sbi's tutorial writes its
simulator: one parameter set at a time, a Python loop over time steps with NumPy scalar
maths inside, then NumPy summaries. It is timed on a few sets and its rate extrapolated.
hhjax's compile time is reported separately; every chunk's result is on the host (NumPy)
before the clock is read.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

DT, DURATION, T_ON, T_OFF, AMP_PA = 0.025, 500.0, 50.0, 450.0, 300.0
NAMES = ("g_na", "g_k")
BOUNDS = {"g_na": (20.0, 80.0), "g_k": (1.0, 15.0)}
RECORD_EVERY = 4


# ------------------------------------------------------------------ NumPy/Python reference
def _exprelr(z):
    return 1.0 / (1.0 + z * (0.5 + z / 6.0)) if abs(z) < 1e-4 else z / math.expm1(z)


def reference_simulate(g_na, g_k, *, g_m=0.075, tau_max=608.0, v_t=-56.2, g_l=0.0205, e_na=50.0,
                       e_k=-90.0, e_l=-70.3, c_m=1.0, area=math.pi * 61.4 * 61.4 * 1e-8):
    """V (mV) every RECORD_EVERY steps of the Pospischil model, one Python step at a time."""
    n_steps = int(round(DURATION / DT))
    v = e_l
    gates = _gates_inf(v, v_t)
    m, h, n, p = gates[0][0], gates[1][0], gates[2][0], gates[3][0]
    out = np.empty(n_steps // RECORD_EVERY + 1)
    out[0] = v
    for k in range(n_steps):
        t_mid = (k + 0.5) * DT
        i_inj = AMP_PA * 1e-6 / area if T_ON <= t_mid < T_OFF else 0.0  # µA/cm²
        (m_inf, m_r), (h_inf, h_r), (n_inf, n_r), (p_inf, p_r) = _gates_inf(v, v_t, tau_max)
        m = m_inf + (m - m_inf) * np.exp(-DT * m_r)
        h = h_inf + (h - h_inf) * np.exp(-DT * h_r)
        n = n_inf + (n - n_inf) * np.exp(-DT * n_r)
        p = p_inf + (p - p_inf) * np.exp(-DT * p_r)
        g_tot = g_na * m ** 3 * h + g_k * n ** 4 + g_m * p + g_l
        e_eff = (g_na * m ** 3 * h * e_na + (g_k * n ** 4 + g_m * p) * e_k + g_l * e_l + i_inj) / g_tot
        v = e_eff + (v - e_eff) * np.exp(-DT * g_tot / c_m)
        if (k + 1) % RECORD_EVERY == 0:
            out[(k + 1) // RECORD_EVERY] = v
    return out


def _gates_inf(v, v_t, tau_max=608.0):
    """((x_inf, 1/tau) for m, h, n, p) at v (mV), Pospischil et al. (2008)."""
    u = v - v_t
    a_m, b_m = 1.28 * _exprelr((13.0 - u) / 4.0), 1.4 * _exprelr((u - 40.0) / 5.0)
    a_h, b_h = 0.128 * np.exp((17.0 - u) / 18.0), 4.0 / (1.0 + np.exp(-(u - 40.0) / 5.0))
    a_n, b_n = 0.16 * _exprelr((15.0 - u) / 5.0), 0.5 * np.exp((10.0 - u) / 40.0)
    w = (v + 35.0) / 20.0
    p_inf = 1.0 / (1.0 + np.exp(-2.0 * w))
    return ((a_m / (a_m + b_m), a_m + b_m), (a_h / (a_h + b_h), a_h + b_h),
            (a_n / (a_n + b_n), a_n + b_n), (p_inf, (3.3 * np.exp(w) + np.exp(-w)) / tau_max))


def reference_summary(v):
    """The 8 Gonçalves statistics in NumPy (as hhjax.sbi.goncalves_summary defines them)."""
    t = np.arange(v.size) * DT * RECORD_EVERY
    i = np.flatnonzero((v[:-1] < 0.0) & (v[1:] >= 0.0))
    times = t[i] + (0.0 - v[i]) / (v[i + 1] - v[i]) * (t[i + 1] - t[i])
    on = v[(t >= T_ON) & (t < T_OFF)]
    d = on - on.mean()
    m2 = np.mean(d * d)
    k = int(round(1.0 / (DT * RECORD_EVERY)))
    return np.array([np.sum((times >= T_ON) & (times < T_OFF)), v[t < T_ON].mean(),
                     v[(t < T_ON) & (t >= 0.9 * T_ON)].std(), on.mean(), math.sqrt(m2),
                     np.mean(d ** 3) / m2 ** 1.5, np.mean(d ** 4) / m2 ** 2,
                     np.mean(d[:-k] * d[k:]) / m2])


# --------------------------------------------------------------------------------- main
def _machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "python": sys.version.split()[0],
            "load_1min_before": os.getloadavg()[0]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="parameter sets (default 1e5)")
    ap.add_argument("--batch", type=int, default=10_000, help="sets per simulator call")
    ap.add_argument("--n-reference", type=int, default=3, help="sets run by the NumPy reference")
    ap.add_argument("--out", default=str(Path(__file__).with_name("bench_sbi.json")))
    args = ap.parse_args(argv)
    machine = _machine()

    import jax  # noqa: PLC0415  (after argparse: --help should not start JAX)

    import hhjax  # noqa: PLC0415

    devices = hhjax.use_all_cores()
    from hhjax.sbi import simulator  # noqa: PLC0415

    rng = np.random.default_rng(0)
    lo = np.array([BOUNDS[k][0] for k in NAMES])
    hi = np.array([BOUNDS[k][1] for k in NAMES])
    theta = rng.uniform(lo, hi, (args.n, len(NAMES)))
    sim = simulator(hhjax.presets.POSPISCHIL, hhjax.stimulus.step(AMP_PA, T_ON, T_OFF), list(NAMES),
                    duration=DURATION, dt=DT, method="exp_euler", record_every=RECORD_EVERY,
                    bounds=BOUNDS)
    batch = min(args.batch, args.n)
    t0 = time.perf_counter()
    sim(theta[:batch])  # compiles for this batch size, then runs once
    first_call = time.perf_counter() - t0
    chunks, out = [], []
    cpu0 = time.process_time()
    t_all = time.perf_counter()
    for start in range(0, args.n, batch):
        t0 = time.perf_counter()
        out.append(sim(theta[start:start + batch]))  # NumPy: on the host when it returns
        chunks.append(time.perf_counter() - t0)
    total = time.perf_counter() - t_all
    cpu_s = time.process_time() - cpu0  # all threads: the work, whatever else the machine runs
    x = np.concatenate(out)
    compile_s = max(first_call - float(np.median(chunks)), 0.0)

    ref_times, ref_x = [], []
    for row in theta[: args.n_reference]:
        t0 = time.perf_counter()
        ref_x.append(reference_summary(reference_simulate(*row)))
        ref_times.append(time.perf_counter() - t0)
    ref_per_sim = float(np.median(ref_times))
    ref_x = np.array(ref_x)

    result = {
        "machine": machine | {"load_1min_after": os.getloadavg()[0], "jax": jax.__version__,
                              "jax_devices": devices},
        "workload": {"model": "pospischil RS", "inferred": list(NAMES), "bounds": BOUNDS,
                     "duration_ms": DURATION, "dt_ms": DT, "step_pA": AMP_PA, "t_on_ms": T_ON,
                     "t_off_ms": T_OFF, "record_every": RECORD_EVERY, "method": "exp_euler",
                     "summaries": 8},
        "hhjax": {"n": args.n, "batch": batch, "compile_s": round(compile_s, 3),
                  "run_s": round(total, 3), "run_cpu_s": round(cpu_s, 3), "chunk_median_s": round(float(np.median(chunks)), 3),
                  "sims_per_s": round(args.n / total, 1),
                  "extrapolated_1e5_s": round(1e5 * total / args.n, 2),
                  "extrapolated_1e5_cpu_s_per_core": round(1e5 * cpu_s / args.n / machine["cores"], 2),
                  "nan_rows": int(np.isnan(x).any(axis=1).sum()),
                  "mean_spike_count": round(float(np.nanmean(x[:, 0])), 3)},
        "numpy_reference": {"n": len(ref_times), "per_sim_median_s": round(ref_per_sim, 3),
                            "sims_per_s": round(1.0 / ref_per_sim, 3),
                            "extrapolated_1e5_s": round(1e5 * ref_per_sim, 1),
                            "spike_counts": ref_x[:, 0].tolist(),
                            "hhjax_spike_counts_same_sets": x[: len(ref_times), 0].tolist(),
                            "max_abs_summary_diff": float(np.max(np.abs(ref_x - x[: len(ref_times)])))},
    }
    result["speedup"] = round(ref_per_sim * args.n / total, 1)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
