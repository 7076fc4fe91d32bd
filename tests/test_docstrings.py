"""Every example in hhjax's docstrings runs and prints what the docstring says (doctest).

A module's own docstring runs first; its names (e.g. the traces of :mod:`hhjax.features`)
are then visible to the examples of the module's functions, as a reader would assume.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil

import numpy as np
import pytest

import hhjax
from hhjax.io import example_recordings_dirs

MODULES = sorted(m.name for m in pkgutil.walk_packages(hhjax.__path__, "hhjax."))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    module = importlib.import_module(name)
    if name in ("hhjax.io.formats", "hhjax.io.igor") and \
            not any(d.is_dir() for d in example_recordings_dirs()):
        pytest.skip("its example reads data/recordings (the repo's copy) or "
                    "../shared/data/recordings, and neither is here (an installed wheel?)")
    # The finder keeps only objects defined in this module, not ones imported into it.
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    out = io.StringIO()
    shared = {}
    # NumPy's default print options, whatever another test's imports have set.
    with np.printoptions(precision=8, threshold=1000, edgeitems=3, linewidth=75, suppress=False):
        for test in sorted(tests, key=lambda t: t.name != name):  # the module's docstring first
            test.globs.update(shared)
            runner.run(test, out=out.write, clear_globs=False)
            if test.name == name:
                shared = {k: v for k, v in test.globs.items() if k not in vars(module)}
    assert runner.failures == 0, out.getvalue()


def test_every_public_function_has_an_example():
    missing = []
    for name in hhjax.__all__:
        obj = getattr(hhjax, name)
        if callable(obj) and not isinstance(obj, type) and ">>>" not in (obj.__doc__ or ""):
            missing.append(name)
    assert not missing, f"public functions without an example: {missing}"
