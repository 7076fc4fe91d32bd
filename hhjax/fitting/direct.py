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

from typing import Any, Sequence

from jax.typing import ArrayLike

import dataclasses
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .._pytree import pytree_dataclass
from ..models import model_of
from ..models.base import parameter_kind
from ..models.steady import steady_state


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


def direct_estimate(target_v: ArrayLike, stimulus: Any, params: Any, *, dt: float,
                    trainable: Sequence[str] = ("g_na", "g_k", "g_l"), window_ms: float = 0.25,
                    ridge: float = 1e-9, warn: bool = True) -> "DirectEstimate":
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
        parameters independently, and when a conductance, capacitance or area comes out
        negative (usually a wrong ``dt`` or stimulus units).

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
    negative = [f"{n}={float(getattr(est.params, n)):.3g}" for n in estimable(params, trainable)
                if parameter_kind(n)[0] in ("conductance", "capacitance", "area")
                and not isinstance(getattr(est.params, n), jax.core.Tracer) and float(getattr(est.params, n)) < 0]
    if warn and negative:
        # No physical cell has these: the trace and the model disagree in time or scale.
        warnings.warn(f"direct_estimate: negative estimate ({', '.join(negative)}); check dt (ms), "
                      f"the stimulus units and that the trace is voltage in mV", RuntimeWarning, stacklevel=2)
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


# Runs once per fit, so XLA's backend optimisations (most of the compile time) do not pay.
@partial(jax.jit, static_argnames=("dt", "trainable", "window_ms", "stimulus_batched"),
         compiler_options={"xla_backend_optimization_level": 0})
def _design_batch(params, targets, stimuli, *, dt, trainable, window_ms, stimulus_batched):
    fn = partial(_design, dt=dt, trainable=trainable, window_ms=window_ms)
    return jax.vmap(fn, in_axes=(None, 0, 0 if stimulus_batched else None))(params, targets, stimuli)


def _direct_batch(params, targets, stimuli, *, dt, trainable, window_ms, ridge, stimulus_batched):
    # Only the gate integration and the design matrix are compiled; the small solves run in
    # float64 NumPy, which keeps the first call of hhjax.fit short (LAPACK kernels under vmap
    # take seconds to compile) and is more precise.
    design = _design_batch(params, targets, stimuli, dt=dt, trainable=trainable,
                           window_ms=window_ms, stimulus_batched=stimulus_batched)
    a, b, scale = (np.asarray(x, dtype=float) for x in design)
    coef, cond, rms = _solve(a, b, ridge, np)
    labels = _labels(params, trainable)
    values = {k: np.asarray(getattr(params, k), dtype=float) for k in ("g_l",) if hasattr(params, k)}
    updates = _updates(labels, coef, scale, values)
    dtype = targets.dtype
    updates = {k: jnp.asarray(val, dtype) for k, val in updates.items()}
    return DirectEstimate(dataclasses.replace(params, **updates), jnp.asarray(cond, dtype),
                          jnp.asarray(rms, dtype))


@partial(jax.jit, static_argnames=("dt", "trainable", "window_ms", "ridge"))
def _direct_core(params, v, stimulus, *, dt, trainable, window_ms, ridge):
    a, b, scale = _design(params, v, stimulus, dt=dt, trainable=trainable, window_ms=window_ms)
    coef, cond, rms = _solve(a, b, ridge, jnp)
    updates = _updates(_labels(params, trainable), coef, scale, {"g_l": getattr(params, "g_l", None)})
    updates = {k: jnp.asarray(val, v.dtype) for k, val in updates.items()}
    return DirectEstimate(dataclasses.replace(params, **updates), cond, rms)


def _flags(params, trainable):
    names = {f.name for f in dataclasses.fields(params)}
    fit_e_l = "e_l" in trainable and "g_l" in names
    fit_c = "c_m" in trainable
    fit_area = "area" in trainable and not fit_c
    return names, fit_e_l, fit_c, fit_area


