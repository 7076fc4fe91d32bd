"""A fit of one model is the consensus of several fits from different search seeds
(:mod:`hhjax.recordings.consensus`): the member whose predicted counts on the sweeps it
was not fitted to lie nearest the members' median. The rule is checked with stand-in fits
(every fit it asks for is seen), and end to end on a recording with a tiny search."""

from __future__ import annotations

import numpy as np
import pytest

from hhjax.io import Recording, example_recording, load_recording
from hhjax.recordings import consensus, fit_recording, fit_with_model
from hhjax.recordings.cell_fit import RecordingFit

AMPS = (-60.0, 60.0, 100.0, 150.0, 200.0)


def _recording(n=len(AMPS)):
    t = np.arange(0.0, 300.0, 0.1)
    i = np.array([np.where((t >= 50) & (t < 250), a, 0.0) for a in AMPS[:n]])
    v = np.full_like(i, -70.0)
    v[1:, 1000:1010] = 20.0
    return Recording(t, v, i, tuple(range(n)), 1e4, "toy")


# What each seed's fit predicts on sweeps 2 and 3 (it is fitted to 0, 1 and 4): seed 1 is
# the outlier; the medians are 8 and 14 spikes, seed 0 one spike off on sweep 2, seed 2 on 3.
PREDICTED = {0: {2: 7, 3: 14}, 1: {2: 30, 3: 40}, 2: {2: 8, 3: 13},
             3: {2: 5, 3: 5}, 4: {2: 9, 3: 11}, 5: {2: 50, 3: 50}}


budgets: list = []  # the row budget each stand-in fit was given, in order
deadlines: list = []  # and its deadline


@pytest.fixture
def stand_ins(monkeypatch):
    calls = []
    budgets.clear()
    deadlines.clear()

    def fake_fit(recording, *, model, sweeps, key, checkpoint, row_budget, deadline, **kw):
        calls.append((key, checkpoint))
        budgets.append(row_budget)
        deadlines.append(deadline)
        searches = kw.pop("searches", {}).get(key, 1)
        attempt = {"timing_s": {"search": kw.pop("search_s", 0.01), "evaluate": 0.0}}
        return RecordingFit(("params of seed", key), float(key), tuple(sweeps), [], {}, {}, np.zeros(1), np.zeros(1),
                            0.1, {"dt_ms": 0.1, "model": model, "row_seconds": kw.pop("row_seconds", 2.0),
                                  "attempts": [attempt] * searches})

    def fake_evaluate(params, recording, dt):  # every sweep, as the consensus asks for
        return {"sweeps": [{"sweep": s, "predicted_spikes": PREDICTED[params[1]].get(s, 0)} for s in recording.sweeps]}

    monkeypatch.setattr(consensus, "fit_recording", fake_fit)
    monkeypatch.setattr(consensus, "evaluate", fake_evaluate)
    return calls


def test_the_member_nearest_the_median_is_kept(stand_ins):
    res = consensus.fit_consensus(_recording(), sweeps=[0, 1, 4], key=0, checkpoint="ck")
    con = res.settings["consensus"]
    assert stand_ins == [(0, "ck"), (1, "ck/member1"), (2, "ck/member2")]
    assert con["chosen"] == 2 and res.params == ("params of seed", 2) and con["compared_sweeps"] == [2, 3]
    # In count tolerances, max(1, 10 % of the median): 1 spike on sweep 2, 1.4 on sweep 3.
    assert [m["distance"] for m in con["members"]] == pytest.approx([1.0, 22 ** 2 + (26 / 1.4) ** 2, (1 / 1.4) ** 2],
                                                                     abs=1e-3)


def test_seeds_of_another_key_are_other_seeds(stand_ins):
    res = consensus.fit_consensus(_recording(), sweeps=[0, 1, 4], key=1)
    assert [k for k, _ in stand_ins] == [3, 4, 5]
    assert res.params == ("params of seed", 4)   # medians 9 and 11: seed 4's own counts


