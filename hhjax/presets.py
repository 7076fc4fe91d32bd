"""Named parameter sets, each with its source.

* :data:`NEURON` — NEURON's built-in ``hh`` mechanism (hh.mod): g_Na 120, g_K 36,
  g_L 0.3 mS/cm²; E_Na 50, E_K -77, E_L -54.3 mV; 1 µF/cm²; 6.3 °C; rest near -65 mV.
* :data:`HH1952` — Hodgkin & Huxley (1952), J. Physiol. 117:500, with the modern sign
  convention and rest at 0 mV: E_Na 115, E_K -12, E_L 10.613 mV (seeds 002 and 004).
* :data:`DAYAN_ABBOTT` — Dayan & Abbott, *Theoretical Neuroscience* (2001), §5.6:
  NEURON's values with E_L -54.387 mV (seed 003).
* :data:`SEED000` — the Case Studies in Neural Data Analysis notebook (seed 000): NEURON's
  convention with E_L = 10.6 - 65 = -54.4 mV.
* :data:`REDUCED` — the reduced two-variable model of seed 001 with its default sliders.
* :data:`POSPISCHIL` and :data:`POSPISCHIL_FS` — Pospischil et al. (2008) regular- and
  fast-spiking cells (pA stimuli; defined in :mod:`hhjax.models.pospischil`).

>>> from hhjax.presets import get_preset
>>> get_preset("hh1952").e_na
115.0
"""

from __future__ import annotations

from .models.hh import HHParams
from .models.pospischil import FS as POSPISCHIL_FS, RS as POSPISCHIL
from .models.reduced import ReducedParams

NEURON = HHParams()
HH1952 = HHParams(e_na=115.0, e_k=-12.0, e_l=10.613, v_offset=0.0)
DAYAN_ABBOTT = HHParams(e_l=-54.387)
SEED000 = HHParams(e_l=10.6 - 65.0)
REDUCED = ReducedParams()

PRESETS = {
    "neuron": NEURON,
    "hh1952": HH1952,
    "dayan_abbott": DAYAN_ABBOTT,
    "seed000": SEED000,
    "reduced": REDUCED,
    "pospischil": POSPISCHIL,
    "pospischil_fs": POSPISCHIL_FS,
}


def get_preset(name: str):
    """Look up a preset by (case-insensitive) name; raises ``ValueError`` if unknown."""
    key = str(name).lower().replace("-", "_")
    if key not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[key]
