"""Run large batches on every CPU core: one JAX CPU device per core, the batch split across them
(and the layout rule, :func:`batch_layout`, that splits batches over GPUs and hosts too;
see :mod:`hhjax.simulation.sharding`).

On a CPU, XLA runs one time step as several small kernels and splits each of them across
the cores only when it judges that worthwhile, so a batch simulation uses about 1.3 of 2
cores. Presenting the cores as separate JAX devices and sharding the neurons across them
gives every core its own independent time loop instead (1.5-2x on 2 cores; see the README's
benchmark table). :func:`simulate` does this by itself once there is more than one CPU
device; :func:`use_all_cores` creates them.
"""

from __future__ import annotations

from typing import Optional

import os

import jax

from .sharding import shard_enabled

# Below this many neurons per device the split costs more than it saves.
MIN_NEURONS_PER_DEVICE = 32
PAD_FROM = 256


def cpu_cores() -> int:
    """The number of CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def use_all_cores(n: Optional[int] = None) -> int:
    """Present ``n`` CPU cores (default: all of them) as separate JAX devices, so that
    :func:`hhjax.simulate` runs large batches on all of them in parallel.

    Call it right after ``import hhjax``, before any JAX computation: JAX fixes its devices
    when it first runs something. hhjax leaves JAX's configuration alone unless you call
    this. It pays off for batches of hundreds of neurons or more (W2 in the README's
    benchmark); the ``hhjax`` command line does not call it, because its fits simulate
    batches too small to gain (a recording fit ran about 10 % slower on two devices).

    Results of batch simulations then live on several devices (``trace.v.sharding``). They
    mix freely with NumPy arrays and with JAX arrays that were not placed on one device
    explicitly; combining them with an array ``jax.device_put`` on a single device raises
    JAX's "incompatible devices" error.

    Returns the number of CPU devices. Raises ``RuntimeError`` if JAX has already started
    with a different number.

    Example:
        >>> import hhjax
        >>> hhjax.use_all_cores()  # doctest: +SKIP
        2
    """
    n = cpu_cores() if n is None else int(n)
    if n < 1:
        raise ValueError(f"n: expected a positive number of devices, got {n}")
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return len(jax.devices("cpu"))  # the user chose, through XLA_FLAGS
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except Exception:  # JAX raises once its backends exist; explain below if it matters
        pass
    have = len(jax.devices("cpu"))
    if have != n:
        raise RuntimeError(
            f"use_all_cores: JAX already started with {have} CPU device(s); call "
            f"hhjax.use_all_cores() right after importing hhjax, before any JAX computation")
    return have


def batch_layout(size: int, shard=None):
    """``(n_shards, padded_size)``: how :func:`hhjax.simulate` lays out a flat batch of
    ``size`` neurons. It splits them over the devices of the default backend (CPU cores
    made devices by :func:`use_all_cores`, GPUs) when each gets at least
    ``MIN_NEURONS_PER_DEVICE``; under ``jax.distributed`` (several processes) always over
    every device, since each process must take part. Batches of ``PAD_FROM`` or more
    neurons, and every split batch, are padded to a multiple of ``2 x n_shards``, because
    XLA's CPU kernels ran about 3x slower on an odd number of neurons. ``shard=False`` (or
    the environment variable ``HHJAX_SHARD=0``, see
    :func:`hhjax.simulation.sharding.shard_enabled`) keeps one device.

    >>> batch_layout(1)
    (1, 1)
    >>> batch_layout(1001)[1] % 2
    0
    >>> batch_layout(1001, shard=False)[0]
    1
    """
    n = 1
    if shard_enabled(shard):
        if jax.process_count() > 1:
            n = jax.device_count()
        elif size >= 2 * MIN_NEURONS_PER_DEVICE:
            n = min(jax.device_count(), size // MIN_NEURONS_PER_DEVICE)
    if n == 1 and size < PAD_FROM:
        return 1, size
    # An even share per device is enough; padding costs a little every step, so pad no more.
    multiple = 2 * n
    return n, -(-size // multiple) * multiple
