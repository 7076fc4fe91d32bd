"""The search of a recording fit: a cross-entropy search in the unit (log-)intervals of the
parameters, then batched Levenberg–Marquardt on its best points
(:func:`hhjax.recordings.cell_fit.fit_recording` runs it once per attempt)."""

from __future__ import annotations

import dataclasses
import time

import jax.numpy as jnp
import numpy as np

from ..fitting._common import advance, progress_bar
from ..fitting.optimizers import normal_terms
from ..fitting.strategies import DEFAULT_TOL, LevenbergMarquardt, run_strategy
from .checkpoint import Checkpoint, lm_run_of
from .laplace import _stderr
from .loss import _loss, _residuals_and_jacobian


@dataclasses.dataclass(frozen=True)
class Search:
    """What one search found. ``z``: the best point (unconstrained coordinates); ``loss``: its
    loss; ``losses``: each refined start's; ``history``: best loss per generation, then per
    LM iteration; ``stderr``: Laplace standard errors at ``z`` (empty without LM);
    ``start_loss``/``search_loss``: at the start and the search's best; ``t_search``,
    ``t_refine``: seconds."""

    z: np.ndarray
    loss: float
    losses: np.ndarray
    history: np.ndarray
    stderr: dict
    lm_iterations: int
    start_loss: float
    search_loss: float
    t_search: float
    t_refine: float


def search(spec, base, data: dict, data_np: dict, mu: np.ndarray, sig: np.ndarray, *, seed: int,
           generations: int, population: int, n_starts: int, steps: int, progress=None,
           checkpoint: Checkpoint | None = None, label: str = "fit") -> Search:
    """One cross-entropy search from ``mu`` (spread ``sig``, unit intervals) drawn from ``seed``,
    and ``steps`` Levenberg–Marquardt iterations on its ``n_starts`` best points together;
    ``checkpoint`` saves (and resumes) every generation and iteration."""
    t0 = time.perf_counter()
    names = spec.names
    rng = np.random.default_rng(seed)
    bar = progress_bar(progress, generations + steps, label)
    pool_z, pool_l, history = [], [], []
    ckpt, saved = checkpoint, (checkpoint.load() if checkpoint is not None else None)
    g0 = 0
    if saved is not None:
        g0, mu, sig = int(saved["generation"]), saved["mu"], saved["sig"]
        rng.bit_generator.state = saved["rng"]
        pool_z, pool_l, history = list(saved["pool_z"]), list(saved["pool_l"]), saved["history"].tolist()
        if bar is not None:
            bar.update(g0)
    g = g0
    save = lambda **lm: ckpt and ckpt.save(generation=g, mu=mu, sig=sig, rng=rng, pool_z=pool_z,  # noqa: E731
                                           pool_l=pool_l, history=history, **lm)
    for g in range(g0 + 1, generations + 1):  # cross-entropy search in the unit (log-)intervals
        u = np.clip(mu + sig * rng.standard_normal((population, len(names))), 1e-3, 1 - 1e-3)
        u[0] = mu
        z = np.log(u) - np.log1p(-u)
        pool_z.append(z)
        pool_l.append(np.asarray(_loss(spec, base, jnp.asarray(z, jnp.float32), data)))
        allz, alll = np.concatenate(pool_z), np.concatenate(pool_l)
        elite = 1.0 / (1.0 + np.exp(-allz[np.argsort(alll)[: max(8, population // 10)]]))
        mu, sig = elite.mean(0), np.maximum(0.6 * elite.std(0) + 0.2 * sig, 0.01)
        history.append(float(np.min(alll)))
        save()
        advance(bar, f"{history[-1]:.3g}")
    allz, alll = np.concatenate(pool_z), np.concatenate(pool_l)
    t_search = time.perf_counter() - t0
    best = np.argsort(alll)[:n_starts]
    z0, searched = allz[best], alll[best]
    jac_at = lambda z: _residuals_and_jacobian(spec, base, jnp.asarray(z, jnp.float32), data)  # noqa: E731
    # The residuals are scaled so that their sum of squares is the loss: one "residual".
    def terms(z):
        r, jac = (np.asarray(x, float) for x in jac_at(z))
        return normal_terms(r, jac, xp=np)

    lm = LevenbergMarquardt(terms, 1, DEFAULT_TOL, group=n_starts)
    it, done, state = 0, False, None
    if steps and saved is not None and int(saved["lm_it"]) >= 0:
        it, done, state = int(saved["lm_it"]), bool(saved["lm_done"]), lm_run_of(saved)
    elif steps:
        state = lm.init(z0)
        save(lm_it=0, lm_state=state)

    def on_step(state, it, done):
        history.append(min(float(np.min(lm.losses(state))), history[-1]))
        save(lm_it=it, lm_done=done, lm_state=state)
        advance(bar, f"{history[-1]:.3g}")

    if steps and not done:  # refine all starts together
        state, it, done = run_strategy(lm, state, steps, first=it + 1, on_step=on_step)
    if bar is not None:
        bar.close()
    losses, z_all = (lm.losses(state), lm.best_z(state)) if state is not None else (searched, z0)
    # A start whose Jacobian is not finite (a spike time with an infinite derivative) enters
    # LM at an infinite loss and takes any finite step: keep its search point unless LM beat it.
    worse = ~(losses <= searched)
    losses, z_all = np.where(worse, searched, losses), np.where(worse[:, None], z0, z_all)
    b = int(np.argmin(np.where(np.isfinite(losses), losses, np.inf)))
    stderr = {}
    if steps:  # the Jacobian at the end (same batch shape as the LM's: nothing recompiles)
        r, jac = (np.asarray(x) for x in jac_at(z_all))
        stderr = _stderr(spec, z_all[b], jac[b], r[b], data_np)
    return Search(z=z_all[b], loss=float(losses[b]), losses=losses, history=np.asarray(history), stderr=stderr,
                  lm_iterations=it, start_loss=float(pool_l[0][0]), search_loss=float(np.min(alll)),
                  t_search=t_search, t_refine=time.perf_counter() - t0 - t_search)
