"""Laplace standard errors of a recording fit, from the subthreshold rows of its
Levenberg–Marquardt Jacobian."""

from __future__ import annotations

import numpy as np

from ..fitting.transforms import dtheta_dz
from ..fitting.uncertainty import covariance_from_jacobian
from .regime import N_SCALAR


def _stderr(spec, z, jac, r, data_np):
    """Laplace standard errors from the subthreshold rows of the LM Jacobian (natural units)."""
    sub = data_np["sub"]
    keep = np.concatenate([sub, np.zeros((sub.shape[0], data_np["t_obs"].shape[1] + N_SCALAR), bool)], -1).reshape(-1)
    jac = jac.astype(float)[keep]
    # Residuals are clipped (|r| < 4) and z spans the bounds in a few units: a slope over 1e4
    # is a spike appearing, where no Laplace error means anything (current.txt: 1e17).
    if not np.all(np.isfinite(jac)) or np.max(np.abs(jac), initial=0.0) > 1e4:
        return {n: float("nan") for n in spec.names}
    scale = np.array([dtheta_dz(z[j], b) for j, b in enumerate(spec.bounds)])
    cov, _ = covariance_from_jacobian(jac / scale, r.astype(float)[keep])
    return {n: float(np.sqrt(max(cov[j, j], 0.0))) for j, n in enumerate(spec.names)}
