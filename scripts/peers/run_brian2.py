#!/usr/bin/env python
"""Brian2 peer runner. See scripts/peers/README.md.

    /tmp/venv-brian2/bin/python scripts/peers/run_brian2.py --workload W2 --n 1000 --repeats 3 --target cython

Targets (one per process; cpp_standalone cannot be re-targeted in-process):
  numpy           runtime mode, pure numpy code
  cython          runtime mode, Cython-compiled code objects (default); a fresh
                  temporary Cython cache is used, so the first run includes the
                  cold compile (pass --keep-cython-cache to use ~/.cython)
  cpp_standalone  C++ standalone: one `device.build(compile=True, run=False)`
                  (= code generation + g++ compile, reported as compile_s), then
                  the binary is executed 1 + --repeats times (`device.run`);
                  run_s_* is the wall time of each binary execution (includes
                  process start and writing results to disk), and
                  `run_s_internal_*` is Brian's own timer of the simulation loop.

Model: NeuronGroup with the HH equations of NEURON's hh.mod at 6.3 degC (q10 = 1),
rates in mV and ms, vtrap(x, y) = x/(exp(x/y)-1) written as y/exprel(x/y);
method='exponential_euler'; dt = 0.025 ms; all currents as densities (uA/cm^2).
Spikes: threshold 'v > 0*mV', refractory 'v > 0*mV' (SpikeMonitor). For W1 V is
recorded every step and the spike times reported in `spike_times_ms` are the
linearly interpolated upward 0 mV crossings of that trace (the SpikeMonitor's
times are in `spikemon_times_ms`; Brian stamps a spike with the *start* of the
step whose update crossed the threshold). For W2 V is recorded every 10 steps
(StateMonitor dt = 10*defaultclock.dt) and counts come from the SpikeMonitor.
W1 step current: TimedArray on the simulation clock, on for the steps that start
at t in [10, 90) ms (NEURON's IClamp evaluates at t+dt/2, so the same steps).
W3 does not apply (no autodiff) -> skipped. W4: first-run/compile time.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

EQS = """
dv/dt = (I - gNa*m**3*h*(v - ENa) - gK*n**4*(v - EK) - gL*(v - EL))/Cm : volt
dm/dt = alpha_m*(1 - m) - beta_m*m : 1
dh/dt = alpha_h*(1 - h) - beta_h*h : 1
dn/dt = alpha_n*(1 - n) - beta_n*n : 1
alpha_m = 1.0/exprel(-(v/mV + 40.0)/10.0)/ms : Hz
beta_m = 4.0*exp(-(v/mV + 65.0)/18.0)/ms : Hz
alpha_h = 0.07*exp(-(v/mV + 65.0)/20.0)/ms : Hz
beta_h = 1.0/(exp(-(v/mV + 35.0)/10.0) + 1.0)/ms : Hz
alpha_n = 0.1/exprel(-(v/mV + 55.0)/10.0)/ms : Hz
beta_n = 0.125*exp(-(v/mV + 65.0)/80.0)/ms : Hz
"""


def extra_args(p):
    p.add_argument("--target", choices=["numpy", "cython", "cpp_standalone"],
                   default="cython")
    p.add_argument("--keep-cython-cache", action="store_true")


def steady_gates(v):
    import numpy as np

    def exprel(x):
        return np.where(np.abs(x) < 1e-12, 1.0, np.expm1(x) / np.where(x == 0, 1.0, x))

    am = 1.0 / exprel(-(v + 40.0) / 10.0)
    bm = 4.0 * np.exp(-(v + 65.0) / 18.0)
    ah = 0.07 * np.exp(-(v + 65.0) / 20.0)
    bh = 1.0 / (np.exp(-(v + 35.0) / 10.0) + 1.0)
    an = 0.1 / exprel(-(v + 55.0) / 10.0)
    bn = 0.125 * np.exp(-(v + 65.0) / 80.0)
    return am / (am + bm), ah / (ah + bh), an / (an + bn)


def main():
    args = C.parse_args(extra=extra_args)
    system = f"brian2-{args.target}"
    try:
        import numpy as np
        import brian2 as b2
        from brian2 import (NeuronGroup, SpikeMonitor, StateMonitor, Network,
                            TimedArray, defaultclock, prefs, ms, mV, uA, cm,
                            siemens, uF, set_device, device)
    except Exception as e:  # pragma: no cover - depends on env
        C.skipped(system, f"brian2 not installed ({type(e).__name__}: {e})", args)

    version = b2.__version__
    if args.workload == "W3":
        C.skip_w3(system, version, args, "Brian2")
        return

    single = args.workload == "W1" or (args.workload == "W4" and args.n == 1)
    n = 1 if single else args.n
    if single:
        args.n = 1

    tmp = tempfile.mkdtemp(prefix="brian2_peer_")
    b2.BrianLogger.log_level_warn()
    if args.target == "cpp_standalone":
        set_device("cpp_standalone", directory=os.path.join(tmp, "standalone"),
                   build_on_run=False)
        prefs.devices.cpp_standalone.extra_make_args_unix = [f"-j{os.cpu_count() or 1}"]
    else:
        prefs.codegen.target = args.target
        if args.target == "cython" and not args.keep_cython_cache:
            prefs.codegen.runtime.cython.cache_dir = os.path.join(tmp, "cython_cache")

    t_setup0 = time.perf_counter()
    defaultclock.dt = C.DT * ms
    namespace = dict(gNa=C.GNABAR * siemens / cm**2, gK=C.GKBAR * siemens / cm**2,
                     gL=C.GL * siemens / cm**2, ENa=C.ENA * mV, EK=C.EK * mV,
                     EL=C.EL * mV, Cm=C.CM * uF / cm**2)
    if single:
        k = np.arange(C.STEPS + 1)
        t_start = k * C.DT
        on = (t_start >= C.W1_DELAY - C.DT / 2) & (t_start < C.W1_DELAY + C.W1_DUR - C.DT / 2)
        namespace["I_stim"] = TimedArray(np.where(on, C.W1_AMP, 0.0) * uA / cm**2,
                                         dt=C.DT * ms)
        eqs = EQS + "I = I_stim(t) : amp/meter**2\n"
        currents = np.array([C.W1_AMP])
    else:
        eqs = EQS + "I : amp/meter**2 (constant)\n"
        currents = C.w2_currents(n)

    G = NeuronGroup(n, eqs, threshold="v > 0*mV", refractory="v > 0*mV",
                    method="exponential_euler", namespace=namespace, name="hh")
    m0, h0, n0 = steady_gates(np.array(C.V_INIT))
    G.v = C.V_INIT * mV
    G.m = float(m0)
    G.h = float(h0)
    G.n = float(n0)
    if not single:
        G.I = currents * uA / cm**2
    spikemon = SpikeMonitor(G, record=single)
    if single:
        statemon = StateMonitor(G, "v", record=True)
    else:
        statemon = StateMonitor(G, "v", record=True, dt=C.W2_RECORD_EVERY * defaultclock.dt)
    net = Network(G, spikemon, statemon)
    setup_s = time.perf_counter() - t_setup0

    run_s_all, internal = [], []
    extra = {"setup_s": setup_s}
    note = (f"Brian2 {args.target}, exponential_euler, dt={C.DT} ms, float64, "
            f"single-threaded")
    if args.target == "cpp_standalone":
        net.run(C.T_STOP * ms, namespace={})
        t0 = time.perf_counter()
        device.build(directory=os.path.join(tmp, "standalone"), compile=True, run=False,
                     with_output=False)
        compile_s = time.perf_counter() - t0
        nrun = 1 + (args.repeats if args.workload != "W4" else 0)
        walls = []
        for _ in range(nrun):
            t0 = time.perf_counter()
            device.run(with_output=False)
            walls.append(time.perf_counter() - t0)
            internal.append(float(device._last_run_time))
        first_run_s = walls[0]
        run_s_all = walls[1:]
        extra["run_s_internal_all"] = internal[1:]
        extra["run_s_internal_median"] = C.median(internal[1:])
        extra["first_run_internal_s"] = internal[0]
        extra["compile_s_is"] = "code generation + g++ build of the standalone project"
        note += (f"; openmp_threads={prefs.devices.cpp_standalone.openmp_threads}; "
                 "run_s = wall of one binary execution")
    else:
        net.store()
        t0 = time.perf_counter()
        net.run(C.T_STOP * ms, namespace={})
        first_run_s = time.perf_counter() - t0
        if args.workload != "W4":
            cpu = []
            for _ in range(args.repeats):
                net.restore()
                c0 = time.process_time()
                t0 = time.perf_counter()
                net.run(C.T_STOP * ms, namespace={})
                run_s_all.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            extra["cpu_s_all"] = cpu
        compile_s = first_run_s - (C.median(run_s_all) if run_s_all else 0.0)
        extra["compile_s_is"] = ("first net.run minus median later net.run "
                                 "(code generation" + (" + cold Cython compile"
                                 if args.target == "cython" else "") + ")")

    t_rec = np.asarray(statemon.t / ms)
    v_rec = np.asarray(statemon.v / mV)
    steps = C.STEPS
    if single:
        extra["spike_times_ms"] = C.upward_crossings(t_rec, v_rec[0])
        extra["spikemon_times_ms"] = (np.asarray(spikemon.t / ms)).tolist()
        extra["v_samples"] = int(v_rec.shape[1])
    else:
        counts = np.asarray(spikemon.count)
        extra["spike_counts_summary"] = C.counts_summary(counts, currents)
        extra["v_record_shape"] = list(v_rec.shape)

    out = C.result(system, version, args, steps=steps, compile_s=compile_s,
                   first_run_s=first_run_s, run_s_all=run_s_all, note=note, **extra)
    if args.workload == "W4":
        out["run_s_median"] = first_run_s
        out["neuron_steps_per_s"] = None  # not a throughput workload
        out["note"] += "; W4: run_s_median = first (cold) run"
        if args.target != "cpp_standalone":
            out["compile_s"] = None
            out["compile_s_is"] = "n/a for W4 in runtime mode: see first_run_s"
    C.emit(out)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
