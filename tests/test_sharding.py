"""Populations on every device (issue 17): the batch split over 2 CPU devices in a
subprocess (JAX fixes its device count when it starts). References: the reference loop
on one device without padding (scan._run with the plain layout), and a batch fit on one
device, computed here."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

import hhjax
from hhjax.simulation.devices import batch_layout
from hhjax.simulation.scan import _run
from hhjax.simulation.sharding import count_true, shard_enabled

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 300

FIT_PROBLEM = textwrap.dedent("""
    def fit_problem():
        import dataclasses, jax.numpy as jnp, numpy as np, hhjax
        g = jnp.linspace(100.0, 140.0, 8)
        tr = hhjax.simulate(dataclasses.replace(hhjax.presets.NEURON, g_na=g), hhjax.stimulus.constant(10.0),
                            duration=20.0, dt=0.025, record_every=4, shard=False)
        return np.asarray(tr.v), np.full(800, 10.0)
""")
exec(FIT_PROBLEM)

CHILD = FIT_PROBLEM + textwrap.dedent("""
    import dataclasses, json, os
    import numpy as np
    import hhjax, jax, jax.numpy as jnp
    from hhjax.simulation.devices import batch_layout
    from hhjax.simulation.sharding import count_true, run_pallas_sharded
    assert len(jax.devices()) == 2
    n = 300
    amps = jnp.linspace(0.0, 20.0, n)
    p = dataclasses.replace(hhjax.presets.NEURON, g_k=jnp.linspace(30.0, 40.0, n))
    kw = dict(duration=20.0, dt=0.025, record_every=40)
    out = {}
    tr = hhjax.simulate(p, hhjax.stimulus.constant(amps), **kw)
    out["scan"] = dict(devices=len(tr.v.sharding.device_set), count=np.asarray(tr.spike_count).tolist(),
                       v=np.asarray(tr.v).tolist())
    n_shards, padded = batch_layout(n)
    # The GPU path (one kernel per device under shard_map), here in Pallas' interpreter.
    tk = run_pallas_sharded(p, amps, None, batch=(n,), n_steps=800, dt=0.025, record_every=40,
                            spike_threshold=0.0, n_shards=n_shards, padded=padded)
    out["kernel"] = dict(devices=len(tk.v.sharding.device_set), count=np.asarray(tk.spike_count).tolist(),
                         v=np.asarray(tk.v).tolist(), diverged=count_true(tk.diverged))
    off = hhjax.simulate(p, hhjax.stimulus.constant(amps), shard=False, **kw)
    out["off"] = len(off.v.sharding.device_set)
    pinned = hhjax.simulate(p, hhjax.stimulus.constant(jax.device_put(amps, jax.devices()[1])), **kw)
    out["pinned"] = [d.id for d in pinned.v.sharding.device_set]  # an explicit device_put is obeyed
    # A batch that does not divide over the 2 devices: padded, computed split, then cut back
    # to one copy on the default device (not one copy per device), scan loop and kernel alike.
    m = 301
    am = jnp.linspace(0.0, 20.0, m)
    tu = hhjax.simulate(hhjax.presets.NEURON, hhjax.stimulus.constant(am), **kw)
    ku = run_pallas_sharded(hhjax.presets.NEURON, am, None, batch=(m,), n_steps=800, dt=0.025,
                            record_every=40, spike_threshold=0.0, n_shards=2, padded=batch_layout(m)[1])
    ref1 = hhjax.simulate(hhjax.presets.NEURON, hhjax.stimulus.constant(am), shard=False, **kw)
    out["uneven"] = dict(
        layout=batch_layout(m), shapes=[list(x.v.shape) for x in (tu, ku)],
        copies=[sum(s.data.nbytes for s in x.v.addressable_shards) / x.v.nbytes for x in (tu, ku)],
        counts=[np.asarray(x.spike_count).tolist() for x in (tu, ku, ref1)],
        v=[np.asarray(x.v).tolist() for x in (tu, ku, ref1)],
        mixes=float(jnp.sum(tu.v[:n] - tr.v)))  # with the 300-neuron result split over both devices
    # HHJAX_SHARD is read on every call; a jitted function keeps what it read when traced.
    f = jax.jit(lambda a: hhjax.simulate(hhjax.presets.NEURON, hhjax.stimulus.constant(a), **kw).v)
    jitted = [len(f(amps).sharding.device_set)]
    os.environ["HHJAX_SHARD"] = "0"
    out["env_off"] = len(hhjax.simulate(p, hhjax.stimulus.constant(amps), **kw).v.sharding.device_set)
    jitted.append(len(f(amps).sharding.device_set))
    jax.clear_caches()
    jitted.append(len(f(amps).sharding.device_set))
    out["jitted"] = jitted
    # A diverging neuron is counted on the devices for simulate's warning.
    bad = dataclasses.replace(p, c_m=jnp.where(jnp.arange(n) == 7, 1e-4, 1.0))
    import warnings
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        tb = hhjax.simulate(bad, hhjax.stimulus.constant(amps), method="euler", shard=True, **kw)
    out["diverged"] = [count_true(tb.diverged), [str(x.message) for x in w]]
    os.environ["HHJAX_SHARD"] = "1"
    # A batch fit: its simulations (targets x starts as one batch) run on both devices.
    from hhjax.fitting import fitter
    seen, gn = [], fitter._gn_terms
    def spy(*a):
        out_ = gn(*a)
        seen.append(len(jax.tree_util.tree_leaves(out_)[0].sharding.device_set))
        return out_
    fitter._gn_terms = spy
    target, cur = fit_problem()
    res = hhjax.fit(target, cur, dt=0.025, record_every=4, trainable=("g_na",), n_starts=8, steps=3, direct=False)
    out["fit"] = dict(devices=max(seen), g_na=np.asarray(res.params.g_na).tolist())
    print(json.dumps(out))
