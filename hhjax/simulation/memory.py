"""The memory guard of :func:`hhjax.simulate`: before anything compiles, estimate the bytes
a call needs, compare them with what the device has (or ``max_memory``), and either run
the call as it is, run it in chunks of neurons that fit, or raise a one-line
:class:`MemoryError` naming the sizes and the fix. A call that cannot fit never reaches XLA
(where 1e8 neurons sat at 0 % CPU and dt = 1e-9 ms was OOM-killed at 22.6 GB).

The peak is measured, not guessed: ``scripts/measure_memory.py`` (growth of the peak
resident set between 500 and 1000 neurons, ``scripts/memory.json``) finds at most 1.08x the
returned trace on the CPU, on the fused kernel and on the ``lax.scan`` path alike, with
``record_every`` 1 or 10; the GPU benchmark measured 1.25x for the Pallas kernel. Traces
under :data:`hhjax.simulation.scan.RECORD_BLOCKS_FROM` (16 MB) are stacked and transposed
on the scan path, which held 1.80x.
"""

from __future__ import annotations

import dataclasses
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from ..models import model_of
from ..stimulus import Function, Sampled
from .scan import RECORD_BLOCKS_FROM
from .trace import Trace

PEAK_FACTOR = 1.25
"""Peak bytes of a run over the bytes of the trace it returns: the largest measured (the
GPU kernel's 1.25x; the CPU paths measured at most 1.08x, see above)."""

STACKED_PEAK_FACTOR = 1.8
"""The same for a trace under ``RECORD_BLOCKS_FROM`` on the scan path (measured 1.80x)."""

SCRATCH_PER_NEURON = 64
"""Numbers per neuron besides the trace: state, carries, parameters, counters (generous)."""

_SKIP_BELOW = 256 << 20  # estimates below this never query the system (cheap calls stay cheap)


def _n_vars(call) -> int:
    return len(dataclasses.fields(model_of(call.params).state_type))


def estimate(call) -> dict:
    """``dict(trace, total)`` in bytes for a :class:`~hhjax.simulation.backends.SimulationCall`
    (and ``factor``, the peak over the trace that ``total`` assumes)."""
    itemsize = jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64)).itemsize
    size = math.prod(int(d) for d in call.batch)
    n_rec = call.n_steps // call.record_every + 1
    trace = _n_vars(call) * size * n_rec * itemsize
    grid = 0 if call.grid is None else size * call.n_steps * itemsize  # the time-major copy
    factor = PEAK_FACTOR if trace >= RECORD_BLOCKS_FROM else STACKED_PEAK_FACTOR
    total = factor * trace + grid + SCRATCH_PER_NEURON * size * itemsize
    return dict(trace=trace, total=int(total), size=size, n_rec=n_rec, itemsize=itemsize, factor=factor)


def available(platform: str | None = None) -> int:
    """Bytes free for a new computation: the accelerator's ``memory_stats`` on a GPU, else
    the smaller of the system's available memory (``/proc/meminfo``) and a cgroup limit's
    headroom."""
    platform = platform or jax.default_backend()
    if platform != "cpu":
        try:
            stats = jax.devices()[0].memory_stats() or {}
            return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
        except (KeyError, RuntimeError, AttributeError):
            pass
    free = None
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        free = info.get("MemAvailable", info.get("MemFree"))
    except (OSError, ValueError, IndexError):
        try:  # not Linux
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            free = None
    for limit_path, usage_path in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_path) as f:
                limit = f.read().strip()
            with open(usage_path) as f:
                usage = int(f.read().strip())
            if limit.isdigit() and int(limit) < 1 << 60:
                headroom = int(limit) - usage
                free = headroom if free is None else min(free, headroom)
            break
        except OSError:
            continue
    return free if free is not None else 1 << 62


def _gb(x) -> str:
    return f"{x / 1e9:.3g} GB"


def _chunkable(call) -> bool:
    """Whether the call can be split along its neurons: concrete inputs, a batch, and
    every stimulus leaf one value per neuron (not a time series or an opaque function)."""
    if not call.batch:
        return False
    leaves = jax.tree_util.tree_leaves((call.params, call.stim, call.grid, call.y0))
    if any(isinstance(x, jax.core.Tracer) for x in leaves):
        return False
    if call.stim is not None:
        for node in jax.tree_util.tree_leaves(call.stim, is_leaf=lambda x: isinstance(x, (Function, Sampled))):
            if isinstance(node, (Function, Sampled)):
                return False
    for leaf in jax.tree_util.tree_leaves((call.params, call.stim, call.y0)):
        try:
            if np.broadcast_shapes(np.shape(leaf), call.batch) != tuple(call.batch):
                return False
        except ValueError:
            return False
    return True


