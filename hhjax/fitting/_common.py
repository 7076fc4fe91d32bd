"""What every fit shares: the progress bar and the seeding rule."""

from __future__ import annotations

import sys
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np


def progress_bar(progress: Optional[bool], total: int, desc: str):
    """A tqdm bar of ``total`` steps, or ``None``; ``progress=None`` shows it when stderr is
    a terminal."""
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm.auto import tqdm  # tqdm.auto picks the notebook widget; import only when shown

    return tqdm(total=total, desc=desc, leave=False)


def advance(bar: Any, loss: str) -> None:
    """One step of a :func:`progress_bar` (``None``: nothing), showing ``loss``."""
    if bar is not None:
        bar.update(1)
        bar.set_postfix(loss=loss)


def seed_of(key: Any) -> int:
    """The one seeding rule: ``key`` is ``None`` (seed 0), an int seed, or a JAX key, for
    which the seed is its last word (``PRNGKey(k)`` -> ``k``).

    >>> seed_of(None), seed_of(7), seed_of(jax.random.PRNGKey(7))
    (0, 7, 7)
    """
    if key is None:
        return 0
    if isinstance(key, (int, np.integer)):
        return int(key)
    k = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return int(np.asarray(k).ravel()[-1])


def key_of(key: Any) -> jax.Array:
    """A JAX key from the same inputs as :func:`seed_of` (``None`` -> ``PRNGKey(0)``)."""
    if key is None or isinstance(key, (int, np.integer)):
        return jax.random.PRNGKey(seed_of(key))
    return key
