#!/usr/bin/env python
"""Jaxley peer runner (pip `jaxley`). See scripts/peers/README.md.

    /tmp/venv-jaxley/bin/python scripts/peers/run_jaxley.py --workload W3 --repeats 5

Model: `jx.Compartment()` with `jaxley.channels.HH()` (its defaults are NEURON's
hh values: gNa .12, gK .036, gLeak .0003 S/cm^2, eNa 50, eK -77, eLeak -54.3 mV;
capacitance 1 uF/cm^2; rates at 6.3 degC), v = -65 mV, gates set to steady
state with `init_states()`. Length set so the membrane area is exactly 100 um^2
(radius 1 um, length 100/(2 pi) um); Jaxley injects currents in nA and converts
with nA/um^2 * 1e5 -> uA/cm^2, so amp_nA = I_uAcm2 * area_um2 * 1e-5.
Solver: `jx.integrate(..., delta_t=0.025, solver="bwd_euler")` (Jaxley's
default: gates by exponential Euler at the old voltage, then implicit voltage).
float64 (`jax_enable_x64`) unless --float32.

The stimulus of step k (t = k*dt -> (k+1)*dt) is row k of the current array:
W1 current is on for k in [400, 3600), i.e. the steps that start in [10, 90) ms
(same steps as NEURON's IClamp, which is evaluated at t + dt/2).

W2 (`--w2-mode vmap`, default): the documented fast path for many independent
simulations: `jax.jit(jax.vmap(f))` where f does `data_stimulate` + `integrate`
for one compartment; spike counts (0 mV upward crossings) are computed in the
jitted function from the full-resolution trace and V is returned every 10 steps
(Jaxley itself records every step; there is no recording stride).
`--w2-mode network`: one `jx.Network` of N unconnected single-compartment cells
simulated in one `integrate` call.
W3: `jax.jit(jax.value_and_grad(loss))`, loss = mean((V(params) - V_target)^2)
over the W1 protocol, params = HH_gNa, HH_gK, HH_gLeak made trainable
(`make_trainable` / `get_parameters`), target simulated at the default values,
gradient evaluated at the defaults scaled by --w3-scale (default 1.1; at the
defaults the gradient is ~0). compile_s = first call - median later call.
W4: compile time of the first simulate (jit, W1 model) and of the first gradient.
Timing: one warm-up call, then median of --repeats, `block_until_ready`.
"""

from __future__ import annotations

import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

SYSTEM = "jaxley"
AREA_UM2 = 100.0


def extra_args(p):
    p.add_argument("--float32", action="store_true")
    p.add_argument("--w2-mode", choices=["vmap", "network"], default="vmap")
    p.add_argument("--w3-scale", type=float, default=1.1)


