"""Evaluating a fitted model on recorded sweeps: protocol epochs, features, scores.

Everything here compares the model with the *measured* voltage (no liquid-junction
correction) on the recording's own protocol:

* :func:`stimulus_epochs` finds the holding current and the current steps of a sweep;
* :func:`sweep_features` gives spikes, the resting potential (spike-free baselines only,
  else None), spontaneous firing and the firing rate per depolarising epoch and pooled
  (the f–I curve), by the rules of :mod:`hhjax.recordings.epochs`, for observed and
  simulated traces alike;
* :func:`model_rest` is the model's own resting potential at a holding current;
* :func:`model_start` is the state a sweep starts from: that rest, or, where the cell was
  already firing when the sweep began, the model's firing state at that current;
* :func:`evaluate` simulates whole sweeps from there and scores them (``hhjax evaluate``
  prints and plots it, see :mod:`hhjax.cli.fit`);
* :mod:`hhjax.recordings.choice` picks the sweeps to fit (:mod:`hhjax.recordings.rows` turns
  them into what :func:`hhjax.recordings.cell_fit.fit_recording` simulates).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from .. import plot
from ..analysis import features as F
from .bridge import balance_bridge
from .epochs import cell_rests, epoch_features, fires_at_start, parse_epochs
from .regime import count_tolerance, qualitative_failure
from ..analysis.spikes import SPIKE_RULE
from ..models import model_of
from ..simulation.entry import simulate
from ..models.steady import steady_state
from ..solvers import membrane_terms

GAMMA_WINDOW_MS = 4.0
START_SETTLE_MS, START_KICK_MV = 1000.0, 0.0  # a firing start: settle this long after a kick to this V


def parse_sweeps(text):
    """``"4,6,8"`` -> [4, 6, 8]; ``"0-9"`` -> [0..9]; mixed ``"0-3,7"``; None stays None.

    >>> parse_sweeps("0-2,7")
    [0, 1, 2, 7]
    """
    if text is None or isinstance(text, (list, tuple)):
        return None if text is None else [int(k) for k in text]
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                if b < a:
                    raise ValueError
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ValueError(f"sweeps: {part!r} is not a sweep number or a range like 0-9") from None
    if not out:
        raise ValueError(f"sweeps: no sweeps in {text!r}")
    return out


def stimulus_epochs(t, i, *, min_ms=2.0):
    """Holding current (pA) and the :class:`~hhjax.recordings.epochs.Epoch` list of one
    sweep (steps, pre-pulses, ramps): :func:`hhjax.recordings.epochs.parse_epochs`.

    >>> t = np.arange(0, 500, 0.1); i = np.where((t >= 100) & (t < 300), 40., 0.)
    >>> hold, ep = stimulus_epochs(t, i); hold, round(ep[0].amp)
    (0.0, 40)
    """
    return parse_epochs(t, i, min_ms=min_ms)


def sweep_features(t, v, epochs, hold=0.0):
    """Features of one observed or simulated sweep, by the same rules
    (:func:`hhjax.recordings.epochs.epoch_features`); ``current_pA`` is the absolute
    command at the sweep's largest depolarising epoch (else its most negative one)."""
    f = epoch_features(t, v, epochs)
    f["current_pA"] = float(hold) + f["current_pA"]
    return f


def _tree_expand(params):
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x)[..., None], params)


def net_current(params, v, i_hold_pA):
    """Steady-state outward membrane current minus the injected one (µA/cm²) at ``v`` (mV)."""
    model = model_of(params)
    g, ge = membrane_terms(model, params, steady_state(params, v))
    return g * v - ge - jnp.asarray(i_hold_pA) * model.stimulus_scale(params)


