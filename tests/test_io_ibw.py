"""Igor binary waves, file sets, compressed files, example data and bad input (issue 14, 4 and 6).

References: the B6 waves are checked against eFEL's ``current.txt`` (the same cell
and sweep written as text, read here with ``np.loadtxt``), and the small waves
are written by ``_write_ibw2`` below from Igor's technical note PTN003 (version 2
layout) and read back with igor2 before hhjax sees them.
"""

from __future__ import annotations

import gzip
import lzma
import shutil
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

from hhjax.io import (ImplausibleVoltageWarning, example_recording, load_recording,
                      read_ibw)
from hhjax.io.examples import _REPO_DIR, _SHARED_DIR

igor2 = pytest.importorskip("igor2")


def _data(name: str) -> Path:
    try:
        return example_recording(name)
    except FileNotFoundError as e:
        pytest.skip(f"needs {name}, which is neither in data/recordings nor in ../shared: {e}")


def _write_ibw2(path: Path, values, *, units: str, dx: float, x_units: str = "") -> Path:
    """A version-2 Igor binary wave (PTN003): BinHeader2, WaveHeader2, float32 data,
    16 bytes of padding, no note. The checksum makes the headers' int16 words sum to 0."""
    data = np.asarray(values, dtype="<f4")
    n = data.size
    wave_header = struct.pack(
        "<hl20shhl4s4slhddhhhddcclll2sLl",
        2, 0, b"w", 0, 0, 0, units.encode(), x_units.encode(), n, 0, dx, 0.0,
        0, 0, 0, 0.0, 0.0, b"\0", b"\0", 0, 0, 0, b"\0\0", 0, 0)
    assert len(wave_header) == 110
    wfm_size = 110 + 16 + data.nbytes   # sizeof(WaveHeader2) with wData[4], data, padding - 16

    def bin_header(checksum: int) -> bytes:
        return struct.pack("<hlllh", 2, wfm_size, 0, 0, checksum)

    words = np.frombuffer(bin_header(0) + wave_header, dtype="<i2").astype(np.int64)
    checksum = int(-words.sum()) % 65536
    checksum = checksum - 65536 if checksum >= 32768 else checksum
    path.write_bytes(bin_header(checksum) + wave_header + data.tobytes() + bytes(16))
    return path


