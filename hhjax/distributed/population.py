"""Large populations described, not listed: each process builds only its devices' part.

:func:`population` turns a description (constants, evenly spaced ranges, a grid, random
draws with a key) into global arrays split over every device of every process, so that
1e9 neurons' parameters never exist on one host. :func:`gather` and :func:`local_parts`
bring results back.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._pytree import float_dtype
from ..simulation.devices import batch_layout
from ..simulation.sharding import neuron_sharding

__all__ = ["Linspace", "Uniform", "Normal", "Grid", "Population", "population", "gather",
           "local_parts", "check_initialized"]


def _check(owner: str, values: dict, rule: str = "", holds: Any = None) -> None:
    """Each of ``values`` a finite number, then ``holds()`` true (else ``rule`` is the message)."""
    for name, x in values.items():
        try:
            ok = not isinstance(x, (str, bytes)) and np.ndim(x) == 0 and bool(np.isfinite(float(x)))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{owner}: {name} must be a finite number, got {x!r}")
    if holds is not None and not holds():
        raise ValueError(f"{owner}: {rule}, got " + ", ".join(f"{k}={v}" for k, v in values.items()))


@dataclasses.dataclass(frozen=True)
class Linspace:
    """Evenly spaced from ``lo`` to ``hi`` (both included; ``hi < lo`` runs downwards) over
    the neurons, in the field's units."""

    lo: float
    hi: float

    def __post_init__(self):
        _check("Linspace", dict(lo=self.lo, hi=self.hi))


@dataclasses.dataclass(frozen=True)
class Uniform:
    """Independent draws, uniform on ``[lo, hi)``, from :func:`population`'s ``key``."""

    lo: float
    hi: float

    def __post_init__(self):
        _check("Uniform", dict(lo=self.lo, hi=self.hi), "lo must be below hi", lambda: self.lo < self.hi)


@dataclasses.dataclass(frozen=True)
class Normal:
    """Independent draws, normal with ``mean`` and standard deviation ``sd`` (≥ 0), from the ``key``."""

    mean: float
    sd: float

    def __post_init__(self):
        _check("Normal", dict(mean=self.mean, sd=self.sd), "sd must be >= 0", lambda: self.sd >= 0)


@dataclasses.dataclass(frozen=True)
class Grid:
    """One axis of a grid: the population holds every combination of all ``Grid`` fields,
    the first named varying slowest."""

    values: tuple

    def __post_init__(self):
        object.__setattr__(self, "values", tuple(float(v) for v in np.ravel(self.values)))
        if not self.values:
            raise ValueError("Grid: expected at least one value")


@dataclasses.dataclass(frozen=True)
class Population:
    """What :func:`population` returns.

    Attributes:
        size: the number of neurons asked for.
        fields: ``{name: value}``; a number for constants, else a global array of
            ``padded`` entries split over the devices. Entries from ``size`` on copy neuron
            ``size - 1`` (padding, so that every device gets the same number).
    """

    size: int
    fields: dict

    @property
    def padded(self) -> int:
        """The length of the arrays (``size`` rounded up to a whole number per device)."""
        return padded_size(self.size)

    def __getitem__(self, name):
        return self.fields[name]

    def params(self, base):
        """``base`` (e.g. ``hhjax.presets.NEURON``) with its fields that are named here replaced."""
        names = {f.name for f in dataclasses.fields(base)}
        return dataclasses.replace(base, **{k: v for k, v in self.fields.items() if k in names})


