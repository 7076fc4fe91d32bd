"""NWB 1 files in the Allen Cell Types Database's layout (``ephys.nwb``), written here with
h5py as the AllenSDK's ``NwbDataSet`` reads them: the expected values are the arrays written,
in the file's units, converted by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hhjax.io import load_recording

h5py = pytest.importorskip("h5py")

RATE = 20_000.0


def _series(f, where, data, unit, conversion, rate, name):
    g = f.create_group(where)
    d = g.create_dataset("data", data=np.asarray(data, np.float32))
    d.attrs["unit"], d.attrs["conversion"] = unit, conversion
    g.create_dataset("starting_time", data=0.0).attrs["rate"] = rate
    g.create_dataset("aibs_stimulus_name", data=name.encode())
    return g


def _epoch(f, where, stim, resp, start, count):
    for side, target in (("stimulus", stim), ("response", resp)):
        g = f.create_group(f"{where}/{side}")
        g.create_dataset("idx_start", data=start)
        g.create_dataset("count", data=count)
        g["timeseries"] = h5py.SoftLink(target)


def write_allen(path, sweeps, version="1.1"):
    """``sweeps``: (number, protocol, v in V, i in A, scale, kind) with kind "I", "V"
    (voltage clamp), "cut" (its experiment ends 100 samples early) or "nan" (its last 100
    samples NaN, the experiment's count unchanged); ``scale`` divides the
    stored values and is their ``conversion`` (an older pipeline's files: stored as SI with a
    wrong ``conversion``, which must be ignored)."""
    with h5py.File(path, "w") as f:
        f.create_dataset("nwb_version", data=b"NWB-1.0.5")
        if version is not None:
            f.create_dataset("general/generated_by", data=[b"version", version.encode(), b"program", b"pipeline"])
        for n, name, v, i, scale, kind in sweeps:
            stored = 1.0 if version is None else scale
            if kind == "nan":
                v = np.where(np.arange(v.size) >= v.size - 100, np.nan, v)
            resp = _series(f, f"acquisition/timeseries/Sweep_{n}", v / stored, "Volts", scale, RATE, name)
            stim = _series(f, f"stimulus/presentation/Sweep_{n}", i / stored, "Volts" if kind == "V" else "Amps",
                           scale, RATE, name)
            _epoch(f, f"epochs/Sweep_{n}", stim.name, resp.name, 0, v.size)
            _epoch(f, f"epochs/Experiment_{n}", stim.name, resp.name, 200, v.size - 200 - (100 if kind == "cut" else 0))


def _cell(amp_pA, n_samples, spikes):
    """A sweep: a 10 ms test pulse, then a step of ``amp_pA`` with ``spikes`` 90 mV spikes."""
    t = np.arange(n_samples) / RATE * 1e3
    i = np.where((t >= 5) & (t < 15), -20.0, 0.0) + np.where((t >= 50) & (t < t[-1] - 50), amp_pA, 0.0)
    v = -70.0 + 0.05 * i
    for s in np.linspace(60, t[-1] - 60, spikes) if spikes else []:
        v = v + 90.0 * np.clip(1 - np.abs(t - s) / 0.5, 0, None)
    return v * 1e-3, i * 1e-12


def test_allen_file_reads_its_long_square_sweeps(tmp_path):
    """The f–I protocol is chosen over the noise sweeps (more spikes, another length); the
    voltage-clamp sweep and the two cut short are left out, each kind with a one-line warning;
    values are the written ones in mV and pA; sweeps keep the file's numbers."""
    p = tmp_path / "ephys.nwb"
    steps = {10: (-50.0, 0), 12: (100.0, 3), 14: (200.0, 9)}
    sweeps = [(n, "Long Square", *_cell(a, 4000, k), 1e-3, "I") for n, (a, k) in steps.items()]
    sweeps += [(20, "Noise 1", *_cell(150.0, 9000, 40), 1e-3, "I"),
               (3, "Test", *_cell(0.0, 1000, 0), 1e-3, "V"),
               (16, "Long Square", *_cell(300.0, 4000, 12), 1e-3, "cut"),
               (18, "Long Square", *_cell(350.0, 4000, 14), 1e-3, "nan")]
    write_allen(p, sweeps)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        rec = load_recording(p)
    assert rec.sweeps == (10, 12, 14) and rec.sampling_rate_hz == RATE and rec.metadata["protocol"] == "Long Square"
    for k, (n, (a, spikes)) in enumerate(steps.items()):
        v, i = _cell(a, 4000, spikes)
        np.testing.assert_allclose(rec.v[k], np.float32(v / 1e-3) * 1e-3 * 1e3, rtol=1e-6)
        np.testing.assert_allclose(rec.i[k], np.float32(i / 1e-3) * 1e-3 * 1e12, rtol=1e-6, atol=1e-9)
    messages = [str(x.message) for x in w]
    clamp = [m for m in messages if "voltage-clamp" in m]
    cut = [m for m in messages if "cut short" in m]
    assert len(clamp) == 1 and clamp[0].startswith(str(p)) and clamp[0].endswith(": 3") and "\n" not in clamp[0]
    assert len(cut) == 1 and cut[0].endswith(": 16, 18")
    noise = load_recording(p, sweeps=[20])
    assert noise.sweeps == (20,) and noise.n_samples == 9000 and noise.metadata["protocol"] == "Noise 1"


def test_without_the_step_protocol_the_common_rule_chooses(tmp_path):
    """No "Long Square": the protocol with the most spikes during its steps is the recording,
    as for NWB 2 (hhjax.io.protocols), and the warning names the choice."""
    p = tmp_path / "ephys.nwb"
    write_allen(p, [(1, "Ramp", *_cell(100.0, 6000, 2), 1e-3, "I"),
                    (2, "Square - 2s Suprathreshold", *_cell(200.0, 3000, 8), 1e-3, "I"),
                    (3, "Square - 2s Suprathreshold", *_cell(250.0, 3000, 10), 1e-3, "I")])
    with pytest.warns(UserWarning, match="using Square - 2s Suprathreshold"):
        rec = load_recording(p)
    assert rec.sweeps == (2, 3)


def test_an_early_pipeline_file_is_read_as_stored(tmp_path):
    """Files without a pipeline version of 1.1 or later hold volts and amperes as stored and a
    ``conversion`` that is wrong (the AllenSDK's rule): it is not applied."""
    p = tmp_path / "old.nwb"
    write_allen(p, [(5, "Long Square", *_cell(100.0, 4000, 2), 1e-3, "I")], version=None)
    rec = load_recording(p)
    assert rec.metadata["conversion_applied"] is False
    assert np.median(rec.v[0, :50]) == pytest.approx(-70.0, abs=1e-3)
    assert rec.i.max() == pytest.approx(100.0, rel=1e-5)


def test_a_file_without_current_clamp_sweeps_is_one_line(tmp_path):
    p = tmp_path / "vclamp.nwb"
    write_allen(p, [(1, "Test", *_cell(0.0, 1000, 0), 1e-3, "V")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError) as ei:
            load_recording(p)
    msg = str(ei.value)
    assert msg.startswith(str(p)) and "\n" not in msg and "no current-clamp sweep" in msg
