"""Choosing the model by the data: ``hhjax fit RECORDING --model auto``.

Every candidate of :data:`AUTO_CANDIDATES` is fitted (a smaller search each,
:data:`AUTO_SEARCH`, repeated at most once) to the same training sweeps
(:func:`choose_sweeps`), then scored on *validation sweeps* it was not fitted to
(:func:`validation_sweeps`: up to two spiking sweeps between the fitted currents, by rule)
— cross-validation across sweeps, never the training loss, which a model with more currents
can always lower. The score (lower is better) is
the mean over validation sweeps of

* ``|Δ count| / max(1, 10 % of the observed count)``,
* ``|Δ rate| / max(3 Hz, 10 % of the recording's highest rate)``,
* ``|Δ rest| / 2 mV`` where both rests are defined (1 where the cell has a rest and the
  model fires spontaneously instead),

plus 10 per qualitative failure (model silent where the cell fires >= 3 spikes, or >= 3
where it is silent) on the validation sweeps *and on the training sweeps*: a candidate in a
regime the training sweeps contradict cannot beat one that is not. A candidate with a
calcium current must beat the candidates without one by more than :data:`AUTO_MARGIN`
(:func:`pick_winner`), unless the cell shows what that current makes (rebound spikes, for the
T-type current): one or two validation sweeps cannot tell closer scores apart, and the extra
current is then a guess the data do not support. The winner is then fitted again to the
training sweeps with the full search of :func:`~hhjax.recordings.cell_fit.fit_recording`
(repeated searches included), and that fit is returned: the small searches only rank the
candidates (on synthetic draw 0 they left the FS block cell's model firing at rest on every
held-out sweep, where the full search of the same model meets every target). The final fit
is scored by the same rule; where it fails qualitatively, the runner-up (:func:`pick_winner`
over the others) is fitted in full as well and the lower-scoring of the two final fits is
returned (draw 0's early-block cell: the winner's full search stuck in a model firing where
the cell is silent, 33 % of held-out counts; the runner-up's, 100 %). No search starts that
would end more than :data:`~hhjax.recordings.cell_fit.FIT_WALL_SECONDS` after the fit
began, at the pace of the last one (``settings["model_selection"]["runner_up_skipped"]``
where that left the runner-up unfitted): a slow or shared machine gets fewer searches
rather than a fit over its time.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings

import numpy as np

from . import cell_fit
from .cell_fit import MODELS, ends_past, fit_deadline, fit_recording, last_search_seconds
from .bridge import balance_bridge
from .choice import choose_sweeps, sweep_table
from . import consensus
from .consensus import fit_consensus, whole_members
from .evaluation import evaluate, fi_tolerance
from .regime import count_tolerance, qualitative_failure

AUTO_CANDIDATES = ("pospischil", "pospischil_fs", "pospischil_ib", "pospischil_lts")
#: What ``--model`` takes for a recording: one fit target, or ``"auto"`` (:func:`fit_auto`).
RECORDING_MODELS = (*MODELS, "auto")


def check_recording_model(model: str) -> str:
    """``model`` if it is one of :data:`RECORDING_MODELS`, else a one-line ``ValueError``.

    >>> check_recording_model("purkinje")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: model: 'purkinje' is not a recording model; choose from pospischil, ...
    """
    if model not in RECORDING_MODELS:
        raise ValueError(f"model: {model!r} is not a recording model; choose from {', '.join(RECORDING_MODELS)}")
    return model


AUTO_SEARCH = {"generations": 8, "population": 96, "steps": 2}
FAILURE_COST = 10.0
#: How much lower (in the score's unit, one target tolerance per validation sweep) a
#: candidate with more fitted conductances must score to beat one with fewer: a difference
#: under one tolerance is one no held-out target resolves. Where the cell shows the extra
#: current's signature (rebound spikes for the T-type current) it competes on score alone.
AUTO_MARGIN = 1.0
#: The conductance that makes rebound spikes (the T-type Ca current of ``pospischil_lts``):
#: :func:`rebound_warning` names the models without it, :func:`pick_winner` lets the models
#: with it compete on score alone where the cell rebounds.
REBOUND_CURRENT = "g_cat"


def check_members(model: str, members) -> int | None:
    """The number of fits of one model whose consensus is kept
    (:mod:`hhjax.recordings.consensus`) for a fit of ``model`` asked for with ``members``:
    a whole number >= 1 as given, :data:`~hhjax.recordings.consensus.CONSENSUS_MEMBERS` for
    ``None`` (the default), and ``None`` with ``"auto"``, which makes single fits; else a
    one-line ``ValueError``.

    >>> check_members("pospischil", None), check_members("pospischil", 1), check_members("auto", None)
    (3, 1, None)
    >>> check_members("auto", 3)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: members: model 'auto' ranks its candidates by single fits; leave members out
    """
    if members is None:
        return None if model == "auto" else consensus.CONSENSUS_MEMBERS
    if model == "auto":
        raise ValueError("members: model 'auto' ranks its candidates by single fits; leave members out")
    return whole_members(members)


def fit_with_model(recording, model: str = "pospischil", *, search: dict | None = None, members: int | None = None,
                   **fit_kwargs):
    """Fit a recording: the one entry point for one fit target or ``model="auto"``.

    Args:
        recording: a :class:`hhjax.io.Recording` (V in mV, command current in pA).
        model: a key of :data:`hhjax.recordings.cell_fit.MODELS` (:func:`fit_consensus`:
            :data:`~hhjax.recordings.consensus.CONSENSUS_MEMBERS` fits of it from different
            seeds, the one nearest their consensus kept), or ``"auto"`` (:func:`fit_auto`:
            every candidate, chosen by cross-validation).
        search: search size (``generations``, ``population``, Levenberg–Marquardt ``steps``);
            what it leaves out is the chosen function's default (per candidate for auto:
            :data:`AUTO_SEARCH`).
        members: fits of one model to compare (default
            :data:`~hhjax.recordings.consensus.CONSENSUS_MEMBERS`; 1: a single fit); not
            with ``"auto"``.
        fit_kwargs: passed on alike (``sweeps``, ``key``, ``dt`` in ms, ``checkpoint``, ...).

    Returns:
        :class:`hhjax.recordings.RecordingFit` (``settings["model"]`` names the model).

    >>> from hhjax.io import example_recording, load_recording
    >>> rec = load_recording(example_recording("File_axon_5.abf"))
    >>> res = fit_with_model(rec, search={"generations": 1, "population": 4, "steps": 0}, key=0, progress=False)
    >>> res.settings["model"], len(res.sweeps)
    ('pospischil', 4)
    """
    check_recording_model(model)
    members = check_members(model, members)
    if model == "auto":
        return fit_auto(recording, search=search, **fit_kwargs)
    assert members is not None  # check_members gives a model its number of fits
    hint = rebound_warning(recording, model)
    if hint:
        warnings.warn(hint, stacklevel=2)
    return fit_consensus(recording, model, members=members,
                         **(search or {}), **fit_kwargs)


def rebound_warning(recording, model: str) -> str:
    """A sentence if the cell fires rebound spikes (after the end of a hyperpolarising step,
    on a sweep whose baseline is silent) and ``model`` has no T-type Ca current (that of
    ``pospischil_lts``, which makes rebound bursts), else ''. A single anode-break spike
    needs no such current (the squid axon fires one), so the sentence says when to try it.

    >>> from hhjax.io import Recording
    >>> t = np.arange(0.0, 1000.0, 0.1)
    >>> i = np.where((t >= 100) & (t < 400), -100.0, 0.0)[None]
    >>> v = np.full_like(i, -70.0); v[0, (t > 500) & (t < 501)] = 20.0   # a spike 100 ms after release
    >>> rebound_warning(Recording(t, v, i, (0,), 1e4, "cell.abf"), "pospischil")[:40]
    'cell.abf: the cell fires rebound spikes '
    >>> rebound_warning(Recording(t, v, i, (0,), 1e4, "cell.abf"), "pospischil_lts")
    ''
    """
    if REBOUND_CURRENT in MODELS.get(model, (None, ()))[1]:
        return ""
    hit = [int(x.sweep) for x in sweep_table(recording) if x.rebound]
    if not hit:
        return ""
    return (f"{recording.source or '<recording>'}: the cell fires rebound spikes after hyperpolarising steps "
            f"(sweep{'s' if len(hit) > 1 else ''} {', '.join(map(str, hit))}, with a silent baseline); {model} "
            "has no T-type Ca current, which makes the rebound bursts of low-threshold spiking cells: if these "
            "are bursts, try --model pospischil_lts or --model auto (a single anode-break spike, as a squid "
            "axon fires, needs no such current)")


def validation_sweeps(recording, train: list, n: int = 2) -> list:
    """Up to ``n`` spiking sweeps not in ``train``, nearest to the currents halfway between
    consecutive fitted spiking currents (else any spiking sweeps left; else any sweeps).

    >>> from hhjax.io import Recording
    >>> t = np.arange(0, 300, 0.1); amps = [0, 100, 200, 300, 400]
    >>> i = np.array([np.where((t >= 50) & (t < 250), a, 0.0) for a in amps])
    >>> v = np.full_like(i, -70.0); v[1:, 1000:1010] = 20.0     # every step >0 fires once
    >>> rec = Recording(t, v, i, tuple(range(5)), 1e4, "toy")
    >>> validation_sweeps(rec, [0, 1, 4])
    [2, 3]
    """
    info = sweep_table(recording)
    rest = [x for x in info if x.sweep not in set(train)]
    spiking = [x for x in rest if x.spiking]
    fitted = sorted(x.current_pA for x in info if x.sweep in set(train) and x.spiking)
    targets = [(a + b) / 2 for a, b in zip(fitted[:-1], fitted[1:])] or [np.median([x.current_pA for x in info])]
    pool = spiking or rest
    out: list = []
    for goal in sorted(targets, key=lambda g: -min((abs(x.current_pA - g) for x in pool), default=0)):
        left = [x for x in pool if x.sweep not in out]
        if left and len(out) < n:
            out.append(min(left, key=lambda x: abs(x.current_pA - goal)).sweep)
    for x in pool:
        if len(out) >= n:
            break
        if x.sweep not in out:
            out.append(x.sweep)
    return sorted(out)


def cv_score(rows: list, top_rate_hz: float) -> float:
    """Validation score of sweep rows from :func:`evaluate` (see the module docstring).

    >>> r = dict(observed_spikes=10, predicted_spikes=12, observed_rate_hz=20.0, predicted_rate_hz=24.0,
    ...          observed_rest_mV=-70.0, predicted_rest_mV=-69.0)
    >>> cv_score([r], 40.0)   # 2/1 + 4/4 + 1/2
    3.5
    """
    if not rows:
        return float("inf")
    total = 0.0
    for r in rows:
        n_o, n_p = r["observed_spikes"], r["predicted_spikes"]
        s = abs(n_p - n_o) / float(count_tolerance(n_o))
        if r["observed_rate_hz"] is not None and r["predicted_rate_hz"] is not None:
            s += abs(r["predicted_rate_hz"] - r["observed_rate_hz"]) / fi_tolerance(top_rate_hz)
        if r["observed_rest_mV"] is not None:
            s += 1.0 if r["predicted_rest_mV"] is None else abs(r["predicted_rest_mV"] - r["observed_rest_mV"]) / 2.0
        s += FAILURE_COST * bool(qualitative_failure(n_o, n_p))
        total += s
    return total / len(rows)


def pick_winner(scores: dict, *, rebound: bool = False, margin: float = AUTO_MARGIN) -> tuple:
    """The candidate to keep, and why, from cross-validated ``scores`` (model name to score,
    lower is better, in insertion order): of the candidates within ``margin`` of the lowest
    score, the one with the fewest extra conductances (:data:`MODELS`), then the lowest score,
    then the earliest. Where ``rebound`` (the cell fires rebound spikes), a candidate with the
    T-type current (``g_cat``) counts as having no extra conductance: the data show it.

    >>> pick_winner({"pospischil": 1.3, "pospischil_fs": 1.5, "pospischil_ib": 0.6})[0]
    'pospischil'
    >>> pick_winner({"pospischil": 1.7, "pospischil_ib": 0.6})[0]
    'pospischil_ib'
    >>> pick_winner({"pospischil": 1.3, "pospischil_lts": 0.8}, rebound=True)[0]
    'pospischil_lts'
    """
    names = list(scores)

    def extra(n):
        added = MODELS[n][1]
        return 0 if rebound and REBOUND_CURRENT in added else len(added)

    best = min(names, key=lambda n: (scores[n], names.index(n)))
    near = [n for n in names if scores[n] <= scores[best] + margin]
    winner = min(near, key=lambda n: (extra(n), scores[n], names.index(n)))
    others = ", ".join(f"{n} {scores[n]:.3g}" for n in names if n != winner)
    if winner == best:
        return winner, f"lowest cross-validated score, {scores[winner]:.3g} (others: {others})"
    return winner, (f"cross-validated score {scores[winner]:.3g}, within {margin:g} of the lowest "
                    f"({best} {scores[best]:.3g}) with fewer fitted conductances (others: {others})")


def _failures(rows):
    return int(np.sum(qualitative_failure([r["observed_spikes"] for r in rows], [r["predicted_spikes"] for r in rows])))


def fit_auto(recording, *, sweeps=None, candidates=AUTO_CANDIDATES, key=None, progress=None,
             search=None, checkpoint=None, time_limit: bool = True, **fit_kwargs):
    """Fit every candidate and keep the one with the best cross-validated score.

    Args:
        recording: a :class:`hhjax.io.Recording`. sweeps: training sweeps (default
            :func:`choose_sweeps`). candidates: keys of :data:`hhjax.recordings.cell_fit.MODELS`.
        search: search size (``generations``, ``population``, ``steps``): per candidate,
            what it leaves out is :data:`AUTO_SEARCH`'s; for the winner's final fit,
            :func:`fit_recording`'s defaults. ``fit_kwargs`` go to :func:`fit_recording` for
            every fit (``retries`` 1 for the candidates unless given: a second search from the
            cell's spike onsets where they lie off, else where the first missed a fitted sweep).
        checkpoint: a directory; each candidate checkpoints in its own subfolder (named
            by the candidate), the final fit in ``final`` (a runner-up's in
            ``final_<name>``), so a rerun resumes the unfinished fit and replays the
            finished ones from their saved state.
        time_limit: as :func:`~hhjax.recordings.consensus.fit_consensus`'s (the module
            docstring); False: none.

    Returns:
        The winner's final :class:`~hhjax.recordings.cell_fit.RecordingFit`, its ``settings``
        extended by ``"model_selection"``: ``winner``, ``why``, ``validation_sweeps``,
        ``training_sweeps``, per candidate (its ranking fit) ``score``, ``validation_rows``
        (sweep, counts, rates, rests), ``training_failures``, ``loss``, ``fit_time_s``, and
        ``final_fit_s`` (s, every final fit), ``final_scores`` (each final fit's score, the
        runner-up's too where the winner's failed qualitatively and it was fitted);
        ``wall_time`` (s) covers every fit. Without a validation sweep
        (every sweep fitted) no candidate is fitted for a ranking: the winner is the first
        candidate, the default model.
    """
    t0 = time.perf_counter()
    deadline = fit_deadline(t0, time_limit)  # no search starts that would end past it (a slow machine)
    recording = balance_bridge(recording, fit_kwargs.pop("bridge", "auto"))  # once (marked), for every candidate
    train = list(sweeps) if sweeps is not None else choose_sweeps(recording)
    val = validation_sweeps(recording, train)
    info = sweep_table(recording)

    def fit(name, folder, **options):
        """Fit candidate ``name`` to the training sweeps, checkpointing in ``folder``."""
        return fit_recording(recording, model=name, sweeps=train, key=key, progress=progress, deadline=deadline,
                             checkpoint=None if checkpoint is None else os.path.join(checkpoint, folder), **options)

    table = {}
    # Ranking fits: small, and repeated at most once, so that a cell whose spikes start far
    # from every candidate's (a plateau-firing cell) is ranked from its onsets too.
    kw = {"retries": 1, **AUTO_SEARCH, **(search or {}), **fit_kwargs}
    # Without a validation sweep nothing can rank the candidates (the default is kept
    # below), so none is fitted for a ranking.
    for name in candidates if val else ():
        res = fit(name, name, **kw)
        table[name] = {**_judged(res, recording, val), "loss": float(res.loss), "fit_time_s": float(res.wall_time)}
    top = max([r["observed_rate_hz"] or 0.0 for t in table.values() for r in t["rows"]] + [0.0])
    for name, t in table.items():
        t["score"] = _scored(t, top)
    finite = {n: t["score"] for n, t in table.items() if np.isfinite(t["score"]) and np.isfinite(t["loss"])}
    if finite:
        winner, why = pick_winner(finite, rebound=any(x.rebound for x in info))
        why = f"held-out sweeps {val}: {why}"
    else:  # the default model, not chosen by the data
        winner = candidates[0]
        why = ("no sweep left for validation" if not val else "no candidate's fit was finite") + \
            ": kept the default model, not chosen by the data"
    selection = {"winner": winner, "why": why, "validation_sweeps": val, "training_sweeps": train,
                 "candidate_search": {k: v for k, v in kw.items() if k in ("generations", "population", "steps",
                                                                        "n_starts", "retries")},
                 "score": "mean over validation sweeps of count, rate and rest errors in units of their "
                          "targets, +10 per qualitative failure (validation and training sweeps)",
                 "candidates": {n: {"score": _finite(t["score"]), "training_failures": t["training_failures"],
                                    "loss": _finite(t["loss"]), "fit_time_s": t["fit_time_s"],
                                    "validation_rows": [{k: r[k] for k in ("sweep", "observed_spikes", "predicted_spikes",
                                                                           "observed_rate_hz", "predicted_rate_hz",
                                                                           "observed_rest_mV", "predicted_rest_mV")}
                                                        for r in t["rows"]]}
                                for n, t in table.items()},
                 "wall_time_s": time.perf_counter() - t0}
    t_final = time.perf_counter()
    best = fit(winner, "final", **(search or {}), **fit_kwargs)
    if table:
        # The final fit is a new, larger search and can land elsewhere than the ranking fit
        # that won: it is scored the same way, on the same sweeps. Where it fails
        # qualitatively, the runner-up is fitted in full too and the better final fit kept,
        # so a search stuck in a regime the sweeps contradict is not the answer while a
        # candidate remains that might not be.
        final = {winner: _scored(_judged(best, recording, val), top)}
        rest = {n: v for n, v in finite.items() if n != winner}
        wanted = final[winner] >= FAILURE_COST and bool(rest)  # the runner-up, fitted in full
        if wanted and ends_past(deadline, last_search_seconds(best)):
            selection["runner_up_skipped"] = (f"the runner-up's fit would have ended more than "
                                              f"{cell_fit.FIT_WALL_SECONDS:g} s after the fit began")
        elif wanted:
            runner, _ = pick_winner(rest, rebound=any(x.rebound for x in info))
            other = fit(runner, "final_" + runner, **(search or {}), **fit_kwargs)
            final[runner] = _scored(_judged(other, recording, val), top)
            failed = (f"{winner} ranked first ({why}), but its final fit failed qualitatively "
                      f"(score {final[winner]:.3g})")
            if final[runner] < final[winner]:
                why = f"{failed}, so the runner-up {runner} was fitted in full and scored {final[runner]:.3g}"
                winner, best = runner, other
            else:
                why = f"{failed} and was kept: the runner-up {runner}, fitted in full, scored {final[runner]:.3g}"
            selection.update(winner=winner, why=why)
        selection["final_scores"] = final
    selection["final_fit_s"] = time.perf_counter() - t_final
    n_sweeps = len(info)
    settings = {**best.settings, "model": winner, "model_selection": selection, "n_sweeps_in_recording": n_sweeps}
    return dataclasses.replace(best, settings=settings, wall_time=time.perf_counter() - t0)


def _judged(res, recording, val) -> dict:
    """A fit's ``rows`` on the validation sweeps and its ``training_failures``: what
    :func:`_scored` scores, for ranking and final fits alike."""
    rows = evaluate(res.params, recording, sweeps=val, dt=res.settings["dt_ms"])["sweeps"]
    return {"rows": rows, "training_failures": int(_failures(res.features["sweeps"]))}


def _scored(judged: dict, top_rate_hz: float) -> float:
    """The score of :func:`_judged`: :func:`cv_score` on the validation rows, plus
    :data:`FAILURE_COST` per qualitative failure on the training sweeps."""
    return float(cv_score(judged["rows"], top_rate_hz) + FAILURE_COST * judged["training_failures"])


def _finite(x):
    return float(x) if np.isfinite(x) else None
