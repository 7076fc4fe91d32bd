"""Direct (non-iterative) parameter estimate from an observed voltage trace.

When ``V(t)`` is observed, the gates are known: drive their ODEs with the recorded
voltage. The membrane equation

    c_m dV/dt = s I(t) - sum_x g_x f_x(t) (V - e_x)

is then *linear* in ``(g_x / c_m, g_l e_l / c_m, s / c_m)``, so one weighted, lightly
regularised least-squares solve estimates them (cf. Huys, Ahrens & Paninski 2006, J.
Neurophysiol. 96:872). Instead of differentiating the noisy voltage we integrate the
equation over short windows, ``V(b) - V(a) = ∫_a^b (...) dt``: the noise then enters once
per window instead of being amplified by ``1/dt``.

What it estimates: the maximal conductances ``g_<channel>`` that are trainable, ``e_l``,
and ``c_m`` or ``area`` (the stimulus scale). Everything else (kinetic parameters such as
``v_t``, other reversal potentials) is held at its given value; the gradient refinement
in :func:`hhjax.fit` then finishes the job on the full model.
"""

from __future__ import annotations

import dataclasses
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ._pytree import pytree_dataclass
from .models import model_of
from .simulate import steady_state


@pytree_dataclass
class DirectEstimate:
    """Result of :func:`direct_estimate`: the estimated params, the condition number of the
    (column-normalised) design matrix and the RMS residual of the window equations (mV)."""

    params: object
    condition: jax.Array
    residual_rms: jax.Array


def gates_from_voltage(params, v, dt):
    """Integrate every gate with the recorded voltage ``v`` (mV, time last) as input.

    Starts at steady state at ``v[..., 0]``; each step relaxes exactly towards ``x_inf`` at
    the step's mean voltage. Returns the model state with time on the last axis.
    """
    model = model_of(params)
    v = jnp.asarray(v)
    s0 = steady_state(params, v[..., 0])
    gates0 = {f.name: getattr(s0, f.name) for f in dataclasses.fields(s0) if f.name != "v"}
    v_mid = 0.5 * (v[..., 1:] + v[..., :-1])

    def body(gates, vm):
        kin = model.kinetics(params, vm)
        new = {k: x_inf + (gates[k] - x_inf) * jnp.exp(-dt * rate) for k, (x_inf, rate) in kin.items()}
        return new, new

    _, rec = jax.lax.scan(body, gates0, jnp.moveaxis(v_mid, -1, 0))
    gates = {k: jnp.moveaxis(jnp.concatenate([gates0[k][None], rec[k]], 0), 0, -1) for k in gates0}
    return model.state_type(v=v, **gates)


def _is_pytree_callable(stimulus):
    return dataclasses.is_dataclass(stimulus)


def _stimulus_per_step(stimulus, n_steps, dt, dtype):
    if callable(stimulus):
        t_mid = (jnp.arange(n_steps, dtype=dtype) + 0.5) * dt
        return jnp.moveaxis(jax.vmap(stimulus)(t_mid), 0, -1)
    stimulus = jnp.asarray(stimulus, dtype)
    if stimulus.ndim == 0:
        return jnp.full((n_steps,), stimulus)
    return stimulus[..., :n_steps]


