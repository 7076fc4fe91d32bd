"""Many cells on a cluster (Dask distributed): :func:`fit_many` fits every recording it
finds, on an embedded ``LocalCluster`` or on a scheduler started elsewhere (e.g. by
``dask-jobqueue`` on SLURM). Needs ``pip install hhjax[cluster]``. The command line:
``hhjax fit-many INPUTS... --out results/``."""

from .cells import Cell, FitSettings, find_cells, fit_cell, input_hash, worker_env
from .pinning import PinWorkers, core_sets, pin_threads
from .runner import SUMMARY_COLUMNS, SchedulerUnreachable, connect, fit_many, write_summary

__all__ = ["fit_many", "connect", "FitSettings", "Cell", "find_cells", "fit_cell", "input_hash", "worker_env",
           "write_summary", "SUMMARY_COLUMNS", "SchedulerUnreachable", "PinWorkers", "core_sets",
           "pin_threads"]
