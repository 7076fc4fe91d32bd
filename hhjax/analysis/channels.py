"""Channel conductances and ionic currents along a trace."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ..models import model_of


def conductances(params: Any, trace_or_state: Any) -> dict:
    """Channel conductances (mS/cm²) along a trace: ``{"na": g_Na(t), "k": ..., "l": ...}``.

    Example:
        >>> import hhjax
        >>> tr = hhjax.simulate(hhjax.presets.NEURON, 10.0, duration=20.0, dt=0.025)
        >>> sorted(conductances(hhjax.presets.NEURON, tr))
        ['k', 'l', 'na']
    """
    state = getattr(trace_or_state, "state", trace_or_state)
    model = model_of(params)
    p = jax.tree_util.tree_map(lambda x: jnp.asarray(x)[..., None], params) if _has_time(state) else params
    return {name: jnp.broadcast_to(g, jnp.shape(state.v)) for name, (g, _) in model.channels(p, state).items()}


def currents(params: Any, trace_or_state: Any) -> dict:
    """Ionic currents (µA/cm², outward positive as in NEURON): ``I = g (V - E)``.

    Seed 000 plots inward-positive currents, ``g (E - V)``; that is ``-currents(...)``.

    Example:
        >>> import hhjax
        >>> rest = hhjax.steady_state(hhjax.presets.NEURON, -65.0)
        >>> {k: round(float(i), 2) for k, i in currents(hhjax.presets.NEURON, rest).items()}
        {'na': -1.22, 'k': 4.4, 'l': -3.21}
    """
    state = getattr(trace_or_state, "state", trace_or_state)
    model = model_of(params)
    p = jax.tree_util.tree_map(lambda x: jnp.asarray(x)[..., None], params) if _has_time(state) else params
    return {name: g * (state.v - e) for name, (g, e) in model.channels(p, state).items()}


def _has_time(state):
    return jnp.ndim(state.v) >= 1
