"""Fuzz :func:`hhjax.io.load_recording` with mutated real files (issue 16).

Each mutant of a real ABF file (from ``../shared/data/recordings``) or of a CSV written from
it (truncation, flipped bytes, absurd header integers, appended garbage; for CSV also NaN,
inf, huge numbers, missing fields) is loaded with a time limit (SIGALRM) and an address-space
limit (so a giant allocation fails instead of swapping). Only the documented exceptions
(``ValueError``, ``FileNotFoundError``) may come out; anything else, a timeout or a
``MemoryError`` counts as a failure. Counts go to JSON.

    python scripts/fuzz_loaders.py --mutants 1000 --out fuzz_loaders.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from hhjax.io import load_recording  # noqa: E402

RECORDINGS = HERE.parents[1] / "shared" / "data" / "recordings"
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


def fuzz(source: Path, suffix: str, n: int, rng, limit_s: float, text: bool):
    data = source.read_bytes()
    counts = {"mutants": 0, "loaded": 0, "documented_errors": 0, "failures": 0, "timeouts": 0,
              "max_seconds": 0.0, "by_mutation": {}, "failed": []}
    with tempfile.TemporaryDirectory() as d:
        for k in range(n):
            kind, blob = mutate(data, rng, text)
            path = Path(d) / f"m{k}{suffix}"
            path.write_bytes(blob)
            t0 = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, limit_s)
            outcome = "loaded"
            try:
                load_recording(path)
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
            counts["max_seconds"] = max(counts["max_seconds"], round(time.perf_counter() - t0, 3))
            counts["mutants"] += 1
            counts[outcome] += 1
            counts["by_mutation"].setdefault(kind, {}).setdefault(outcome, 0)
            counts["by_mutation"][kind][outcome] += 1
            path.unlink()
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", type=int, default=1000, help="per format")
    ap.add_argument("--seconds", type=float, default=10.0, help="time limit per load")
    ap.add_argument("--memory-gb", type=float, default=4.0, help="address-space limit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="fuzz_loaders.json")
    args = ap.parse_args()
    abf = RECORDINGS / "File_axon_5.abf"
    if not abf.is_file():
        sys.exit(f"fuzz_loaders: {abf} is absent (needs ../shared/data/recordings)")
    limit = int(args.memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _alarm)
    rng = np.random.default_rng(args.seed)
    rec = load_recording(abf)
    with tempfile.TemporaryDirectory() as d:
        csv = Path(d) / "cell.csv"
        sweep = 0
        rows = np.column_stack([rec.t, rec.v[sweep], rec.i[sweep]])
        csv.write_text("t_ms,v_mV,i_pA\n" + "\n".join(",".join(f"{x:.6g}" for x in r) for r in rows) + "\n")
        results = {"abf": fuzz(abf, ".abf", args.mutants, rng, args.seconds, False),
                   "csv": fuzz(csv, ".csv", args.mutants, rng, args.seconds, True)}
    results["settings"] = dict(seconds_per_load=args.seconds, memory_gb=args.memory_gb, seed=args.seed,
                               abf=abf.name)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    for fmt in ("abf", "csv"):
        r = results[fmt]
        print(fmt, {k: r[k] for k in ("mutants", "loaded", "documented_errors", "failures", "timeouts",
                                        "max_seconds")})


if __name__ == "__main__":
    main()
