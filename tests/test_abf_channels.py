"""ABF files whose rig puts the voltage on another input, or records the current instead of
writing a command waveform (hhjax.io.abf). The files are written here byte by byte in the
ABF1 layout (the offsets pyabf's ABF1 header reader uses), so the reader under test sees a
real multi-channel file, not a mock."""

import struct
from pathlib import Path

import numpy as np
import pytest

from hhjax.io import load_recording
from hhjax.recordings.evaluation import stimulus_epochs

RATE = 10_000.0


def _write_abf1(path, channels, units, names):
    """Episodic ABF1 file: ``channels`` is a list of ``(n_sweeps, n)`` arrays, one per input,
    stored as int16 samples interleaved channel by channel."""
    data = np.stack([np.asarray(c, float) for c in channels], 1)   # (sweeps, inputs, samples)
    n_sweeps, n_ch, n = data.shape
    # int16 = value * scale * 32768 / 10 V: the largest scale that keeps every value in range
    scale = [9.0 / max(float(np.max(np.abs(c))), 1e-3) for c in channels]
    h = bytearray(4 * 512)
    for fmt, off, val in (("4s", 0, b"ABF "), ("f", 4, 1.3), ("h", 8, 5), ("i", 10, n_sweeps * n_ch * n),
                          ("i", 16, n_sweeps), ("i", 40, 4), ("h", 100, 0), ("h", 120, n_ch),
                          ("f", 122, 1e6 / (RATE * n_ch)), ("i", 138, n * n_ch), ("f", 244, 10.0),
                          ("i", 252, 32768)):
        struct.pack_into("<" + fmt, h, off, val)
    for k in range(16):
        struct.pack_into("<h", h, 378 + 2 * k, k)
        struct.pack_into("<h", h, 410 + 2 * k, k if k < n_ch else -1)
        struct.pack_into("<f", h, 922 + 4 * k, scale[k] if k < n_ch else 1.0)
        struct.pack_into("<f", h, 1050 + 4 * k, 1.0)
        struct.pack_into("<f", h, 730 + 4 * k, 1.0)
        struct.pack_into("8s", h, 602 + 8 * k, (units[k] if k < n_ch else "V").ljust(8).encode())
        struct.pack_into("10s", h, 442 + 10 * k, (names[k] if k < n_ch else f"IN {k}").ljust(10).encode())
    ints = np.round(data * np.array(scale)[None, :, None] * 3276.8).astype("<i2")
    path.write_bytes(bytes(h) + ints.transpose(0, 2, 1).tobytes())
    return path


def _cell(n_sweeps=3, n=4000):
    """Voltage (mV) and current (pA, with amplifier noise) of a toy cell: a step from 100 to
    300 ms of 50 pA per sweep, 0.1 mV per pA."""
    t = np.arange(n) / RATE * 1e3
    amp = 50.0 * np.arange(n_sweeps)[:, None]
    i = np.where((t >= 100) & (t < 300), amp, 0.0) + np.random.default_rng(0).normal(0, 2.0, (n_sweeps, n))
    return t, -65.0 + 0.1 * i, i


def test_voltage_on_input_1_and_recorded_current_on_input_0(tmp_path):
    t, v, i = _cell()
    p = _write_abf1(tmp_path / "im_first.abf", [i, v], ["pA", "mV"], ["Im", "Vm"])
    rec = load_recording(p)
    assert rec.metadata["channel"] == 1 and "recorded input channel 0" in rec.metadata["current_source"]
    # int16 storage: values agree to the quantisation step (range / 32768)
    assert np.allclose(rec.v, v, atol=np.max(np.abs(v)) / 3000) and np.allclose(rec.i, i, atol=np.max(np.abs(i)) / 3000)
    for k, amp in enumerate((0.0, 50.0, 100.0)):
        _, epochs = stimulus_epochs(rec.t, rec.i[k])
        steps = [e for e in epochs if e.amp > 0]
        if amp:   # the noisy recorded current still parses into one step of the right size
            assert len(steps) == 1 and abs(steps[0].amp - amp) < 2.0 and abs(steps[0].start - 100.0) < 1.0
        else:
            assert not steps


def test_voltage_first_and_current_recorded_on_input_1(tmp_path):
    t, v, i = _cell()
    p = _write_abf1(tmp_path / "vm_first.abf", [v, i / 1000.0], ["mV", "nA"], ["Vm", "Im"])
    rec = load_recording(p, sweeps=[2])
    assert rec.metadata["channel"] == 0 and rec.metadata["units_in_file"]["i"].strip() == "nA"
    assert np.allclose(rec.i[0], i[2], atol=np.max(np.abs(i)) / 3000)   # nA converted to pA


def test_membrane_potential_in_mv_is_preferred_to_an_input_left_in_volts(tmp_path):
    """Clampex scales the membrane potential to mV; an input left in V is an auxiliary
    signal (pyABF's older File_axon_3.abf: 'stim' in V, then 'VmRK' in mV)."""
    t, v, i = _cell()
    monitor = np.where(i > 25.0, 5.0, 0.0)                       # a stimulator's 0/5 V monitor
    p = _write_abf1(tmp_path / "monitor.abf", [monitor, v, i], ["V", "mV", "pA"], ["stim", "VmRK", "Im"])
    rec = load_recording(p)
    assert rec.metadata["channel"] == 1 and np.allclose(rec.v, v, atol=np.max(np.abs(v)) / 3000)


