"""hhjax as a simulator for the ``sbi`` package: parameter batches in, summary statistics out.

The core never imports torch or sbi: a torch tensor is recognised by its type's module and
converted with its own ``.numpy()`` / ``torch.as_tensor`` (imported only then).
"""

from __future__ import annotations

import dataclasses
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..models import Model, model_by_name, model_of
from ..simulation.entry import simulate
from ..stimulus import Step
from ..fitting.transforms import resolve_bounds
from .summary import goncalves_summary


def _base_params(model):
    """Params giving the values of the parameters that are not inferred."""
    if isinstance(model, str):
        return model_by_name(model).params_type()
    if isinstance(model, Model):
        return model.params_type()
    model_of(model)  # TypeError naming 'params' for anything else
    return model


def prior_bounds(model, names, bounds=None):
    """``(low, high)`` NumPy arrays (hhjax units) for ``names``: hhjax's physiological bounds
    (:func:`hhjax.fitting.transforms.default_bounds`, voltages around ``model``'s values) unless
    ``bounds={name: (low, high)}`` overrides them.

    Args:
        model: a params pytree (its values centre the voltage bounds), a model name
            (``"pospischil"``) or a :class:`hhjax.models.Model` (its default params).

    >>> lo, hi = prior_bounds("pospischil", ["g_na", "v_t"])
    >>> lo.tolist(), hi.tolist()    # mS/cm², mV
    ([1.0, -81.2], [1000.0, -31.200000000000003])
    """
    base = _base_params(model)
    names = _check_names(base, names)
    specs = resolve_bounds(names, {n: getattr(base, n) for n in names}, bounds)
    return (np.array([specs[n][0] for n in names]), np.array([specs[n][1] for n in names]))


def prior(model, names, bounds=None, device: str = "cpu"):
    """An ``sbi`` ``BoxUniform`` prior over :func:`prior_bounds` (needs ``hhjax[sbi]``).

    Example:
        >>> p = prior("pospischil", ["g_na", "g_k"], bounds={"g_na": (10, 80), "g_k": (1, 15)})  # doctest: +SKIP
        >>> p.sample((3,)).shape                                                                    # doctest: +SKIP
        torch.Size([3, 2])
    """
    import torch  # noqa: PLC0415  (optional dependency: pip install hhjax[sbi])
    from sbi.utils import BoxUniform  # noqa: PLC0415

    lo, hi = prior_bounds(model, names, bounds)
    return BoxUniform(low=torch.as_tensor(lo, dtype=torch.float32, device=device),
                      high=torch.as_tensor(hi, dtype=torch.float32, device=device), device=device)


