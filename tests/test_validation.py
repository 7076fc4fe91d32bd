"""Issue 16: every bad call gives one line naming the argument (a table of bad calls),
and traced values keep passing."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax import _validate as check
from hhjax import stimulus as S
from hhjax.fitting.fitter import fit
from hhjax.recordings.cell_fit import fit_recording

P = hhjax.presets.NEURON
R = dataclasses.replace


def sim(**kw):
    args = dict(params=P, stimulus=10.0, duration=1.0, dt=0.025)
    args.update(kw)
    return lambda: hhjax.simulate(args.pop("params"), args.pop("stimulus"), **args)


_V = np.linspace(-65.0, -60.0, 41)  # a 1 ms target at dt = 0.025 ms


def fit_(target=_V, stim=1.0, **kw):
    args = dict(dt=0.025, n_starts=1, steps=1, progress=False, direct=False)
    args.update(kw)
    return lambda: fit(target, stim, **args)


class _Rec:  # enough of a Recording for the checks, which run before any use
    select = resample = None


def fitrec(rec=_Rec(), **kw):
    return lambda: fit_recording(rec, progress=False, **kw)


CASES = [
    # simulate: types
    ("sim stimulus str", sim(stimulus="10"), TypeError, "stimulus"),
    ("sim stimulus None", sim(stimulus=None), TypeError, "stimulus"),
    ("sim stimulus complex", sim(stimulus=1 + 2j), TypeError, "stimulus"),
    ("sim stimulus complex array", sim(stimulus=np.ones(41, complex)), TypeError, "stimulus"),
    ("sim stimulus bool", sim(stimulus=True), TypeError, "stimulus"),
    ("sim stimulus NaN", sim(stimulus=float("nan")), ValueError, "stimulus"),
    ("sim g_na str", sim(params=R(P, g_na="120")), TypeError, "params.g_na"),
    ("sim g_na None", sim(params=R(P, g_na=None)), TypeError, "params.g_na"),
    ("sim g_na list", sim(params=R(P, g_na=[120.0, 100.0])), TypeError, "params.g_na"),
    ("sim g_na bool", sim(params=R(P, g_na=True)), TypeError, "params.g_na"),
    ("sim g_na complex", sim(params=R(P, g_na=1j)), TypeError, "params.g_na"),
    ("sim g_na NaN", sim(params=R(P, g_na=float("nan"))), ValueError, "params.g_na"),
    ("sim params None", sim(params=None), TypeError, "params"),
    # simulate: physical sense
    ("sim celsius -300", sim(params=R(P, celsius=-300.0)), ValueError, "params.celsius"),
    ("sim c_m 0", sim(params=R(P, c_m=0.0)), ValueError, "params.c_m"),
    ("sim g_k < 0", sim(params=R(P, g_k=-1.0)), ValueError, "params.g_k"),
    ("sim threshold NaN", sim(spike_threshold=float("nan")), ValueError, "spike_threshold"),
    ("sim threshold inf", sim(spike_threshold=float("inf")), ValueError, "spike_threshold"),
    ("sim threshold str", sim(spike_threshold="0"), TypeError, "spike_threshold"),
    ("sim dt 0", sim(dt=0), ValueError, "dt"),
    ("sim dt < 0", sim(dt=-0.025), ValueError, "dt"),
    ("sim dt NaN", sim(dt=float("nan")), ValueError, "dt"),
    ("sim dt inf", sim(dt=float("inf")), ValueError, "dt"),
    ("sim dt str", sim(dt="0.025"), TypeError, "dt"),
    ("sim dt None", sim(dt=None), TypeError, "dt"),
    ("sim duration < 0", sim(duration=-1.0), ValueError, "duration"),
    ("sim record_every 0", sim(record_every=0), ValueError, "record_every"),
    ("sim record_every float", sim(record_every=1.5), TypeError, "record_every"),
    ("sim record_every bool", sim(record_every=True), TypeError, "record_every"),
    ("sim method", sim(method="euler2"), ValueError, "method"),
    ("sim y0 str", sim(y0="-65"), TypeError, "y0"),
    ("sim max_memory 0", sim(max_memory=0), ValueError, "max_memory"),
    ("sim max_memory str", sim(max_memory="1G"), TypeError, "max_memory"),
    # stimulus constructors
    ("step start after stop", lambda: S.step(10.0, 4.0, 1.0), ValueError, "stop"),
    ("step start == stop", lambda: S.step(10.0, 4.0, 4.0), ValueError, "stop"),
    ("step amplitude str", lambda: S.step("10"), TypeError, "amplitude"),
    ("step amplitude None", lambda: S.step(None), TypeError, "amplitude"),
    ("step start NaN", lambda: S.step(1.0, float("nan"), 5.0), ValueError, "start"),
    ("pulse negative duration", lambda: S.pulse(10.0, 1.0, -1.0), ValueError, "duration"),
    ("pulse zero duration", lambda: S.pulse(10.0, 1.0, 0.0), ValueError, "duration"),
    ("pulses ragged", lambda: S.pulses([1.0, 2.0], [0.0], [1.0, 1.0]), ValueError, "pulses"),
    ("ramp stop before start", lambda: S.ramp(0.0, 1.0, 5.0, 2.0), ValueError, "stop"),
    ("pulse_train width 0", lambda: S.pulse_train(1.0, 0.0, 0.0, 5.0, 3), ValueError, "width"),
    ("pulse_train n_pulses -1", lambda: S.pulse_train(1.0, 0.0, 1.0, 5.0, -1), ValueError, "n_pulses"),
    ("pulse_train n_pulses str", lambda: S.pulse_train(1.0, 0.0, 1.0, 5.0, "3"), TypeError, "n_pulses"),
    ("sampled dt 0", lambda: S.sampled(np.ones(5), 0.0), ValueError, "dt"),
    ("sampled values NaN", lambda: S.sampled(np.array([1.0, np.nan]), 0.1), ValueError, "values"),
    ("constant NaN", lambda: S.constant(float("nan")), ValueError, "amplitude"),
    ("constant complex", lambda: S.constant(1j), TypeError, "amplitude"),
    ("sine frequency inf", lambda: S.sine(1.0, float("inf")), ValueError, "frequency"),
    ("ou tau 0", lambda: S.ou_noise(jax.random.PRNGKey(0), duration=1.0, dt=0.1, tau=0.0),
     ValueError, "tau"),
    # fit
    ("fit dt 0", fit_(dt=0), ValueError, "dt"),
    ("fit dt NaN", fit_(dt=float("nan")), ValueError, "dt"),
    ("fit dt str", fit_(dt="0.025"), TypeError, "dt"),
    ("fit dt < 0", fit_(dt=-0.025), ValueError, "dt"),
    ("fit record_every 0", fit_(record_every=0), ValueError, "record_every"),
    ("fit init NaN", fit_(init=R(P, g_na=float("nan"))), ValueError, "init.g_na"),
    ("fit trainable None", fit_(trainable=None), TypeError, "trainable"),
    ("fit trainable unknown", fit_(trainable=("g_xx",)), ValueError, "trainable"),
    ("fit trainable empty", fit_(trainable=()), ValueError, "trainable"),
    ("fit bounds 3 values", fit_(bounds={"g_na": (1.0, 2.0, 3.0)}), ValueError, "bounds"),
    ("fit bounds reversed", fit_(bounds={"g_na": (200.0, 100.0)}), ValueError, "bounds"),
    ("fit bounds NaN", fit_(bounds={"g_na": (float("nan"), 100.0)}), ValueError, "bounds"),
    ("fit n_starts str", fit_(n_starts="a"), TypeError, "n_starts"),
    ("fit n_starts 0", fit_(n_starts=0), ValueError, "n_starts"),
    ("fit steps -1", fit_(steps=-1), ValueError, "steps"),
    ("fit target str", fit_(target="abc"), TypeError, "target_v"),
    ("fit target str array", fit_(target=np.array(["a", "b", "c"])), TypeError, "target_v"),
    ("fit target NaN", fit_(target=np.where(np.arange(41) == 7, np.nan, _V)), ValueError, "target_v"),
    ("fit target 1e6 mV", fit_(target=_V * 0 + 1e6), ValueError, "target_v"),
    ("fit stimulus NaN", fit_(stim=float("nan")), ValueError, "stimulus"),
    ("fit stimulus str", fit_(stim="1"), TypeError, "stimulus"),
    ("fit method", fit_(method="rk5"), ValueError, "method"),
    ("fit tol NaN", fit_(tol=float("nan")), ValueError, "tol"),
    # fit_recording
    ("fitrec recording path", fitrec(rec="cell.abf"), TypeError, "recording"),
    ("fitrec n_starts 0", fitrec(n_starts=0), ValueError, "n_starts"),
    ("fitrec dt 0", fitrec(dt=0.0), ValueError, "dt"),
    ("fitrec dt str", fitrec(dt="0.1"), TypeError, "dt"),
    ("fitrec steps -1", fitrec(steps=-1), ValueError, "steps"),
    ("fitrec trainable None", fitrec(trainable=None), TypeError, "trainable"),
    ("fitrec trainable unknown", fitrec(trainable=("g_xx",)), ValueError, "trainable"),
    ("fitrec population 1", fitrec(population=1), ValueError, "population"),
    ("fitrec init NaN", fitrec(init=R(hhjax.presets.get_preset("pospischil"), g_k=float("nan"))),
     ValueError, "init.g_k"),
]


@pytest.mark.parametrize("name,call,error,argname", CASES, ids=[c[0] for c in CASES])
def test_bad_call_names_the_argument(name, call, error, argname):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(argname), message


def test_traced_values_pass():
    """Inside jit and grad the checks do not look at values; results match eager ones."""
    def loss(g_na, amp, start):
        tr = hhjax.simulate(R(P, g_na=g_na), S.step(amp, start, 4.0), duration=5.0, dt=0.025)
        return jnp.sum(tr.v)

    args = (120.0, 10.0, 1.0)
    eager = loss(*args)
    jitted = jax.jit(loss)(*args)
    np.testing.assert_allclose(jitted, eager, rtol=1e-5)
    grads = jax.grad(loss, argnums=(0, 1))(*args)
    assert all(np.isfinite(g) for g in grads)


def test_units_named():
    with pytest.raises(ValueError, match=r"dt: must be > 0 \(ms\)"):
        hhjax.simulate(P, 0.0, duration=1.0, dt=0.0)
    with pytest.raises(ValueError, match=r"params.celsius: must be >= -273.15 \(°C\)"):
        hhjax.simulate(R(P, celsius=-274.0), 0.0, duration=1.0, dt=0.025)


def test_fit_without_finite_loss_raises():
    """Every start's simulation blows up (forward Euler far past its stability limit): the fit
    raises rather than returning loss=inf."""
    true = hhjax.simulate(P, S.step(10.0, 1.0, 9.0), duration=10.0, dt=0.025).v
    v = true[::20]  # 0.5 ms spacing
    with pytest.raises(check.FitFailed, match="finite loss"):
        fit(v, S.step(10.0, 1.0, 9.0), dt=0.5, method="euler", n_starts=2, steps=2, progress=False,
            direct=False, init=R(P, g_na=5000.0, g_k=3000.0),
            bounds={"g_na": (4000.0, 6000.0), "g_k": (2000.0, 4000.0)})


def test_finite_loss_rule():
    check.finite_loss(np.array([0.1, 2.0]))
    for bad in (math.inf, math.nan):
        with pytest.raises(check.FitFailed):
            check.finite_loss(np.array([0.1, bad]))


def test_covariance_of_a_blown_up_start_is_nan_without_a_warning():
    """A non-finite residual sum (a simulation that blew up) gives a NaN covariance, quietly:
    it used to reach NumPy as inf × 0 and warn from inside the fit."""
    import warnings

    from hhjax.fitting.uncertainty import covariance_from_gauss_newton

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cov, sigma2 = covariance_from_gauss_newton(np.eye(2), math.inf, 10)
    assert np.isnan(cov).all() and cov.shape == (2, 2) and sigma2 == math.inf
    cov, _ = covariance_from_gauss_newton(np.diag([4.0, 1.0]), 8.0, 10)  # σ² = 1
    np.testing.assert_allclose(cov, np.diag([0.25, 1.0]))
