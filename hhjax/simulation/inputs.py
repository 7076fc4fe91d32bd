"""Checks and shapes of :func:`hhjax.simulate`'s inputs, done in Python before anything runs."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate as check
from .._pytree import float_dtype
from ..models.base import parameter_kind
from ..stimulus import Function


def whole_steps(interval, dt):
    """``interval / dt`` as an int when it is whole to 1e-6 (relative), else None."""
    ratio = float(interval) / float(dt)
    n = int(round(ratio))
    return n if abs(ratio - n) <= 1e-6 * max(1.0, ratio) else None


def _check_time(duration, dt, record_every, checkpoint_every):
    for name, value in (("duration", duration), ("dt", dt)):
        if isinstance(value, jax.core.Tracer):
            raise TypeError(f"{name}: must be a static Python number (it sets the array sizes)")
        check.positive_number(value, name, "ms")
    check.integer(record_every, "record_every")
    check.integer(checkpoint_every, "checkpoint_every", allow_none=True)
    n_steps = whole_steps(duration, dt)
    # Raise rather than round: silently changing the duration would misalign stimuli.
    if n_steps is None or n_steps < 1:
        raise ValueError(
            f"dt: dt={dt} ms does not divide duration={duration} ms into a whole number of "
            f"steps ({float(duration) / float(dt):.6g}); choose a dt that does"
        )
    if not isinstance(record_every, (int, np.integer)) or record_every < 1:
        raise ValueError(f"record_every: expected a positive integer, got {record_every!r}")
    if n_steps % record_every:
        raise ValueError(
            f"record_every: {record_every} does not divide the number of steps ({n_steps})"
        )
    if checkpoint_every is not None:
        if (
            not isinstance(checkpoint_every, (int, np.integer))
            or checkpoint_every < 1
            or checkpoint_every % record_every
            or n_steps % checkpoint_every
        ):
            raise ValueError(
                f"checkpoint_every: expected a multiple of record_every={record_every} that "
                f"divides the number of steps ({n_steps}), got {checkpoint_every!r}"
            )
    return n_steps


def _check_finite(tree, argname, allow_inf=("stop",), rules=()):
    """Concrete leaves only (traced ones pass): no NaN, no inf outside ``allow_inf``, and
    each ``(applies(name), rule, ok(array))`` of ``rules`` holds where it applies."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    for path, leaf in leaves:
        if isinstance(leaf, jax.core.Tracer) or leaf is None:
            continue
        # Large GPU arrays are checked where they live: copying 1e7 currents to the host for
        # NumPy took longer than the GPU needs to simulate them. (On CPU NumPy reads them in
        # place, and a jitted check would compile once per new shape.)
        on_device = _check_on_device(leaf)
        xp = jnp if on_device else np
        arr = leaf if on_device else np.asarray(leaf)
        if not np.issubdtype(arr.dtype, np.number):
            continue
        name = jax.tree_util.keystr(path) or ""
        label = f"{argname}{name}"
        if not bool(_all_finite(arr) if on_device else np.isfinite(arr).all()):
            if bool(xp.isnan(arr).any()):
                raise ValueError(f"{label}: contains NaN")
            if not any(name.endswith(f".{a}") for a in allow_inf):
                raise ValueError(f"{label}: contains inf")
        for applies, rule, ok in rules:
            if applies(name.lstrip(".")) and not bool(xp.all(ok(arr))):
                shown = (np.asarray(arr) if getattr(arr, "is_fully_addressable", True)
                         else "values outside it")
                raise ValueError(f"{label}: must be {rule}, got {shown}")


def _check_on_device(leaf) -> bool:
    return check.on_device(leaf)


_all_finite = jax.jit(lambda x: jnp.isfinite(x).all())


# Values with no physical meaning give NaN or runaway traces that would otherwise be
# blamed on the time step.
PARAM_RULES = ((lambda n: parameter_kind(n)[0] in ("capacitance", "area"), "> 0", lambda a: a > 0),
               (lambda n: parameter_kind(n)[0] == "conductance", ">= 0", lambda a: a >= 0))
GATE_RULES = ((lambda n: n != "v", "in [0, 1]", lambda a: (a >= 0) & (a <= 1)),)


def _check_record(record, state_type) -> Optional[tuple[str, ...]]:
    """``record`` as a tuple of ``state_type``'s field names in field order (``None``:
    every field); one-line ``ValueError`` naming the argument otherwise."""
    if record is None:
        return None
    names = tuple(f for f in state_type.__dataclass_fields__)
    if isinstance(record, str):
        record = (record,)
    try:
        record = tuple(record)
    except TypeError:
        raise TypeError(f"record: expected names of state variables {list(names)}, got "
                        f"{type(record).__name__}") from None
    unknown = [r for r in record if r not in names]
    if unknown:
        raise ValueError(f"record: unknown state variable(s) {unknown} for "
                         f"{state_type.__name__}; choose from {list(names)}")
    return tuple(n for n in names if n in record)


def _check_y0(y0, state_type, rules=()):
    """``y0`` must be None, a voltage (mV, number or array) or a ``state_type``, and finite;
    ``rules`` (see :func:`_check_finite`) apply to a full state's fields."""
    if y0 is None:
        return
    is_state = hasattr(y0, "__dataclass_fields__")
    _check_finite(y0, "y0", rules=rules if is_state else ())
    if not isinstance(y0, state_type) and (
            is_state or not isinstance(y0, (int, float, np.ndarray, jax.Array, np.generic))):
        raise TypeError(f"y0: expected None, a voltage in mV or a {state_type.__name__}, got "
                        f"{type(y0).__name__}")


_STIMULUS_SHAPES: dict = {}


def _stimulus_shape(stim):
    """The shape of ``stim(t)`` for a scalar time. Tracing the stimulus costs about a
    millisecond, as much as simulating one neuron for 100 ms, so for hhjax's own stimuli
    (whose shape follows from their leaves' shapes alone) it is remembered."""
    t = jax.ShapeDtypeStruct((), float_dtype())
    if isinstance(stim, Function):  # it may read globals or closures that change
        return jax.eval_shape(stim, t).shape
    leaves, treedef = jax.tree_util.tree_flatten(stim)
    key = (treedef, t.dtype, tuple((np.shape(x), jnp.result_type(x)) for x in leaves))
    if key not in _STIMULUS_SHAPES:
        if len(_STIMULUS_SHAPES) > 256:
            _STIMULUS_SHAPES.clear()
        _STIMULUS_SHAPES[key] = jax.eval_shape(stim, t).shape
    return _STIMULUS_SHAPES[key]


def _batch_shape(params, stim, y0, grid):
    shapes = {}
    for argname, tree in (("params", params), ("y0", y0)):
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            shapes[f"{argname}{jax.tree_util.keystr(path)}"] = jnp.shape(leaf)
    if grid is not None:
        shapes["stimulus"] = grid.shape[:-1]
    else:
        shapes["stimulus"] = _stimulus_shape(stim)
    try:
        return jnp.broadcast_shapes(*shapes.values()) if shapes else ()
    except ValueError:
        desc = ", ".join(f"{k} {v}" for k, v in shapes.items() if v != ())
        raise ValueError(f"shapes: batch shapes do not broadcast: {desc}") from None
