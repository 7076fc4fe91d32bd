"""Write synthetic cells as the Allen Cell Types Database's NWB 1 files (``ephys.nwb``), for
the panel benchmark on that format and its protocol.

    python scripts/allen_layout_cells.py OUT
    python scripts/bench_recordings.py OUT --out scripts/bench_allen_layout.json

No Allen file is in the repository (nor in ``../shared``), so hhjax's NWB 1 reader
(:mod:`hhjax.io.nwb1`) is checked on files written here in the layout the AllenSDK's
``NwbDataSet`` reads (:func:`write_nwb1`), with what the Allen protocol brings that the panel
lacks: 200 kHz sampling, a test pulse 20 ms into every sweep (-50 pA, 10 ms), 1 s steps
("Long Square") after 1 s of baseline, a noise sweep of another length ("Noise 1") beside
them, and values in volts and amperes. The cells are made as ``synthetic_cells.py`` makes
its own (an unrecorded OU noise current, 1 s at holding before each sweep, white recording
noise): an RS cell, an FS cell with more recording noise (1 mV) and an FS cell driven into
depolarisation block, all in the class of the default fit target, so a miss is the
fitter's. ``OUT/TRUTH.json`` holds each cell's per-sweep 0 mV crossing counts of the
noise-free voltage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_cells import _steps, make  # noqa: E402  (the same rig model)

from hhjax.models.pospischil import FS, RS  # noqa: E402

RATE_HZ = 200_000
SIM_DT = 1000.0 / RATE_HZ  # ms: the simulation's step is the sampling interval
TEST_PULSE = (20.0, 30.0, -50.0)  # ms, ms, pA
SWEEP_MS, STEP_MS = 3020.0, (1020.0, 2020.0)


def write_nwb1(path, sweeps, version: str | None = "1.1", rate_hz: float = RATE_HZ) -> None:
    """Write ``sweeps`` (``(number, protocol, v in V, i in A, scale, kind)``) as an NWB 1 file
    in the AllenSDK's layout: ``/acquisition/timeseries/Sweep_N`` and
    ``/stimulus/presentation/Sweep_N`` (``data`` with ``unit`` and ``conversion``,
    ``starting_time`` with the ``rate``, ``aibs_stimulus_name``), ``/epochs/Sweep_N`` and
    ``/epochs/Experiment_N`` (the sweep after its first 200 samples) linking them, and the
    pipeline's ``version`` in ``/general/generated_by`` (None: none, an early file), every
    series sampled at ``rate_hz``.

    ``kind`` is "I" (current clamp), "V" (a voltage command: voltage clamp), "cut" (the
    experiment ends 100 samples before the sweep) or "nan" (its last 100 voltage samples
    NaN). Values are stored divided by ``scale``, which is their ``conversion``; an early
    file (``version`` None) stores volts and amperes with that ``conversion`` anyway, wrong,
    as the AllenSDK says such files do."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("nwb_version", data=b"NWB-1.0.5")
        if version is not None:
            f.create_dataset("general/generated_by", data=[b"version", version.encode(), b"program", b"pipeline"])
        for n, name, v, i, scale, kind in sweeps:
            stored = 1.0 if version is None else scale
            if kind == "nan":
                v = np.where(np.arange(v.size) >= v.size - 100, np.nan, v)
            groups = {}
            for where, data, unit in ((f"acquisition/timeseries/Sweep_{n}", v, "Volts"),
                                      (f"stimulus/presentation/Sweep_{n}", i, "Volts" if kind == "V" else "Amps")):
                g = f.create_group(where)
                d = g.create_dataset("data", data=np.asarray(data / stored, np.float32))
                d.attrs["unit"], d.attrs["conversion"] = unit, scale
                g.create_dataset("starting_time", data=0.0).attrs["rate"] = float(rate_hz)
                g.create_dataset("aibs_stimulus_name", data=name.encode())
                groups[where.split("/")[0]] = g.name
            for epoch, start in ((f"Sweep_{n}", 0), (f"Experiment_{n}", 200)):
                count = v.size - start - (100 if kind == "cut" and start else 0)
                for side, target in (("stimulus", groups["stimulus"]), ("response", groups["acquisition"])):
                    g = f.create_group(f"epochs/{epoch}/{side}")
                    g.create_dataset("idx_start", data=start)
                    g.create_dataset("count", data=count)
                    g["timeseries"] = h5py.SoftLink(target)


def cells():
    """``{name: (params, rec_noise_mV, step amplitudes pA)}``."""
    steps = [-110, -70, -30, 10, 50, 90, 130, 170, 210, 250, 290, 330]
    return {"rs_allen_layout": (RS, 0.5, steps),
            "fs_allen_layout_noisy": (FS, 1.0, steps),
            "fs_block_allen_layout": (dataclasses.replace(FS, g_k=2.0), 0.5,
                                      [-110, -50, 10, 70, 130, 190, 250, 310, 370, 430, 490, 550])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="folder to write the .nwb files and TRUTH.json into")
    ap.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    key, truth = jax.random.PRNGKey(args.seed), {}
    n = int(round(SWEEP_MS / SIM_DT))
    for name, (params, rec_noise, amps) in cells().items():
        key, k_steps, k_noise = jax.random.split(key, 3)
        command = np.array([_steps(n, 0.0, [TEST_PULSE, (*STEP_MS, a)], sim_dt=SIM_DT) for a in amps])
        rec, counts = make(name, "pospischil", params, RATE_HZ, 10.0, rec_noise, command, k_steps, sim_dt=SIM_DT)
        # A noise sweep of another length (5 s): 250 pA for 3 s with 60 pA steps of noise every 5 ms.
        m = int(round(5000.0 / SIM_DT))
        rng = np.random.default_rng(args.seed)
        jitter = np.repeat(rng.normal(0.0, 60.0, m // 1000 + 1), 1000)[:m]
        on = (np.arange(m) * SIM_DT >= 1000.0) & (np.arange(m) * SIM_DT < 4000.0)
        noisy, noisy_counts = make(name, "pospischil", params, RATE_HZ, 10.0, rec_noise,
                                   (_steps(m, 0.0, [(1000.0, 4000.0, 250.0)], sim_dt=SIM_DT) + on * jitter)[None],
                                   k_noise, sim_dt=SIM_DT)
        sweeps = [(10 + 2 * k, "Long Square", rec.v[k] * 1e-3, rec.i[k] * 1e-12, 1.0, "I") for k in range(rec.n_sweeps)]
        sweeps.append((60, "Noise 1", noisy.v[0] * 1e-3, noisy.i[0] * 1e-12, 1.0, "I"))
        write_nwb1(out / f"{name}.nwb", sweeps)
        truth[name] = {"params": {f.name: float(getattr(params, f.name)) for f in dataclasses.fields(params)},
                       "sampling_rate_hz": RATE_HZ, "recording_noise_mV": rec_noise, "seed": args.seed,
                       "sweeps": [s[0] for s in sweeps[:-1]], "true_spikes": counts,
                       "noise_sweep_true_spikes": noisy_counts}
        print(f"{name}: {rec.n_sweeps} Long Square sweeps, spikes {counts}; noise sweep {noisy_counts}", file=sys.stderr)
    (out / "TRUTH.json").write_text(json.dumps(truth, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