@pytest.mark.parametrize("n_sweeps, members, fits", [(3, 3, 1),   # every sweep fitted: nothing to compare on
                                                     (5, 1, 1),   # one member asked for
                                                     (5, 2, 2)])
def test_members_fitted(stand_ins, n_sweeps, members, fits):
    res = consensus.fit_consensus(_recording(n_sweeps), sweeps=[0, 1, 2][: n_sweeps] if n_sweeps == 3 else [0, 1, 4],
                                  key=0, members=members)
    assert len(stand_ins) == fits == len(res.settings["consensus"]["members"])


def test_long_rows_fit_one_member(stand_ins):
    res = consensus.fit_consensus(_recording(), sweeps=[0, 1, 4], key=0,
                                  row_seconds=consensus.CONSENSUS_ROW_SECONDS + 1)
    assert len(stand_ins) == 1 and "one fit" in res.settings["consensus"]["why"]


@pytest.mark.parametrize("row_seconds, members, searches, budgets_given, why", [
    # 17o05028's 18 s a search: 66 s left after member 0's three, 18 of them set aside for
    # member 2's first search, so member 1 may search twice; member 2 gets the 30 s left.
    (18.0, 3, {0: 3, 1: 2}, [60, 48, 30], ""),
    (20.0, 3, {0: 3, 1: 2}, [60, 40, 20], ""),      # the longest searches with three members
    (10.0, 3, {}, [60, 60, 60], ""),                # one search each: nothing binds
    # 60 s left after member 0: one search each for members 1-3, none for member 4.
    (20.0, 5, {0: 3}, [60, 20, 20, 20], "(4 of 5 fits: all searches together may simulate 120 s of rows, "
                                        "120 s were simulated)")])
def test_the_members_share_one_row_budget(stand_ins, row_seconds, members, searches, budgets_given, why):
    """120 s of rows for the whole consensus, at most 60 for one member, and a later
    member's first search is never spent on an earlier member's repeated ones."""
    assert consensus.CONSENSUS_BUDGET_ROW_SECONDS == 120 and consensus.RETRY_ROW_SECONDS == 60
    res = consensus.fit_consensus(_recording(), sweeps=[0, 1, 4], key=0, members=members, row_seconds=row_seconds,
                                  searches=searches)
    assert budgets == budgets_given and len(res.settings["consensus"]["members"]) == len(budgets_given)
    text = res.settings["consensus"]["why"]
    assert why in text if why else "fits: all searches" not in text


def test_a_row_budget_given_bounds_each_member(stand_ins):
    consensus.fit_consensus(_recording(), sweeps=[0, 1, 4], key=0, row_seconds=10.0, row_budget=25.0)
    assert budgets == [25, 25, 25]
    with pytest.raises(ValueError, match="^row_budget: "):
        consensus.fit_consensus(_recording(), sweeps=[0, 1, 4], key=0, row_budget=0)


def test_no_member_starts_that_would_end_past_the_deadline(stand_ins, monkeypatch):
    """On a slow or shared machine: where another member's search, at the pace of the last
    one, would end after FIT_WALL_SECONDS, no further member is fitted, and each fit
    was given the same deadline."""
    import time

    from hhjax.recordings import cell_fit

    monkeypatch.setattr(cell_fit, "FIT_WALL_SECONDS", 50.0)
    before = time.perf_counter()
    res = consensus.fit_consensus(_recording(), sweeps=[0, 1, 4], key=0, search_s=60.0)
    assert len(stand_ins) == 1 and before + 50.0 <= deadlines[0] <= time.perf_counter() + 50.0
    assert "(1 of 3 fits: another would have ended more than 50 s after the fit began" in \
        res.settings["consensus"]["why"]
    res = consensus.fit_consensus(_recording(), sweeps=[0, 1, 4], key=0, search_s=1.0)  # 1 s a search: all three
    assert len(res.settings["consensus"]["members"]) == 3 and "fits: another" not in res.settings["consensus"]["why"]
    deadlines.clear()
    res = consensus.fit_consensus(_recording(), sweeps=[0, 1, 4], key=0, search_s=60.0, time_limit=False)  # a batch
    assert len(res.settings["consensus"]["members"]) == 3 and deadlines == [None, None, None]


