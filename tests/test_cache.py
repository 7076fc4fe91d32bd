"""hhjax's persistent compilation cache (``hhjax.enable_compilation_cache``, which the ``hhjax``
command turns on): every program is kept, also those that compile in milliseconds (a
recording fit builds ~50 of them, ~5 s together), and the folder is bounded."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import sys, jax, jax.numpy as jnp
    import hhjax
    path = hhjax.enable_compilation_cache(sys.argv[1], max_bytes=50_000_000)
    jax.jit(lambda x: x * 3.0 + 1.0)(jnp.ones(7)).block_until_ready()  # compiles in ms
    print(path, jax.config.jax_compilation_cache_max_size)
""")


def test_cache_keeps_fast_programs_and_is_bounded(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}  # not the suite's cache
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    folder = tmp_path / "xla"
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(folder)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    path, limit = out.stdout.split()
    assert path == str(folder) and int(limit) == 50_000_000
    assert any(p.name.endswith("-cache") and "lambda" in p.name for p in folder.iterdir())


def test_cache_written_without_a_bound_is_adopted_without_warnings(tmp_path):
    """A folder filled by an earlier hhjax (every program without JAX's access-time file)
    must not make JAX warn on every write once the bound is on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    folder = tmp_path / "xla"
    folder.mkdir()
    (folder / "jit_old_program-0123abcd-cache").write_bytes(b"\0" * 64)
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(folder)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Error writing persistent compilation cache" not in out.stderr, out.stderr[-2000:]
    assert (folder / "jit_old_program-0123abcd-atime").exists()


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="counts memory mappings in /proc (Linux)")
def test_release_compiled_programs_gives_back_memory_mappings():
    """Each compiled program holds memory mappings; a process fitting cell after cell ran out
    of them (vm.max_map_count) until fit-many and the panel benchmark released them per cell."""
    import gc

    import jax
    import jax.numpy as jnp

    import hhjax

    def maps():
        with open("/proc/self/maps") as f:
            return sum(1 for _ in f)

    for k in range(40):  # 40 programs of different shapes
        jax.jit(lambda x, k=k: jnp.sin(x) * k + jnp.cumsum(x))(jnp.ones(k + 1)).block_until_ready()
    before = maps()
    hhjax.release_compiled_programs()
    gc.collect()
    assert maps() < before - 40