@functools.partial(jax.jit, static_argnames=("v_lo", "v_hi", "n_grid"))
def model_rest(params, i_hold_pA=0.0, *, v_lo=-120.0, v_hi=-10.0, n_grid=221):
    """The model's resting potential (mV) at holding current ``i_hold_pA``, differentiably.

    The lowest stable root of the steady-state I–V curve (a sign change from inward to
    outward going up in V) is bracketed on a 0.5 mV grid and polished by 3 Newton steps.
    Broadcasts over params leaves and ``i_hold_pA``.

    >>> from hhjax.models.pospischil import RS
    >>> round(float(model_rest(RS)), 1)
    -71.9
    """
    grid = jnp.linspace(v_lo, v_hi, n_grid)
    i_hold = jnp.asarray(i_hold_pA)
    cur = net_current(_tree_expand(params), grid, i_hold[..., None])
    up = (cur[..., :-1] < 0) & (cur[..., 1:] >= 0)
    k = jnp.where(jnp.any(up, -1), jnp.argmax(up, -1), jnp.argmin(jnp.abs(cur[..., :-1]), -1))
    c0 = jnp.take_along_axis(cur, k[..., None], -1)[..., 0]
    c1 = jnp.take_along_axis(cur, k[..., None] + 1, -1)[..., 0]
    lo, step = grid[k], grid[1] - grid[0]
    v = lo + step * jnp.clip(-c0 / jnp.where(c1 == c0, 1.0, c1 - c0), 0.0, 1.0)
    for _ in range(3):
        c, dc = jax.jvp(lambda x: net_current(params, x, i_hold), (v,), (jnp.ones_like(v),))
        v = jnp.clip(v - c / jnp.where(jnp.abs(dc) > 1e-9, dc, 1e-9), lo, lo + step)
    return v


def settle_start(params, rest, i_hold_pA, firing, *, dt=0.1, method="exp_euler"):
    """States (leaves shaped like ``rest``'s V) that sweeps start from, given the model's
    rest ``rest`` (a voltage, mV, or a state) at holding current ``i_hold_pA`` (pA):

    * where ``firing`` is False, the rest (the fixed point; gates at steady state);
    * where it is True (the cell was firing when the sweep began,
      :func:`hhjax.recordings.epochs.fires_at_start`), the state after :data:`START_SETTLE_MS`
      at the holding current from the rest kicked to :data:`START_KICK_MV`: on the model's
      firing attractor if it has one at that current (a model bistable there, as cells
      often are, would otherwise sit at its fixed point and stay silent), back near rest if
      not. The phase on the cycle is arbitrary (about ±1 spike per sweep).

    ``firing`` is static (NumPy bools broadcasting against ``rest``); no gradient flows
    through the settling run (forward-mode Jacobians through 1 s of limit cycle are large
    and useless). One rule for :func:`evaluate` and the fit alike.

    >>> from hhjax.models.pospischil import RS
    >>> y = settle_start(RS, -71.9, 0.0, np.array([False, True]))
    >>> [round(float(v), 1) for v in y.v]       # RS at 0 pA: no firing state, back near rest
    [-71.9, -71.9]
    """
    firing = np.asarray(firing, bool)
    y_rest = rest if hasattr(rest, "v") else steady_state(params, jnp.asarray(rest))
    if not firing.any():
        return y_rest
    p_sg = jax.tree_util.tree_map(jax.lax.stop_gradient, params)
    y_sg = jax.tree_util.tree_map(jax.lax.stop_gradient, y_rest)
    shape = jnp.broadcast_shapes(jnp.shape(y_sg.v), firing.shape)
    y_sg = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, shape), y_sg)
    kicked = dataclasses.replace(y_sg, v=jnp.full(shape, START_KICK_MV, y_sg.v.dtype))
    n = int(round(START_SETTLE_MS / dt))
    hold = jnp.broadcast_to(jnp.asarray(i_hold_pA, y_sg.v.dtype)[..., None], shape + (n,))
    tr = simulate(p_sg, hold, duration=n * dt, dt=dt, method=method, y0=kicked, record_every=n,
                  spike_threshold=None)
    settled = jax.tree_util.tree_map(lambda x: x[..., -1], tr.state)
    return jax.tree_util.tree_map(lambda a, b: jnp.where(firing, a, jnp.broadcast_to(b, shape)), settled, y_rest)


