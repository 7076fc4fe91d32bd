"""What the benchmark scripts record about the machine while they run: the 1-minute load
average, sampled every 2 s, and the CPU seconds that other processes took (from
/proc/stat), so that a run on a shared machine can be told from a quiet one."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def cpu_jiffies():
    """(busy, total) CPU seconds of the whole machine since boot (None off Linux)."""
    try:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return (sum(f[:8]) - idle) / tick, sum(f[:8]) / tick


class Watch:
    """``with Watch() as w: ...``; then ``w.summary(own_cpu_s, wall_s)``: the load average
    (min, mean, max of samples every ``every`` s) and, given the CPU seconds of the
    measured processes, the share of the machine's core-seconds that others took."""

    def __init__(self, every: float = 2.0):
        self.every, self.loads, self._stop = every, [], threading.Event()

    def __enter__(self):
        self.busy0 = cpu_jiffies()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.loads.append(os.getloadavg()[0])
            self._stop.wait(self.every)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.busy1 = cpu_jiffies()

    def summary(self, own_cpu_s=None, wall_s=None) -> dict:
        loads = self.loads or [os.getloadavg()[0]]
        out = {"load_1min": {"min": min(loads), "mean": sum(loads) / len(loads), "max": max(loads)}}
        if self.busy0 and self.busy1:
            busy = self.busy1[0] - self.busy0[0]
            out["machine_busy_cpu_s"] = busy
            if own_cpu_s is not None and wall_s:
                out["others_cpu_share"] = max(0.0, busy - own_cpu_s) / (wall_s * (os.cpu_count() or 1))
        return out
