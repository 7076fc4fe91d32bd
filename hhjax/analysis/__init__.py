"""Reading traces: spikes (one detector for observed and simulated traces), firing rates,
f–I curves and rheobase, channel conductances and currents, and electrophysiology
features (:mod:`hhjax.analysis.features`)."""

from . import features
from .channels import conductances, currents
from .excitability import fi_curve, firing_rate, rheobase
from ..models.steady import resting_state
from .spikes import Spikes, spike_peaks, spike_times, spike_train

__all__ = ["Spikes", "spike_times", "spike_peaks", "spike_train", "firing_rate", "fi_curve", "rheobase", "conductances",
           "currents", "features", "resting_state"]
