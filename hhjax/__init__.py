"""hhjax: a differentiable, vectorised Hodgkin–Huxley simulator in JAX."""

from . import models, presets, solvers, stimulus
from .models import HHParams, HHState, ReducedParams, ReducedState, model_of
from .simulate import Trace, final_state, simulate, steady_state
from .solvers import METHODS

__version__ = "0.1.0"
