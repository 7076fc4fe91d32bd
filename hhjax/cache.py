"""Opt-in persistent compilation cache, so a second run does not recompile."""

from __future__ import annotations

from typing import Optional

import os

import jax


def enable_compilation_cache(path: Optional[str] = None, min_compile_time_s: float = 0.5) -> Optional[str]:
    """Store XLA executables on disk (default ``~/.cache/hhjax/xla``) and reuse them in later
    processes. The ``hhjax`` command line turns this on; a library call leaves JAX's
    configuration alone unless you call this. Set ``HHJAX_NO_CACHE=1`` to disable it in the CLI.

    Returns the cache directory, or None if JAX already has a cache directory configured.

    Example:
        >>> import hhjax
        >>> hhjax.enable_compilation_cache("/tmp/hhjax-xla-doctest")  # doctest: +SKIP
        '/tmp/hhjax-xla-doctest'
    """
    if jax.config.jax_compilation_cache_dir:  # type: ignore[attr-defined]
        return None
    path = path or os.path.join(os.path.expanduser("~"), ".cache", "hhjax", "xla")
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_s))
    return path
