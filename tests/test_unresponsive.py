"""A sweep whose hyperpolarising step leaves the voltage unmoved (a dead or mispaired
channel) is named, warned about and never chosen for the fit
(:func:`hhjax.recordings.choice.unresponsive_sweeps`); no real cell in the repo is."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from hhjax.io import example_recording, load_recording
from hhjax.io.examples import example_recordings_dirs
from hhjax.recordings.bridge import balance_bridge
from hhjax.recordings.choice import choose_sweeps, unresponsive_sweeps, warn_if_unresponsive

SHIPPED = ("171116sh_0016.abf", "171116sh_0018.abf", "17o05028_ic_steps.abf", "18711001.abf",
           "File_axon_5.abf", "current.txt", "B6", "B8", "B95")


def _load(name):
    try:
        path = example_recording(name)
    except FileNotFoundError:
        pytest.skip(f"{name} is in neither of {[str(d) for d in example_recordings_dirs()]}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_recording(path)


@pytest.mark.parametrize("name", SHIPPED)
def test_no_real_cell_is_called_unresponsive(name):
    """As loaded, and as a fit sees it (bridge balanced). 17o05028, firing at rest, moves
    1.3 mV for its -10 pA steps and 62 mV for -50 pA: judged by the median slope, the small
    steps alone would look dead."""
    rec = _load(name)
    assert unresponsive_sweeps(rec) == []
    assert unresponsive_sweeps(balance_bridge(rec)) == []


def test_a_dead_sweep_is_named_and_not_chosen():
    """17o05028's subthreshold pick is sweep 5, a -50 pA step (of its silent sweeps, the
    one with the most spontaneous spikes). Its voltage replaced by its own first sample, as
    a disconnected channel records, it is named, and another sweep is fitted instead."""
    rec = _load("17o05028_ic_steps.abf")
    before = choose_sweeps(rec)
    assert 5 in before
    k = rec.sweeps.index(5)
    v = np.array(rec.v)
    v[k] = v[k, 0] + 0.05 * np.random.default_rng(0).standard_normal(v.shape[1])  # amplifier noise only
    dead = dataclasses.replace(rec, v=v)
    assert unresponsive_sweeps(dead) == [5]
    after = choose_sweeps(dead)
    assert 5 not in after and len(after) == len(before)
    with pytest.warns(UserWarning, match=r"sweeps? \[5\]: .*mispaired.*the fit leaves them out"):
        warn_if_unresponsive(dead, after)
    with pytest.warns(UserWarning, match=r"the fit includes \[5\], as asked"):
        warn_if_unresponsive(dead, [5, 6])
