"""Cells for :func:`hhjax.cluster.fit_many`: finding recordings, naming and hashing them,
and fitting one (the function each Dask worker runs).

A cell is one recording: a file of a format :func:`hhjax.io.load_recording` reads, or a
folder of ``.ibw`` files (one sweep per file). Its results go to ``OUT/<name>/``:
``fit.json``, ``eval.json``, ``fit.png`` and last ``done.json`` (the summary row and the
input hash), each written atomically, so a cell either has a complete ``done.json`` or
counts as not finished.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import importlib.metadata
import json
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ..cache import enable_compilation_cache, release_compiled_programs
from ..io import RECORDING_FORMATS, load_recording, save_json_atomic
from ..io.results import save_params
from ..io.sources import SET_FORMATS, inner_suffix
from ..io.units import units_kind
from ..recordings.bridge import balance_bridge
from ..recordings.cell_fit import DEFAULT_TRAINABLE, MODELS
from ..recordings.evaluation import evaluate, plot_evaluation
from ..recordings.select import check_members, check_recording_model, fit_with_model

__all__ = ["Cell", "FitSettings", "find_cells", "recordings_under", "input_hash", "fit_cell", "finished_row",
           "worker_env", "use_shared_cache"]

#: Fitted parameters a row reports: the default trainable set, then every model's extras.
PARAM_COLUMNS = (*DEFAULT_TRAINABLE, *dict.fromkeys(n for _, extra in MODELS.values() for n in extra))


@dataclasses.dataclass(frozen=True)
class Cell:
    """One recording: ``name`` (its results folder) and ``path`` (a file or an .ibw folder)."""

    name: str
    path: str


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """What :func:`hhjax.recordings.fit_with_model` is called with for every cell
    (see there; ``sweeps`` ``None`` lets it choose). ``model``: a key of
    :data:`hhjax.recordings.cell_fit.MODELS`, or ``"auto"`` for
    :func:`hhjax.recordings.fit_auto` (its own search size per candidate: then
    ``generations``, ``population`` and ``steps`` are not used). ``members``: fits of one
    model whose consensus is kept (``None``: the default,
    :data:`hhjax.recordings.consensus.CONSENSUS_MEMBERS`; not with ``"auto"``). ``v_units``,
    ``i_units``: what every recording's voltage and current really are ('mV' or 'V'; 'pA',
    'nA' or 'A'), where the rig's files say otherwise (``None``: the files' own labels), as
    :func:`hhjax.io.load_recording` takes them. Part of each cell's input hash.

    >>> FitSettings(model="nope")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: model: 'nope' is not a recording model; choose from ...
    """

    model: str = "pospischil"
    sweeps: tuple | None = None
    n_starts: int = 4
    steps: int = 4
    dt: float = 0.1
    generations: int = 16
    population: int = 160
    seed: int = 0
    method: str = "exp_euler"
    plot: bool = True
    members: int | None = None
    v_units: str | None = None
    i_units: str | None = None

    def __post_init__(self) -> None:
        check_recording_model(self.model)
        check_members(self.model, self.members)
        for field, kind, known in (("v_units", "v", "voltage (mV, V)"), ("i_units", "i", "current (pA, nA, A)")):
            units = getattr(self, field)
            if units is not None and units_kind(units) != kind:  # before any cell is read, not per cell
                raise ValueError(f"{field}: {units!r} is not a {known} unit")


def _ibw_folder(path: Path) -> bool:
    return path.is_dir() and any(inner_suffix(p) in SET_FORMATS for p in path.iterdir())


def recordings_under(path: Path):
    """Recordings under ``path``, in name order: itself if a file or a folder of ``.ibw``
    waves (one recording), else every file of :data:`hhjax.io.RECORDING_FORMATS` (inside
    ``.gz``/``.xz`` too) and every ``.ibw`` folder below it; hidden entries are skipped.
    ``hhjax fit-many`` and ``scripts/bench_recordings.py`` find cells by it."""
    if path.is_file():
        yield path
    elif _ibw_folder(path):
        yield path
    elif path.is_dir():
        for entry in sorted(path.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                yield from recordings_under(entry)
            elif inner_suffix(entry) in RECORDING_FORMATS:  # also .gz/.xz compressed
                yield entry


def find_cells(inputs) -> list:
    """The cells named by ``inputs`` (files, folders, glob patterns), each once, in order.

    A pattern or folder that matches nothing raises ``FileNotFoundError`` naming it. Names
    are the file's stem (the folder's name for .ibw folders), made unique with the parent
    folder's name (and then a number) where two cells would share one.

    >>> find_cells(["no/such/file.abf"])  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    FileNotFoundError: no/such/file.abf: no such file, folder or match
    """
    paths, seen = [], set()
    for item in inputs:
        matches = sorted(glob.glob(os.fspath(item), recursive=True)) if glob.has_magic(str(item)) \
            else ([item] if os.path.exists(item) else [])
        found = [p for m in matches for p in recordings_under(Path(m))]
        if not found:
            raise FileNotFoundError(f"{item}: no such file, folder or match")
        for p in found:
            key = os.path.realpath(p)
            if key not in seen:
                seen.add(key)
                paths.append(Path(p))
    names: dict = {}
    cells = []
    for p in paths:
        plain = Path(p.stem) if inner_suffix(p) != p.suffix.lower() else p  # c.abf.xz -> c.abf
        name = p.name if p.is_dir() else plain.stem
        if name in names:
            name = f"{p.parent.name}_{name}"
        base, k = name, 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names[name] = p
        cells.append(Cell(name=name, path=os.fspath(p)))
    return cells


def package_version() -> str:
    """hhjax's installed version ('unknown' where it is run from a source tree uninstalled)."""
    try:
        return importlib.metadata.version("hhjax")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def input_hash(cell: Cell, settings: FitSettings) -> str:
    """SHA-256 of the cell's bytes (every file of a folder, with its name), the settings and
    hhjax's version (:func:`package_version`): a cell whose hash changed since its
    ``done.json`` is fitted again. ``members`` enters as the number of fits made, so a change
    of the default refits cells fitted under the old one; so does a new release, whose rules
    may fit the same cell differently."""
    fields = {**dataclasses.asdict(settings), "members": check_members(settings.model, settings.members),
              "hhjax_version": package_version()}
    h = hashlib.sha256(json.dumps(fields, sort_keys=True).encode())
    path = Path(cell.path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def finished_row(out_dir, cell: Cell, digest: str):
    """The summary row of a cell finished with these inputs, else ``None``."""
    done = Path(out_dir) / cell.name / "done.json"
    try:
        record = json.loads(done.read_text())
    except (OSError, ValueError):
        return None
    if record.get("input_hash") != digest or record.get("row", {}).get("status") != "ok":
        return None
    return record["row"]


def worker_env(cache_dir=None) -> dict:
    """Environment for fit workers: one XLA CPU thread pool of one thread per worker
    (Dask runs one worker per core, so XLA's own pool per core would oversubscribe them),
    GPU memory not preallocated (several workers may share a GPU), Dask's profiler off, and
    the shared persistent compilation cache (``cache_dir``) keeping every program, so only
    the first worker compiles. ``XLA_FLAGS`` is part of the cache's key: programs compiled
    with other flags (e.g. by ``hhjax fit`` in a plain shell) are compiled again.

    >>> worker_env("/tmp/c")["OMP_NUM_THREADS"]
    '1'
    """
    env = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "HHJAX_SHARD": "0", "MPLBACKEND": "Agg",
           # Dask's statistical profiler off (workers started by `dask worker`, jobqueue)
           "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"}
    if cache_dir:
        env["HHJAX_CACHE_DIR"] = os.fspath(cache_dir)
        # JAX reads these at start: every program is cached, not only those that took
        # over a second to compile (a fit and its evaluation build ~50 programs, most in < 0.5 s).
        env["JAX_COMPILATION_CACHE_DIR"] = os.fspath(cache_dir)
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
        env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"
    return env