""")


def test_batch_on_two_devices_scan_and_kernel_match_one_device():
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "HHJAX_SHARD")}
    env.update(JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2",
               HHJAX_CPU_KERNEL="0")  # the split of the scan loop and Pallas, not the C++ kernel
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    child = json.loads(r.stdout.strip().splitlines()[-1])
    amps = jnp.linspace(0.0, 20.0, N)
    p = dataclasses.replace(hhjax.presets.NEURON, g_k=jnp.linspace(30.0, 40.0, N))
    with jax.default_device(jax.devices("cpu")[0]):
        ref = _run(p, hhjax.stimulus.constant(amps), None, None, batch=(N,), n_steps=800, dt=0.025,
                   method="exp_euler", record_every=40, checkpoint_every=None, spike_threshold=0.0,
                   layout=(1, None))
    ref_count = np.asarray(ref.spike_count)
    assert ref_count.sum() > 0
    for path in ("scan", "kernel"):
        got = child[path]
        assert got["devices"] == 2, path  # the split happened and the result stayed split
        np.testing.assert_array_equal(got["count"], ref_count, err_msg=path)
        # The kernel rearranges the arithmetic (exp2, shared exponentials): float32 rounding.
        np.testing.assert_allclose(got["v"], ref.v, rtol=0, atol=1e-5 if path == "scan" else 0.05)
    assert child["kernel"]["diverged"] == 0
    assert child["off"] == 1 and child["env_off"] == 1 and child["pinned"] == [1]
    assert child["jitted"] == [2, 2, 1]  # traced with the split; kept; retraced without
    # 301 neurons over 2 devices: padded, split, and back as one copy of 301 neurons whose
    # counts and voltages are those of the unsplit run on one device.
    u = child["uneven"]
    assert u["layout"][0] == 2 and u["layout"][1] > 301 and u["layout"][1] % 2 == 0
    assert u["shapes"] == [[301, 21], [301, 21]] and u["copies"] == [1.0, 1.0]
    ref_u = np.asarray(u["counts"][2])
    assert ref_u.sum() > 0
    for got, v, tol in zip(u["counts"][:2], u["v"][:2], (1e-5, 0.05)):
        np.testing.assert_array_equal(got, ref_u)
        np.testing.assert_allclose(v, u["v"][2], rtol=0, atol=tol)
    assert np.isfinite(u["mixes"])
    n_bad, messages = child["diverged"]
    assert n_bad >= 1 and any(f"{n_bad} neuron(s) diverged" in m for m in messages)
    # The batch fit (8 targets x 8 starts) ran over both devices and agrees with one device.
    assert child["fit"]["devices"] == 2
    with jax.default_device(jax.devices("cpu")[0]):
        target, cur = fit_problem()  # noqa: F821 (defined by exec above)
        one = hhjax.fit(target, cur, dt=0.025, record_every=4, trainable=("g_na",), n_starts=8, steps=3,
                        direct=False)
    np.testing.assert_allclose(child["fit"]["g_na"], np.asarray(one.params.g_na), rtol=1e-4)


def test_layout_switch_and_device_side_count():
    assert shard_enabled(None) is (os.environ.get("HHJAX_SHARD", "1") not in ("0", "false", "no", "off"))
    assert batch_layout(10_000, shard=False)[0] == 1
    x = np.zeros(1000, bool)
    x[[3, 500, 999]] = True
    assert count_true(jnp.asarray(x)) == 3
