"""hhjax: a differentiable, vectorised Hodgkin–Huxley simulator and fitter in JAX.

The package's folders follow the data flow; this module re-exports the public API:

* ``models/`` — parameters and states (:class:`HHParams`, :class:`ReducedParams`,
  :class:`PospischilParams`), kinetics, :func:`steady_state`, :func:`resting_state`;
  ``presets`` names parameter sets
* ``stimulus`` (step, pulses, ramp, sine, sampled, ou_noise, sums), ``solvers`` (euler,
  exp_euler, rk4, neuron)
* ``simulation/`` — :func:`simulate` -> :class:`Trace`, with backends as strategies
  (``lax.scan``; the fused Pallas kernel on GPUs); :func:`use_all_cores`
* ``analysis/`` — :func:`spike_times`, :func:`fi_curve`, :func:`rheobase`,
  :func:`conductances`, :func:`currents`; electrophysiology ``features``
* ``fitting/`` — ``losses``, :func:`direct_estimate`, :func:`fit` -> :class:`FitResult`,
  :func:`value_and_grad_forward`
* ``recordings/`` — fitting and evaluating models on real recordings (``recordings.fit_with_model``:
  one model or ``"auto"``; ``recordings.evaluate``)
* edges: ``io`` (recordings, fit.json), ``plot``, ``cli``; :func:`enable_compilation_cache`;
  ``export`` (NEURON, NeuroML 2) and ``sbi`` (a simulator for the sbi package), whose
  optional dependencies (``hhjax[export]``, ``hhjax[sbi]``) are imported only when used
"""

from .analysis import features
from . import export, io, models, plot, presets, recordings, sbi, solvers, stimulus
from .fitting import losses
from .cache import enable_compilation_cache, release_compiled_programs
from .simulation.devices import use_all_cores
from .analysis.spikes import Spikes, spike_times
from .analysis.channels import conductances, currents
from .analysis.excitability import fi_curve, firing_rate, rheobase
from .models.steady import resting_state
from .fitting.direct import direct_estimate
from .fitting.fitter import FitResult, fit
from .fitting.forward import value_and_grad_forward
from .models import HHParams, HHState, PospischilParams, PospischilState, ReducedParams, ReducedState, model_of
from .io.results import load_params, save_fit, save_params
from .simulation.trace import Trace, final_state
from .simulation.entry import simulate
from .models.steady import steady_state
from .solvers import METHODS

__version__ = "0.1.0"

__all__ = [
    "HHParams", "HHState", "ReducedParams", "ReducedState", "PospischilParams", "PospischilState", "model_of", "presets", "models",
    "stimulus", "solvers", "features", "io", "plot", "export", "sbi", "recordings", "METHODS", "simulate", "Trace", "steady_state", "final_state",
    "resting_state", "Spikes", "spike_times", "firing_rate", "fi_curve", "rheobase",
    "conductances", "currents", "losses", "direct_estimate", "fit", "FitResult",
    "save_fit", "save_params", "load_params", "enable_compilation_cache", "release_compiled_programs", "value_and_grad_forward",
    "use_all_cores",
]