def direct_estimate(target_v, stimulus, params, *, dt, trainable=("g_na", "g_k", "g_l"),
                    window_ms=0.25, ridge=1e-9, warn=True):
    """Estimate conductances (and ``e_l``, ``c_m``/``area``) from one observed trace.

    Args:
        target_v: voltage (mV) sampled every ``dt`` ms from t = 0, shape ``(n,)``.
        stimulus: the injected current (number, array on the step grid, or callable ``I(t)``),
            in the model's stimulus units.
        params: the model parameters; non-estimated values are taken from here.
        trainable: names to estimate; those the linear solve cannot reach are returned
            unchanged (refine them with :func:`hhjax.fit`).
        window_ms: integration window (ms); longer windows average more noise.
        ridge: Tikhonov weight relative to the normal matrix's mean diagonal.

    Returns:
        :class:`DirectEstimate`. Warns when the problem is ill-conditioned (condition
        number of the column-normalised design > 1e3), i.e. the trace does not pin down the
        parameters independently.

    Example:
        >>> import hhjax
        >>> p = hhjax.presets.NEURON
        >>> v = hhjax.simulate(p, hhjax.stimulus.step(10., 5., 45.), duration=50., dt=0.01).v
        >>> est = direct_estimate(v, hhjax.stimulus.step(10., 5., 45.), p, dt=0.01)
        >>> round(float(est.params.g_na), 0)
        120.0
    """
    v = jnp.asarray(target_v)
    if v.ndim != 1:
        raise ValueError(f"target_v: direct_estimate takes one trace (1-D), got shape {v.shape}")
    if callable(stimulus) and not _is_pytree_callable(stimulus):
        stimulus = _stimulus_per_step(stimulus, v.shape[-1] - 1, dt, v.dtype)
    est = _direct_core(params, v, stimulus, dt=float(dt), trainable=tuple(trainable),
                       window_ms=float(window_ms), ridge=float(ridge))
    cond = est.condition
    if warn and not isinstance(cond, jax.core.Tracer) and float(cond) > 1e3:
        warnings.warn(
            f"direct_estimate: ill-conditioned (condition number {float(cond):.3g}); the trace "
            f"does not constrain {estimable(params, trainable)} independently. Use a richer "
            f"stimulus or fewer trainables.", RuntimeWarning, stacklevel=2)
    return est


def direct_estimate_batch(targets, stimuli, params, *, dt, trainable, stimulus_batched,
                          window_ms=0.25, ridge=1e-9):
    """:func:`direct_estimate` for a batch of traces ``(B, n)`` in one compiled call (no
    warning; inspect ``.condition``). ``stimuli`` has a leading ``B`` axis if
    ``stimulus_batched``."""
    if callable(stimuli) and not _is_pytree_callable(stimuli):
        stimuli = _stimulus_per_step(stimuli, targets.shape[-1] - 1, dt, targets.dtype)
    return _direct_batch(params, targets, stimuli, dt=float(dt), trainable=tuple(trainable),
                         window_ms=float(window_ms), ridge=float(ridge),
                         stimulus_batched=bool(stimulus_batched))


@partial(jax.jit, static_argnames=("dt", "trainable", "window_ms", "ridge", "stimulus_batched"))
def _direct_batch(params, targets, stimuli, *, dt, trainable, window_ms, ridge, stimulus_batched):
    fn = partial(_direct_impl, dt=dt, trainable=trainable, window_ms=window_ms, ridge=ridge)
    return jax.vmap(fn, in_axes=(None, 0, 0 if stimulus_batched else None))(params, targets, stimuli)


@partial(jax.jit, static_argnames=("dt", "trainable", "window_ms", "ridge"))
def _direct_core(params, v, stimulus, *, dt, trainable, window_ms, ridge):
    return _direct_impl(params, v, stimulus, dt=dt, trainable=trainable, window_ms=window_ms,
                        ridge=ridge)


