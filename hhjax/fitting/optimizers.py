"""The optimisers behind :func:`hhjax.fit`. Everything is batched natively: ``N`` rows
(targets × starts) are ``N`` independent neurons of one broadcast simulation, so no
``vmap`` is stacked on the scan (which keeps compilation short).

* Levenberg–Marquardt on least-squares residuals. The Jacobian comes from ONE
  forward-mode ``jvp`` of a simulation whose batch holds each row ``P`` times, copy ``p``
  carrying the tangent of parameter ``p``. Forward mode keeps no tape: memory does not
  grow with the number of time steps, so 10 s traces cost no more memory per step than
  100 ms ones. :func:`gauss_newton_terms` (compiled: the simulation and its Jacobian,
  reduced to ``Jᵀr`` and ``JᵀJ``) with :func:`lm_init` / :func:`lm_update` (host-side
  NumPy, float64: the P×P solves and the accept/reject logic). Only the simulation is
  compiled, which is most of what a cold fit waits for. :func:`hhjax.fit` and the
  recording fit both drive them through :class:`hhjax.fitting.strategies.LevenbergMarquardt`.
* :func:`optax_step` — any optax optimiser on any scalar loss (reverse mode; use
  ``checkpoint_every`` to bound its memory on long traces).

A trial step whose loss is not finite is rejected (LM) or freezes that row (optax), and
the step at which it happened is recorded, so NaN never propagates into results.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._pytree import pytree_dataclass


def residuals_and_jacobian(residual_fn, z):
    """``r(z)`` (N, n) and ``∂r_b/∂z_b`` (N, n, P) from one forward-mode pass.

    ``residual_fn`` maps params of shape ``batch + (P,)`` to residuals ``batch + (n,)`` with
    rows independent (as for uncoupled neurons).
    """
    n, p = z.shape
    z_rep = jnp.broadcast_to(z, (p, n, p))
    tangent = jnp.broadcast_to(jnp.eye(p, dtype=z.dtype)[:, None, :], (p, n, p))
    r_rep, dr = jax.jvp(residual_fn, (z_rep,), (tangent,))
    return r_rep[0], jnp.moveaxis(dr, 0, -1)


def gauss_newton_terms(residual_fn, z):
    """Per row: sum of squares ``(N,)``, gradient ``Jᵀr`` ``(N, P)``, Gauss–Newton matrix
    ``JᵀJ`` ``(N, P, P)`` and whether all of them are finite ``(N,)``."""
    return normal_terms(*residuals_and_jacobian(residual_fn, z))


def normal_terms(r, jac, xp=jnp):
    """:func:`gauss_newton_terms` from residuals ``r`` (N, n) and Jacobian ``jac`` (N, n, P);
    ``xp=np`` reduces float64 copies on the host (a float32 ``JᵀJ`` overflows where a spike
    appears under a tiny change and the Jacobian reaches ~1e17)."""
    sse = xp.sum(r * r, axis=-1)
    g = xp.einsum("bnp,bn->bp", jac, r)
    h = xp.einsum("bnp,bnq->bpq", jac, jac)
    finite = xp.isfinite(sse) & xp.all(xp.isfinite(h), axis=(-2, -1)) & xp.all(xp.isfinite(g), axis=-1)
    return sse, g, h, finite


@dataclasses.dataclass(frozen=True)
class LMHostState:
    """Host-side (NumPy float64) Levenberg–Marquardt state for ``N`` rows: ``z`` (N, P),
    sum of squares ``sse``, ``g = Jᵀr``, ``h = JᵀJ``, damping ``lam``, last relative
    improvement, and the last iteration whose trial step was non-finite (-1 if never)."""

    z: np.ndarray
    sse: np.ndarray
    g: np.ndarray
    h: np.ndarray
    lam: np.ndarray
    improvement: np.ndarray
    nan_at: np.ndarray


def _host_terms(terms):
    """``gauss_newton_terms`` output as float64 NumPy arrays, ``finite`` as bool."""
    sse, g, h, finite = (np.asarray(t, dtype=float) for t in terms)
    return sse, g, h, finite.astype(bool)


def lm_init(z, terms):
    """State at ``z`` from ``terms = gauss_newton_terms(...)`` evaluated there (non-finite
    rows get an infinite loss, so any finite trial step is accepted)."""
    sse, g, h, finite = _host_terms(terms)
    n = sse.shape[0]
    return LMHostState(
        z=np.asarray(z, dtype=float), sse=np.where(finite, sse, np.inf),
        g=np.where(finite[:, None], g, 0.0), h=np.where(finite[:, None, None], h, 0.0),
        lam=np.full(n, 3e-3), improvement=np.full(n, np.inf),
        nan_at=np.where(finite, -1, 0).astype(int))


def _lm_delta(h, g, lam):
    """Damped Gauss–Newton step per row (Marquardt's diagonal scaling), capped."""
    diag = np.diagonal(h, axis1=-2, axis2=-1)
    floor = 1e-12 * np.max(diag, axis=-1, keepdims=True) + 1e-30
    damped = h + (lam[:, None] * (diag + floor))[..., None] * np.eye(h.shape[-1], dtype=h.dtype)
    delta = -_host_solve(damped, g)
    delta = np.where(np.isfinite(delta), delta, 0.0)
    # A step of more than 2 in sigmoid space jumps across most of the bounds: cap it.
    return delta * np.minimum(1.0, 2.0 / (np.max(np.abs(delta), axis=-1, keepdims=True) + 1e-30))


def _lm_decide(loss, loss_new, finite, lam):
    """Per row: accept the trial point (finite and lower loss)?, its relative improvement,
    and the new damping."""
    accept = finite & (loss_new < loss)
    improvement = np.where(accept & np.isfinite(loss), (loss - loss_new) / np.maximum(loss, 1e-30),
                           np.where(accept, np.inf, 0.0))
    return accept, improvement, np.clip(np.where(accept, lam / 3.0, lam * 4.0), 1e-9, 1e9)


def _host_solve(a, b):
    try:
        return np.linalg.solve(a, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.einsum("bpq,bq->bp", np.linalg.pinv(a), b)


def lm_propose(s: LMHostState):
    """The damped Gauss–Newton trial point for every row."""
    with np.errstate(all="ignore"):
        return s.z + _lm_delta(s.h, s.g, s.lam)


def lm_update(s: LMHostState, z_new, terms, iteration):
    """Accept each row's trial point if its loss is finite and lower; adapt the damping."""
    sse, g, h, finite = _host_terms(terms)
    with np.errstate(invalid="ignore", divide="ignore"):
        accept, improvement, lam = _lm_decide(s.sse, sse, finite, s.lam)
    return LMHostState(
        z=np.where(accept[:, None], z_new, s.z), sse=np.where(accept, sse, s.sse),
        g=np.where(accept[:, None], g, s.g), h=np.where(accept[:, None, None], h, s.h),
        lam=lam, improvement=improvement, nan_at=np.where(finite, s.nan_at, iteration))


@pytree_dataclass
class OptaxState:
    """Optax state for ``N`` rows: params ``z`` (N, P), optimiser state, last finite
    ``loss``, best ``z``/loss seen, and the step at which the loss became non-finite."""

    z: jax.Array
    opt_state: object
    loss: jax.Array
    best_z: jax.Array
    best_loss: jax.Array
    nan_at: jax.Array


def optax_init(optimizer, z):
    n = z.shape[0]
    inf = jnp.full((n,), jnp.inf, z.dtype)
    return OptaxState(z, optimizer.init(z), inf, z, inf, jnp.full((n,), -1, jnp.int32))


def optax_step(optimizer, loss_fn, s: OptaxState, iteration):
    """One update; rows are independent, so the gradient of the summed loss is per row.
    A row whose loss or gradient turns non-finite is frozen."""
    losses, vjp = jax.vjp(loss_fn, s.z)
    (grad,) = vjp(jnp.ones_like(losses))
    ok = jnp.isfinite(losses) & jnp.all(jnp.isfinite(grad), axis=-1) & (s.nan_at < 0)
    grad = jnp.where(ok[:, None], grad, 0.0)
    updates, opt_state = optimizer.update(grad, s.opt_state, s.z)
    z = jnp.where(ok[:, None], optax.apply_updates(s.z, updates), s.z)
    better = ok & (losses < s.best_loss)
    return OptaxState(
        z=z, opt_state=opt_state,
        loss=jnp.where(ok, losses, s.loss),
        best_z=jnp.where(better[:, None], s.z, s.best_z),
        best_loss=jnp.where(better, losses, s.best_loss),
        nan_at=jnp.where(ok | (s.nan_at >= 0), s.nan_at, iteration),
    )
