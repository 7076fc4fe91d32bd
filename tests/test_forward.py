"""value_and_grad_forward against jax.grad (float64) and central finite differences."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax import value_and_grad_forward


def _loss(p):
    tr = hhjax.simulate(p, hhjax.stimulus.step(10.0, 2.0, 18.0), duration=20.0, dt=0.025)
    return jnp.mean((tr.v + 60.0) ** 2)


def test_matches_jax_grad_and_finite_differences_in_float64():
    with jax.enable_x64(True):
        def loss(g):
            return _loss(dataclasses.replace(hhjax.presets.NEURON, g_na=g[0], g_k=g[1], g_l=g[2]))

        g = jnp.array([110.0, 40.0, 0.35])
        value, grad = jax.jit(value_and_grad_forward(loss))(g)
        ref_value, ref_grad = jax.value_and_grad(loss)(g)
        np.testing.assert_allclose(value, ref_value, rtol=1e-12)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-8)
        h = 1e-5 * np.asarray(g)
        fd = [(loss(g.at[i].add(h[i])) - loss(g.at[i].add(-h[i]))) / (2 * h[i]) for i in range(3)]
        np.testing.assert_allclose(grad, fd, rtol=1e-5)


def test_pytree_argument_and_extra_arguments():
    p = hhjax.presets.NEURON

    def loss(params, scale):
        return scale * _loss(params)

    value, grad = jax.jit(value_and_grad_forward(loss))(p, 2.0)
    ref_value, ref_grad = jax.value_and_grad(loss)(p, 2.0)
    assert isinstance(grad, hhjax.HHParams)
    np.testing.assert_allclose(value, ref_value, rtol=1e-6)
    for name in ("g_na", "g_k", "g_l", "e_l", "c_m"):
        np.testing.assert_allclose(getattr(grad, name), getattr(ref_grad, name), rtol=2e-3,
                                   atol=1e-3 * abs(float(getattr(ref_grad, name))) + 1e-6)


def test_rejects_non_scalar_outputs_and_integer_inputs():
    with pytest.raises(TypeError, match="scalar"):
        value_and_grad_forward(lambda x: x * 2.0)(jnp.ones(2))
    with pytest.raises(TypeError, match="floats"):
        value_and_grad_forward(lambda x: jnp.sum(x))(jnp.arange(3))
