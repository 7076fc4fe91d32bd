"""What the recording fit charges a model for besides voltage: its spikes by the package's
one rule, and the regimes the training sweeps contradict (block or silence where the cell
fires on, bursts the cell does not make)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..analysis.spikes import spike_times

N_SCALAR = 4  # residuals per row besides voltage samples and spike times: count, rest, regime, leak reversal


def model_spikes(v, valid, dt, k_max):
    """Spike count and the (differentiable where timed by a crossing) times, ms, of the
    first ``k_max`` spikes, by the package's one rule (:func:`hhjax.spike_times`); padded
    samples (``~valid``) hold the last value, so they add no spike."""
    del valid
    sp = spike_times(jnp.arange(v.shape[-1]) * dt, v, max_spikes=k_max)
    return sp.count, jnp.where(jnp.isfinite(sp.times), sp.times, 0.0)


def count_errors(n, times, data):
    """Per row: the spike-count error, in units of :func:`count_tolerance`. On a sweep's
    row, the root of the summed squared errors of its *segments* (each epoch and the
    baseline between epochs, ``data["seg_edges"]``, ms; observed counts
    ``data["seg_obs"]``), so that a model cannot
    trade spontaneous spikes for spikes in a step; model spikes beyond the ``k_max`` timed
    ones count as one more error each. On an interpolated row (``data["interpolated"]``),
    the distance of the count ``n`` to the interval ``[n_lo, n_hi]`` (in the tolerance of
    its middle). Counts carry no gradient.

    >>> d = {"seg_edges": jnp.array([[-1e9, 100.0, 200.0, 1e9]]), "seg_obs": jnp.array([[2.0, 3.0, 0.0]]),
    ...      "interpolated": jnp.array([False]), "n_lo": jnp.array([5.0]), "n_hi": jnp.array([5.0])}
    >>> t = jnp.array([[10.0, 50.0, 90.0, 150.0, 160.0]])   # one spike moved out of the step
    >>> float(count_errors(jnp.array([5]), t, d)[0])       # sqrt(1 + 1): total right, split wrong
    1.4142135381698608
    """
    k = jnp.arange(times.shape[-1])
    real = k < n[..., None]
    edges = data["seg_edges"]
    inside = (real[..., None, :] & (times[..., None, :] >= edges[..., :-1, None])
              & (times[..., None, :] < edges[..., 1:, None]))
    per_seg = jnp.sum(inside, -1).astype(times.dtype)
    excess = n - jnp.sum(per_seg, -1)
    obs = data["seg_obs"]
    sq = jnp.sum(((per_seg - obs) / count_tolerance(obs)) ** 2, -1) \
        + (excess / count_tolerance(jnp.sum(obs, -1))) ** 2
    nf = n.astype(times.dtype)
    interval = jnp.maximum(nf - data["n_hi"], 0.0) + jnp.maximum(data["n_lo"] - nf, 0.0)
    interval = interval / count_tolerance((data["n_lo"] + data["n_hi"]) / 2)
    return jax.lax.stop_gradient(jnp.where(data["interpolated"], interval, jnp.sqrt(sq)))


def count_tolerance(n_obs):
    """The count target's tolerance, max(1, 10 % of the observed count): count errors are
    measured in it, so that a sweep of 100 spikes does not outweigh one of 5 (a search
    ranks candidates by the sum, and 20 spikes missing from 141 would otherwise cost 400
    times one missing from 7, where the target puts the first 1.4 tolerances off and the
    second 1).

    >>> float(count_tolerance(jnp.array(5.0))), float(count_tolerance(jnp.array(141.0)))
    (1.0, 14.100000381469727)
    """
    return jnp.maximum(1.0, 0.1 * n_obs)


#: A model is qualitatively wrong on a sweep where it is silent and the cell fires at least
#: this many spikes, or fires this many where the cell is silent (the real-cells targets).
QUALITATIVE_SPIKES = 3


def qualitative_failure(n_obs, n_pred):
    """Whether predicted counts ``n_pred`` fail qualitatively against observed ``n_obs``
    (spikes; elementwise on arrays): silent where the cell fires at least
    :data:`QUALITATIVE_SPIKES`, or firing that many where it is silent.

    >>> qualitative_failure([5, 0, 2, 0], [0, 3, 0, 2]).tolist()
    [True, True, False, False]
    """
    n_obs, n_pred = np.asarray(n_obs), np.asarray(n_pred)
    return ((n_obs >= QUALITATIVE_SPIKES) & (n_pred == 0)) | ((n_obs == 0) & (n_pred >= QUALITATIVE_SPIKES))


def regime_violations(n, times, data):
    """Per row: late spikes the cell makes but the model does not (depolarisation block,
    silence; at most 3) plus model ISIs under half the cell's shortest ISI (bursts the cell
    does not make). ``n``, ``times`` (ms): the model's spikes from :func:`model_spikes` (the
    first ``k_max``); ``data`` from :func:`hhjax.recordings.rows.fit_rows` (``late_t``: the
    late window in ms, ``late_obs``, ``isi_min``).

    >>> d = {"late_t": jnp.array([[50.0, 100.0]]), "late_obs": jnp.array([5.0]), "isi_min": jnp.array([10.0])}
    >>> regular, early = jnp.arange(5.0, 100.0, 10.0)[None], jnp.arange(5.0, 45.0, 4.0)[None]
    >>> int(regime_violations(jnp.array([10]), regular, d)[0])   # fires on, ISIs 10 ms
    0
    >>> int(regime_violations(jnp.array([10]), early, d)[0])     # 3 late spikes missing + 9 ISIs < 5 ms
    12
    """
    k = jnp.arange(times.shape[-1])
    real = k < n[..., None]
    late = real & (times >= data["late_t"][..., :1]) & (times < data["late_t"][..., 1:])
    r_late = jnp.maximum(jnp.minimum(data["late_obs"], 3.0) - jnp.sum(late, -1), 0.0)
    isi = times[..., 1:] - times[..., :-1]
    pair = real[..., 1:] & (data["isi_min"][..., None] > 0)
    return r_late + jnp.sum(pair & (isi < 0.5 * data["isi_min"][..., None]), -1)