def row_starts(params, rest, holds, firing, *, shared=False, per_row=False, dt=0.1, method="exp_euler"):
    """Start states of a recording fit's rows by the rule of :func:`settle_start`, and
    whether they carry a row axis. ``params`` leaves and ``rest`` (mV, a fixed point at the
    mean holding current) have the search's batch shape; ``holds``/``firing``: per row.
    ``shared``: the rows share a simulated prefix, so one start (firing if all rows are);
    ``per_row``: the rows hold different currents, each starts at its own rest."""
    firing, hold = np.asarray(firing, bool), jnp.mean(holds)
    start = functools.partial(settle_start, dt=dt, method=method)
    if shared:
        return start(params, rest, hold, np.bool_(firing.all())), False
    if per_row:
        p_rows = _tree_expand(params)
        return start(p_rows, jax.lax.stop_gradient(model_rest(p_rows, holds)), holds, firing), True
    if firing.any():  # settled once, not per row
        return jax.tree_util.tree_map(lambda a, b: jnp.where(firing, a[..., None], b[..., None]), start(
            params, rest, hold, np.True_), steady_state(params, rest)), True
    return rest[..., None], False


def model_start(params, i_hold_pA, firing, *, dt=0.1, method="exp_euler"):
    """The state a sweep at holding current ``i_hold_pA`` (pA) starts from:
    :func:`settle_start` from :func:`model_rest`."""
    return settle_start(params, model_rest(params, i_hold_pA), i_hold_pA, firing, dt=dt, method=method)


def simulate_sweeps(params, rec, *, dt=0.1, method="exp_euler", firing=None):
    """Simulate every sweep of ``rec`` (its own current, from :func:`model_start` at that
    sweep's holding current; ``firing``: per sweep, whether the cell was firing when it
    began, default no) on a ``dt`` grid. Returns ``(t, v)`` with ``v`` (n_sweeps, n)."""
    rr = rec.resample(dt)
    n = rr.n_samples
    holds = np.array([stimulus_epochs(rr.t, i)[0] for i in rr.i])
    firing = np.zeros(len(holds), bool) if firing is None else np.asarray(firing, bool)
    y0 = model_start(params, jnp.asarray(holds), firing, dt=dt, method=method)  # eager: jit compiles for seconds
    v = simulate(params, jnp.asarray(rr.i[:, : n - 1]), duration=(n - 1) * dt, dt=dt,
                 method=method, y0=y0, spike_threshold=None).v
    return rr.t, np.asarray(v, float)


def format_value(x, spec=".2f", none="–"):
    """``x`` formatted with ``spec``, or ``none`` when it is undefined (None).

    >>> format_value(None), format_value(1.234, ".1f")
    ('–', '1.2')
    """
    return none if x is None else format(x, spec)


def _nan(x):
    return np.nan if x is None else float(x)


def _num(x):
    return None if x is None or not math.isfinite(float(x)) else float(x)


