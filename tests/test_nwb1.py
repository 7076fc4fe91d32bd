"""NWB 1 files in the Allen Cell Types Database's layout (``ephys.nwb``), written with h5py
(scripts/allen_layout_cells.py's writer) as the AllenSDK's ``NwbDataSet`` reads them: the
expected values are the arrays written, in the file's units, converted by hand."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

from hhjax.io import load_recording

h5py = pytest.importorskip("h5py")

RATE = 20_000.0
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def write_allen(path, sweeps, version="1.1"):
    """scripts/allen_layout_cells.py's writer, in the AllenSDK's layout (see there)."""
    spec = importlib.util.spec_from_file_location("allen_layout_cells", SCRIPTS / "allen_layout_cells.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_nwb1(path, sweeps, version, rate_hz=RATE)


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


def test_step_sweeps_asked_for_are_cut_to_one_length_where_only_baseline_differs(tmp_path):
    """Two Long Square sweeps whose steps end alike, one 1000 samples longer at its holding
    current: asked for by number, they are one recording of the shorter length, as they are
    when the reader chooses (an error before: "differ in length")."""
    p = tmp_path / "ephys.nwb"
    v, i = _cell(100.0, 4000, 3)
    longer = (np.r_[v, np.full(1000, v[-1])], np.r_[i, np.zeros(1000)])
    write_allen(p, [(10, "Long Square", v, i, 1e-3, "I"), (12, "Long Square", *longer, 1e-3, "I")])
    for sweeps in (None, [10, 12]):
        with pytest.warns(UserWarning, match="1 Long Square sweep longer than the shortest"):
            rec = load_recording(p, sweeps=sweeps)
        assert rec.sweeps == (10, 12) and rec.n_samples == 4000


def test_allen_names_tell_protocols_apart_even_one_sweep_each(tmp_path):
    """NWB 1 names are the Allen stimulus vocabulary: a ramp and a square of one length each,
    with no name shared, are still two protocols, and the square (more spikes in its step)
    is the recording."""
    p = tmp_path / "ephys.nwb"
    write_allen(p, [(1, "Ramp", *_cell(100.0, 3000, 2), 1e-3, "I"),
                    (2, "Square - 2s Suprathreshold", *_cell(200.0, 3000, 8), 1e-3, "I")])
    with pytest.warns(UserWarning, match="using Square - 2s Suprathreshold"):
        rec = load_recording(p)
    assert rec.sweeps == (2,)
