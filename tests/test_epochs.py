"""Protocol epochs (hhjax.recordings.epochs): synthetic protocols with known epochs, and the
two shared recordings whose protocols SOURCES.md describes (dual steps with spontaneous
firing; a ramp in every sweep)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hhjax.recordings.epochs import Epoch, baseline_windows, epoch_features, parse_epochs

T = np.arange(0.0, 3000.0, 0.05)  # 20 kHz, 3 s


def _box(a, b, amp):
    return np.where((T >= a) & (T < b), amp, 0.0)


def _spike_train(times, width=1.0, base=-65.0):
    v = np.full_like(T, base)
    for s in times:
        v[(T >= s) & (T < s + width)] = 20.0
    return v


def test_dual_step_with_hyperpolarising_epoch_and_holding():
    # Holding 15 pA; +60 pA step; -100 pA epoch; +60 pA again (the 171116sh protocol shape).
    i = 15.0 + _box(146.85, 646.85, 60.0) + _box(1146.85, 1646.85, -100.0) + _box(1646.85, 2146.85, 60.0)
    hold, ep = parse_epochs(T, i)
    assert hold == 15.0
    got = [(e.kind, e.start, e.stop, e.amp) for e in ep]
    want = [("step", 146.85, 646.85, 60.0), ("step", 1146.85, 1646.85, -100.0), ("step", 1646.85, 2146.85, 60.0)]
    assert len(got) == 3
    for g, w in zip(got, want):
        assert g[0] == w[0] and g[3] == pytest.approx(w[3])
        assert g[1] == pytest.approx(w[1], abs=0.05) and g[2] == pytest.approx(w[2], abs=0.05)


def test_prepulse_then_ramp():
    ramp = np.where(T >= 1000.0, np.minimum(T - 1000.0, 1500.0) * 0.1, 0.0)  # 0 -> 150 pA over 1.5 s
    ramp = np.where(T >= 2500.0, 0.0, ramp)
    hold, ep = parse_epochs(T, _box(100.0, 400.0, -50.0) + ramp)
    assert hold == 0.0
    assert [e.kind for e in ep] == ["step", "ramp"]
    r = ep[1]
    assert r.start == pytest.approx(1000.0, abs=0.1) and r.stop == pytest.approx(2500.0, abs=0.1)
    assert r.amp_start == pytest.approx(0.0, abs=0.1) and r.amp_stop == pytest.approx(150.0, abs=0.1)
    assert r.amp == r.amp_stop and r.depolarising


@settings(max_examples=20, deadline=None)
@given(st.floats(50.0, 400.0), st.sampled_from([0.0, 0.305, 1.0 / 32]), st.sampled_from([4_000, 10_000, 20_000]))
def test_a_ramp_stored_as_a_staircase_is_one_ramp(top, quantum, rate):
    """A ramp from a quantised DAC (steps of ``quantum`` pA; 0.305 pA is a 16-bit DAC over
    +-10 nA) or sampled at a rig's rate and resampled to 10 kHz (interval means of a
    staircase) is one ramp epoch, whatever its slope: with a fixed 0.02 pA shape tolerance a
    284 pA, 2 s ramp at 4 kHz came back as 131 epochs."""
    from hhjax.io import Recording

    t = np.arange(0.0, 2500.0, 1000.0 / rate)
    i = np.where((t >= 200.0) & (t < 2200.0), (t - 200.0) / 2000.0 * top, 0.0)
    if quantum:
        i = np.round(i / quantum) * quantum
    rec = Recording(t, i[None] * 0.0 - 65.0, i[None], (0,), float(rate), "ramp").resample(0.1)
    hold, ep = parse_epochs(rec.t, rec.i[0])
    assert hold == pytest.approx(0.0, abs=1e-9)
    assert [e.kind for e in ep] == ["ramp"]
    late = 0.5 + 4.0 * (quantum / (top / 2000.0) + 1000.0 / rate)  # ms: a corner is placed to within a few stairs
    assert ep[0].start == pytest.approx(200.0, abs=late) and ep[0].stop == pytest.approx(2200.0, abs=0.5)
    assert ep[0].amp == pytest.approx(top, abs=max(1.0, quantum))


@settings(max_examples=25, deadline=None)
@given(st.floats(0.5, 30.0), st.floats(10.0, 200.0), st.booleans())
def test_a_steep_ramp_is_a_ramp(per_sample, ramp_ms, plateau):
    """A command ramp that changes by more than the 1 pA jump tolerance every sample (here
    0.5-30 pA per 0.1 ms sample) is one ramp epoch (then a step, where it holds its top), not a
    train of one-sample 'jumps' that vanish as too short: before, 20 pA/ms to 400 pA in 20 ms
    came back as a step starting at the top, and 10 pA/ms was lost altogether."""
    t = np.arange(0.0, 1000.0, 0.1)
    top = per_sample * 10.0 * ramp_ms
    i = np.where((t >= 100.0) & (t < 100.0 + ramp_ms), (t - 100.0) * per_sample * 10.0, 0.0)
    if plateau:
        i = np.where((t >= 100.0 + ramp_ms) & (t < 800.0), top, i)
    hold, ep = parse_epochs(t, i)
    assert hold == 0.0
    assert [e.kind for e in ep] == ["ramp"] + (["step"] if plateau else [])
    assert ep[0].start == pytest.approx(100.0, abs=0.15) and ep[0].stop == pytest.approx(100.0 + ramp_ms, abs=0.15)
    assert ep[0].amp == pytest.approx(top, rel=0.01, abs=per_sample + 1e-9)
    if plateau:
        assert ep[1].amp == pytest.approx(top) and ep[1].stop == pytest.approx(800.0, abs=0.15)


def test_noisy_measured_current():
    rng = np.random.default_rng(1)
    i = -12.5 + _box(700.0, 2700.0, 119.0) + 3.0 * rng.standard_normal(T.size)
    hold, ep = parse_epochs(T, i)
    assert hold == pytest.approx(-12.5, abs=1.0)
    assert len(ep) == 1 and ep[0].amp == pytest.approx(119.0, abs=1.5)
    assert ep[0].start == pytest.approx(700.0, abs=1.0) and ep[0].stop == pytest.approx(2700.0, abs=1.0)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 25), st.integers(-20, 20).filter(lambda a: a != 0)), min_size=1, max_size=4),
       st.integers(-10, 10))
def test_steps_recovered(steps, hold):
    """Any train of steps (100 ms slots, >= 10 pA apart from holding and from each other)
    comes back as its epochs."""
    t = np.arange(0.0, 100.0 * (len(steps) * 2 + 1), 0.1)
    i = np.full_like(t, 5.0 * hold)
    want, t0 = [], 100.0
    for dur, amp in steps:
        i[(t >= t0) & (t < t0 + 4.0 * dur)] += 10.0 * amp
        want.append((t0, t0 + 4.0 * dur, 10.0 * amp))
        t0 += 200.0
    got_hold, ep = parse_epochs(t, i)
    assert got_hold == 5.0 * hold
    assert [(round(e.start, 6), round(e.stop, 6), e.amp) for e in ep] == [(a, b, c) for a, b, c in want]


def test_rates_per_epoch_rest_and_spontaneous_firing():
    ep = [Epoch(500.0, 1000.0, 50.0), Epoch(1200.0, 1400.0, -50.0), Epoch(2000.0, 2500.0, 80.0)]
    # 4 spikes in epoch 1, 10 in epoch 3, none elsewhere: rest defined (the pre-stimulus median).
    v = _spike_train(list(np.linspace(550, 950, 4)) + list(np.linspace(2010, 2490, 10)))
    f = epoch_features(T, v, ep)
    assert [e["spikes"] for e in f["epochs"]] == [4, 0, 10]
    assert f["epochs"][0]["rate_hz"] == pytest.approx(8.0) and f["epochs"][2]["rate_hz"] == pytest.approx(20.0)
    assert f["rate_hz"] == pytest.approx(14.0)  # 14 spikes / 1 s of depolarising epochs
    assert f["rest_mV"] == -65.0 and f["spontaneous_hz"] == 0.0
    # One spike in a settled baseline window: the cell fires spontaneously, rest is undefined.
    f2 = epoch_features(T, _spike_train([1800.0, 2800.0]), ep)
    assert f2["rest_mV"] is None and f2["spontaneous_spikes"] == 2
    base = sum(b - a for a, b in baseline_windows(T, ep))
    assert f2["spontaneous_hz"] == pytest.approx(2000.0 / base)
    # A spike inside the settling time after an epoch (a rebound) is not spontaneous firing.
    f3 = epoch_features(T, _spike_train([1450.0]), ep)
    assert f3["rest_mV"] == -65.0 and f3["spontaneous_spikes"] == 0 and f3["spikes"] == 1
    # Nor is a rebound burst up to REBOUND_MS (300 ms) after a hyperpolarising epoch ends
    # (here 250 ms after it; a T-type rebound comes 50-200 ms after release).
    f4 = epoch_features(T, _spike_train([1645.0, 1650.0]), ep)
    assert f4["rest_mV"] == -65.0 and f4["spontaneous_spikes"] == 0 and f4["spikes"] == 2
    # No depolarising epoch: no rate (not zero).
    assert epoch_features(T, v, [ep[1]])["rate_hz"] is None


def test_the_rest_is_read_past_a_test_pulse_but_not_past_a_pre_pulse():
    """Levels placed by hand in each baseline window tell which one the rest is read from: past
    a 10 ms test pulse 20 ms into the sweep (the longest window before the step, 330-1000 ms),
    but before a 300 ms pre-pulse, whose after-effect (an Ih rebound) the next window may hold."""
    v = np.where(T < 20.0, -72.0, -70.0)  # the 20 ms before the pulse read 2 mV low (noise)
    test_pulse = [Epoch(20.0, 30.0, -50.0), Epoch(1000.0, 2000.0, 100.0)]
    assert baseline_windows(T, test_pulse)[:2] == [(0.0, 20.0), (330.0, 1000.0)]
    assert epoch_features(T, v, test_pulse)["rest_mV"] == -70.0
    pre_pulse = [Epoch(20.0, 320.0, -50.0), Epoch(1000.0, 2000.0, 100.0)]
    assert epoch_features(T, v, pre_pulse)["rest_mV"] == -72.0


def _shared(name):
    """A recording from the repo's data/recordings (compressed) or ../shared."""
    from hhjax.io import example_recording, load_recording

    pytest.importorskip("pyabf", reason="reading ABF needs the io extra (pyabf)")
    return load_recording(example_recording(name))


