"""Property fuzzing of :func:`hhjax.simulate` (issue 16): many more cases than CI runs.

Each case is a batch of 8 neurons of a random model (HH, Pospischil, reduced), method,
time step, parameters, initial voltages and step currents; the invariants are those of
``tests/properties.py`` (no NaN without ``diverged``, gates in range, finite reverse- and
forward-mode derivatives where not diverged, batch == single runs, jit == eager). A failing
case is recorded (not raised), with its invariant and its inputs (every one, so each can be
rerun with ``properties.check_case``), and the run goes on. jit/eager and batch/single
differences beyond the tolerance that a perturbation of the inputs by a few ulps also
produces are not failures (``tests/properties.py`` explains the rule); their neurons are
counted as ``rounding_excused``. Counts are written to JSON after every 100 cases
(atomically), so an interrupted run still reports what it did, with the load average and
the commit.

    python scripts/fuzz.py --cases 10000 --dtype both --out scripts/fuzz.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, os.path.join(HERE, ".."))


def _write(path, data):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def _jsonable(case):
    """The case with its arrays as lists (enough to rerun it with ``properties.check_case``)."""
    return {k: ({n: list(map(float, v)) for n, v in x.items()} if isinstance(x, dict)
                else x.tolist() if hasattr(x, "tolist") else x) for k, x in case.items()}


def _machine():
    """Load average and commit, recorded beside the counts (the machine may be shared)."""
    try:
        commit = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip() or None
    except OSError:
        commit = None
    return dict(load_average=[round(x, 2) for x in os.getloadavg()], cpus=os.cpu_count(), commit=commit)


def run_one_dtype(n_cases, out, seed, seconds):
    import jax
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    import properties as P

    counts = {"dtype": jax.dtypes.canonicalize_dtype(float).name, "cases": 0, "neurons": 0,
              "diverged_neurons": 0, "gradients_checked": 0, "rounding_excused": 0, "failures": 0,
              "failures_by_class": {}, "failed_cases": [], "by_method": {}, "seed": seed}
    t0 = time.perf_counter()

    @hseed(seed)
    @settings(max_examples=n_cases, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(P.cases(models=("hh", "pospischil", "reduced"), dts=(0.025, 0.1)))
    def fuzz(case):
        if time.perf_counter() - t0 > seconds:
            return
        label = f"{case['model']}/{case['method']}/dt={case['dt']}"
        try:
            P.check_case(case, counts)
            counts["by_method"][label] = counts["by_method"].get(label, 0) + 1
        except AssertionError as exc:
            counts["failures"] += 1
            counts["cases"] += 1
            text = str(exc)
            # Every check_case message starts with its invariant in brackets.
            kind = text[1:text.index("]")] if text.startswith("[") and "]" in text else "other"
            counts["failures_by_class"][kind] = counts["failures_by_class"].get(kind, 0) + 1
            counts["failed_cases"].append(dict(label=label, kind=kind, message=text[:300],
                                               case=_jsonable(case)))
        if counts["cases"] % 100 == 0:
            counts["wall_s"] = round(time.perf_counter() - t0, 1)
            _write(out, counts)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fuzz()
    counts["wall_s"] = round(time.perf_counter() - t0, 1)
    counts["machine_at_end"] = _machine()
    _write(out, counts)
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10000, help="cases per dtype")
    ap.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
    ap.add_argument("--seconds", type=float, default=float("inf"), help="stop each dtype after this")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="scripts/fuzz.json")
    args = ap.parse_args()
    if args.dtype == "both":
        results = {"machine_at_start": _machine()}
        for dtype in ("float32", "float64"):
            part = f"{args.out}.{dtype}.json"
            env = dict(os.environ, JAX_ENABLE_X64="1" if dtype == "float64" else "0")
            subprocess.run([sys.executable, __file__, "--cases", str(args.cases), "--dtype", dtype,
                            "--seconds", str(args.seconds), "--seed", str(args.seed), "--out", part],
                           env=env, check=False)
            with open(part) as f:
                results[dtype] = json.load(f)
            os.remove(part)
        parts = [results[d] for d in ("float32", "float64")]
        total = {k: sum(r[k] for r in parts) for k in ("cases", "neurons", "diverged_neurons",
                                                       "gradients_checked", "rounding_excused", "failures")}
        total["wall_s"] = round(sum(r["wall_s"] for r in parts), 1)
        _write(args.out, dict(total=total, **results))
        print(json.dumps(total))
        return
    counts = run_one_dtype(args.cases, args.out, args.seed, args.seconds)
    print(json.dumps({k: v for k, v in counts.items() if k not in ("by_method", "failed_cases")}))


if __name__ == "__main__":
    main()