def use_shared_cache(cache_dir=None) -> None:
    """Point JAX's persistent compilation cache at ``cache_dir`` (default
    ``HHJAX_CACHE_DIR``; nothing if neither is set) and cache every program: JAX's
    default keeps only programs that took ≥ 1 s to compile, and most of the ~50 programs
    of a recording fit take less, so a second worker would compile those again.

    >>> use_shared_cache(None)  # no directory given or in HHJAX_CACHE_DIR: nothing changes
    """
    cache_dir = cache_dir or os.environ.get("HHJAX_CACHE_DIR")
    if not cache_dir:
        return
    enable_compilation_cache(os.fspath(cache_dir), min_compile_time_s=0.0)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


_COUNTS = {"programs": 0, "cache_hits": 0}


def _count_event(event: str, **_kw: str | int) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        _COUNTS["cache_hits"] += 1


def _count_duration(event: str, duration_secs: float, **_kw: str | int) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        _COUNTS["programs"] += 1


def _start_counting() -> dict:
    """Counts of XLA programs built (compiled, or loaded from the persistent cache) and of
    persistent-cache hits among them in this process (listeners registered once per
    process; workers run one task at a time)."""
    if not _COUNTS.get("registered"):
        jax.monitoring.register_event_listener(_count_event)
        jax.monitoring.register_event_duration_secs_listener(_count_duration)
        _COUNTS["registered"] = 1
    return {k: _COUNTS[k] for k in ("programs", "cache_hits")}


