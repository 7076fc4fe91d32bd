"""Spike counts of every sweep of every recording: the by-eye reference
(tests/data/spike_counts.csv) against hhjax's detector, eFEL and, if installed, IPFX.

    python scripts/compare_detectors.py [--data DIR] [--out scripts/compare_detectors] [--allensdk SDIST]

writes ``OUT.json`` (one row per sweep: reference, hhjax, efel, ipfx counts, and the
sampling rate) and ``OUT.md`` (agreement per detector, every disagreement with its
likely cause). Each detector runs with its own defaults: eFEL ``Spikecount`` (threshold
-20 mV, 0.1 ms interpolation), IPFX ``SpikeFeatureExtractor`` (dV/dt > 20 mV/ms onset,
10 kHz Bessel filter, which IPFX cannot apply below 20 kHz sampling: there ``filter=None``).
The same comparison is repeated with each 20 kHz recording decimated to 4 kHz.
IPFX is optional: ``pip install --no-deps ipfx`` (its feature extractor needs only NumPy,
SciPy and pandas; its full pins clash with current NumPy). Without it its column is empty.
``--allensdk SDIST`` adds AllenSDK's three test traces (200 kHz Allen recordings) with the
spikes its own tests expect.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's hhjax; the table's own loader

from recordings_all import data_dir, sweeps  # noqa: E402

from hhjax.analysis.spikes import spike_peaks  # noqa: E402


def efel_peaks(t, v):
    """eFEL ``peak_time`` (ms) with its defaults (threshold -20 mV, 0.1 ms interpolation)."""
    import efel  # optional: only for this comparison

    efel.reset()
    r = efel.get_feature_values([{"T": t, "V": v, "stim_start": [t[0]], "stim_end": [t[-1]]}],
                                ["peak_time"], raise_warnings=False)[0]["peak_time"]
    return np.zeros(0) if r is None else np.asarray(r, float)


def ipfx_peaks(t, v):
    """IPFX ``peak_t`` (ms) with its defaults, or None where IPFX is not installed."""
    try:
        from ipfx.feature_extractor import SpikeFeatureExtractor  # optional: only for this comparison
    except ImportError:
        return None
    rate_khz = 1.0 / (t[1] - t[0])
    ext = SpikeFeatureExtractor(filter=10.0 if rate_khz > 20.0 else None)
    df = ext.process(t / 1000.0, v, np.zeros_like(v))
    return np.zeros(0) if len(df) == 0 else 1000.0 * np.asarray(df["peak_t"], float)


def _describe(t, v, tp):
    """Shape of the spike peaking at ``tp`` (ms): peak, preceding 5 ms trough, max dV/dt."""
    i = int(np.argmin(np.abs(t - tp)))
    j = max(0, i - int(round(5.0 / (t[1] - t[0]))))
    return (f"{tp:.1f} ms (peak {v[i]:+.0f} mV, trough {v[j:i + 1].min():+.0f} mV, "
            f"max dV/dt {np.max(np.diff(v[j:i + 1]) / np.diff(t[j:i + 1])) if i > j else np.nan:.0f} mV/ms)")


def _unmatched(a, b, tol=2.0):
    """Times in ``a`` with no time of ``b`` within ``tol`` ms."""
    return [x for x in a if b.size == 0 or np.min(np.abs(b - x)) > tol]


def compare(records):
    rows = []
    for rec, k, t, v, ref in records:
        ours = t[spike_peaks(t, v)]
        row = {"recording": rec, "sweep": k, "rate_khz": round(1.0 / (t[1] - t[0]), 2),
               "reference": ref, "hhjax": int(ours.size)}
        for name, fn in (("efel", efel_peaks), ("ipfx", ipfx_peaks)):
            p = fn(t, v)
            row[name] = None if p is None else int(p.size)
            if p is not None and p.size != ours.size:
                row[name + "_missed"] = [_describe(t, v, x) for x in _unmatched(ours, p)]
                row[name + "_extra"] = [_describe(t, v, x) for x in _unmatched(p, ours)]
        rows.append(row)
    return rows


def synthetic():
    """Traces whose counts are known by construction (the cases of issue 14)."""
    rng = np.random.default_rng(0)
    t = np.arange(0.0, 300.0, 0.05)

    def spikes(times, base, peak, trough, rise=1.0, fall=2.0, rec=4.0):
        tk, vk = [0.0], [base]
        for s in times:
            tk += [s - rise, s, s + fall, s + fall + rec]
            vk += [base, peak, trough, base]
        return np.interp(t, tk + [400.0], vk + [base])

    plateau = spikes(np.arange(20.0, 280.0, 25.0), -17.0, 10.0, -19.0) + rng.normal(0, 0.3, t.size)
    block = np.where(t < 30, spikes([20.0], -65.0, 30.0, -70.0),
                     -20.0 + 4.0 * np.sin(2 * np.pi * t / 9.0)) + rng.normal(0, 0.3, t.size)
    noisy_plateau = np.where((t > 50) & (t < 250), -20.0, -65.0) + rng.normal(0, 0.7, t.size)
    hyper = spikes([50.0, 150.0, 250.0], -95.0, 20.0, -100.0)
    return [("plateau spikes -19 -> +10 mV", 11, plateau), ("depolarisation block at -20 mV", 1, block),
            ("noise on a -20 mV plateau", 0, noisy_plateau), ("spikes from -95 mV", 3, hyper)], t


# AllenSDK 0.16.0's tests of its own detector (allensdk/test/ephys/test_features.py and
# test_extractor.py): for three traces of Allen recordings, the sample indices of the spikes'
# peaks ("pair") or thresholds (the other two). Their licence forbids commercial
# redistribution, so the traces are read from the sdist, never copied into the repository.
ALLEN_EXPECTED = {"spike_test_pair": ("peak", [812, 3478]),
                  "spike_test_var_dt": ("threshold", [73, 183, 314, 463, 616, 770]),
                  "spike_test_high_init_dvdt": ("threshold", [11222, 16258, 24060])}


def allen_traces(sdist: Path) -> list:
    """One row per AllenSDK test trace: its expected spikes against hhjax's peaks. A
    threshold index matches the next hhjax peak within 2 ms after it; a peak index, its
    own sample. ``sdist``: ``allensdk-0.16.0.tar.bz2`` (``pip download --no-deps
    --no-binary :all: allensdk==0.16.0``) or the folder it unpacks to."""
    import contextlib
    import tarfile

    rows = []
    with (tarfile.open(sdist) if sdist.is_file() else contextlib.nullcontext()) as tar:
        for name, (kind, expected) in ALLEN_EXPECTED.items():
            member = f"allensdk-0.16.0/allensdk/test/ephys/data/{name}.txt"
            a = np.loadtxt(tar.extractfile(member) if tar else sdist / member.split("/", 1)[1])
            t, v = 1000.0 * a[:, 0], a[:, 1]   # s -> ms
            ours = spike_peaks(t, v)
            if kind == "peak":
                ok = ours.tolist() == expected
            else:
                ok = ours.size == len(expected) and all(0.0 < t[p] - t[e] < 2.0 for p, e in zip(ours, expected))
            rows.append({"trace": name, "samples": int(t.size), "dt_ms": [float(np.min(np.diff(t))), float(np.max(np.diff(t)))],
                         "allensdk_expects": kind, "allensdk_index": expected, "hhjax_peak_index": ours.tolist(),
                         "match": bool(ok)})
    return rows


def summary(rows, label):
    out = [f"### {label}", "", "| detector | sweeps matching the reference | spikes missed | spikes added |",
           "|---|---|---|---|"]
    for det in ("hhjax", "efel", "ipfx"):
        ok = [r for r in rows if isinstance(r[det], int)]
        if not ok:
            out.append(f"| {det} | not available | | |")
            continue
        d = np.array([r[det] - r["reference"] for r in ok])
        out.append(f"| {det} | {int(np.sum(d == 0))} / {len(rows)} | {int(-d[d < 0].sum())} | {int(d[d > 0].sum())} |")
    out += ["", "Disagreements (recording, sweep, kHz: reference / hhjax / eFEL / IPFX), with the "
            "spikes a detector missed or added relative to hhjax's:", ""]
    for r in rows:
        if any(r[d] != r["reference"] for d in ("hhjax", "efel", "ipfx") if r[d] is not None):
            out.append(f"- {r['recording']} {r['sweep']} ({r['rate_khz']} kHz): {r['reference']} / "
                       f"{r['hhjax']} / {r['efel']} / {r['ipfx']}")
            for key in ("efel_missed", "efel_extra", "ipfx_missed", "ipfx_extra"):
                if r.get(key):
                    shown = r[key][:3] + ([f"... {len(r[key]) - 3} more"] if len(r[key]) > 3 else [])
                    out.append(f"  - {key.replace('_', ' ')}: " + "; ".join(shown))
    return out + [""]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="recordings folder (default: ../shared/...)")
    ap.add_argument("--out", type=Path, default=ROOT / "scripts" / "compare_detectors")
    ap.add_argument("--allensdk", type=Path, default=None, metavar="SDIST",
                    help="allensdk-0.16.0.tar.bz2 (or its folder): also compare with the spikes AllenSDK's "
                         "own tests expect on its three test traces")
    args = ap.parse_args(argv)
    d = args.data or data_dir()
    if d is None:
        sys.exit("compare_detectors: no recordings folder found; pass --data DIR")
    with open(ROOT / "tests" / "data" / "spike_counts.csv", newline="") as f:
        ref = {(r["recording"], int(r["sweep"])): int(r["true_count"]) for r in csv.DictReader(f)}
    full = [(r, k, t, v, ref[r, k]) for r, k, t, v in sweeps(d)]
    coarse = [(r, k, t[::5], v[::5], n) for r, k, t, v, n in full if t[1] - t[0] < 0.1]
    rng = np.random.default_rng(0)
    variants = {"offset +40 mV": lambda t, v: (t, v + 40.0),
                "2 mV RMS white noise": lambda t, v: (t, v + rng.normal(0.0, 2.0, v.size)),
                "linearly upsampled to 50 kHz": lambda t, v: (np.arange(t[0], t[-1], 0.02),
                                                             np.interp(np.arange(t[0], t[-1], 0.02), t, v))}
    robust = {name: sum(int(spike_peaks(*f(t, v)).size != n) for _, _, t, v, n in full)
              for name, f in variants.items()}
    cases, t = synthetic()
    res = {"native": compare(full), "decimated_to_4kHz": compare(coarse),
           "synthetic": compare([(name, 0, t, v, n) for name, n, v in cases]),
           "hhjax_sweeps_off_the_reference_after": robust}
    md = ["# Spike detectors against the by-eye reference counts", ""]
    md += summary(res["native"], "Native sampling (20 kHz ABFs, 4 kHz current.txt and the Igor sets B6, B8, B95)")
    md += summary(res["decimated_to_4kHz"], "The 20 kHz recordings decimated to 4 kHz")
    md += summary(res["synthetic"], "Synthetic traces (counts by construction, 20 kHz)")
    md += ["### hhjax on altered recordings", "", "| alteration | sweeps off the reference |", "|---|---|"]
    md += [f"| {k} | {n} / {len(full)} |" for k, n in robust.items()] + [""]
    if args.allensdk is not None:
        res["allensdk"] = allen_traces(args.allensdk)
        md += ["### AllenSDK's own test traces", "",
               "Allen recordings at 200 kHz (one with a variable time step), with the spikes AllenSDK 0.16.0's "
               "tests expect (peak or threshold sample indices); the traces are read from its sdist, not shipped.",
               "", "| trace | samples | AllenSDK expects | hhjax peaks | match |", "|---|---|---|---|---|"]
        for r in res["allensdk"]:
            md.append(f"| {r['trace']} | {r['samples']} | {r['allensdk_expects']}s {r['allensdk_index']} | "
                      f"{r['hhjax_peak_index']} | {'yes' if r['match'] else 'NO'} |")
        md.append("")
    for path, text in ((args.out.with_suffix(".json"), json.dumps(res, indent=1)),
                       (args.out.with_suffix(".md"), "\n".join(md))):
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")  # atomic: no half-written output
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    print("\n".join(md))


if __name__ == "__main__":
    main()