def test_dual_steps_and_spontaneous_firing_17o05028():
    rec = _shared("17o05028_ic_steps.abf")
    # SOURCES.md: step X = -50 + 10 k pA, a -50 pA epoch, then X again; fires at rest.
    for k in range(rec.n_sweeps):
        hold, ep = parse_epochs(rec.t, rec.i[k])
        x = -50.0 + 10.0 * k
        assert hold == 0.0
        amps = [round(e.amp) for e in ep]
        if x == 0:
            assert amps == [-50]
        elif x == -50:
            assert amps == [-50, -50]  # the -50 epoch and the second step merge
        else:
            assert amps == [x, -50, x] and all(e.kind == "step" for e in ep)
        f = epoch_features(rec.t, rec.v[k], ep)
        assert (f["rate_hz"] is None) == (x <= 0)
    # Sweep 5 (0 pA step) has no stimulus but spikes (spontaneous firing): no rest.
    hold, ep = parse_epochs(rec.t, rec.i[5])
    f = epoch_features(rec.t, rec.v[5], ep)
    assert f["spikes"] >= 3 and f["spontaneous_hz"] > 1.0 and f["rest_mV"] is None


def test_ramp_in_every_sweep_171116sh_0016():
    rec = _shared("171116sh_0016.abf")
    for k in range(1, rec.n_sweeps):
        hold, ep = parse_epochs(rec.t, rec.i[k])
        assert hold == pytest.approx(10.0 * (k - 1), abs=1e-3)
        ramp = ep[0]
        assert ramp.kind == "ramp" and ramp.start == pytest.approx(15.6, abs=0.1)
        assert ramp.amp_start == pytest.approx(0.0, abs=0.1) and ramp.amp_stop == pytest.approx(10.0, abs=0.1)
    hold, ep = parse_epochs(rec.t, rec.i[0])
    assert ep == []


