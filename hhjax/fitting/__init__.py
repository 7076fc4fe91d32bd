"""Fitting models to voltage traces: losses, parameter transforms, the direct
least-squares estimate, optimisers, uncertainty, forward-mode gradients and :func:`fit`."""

from . import losses
from .direct import direct_estimate
from .fitter import FitResult, fit
from .forward import value_and_grad_forward

__all__ = ["losses", "direct_estimate", "fit", "FitResult", "value_and_grad_forward"]