def _direct_impl(params, v, stimulus, *, dt, trainable, window_ms, ridge):
    model = model_of(params)
    dtype = v.dtype
    n_steps = v.shape[-1] - 1
    i_step = _stimulus_per_step(stimulus, n_steps, dt, dtype)
    names = {f.name for f in dataclasses.fields(params)}
    state = gates_from_voltage(params, v, dt)
    scale = model.stimulus_scale(params)
    c_m = model.capacitance(params)

    fit_e_l = "e_l" in trainable and "g_l" in names
    fit_c = "c_m" in trainable
    fit_area = "area" in trainable and not fit_c
    columns, labels, known = [], [], 0.0
    ones = {k: 1.0 for k in names if k.startswith("g_") and k in trainable}
    unit_params = dataclasses.replace(params, **ones)
    channels = model.channels(params, state)
    unit_channels = model.channels(unit_params, state)
    i_fixed = 0.0
    for ch, (g, e) in channels.items():
        pname = f"g_{ch}"
        if pname in trainable and pname in names:
            f = unit_channels[ch][0]
            e_eff = 0.0 if (ch == "l" and fit_e_l) else e
            columns.append(-f * (v - e_eff))
            labels.append(pname)
        else:
            i_fixed = i_fixed + g * (v - e)
    if fit_e_l:
        columns.append(jnp.ones_like(v))
        labels.append("g_l*e_l")

    def step_integral(x):
        x = jnp.broadcast_to(x, v.shape)
        return 0.5 * dt * (x[1:] + x[:-1])

    cols = [step_integral(c) for c in columns]
    drive_fixed = step_integral(-i_fixed) if not isinstance(i_fixed, float) else jnp.zeros(n_steps, dtype)
    i_int = i_step * dt
    if fit_c:
        cols.append(i_int * scale + drive_fixed)
        labels.append("1/c")
    elif fit_area:
        cols.append(i_int * scale * params.area)
        labels.append("1/area")
        known = drive_fixed / c_m
    else:
        known = (i_int * scale + drive_fixed) / c_m

    w = max(1, int(round(window_ms / dt)))
    n_win = n_steps // w

    def windows(x):
        x = jnp.broadcast_to(x, (n_steps,))
        return x[: n_win * w].reshape(n_win, w).sum(-1)

    a = jnp.stack([windows(c) for c in cols], axis=-1)
    if not (fit_c or fit_area):
        a = a / c_m
    b = windows(jnp.diff(v)) - windows(known if not isinstance(known, float) else jnp.zeros(n_steps, dtype))
    norms = jnp.sqrt(jnp.sum(a * a, axis=0)) + 1e-30
    an = a / norms
    normal = an.T @ an
    reg = ridge * jnp.trace(normal) / normal.shape[0]
    coef_n = jnp.linalg.solve(normal + reg * jnp.eye(normal.shape[0], dtype=dtype), an.T @ b)
    coef = coef_n / norms
    resid = b - a @ coef
    eig = jnp.linalg.eigvalsh(normal)
    cond = jnp.sqrt(eig[-1] / jnp.maximum(eig[0], 1e-30 * eig[-1]))

    est = dict(zip(labels, coef))
    if fit_c:
        c_new = scale / est["1/c"] if "area" not in names else 1.0 / est["1/c"] * scale
        updates = {"c_m": c_new}
        g_scale = c_new
    elif fit_area:
        updates = {"area": 1.0 / est["1/area"]}
        g_scale = 1.0
    else:
        updates, g_scale = {}, 1.0
    for name in labels:
        if name.startswith("g_") and "*" not in name:
            updates[name] = est[name] * g_scale
    if fit_e_l:
        updates["e_l"] = est["g_l*e_l"] * g_scale / updates.get("g_l", params.g_l)
    updates = {k: jnp.asarray(val, dtype) for k, val in updates.items()}
    return DirectEstimate(dataclasses.replace(params, **updates), cond,
                          jnp.sqrt(jnp.mean(resid ** 2)))


def estimable(params, trainable) -> tuple[str, ...]:
    """The trainable names the direct estimate solves for (the rest are left unchanged)."""
    model = model_of(params)
    names = {f.name for f in dataclasses.fields(params)}
    chans = {f"g_{c}" for c in model.channels(params, steady_state(params, np.float32(-65.0)))}
    out = [n for n in trainable if n in chans and n in names]
    if "e_l" in trainable and "g_l" in names:
        out.append("e_l")
    if "c_m" in trainable:
        out.append("c_m")
    elif "area" in trainable:
        out.append("area")
    return tuple(out)
