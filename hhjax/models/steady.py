"""The steady state of a model's gates at a given voltage."""

from __future__ import annotations

from typing import Any, Optional

from jax.typing import ArrayLike

from functools import partial

import jax
import jax.numpy as jnp

from .._pytree import float_dtype
from .base import model_of


@jax.jit
def steady_state(params: Any, v: ArrayLike) -> Any:
    """The model state with every gate at its steady state for membrane potential ``v`` (mV).

    >>> from hhjax.presets import NEURON
    >>> s = steady_state(NEURON, -65.0)
    >>> round(float(s.m), 4), round(float(s.h), 4), round(float(s.n), 4)
    (0.0529, 0.5961, 0.3177)
    """
    model = model_of(params)
    v = jnp.asarray(v, float_dtype())
    gates = {name: x_inf for name, (x_inf, _) in model.kinetics(params, v).items()}
    return model.state_type(v=v, **gates)


def resting_state(params: Any, i_ext: ArrayLike = 0.0, *, v_guess: Optional[ArrayLike] = None,
                  n_iter: int = 40) -> Any:
    """The fixed point under a constant current ``i_ext``: gates at steady state and
    ``sum_i g_i(V) (V - e_i) = i_ext``, by damped Newton on ``V`` (differentiable).

    Returns the model state (``v`` in mV). For currents beyond the onset of repetitive
    firing the fixed point exists but is unstable.

    Example:
        >>> import hhjax
        >>> round(float(resting_state(hhjax.presets.NEURON).v), 2)
        -64.97
    """
    return _resting_state(params, jnp.asarray(i_ext), v_guess, n_iter=int(n_iter))


@partial(jax.jit, static_argnames=("n_iter",))
def _resting_state(params, i_ext, v_guess, *, n_iter):
    model = model_of(params)

    def net_current(v):
        s = steady_state(params, v)
        total = -i_ext * model.stimulus_scale(params)
        for g, e in model.channels(params, s).values():
            total = total + g * (v - e)
        return total

    v0 = model.default_voltage(params) if v_guess is None else v_guess
    batch = jnp.broadcast_shapes(jnp.shape(i_ext), *[jnp.shape(x) for x in jax.tree_util.tree_leaves(params)])
    v = jnp.broadcast_to(jnp.asarray(v0, jnp.zeros(()).dtype), batch)

    def newton(v, _):
        f = net_current(v)
        df = jax.grad(lambda x: jnp.sum(net_current(x)))(v)
        dv = jnp.clip(-f / jnp.where(jnp.abs(df) > 1e-12, df, 1e-12), -10.0, 10.0)
        return v + dv, None

    v, _ = jax.lax.scan(newton, v, None, length=n_iter)
    return steady_state(params, v)
