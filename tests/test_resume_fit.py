"""Issue 16: ``hhjax.fit(..., checkpoint=DIR)`` and ``hhjax fit trace.csv --checkpoint DIR``.
A trace fit SIGKILLed right after its first checkpoint and run again ends exactly (bit for bit,
CPU) where an uninterrupted fit ends; so does one interrupted in either strategy's loop."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import hhjax
from hhjax.cli import main
from hhjax.fitting import fitter
from hhjax.fitting.resume import TRACE_FIT_FILE, StateFile, state_arrays, state_from_arrays

TRUE = dataclasses.replace(hhjax.presets.NEURON, g_na=100.0, g_k=30.0)
STIM = hhjax.stimulus.step(10.0, 5.0, 25.0)
KW = dict(dt=0.025, trainable=("g_na", "g_k"), n_starts=2, progress=False)


def _target():
    v = np.asarray(hhjax.simulate(TRUE, STIM, duration=30.0, dt=0.025).v)
    return v + np.random.default_rng(0).normal(0.0, 0.5, v.shape)  # noise: several iterations


class Crash(Exception):
    """A failure in the middle of a fit (the process goes on; the SIGKILL test kills it)."""


def _same(a, b):
    assert [float(getattr(a.params, n)) for n in a.trainable] == [float(getattr(b.params, n)) for n in b.trainable]
    np.testing.assert_array_equal(a.history, b.history)
    np.testing.assert_array_equal(a.start_losses, b.start_losses)
    np.testing.assert_array_equal(a.covariance, b.covariance)
    assert a.reasons == b.reasons and a.settings["iterations"] == b.settings["iterations"]


_CHILD = """
import os, signal, sys
import numpy as np
sys.path.insert(0, {root!r})
import hhjax
from hhjax.fitting import fitter
save = fitter.save_fit_state
def save_then_die(*a, **k):
    save(*a, **k)
    os.kill(os.getpid(), signal.SIGKILL)
fitter.save_fit_state = save_then_die
v = np.load({target!r})
hhjax.fit(v, hhjax.stimulus.step(10.0, 5.0, 25.0), dt=0.025, trainable=("g_na", "g_k"), n_starts=2,
          progress=False, checkpoint={ckpt!r})