def fit_cell(cell: Cell, out_dir, settings: FitSettings, digest: str, cache_dir=None) -> dict:
    """Fit one cell and write its results (the task each worker runs). Never raises for a
    bad recording or a failed fit: the row then has ``status="failed"`` and the error.
    ``cache_dir``: the persistent compilation cache shared by all workers (default
    ``HHJAX_CACHE_DIR``, else hhjax's default)."""
    use_shared_cache(cache_dir)
    before = _start_counting()
    folder = Path(out_dir) / cell.name
    t0, c0 = time.perf_counter(), time.process_time()
    row: dict[str, Any] = {"cell": cell.name, "input": cell.path, "input_hash": digest, "status": "failed",
           "worker": f"{socket.gethostname()}:{os.getpid()}"}
    save_json_atomic(folder / "running.json", {"pid": os.getpid(), "host": socket.gethostname(),
                                               "started": time.time()})
    try:
        row.update(_fit_and_write(cell, folder, settings))
        row["status"] = "ok"
    except Exception as exc:  # noqa: BLE001 (a cell's failure is recorded, the run goes on)
        row["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
        save_json_atomic(folder / "error.json", {"error": row["error"],
                                                 "traceback": traceback.format_exc()})
    row["wall_time_s"] = round(time.perf_counter() - t0, 3)
    if hasattr(os, "sched_getaffinity"):  # the cores it ran on (pinned workers: their own)
        row["cores"] = sorted(os.sched_getaffinity(0))
    row["cpu_time_s"] = round(time.process_time() - c0, 3)
    # programs built for this cell (compiled or loaded) and persistent-cache hits among them
    row.update({f"xla_{k}": _COUNTS[k] - before[k] for k in before})
    if row["status"] == "ok":
        save_json_atomic(folder / "done.json", {"input_hash": digest, "row": row})
        (folder / "error.json").unlink(missing_ok=True)
    (folder / "running.json").unlink(missing_ok=True)
    release_compiled_programs()  # a worker fits cell after cell: its memory mappings run out otherwise
    return row


def _fit_and_write(cell: Cell, folder: Path, settings: FitSettings) -> dict:
    """Load, fit, evaluate and write one cell; the row's result columns."""
    rec = load_recording(cell.path, v_units=settings.v_units, i_units=settings.i_units)
    sweeps = None
    if settings.sweeps is not None:
        sweeps = [s for s in settings.sweeps if s in rec.sweeps]
        if not sweeps:
            raise ValueError(f"sweeps: none of {list(settings.sweeps)} in {cell.path} "
                             f"(it has {list(rec.sweeps)})")
    # auto keeps its own (smaller) search per candidate: the settings' search size is one model's
    search = None if settings.model == "auto" else {k: getattr(settings, k) for k in ("steps", "generations", "population")}
    rec = balance_bridge(rec)  # marked: the fit, its evaluation and figure see the same voltage
    res = fit_with_model(rec, settings.model, search=search, sweeps=sweeps, n_starts=settings.n_starts,
                         dt=settings.dt, key=settings.seed, method=settings.method, progress=False,
                         members=settings.members, time_limit=False)  # a batch: the same fit on any machine
    if not np.isfinite(res.loss):
        raise RuntimeError("fit failed (no parameter set gave a finite loss)")
    save_params(folder / "fit.json", res.params, stderr=res.stderr, loss=res.loss,
                sweeps=list(res.sweeps), features=res.features, settings=res.settings,
                wall_time_s=res.wall_time, model_selection=res.settings.get("model_selection"))
    ev, (t, v) = evaluate(res.params, rec, dt=settings.dt, method=settings.method, return_traces=True)
    save_json_atomic(folder / "eval.json", ev)
    if settings.plot:
        plot_evaluation(ev, rec, t, v, folder / "fit.png")
    s = ev["summary"]
    out = {"model": res.settings["model"], "loss": float(res.loss), "sweeps": " ".join(str(k) for k in res.sweeps),
           "fraction_within_1_spike": s["fraction_within_1_spike"], "fi_rms_hz": s["fi_rms_hz"],
           "rest_error_mV": s["rest_error_mV"]}
    out.update({n: float(getattr(res.params, n)) for n in PARAM_COLUMNS if hasattr(res.params, n)})
    return out
