"""The result of a simulation: :class:`Trace`, and the rules every backend shares
(the divergence bound, the in-loop spike counter)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .._pytree import as_dict, pytree_dataclass

DIVERGENCE_BOUND = 1000.0
"""|V| (mV) above which a neuron counts as diverged, in every backend."""


COUNT_THRESHOLD = 0.0
"""Voltage (mV) whose upward crossings the in-loop counter counts (``Trace.spike_count``),
in every backend; also the level that times a spike in :func:`hhjax.spike_times`."""


def upward_crossing(v_before, v_after, threshold):
    """The in-loop spike counter every backend uses: ``v_before < threshold <= v_after``.

    A cheap per-step rule for counting inside ``lax.scan`` and the kernels; evaluation of
    recorded or simulated traces uses :func:`hhjax.spike_times` instead.

    >>> bool(upward_crossing(-1.0, 0.0, 0.0)), bool(upward_crossing(0.0, 1.0, 0.0))
    (True, False)
    """
    return (v_before < threshold) & (v_after >= threshold)


@pytree_dataclass
class Trace:
    """A simulation result (a pytree). Time is the last axis; batch axes lead.

    Attributes:
        t: sample times (ms), shape ``(n_samples,)``, starting at 0 with the initial state.
        state: the model's state pytree, each leaf of shape ``batch + (n_samples,)``; its
            fields are also available directly (``trace.v`` in mV, ``trace.m``, ...).
        spike_count: upward crossings of ``spike_threshold`` counted at every step (not
            only recorded ones), shape ``batch``.
        diverged: ``True`` where the run blew up (non-finite or |V| > 1000 mV), shape
            ``batch``. ``simulate`` also warns when called outside ``jit``.
    """

    t: jax.Array
    state: object
    spike_count: jax.Array
    diverged: jax.Array

    def __getattr__(self, name):
        # Only reached for names that are not fields: forward v, m, h, n, ... to the state.
        if name.startswith("__"):
            raise AttributeError(name)
        state = object.__getattribute__(self, "state")
        try:
            return getattr(state, name)
        except AttributeError:
            raise AttributeError(f"Trace has no field or state variable {name!r}") from None

    @property
    def dt(self) -> float:
        """Sampling interval of the recorded trace (ms)."""
        return float(self.t[1] - self.t[0])


def final_state(trace: Trace) -> Any:
    """The last recorded state of a trace (for chaining simulations).

    Example:
        >>> import hhjax
        >>> rest = final_state(hhjax.simulate(hhjax.presets.NEURON, 0.0, duration=5.0, dt=0.025))
        >>> round(float(rest.v), 1)   # mV; continue with hhjax.simulate(..., y0=rest)
        -65.0
    """
    return jax.tree_util.tree_map(lambda x: x[..., -1], trace.state)


def state_fields(state) -> dict:
    """``{name: array}`` of a state pytree."""
    return as_dict(state)
