"""The loss of a recording fit (:func:`hhjax.recordings.cell_fit.fit_recording`): the fitted
rows simulated from unconstrained coordinates, and the residuals whose sum of squares is the loss.

The loss (mean over rows) adds, per row:

* subthreshold voltage ``mean((c tanh(ΔV/c))²)/σ_V²`` on 1 ms samples away from observed
  and simulated spikes (3 ms before to 6 ms after; c = 20 mV, σ_V = 6 mV);
* spike count ``w_n Σ_s ((n_sim,s - n_obs,s) / max(1, n_obs,s / 10))²`` over the row's
  segments s (each epoch and each baseline between epochs, in units of the count target's
  tolerance, :func:`hhjax.recordings.regime.count_errors`; w_n = 4; for interpolated rows
  ``w_n`` times the squared distance to the allowed interval, in the same units);
* spike timing: spike k against observed spike k where both exist,
  ``(c_t tanh(Δt/c_t)/σ_t)²`` / n_obs (σ_t = 20 ms, c_t = 50 ms); spikes of both come from
  :func:`hhjax.spike_times`, whose 0 mV crossing times are interpolated, so differentiable;
* resting potential ``((V_rest - rest)/1 mV)²`` where the sweep has a rest (spike-free
  baseline, :mod:`hhjax.recordings.epochs`);
* regime ``W_REGIME (missing late spikes + burst ISIs)²`` (W_REGIME = 4): in the last half
  of the main depolarising epoch, ``max(0, min(3, n_cell) - n_model)`` where the cell keeps
  firing, so a model that goes into depolarisation block or falls silent there pays even
  when its total count is right; and the number of model ISIs shorter than half the
  cell's shortest ISI on that row, so a bursting model pays where the cell fires singly.
  With the count term (silence where the cell fires n spikes costs ``4 min(n, 10)²``),
  this keeps the search out of regimes the training sweeps contradict;
* leak reversal ``max(0, |e_l - v_rest| - 20 mV)² / 1 mV²`` (the same on every row; not
  where the cell fires spontaneously, with no rest to fit): a leak reversal far from the
  resting potential needs large active currents at rest to hold it there, the balance
  behind the search's worst wrong basins on block cells (an M current of 2.7 mS/cm² against
  a leak reversing at −29 mV).
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..fitting.optimizers import residuals_and_jacobian
from ..fitting.transforms import affine_of, natural_from_affine
from ..simulation.entry import simulate
from .evaluation import model_rest, net_current, row_starts
from .regime import count_errors, model_spikes, regime_violations
from .rows import MASK_MS

SIGMA_V, CLIP_V, W_COUNT, SIGMA_T, CLIP_T, SIGMA_REST = 6.0, 20.0, 4.0, 20.0, 50.0, 1.0
W_REGIME = 4.0  # per missing late spike / per burst ISI (see the module docstring)
EL_TOL, SIGMA_EL = 20.0, 1.0  # mV: leak reversal this far from the rest costs nothing, beyond it per SIGMA_EL


@dataclasses.dataclass(frozen=True)
class _Static:
    """What the compiled loss depends on. The bounds are not in it: they move with each
    search's start (the onset search shifts v_t's), and compiled in as constants they made
    every search of a fit compile the loss and its Jacobian again (5-6 s each)."""

    names: tuple      # optimised coordinates ("v_rest" replaces "e_l")
    logs: tuple       # per coordinate: searched in log scale
    dt: float
    method: str
    every: int
    layout: tuple     # from rows.fit_rows
    per_row_hold: bool = False  # rows hold different currents: each starts at its own rest
    fire: tuple = ()  # per row: the cell was firing when the sweep began (evaluation.settle_start)


@dataclasses.dataclass(frozen=True)
class _Spec:
    """A search's coordinates: what the compiled loss depends on, and the bounds."""

    static: _Static
    bounds: tuple     # (lo, hi, log) per coordinate

    @classmethod
    def of(cls, names: tuple, bounds: tuple, dt: float, method: str, every: int, layout: tuple,
           per_row_hold: bool = False, fire: tuple = ()) -> "_Spec":
        return cls(_Static(tuple(names), tuple(bool(b[2]) for b in bounds), dt, method, every, layout,
                           per_row_hold, fire), tuple(bounds))

    @property
    def names(self) -> tuple:
        return self.static.names

    def table(self, z) -> jax.Array:
        """Per coordinate :func:`~hhjax.fitting.transforms.affine_of` its bounds (folded in
        float64, as ``from_unconstrained`` folds them), in ``z``'s dtype: the loss's data."""
        return jnp.asarray(np.array([affine_of(b) for b in self.bounds], float), jnp.result_type(z))


