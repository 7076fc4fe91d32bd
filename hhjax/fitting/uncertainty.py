"""Laplace-approximation uncertainty for least-squares fits.

Near the optimum of ``L(θ) = sum_t (V_θ(t) - V_obs(t))² / (2 σ²)`` the posterior is
approximately Gaussian with covariance ``H⁻¹``, where ``H`` is the Hessian of ``L``. We use
its Gauss–Newton form ``H = JᵀJ / σ²`` (``J = ∂V/∂θ``), which is the expected Hessian of the
Gaussian likelihood and always positive semi-definite, and estimate the noise variance
from the residuals, ``σ² = sum r² / (N - P)``.
"""

from __future__ import annotations

import jax
import numpy as np


def laplace_covariance(residual_fn, theta):
    """Covariance (P×P, float64 NumPy) of the parameters ``theta`` (natural units) and ``σ²``
    (mV²), from the forward-mode Jacobian of ``residual_fn`` at ``theta``.

    ``residual_fn(theta) -> r`` must return the unscaled residuals ``V_sim - V_obs``.

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.linspace(0, 1, 50)
        >>> y = 2 * x + 1 + 0.01 * jnp.sin(37 * x)
        >>> cov, s2 = laplace_covariance(lambda th: th[0] * x + th[1] - y, jnp.array([2.0, 1.0]))
        >>> bool(cov[0, 0] > 0)
        True
    """
    return covariance_from_jacobian(jax.jacfwd(residual_fn)(theta), residual_fn(theta))


def covariance_from_jacobian(jac, residuals):
    """Laplace covariance (float64 NumPy) from ``J = ∂r/∂θ`` (n×P) and residuals ``r`` (n,).

    ``cov = σ² (JᵀJ)⁻¹`` with ``σ² = sum r² / (n - P)``; pseudo-inverse for rank-deficient
    ``J`` (an unidentifiable direction then gets zero variance along it, so check
    ``correlation`` and the condition number too).
    """
    jac = np.asarray(jac, dtype=float)
    r = np.asarray(residuals, dtype=float)
    return covariance_from_gauss_newton(jac.T @ jac, float(np.sum(r * r)), jac.shape[0])


def covariance_from_gauss_newton(h, sse, n_residuals):
    """As :func:`covariance_from_jacobian`, from ``JᵀJ`` (P×P), the sum of squared
    residuals ``sse`` (mV²) and their number. Returns ``(cov, σ²)``."""
    h = np.asarray(h, dtype=float)
    p = h.shape[-1]
    sigma2 = float(sse) / max(n_residuals - p, 1)
    if not (np.isfinite(sigma2) and np.all(np.isfinite(h))):
        # A start whose simulation blew up has no curvature to speak of: say so with NaN
        # rather than let NumPy warn while it multiplies inf by zero.
        return np.full((p, p), np.nan), sigma2
    # Symmetric scaling before inversion keeps badly scaled parameters usable.
    d = np.sqrt(np.maximum(np.diag(h), 1e-300))
    cov = sigma2 * np.linalg.pinv(h / np.outer(d, d), hermitian=True) / np.outer(d, d)
    return cov, sigma2


def correlation(cov):
    """Correlation matrix (NumPy) from a covariance matrix (``(..., P, P)``)."""
    cov = np.asarray(cov, dtype=float)
    sd = np.sqrt(np.maximum(np.diagonal(cov, axis1=-2, axis2=-1), 0.0))
    return cov / (sd[..., :, None] * sd[..., None, :] + 1e-300)


def correlated_pairs(corr, names, threshold=0.9):
    """Pairs of parameter names whose |correlation| exceeds ``threshold``, e.g. the
    g_na/g_k ridge: ``[("g_na", "g_k", 0.97)]``."""
    corr = np.asarray(corr)
    out = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if abs(corr[i, j]) > threshold:
                out.append((names[i], names[j], float(corr[i, j])))
    return out