def _cell(folder: Path, *, names=("cell_Ch0_{}.ibw", "cell_Ch3_{}.ibw"), numbers=(1, 2, 3),
          v_units="mV", i_units="pA", n=200, dx=1e-4, v_scale=1.0, i_scale=1.0):
    """One voltage and one current wave per number; sweep k steps to 10*k pA."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for k, number in enumerate(numbers):
        i_pa = np.where(np.arange(n) >= n // 2, 10.0 * (number), 0.0)
        v_mv = -70.0 + 0.1 * i_pa + np.sin(np.arange(n) / 7.0)
        _write_ibw2(folder / names[0].format(number), i_pa * i_scale, units=i_units, dx=dx)
        _write_ibw2(folder / names[1].format(number), v_mv * v_scale, units=v_units, dx=dx)
        truth[number] = (v_mv, i_pa)
    return truth


def _one_line(excinfo, start: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and msg.startswith(start), msg
    return msg


# ------------------------------------------------------------------ the writer itself

def test_handmade_wave_reads_back_with_igor2(tmp_path):
    values = np.linspace(-3.0, 5.0, 37)
    p = _write_ibw2(tmp_path / "w.ibw", values, units="nA", dx=2.5e-4, x_units="s")
    raw = igor2.binarywave.load(str(p))                      # igor2 directly, not hhjax
    assert raw["version"] == 2
    np.testing.assert_array_equal(raw["wave"]["wData"], values.astype(np.float32))
    assert raw["wave"]["wave_header"]["hsA"] == 2.5e-4
    w = read_ibw(p)
    assert (w["units"], w["x_units"], w["dx"], w["version"]) == ("nA", "s", 2.5e-4, 2)


# ------------------------------------------------------------------ the real B6 waves

def test_b6_set_matches_efel_text_of_the_same_sweep():
    """BluePyEfe's B6_*_181 and eFEL's current.txt are the same sweep of the same cell."""
    rec = load_recording(_data("B6"))
    txt = _data("current.txt")
    opener = lzma.open if txt.suffix == ".xz" else open
    with opener(txt, "rt") as fh:
        t_s, i_pa, v_mv = np.loadtxt(fh, unpack=True)
    assert rec.sweeps == (0, 1, 2, 3, 4) and rec.metadata["file_numbers"] == [181, 182, 183,
                                                                              184, 185]
    assert rec.sampling_rate_hz == 4000.0 and rec.n_samples == t_s.size == 12000
    np.testing.assert_allclose(rec.t, t_s * 1e3, atol=1e-9)
    np.testing.assert_allclose(rec.v[0], v_mv, atol=1e-4)   # text has 5 decimals
    np.testing.assert_allclose(rec.i[0], i_pa, atol=1e-4)
    # Voltage from Ch3 (header mV), current from Ch0 (header pA): decided by the headers.
    assert rec.metadata["voltage_channel"] == "B6_Ch3_IDRest_*.ibw"
    assert rec.metadata["current_channel"] == "B6_Ch0_IDRest_*.ibw"


def test_b6_glob_list_and_folder_agree():
    folder = _data("B6")
    files = sorted(folder.glob("*.ibw"))
    by_folder = load_recording(folder)
    by_glob = load_recording(str(folder / "B6_*.ibw"))
    by_list = load_recording(files[::-1], sweeps=[4, 0])
    np.testing.assert_array_equal(by_glob.v, by_folder.v)
    np.testing.assert_array_equal(by_list.v, by_folder.v[[4, 0]])
    np.testing.assert_array_equal(by_list.i, by_folder.i[[4, 0]])
    # The IDRest step grows with the file number: order by number, not by listing.
    step = by_folder.i[:, 4000:10000].mean(axis=1) - by_folder.i[:, :2000].mean(axis=1)
    assert np.all(np.diff(step) > 0), step


def test_b95_protocol_as_bluepyefe_reads_it():
    """BluePyEfe's own test of B95_*_107 (tests/test_recording.py, its Step eCode): the
    step starts within 10 ms of 700 ms and ends within 10 ms of 2700 ms, the holding
    current is -0.03 nA and the step 0.033 nA above it, each within 0.005 nA."""
    from hhjax.recordings.evaluation import stimulus_epochs

    rec = load_recording(_data("B95"))
    assert rec.n_sweeps == 1 and rec.sampling_rate_hz == 4000.0
    hold, epochs = stimulus_epochs(rec.t, rec.i[0])
    (step,) = epochs
    assert abs(step.start - 700.0) < 10.0 and abs(step.stop - 2700.0) < 10.0
    assert abs(hold / 1000.0 + 0.03) < 0.005 and abs(step.amp / 1000.0 - 0.033) < 0.005


def test_b8_set_is_read_from_compressed_waves():
    """B8 is stored as ``.ibw.xz``: numbers, channels and units come through the
    decompression as from plain waves (the steps grow with the file number)."""
    rec = load_recording(_data("B8"))
    assert rec.metadata["file_numbers"] == [145, 146, 147, 148, 149]
    assert rec.metadata["voltage_channel"] == "B8_Ch3_IDRest_*.ibw.xz"
    step = rec.i[:, 4000:10000].mean(axis=1) - rec.i[:, :2000].mean(axis=1)
    assert np.all(np.diff(step) > 0) and np.all(rec.v[:, :2000].mean(axis=1) < -60.0)


# ------------------------------------------------------------------ pairing, order, units

def test_pairing_by_header_units_and_numeric_order(tmp_path):
    # Voltage in the *lower* channel number here, the reverse of B6; numbers 9, 10, 11
    # sort as 10, 11, 9 as text.
    truth = _cell(tmp_path / "c", names=("c_Ch5_{}.ibw", "c_Ch1_{}.ibw"), numbers=(9, 10, 11))
    rec = load_recording(tmp_path / "c")
    assert rec.metadata["file_numbers"] == [9, 10, 11]
    assert rec.metadata["voltage_channel"] == "c_Ch1_*.ibw"
    for k, number in enumerate((9, 10, 11)):
        np.testing.assert_allclose(rec.v[k], truth[number][0], atol=1e-4)
        np.testing.assert_allclose(rec.i[k], truth[number][1], atol=1e-4)
    assert rec.dt == pytest.approx(0.1)


def test_units_from_headers_are_scaled(tmp_path):
    truth = _cell(tmp_path / "si", v_units="V", i_units="nA", v_scale=1e-3, i_scale=1e-3)
    rec = load_recording(str(tmp_path / "si" / "*.ibw"))
    np.testing.assert_allclose(rec.v[2], truth[3][0], rtol=1e-6)
    np.testing.assert_allclose(rec.i[2], truth[3][1], rtol=1e-6, atol=1e-9)
    assert rec.metadata["units_in_file"]["v"] == "V"


def test_x_units_in_ms_are_honoured(tmp_path):
    folder = tmp_path / "ms"
    folder.mkdir()
    _write_ibw2(folder / "a_I_1.ibw", np.zeros(50), units="pA", dx=0.05, x_units="ms")
    _write_ibw2(folder / "a_V_1.ibw", np.full(50, -65.0), units="mV", dx=0.05, x_units="ms")
    assert load_recording(folder).sampling_rate_hz == 20000.0


# ------------------------------------------------------------------ bad input

def test_no_stimulus_channel(tmp_path):
    _cell(tmp_path / "c")
    for f in (tmp_path / "c").glob("cell_Ch0_*"):
        f.unlink()
    pattern = str(tmp_path / "c" / "*.ibw")
    with pytest.raises(ValueError) as e:
        load_recording(pattern)
    assert "no stimulus (current) channel" in _one_line(e, pattern)
    one = str(tmp_path / "c" / "cell_Ch3_1.ibw")
    with pytest.raises(ValueError) as e:
        load_recording(one)
    assert "no stimulus" in _one_line(e, one)


@pytest.mark.parametrize("what", ["length", "sampling"])
def test_set_whose_files_disagree(tmp_path, what):
    _cell(tmp_path / "c")
    odd = tmp_path / "c" / "cell_Ch0_2.ibw"
    n, dx = (150, 1e-4) if what == "length" else (200, 5e-5)
    _write_ibw2(odd, np.zeros(n), units="pA", dx=dx)
    with pytest.raises(ValueError) as e:
        load_recording(tmp_path / "c")
    msg = _one_line(e, str(odd))
    assert ("150 samples" if what == "length" else "20000 Hz") in msg and "agree" in msg


def test_glob_that_matches_nothing(tmp_path):
    pattern = str(tmp_path / "B7_*.ibw")
    with pytest.raises(FileNotFoundError) as e:
        load_recording(pattern)
    assert "no file matches" in _one_line(e, pattern)


def test_unpaired_and_unnumbered_files(tmp_path):
    """A sweep saved in one channel only (an aborted sweep) is skipped with a one-line
    warning naming the file; channels with no number in common are an error."""
    _cell(tmp_path / "c")
    (tmp_path / "c" / "cell_Ch0_3.ibw").unlink()
    with pytest.warns(UserWarning) as w:
        rec = load_recording(tmp_path / "c")
    msg = " ".join(str(x.message) for x in w)
    assert "1 file(s) without a partner" in msg and "cell_Ch3_3.ibw" in msg
    assert rec.metadata["file_numbers"] == [1, 2] and rec.n_sweeps == 2
    _cell(tmp_path / "d", numbers=(1, 2))
    for k in (1, 2):
        (tmp_path / "d" / f"cell_Ch0_{k}.ibw").rename(tmp_path / "d" / f"cell_Ch0_{k + 10}.ibw")
    with pytest.raises(ValueError) as e:
        load_recording(tmp_path / "d")
    assert "no current wave with file number 1" in _one_line(e, str(tmp_path / "d" / "cell_Ch3_1.ibw"))
    bare = _write_ibw2(tmp_path / "volts.ibw", np.zeros(10), units="mV", dx=1e-4)
    with pytest.raises(ValueError) as e:
        load_recording([bare, tmp_path / "c" / "cell_Ch0_1.ibw"])
    _one_line(e, str(bare))


def test_implausible_voltage_warns_and_v_units_fixes_it(tmp_path):
    _cell(tmp_path / "c", v_scale=1e-3)            # volts, labelled mV
    with pytest.warns(ImplausibleVoltageWarning) as w:
        load_recording(tmp_path / "c")
    msg = str(w[0].message)
    assert msg.startswith(str(tmp_path / "c")) and "\n" not in msg
    assert "v_units='V'" in msg and "--v-units" in msg
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec = load_recording(tmp_path / "c", v_units="V")
    assert -71.5 < rec.v.min() < -60.0
    _cell(tmp_path / "g", v_scale=10.0)            # gain applied twice: peaks far too high
    with pytest.warns(ImplausibleVoltageWarning, match="gain or unit mistake"):
        load_recording(tmp_path / "g")


@pytest.mark.parametrize("name", ["18711001.abf", "171116sh_0018.abf", "17o05028_ic_steps.abf",
                                  "171116sh_0016.abf", "File_axon_5.abf", "current.txt", "B6", "B8", "B95"])
def test_real_recordings_are_plausible(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImplausibleVoltageWarning)
        load_recording(_data(name))


# ------------------------------------------------------------------ compressed files, data

def test_compressed_file_loads_like_the_original(tmp_path):
    plain = _data("File_axon_5.abf")
    if plain.suffix != ".abf":
        pytest.skip("needs the uncompressed File_axon_5.abf")
    gz = tmp_path / "File_axon_5.abf.gz"
    with open(plain, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    a, b = load_recording(plain, sweeps=[8]), load_recording(gz, sweeps=[8])
    np.testing.assert_array_equal(a.v, b.v)
    np.testing.assert_array_equal(a.i, b.i)
    assert b.source == str(gz.resolve())
    bad = tmp_path / "broken.abf.xz"
    bad.write_bytes(b"not xz")
    with pytest.raises(ValueError) as e:
        load_recording(bad)
    assert "cannot decompress" in _one_line(e, str(bad))


@pytest.mark.skipif(not (_SHARED_DIR / "18711001.abf").is_file(),
                    reason="../shared/data/recordings/18711001.abf is absent (fresh clone): "
                           "nothing to compare the repo's compressed copy with")
def test_repo_copy_is_the_shared_original():
    repo = _REPO_DIR / "18711001.abf.xz"
    if not repo.is_file():
        pytest.skip("the repo's data/recordings/18711001.abf.xz is absent")
    with lzma.open(repo, "rb") as fh:
        assert fh.read() == (_SHARED_DIR / "18711001.abf").read_bytes()


def test_example_recording_prefers_the_repo_and_names_both_folders():
    if (_REPO_DIR / "B6").is_dir():
        assert example_recording("B6") == _REPO_DIR / "B6"
    with pytest.raises(FileNotFoundError) as e:
        example_recording("no_such_cell.abf")
    msg = _one_line(e, "no_such_cell.abf")
    assert str(_REPO_DIR) in msg and str(_SHARED_DIR) in msg


# ------------------------------------------------------------------ neo fallback

def _neo_file(path: Path, *, with_current: bool = True) -> Path:
    """Three sweeps written with neo's own MATLAB writer (a format hhjax has no reader for):
    voltage in V, current in nA; sweep k steps to 100*k pA."""
    neo = pytest.importorskip("neo")
    pq = pytest.importorskip("quantities")
    pytest.importorskip("scipy")
    block = neo.Block()
    for k in range(3):
        seg = neo.Segment(index=k)
        v_mv = -65.0 + np.sin(np.arange(400) / 9.0) + k
        seg.analogsignals.append(neo.AnalogSignal(v_mv[:, None] * 1e-3, units="V",
                                                  sampling_rate=20 * pq.kHz, name="Vm"))
        if with_current:
            i_na = np.where(np.arange(400) >= 100, 0.1 * k, 0.0)
            seg.analogsignals.append(neo.AnalogSignal(i_na[:, None], units="nA",
                                                      sampling_rate=20 * pq.kHz, name="Iinj"))
        block.segments.append(seg)
    neo.io.NeoMatlabIO(str(path)).write_block(block)
    return path


def test_neo_reads_a_format_hhjax_has_no_reader_for(tmp_path):
    p = _neo_file(tmp_path / "cell.mat")
    rec = load_recording(p, sweeps=[2, 0])
    assert rec.sweeps == (2, 0) and rec.sampling_rate_hz == 20000.0 and rec.n_samples == 400
    np.testing.assert_allclose(rec.v[0], -65.0 + np.sin(np.arange(400) / 9.0) + 2, atol=1e-9)
    np.testing.assert_allclose(rec.i[0, 100:], 200.0, rtol=1e-12)   # 0.2 nA = 200 pA
    assert rec.metadata["format"] == "neo:NeoMatlabIO"


def test_neo_file_without_current_and_unknown_extension(tmp_path):
    p = _neo_file(tmp_path / "vonly.mat", with_current=False)
    with pytest.raises(ValueError) as e:
        load_recording(p)
    assert "no stimulus (current) channel" in _one_line(e, str(p))
    q = tmp_path / "cell.qqq"
    q.write_bytes(b"x")
    with pytest.raises(ValueError) as e:
        load_recording(q)
    assert "unsupported file type '.qqq'" in _one_line(e, str(q))


# ------------------------------------------------------------------ the command line

@pytest.mark.parametrize("case", ["no match", "no current", "lengths differ"])
def test_cli_fit_bad_file_sets_fail_in_one_line_and_write_nothing(tmp_path, case, capsys,
                                                                  monkeypatch):
    from hhjax.cli import main

    monkeypatch.setenv("HHJAX_NO_CACHE", "1")
    _cell(tmp_path / "c")
    if case == "no match":
        target = named = str(tmp_path / "c" / "B7_*.ibw")
    elif case == "no current":
        for f in (tmp_path / "c").glob("cell_Ch0_*"):
            f.unlink()
        target = named = str(tmp_path / "c")
    else:
        named = str(_write_ibw2(tmp_path / "c" / "cell_Ch3_2.ibw", np.zeros(150), units="mV",
                                dx=1e-4))
        target = str(tmp_path / "c" / "cell_*.ibw")
    out = tmp_path / "fit.json"
    # No --model: a glob, a folder or .ibw files name a recording by themselves.
    assert main(["fit", target, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"hhjax fit: error: {named}: "), err
    assert not out.exists() and not list(tmp_path.glob(".fit.json*"))


def test_cli_evaluate_warns_on_implausible_voltage_and_v_units_fixes_it(tmp_path, capsys,
                                                                       monkeypatch):
    from hhjax.cli import main
    from hhjax import save_params
    from hhjax.models.pospischil import RS

    monkeypatch.setenv("HHJAX_NO_CACHE", "1")
    _cell(tmp_path / "c", v_scale=1e-3)              # volts, labelled mV
    fit_path = save_params(tmp_path / "fit.json", RS, settings={"dt_ms": 0.1})
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(fit_path), str(tmp_path / "c"), "--out", str(out)]) == 0
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"hhjax evaluate: warning: {tmp_path / 'c'}: voltage implausible")
    assert "\n" not in err and "--v-units" in err
    assert main(["evaluate", str(fit_path), str(tmp_path / "c"), "--v-units", "V",
                 "--out", str(out)]) == 0
    assert capsys.readouterr().err.strip() == ""
    assert main(["fit", str(tmp_path / "c"), "--v-units", "furlong", "--out",
                 str(tmp_path / "f.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "v_units='furlong' is not a known voltage unit" in err and "\n" not in err
    assert not (tmp_path / "f.json").exists()


def test_folder_with_several_protocols_takes_the_one_that_spikes_in_steps(tmp_path):
    """A cell folder as Blue Brain rigs write it: several protocols side by side, each a
    voltage/current channel pair. Without channel=, the set that holds the most spikes
    during depolarising steps is the recording (a warning names it and the others): here
    the long steps (IDRest, 3 sweeps of 3-9 spikes), not the short pulses (APWaveform,
    1 spike each) nor the spontaneous firing with no step (Spont, 12 spikes). channel=N
    still picks by name order."""
    n, dx = 4000, 1e-4                                   # 400 ms at 10 kHz
    t = np.arange(n) * 0.1

    def sweep(step_ms, amp, spike_times):
        i = np.where((t >= step_ms[0]) & (t < step_ms[1]), amp, 0.0)
        v = np.full(n, -70.0)
        for s in spike_times:
            v[(t >= s) & (t < s + 1.0)] = 20.0
        return v, i

    protocols = {
        "APWaveform": [sweep((100, 110), 800.0, [105.0]) for _ in range(3)],
        "IDRest": [sweep((50, 350), 100.0 * (k + 1), np.linspace(60, 340, 3 * (k + 1))) for k in range(3)],
        "Spont": [sweep((0, 0), 0.0, np.linspace(20, 380, 4)) for _ in range(3)],
    }
    for name, sweeps in protocols.items():
        for k, (v, i) in enumerate(sweeps):
            _write_ibw2(tmp_path / f"X_{name}_ch0_{10 + k}.ibw", i, units="pA", dx=dx)
            _write_ibw2(tmp_path / f"X_{name}_ch1_{10 + k}.ibw", v, units="mV", dx=dx)
    with pytest.warns(UserWarning, match=r"3 voltage channels; using X_IDRest_ch1_\*\.ibw \(18 spikes"):
        rec = load_recording(tmp_path)
    assert rec.metadata["voltage_channel"] == "X_IDRest_ch1_*.ibw" and rec.metadata["channel"] == 1
    assert np.allclose(rec.i[2].max(), 300.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # an explicit channel: no guess, no warning
        assert load_recording(tmp_path, channel=0).metadata["voltage_channel"] == "X_APWaveform_ch1_*.ibw"


def test_channels_pair_by_name_where_a_protocol_lacks_one(tmp_path):
    """Blue Brain cell folders name each protocol's channels alike but for the channel
    digit (X_IDrest_ch0_* current, X_IDrest_ch1_* voltage). Where one protocol has no
    current channel, pairing by sorted position would give IDrest's voltage the wrong
    stimulus; pairing by name keeps each protocol's own."""
    n, dx = 2000, 1e-4
    t = np.arange(n) * 0.1
    for name, amp in (("APWaveform", 400.0), ("IDrest", 100.0)):
        for k in range(2):
            i = np.where((t >= 50) & (t < 150), amp * (k + 1), 0.0)
            _write_ibw2(tmp_path / f"X_{name}_ch0_{k}.ibw", i, units="pA", dx=dx)
            _write_ibw2(tmp_path / f"X_{name}_ch1_{k}.ibw", np.full(n, -70.0), units="mV", dx=dx)
    for k in range(2):   # a protocol saved with its voltage only
        _write_ibw2(tmp_path / f"X_Dummy_ch1_{k}.ibw", np.full(n, -70.0), units="mV", dx=dx)
    rec = load_recording(tmp_path, channel=2)   # voltage channels: APWaveform, Dummy, IDrest
    assert rec.metadata["voltage_channel"] == "X_IDrest_ch1_*.ibw"
    assert rec.metadata["current_channel"] == "X_IDrest_ch0_*.ibw"
    assert np.allclose(rec.i.max(axis=1), [100.0, 200.0])
    with pytest.raises(ValueError) as e:
        load_recording(tmp_path, channel=1)
    assert "0 current channels named like X_Dummy_ch1_*.ibw" in _one_line(e, str(tmp_path))
    # Two cells' files globbed together: a name differing in the cell's number too is not a pair.
    two = tmp_path / "two"
    two.mkdir()
    for cell in ("C1", "C2"):
        for k in range(2):
            _write_ibw2(two / f"{cell}_IDrest_ch0_{k}.ibw", np.full(n, 10.0 * int(cell[1])), units="pA", dx=dx)
            _write_ibw2(two / f"{cell}_IDrest_ch1_{k}.ibw", np.full(n, -70.0), units="mV", dx=dx)
    assert np.allclose(load_recording(two, channel=1).i, 20.0)
