"""Export fitted hhjax cells to NEURON (NMODL + a cell builder) and NeuroML 2.

>>> import hhjax.export
>>> callable(hhjax.export.to_neuron), callable(hhjax.export.to_neuroml)
(True, True)
"""

from .neuroml import to_neuroml
from .neuron import to_neuron

__all__ = ["to_neuron", "to_neuroml"]
