"""Opt-in persistent compilation cache, so a second run does not recompile."""

from __future__ import annotations

from typing import Optional

import importlib.util
import os

import jax

# A recording fit and its evaluation build about 50 XLA programs, most compiled in under
# 0.3 s but about 5 s together: caching only slow ones left `hhjax fit` recompiling them on
# every call. So every program is kept, and the folder is bounded instead (least recently
# used entries go first); one fit's programs take a few MB.
DEFAULT_MAX_BYTES = 1 << 30


def enable_compilation_cache(path: Optional[str] = None, min_compile_time_s: float = 0.0,
                             max_bytes: int = DEFAULT_MAX_BYTES) -> Optional[str]:
    """Store XLA executables on disk (default ``~/.cache/hhjax/xla``) and reuse them in later
    processes. The ``hhjax`` command line turns this on; a library call leaves JAX's
    configuration alone unless you call this. Set ``HHJAX_NO_CACHE=1`` to disable it in the CLI.

    Args:
        path: the cache folder.
        min_compile_time_s: keep only programs that took at least this long to compile (s).
        max_bytes: the folder's size limit (bytes); beyond it the least recently used
            programs are removed. Where JAX cannot bound it (JAX before 0.4.32, or without the
            ``filelock`` package), only programs that took 0.5 s or more are kept instead.

    Returns the cache directory, or None if JAX already has a cache directory configured.

    Example:
        >>> import hhjax
        >>> hhjax.enable_compilation_cache("/tmp/hhjax-xla-doctest")  # doctest: +SKIP
        '/tmp/hhjax-xla-doctest'
    """
    if jax.config.jax_compilation_cache_dir:  # type: ignore[attr-defined]
        return None
    if max_bytes < 1:
        raise ValueError(f"max_bytes: expected a positive size, got {max_bytes}")
    path = path or os.path.join(os.path.expanduser("~"), ".cache", "hhjax", "xla")
    os.makedirs(path, exist_ok=True)
    try:
        if importlib.util.find_spec("filelock") is None:  # JAX's size limit needs it
            raise ImportError("filelock")
        jax.config.update("jax_compilation_cache_max_size", int(max_bytes))
        _add_access_times(path)
    except (ImportError, AttributeError):  # no bound available: keep the folder small
        min_compile_time_s = max(min_compile_time_s, 0.5)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_s))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return path


def _add_access_times(path: str) -> None:
    """Give every program in ``path`` the access-time file that JAX's bounded cache keeps
    beside it. Programs written without a bound (by earlier hhjax versions, or by JAX with its
    defaults) have none, and JAX then warns on every later write ("Error writing persistent
    compilation cache entry ... -atime"). Their modification time stands in."""
    cache_suffix, atime_suffix = "-cache", "-atime"  # jax._src.lru_cache's file names
    try:
        entries = [e for e in os.scandir(path) if e.name.endswith(cache_suffix)]
        for entry in entries:
            atime = os.path.join(path, entry.name[: -len(cache_suffix)] + atime_suffix)
            if not os.path.exists(atime):
                with open(atime, "wb") as fh:
                    fh.write(entry.stat().st_mtime_ns.to_bytes(8, "little"))
    except OSError:  # a folder we cannot write: JAX reports what matters when it uses it
        pass


def release_compiled_programs() -> None:
    """Drop every XLA program this process has compiled (:func:`jax.clear_caches`); the next
    call compiles again, or loads from the persistent cache (:func:`enable_compilation_cache`).

    Each compiled program holds a few of the process's memory mappings, and Linux allows
    65530 of them by default (``vm.max_map_count``): a process that fitted some 50 different
    recordings in a row (about 3000 programs) stopped with ``LLVM ERROR: Unable to allocate
    section memory``. ``hhjax fit-many``'s workers and ``scripts/bench_recordings.py`` call
    this after each cell.

    >>> release_compiled_programs()
    """
    jax.clear_caches()
