"""Issue 16: a recording fit killed with SIGKILL and rerun with the same --checkpoint resumes
and ends with exactly the parameters of an uninterrupted run (CPU, bit for bit)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from hhjax import simulate
from hhjax.io import Recording
from hhjax.models.pospischil import RS
from hhjax.recordings.checkpoint import FILE
from hhjax.recordings.evaluation import model_rest

DT = 0.2
TRUE = dataclasses.replace(RS, g_na=70.0, g_k=5.0, g_l=0.03, e_l=-68.0, area=1.0e-4)
FIT = ["fit", "--model", "pospischil", "--trainable", "g_na,g_k,g_l,area", "--starts", "2",
       "--steps", "3", "--dt", str(DT), "--generations", "4", "--population", "24"]


def _recording(path):
    n = int(round(200.0 / DT))
    t = np.arange(n + 1) * DT
    i = np.zeros((2, n + 1))
    for k, a in enumerate((-60.0, 150.0)):
        i[k, (t >= 30.0 - 1e-9) & (t < 170.0 - 1e-9)] = a
    v = np.asarray(simulate(TRUE, i[:, :n], duration=n * DT, dt=DT, y0=float(model_rest(TRUE)),
                            spike_threshold=None).v)
    return Recording(t, v, i, (0, 1), 1000.0 / DT, "synthetic").to_npz(path)


def _run(args, env, wait_for=None):
    code = "import sys; from hhjax.cli import main; sys.exit(main())"
    proc = subprocess.Popen([sys.executable, "-c", code] + args, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if wait_for is None:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        return out
    deadline = time.time() + 600
    while not os.path.exists(wait_for) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the fit ended before its first checkpoint could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return None


def test_killed_fit_resumes_to_the_same_parameters(tmp_path):
    rec = _recording(tmp_path / "cell.npz")
    env = dict(os.environ, HHJAX_NO_CACHE="1")
    _run([*FIT, str(rec), "--out", str(tmp_path / "plain.json")], env)
    assert not (tmp_path / "plain.json.checkpoint").exists()  # the default checkpoint, removed at the end
    ckpt = tmp_path / "ckpt"
    _run([*FIT, str(rec), "--out", str(tmp_path / "resumed.json"), "--checkpoint", str(ckpt)], env,
         wait_for=ckpt / FILE)
    assert (ckpt / FILE).exists() and not (tmp_path / "resumed.json").exists()
    with np.load(ckpt / FILE) as z:
        killed_at = (int(z["generation"]), int(z["lm_it"]))
    assert killed_at < (4, 3)  # it was killed part-way
    _run([*FIT, str(rec), "--out", str(tmp_path / "resumed.json"), "--checkpoint", str(ckpt)], env)
    plain = json.loads((tmp_path / "plain.json").read_text())
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert resumed["params"] == plain["params"]
    assert resumed["loss"] == plain["loss"]
    assert [p.name for p in ckpt.iterdir()] == [FILE]  # no temporary files left


def test_checkpoint_of_another_fit_is_refused(tmp_path):
    from hhjax.recordings.checkpoint import Checkpoint
    a = Checkpoint(tmp_path, "fit A")
    rng = np.random.default_rng(0)
    a.save(generation=1, mu=np.zeros(2), sig=np.ones(2), rng=rng, pool_z=[np.zeros((3, 2))],
           pool_l=[np.zeros(3, np.float32)], history=[1.0])
    assert a.load()["generation"] == 1
    with pytest.raises(ValueError, match="different fit"):
        Checkpoint(tmp_path, "fit B").load()
