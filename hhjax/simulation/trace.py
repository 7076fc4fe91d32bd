"""The result of a simulation: :class:`Trace`, and the rules every backend shares
(the divergence bound, the in-loop spike counter)."""

from __future__ import annotations

from typing import Any

import warnings

import jax
import jax.numpy as jnp

from .._pytree import as_dict, pytree_dataclass
from ..solvers import V_BOUND

DIVERGENCE_BOUND = V_BOUND
"""|V| (mV) above which a neuron counts as diverged, in every backend: 300 mV, defined as
:data:`hhjax.solvers.V_BOUND`, where every model's rates, one step of every method and their
derivatives are still finite with a wide margin. ``scripts/divergence_bound.py`` finds the
first non-finite value or derivative at |V| = 401 mV in float32 (Pospischil's rates with V_T
moved by its fitting range) and none within ±2000 mV in float64; the classic HH rates fail
from 809 mV (float32 ``exp`` underflow), which the old bound of 1000 mV let through. No
neuron's membrane reaches 300 mV, so a trace beyond it is a runaway, not physiology."""

GATE_TOLERANCE = 1e-5
"""How far (absolute) a gate may leave [0, 1] before the neuron counts as diverged: float32
rounding is ~1e-7; explicit schemes (``euler``, ``rk4``) overshoot by more only when
``dt`` times a rate exceeds their stability limit."""


def in_range(v, *gates):
    """The rule every backend applies at every step: ``|v| <= DIVERGENCE_BOUND`` and each
    gate within ``[-GATE_TOLERANCE, 1 + GATE_TOLERANCE]``; False for NaN.

    >>> bool(in_range(-65.0, 0.5)), bool(in_range(-65.0, 1.01)), bool(in_range(float("nan")))
    (True, False, False)
    """
    ok = jnp.abs(v) <= DIVERGENCE_BOUND
    for g in gates:
        ok = ok & (g >= -GATE_TOLERANCE) & (g <= 1.0 + GATE_TOLERANCE)
    return ok


def state_in_range(state):
    """:func:`in_range` for a state pytree (``v`` and every other field a gate)."""
    fields = as_dict(state)
    return in_range(fields["v"], *(x for k, x in fields.items() if k != "v"))


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
        diverged: ``True`` where the run left the valid range at any step (non-finite, |V| >
            :data:`DIVERGENCE_BOUND` mV, or a gate outside [0, 1] beyond rounding; ``euler``
            and ``rk4`` also turn V non-finite at a step beyond a gate's stability limit,
            :data:`hhjax.solvers.STABILITY_LIMIT`), shape ``batch``. Where it is False the rates and their derivatives are finite. ``simulate`` also warns when called outside ``jit``.
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


def kernel_failed(exc: Exception, failed: list, what: str, fallback: str, switch: str, stacklevel: int) -> None:
    """The rule every fused kernel follows when it fails at run time: out-of-memory errors
    are raised (the fallback needs at least as much memory); anything else is recorded in
    ``failed`` (which turns the kernel off for the rest of the process) and warned about
    once (``what`` says what failed), naming the ``fallback`` path and the environment variable ``switch`` that skips the
    attempt."""
    if isinstance(exc, MemoryError) or "RESOURCE_EXHAUSTED" in str(exc) or "out of memory" in str(exc).lower():
        raise exc
    failed.append(f"{type(exc).__name__}: {exc}")
    warnings.warn(f"hhjax.simulate: {what} ({type(exc).__name__}: {str(exc)[:300]}); using the "
                  f"{fallback} from now on (set {switch}=0 to skip the attempt).",
                  RuntimeWarning, stacklevel=stacklevel + 1)
