"""``fit``: estimate model parameters from voltage traces, with uncertainty."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

from jax.typing import ArrayLike

import dataclasses
import functools
from functools import partial
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import _validate as check
from .. import presets as _presets
from ._common import advance, key_of, progress_bar
from .direct import direct_estimate_batch, estimable
from .losses import get_loss
from ..models import model_of
from .optimizers import gauss_newton_terms, optax_step
from .resume import load_fit_state, open_fit_checkpoint, save_fit_state
from .strategies import DEFAULT_TOL, GradientDescent, LevenbergMarquardt, Strategy, run_strategy
from ..simulation.entry import simulate
from .transforms import dtheta_dz, from_unconstrained, from_unconstrained_np, resolve_bounds, sample_in_bounds, to_unconstrained
from .uncertainty import correlated_pairs, correlation, covariance_from_gauss_newton


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What :func:`fit` found. With a batch of targets every array has the batch axes first.

    Attributes:
        params: best parameters (a params pytree; trainable leaves carry the batch shape).
        loss: best loss per target (mean squared error in mV² for ``loss="mse"``).
        start_params: ``{name: array(batch + (n_starts,))}`` final value of every start.
        start_losses: final loss of every start, ``batch + (n_starts,)``.
        history: loss per iteration and start, ``(n_iter + 1,) + batch + (n_starts,)``.
        stderr: ``{name: standard error}`` (Laplace approximation; same units as the param).
        covariance, correlation: ``batch + (P, P)`` in the order of ``trainable``.
        correlated: pairs with |correlation| > 0.9 (a list, or a list per target).
        converged: ``batch + (n_starts,)`` booleans; ``reasons``: why each start stopped, and
            ``status``: the same as :class:`~hhjax.fitting.strategies.FitStatus` values.
        wall_time: seconds, compilation included. direct: the direct estimate, if used.
    """

    params: object
    loss: np.ndarray
    start_params: dict
    start_losses: np.ndarray
    history: np.ndarray
    stderr: dict
    covariance: np.ndarray
    correlation: np.ndarray
    correlated: list
    converged: np.ndarray
    reasons: list
    status: list
    wall_time: float
    trainable: tuple
    direct: object = None
    settings: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        check.finite_loss(self.loss)  # a fit never returns a silent inf


def _check_inputs(target_v, stimulus, dt, duration, record_every, base, trainable):
    dt = check.positive_number(dt, "dt", "ms")
    record_every = check.integer(record_every, "record_every")
    duration = check.number(duration, "duration", "ms", low=0.0, low_open=True, allow_none=True)
    check.stimulus(stimulus)
    target = check.voltage_trace(target_v)
    if target.ndim < 1:
        raise ValueError("target_v: expected samples on the last axis, got a scalar")
    if target.shape[-1] < 3:
        raise ValueError(f"target_v: needs at least 3 samples on its last (time) axis, got shape {target.shape}")
    n_samples = target.shape[-1]
    n_steps = (n_samples - 1) * record_every
    if duration is None:
        duration = n_steps * dt
    if abs(duration / (dt * record_every) - (n_samples - 1)) > 1e-6 * n_samples:
        raise ValueError(
            f"target_v: {n_samples} samples do not match duration={duration} ms at dt={dt} ms "
            f"and record_every={record_every} ({duration / (dt * record_every) + 1:g} expected): "
            f"target and stimulus have different lengths or sample rates")
    if not callable(stimulus) and np.ndim(stimulus) >= 1:
        n_stim = np.shape(stimulus)[-1]
        if n_stim not in (n_steps, n_steps + 1):
            raise ValueError(
                f"stimulus: {n_stim} samples but the target implies {n_steps} steps of dt={dt} ms: "
                f"target and stimulus have different lengths or sample rates")
        if not np.all(np.isfinite(np.asarray(stimulus))):
            raise ValueError("stimulus: contains NaN or inf")
    return target, float(duration), n_steps


