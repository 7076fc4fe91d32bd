"""Tests for hhjax.io: loading the real recordings, resampling, round trips, errors.

The recordings come from the repo's data/recordings (or ../shared/data/recordings),
through hhjax.io.example_recording."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from hhjax.io import (ImplausibleCurrentWarning, ImplausibleVoltageWarning, Recording, example_recording,
                      load_recording, save_json_atomic, write_atomic)
from hhjax.io.sources import open_stream


def _find(name):
    try:
        return example_recording(name)
    except FileNotFoundError:
        return None


def _data(name):
    """Path of a real recording (the repo's copy, else ../shared); skips if neither has it."""
    path = _find(name)
    if path is None:
        pytest.skip(f"{name} is neither in data/recordings nor in ../shared/data/recordings")
    return path

# file: (n_sweeps, n_samples, sampling rate Hz, rest-voltage range mV) from SOURCES.md
EXPECTED = {
    "18711001.abf": (30, 30000, 20000.0, (-70.0, -62.0)),
    "171116sh_0018.abf": (17, 60000, 20000.0, (-66.0, -58.0)),
    "File_axon_5.abf": (9, 20000, 20000.0, (-77.0, -66.0)),
    "current.txt": (1, 12000, 4000.0, (-75.0, -63.0)),
}


needs_data = pytest.mark.skipif(
    any(_find(name) is None for name in EXPECTED),
    reason=f"needs {', '.join(EXPECTED)} from data/recordings or ../shared/data/recordings")


@pytest.fixture(scope="module")
def recs():
    return {name: load_recording(_data(name)) for name in EXPECTED}


def _at(rec, t_ms):
    """Column index of time t_ms."""
    return int(np.argmin(np.abs(rec.t - t_ms)))


def _edges(i_row, t):
    """Times (ms) where a current trace changes value."""
    return t[1:][np.diff(i_row) != 0]


def _one_line(excinfo, path):
    msg = str(excinfo.value)
    assert "\n" not in msg
    assert msg.startswith(str(path)), msg
    return msg


# ------------------------------------------------------------------ shared files

@needs_data
@pytest.mark.parametrize("name", list(EXPECTED))
def test_shapes_rates_and_rest(recs, name):
    n_sweeps, n_samples, fs, (lo, hi) = EXPECTED[name]
    rec = recs[name]
    assert rec.v.shape == rec.i.shape == (n_sweeps, n_samples)
    assert rec.t.shape == (n_samples,)
    assert rec.sampling_rate_hz == fs
    assert rec.dt == pytest.approx(1000.0 / fs)
    assert rec.n_sweeps == n_sweeps and rec.sweeps == tuple(range(n_sweeps))
    assert rec.duration == pytest.approx(n_samples * 1000.0 / fs)
    assert rec.t[0] == pytest.approx(0.0) and np.allclose(np.diff(rec.t), rec.dt)
    assert rec.metadata["units"] == {"t": "ms", "v": "mV", "i": "pA"}
    assert Path(rec.source).name in (name, name + ".xz", name + ".gz")  # repo copies: .xz
    rest = np.median(rec.v[:, : int(20 / rec.dt)])  # before any step
    assert lo < rest < hi
    assert np.isfinite(rec.v).all() and np.isfinite(rec.i).all()
    assert not rec.v.flags.writeable


@needs_data
def test_18711001_command_steps(recs):
    rec = recs["18711001.abf"]
    assert rec.metadata["protocol"] == "FICurve_Hyperpolarizing_KL"
    assert rec.metadata["format"] == "abf"
    for k in (0, 1, 7, 15, 29):
        i = rec.i[k]
        assert i[_at(rec, 10)] == 0
        assert i[_at(rec, 100)] == pytest.approx(-100.0)
        assert i[_at(rec, 600)] == 0
        assert i[_at(rec, 1000)] == pytest.approx(10.0 * k)
        assert i[_at(rec, 1400)] == 0
        edges = _edges(i, rec.t)
        expect = [23.4, 323.4] + ([823.4, 1323.4] if k else [])
        np.testing.assert_allclose(edges, expect, atol=0.06)


@needs_data
def test_171116sh_command_steps(recs):
    rec = recs["171116sh_0018.abf"]
    for k in (0, 4, 16):
        x = -100.0 + 25.0 * k
        i = rec.i[k]
        assert i[_at(rec, 400)] == pytest.approx(x)
        assert i[_at(rec, 900)] == 0
        assert i[_at(rec, 1400)] == pytest.approx(-100.0)
        assert i[_at(rec, 1900)] == pytest.approx(x)
        assert i[_at(rec, 2500)] == 0
        first = 146.85 if x != 0 else 1146.85  # sweep 4 steps to 0 pA: no edge there
        assert _edges(i, rec.t)[0] == pytest.approx(first, abs=0.06)
        last = 2146.85 if x != 0 else 1646.85
        assert _edges(i, rec.t)[-1] == pytest.approx(last, abs=0.06)


@needs_data
def test_file_axon_5_steps_and_spikes(recs):
    rec = recs["File_axon_5.abf"]
    for k in range(9):
        assert rec.i[k, _at(rec, 400)] == pytest.approx(-100.0 + 50.0 * k)
        assert rec.i[k, _at(rec, 100)] == 0 and rec.i[k, _at(rec, 900)] == 0
    assert rec.v[-1].max() > 0.0  # top sweep spikes
    assert rec.v[0].max() < -40.0  # hyperpolarised sweep does not


@needs_data
def test_efel_text_columns(recs):
    rec = recs["current.txt"]
    assert rec.metadata["format"] == "efel-txt"
    hold = np.median(rec.i[0, : _at(rec, 650)])
    step = np.median(rec.i[0, _at(rec, 800): _at(rec, 2600)])
    assert -20.0 < hold < -5.0
    assert 100.0 < step - hold < 140.0
    assert rec.v[0].max() > 0.0  # spiking, so voltage/current columns are not swapped


@needs_data
def test_load_subset_and_select(recs):
    rec = load_recording(_data("18711001.abf"), sweeps=[29, 3])
    assert rec.sweeps == (29, 3) and rec.n_sweeps == 2
    np.testing.assert_array_equal(rec.v, recs["18711001.abf"].v[[29, 3]])
    sel = recs["18711001.abf"].select([3, 5])
    assert sel.sweeps == (3, 5)
    np.testing.assert_array_equal(sel.i, recs["18711001.abf"].i[[3, 5]])
    assert sel.select([5]).i[0, _at(sel, 1000)] == pytest.approx(50.0)
    with pytest.raises(ValueError, match=r"18711001\.abf.*30.*0-29"):
        recs["18711001.abf"].select([30])
    with pytest.raises(ValueError, match="sweep"):
        sel.select([4])


@needs_data
def test_sweeps_out_of_range_on_load():
    path = _data("File_axon_5.abf")
    with pytest.raises(ValueError) as ei:
        load_recording(path, sweeps=[2, 9])
    assert "0-8" in _one_line(ei, path)
    with pytest.raises(ValueError, match="channel 1 out of range"):
        load_recording(path, channel=1)


@needs_data
@pytest.mark.parametrize("dt", [0.1, 0.25, 0.07, 0.02])
def test_resample_keeps_steps_and_mean(recs, dt):
    rec = recs["18711001.abf"].select([0, 29])
    out = rec.resample(dt)
    assert out.dt == pytest.approx(dt) and out.sampling_rate_hz == pytest.approx(1000 / dt)
    assert out.duration == pytest.approx(rec.duration, abs=dt)
    np.testing.assert_allclose(np.diff(out.t), dt)
    i = out.i[1]
    assert i[_at(out, 1000)] == pytest.approx(290.0)
    assert i[_at(out, 100)] == pytest.approx(-100.0)
    assert i[_at(out, 600)] == pytest.approx(0.0, abs=1e-9)
    # steps stay steps: at most one intermediate sample per edge
    on = out.t[np.flatnonzero(i > 1.0)]
    assert on[0] == pytest.approx(823.4, abs=dt) and on[-1] == pytest.approx(1323.4, abs=dt)
    assert np.count_nonzero((i > 1e-6) & (i < 290 - 1e-6)) <= 2
    # charge and mean voltage preserved
    assert i.sum() * out.dt == pytest.approx(rec.i[1].sum() * rec.dt, rel=1e-3)
    np.testing.assert_allclose(out.v.mean(axis=1), rec.v.mean(axis=1), atol=0.05)
    # voltage is not shifted in time: the resting level before 20 ms is unchanged
    np.testing.assert_allclose(out.v[:, _at(out, 10)], rec.v[:, _at(rec, 5):_at(rec, 15)].mean(1),
                               atol=1.0)


def test_resample_sine_no_shift_and_antialias():
    t = np.arange(20000) * 0.05
    v = -65 + 5 * np.sin(2 * np.pi * t / 10.0) + 3 * np.sin(2 * np.pi * t / 0.2)  # 5 kHz
    rec = Recording(t, v, np.zeros_like(v), (0,), 20000.0)
    out = rec.resample(0.2)
    slow = -65 + 5 * np.sin(2 * np.pi * out.t / 10.0)
    # the 5 kHz component is averaged away; the 100 Hz one is neither shifted
    # (a block average starting at t_j would lag 0.075 ms: error 0.24 mV) nor shrunk
    assert np.max(np.abs(out.v[0] - slow)[5:-5]) < 0.05


@needs_data
def test_time_window_and_ljp(recs):
    rec = recs["18711001.abf"]
    win = rec.time_window(800.0, 900.0)
    assert win.n_samples == 2000 and win.t[0] == pytest.approx(800.0)
    assert rec.time_window(800.0, 900.0, rezero=True).t[0] == 0.0
    fixed = rec.correct_ljp(14.0)
    np.testing.assert_allclose(fixed.v, rec.v - 14.0)
    assert fixed.metadata["ljp_corrected_mV"] == 14.0
    assert fixed.correct_ljp(1.0).metadata["ljp_corrected_mV"] == 15.0
    with pytest.raises(ValueError, match="no samples"):
        rec.time_window(5000.0, 6000.0)


# ---------------------------------------------------------------- round trips

def _toy():
    t = np.arange(500) * 0.1
    i = np.where((t >= 10) & (t < 30), 150.0, 0.0)
    v = -65.0 + 0.1 * i + np.sin(t)
    return t, v, i


def test_csv_round_trip(tmp_path):
    t, v, i = _toy()
    p = tmp_path / "cell.csv"
    np.savetxt(p, np.column_stack([t, v, i]), delimiter=",", header="t_ms,v_mV,i_pA", comments="")
    rec = load_recording(p)
    assert rec.v.shape == (1, 500) and rec.sampling_rate_hz == pytest.approx(10000.0)
    np.testing.assert_allclose(rec.t, t, atol=1e-9)
    np.testing.assert_allclose(rec.v[0], v)
    np.testing.assert_allclose(rec.i[0], i)
    # SI-ish units in the header are converted
    q = tmp_path / "cell_si.tsv"
    np.savetxt(q, np.column_stack([t / 1e3, v / 1e3, i / 1e3]), delimiter="\t",
               header="time (s)\tv_V\ti_nA", comments="")
    rec2 = load_recording(q)
    np.testing.assert_allclose(rec2.v, rec.v, atol=1e-9)
    np.testing.assert_allclose(rec2.i, rec.i, atol=1e-9)
    np.testing.assert_allclose(rec2.t, rec.t, atol=1e-9)


def test_efel_headerless_txt(tmp_path):
    t, v, i = _toy()
    p = tmp_path / "efel.txt"
    np.savetxt(p, np.column_stack([t / 1e3, i, v]), fmt="%.5f")
    rec = load_recording(p)
    assert rec.metadata["format"] == "efel-txt"
    np.testing.assert_allclose(rec.v[0], v, atol=1e-5)
    np.testing.assert_allclose(rec.i[0], i, atol=1e-5)


@needs_data
def test_npz_round_trip(recs, tmp_path):
    rec = recs["18711001.abf"].select([0, 29]).correct_ljp(2.0)
    p = rec.to_npz(tmp_path / "sub.npz")
    back = load_recording(p)
    for a in ("t", "v", "i"):
        np.testing.assert_array_equal(getattr(back, a), getattr(rec, a))
    assert back.sweeps == (0, 29) and back.sampling_rate_hz == rec.sampling_rate_hz
    assert back.metadata["protocol"] == "FICurve_Hyperpolarizing_KL"
    assert back.metadata["ljp_corrected_mV"] == 2.0
    assert load_recording(p, sweeps=[29]).sweeps == (29,)
    assert sorted(os.listdir(tmp_path)) == ["sub.npz"]


def _write_nwb(path, n=3, stimulus=True):
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

    nwb = NWBFile(session_description="toy", identifier="toy",
                  session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    el = nwb.create_icephys_electrode(name="e0", description="toy",
                                      device=nwb.create_device(name="amp"))
    for k in range(n):
        v_mV = -65.0 + k + np.linspace(0, 1, 200)
        i_pA = np.where(np.arange(200) >= 50, 25.0 * k, 0.0)
        # sweep 0 stores SI values, the others scaled integers-like data with conversion
        v_data, v_conv = (v_mV * 1e-3, 1.0) if k == 0 else (v_mV, 1e-3)
        i_data, i_conv = (i_pA * 1e-12, 1.0) if k == 0 else (i_pA / 1e3, 1e-9)
        nwb.add_acquisition(CurrentClampSeries(
            name=f"vm_{k}", data=v_data, conversion=v_conv, electrode=el, rate=10000.0,
            gain=1.0, sweep_number=np.uint32(k), stimulus_description="toy_steps"))
        if stimulus:
            nwb.add_stimulus(CurrentClampStimulusSeries(
                name=f"stim_{k}", data=i_data, conversion=i_conv, electrode=el, rate=10000.0,
                gain=1.0, sweep_number=np.uint32(k)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)


def test_nwb_round_trip(tmp_path):
    p = tmp_path / "toy.nwb"
    _write_nwb(p)
    rec = load_recording(p)
    assert rec.v.shape == (3, 200) and rec.sweeps == (0, 1, 2)
    assert rec.sampling_rate_hz == 10000.0 and rec.dt == pytest.approx(0.1)
    for k in range(3):
        np.testing.assert_allclose(rec.v[k], -65.0 + k + np.linspace(0, 1, 200), atol=1e-9)
        np.testing.assert_allclose(rec.i[k], np.where(np.arange(200) >= 50, 25.0 * k, 0.0),
                                   atol=1e-9)
    assert rec.metadata["format"] == "nwb" and rec.metadata["protocol"] == "toy_steps"
    assert load_recording(p, sweeps=[2]).i[0, -1] == pytest.approx(50.0)
    with pytest.raises(ValueError, match="0-2"):
        load_recording(p, sweeps=[3])


def test_nwb_sweep_without_its_stimulus_is_skipped(tmp_path):
    """A voltage series whose sweep number has no stimulus series (an aborted sweep) is left
    out with a one-line warning naming it; the other sweeps load as they are."""
    from pynwb import NWBHDF5IO
    from pynwb.icephys import CurrentClampSeries

    p = tmp_path / "gap.nwb"
    _write_nwb(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(p), "a") as io:
            nwb = io.read()
            el = nwb.icephys_electrodes["e0"]
            nwb.add_acquisition(CurrentClampSeries(name="vm_7", data=np.full(200, -0.07), electrode=el,
                                                   rate=10000.0, gain=1.0, sweep_number=np.uint32(7)))
            io.write(nwb)
    with pytest.warns(UserWarning) as w:
        rec = load_recording(p)
    msg = [str(x.message) for x in w if "skipped" in str(x.message)]
    assert len(msg) == 1 and msg[0].startswith(str(p)) and "vm_7 (sweep 7)" in msg[0] and "\n" not in msg[0]
    assert rec.sweeps == (0, 1, 2)


def test_nwb_without_stimulus(tmp_path):
    p = tmp_path / "nostim.nwb"
    _write_nwb(p, n=1, stimulus=False)
    with pytest.raises(ValueError) as ei:
        load_recording(p)
    assert "no current stimulus" in _one_line(ei, p)


def test_garbage_nwb(tmp_path):
    p = tmp_path / "garbage.nwb"
    p.write_bytes(b"\x89HDF not really\n" * 100)
    with pytest.raises(ValueError) as ei:
        load_recording(p)
    assert "NWB" in _one_line(ei, p)


# -------------------------------------------------------------------- errors

@needs_data
@pytest.mark.parametrize("size", [1000, 900_000])
def test_truncated_abf(tmp_path, size):
    p = tmp_path / "cut.abf"
    with open_stream(_data("18711001.abf")) as fh:   # the repo keeps it .xz-compressed
        p.write_bytes(fh.read(size))
    with pytest.raises(ValueError) as ei:
        load_recording(p)
    assert "ABF" in _one_line(ei, p)


def test_abf_without_command_channel(tmp_path):
    from pyabf.abfWriter import writeABF1

    p = tmp_path / "gapfree.abf"
    writeABF1(np.full((2, 1000), -65.0, dtype=np.float32), str(p), 20000, units="mV")
    with pytest.raises(ValueError) as ei:
        load_recording(p)
    assert "no usable current/command channel" in _one_line(ei, p) or \
        "no current/command channel" in str(ei.value)


def test_missing_file(tmp_path):
    p = tmp_path / "nope.abf"
    with pytest.raises(FileNotFoundError) as ei:
        load_recording(p)
    assert "not found" in _one_line(ei, p)


def test_unsupported_extension(tmp_path):
    p = tmp_path / "cell.mat"
    p.write_bytes(b"x")
    with pytest.raises(ValueError, match="unsupported file type"):
        load_recording(p)


def test_a_cell_in_depolarisation_block_is_plausible_millivolts():
    """Steps from 100 to 1100 ms of 1400 drive a cell into block at -18 mV on most sweeps:
    the voltage is millivolts of a living cell (it rests at -70 mV before each step), so no
    unit warning; the same trace in volts still gets one."""
    from hhjax.io.sources import check_voltage_plausible

    t = np.arange(14000) * 0.1
    v = np.where((t >= 100.0) & (t < 1100.0), -18.0, -70.0) * np.ones((8, 1))
    rec = Recording(t, v, np.zeros_like(v), tuple(range(8)), 10_000.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImplausibleVoltageWarning)
        check_voltage_plausible(rec, "block.npz")
    with pytest.warns(ImplausibleVoltageWarning, match="v_units='V'"):
        check_voltage_plausible(Recording(t, v / 1000.0, np.zeros_like(v), tuple(range(8)), 10_000.0), "volts.npz")


def test_wrong_units(tmp_path):
    t, v, i = _toy()
    p = tmp_path / "mislabelled.csv"
    np.savetxt(p, np.column_stack([t, v, i]), delimiter=",", header="t_ms,v_pA,i_pA", comments="")
    with pytest.raises(ValueError) as ei:
        load_recording(p)
    assert "voltage units 'pA' are not mV; pass v_units=" in _one_line(ei, p)
    np.testing.assert_allclose(load_recording(p, v_units="mV").v[0], v)
    with pytest.warns(ImplausibleVoltageWarning):   # -6e4 mV: it was mV after all
        np.testing.assert_allclose(load_recording(p, v_units="V").v[0], v * 1e3)
    with pytest.raises(ValueError, match="v_units='furlong'"):
        load_recording(p, v_units="furlong")
    q = tmp_path / "amps.csv"
    np.savetxt(q, np.column_stack([t, v, i]), delimiter=",", header="t_ms,v_mV,i_mV", comments="")
    with pytest.raises(ValueError, match="current units 'mV' are not pA"):
        load_recording(q)


@needs_data
def test_wrong_units_override_on_abf():
    with pytest.raises(ValueError, match="i_units='mV'"):
        load_recording(_data("File_axon_5.abf"), i_units="mV")
    # pA (the file's label) overridden as nA: a 300 nA step, which the current check names.
    with pytest.warns(ImplausibleCurrentWarning, match="i_units='pA'"):
        rec = load_recording(_data("File_axon_5.abf"), sweeps=[8], i_units="nA")
    assert rec.i[0, 8000] == pytest.approx(300e3)


def test_csv_without_current(tmp_path):
    t, v, _ = _toy()
    p = tmp_path / "vonly.csv"
    np.savetxt(p, np.column_stack([t, v]), delimiter=",", header="t_ms,v_mV", comments="")
    with pytest.raises(ValueError) as ei:
        load_recording(p)
    assert "no current column" in _one_line(ei, p)


def test_non_uniform_time(tmp_path):
    t, v, i = _toy()
    t[100:] += 1.0
    p = tmp_path / "gap.csv"
    np.savetxt(p, np.column_stack([t, v, i]), delimiter=",", header="t_ms,v_mV,i_pA", comments="")
    with pytest.raises(ValueError, match="not uniformly sampled"):
        load_recording(p)


# -------------------------------------------------------------- atomic writes

def test_write_atomic(tmp_path):
    dest = tmp_path / "sub" / "out.bin"
    assert write_atomic(dest, b"abc") == dest
    assert dest.read_bytes() == b"abc"
    write_atomic(dest, lambda tmp: tmp.write_bytes(b"second"))
    assert dest.read_bytes() == b"second"

    def boom(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError):
        write_atomic(dest, boom)
    assert dest.read_bytes() == b"second"  # old content survives a failed write
    assert os.listdir(dest.parent) == ["out.bin"]  # and no temp file is left
    assert (dest.stat().st_mode & 0o777) == 0o644


def test_save_json_atomic(tmp_path):
    dest = tmp_path / "fit.json"
    save_json_atomic(dest, {"g": np.float32(1.5), "n": np.int64(3), "arr": np.arange(3),
                            "path": tmp_path})
    assert json.loads(dest.read_text()) == {"g": 1.5, "n": 3, "arr": [0, 1, 2],
                                            "path": str(tmp_path)}
    with pytest.raises(TypeError):
        save_json_atomic(dest, {"bad": object()})
    assert json.loads(dest.read_text())["n"] == 3
    assert os.listdir(tmp_path) == ["fit.json"]


def test_recording_validates_shapes():
    with pytest.raises(ValueError, match="inconsistent shapes"):
        Recording(np.arange(5.0), np.zeros((2, 4)), np.zeros((2, 4)), (0, 1), 1000.0)
    rec = Recording(np.arange(5.0), np.zeros(5), np.zeros(5), (0,), 1000.0)
    assert rec.v.shape == (1, 5) and rec.dt == 1.0


@needs_data
def test_loading_an_abf_leaves_numpy_print_options_alone():
    """pyabf sets numpy's print options process-wide when first imported (a fresh
    process, so that no earlier test has imported it already)."""
    pytest.importorskip("pyabf")
    code = ("import numpy as np, hhjax.io as io; before = np.get_printoptions(); "
            f"io.load_recording({str(_data('File_axon_5.abf'))!r}); "
            "assert np.get_printoptions() == before, np.get_printoptions()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr


def test_batched_params_round_trip_through_json(tmp_path):
    import dataclasses

    import hhjax

    params = dataclasses.replace(hhjax.presets.NEURON, g_na=np.array([100.0, 120.0]))
    back = hhjax.load_params(hhjax.save_params(tmp_path / "batch.json", params))  # failed to load before
    np.testing.assert_array_equal(back.g_na, [100.0, 120.0])
    assert back.g_k == 36.0
