"""One time step of each integration method, for any model in :mod:`hhjax.models`.

Every step has the signature ``step(model, params, state, i_ext, dt) -> state`` where
``i_ext`` is the injected current density in µA/cm² (for ``rk4`` a triple of values at the
start, middle and end of the step) and ``dt`` is in ms. Steps are pure ``jnp`` code with no
Python branching on values, so they jit, vmap and differentiate.

=============  =====  =========================================================  ===========
method         order  what it buys                                               cost/step
=============  =====  =========================================================  ===========
``euler``      1      bit-for-bit agreement with textbook loops (seeds 000/001)  1 rate eval
``exp_euler``  2*     Rush–Larsen, gates first: gates exact for frozen V, then   1 rate eval
                      V exponential on the new conductance; stable, the default  + 4 exp
``rk4``        4      reference accuracy (spike times to ~1e-3 ms at 0.025 ms)   4 rate evals
``neuron``     1-2    NEURON's default: implicit-Euler V, cnexp gates staggered  1 rate eval
                      half a step, so traces line up with NEURON's               + 3 exp
=============  =====  =========================================================  ===========

(*) observed: the staggered gates make spike-time errors shrink ~4x per halving of dt
(0.025 ms at dt = 0.025 ms on the NEURON test case), though the scheme is formally first order.

:func:`hhjax.simulate` samples a time-varying stimulus for ``rk4`` at 0.01, 0.5 and 0.99 of
each step, not at its ends, so that a step edge on a grid point switches on for exactly the
intended steps despite rounding of ``t``. Constant and piecewise-constant currents keep fourth
order; a smoothly varying current makes ``rk4`` second order (errors still ~1e-5 mV at 0.025 ms).
"""

from __future__ import annotations

import jax.numpy as jnp

from ._pytree import as_dict

METHODS = ("exp_euler", "euler", "rk4", "neuron")

V_BOUND = 300.0
"""|V| (mV) within which every model's rates and their derivatives are finite in float32
and float64 with a margin (``scripts/divergence_bound.py``: the first failure is at 401 mV,
Pospischil's rates with V_T moved by its fitting range; HH's at 809 mV). A run leaving it
counts as diverged (``hhjax.simulation.trace.DIVERGENCE_BOUND`` is this value), and ``rk4``
returns NaN when one of its stages leaves it."""


STABILITY_LIMIT = {"euler": 2.0, "rk4": 2.785}
"""``dt`` times a gate's rate (``1/tau``, 1/ms) beyond which an explicit method amplifies
the gate's distance from its steady state at every step: the real-axis stability limits of
forward Euler (``|1 - z| <= 1``) and RK4 (``|1 - z + z^2/2 - z^3/6 + z^4/24| <= 1``, up to
z = 2.785). There the computed gate only stays put where that distance is exactly zero in
floating point (a float32 gate at 1.0 with a steady state that rounds to 1.0), while its
derivatives grow by up to 1e6 per step: the fuzzer found ``jax.jvp`` infinite on such a
trace that was not flagged. ``euler`` and ``rk4`` therefore return NaN (so: diverged) for
a step that starts beyond the limit."""


def _gates_stable(model, params, state, dt, limit):
    """Whether every gate's ``dt * rate`` at the step's starting V is within ``limit``
    (the rates are those the step evaluates first; XLA computes them once)."""
    ok = jnp.ones(jnp.shape(state.v), bool)
    for _, rate in model.kinetics(params, state.v).values():
        ok = ok & (dt * rate <= limit)
    return ok


def membrane_terms(model, params, state):
    """Total conductance ``G`` (mS/cm²) and ``sum(g * e)`` (µA/cm²) over all channels."""
    total_g = 0.0
    total_ge = 0.0
    for g, e in model.channels(params, state).values():
        total_g = total_g + g
        total_ge = total_ge + g * e
    return total_g, total_ge


def derivatives(model, params, state, i_ext):
    """``d(state)/dt`` as a state pytree (mV/ms for ``v``, 1/ms for gates)."""
    g, ge = membrane_terms(model, params, state)
    dv = (i_ext - g * state.v + ge) / model.capacitance(params)
    kin = model.kinetics(params, state.v)
    fields = {"v": dv}
    for name, (x_inf, rate) in kin.items():
        fields[name] = (x_inf - getattr(state, name)) * rate
    return model.state_type(**fields)


def euler_step(model, params, state, i_ext, dt):
    """Forward Euler: every variable advanced from the old state."""
    d = derivatives(model, params, state, i_ext)
    out = {k: x + dt * as_dict(d)[k] for k, x in as_dict(state).items()}
    # Beyond the stability limit a gate's derivatives explode: mark it (STABILITY_LIMIT).
    out["v"] = jnp.where(_gates_stable(model, params, state, dt, STABILITY_LIMIT["euler"]), out["v"], jnp.nan)
    return model.state_type(**out)


