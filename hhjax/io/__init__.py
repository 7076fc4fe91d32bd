"""Loading real current-clamp recordings, and atomic file writes.

Everything is converted to ms / mV / pA on load::

    from hhjax.io import example_recording, load_recording
    rec = load_recording(example_recording("18711001.abf"), sweeps=[5, 10])
    rec = rec.resample(0.1).correct_ljp(0.0)
    cell = load_recording("cells/B6/B6_*.ibw")     # Igor waves: a set of files is one recording

See :func:`load_recording` for the formats (ABF, NWB, CSV/TSV/eFEL text, NPZ, Igor ``.ibw``
sets, any of them ``.gz``/``.xz`` compressed) and :func:`example_recording` for the
recordings the repository ships.
"""

from .examples import default_recordings_dir, example_recording, example_recordings_dirs
from .formats import RECORDING_FORMATS, SUPPORTED, load_recording
from .igor import read_ibw
from .recording import Recording, save_json_atomic, write_atomic
from .units import UNITS
from .sources import ImplausibleCurrentWarning, ImplausibleVoltageWarning

__all__ = ["Recording", "load_recording", "save_json_atomic", "write_atomic",
           "default_recordings_dir", "example_recording", "example_recordings_dirs",
           "read_ibw", "ImplausibleVoltageWarning", "ImplausibleCurrentWarning", "SUPPORTED", "RECORDING_FORMATS", "UNITS"]
