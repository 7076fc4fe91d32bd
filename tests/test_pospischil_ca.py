"""The calcium-current Pospischil models (IB: L-type, LTS: T-type) against the paper's
equations written out independently in float64 NumPy, and their qualitative signatures."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from hhjax import simulate
from hhjax import load_params, save_params
from hhjax.models import model_of
from hhjax.models.pospischil import RS
from hhjax.models.pospischil_ca import IB, LTS, l_type_kinetics, t_type_kinetics
from hhjax.recordings.evaluation import model_rest

# Away from alpha_q's removable singularity at -27 mV, where the textbook form is 0/0.
V = np.array([-100.0, -85.0, -70.0, -55.3, -40.0, -20.0, 0.0, 25.0])


def test_l_type_rates_match_the_paper():
    a_q = 0.055 * (-27 - V) / (np.exp((-27 - V) / 3.8) - 1)
    b_q = 0.94 * np.exp((-75 - V) / 17)
    a_r = 0.000457 * np.exp((-13 - V) / 50)
    b_r = 0.0065 / (np.exp((-15 - V) / 28) + 1)
    k = l_type_kinetics(jnp.asarray(V, jnp.float32))
    for gate, a, b in (("q", a_q, b_q), ("r", a_r, b_r)):
        x_inf, rate = (np.asarray(x, float) for x in k[gate])
        np.testing.assert_allclose(rate, a + b, rtol=2e-5)
        np.testing.assert_allclose(x_inf, a / (a + b), rtol=2e-5, atol=1e-9)


def test_t_type_kinetics_match_the_paper():
    vx = 3.0
    s_inf = 1 / (1 + np.exp(-(V + vx + 57) / 6.2))
    u_inf = 1 / (1 + np.exp((V + vx + 81) / 4))
    tau_u = (30.8 + (211.4 + np.exp((V + vx + 113.2) / 5)) / (1 + np.exp((V + vx + 84) / 3.2))) / 3.7
    s, u, rate = (np.asarray(x, float) for x in t_type_kinetics(dataclasses.replace(LTS, v_x=vx), jnp.asarray(V, jnp.float32)))
    np.testing.assert_allclose(s, s_inf, rtol=2e-5, atol=1e-9)
    np.testing.assert_allclose(u, u_inf, rtol=2e-5, atol=1e-9)
    np.testing.assert_allclose(1.0 / rate, tau_u, rtol=2e-5)
    assert np.all(np.isfinite(np.asarray(t_type_kinetics(LTS, jnp.asarray([-1e4, 1e4], jnp.float32))[2])))


def _run(params, amps, n=12000, dt=0.1):
    i = np.zeros((len(amps), n))
    for k, (a, t0, t1) in enumerate(amps):
        i[k, int(t0 / dt):int(t1 / dt)] = a
    y0 = model_rest(params)
    return np.asarray(simulate(params, jnp.asarray(i), duration=n * dt, dt=dt, y0=y0, spike_threshold=None).v)


def test_without_calcium_both_are_the_rs_cell():
    ref = _run(RS, [(200.0, 100.0, 600.0)])
    for p in (dataclasses.replace(IB, g_cal=0.0), dataclasses.replace(LTS, g_cat=0.0)):
        np.testing.assert_allclose(_run(p, [(200.0, 100.0, 600.0)]), ref, atol=1e-3)


def test_lts_rebound_burst_after_hyperpolarisation():
    """The T current's signature: released from a -150 pA step, the LTS cell fires a
    rebound burst; the RS cell (no T current) does not."""
    dt = 0.1
    hyper = [(-150.0, 100.0, 600.0)]
    after = slice(int(600 / dt), int(800 / dt))
    count = lambda v: int(np.sum((v[0, after][:-1] < -20) & (v[0, after][1:] >= -20)))  # noqa: E731
    assert count(_run(dataclasses.replace(LTS, g_cat=2.0), hyper)) >= 1
    assert count(_run(RS, hyper)) == 0


def test_registered_and_round_trip(tmp_path):
    for p, name in ((IB, "pospischil_ib"), (LTS, "pospischil_lts")):
        assert model_of(p).name == name
        back = load_params(save_params(tmp_path / f"{name}.json", p))
        assert type(back) is type(p) and float(back.e_ca) == 120.0