def evaluate(params, recording, sweeps=None, *, dt=0.1, method="exp_euler", return_traces=False, bridge="auto"):
    """Score ``params`` against the recorded sweeps (default: all).

    Returns a JSON-ready dict: ``"sweeps"`` (one object per sweep with ``sweep``,
    ``current_pA``, ``observed_spikes``, ``predicted_spikes``, ``observed_rest_mV``,
    ``predicted_rest_mV``, ``observed_rate_hz``, ``predicted_rate_hz``, ``gamma``
    (Jolivet's coincidence factor, ±4 ms)) and ``"summary"`` (``fraction_within_1_spike``,
    ``fi_rms_hz``, ``rest_error_mV`` (mean |error|), ``max_rest_error_mV``,
    ``mean_gamma``), and ``"bridge_corrected_MOhm"``: the observed voltage is compared after
    removing an unbalanced bridge (:func:`hhjax.recordings.bridge.balance_bridge`, measured on
    all sweeps; 0 where none was found; ``bridge`` in MΩ removes that much instead, as the fit
    did: its ``settings["bridge_corrected_MOhm"]``). ``return_traces=True`` adds
    ``(t_sim, v_sim)`` as a second value.
    """
    recording = balance_bridge(recording, bridge)
    rec = recording if sweeps is None else recording.select(sweeps)
    parsed = [stimulus_epochs(rec.t, i) for i in rec.i]
    obs = [sweep_features(rec.t, v, ep, h) for v, (h, ep) in zip(rec.v, parsed)]
    t_sim, v_sim = simulate_sweeps(params, rec, dt=dt, method=method, firing=[fires_at_start(o) for o in obs])
    sim = [sweep_features(t_sim, v, ep, h) for v, (h, ep) in zip(v_sim, parsed)]
    holds = [h for h, _ in parsed]
    rest_o, rest_p = cell_rests(obs, holds), cell_rests(sim, holds)
    rows = []
    for k, sweep in enumerate(rec.sweeps):
        (hold, epochs), o, p = parsed[k], obs[k], sim[k]
        gamma = F.gamma_coincidence(o["spike_times"], p["spike_times"], rec.duration, window_ms=GAMMA_WINDOW_MS)
        rows.append({"sweep": int(sweep), "current_pA": o["current_pA"], "holding_pA": float(hold),
                     "observed_spikes": o["spikes"], "predicted_spikes": p["spikes"],
                     "observed_rest_mV": rest_o[k], "predicted_rest_mV": rest_p[k],
                     "observed_rate_hz": o["rate_hz"], "predicted_rate_hz": p["rate_hz"],
                     "observed_spontaneous_hz": o["spontaneous_hz"], "predicted_spontaneous_hz": p["spontaneous_hz"],
                     "epochs": [{"kind": e.kind, "start_ms": e.start, "stop_ms": e.stop, "amp_pA": e.amp,
                                 "observed_spikes": a["spikes"], "predicted_spikes": b["spikes"]}
                                for e, a, b in zip(epochs, o["epochs"], p["epochs"])],
                     "gamma": _num(gamma),
                     "observed_spike_times_ms": np.round(o["spike_times"], 2).tolist(),
                     "predicted_spike_times_ms": np.round(p["spike_times"], 2).tolist()})
    out = {"source": rec.source, "sweeps": rows, "summary": summarise(rows),
           "bridge_corrected_MOhm": float(rec.metadata.get("bridge_corrected_MOhm", 0.0)),
           "settings": {"dt_ms": dt, "method": method, "spike_rule": SPIKE_RULE,
                        "gamma_window_ms": GAMMA_WINDOW_MS,
                        "rate": "spikes in depolarising epochs (+2 ms) / their total duration; null without one",
                        "rest": "median V of the spike-free pre-stimulus baseline; null when a baseline "
                                "window of any sweep at that holding current holds a spike (spontaneous "
                                "firing)",
                        "start": "the model starts at its own rest at the sweep's holding current, or, where "
                                 "the cell fires before the first epoch, after 1000 ms at holding from a kick "
                                 "to 0 mV (its firing state, if it has one)",
                        "ljp_corrected_mV": rec.ljp_corrected_mV}}
    return (out, (t_sim, v_sim)) if return_traces else out


def _pairs(rows, a, b):
    return np.array([(r[a], r[b]) for r in rows if r[a] is not None and r[b] is not None], float).reshape(-1, 2)


def fi_tolerance(top_rate_hz: float) -> float:
    """The f–I target's tolerance (Hz): max(3 Hz, 10 % of the recording's highest rate), for
    the held-out f–I RMS error and the model selection's rate term alike.

    >>> fi_tolerance(20.0), fi_tolerance(101.0)
    (3.0, 10.100000000000001)
    """
    return max(3.0, 0.1 * float(top_rate_hz))