def _labels(params, trainable):
    """Names of the design matrix's columns, in order (static: from names and shapes only)."""
    names, fit_e_l, fit_c, fit_area = _flags(params, trainable)
    model = model_of(params)
    order = []  # channel names in the model's order (a returned dict would come back sorted)

    def channel_names(p):
        order.extend(model.channels(p, steady_state(p, np.float32(-65.0))))
        return 0.0

    jax.eval_shape(channel_names, params)  # traces only: nothing is computed or compiled
    labels = [f"g_{ch}" for ch in order if f"g_{ch}" in trainable and f"g_{ch}" in names]
    if fit_e_l:
        labels.append("g_l*e_l")
    if fit_c:
        labels.append("1/c")
    elif fit_area:
        labels.append("1/area")
    return tuple(labels)


def _design(params, v, stimulus, *, dt, trainable, window_ms):
    """Window-integrated membrane equation ``a @ coef = b`` (see the module docstring), and
    the stimulus scale; traceable."""
    model = model_of(params)
    dtype = v.dtype
    n_steps = v.shape[-1] - 1
    i_step = _stimulus_per_step(stimulus, n_steps, dt, dtype)
    names, fit_e_l, fit_c, fit_area = _flags(params, trainable)
    state = gates_from_voltage(params, v, dt)
    scale = model.stimulus_scale(params)
    c_m = model.capacitance(params)

    columns, known = [], 0.0
    ones = {k: 1.0 for k in names if parameter_kind(k)[0] == "conductance" and k in trainable}
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
        else:
            i_fixed = i_fixed + g * (v - e)
    if fit_e_l:
        columns.append(jnp.ones_like(v))

    def step_integral(x):
        x = jnp.broadcast_to(x, v.shape)
        return 0.5 * dt * (x[1:] + x[:-1])

    cols = [step_integral(c) for c in columns]
    drive_fixed = step_integral(-i_fixed) if not isinstance(i_fixed, float) else jnp.zeros(n_steps, dtype)
    i_int = i_step * dt
    if fit_c:
        cols.append(i_int * scale + drive_fixed)
    elif fit_area:
        cols.append(i_int * scale * params.area)
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
    return a, b, jnp.asarray(scale, dtype)


def _solve(a, b, ridge, xp):
    """Ridge least squares on column-normalised ``a`` (``xp`` is jnp or np; leading batch
    axes allowed). Returns the coefficients, the condition number and the RMS residual."""
    norms = xp.sqrt(xp.sum(a * a, axis=-2)) + 1e-30
    an = a / norms[..., None, :]
    normal = xp.swapaxes(an, -1, -2) @ an
    k = normal.shape[-1]
    reg = ridge * xp.trace(normal, axis1=-2, axis2=-1) / k
    rhs = xp.swapaxes(an, -1, -2) @ b[..., None]
    coef = xp.linalg.solve(normal + reg[..., None, None] * xp.eye(k, dtype=normal.dtype), rhs)[..., 0] / norms
    resid = b - (a @ coef[..., None])[..., 0]
    eig = xp.linalg.eigvalsh(normal)
    cond = xp.sqrt(eig[..., -1] / xp.maximum(eig[..., 0], 1e-30 * eig[..., -1]))
    return coef, cond, xp.sqrt(xp.mean(resid ** 2, axis=-1))


def _updates(labels, coef, scale, values):
    """Parameter values from the coefficients (last axis of ``coef`` follows ``labels``)."""
    est = {name: coef[..., j] for j, name in enumerate(labels)}
    if "1/c" in est:
        c_new = scale / est["1/c"]
        updates, g_scale = {"c_m": c_new}, c_new
    elif "1/area" in est:
        updates, g_scale = {"area": 1.0 / est["1/area"]}, 1.0
    else:
        updates, g_scale = {}, 1.0
    for name in labels:
        if parameter_kind(name)[0] == "conductance" and "*" not in name:
            updates[name] = est[name] * g_scale
    if "g_l*e_l" in est:
        updates["e_l"] = est["g_l*e_l"] * g_scale / updates.get("g_l", values["g_l"])
    return updates


def estimable(params, trainable) -> tuple[str, ...]:
    """The trainable names the direct estimate solves for (the rest are left unchanged)."""
    rename = {"g_l*e_l": "e_l", "1/c": "c_m", "1/area": "area"}
    return tuple(rename.get(label, label) for label in _labels(params, tuple(trainable)))
