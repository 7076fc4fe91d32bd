"""Files holding several protocols of one cell (sweeps of different lengths): NWB and neo
files give the protocol chosen by hhjax.io.protocols' one rule (most spikes during
depolarising steps), with a warning that names it and the others; sweeps= picks any."""

from __future__ import annotations

import datetime
import warnings

import numpy as np
import pytest

from hhjax.io import load_recording
from hhjax.io.protocols import spikes_in_steps

RATE = 10_000.0


def _sweep(n, step, amp, spike_ms=()):
    """-65 mV with 0.5 ms, +90 mV spikes at ``spike_ms``; a step of ``amp`` pA over ``step``
    (sample indices)."""
    t = np.arange(n) * 1000.0 / RATE
    v = np.full(n, -65.0)
    for s in spike_ms:
        v[(t >= s) & (t < s + 0.5)] += 90.0
    i = np.zeros(n)
    i[step[0]:step[1]] = amp
    return v, i


# 'Ramp-like' short sweeps: more sweeps, their spikes outside the step (hand count: 0 in
# steps); long steps: fewer sweeps, 2 + 3 spikes inside the step.
SHORT = [_sweep(300, (100, 200), 50.0 * (k + 1), spike_ms=(25.0,)) for k in range(3)]
LONG = [_sweep(600, (100, 500), 100.0, spike_ms=(15.0, 35.0)),
        _sweep(600, (100, 500), 200.0, spike_ms=(15.0, 25.0, 40.0))]


def test_spikes_in_steps_counts_only_spikes_during_the_step():
    assert [spikes_in_steps(v, i, RATE) for v, i in SHORT] == [0, 0, 0]
    assert [spikes_in_steps(v, i, RATE) for v, i in LONG] == [2, 3]