def test_a_quiet_baseline_does_not_make_a_firing_cell_rest_17o05028():
    """The cell fires spontaneously at 0 pA holding in sweeps 0-9; in sweeps 10-15 the short
    pre-stimulus baseline happens to be spike-free. Across the recording no sweep at that
    holding current has a rest."""
    from hhjax.recordings.epochs import cell_rests

    rec = _shared("17o05028_ic_steps.abf")
    parsed = [parse_epochs(rec.t, i) for i in rec.i]
    feats = [epoch_features(rec.t, v, ep) for v, (_, ep) in zip(rec.v, parsed)]
    assert any(f["rest_mV"] is not None for f in feats)   # the per-sweep rule alone is fooled
    assert cell_rests(feats, [h for h, _ in parsed]) == [None] * rec.n_sweeps


def test_rebound_spikes_are_counted_after_release_only():
    """Spikes within REBOUND_MS of a hyperpolarising epoch's end are rebound spikes, by hand:
    one at +100 ms counts, one at +400 ms does not, and none counts once the next epoch starts."""
    from hhjax.recordings.epochs import REBOUND_MS

    assert REBOUND_MS == 300.0
    ep = [Epoch(100.0, 400.0, -100.0)]
    f = epoch_features(T, _spike_train([500.0, 800.0]), ep)
    assert f["rebound_spikes"] == 1 and f["spontaneous_spikes"] == 1
    ep2 = [Epoch(100.0, 400.0, -100.0), Epoch(450.0, 900.0, 50.0)]   # a step 50 ms after release
    assert epoch_features(T, _spike_train([500.0, 800.0]), ep2)["rebound_spikes"] == 0