def fit(target_v: ArrayLike, stimulus: Any, init: Any = None, *, dt: float, duration: Optional[float] = None,
        trainable: Union[str, Sequence[str]] = ("g_na", "g_k", "g_l"), bounds: Optional[dict] = None,
        loss: Union[str, Callable] = "mse", optimizer: Any = None, steps: Optional[int] = None,
        n_starts: int = 4, key: Any = None, method: str = "exp_euler", progress: Optional[bool] = None,
        preset: Any = "neuron", starts: Optional[dict] = None, record_every: int = 1,
        checkpoint_every: Optional[int] = None, direct: Optional[bool] = None, tol: float = DEFAULT_TOL,
        fit_v0: bool = True, checkpoint: Optional[str] = None) -> FitResult:
    """Fit model parameters to voltage trace(s).

    Args:
        target_v: voltage (mV) sampled like :func:`hhjax.simulate`'s output (t = 0, k·dt, ...
            with ``k = record_every``); leading axes are independent targets, fitted together.
        stimulus: the injected current (µA/cm², or pA for area models): number, array on the
            step grid (with the targets' batch axes, or shared), or a callable ``I(t)``.
        init: params with the starting values and the fixed values of non-trainable
            parameters; default: ``preset`` with trainables from the direct estimate.
        dt: simulation step (ms). duration: total time (ms), default from ``target_v``.
        trainable: names of the parameters to fit.
        bounds: ``{name: (low, high)}``; every parameter has physiological defaults.
        loss: ``"mse"`` (solved by Levenberg–Marquardt), ``"spikes"``, ``"mse+spikes"`` or a
            callable ``loss(v_sim, v_target)`` (solved with ``optimizer``, default Adam).
        steps: iterations (default 40 for LM, 500 for optax). n_starts: starting points per
            target, run together under one ``vmap``; ``key`` draws them (default PRNGKey(0)).
        method: integration method for the simulations.
        progress: show a progress bar (default: when stderr is a terminal).
        starts: ``{name: array(n_starts,)}`` explicit starting points (overrides drawing).
        checkpoint_every: steps per ``jax.checkpoint`` chunk (bounds reverse-mode memory).
        direct: use the direct least-squares estimate as the first start (default: when
            ``init`` is None); with an ``init`` too, ``init`` is the second start.
        tol: a start has converged after two accepted steps that lower its loss by less than
            this fraction (1e-5 of a sum of squares is far below statistical resolution);
            with an optax loss, after 20 iterations whose best loss is not this fraction
            lower.
        fit_v0: also fit the initial voltage (within ±5 mV of the first sample), gates at
            steady state there. Without it a noisy first sample biases every parameter.
        checkpoint: a directory: the loop state is saved there atomically after every
            iteration, and a call with the same inputs resumes from it (a finished fit
            returns at once), reaching the uninterrupted result bit for bit on the CPU. A
            checkpoint of other inputs is a ValueError. See :mod:`hhjax.fitting.resume`.

    Returns:
        A :class:`FitResult`.

    Example:
        >>> import dataclasses, hhjax
        >>> true = dataclasses.replace(hhjax.presets.NEURON, g_na=100.0, g_k=30.0)
        >>> stim = hhjax.stimulus.step(10.0, 5.0, 45.0)
        >>> v = hhjax.simulate(true, stim, duration=50.0, dt=0.025).v
        >>> res = hhjax.fit(v, stim, dt=0.025, trainable=("g_na", "g_k"), n_starts=2, progress=False)
        >>> round(float(res.params.g_na)), round(float(res.params.g_k))
        (100, 30)
    """
    t_start = time.perf_counter()
    base = init if init is not None else (_presets.get_preset(preset) if isinstance(preset, str) else preset)
    model_of(check.params(base, "init" if init is not None else "preset"))
    trainable = tuple(check.fit_options(base, trainable, n_starts=n_starts, steps=steps, bounds=bounds, tol=tol,
                                        method=method))
    target, duration, n_steps = _check_inputs(target_v, stimulus, dt, duration, record_every, base, trainable)
    specs = resolve_bounds(trainable, {n: getattr(base, n) for n in trainable}, bounds)
    batch = target.shape[:-1]
    dtype = jnp.zeros(()).dtype
    targets = jnp.asarray(target.reshape((-1, target.shape[-1])), dtype)
    n_targets, n_res = targets.shape[0], targets.shape[1] - 1
    stim_batched = not callable(stimulus) and np.ndim(stimulus) >= 2
    if stim_batched and int(np.prod(np.shape(stimulus)[:-1])) != n_targets:
        raise ValueError(f"stimulus: batch shape {np.shape(stimulus)[:-1]} does not match target_v's {batch}")
    stims = jnp.asarray(stimulus, dtype).reshape((n_targets, -1)) if stim_batched else stimulus
    key = key_of(key)
    z0, direct_result = _starting_points(targets, stims, stim_batched, base, init, trainable, specs,
                                         n_starts, key, starts, direct, dt, record_every)
    z0 = jnp.asarray(z0, dtype)

    n_s = z0.shape[1]
    # Host-side repeats: an eager jnp op would compile a kernel of its own.
    target_np = np.asarray(targets)
    rows_t = jnp.asarray(np.repeat(target_np, n_s, axis=0))
    rows_s = jnp.asarray(np.repeat(np.asarray(stims), n_s, axis=0)) if stim_batched else stims
    use_lm = loss == "mse" and optimizer is None
    steps = steps if steps is not None else (40 if use_lm else 500)
    problem = _Problem(trainable, tuple(specs[n] for n in trainable), float(duration), float(dt),
                       method, int(record_every), checkpoint_every,
                       None if use_lm else get_loss(loss, dt=dt * record_every), bool(fit_v0))
    if fit_v0:
        z0 = np.concatenate([z0, np.zeros(z0.shape[:-1] + (1,))], axis=-1)
    n_z = z0.shape[-1]
    z_rows = jnp.asarray(z0.reshape((-1, n_z)), dtype)
    terms_fn = partial(_gn_terms_host, problem, base, rows_t, rows_s, dtype)
    strategy: Strategy
    if use_lm:
        strategy = LevenbergMarquardt(terms_fn, n_res, tol, group=n_s)
    else:
        optimizer = optimizer if optimizer is not None else _default_adam()
        # Standard errors come from the Gauss–Newton matrix at each target's best row.
        strategy = GradientDescent(optimizer, partial(_optax_iteration, problem, optimizer, base, rows_t=rows_t,
                                                      rows_s=rows_s),
                                   partial(_gn_terms_host, problem, base, targets, stims, dtype), tol)
    ckpt = open_fit_checkpoint(checkpoint, targets=target_np, stimulus=stims, base=base, z0=np.asarray(z_rows),
                               problem=problem, steps=steps, tol=tol, optimizer=strategy.name if use_lm else optimizer,
                               dtype=str(dtype))
    state: Any = strategy.init(z_rows)
    to_loss = lambda s: strategy.losses(s).reshape(n_targets, n_s)  # noqa: E731
    history, it, finished = [to_loss(state)], 0, False
    resumed = load_fit_state(ckpt, state)
    if resumed is not None:
        state, history, it, finished = resumed
    bar = progress_bar(progress, steps, "fit")

    def on_step(state, it, done):
        history.append(to_loss(state))
        advance(bar, f"{np.min(history[-1]):.4g}")
        save_fit_state(ckpt, state, history, it, finished=it == steps or done)

    if not finished:
        state, it, _ = run_strategy(strategy, state, steps, first=it + 1, on_step=on_step)
    if bar is not None:
        bar.close()

    z_final = strategy.best_z(state).reshape(n_targets, n_s, -1)
    final_losses = to_loss(state)
    best = np.argmin(np.where(np.isfinite(final_losses), final_losses, np.inf), axis=-1)
    rows = np.arange(n_targets)
    z_best = z_final[rows, best]
    all_specs = [specs[n] for n in trainable] + ([_V0_SPEC] if fit_v0 else [])
    theta_best = np.stack([from_unconstrained_np(z_best[:, i], sp) for i, sp in enumerate(all_specs)], -1)
    sse, h = strategy.curvature(state, rows * n_s + best, z_best)
    cov = np.zeros((n_targets, len(trainable), len(trainable)))  # v0 marginalised out
    for b in range(n_targets):
        scale = np.array([dtheta_dz(z_best[b, i], sp) for i, sp in enumerate(all_specs)])
        cov[b] = covariance_from_gauss_newton(h[b] / np.outer(scale, scale), sse[b], n_res)[0][
            :len(trainable), :len(trainable)]
    corr = correlation(cov)
    sd = np.sqrt(np.maximum(np.diagonal(cov, axis1=-2, axis2=-1), 0.0))

    converged = strategy.converged(state).reshape(n_targets, n_s)
    stops = strategy.status(state, steps)
    reasons = [[stops[b * n_s + k].message for k in range(n_s)] for b in range(n_targets)]
    status = [[stops[b * n_s + k].status.value for k in range(n_s)] for b in range(n_targets)]
    shape = lambda x: np.asarray(x).reshape(batch + np.shape(x)[1:])  # noqa: E731
    values = {n: jnp.asarray(shape(theta_best[:, i]).astype(np.float32 if dtype == jnp.float32 else float))
              for i, n in enumerate(trainable)}
    params = dataclasses.replace(base, **values)
    start_params = {n: shape(from_unconstrained_np(z_final[..., i], specs[n])) for i, n in enumerate(trainable)}
    pairs = [correlated_pairs(c, trainable) for c in corr]
    return FitResult(
        params=params, loss=shape(final_losses[rows, best]),
        start_params=start_params, start_losses=shape(final_losses),
        history=np.stack([h.reshape(batch + h.shape[1:]) for h in history]),
        stderr={n: shape(sd[:, i]) for i, n in enumerate(trainable)},
        covariance=cov.reshape(batch + cov.shape[1:]), correlation=corr.reshape(batch + corr.shape[1:]),
        correlated=pairs if batch else pairs[0], converged=shape(converged),
        reasons=reasons if batch else reasons[0],
        status=status if batch else status[0], wall_time=time.perf_counter() - t_start,
        trainable=trainable, direct=direct_result,
        settings=dict(dt=dt, duration=duration, method=method, loss=loss if isinstance(loss, str) else "custom",
                      steps=steps, iterations=it, n_starts=int(z0.shape[1]), record_every=record_every,
                      v0=float(np.mean(target_np[:, 0]) + (np.mean(theta_best[:, -1]) if fit_v0 else 0.0)),
                      optimizer=strategy.name,
                      bounds={n: specs[n][:2] for n in trainable}))


