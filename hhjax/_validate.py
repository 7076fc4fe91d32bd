"""The one validation layer: every public entry point (``simulate``, ``fit``,
``fit_recording``, the stimulus constructors, the command line) checks its arguments here,
so that a bad value gives one line naming the argument and its units.

Rules: strings, ``None``, ``bool``, complex numbers and (where a number is expected) lists
are type errors; NaN, inf and values without physical meaning are value errors. Traced
values (inside ``jit``, ``grad``, ``vmap``) are never inspected, so transformations are
unaffected; only concrete values are checked.

>>> positive_number(0.025, "dt", "ms")
0.025
>>> positive_number(0, "dt", "ms")
Traceback (most recent call last):
...
ValueError: dt: must be > 0 (ms), got 0
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import jax
import numpy as np

from .solvers import METHODS

ABSOLUTE_ZERO = -273.15
"""The lowest temperature (°C) a ``celsius`` parameter may take."""

VOLTAGE_LIMIT = 500.0
"""|V| (mV) beyond which a measured or target voltage is rejected as absurd (no cell,
no amplifier; usually a unit error: V instead of mV is 1000x off, µV 1000x the other way)."""


def traced(x) -> bool:
    """Whether ``x`` is a JAX tracer (its value is unknown until run time)."""
    return isinstance(x, jax.core.Tracer)


def on_device(x) -> bool:
    """An array whose values are checked where they live, not copied to NumPy: a large one on
    an accelerator, or one that spans processes (jax.distributed; np.asarray refuses it)."""
    return isinstance(x, jax.Array) and (
        not x.is_fully_addressable
        or (x.size >= 1 << 16 and any(d.platform != "cpu" for d in x.devices())))


def _type_name(x) -> str:
    return "None" if x is None else type(x).__name__


def _got(x) -> str:
    return "None" if x is None else f"{type(x).__name__} {x!r}"


def _units(units: str) -> str:
    return f" ({units})" if units else ""


def number(value, name: str, units: str = "", *, low=None, high=None, low_open=False,
           allow_inf=False, allow_none=False):
    """A real scalar: returned as ``float`` (tracers pass through unchecked).

    ``low``/``high`` are inclusive bounds (``low_open``: ``value > low``).

    >>> number(-300, "celsius", "°C", low=ABSOLUTE_ZERO)
    Traceback (most recent call last):
    ...
    ValueError: celsius: must be >= -273.15 (°C), got -300
    """
    if value is None and allow_none:
        return None
    if traced(value):
        return value
    if isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name}: expected a number{_units(units)}, got {_got(value)}")
    if isinstance(value, (complex, np.complexfloating)):
        raise TypeError(f"{name}: expected a real number{_units(units)}, got complex {value!r}")
    if isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0:
        if not np.issubdtype(value.dtype, np.number) or np.issubdtype(value.dtype, np.complexfloating):
            raise TypeError(f"{name}: expected a real number{_units(units)}, got dtype {value.dtype}")
        value = value.item()
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number{_units(units)}, got {_type_name(value)}")
    shown = value
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name}: must be a number{_units(units)}, got NaN")
    if math.isinf(value) and not allow_inf:
        raise ValueError(f"{name}: must be finite{_units(units)}, got {shown}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name}: must be {'>' if low_open else '>='} {low:g}{_units(units)}, got {shown}")
    if high is not None and value > high:
        raise ValueError(f"{name}: must be <= {high:g}{_units(units)}, got {shown}")
    return value


def positive_number(value, name: str, units: str = ""):
    """A finite number > 0 (a time step, a duration)."""
    return number(value, name, units, low=0.0, low_open=True)


def integer(value, name: str, *, low: int = 1, allow_none=False):
    """A Python or NumPy integer >= ``low`` (``bool`` and ``2.0`` are rejected)."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer >= {low}, got {_got(value)}")
    if value < low:
        raise ValueError(f"{name}: must be an integer >= {low}, got {value}")
    return int(value)


