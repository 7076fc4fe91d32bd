"""Each worker of a local Dask cluster on cores of its own.

Measured on 2 cores: with XLA's thread pool held to one thread, a worker's process still
runs other threads of the XLA CPU runtime that take a second core when one is free. A
recording fit alone then took 5.3 s instead of 6.3 s, for 8.4 s of CPU time instead of
6.3 s; but two workers side by side each take that time from the other: the same fit took
9.2 s in each of two unpinned processes, and 6.5 s with each pinned to a core of its own.
So :func:`hhjax.cluster.fit_many` pins the workers of the ``LocalCluster`` it starts. It
leaves workers alone on a scheduler started elsewhere: a batch system (SLURM, PBS) gives
each job its own cores already.
"""

from __future__ import annotations

import os

try:  # optional: hhjax[cluster]
    from distributed import WorkerPlugin as _WorkerPlugin
except ImportError:  # pragma: no cover - without Dask nothing registers the plugin
    _WorkerPlugin = object  # type: ignore[misc,assignment]

__all__ = ["core_sets", "pin_threads", "PinWorkers"]


def core_sets(n_workers: int, cores=None) -> list:
    """The cores each of ``n_workers`` workers runs on: disjoint blocks of ``cores``
    (default: the cores this process may use) when there are enough, else one core each,
    taken in turn.

    >>> core_sets(2, [0, 1, 2, 3])
    [[0, 1], [2, 3]]
    >>> core_sets(3, [0, 1])
    [[0], [1], [0]]
    """
    if n_workers < 1:
        raise ValueError(f"n_workers: expected at least 1, got {n_workers}")
    cores = sorted(os.sched_getaffinity(0) if cores is None else cores)
    if not cores:
        raise ValueError("cores: expected at least one core")
    if n_workers > len(cores):
        return [[cores[k % len(cores)]] for k in range(n_workers)]
    per, extra = divmod(len(cores), n_workers)
    sets, start = [], 0
    for k in range(n_workers):
        size = per + (k < extra)
        sets.append(cores[start:start + size])
        start += size
    return sets


def pin_threads(cores) -> bool:
    """Restrict every thread of this process, and so every thread it starts later, to
    ``cores`` (Linux; elsewhere nothing happens). Returns whether it did.

    >>> import os
    >>> mine = sorted(os.sched_getaffinity(0))
    >>> pin_threads(mine)
    True
    """
    if not hasattr(os, "sched_setaffinity"):
        return False
    cores = set(cores)
    try:
        threads = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]
    for tid in threads:
        try:
            os.sched_setaffinity(tid, cores)
        except (ProcessLookupError, PermissionError):  # a thread that ended meanwhile
            pass
    return True


class PinWorkers(_WorkerPlugin):
    """A Dask worker plugin that pins worker ``k`` (a ``LocalCluster`` names its workers
    0, 1, ...) to ``sets[k % len(sets)]``. It runs again in a worker that the nanny
    restarts after a crash, so the replacement is pinned too.

    Example:
        >>> client.register_plugin(PinWorkers(core_sets(2)))  # doctest: +SKIP
    """

    name = "hhjax-pin-workers"

    def __init__(self, sets) -> None:
        self.sets = [list(s) for s in sets]

    def setup(self, worker) -> None:
        try:
            k = int(worker.name)
        except (TypeError, ValueError):  # not a LocalCluster worker: leave it alone
            return
        pin_threads(self.sets[k % len(self.sets)])
