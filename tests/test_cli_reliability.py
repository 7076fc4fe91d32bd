"""Issue 16, the command line: every failure is exit status 2 and one line on stderr naming
the user's path; nothing is written unless every step succeeded; Ctrl-C is one line, exit
status 130 and no temporary files; bad values in input columns name the column and row."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import jax.numpy as jnp
import numpy as np
import pytest

from hhjax import plot
from hhjax.cli import main
from hhjax.cli import fit as cli_fit

SIM = ["simulate", "--duration", "5", "--dt", "0.025", "--amplitude", "10", "--start", "1"]


@pytest.fixture(autouse=True, scope="module")
def _jax_ready():
    jnp.zeros(()).block_until_ready()


def _one_line_error(capsys, code, expected_code=2):
    err = capsys.readouterr().err
    assert code == expected_code, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert ".tmp" not in lines[0] and "Traceback" not in err
    return lines[0]


def _trace_csv(path, t=None, v=None, i=None, n=41):
    t = np.arange(n) * 0.025 if t is None else t
    v = np.full(n, -65.0) if v is None else v
    i = np.zeros(n) if i is None else i
    lines = ["t_ms,v_mV,i_uA_cm2"] + [f"{float(a)!r},{float(b)!r},{float(c)!r}" for a, b, c in zip(t, v, i)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir())


def test_fit_dt_zero(tmp_path, capsys):
    src = _trace_csv(tmp_path / "x.csv")
    line = _one_line_error(capsys, main(["fit", src, "--dt", "0", "--out", str(tmp_path / "f.json")]))
    assert "--dt" in line
    assert _leftovers(tmp_path) == ["x.csv"]


@pytest.mark.parametrize("column, row, value, shown", [
    ("t_ms", 7, float("nan"), "NaN"), ("v_mV", 3, 1e300, "beyond"), ("v_mV", 12, float("inf"), "inf"),
    ("i_uA_cm2", 20, float("nan"), "NaN")])
def test_bad_values_in_columns_name_column_and_row(tmp_path, capsys, column, row, value, shown):
    cols = {"t": np.arange(41) * 0.025, "v": np.full(41, -65.0), "i": np.zeros(41)}
    cols[{"t_ms": "t", "v_mV": "v", "i_uA_cm2": "i"}[column]][row - 1] = value
    src = _trace_csv(tmp_path / "x.csv", cols["t"], cols["v"], cols["i"])
    line = _one_line_error(capsys, main(["fit", src, "--out", str(tmp_path / "f.json")]))
    assert f"column {column}, row {row}" in line and shown in line and src in line
    assert _leftovers(tmp_path) == ["x.csv"]


def test_evaluate_json_list(tmp_path, capsys):
    bad = tmp_path / "fit.json"
    bad.write_text("[1, 2, 3]\n")
    line = _one_line_error(capsys, main(["evaluate", str(bad), str(tmp_path / "rec.abf")]))
    assert str(bad) in line


def test_start_after_stop(tmp_path, capsys):
    out = tmp_path / "ok.csv"
    line = _one_line_error(capsys, main(SIM[:-2] + ["--start", "4", "--stop", "1", "--out", str(out)]))
    assert line.startswith("hhjax simulate: error: --stop")
    assert not out.exists()


def test_unwritable_plot_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "ok.csv"
    line = _one_line_error(capsys, main(SIM + ["--out", str(out), "--plot", "/proc/x.png"]))
    assert "/proc/x.png" in line
    assert _leftovers(tmp_path) == []


def test_failure_while_writing_leaves_nothing(tmp_path, capsys, monkeypatch):
    # The plot fails after the CSV was already staged: neither appears, no temporary file stays.
    def broken(fig, path, dpi=110):
        raise RuntimeError(f"renderer crashed writing {path}")
    monkeypatch.setattr(plot, "save", broken)
    out, png = tmp_path / "ok.csv", tmp_path / "sub" / "fig.png"
    line = _one_line_error(capsys, main(SIM + ["--out", str(out), "--plot", str(png)]))
    assert str(png) in line
    assert _leftovers(tmp_path) == []


def test_unexpected_exception_is_one_line(tmp_path, capsys, monkeypatch):
    def boom(*a, **k):
        raise ZeroDivisionError("float division by zero")
    monkeypatch.setattr(cli_fit, "fit", boom)
    src = _trace_csv(tmp_path / "x.csv")
    line = _one_line_error(capsys, main(["fit", src]))
    assert "ZeroDivisionError" in line


def test_keyboard_interrupt_in_process(tmp_path, capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli_fit, "fit", interrupted)
    src = _trace_csv(tmp_path / "x.csv")
    line = _one_line_error(capsys, main(["fit", src, "--out", str(tmp_path / "f.json")]), 130)
    assert line == "hhjax fit: interrupted"
    assert _leftovers(tmp_path) == ["x.csv"]


@pytest.mark.parametrize("wait", [0.5, 3.0])
def test_ctrl_c_as_a_program(tmp_path, wait):
    """SIGINT to a running ``hhjax simulate`` (a long run, so that it is inside the work)."""
    out = tmp_path / "big.npz"
    cmd = [sys.executable, "-c", "import sys; from hhjax.cli import main; "
           "print('started', flush=True); sys.exit(main())",
           "simulate", "--duration", "20000000", "--dt", "0.025", "--record-every", "100", "--out", str(out)]
    env = dict(os.environ, HHJAX_NO_CACHE="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "started"  # imports done
    time.sleep(wait)  # while compiling (0.5 s) or running (3 s)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert lines == ["hhjax simulate: interrupted"], err
    assert _leftovers(tmp_path) == []
