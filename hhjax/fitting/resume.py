"""Resumable fits: a fit's loop state saved atomically after every iteration (issue 16).

A checkpoint is one ``.npz`` file in a directory, replaced atomically
(:func:`hhjax.io.write_atomic`: a temporary file in the same directory, fsync'ed, renamed),
so a fit killed at any moment leaves either the previous state or the new one. It records a
:func:`fingerprint` of the fit's inputs; resuming with other inputs is an error rather than
a silently different result. States are saved exactly (every array bit for bit, with its
dtype), so on the CPU a resumed fit equals an uninterrupted one bit for bit.

:func:`hhjax.fit` uses it through ``checkpoint=DIR``::

    res = hhjax.fit(v, stim, dt=0.025, checkpoint="fit.ckpt")   # killed? rerun the same call
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from ..io.recording import write_atomic


def fingerprint(**items: Any) -> str:
    """A stable text of a fit's inputs (arrays enter as SHA-256 digests of their bytes).

    Example:
        >>> fingerprint(seed=0, v=np.zeros(3)) == fingerprint(v=np.zeros(3), seed=0)
        True
    """
    def norm(x):
        if isinstance(x, (np.ndarray, jax.Array)):
            x = np.ascontiguousarray(np.asarray(x))
            return f"{x.dtype}{x.shape}sha256:" + hashlib.sha256(x.tobytes()).hexdigest()
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return {"__type__": type(x).__qualname__,
                    **{f.name: norm(getattr(x, f.name)) for f in dataclasses.fields(x)}}
        if isinstance(x, dict):
            return {str(k): norm(v) for k, v in sorted(x.items(), key=lambda kv: str(kv[0]))}
        if isinstance(x, (list, tuple)):
            return [norm(v) for v in x]
        if isinstance(x, (np.floating, np.integer, np.bool_)):
            return x.item()
        if isinstance(x, (int, float, str, bool, type(None))):
            return x
        if callable(x):  # a function's repr holds its address, which changes between runs
            return f"{getattr(x, '__module__', '')}.{getattr(x, '__qualname__', type(x).__qualname__)}"
        return repr(x)
    return json.dumps(norm(items), sort_keys=True)


def state_arrays(state: Any) -> list:
    """Every leaf of a fit state (dataclasses, pytrees, NamedTuples) as a NumPy array, in a
    fixed order; :func:`state_from_arrays` puts them back.

    Example:
        >>> state_arrays({"z": np.ones(2), "it": 3})
        [array(3), array([1., 1.])]
    """
    out: list = []

    def walk(x):
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            for f in dataclasses.fields(x):
                walk(getattr(x, f.name))
        elif isinstance(x, dict):
            for k in sorted(x):
                walk(x[k])
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif x is not None:
            out.append(np.asarray(x))

    walk(state)
    return out


def state_from_arrays(template: Any, arrays: list) -> Any:
    """``template`` with its leaves replaced by ``arrays`` (from :func:`state_arrays`): JAX
    arrays stay JAX arrays, NumPy arrays NumPy arrays, Python scalars Python scalars.

    Example:
        >>> state_from_arrays({"z": np.ones(2), "it": 3}, [np.array(5), np.zeros(2)])
        {'it': 5, 'z': array([0., 0.])}
    """
    leaves = iter(arrays)

    def build(x):
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return dataclasses.replace(x, **{f.name: build(getattr(x, f.name)) for f in dataclasses.fields(x)
                                             if f.init})
        if isinstance(x, dict):
            return {k: build(x[k]) for k in sorted(x)}
        if isinstance(x, (list, tuple)):
            items = [build(v) for v in x]
            return type(x)(*items) if hasattr(x, "_fields") else type(x)(items)
        if x is None:
            return None
        a = next(leaves)
        if isinstance(x, jax.Array):
            return jnp.asarray(a, dtype=x.dtype)
        if isinstance(x, np.ndarray):
            return a.astype(x.dtype, copy=False)
        return type(x)(a.item()) if isinstance(x, (bool, int, float)) else a

    return build(template)


class StateFile:
    """One checkpoint file ``directory/name`` for the fit with ``fingerprint_text``.

    ``save(**arrays)`` replaces it atomically; ``load()`` returns the saved arrays (a dict)
    or None. A file of another fit, or one that cannot be read, is a one-line ValueError.
    """

    def __init__(self, directory: Union[str, os.PathLike], name: str, fingerprint_text: str):
        self.dir = Path(directory)
        if self.dir.exists() and not self.dir.is_dir():
            raise ValueError(f"checkpoint: {directory} is not a directory")
        self.path = self.dir / name
        self.fingerprint = fingerprint_text
        for stale in self.dir.glob(f".{name}.*.tmp*"):  # left by a kill during a save
            stale.unlink(missing_ok=True)

    def load(self) -> Optional[dict]:
        if not self.path.exists():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"checkpoint: {self.path} is unreadable ({exc}); remove it to start over") from None
        if str(data.pop("fingerprint", "")) != self.fingerprint:
            raise ValueError(f"checkpoint: {self.path} belongs to a different fit (other data, settings "
                             f"or seed); remove it or choose another checkpoint directory")
        return data

    def save(self, **arrays: Any) -> None:
        buf = io.BytesIO()
        np.savez(buf, fingerprint=np.array(self.fingerprint), **arrays)
        write_atomic(self.path, buf.getvalue())


TRACE_FIT_FILE = "trace_fit_state.npz"


def open_fit_checkpoint(directory: Any, **inputs: Any) -> Optional[StateFile]:
    """The :class:`StateFile` of :func:`hhjax.fit` in ``directory`` (None: no checkpointing)."""
    if directory is None:
        return None
    return StateFile(directory, TRACE_FIT_FILE, fingerprint(**inputs))


def save_fit_state(ckpt: Optional[StateFile], state: Any, history: list, iteration: int, finished: bool) -> None:
    """Save :func:`hhjax.fit`'s loop after ``iteration`` (no-op without a checkpoint)."""
    if ckpt is None:
        return
    leaves = {f"s{k}": a for k, a in enumerate(state_arrays(state))}
    ckpt.save(iteration=np.array(iteration), finished=np.array(bool(finished)),
              history=np.stack(history), **leaves)


def load_fit_state(ckpt: Optional[StateFile], template: Any) -> Optional[tuple]:
    """``(state, history, iteration, finished)`` saved in ``ckpt``, or None."""
    if ckpt is None:
        return None
    saved = ckpt.load()
    if saved is None:
        return None
    n = len(state_arrays(template))
    try:
        state = state_from_arrays(template, [saved[f"s{k}"] for k in range(n)])
    except KeyError:
        raise ValueError(f"checkpoint: {ckpt.path} does not hold this fit's state; remove it to start over") from None
    return state, list(saved["history"]), int(saved["iteration"]), bool(saved["finished"])