def test_no_rebound_hint_on_cells_of_the_panel():
    """The hint to try a T-type model is given for rebound spikes on a silent baseline only:
    17o05028 (spikes after its -50 pA epochs, but it fires spontaneously and its second step
    follows at once) and File_axon_5 (hyperpolarising sweeps, no rebound) get none."""
    from hhjax.recordings.select import rebound_warning

    for name in ("17o05028_ic_steps.abf", "File_axon_5.abf"):
        assert rebound_warning(_shared(name), "pospischil") == ""


def test_fit_with_model_hints_at_a_t_type_model_for_rebound_spikes():
    from hhjax.io import Recording
    from hhjax.recordings import fit_with_model

    t = np.arange(0.0, 1000.0, 0.1)
    i = np.array([np.where((t >= 100) & (t < 400), a, 0.0) for a in (-100.0, -50.0)])
    v = np.full_like(i, -70.0)
    v[0, (t > 500) & (t < 501)] = 20.0
    rec = Recording(t, v, i, (0, 1), 1e4, "lts.abf")
    tiny = {"generations": 1, "population": 4, "steps": 0}
    with warnings.catch_warnings():   # this toy cell never fires in a step, which the fit also says
        warnings.filterwarnings("ignore", message=".*no spikes in the fitted sweeps")
        with pytest.warns(UserWarning, match=r"lts.abf: the cell fires rebound spikes .*sweep 0, .*pospischil_lts"):
            fit_with_model(rec, "pospischil", search=tiny, key=0, progress=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-500.0, 500.0, allow_nan=False), min_size=1, max_size=12))
def test_current_levels_chain_currents_within_the_tolerance(currents):
    """Sorted currents at most CLEAN_TOL_PA apart share a level; a wider gap starts the next."""
    from hhjax.recordings.epochs import CLEAN_TOL_PA, current_levels

    level = current_levels(currents)
    order = np.argsort(currents, kind="stable")
    x, lv = np.asarray(currents)[order], level[order]
    assert lv[0] == 0
    for a, b, la, lb in zip(x[:-1], x[1:], lv[:-1], lv[1:]):
        assert lb == la + (b - a > CLEAN_TOL_PA)


def test_one_stray_spike_takes_one_sweeps_rest_and_two_take_every_rest():
    """File_axon_5 rests quietly at 0 pA holding on all 9 sweeps. A spike pasted 200 ms after
    sweep 3's step ends (a synaptic event, an afterdischarge) leaves that sweep without a rest
    and the other eight with theirs; pasted into two sweeps, the cell fires spontaneously at
    that holding current and no sweep has a rest."""
    from hhjax.recordings.epochs import cell_rests

    rec = _shared("File_axon_5.abf")
    parsed = [parse_epochs(rec.t, i) for i in rec.i]
    holds = [h for h, _ in parsed]

    def rests(spiked):
        v = rec.v.copy()
        for k in spiked:
            stop = parsed[k][1][-1].stop
            v[k] += 90.0 * np.clip(1.0 - np.abs(rec.t - (stop + 200.0)) / 0.5, 0.0, None)
        return cell_rests([epoch_features(rec.t, x, ep) for x, (_, ep) in zip(v, parsed)], holds)

    clean = rests([])
    assert all(r is not None for r in clean)
    assert rests([3]) == clean[:3] + [None] + clean[4:]
    assert rests([3, 6]) == [None] * rec.n_sweeps
