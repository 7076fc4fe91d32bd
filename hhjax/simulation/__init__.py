"""Running models over time: the entry point :func:`simulate`, the :class:`Trace` it
returns, input checks, and the backends (the reference ``lax.scan`` loop, the fused Pallas
kernel on GPUs, the fused C++ kernel on CPUs) that :mod:`hhjax.simulation.backends` chooses between."""

from .backends import BACKENDS, Backend, SimulationCall, last_backend
from .devices import batch_layout, use_all_cores
from .entry import simulate
from .trace import DIVERGENCE_BOUND, Trace, final_state

__all__ = ["simulate", "Trace", "final_state", "DIVERGENCE_BOUND", "BACKENDS", "Backend",
           "SimulationCall", "last_backend", "batch_layout", "use_all_cores"]
