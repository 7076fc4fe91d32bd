"""Real recordings: protocol epochs, evaluation of a model against a recording's sweeps,
fitting a cell model to a recording (the consensus of several search seeds), and choosing the
model by cross-validation."""

from .cell_fit import MODELS, RecordingFit, fit_recording
from .consensus import fit_consensus
from .epochs import Epoch, epoch_features, parse_epochs
from .evaluation import evaluate
from .select import fit_auto, fit_with_model

__all__ = ["fit_with_model", "fit_recording", "fit_consensus", "fit_auto", "RecordingFit", "MODELS", "evaluate", "Epoch",
           "parse_epochs", "epoch_features"]
