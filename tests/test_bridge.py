"""Series resistance (an unbalanced bridge), measured from the voltage jumps at current steps
and removed before a recording is fitted or evaluated (:mod:`hhjax.recordings.bridge`).

References: a model simulated by hhjax with a known drop added (the estimate must find it,
and nothing where none was added), and the pyABF recordings, whose first sample after a
100 pA step edge jumps by 0.9-1.0 mV (read off the trace by hand: about 10 MΩ; the fast
electrode component in the next samples adds 1-3 MΩ).
"""

from __future__ import annotations

import numpy as np
import pytest

from hhjax.io import Recording
from hhjax.models.pospischil import RS
from hhjax.recordings import evaluate
from hhjax.recordings.bridge import MIN_RS_MOHM, balance_bridge, series_resistance
from hhjax.recordings.evaluation import model_rest
from hhjax.simulation.entry import simulate

DT = 0.05


def _cell(amps=(-100.0, 50.0, 150.0, 300.0)):
    """The RS model at 20 kHz, steps from 50 to 350 ms, from its rest (no bridge)."""
    n = int(500 / DT)
    t = np.arange(n) * DT
    i = np.array([np.where((t >= 50.0) & (t < 350.0), a, 0.0) for a in amps])
    v = np.asarray(simulate(RS, i, duration=n * DT, dt=DT, y0=float(model_rest(RS)), spike_threshold=None).v)
    return Recording(t, v[:, :n], i, tuple(range(len(amps))), 1000.0 / DT, "rs.npz")


@pytest.fixture(scope="module")
def cell():
    return _cell()


# 8 step edges, less the 300 pA sweep's last: a spike peaks 1.65 ms after it, so its
# upstroke lies in the window after the edge (found with hhjax's detector, and the only
# peak within 3 ms of an edge).
EDGES_WITHOUT_SPIKES = 7


@pytest.mark.parametrize("rs", [5.0, 20.0])
def test_a_known_drop_is_found_and_removed(cell, rs):
    bridged = Recording(cell.t, cell.v + rs * cell.i / 1000.0, cell.i, cell.sweeps, cell.sampling_rate_hz, "x")
    found, n = series_resistance(bridged)
    assert n == EDGES_WITHOUT_SPIKES and abs(found - rs) < 0.5
    fixed = balance_bridge(bridged)
    assert fixed.metadata["bridge_corrected_MOhm"] == pytest.approx(found)
    assert np.max(np.abs(fixed.v - cell.v)) < 0.5 * 300 / 1000.0 + 1e-9   # within 0.5 MΩ × 300 pA
    assert balance_bridge(fixed) is fixed                                 # once, not twice


def test_no_drop_no_change(cell):
    found, n = series_resistance(cell)
    assert n == EDGES_WITHOUT_SPIKES and abs(found) < MIN_RS_MOHM
    kept = balance_bridge(cell)   # the voltage as recorded, marked balanced (0 MΩ), so not measured again
    assert np.array_equal(kept.v, cell.v) and kept.metadata["bridge_corrected_MOhm"] == 0.0
    assert balance_bridge(kept) is kept


def test_no_step_edges_no_estimate():
    t = np.arange(0.0, 300.0, DT)
    ramp = np.clip(t - 50.0, 0.0, None)[None]                 # a ramp has no edge
    rs, n = series_resistance(Recording(t, -70.0 + 0.01 * ramp, ramp, (0,), 1000.0 / DT))
    assert n == 0 and np.isnan(rs)


def test_edges_inside_a_spike_train_are_left_out():
    """Slow ramps that each end with one edge while the cell fires (as the 4 kHz ramp cells
    of scripts/synthetic_cells.py do), here 0.6 ms after a spike's peak, so the window
    before every edge holds a downstroke. No bridge was added, so no estimate may come of
    them; before such edges were left out, the median over them read tens of MΩ."""
    n = int(600 / DT)
    t = np.arange(n) * DT
    ramp = 450.0 * t / 500.0

    def run(i):
        return np.asarray(simulate(RS, i, duration=n * DT, dt=DT, y0=float(model_rest(RS)),
                                   spike_threshold=None).v)[..., :n]
    from hhjax.analysis.spikes import spike_peaks

    peaks = spike_peaks(t, run(ramp))[-7:-1]
    i = np.array([np.where(t < t[p] + 0.6, ramp, 0.0) for p in peaks])  # the trace before each edge is ramp's
    ramps = Recording(t, run(i), i, tuple(range(len(peaks))), 1000.0 / DT, "ramps.npz")
    rs, used = series_resistance(ramps)
    assert used == 0 and np.isnan(rs)
    assert balance_bridge(ramps).metadata["bridge_corrected_MOhm"] == 0.0


def test_evaluation_compares_the_balanced_voltage(cell):
    """A model evaluated against its own trace with a 20 MΩ drop added: after balancing, the
    observed rests are the model's own (the drop at holding 0 pA is 0), and the output says
    what was removed."""
    bridged = Recording(cell.t, cell.v + 0.02 * cell.i, cell.i, cell.sweeps, cell.sampling_rate_hz, "x")
    out = evaluate(RS, bridged, dt=DT)
    assert out["bridge_corrected_MOhm"] == pytest.approx(20.0, abs=0.5)
    assert evaluate(RS, cell, dt=DT)["bridge_corrected_MOhm"] == 0.0
    assert all(r["observed_spikes"] == r["predicted_spikes"] for r in out["sweeps"])