def test_a_fit_past_its_deadline_searches_once():
    """End to end (tiny search): a deadline already passed leaves the first search, which
    always runs, and where the fit without a deadline searched again, says it stopped."""
    import time

    rec = load_recording(example_recording("File_axon_5.abf"))
    tiny = dict(generations=1, population=6, steps=0, progress=False, key=0)
    free = fit_recording(rec, **tiny)
    late = fit_recording(rec, deadline=time.perf_counter(), **tiny)
    searched_again = len(free.settings["attempts"]) > 1
    assert len(late.settings["attempts"]) == 1 and late.settings["stopped_at_deadline"] == searched_again
    assert late.params == free.params or searched_again  # the same first search
    assert free.settings["stopped_at_deadline"] is False


@pytest.mark.parametrize("members", [0, -1, 1.5, True])
def test_bad_members(members):
    with pytest.raises(ValueError, match="^members: "):
        consensus.fit_consensus(_recording(), members=members)
    with pytest.raises(ValueError, match="^members: "):
        fit_with_model(_recording(), "auto", members=3)


def test_the_kept_fit_is_the_fit_of_its_seed():
    """End to end (tiny search): the consensus returns one member's fit unchanged, the same
    parameters as fitting that seed alone, and its wall time covers all three."""
    rec = load_recording(example_recording("File_axon_5.abf"))
    tiny = dict(generations=2, population=8, steps=0, retries=0, progress=False)
    res = fit_with_model(rec, search={k: tiny[k] for k in ("generations", "population", "steps")}, key=0,
                         retries=0, progress=False)
    con = res.settings["consensus"]
    assert len(con["members"]) == 3 and con["compared_sweeps"] == [k for k in rec.sweeps if k not in res.sweeps]
    alone = fit_recording(rec, key=con["members"][con["chosen"]]["seed"], sweeps=list(res.sweeps), **tiny)
    assert alone.params == res.params and alone.loss == res.loss
    assert res.wall_time >= sum(m["fit_time_s"] for m in con["members"])


def test_members_with_auto_is_a_one_line_error(tmp_path, capsys):
    from hhjax.cli import main

    out = tmp_path / "fit.json"
    assert main(["fit", str(example_recording("File_axon_5.abf")), "--model", "auto", "--members", "2",
                 "--out", str(out), "--no-checkpoint"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--members" in err[0] and not out.exists()


def test_a_member_without_a_finite_loss_leaves_the_others_to_decide(stand_ins, monkeypatch):
    from hhjax._validate import FitFailed

    fake = consensus.fit_recording

    def failing(recording, *, key, **kw):
        if key == 1:
            raise FitFailed("fit: no start reached a finite loss")
        return fake(recording, key=key, **kw)

    monkeypatch.setattr(consensus, "fit_recording", failing)
    res = consensus.fit_consensus(_recording(), sweeps=[0, 1, 4], key=0)
    con = res.settings["consensus"]
    assert [m["seed"] for m in con["members"]] == [0, 2] and "seed 1: no finite loss" in con["why"]
    assert res.params[1] in (0, 2)


def test_one_member_asked_for_says_so(stand_ins):
    res = consensus.fit_consensus(_recording(), sweeps=[0, 1, 4], key=0, members=1)
    con = res.settings["consensus"]
    assert con["why"] == "one fit, as asked" and con["compared_sweeps"] == [] and len(stand_ins) == 1


@pytest.mark.parametrize("model, members", [("auto", 3), ("pospischil", 0), ("pospischil", 2.0)])
def test_fit_many_settings_check_members_as_fits_do(model, members):
    from hhjax.cluster.cells import FitSettings

    with pytest.raises(ValueError, match="^members: "):
        FitSettings(model=model, members=members)
