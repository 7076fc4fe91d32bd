"""Random rig protocols on simulated cells go through every step of a recording fit but the
search without an error, and the sweeps chosen are ones a fit can use
(``scripts/fuzz_protocols.py`` runs many; here hypothesis draws a few)."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import hhjax
from hhjax import stimulus
from hhjax.io import Recording
from hhjax.models.pospischil import FS
from hhjax.recordings.choice import choose_sweeps, unresponsive_sweeps

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "fuzz_protocols.py"
_spec = importlib.util.spec_from_file_location("fuzz_protocols", SCRIPT)
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

CASES = st.fixed_dictionaries(dict(
    cell=st.sampled_from(sorted(fuzz.CELLS)), g_l_scale=st.floats(0.5, 2.0), g_k_scale=st.floats(0.37, 1.65),
    v_t_shift=st.floats(-8.0, 8.0), area_scale=st.floats(0.5, 2.0), kind=st.sampled_from(fuzz.KINDS),
    amps=st.lists(st.floats(-200.0, 600.0), min_size=1, max_size=6), hold=st.sampled_from([0.0, -50.0, 120.0]),
    duration_ms=st.just(300.0), rate_hz=st.sampled_from([4000.0, 10000.0, 20000.0]),
    noise_mV=st.sampled_from([0.3, 2.0]), seed=st.integers(0, 100)))


@settings(max_examples=12, deadline=None, derandomize=True, database=None)
@given(CASES)
def test_any_protocol_goes_through_the_pipeline(case):
    chosen = fuzz.check_case(*fuzz.case_recording(**case))
    assert 1 <= len(chosen) <= min(4, len(case["amps"]))


def test_a_cell_in_block_through_a_dual_steps_middle_epoch_keeps_its_spiking_sweeps():
    """An FS cell with little K+ conductance blocks at -16 mV under +340 pA and stays there
    through the -100 pA epoch that follows directly (the model is bistable there). Judged
    as a step from the baseline, that epoch named its three spiking sweeps dead channels,
    and the fit got the one quiet sweep; they are fitted now."""
    params = dataclasses.replace(FS, g_k=1.6, v_t=-54.5, g_l=0.054, area=1.5e-4)
    cmd = fuzz.command("dual_adjacent", [-40.0, -30.0, 340.0, 340.0, 600.0], 0.0, 1500.0)
    trace = hhjax.simulate(params, stimulus.sampled(jnp.asarray(cmd), fuzz.SIM_DT),
                           duration=(cmd.shape[1] - 1) * fuzz.SIM_DT, dt=fuzz.SIM_DT)
    v, t = np.asarray(trace.v)[:, ::2], np.arange(cmd.shape[1])[::2] * fuzz.SIM_DT
    rec = Recording(t, v, cmd[:, ::2], tuple(range(5)), 1e4, "blocked dual steps")
    late_in_epoch = (t > 675) & (t < 750)          # the -100 pA epoch runs 600-750 ms
    assert np.all(np.median(v[2:, late_in_epoch], 1) > -30.0)   # still in block
    assert unresponsive_sweeps(rec) == []
    assert {2, 3, 4} & set(choose_sweeps(rec))
