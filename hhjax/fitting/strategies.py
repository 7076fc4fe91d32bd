"""Optimisers as strategies: one fit loop, several ways to take a step.

A strategy works on ``N`` independent rows (targets × starts) of unconstrained parameters
``z`` (N, P), in the way optax composes transformations::

    state = strategy.init(z)
    state, last, done = run_strategy(strategy, state, steps)   # step until every row is done
    strategy.status(state, steps)   # why each row stopped, as data

* :class:`LevenbergMarquardt` — damped Gauss–Newton on least-squares residuals, from any
  ``terms_fn(z) -> (sse, Jᵀr, JᵀJ, finite)`` (:func:`hhjax.fitting.optimizers.
  gauss_newton_terms` of a residual function). Both :func:`hhjax.fit` and
  :func:`hhjax.recordings.fit_recording` use it.
* :class:`GradientDescent` — any optax optimiser on a scalar loss per row.

Termination is a :class:`FitStatus` per row, stable in ``fit.json``, with a message.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Callable, Protocol

import numpy as np

from .optimizers import LMHostState, OptaxState, lm_init, lm_propose, lm_update, optax_init

DEFAULT_TOL = 1e-5
"""Relative loss change under which a row counts as converged (``tol`` of :func:`hhjax.fit`
and of the recording fit's refinement)."""

PATIENCE = 20
"""Optax iterations without a best loss lower by ``tol`` before a row stops (Adam rarely
improves on every step, so a shorter patience stopped good fits early)."""


def run_strategy(strategy: "Strategy", state: Any, steps: int, *, first: int = 1,
                 on_step: Callable[[Any, int, bool], None] | None = None) -> tuple[Any, int, bool]:
    """Iterations ``first .. steps`` of ``strategy`` from ``state``, stopping early once
    every row is done; ``on_step(state, iteration, every row done)`` runs after each
    (progress, history, checkpoints). Returns ``(state, last iteration, every row done)``."""
    it, done = first - 1, False
    for it in range(first, steps + 1):
        state = strategy.step(state, it)
        done = bool(np.all(strategy.done(state, it)))
        if on_step is not None:
            on_step(state, it, done)
        if done:
            break
    return state, it, done


class FitStatus(str, enum.Enum):
    """Why a start stopped. The values are what ``fit.json`` stores."""

    CONVERGED = "converged"
    MAX_STEPS = "max_steps"
    NON_FINITE = "non_finite"
    ABANDONED = "abandoned"


@dataclasses.dataclass(frozen=True)
class Stop:
    """A row's :class:`FitStatus` and a sentence saying why."""

    status: FitStatus
    message: str


class Strategy(Protocol):
    """What :func:`hhjax.fit`'s loop needs of an optimiser (states are host-side pytrees)."""

    name: str

    def init(self, z: Any) -> Any: ...
    def step(self, s: Any, iteration: int) -> Any: ...
    def losses(self, s: Any) -> np.ndarray: ...
    def done(self, s: Any, iteration: int) -> np.ndarray: ...
    def converged(self, s: Any) -> np.ndarray: ...
    def best_z(self, s: Any) -> np.ndarray: ...
    def curvature(self, s: Any, rows: np.ndarray, z: Any) -> tuple: ...
    def status(self, s: Any, steps: int) -> list: ...


@dataclasses.dataclass(frozen=True)
class LMRun:
    """:class:`LevenbergMarquardt` state: the LM state of every row, plus how many
    accepted steps in a row barely helped (``stall``) and how many trial steps in a row
    were rejected (``rejects``)."""

    lm: LMHostState
    stall: np.ndarray
    rejects: np.ndarray


class LevenbergMarquardt:
    """Levenberg–Marquardt for rows grouped ``group`` at a time (the starts of one target).

    Args:
        terms_fn: ``z (N, P) -> (sse, g, h, finite)``, e.g. a compiled
            :func:`~hhjax.fitting.optimizers.gauss_newton_terms`.
        n_residuals: residuals per row (the loss is ``sse / n_residuals``, mV² for voltages).
        tol: a row has converged after two accepted steps that each lower its loss by less
            than this fraction; six rejections in a row or damping at its ceiling also end it.
        group: rows per target; a row whose loss is over 10x the best of its group after 5
            iterations is abandoned (a distant local minimum).
    """

    name = "levenberg-marquardt"

    def __init__(self, terms_fn: Callable, n_residuals: int, tol: float, group: int = 1):
        self.terms_fn, self.n_residuals, self.tol, self.group = terms_fn, n_residuals, tol, group

    def init(self, z: Any) -> LMRun:
        lm = lm_init(z, self.terms_fn(z))
        zeros = np.zeros(lm.sse.shape, int)
        return LMRun(lm, zeros, zeros)

    def step(self, s: LMRun, iteration: int) -> LMRun:
        z_trial = lm_propose(s.lm)
        lm = lm_update(s.lm, z_trial, self.terms_fn(z_trial), iteration)
        # Rejected trial steps (damping went up) say nothing about convergence; only
        # accepted steps that barely help, or damping at its ceiling, count as a stall.
        accepted = lm.lam < s.lm.lam
        small = lm.improvement < self.tol
        # Six rejections in a row (damping x4096) mean no step in any direction helps.
        rejects = np.where(accepted, 0, s.rejects + 1)
        stuck = (lm.lam >= 1e8) | (rejects >= 6)
        stall = np.where(stuck, 2, np.where(accepted, np.where(small, s.stall + 1, 0), s.stall))
        return LMRun(lm, stall, rejects)

    def losses(self, s: LMRun) -> np.ndarray:
        return s.lm.sse / self.n_residuals

    def _abandoned(self, s: LMRun) -> np.ndarray:
        losses = self.losses(s).reshape(-1, self.group)
        return (losses > 10.0 * np.min(losses, axis=-1, keepdims=True)).reshape(-1)

    def done(self, s: LMRun, iteration: int) -> np.ndarray:
        return self.converged(s) | self._abandoned(s) & (iteration >= 5)

    def converged(self, s: LMRun) -> np.ndarray:
        return s.stall >= 2

    def best_z(self, s: LMRun) -> np.ndarray:
        return np.asarray(s.lm.z)

    def curvature(self, s: LMRun, rows: np.ndarray, z: Any) -> tuple:
        """``(sse, JᵀJ)`` at the chosen rows (kept in the state: no new evaluation)."""
        return s.lm.sse[rows], s.lm.h[rows]

    def status(self, s: LMRun, steps: int) -> list:
        converged, abandoned = self.converged(s), self._abandoned(s)
        return [Stop(FitStatus.CONVERGED, "converged: relative loss change below tol") if c else
                Stop(FitStatus.ABANDONED, "abandoned: loss over 10x the best start's (a distant local minimum)")
                if a else Stop(FitStatus.MAX_STEPS, f"not converged: reached steps={steps}")
                for c, a in zip(converged, abandoned)]


@dataclasses.dataclass(frozen=True)
class OptaxRun:
    """:class:`GradientDescent` state: the optax state of every row, the best loss that
    counted as progress (``ref``) and the iterations since (``stall``)."""

    opt: OptaxState
    ref: np.ndarray
    stall: np.ndarray


class GradientDescent:
    """Any optax optimiser, one jitted ``iterate(state, it) -> state`` per step.

    Args:
        optimizer: the optax transformation (its ``init`` is called here).
        iterate: one compiled update of every row (:func:`~hhjax.fitting.optimizers.optax_step`
            of the loss).
        terms_fn: as for :class:`LevenbergMarquardt`, used once at the end for the
            curvature behind the standard errors.
        tol: a row stops after :data:`PATIENCE` iterations whose best loss is not lower by
            this fraction, or when its loss or gradient turns non-finite.
    """

    name = "optax"

    def __init__(self, optimizer: Any, iterate: Callable, terms_fn: Callable, tol: float):
        self.optimizer, self.iterate, self.terms_fn, self.tol = optimizer, iterate, terms_fn, tol

    def init(self, z: Any) -> OptaxRun:
        opt = optax_init(self.optimizer, z)
        best = np.asarray(opt.best_loss)
        return OptaxRun(opt, best, np.zeros(best.shape, int))

    def step(self, s: OptaxRun, iteration: int) -> OptaxRun:
        opt = self.iterate(s.opt, iteration)
        losses = np.asarray(opt.best_loss)
        with np.errstate(invalid="ignore"):  # inf - inf before a row's first finite loss
            goal = np.where(np.isfinite(s.ref), s.ref - self.tol * np.abs(s.ref), np.inf)
        improved = losses < goal
        return OptaxRun(opt, np.where(improved, losses, s.ref), np.where(improved, 0, s.stall + 1))

    def losses(self, s: OptaxRun) -> np.ndarray:
        return np.asarray(s.opt.best_loss)

    def converged(self, s: OptaxRun) -> np.ndarray:
        return s.stall >= PATIENCE

    def done(self, s: OptaxRun, iteration: int) -> np.ndarray:
        return self.converged(s) | (np.asarray(s.opt.nan_at) >= 0)

    def best_z(self, s: OptaxRun) -> np.ndarray:
        return np.asarray(s.opt.best_z)

    def curvature(self, s: OptaxRun, rows: np.ndarray, z: Any) -> tuple:
        sse, _, h, _ = (np.asarray(x, float) for x in self.terms_fn(z))
        return sse, h

    def status(self, s: OptaxRun, steps: int) -> list:
        nan_at = np.asarray(s.opt.nan_at)
        return [Stop(FitStatus.NON_FINITE, f"stopped: loss or gradient became non-finite at step {n}") if n >= 0 else
                Stop(FitStatus.CONVERGED, f"converged: best loss not lower by tol in {PATIENCE} iterations")
                if c else Stop(FitStatus.MAX_STEPS, f"not converged: reached steps={steps}")
                for n, c in zip(nan_at, self.converged(s))]
