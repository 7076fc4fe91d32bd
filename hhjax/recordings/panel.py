"""One figure for a panel of fitted cells: how the models predict the sweeps they were not
fitted to, every cell at once (``scripts/bench_recordings.py --figures``), beside the figure
per cell that :func:`hhjax.recordings.evaluation.plot_evaluation` draws."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import numpy as np

from .. import plot
from .evaluation import summarise
from .regime import count_tolerance


def held_out_summary(sweeps: Sequence[dict]) -> dict | None:
    """:func:`~hhjax.recordings.evaluation.summarise` over the ``held_out`` sweeps of one
    entry of a panel benchmark's ``results.json`` (which holds no Γ), None where nothing is
    held out: the one reading of the held-out targets that the benchmark's table and
    :func:`plot_panel` share."""
    held = [{**s, "gamma": None} for s in sweeps if s["held_out"]]
    return summarise(held) if held else None


def held_out_count_scores(cells: Sequence[dict]) -> dict:
    """Per recording, the fraction of its held-out sweeps whose predicted spike count is within
    the count target, ±max(1, 10 %) of the observed count (None where nothing is held out).
    ``cells``: the entries of a panel benchmark's ``results.json`` (``recording``, ``sweeps``
    with ``held_out``, ``observed_spikes``, ``predicted_spikes``, ...); with ``--seeds`` the
    key is ``recording (seed N)``.

    >>> sweep = lambda o, p, h=True: dict(held_out=h, observed_spikes=o, predicted_spikes=p, observed_rate_hz=None,
    ...                                   predicted_rate_hz=None, observed_rest_mV=None, predicted_rest_mV=None)
    >>> held_out_count_scores([{"recording": "a.abf", "sweeps": [sweep(10, 11), sweep(10, 12), sweep(3, 9, False)]}])
    {'a.abf': 0.5}
    """
    out = {}
    for c in cells:
        summary = held_out_summary(c.get("sweeps") or [])
        name = c["recording"] + ("" if c.get("seed") is None else f" (seed {c['seed']})")
        out[name] = None if summary is None else summary["fraction_count_ok"]
    return out


def plot_panel(cells: Sequence[dict], path: Union[str, Path]) -> Path:
    """A PNG of a panel benchmark's held-out sweeps: predicted against observed spike counts
    (the count target's band shaded), predicted against observed rates (Hz), and each cell's
    fraction of held-out counts within the target (the 80 % line drawn). Cells that failed
    (an ``error``) or hold nothing out are left out of the points and named in the title.

    Args:
        cells: the entries of ``results.json`` (see :func:`held_out_count_scores`).
        path: the PNG to write (atomically).

    Returns:
        ``path``.

    >>> import tempfile, os
    >>> s = dict(held_out=True, observed_spikes=8, predicted_spikes=9, observed_rate_hz=8.0, predicted_rate_hz=9.0,
    ...          observed_rest_mV=-70.0, predicted_rest_mV=-69.0)
    >>> out = plot_panel([{"recording": "a.abf", "sweeps": [s]}], os.path.join(tempfile.mkdtemp(), "panel.png"))
    >>> out.stat().st_size > 1000
    True
    """
    plt = plot._plt()
    scores = held_out_count_scores(cells)
    shown = [(name, c) for name, c in zip(scores, cells) if scores[name] is not None]
    fig, (a_n, a_f, a_s) = plt.subplots(1, 3, figsize=(14, 4.6), gridspec_kw={"width_ratios": [1, 1, 1.1]})
    top = max([1] + [s["observed_spikes"] for _, c in shown for s in c["sweeps"] if s["held_out"]])
    grid = np.linspace(0.0, top * 1.1, 200)
    tol = np.asarray(count_tolerance(grid))
    a_n.fill_between(grid, grid - tol, grid + tol, color="0.88", label="count target")
    a_n.plot(grid, grid, color="0.5", lw=0.8)
    colors = plt.get_cmap("tab10" if len(shown) <= 10 else "tab20")
    for k, (name, c) in enumerate(shown):
        held = [s for s in c["sweeps"] if s["held_out"]]
        color = colors(k % colors.N)
        a_n.plot([s["observed_spikes"] for s in held], [s["predicted_spikes"] for s in held], "o", ms=4,
                 color=color, alpha=0.85)
        rates = [(s["observed_rate_hz"], s["predicted_rate_hz"]) for s in held
                 if s["observed_rate_hz"] is not None and s["predicted_rate_hz"] is not None]
        if rates:
            a_f.plot(*zip(*rates), "o", ms=4, color=color, alpha=0.85)
    for ax, what in ((a_n, "spike count"), (a_f, "rate (Hz)")):
        ax.set_xlabel(f"observed {what}")
        ax.set_ylabel(f"model {what}")
    lim = a_f.get_xlim()[1] if a_f.lines else 1.0
    a_f.plot([0, lim], [0, lim], color="0.5", lw=0.8)
    a_n.set_title("held-out sweeps: spike counts", fontsize=10)
    a_f.set_title("held-out sweeps: f–I points", fontsize=10)
    a_n.legend(fontsize=8, loc="upper left")  # the cells' colours are named by the bars
    y = np.arange(len(shown))
    a_s.barh(y, [100.0 * scores[name] for name, _ in shown], color=[colors(k % colors.N) for k in y])
    for k, (name, _) in enumerate(shown):
        a_s.text(min(100.0 * scores[name], 88.0) + 1.0, k, f"{100.0 * scores[name]:.0f} %", va="center", fontsize=7)
    a_s.axvline(80.0, color="k", lw=0.8, ls="--")
    a_s.set_yticks(y, [name for name, _ in shown], fontsize=7)
    a_s.invert_yaxis()
    a_s.set_xlim(0, 100)
    a_s.set_xlabel("held-out counts within target (%)")
    left = [name for name in scores if scores[name] is None]
    fig.suptitle(f"{len(shown)} cell{'s' if len(shown) != 1 else ''} with held-out sweeps"
                 + (f"; not shown: {', '.join(left)}" if left else ""), fontsize=10)
    fig.tight_layout()
    return Path(plot.save(fig, path))
