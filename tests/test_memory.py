"""Issue 16: the memory guard. Calls that cannot fit raise a one-line MemoryError before
anything compiles; calls whose result fits run in chunks of neurons and equal the whole run."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax import stimulus as S
from hhjax.simulation import memory

P = hhjax.presets.NEURON
GB = 1e9


def test_hundred_million_neurons_is_refused():
    # 1e4 x 1e4 neurons by broadcasting (no 1e8-element input array needed).
    params = dataclasses.replace(P, g_na=jnp.linspace(100.0, 140.0, 10**4)[:, None])
    with pytest.raises(MemoryError, match=r"100000000 neuron.*record_every >= \d+") as info:
        hhjax.simulate(params, S.constant(jnp.linspace(2.0, 20.0, 10**4)), duration=10.0, dt=0.025,
                       max_memory=16 * GB)
    assert "\n" not in str(info.value)


def test_tiny_dt_is_refused():
    with pytest.raises(MemoryError, match=r"2000000001 samples.*record_every"):
        hhjax.simulate(P, 10.0, duration=2.0, dt=1e-9, max_memory=16 * GB)


def test_refused_under_jit_too():
    f = jax.jit(lambda a: hhjax.simulate(P, a, duration=2.0, dt=1e-9, max_memory=16 * GB).v[-1])
    with pytest.raises(MemoryError):
        f(10.0)


@pytest.mark.parametrize("grid", [False, True])
def test_chunks_equal_one_run(grid):
    amps = jnp.linspace(0.0, 20.0, 300)
    stim = S.step(amps, 1.0, 8.0)
    if grid:
        t = jnp.arange(400) * 0.025
        stim = jnp.where((t >= 1.0) & (t < 8.0), amps[:, None], 0.0)
    whole = hhjax.simulate(P, stim, duration=10.0, dt=0.025)
    trace_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(whole.state))
    need = memory.estimate(_call_of(stim))["total"]
    budget = trace_bytes + need // 5  # the result plus a fifth of one run
    chunk = memory.plan(_call_of(stim), max_memory=budget)
    assert chunk is not None and 1 <= chunk < 300
    parts = hhjax.simulate(P, stim, duration=10.0, dt=0.025, max_memory=budget)
    for name in ("v", "m", "h", "n", "spike_count", "diverged"):
        np.testing.assert_array_equal(np.asarray(getattr(parts, name)), np.asarray(getattr(whole, name)))
    assert int(np.sum(whole.spike_count)) > 0


def _call_of(stim):
    from hhjax.simulation.backends import SimulationCall
    grid = None if callable(stim) else stim
    return SimulationCall(params=P, stim=stim if callable(stim) else None, grid=grid, y0=None,
                          batch=(300,), n_steps=400, dt=0.025, method="exp_euler", record_every=1,
                          checkpoint_every=None, spike_threshold=0.0)


def test_opaque_stimulus_is_not_chunked_but_refused():
    amps = jnp.linspace(0.0, 20.0, 300)
    with pytest.raises(MemoryError, match="simulate: needs about"):
        hhjax.simulate(P, lambda t: amps * (t > 1.0), duration=10.0, dt=0.025, max_memory=1e6)


def test_environment_variable(monkeypatch):
    monkeypatch.setenv("HHJAX_MAX_MEMORY", "1M")
    assert memory.max_memory_from_env() == 1 << 20
    with pytest.raises(MemoryError, match=r"allowed \(max_memory\)"):
        hhjax.simulate(P, 10.0, duration=200.0, dt=0.001)


def test_estimate_counts_every_variable():
    call = _call_of(S.constant(1.0))
    est = memory.estimate(call)
    assert est["trace"] == 4 * 300 * 401 * 4
    assert est["total"] >= est["factor"] * est["trace"] and est["factor"] >= memory.PEAK_FACTOR
    assert memory.available() > 0


# Records written into the trace block by block (large traces) against stacked time-major
# and transposed at the end (small traces): the same numbers, bit for bit.
BLOCK_CASES = {
    "301 neurons (padded), rk4, step": (P, S.step(jnp.linspace(0.0, 20.0, 301), 1.0, 8.0), dict(method="rk4")),
    "one neuron, sampled, record_every": (P, 10.0 * jnp.sin(jnp.arange(400) * 0.02) + 5.0, dict(record_every=4)),
    "checkpoint_every, v only": (hhjax.presets.POSPISCHIL, S.step(jnp.array([100.0, 300.0]), 1.0, 8.0),
                                 dict(checkpoint_every=40, record_every=2, record=("v",))),
    "prime number of records": (hhjax.presets.REDUCED, S.step(jnp.array([1.0, 5.0]), 1.0, 8.0),
                                dict(method="euler", duration=401 * 0.025)),
}


@pytest.mark.parametrize("name", list(BLOCK_CASES))
def test_blocks_equal_stacked_records(name, monkeypatch):
    from hhjax.simulation import scan
    params, stim, kw = BLOCK_CASES[name]
    kw = dict(dict(duration=10.0, dt=0.025), **kw)
    monkeypatch.setenv("HHJAX_CPU_KERNEL", "0")
    jax.clear_caches()  # RECORD_BLOCKS_FROM is read when _run is traced
    stacked = hhjax.simulate(params, stim, **kw)
    monkeypatch.setattr(scan, "RECORD_BLOCKS_FROM", 0)
    monkeypatch.setattr(scan, "RECORD_BLOCK_BYTES", 64)  # many blocks of a few records
    jax.clear_caches()
    blocks = hhjax.simulate(params, stim, **kw)
    jax.clear_caches()
    for a, b in zip(jax.tree_util.tree_leaves(stacked), jax.tree_util.tree_leaves(blocks)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert len(jax.tree_util.tree_leaves(stacked.state)) == (1 if "record" in kw else len(dataclasses.fields(stacked.state)))


def test_large_trace_is_not_held_twice():
    # XLA's own buffer assignment: the compiled scan path's temporaries plus its outputs
    # against the trace. Stacking the records and transposing them held 1.75x.
    from hhjax.simulation import scan
    n, steps = 1000, 2000
    assert 4 * n * (steps + 1) * 4 >= scan.RECORD_BLOCKS_FROM
    compiled = scan._run.lower(P, S.constant(jnp.linspace(0.0, 20.0, n)), None, None, batch=(n,), n_steps=steps,
                               dt=0.025, method="exp_euler", record_every=1, checkpoint_every=None,
                               spike_threshold=0.0).compile()
    stats = compiled.memory_analysis()
    if stats is None:
        pytest.skip("this jax/XLA backend reports no memory analysis")
    trace = 4 * n * (steps + 1) * 4
    assert (stats.temp_size_in_bytes + stats.output_size_in_bytes) / trace < 1.1
