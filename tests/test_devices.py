"""Batch layout: padding odd batches and splitting them over CPU devices must not change results.

The reference is ``_run`` with the plain layout (one device, no padding); the multi-device
runs happen in a subprocess, because JAX fixes its device count when it starts.
"""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax.simulation.devices import batch_layout
from hhjax.simulation.scan import _run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KW = dict(batch=None, n_steps=800, dt=0.025, method="exp_euler", record_every=10,
          checkpoint_every=None, spike_threshold=0.0)


def reference(params, stim, n, grid=None):
    """The plain layout: one device, no padding."""
    return _run(params, stim, grid, None, **{**KW, "batch": (n,)}, layout=(1, None))


def test_layout_pads_only_large_odd_batches_on_one_device():
    assert batch_layout(1) == (1, 1)
    assert batch_layout(255) == (1, 255)  # small: padding would cost more than it saves
    assert batch_layout(1000) == (1, 1000)
    n, padded = batch_layout(1001)
    assert n == 1 and padded == 1002


@pytest.mark.parametrize("kind", ["callable", "grid"])
def test_padded_batch_matches_plain_layout(kind, monkeypatch):
    monkeypatch.setenv("HHJAX_PALLAS", "0")  # on a GPU: the padded reference path, not the kernel
    monkeypatch.setenv("HHJAX_CPU_KERNEL", "0")  # on a CPU: not the fused C++ kernel either
    n = 301  # odd and >= PAD_FROM, so simulate pads it to 302
    assert batch_layout(n)[1] == 302
    amps = jnp.linspace(2.0, 20.0, n)
    params = dataclasses.replace(hhjax.presets.NEURON, g_k=jnp.linspace(30.0, 40.0, n))
    if kind == "callable":
        stim, grid, arg = hhjax.stimulus.constant(amps), None, hhjax.stimulus.constant(amps)
    else:
        grid = jnp.broadcast_to(amps[:, None], (n, 800))
        stim, arg = None, grid
    ref = reference(params, stim, n, grid)
    tr = hhjax.simulate(params, arg, duration=20.0, dt=0.025, record_every=10)
    assert tr.v.shape == ref.v.shape == (n, 81)
    np.testing.assert_array_equal(np.asarray(tr.spike_count), np.asarray(ref.spike_count))
    assert int(np.sum(tr.spike_count)) > 0
    for name in ("v", "m", "h", "n"):
        np.testing.assert_allclose(getattr(tr, name), getattr(ref, name), rtol=0, atol=1e-5)


def test_padded_batch_gradient_matches_plain_layout():
    n = 257
    amps = jnp.linspace(5.0, 15.0, n)
    stim = hhjax.stimulus.constant(amps)

    def loss(g_na, run):
        return jnp.sum(run(dataclasses.replace(hhjax.presets.NEURON, g_na=g_na)).v[:, -1])

    padded = lambda p: hhjax.simulate(p, stim, duration=20.0, dt=0.025, record_every=10)  # noqa: E731
    plain = lambda p: reference(p, stim, n)  # noqa: E731
    g = jnp.full(n, 120.0)
    np.testing.assert_allclose(jax.grad(loss)(g, padded), jax.grad(loss)(g, plain), rtol=1e-5, atol=1e-6)


def test_use_all_cores_after_jax_started_raises():
    jnp.zeros(1).block_until_ready()  # JAX has started with one CPU device in this process
    if len(jax.devices("cpu")) != 1:
        pytest.skip("this process already has several CPU devices")
    with pytest.raises(RuntimeError, match="before any JAX computation"):
        hhjax.use_all_cores(2)
    assert hhjax.use_all_cores(1) == 1
    with pytest.raises(ValueError):
        hhjax.use_all_cores(0)


CHILD = textwrap.dedent("""
    import dataclasses, json, sys
    import numpy as np
    import hhjax
    assert hhjax.use_all_cores(2) == 2
    import jax, jax.numpy as jnp
    out = {}
    for n in (300, 301):
        amps = jnp.linspace(2.0, 20.0, n)
        p = dataclasses.replace(hhjax.presets.NEURON, g_k=jnp.linspace(30.0, 40.0, n))
        tr = hhjax.simulate(p, hhjax.stimulus.constant(amps), duration=20.0, dt=0.025, record_every=10)
        loss = lambda g: jnp.sum(hhjax.simulate(dataclasses.replace(p, g_na=g), hhjax.stimulus.constant(amps),
                                                duration=20.0, dt=0.025, record_every=10).v[:, -1])
        from hhjax.simulation.devices import batch_layout
        out[n] = dict(devices=len(tr.v.sharding.device_set), layout=batch_layout(n), v=np.asarray(tr.v).tolist(),
                      count=np.asarray(tr.spike_count).tolist(),
                      grad=np.asarray(jax.grad(loss)(jnp.full(n, 120.0))).tolist())
    print(json.dumps(out))
""")


def test_batch_split_over_two_cpu_devices_matches_one_device():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    env["HHJAX_CPU_KERNEL"] = "0"  # the split of the scan loop is tested, not the C++ kernel
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    child = json.loads(r.stdout.strip().splitlines()[-1])
    with jax.default_device(jax.devices("cpu")[0]):  # the child's platform, on a GPU machine too
        _compare_with_child(child)


def _compare_with_child(child):
    for n in (300, 301):
        got = child[str(n)]
        assert got["layout"][0] == 2  # the split really happened
        # 300 stays split over both devices; 301 does not divide over them, so its result comes
        # back as one copy on the default device (sharding.gather_uneven)
        assert got["devices"] == (2 if n == 300 else 1)
        amps = jnp.linspace(2.0, 20.0, n)
        p = dataclasses.replace(hhjax.presets.NEURON, g_k=jnp.linspace(30.0, 40.0, n))
        stim = hhjax.stimulus.constant(amps)
        ref = reference(p, stim, n)
        np.testing.assert_array_equal(got["count"], np.asarray(ref.spike_count))
        np.testing.assert_allclose(got["v"], ref.v, rtol=0, atol=1e-5)

        def loss(g):
            return jnp.sum(reference(dataclasses.replace(p, g_na=g), stim, n).v[:, -1])

        np.testing.assert_allclose(got["grad"], jax.grad(loss)(jnp.full(n, 120.0)), rtol=1e-5, atol=1e-6)
