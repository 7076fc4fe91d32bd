"""NEURON export: compiled with nrnivmodl and run in NEURON itself, every model (and a cell
fitted by hhjax.fit, read back from its fit.json) gives the spike times of
``hhjax.simulate(..., method="neuron")``: the same count and every time within 0.05 ms over
1 s at dt 0.025 ms, for 3 step currents spanning the model's f–I range.

NEURON runs in a subprocess per export (tests/neuron_runner.py), so mechanisms of different
exports never meet in one process. Each export is compiled once per test session (per xdist
worker that needs it), cached in a tmp_path_factory folder.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import hhjax
from hhjax.export import to_neuron
from neuron_runner import crossing_times  # tests/ is on sys.path (rootless test modules)

DT, TSTOP, START, STOP = 0.025, 1000.0, 100.0, 900.0
RUNNER = Path(__file__).with_name("neuron_runner.py")

# Currents (hhjax stimulus units) near rheobase, mid-range and high (spike counts over the
# 100-900 ms step with method="neuron"): HH fires from ~6.3 µA/cm²; the reduced model from
# ~4 to ~7.5 µA/cm² (18-37 spikes; block at 8); HH at 12 °C with g_na 150 from below 5 to
# ~60 µA/cm² (80-175 spikes; block at 80); Pospischil RS and FS from ~100 pA (9 and 8 Hz)
# to ~1 nA (145 and 175 Hz).
CASES = {
    "hh_builtin": (lambda: hhjax.presets.NEURON, (8.0, 20.0, 60.0)),
    "hh1952": (lambda: hhjax.presets.HH1952, (8.0, 20.0, 60.0)),
    "hh_warm": (lambda: dataclasses.replace(hhjax.presets.NEURON, celsius=12.0, g_na=150.0),
                (5.0, 20.0, 60.0)),
    "reduced": (lambda: hhjax.presets.REDUCED, (4.0, 6.0, 7.5)),
    "pospischil_rs": (lambda: hhjax.presets.POSPISCHIL, (100.0, 400.0, 1000.0)),
    "pospischil_fs": (lambda: hhjax.presets.POSPISCHIL_FS, (100.0, 300.0, 1000.0)),
    "fitted": (None, (100.0, 400.0, 1000.0)),
}


def _tool(name):
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    return found


@pytest.fixture(scope="session")
def fitted_json(tmp_path_factory):
    """A fit.json written by hhjax.fit + save_fit: a Pospischil cell fitted to a synthetic
    trace (true g_na 50, g_k 5, V_T -58 mV; started from the RS preset)."""
    true = dataclasses.replace(hhjax.presets.POSPISCHIL, g_na=50.0, g_k=5.0, v_t=-58.0)
    stim = hhjax.stimulus.step(300.0, 20.0, 180.0)
    v = hhjax.simulate(true, stim, duration=200.0, dt=0.05).v
    res = hhjax.fit(v, stim, hhjax.presets.POSPISCHIL, dt=0.05, trainable=("g_na", "g_k", "v_t"),
                    steps=8, n_starts=1, progress=False)
    return hhjax.save_fit(tmp_path_factory.mktemp("fit") / "fit.json", res)


@pytest.fixture(scope="session")
def compiled(tmp_path_factory, fitted_json):
    """``compiled(case) -> export dir``, compiled with nrnivmodl on first use."""
    pytest.importorskip("neuron", reason="NEURON (pip package 'neuron') is not installed")
    nrnivmodl = _tool("nrnivmodl")
    if nrnivmodl is None:
        pytest.skip("nrnivmodl not found (comes with the pip package 'neuron')")
    if not (shutil.which("cc") or shutil.which("gcc") or shutil.which("c++")):
        pytest.skip("no C compiler: nrnivmodl cannot compile the exported .mod files")
    root = tmp_path_factory.mktemp("neuron_exports")
    cache = {}

    def get(case):
        if case not in cache:
            make, _ = CASES[case]
            out = to_neuron(fitted_json if make is None else make(), root / case)
            if list(out.glob("*.mod")):
                done = subprocess.run([nrnivmodl], cwd=out, capture_output=True, text=True)
                assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            cache[case] = out
        return cache[case]

    return get


def _neuron_spikes(directory, amps):
    done = subprocess.run(
        [sys.executable, str(RUNNER), str(directory), str(DT), str(TSTOP), str(START), str(STOP),
         *map(str, amps)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["n_samples"] == round(TSTOP / DT) + 1
    return [np.asarray(s) for s in out["spikes"]]


def _hhjax_spikes(params, amps):
    with jax.enable_x64(True):
        tr = hhjax.simulate(params, hhjax.stimulus.step(np.asarray(amps), START, STOP),
                            duration=TSTOP, dt=DT, method="neuron")
        t, v = np.asarray(tr.t), np.asarray(tr.v)
    return [crossing_times(t, vi) for vi in v]


@pytest.mark.parametrize("case", list(CASES))
def test_neuron_export_spikes_match_hhjax(case, compiled, fitted_json):
    make, amps = CASES[case]
    params = hhjax.load_params(fitted_json) if make is None else make()
    ours = _hhjax_spikes(params, amps)
    theirs = _neuron_spikes(compiled(case), amps)
    counts = [len(x) for x in ours]
    assert 3 <= counts[0] < counts[1] < counts[2], counts  # spans the f–I range
    for amp, a, b in zip(amps, ours, theirs):
        assert len(a) == len(b), f"{case} at {amp}: hhjax {len(a)} spikes, NEURON {len(b)}"
        assert len(a) > 0, f"{case} at {amp}: no spikes, the current does not test anything"
        np.testing.assert_allclose(a, b, atol=0.05, rtol=0, err_msg=f"{case} at {amp}")


def test_fitted_values_are_the_mod_defaults(tmp_path, fitted_json):
    params = hhjax.load_params(fitted_json)
    out = to_neuron(fitted_json, tmp_path / "cell")
    hh2 = (out / "hhjax_pos_hh2.mod").read_text()

    def default(name, text):
        return float(re.search(rf"^\s*{name} = (\S+)", text, re.M).group(1))

    assert default("gnabar", hh2) == pytest.approx(params.g_na / 1000.0, rel=1e-15)  # S/cm²
    assert default("gkbar", hh2) == pytest.approx(params.g_k / 1000.0, rel=1e-15)
    assert default("vt", hh2) == params.v_t
    assert params.v_t != hhjax.presets.POSPISCHIL.v_t  # the fit moved it: the test can fail
    im = (out / "hhjax_pos_im.mod").read_text()
    assert default("taumax", im) == params.tau_max
    assert "nrnivmodl" in (out / "README.md").read_text()


def test_builtin_hh_needs_no_mod_files(tmp_path):
    out = to_neuron(hhjax.presets.NEURON, tmp_path / "hh")
    assert not list(out.glob("*.mod"))
    assert "'hh'" in (out / "hhjax_cell.py").read_text()
    out = to_neuron(hhjax.presets.HH1952, tmp_path / "hh1952")  # v_offset 0: not NEURON's hh
    assert [p.name for p in out.glob("*.mod")] == ["hhjax_hh.mod"]


def test_export_refuses_non_empty_directory_and_batches(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        to_neuron(hhjax.presets.NEURON, tmp_path / "x")
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"  # untouched
    to_neuron(hhjax.presets.NEURON, tmp_path / "x", force=True)
    assert not (tmp_path / "x" / "keep.txt").exists()
    batched = dataclasses.replace(hhjax.presets.NEURON, g_na=np.array([100.0, 120.0]))
    with pytest.raises(ValueError, match="one cell"):
        to_neuron(batched, tmp_path / "y")
    assert not (tmp_path / "y").exists()


def test_export_rejects_unknown_model_and_version(tmp_path):
    bad_model = tmp_path / "m.json"
    bad_model.write_text(json.dumps({"model": "izhikevich", "params": {"a": 0.02}}))
    with pytest.raises(ValueError, match="unknown model"):
        to_neuron(bad_model, tmp_path / "a")
    bad_version = tmp_path / "v.json"
    bad_version.write_text(json.dumps({"version": 99, "model": "hh", "params": {"g_na": 1.0}}))
    with pytest.raises(ValueError, match="version 99"):
        to_neuron(bad_version, tmp_path / "b")
