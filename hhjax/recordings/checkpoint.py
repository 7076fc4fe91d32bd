"""Resumable recording fits: the search state of :func:`hhjax.recordings.cell_fit.fit_recording`
saved atomically after every generation and Levenberg–Marquardt iteration.

A checkpoint is one file, ``DIR/fit_state.npz``, replaced atomically (written to a
temporary file in ``DIR``, fsync'ed, renamed), so a fit killed at any moment leaves either
the previous state or the new one. It records a fingerprint of the fit (data, settings,
seed); resuming with different ones is an error rather than a silently different result.
Everything the search draws from is saved exactly (the NumPy generator's state, float arrays
bit for bit), so on the CPU a resumed fit equals an uninterrupted one bit for bit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from ..fitting.optimizers import LMHostState
from ..fitting.strategies import LMRun

FILE = "fit_state.npz"


def fingerprint(**items) -> str:
    """A stable text of the fit's inputs (arrays enter as SHA-256 digests)."""
    def norm(x):
        if isinstance(x, np.ndarray):
            return "sha256:" + hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()
        if isinstance(x, dict):
            return {str(k): norm(v) for k, v in sorted(x.items(), key=lambda kv: str(kv[0]))}
        if isinstance(x, (list, tuple)):
            return [norm(v) for v in x]
        if isinstance(x, (np.floating, np.integer)):
            return x.item()
        return x if isinstance(x, (int, float, str, bool, type(None))) else repr(x)
    return json.dumps(norm(items), sort_keys=True)


class Checkpoint:
    """The checkpoint of one fit in ``directory`` (created if missing)."""

    def __init__(self, directory, fingerprint_text: str):
        self.dir = Path(directory)
        if self.dir.exists() and not self.dir.is_dir():
            raise ValueError(f"checkpoint: {directory} is not a directory")
        self.path = self.dir / FILE
        self.fingerprint = fingerprint_text
        for stale in self.dir.glob(f".{FILE}.tmp*"):  # left by a kill during a save
            stale.unlink(missing_ok=True)

    def load(self):
        """The saved state as a dict, or ``None`` if there is none yet."""
        if not self.path.exists():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"checkpoint: {self.path} is unreadable ({exc}); remove it to start over") from None
        if str(data.pop("fingerprint")) != self.fingerprint:
            raise ValueError(f"checkpoint: {self.path} belongs to a different fit (other data, settings "
                             f"or seed); remove it or choose another --checkpoint directory")
        data["rng"] = json.loads(str(data["rng"]))
        return data

    def save(self, *, generation, mu, sig, rng, pool_z, pool_l, history, lm_it=-1, lm_done=False,
             lm_state=None):
        """Replace the checkpoint atomically with this state."""
        arrays = dict(fingerprint=np.array(self.fingerprint), generation=np.array(generation),
                      mu=np.asarray(mu), sig=np.asarray(sig),
                      rng=np.array(json.dumps(rng.bit_generator.state)),
                      pool_z=np.stack(pool_z), pool_l=np.stack(pool_l), history=np.asarray(history, float),
                      lm_it=np.array(lm_it), lm_done=np.array(bool(lm_done)))
        if lm_state is not None:
            arrays.update({f"lm_{f.name}": np.asarray(getattr(lm_state.lm, f.name))
                           for f in dataclasses.fields(lm_state.lm)})
            arrays.update(lm_stall=np.asarray(lm_state.stall), lm_rejects=np.asarray(lm_state.rejects))
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{FILE}.tmp{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                f.write(buf.getvalue())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)


def lm_run_of(saved: dict) -> LMRun:
    """The saved Levenberg–Marquardt state (:class:`hhjax.fitting.strategies.LMRun`)."""
    lm = LMHostState(**{f.name: saved[f"lm_{f.name}"] for f in dataclasses.fields(LMHostState)})
    return LMRun(lm, saved["lm_stall"], saved["lm_rejects"])