def real_array(value, name: str, units: str = "", *, allow_inf=False, low=None, high=None,
               allow_list=True):
    """A real number or array; lists are accepted (as arrays) when ``allow_list``.

    Returns ``value`` unchanged (an array only if it was a list), so that JAX arrays stay
    on their device. Tracers pass through. NaN is always an error, inf unless ``allow_inf``.
    """
    if traced(value):
        return value
    if value is None or isinstance(value, (str, bytes, bool, np.bool_)):
        raise TypeError(f"{name}: expected a number or an array{_units(units)}, got "
                        f"{_got(value)}")
    if isinstance(value, (list, tuple)):
        if not allow_list:
            raise TypeError(f"{name}: expected a number or an array{_units(units)}, got a "
                            f"{type(value).__name__}; use jnp.asarray(...)")
        try:
            value = np.asarray(value)
        except (ValueError, TypeError):
            raise TypeError(f"{name}: a ragged or mixed {type(value).__name__} is not an array") from None
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        if isinstance(value, (complex, np.complexfloating)):
            raise TypeError(f"{name}: expected real values{_units(units)}, got complex {value!r}")
        if not isinstance(value, numbers.Real):
            raise TypeError(f"{name}: expected a number or an array{_units(units)}, got {_type_name(value)}")
        dtype = np.asarray(value).dtype
    if np.issubdtype(dtype, np.complexfloating):
        raise TypeError(f"{name}: expected real values{_units(units)}, got dtype {dtype}")
    if dtype == np.bool_ or not np.issubdtype(dtype, np.number):
        raise TypeError(f"{name}: expected numbers{_units(units)}, got dtype {dtype}")
    if on_device(value):
        return value  # checked where it lives by hhjax.simulation.inputs (copying it is slow)
    arr = np.asarray(value)
    if arr.size and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        where = f" at index {tuple(int(i) for i in bad)}" if arr.ndim else ""
        x = arr[tuple(bad)] if arr.ndim else arr
        if np.isnan(x):
            raise ValueError(f"{name}: contains NaN{where}")
        if not allow_inf:
            raise ValueError(f"{name}: contains inf{where}")
    with np.errstate(invalid="ignore"):
        if low is not None and arr.size and np.nanmin(arr) < low:
            raise ValueError(f"{name}: must be >= {low:g}{_units(units)}, got {np.nanmin(arr):g}")
        if high is not None and arr.size and np.nanmax(arr) > high:
            raise ValueError(f"{name}: must be <= {high:g}{_units(units)}, got {np.nanmax(arr):g}")
    return value


def param_units(field: str) -> str:
    """The units of a parameter, from its name (the convention of every params class)."""
    if field.startswith("g_"):
        return "mS/cm²"
    if field.startswith(("e_", "v_")):
        return "mV"
    if field.startswith("tau") or field.startswith("t_"):
        return "ms"
    return {"c_m": "µF/cm²", "celsius": "°C", "area": "cm²"}.get(field, "")


def params(value, name: str = "params"):
    """A params dataclass: each field a real number or array (traced leaves pass), and
    physical: conductances >= 0, capacitance and area > 0, celsius >= -273.15."""
    if value is None or not dataclasses.is_dataclass(value) or isinstance(value, type):
        raise TypeError(f"{name}: expected model parameters such as hhjax.HHParams, got "
                        f"{_type_name(value)}")
    for f in dataclasses.fields(value):
        x = getattr(value, f.name)
        label, units = f"{name}.{f.name}", param_units(f.name)
        real_array(x, label, units, allow_list=False)
        if f.name == "celsius":
            real_array(x, label, units, low=ABSOLUTE_ZERO)
        elif f.name.startswith("g_"):
            real_array(x, label, units, low=0.0)
        elif f.name in ("c_m", "area") and not traced(x) and not np.all(np.asarray(x) > 0):
            raise ValueError(f"{label}: must be > 0 ({units}), got {np.asarray(x)}")
        elif f.name.startswith("tau") and not traced(x) and not np.all(np.asarray(x) > 0):
            raise ValueError(f"{label}: must be > 0 ({units}), got {np.asarray(x)}")
    return value


def stimulus(value, name: str = "stimulus"):
    """A stimulus: a callable ``I(t)`` (its array leaves must be real and finite, ``stop``
    may be inf), a number or an array (lists become arrays)."""
    if callable(value):
        for path, leaf in jax.tree_util.tree_flatten_with_path(value)[0]:
            if callable(leaf) or leaf is None:
                continue
            label = f"{name}{jax.tree_util.keystr(path)}"
            real_array(leaf, label, allow_inf=label.endswith("stop"))
        return value
    return real_array(value, name, "µA/cm² or pA")


def interval(start, stop, name_start: str = "start", name_stop: str = "stop", units="ms"):
    """``start < stop`` where both are concrete (arrays: element-wise)."""
    if traced(start) or traced(stop):
        return
    real_array(start, name_start, units)
    real_array(stop, name_stop, units, allow_inf=True)
    with np.errstate(invalid="ignore"):
        if not np.all(np.asarray(start) < np.asarray(stop)):
            raise ValueError(f"{name_stop}: must be after {name_start} ({units}), got "
                             f"{name_start}={np.asarray(start)}, {name_stop}={np.asarray(stop)}")


def threshold(value, name: str = "spike_threshold", allow_none=True):
    """A finite voltage threshold (mV), or ``None`` when allowed."""
    return number(value, name, "mV", allow_none=allow_none)


