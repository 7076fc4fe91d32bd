"""``hhjax fit-many INPUTS... --out results/``: fit many recordings on Dask."""

from __future__ import annotations

from ..cluster import FitSettings, SchedulerUnreachable, fit_many
from ..recordings.evaluation import parse_sweeps
from ._common import CLIError, positive_int


def cmd_fit_many(args):
    """Fit every recording in ``args.inputs``; print one line per cell and the table's path."""
    try:
        import dask.distributed  # noqa: F401, PLC0415 (optional dependency: hhjax[cluster])
    except ImportError:
        raise CLIError("fit-many needs Dask: pip install 'hhjax[cluster]'") from None
    sweeps = None if args.sweeps is None else tuple(parse_sweeps(args.sweeps))
    try:
        settings = FitSettings(model=args.model, sweeps=sweeps, n_starts=args.starts, steps=args.steps, dt=args.dt,
                               generations=args.generations, population=args.population, seed=args.seed,
                               plot=not args.no_plot, members=args.members, v_units=args.v_units,
                               i_units=args.i_units)
    except ValueError as exc:  # FitSettings names the field: "v_units: ..." becomes "--v-units: ..."
        field, _, rest = str(exc).partition(":")
        raise CLIError(f"--{field.replace('_', '-')}:{rest}") from None
    try:
        rows = fit_many(args.inputs, args.out, settings=settings, scheduler=args.scheduler,
                        n_workers=args.workers, cache_dir=args.cache_dir, progress=args.progress,
                        connect_timeout=args.connect_timeout, pin_workers=not args.no_pin)
    except SchedulerUnreachable as exc:
        raise CLIError(str(exc)) from None
    failed = [r for r in rows if r["status"] != "ok"]
    for r in rows:
        note = "skipped (finished before)" if r.get("skipped") else r["status"]
        extra = f": {r.get('error', '')}" if r["status"] != "ok" else f", loss {r['loss']:.4g}"
        print(f"{r['cell']}: {note}{extra}")
    print(f"{len(rows) - len(failed)} of {len(rows)} cells fitted; table {args.out}/summary.csv")
    return 1 if failed else 0


def add_command(sub) -> None:
    f = sub.add_parser("fit-many", help="fit many recordings on Dask (a LocalCluster or --scheduler)")
    f.add_argument("inputs", nargs="+",
                   help="recording files, folders (each recording in it; a folder of .ibw files is one) "
                        "or glob patterns")
    f.add_argument("--out", required=True, help="results folder: OUT/<cell>/fit.json, eval.json, fit.png, "
                                                "OUT/summary.csv and summary.json")
    f.add_argument("--scheduler", default=None, help="tcp://HOST:8786 of a running Dask scheduler "
                                                     "(default: a LocalCluster on this machine)")
    f.add_argument("--workers", type=positive_int, default=None,
                   help="LocalCluster worker processes (default: one per core)")
    f.add_argument("--no-pin", action="store_true",
                   help="leave LocalCluster workers unpinned (default: each on cores of its own)")
    f.add_argument("--connect-timeout", type=float, default=10.0,
                   help="seconds to wait for --scheduler (default 10)")
    f.add_argument("--cache-dir", default=None,
                   help="compilation cache the workers share (default OUT/.xla-cache)")
    f.add_argument("--model", default="pospischil",
                   help="fit target for every cell, as hhjax fit --model: pospischil (default), pospischil_fs, "
                        "pospischil_ib, pospischil_lts or auto")
    f.add_argument("--sweeps", default=None, help="sweeps to fit in every recording (default: chosen by rule)")
    f.add_argument("--starts", type=positive_int, default=4, help="starting points refined (default 4)")
    f.add_argument("--steps", type=int, default=4, help="Levenberg–Marquardt iterations (default 4)")
    f.add_argument("--dt", type=float, default=0.1, help="simulation step, ms (default 0.1)")
    f.add_argument("--generations", type=positive_int, default=16, help="search generations (default 16)")
    f.add_argument("--population", type=positive_int, default=160, help="search population (default 160)")
    f.add_argument("--seed", type=int, default=0, help="search seed (default 0)")
    f.add_argument("--members", type=positive_int, default=None,
                   help="fits of the model per cell from different search seeds, the one nearest their consensus "
                        "kept (default 3; 1: one fit; not with --model auto)")
    f.add_argument("--v-units", default=None, metavar="UNITS",
                   help="every recording's voltage is really in UNITS (mV or V), whatever its file says")
    f.add_argument("--i-units", default=None, metavar="UNITS",
                   help="every recording's current is really in UNITS (pA, nA or A), whatever its file says")
    f.add_argument("--no-plot", action="store_true", help="skip the figures")
    f.add_argument("--progress", action="store_true", default=None, help="show a progress bar over cells")
    f.set_defaults(func=cmd_fit_many, out_is_folder=True)
