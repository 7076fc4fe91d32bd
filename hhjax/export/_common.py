"""What the NEURON and NeuroML exporters share: reading the cell, unit conversions, geometry
and writing an output directory atomically.

Units: hhjax keeps conductances in mS/cm², currents in µA/cm² (pA for models with a membrane
``area`` in cm²), voltages in mV and times in ms. NEURON and NeuroML want S/cm² and mA/cm²
(NEURON) and explicit unit strings (NeuroML); the conversions live here, once.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..models import model_of
from ..io.results import load_params

#: fit.json / params files whose ``"version"`` (if any) hhjax can read.
READABLE_VERSIONS = (1,)

#: Membrane area (cm²) given to models whose parameters are densities (HH, reduced): at
#: 1e-3 cm² an IClamp of 1 nA is exactly 1 µA/cm², so stimulus numbers carry over.
DENSITY_AREA_CM2 = 1e-3


def load_cell(params_or_path):
    """A single cell's params from a params pytree or a ``fit.json`` path.

    Raises ``ValueError`` (one line, naming the argument or file) for batched params, an
    unknown model or a file version hhjax cannot read.

    >>> import hhjax
    >>> load_cell(hhjax.presets.NEURON).g_na   # mS/cm²
    120.0
    """
    if isinstance(params_or_path, (str, os.PathLike)):
        path = Path(params_or_path)
        _check_version(path)
        params = load_params(path)
    else:
        params = params_or_path
    model_of(params)  # TypeError naming the argument for anything that is not params
    for f in dataclasses.fields(params):
        value = np.asarray(getattr(params, f.name))
        if value.size != 1:
            raise ValueError(f"params: export needs one cell, but {f.name} has shape {value.shape}")
        if not np.isfinite(value):
            raise ValueError(f"params: {f.name} is not finite ({value.item()})")
    return dataclasses.replace(params, **{f.name: float(np.asarray(getattr(params, f.name)).item())
                                          for f in dataclasses.fields(params)})


def _check_version(path: Path) -> None:
    try:
        with open(path) as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not an hhjax fit file (top level is not an object)")
    version = data.get("version", data.get("format_version", 1))
    if version not in READABLE_VERSIONS:
        raise ValueError(f"{path}: file version {version!r} cannot be read by this hhjax "
                         f"(reads {list(READABLE_VERSIONS)})")


def area_cm2(params) -> float:
    """Membrane area (cm²) of the exported cell: the model's ``area`` if it has one, else
    :data:`DENSITY_AREA_CM2`.

    >>> import hhjax
    >>> area_cm2(hhjax.presets.NEURON), round(area_cm2(hhjax.presets.POSPISCHIL) * 1e4, 6)
    (0.001, 1.184368)
    """
    return float(getattr(params, "area", DENSITY_AREA_CM2))


def soma_diameter_um(params) -> float:
    """Diameter = length (µm) of the one-compartment cylinder whose lateral area
    ``pi d L`` is :func:`area_cm2` (NEURON counts no end caps).

    >>> import hhjax
    >>> round(soma_diameter_um(hhjax.presets.POSPISCHIL), 6)   # the paper's RS soma
    61.4
    """
    return math.sqrt(area_cm2(params) * 1e8 / math.pi)


def nA_per_stimulus_unit(params) -> float:
    """Factor from hhjax's stimulus units (µA/cm² or pA) to an IClamp's nA.

    >>> import hhjax
    >>> nA_per_stimulus_unit(hhjax.presets.NEURON), nA_per_stimulus_unit(hhjax.presets.POSPISCHIL)
    (1.0, 0.001)
    """
    if hasattr(params, "area"):
        return 1e-3  # pA -> nA
    return DENSITY_AREA_CM2 * 1e3  # µA/cm² * cm² = µA; * 1e3 = nA


def hhjax_version() -> str:
    """The installed hhjax's version, for the header of exported files."""
    try:
        return importlib.metadata.version("hhjax")
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"


def num(x: float) -> str:
    """A float written so that it reads back bit for bit (``repr``), for mod/XML/Python files.

    >>> num(0.12), num(1e-5)
    ('0.12', '1e-05')
    """
    return repr(float(x))


def write_directory(directory, files: dict[str, str], *, force: bool = False) -> Path:
    """Write ``{relative name: text}`` into ``directory`` all at once: the files go to a
    temporary sibling first, which then replaces ``directory``. An existing non-empty
    ``directory`` is an error unless ``force`` (then it is replaced whole).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "out"
    >>> sorted(p.name for p in write_directory(d, {"a.txt": "hi"}).iterdir())
    ['a.txt']
    """
    directory = Path(directory)
    if directory.exists():
        if not directory.is_dir():
            raise ValueError(f"directory: {directory} exists and is not a directory")
        if any(directory.iterdir()) and not force:
            raise ValueError(f"directory: {directory} exists and is not empty (use force=True / --force)")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for name, text in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text)
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory
