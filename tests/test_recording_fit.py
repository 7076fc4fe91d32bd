"""Fitting one model to several recorded sweeps (hhjax.recordings.cell_fit) and scoring it
(hhjax.recordings.evaluation, ``hhjax evaluate``). Small problems only: the whole file runs in
well under a minute on a CPU."""

from __future__ import annotations

import dataclasses
import inspect
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hhjax.io import Recording, example_recording, load_recording
from hhjax.models.pospischil import PLATEAU, RS
from hhjax.presets import NEURON
from hhjax.recordings.evaluation import evaluate, model_rest, parse_sweeps, stimulus_epochs
from hhjax.recordings import fit_recording
from hhjax.recordings.choice import choose_sweeps
from hhjax import load_params, save_params
from hhjax import simulate



def _example(name):
    try:
        return example_recording(name)   # the repo's data/recordings, else ../shared
    except FileNotFoundError:
        return None


ABF = _example("18711001.abf")
needs_abf = pytest.mark.skipif(ABF is None, reason="18711001.abf is neither in data/recordings "
                                                   "nor in ../shared/data/recordings")
DT = 0.1
TRUE = dataclasses.replace(RS, g_na=70.0, g_k=5.0, g_l=0.03, e_l=-68.0, area=1.0e-4)


def _synthetic(params=TRUE, amps=(-60.0, 150.0), duration=300.0, noise=0.0, seed=0):
    """Sweeps of ``duration`` ms at 10 kHz: step ``amp`` pA from 50 to 250 ms, simulated
    from the model's rest (as evaluate() does), optionally with voltage noise."""
    n = int(round(duration / DT))
    t = np.arange(n + 1) * DT
    i = np.zeros((len(amps), n + 1))
    for k, a in enumerate(amps):
        i[k, (t >= 50.0 - 1e-9) & (t < 250.0 - 1e-9)] = a
    y0 = float(model_rest(params))
    v = np.asarray(simulate(params, i[:, :n], duration=n * DT, dt=DT, y0=y0, spike_threshold=None).v)
    v = v + noise * np.random.default_rng(seed).standard_normal(v.shape)
    return Recording(t, v, i, tuple(range(len(amps))), 1000.0 / DT, "synthetic")


@pytest.fixture(scope="module")
def synthetic():
    return _synthetic()


def test_parse_sweeps():
    assert parse_sweeps("4,6,8") == [4, 6, 8]
    assert parse_sweeps("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_sweeps(None) is None
    for bad in ("3-1", "a", "1,,x", ""):
        with pytest.raises(ValueError, match="sweeps: "):
            parse_sweeps(bad)


def test_stimulus_epochs():
    t = np.arange(10000) * 0.1
    i = np.where((t >= 100) & (t < 300), -100.0, 0.0) + np.where((t >= 500) & (t < 800), 40.0, 0.0)
    hold, epochs = stimulus_epochs(t, i + 5.0)
    assert hold == 5.0
    assert [(round(e.start, 6), round(e.stop, 6), e.amp) for e in epochs] == [(100.0, 300.0, -100.0),
                                                                          (500.0, 800.0, 40.0)]


def test_evaluate_true_params_is_exact(synthetic):
    out = evaluate(TRUE, synthetic, dt=DT)
    rows = out["sweeps"]
    assert rows[1]["observed_spikes"] >= 3 and rows[0]["observed_spikes"] == 0
    for r in rows:
        assert r["predicted_spikes"] == r["observed_spikes"]
        assert r["gamma"] == pytest.approx(1.0)
        assert r["predicted_rest_mV"] == pytest.approx(r["observed_rest_mV"], abs=1e-3)
        assert r["predicted_rate_hz"] == r["observed_rate_hz"]
    s = out["summary"]
    assert s["fraction_within_1_spike"] == 1.0 and s["fi_rms_hz"] == 0.0 and s["rest_error_mV"] < 1e-3
    # A different cell does not score perfectly.
    other = evaluate(dataclasses.replace(TRUE, g_na=40.0), synthetic, dt=DT)["sweeps"][1]
    assert other["gamma"] < 0.9


def test_synthetic_recovery():
    """Two sweeps (hyperpolarising + spiking) of a known cell with 0.2 mV noise, started from
    the RS preset: the passive parameters, the resting potential, the threshold shift v_t
    and the spike train come back. The tolerances are what the loss resolves: it weighs
    spike times with σ = 20 ms (robust on real cells), so v_t is pinned to ~1-2 mV only."""
    true = dataclasses.replace(TRUE, g_na=RS.g_na, g_k=RS.g_k, v_t=-58.5)
    rec = _synthetic(true, amps=(-60.0, 100.0), noise=0.2)
    res = fit_recording(rec, sweeps=[0, 1], trainable=("v_t", "g_l", "e_l", "area"),
                        generations=8, population=32, n_starts=2, steps=4, progress=False, key=0)
    p = res.params
    assert res.loss < 0.02 * res.settings["start_loss"]
    assert p.g_l == pytest.approx(true.g_l, rel=0.15)
    assert p.area == pytest.approx(true.area, rel=0.15)
    assert p.e_l == pytest.approx(true.e_l, abs=1.0)
    assert p.v_t == pytest.approx(true.v_t, abs=2.0)
    f = res.features["sweeps"]
    assert [r["predicted_spikes"] for r in f] == [r["observed_spikes"] for r in f] == [0, 4]
    assert f[1]["predicted_spike_times_ms"][0] == pytest.approx(f[1]["observed_spike_times_ms"][0], abs=2.0)
    assert f[1]["gamma"] > 0.5
    assert set(res.stderr) == {"v_t", "g_l", "v_rest", "area"}
    assert all(np.isfinite(list(res.stderr.values())))


@needs_abf
def test_real_sweep_fit_lowers_loss():
    rec = load_recording(ABF, sweeps=[12]).time_window(700.0, 1100.0, rezero=True)
    res = fit_recording(rec, generations=2, population=16, n_starts=2, steps=0, dt=0.2, progress=False)
    assert res.loss < res.settings["start_loss"]
    assert res.sweeps == (12,)
    assert {"observed_spikes", "predicted_spikes", "gamma"} <= set(res.features["sweeps"][0])


@needs_abf
def test_choose_sweeps_rule():
    rec = load_recording(ABF)
    # The largest subthreshold step (it also holds the -100 pA step), then spiking sweeps
    # from the lowest to the highest current.
    assert choose_sweeps(rec) == [6, 7, 18, 29]


def test_cli_evaluate_round_trip(tmp_path, synthetic, capsys):
    from hhjax.cli import main

    rec_path = synthetic.to_npz(tmp_path / "cell.npz")
    fit_path = tmp_path / "fit.json"
    save_params(fit_path, TRUE, settings={"dt_ms": DT, "method": "exp_euler"})
    assert load_params(fit_path) == TRUE
    out, png = tmp_path / "eval.json", tmp_path / "eval.png"
    assert main(["evaluate", str(fit_path), str(rec_path), "--sweeps", "0-1",
                 "--out", str(out), "--plot", str(png)]) == 0
    data = json.loads(out.read_text())
    keys = {"sweep", "observed_spikes", "predicted_spikes", "observed_rest_mV", "predicted_rest_mV",
            "observed_rate_hz", "predicted_rate_hz", "gamma"}
    assert [r["sweep"] for r in data["sweeps"]] == [0, 1]
    assert all(keys <= set(r) for r in data["sweeps"])
    assert {"fraction_within_1_spike", "fi_rms_hz", "rest_error_mV"} <= set(data["summary"])
    assert data["summary"]["fraction_within_1_spike"] == 1.0
    assert png.stat().st_size > 1000
    assert not list(tmp_path.glob(".*"))  # atomic writes leave no temporary files
    capsys.readouterr()

    # Errors: one line on stderr naming the file, non-zero exit.
    assert main(["evaluate", str(fit_path), str(rec_path), "--sweeps", "0-5"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cell.npz" in err and "out of range" in err
    assert main(["evaluate", str(tmp_path / "missing.json"), str(rec_path)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing.json" in err
    assert main(["fit", str(rec_path), "--model", "pospischil", "--sweeps", "7"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cell.npz" in err
    # A classic-HH fit (µA/cm²) cannot score a recording in pA; it used to, silently.
    hh_fit = tmp_path / "hh.json"
    save_params(hh_fit, NEURON)
    assert main(["evaluate", str(hh_fit), str(rec_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pA" in err


@needs_abf
def test_coverage_warning_flags_sweeps_that_miss_the_fi_range():
    """18711001 steps 10 pA per sweep up to 290 pA and spikes from ~70 pA: sweeps 4, 6, 8
    (40-80 pA, one spiking) cannot pin down its f–I curve; the rule's own choice can."""
    from hhjax.recordings.choice import coverage_warning

    rec = load_recording(ABF)
    warning = coverage_warning(rec, [4, 6, 8])
    assert "80 pA" in warning and "290 pA" in warning and "1 spiking" in warning
    assert coverage_warning(rec, choose_sweeps(rec)) == ""


def test_stderr_is_nan_where_the_linearisation_has_a_spike_in_it():
    """current.txt's fit had subthreshold slopes of 1e17 (a spike appearing): the Laplace
    errors came out as ±1e-13. They must say 'unknown' instead; smooth slopes still give
    the ordinary least-squares error."""
    from types import SimpleNamespace

    from hhjax.recordings.laplace import N_SCALAR, _stderr

    rng = np.random.default_rng(0)
    n = 200
    spec = SimpleNamespace(names=("a", "b"), bounds=((0.0, 2.0, False), (0.0, 2.0, False)))
    data = {"sub": np.ones((1, n), bool), "t_obs": np.zeros((1, 3))}
    jac = np.zeros((n + 3 + N_SCALAR, 2))
    jac[:n] = rng.normal(size=(n, 2))
    r = np.zeros(n + 3 + N_SCALAR)
    r[:n] = 0.1 * rng.normal(size=n)
    se = _stderr(spec, np.zeros(2), jac, r, data)
    # ordinary least squares, mapped to natural units by dtheta/dz = 0.5 at z = 0
    cov = np.sum(r[:n] ** 2) / (n - 2) * np.linalg.inv(jac[:n].T @ jac[:n]) * 0.5 ** 2
    np.testing.assert_allclose([se["a"], se["b"]], np.sqrt(np.diag(cov)), rtol=1e-9)
    jac[7, 1] = 1e17
    assert all(np.isnan(v) for v in _stderr(spec, np.zeros(2), jac, r, data).values())


def test_a_recording_checkpoint_made_under_another_loss_is_refused(tmp_path, monkeypatch):
    """The loss's weights are part of the checkpoint's fingerprint: after a change of the
    loss (here the leak-reversal tolerance) the same command does not resume a search that
    ranked its points by the old one."""
    from hhjax.recordings import loss

    rec = _synthetic(amps=(-60.0, 100.0))
    kw = dict(generations=1, population=4, steps=0, key=0, progress=False, checkpoint=str(tmp_path))
    fit_recording(rec, **kw)
    monkeypatch.setattr(loss, "EL_TOL", loss.EL_TOL + 5.0)
    with pytest.raises(ValueError, match="different fit"):
        fit_recording(rec, **kw)


def test_fit_with_model_is_one_entry_point_for_one_model_and_auto():
    """One model goes to fit_recording with the search given; "auto" to fit_auto, where a
    partial search replaces only what it names of AUTO_SEARCH; a wrong name is one line."""
    from hhjax.recordings import fit_with_model
    from hhjax.recordings.select import AUTO_SEARCH

    rec = _synthetic(amps=(-60.0, 60.0, 100.0, 150.0, 200.0))
    one = fit_with_model(rec, "pospischil_fs", search={"generations": 2, "population": 8, "steps": 0},
                         sweeps=[0, 1, 4], key=0, progress=False)
    assert one.settings["model"] == "pospischil_fs" and "model_selection" not in one.settings
    assert (one.settings["generations"], one.settings["population"]) == (2, 8)
    auto = fit_with_model(rec, "auto", search={"generations": 1, "population": 8}, sweeps=[0, 1, 4], key=0,
                          candidates=("pospischil", "pospischil_fs"), n_starts=1, progress=False)
    assert auto.settings["model"] == auto.settings["model_selection"]["winner"]
    # The candidates rank with AUTO_SEARCH where the search leaves it out, repeated at most
    # once; the winner's final fit has fit_recording's defaults there.
    ranked = auto.settings["model_selection"]["candidate_search"]
    assert (ranked["generations"], ranked["population"], ranked["steps"], ranked["retries"]) == \
        (1, 8, AUTO_SEARCH["steps"], 1)
    assert (auto.settings["generations"], auto.settings["population"]) == (1, 8)
    assert auto.settings["steps"] == inspect.signature(fit_recording).parameters["steps"].default != AUTO_SEARCH["steps"]
    with pytest.raises(ValueError, match="model: 'hh' is not a recording model"):
        fit_with_model(rec, "hh")


def test_fit_auto_selects_by_held_out_sweeps(tmp_path):
    """--model auto: candidates fitted to the same training sweeps, scored on sweeps they
    did not see; the report's scores are recomputable from its own validation rows."""
    from hhjax.recordings.select import AUTO_MARGIN, cv_score, fit_auto

    rec = _synthetic(amps=(-60.0, 60.0, 100.0, 150.0, 200.0))
    kw = dict(sweeps=[0, 1, 4], candidates=("pospischil", "pospischil_ib"), key=0,
              search={"generations": 2, "population": 16, "steps": 0, "n_starts": 1})
    res = fit_auto(rec, checkpoint=str(tmp_path / "ck"), **kw)
    # Each candidate checkpointed in its own folder; a rerun replays them to the same result.
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["final", "pospischil", "pospischil_ib"]
    again = fit_auto(rec, checkpoint=str(tmp_path / "ck"), **kw)
    assert again.params == res.params and again.settings["model_selection"]["winner"] == \
        res.settings["model_selection"]["winner"]
    sel = res.settings["model_selection"]
    assert sel["training_sweeps"] == [0, 1, 4] and sel["validation_sweeps"] == [2, 3]
    assert not set(sel["validation_sweeps"]) & set(sel["training_sweeps"])
    assert sel["winner"] in ("pospischil", "pospischil_ib") and res.settings["model"] == sel["winner"]
    top = max(r["observed_rate_hz"] or 0.0 for c in sel["candidates"].values() for r in c["validation_rows"])
    for c in sel["candidates"].values():
        assert [r["sweep"] for r in c["validation_rows"]] == [2, 3]
        assert c["score"] == pytest.approx(cv_score(c["validation_rows"], top) + 10.0 * c["training_failures"])
    # The winner scores lowest, or within AUTO_MARGIN of the lowest with fewer conductances.
    scores = {n: c["score"] for n, c in sel["candidates"].items()}
    if sel["winner"] == "pospischil_ib":
        assert scores["pospischil_ib"] < scores["pospischil"] - AUTO_MARGIN
    else:
        assert scores["pospischil"] <= scores["pospischil_ib"] + AUTO_MARGIN
    assert type(res.params).__name__ == ("PospischilParams" if sel["winner"] == "pospischil" else "PospischilIBParams")


def test_fit_auto_without_a_validation_sweep_fits_only_the_default(tmp_path):
    """Every sweep fitted, none left to rank the candidates: the default model is kept, and
    no candidate is fitted for a ranking that could not happen (only the final fit's
    checkpoint folder exists)."""
    from hhjax.recordings.select import fit_auto

    rec = _synthetic(amps=(-60.0, 100.0, 200.0))
    res = fit_auto(rec, candidates=("pospischil", "pospischil_ib"), key=0, checkpoint=str(tmp_path / "ck"),
                   search={"generations": 1, "population": 8, "steps": 0, "n_starts": 1})
    sel = res.settings["model_selection"]
    assert sel["validation_sweeps"] == [] and sel["candidates"] == {} and sel["winner"] == "pospischil"
    assert "no sweep left for validation" in sel["why"]
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["final"]


@pytest.mark.parametrize("scores, rebound, winner", [
    ({"pospischil": 0.15, "pospischil_fs": 0.9, "pospischil_ib": 0.1, "pospischil_lts": 0.08}, False, "pospischil"),
    ({"pospischil": 2.0, "pospischil_fs": 1.2, "pospischil_ib": 0.5}, False, "pospischil_fs"),  # same conductances
    ({"pospischil": 2.0, "pospischil_fs": 1.8, "pospischil_ib": 0.5}, False, "pospischil_ib"),  # by > 1
    ({"pospischil": 1.3, "pospischil_lts": 0.8}, False, "pospischil"),
    ({"pospischil": 1.3, "pospischil_ib": 0.9, "pospischil_lts": 0.8}, True, "pospischil_lts"),  # rebound: T shown
    ({"pospischil": 0.4, "pospischil_fs": 0.4}, False, "pospischil"),  # ties: the earlier
    ({"pospischil_ib": 12.0, "pospischil_lts": 0.3}, False, "pospischil_lts"),
])
def test_pick_winner_prefers_fewer_conductances_within_the_margin(scores, rebound, winner):
    """Hand-worked cases: a calcium current must win by more than one target tolerance
    (AUTO_MARGIN 1.0) unless the cell rebounds (T-type); equal conductances go by score."""
    from hhjax.recordings.select import AUTO_MARGIN, pick_winner

    assert AUTO_MARGIN == 1.0
    got, why = pick_winner(scores, rebound=rebound)
    assert got == winner
    assert f"{scores[winner]:.3g}" in why and ("within 1 of the lowest" in why) == (min(scores.values()) < scores[winner])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 30.0), min_size=4, max_size=4), st.booleans(), st.floats(0.0, 30.0))
def test_pick_winner_invariants(values, rebound, worse_by):
    """Whatever the scores: the winner lies within the margin of the lowest; no candidate
    scoring lower has fewer (counted) conductances; and a candidate added beyond the margin
    of the lowest score never changes the choice."""
    from hhjax.recordings.cell_fit import MODELS
    from hhjax.recordings.select import AUTO_CANDIDATES, AUTO_MARGIN, pick_winner

    scores = dict(zip(AUTO_CANDIDATES, values))
    winner, _ = pick_winner(scores, rebound=rebound)
    n_extra = {n: 0 if rebound and "g_cat" in MODELS[n][1] else len(MODELS[n][1]) for n in scores}
    assert scores[winner] <= min(values) + AUTO_MARGIN
    assert not any(scores[n] < scores[winner] and n_extra[n] < n_extra[winner] for n in scores)
    three = {n: scores[n] for n in AUTO_CANDIDATES[:3]}
    late = {**three, "pospischil_lts": min(three.values()) + AUTO_MARGIN + 1e-6 + worse_by}
    assert pick_winner(late, rebound=rebound)[0] == pick_winner(three, rebound=rebound)[0]


@pytest.mark.parametrize("argv, needle", [(["--model", "hh"], "--model"),
                                          (["--model", "auto", "--preset", "pospischil"], "--preset")])
def test_cli_fit_model_errors_are_one_line(tmp_path, synthetic, capsys, argv, needle):
    from hhjax.cli import main

    rec_path = synthetic.to_npz(tmp_path / "cell.npz")
    assert main(["fit", str(rec_path), *argv, "--out", str(tmp_path / "fit.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and not (tmp_path / "fit.json").exists()


def test_cli_fit_of_a_cell_that_never_fires_says_so(tmp_path, capsys, monkeypatch):
    """Subthreshold sweeps only: the fit goes on (fit.json is written) and says, in one
    line naming the file, that it fitted subthreshold data only."""
    from hhjax.cli import main
    from hhjax.recordings.epochs import detect

    monkeypatch.setenv("HHJAX_NO_CACHE", "1")
    rec = _synthetic(amps=(-60.0, -20.0, 5.0))
    assert all(detect(rec.t, v).size == 0 for v in rec.v)   # the premise: no spike anywhere
    path = rec.to_npz(tmp_path / "quiet.npz")
    out = tmp_path / "fit.json"
    assert main(["fit", str(path), "--model", "pospischil", "--out", str(out), "--generations", "2",
                 "--population", "8", "--steps", "1", "--no-checkpoint"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("hhjax fit:")]
    assert len(err) == 1 and err[0].startswith(f"hhjax fit: warning: {path}: the cell never fires"), err
    assert "subthreshold data only" in err[0]
    assert json.loads(out.read_text())["params"]


# A fit to 17o05028_ic_steps.abf (pospischil, seed 0): at 0 pA it has a stable rest AND a
# ~6 Hz limit cycle (bistable), as that cell has.
BISTABLE = dataclasses.replace(RS, g_na=41.967, g_k=16.726, g_m=0.046827, tau_max=580.26, v_t=-49.453,
                               g_l=0.0062614, e_l=16.19, area=6.0304e-05)


def test_a_sweep_begun_firing_starts_in_the_model_firing_state():
    """Two sweeps of a bistable model at 0 pA with a -50 pA step at 600-800 ms: one begun
    where a 2 s run after a kick left it (firing: "the previous sweep left it firing"), one
    at rest. evaluate() starts each as the cell began (fires_at_start), and so predicts both;
    from the fixed point alone the firing sweep is silent until the step."""
    import jax
    from hhjax.models.steady import steady_state
    from hhjax.recordings.evaluation import simulate_sweeps
    from hhjax.recordings.rows import fit_rows

    n = 10000
    t = np.arange(n + 1) * DT
    i = np.zeros((2, n + 1))
    i[:, (t >= 600.0 - 1e-9) & (t < 800.0 - 1e-9)] = -50.0
    rest = steady_state(BISTABLE, model_rest(BISTABLE))
    kicked = dataclasses.replace(rest, v=np.float32(0.0))
    history = simulate(BISTABLE, 0.0, duration=2000.0, dt=DT, y0=kicked, spike_threshold=None)
    firing = jax.tree_util.tree_map(lambda x: x[-1], history.state)
    v = np.stack([np.asarray(simulate(BISTABLE, i[k, :n], duration=n * DT, dt=DT, y0=y0, spike_threshold=None).v)
                  for k, y0 in enumerate((firing, rest))])
    rec = Recording(t, v, i, (0, 1), 1000.0 / DT, "bistable")
    from hhjax.recordings.epochs import detect
    before = [detect(t, x)[detect(t, x) < 600.0].size for x in v]
    assert before[0] >= 3 and before[1] == 0                 # the premise
    rows = evaluate(BISTABLE, rec)["sweeps"]
    for r in rows:
        assert abs(r["predicted_spikes"] - r["observed_spikes"]) <= 1, r
    _, v_rest_start = simulate_sweeps(BISTABLE, rec)          # both from the fixed point
    assert detect(t, v_rest_start[0])[detect(t, v_rest_start[0]) < 600.0].size == 0
    data = fit_rows(rec.resample(DT), DT)[0]
    assert data["fire0"].tolist() == [True, False]


def _flat_recording(holds, steps, spiking, n=6000):
    """Hand-made sweeps at 10 kHz: holding current ``holds[k]`` pA, a step of ``steps[k]`` pA
    at 100-400 ms, and 5 square spikes in the step on the sweeps in ``spiking``."""
    t = np.arange(n) * DT
    i = np.array([h + np.where((t >= 100.0) & (t < 400.0), s, 0.0) for h, s in zip(holds, steps)])
    v = np.full(i.shape, -65.0)
    for k in spiking:
        for a in (150.0, 200.0, 250.0, 300.0, 350.0):
            v[k, (t >= a) & (t < a + 1.0)] = 20.0
    return Recording(t, v, i, tuple(range(len(holds))), 1000.0 / DT, "flat")


def test_choose_sweeps_spans_the_holding_currents():
    """Holding current raised sweep by sweep (a ramp-like protocol): the subthreshold pick
    is the lowest holding current (the other end of the I-V curve from the spiking sweeps),
    not the largest step; with one holding current the largest step, as before."""
    holds = [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    rec = _flat_recording(holds, [10.0] * 6, spiking=(4, 5))
    assert choose_sweeps(rec) == [0, 4, 5]
    rec = _flat_recording([0.0] * 6, [10.0, 20.0, 30.0, 40.0, 50.0, 60.0], spiking=(4, 5))
    assert choose_sweeps(rec) == [3, 4, 5]


def _counted_recording(steps, counts, n=6000):
    """Sweeps at 10 kHz with a step of ``steps[k]`` pA at 100-400 ms and ``counts[k]`` square
    spikes spread over it (the f–I curve by hand)."""
    t = np.arange(n) * DT
    i = np.array([np.where((t >= 100.0) & (t < 400.0), s, 0.0) for s in steps])
    v = np.full(i.shape, -65.0)
    for k, c in enumerate(counts):
        for a in np.linspace(110.0, 390.0, c) if c else ():
            v[k, (t >= a) & (t < a + 1.0)] = 20.0
    return Recording(t, v, i, tuple(range(len(steps))), 1000.0 / DT, "counted")


def test_choose_sweeps_brackets_the_onset_of_depolarisation_block():
    """A cell whose f–I curve peaks and then collapses (block): the spiking picks are the
    lowest, the peak and the first sweep past it under half the peak rate; a monotonic
    f–I curve keeps the lowest, middle and highest."""
    steps = [-50.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 350.0]
    block = _counted_recording(steps, [0, 2, 5, 9, 14, 12, 3, 2])
    assert choose_sweeps(block) == [0, 1, 4, 6]   # peak 14 at 200 pA, block from 300 pA (3 < 7)
    mild = _counted_recording(steps, [0, 2, 5, 9, 14, 12, 10, 9])   # a drop, but no block
    assert choose_sweeps(mild) == choose_sweeps(_counted_recording(steps, [0, 2, 5, 9, 14, 15, 16, 17])) == [0, 1, 4, 7]
    early = _counted_recording(steps, [0, 9, 4, 2, 2, 1, 1, 1])   # peak at the weakest spiking sweep
    assert choose_sweeps(early) == [0, 1, 2, 7]                    # the freed pick goes to the strongest


def test_of_equal_quiet_sweeps_the_one_firing_most_at_rest_is_fitted():
    """A cell that fires spontaneously (17o05028's protocol in small): three quiet sweeps
    with the same -50 pA step and 1, 4 and 2 spikes in the baseline after it, then spiking
    steps. The subthreshold pick is the sweep with 4 (the first of equals, before); a cell
    silent at rest keeps the first of its equal quiet sweeps."""
    steps = [-50.0, -50.0, -50.0, 50.0, 100.0, 150.0]
    t = np.arange(12000) * DT
    rec = _counted_recording(steps, [0, 0, 0, 3, 6, 9], n=12000)
    v = rec.v.copy()
    for k, c in ((0, 1), (1, 4), (2, 2)):
        for a in np.linspace(700.0, 1100.0, c):   # past the 100 ms settling after the step
            v[k, (t >= a) & (t < a + 1.0)] = 20.0
    spont = Recording(t, v, rec.i, rec.sweeps, rec.sampling_rate_hz, "spontaneous")
    assert choose_sweeps(spont)[0] == 1
    assert choose_sweeps(rec)[0] == 0
    # Steps that differ by fractions of a pA (a measured stimulus) are equal steps.
    # Also across a rounding boundary: -50.6, -50.0 and -49.6 pA are one level
    # (recordings.epochs.current_levels), which rounding to whole pA split as -51 / -50 / -50.
    for offsets in ((0.2, -0.3, 0.1), (0.0, -0.6, 0.4)):
        i = rec.i.copy()
        for k, off in enumerate(offsets):
            i[k, (t >= 100.0) & (t < 400.0)] += off
        assert choose_sweeps(Recording(t, v, i, rec.sweeps, rec.sampling_rate_hz, "measured"))[0] == 1


def test_the_subthreshold_pick_brackets_the_rheobase_from_below():
    """Where silent depolarising steps lie below the weakest spiking sweep, the subthreshold
    pick is the strongest of them (50 pA, not the -50 pA sweep): the rheobase is then
    bracketed by fitted data. With no fitted hyperpolarising step, the passive estimate's
    window is that step's first DEPOL_PASSIVE_MS (20 ms before its start at 100 ms)."""
    from hhjax.recordings.rows import DEPOL_PASSIVE_MS, fit_rows

    rec = _counted_recording([-50.0, 0.0, 50.0, 100.0, 150.0, 200.0], [0, 0, 0, 4, 8, 12])
    assert choose_sweeps(rec) == [2, 3, 4, 5]
    *_, windows, _ = fit_rows(rec.select([2, 3, 4, 5]), DT)
    assert windows[0].tolist() == [int(round(80.0 / DT)), int(round((100.0 + DEPOL_PASSIVE_MS) / DT))]
    assert (windows[1:] < 0).all()
    # a fitted hyperpolarising step keeps the window on it
    *_, windows, _ = fit_rows(rec.select([0, 2, 3]), DT)
    assert windows[0, 0] >= 0 and (windows[1:] < 0).all()


def test_rows_cover_every_depolarising_epoch():
    """A dual-step sweep (step, hyperpolarising epoch, step): its f–I point pools both steps,
    so its fit row runs to POST_MS after the second (hand-computed: 900 + 100 ms)."""
    from hhjax.recordings.rows import POST_MS, fit_rows

    n = 12000
    t = np.arange(n) * DT
    i = np.zeros((2, n))
    for k, amp in enumerate((30.0, 60.0)):
        i[k] = np.where((t >= 100.0) & (t < 300.0), amp, 0.0) + np.where((t >= 400.0) & (t < 600.0), -50.0, 0.0) \
            + np.where((t >= 600.0) & (t < 900.0), amp, 0.0)
    v = np.full(i.shape, -65.0)
    for k in (0, 1):
        for a in (150.0, 250.0, 650.0, 750.0, 850.0)[: 3 + 2 * k]:
            v[k, (t >= a) & (t < a + 1.0)] = 20.0
    rec = Recording(t, v, i, (0, 1), 1000.0 / DT, "dual")
    data, rows, *_ = fit_rows(rec, DT)
    assert [r[2] for r in rows if r[3] == "sweep"] == [pytest.approx(900.0 + POST_MS)] * 2
    # Spike counts are fitted per epoch and baseline between epochs (cut at each start, and
    # 2 ms after a depolarising epoch's end), so spikes cannot move between the two steps.
    sweep_rows = ~data["interpolated"]
    assert data["seg_edges"][sweep_rows][:, 1:-1].tolist() == [[100.0, 302.0, 400.0, 600.0, 902.0]] * 2
    assert data["seg_obs"][sweep_rows].tolist() == [[0, 2, 0, 0, 1, 0], [0, 2, 0, 0, 3, 0]]


def test_rows_of_a_spontaneously_firing_cell_run_to_the_sweep_end():
    """A cell firing in the baselines: its rows run on past the step to the end of the sweep
    (2500 ms, hand-set), through the later -50 pA epoch, so that the spontaneous rate after
    it is fitted; where the sweep is longer than SPONTANEOUS_POST_MS past the step's row end
    (700 ms; the first row 1600 ms, 100 ms after the -50 pA epoch, as some row must hold a
    hyperpolarising epoch for the passive estimate), the row stops there."""
    from hhjax.recordings.rows import SPONTANEOUS_POST_MS, fit_rows

    for duration in (2500.0, 5000.0):
        n = int(duration / DT)
        t = np.arange(n) * DT
        i = np.array([np.where((t >= 200.0) & (t < 600.0), amp, 0.0) + np.where((t >= 1000.0) & (t < 1500.0), -50.0, 0.0)
                      for amp in (50.0, 100.0)])
        v = np.full(i.shape, -60.0)
        for k in (0, 1):
            for a in (50.0, 300.0, 400.0, 800.0, 1700.0, 2000.0, 2300.0)[: 6 + k]:
                v[k, (t >= a) & (t < a + 1.0)] = 20.0
        data, rows, *_ = fit_rows(Recording(t, v, i, (0, 1), 1000.0 / DT, "spontaneous"), DT)
        stops = [min(duration - DT, end + SPONTANEOUS_POST_MS) for end in (1600.0, 700.0)]
        assert [r[2] for r in rows if r[3] == "sweep"] == pytest.approx(stops, abs=2 * DT)
        if duration == 2500.0:   # the spikes after the -50 pA epoch are in the fitted counts
            assert data["seg_obs"][~data["interpolated"]].sum(1).tolist() == [6.0, 7.0]


def test_count_error_charges_spikes_moved_between_epochs():
    """Same total, different split: the per-segment count error is sqrt(1² + 1²)."""
    import jax.numpy as jnp
    from hhjax.recordings.regime import count_errors

    d = {"seg_edges": jnp.array([[-1e9, 100.0, 302.0, 1e9]] * 2), "seg_obs": jnp.array([[0.0, 2.0, 1.0]] * 2),
         "interpolated": jnp.array([False, True]), "n_lo": jnp.array([3.0, 4.0]), "n_hi": jnp.array([3.0, 6.0])}
    times = jnp.array([[150.0, 250.0, 280.0], [150.0, 250.0, 280.0]])
    err = count_errors(jnp.array([3, 3]), times, d)
    assert float(err[0]) == pytest.approx(np.sqrt(2.0))   # one spike moved from after the step into it
    assert float(err[1]) == pytest.approx(1.0)            # interpolated row: distance to [4, 6]


def test_fit_recording_refuses_voltage_beyond_500_mV(synthetic):
    # Volts read as millivolts the other way round (x1000): a one-line error, no fit.
    bad = dataclasses.replace(synthetic, v=synthetic.v * 1000.0)
    with pytest.raises(ValueError, match=r"recording: \|V\| up to .* mV is beyond ±500 mV"):
        fit_recording(bad, generations=1, population=2, steps=0)


def test_a_start_without_a_finite_jacobian_keeps_its_search_point(synthetic, monkeypatch):
    """Where the search's best point has a non-finite Jacobian (a spike time with an infinite
    derivative), Levenberg–Marquardt cannot move it; the fit must still return it rather
    than a worse start that LM could refine."""
    import jax.numpy as jnp
    from hhjax.recordings import search

    real = search._residuals_and_jacobian

    def first_row_nan(spec, base, z, data):
        r, jac = real(spec, base, z, data)
        return r, jac.at[0].set(jnp.nan)

    monkeypatch.setattr(search, "_residuals_and_jacobian", first_row_nan)
    res = fit_recording(synthetic, generations=2, population=8, n_starts=2, steps=2, key=0, progress=False)
    assert res.loss <= res.settings["search_loss"] * (1 + 1e-5)


def test_the_f_i_foot_gets_an_interpolated_row():
    """Between the strongest silent sweep (-50 pA) and the weakest spiking one (100 pA, 2
    spikes) the fit adds a row halfway (25 pA in the same window) that may fire 0 to 2
    spikes: below rheobase nothing else holds a model silent."""
    from hhjax.recordings.rows import fit_rows

    n = 6000
    t = np.arange(n) * DT
    amps = (-50.0, 100.0, 200.0)
    i = np.array([np.where((t >= 100.0) & (t < 400.0), a, 0.0) for a in amps])
    v = np.full(i.shape, -65.0)
    for k, spikes in ((1, (150.0, 300.0)), (2, (120.0, 200.0, 280.0, 360.0))):
        for s in spikes:
            v[k, (t >= s) & (t < s + 1.0)] = 20.0
    data, rows, *_ = fit_rows(Recording(t, v, i, (0, 1, 2), 1000.0 / DT, "foot"), DT)
    foot = [j for j, r in enumerate(rows) if r[3] == "interpolated 0-1"]
    assert len(foot) == 1
    j = foot[0]
    assert (data["n_lo"][j], data["n_hi"][j]) == (0.0, 2.0)
    assert data["stim"][j][int(250.0 / DT)] == pytest.approx(25.0)


def _one_second_steps(amps, counts):
    """Sweeps of a 1 s step of each amplitude (pA) from 100 ms, with ``counts`` evenly
    spaced 1 ms, 85 mV spikes on a -65 mV baseline."""
    t = np.arange(11500) * DT
    i = np.array([np.where((t >= 100.0) & (t < 1100.0), x, 0.0) for x in amps])
    v = np.full(i.shape, -65.0)
    for k, count in enumerate(counts):
        for s in 100.0 + (np.arange(count) + 0.5) * (1000.0 / max(count, 1)):
            v[k, (t >= s) & (t < s + 1.0)] = 20.0
    return Recording(t, v, i, tuple(range(len(amps))), 1000.0 / DT, "steps")


def test_the_interpolated_count_follows_the_f_i_curve_of_the_fitted_sweeps():
    """A cell whose f–I curve is convex, f(I) = a (I - 50)^2 + b (I - 50) spikes per
    second (silent at 50 pA, 3 spikes at 100, 121 at 400: a cell climbing towards block):
    halfway between the two spiking sweeps (250 pA) the curve gives 40.6 spikes, where the
    straight line between them gives 62. The interpolated row's band must hold the curve's
    value, and leave out the line's."""
    from hhjax.recordings.rows import fit_rows

    a = (121.0 - 3.0 * 350.0 / 50.0) / (350.0**2 - 50.0 * 350.0)  # solved by hand from the two points
    b = (3.0 - a * 50.0**2) / 50.0
    data, rows, *_ = fit_rows(_one_second_steps((50.0, 100.0, 400.0), (0, 3, 121)), DT)
    j = [k for k, r in enumerate(rows) if r[3] == "interpolated 1-2"][0]
    truth = a * 200.0**2 + b * 200.0
    assert truth == pytest.approx(40.6, abs=0.05)
    assert data["n_lo"][j] <= truth <= data["n_hi"][j]
    assert data["n_hi"][j] < (3 + 121) / 2


def test_a_hyperpolarising_sweep_does_not_bend_the_f_i_curve():
    """Silent at -100 pA, 10 spikes at 100 pA, 30 at 300 pA: the hyperpolarising sweep is
    no point of the f–I curve (where between -100 and 100 pA the curve leaves 0 is
    unknown), so halfway between the spiking sweeps the band is centred on their line, 20
    spikes, ± 15 % of the 20 between them (counted by hand: 17 to 23)."""
    from hhjax.recordings.rows import fit_rows

    data, rows, *_ = fit_rows(_one_second_steps((-100.0, 100.0, 300.0), (0, 10, 30)), DT)
    j = [k for k, r in enumerate(rows) if r[3] == "interpolated 1-2"][0]
    assert (data["n_lo"][j], data["n_hi"][j]) == pytest.approx((17.0, 23.0))


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.integers(0, 500), st.integers(0, 300)), min_size=2, max_size=8, unique_by=lambda p: p[0]))
def test_fi_curve_centre_stays_between_its_neighbours(points):
    """On the rising part of the f–I curve, the centre at any current between two fitted
    sweeps lies between their counts (PCHIP keeps monotone data monotone), and points that
    lie on a line give the line. Reference: the points themselves."""
    from hhjax.recordings.rows import fi_curve_centre

    points = sorted(points)
    x = 2.0 * np.array([p[0] for p in points])  # pA, currents 2 pA apart or more
    y = np.maximum.accumulate(np.array([p[1] for p in points], float))  # rising, as up to the peak
    for k in range(len(x) - 1):
        mid = fi_curve_centre(x, y, (x[k] + x[k + 1]) / 2)
        assert y[k] - 1e-9 <= mid <= y[k + 1] + 1e-9
    line = 3.0 + 0.2 * x
    assert fi_curve_centre(x, line, (x[0] + x[-1]) / 2) == pytest.approx(3.0 + 0.1 * (x[0] + x[-1]), abs=1e-6)


def test_leak_reversal_beyond_20_mV_from_the_rest_is_charged():
    """A passive model (no active conductances) held at 30 pA: its leak reverses at
    v_rest - I/(g_l area) = v_rest - 0.3 µA/cm² / 0.01 mS/cm² = v_rest - 30 mV (by hand),
    10 mV beyond EL_TOL; nothing where no fitted sweep has a rest (spontaneous firing)."""
    import jax.numpy as jnp
    from hhjax.fitting.transforms import to_unconstrained
    from hhjax.models.pospischil import RS
    from hhjax.recordings.loss import EL_TOL, _leak_reversal_excess, _params_of, _Spec

    base = dataclasses.replace(RS, g_na=0.0, g_k=0.0, g_m=0.0, g_l=0.01, area=1e-4)
    bounds = ((-90.0, -50.0, False),)
    spec = _Spec.of(("v_rest",), bounds, DT, "exp_euler", 10, (0,))
    z = jnp.array([to_unconstrained("v_rest", -70.0, bounds[0])])
    for hold, want in ((30.0, 30.0 - EL_TOL), (10.0, 0.0)):
        data = {"hold": jnp.array([hold]), "rest": jnp.array([-70.0])}
        params = _params_of(spec, base, z, jnp.mean(data["hold"]))
        assert float(_leak_reversal_excess(spec.static, spec.table(z), params, z, data)) == pytest.approx(want, abs=1e-3)
    data = {"hold": jnp.array([30.0]), "rest": jnp.array([np.nan])}
    params = _params_of(spec, base, z, jnp.mean(data["hold"]))
    assert float(_leak_reversal_excess(spec.static, spec.table(z), params, z, data)) == 0.0


@settings(max_examples=60, deadline=None)
@given(lo=st.floats(1e-4, 100.0), ratio=st.floats(1.01, 1e4), log=st.booleans(),
       z=st.lists(st.floats(-8.0, 8.0), min_size=1, max_size=5))
def test_bounds_as_data_map_coordinates_as_the_transform_does(lo, ratio, log, z):
    """The loss takes the bounds as data (:meth:`_Spec.table`), not as compiled-in
    constants; its coordinates must be those of ``from_unconstrained``, bit for bit, or a fit
    would change with the refactor. Reference: the transform itself, eager, in float32."""
    import jax.numpy as jnp
    from hhjax.fitting.transforms import from_unconstrained
    from hhjax.recordings.loss import _coordinate, _Spec

    b = (lo, lo * ratio, log)
    spec = _Spec.of(("g_na",), (b,), DT, "exp_euler", 10, (0,))
    zz = jnp.asarray(np.array(z)[:, None], jnp.float32)
    got = np.asarray(_coordinate(spec.static, spec.table(zz), zz, 0))
    np.testing.assert_array_equal(got, np.asarray(from_unconstrained(zz[:, 0], b)))


def test_searches_with_other_bounds_share_the_compiled_loss():
    """The onset search moves v_t's bounds; the loss must compile once for both searches
    (with the bounds compiled in, each search compiled the loss and its Jacobian again,
    5-6 s on a cell), and each search's bounds must still reach it: z = 0 is the middle of
    the interval (by hand: -60 and -45 mV), and the two losses differ."""
    import jax.numpy as jnp
    from hhjax.recordings.loss import _loss, _loss_jit, _params_of, _Spec
    from hhjax.recordings.rows import fit_rows

    data_np, _, every, _, layout = fit_rows(_synthetic(amps=(-60.0, 100.0)).resample(0.1), 0.1)
    data_np.pop("fire0")
    data = {k: jnp.asarray(v, bool if v.dtype == bool else jnp.float32) for k, v in data_np.items()}
    z = jnp.zeros((2, 1), jnp.float32)
    specs = [_Spec.of(("v_t",), ((lo, hi, False),), 0.1, "exp_euler", every, layout)
             for lo, hi in ((-80.0, -40.0), (-70.0, -20.0))]
    assert [float(_params_of(s, RS, z, 0.0).v_t[0]) for s in specs] == [-60.0, -45.0]
    before = _loss_jit._cache_size()
    losses = [np.asarray(_loss(s, RS, z, data)) for s in specs]
    assert _loss_jit._cache_size() == before + 1
    assert np.all(np.isfinite(losses)) and not np.array_equal(losses[0], losses[1])


def test_count_errors_are_in_units_of_the_count_target():
    """A segment of 140 spikes off by 14 (one tolerance) costs as much as one of 5 off by 1;
    the excess beyond the timed spikes counts in the tolerance of the row's total."""
    import jax.numpy as jnp
    from hhjax.recordings.regime import count_errors

    d = {"seg_edges": jnp.array([[-1e9, 1e9]] * 2), "seg_obs": jnp.array([[140.0], [5.0]]),
         "interpolated": jnp.array([False, False]), "n_lo": jnp.zeros(2), "n_hi": jnp.zeros(2)}
    times = jnp.tile(jnp.arange(154.0), (2, 1))    # 154 timed spikes
    err = count_errors(jnp.array([154, 6]), times, d)
    assert float(err[0]) == pytest.approx(1.0) and float(err[1]) == pytest.approx(1.0)
    short = jnp.tile(jnp.arange(150.0), (2, 1))    # only 150 timed: 4 more counted as excess
    assert float(count_errors(jnp.array([154, 6]), short, d)[0]) == pytest.approx(np.hypot(10 / 14, 4 / 14))


def test_a_fit_that_misses_a_fitted_sweep_searches_again_and_keeps_the_lowest_loss(synthetic, tmp_path,
                                                                                  monkeypatch):
    """The retry rule, with the miss measure scripted (the searches themselves are real): each
    further search has a seed of its own, its own checkpoint folder, and the fit keeps the
    lowest loss of all; it stops as soon as the kept model misses no fitted sweep by more than
    RETRY_TOLERANCES, and never searches more than 1 + retries times."""
    from hhjax.recordings import cell_fit

    kw = dict(generations=1, population=4, steps=0, key=3, progress=False)

    def script(*worst):
        misses = iter([(w, 1) for w in worst])
        monkeypatch.setattr(cell_fit, "worst_count_miss", lambda sweeps: next(misses))

    script(8.5, 5.0, 0.5)
    res = fit_recording(synthetic, checkpoint=str(tmp_path), **kw)
    tries = res.settings["attempts"]
    assert [a["worst_count_miss"] for a in tries] == [8.5, 5.0, 0.5]
    assert len({a["seed"] for a in tries}) == 3 and tries[0]["seed"] == 3 == res.settings["seed"]
    k = int(np.argmin([a["loss"] for a in tries]))
    assert res.settings["kept_attempt"] == k and res.loss == tries[k]["loss"] == min(a["loss"] for a in tries)
    assert (tmp_path / "attempt1").is_dir() and (tmp_path / "attempt2").is_dir()
    # Every search starts v_t at the model's own: the cell's spike onsets lie where RS's do
    # (its v_t is RS's), within ONSET_MARGIN.
    assert [a["v_t_start"] for a in tries] == [RS.v_t] * 3
    # The first search is the same whether or not others follow.
    script(8.5)
    alone = fit_recording(synthetic, retries=0, **kw)
    assert alone.loss == tries[0]["loss"] and len(alone.settings["attempts"]) == 1

    script(8.5, 5.0, 4.0)
    assert len(fit_recording(synthetic, retries=1, **kw).settings["attempts"]) == 2
    script(cell_fit.RETRY_TOLERANCES)   # not more than RETRY_TOLERANCES: accepted
    assert len(fit_recording(synthetic, **kw).settings["attempts"]) == 1
    script(*[cell_fit.RETRY_TOLERANCES + 0.01] * 3)   # just more: every further search runs
    assert len(fit_recording(synthetic, **kw).settings["attempts"]) == 3
    # Searches stop where one more would simulate more than RETRY_ROW_SECONDS of rows.
    w = alone.settings["row_seconds"]
    rows = alone.settings["rows"]  # (sweep, start ms, stop ms, kind); rows are padded to the longest
    assert w == pytest.approx(len(rows) * max(stop - t0 for _, t0, stop, _ in rows) / 1000.0, rel=0.01)
    monkeypatch.setattr(cell_fit, "RETRY_ROW_SECONDS", 2.5 * w)
    script(8.5, 8.5, 8.5)
    assert len(fit_recording(synthetic, **kw).settings["attempts"]) == 2
    with pytest.raises(TypeError, match="retries"):
        fit_recording(synthetic, retries=1.5, **kw)
    # A cell whose spikes start 16 mV higher (v_t -40): the second search starts there.
    monkeypatch.setattr(cell_fit, "RETRY_ROW_SECONDS", 1e9)
    script(8.5, 5.0, 0.5)
    high_cell = _synthetic(dataclasses.replace(TRUE, v_t=-40.0), amps=(-60.0, 300.0))
    tries = fit_recording(high_cell, **kw).settings["attempts"]
    assert tries[0]["v_t_start"] == tries[2]["v_t_start"] == RS.v_t and abs(tries[1]["v_t_start"] + 40.0) < 3.0
    # There, the search from the onsets runs even where the first meets every fitted sweep,
    # and nothing more after it; not where retries=0 forbids further searches.
    script(0.5, 0.5)
    tries = fit_recording(high_cell, **kw).settings["attempts"]
    assert len(tries) == 2 and abs(tries[1]["v_t_start"] + 40.0) < 3.0
    script(0.5)
    assert len(fit_recording(high_cell, retries=0, **kw).settings["attempts"]) == 1


def test_onset_v_t_finds_a_cell_whose_spikes_start_on_a_plateau():
    """scripts/synthetic_cells.py's plateau cell (v_t 30 mV above RS's, E_Na +20 mV) fires
    from about -20 mV: from its spikes alone, onset_v_t puts v_t within 3 mV of its own,
    beyond the ±25 mV that a search around RS's v_t covers."""
    from hhjax.recordings.rows import fit_rows
    from hhjax.recordings.start import onset_v_t

    cell = PLATEAU
    rec = _synthetic(cell, amps=(0.0, 900.0, 1000.0), duration=600.0)
    data, *_ = fit_rows(rec, DT)
    assert abs(onset_v_t(data, RS, DT) - cell.v_t) < 3.0 and cell.v_t - RS.v_t > 25.0


def test_a_cell_that_never_fires_has_its_strongest_step_fitted():
    """No sweep spikes: the picks are a hyperpolarising sweep (the passive estimate) and the
    strongest depolarising one (150 pA), which tells the fit that the cell stays silent up to
    there; with a spiking sweep, the foot below it, the spiking sweep and the pick left over."""
    steps = [-50.0, 0.0, 50.0, 100.0, 150.0]
    assert choose_sweeps(_counted_recording(steps, [0, 0, 0, 0, 0])) == [0, 4]
    assert choose_sweeps(_counted_recording(steps, [0, 0, 0, 0, 4])) == [0, 3, 4]  # a pick left over: -50 pA


def test_a_pick_left_over_goes_to_the_most_hyperpolarising_sweep():
    """Two spiking sweeps leave one of four picks unused by the rule: it goes to the -100 pA
    sweep (rebound after it is what tells an LTS cell apart); with three spiking sweeps every
    pick is taken as before (the -50 pA sweep, the subthreshold pick where no silent
    depolarising step lies below the weakest spiking one, and the three spiking sweeps)."""
    steps = [-100.0, -50.0, 0.0, 50.0, 100.0, 150.0]
    assert choose_sweeps(_counted_recording(steps, [0, 0, 0, 0, 4, 8])) == [0, 3, 4, 5]
    assert choose_sweeps(_counted_recording(steps, [0, 0, 0, 2, 4, 8])) == [1, 3, 4, 5]
