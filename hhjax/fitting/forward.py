"""Forward-mode gradients for losses of a handful of scalars: one unbatched ``jvp`` each.

For one neuron and a few parameters this is the fastest gradient hhjax has on a CPU. A
reverse-mode ``jax.grad`` stores the trajectory and runs the time loop backwards,
recomputing each step; a batched forward mode (``jax.jacfwd``) turns every scalar of the
time step into a small vector, and XLA's CPU kernels on small vectors cost several times
more than on scalars. Separate ``jvp`` passes keep every kernel scalar. On the README's W3
workload (one neuron, 100 ms, three conductances) this took about 2 ms, against about 20 ms
for ``jax.grad`` and 20-37 ms for ``jax.jacfwd`` on the same machine (see the README's
benchmark table).
"""

from __future__ import annotations

from typing import Callable

import functools

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


def value_and_grad_forward(fun: Callable) -> Callable:
    """Like ``jax.value_and_grad(fun)`` (with respect to the first argument), computed in
    forward mode with one unbatched ``jvp`` per scalar in that argument.

    Use it for a handful of parameters of a small simulation, inside ``jax.jit``; its cost
    grows with the number of scalars, so for a batch of parameter sets or hundreds of
    parameters use ``jax.grad``.

    Args:
        fun: ``fun(x, *args, **kwargs)`` returning a scalar; ``x`` is any pytree of floats
            (an array of conductances in mS/cm², an :class:`hhjax.HHParams`, ...).

    Returns:
        A function returning ``(fun(x, ...), gradient)``, the gradient shaped like ``x``.

    Example:
        >>> import dataclasses, jax, jax.numpy as jnp, hhjax
        >>> def loss(g):  # g = (g_na, g_k) in mS/cm²
        ...     p = dataclasses.replace(hhjax.presets.NEURON, g_na=g[0], g_k=g[1])
        ...     return jnp.mean(hhjax.simulate(p, 10.0, duration=5.0, dt=0.025).v)
        >>> value, grad = jax.jit(value_and_grad_forward(loss))(jnp.array([120.0, 36.0]))
        >>> grad.shape
        (2,)
    """

    @functools.wraps(fun)
    def value_and_grad(x, *args, **kwargs):
        flat, unravel = ravel_pytree(x)
        if not jnp.issubdtype(flat.dtype, jnp.floating):
            raise TypeError(f"value_and_grad_forward: x must hold floats, got {flat.dtype}")

        def f(y):
            return fun(unravel(y), *args, **kwargs)

        if flat.size == 0:
            return f(flat), x
        value, derivatives = None, []
        for i in range(flat.size):
            tangent = jnp.zeros_like(flat).at[i].set(1.0)
            value, d = jax.jvp(f, (flat,), (tangent,))
            if jnp.ndim(d) != 0:
                raise TypeError(f"value_and_grad_forward: fun must return a scalar, got shape "
                                f"{jnp.shape(d)}")
            derivatives.append(d)
        return value, unravel(jnp.stack(derivatives).astype(flat.dtype))

    return value_and_grad