@dataclasses.dataclass(frozen=True)
class _Problem:
    """Static (hashable) description of a fitting problem: the compiled iteration is cached
    on it, so a second fit of the same shape does not recompile."""

    trainable: tuple
    specs: tuple
    duration: float
    dt: float
    method: str
    record_every: int
    checkpoint_every: object
    loss_fn: object
    fit_v0: bool = True


_V0_SPEC = (-5.0, 5.0, False)  # the initial voltage may differ from the first sample by ±5 mV


def _simulate_rows(problem, base, z, stims, v0):
    values = {n: from_unconstrained(z[..., i], spec)
              for i, (n, spec) in enumerate(zip(problem.trainable, problem.specs))}
    params = dataclasses.replace(base, **values)
    if problem.fit_v0:
        # The first sample is noisy; an initial-state error would bias every parameter.
        v0 = v0 + from_unconstrained(z[..., len(problem.trainable)], _V0_SPEC)
    return simulate(params, stims, duration=problem.duration, dt=problem.dt, method=problem.method,
                    y0=v0, record_every=problem.record_every,
                    checkpoint_every=problem.checkpoint_every).v


def _residual_fn(problem, base, targets, stims):
    return lambda z: _simulate_rows(problem, base, z, stims, targets[:, 0])[..., 1:] - targets[:, 1:]


