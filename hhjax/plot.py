"""Figures: trace panels (V, gates, conductances, currents), phase planes and f–I curves.

Every function takes an optional ``ax``/``axes`` and returns the matplotlib figure, so the
notebooks and the CLI share one implementation. matplotlib is imported lazily.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .analysis.channels import conductances, currents
from .io.recording import write_atomic
from .models import model_of

_COLORS = {"m": "tab:red", "h": "tab:blue", "n": "tab:green", "p": "tab:purple",
           "na": "tab:pink", "k": "tab:green", "l": "k", "m_current": "tab:purple"}


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg",) and not _interactive():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _interactive():
    try:
        from IPython import get_ipython

        return get_ipython() is not None
    except ImportError:
        return False


def _pick(x, index):
    x = np.asarray(x)
    return x[index] if index is not None else x.reshape((-1, x.shape[-1]))[0]


_PANELS = ("v", "stimulus", "gates", "conductances", "currents")


def plot_trace(trace, params=None, *, panels=None,
               index=None, xlim=None, stimulus=None, title=None, axes=None):
    """Multi-panel figure of a trace with linked time axes.

    Args:
        trace: a :class:`hhjax.Trace`; for a batch, ``index`` picks the neuron (default first).
        params: needed for the conductance and current panels.
        panels: any of ``"v"`` (mV), ``"stimulus"`` (needs ``stimulus``), ``"gates"``,
            ``"conductances"`` (mS/cm²) and ``"currents"`` (µA/cm², outward positive; both
            need ``params``). Default: V and gates, plus conductances and currents with
            ``params``. Unknown names raise ``ValueError``.
        xlim: time window (ms), e.g. ``(42, 56)`` to zoom on one spike.
        stimulus: a callable ``I(t)`` for the ``"stimulus"`` panel.

    Example:
        >>> import hhjax
        >>> tr = hhjax.simulate(hhjax.presets.NEURON, 10.0, duration=50.0, dt=0.025)
        >>> fig = plot_trace(tr, hhjax.presets.NEURON)
    """
    plt = _plt()
    if panels is None:
        panels = ("v", "gates") + (("conductances", "currents") if params is not None else ())
    unknown = [p for p in panels if p not in _PANELS]
    if unknown:
        raise ValueError(f"panels: unknown {unknown}; choose from {list(_PANELS)}")
    if params is None and any(p in ("conductances", "currents") for p in panels):
        raise ValueError("panels: 'conductances' and 'currents' need params (plot_trace(trace, params))")
    if "stimulus" in panels and stimulus is None:
        raise ValueError("panels: 'stimulus' needs stimulus=, the callable I(t) that drove the trace")
    units = model_of(params).stimulus_units if params is not None else "µA/cm²"
    if axes is None:
        fig, axes = plt.subplots(len(panels), 1, sharex=True, figsize=(8, 2.0 * len(panels) + 0.6),
                                 squeeze=False)
        axes = axes[:, 0]
    fig = axes[0].figure
    t = np.asarray(trace.t)
    for ax, panel in zip(axes, panels):
        if panel == "v":
            ax.plot(t, _pick(trace.v, index), "k", lw=1)
            ax.set_ylabel("V (mV)")
        elif panel == "stimulus":
            values = np.moveaxis(np.asarray(jax.jit(jax.vmap(stimulus))(jnp.asarray(t))), 0, -1)
            ax.plot(t, _pick(np.broadcast_to(values, values.shape[:-1] + t.shape), index),
                    color="sandybrown")
            ax.set_ylabel(f"I ({units})")
        elif panel == "gates":
            for name, x in vars_of(trace.state).items():
                if name != "v":
                    ax.plot(t, _pick(x, index), color=_COLORS.get(name), label=name, lw=1)
            ax.set_ylabel("gate")
            ax.legend(loc="upper right", fontsize=8)
        elif panel == "conductances":
            for name, g in conductances(params, trace).items():
                ax.plot(t, _pick(g, index), color=_COLORS.get(name), label=f"g_{name}", lw=1)
            ax.set_ylabel("g (mS/cm²)")
            ax.legend(loc="upper right", fontsize=8)
        elif panel == "currents":
            for name, i in currents(params, trace).items():
                ax.plot(t, _pick(i, index), color=_COLORS.get(name), label=f"I_{name}", lw=1)
            ax.set_ylabel("I (µA/cm²)")
            ax.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("time (ms)")
    if xlim is not None:
        axes[-1].set_xlim(*xlim)
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    return fig


def vars_of(state) -> dict:
    """``{name: array}`` of a state pytree."""
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}


def plot_phase(trace, x="v", y="n", *, index=None, ax=None, **kwargs):
    """Trajectory in the (x, y) plane, e.g. V–n or V–m (a limit cycle under constant current)."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(_pick(getattr(trace, x), index), _pick(getattr(trace, y), index), **kwargs)
    ax.set_xlabel("V (mV)" if x == "v" else x)
    ax.set_ylabel("V (mV)" if y == "v" else y)
    ax.figure.tight_layout()
    return ax.figure


def plot_fi(amplitudes, rates, *, ax=None, label=None, units="µA/cm²", **kwargs):
    """An f–I curve: firing rate (Hz) against step current."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.plot(np.asarray(amplitudes), np.asarray(rates), "o-", label=label, **kwargs)
    ax.set_xlabel(f"step current ({units})")
    ax.set_ylabel("rate (Hz)")
    if label:
        ax.legend()
    ax.figure.tight_layout()
    return ax.figure


def plot_fit(t, target, fitted, *, ax=None, title="fit"):
    """Target and fitted voltage overlaid (mV), with the residual underneath."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(2, 1, sharex=True, figsize=(8, 4.5), gridspec_kw={"height_ratios": [3, 1]})
    t = np.asarray(t)
    a1.plot(t, np.asarray(target), color="0.6", lw=1, label="target")
    a1.plot(t, np.asarray(fitted), color="tab:red", lw=1, label="fit")
    a1.set_ylabel("V (mV)")
    a1.legend(loc="upper right", fontsize=8)
    a1.set_title(title)
    a2.plot(t, np.asarray(fitted) - np.asarray(target), color="k", lw=0.7)
    a2.set_ylabel("residual (mV)")
    a2.set_xlabel("time (ms)")
    fig.tight_layout()
    return fig


def save(fig, path, dpi=110):
    """Save a figure atomically (temporary file, then rename) and close it."""

    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi))
    finally:
        _plt().close(fig)
    return path
