"""The ``hhjax`` command line, called in-process (``hhjax.cli.main``) and once as a program."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax import stimulus as S
from hhjax.cli import main
from hhjax.presets import NEURON

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SIM = ["simulate", "--duration", "20", "--dt", "0.025", "--amplitude", "10", "--start", "2"]


@pytest.fixture(autouse=True, scope="module")
def _jax_ready():
    # initialise the backend before capturing stderr, so that no one-off backend notice can
    # be mistaken for CLI output
    jnp.zeros(()).block_until_ready()


def _direct(params=NEURON, y0=None):
    return hhjax.simulate(params, S.step(10.0, 2.0, np.inf), duration=20.0, dt=0.025, y0=y0)


def _read_csv(path):
    with open(path) as f:
        header = f.readline().strip()
    return header, np.loadtxt(path, delimiter=",", skiprows=1)


def test_help_as_a_program():
    exe = shutil.which("hhjax")
    cmd = [exe, "--help"] if exe else [sys.executable, "-m", "hhjax.cli", "--help"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for verb in ("demo", "simulate"):
        assert verb in out.stdout


def test_simulate_csv_equals_direct_simulation(tmp_path, capsys):
    path = tmp_path / "x.csv"
    assert main(SIM + ["--out", str(path)]) == 0
    out = capsys.readouterr().out
    assert "spike" in out and str(path) in out
    header, data = _read_csv(path)
    assert header == "t_ms,v_mV,m,h,n,i_uA_cm2"
    tr = _direct()
    assert data.shape == (tr.t.shape[0], 6)
    # the current column is the step that drives each sample's step: 0 before 2 ms, then 10
    np.testing.assert_array_equal(data[:, 5], np.where(np.arange(tr.t.shape[0]) * 0.025 < 2.0, 0.0, 10.0))
    for col, name in enumerate(("t", "v", "m", "h", "n")):
        np.testing.assert_allclose(data[:, col], np.asarray(getattr(tr, name), np.float64),
                                   rtol=1e-6, atol=1e-6, err_msg=name)
    assert data[:, 1].max() > 0  # it spiked
    # the printed spike count agrees with the trace
    assert out.startswith(f"{int(tr.spike_count)} spike")


def test_simulate_npz(tmp_path, capsys):
    path = tmp_path / "x.npz"
    assert main(SIM + ["--out", str(path)]) == 0
    d = np.load(path)
    assert set(d.files) == {"t_ms", "v_mV", "m", "h", "n", "i_uA_cm2"}
    tr = _direct()
    np.testing.assert_allclose(d["t_ms"], np.asarray(tr.t), rtol=1e-6)
    np.testing.assert_allclose(d["v_mV"], np.asarray(tr.v), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(d["n"], np.asarray(tr.n), rtol=1e-6, atol=1e-7)


def test_simulate_output_is_what_fit_reads(tmp_path, capsys):
    """The README's two lines: `hhjax simulate --out trace.csv` then `hhjax fit trace.csv`."""
    trace, out = tmp_path / "trace.csv", tmp_path / "fit.json"
    assert main(["simulate", "--set", "g_na=100", "--amplitude", "10", "--start", "10", "--stop", "90",
                 "--duration", "100", "--dt", "0.025", "--out", str(trace)]) == 0
    assert main(["fit", str(trace), "--trainable", "g_na,g_k,g_l", "--starts", "2", "--out", str(out)]) == 0
    fitted = hhjax.load_params(out)
    # noise-free trace of the same method: the fit lands on the parameters that made it
    assert float(fitted.g_na) == pytest.approx(100.0, rel=1e-3)
    assert float(fitted.g_k) == pytest.approx(36.0, rel=1e-3)
    assert float(fitted.g_l) == pytest.approx(0.3, rel=1e-3)


