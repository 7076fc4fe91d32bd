"""Saving and loading fitted models (``fit.json``)."""

from __future__ import annotations

from typing import Any, Union

import dataclasses
import json
from pathlib import Path

import numpy as np

from .recording import save_json_atomic as write_json_atomic
from ..models import model_by_name, model_of
from ..models.base import parameter_kind

def unit_of(name: str) -> str:
    """Units of a parameter, from its name (``g_*`` mS/cm², ``e_*`` mV, ...; see
    :func:`hhjax.models.base.parameter_kind`)."""
    return parameter_kind(name)[1]


def _scalar(x):
    a = np.asarray(x)
    return a.item() if a.size == 1 else a.tolist()


def fit_to_dict(result, **extra) -> dict:
    """A JSON-ready summary of a :class:`hhjax.FitResult` (single target)."""
    params = result.params
    model = model_of(params)
    names = [f.name for f in dataclasses.fields(params)]
    return {
        "model": model.name,
        "params": {n: _scalar(getattr(params, n)) for n in names},
        "trainable": list(result.trainable),
        "stderr": {n: _scalar(v) for n, v in result.stderr.items()},
        "loss": _scalar(result.loss),
        "units": {n: unit_of(n) for n in names} | {"loss": "mV²", "stimulus": model.stimulus_units},
        "correlated_pairs": [list(p) for p in result.correlated] if result.correlated and not isinstance(result.correlated[0], list) else result.correlated,
        "converged": np.asarray(result.converged).tolist(),
        "reasons": result.reasons,
        "status": result.status,
        "wall_time_s": result.wall_time,
        "settings": result.settings,
        **extra,
    }


def save_fit(path: Union[str, Path], result: Any, **extra: Any) -> Path:
    """Write a fit's parameters, standard errors, loss, units and settings to JSON, atomically.

    Example:
        >>> # hhjax.save_fit("fit.json", hhjax.fit(...))
    """
    return write_json_atomic(path, fit_to_dict(result, **extra))


def save_params(path: Union[str, Path], params: Any, **extra: Any) -> Path:
    """Write any params pytree to JSON (``{"model": ..., "params": {...}}``), atomically;
    returns the path. Values are in the units of :func:`hhjax.unit_of` (mV, mS/cm², ...).

    Example:
        >>> import dataclasses, hhjax
        >>> path = save_params("cell.json", dataclasses.replace(hhjax.presets.NEURON, g_na=100.0))
        >>> load_params(path).g_na   # mS/cm²
        100.0
    """
    names = [f.name for f in dataclasses.fields(params)]
    return write_json_atomic(path, {
        "model": model_of(params).name,
        "params": {n: _scalar(getattr(params, n)) for n in names},
        "units": {n: unit_of(n) for n in names}, **extra})


def load_params(path: Union[str, Path]) -> Any:
    """Read the params written by :func:`save_fit` or :func:`save_params`.

    Raises ``ValueError`` naming the file for malformed content.

    Example:
        >>> import hhjax
        >>> load_params(save_params("cell.json", hhjax.presets.NEURON)).e_k   # mV
        -77.0
    """
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    try:
        model = model_by_name(data.get("model", "hh"))
        values = data["params"]
        fields = {f.name for f in dataclasses.fields(model.params_type)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ValueError(f"unknown parameters {unknown} for model {model.name!r}")
        # Lists are batched params (save_params writes arrays as lists): back to arrays.
        return model.params_type(**{k: np.asarray(v, dtype=float) if isinstance(v, list) else float(v)
                                    for k, v in values.items()})
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not an hhjax fit file ({exc})") from None
