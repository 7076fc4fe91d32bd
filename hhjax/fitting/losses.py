"""Differentiable losses between simulated and target voltage traces (mV, time last).

Which to use:

* :func:`mse` — the workhorse when spikes are roughly aligned (and always for
  subthreshold traces). Fast, and the fitter solves it by Gauss–Newton. With a single
  shifted spike its landscape turns rugged: a spike a little late costs as much as no
  spike at all.
* :func:`spike_train_distance` — a van Rossum-style distance between *soft* spike trains.
  It varies smoothly with spike timing, so gradients point the right way even when spikes
  are misaligned or missing. Use it (alone, or weighted with :func:`mse`) when starting
  far from the answer.
* :func:`soft_spike_count` / :func:`feature_loss` — summary statistics (rate, latency,
  subthreshold mean) for when only those matter, e.g. fitting f–I curves of recordings.
* :func:`combine` — a weighted sum of any of the above.

All are pure ``jnp`` functions, reduce over the last axis only, and keep batch axes.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ..simulation.trace import COUNT_THRESHOLD


def mse(v_sim, v_target, *, every=1, smooth=None, weights=None):
    """Mean squared error (mV²) over time.

    Args:
        every: compare every k-th sample (downsampled loss).
        smooth: optional moving-average width in samples applied to both traces first.
        weights: optional per-sample weights broadcastable to the traces.

    Example:
        >>> float(mse(jnp.array([0.0, 1.0]), jnp.array([0.0, 3.0])))
        2.0
    """
    if smooth:
        v_sim, v_target = moving_average(v_sim, smooth), moving_average(v_target, smooth)
    d2 = (v_sim[..., ::every] - v_target[..., ::every]) ** 2
    if weights is None:
        return jnp.mean(d2, axis=-1)
    w = jnp.broadcast_to(jnp.asarray(weights)[..., ::every], d2.shape)
    return jnp.sum(w * d2, axis=-1) / jnp.sum(w, axis=-1)


def moving_average(v, width: int):
    """Centred moving average of ``width`` samples along time (edges use fewer samples)."""
    kernel = jnp.ones(width) / width
    flat = v.reshape((-1, v.shape[-1]))
    out = jax.vmap(lambda x: jnp.convolve(x, kernel, mode="same"))(flat)
    norm = jnp.convolve(jnp.ones(v.shape[-1]), kernel, mode="same")
    return (out / norm).reshape(v.shape)


def soft_spikes(v, *, threshold=COUNT_THRESHOLD, sharpness=2.0):
    """A differentiable spike indicator per sample step (≈1 at an upward crossing).

    ``sigmoid(k (v[t+1] - θ)) * sigmoid(k (θ - v[t]))`` with ``k = sharpness`` (1/mV):
    exactly a crossing detector as ``k -> inf``, smooth for finite ``k``. It relaxes the
    in-loop counter's rule (:func:`hhjax.simulation.trace.upward_crossing` at
    ``COUNT_THRESHOLD``) so that a loss can have a gradient; counts that are reported or
    evaluated come from the package's one detector, :func:`hhjax.spike_times`.
    """
    above = jax.nn.sigmoid(sharpness * (v[..., 1:] - threshold))
    below = jax.nn.sigmoid(sharpness * (threshold - v[..., :-1]))
    return above * below


def soft_spike_count(v, *, threshold=COUNT_THRESHOLD, sharpness=2.0):
    """Differentiable number of upward threshold crossings."""
    return jnp.sum(soft_spikes(v, threshold=threshold, sharpness=sharpness), axis=-1)


def _exp_filter(x, decay):
    def body(acc, xk):
        acc = acc * decay + xk
        return acc, acc

    flat = jnp.moveaxis(x, -1, 0)
    _, out = jax.lax.scan(body, jnp.zeros(flat.shape[1:], x.dtype), flat)
    return jnp.moveaxis(out, 0, -1)


def spike_train_distance(v_sim, v_target, *, dt, tau=5.0, threshold=COUNT_THRESHOLD, sharpness=2.0):
    """van Rossum distance between soft spike trains (spikes², per ms of trace).

    Each trace's soft spike train is filtered with a causal exponential of time constant
    ``tau`` (ms) and the squared difference is integrated over time, normalised by ``tau``:
    a missing spike costs ≈ 1/2 and a spike shifted by ``δ`` costs ≈ ``1 - exp(-|δ|/tau)``,
    which is smooth in ``δ``. ``dt`` is the sample interval (ms).
    """
    decay = jnp.exp(-dt / tau)
    f_sim = _exp_filter(soft_spikes(v_sim, threshold=threshold, sharpness=sharpness), decay)
    f_tgt = _exp_filter(soft_spikes(v_target, threshold=threshold, sharpness=sharpness), decay)
    return jnp.sum((f_sim - f_tgt) ** 2, axis=-1) * dt / tau


def soft_first_spike_time(v, t, *, threshold=COUNT_THRESHOLD, sharpness=2.0):
    """Differentiable latency (ms) of the first upward crossing (``t[-1]`` if none)."""
    s = soft_spikes(v, threshold=threshold, sharpness=sharpness)
    # Probability that the first spike happens at step k: s_k * prod_{j<k} (1 - s_j).
    survive = jnp.exp(jnp.cumsum(jnp.log1p(-jnp.clip(s, 0.0, 1.0 - 1e-6)), axis=-1))
    before = jnp.concatenate([jnp.ones_like(survive[..., :1]), survive[..., :-1]], axis=-1)
    p_first = s * before
    t_mid = 0.5 * (t[1:] + t[:-1])
    return jnp.sum(p_first * t_mid, axis=-1) + survive[..., -1] * t[-1]


def feature_loss(v_sim, v_target, t, *, threshold=COUNT_THRESHOLD, sharpness=2.0, window=None,
                 weights=(1.0, 0.1, 0.05)):
    """Squared differences of soft features: spike count, first-spike latency (ms) and
    subthreshold mean voltage (mV, samples below ``threshold - 20``), with ``weights``.

    ``window=(start, stop)`` (ms) restricts the features to part of the trace.
    """
    mask = jnp.ones_like(t) if window is None else ((t >= window[0]) & (t < window[1])).astype(t.dtype)
    w_count, w_latency, w_mean = weights
    c = jnp.sum(soft_spikes(v_sim, threshold=threshold, sharpness=sharpness) * mask[1:], -1)
    c_t = jnp.sum(soft_spikes(v_target, threshold=threshold, sharpness=sharpness) * mask[1:], -1)
    lat = soft_first_spike_time(v_sim, t, threshold=threshold, sharpness=sharpness)
    lat_t = soft_first_spike_time(v_target, t, threshold=threshold, sharpness=sharpness)
    sub = mask * jax.nn.sigmoid(sharpness * (threshold - 20.0 - v_target))
    mean_sim = jnp.sum(sub * v_sim, -1) / jnp.maximum(jnp.sum(sub, -1), 1.0)
    mean_tgt = jnp.sum(sub * v_target, -1) / jnp.maximum(jnp.sum(sub, -1), 1.0)
    return w_count * (c - c_t) ** 2 + w_latency * (lat - lat_t) ** 2 + w_mean * (mean_sim - mean_tgt) ** 2


def combine(*terms):
    """Weighted sum of losses: ``combine((1.0, mse), (10.0, partial(spike_train_distance, dt=dt)))``.

    Returns a function ``loss(v_sim, v_target)``.

    Example:
        >>> loss = combine((1.0, mse), (2.0, mse))
        >>> float(loss(jnp.zeros(3), jnp.ones(3)))
        3.0
    """

    def loss(v_sim, v_target):
        return sum(w * fn(v_sim, v_target) for w, fn in terms)

    return loss


def get_loss(loss, *, dt, t=None):
    """Resolve a loss given by name (``"mse"``, ``"spikes"``, ``"mse+spikes"``) or callable.

    Named losses are cached, so the same name and ``dt`` give the same (hashable) function
    and the fitter's compiled program is reused.
    """
    if callable(loss):
        return loss
    return _named_loss(loss, float(dt))


@functools.lru_cache(maxsize=None)
def _named_loss(loss, dt):
    if loss == "mse":
        return mse
    if loss == "spikes":
        return lambda a, b: spike_train_distance(a, b, dt=dt)
    if loss == "mse+spikes":
        return combine((1.0, mse), (100.0, lambda a, b: spike_train_distance(a, b, dt=dt)))
    raise ValueError(f"loss: unknown loss {loss!r}; choose 'mse', 'spikes', 'mse+spikes' or pass a callable")
