"""ABF files whose rig puts the voltage on another input, or records the current instead of
writing a command waveform (hhjax.io.abf). The files are written here byte by byte in the
ABF1 layout (the offsets pyabf's ABF1 header reader uses), so the reader under test sees a
real multi-channel file, not a mock."""

import struct

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
