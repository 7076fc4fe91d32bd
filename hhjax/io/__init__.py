"""Loading real current-clamp recordings, and atomic file writes.

Everything is converted to ms / mV / pA on load::

    from hhjax.io import load_recording
    rec = load_recording("../shared/data/recordings/18711001.abf", sweeps=[5, 10])
    rec = rec.resample(0.1).correct_ljp(0.0)

See :func:`load_recording` for the formats (ABF, NWB, CSV/TSV/eFEL text, NPZ).
"""

from pathlib import Path

from .formats import SUPPORTED, load_recording
from .recording import UNITS, Recording, save_json_atomic, write_atomic


def default_recordings_dir() -> Path:
    """The shared recordings folder, ``../shared/data/recordings`` beside the repo root.

    It may not exist (check ``.is_dir()``); the data are not part of the repo.

    Example:
        >>> sorted(p.name for p in default_recordings_dir().glob("*.abf"))  # doctest: +SKIP
        ['171116sh_0018.abf', '18711001.abf', 'File_axon_5.abf']
    """
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "recordings"


__all__ = ["Recording", "load_recording", "save_json_atomic", "write_atomic",
           "default_recordings_dir", "SUPPORTED", "UNITS"]
