"""Resumable recording fits: the search state of :func:`hhjax.recordings.cell_fit.fit_recording`
saved atomically after every generation and Levenberg–Marquardt iteration.

A checkpoint is one file, ``DIR/fit_state.npz``, written by
:class:`hhjax.fitting.resume.StateFile` (the rule :func:`hhjax.fit`'s checkpoints follow):
replaced atomically, so a fit killed at any moment leaves either the previous state or the
new one, and stamped with a :func:`~hhjax.fitting.resume.fingerprint` of the fit (data,
settings, seed); resuming with different ones is an error rather than a silently different
result. Everything the search draws from is saved exactly (the NumPy generator's state,
float arrays bit for bit), so on the CPU a resumed fit equals an uninterrupted one bit for bit.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from ..fitting.optimizers import LMHostState
from ..fitting.resume import StateFile, fingerprint
from ..fitting.strategies import LMRun

FILE = "fit_state.npz"
__all__ = ["Checkpoint", "FILE", "fingerprint", "lm_run_of"]


class Checkpoint(StateFile):
    """The checkpoint of one recording fit in ``directory`` (created if missing)."""

    def __init__(self, directory, fingerprint_text: str):
        super().__init__(directory, FILE, fingerprint_text)

    def load(self):
        """The saved state as a dict, or ``None`` if there is none yet."""
        data = super().load()
        if data is not None:
            data["rng"] = json.loads(str(data["rng"]))
        return data

    def save(self, *, generation, mu, sig, rng, pool_z, pool_l, history, lm_it=-1, lm_done=False,  # type: ignore[override]
             lm_state=None):
        """Replace the checkpoint atomically with this state."""
        arrays = dict(generation=np.array(generation), mu=np.asarray(mu), sig=np.asarray(sig),
                      rng=np.array(json.dumps(rng.bit_generator.state)),
                      pool_z=np.stack(pool_z), pool_l=np.stack(pool_l), history=np.asarray(history, float),
                      lm_it=np.array(lm_it), lm_done=np.array(bool(lm_done)))
        if lm_state is not None:
            arrays.update({f"lm_{f.name}": np.asarray(getattr(lm_state.lm, f.name))
                           for f in dataclasses.fields(lm_state.lm)})
            arrays.update(lm_stall=np.asarray(lm_state.stall), lm_rejects=np.asarray(lm_state.rejects))
        super().save(**arrays)


def lm_run_of(saved: dict) -> LMRun:
    """The saved Levenberg–Marquardt state (:class:`hhjax.fitting.strategies.LMRun`)."""
    lm = LMHostState(**{f.name: saved[f"lm_{f.name}"] for f in dataclasses.fields(LMHostState)})
    return LMRun(lm, saved["lm_stall"], saved["lm_rejects"])