def test_explicit_channel_is_taken_as_given(tmp_path):
    t, v, i = _cell()
    p = _write_abf1(tmp_path / "im_first.abf", [i, v], ["pA", "mV"], ["Im", "Vm"])
    with pytest.raises(ValueError) as ei:
        load_recording(p, channel=0)   # the current input asked for as the voltage
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(str(p)) and "voltage units 'pA'" in msg


def test_voltage_only_file_still_has_no_stimulus(tmp_path):
    t, v, _ = _cell()
    p = _write_abf1(tmp_path / "vm_only.abf", [v, v + 1.0], ["mV", "mV"], ["Vm1", "Vm2"])
    with pytest.raises(ValueError) as ei:
        load_recording(p)
    msg = str(ei.value)   # pyabf gives this header a NaN command: "no usable ..."
    assert "\n" not in msg and "current/command channel" in msg and "no input channel records a current" in msg


def test_cli_channel_option(tmp_path, capsys):
    from hhjax.cli import main

    t, v, i = _cell()
    p = _write_abf1(tmp_path / "im_first.abf", [i, v], ["pA", "mV"], ["Im", "Vm"])
    out = tmp_path / "fit.json"
    code = main(["fit", str(p), "--channel", "0", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code != 0 and not out.exists() and len(err.splitlines()) == 1 and "voltage units 'pA'" in err


def test_cli_takes_recording_npz_and_csv_as_recordings(tmp_path):
    """`hhjax fit cell.npz` without --model: a Recording.to_npz file or a t_ms,v_mV,i_pA CSV
    is a recording; a t_ms,v_mV,i_uA_cm2 file stays an hhjax trace."""
    from hhjax.io import Recording
    from hhjax.io.sources import names_a_recording

    t, v, i = _cell(n_sweeps=2, n=500)
    rec_npz = Recording(t, v, i, (0, 1), RATE, "toy").to_npz(tmp_path / "cell.npz")
    np.savez(tmp_path / "trace.npz", t_ms=t, v_mV=v[0], i_uA_cm2=i[0] / 100)
    (tmp_path / "cell.csv").write_text("t_ms,v_mV,i_pA\n0,-65,0\n0.1,-65,0\n0.2,-65,0\n")
    (tmp_path / "trace.csv").write_text("t_ms,v_mV,i_uA_cm2\n0,-65,0\n0.1,-65,0\n0.2,-65,0\n")
    assert names_a_recording(rec_npz) and names_a_recording(tmp_path / "cell.csv")
    assert not names_a_recording(tmp_path / "trace.npz") and not names_a_recording(tmp_path / "trace.csv")
    assert not names_a_recording(tmp_path / "missing.csv")


# A user list (Clampex: an epoch's level sweep by sweep from a list in the protocol), set on
# the header of a real ABF 2 file as pyabf reads it: File_axon_5.abf steps epoch B from -100 pA
# by 50 pA a sweep; the list's steps are not evenly spaced, as in pyabf's 2020_03_02_0000.abf
# (code 62, Clampex 11) and 19212027.abf (code 24, Clampex 10).
USER_LIST = [-100.0, -50.0, 0.0, 25.0, 50.0, 100.0, 200.0, 300.0, 400.0]
AXON_5 = Path(__file__).resolve().parents[1] / "data" / "recordings" / "File_axon_5.abf"


def _with_user_list(monkeypatch, code, values):
    pyabf = pytest.importorskip("pyabf")
    init = pyabf.ABF.__init__

    def with_list(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.userList, self.userListEnable, self.userListParamToVary = list(values), [1], [code]

    monkeypatch.setattr(pyabf.ABF, "__init__", with_list)


@pytest.mark.parametrize("code", [22, 62])  # epoch B's level with 10 and with 50 epochs in the header
def test_an_abf2_user_list_sets_the_step_levels(monkeypatch, code):
    plain = load_recording(AXON_5)
    _with_user_list(monkeypatch, code, USER_LIST)
    with pytest.warns(UserWarning, match="epoch B's level sweep by sweep from a user list"):
        rec = load_recording(AXON_5)
    assert rec.metadata["current_source"] == "command waveform (sweepC)"
    for k, level in enumerate(USER_LIST):
        step = plain.i[k] == -100.0 + 50.0 * k  # epoch B as pyabf writes it (A and C are at 0 pA)
        if k != 2:  # its pyabf level is 0 pA, as are epochs A and C
            np.testing.assert_array_equal(rec.i[k][step], level)
        np.testing.assert_array_equal(rec.i[k][~step], plain.i[k][~step])


def test_a_user_list_that_changes_durations_leaves_a_warning(monkeypatch):
    _with_user_list(monkeypatch, 32, [1000.0] * 9)  # epoch B's duration: pyabf's waveform is not what ran
    with pytest.warns(UserWarning, match="user list changes the command waveform.*the currents read may be wrong"):
        load_recording(AXON_5)


def test_a_user_list_that_does_not_start_at_the_epoch_level_is_not_applied(monkeypatch):
    plain = load_recording(AXON_5)
    _with_user_list(monkeypatch, 22, [5.0] + USER_LIST[1:])  # a header read wrongly: not trusted
    with pytest.warns(UserWarning, match="may be wrong"):
        rec = load_recording(AXON_5)
    np.testing.assert_array_equal(rec.i, plain.i)
