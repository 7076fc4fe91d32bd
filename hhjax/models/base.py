"""What a model is: a few pure functions of (params, state).

A conductance-based point neuron is fully described by

* ``kinetics(params, v) -> {gate: (x_inf, rate)}``: steady state and ``1/tau`` (1/ms) of
  every gating variable at membrane potential ``v`` (mV), so ``dx/dt = (x_inf - x) * rate``;
* ``channels(params, state) -> {current: (g, e)}``: conductance (mS/cm²) and reversal
  potential (mV) of every ohmic current, so ``I = g (V - e)`` (µA/cm², outward positive);
  current ``x`` has its maximal conductance in the parameter ``g_x`` (the direct estimate
  relies on this naming);
* ``capacitance(params)`` in µF/cm² and ``stimulus_scale(params)``, the factor that turns the
  user's stimulus units into µA/cm² (1 for density models; ``1e-6 / area`` for pA).

The solvers in :mod:`hhjax.solvers` need nothing else, which is why a new model is one
small file: a params and a state pytree plus these functions.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax.numpy as jnp

_REGISTRY: dict[type, "Model"] = {}
_BY_NAME: dict[str, "Model"] = {}


@dataclasses.dataclass(frozen=True)
class Model:
    """A conductance-based point-neuron model (static, not a pytree)."""

    name: str
    params_type: type
    state_type: type
    kinetics: Callable
    channels: Callable
    default_voltage: Callable
    capacitance: Callable = lambda params: params.c_m
    stimulus_scale: Callable = lambda params: 1.0
    stimulus_units: str = "µA/cm²"

    @property
    def gates(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.state_type) if f.name != "v")


def register(model: Model) -> Model:
    """Make ``simulate`` and friends recognise ``model.params_type``."""
    _REGISTRY[model.params_type] = model
    _BY_NAME[model.name] = model
    return model


def model_of(params: Any) -> Model:
    """The model whose parameters ``params`` are.

    >>> from hhjax.models.hh import HHParams
    >>> model_of(HHParams()).name
    'hh'
    """
    try:
        return _REGISTRY[type(params)]
    except KeyError:
        known = ", ".join(sorted(t.__name__ for t in _REGISTRY))
        raise TypeError(
            f"params: expected model parameters ({known}), got {type(params).__name__}"
        ) from None


def model_by_name(name: str) -> Model:
    """Look up a registered model by name ('hh', 'reduced', 'pospischil')."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"model: unknown model {name!r}; choose from {sorted(_BY_NAME)}") from None


def na_k_leak(params: Any, g_na_open: Any, n: Any, v: Any, **extra: tuple) -> dict:
    """The ``channels`` of an HH-type cell: ``{"na": (g_na_open, e_na), "k": (g_k n⁴, e_k),
    **extra, "l": (g_l, e_l)}`` (mS/cm², mV), given the open Na conductance ``g_na_open``
    (g_na m³h, or g_na m∞³h) and the K activation ``n``. ``extra`` currents come before the
    leak: the solvers sum currents in this order."""
    n2 = n * n
    return {"na": (g_na_open, params.e_na), "k": (params.g_k * n2 * n2, params.e_k), **extra,
            "l": (params.g_l * jnp.ones_like(v), params.e_l)}


# The one rule that tells what a parameter is from its name (units as in the params classes).
_KIND_BY_NAME = {"c_m": ("capacitance", "µF/cm²"), "area": ("area", "cm²"), "celsius": ("temperature", "°C")}
_KIND_BY_PREFIX = (("g_", "conductance", "mS/cm²"), ("e_", "reversal potential", "mV"), ("v_", "voltage", "mV"),
                   ("tau", "time constant", "ms"), ("k_", "slope", "mV"))


def parameter_kind(name: str) -> tuple[str, str]:
    """``(kind, units)`` of a parameter, from its name: ``g_*`` conductances (mS/cm²), ``e_*``
    reversal potentials and ``v_*`` voltages (mV), ``tau*`` time constants (ms), ``k_*``
    slopes (mV), ``c_m`` (µF/cm²), ``area`` (cm²), ``celsius`` (°C); else ``("other", "1")``.

    >>> parameter_kind("g_na"), parameter_kind("area")
    (('conductance', 'mS/cm²'), ('area', 'cm²'))
    """
    if name in _KIND_BY_NAME:
        return _KIND_BY_NAME[name]
    for prefix, kind, units in _KIND_BY_PREFIX:
        if name.startswith(prefix):
            return kind, units
    return "other", "1"
