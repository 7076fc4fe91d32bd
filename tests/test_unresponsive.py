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


def test_a_step_in_the_middle_of_a_dual_step_is_not_judged():
    """A cell in depolarisation block after a +300 pA step can sit at -15 mV through the
    -100 pA epoch that follows it directly (a simulated FS cell did, for 150 ms): that
    epoch starts from the block, not from the baseline, so it says nothing about the
    channel. Hand-built: 100 MΩ on three single steps; two dual-step sweeps stay at -15 mV
    from the first step to the end of the second. Judged as a step from the baseline, the
    dual-step sweeps (the ones that reach threshold) were named dead and never fitted."""
    from hhjax.io import Recording

    t = np.arange(0.0, 1000.0, 0.1)
    rows_i, rows_v = [], []
    for amp in (-50.0, -100.0, -150.0):
        i = np.where((t >= 100) & (t < 400), amp, 0.0)
        rows_i.append(i)
        rows_v.append(-70.0 + 0.1 * i)
    for _ in range(2):
        i = np.select([(t >= 100) & (t < 400), (t >= 400) & (t < 600), (t >= 600) & (t < 800)], [300.0, -100.0, 300.0])
        rows_i.append(i)
        rows_v.append(np.where((t >= 100) & (t < 800), -15.0, -70.0))
    rec = Recording(t, np.array(rows_v), np.array(rows_i), (0, 1, 2, 3, 4), 1e4, "dual")
    assert unresponsive_sweeps(rec) == []
    # The same -100 pA epoch, but starting from the baseline (after a return to 0 pA), is judged.
    v, i = np.array(rec.v), np.array(rec.i)
    i[3] = np.where((t >= 450) & (t < 650), -100.0, 0.0)
    v[3] = -70.0 + 0.0 * t
    assert unresponsive_sweeps(dataclasses.replace(rec, v=v, i=i)) == [3]