def summarise(rows):
    """Scores over sweep rows of :func:`evaluate`: ``fraction_within_1_spike``,
    ``fraction_count_ok`` (within ±max(1, 10 %) of the observed count), ``fi_rms_hz`` (over
    sweeps where both rates are defined), ``rest_error_mV``/``max_rest_error_mV`` (mean/max
    |error| where both rests are defined; None if nowhere), ``rest_missing`` (sweeps where the
    cell rests but the model fires in the baseline, so has no rest: a miss of the rest target,
    not a sweep to leave out), ``qualitative_failures`` (model silent where the cell fires >= 3
    spikes, or >= 3 where it is silent), ``mean_gamma``.

    >>> r = [dict(observed_spikes=5, predicted_spikes=0, observed_rate_hz=10., predicted_rate_hz=0.,
    ...           observed_rest_mV=-70., predicted_rest_mV=None, gamma=None)]
    >>> s = summarise(r); s["qualitative_failures"], s["fi_rms_hz"], s["rest_error_mV"], s["rest_missing"]
    (1, 10.0, None, 1)
    """
    n_o = np.array([r["observed_spikes"] for r in rows])
    n_p = np.array([r["predicted_spikes"] for r in rows])
    f, v = _pairs(rows, "observed_rate_hz", "predicted_rate_hz"), _pairs(rows, "observed_rest_mV", "predicted_rest_mV")
    gam = [r["gamma"] for r in rows if r["gamma"] is not None]
    d_r = np.abs(v[:, 1] - v[:, 0])
    return {"n_sweeps": len(rows), "fraction_within_1_spike": float(np.mean(np.abs(n_p - n_o) <= 1)),
            "fraction_count_ok": float(np.mean(np.abs(n_p - n_o) <= np.asarray(count_tolerance(n_o)))),
            "fi_rms_hz": float(np.sqrt(np.mean((f[:, 1] - f[:, 0]) ** 2))) if f.size else None,
            "rest_error_mV": float(np.mean(d_r)) if d_r.size else None,
            "max_rest_error_mV": float(np.max(d_r)) if d_r.size else None,
            "rest_compared": int(d_r.size),
            "rest_missing": sum(r["observed_rest_mV"] is not None and r["predicted_rest_mV"] is None for r in rows),
            "qualitative_failures": int(np.sum(qualitative_failure(n_o, n_p))),
            "mean_gamma": _num(np.mean(gam)) if gam else None}


def plot_evaluation(result, rec, t_sim, v_sim, path, n_traces=4):
    """Observed vs predicted traces (a few sweeps spread over the f–I range) and f–I curves."""

    plt = plot._plt()
    rows = result["sweeps"]
    pick = sorted({int(round(x)) for x in np.linspace(0, len(rows) - 1, min(n_traces, len(rows)))})
    fig, axes = plt.subplots(len(pick) + 1, 1, figsize=(10, 2.2 * (len(pick) + 1)),
                             gridspec_kw={"height_ratios": [1] * len(pick) + [1.4]})
    for ax, k in zip(axes, pick):
        ax.plot(rec.t, rec.v[k], "k", lw=0.6, label="observed")
        ax.plot(t_sim, v_sim[k], "tab:red", lw=0.6, alpha=0.8, label="model")
        r = rows[k]
        ax.set_title(f"sweep {r['sweep']}: {r['current_pA']:+.0f} pA, spikes {r['observed_spikes']} "
                     f"observed / {r['predicted_spikes']} model, Γ = {r['gamma'] if r['gamma'] is None else round(r['gamma'], 2)}",
                     fontsize=9)
        ax.set_ylabel("V (mV)")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[len(pick) - 1].set_xlabel("t (ms)")
    ax = axes[-1]
    cur = [r["current_pA"] for r in rows]
    for key, style, label in (("observed_rate_hz", "ko-", "observed"), ("predicted_rate_hz", "s--", "model")):
        ax.plot(cur, [np.nan if r[key] is None else r[key] for r in rows], style, ms=3, label=label,
                **({} if label == "observed" else {"color": "tab:red"}))
    ax.set_xlabel("step current (pA)")
    ax.set_ylabel("rate (Hz)")
    rms = result["summary"]["fi_rms_hz"]
    ax.set_title("f–I: RMS error " + ("undefined" if rms is None else f"{rms:.2f} Hz"), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return plot.save(fig, path)
