"""The fitting half of ``hhjax demo``: recover hidden conductances from a noisy trace."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np


def run_demo_fit(progress=None, seed=0):
    """Simulate a target with hidden parameters, add 0.5 mV noise, fit from the textbook
    values (a wrong start) and print true against fitted values with standard errors."""
    from . import presets, simulate, stimulus
    from .fit import fit

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
