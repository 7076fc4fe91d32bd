"""Frozen dataclasses that are JAX pytrees (the equinox idea without the dependency)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

try:  # Python >= 3.11; it only tells type checkers that the decorator makes dataclasses
    from typing import dataclass_transform
except ImportError:  # pragma: no cover (3.10)
    def dataclass_transform(**kwargs: Any) -> Callable:  # type: ignore[no-redef,misc]
        return lambda f: f

import jax
import jax.numpy as jnp


@dataclass_transform(frozen_default=True)
def pytree_dataclass(cls: Any = None, *, static: tuple = ()) -> Any:
    """Make ``cls`` a frozen dataclass registered as a JAX pytree.

    Every field is a leaf (so it can be jitted, vmapped, differentiated and updated by
    optax) except the names in ``static``, which become hashable metadata.
    """

    def wrap(cls):
        cls = dataclasses.dataclass(frozen=True)(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        data = [n for n in names if n not in static]
        meta = [n for n in names if n in static]
        return jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=meta)

    return wrap if cls is None else wrap(cls)


def field_names(obj: Any) -> tuple[str, ...]:
    """Names of a dataclass instance's or class's fields, in order."""
    return tuple(f.name for f in dataclasses.fields(obj))


def as_dict(obj: Any) -> dict:
    """Shallow ``{name: value}`` of a dataclass (no deep copy, unlike ``dataclasses.asdict``)."""
    return {n: getattr(obj, n) for n in field_names(obj)}


def float_dtype() -> Any:
    """The float dtype arrays get: float32, or float64 when ``jax_enable_x64`` is on."""
    # Not jnp.zeros(()).dtype: that runs an eager op, and simulate calls this every time.
    return jax.dtypes.canonicalize_dtype(jnp.float64)