"""


def test_sigkilled_fit_resumes_bit_for_bit(tmp_path):
    v = _target()
    np.save(tmp_path / "v.npy", v)
    ckpt = tmp_path / "ckpt"
    root = os.path.dirname(os.path.dirname(os.path.abspath(hhjax.__file__)))
    code = _CHILD.format(root=root, target=str(tmp_path / "v.npy"), ckpt=str(ckpt))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert proc.returncode == -9, proc.stderr  # killed by its own SIGKILL after the first save
    with np.load(ckpt / TRACE_FIT_FILE) as z:
        assert int(z["iteration"]) == 1 and not bool(z["finished"])
    resumed = hhjax.fit(v, STIM, **KW, checkpoint=str(ckpt))
    plain = hhjax.fit(v, STIM, **KW)
    assert plain.settings["iterations"] > 2  # the kill came part-way through
    _same(resumed, plain)
    assert sorted(p.name for p in ckpt.iterdir()) == [TRACE_FIT_FILE]  # no temporary files left
    _same(hhjax.fit(v, STIM, **KW, checkpoint=str(ckpt)), plain)  # finished: returns the same at once


@pytest.mark.parametrize("extra", [{}, {"loss": "spikes", "steps": 6}], ids=["levenberg-marquardt", "optax"])
def test_interrupted_fit_resumes_bit_for_bit(tmp_path, monkeypatch, extra):
    v = _target()
    calls = []

    def save_then_stop(*a, **k):
        fitter_save(*a, **k)
        calls.append(1)
        if len(calls) == 2:
            raise Crash

    fitter_save = fitter.save_fit_state
    monkeypatch.setattr(fitter, "save_fit_state", save_then_stop)
    with pytest.raises(Crash):
        hhjax.fit(v, STIM, **KW, **extra, checkpoint=str(tmp_path))
    monkeypatch.setattr(fitter, "save_fit_state", fitter_save)
    _same(hhjax.fit(v, STIM, **KW, **extra, checkpoint=str(tmp_path)), hhjax.fit(v, STIM, **KW, **extra))


def test_checkpoint_of_other_inputs_is_refused(tmp_path):
    v = _target()
    hhjax.fit(v, STIM, **KW, steps=1, checkpoint=str(tmp_path))
    with pytest.raises(ValueError, match="different fit"):  # other random starts
        hhjax.fit(v, STIM, **KW, steps=1, key=jax.random.PRNGKey(1), checkpoint=str(tmp_path))
    (tmp_path / "plain").write_text("")
    with pytest.raises(ValueError, match="not a directory"):
        StateFile(tmp_path / "plain", TRACE_FIT_FILE, "x")


def test_state_round_trip_keeps_types_and_bits():
    import jax.numpy as jnp
    from hhjax.fitting.optimizers import OptaxState
    state = OptaxState(jnp.arange(3.0), ((jnp.zeros(2), jnp.ones((), jnp.int32)), None), jnp.float32(0.1),
                       np.array([np.pi]), jnp.array([1e-30]), -1)
    back = state_from_arrays(state, [a.copy() for a in state_arrays(state)])
    for a, b in zip(state_arrays(state), state_arrays(back)):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert isinstance(back.z, type(state.z)) and isinstance(back.best_z, np.ndarray) and back.nan_at == -1


def test_cli_trace_fit_resumes_from_its_checkpoint(tmp_path, capsys):
    trace = tmp_path / "trace.csv"
    assert main(["simulate", "--set", "g_na=100", "--amplitude", "10", "--start", "5", "--stop", "25",
                 "--duration", "30", "--dt", "0.025", "--out", str(trace)]) == 0
    fit = ["fit", str(trace), "--trainable", "g_na,g_k", "--starts", "2", "--steps", "3"]
    assert main(fit + ["--out", str(tmp_path / "plain.json")]) == 0
    ckpt = tmp_path / "ckpt"
    for _ in range(2):  # the second run finds the finished state and ends with the same result
        assert main(fit + ["--out", str(tmp_path / "resumed.json"), "--checkpoint", str(ckpt)]) == 0
        plain, resumed = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("plain", "resumed"))
        assert resumed["params"] == plain["params"] and resumed["loss"] == plain["loss"]
    assert (ckpt / TRACE_FIT_FILE).exists()


def test_recording_fits_checkpoint_by_default_without_out(tmp_path, monkeypatch, capsys):
    """Without --out a recording fit checkpoints in the cache, under a name that the same
    command finds again and another command (or recording) does not."""
    from hhjax.cli import fit as cli_fit
    from hhjax.io import Recording
    t = np.arange(200) * 0.1
    rec = Recording(t, np.full((1, 200), -65.0), np.zeros((1, 200)), (0,), 1e4, "x").to_npz(tmp_path / "a.npz")
    monkeypatch.setattr(cli_fit, "CHECKPOINTS", str(tmp_path / "cache"))
    seen = []

    class Stop(Exception):
        pass

    def fake_fit(rec, model, **kw):
        seen.append(kw["checkpoint"])
        raise Stop

    monkeypatch.setattr(cli_fit, "fit_with_model", fake_fit)
    base = ["fit", str(rec), "--model", "pospischil", "--generations", "2"]
    for args in (base, base, base[:-1] + ["3"], base + ["--out", str(tmp_path / "o.json")]):
        assert main(args) == 2  # the stub's error, reported as one line
    assert os.path.dirname(seen[0]) == str(tmp_path / "cache") and seen[0] == seen[1] != seen[2]
    assert seen[3] == str(tmp_path / "o.json") + ".checkpoint"
    assert main(base + ["--no-checkpoint"]) == 2
    assert seen[4] is None and len(seen) == 5
