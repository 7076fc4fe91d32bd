"""A recording fit that does not hang on one search seed: :func:`fit_consensus`.

Four sweeps leave a model's f–I curve between them loosely determined, and where a search
ends up there depends on its seed: over seeds 0–2, a synthetic cell's held-out count score
moves by up to 75 points (draws 0–6, docs/real_cells.md), and a lower training loss does not
say which seed generalises. So
:func:`fit_consensus` fits the same sweeps :data:`CONSENSUS_MEMBERS` times, from
different seeds, simulates every member on the command of each sweep it was *not* fitted
to, and returns the member whose spike counts there lie nearest the members' median, sweep
by sweep (in units of the count target's tolerance): the typical fit rather than an
outlier. Only the members' own predictions are compared; the recorded voltage of a sweep
left out of the fit is never read, so those sweeps stay held out.
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np

from .. import _validate as check
from ..fitting._common import seed_of
from .bridge import balance_bridge
from . import cell_fit
from .cell_fit import RETRY_ROW_SECONDS, ends_past, fit_deadline, fit_recording, last_search_seconds
from .choice import choose_sweeps
from .evaluation import evaluate
from .regime import count_tolerance

#: Fits per recording fit (1: a single search seed, as before).
CONSENSUS_MEMBERS = 3
#: Where one search simulates more than this many seconds of rows, one member is fitted:
#: every panel and synthetic cell (at most 18 s) has three, which keeps a fit within two
#: minutes on the 2-core CI machine (17o05028, the slowest: 82 s, and 97 s in the panel's
#: rerun of 2026-12-07, each cell compiling its own programs).
CONSENSUS_ROW_SECONDS = 20.0
#: All searches of all members together simulate at most this many seconds of rows: a
#: member is fitted only where its first search fits what is left, and searches again only
#: within what is left once every later member's first search is set aside, so that a
#: member's repeated searches never cost a later member its place. Member 0 searches as a
#: single fit does (:data:`~.cell_fit.RETRY_ROW_SECONDS`, up to three searches). On the
#: 2-core CI machine a second of rows took 0.65-0.81 s, compilation included (17o05028:
#: 126 s of rows in 82 and 97 s, 144 s in 117 s on 2026-12-07), so 120 s keeps a consensus
#: to about 100 s at the slowest pace measured; at 150 s, 17o05028 took 117 s of the 2
#: minutes a fit may take.
CONSENSUS_BUDGET_ROW_SECONDS = 120.0


def consensus_member(predicted) -> tuple[int, list]:
    """The member (row of ``predicted``: members x sweeps, spike counts) nearest the
    per-sweep median, as a sum of squares in count tolerances (max(1, 10 % of the median));
    the first of equals. Returns its index and every member's distance.

    >>> consensus_member([[2, 5], [9, 9], [3, 5]])    # medians 3 and 5 spikes, tolerance 1
    (2, [1.0, 52.0, 0.0])
    """
    p = np.asarray(predicted, float)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"consensus_member: expected members x sweeps counts, got shape {p.shape}")
    med = np.median(p, 0)
    d = np.sum(((p - med) / np.asarray(count_tolerance(med))) ** 2, 1) if p.shape[1] else np.zeros(p.shape[0])
    return int(np.argmin(d)), [round(float(x), 4) for x in d]


def whole_members(members) -> int:
    """``members`` as an int if it is a whole number >= 1, else a one-line ``ValueError``.

    >>> whole_members(0)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: members: expected a whole number >= 1, got 0
    """
    if not isinstance(members, (int, np.integer)) or isinstance(members, bool) or members < 1:
        raise ValueError(f"members: expected a whole number >= 1, got {members!r}")
    return int(members)


def fit_consensus(recording, model: str = "pospischil", *, members: int = CONSENSUS_MEMBERS, sweeps=None,
                  key=None, checkpoint=None, bridge="auto", time_limit: bool = True, **fit_kwargs):
    """Fit ``recording`` ``members`` times (search seeds ``M·s`` to ``M·s + M - 1`` for seed
    ``s`` of ``key``, ``M = members``) and return the fit nearest the members' consensus
    (see the module docstring).

    Args:
        recording: a :class:`hhjax.io.Recording` (V in mV, command current in pA).
        model: a key of :data:`hhjax.recordings.cell_fit.MODELS`.
        members: fits to compare (1: one fit, seed ``s``). One member is fitted where every
            sweep is fitted (nothing to compare on) or one search simulates more than
            :data:`CONSENSUS_ROW_SECONDS` of rows; fewer where the members' searches together
            would simulate more than :data:`CONSENSUS_BUDGET_ROW_SECONDS`.
        sweeps: the training sweeps, the same for every member (default :func:`choose_sweeps`).
        checkpoint: a directory; member 0 checkpoints there, member ``j`` in ``DIR/member<j>``.
        bridge, fit_kwargs: as :func:`~hhjax.recordings.cell_fit.fit_recording` (``row_budget``
            there bounds each member; all together stay within
            :data:`CONSENSUS_BUDGET_ROW_SECONDS`).
        time_limit: no member or search starts that would end, at the pace of the last
            search, more than :data:`~hhjax.recordings.cell_fit.FIT_WALL_SECONDS` after the
            fit began (False: no such limit, as ``hhjax fit-many`` fits).

    Returns:
        The chosen member's :class:`~hhjax.recordings.cell_fit.RecordingFit`; ``wall_time``
        (s) covers every member, and ``settings["consensus"]`` has ``members`` (each one's
        ``seed``, ``loss``, ``distance``, ``fit_time_s``), ``chosen`` (its index),
        ``compared_sweeps`` and ``why``.

    >>> from hhjax.io import example_recording, load_recording
    >>> rec = load_recording(example_recording("File_axon_5.abf"))
    >>> res = fit_consensus(rec, generations=1, population=4, steps=0, retries=0, progress=False)
    >>> len(res.settings["consensus"]["members"]), res.settings["consensus"]["chosen"] in (0, 1, 2)
    (3, True)
    """
    members = whole_members(members)
    t0 = time.perf_counter()
    recording = balance_bridge(recording, bridge)  # once (marked), for every member and the comparison
    train = [int(k) for k in (sweeps if sweeps is not None else choose_sweeps(recording))]
    seed = seed_of(key) * members

    per_fit = fit_kwargs.pop("row_budget", None)  # a fit's own budget, as fit_recording's
    per_fit = RETRY_ROW_SECONDS if per_fit is None else check.positive_number(per_fit, "row_budget", "s")

    def fit(j, budget):
        folder = None if checkpoint is None else (checkpoint if j == 0 else os.path.join(checkpoint, f"member{j}"))
        return fit_recording(recording, model=model, sweeps=train, key=seed + j, checkpoint=folder,
                             row_budget=min(budget, per_fit), deadline=deadline, **fit_kwargs)

    deadline = fit_deadline(t0, time_limit)
    fits = {seed: fit(0, CONSENSUS_BUDGET_ROW_SECONDS)}  # search seed -> its fit, in order
    row_seconds = fits[seed].settings["row_seconds"]  # one search's, the same for every member
    left = CONSENSUS_BUDGET_ROW_SECONDS - row_seconds * len(fits[seed].settings["attempts"])
    compared = [int(k) for k in recording.sweeps if int(k) not in set(train)]
    failed: list = []
    over = late = 0  # members left out by the row budget, by the deadline
    if members == 1:
        why = "one fit, as asked"
    elif not compared:
        why = "every sweep is fitted: one fit, nothing left to compare fits on"
    elif row_seconds > CONSENSUS_ROW_SECONDS:
        why = (f"one search simulates {row_seconds:.0f} s of rows, over "
               f"{CONSENSUS_ROW_SECONDS:g} s: one fit, to keep within the time a fit may take")
    else:
        for j in range(1, members):
            if row_seconds > left:  # its first search would not fit the budget, nor would later members'
                over = members - j
                break
            if ends_past(deadline, last_search_seconds(fits[max(fits)])):
                late = members - j
                break
            later = row_seconds * (members - 1 - j)  # the later members' first searches
            try:
                fits[seed + j] = fit(j, max(row_seconds, left - later))
                left -= row_seconds * len(fits[seed + j].settings["attempts"])
            except check.FitFailed:  # a search of another seed with no finite loss: the others decide
                failed.append(seed + j)
                left -= min(left, per_fit)  # what it may have simulated
        why = f"only seed {seed} reached a finite loss" if failed else f"one fit (seed {seed})"
    seeds, results = list(fits), list(fits.values())
    if len(results) > 1:
        # Every sweep simulated, as the evaluation of the returned fit does: a subset runs as
        # another batch, whose float32 rounding moved a count by one on a synthetic cell and
        # so the pick between two fits within a third of a tolerance of each other.
        predicted = [[r["predicted_spikes"] for r in evaluate(f.params, recording, dt=f.settings["dt_ms"])["sweeps"]
                      if int(r["sweep"]) in set(compared)] for f in results]
        chosen, distance = consensus_member(predicted)
        why = (f"the fit of seed {seeds[chosen]} of {len(results)} predicts the {len(compared)} "
               f"sweep{'s' if len(compared) > 1 else ''} it was not fitted to nearest their median")
    else:
        chosen, distance, compared = 0, [0.0], []
    if failed:
        why += f" (seed{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))}: no finite loss)"
    if over:
        why += (f" ({members - over} of {members} fits: all searches together may simulate "
                f"{CONSENSUS_BUDGET_ROW_SECONDS:g} s of rows, "
                f"{CONSENSUS_BUDGET_ROW_SECONDS - left:.0f} s were simulated)")
    if late:
        why += (f" ({members - late} of {members} fits: another would have ended more than "
                f"{cell_fit.FIT_WALL_SECONDS:g} s after the fit began, at this machine's pace)")
    best = results[chosen]
    consensus = {"members": [{"seed": s, "loss": float(f.loss), "distance": d, "fit_time_s": float(f.wall_time)}
                             for s, f, d in zip(seeds, results, distance)],
                 "chosen": chosen, "compared_sweeps": compared, "why": why}
    return dataclasses.replace(best, settings={**best.settings, "consensus": consensus},
                               wall_time=time.perf_counter() - t0)
