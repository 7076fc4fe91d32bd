"""Shared fixtures: the (expensive) independent Radau references, computed once per session."""

from __future__ import annotations

import os
import sys
import tempfile

# One persistent XLA compilation cache for every pytest worker and every notebook kernel
# (they inherit the environment): the suite compiles the same programs many times over.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "hhjax-test-xla-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax
import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import reference  # noqa: E402  (tests/reference.py: scipy, written from the equations)


@pytest.fixture(scope="session")
def radau_step():
    """NEURON's hh under 10 µA/cm² from 10 to 90 ms for 100 ms, Radau rtol 1e-10
    (tests/reference.py; independent of hhjax): ``(piecewise solutions, spike times)``."""
    sols, spikes = reference.reference_step_response(reference.neuron_params(), 10.0, 10.0, 90.0, 100.0)
    assert len(spikes) >= 5  # sanity: a repetitively firing reference
    return sols, np.asarray(spikes)


@pytest.fixture(scope="session")
def radau_step_spikes(radau_step):
    """0 mV upward crossings (ms) of the Radau reference above."""
    return radau_step[1]


@pytest.fixture(scope="session")
def radau_rest_200ms():
    """State (v, m, h, n) of NEURON's hh after 200 ms at I = 0 from v = -65 (Radau)."""
    sols, _ = reference.reference_step_response(reference.neuron_params(), 0.0, 0.0, 200.0, 200.0)
    return np.asarray(sols[-1].y[:, -1])


@pytest.fixture
def x64():
    """Run the test body with float64 enabled, without leaking into other tests."""
    with jax.enable_x64(True):
        yield