def main():
    args = C.parse_args(extra=extra_args)
    try:
        import jax
        if not args.float32:
            jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        import numpy as np
        import jaxley as jx
        from jaxley.channels import HH
    except Exception as e:  # pragma: no cover - depends on env
        C.skipped(SYSTEM, f"jaxley not installed ({type(e).__name__}: {e})", args)

    version = jx.__version__
    dtype = "float32" if args.float32 else "float64"
    steps = C.STEPS
    nrows = steps + 1  # recorded samples (t = 0 .. 100 ms)
    ncur = steps  # stimulus rows: jx.integrate runs one step per row (no t_max)
    na_per_uacm2 = AREA_UM2 * 1e-5  # nA per (uA/cm^2) for a 100 um^2 membrane
    rec = C.W2_RECORD_EVERY

    def configure(module):
        # One cylinder of AREA_UM2 (radius 1 um), NEURON's hh channel, V at rest.
        module.insert(HH())
        module.set("radius", 1.0)
        module.set("length", AREA_UM2 / (2.0 * math.pi * 1.0))
        module.set("capacitance", C.CM)
        module.set("v", C.V_INIT)
        module.init_states(delta_t=C.DT)
        return module

    def make_comp():
        comp = configure(jx.Compartment())
        area = float(comp.nodes["area"].iloc[0])
        assert abs(area - AREA_UM2) < 1e-9 * AREA_UM2, area
        # 1 nA on 100 um^2: 1e-9 A / 1e-6 cm^2 = 1e-3 A/cm^2 = 1000 uA/cm^2
        assert abs(1.0 / area * 1e5 - 1000.0) < 1e-6
        return comp

    def w1_current(amp_uacm2=C.W1_AMP):
        k = np.arange(ncur)
        on = (k >= round(C.W1_DELAY / C.DT)) & (k < round((C.W1_DELAY + C.W1_DUR) / C.DT))
        return jnp.asarray(np.where(on, amp_uacm2 * na_per_uacm2, 0.0))

    cpu_s = []

    def timeit(fn, *a):
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = fn(*a)
        jax.block_until_ready(out)
        wall = time.perf_counter() - t0
        cpu_s.append(time.process_time() - c0)  # summed over XLA threads
        return wall, out

    extra = {"cpu_s_all_incl_warmup": cpu_s, "dtype": dtype, "jax_version": jax.__version__,
             "jax_backend": jax.default_backend()}
    note = (f"Jaxley bwd_euler, dt={C.DT} ms, {dtype}, XLA CPU "
            f"(default threading on {os.cpu_count()} cores)")
    t_setup0 = time.perf_counter()

    if args.workload in ("W1", "W4") and (args.workload == "W1" or args.n == 1):
        args.n = 1
        comp = make_comp()
        comp.record("v", verbose=False)
        cur = w1_current()

        def simulate(cur):
            ds = comp.data_stimulate(cur)
            return jx.integrate(comp, data_stimuli=ds, delta_t=C.DT)[0]

        sim = jax.jit(simulate)
        setup_s = time.perf_counter() - t_setup0
        first_s, v = timeit(sim, cur)
        run_s_all = []
        if args.workload == "W1":
            run_s_all = [timeit(sim, cur)[0] for _ in range(args.repeats)]
        v = np.asarray(v)
        assert v.shape == (nrows,), v.shape
        t = np.arange(nrows) * C.DT
        extra.update(spike_times_ms=C.upward_crossings(t, v), v_samples=int(v.shape[0]),
                     setup_s=setup_s, first_run_s=first_s)
        if args.workload == "W1":
            out = C.result(SYSTEM, version, args, steps=steps, run_s_all=run_s_all,
                           compile_s=first_s - C.median(run_s_all), note=note, **extra)
        else:
            # W4: first simulate (trace + compile) and first gradient.
            g = _w3(args, jax, jnp, np, jx, HH, make_comp, w1_current, timeit, repeats=0)
            extra.update({"first_grad_s": g["first_grad_s"],
                          "first_simulate_s": first_s})
            out = C.result(SYSTEM, version, args, steps=steps, compile_s=first_s,
                           run_s_median=first_s,
                           note=note + "; W4: compile_s = first jitted simulate call "
                           "(trace+compile+1 run), first_grad_s = first jitted "
                           "value_and_grad call", **extra)
            out["neuron_steps_per_s"] = None
        C.emit(out)
        return

    if args.workload == "W3":
        g = _w3(args, jax, jnp, np, jx, HH, make_comp, w1_current, timeit,
                repeats=args.repeats)
        args.n = 1
        extra.update(g)
        out = C.result(SYSTEM, version, args, steps=steps, run_s_all=g["grad_s_all"],
                       compile_s=g["first_grad_s"] - C.median(g["grad_s_all"]),
                       note=note + "; W3: run_s = one jitted value_and_grad call "
                       "(forward + backward through 4000 steps)", **extra)
        out["neuron_steps_per_s"] = steps / out["run_s_median"]
        C.emit(out)
        return

    # ---------------- W2 (or W4 with n > 1) ----------------
    n = args.n
    currents = C.w2_currents(n)
    amps = jnp.asarray(currents * na_per_uacm2)

    def spikes_and_sub(v):
        cnt = jnp.sum((v[..., :-1] < C.SPIKE_THRESHOLD) & (v[..., 1:] >= C.SPIKE_THRESHOLD),
                      axis=-1)
        return cnt, v[..., ::rec]

    if args.w2_mode == "vmap":
        comp = make_comp()
        comp.record("v", verbose=False)

        def one(amp):
            ds = comp.data_stimulate(jnp.full((ncur,), amp))
            v = jx.integrate(comp, data_stimuli=ds, delta_t=C.DT)[0]
            return spikes_and_sub(v)

        sim = jax.jit(jax.vmap(one))
    else:
        cell = jx.Cell(jx.Branch(jx.Compartment(), ncomp=1), parents=[-1])
        net = configure(jx.Network([cell] * n))
        assert np.allclose(net.nodes["area"].to_numpy(), AREA_UM2)
        net.cell("all").record("v", verbose=False)

        def simulate(amps):
            ds = None
            ds = net.cell("all").data_stimulate(
                jnp.broadcast_to(amps[:, None], (n, ncur)), ds)
            v = jx.integrate(net, data_stimuli=ds, delta_t=C.DT)
            return spikes_and_sub(v)

        sim = jax.jit(simulate)
        note += "; W2 via jx.Network of unconnected cells"

    setup_s = time.perf_counter() - t_setup0
    first_s, (cnt, vsub) = timeit(sim, amps)
    run_s_all = []
    if args.workload != "W4":
        run_s_all = [timeit(sim, amps)[0] for _ in range(args.repeats)]
    counts = np.asarray(cnt)
    extra.update(spike_counts_summary=C.counts_summary(counts, currents),
                 v_record_shape=list(np.asarray(vsub).shape), setup_s=setup_s,
                 first_run_s=first_s, w2_mode=args.w2_mode)
    if args.workload == "W4":
        out = C.result(SYSTEM, version, args, steps=steps, compile_s=first_s,
                       run_s_median=first_s, note=note + "; W4: first call", **extra)
        out["neuron_steps_per_s"] = None
    else:
        out = C.result(SYSTEM, version, args, steps=steps, run_s_all=run_s_all,
                       compile_s=first_s - C.median(run_s_all),
                       note=note + f"; W2 mode {args.w2_mode}", **extra)
    C.emit(out)