@pytest.mark.parametrize("name", ["18711001.abf", "171116sh_0018.abf", "17o05028_ic_steps.abf"])
def test_the_pyabf_recordings_carry_about_ten_megaohms(name):
    from hhjax.io import example_recording, load_recording

    pytest.importorskip("pyabf", reason="reading ABF needs the io extra (pyabf)")
    rs, n = series_resistance(load_recording(example_recording(name)))
    assert n >= 50 and 9.0 < rs < 15.0


def test_a_given_resistance_is_removed_as_given_and_bad_ones_are_one_line(cell):
    bridged = Recording(cell.t, cell.v + 0.02 * cell.i, cell.i, cell.sweeps, cell.sampling_rate_hz, "x")
    kept = balance_bridge(bridged, 0.0)
    assert kept.metadata["bridge_corrected_MOhm"] == 0.0 and np.array_equal(kept.v, bridged.v)
    assert balance_bridge(kept) is kept              # decided once: "auto" does not measure it again
    np.testing.assert_allclose(balance_bridge(bridged, 20.0).v, cell.v, atol=1e-9)
    for bad in (-1.0, float("nan"), "ten", None):
        with pytest.raises(ValueError, match="bridge: expected 'auto' or a series resistance"):
            balance_bridge(bridged, bad)


def test_hhjax_evaluate_uses_the_fits_own_correction(cell, tmp_path):
    """hhjax fit --bridge 0 fits the voltage as recorded; hhjax evaluate then compares the
    same voltage (0 MΩ from fit.json), not a newly measured 20 MΩ; --bridge overrides it."""
    import json

    from hhjax.cli import main

    bridged = Recording(cell.t, cell.v + 0.02 * cell.i, cell.i, cell.sweeps, cell.sampling_rate_hz, "x")
    path = bridged.to_npz(tmp_path / "cell.npz")
    fit_json, ev = tmp_path / "fit.json", tmp_path / "eval.json"
    tiny = ["--generations", "1", "--population", "4", "--no-checkpoint"]
    assert main(["fit", str(path), "--model", "pospischil", "--bridge", "0", "--out", str(fit_json), *tiny]) == 0
    assert json.loads(fit_json.read_text())["settings"]["bridge_corrected_MOhm"] == 0.0
    assert main(["evaluate", str(fit_json), str(path), "--out", str(ev)]) == 0
    assert json.loads(ev.read_text())["bridge_corrected_MOhm"] == 0.0
    assert main(["evaluate", str(fit_json), str(path), "--bridge", "auto", "--out", str(ev)]) == 0
    assert json.loads(ev.read_text())["bridge_corrected_MOhm"] == pytest.approx(20.0, abs=0.5)
    assert main(["evaluate", str(fit_json), str(path), "--bridge", "-3"]) == 2


def test_an_offset_is_named_as_one_and_ljp_removes_it_for_fit_and_evaluate(cell, tmp_path, capsys):
    """A +60 mV offset (rest near -10 mV, spikes of a normal height on it) is warned about
    as an offset, not a gain mistake; ``--ljp 60`` subtracts it before the fit, fit.json
    records it, and hhjax evaluate applies it again unless told otherwise. Reference: the
    RS model's own rest, which the corrected rests must be."""
    import json
    import warnings

    from hhjax.cli import main
    from hhjax.io import ImplausibleVoltageWarning, load_recording

    shifted = Recording(cell.t, cell.v + 60.0, cell.i, cell.sweeps, cell.sampling_rate_hz, "x")
    path = shifted.to_npz(tmp_path / "cell.npz")
    with pytest.warns(ImplausibleVoltageWarning, match="likely offset") as w:
        load_recording(path)
    assert "--ljp" in str(w[0].message) and "gain" not in str(w[0].message)
    fit_json, ev = tmp_path / "fit.json", tmp_path / "eval.json"
    tiny = ["--generations", "1", "--population", "4", "--no-checkpoint", "--bridge", "0"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["fit", str(path), "--model", "pospischil", "--ljp", "60", "--out", str(fit_json), *tiny]) == 0
    out = capsys.readouterr()
    assert "implausible" not in out.err and "subtracted 60 mV" in out.out
    assert json.loads(fit_json.read_text())["settings"]["ljp_corrected_mV"] == 60.0
    true_rest = float(model_rest(RS))
    for extra, shift in (([], 0.0), (["--ljp", "0"], 60.0)):
        assert main(["evaluate", str(fit_json), str(path), "--out", str(ev), *extra]) == 0
        result = json.loads(ev.read_text())
        assert result["settings"]["ljp_corrected_mV"] == 60.0 - shift
        rests = [s["observed_rest_mV"] for s in result["sweeps"]]
        np.testing.assert_allclose(rests, true_rest + shift, atol=0.5)
    assert main(["evaluate", str(fit_json), str(path), "--ljp", "nan"]) == 2
    assert "--ljp: expected a finite offset" in capsys.readouterr().err