def _coordinate(static, table, z, j):
    """Coordinate ``j`` of unconstrained ``z`` in its bounds: ``from_unconstrained`` with the
    bounds as data (the same function, so the same values)."""
    return natural_from_affine(jax.nn.sigmoid(z[..., j]), *(table[j, k] for k in range(4)), static.logs[j], jnp)


def _params_of(spec, base, z, i_hold):
    """Params (leaves with the batch shape of ``z[..., 0]``) from unconstrained ``z``."""
    return _params_from(spec.static, spec.table(z), base, z, i_hold)


def _params_from(spec, table, base, z, i_hold):
    theta = {n: _coordinate(spec, table, z, j) for j, n in enumerate(spec.names)}
    v_rest = theta.pop("v_rest", None)
    params = dataclasses.replace(base, **theta)
    if v_rest is not None:  # e_l that makes v_rest a fixed point at the holding current
        no_leak = dataclasses.replace(params, g_l=jnp.zeros_like(params.g_l))
        params = dataclasses.replace(params, e_l=v_rest + net_current(no_leak, v_rest, i_hold) / params.g_l)
    return params


def _simulate(spec, table, params, z, data):
    """Voltage ``(..., n_rows, n)`` for ``params`` (:func:`_params_of` of the unconstrained
    ``z``, shape ``(..., P)``)."""
    p_rows = jax.tree_util.tree_map(lambda x: jnp.asarray(x)[..., None], params)
    if "v_rest" in spec.names:  # a fixed point by construction
        y0 = _coordinate(spec, table, z, spec.names.index("v_rest"))
    else:  # differentiating through the root solve makes XLA compile for minutes
        y0 = jax.lax.stop_gradient(model_rest(params, jnp.mean(data["hold"])))
    n = data["v_obs"].shape[-1]
    p, groups = spec.layout[0], spec.layout[1:]
    run = partial(simulate, dt=spec.dt, method=spec.method, spike_threshold=None)
    fire = spec.fire or (False,) * data["v_obs"].shape[-2]
    y0, rowwise = row_starts(params, y0, data["hold"], fire, shared=bool(p), per_row=spec.per_row_hold,
                             dt=spec.dt, method=spec.method)  # the rule evaluate uses
    parts, order = [], []
    if p:
        pre = run(params, data["stim"][0, :p], duration=p * spec.dt, y0=y0)
        v_pre, y0 = pre.v, jax.tree_util.tree_map(lambda x: x[..., -1:], pre.state)
    for rows, steps in groups:
        y0_g = jax.tree_util.tree_map(lambda x: x[..., np.asarray(rows)], y0) if rowwise else y0
        v = run(p_rows, data["stim"][np.asarray(rows), p:p + steps], duration=steps * spec.dt, y0=y0_g).v
        if p:
            v = jnp.concatenate([jnp.broadcast_to(v_pre[..., None, :-1], v.shape[:-1] + (p,)), v], -1)
        pad = n - v.shape[-1]
        parts.append(jnp.concatenate([v, jnp.repeat(v[..., -1:], pad, -1)], -1) if pad > 0 else v[..., :n])
        order += list(rows)
    v = jnp.concatenate(parts, -2)
    return v if order == sorted(order) else v[..., np.argsort(order), :]


def _weights(sub_sample_ms):
    """The loss's weights (fit.json; a checkpoint's fingerprint: no resuming under another loss)."""
    return dict(sigma_v_mV=SIGMA_V, clip_mV=CLIP_V, w_count=W_COUNT, sigma_t_ms=SIGMA_T, clip_t_ms=CLIP_T,
                sigma_rest_mV=SIGMA_REST, mask_ms=list(MASK_MS), w_regime=W_REGIME, el_tol_mV=EL_TOL,
                sigma_el_mV=SIGMA_EL, sub_sample_ms=sub_sample_ms)