def test_fit_of_a_subsampled_trace_integrates_finer_than_its_samples(tmp_path, capsys):
    """A trace kept every 10th step (0.25 ms samples) is fitted at 0.025 ms, not at its own
    sampling (which gave g_na 134 of 120); --method must match the one that made it."""
    for extra, method in ((["--record-every", "10"], []), (["--method", "neuron"], ["--method", "neuron"])):
        trace, out = tmp_path / "t.csv", tmp_path / "f.json"
        assert main(["simulate", "--amplitude", "10", "--start", "10", "--stop", "90", "--duration", "100",
                     "--out", str(trace), *extra]) == 0
        assert main(["fit", str(trace), "--starts", "2", "--out", str(out), *method]) == 0
        fitted = hhjax.load_params(out)
        for name, truth in (("g_na", 120.0), ("g_k", 36.0), ("g_l", 0.3)):
            assert float(getattr(fitted, name)) == pytest.approx(truth, rel=1e-3), (extra, name)


@pytest.mark.parametrize("argv, needle", [
    (["--starts", "0"], "--starts"),
    (["--dt", "0.03"], "--dt"),
    (["--preset", "pospischil"], "pA"),
    (["--sweeps", "1"], "--sweeps"),
])
def test_fit_rejects_options_that_cannot_apply(argv, needle, tmp_path, capsys):
    trace = tmp_path / "t.csv"
    assert main(SIM + ["--record-every", "10", "--out", str(trace)]) == 0
    capsys.readouterr()
    try:
        rc = main(["fit", str(trace), *argv])
    except SystemExit as exc:  # argparse's own errors exit
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err