def _gn_terms_impl(problem, base, z, targets, stims):
    return gauss_newton_terms(_residual_fn(problem, base, targets, stims), z)


_gn_terms_optimised = jax.jit(_gn_terms_impl, static_argnames=("problem",))
# XLA's backend optimisations take most of the compile time and pay off only when the batch
# is large: a few starts of one trace run 2x slower per iteration but compile ~1 s sooner.
_gn_terms_quick = jax.jit(_gn_terms_impl, static_argnames=("problem",),
                          compiler_options={"xla_backend_optimization_level": 0})
_QUICK_BELOW = 2e5  # rows x samples under which the quick compile wins


def _gn_terms(problem, base, z, targets, stims):
    quick = z.shape[0] * targets.shape[-1] < _QUICK_BELOW
    return (_gn_terms_quick if quick else _gn_terms_optimised)(problem, base, z, targets, stims)


def _gn_terms_host(problem, base, targets, stims, dtype, z):
    """``gauss_newton_terms`` at host-side ``z`` (the LM strategy's ``terms_fn``)."""
    return _gn_terms(problem, base, jnp.asarray(z, dtype), targets, stims)



@partial(jax.jit, static_argnames=("problem", "optimizer"))
def _optax_iteration(problem, optimizer, base, state, it, *, rows_t, rows_s):
    targets, stims = rows_t, rows_s

    def loss(z):
        return problem.loss_fn(_simulate_rows(problem, base, z, stims, targets[:, 0]), targets)

    return optax_step(optimizer, loss, state, it)


