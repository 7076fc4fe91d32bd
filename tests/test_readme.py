"""The README's Python example runs as written (users copy it first)."""

import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_python_example_runs_and_recovers_the_preset():
    blocks = _python_blocks()
    assert blocks, "the README lost its Python example"
    scope = {}
    for code in blocks:
        exec(compile(code, str(README), "exec"), scope)
    # The fit in the example targets a noisy trace of the NEURON preset itself.
    preset = scope["presets"].NEURON
    for name in ("g_na", "g_k", "g_l", "e_l"):
        fitted, truth = float(getattr(scope["res"].params, name)), float(getattr(preset, name))
        assert abs(fitted - truth) <= 0.05 * abs(truth), (name, fitted, truth)
    assert np.asarray(scope["batch"].spike_count).shape == (10_000,)
    # The recording example: 18711001.abf holds 30 sweeps (SOURCES.md); four are fitted.
    assert len(scope["cell"].sweeps) == 4 and scope["summary"]["n_sweeps"] == 30