def plan(call, max_memory=None) -> int | None:
    """``None`` to run ``call`` as it is, or the number of neurons per chunk; raises
    :class:`MemoryError` when even chunks cannot hold the result."""
    need = estimate(call)
    if max_memory is None and need["total"] < _SKIP_BELOW:
        return None
    budget = int(max_memory) if max_memory is not None else available()
    if need["total"] <= budget:
        return None
    per_neuron = need["total"] / max(need["size"], 1)
    # Chunks are copied into the result as they finish: the result and one chunk coexist.
    room = budget - need["trace"]
    chunk = int(room // per_neuron) if room > 0 else 0
    if _chunkable(call) and chunk >= 1:
        return min(chunk, need["size"])
    n_vars = need["trace"] // max(need["size"] * need["n_rec"] * need["itemsize"], 1)
    per_sample = need["total"] / need["n_rec"]  # bytes per recorded time point, all neurons
    max_rec = int(budget // per_sample) - 1
    if max_rec >= 1:
        fix = (f"record fewer samples (record_every >= {math.ceil(call.n_steps / max_rec)}; "
               f"record_every=n_steps keeps the final state and spike counts only)")
    else:
        fix = f"simulate at most {max(int(budget // (4 * per_sample / need['size'])), 1)} neurons per call"
    raise MemoryError(
        f"simulate: needs about {_gb(need['total'])} ({need['size']} neuron(s) x {need['n_rec']} "
        f"samples x {n_vars} variables = {_gb(need['trace'])} of trace, {need['factor']}x at the peak) "
        f"but {_gb(budget)} is {'allowed (max_memory)' if max_memory is not None else 'available'}; "
        f"{fix}, or a shorter duration or a larger dt")


def _split(x, batch, i, j):
    """Neurons ``i:j`` of a leaf broadcast against ``batch`` (a flat axis), or the leaf."""
    if np.ndim(x) == 0:
        return x
    return jnp.broadcast_to(x, batch).reshape(-1)[i:j]


def run_chunked(call, chunk, run):
    """Run ``call`` in chunks of ``chunk`` neurons with ``run(call) -> Trace``, copying each
    chunk into one host buffer per variable as it finishes (so only the result and one chunk
    are ever held); the buffers become the result's arrays without a copy on the CPU."""
    size = math.prod(int(d) for d in call.batch)
    buffers, counts, diverged, t = None, [], [], None
    for i in range(0, size, chunk):
        j = min(i + chunk, size)
        split = lambda tree: jax.tree_util.tree_map(lambda x: _split(x, call.batch, i, j), tree)  # noqa: E731
        grid = None
        if call.grid is not None:
            g = jnp.asarray(call.grid)
            grid = jnp.broadcast_to(g, tuple(call.batch) + g.shape[-1:]).reshape(size, -1)[i:j]
        y0 = call.y0 if call.y0 is None else split(call.y0)
        part = run(dataclasses.replace(call, params=split(call.params), stim=None if call.stim is None
                                       else split(call.stim), grid=grid, y0=y0, batch=(j - i,)))
        leaves, treedef = jax.tree_util.tree_flatten(part.state)
        if buffers is None:
            buffers = [np.empty((size,) + x.shape[1:], x.dtype) for x in leaves]
        for buf, x in zip(buffers, leaves):
            buf[i:j] = np.asarray(x)
        counts.append(np.asarray(part.spike_count))
        diverged.append(np.asarray(part.diverged))
        t = part.t
        del part, leaves
    shape = tuple(call.batch)
    state = jax.tree_util.tree_unflatten(
        treedef, [jax.device_put(b.reshape(shape + b.shape[1:])) for b in buffers])
    return Trace(t=t, state=state, spike_count=jnp.asarray(np.concatenate(counts).reshape(shape)),
                 diverged=jnp.asarray(np.concatenate(diverged).reshape(shape)))


def max_memory_from_env():
    """``HHJAX_MAX_MEMORY`` (bytes, or with a K/M/G suffix) when set, else ``None``."""
    text = os.environ.get("HHJAX_MAX_MEMORY", "").strip().upper()
    if not text:
        return None
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1], 1)
    return int(float(text.rstrip("KMG")) * scale)
