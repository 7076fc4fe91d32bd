"""Write a folder of synthetic recordings of cells from *other published models* than
hhjax's fit targets, simulated here in numpy (not with hhjax), for the panel benchmark.

    python scripts/foreign_cells.py OUT [--seed 0] [--draw 0]
    python scripts/bench_recordings.py OUT --out foreign.json --figures figs

``synthetic_cells.py`` draws cells from the Pospischil family the fit searches, so a miss
there is the fitter's. A recorded cell is never in that family. These cells are not
either: their channels have other kinetics, other currents, or a dendrite, so they test
whether the fit's rules hold where the model can only approximate the cell. Each is made
as a rig makes a recording (as in ``synthetic_cells.py``): an unrecorded Ornstein–Uhlenbeck
noise current (σ pA, τ 5 ms), 1 s at the holding current before each sweep, the rig's
sampling rate and white recording noise.

The cells (:func:`cells`):

* ``wb_fs_20khz``: Wang & Buzsáki 1996's fast-spiking interneuron (instantaneous Na
  activation, φ = 5): type I, no adaptation, rates to ~200 Hz;
* ``cs_a_current_25khz``: Connor & Stevens' A-current cell as in Dayan & Abbott 2001
  (ch. 6): type I with very low rates near rheobase and a delayed first spike;
* ``hh_squid_10khz``: Hodgkin & Huxley 1952 at 6.3 °C: type II (near threshold, with the
  noise current, a few spikes and then silence; above it, firing at once at 30-80 Hz),
  broad spikes that peak below 0 mV under the strongest steps;
* ``traub_ahp_10khz``: Traub's pyramidal-cell kinetics (as in Ermentrout 1998) with a
  high-threshold Ca current and a Ca-activated AHP current: adaptation by calcium, not by
  an M current;
* ``pyramidal_ih_dendrite_20khz``: an RS soma (Traub kinetics, M current) with an h current
  (Huguenard & McCormick 1992) and a passive dendrite of four times its area: sag on
  hyperpolarising steps, a second charging time constant.

``--draw K`` (K > 0) multiplies each cell's conductances and area by factors drawn
log-uniformly from [0.8, 1.25] and scales the command with the area. ``OUT/TRUTH.json``
holds each cell's parameters and, per sweep, its spikes counted on the simulated voltage
before recording noise, independently of hhjax's detector: upward crossings of −20 mV, each
after the voltage has been below −45 mV (:func:`true_spikes`; 0 mV would miss the HH cell's
spikes under strong steps, which peak below it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_cells import SETTLE_MS, SIM_DT, _steps  # noqa: E402  (the same rig: 100 kHz, 1 s settling)

from hhjax.io import Recording  # noqa: E402


def _x(z):
    """z / (1 - exp(-z)), finite at 0 (the rate functions' removable singularity)."""
    z = np.where(np.abs(z) < 1e-6, 1e-6, z)
    return z / -np.expm1(-z)


def _gate(x, inf, tau, dt):
    """Exponential-Euler step of a gate towards ``inf`` with time constant ``tau`` (ms)."""
    return inf + (x - inf) * np.exp(-dt / tau)


def _ab(alpha, beta):
    return alpha / (alpha + beta), 1.0 / (alpha + beta)


def _gates(state, names, rates, dt):
    """Each gate of ``names`` stepped towards its ``(inf, tau)`` of ``rates``, in order."""
    return {k: _gate(state[k], inf, tau, dt) for k, (inf, tau) in zip(names, rates)}


def _steady(names, rates):
    """Each gate of ``names`` at its steady state (the ``inf`` of its ``(inf, tau)``)."""
    return {k: inf for k, (inf, _) in zip(names, rates)}


def _gated(names, rates, current):
    """``(init, step)`` of a one-compartment model whose gates ``names`` all follow
    ``rates(v)`` (their ``(inf, tau)``, in order) and whose ionic current density is
    ``current(state)`` (µA/cm²)."""
    def step(s, i, dt):
        new = _gates(s, names, rates(s["v"]), dt)
        new["v"] = s["v"] + dt * (i - current(s))
        return new

    def init(v):
        return {"v": v, **_steady(names, rates(v))}
    return init, step


# Each model: (initial state dict given v, step(state, i_density, dt) -> state). Units:
# mV, ms, mS/cm², µA/cm², µF/cm² (c_m = 1 throughout).

def wang_buzsaki(p):
    def rates(v):
        am = _x((v + 35) / 10)  # 0.1 (V+35) / (1 - exp(-(V+35)/10))
        bm = 4 * np.exp(-(v + 60) / 18)
        ah = 0.07 * np.exp(-(v + 58) / 20)
        bh = 1 / (np.exp(-(v + 28) / 10) + 1)
        an = 0.1 * _x((v + 34) / 10)
        bn = 0.125 * np.exp(-(v + 44) / 80)
        return am / (am + bm), _ab(5 * ah, 5 * bh), _ab(5 * an, 5 * bn)

    def step(s, i, dt):
        v = s["v"]
        m, (h_inf, h_tau), (n_inf, n_tau) = rates(v)
        di = (p["g_na"] * m ** 3 * s["h"] * (v - 55) + p["g_k"] * s["n"] ** 4 * (v + 90) + p["g_l"] * (v + 65))
        return {"v": v + dt * (i - di), "h": _gate(s["h"], h_inf, h_tau, dt), "n": _gate(s["n"], n_inf, n_tau, dt)}

    def init(v):
        _, (h, _), (n, _) = rates(v)
        return {"v": v, "h": h, "n": n}
    return init, step


def connor_stevens(p):
    def rates(v):
        am = 0.38 * 10 * _x(0.1 * (v + 29.7))
        bm = 15.2 * np.exp(-0.0556 * (v + 54.7))
        ah = 0.266 * np.exp(-0.05 * (v + 48))
        bh = 3.8 / (1 + np.exp(-0.1 * (v + 18)))
        an = 0.02 * 10 * _x(0.1 * (v + 45.7))
        bn = 0.25 * np.exp(-0.0125 * (v + 55.7))
        a_inf = (0.0761 * np.exp(0.0314 * (v + 94.22)) / (1 + np.exp(0.0346 * (v + 1.17)))) ** (1 / 3)
        a_tau = 0.3632 + 1.158 / (1 + np.exp(0.0497 * (v + 55.96)))
        b_inf = (1 / (1 + np.exp(0.0688 * (v + 53.3)))) ** 4
        b_tau = 1.24 + 2.678 / (1 + np.exp(0.0624 * (v + 50)))
        return _ab(am, bm), _ab(ah, bh), _ab(an, bn), (a_inf, a_tau), (b_inf, b_tau)

    def current(s):
        v = s["v"]
        return (p["g_na"] * s["m"] ** 3 * s["h"] * (v - 55) + p["g_k"] * s["n"] ** 4 * (v + 72)
                + p["g_a"] * s["a"] ** 3 * s["b"] * (v + 75) + p["g_l"] * (v + 17))
    return _gated("mhnab", rates, current)


def hodgkin_huxley(p):
    def rates(v):
        am = 0.1 * 10 * _x((v + 40) / 10)
        bm = 4 * np.exp(-(v + 65) / 18)
        ah = 0.07 * np.exp(-(v + 65) / 20)
        bh = 1 / (1 + np.exp(-(v + 35) / 10))
        an = 0.01 * 10 * _x((v + 55) / 10)
        bn = 0.125 * np.exp(-(v + 65) / 80)
        return _ab(am, bm), _ab(ah, bh), _ab(an, bn)

    def current(s):
        v = s["v"]
        return p["g_na"] * s["m"] ** 3 * s["h"] * (v - 50) + p["g_k"] * s["n"] ** 4 * (v + 77) + p["g_l"] * (v + 54.387)
    return _gated("mhn", rates, current)


def _traub_rates(v, v_t):
    """Traub & Miles' Na and K rates, ``v_t`` their threshold shift (as Pospischil 2008 write them)."""
    u = v - v_t
    am = 0.32 * 4 * _x((u - 13) / 4)
    bm = 0.28 * 5 * _x(-(u - 40) / 5)
    ah = 0.128 * np.exp(-(u - 17) / 18)
    bh = 4 / (1 + np.exp(-(u - 40) / 5))
    an = 0.032 * 5 * _x((u - 15) / 5)
    bn = 0.5 * np.exp(-(u - 10) / 40)
    return _ab(am, bm), _ab(ah, bh), _ab(an, bn)


def traub_ahp(p):
    def ca_inf(v):
        return 1 / (1 + np.exp(-(v + 25) / 2.5))

    def step(s, i, dt):
        v = s["v"]
        r = _traub_rates(v, p["v_t"])
        i_ca = p["g_ca"] * ca_inf(v) * (v - 120)
        ahp = p["g_ahp"] * s["ca"] / (s["ca"] + 1.0)
        di = (p["g_na"] * s["m"] ** 3 * s["h"] * (v - 50) + (p["g_k"] * s["n"] ** 4 + ahp) * (v + 100)
              + p["g_l"] * (v + 67) + i_ca)
        new = _gates(s, "mhn", r, dt)
        new["ca"] = s["ca"] + dt * (-0.002 * i_ca - s["ca"] / 80)
        new["v"] = v + dt * (i - di)
        return new

    def init(v):
        return {"v": v, "ca": np.zeros_like(v), **_steady("mhn", _traub_rates(v, p["v_t"]))}
    return init, step


def pyramidal_ih_dendrite(p):
    """Soma (area ``area``) and a passive dendrite (``dend_ratio`` × area) joined by ``g_c`` nS."""
    def h_rates(v):
        tau = 1 / (np.exp(-14.59 - 0.086 * v) + np.exp(-1.87 + 0.0701 * v))
        return 1 / (1 + np.exp((v + 75) / 5.5)), tau

    def m_rates(v):  # the M current of Pospischil 2008 (Yamada's kinetics)
        inf = 1 / (1 + np.exp(-(v + 35) / 10))
        tau = p["tau_max"] / (3.3 * np.exp((v + 35) / 20) + np.exp(-(v + 35) / 20))
        return inf, tau

    coupling = p["g_c"] * 1e-6 / p["area"]  # nS -> mS/cm² of soma
    ratio = p["dend_ratio"]

    def step(s, i, dt):
        v, vd = s["v"], s["vd"]
        r = _traub_rates(v, p["v_t"])
        di = (p["g_na"] * s["m"] ** 3 * s["h"] * (v - 50) + p["g_k"] * s["n"] ** 4 * (v + 90)
              + p["g_m"] * s["p"] * (v + 90) + p["g_h"] * s["q"] * (v + 43) + p["g_l"] * (v + 70)
              + coupling * (v - vd))
        did = p["g_h"] * s["qd"] * (vd + 43) + p["g_l"] * (vd + 70) + coupling / ratio * (vd - v)
        new = _gates(s, "mhn", r, dt)
        new["p"] = _gate(s["p"], *m_rates(v), dt)
        new["q"] = _gate(s["q"], *h_rates(v), dt)
        new["qd"] = _gate(s["qd"], *h_rates(vd), dt)
        new["v"] = v + dt * (i - di)
        new["vd"] = vd + dt * -did
        return new

    def init(v):
        s = _steady("mhn", _traub_rates(v, p["v_t"]))
        return {"v": v, "vd": v, "p": m_rates(v)[0], "q": h_rates(v)[0], "qd": h_rates(v)[0], **s}
    return init, step


SCALED = ("g_na", "g_k", "g_l", "g_a", "g_ca", "g_ahp", "g_m", "g_h", "g_c", "area")


def cells():
    """``{name: (model, params, rate_hz, noise_pA, recording_noise_mV, v0_mV, commands)}``."""
    n = int(1400 / SIM_DT)

    def steps(amps, start=100.0, stop=1100.0):
        return np.array([_steps(n, 0.0, [(start, stop, a)]) for a in amps])
    return {
        "wb_fs_20khz": (wang_buzsaki, dict(g_na=35.0, g_k=9.0, g_l=0.1, area=2e-4), 20_000, 8.0, 0.2, -64.0,
                        steps([-100, 0, 25, 50, 100, 150, 200, 300, 400, 500])),
        "cs_a_current_25khz": (connor_stevens, dict(g_na=120.0, g_k=20.0, g_a=47.7, g_l=0.3, area=2e-5), 25_000,
                               8.0, 0.2, -68.0, steps([-100, 0, 100, 150, 175, 200, 250, 300, 400, 500])),
        "hh_squid_10khz": (hodgkin_huxley, dict(g_na=120.0, g_k=36.0, g_l=0.3, area=1e-5), 10_000, 5.0, 0.2, -65.0,
                           steps([-50, 0, 25, 50, 75, 100, 150, 200, 300, 500])),
        "traub_ahp_10khz": (traub_ahp, dict(g_na=100.0, g_k=80.0, g_l=0.1, g_ca=1.0, g_ahp=0.3, v_t=-67.0,
                                            area=2e-4), 10_000, 8.0, 0.2, -67.0,
                            steps([-100, 0, 50, 100, 150, 200, 300, 400, 600, 800])),
        "pyramidal_ih_dendrite_20khz": (pyramidal_ih_dendrite, dict(
            g_na=50.0, g_k=5.0, g_m=0.15, tau_max=1000.0, g_h=0.03, g_l=0.04, g_c=30.0, dend_ratio=4.0,
            v_t=-58.0, area=1e-4), 20_000, 8.0, 0.2, -70.0,
            steps([-200, -100, -50, 0, 100, 200, 300, 400, 500, 600, 800])),
    }


def true_spikes(v: np.ndarray) -> np.ndarray:
    """Spikes per row of noise-free ``v`` (mV): upward crossings of −20 mV, each re-armed by a
    visit below −45 mV. None of these cells has spikes or plateaus that break this rule."""
    counts = np.zeros(v.shape[0], dtype=int)
    for r, row in enumerate(v):
        armed = False
        for below, above in zip(row < -45.0, row >= -20.0):
            if below:
                armed = True
            elif above and armed:
                counts[r] += 1
                armed = False
    return counts


def drawn(params, command, draw, index):
    if draw == 0:
        return params, command
    rng = np.random.default_rng([draw, index, 7])
    new = {k: (x * float(np.exp(rng.uniform(-np.log(1.25), np.log(1.25)))) if k in SCALED else x)
           for k, x in params.items()}
    return new, command * (new["area"] / params["area"])


def simulate(model, params, drive, v0, noise_pa, rng):
    """Voltage (sweeps, samples) of SIM_DT under ``drive`` (pA) plus OU noise (σ ``noise_pa``)."""
    init, step = model(params)
    a = np.exp(-SIM_DT / 5.0)
    noise = rng.standard_normal(drive.shape[0]) * noise_pa
    state = init(np.full(drive.shape[0], v0))
    out = np.empty(drive.shape)
    to_density = 1e-6 / params["area"]  # pA -> µA/cm²
    for k in range(drive.shape[1]):
        out[:, k] = state["v"]
        state = step(state, (drive[:, k] + noise) * to_density, SIM_DT)
        noise = a * noise + np.sqrt(1 - a * a) * noise_pa * rng.standard_normal(drive.shape[0])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="folder to write the recordings and TRUTH.json into")
    ap.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    ap.add_argument("--draw", type=int, default=0, help="0: the cells as listed; K > 0: perturbed cells")
    ap.add_argument("--only", default=None, help="write only the cells whose names contain this")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    truth_file = out / "TRUTH.json"
    truth = json.loads(truth_file.read_text()) if truth_file.exists() else {}
    for index, (name, (model, params, rate, noise_pa, rec_noise, v0, command)) in enumerate(cells().items()):
        if args.only and args.only not in name:
            continue
        rng = np.random.default_rng([args.seed, index])
        params, command = drawn(params, command, args.draw, index)
        n_settle = int(SETTLE_MS / SIM_DT)
        drive = np.concatenate([np.repeat(command[:, :1], n_settle, 1), command], 1)
        clean = simulate(model, params, drive, v0, noise_pa, rng)[:, n_settle:]
        if not np.all(np.isfinite(clean)):
            raise RuntimeError(f"{name}: the simulation diverged")
        counts = true_spikes(clean)
        every = int(round(1000.0 / rate / SIM_DT))
        v = clean[:, ::every] + rec_noise * rng.standard_normal(clean[:, ::every].shape)
        i = command[:, ::every]
        t = np.arange(v.shape[1]) * (1000.0 / rate)
        Recording(t, v, i, tuple(range(v.shape[0])), float(rate), f"{name}.npz").to_npz(out / f"{name}.npz")
        truth[name] = {"model": model.__name__, "params": params, "sampling_rate_hz": rate,
                       "noise_current_pA": noise_pa, "recording_noise_mV": rec_noise, "seed": args.seed,
                       "draw": args.draw, "true_spikes": [int(c) for c in counts]}
        print(f"{name}: rest {np.median(clean[1, :900]):.1f} mV, spikes {counts.tolist()}", file=sys.stderr)
    truth_file.write_text(json.dumps(truth, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
