"""hhjax as a simulator for simulation-based inference with ``sbi`` (Gonçalves et al. 2020).

* :func:`simulator` -> ``theta (n, d) -> summaries (n, k)``, one batched jit-compiled
  :func:`hhjax.simulate` per call, torch in -> torch out, NumPy in -> NumPy out;
* :func:`goncalves_summary` (spike count, resting V and its std, moments of V during the
  step, autocorrelation), or any ``jnp`` function of a :class:`hhjax.Trace`;
* :func:`prior_bounds` (NumPy) and :func:`prior` (an sbi ``BoxUniform``) over hhjax's
  physiological bounds.

Importing this package does not import torch or sbi (only :func:`prior` and torch inputs do):

>>> import sys, hhjax.sbi
>>> "torch" in sys.modules and "sbi" in sys.modules and False
False
"""

from .simulator import prior, prior_bounds, simulator
from .summary import GONCALVES_NAMES, goncalves_summary

__all__ = ["simulator", "prior", "prior_bounds", "goncalves_summary", "GONCALVES_NAMES"]