def _write_nwb(path, sweeps, described=("v", "i")):
    """An NWB 2 file of one electrode with ``sweeps``: (number, stimulus description, v in mV,
    i in pA), named as MIES names the Allen Institute's (DANDI's) series; the description
    is written on the voltage and/or the stimulus series (``described``)."""
    pynwb = pytest.importorskip("pynwb")
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

    nwb = pynwb.NWBFile(session_description="protocols", identifier="toy",
                        session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    el = nwb.create_icephys_electrode(name="electrode_0", description="toy", device=nwb.create_device(name="amp"))
    for n, name, v, i in sweeps:
        nwb.add_acquisition(CurrentClampSeries(name=f"data_{n:05d}_AD0", data=v * 1e-3, electrode=el, rate=RATE,
                                               gain=1.0, sweep_number=np.uint32(n),
                                               stimulus_description=name if "v" in described else "N/A"))
        nwb.add_stimulus(CurrentClampStimulusSeries(name=f"data_{n:05d}_DA0", data=i * 1e-12, electrode=el,
                                                    rate=RATE, gain=1.0, sweep_number=np.uint32(n),
                                                    stimulus_description=name if "i" in described else "N/A"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pynwb.NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)
    return path


def test_nwb_with_protocols_of_different_lengths_gives_the_one_that_samples_the_fi_curve(tmp_path):
    names = ["Short"] * 3 + ["LongSquare"] * 2
    p = _write_nwb(tmp_path / "cell.nwb", [(k, n, v, i) for k, (n, (v, i)) in enumerate(zip(names, SHORT + LONG))])
    with pytest.warns(UserWarning) as w:
        rec = load_recording(p)
    assert rec.sweeps == (3, 4) and rec.n_samples == 600 and rec.metadata["protocol"] == "LongSquare"
    np.testing.assert_allclose(rec.v[1], LONG[1][0], atol=1e-9)
    message = " ".join(str(x.message) for x in w)
    assert "using LongSquare (sweeps 3, 4, 0.06 s) (5 spikes" in message and "Short (sweeps 0-2, 0.03 s) (0)" in message
    assert "sweeps=[...]" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit choice is taken without a word
        assert load_recording(p, sweeps=[0, 2]).sweeps == (0, 2)
    with pytest.raises(ValueError, match="different lengths"):
        load_recording(p, sweeps=[0, 3])


def test_neo_file_with_segments_of_different_lengths(tmp_path):
    neo = pytest.importorskip("neo")
    pq = pytest.importorskip("quantities")
    pytest.importorskip("scipy")
    block = neo.Block()
    for k, (v, i) in enumerate(SHORT[:1] + LONG + SHORT[1:]):
        seg = neo.Segment(index=k)
        seg.analogsignals.append(neo.AnalogSignal(v[:, None], units="mV", sampling_rate=RATE * pq.Hz, name="Vm"))
        seg.analogsignals.append(neo.AnalogSignal(i[:, None], units="pA", sampling_rate=RATE * pq.Hz, name="I"))
        block.segments.append(seg)
    p = tmp_path / "cell.mat"
    neo.io.NeoMatlabIO(str(p)).write_block(block)
    with pytest.warns(UserWarning, match=r"using segments 1, 2 \(0.06 s\) \(5 spikes"):
        rec = load_recording(p)
    assert rec.sweeps == (1, 2) and rec.n_samples == 600
    np.testing.assert_allclose(rec.i[0], LONG[0][1], atol=1e-9)
    assert load_recording(p, sweeps=[0, 3]).sweeps == (0, 3)
    with pytest.raises(ValueError, match="differ in length"):
        load_recording(p, sweeps=[0, 1])


def test_allen_mies_file_gives_its_long_square_sets_and_leaves_out_sweeps_cut_short(tmp_path):
    """Allen's long steps come in three stimulus sets (below, at and above rheobase: the
    ontology's "Long Square"), one recording where they agree in length; its noise sweep holds
    more spikes during its steps (hand count: 6 against 2 + 3) and is left out all the same;
    a sweep MIES padded with zeros after the recording stopped, and one padded with NaN, are
    left out, each named."""
    zeros = _sweep(600, (100, 500), 300.0, spike_ms=(15.0,))
    zeros[0][400:] = 0.0
    nans = _sweep(600, (100, 500), 350.0, spike_ms=(15.0,))
    nans[0][450:] = np.nan
    sweeps = [(1, "X1PS_SubThresh_DA_0", *_sweep(600, (100, 500), -50.0)),
              (2, "X3LP_Rheo_DA_0", *LONG[0]),
              (3, "X4PS_SupraThresh_DA_0", *LONG[1]),
              (4, "C1NSSEED_1_DA_0", *_sweep(900, (100, 800), 150.0, spike_ms=(20, 30, 40, 50, 60, 70))),
              (5, "X4PS_SupraThresh_DA_0", *zeros),
              (6, "X4PS_SupraThresh_DA_0", *nans)]
    p = _write_nwb(tmp_path / "mies.nwb", sweeps)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        rec = load_recording(p)
    assert rec.sweeps == (1, 2, 3) and rec.n_samples == 600
    np.testing.assert_allclose(rec.v[2], LONG[1][0], atol=1e-9)
    np.testing.assert_allclose(rec.i[0], sweeps[0][3], atol=1e-6)
    messages = [str(x.message) for x in w]
    assert any("Long Square sweeps" in m and "C1NSSEED_1_DA_0: 4" in m for m in messages)
    assert any("cut short" in m and m.endswith("left out: 5, 6") for m in messages)
    assert load_recording(p, sweeps=[4]).n_samples == 900  # any protocol, asked for
    only_stimulus = _write_nwb(tmp_path / "stim_named.nwb", sweeps, described=("i",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert load_recording(only_stimulus).sweeps == (1, 2, 3)  # the stimulus series names the protocol
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="every sweep asked for was cut short"):
            load_recording(p, sweeps=[5])


def test_allen_step_sets_of_different_lengths_are_cut_to_the_shortest_where_only_baseline_differs(tmp_path):
    """The subthreshold set's sweeps run 200 samples longer, at their holding current, than
    the suprathreshold set's: cut to 600 samples, the two are one recording. Where a longer
    sweep's step runs past 600 samples, nothing is cut and the protocol rule chooses."""
    long_sub = _sweep(800, (100, 500), -50.0)
    sweeps = [(1, "X1PS_SubThresh_DA_0", *long_sub), (2, "X4PS_SupraThresh_DA_0", *LONG[0]),
              (3, "X4PS_SupraThresh_DA_0", *LONG[1])]
    with pytest.warns(UserWarning, match="1 Long Square sweep longer than the shortest"):
        rec = load_recording(_write_nwb(tmp_path / "cut.nwb", sweeps))
    assert rec.sweeps == (1, 2, 3) and rec.n_samples == 600
    np.testing.assert_allclose(rec.i[0], long_sub[1][:600], atol=1e-6)
    late = _sweep(800, (100, 700), -50.0)
    with pytest.warns(UserWarning, match="protocols of different sweep lengths"):
        rec = load_recording(_write_nwb(tmp_path / "late.nwb", [(1, "X1PS_SubThresh_DA_0", *late)] + sweeps[1:]))
    assert rec.sweeps == (2, 3)


def test_names_a_rig_wrote_name_groups_but_do_not_split_them(tmp_path):
    """A lab's own writer may describe each sweep by its step ("step +100 pA"): NWB 2 groups
    sweeps by length and rate, so the two steps stay one protocol beside sweeps of another
    length, whether or not those share a name ("noise" here), and are chosen together (each
    alone was a protocol before); the warning names each group by the names in it."""
    for others in ([(0, "pulse 50 pA", *SHORT[0])], [(k, "noise", *SHORT[k]) for k in range(3)]):
        sweeps = others + [(5, "step +100 pA", *LONG[0]), (6, "step +200 pA", *LONG[1])]
        with pytest.warns(UserWarning, match=r"using step \+100 pA, step \+200 pA \(sweeps 5, 6, 0.06 s\) \(5 spikes"):
            rec = load_recording(_write_nwb(tmp_path / f"labelled{len(others)}.nwb", sweeps))
        assert rec.sweeps == (5, 6) and rec.n_samples == 600


def test_a_file_of_many_long_sweeps_is_scored_one_sweep_at_a_time(tmp_path):
    """2 s noise sweeps (100 kHz, 1.6 MB a channel in float64) beside two short step sweeps:
    the steps are the recording, and choosing them holds one noise sweep at a time, so the
    memory it takes does not grow with the number of noise sweeps (it grew 3-fold from 4 to
    12 when every sweep was read before the choice)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    steps = [(100 + k, "steps", *sweep) for k, sweep in enumerate(LONG)]

    def peak_bytes(n_noise):
        noise = [(k, "noise", -65.0 + rng.normal(0.0, 1.0, 200_000), rng.normal(0.0, 50.0, 200_000))
                 for k in range(n_noise)]
        p = _write_nwb(tmp_path / f"n{n_noise}.nwb", noise + steps)
        tracemalloc.start()
        try:
            with pytest.warns(UserWarning, match="using steps"):
                rec = load_recording(p)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert rec.sweeps == (100, 101)
        return peak

    few, many = peak_bytes(4), peak_bytes(12)
    assert many < 1.3 * few, (few, many)


def test_a_file_of_one_protocol_reads_each_series_once(tmp_path, monkeypatch):
    """Sweeps that declare one length and rate leave no protocol to choose: each series is
    read once, for the recording, not first for a score as well."""
    from hhjax.io import nwb2

    p = _write_nwb(tmp_path / "one.nwb", [(k, "steps", *sweep) for k, sweep in enumerate(LONG)])
    reads = []
    real = nwb2._series_values
    monkeypatch.setattr(nwb2, "_series_values", lambda path, s: reads.append(s.name) or real(path, s))
    assert load_recording(p).sweeps == (0, 1)
    assert sorted(reads) == ["data_00000_AD0", "data_00000_DA0", "data_00001_AD0", "data_00001_DA0"]
