#!/usr/bin/env python
"""NEURON peer runner (pip package `neuron`). See scripts/peers/README.md.

    /tmp/venv-neuron/bin/python scripts/peers/run_neuron.py --workload W1 --n 1 --repeats 5

Model: one single-compartment section (nseg=1) per neuron with the built-in
`hh` mechanism (NEURON defaults == the benchmark parameters), L = diam =
sqrt(100/pi) um, so the membrane area is exactly 100 um^2 = 1e-6 cm^2 and an
IClamp of 1 nA equals 1000 uA/cm^2 (i.e. amp_nA = I_uAcm2 * 1e-3).
Fixed step, backward Euler (`h.secondorder = 0`), dt = 0.025 ms, celsius 6.3.
By default the hh rate tables are switched off (`usetable_hh = 0`) so the
rates are evaluated exactly like the other peers do; `--usetable` restores
NEURON's default (1 mV-resolution lookup tables).
Timed region: `h.finitialize(-65); h.continuerun(100)` (or, with
`--advance psolve`, `ParallelContext().psolve(100)`, which runs the time loop in
C instead of stdrun.hoc's interpreted loop; same numerics).
W3 (gradients) does not apply to NEURON -> skipped.
W4: setup (model construction) time + time of the first (cold) simulate.
"""

from __future__ import annotations

import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

SYSTEM = "neuron"
AREA_UM2 = 100.0
DIAM_UM = math.sqrt(AREA_UM2 / math.pi)  # L = diam -> pi*d*L = 100 um^2
# uA/cm^2 -> nA for a 100 um^2 = 1e-6 cm^2 membrane:
#   I[uA/cm^2] * 1e-6 cm^2 = I * 1e-6 uA = I * 1e-3 nA
NA_PER_UACM2 = AREA_UM2 * 1e-8 * 1e3  # cm^2 * (nA per uA) = 1e-3


def extra_args(p):
    p.add_argument("--usetable", action="store_true",
                   help="use NEURON's default hh rate tables (usetable_hh=1)")
    p.add_argument("--advance", choices=["continuerun", "psolve"], default="continuerun",
                   help="continuerun (stdrun.hoc loop, default) or ParallelContext.psolve "
                        "(the whole time loop in C)")
    p.add_argument("--cache-efficient", type=int, default=1, choices=[0, 1],
                   help="CVode().cache_efficient(): contiguous memory layout (default 1)")


def main():
    args = C.parse_args(extra=extra_args)
    try:
        from neuron import h
        import neuron
        import numpy as np
    except Exception as e:  # pragma: no cover - depends on env
        C.skipped(SYSTEM, f"neuron not installed ({type(e).__name__}: {e})", args)

    version = neuron.__version__
    if args.workload == "W3":
        C.skip_w3(SYSTEM, version, args, "NEURON")
        return

    t0 = time.perf_counter()
    h.load_file("stdrun.hoc")
    h.celsius = C.CELSIUS
    h.dt = C.DT
    h.steps_per_ms = 1.0 / C.DT
    h.secondorder = 0
    h.cvode_active(0)
    h.usetable_hh = 1 if args.usetable else 0
    h.CVode().cache_efficient(args.cache_efficient)

    single = args.workload == "W1" or (args.workload == "W4" and args.n == 1)
    n = 1 if single else args.n
    if single and args.n != 1:
        C.eprint("W1 is a single neuron; ignoring --n")
        args.n = 1

    secs, stims, ncs = [], [], []
    spk_t, spk_id = h.Vector(), h.Vector()
    currents = np.array([C.W1_AMP]) if single else C.w2_currents(n)
    for i in range(n):
        s = h.Section(name=f"c{i}")
        s.nseg = 1
        s.L = DIAM_UM
        s.diam = DIAM_UM
        s.cm = C.CM
        s.Ra = 35.4
        s.insert("hh")
        seg = s(0.5)
        seg.hh.gnabar = C.GNABAR
        seg.hh.gkbar = C.GKBAR
        seg.hh.gl = C.GL
        seg.hh.el = C.EL
        s.ena = C.ENA
        s.ek = C.EK
        stim = h.IClamp(seg)
        if single:
            stim.delay = C.W1_DELAY
            stim.dur = C.W1_DUR
        else:
            stim.delay = 0.0
            stim.dur = 1e9
        stim.amp = float(currents[i]) * NA_PER_UACM2
        nc = h.NetCon(seg._ref_v, None, sec=s)
        nc.threshold = C.SPIKE_THRESHOLD
        nc.record(spk_t, spk_id, i)
        secs.append(s)
        stims.append(stim)
        ncs.append(nc)
    # Assert the nA <-> uA/cm^2 conversion is exact.
    a = secs[0](0.5).area()
    assert abs(a - AREA_UM2) < 1e-9 * AREA_UM2, a
    assert abs(NA_PER_UACM2 - 1e-3) < 1e-15
    # 1 nA into this compartment = 1e-9 A / 1e-6 cm^2 = 1e-3 A/cm^2 = 1000 uA/cm^2
    assert abs(1.0 / (a * 1e-8) * 1e-9 * 1e6 - 1000.0) < 1e-6

    rec_every = 1 if single else C.W2_RECORD_EVERY
    tvec = h.Vector().record(h._ref_t, C.DT * rec_every)
    vvecs = [h.Vector().record(s(0.5)._ref_v, C.DT * rec_every) for s in secs]
    setup_s = time.perf_counter() - t0

    pc = h.ParallelContext()
    if args.advance == "psolve":
        pc.set_maxstep(10)

    cpu_s_all = []

    def simulate():
        c1 = time.process_time()
        t1 = time.perf_counter()
        h.finitialize(C.V_INIT)
        if args.advance == "psolve":
            pc.psolve(C.T_STOP)
        else:
            h.continuerun(C.T_STOP)
        wall = time.perf_counter() - t1
        cpu_s_all.append(time.process_time() - c1)
        return wall

    first_run_s = simulate()  # warm-up (cold) run
    run_s_all = [simulate() for _ in range(args.repeats)] if args.workload != "W4" else []

    t = np.array(tvec)
    steps = int(round(h.t / h.dt))
    extra = {}
    note = (f"NEURON fixed-step backward Euler (secondorder=0), dt={h.dt}, "
            f"celsius={h.celsius}, usetable_hh={int(h.usetable_hh)}, "
            f"cache_efficient={args.cache_efficient}, "
            f"single-threaded, {n} section(s) nseg=1 area={a:.6g} um^2; "
            f"timed finitialize+{args.advance}")
    if single:
        v = np.array(vvecs[0])
        st = C.upward_crossings(t, v)
        extra["spike_times_ms"] = st
        extra["netcon_spike_times_ms"] = list(spk_t)
        extra["v_samples"] = len(v)
    else:
        ids = np.array(spk_id, dtype=int)
        counts = np.bincount(ids, minlength=n)
        extra["spike_counts_summary"] = C.counts_summary(counts, currents)
        extra["v_record_shape"] = [n, len(vvecs[0])]
        note += "; spike counts from NetCon(threshold 0) on the last run"

    out = C.result(SYSTEM, version, args, steps=steps,
                   compile_s=setup_s, setup_s=setup_s, first_run_s=first_run_s,
                   run_s_all=run_s_all, cpu_s_all=cpu_s_all[1:], note=note, **extra)
    if args.workload == "W4":
        out["run_s_median"] = first_run_s
        out["neuron_steps_per_s"] = None  # not a throughput workload
        out["note"] += "; W4: compile_s = model setup, run_s_median = first (cold) run"
    C.emit(out)


if __name__ == "__main__":
    main()
