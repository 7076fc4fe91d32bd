"""Fit ONE conductance-based model to several sweeps of a current-clamp recording at once.

``fit_recording(rec)`` fits the Pospischil et al. (2008) model (Na, Kd, M, leak; a membrane
area turns pA into densities; :data:`MODELS` adds the FS start and the IB/LTS calcium
variants) to the *measured* voltage (no liquid-junction correction).

What is simulated, on a ``dt`` grid (default 0.1 ms; the recording is resampled): each
fitted sweep from its start to 100 ms after its last depolarising epoch (the rows of
:mod:`hhjax.recordings.rows`), each starting as :func:`~hhjax.recordings.evaluation.evaluate`
starts it (:func:`~hhjax.recordings.evaluation.settle_start`: the model's rest at the row's
holding current, or its firing state where the cell fired before the first epoch). Steps all
rows share from the start are simulated once, the rest in at most two groups of similar
length, as batch axes of one program. Between each two spiking sweeps an *interpolated* row
(a step halfway between) must fire within max(1, 15 %) of the range of their counts around
their mean: a smoothness prior on the f–I curve between the fitted points; and halfway
between the strongest silent sweep and the weakest spiking one, a row must fire at most as
often as the latter (the f–I curve's foot, where nothing else holds a model silent).

The loss (mean over rows; :mod:`hhjax.recordings.loss`) adds, per row, terms for the
subthreshold voltage, spike counts per segment, spike timing, the resting potential, the
regime (depolarisation block, silence or bursts the cell does not show) and the leak reversal.

Parameters: e_l is replaced by the resting potential ``v_rest`` (e_l follows in closed form),
started at the observed eFEL ``voltage_base``; g_l and area start at the direct least-
squares estimate on the hyperpolarising step (:func:`hhjax.direct_estimate`); the active
parameters at the RS preset. Stage 1, a cross-entropy search on the loss (population as a
batch axis: one compiled program per generation), explores around that start, which the
rugged count terms need; stage 2 refines the best ``n_starts`` points together by batched
Levenberg–Marquardt (forward-mode Jacobian through the simulation; counts enter the
acceptance test, the smooth terms the step). On real recordings the search does most of
the work: spike times of later spikes are too rugged in the parameters for Gauss–Newton.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from ..fitting._common import advance, progress_bar, seed_of
from ..fitting.optimizers import normal_terms
from ..fitting.strategies import DEFAULT_TOL, LevenbergMarquardt, run_strategy
from .choice import choose_sweeps
from .evaluation import evaluate
from .rows import fit_rows, warn_if_subthreshold
from ..fitting.transforms import resolve_bounds
from ..models.pospischil import FS, RS
from ..models.pospischil_ca import IB, LTS
from .. import _validate as check
from ..solvers import METHODS
from .checkpoint import Checkpoint, fingerprint, lm_run_of
from .laplace import _stderr
from .loss import _loss, _params_of, _residuals_and_jacobian, _Spec, _weights
from .start import initial_values

DEFAULT_TRAINABLE = ("g_na", "g_k", "g_m", "tau_max", "v_t", "g_l", "e_l", "area")
#: Fit targets: name -> (starting parameters, trainable names added to the default set).
MODELS = {
    "pospischil": (RS, ()),            # regular spiking (the paper's RS cell)
    "pospischil_fs": (FS, ()),         # fast spiking: same equations, the paper's FS cell
    "pospischil_ib": (IB, ("g_cal",)),  # + L-type Ca current (intrinsically bursting)
    "pospischil_lts": (LTS, ("g_cat", "v_x")),  # + T-type Ca current (low-threshold spiking)
}
# Search spread in the unit (log-)interval of each parameter; the passive ones are known
# when the direct estimate on a hyperpolarising step gave them.
_SPREAD = {"g_l": 0.05, "area": 0.05, "v_rest": 0.08}


@dataclasses.dataclass(frozen=True)
class RecordingFit:
    """Result of :func:`fit_recording`.

    Attributes:
        params: the fitted parameters (one set for all sweeps), Python floats.
        loss: loss of ``params`` (dimensionless, see the module docstring).
        sweeps: the fitted sweeps. rows: simulated windows ``(sweep, start_ms, stop_ms, kind)``.
        features: :func:`hhjax.recordings.evaluation.evaluate` on the fitted sweeps (whole sweeps,
            observed vs simulated).
        stderr: Laplace standard errors (Gauss–Newton on the subthreshold residuals, natural
            units; ``v_rest`` stands for ``e_l``); lower bounds, as residuals are
            autocorrelated; NaN where a spike appears or vanishes under a tiny change.
        start_losses: final loss of each refined start. history: best loss per search
            generation, then per LM iteration.
        wall_time: seconds, compilation included. settings: everything needed to redo it.
    """

    params: object
    loss: float
    sweeps: tuple
    rows: list
    features: dict
    stderr: dict
    start_losses: np.ndarray
    history: np.ndarray
    wall_time: float
    settings: dict

    def __post_init__(self):
        check.finite_loss(self.loss, "fit_recording")  # never a silent inf



def fit_recording(recording, *, model="pospischil", sweeps=None, trainable=DEFAULT_TRAINABLE,
                  n_starts=4, steps=4, dt=0.1, key=None, progress=None, init=None,
                  generations=16, population=160, method="exp_euler", bounds=None, checkpoint=None):
    """Fit one parameter set to several sweeps of ``recording`` (see the module docstring).

    Args:
        recording: a :class:`hhjax.io.Recording` (measured V in mV, command current in pA).
        model: a key of :data:`MODELS`: ``"pospischil"`` (RS start), ``"pospischil_fs"``,
            ``"pospischil_ib"`` (+ L-type Ca), ``"pospischil_lts"`` (+ T-type Ca); their
            extra conductances are added to ``trainable``.
        sweeps: sweep numbers to fit; default :func:`choose_sweeps` (4, by rule).
        trainable: parameter names; ``e_l`` is fitted through the resting potential.
        n_starts: points refined together by Levenberg–Marquardt; steps: its iterations
            (0: search only, no standard errors).
        dt: simulation step (ms); the returned model is meant to be run at it (fit.json
            records it). At 0.1 ms later spike times ripple with their phase on the time
            grid, which hampers the Gauss–Newton steps; spike counts do not depend on it.
        key: ``jax.random.PRNGKey`` (or int) for the search.
        generations, population: size of the cross-entropy search (16 x 160: with 12 generations
            one seed in three stopped short on 171116sh_0018.abf and mispredicted held-out counts).
        init: params with the starting and fixed values (default: the RS preset).
        bounds: ``{name: (low, high)}`` overriding the physiological defaults.
        progress: tqdm bar (default: when stderr is a terminal).
        checkpoint: a directory: the search state is saved there atomically after every
            generation and LM iteration, and a rerun with the same inputs resumes from it
            (bit for bit on the CPU). See :mod:`hhjax.recordings.checkpoint`.

    Returns:
        :class:`RecordingFit`.
    """
    t_start = time.perf_counter()

    if model not in MODELS:
        raise ValueError(f"model: {model!r} is not a recording model; choose from {sorted(MODELS)} (or 'auto' "
                         f"via hhjax.recordings.select.fit_auto)")
    base = check.params(init if init is not None else MODELS[model][0], "init")
    if not hasattr(recording, "select") or not hasattr(recording, "resample"):
        raise TypeError(f"recording: expected an hhjax.io.Recording, got {type(recording).__name__}")
    trainable = tuple(check.names(trainable, [f.name for f in dataclasses.fields(base)]))
    trainable = trainable + tuple(n for n in MODELS[model][1] if n not in trainable)
    check.integer(n_starts, "n_starts")
    check.integer(steps, "steps", low=0)
    check.integer(generations, "generations")
    check.integer(population, "population", low=2)
    check.positive_number(dt, "dt", "ms")
    check.method(method, METHODS)
    check.bounds(bounds)
    check.voltage_trace(recording.v, "recording")
    rec = recording.select(list(sweeps) if sweeps is not None else choose_sweeps(recording))
    data_np, rows, every, hyper_win, layout = fit_rows(rec.resample(dt), dt)
    fire = tuple(bool(x) for x in data_np.pop("fire0"))  # static: which rows start firing
    warn_if_subthreshold(recording, rec.sweeps, data_np)
    names = tuple("v_rest" if n == "e_l" else n for n in trainable)
    start, direct = initial_values(data_np, hyper_win, base, names, dt)
    specs = resolve_bounds([n for n in names if n != "v_rest"], start,
                           {k: v for k, v in (bounds or {}).items() if k in names})
    if "v_rest" in names:
        specs["v_rest"] = (start["v_rest"] - 15.0, start["v_rest"] + 15.0, False)
    spec = _Spec(names, tuple(specs[n] for n in names), float(dt), method, every, layout,
                 bool(np.ptp(data_np["hold"]) > 1.0), fire if any(fire) else ())
    data = {k: jnp.asarray(v, bool if v.dtype == bool else jnp.float32) for k, v in data_np.items()}

    def unit(n, x):
        lo, hi, log = specs[n]
        x = np.clip(x, lo, hi)
        return float(np.log(x / lo) / np.log(hi / lo) if log else (x - lo) / (hi - lo))

    mu = np.array([unit(n, start[n]) for n in names])
    # g_l and area are known (narrow search) only where the direct estimate gave them.
    known = {n for n in ("g_l", "area") if direct.get("used") and np.isfinite(direct.get(n, np.nan)) and direct[n] > 0}
    sig = np.array([_SPREAD.get(n, 0.22) if n not in ("g_l", "area") or n in known else 0.22 for n in names])
    rng = np.random.default_rng(seed_of(key))
    bar = progress_bar(progress, generations + steps, "fit")
    pool_z, pool_l, history = [], [], []
    ckpt = saved = None
    if checkpoint is not None:
        ckpt = Checkpoint(checkpoint, fingerprint(
            names=names, specs=specs, start=start, base=base, data=data_np, rows=rows, dt=dt, method=method,
            generations=generations, population=population, n_starts=n_starts, steps=steps, seed=seed_of(key),
            weights=_weights(every * dt), refine=LevenbergMarquardt.name))
        saved = ckpt.load()
    g0 = 0
    if saved is not None:
        g0, mu, sig = int(saved["generation"]), saved["mu"], saved["sig"]
        rng.bit_generator.state = saved["rng"]
        pool_z, pool_l, history = list(saved["pool_z"]), list(saved["pool_l"]), saved["history"].tolist()
        if bar is not None:
            bar.update(g0)
    save = lambda **lm: ckpt and ckpt.save(generation=g, mu=mu, sig=sig, rng=rng, pool_z=pool_z,  # noqa: E731
                                           pool_l=pool_l, history=history, **lm)
    g = g0
    for g in range(g0 + 1, generations + 1):  # cross-entropy search in the unit (log-)intervals
        u = np.clip(mu + sig * rng.standard_normal((population, len(names))), 1e-3, 1 - 1e-3)
        u[0] = mu
        z = np.log(u) - np.log1p(-u)
        pool_z.append(z)
        pool_l.append(np.asarray(_loss(spec, base, jnp.asarray(z, jnp.float32), data)))
        allz, alll = np.concatenate(pool_z), np.concatenate(pool_l)
        elite = 1.0 / (1.0 + np.exp(-allz[np.argsort(alll)[: max(8, population // 10)]]))
        mu, sig = elite.mean(0), np.maximum(0.6 * elite.std(0) + 0.2 * sig, 0.01)
        history.append(float(np.min(alll)))
        save()
        advance(bar, f"{history[-1]:.3g}")
    allz, alll = np.concatenate(pool_z), np.concatenate(pool_l)
    t_search = time.perf_counter()
    best = np.argsort(alll)[:n_starts]
    z0, searched = allz[best], alll[best]
    jac_at = lambda z: _residuals_and_jacobian(spec, base, jnp.asarray(z, jnp.float32), data)  # noqa: E731
    # The residuals are scaled so that their sum of squares is the loss: one "residual".
    lm = LevenbergMarquardt(lambda z: normal_terms(*(np.asarray(x, float) for x in jac_at(z)), xp=np), 1,
                            DEFAULT_TOL, group=n_starts)
    it, done, state = 0, False, None
    if steps and saved is not None and int(saved["lm_it"]) >= 0:
        it, done, state = int(saved["lm_it"]), bool(saved["lm_done"]), lm_run_of(saved)
    elif steps:
        state = lm.init(z0)
        save(lm_it=0, lm_state=state)

    def on_step(state, it, done):
        history.append(min(float(np.min(lm.losses(state))), history[-1]))
        save(lm_it=it, lm_done=done, lm_state=state)
        advance(bar, f"{history[-1]:.3g}")

    if steps and not done:  # refine all starts together
        state, it, done = run_strategy(lm, state, steps, first=it + 1, on_step=on_step)
    if bar is not None:
        bar.close()
    losses, z_all = (lm.losses(state), lm.best_z(state)) if steps else (searched, z0)
    # A start whose Jacobian is not finite (a spike time with an infinite derivative) enters
    # LM at an infinite loss and takes any finite step: keep its search point unless LM beat it.
    worse = ~(losses <= searched)
    losses, z_all = np.where(worse, searched, losses), np.where(worse[:, None], z0, z_all)
    b = int(np.argmin(np.where(np.isfinite(losses), losses, np.inf)))
    params = _params_of(spec, base, jnp.asarray(z_all[b], jnp.float32), jnp.mean(data["hold"]))
    params = jax.tree_util.tree_map(lambda x: float(np.asarray(x)), params)
    stderr = {}
    if steps:  # the Jacobian at the end (same batch shape as the LM's: nothing recompiles)
        r, jac = (np.asarray(x) for x in jac_at(z_all))
        stderr = _stderr(spec, z_all[b], jac[b], r[b], data_np)
    t_refine = time.perf_counter()
    features = evaluate(params, rec, dt=dt, method=method)
    settings = dict(dt_ms=dt, method=method, model=model, trainable=list(trainable), optimised=list(names),
                    n_starts=n_starts, steps=steps, lm_iterations=it,
                    generations=generations, population=population, seed=seed_of(key),
                    rows=[list(r) for r in rows], layout=str(layout), start=start, direct=direct,
                    bounds={n: list(specs[n][:2]) for n in names},
                    weights=_weights(every * dt),
                    start_loss=float(pool_l[0][0]), search_loss=float(np.min(alll)),
                    refined_losses=losses.tolist(), ljp_corrected=False,
                    timing_s=dict(search=t_search - t_start, refine=t_refine - t_search,
                                  evaluate=time.perf_counter() - t_refine),
                    source=recording.source)
    return RecordingFit(params=params, loss=float(losses[b]), sweeps=tuple(rec.sweeps), rows=rows,
                        features=features, stderr=stderr, start_losses=losses, history=np.asarray(history),
                        wall_time=time.perf_counter() - t_start, settings=settings)
