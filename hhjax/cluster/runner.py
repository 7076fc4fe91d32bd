"""Many cells on Dask: :func:`fit_many` fits every recording on a ``dask.distributed``
cluster (an embedded ``LocalCluster`` by default) and keeps a summary table up to date."""

from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path

from ..io import save_json_atomic, write_atomic
from ..simulation.devices import cpu_cores
from .pinning import PinWorkers, core_sets
from .cells import PARAM_COLUMNS, Cell, FitSettings, find_cells, finished_row, fit_cell, input_hash, worker_env

__all__ = ["fit_many", "connect", "write_summary", "SchedulerUnreachable"]

SUMMARY_COLUMNS = ("cell", "status", "input", "model", "loss", "fraction_within_1_spike", "fi_rms_hz",
                   "rest_error_mV", *PARAM_COLUMNS,
                   "sweeps", "wall_time_s", "worker", "skipped", "input_hash", "error")


class SchedulerUnreachable(ConnectionError):
    """The scheduler address given did not answer."""


def write_summary(out_dir, rows) -> None:
    """``summary.csv`` and ``summary.json`` in ``out_dir`` (atomically), one row per cell
    (columns :data:`SUMMARY_COLUMNS`; units: mS/cm², mV, ms, pF as in fit.json)."""
    rows = sorted(rows, key=lambda r: r["cell"])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in SUMMARY_COLUMNS})
    write_atomic(Path(out_dir) / "summary.csv", buf.getvalue())
    save_json_atomic(Path(out_dir) / "summary.json", {"cells": rows})


def connect(scheduler=None, n_workers=None, cache_dir=None, connect_timeout: float = 10.0, pin: bool = True):
    """A Dask client for fits: to ``scheduler`` (``tcp://HOST:8786``) if given, else to a new
    LocalCluster of ``n_workers`` (default: one per core) single-threaded worker processes
    with :func:`hhjax.cluster.worker_env` (``cache_dir``: their shared compilation cache),
    each pinned to cores of its own if ``pin`` (:mod:`hhjax.cluster.pinning`).
    ``connect_timeout``: seconds to wait for ``scheduler``, else :class:`SchedulerUnreachable`.

    Returns ``(client, cluster or None)``; close both when done.

    Example:
        >>> client, cluster = connect(n_workers=2, cache_dir="/tmp/xla")  # doctest: +SKIP
    """
    from dask.distributed import Client, LocalCluster  # noqa: PLC0415 (optional: hhjax[cluster])

    if scheduler:
        try:
            return Client(scheduler, timeout=connect_timeout), None
        except (OSError, TimeoutError) as exc:
            raise SchedulerUnreachable(
                f"--scheduler: {scheduler} did not answer within {connect_timeout:g} s "
                f"({type(exc).__name__})") from None
    import dask  # noqa: PLC0415 (optional: hhjax[cluster])

    env = worker_env(cache_dir)
    # Workers take their configuration from here: no statistical profiler sampling the fit's
    # thread 100 times a second (about 4 % of a fit's CPU time).
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        n_workers = n_workers or cpu_cores()
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1,
                               processes=True, dashboard_address=None, env=env)
    client = Client(cluster)
    if pin:
        client.register_plugin(PinWorkers(core_sets(n_workers)))
    return client, cluster


def fit_many(inputs, out_dir, *, settings: FitSettings = FitSettings(), scheduler=None,
             n_workers=None, cache_dir=None, progress=None, connect_timeout=10.0,
             client=None, pin_workers: bool = True) -> list:
    """Fit every recording in ``inputs`` (files, folders, globs; see
    :func:`hhjax.cluster.find_cells`) on Dask and write ``OUT/<cell>/`` results and the
    summary table as each cell finishes.

    Resumable: cells with a ``done.json`` for the same input hash (file bytes and
    ``settings``) are skipped. A cell that fails (unreadable file, failed fit) gets
    ``status="failed"`` and its error in the table; the others go on. A worker that dies
    mid-fit (killed, out of memory) costs that cell's progress only: Dask runs it again on
    another worker.

    Args:
        inputs: paths, folders or glob patterns. out_dir: results folder.
        settings: :class:`FitSettings` for every cell.
        scheduler: ``tcp://HOST:8786`` of a running Dask scheduler (e.g. from
            ``dask-jobqueue``); default a LocalCluster of ``n_workers`` (default: cores)
            single-threaded workers with :func:`hhjax.cluster.worker_env`.
        cache_dir: the persistent compilation cache the workers share (default
            ``OUT/.xla-cache``). client: an existing ``dask.distributed.Client`` to use.
        progress: a bar over cells (default: when stderr is a terminal).
        pin_workers: pin each worker of the LocalCluster started here to cores of its own
            (:mod:`hhjax.cluster.pinning`; 1.4x faster with 2 workers on 2 cores).

    Returns:
        The rows of the summary table (dicts), in cell-name order.

    Example:
        >>> from hhjax.cluster import fit_many, FitSettings
        >>> rows = fit_many(["recordings/*.abf"], "results")  # doctest: +SKIP
    """
    cells = find_cells(inputs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache_dir) if cache_dir else out_dir / ".xla-cache"
    rows, todo = {}, []
    for cell in cells:
        digest = input_hash(cell, settings) if _readable(cell) else "unreadable"
        row = finished_row(out_dir, cell, digest)
        if row is not None:
            rows[cell.name] = {**row, "skipped": True}
        else:
            todo.append((cell, digest))
    write_summary(out_dir, list(rows.values()))
    if not todo:
        return [rows[c.name] for c in cells]
    own = client is None
    if own:
        client, cluster = connect(scheduler, n_workers, cache_dir, connect_timeout, pin_workers)
    bar = _bar(progress, len(cells), len(cells) - len(todo))
    try:
        from dask.distributed import as_completed  # noqa: PLC0415 (optional: hhjax[cluster])

        futures = {client.submit(fit_cell, cell, os.fspath(out_dir.resolve()), settings, digest,
                                 os.fspath(cache_dir.resolve()),
                                 key=f"fit-{cell.name}-{digest[:12]}", pure=False): cell
                   for cell, digest in todo}
        for future in as_completed(futures):
            cell = futures[future]
            try:
                row = future.result()
            except Exception as exc:  # noqa: BLE001 (e.g. KilledWorker after repeated deaths)
                row = {"cell": cell.name, "input": cell.path, "status": "failed",
                       "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]}
            rows[cell.name] = {**row, "skipped": False}
            write_summary(out_dir, list(rows.values()))
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{cell.name}: {row['status']}")
    finally:
        if bar is not None:
            bar.close()
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
    return [rows[c.name] for c in cells]


def _readable(cell: Cell) -> bool:
    try:
        p = Path(cell.path)
        for f in (p.iterdir() if p.is_dir() else [p]):
            if f.is_file():
                with open(f, "rb"):
                    pass
        return True
    except OSError:
        return False


def _bar(progress, total, done):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm.auto import tqdm  # noqa: PLC0415 (only when shown)

    return tqdm(total=total, initial=done, desc="cells", unit="cell")
