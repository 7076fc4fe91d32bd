"""``hhjax export``: writes the NEURON / NeuroML files; bad input is one line on stderr, exit 2."""

from __future__ import annotations

import dataclasses
import json

import pytest

import hhjax
from hhjax.cli import main


@pytest.fixture
def fit_json(tmp_path):
    params = dataclasses.replace(hhjax.presets.POSPISCHIL, g_na=44.0)
    return hhjax.save_params(tmp_path / "fit.json", params)


def _one_line_error(capsys, needle):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hhjax export: error:") and needle in err, err


def test_export_neuron_and_neuroml(fit_json, tmp_path, capsys):
    assert main(["export", str(fit_json), "--to", "neuron", str(tmp_path / "nrn")]) == 0
    assert "gnabar = 0.044 (S/cm2)" in (tmp_path / "nrn" / "hhjax_pos_hh2.mod").read_text()
    assert (tmp_path / "nrn" / "hhjax_cell.py").exists()
    pytest.importorskip("neuroml", reason="libNeuroML is not installed")
    assert main(["export", str(fit_json), "--to", "neuroml", str(tmp_path / "nml")]) == 0
    assert 'condDensity="44.0mS_per_cm2"' in (tmp_path / "nml" / "hhjax_cell.net.nml").read_text()


def test_export_refuses_non_empty_directory_unless_forced(fit_json, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    assert main(["export", str(fit_json), "--to", "neuron", str(out)]) == 2
    _one_line_error(capsys, "not empty")
    assert (out / "notes.txt").read_text() == "keep"
    assert main(["export", str(fit_json), "--to", "neuron", str(out), "--force"]) == 0
    assert not (out / "notes.txt").exists() and (out / "hhjax_cell.py").exists()


@pytest.mark.parametrize("content, needle", [
    ({"model": "izhikevich", "params": {"a": 0.02}}, "unknown model 'izhikevich'"),
    ({"version": 3, "model": "hh", "params": {"g_na": 100.0}}, "file version 3"),
    ({"model": "hh", "params": {"g_xx": 1.0}}, "unknown parameters"),
])
def test_export_bad_fit_json(tmp_path, capsys, content, needle):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(content))
    assert main(["export", str(bad), "--to", "neuron", str(tmp_path / "out")]) == 2
    _one_line_error(capsys, needle)
    assert not (tmp_path / "out").exists()