def method(value, methods, name: str = "method"):
    """One of ``methods`` (strings)."""
    if not isinstance(value, str) or value not in methods:
        raise ValueError(f"{name}: unknown method {value!r}; choose from {list(methods)}")
    return value


def names(value, allowed, name: str = "trainable"):
    """A non-empty tuple of distinct parameter names from ``allowed`` (a single string is
    one name)."""
    if isinstance(value, str):
        value = (value,)
    if value is None or not isinstance(value, (list, tuple)):
        raise TypeError(f"{name}: expected parameter names (a list of strings), got {_type_name(value)}")
    value = tuple(value)
    bad_types = [v for v in value if not isinstance(v, str)]
    if bad_types:
        raise TypeError(f"{name}: expected parameter names (strings), got {bad_types}")
    if not value or len(set(value)) != len(value):
        raise ValueError(f"{name}: expected distinct parameter names, got {list(value)}")
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise ValueError(f"{name}: {unknown} are not parameters ({list(allowed)})")
    return value


def fit_options(base, trainable, **options):
    """The options shared by the fitters (``n_starts``, ``steps``, ``bounds``, ``tol``,
    ``method``); returns ``trainable`` as a tuple of names (a single string is one name,
    not its letters)."""
    checked = names(trainable, [f.name for f in dataclasses.fields(base)])
    integer(options["n_starts"], "n_starts")
    integer(options["steps"], "steps", allow_none=True)
    bounds(options["bounds"])
    number(options["tol"], "tol", low=0.0)
    method(options["method"], METHODS)
    return checked


def bounds(value, name: str = "bounds"):
    """``None`` or ``{parameter: (low, high)}`` with finite ``low < high``."""
    if value is None:
        return value
    if not isinstance(value, dict):
        raise TypeError(f"{name}: expected a dict {{name: (low, high)}}, got {_type_name(value)}")
    for key, pair in value.items():
        label = f"{name}[{key!r}]"
        if not isinstance(pair, (list, tuple, np.ndarray)) or len(pair) != 2:
            raise ValueError(f"{label}: expected a pair (low, high), got {pair!r}")
        low = number(pair[0], f"{label} low", param_units(str(key)))
        high = number(pair[1], f"{label} high", param_units(str(key)))
        if not low < high:
            raise ValueError(f"{label}: low >= high ({low:g}, {high:g}); low must be below high")
    return value


def voltage_trace(value, name: str = "target_v"):
    """Measured or target voltages (mV): real, finite and within ±:data:`VOLTAGE_LIMIT`."""
    real_array(value, name, "mV", allow_list=True)
    arr = np.asarray(value, dtype=float)
    if arr.size and np.max(np.abs(arr)) > VOLTAGE_LIMIT:
        raise ValueError(f"{name}: |V| up to {np.max(np.abs(arr)):.3g} mV is beyond ±{VOLTAGE_LIMIT:g} mV "
                         f"(are the units mV?)")
    return arr


class FitFailed(ValueError):
    """A fit found no parameter set with a finite loss (it raises rather than return inf)."""


def finite_loss(loss, name: str = "fit"):
    """Raise :class:`FitFailed` where ``loss`` (one per target) is not finite.

    >>> finite_loss([0.5, float("inf")])
    Traceback (most recent call last):
    ...
    hhjax._validate.FitFailed: fit: no start reached a finite loss for target(s) [1] (check target_v, stimulus, init and bounds)
    """
    arr = np.asarray(loss, dtype=float)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr)).tolist() if arr.ndim else []
        which = f" for target(s) {[b[0] if len(b) == 1 else tuple(b) for b in bad]}" if arr.ndim else ""
        raise FitFailed(f"{name}: no start reached a finite loss{which} (check target_v, stimulus, "
                        f"init and bounds)")


CURRENT_LIMIT = 1e6
"""|I| beyond which an input current column is rejected as absurd (µA/cm² or pA)."""


def columns(source: str, cols: dict):
    """Data columns read from a file: ``{name: (values, limit)}``; every value finite and
    ``|value| <= limit`` (``None``: no limit). Errors name the column and the 1-based data row.

    >>> columns("x.csv", {"v_mV": (np.array([-65.0, np.nan]), VOLTAGE_LIMIT)})
    Traceback (most recent call last):
    ...
    ValueError: x.csv: column v_mV, row 2: NaN
    """
    for name, (values, limit) in cols.items():
        arr = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(arr) if limit is None else ~(np.abs(arr) <= limit)
        if bad.any():
            k = int(np.argmax(bad))
            x = arr[k]
            what = "NaN" if np.isnan(x) else ("inf" if np.isinf(x) else f"{x:g} is beyond ±{limit:g}")
            raise ValueError(f"{source}: column {name}, row {k + 1}: {what}")
