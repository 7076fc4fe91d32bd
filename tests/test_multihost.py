"""Several hosts on one machine: 2 processes joined by ``jax.distributed`` (2 CPU devices
each, gloo collectives) simulate 1e5 neurons over all 4 devices. The reference is the same
population run by one process on one device (tests/multihost_child.py)."""

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CHILD = os.path.join(HERE, "multihost_child.py")
N = 100_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _start(mode, pid, nproc, port, out):
    return subprocess.Popen([sys.executable, CHILD, mode, str(pid), str(nproc), str(port), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(),
                            start_new_session=True)


def _finish(procs, timeout):
    """Wait for all; kill (by process group) whatever is left at the timeout."""
    deadline = time.monotonic() + timeout
    outs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            out += "\n<killed at the timeout>"
        outs.append(out)
    return outs


def test_two_processes_give_the_single_process_spike_counts(tmp_path):
    (tmp_path / "single").mkdir()
    port = _free_port()
    procs = [_start("multi", i, 2, port, tmp_path) for i in range(2)]
    procs.append(_start("single", 0, 1, 0, tmp_path / "single"))
    outs = _finish(procs, timeout=240)
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    single = np.load(tmp_path / "single" / "counts_0.npz")
    ref = single["total"]
    assert ref.shape == (N,) and len(np.unique(ref)) >= 3  # a population with varied counts
    assembled = np.full(N, -1)
    for pid in range(2):
        got = np.load(tmp_path / f"counts_{pid}.npz")
        assert int(got["processes"]) == 2 and int(got["devices"]) == 4
        assert bool(got["v_spans_processes"])  # results stayed sharded, not gathered
        np.testing.assert_array_equal(got["total"], ref)  # gather() on each process
        np.testing.assert_array_equal(got["odd"], single["odd"])  # 1001 neurons over 4 devices
        assert got["odd"].shape == (1001,) and got["odd"].sum() > 0
        kernel, loop = got["kernel_counts"]  # the shard_map'd kernel against the loop, 4096 neurons
        assert loop.sum() > 0
        np.testing.assert_array_equal(kernel, loop)
        for key in got.files:
            if key.isdigit():  # this process's own pieces
                start = int(key)
                assembled[start:start + len(got[key])] = got[key]
    np.testing.assert_array_equal(assembled, ref)  # the two processes' pieces cover all


def test_a_dying_process_makes_the_other_fail_not_hang(tmp_path):
    port = _free_port()
    start = time.monotonic()
    procs = [_start("die", i, 2, port, tmp_path) for i in range(2)]
    outs = _finish(procs, timeout=90)
    took = time.monotonic() - start
    assert procs[1].returncode == 3
    assert "<killed at the timeout>" not in outs[0], "the surviving process hung"
    assert procs[0].returncode != 0 and took < 90
    assert "stopped sending heartbeats" in outs[0] or "another task died" in outs[0], outs[0][-2000:]


def test_population_refuses_to_run_alone_when_started_as_one_of_several(monkeypatch):
    from hhjax.distributed import population

    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.delenv("HHJAX_SINGLE_PROCESS", raising=False)
    with pytest.raises(RuntimeError, match=r"SLURM_NTASKS=4 .*jax.distributed.initialize\(\)"):
        population(10, current=1.0)
    monkeypatch.setenv("HHJAX_SINGLE_PROCESS", "1")
    assert population(10, current=1.0).size == 10


def test_population_describes_ranges_grids_and_draws():
    import itertools

    import jax

    from hhjax.distributed import Grid, Linspace, Normal, Uniform, population

    pop = population(current=Grid([1.0, 2.0, 3.0]), g_na=Grid([100.0, 120.0]), g_k=36.0)
    combos = list(itertools.product([1.0, 2.0, 3.0], [100.0, 120.0]))  # first named varies slowest
    got = list(zip(np.asarray(pop["current"])[:pop.size].tolist(), np.asarray(pop["g_na"])[:pop.size].tolist()))
    assert pop.size == 6 and got == combos and pop["g_k"] == 36.0
    lin = population(101, current=Linspace(-5.0, 5.0))
    np.testing.assert_allclose(np.asarray(lin["current"])[:101], np.linspace(-5.0, 5.0, 101), atol=1e-6)
    draws = population(20_000, g_na=Uniform(100.0, 140.0), g_k=Normal(36.0, 2.0), key=jax.random.key(3))
    u, z = np.asarray(draws["g_na"])[:20_000], np.asarray(draws["g_k"])[:20_000]
    assert 100.0 <= u.min() and u.max() < 140.0 and abs(u.mean() - 120.0) < 0.5
    assert abs(z.mean() - 36.0) < 0.1 and abs(z.std() - 2.0) < 0.1
    with pytest.raises(ValueError, match="key"):
        population(10, g_na=Uniform(1.0, 2.0))
    with pytest.raises(ValueError, match="Grid"):
        population(7, current=Grid([1.0, 2.0]))
    # Each description checks itself when it is made, naming the bad field.
    for bad, match in ((lambda: Uniform(2.0, 1.0), "Uniform: lo must be below hi"),
                       (lambda: Normal(0.0, -1.0), "Normal: sd must be >= 0"),
                       (lambda: Linspace(0.0, float("nan")), "Linspace: hi must be a finite number"),
                       (lambda: Uniform("1", 2.0), "Uniform: lo must be a finite number")):
        with pytest.raises(ValueError, match=match):
            bad()