@functools.lru_cache(maxsize=None)
def _default_adam():
    return optax.adam(0.05)


def _starting_points(targets, stims, stim_batched, base, init, trainable, specs, n_starts, key,
                     starts, direct, dt, record_every):
    """Unconstrained starting points (NumPy), shape ``(n_targets, n_starts, P)``."""
    n_targets = targets.shape[0]
    if starts is not None:
        missing = [n for n in trainable if n not in starts]
        if missing:
            raise ValueError(f"starts: missing values for {missing}")
        z = np.stack([to_unconstrained(n, starts[n], specs[n]) for n in trainable], -1)
        z = np.array(np.broadcast_to(z, (n_targets,) + z.shape[-2:]))
        # Explicit starts are used as given unless the direct estimate is asked for.
        use_direct = bool(direct)
        first = {n: from_unconstrained_np(z[:, 0, i], specs[n]) for i, n in enumerate(trainable)}
    else:
        draws = sample_in_bounds(key, specs, (n_targets, n_starts))
        z = np.stack([to_unconstrained(n, draws[n], specs[n]) for n in trainable], -1)
        first = {n: np.broadcast_to(np.asarray(getattr(base, n), float), (n_targets,)) for n in trainable}
        if init is not None:
            for n in trainable:
                to_unconstrained(n, first[n], specs[n])
        use_direct = (init is None) if direct is None else direct
    direct_result = None
    names = estimable(base, trainable) if use_direct and record_every == 1 else ()
    if names:
        est = direct_estimate_batch(targets, stims, base, dt=dt, trainable=trainable,
                                    stimulus_batched=stim_batched)
        # Indexing on the host: an eager jnp slice would compile a kernel of its own.
        direct_result = jax.tree_util.tree_map(
            lambda x: jnp.asarray(np.asarray(x)[0]) if np.ndim(x) else x, est) if n_targets == 1 else est
        condition = float(np.asarray(est.condition)[0])
        if n_targets == 1 and condition > 1e3:
            warnings.warn(f"fit: the direct estimate is ill-conditioned (condition number "
                          f"{condition:.3g}); relying on the other starts",
                          RuntimeWarning, stacklevel=3)
        for n in names:
            lo, hi, _ = specs[n]
            vals = np.asarray(getattr(est.params, n), float)
            margin = 1e-3 * (hi - lo)
            vals = np.where(np.isfinite(vals), vals, first[n])
            first[n] = np.clip(vals, lo + margin, hi - margin)
    if use_direct or starts is None:
        z = np.array(z)
        if names and init is not None and starts is None and z.shape[1] >= 2:
            # Both informative points are used: the direct estimate and the user's init.
            z[:, 1] = np.stack([to_unconstrained(n, np.broadcast_to(np.asarray(getattr(init, n), float), (n_targets,)), specs[n])
                                for n in trainable], -1)
        z[:, 0] = np.stack([to_unconstrained(n, first[n], specs[n]) for n in trainable], -1)
    return z, direct_result
