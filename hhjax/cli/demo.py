"""``hhjax demo``: simulate the classic HH neuron, plot it, then recover hidden conductances
from a noisy trace of it."""

from __future__ import annotations

import argparse
import dataclasses

import jax
import numpy as np

from .. import plot, presets, stimulus
from ..analysis.spikes import spike_times
from ..fitting.fitter import fit
from ..simulation.entry import simulate
from ._common import Outputs


def run_demo_fit(progress=None, seed=0):
    """Simulate a target with hidden parameters, add 0.5 mV noise, fit from the textbook
    values (a wrong start) and print true against fitted values with standard errors."""
    truth = dataclasses.replace(presets.NEURON, g_na=96.0, g_k=44.0, g_l=0.36, e_l=-58.0)
    stim = stimulus.step(10.0, 10.0, 90.0)
    dt = 0.025
    v = simulate(truth, stim, duration=100.0, dt=dt).v
    noisy = v + 0.5 * jax.random.normal(jax.random.PRNGKey(seed), v.shape)
    trainable = ("g_na", "g_k", "g_l", "e_l")
    print("\nFitting g_na, g_k, g_l, e_l to a noisy (0.5 mV) trace, starting from NEURON's values ...")
    result = fit(noisy, stim, init=presets.NEURON, dt=dt, trainable=trainable, n_starts=4,
                 direct=True, progress=progress)
    print(f"{'param':>6} {'true':>9} {'start':>9} {'fitted':>9}   ± stderr")
    for name in trainable:
        print(f"{name:>6} {getattr(truth, name):9.4f} {getattr(presets.NEURON, name):9.4f} "
              f"{float(getattr(result.params, name)):9.4f}   ± {float(result.stderr[name]):.4f}")
    print(f"residual RMS {np.sqrt(float(result.loss)):.3f} mV (noise 0.5 mV); "
          f"{result.settings['iterations']} iterations, {result.wall_time:.1f} s including compilation")
    if result.correlated:
        print("strongly correlated: " + ", ".join(f"{a}/{b} ({c:+.2f})" for a, b, c in result.correlated))
    return result


def cmd_demo(args):
    params = presets.NEURON
    stim = stimulus.step(10.0, 10.0, 90.0)
    trace = simulate(params, stim, duration=100.0, dt=0.025)
    spikes = spike_times(trace.t, trace.v)
    times = np.asarray(spikes.times)[: int(spikes.count)]
    print("hhjax demo: NEURON's hh, 10 µA/cm² from 10 to 90 ms, exp_euler, dt = 0.025 ms")
    print(f"{int(spikes.count)} spikes at t = " + ", ".join(f"{x:.3f}" for x in times) + " ms")
    fig = plot.plot_trace(trace, params, panels=("stimulus", "v", "gates", "conductances", "currents"),
                          stimulus=stim, title="Hodgkin–Huxley neuron under a 10 µA/cm² step")
    outputs = Outputs()
    outputs.add("--plot", args.plot, lambda tmp: plot.save(fig, str(tmp)))
    if not args.no_fit:
        run_demo_fit(progress=args.progress)
    outputs.commit()
    return 0


def add_command(sub) -> None:
    d = sub.add_parser("demo", help="simulate the classic HH neuron, plot it, and fit it (built-in defaults)")
    d.add_argument("--plot", default="hhjax_demo.png", help="output PNG (default hhjax_demo.png)")
    d.add_argument("--no-fit", action="store_true", help="skip the fitting part")
    d.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    d.set_defaults(func=cmd_demo)