def test_spike_threshold_follows_the_rate_convention(capsys):
    # HH1952 rests at 0 mV: a 0 mV threshold missed the spike (peak ~105 mV near 7 ms) and
    # counted the recovery from the afterhyperpolarisation at 15.8 ms instead.
    # The 1952 model is NEURON's shifted by 65 mV (E_L differs by 0.09 mV): same spike times.
    times = {}
    for preset in ("hh1952", "neuron"):
        assert main(["simulate", "--preset", preset, "--amplitude", "10", "--duration", "20", "--start", "5"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("1 spike(s) at t = "), out
        times[preset] = float(out.split("t = ")[1].split()[0])
    assert times["hh1952"] == pytest.approx(times["neuron"], abs=0.05)


def test_set_changes_the_result(tmp_path, capsys):
    base, changed = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(SIM + ["--out", str(base)]) == 0
    assert main(SIM + ["--set", "g_na=100", "--out", str(changed)]) == 0
    _, a = _read_csv(base)
    _, b = _read_csv(changed)
    assert np.max(np.abs(a[:, 1] - b[:, 1])) > 1.0
    tr = _direct(dataclasses.replace(NEURON, g_na=100.0))
    np.testing.assert_allclose(b[:, 1], np.asarray(tr.v), rtol=1e-6, atol=1e-5)


def test_init_sets_the_initial_state(tmp_path, capsys):
    path = tmp_path / "i.csv"
    assert main(SIM + ["--init", "v=-70,m=0.05,h=0.54,n=0.34", "--out", str(path)]) == 0
    _, data = _read_csv(path)
    np.testing.assert_allclose(data[0, 1:5], [-70.0, 0.05, 0.54, 0.34], rtol=1e-6)
    tr = _direct(y0=hhjax.HHState(v=-70.0, m=0.05, h=0.54, n=0.34))
    np.testing.assert_allclose(data[:, 1], np.asarray(tr.v), rtol=1e-6, atol=1e-5)
    # only v given: gates start at their steady state there
    path2 = tmp_path / "i2.csv"
    assert main(SIM + ["--init", "v=-70", "--out", str(path2)]) == 0
    _, data2 = _read_csv(path2)
    ss = hhjax.steady_state(NEURON, -70.0)
    np.testing.assert_allclose(data2[0, 2:5], [float(ss.m), float(ss.h), float(ss.n)], rtol=1e-6)


def test_plot_writes_png(tmp_path, capsys):
    path = tmp_path / "p.png"
    assert main(SIM + ["--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert os.path.getsize(path) > 1000


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["simulate", "--preset", "no_such_cell"], "no_such_cell"),
        (["simulate", "--set", "g_na=abc"], "g_na"),
        (["simulate", "--set", "g_na"], "NAME=VALUE"),
        (["simulate", "--set", "not_a_param=1"], "not_a_param"),
        (["simulate", "--init", "m=0.1"], "v="),
        (["simulate", "--duration", "10", "--dt", "0.3"], "dt"),
        (["simulate", "--method", "rk5", "--duration", "1"], "rk5"),
        (["simulate", "--duration", "1", "--out", "trace.txt"], "--out"),
        (["simulate", "--duration", "1", "--plot", "figure"], "--plot"),  # said "Format 'tmp'"
        (["simulate", "--set", "c_m=0", "--duration", "1"], "c_m"),
        (["fit", "missing.csv", "--out", "fit.txt"], "--out"),  # checked before the file is read
        (["evaluate", "fit.json", "cell.abf", "--plot", "e.bmp"], "--plot"),
    ],
)
def test_bad_input_one_line_on_stderr(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert needle in lines[0]
    assert not (tmp_path / "trace.txt").exists()


def test_demo_no_fit(tmp_path, capsys, radau_step_spikes):
    path = tmp_path / "demo.png"
    assert main(["demo", "--no-fit", "--plot", str(path)]) == 0
    out = capsys.readouterr().out
    assert path.read_bytes()[:8] == PNG_MAGIC
    # the printed spike times are those of the standard protocol: compare with Radau
    line = next(ln for ln in out.splitlines() if "spikes at t =" in ln)
    times = np.array([float(x) for x in line.split("=", 1)[1].replace("ms", "").split(",")])
    assert int(line.split()[0]) == len(times) == len(radau_step_spikes)
    np.testing.assert_allclose(times, radau_step_spikes, atol=0.05)


def test_argparse_errors_are_one_line_too(capsys):
    try:
        code = main(["simulate", "--dt", "abc"])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1, err


def test_hhjax_fit_says_why_it_searched_again():
    """The reason given follows the first search: a missed fitted sweep, or (where it met
    them) the cell's spike onsets; one search that meets its sweeps says nothing, and one
    stopped by the row budget while missing says so."""
    from hhjax.cli.fit import search_report

    base = dict(retry_tolerances=1.0, retries=2, row_seconds=40.0, retry_row_seconds=60.0)
    miss = dict(loss=9.0, worst_count_miss=4.0, worst_sweep=6, v_t_start=-56.2)
    met = dict(loss=3.0, worst_count_miss=0.5, worst_sweep=6, v_t_start=-56.2)
    onset = dict(loss=1.0, worst_count_miss=0.5, worst_sweep=2, v_t_start=-30.0)
    same = dict(loss=2.0, worst_count_miss=0.5, worst_sweep=2, v_t_start=-56.2)
    (line,) = search_report(dict(base, attempts=[miss, same], kept_attempt=1))
    assert "missed fitted sweep 6 by 4.0 count tolerances" in line and "v_t" not in line
    (line,) = search_report(dict(base, attempts=[met, onset], kept_attempt=1))
    assert "spike onsets lie more than 10 mV" in line and "started at v_t -30.0 mV" in line
    assert "kept search 2 (losses 3, 1)" in line
    assert search_report(dict(base, attempts=[met], kept_attempt=0)) == []
    (line,) = search_report(dict(base, attempts=[miss], kept_attempt=0))
    assert line.startswith("not searched again") and "40 s of rows" in line
    (line,) = search_report(dict(base, attempts=[miss], kept_attempt=0, stopped_at_deadline=True))
    assert line.startswith("not searched again") and "too late" in line and "s of rows" not in line