def _one_minus_exp_over(x):
    """``(1 - exp(-x)) / x``, equal to 1 at ``x = 0`` (finite gradient there too)."""
    small = jnp.abs(x) < 1e-4
    x_safe = jnp.where(small, 1.0, x)
    # Series 1 - x/2 + x^2/6 (error < x^3/24 ~ 4e-14 at the cutoff); with only 1 - x/2 the
    # x^2/6 ~ 1.7e-9 relative error was visible in float64.
    return jnp.where(small, 1.0 - x * (0.5 - x / 6.0), -jnp.expm1(-x_safe) / x_safe)


def clamp_unit(x):
    """``x`` clamped to [0, 1], with gradient 1 inside (including at 0 and 1; ``jnp.clip``
    would halve it at a tie). The exact gate updates stay in [0, 1] in exact arithmetic
    but rounding took a float32 gate to 1.0000001.

    >>> clamp_unit(jnp.array([-1e-7, 0.5, 1.0000001])).tolist()
    [0.0, 0.5, 1.0]
    """
    return jnp.where(x < 0.0, 0.0, jnp.where(x > 1.0, 1.0, x))


def _relax(x, x_inf, rate, dt):
    """Exact solution of ``dx/dt = (x_inf - x) rate`` over ``dt`` with frozen coefficients,
    clamped to [0, 1] (gates only; see :func:`clamp_unit`)."""
    return clamp_unit(x_inf + (x - x_inf) * jnp.exp(-dt * rate))


def exp_euler_step(model, params, state, i_ext, dt):
    """Rush–Larsen exponential Euler, gates first (the default method).

    Gates relax exactly towards ``x_inf(V)`` with ``V`` frozen; ``V`` then relaxes exactly
    towards ``(sum g e + I) / G`` with the conductances of the *updated* gates frozen.
    Using the updated gates staggers them half a step ahead of ``V``, which makes the
    scheme second order in practice (spike times 4x closer per halving of ``dt``) at the
    cost of a first-order one: one rate evaluation per step.
    """
    kin = model.kinetics(params, state.v)
    gates = {name: _relax(getattr(state, name), x_inf, rate, dt) for name, (x_inf, rate) in kin.items()}
    g, ge = membrane_terms(model, params, model.state_type(v=state.v, **gates))
    c = model.capacitance(params)
    drive = i_ext + ge - g * state.v
    # V + drive/G * (1 - exp(-dt G / c)), written so that G -> 0 stays finite.
    v_new = state.v + drive * (dt / c) * _one_minus_exp_over(dt * g / c)
    return model.state_type(v=v_new, **gates)


def rk4_step(model, params, state, i_ext, dt):
    """Classic fourth-order Runge–Kutta; ``i_ext = (I_start, I_mid, I_end)``."""
    i0, i_mid, i1 = i_ext

    def axpy(a, d, s):
        return model.state_type(**{k: x + a * as_dict(d)[k] for k, x in as_dict(s).items()})

    k1 = derivatives(model, params, state, i0)
    s1 = axpy(dt / 2, k1, state)
    k2 = derivatives(model, params, s1, i_mid)
    s2 = axpy(dt / 2, k2, state)
    k3 = derivatives(model, params, s2, i_mid)
    s3 = axpy(dt, k3, state)
    k4 = derivatives(model, params, s3, i1)
    out = {}
    for k, x in as_dict(state).items():
        out[k] = x + dt / 6.0 * (
            as_dict(k1)[k] + 2.0 * as_dict(k2)[k] + 2.0 * as_dict(k3)[k] + as_dict(k4)[k]
        )
    # A stage beyond V_BOUND (from a state far from steady state) can evaluate the rates
    # where their derivatives overflow while the step lands back in range: mark it.
    # So can a gate beyond the stability limit (STABILITY_LIMIT).
    stages_ok = ((jnp.abs(s1.v) <= V_BOUND) & (jnp.abs(s2.v) <= V_BOUND) & (jnp.abs(s3.v) <= V_BOUND)
                 & _gates_stable(model, params, state, dt, STABILITY_LIMIT["rk4"]))
    out["v"] = jnp.where(stages_ok, out["v"], jnp.nan)
    return model.state_type(**out)


def neuron_step(model, params, state, i_ext, dt):
    """NEURON's default fixed step (``secondorder = 0``).

    ``V`` takes a backward-Euler step with the channel conductances frozen (for ohmic
    channels this is NEURON's linearised solve exactly); the gates then take a ``cnexp``
    step at the *new* voltage, so they live half a step after ``V`` as in NEURON.
    """
    g, ge = membrane_terms(model, params, state)
    c = model.capacitance(params)
    v_new = state.v + dt * (i_ext + ge - g * state.v) / (c + dt * g)
    kin = model.kinetics(params, v_new)
    fields = {"v": v_new}
    for name, (x_inf, rate) in kin.items():
        fields[name] = _relax(getattr(state, name), x_inf, rate, dt)
    return model.state_type(**fields)


STEPS = {
    "euler": euler_step,
    "exp_euler": exp_euler_step,
    "rk4": rk4_step,
    "neuron": neuron_step,
}


def get_step(method: str):
    """The step function for ``method`` (one of :data:`METHODS`).

    >>> get_step("rk4").__name__
    'rk4_step'
    """
    try:
        return STEPS[method]
    except (KeyError, TypeError):
        raise ValueError(f"method: unknown method {method!r}; choose from {list(STEPS)}") from None