def padded_size(size: int) -> int:
    """``size`` rounded up as :func:`hhjax.simulate` lays a batch over all devices
    (:func:`hhjax.simulation.batch_layout`), so that it needs no further padding."""
    n = jax.device_count()
    return max(batch_layout(size)[1], -(-size // (2 * n)) * (2 * n)) if n > 1 else size


_MULTI_PROCESS_ENV = ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "JAX_NUM_PROCESSES")


def check_initialized() -> None:
    """Raise one clear line when this process was started as one of several (SLURM, MPI,
    ``JAX_NUM_PROCESSES``) but ``jax.distributed.initialize()`` has not run: each process
    would otherwise simulate the whole population by itself."""
    if jax.process_count() > 1:
        return
    for name in _MULTI_PROCESS_ENV:
        try:
            many = int(os.environ.get(name, "1")) > 1
        except ValueError:
            many = False
        if many:
            raise RuntimeError(
                f"hhjax.distributed: {name}={os.environ[name]} says this is one of several "
                "processes, but jax.distributed.initialize() has not been called (call it "
                "first, before any JAX computation; set HHJAX_SINGLE_PROCESS=1 to run alone)")


def population(n: int | None = None, *, key=None, **fields: Any) -> Population:
    """Describe a population; get global arrays split over every device of every process.

    Each keyword names a field (``g_na``, ``current``, ...) and gives a number (the same
    for all), a :class:`Linspace`, a :class:`Grid`, or random draws (:class:`Uniform`,
    :class:`Normal`, which need ``key``; each field draws from ``fold_in(key, crc32(name))``,
    so its values do not depend on the number of devices or processes). Each process
    computes only the entries of its own devices. ``n`` defaults to the size of the grid.

    Example:
        >>> import jax, hhjax
        >>> from hhjax.distributed import population, Linspace, Uniform
        >>> pop = population(1000, current=Linspace(0.0, 20.0), g_na=Uniform(100.0, 140.0),
        ...                  key=jax.random.key(0))
        >>> tr = hhjax.simulate(pop.params(hhjax.presets.NEURON),
        ...                     hhjax.stimulus.constant(pop["current"]), duration=10.0, dt=0.025,
        ...                     record_every=40)
        >>> tr.v.shape[0] == pop.padded, round(float(pop["current"][999]), 3)
        (True, 20.0)
    """
    if os.environ.get("HHJAX_SINGLE_PROCESS", "0") != "1":
        check_initialized()
    grid = {k: v for k, v in fields.items() if isinstance(v, Grid)}
    n_grid = int(np.prod([len(v.values) for v in grid.values()])) if grid else None
    if n is None:
        if n_grid is None:
            raise ValueError("n: give the number of neurons (no Grid field to take it from)")
        n = n_grid
    n = int(n)
    if n < 1:
        raise ValueError(f"n: expected a positive number of neurons, got {n}")
    if n_grid is not None and n != n_grid:
        raise ValueError(f"n: the Grid fields hold {n_grid} combinations, got n={n}")
    if key is None and any(isinstance(v, (Uniform, Normal)) for v in fields.values()):
        raise ValueError("key: random fields (Uniform, Normal) need a jax.random key")
    padded = padded_size(n)
    sharding = neuron_sharding(None if jax.device_count() > 1 else 1)
    out: dict[str, Any] = {}
    stride = n
    for name, spec in fields.items():
        if isinstance(spec, (int, float, np.number)):
            out[name] = float(spec)
        elif isinstance(spec, (Linspace, Grid)):
            if isinstance(spec, Grid):
                stride //= len(spec.values)
            out[name] = jax.make_array_from_callback(
                (padded,), sharding, partial(_deterministic_slice, spec=spec, n=n, stride=stride))
        elif isinstance(spec, (Uniform, Normal)):
            sub = jax.random.fold_in(key, zlib.crc32(name.encode()))
            out[name] = _draws(sub, spec, n=n, padded=padded, sharding=sharding)
        else:
            raise TypeError(f"{name}: expected a number, Linspace, Grid, Uniform or Normal, "
                            f"got {type(spec).__name__}")
    return Population(size=n, fields=out)


def _deterministic_slice(index, *, spec, n, stride):
    """The entries ``index`` (a tuple of one slice) of a Linspace/Grid field, in NumPy."""
    i = np.minimum(np.arange(*index[0].indices(padded_size(n))), n - 1)
    dtype = float_dtype()
    if isinstance(spec, Linspace):
        frac = i / max(n - 1, 1)
        return (spec.lo + (spec.hi - spec.lo) * frac).astype(dtype)
    values = np.asarray(spec.values)
    return values[(i // stride) % len(values)].astype(dtype)


def _draws(key, spec, *, n, padded, sharding):
    @partial(jax.jit, out_shardings=sharding)
    def draw(key):
        if isinstance(spec, Uniform):
            x = jax.random.uniform(key, (n,), minval=spec.lo, maxval=spec.hi)
        else:
            x = spec.mean + spec.sd * jax.random.normal(key, (n,))
        return jnp.pad(x, (0, padded - n), mode="edge")

    return draw(key)


def gather(x, size: int | None = None) -> np.ndarray:
    """The whole of ``x`` as a NumPy array on every process (``size``: keep the first
    ``size`` entries of the neuron axis, e.g. ``population.size``). Only for results that
    fit in one host's memory, such as spike counts; write traces with :func:`local_parts`.

    >>> gather(jnp.arange(4), size=3).tolist()
    [0, 1, 2]
    """
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils  # noqa: PLC0415 (multi-process only)

        x = multihost_utils.process_allgather(x, tiled=True)
    x = np.asarray(x)
    return x if size is None else x[:size]


def local_parts(x, size: int | None = None) -> list:
    """``[(start, array), ...]``: this process's pieces of ``x`` along the neuron axis, each
    with the index of its first neuron (to write one file per process); entries from
    ``size`` on (padding) are left out.

    >>> [(s, a.tolist()) for s, a in local_parts(jnp.arange(3))]
    [(0, [0, 1, 2])]
    """
    parts, seen = [], set()
    for shard in x.addressable_shards:
        start = shard.index[0].start or 0 if shard.index else 0
        if start in seen:  # replicated copies
            continue
        seen.add(start)
        data = np.asarray(shard.data)
        if size is not None:
            data = data[: max(0, size - start)]
        parts.append((start, data))
    return sorted(parts, key=lambda p: p[0])
