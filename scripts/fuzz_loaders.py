"""Fuzz :func:`hhjax.io.load_recording` with mutated real files (issue 16).

Four formats, each from a real recording: the ABF file ``File_axon_5.abf`` (from
``../shared/data/recordings``, else the repository's ``data/recordings``); a CSV and an NWB
file (written with pynwb) holding its sweeps; the Igor wave pair of B6 sweep 181
(``data/recordings/B6``: voltage and current files, one of the two mutated, loaded as a
set). Each mutant (truncation, flipped bytes, absurd header integers, zeroed or inserted
blocks, appended garbage; for CSV also NaN, inf, huge numbers, missing fields) is loaded
with a time limit (SIGALRM) and an address-space limit (so a giant allocation fails instead
of swapping). Only the documented exceptions (``ValueError``, ``FileNotFoundError``) may
come out; anything else, a timeout or a ``MemoryError`` counts as a failure. A load stuck
in C code, where SIGALRM cannot reach, ends the run after 5x the limit with a traceback
(faulthandler). Counts go to JSON.

    python scripts/fuzz_loaders.py --mutants 1000 --out scripts/fuzz_loaders.json
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import resource
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from hhjax.io import load_recording  # noqa: E402

SHARED = HERE.parents[1] / "shared" / "data" / "recordings"
REPO = HERE.parent / "data" / "recordings"
DOCUMENTED = (ValueError, FileNotFoundError)


class Timeout(BaseException):  # not Exception: a loader must not swallow it
    pass


def _alarm(signum, frame):
    raise Timeout()


def mutate(data: bytes, rng, text: bool) -> tuple[str, bytes]:
    b = bytearray(data)
    kind = rng.choice(["truncate", "flip", "header", "append", "zero_block"] +
                      (["nan", "huge", "drop_field", "blank_lines"] if text else []))
    if kind == "truncate":
        b = b[: int(rng.integers(0, len(b)))]
    elif kind == "flip":
        for _ in range(int(rng.integers(1, 32))):
            k = int(rng.integers(0, len(b)))
            b[k] ^= 1 << int(rng.integers(0, 8))
    elif kind == "header":  # absurd sizes, counts and offsets in the first kilobytes
        for _ in range(int(rng.integers(1, 6))):
            k = int(rng.integers(0, max(min(len(b), 8192) - 4, 1)))
            value = int(rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, int(rng.integers(0, 2**32))]))
            b[k:k + 4] = value.to_bytes(4, "little")
    elif kind == "append":
        b += rng.bytes(int(rng.integers(1, 4096)))
    elif kind == "zero_block":
        k = int(rng.integers(0, len(b)))
        b[k:k + int(rng.integers(1, 4096))] = bytes(min(len(b) - k, 4096))[: len(b[k:k + 4096])]
    else:
        lines = bytes(b).split(b"\n")
        for _ in range(int(rng.integers(1, 5))):
            j = int(rng.integers(1, max(len(lines) - 1, 2)))
            fields = lines[j].split(b",")
            c = int(rng.integers(0, len(fields)))
            if kind == "nan":
                fields[c] = rng.choice([b"nan", b"inf", b"-inf", b"NaN"])
            elif kind == "huge":
                fields[c] = rng.choice([b"1e300", b"-1e308", b"1e999", b"99999999999999999999"])
            elif kind == "drop_field":
                fields.pop(c)
            else:
                fields = [b""]
            lines[j] = b",".join(fields)
        b = bytearray(b"\n".join(lines))
    return kind, bytes(b)


def fuzz(sources: list, n: int, rng, limit_s: float, text: bool, load=load_recording, keep=None):
    """Mutate one of ``sources`` per mutant and load them all; mutants slower than 1 s or
    failing are copied to the folder ``keep`` (if given) to be reproduced."""
    originals = [Path(p).read_bytes() for p in sources]
    counts = {"mutants": 0, "loaded": 0, "documented_errors": 0, "failures": 0, "timeouts": 0,
              "max_seconds": 0.0, "over_1s": 0, "by_mutation": {}, "failed": []}
    with tempfile.TemporaryDirectory() as d:
        paths = [Path(d) / Path(p).name for p in sources]
        for p, data in zip(paths, originals):
            p.write_bytes(data)
        for k in range(n):
            which = int(rng.integers(0, len(sources)))
            kind, blob = mutate(originals[which], rng, text)
            paths[which].write_bytes(blob)
            t0 = time.perf_counter()
            faulthandler.dump_traceback_later(5 * limit_s, exit=True)
            signal.setitimer(signal.ITIMER_REAL, limit_s)
            outcome = "loaded"
            try:
                load(paths if len(paths) > 1 else paths[0])
            except DOCUMENTED:
                outcome = "documented_errors"
            except Timeout:
                outcome = "timeouts"
            except Exception as exc:  # noqa: BLE001 - the point: any other exception is a finding
                outcome = "failures"
                if len(counts["failed"]) < 30:
                    counts["failed"].append(f"{kind}: {type(exc).__name__}: {str(exc)[:200]}")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                faulthandler.cancel_dump_traceback_later()
            seconds = time.perf_counter() - t0
            counts["max_seconds"] = max(counts["max_seconds"], round(seconds, 3))
            counts["over_1s"] += seconds > 1.0
            if keep is not None and (seconds > 1.0 or outcome in ("failures", "timeouts")):
                Path(keep).mkdir(parents=True, exist_ok=True)
                (Path(keep) / f"{k}_{kind}_{outcome}_{seconds:.1f}s_{paths[which].name}").write_bytes(blob)
            counts["mutants"] += 1
            counts[outcome] += 1
            counts["by_mutation"].setdefault(kind, {}).setdefault(outcome, 0)
            counts["by_mutation"][kind][outcome] += 1
            paths[which].write_bytes(originals[which])
    return counts


def _resident_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            return round(int(f.read().split("VmRSS:")[1].split()[0]) / 1024, 1)
    except (OSError, IndexError, ValueError):  # not Linux
        return float("nan")


def write_nwb(rec, path: Path) -> None:
    """The sweeps of ``rec`` as an NWB file (CurrentClampSeries + CurrentClampStimulusSeries)."""
    import datetime
    import warnings

    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

    nwb = NWBFile(session_description=f"from {Path(rec.source).name}", identifier="fuzz",
                  session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    el = nwb.create_icephys_electrode(name="e0", description="fuzz", device=nwb.create_device(name="amp"))
    for k, n in enumerate(rec.sweeps):
        nwb.add_acquisition(CurrentClampSeries(
            name=f"vm_{n}", data=rec.v[k].astype(np.float32), conversion=1e-3, electrode=el,
            rate=rec.sampling_rate_hz, gain=1.0, sweep_number=np.uint32(n)))
        nwb.add_stimulus(CurrentClampStimulusSeries(
            name=f"stim_{n}", data=rec.i[k].astype(np.float32), conversion=1e-12, electrode=el,
            rate=rec.sampling_rate_hz, gain=1.0, sweep_number=np.uint32(n)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", type=int, default=1000, help="per format")
    ap.add_argument("--formats", default="abf,csv,nwb,ibw", help="comma-separated subset")
    ap.add_argument("--seconds", type=float, default=10.0, help="time limit per load")
    ap.add_argument("--memory-gb", type=float, default=4.0, help="address-space limit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="scripts/fuzz_loaders.json")
    ap.add_argument("--keep", default=None, metavar="DIR", help="save slow or failing mutants here")
    args = ap.parse_args()
    abf = next((d / "File_axon_5.abf" for d in (SHARED, REPO) if (d / "File_axon_5.abf").is_file()), None)
    ibw = [REPO / "B6" / "B6_Ch3_IDRest_181.ibw", REPO / "B6" / "B6_Ch0_IDRest_181.ibw"]
    if abf is None or not all(p.is_file() for p in ibw):
        sys.exit("fuzz_loaders: needs File_axon_5.abf and data/recordings/B6")
    limit = int(args.memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _alarm)
    warnings.simplefilter("ignore")  # corrupted files warn (implausible voltage, broken HDF5 links)
    rng = np.random.default_rng(args.seed)
    rec = load_recording(abf)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    results = {}
    with tempfile.TemporaryDirectory() as d:
        csv, nwb = Path(d) / "cell.csv", Path(d) / "cell.nwb"
        sweep = 0
        rows = np.column_stack([rec.t, rec.v[sweep], rec.i[sweep]])
        csv.write_text("t_ms,v_mV,i_pA\n" + "\n".join(",".join(f"{x:.6g}" for x in r) for r in rows) + "\n")
        write_nwb(rec.select(list(rec.sweeps[:3])), nwb)
        sources = {"abf": ([abf], False), "csv": ([csv], True), "nwb": ([nwb], False), "ibw": (ibw, False)}
        for fmt in formats:
            t0 = time.perf_counter()
            results[fmt] = fuzz(sources[fmt][0], args.mutants, rng, args.seconds, sources[fmt][1],
                                keep=None if args.keep is None else Path(args.keep) / fmt)
            results[fmt]["wall_seconds"] = round(time.perf_counter() - t0, 1)
            results[fmt]["resident_mb_after"] = _resident_mb()
            print(fmt, {k: results[fmt][k] for k in ("mutants", "loaded", "documented_errors", "failures",
                                                      "timeouts", "max_seconds", "over_1s", "wall_seconds",
                                                      "resident_mb_after")}, flush=True)
    results["settings"] = dict(seconds_per_load=args.seconds, memory_gb=args.memory_gb, seed=args.seed,
                               abf=abf.name, nwb=f"3 sweeps of {abf.name} written with pynwb",
                               ibw=[p.name for p in ibw], load_average=os.getloadavg())
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
