"""Write a folder of synthetic current-clamp recordings of cell classes the repository has no
recording of, with their ground truth, for the panel benchmark.

    python scripts/synthetic_cells.py OUT [--seed 0] [--draw 0]
    python scripts/bench_recordings.py OUT --out synthetic.json --figures figs

Each recording is one ``.npz`` file (``Recording.to_npz``, read back by
``hhjax.io.load_recording``) made the way a rig makes one: the model is driven by the command
current *plus* an unrecorded Ornstein–Uhlenbeck noise current (membrane and synaptic
noise; σ pA, τ 5 ms), every sweep starts after 1 s at its holding current (so a cell that
fires at its holding current is firing when the sweep begins), the voltage is sampled at
the rig's rate and white recording noise is added; the file holds only the command.

The classes (:func:`cells`) are what the real-cells issue lists beyond the repository's panel:

* ``rs_block_10khz``, ``fs_block_20khz``, ``rs_early_block_10khz``: regular- and
  fast-spiking cells with a weak delayed rectifier (the last also a weak Na current),
  driven by strong steps into depolarisation block (a few spikes, then a plateau near
  −20 mV) from 600, 400 and 200 pA;
* ``fs_dual_step_20khz``: a fast-spiking interneuron held above rheobase (it fires
  spontaneously), protocol step / −100 pA epoch / second step;
* ``rs_ramp_4khz``: a ramp in every sweep from a holding current that grows sweep by sweep,
  sampled at 4 kHz with more recording noise;
* ``rs_adapting_prepulse_50khz``: a strongly adapting cell (large, slow M current), a
  hyperpolarising pre-pulse before each step, sampled at 50 kHz;
* ``lts_rebound_10khz``: a low-threshold spiking cell (T-type Ca current) whose
  hyperpolarising steps end in rebound bursts — outside the default model's class;
* ``rs_plateau_10khz``: a cell that fires from a depolarised plateau: weak steps give a few
  spikes and then a plateau near −30 mV, strong ones spikes from about −20 mV to +20 mV
  (an RS cell with its Na and Kd kinetics 30 mV depolarised and E_Na +20 mV) — outside
  the fit's bounds (v_t ± 25 mV of the start; E_Na is not fitted).

``--draw K`` (K > 0) writes *other cells of the same classes*: each cell's conductances,
``tau_max`` and area are multiplied by factors drawn log-uniformly from [0.8, 1.25], its
``v_t`` and ``e_l`` shifted by up to ±3 mV, and its command scaled with its area (the same
current densities, so a block cell still blocks). Draw 0 is the cells as listed; the other
draws are cells the fitter was not developed on, a check that its rules generalise.

Every cell except the last two lies in the class of one of hhjax's fit targets, so a held-out
miss there is the fitter's, not the model's. ``OUT/TRUTH.json`` holds each cell's model,
parameters, noise, and per sweep the number of upward 0 mV crossings of the simulated
voltage before recording noise is added (counted here, independently of the detector).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import hhjax
from hhjax import stimulus
from hhjax.io import Recording
from hhjax.models.pospischil import FS, PLATEAU, RS
from hhjax.models.pospischil_ca import LTS

SIM_DT = 0.01  # ms: 100 kHz, so that every rig rate below (4, 10, 20, 50 kHz) samples every k-th step
SETTLE_MS = 1000.0  # at the holding current before each sweep


def _steps(n, hold, epochs, sim_dt=SIM_DT):
    """Command (pA) on ``n`` samples of ``sim_dt`` (ms): ``hold`` plus ``(start_ms, stop_ms, amp)`` epochs."""
    t = np.arange(n) * sim_dt
    i = np.full(n, float(hold))
    for a, b, amp in epochs:
        i[(t >= a) & (t < b)] += amp
    return i


def _ramp(n, hold, start, stop, top):
    t = np.arange(n) * SIM_DT
    return hold + np.where((t >= start) & (t < stop), top * (t - start) / (stop - start), 0.0)


def cells():
    """``{name: (model, params, rate_hz, noise_pA, recording_noise_mV, commands (sweeps, n))}``."""
    out = {}
    n = int(1400 / SIM_DT)
    amps = [-100, 0, 50, 100, 150, 200, 300, 400, 500, 600, 700, 800]
    out["rs_block_10khz"] = ("pospischil", dataclasses.replace(RS, g_k=2.0), 10_000, 8.0, 0.2,
                             np.array([_steps(n, 0.0, [(100, 1100, a)]) for a in amps]))
    amps = [-100, 0, 50, 100, 150, 200, 250, 300, 350, 400, 500, 600]
    out["fs_block_20khz"] = ("pospischil_fs", dataclasses.replace(FS, g_k=2.0), 20_000, 10.0, 0.2,
                             np.array([_steps(n, 0.0, [(100, 1100, a)]) for a in amps]))
    amps = [-100, -50, 0, 50, 100, 150, 200, 250, 300]
    out["rs_early_block_10khz"] = ("pospischil", dataclasses.replace(RS, g_k=1.5, g_na=40.0), 10_000, 8.0, 0.2,
                                   np.array([_steps(n, 0.0, [(100, 1100, a)]) for a in amps]))
    n = int(3000 / SIM_DT)
    amps = [-50, -25, 0, 25, 50, 75, 100, 125, 150]
    out["fs_dual_step_20khz"] = ("pospischil_fs", FS, 20_000, 10.0, 0.2, np.array(
        [_steps(n, 100.0, [(150, 650, a), (1150, 1650, -100), (1650, 2150, a)]) for a in amps]))
    n = int(2500 / SIM_DT)
    out["rs_ramp_4khz"] = ("pospischil", RS, 4_000, 8.0, 0.5, np.array(
        [_ramp(n, h, 200, 2200, 250.0) for h in range(-40, 81, 15)]))
    n = int(1500 / SIM_DT)
    amps = [0, 100, 150, 200, 250, 300, 400, 500]
    adapting = dataclasses.replace(RS, g_m=0.2, tau_max=800.0, v_t=-55.0)
    out["rs_adapting_prepulse_50khz"] = ("pospischil", adapting, 50_000, 8.0, 0.1, np.array(
        [_steps(n, 0.0, [(100, 300, -50), (400, 1400, a)]) for a in amps]))
    n = int(1500 / SIM_DT)
    amps = [-200, -150, -100, -50, 0, 50, 100, 150]
    out["lts_rebound_10khz"] = ("pospischil_lts", LTS, 10_000, 8.0, 0.2,
                                np.array([_steps(n, 0.0, [(200, 900, a)]) for a in amps]))
    n = int(1400 / SIM_DT)
    amps = [-100, 0, 200, 400, 500, 600, 700, 750, 800, 850, 900, 1000]
    out["rs_plateau_10khz"] = ("pospischil", PLATEAU, 10_000, 8.0, 0.2,
                               np.array([_steps(n, 0.0, [(100, 1100, a)]) for a in amps]))
    return out


SCALED = ("g_na", "g_k", "g_m", "g_l", "g_cat", "tau_max", "area")  # x exp(U(-log 1.25, log 1.25))
SHIFTED = ("v_t", "e_l")  # + U(-3, 3) mV


def drawn(params, command, draw, index):
    """Cell ``index`` of draw ``draw``: its parameters perturbed as the module docstring says,
    and its command scaled by the area factor (draw 0: both unchanged)."""
    if draw == 0:
        return params, command
    rng = np.random.default_rng([draw, index])
    new = {}
    for f in dataclasses.fields(params):
        x = getattr(params, f.name)
        if f.name in SCALED:
            new[f.name] = x * float(np.exp(rng.uniform(-np.log(1.25), np.log(1.25))))
        elif f.name in SHIFTED:
            new[f.name] = x + float(rng.uniform(-3.0, 3.0))
    out = dataclasses.replace(params, **new)
    return out, command * (out.area / params.area)


def make(name, model, params, rate, noise_pa, rec_noise, command, key, sim_dt=SIM_DT):
    """The :class:`Recording` and its true per-sweep spike counts (``command`` on a grid of
    ``sim_dt`` ms, the simulation's step)."""
    k_noise, k_rec = jax.random.split(key)
    n_settle = int(SETTLE_MS / sim_dt)
    drive = np.concatenate([np.repeat(command[:, :1], n_settle, 1), command], 1)
    noise = stimulus.ou_noise(k_noise, duration=(drive.shape[1] - 1) * sim_dt, dt=sim_dt, sigma=noise_pa,
                              shape=(drive.shape[0],))
    stim = stimulus.sampled(jnp.asarray(drive) + noise.values, sim_dt)
    trace = hhjax.simulate(params, stim, duration=(drive.shape[1] - 1) * sim_dt, dt=sim_dt)
    clean = np.asarray(trace.v)[:, n_settle:]
    crossings = np.sum((clean[:, :-1] < 0) & (clean[:, 1:] >= 0), 1)
    every = int(round(1000.0 / rate / sim_dt))
    if abs(every * sim_dt - 1000.0 / rate) > 1e-9:  # else the file's time axis would be stretched
        raise ValueError(f"{name}: {rate} Hz is not a whole fraction of the {1 / sim_dt:.0f} kHz simulation")
    v = clean[:, ::every]
    i = command[:, ::every][:, : v.shape[1]]
    v = v + rec_noise * np.asarray(jax.random.normal(k_rec, v.shape))
    t = np.arange(v.shape[1]) * (1000.0 / rate)
    rec = Recording(t, v, i, tuple(range(v.shape[0])), float(rate), f"{name}.npz")
    return rec, [int(c) for c in crossings]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="folder to write the recordings and TRUTH.json into")
    ap.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    ap.add_argument("--draw", type=int, default=0,
                    help="0: the cells as listed; K > 0: other cells of the same classes (see above)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    truth = {}
    key = jax.random.PRNGKey(args.seed)
    for index, (name, (model, params, rate, noise_pa, rec_noise, command)) in enumerate(cells().items()):
        key, sub = jax.random.split(key)
        params, command = drawn(params, command, args.draw, index)
        rec, counts = make(name, model, params, rate, noise_pa, rec_noise, command, sub)
        rec.to_npz(out / f"{name}.npz")
        truth[name] = {"model": model, "params": {f.name: float(getattr(params, f.name))
                                                  for f in dataclasses.fields(params)},
                       "sampling_rate_hz": rate, "noise_current_pA": noise_pa, "noise_tau_ms": 5.0,
                       "recording_noise_mV": rec_noise, "seed": args.seed, "draw": args.draw, "true_spikes": counts}
        print(f"{name}: {rec.n_sweeps} sweeps, spikes {counts}", file=sys.stderr)
    (out / "TRUTH.json").write_text(json.dumps(truth, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
