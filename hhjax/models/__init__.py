"""Model definitions. Importing this package registers every built-in model."""

from .base import Model, model_by_name, model_of, register
from .hh import HH, HHParams, HHState, hh_rates
from .reduced import REDUCED, ReducedParams, ReducedState
from .pospischil import POSPISCHIL, PospischilParams, PospischilState, pospischil_rates
from .pospischil_ca import POSPISCHIL_IB, POSPISCHIL_LTS, PospischilIBParams, PospischilLTSParams

__all__ = [
    "Model", "model_by_name", "model_of", "register",
    "HH", "HHParams", "HHState", "hh_rates",
    "REDUCED", "ReducedParams", "ReducedState",
    "POSPISCHIL", "PospischilParams", "PospischilState", "pospischil_rates",
    "POSPISCHIL_IB", "POSPISCHIL_LTS", "PospischilIBParams", "PospischilLTSParams",
]
