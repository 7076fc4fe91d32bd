"""Evaluating a fitted model on recorded sweeps: protocol epochs, features, scores.

Everything here compares the model with the *measured* voltage (no liquid-junction
correction) on the recording's own protocol:

* :func:`stimulus_epochs` finds the holding current and the current steps of a sweep;
* :func:`sweep_features` gives spikes (:func:`hhjax.spike_times`, the package's one rule),
  the resting potential (eFEL ``voltage_base`` before the first step) and the firing rate
  (spikes inside depolarising steps / their total duration, Hz: the f–I curve);
* :func:`model_rest` is the model's own resting potential at a holding current;
* :func:`evaluate` simulates whole sweeps from that rest and scores them (``hhjax evaluate``
  prints and plots it, see :mod:`hhjax.cli.fit`);
* :func:`choose_sweeps` and :func:`fit_rows` turn a protocol into what
  :func:`hhjax.recordings.cell_fit.fit_recording` simulates.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from .. import plot
from ..analysis import features as F
from ..analysis.spikes import SPIKE_RULE, spike_train
from ..models import model_of
from ..simulation.entry import simulate
from ..models.steady import steady_state
from ..solvers import membrane_terms

GAMMA_WINDOW_MS = 4.0
POST_MS, MASK_MS = 100.0, (3.0, 6.0)  # fit rows: after the main step; no-spike mask around spikes


@dataclasses.dataclass(frozen=True)
class Epoch:
    """A constant-current step: ``start``/``stop`` (ms) and ``amp`` (pA above holding)."""

    start: float
    stop: float
    amp: float


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
    """Holding current (pA) and the list of :class:`Epoch` steps of one sweep.

    Holding is the median current over the first 20 ms (or 5 % of the sweep); a step is a
    run of at least ``min_ms`` whose current differs from holding by more than a noise
    tolerance (1 pA for command waveforms, 5 robust SDs for a measured current).
    """
    t, i = np.asarray(t, float), np.asarray(i, float)
    dt = float(t[1] - t[0])
    n0 = max(3, int(round(min(20.0, 0.05 * (t[-1] - t[0])) / dt)))
    head = i[:n0]
    hold = float(np.median(head))
    tol = max(1.0, 5.0 * 1.4826 * float(np.median(np.abs(head - hold))))
    if tol > 1.0:  # measured (noisy) current: median-filter it over ~1 ms first
        from scipy.ndimage import median_filter

        i = median_filter(i, size=max(3, int(round(1.0 / dt)) | 1), mode="nearest")
    cuts = np.flatnonzero(np.abs(np.diff(i)) > tol) + 1
    bounds = np.concatenate([[0], cuts, [i.size]])
    epochs = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if (b - a) * dt < min_ms:
            continue
        amp = float(np.median(i[a:b])) - hold
        if abs(amp) <= tol:
            continue
        start, stop = float(t[a]), float(t[b - 1] + dt)
        if epochs and abs(epochs[-1].amp - amp) <= tol and start - epochs[-1].stop <= min_ms:
            epochs[-1] = Epoch(epochs[-1].start, stop, epochs[-1].amp)
        else:
            epochs.append(Epoch(start, stop, amp))
    return hold, epochs


def sweep_features(t, v, epochs):
    """Observed (or simulated) features of one sweep (see the module docstring)."""
    t, v = np.asarray(t, float), np.asarray(v, float)
    spikes = spike_train(t, v)
    on = epochs[0].start if epochs else float(t[-1])
    rest = F.resting_potential(t, v, stim_start=on) if on - t[0] > 2.0 else float(np.median(v))
    depol = [e for e in epochs if e.amp > 0]
    dur = sum(e.stop - e.start for e in depol)
    n_in = sum(int(np.sum((spikes >= e.start) & (spikes < e.stop + 2.0))) for e in depol)
    amps = [e.amp for e in epochs]
    current = max(amps) if depol else (min(amps) if amps else 0.0)
    return {"spike_times": spikes, "spikes": int(spikes.size), "rest_mV": float(rest),
            "rate_hz": 1000.0 * n_in / dur if dur > 0 else 0.0, "current_pA": float(current)}


def sweep_table(recording):
    """Per sweep: ``(sweep, current_pA, spikes during its depolarising steps?, has a
    hyperpolarising step?)``."""
    info = []
    for k, sweep in enumerate(recording.sweeps):
        _, epochs = stimulus_epochs(recording.t, recording.i[k])
        f = sweep_features(recording.t, recording.v[k], epochs)
        info.append((sweep, f["current_pA"], f["rate_hz"] > 0, any(e.amp < 0 for e in epochs)))
    return info


def choose_sweeps(recording, n=4):
    """Up to ``n`` sweeps, by rule: the subthreshold sweep with the largest step (preferring
    one that also holds a hyperpolarising step), then spiking sweeps spread evenly over the
    f–I range, the lowest and the highest included."""
    info = sweep_table(recording)
    quiet = [x for x in info if not x[2]]
    spiking = sorted((x for x in info if x[2]), key=lambda x: x[1])
    pick = []
    if quiet:
        q = max(quiet, key=lambda x: (x[3], x[1]))
        pick.append(q[0])
        if not q[3] and any(x[3] for x in info):
            pick.append(min((x for x in info if x[3]), key=lambda x: x[1])[0])
    m = max(0, n - len(pick))
    if spiking and m:
        idx = sorted({int(round(j)) for j in np.linspace(0, len(spiking) - 1, min(m, len(spiking)))})
        pick += [spiking[j][0] for j in idx]
    return sorted(dict.fromkeys(pick[:n])) or [info[0][0]]


def fit_rows(rec, dt):
    """The rows :func:`hhjax.recordings.cell_fit.fit_recording` simulates (see its module
    docstring) and everything its loss needs about them, as NumPy arrays. ``rec`` must
    already be on the ``dt`` grid. Returns ``(data, rows, every, hyper_windows, layout)``."""
    t0, t_end = float(rec.t[0]), float(rec.t[0] + rec.duration)
    spans, hyper = [], []
    for k in range(rec.n_sweeps):
        hold, epochs = stimulus_epochs(rec.t, rec.i[k])
        pos = [e for e in epochs if e.amp > 0]
        main = max(pos, key=lambda e: e.amp) if pos else (min(epochs, key=lambda e: e.amp) if epochs else None)
        stop = min(t_end, main.stop + POST_MS) if main is not None else min(t_end, t0 + 500.0)
        spans.append([k, stop, main, hold, epochs])
        hyper += [(e.stop, k) for e in epochs if e.amp < 0]
    if hyper and not any(stop <= spans[k][1] for stop, k in hyper):
        stop, k = min(hyper)
        spans[k][1] = min(t_end, stop + POST_MS)
    n_len = max(int(round((s[1] - t0) / dt)) for s in spans) + 1
    tt = np.arange(n_len) * dt
    cols = {k: [] for k in ("v_obs", "valid", "stim", "sub", "n_lo", "n_hi", "rest", "hold", "main")}
    times, rows, hyper_win = [], [], []
    for k, stop, main, hold, epochs in spans:
        w = rec.select([rec.sweeps[k]]).time_window(t0, stop)
        m = min(w.n_samples, n_len)
        v = np.concatenate([w.v[0, :m], np.full(n_len - m, w.v[0, m - 1])])
        sp = spike_train(tt[:m], v[:m])
        sub = tt < tt[m - 1] + dt / 2
        for s in sp:
            sub &= ~((tt > s - MASK_MS[0]) & (tt < s + MASK_MS[1]))
        neg = [e for e in epochs if e.amp < 0 and e.stop <= stop]
        hyper_win.append((int((neg[0].start - t0 - 20.0) // dt), int((neg[0].stop - t0 + 100.0) // dt))
                         if neg and not sp.size else (-1, -1))
        for key, val in (("v_obs", v), ("valid", tt < tt[m - 1] + dt / 2), ("sub", sub), ("n_lo", sp.size),
                         ("n_hi", sp.size), ("rest", sweep_features(rec.t, rec.v[k], epochs)["rest_mV"]),
                         ("hold", hold), ("stim", np.concatenate([w.i[0, : m - 1], np.full(n_len - m, hold)])),
                         ("main", (main.start, main.stop, main.amp) if main is not None else (0, 0, 0))):
            cols[key].append(val)
        times.append(sp)
        rows.append((int(rec.sweeps[k]), t0, round(stop, 3), "sweep"))
    # Interpolated rows between consecutive spiking sweeps of the same protocol.
    spk = sorted((r for r in range(len(spans)) if cols["n_hi"][r] > 0 and cols["main"][r][2] > 0),
                 key=lambda r: cols["main"][r][2])
    for a, b in zip(spk[:-1], spk[1:]):
        (s0, s1, _), diff = cols["main"][a], np.abs(cols["stim"][a] - cols["stim"][b]) > 1e-6
        inside = (tt[:-1] >= s0 - dt) & (tt[:-1] < s1 + dt)
        if cols["main"][a][:2] != cols["main"][b][:2] or np.any(diff & ~inside) or cols["n_hi"][b] - cols["n_lo"][a] < 2:
            continue
        lo, hi = cols["n_lo"][a], cols["n_hi"][b]
        mid, tol = (lo + hi) / 2.0, max(1.0, 0.15 * (hi - lo))
        for key, val in (("v_obs", np.zeros(n_len)), ("valid", cols["valid"][a] & cols["valid"][b]),
                         ("sub", np.zeros(n_len, bool)), ("n_lo", max(lo, mid - tol)), ("n_hi", min(hi, mid + tol)),
                         ("rest", np.nan), ("hold", cols["hold"][a]), ("stim", (cols["stim"][a] + cols["stim"][b]) / 2),
                         ("main", cols["main"][a])):
            cols[key].append(val)
        times.append(np.zeros(0))
        rows.append((int(rec.sweeps[a]), t0, rows[a][2], f"interpolated {rows[a][0]}-{rows[b][0]}"))
    data = {k: np.array(v) for k, v in cols.items() if k != "main"}
    every = max(1, int(round(1.0 / dt)))
    data["sub"] = data["sub"][:, ::every]
    k_max = int(max(len(s) for s in times)) + 2
    data["t_obs"] = np.array([np.concatenate([s, np.full(k_max - len(s), -1.0)]) for s in times])
    data["n_pair"] = np.array([len(s) for s in times], float)
    lengths = data["valid"].sum(1) - 1
    return data, rows, every, np.array(hyper_win), _layout(data["stim"], lengths)


def _layout(stim, lengths, overhead=3000):
    """Static simulation plan: the steps all rows share (same current from the start) are
    simulated once; the remaining rows in at most two groups of similar length, each padded
    only to its own longest row. Returns ``(prefix_steps, (rows, steps), ...)``."""
    same = np.all(np.abs(stim - stim[:1]) < 1e-6, axis=0)
    p = int(np.argmin(same)) if not same.all() else int(stim.shape[1])
    p = min(p, int(lengths.min()) - 1) if p >= 1000 else 0
    rest = np.maximum(lengths - p, 1)
    order = [int(r) for r in np.argsort(rest, kind="stable")]
    best = (int(rest.max()) * len(order), (tuple(order),))
    for j in range(1, len(order)):
        a, b = order[:j], order[j:]
        cost = int(rest[a].max()) * len(a) + int(rest[b].max()) * len(b) + overhead
        if cost < best[0]:
            best = (cost, (tuple(a), tuple(b)))
    return (p,) + tuple((g, int(rest[list(g)].max())) for g in best[1])


def _tree_expand(params):
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x)[..., None], params)


def net_current(params, v, i_hold_pA):
    """Steady-state outward membrane current minus the injected one (µA/cm²) at ``v`` (mV)."""
    model = model_of(params)
    g, ge = membrane_terms(model, params, steady_state(params, v))
    return g * v - ge - jnp.asarray(i_hold_pA) * model.stimulus_scale(params)


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


def simulate_sweeps(params, rec, *, dt=0.1, method="exp_euler"):
    """Simulate every sweep of ``rec`` (its own current, from the model's rest at that
    sweep's holding current) on a ``dt`` grid. Returns ``(t, v)`` with ``v`` (n_sweeps, n)."""
    rr = rec.resample(dt)
    n = rr.n_samples
    holds = np.array([stimulus_epochs(rr.t, i)[0] for i in rr.i])
    y0 = model_rest(params, jnp.asarray(holds))  # eager: jit would compile for seconds
    v = simulate(params, jnp.asarray(rr.i[:, : n - 1]), duration=(n - 1) * dt, dt=dt,
                 method=method, y0=y0, spike_threshold=None).v
    return rr.t, np.asarray(v, float)


def _num(x):
    return None if x is None or not math.isfinite(float(x)) else float(x)


def evaluate(params, recording, sweeps=None, *, dt=0.1, method="exp_euler", return_traces=False):
    """Score ``params`` against the recorded sweeps (default: all).

    Returns a JSON-ready dict: ``"sweeps"`` (one object per sweep with ``sweep``,
    ``current_pA``, ``observed_spikes``, ``predicted_spikes``, ``observed_rest_mV``,
    ``predicted_rest_mV``, ``observed_rate_hz``, ``predicted_rate_hz``, ``gamma``
    (Jolivet's coincidence factor, ±4 ms)) and ``"summary"`` (``fraction_within_1_spike``,
    ``fi_rms_hz``, ``rest_error_mV`` (mean |error|), ``max_rest_error_mV``,
    ``mean_gamma``). ``return_traces=True`` adds ``(t_sim, v_sim)`` as a second value.
    """
    rec = recording if sweeps is None else recording.select(sweeps)
    t_sim, v_sim = simulate_sweeps(params, rec, dt=dt, method=method)
    rows = []
    for k, sweep in enumerate(rec.sweeps):
        _, epochs = stimulus_epochs(rec.t, rec.i[k])
        obs = sweep_features(rec.t, rec.v[k], epochs)
        sim = sweep_features(t_sim, v_sim[k], epochs)
        gamma = F.gamma_coincidence(obs["spike_times"], sim["spike_times"], rec.duration,
                                    window_ms=GAMMA_WINDOW_MS)
        rows.append({"sweep": int(sweep), "current_pA": obs["current_pA"],
                     "observed_spikes": obs["spikes"], "predicted_spikes": sim["spikes"],
                     "observed_rest_mV": obs["rest_mV"], "predicted_rest_mV": sim["rest_mV"],
                     "observed_rate_hz": obs["rate_hz"], "predicted_rate_hz": sim["rate_hz"],
                     "gamma": _num(gamma),
                     "observed_spike_times_ms": np.round(obs["spike_times"], 2).tolist(),
                     "predicted_spike_times_ms": np.round(sim["spike_times"], 2).tolist()})
    d_n = np.array([r["predicted_spikes"] - r["observed_spikes"] for r in rows])
    d_f = np.array([r["predicted_rate_hz"] - r["observed_rate_hz"] for r in rows])
    d_r = np.array([r["predicted_rest_mV"] - r["observed_rest_mV"] for r in rows])
    gam = [r["gamma"] for r in rows if r["gamma"] is not None]
    summary = {"n_sweeps": len(rows), "fraction_within_1_spike": float(np.mean(np.abs(d_n) <= 1)),
               "fi_rms_hz": float(np.sqrt(np.mean(d_f ** 2))),
               "rest_error_mV": float(np.mean(np.abs(d_r))), "max_rest_error_mV": float(np.max(np.abs(d_r))),
               "mean_gamma": _num(np.mean(gam)) if gam else None}
    out = {"source": rec.source, "sweeps": rows, "summary": summary,
           "settings": {"dt_ms": dt, "method": method, "spike_rule": SPIKE_RULE,
                        "gamma_window_ms": GAMMA_WINDOW_MS,
                        "rate": "spikes in depolarising steps (+2 ms) / their total duration",
                        "rest": "eFEL voltage_base before the first step; model starts at its own rest",
                        "ljp_corrected": False}}
    return (out, (t_sim, v_sim)) if return_traces else out


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
    ax.plot(cur, [r["observed_rate_hz"] for r in rows], "ko-", ms=3, label="observed")
    ax.plot(cur, [r["predicted_rate_hz"] for r in rows], "s--", color="tab:red", ms=3, label="model")
    ax.set_xlabel("step current (pA)")
    ax.set_ylabel("rate (Hz)")
    ax.set_title(f"f–I: RMS error {result['summary']['fi_rms_hz']:.2f} Hz", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return plot.save(fig, path)
