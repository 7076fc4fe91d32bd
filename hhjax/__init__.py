"""hhjax: a differentiable, vectorised Hodgkin–Huxley simulator and fitter in JAX.

The public API, in the order data flows through it:

* parameters and models: :class:`HHParams`, :class:`ReducedParams`, :class:`PospischilParams`,
  ``presets``, ``models``
* stimuli: ``stimulus`` (step, pulses, ramp, sine, sampled, ou_noise, sums)
* solver steps: ``solvers`` (euler, exp_euler, rk4, neuron)
* simulation: :func:`simulate` -> :class:`Trace`, :func:`steady_state`, :func:`resting_state`
* analysis: :func:`spike_times`, :func:`fi_curve`, :func:`rheobase`, :func:`conductances`,
  :func:`currents`; electrophysiology features in ``features``
* fitting: ``losses``, :func:`direct_estimate`, :func:`fit` -> :class:`FitResult`;
  :func:`value_and_grad_forward` for the gradient of a few parameters
* edges: ``io`` (recordings), ``results`` (fit.json), ``plot``, ``cli``;
  :func:`use_all_cores` and :func:`enable_compilation_cache` configure JAX
"""

from . import features, io, losses, models, plot, presets, solvers, stimulus
from .cache import enable_compilation_cache
from .devices import use_all_cores
from .analysis import (Spikes, conductances, currents, fi_curve, firing_rate, resting_state,
                       rheobase, spike_times)
from .direct import direct_estimate
from .fit import FitResult, fit
from .forward import value_and_grad_forward
from .models import (HHParams, HHState, PospischilParams, PospischilState, ReducedParams, ReducedState,
                     model_of)
from .results import load_params, save_fit, save_params
from .simulate import Trace, final_state, simulate, steady_state
from .solvers import METHODS

__version__ = "0.1.0"

__all__ = [
    "HHParams", "HHState", "ReducedParams", "ReducedState", "PospischilParams", "PospischilState", "model_of", "presets", "models",
    "stimulus", "solvers", "features", "io", "plot", "METHODS", "simulate", "Trace", "steady_state", "final_state",
    "resting_state", "Spikes", "spike_times", "firing_rate", "fi_curve", "rheobase",
    "conductances", "currents", "losses", "direct_estimate", "fit", "FitResult",
    "save_fit", "save_params", "load_params", "enable_compilation_cache", "value_and_grad_forward",
    "use_all_cores",
]