def _leak_reversal_excess(spec, table, params, z, data):
    """mV by which the leak reversal of ``params`` (those of ``z``) lies more than EL_TOL from
    its resting potential (batch shape of ``z[..., 0]``); zero where e_l is not fitted, and
    where no fitted sweep has a rest (a cell firing spontaneously: v_rest is then a fixed point
    among large active currents, where a distant leak reversal is no sign of a wrong basin)."""
    if "v_rest" not in spec.names:
        return jnp.zeros(jnp.shape(z)[:-1])
    v_rest = _coordinate(spec, table, z, spec.names.index("v_rest"))
    excess = jnp.maximum(jnp.abs(params.e_l - v_rest) - EL_TOL, 0.0)
    return jnp.where(jnp.any(jnp.isfinite(data["rest"])), excess, 0.0)


def _residuals(spec, table, base, z, data):
    """Residuals ``(..., n_rows * (n_sub + k_max + N_SCALAR))``; their sum of squares is the
    loss (``spec``: a :class:`_Static`; ``table``: :meth:`_Spec.table`)."""
    params = _params_from(spec, table, base, z, jnp.mean(data["hold"]))  # once: the simulation and the leak term
    v = _simulate(spec, table, params, z, data)
    v = jnp.where(jnp.isfinite(v), v, 100.0)
    e = spec.every
    d = CLIP_V * jnp.tanh((v[..., ::e] - data["v_obs"][..., ::e]) / CLIP_V)
    n, times = model_spikes(v, data["valid"], spec.dt, data["t_obs"].shape[-1])
    # Samples near the model's own spikes are left out too (their derivatives are huge).
    t_sub = jnp.arange(d.shape[-1]) * (e * spec.dt)
    t_k = jnp.where(jnp.arange(times.shape[-1]) < n[..., None], jax.lax.stop_gradient(times), -1e9)
    near = (t_sub[:, None] > t_k[..., None, :] - MASK_MS[0]) & (t_sub[:, None] < t_k[..., None, :] + MASK_MS[1])
    n_sub = jnp.maximum(jnp.sum(data["sub"], -1), 1)
    r_v = jnp.where(data["sub"] & ~jnp.any(near, -1), d, 0.0) / (SIGMA_V * jnp.sqrt(n_sub)[..., None])
    r_n = jnp.sqrt(W_COUNT) * count_errors(n, times, data)
    k = jnp.arange(times.shape[-1])
    both = (k < n[..., None]) & (k < data["n_pair"][..., None])
    r_t = jnp.where(both, CLIP_T * jnp.tanh((times - data["t_obs"]) / CLIP_T) / SIGMA_T, 0.0)
    r_t = r_t / jnp.sqrt(jnp.maximum(data["n_pair"], 1.0))[..., None]
    rest = jnp.isfinite(data["rest"])
    r_rest = jnp.where(rest, v[..., 0] - jnp.where(rest, data["rest"], 0.0), 0.0) / SIGMA_REST
    r_reg = jnp.sqrt(W_REGIME) * regime_violations(n, times, data)
    r_el = jnp.broadcast_to(_leak_reversal_excess(spec, table, params, z, data)[..., None], r_rest.shape) / SIGMA_EL
    r = jnp.concatenate([r_v, r_t, r_n[..., None].astype(r_v.dtype), r_rest[..., None],
                         r_reg[..., None].astype(r_v.dtype), r_el[..., None].astype(r_v.dtype)], -1)
    r = r / jnp.sqrt(r.shape[-2])
    return r.reshape(r.shape[:-2] + (-1,))


def _loss(spec, base, z, data):
    """The loss of each point of unconstrained ``z`` (``(N, P)``) under :class:`_Spec` ``spec``."""
    return _loss_jit(spec.static, spec.table(z), base, z, data)


def _residuals_and_jacobian(spec, base, z, data):
    """Residuals ``(N, n)`` and their Jacobian ``(N, n, P)``: one forward-mode pass."""
    return _residuals_and_jacobian_jit(spec.static, spec.table(z), base, z, data)


@partial(jax.jit, static_argnames=("spec",))
def _loss_jit(spec, table, base, z, data):
    r = _residuals(spec, table, base, z, data)
    return jnp.where(jnp.isfinite(r).all(-1), jnp.sum(r * r, -1), jnp.inf)


@partial(jax.jit, static_argnames=("spec",))
def _residuals_and_jacobian_jit(spec, table, base, z, data):
    return residuals_and_jacobian(lambda zz: _residuals(spec, table, base, zz, data), z)