def _check_names(base, names):
    if isinstance(names, str):
        names = [names]
    names = list(names)
    fields = [f.name for f in dataclasses.fields(base)]
    unknown = [n for n in names if n not in fields]
    if unknown or not names:
        raise ValueError(f"names: {unknown or 'none given'} not parameters of {model_of(base).name!r} "
                         f"(choose from {fields})")
    return names


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def simulator(model, stimulus, names, summary=None, *, duration: float, dt: float = 0.025,
              method: str = "exp_euler", record_every: int = 4, bounds=None):
    """A function ``theta (n, d) -> summaries (n, k)`` for ``sbi``.

    Each call runs ONE batched, jit-compiled :func:`hhjax.simulate` of all ``n`` parameter
    sets (on the GPU when JAX has one) and the summary inside the same ``jit``, and returns
    the input's array type (a torch tensor of the input's dtype and device, or NumPy).

    Args:
        model: params giving the values of the parameters not in ``names`` (hhjax units), a
            model name (``"pospischil"``) or a :class:`hhjax.models.Model`.
        stimulus: the injected current (:mod:`hhjax.stimulus`; pA for Pospischil, µA/cm² for
            density models), the same for every row. A batch of ``m`` stimuli (e.g.
            ``step(np.array([100., 200.]), 50., 250.)``: ``m`` sweeps) simulates every row under
            each and concatenates the summaries, sweep by sweep: ``(n, m * k)``.
        names: the ``d`` parameters in the columns of ``theta``, in hhjax units (mS/cm², mV, ms).
        summary: ``summary(trace) -> (n, k)`` in ``jnp``; default :func:`goncalves_summary`
            with the step's ``start``/``stop`` (needs a :func:`hhjax.stimulus.step`).
        duration, dt: simulated time and step (ms). record_every: samples kept for the
            summary (4 at dt 0.025 ms: every 0.1 ms; memory ~4 bytes per sample and row).
        bounds: ``{name: (low, high)}`` overriding hhjax's physiological bounds. Rows with a
            value outside its bounds (or not finite) are not simulated: their summaries are
            NaN, with one warning giving their count. Rows that diverge are NaN too.

    Each new batch size compiles once (seconds); sbi's fixed ``simulation_batch_size`` keeps
    one.

    Example:
        >>> import numpy as np, hhjax
        >>> sim = simulator("pospischil", hhjax.stimulus.step(300.0, 50.0, 250.0), ["g_na", "g_k"],
        ...                 duration=300.0)
        >>> x = sim(np.array([[56.0, 6.0], [56.0, 12.0]]))   # mS/cm²
        >>> x.shape, x[:, 0].tolist()    # spike counts: more K, fewer spikes
        ((2, 8), [11.0, 10.0])
    """
    base = _base_params(model)
    names = _check_names(base, names)
    lo, hi = prior_bounds(base, names, bounds)
    if summary is None:
        if not isinstance(stimulus, Step):
            raise ValueError("summary: the default summary needs a hhjax.stimulus.step; pass "
                             "summary=lambda trace: ... for other stimuli")
        t_on, t_off = float(stimulus.start), min(float(stimulus.stop), float(duration))
        summary = partial(goncalves_summary, t_on=t_on, t_off=t_off,
                          sample_dt=float(dt) * int(record_every))
    settings = dict(duration=float(duration), dt=float(dt), method=method, record_every=int(record_every))
    # Compile-time check of the arguments: a bad dt or method fails here, not in sbi's loop.
    jax.eval_shape(lambda th: _summaries(th, base, names, stimulus, summary, settings),
                   jax.ShapeDtypeStruct((1, len(names)), jnp.float32))
    run = jax.jit(lambda th: _summaries(th, base, names, stimulus, summary, settings))

    def simulate_batch(theta):
        torch_in = _is_torch(theta)
        arr = theta.detach().cpu().numpy() if torch_in else np.asarray(theta)
        if arr.ndim != 2 or arr.shape[1] != len(names):
            raise ValueError(f"theta: expected shape (n, {len(names)}) for columns {names}, got "
                             f"{tuple(arr.shape)}")
        arr = arr.astype(float)
        ok = np.all(np.isfinite(arr) & (arr >= lo) & (arr <= hi), axis=1)
        if not ok.all():
            warnings.warn(f"simulator: {int((~ok).sum())} of {len(ok)} parameter sets lie outside "
                          f"the bounds of {names} (or are not finite); their summaries are NaN",
                          RuntimeWarning, stacklevel=2)
        safe = np.where(ok[:, None], arr, np.array([float(getattr(base, n)) for n in names]))
        out = np.array(run(jnp.asarray(safe, dtype=jnp.zeros(()).dtype)))
        out[~ok] = np.nan
        if torch_in:
            import torch  # noqa: PLC0415  (only when given a tensor)

            return torch.as_tensor(out, dtype=theta.dtype, device=theta.device)
        return out

    return simulate_batch


def _summaries(theta, base, names, stimulus, summary, settings):
    # A batched stimulus (several sweeps, shape (m,)) gives every parameter set all m sweeps.
    sweeps = jax.eval_shape(stimulus, jax.ShapeDtypeStruct((), jnp.float32)).shape if callable(stimulus) else ()
    column = (theta.shape[0],) + (1,) * len(sweeps)
    params = dataclasses.replace(base, **{n: theta[:, i].reshape(column) for i, n in enumerate(names)})
    # Inside jit: only V's record survives dead-code elimination, not the gates'.
    trace = simulate(params, stimulus, spike_threshold=None, **settings)
    out = jnp.asarray(summary(trace))
    if out.ndim != 2 + len(sweeps) or out.shape[0] != theta.shape[0]:
        raise ValueError(f"summary: must return shape (n, k) = ({theta.shape[0]}, k) per sweep, got {out.shape}")
    out = out.reshape(theta.shape[0], -1)
    diverged = trace.diverged.reshape(theta.shape[0], -1).any(axis=1)
    return jnp.where(diverged[:, None], jnp.nan, out)
