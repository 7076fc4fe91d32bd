"""Comparing a recorded spike train with a simulated one (NumPy; spike times in ms)."""

from __future__ import annotations

import numpy as np

__all__ = ["gamma_coincidence"]


def gamma_coincidence(spikes_data, spikes_model, duration_ms, window_ms=4.0):
    """Coincidence factor Gamma (Jolivet et al. 2008, J Neurosci Methods 169:417).

    ``Gamma = (N_coinc - <N_coinc>) / (0.5 (N_data + N_model)) / (1 - 2 nu Delta)`` with
    ``Delta = window_ms``, ``nu = N_data / duration_ms`` (spikes/ms) and ``<N_coinc> =
    2 nu Delta N_model`` (chance coincidences of a Poisson train at the model's rate).
    A coincidence is a data/model pair with ``|t_d - t_m| <= Delta``, each spike used at
    most once (greedy in time order, which maximises the number of pairs).  1 for
    identical trains, ~0 for chance agreement.  Both trains empty -> 1.0; exactly one
    empty -> 0.0; NaN if ``2 nu Delta >= 1``.  Spike times in ms.

    >>> round(gamma_coincidence([10., 50.], [11., 80.], duration_ms=100.), 3)
    0.405
    """
    d = np.sort(np.asarray(spikes_data, dtype=float).ravel())
    m = np.sort(np.asarray(spikes_model, dtype=float).ravel())
    if d.size == 0 or m.size == 0:
        return 1.0 if d.size == m.size else 0.0
    i = j = n_coinc = 0
    while i < d.size and j < m.size:
        if abs(d[i] - m[j]) <= window_ms:
            n_coinc, i, j = n_coinc + 1, i + 1, j + 1
        elif m[j] < d[i]:
            j += 1
        else:
            i += 1
    nu = d.size / float(duration_ms)
    norm = 1.0 - 2.0 * nu * window_ms
    if norm <= 0:
        return np.nan
    return float((n_coinc - 2.0 * nu * window_ms * m.size) / (0.5 * (d.size + m.size)) / norm)