def _w3(args, jax, jnp, np, jx, HH, make_comp, w1_current, timeit, repeats):
    comp = make_comp()
    comp.record("v", verbose=False)
    names = ["HH_gNa", "HH_gK", "HH_gLeak"]
    for nm in names:
        comp.make_trainable(nm, verbose=False)
    cur = w1_current()

    def simulate(params):
        ds = comp.data_stimulate(cur)
        return jx.integrate(comp, params=params, data_stimuli=ds, delta_t=C.DT)[0]

    p0 = comp.get_parameters()
    target = jax.jit(simulate)(p0)
    jax.block_until_ready(target)
    defaults = {"HH_gNa": C.GNABAR, "HH_gK": C.GKBAR, "HH_gLeak": C.GL}
    p = [{k: jnp.asarray(v) * args.w3_scale for k, v in d.items()} for d in p0]

    def loss(params):
        v = simulate(params)
        return jnp.mean((v - target) ** 2)

    vg = jax.jit(jax.value_and_grad(loss))
    first_s, (val, grad) = timeit(vg, p)
    grad_s_all = [timeit(vg, p)[0] for _ in range(repeats)]
    flat = {k: float(np.asarray(v).ravel()[0]) for d in grad for k, v in d.items()}
    at = {k: float(np.asarray(v).ravel()[0]) for d in p for k, v in d.items()}
    return {"first_grad_s": first_s, "grad_s_all": grad_s_all,
            "grad_s_median": C.median(grad_s_all), "loss": float(val),
            "grad": flat, "params_at": at, "params_default": defaults,
            "target_spikes_ms": C.upward_crossings(np.arange(len(target)) * C.DT,
                                                   np.asarray(target))}


if __name__ == "__main__":
    main()
