"""Real recordings: stimulus epochs, evaluation of a model against a recording's sweeps,
and fitting a cell model to a recording."""

from .cell_fit import RecordingFit, fit_recording
from .evaluation import evaluate

__all__ = ["fit_recording", "RecordingFit", "evaluate"]
