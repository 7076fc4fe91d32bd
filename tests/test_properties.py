"""Issue 16, property-based: for random parameters, currents, initial voltages and methods,
no NaN without ``diverged``, gates in range, finite reverse- and forward-mode derivatives
wherever not diverged, batch == single runs, jit == eager (see tests/properties.py).
500 cases of 8 neurons each; shapes are fixed so each (model, method) compiles once.
scripts/fuzz.py runs the same checks on many more cases, in float32 and float64."""

import dataclasses
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings

import hhjax
import properties as P
from hhjax.solvers import STABILITY_LIMIT

_SETTINGS = dict(deadline=None, derandomize=True, database=None, phases=[Phase.generate],
                 suppress_health_check=list(HealthCheck))


@settings(max_examples=400, **_SETTINGS)
@given(P.cases(models=("hh",)))
def test_hh_every_method(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the divergence warning
        P.check_case(case)


@settings(max_examples=100, **_SETTINGS)
@given(P.cases(models=("pospischil", "reduced"), methods=("exp_euler",)))
def test_other_models(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        P.check_case(case)


# scripts/fuzz.py, float32, seed 0: neuron 4 (V at -210 mV, h at exactly 1.0 with its rate
# 70x beyond rk4's stability limit) had an infinite forward-mode derivative and was not
# flagged as diverged.
FUZZ_CASE = dict(
    model="pospischil", method="rk4", dt=0.025, pick=4,
    fields={
        'g_na': [48.74757180577633, 21.4170615975231, 27.621226743622348, 3.6247307423685764, 1.0, 8.2533084171382, 1.000000000001, 8.385373009936998],
        'g_k': [1.0, 36.78794411714425, 0.21128432013185558, 3.2486812169819252, 0.24625340206938037, 1.2773885516800039, 34.75935537508558, 1.0],
        'g_m': [0.07879249201756638, 0.00027182818284590476, 0.00021085696112235408, 0.0007258921277071986, 0.0013358528477147994, 1.0, 1.8221188003905089, 0.0030652434059575463],
        'g_l': [2.089310424689147, 0.13809629768393036, 1.0, 0.9999999999999987, 0.1275823036806139, 1.0, 1.0, 1.3956794836465385],
        'v_t': [-60.44613903569773, -48.54391742375316, -51.310058211633915, -57.06620796875396, -30.62179880724765, -34.71365342286063, -65.40246082000206, -56.2],
        'c_m': [2.089310424689147, 0.13809629768393036, 1.0, 0.9999999999999987, 0.1275823036806139, 1.0, 1.0, 1.3956794836465385],
        'e_l': [-69.60548015039726, -50.50495893855146, 0.0, -10.003634708808491, -86.62185100681899, -1.0, -55.59995916281365, -20.0],
    },
    amps=[-1.1754943508222875e-38, -3.905897745477893e-159, 4949.859427214544, -465.27135281744813, -5000.0, 73.60518880983454, -2142.493616378875, -145.08641585081114],
    v0=[-43.08611976170505, 1.516254305404305e-82, 49.24560338873903, -2.4014733511784954, -73.81236276746557, -118.76280986432997, -33.37134658226395, 7.777101648446518],
)


def test_fuzz_case_with_infinite_jvp():
    case = dict(FUZZ_CASE, fields={k: np.array(v) for k, v in FUZZ_CASE["fields"].items()},
                amps=np.array(FUZZ_CASE["amps"]), v0=np.array(FUZZ_CASE["v0"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        div = P.check_case(case)
    assert div[4]


@pytest.mark.parametrize("method", ["euler", "rk4"])
@pytest.mark.parametrize("side", [0.9, 1.1])
def test_gate_beyond_stability_limit_is_diverged(method, side):
    # Passive membrane at rest (no Na, no K conductance) and n at its steady state: the
    # trace stays put either way, but beyond dt/tau_n = the method's limit any deviation
    # of n (and any derivative) grows every step.
    dt = 0.1
    params = dataclasses.replace(hhjax.presets.REDUCED, g_na=0.0, g_k=0.0,
                                 tau_n=dt / (side * STABILITY_LIMIT[method]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tr = hhjax.simulate(params, 0.0, duration=2.0, dt=dt, method=method)
    assert bool(tr.diverged) == (side > 1)


def test_stability_limits_are_the_real_axis_limits():
    # |R(-z)| = 1 at the limit, for R the amplification factor of one step of dx/dt = -x.
    z = STABILITY_LIMIT["euler"]
    assert abs(1 - z) == 1.0
    z = STABILITY_LIMIT["rk4"]
    assert abs(abs(1 - z + z**2 / 2 - z**3 / 6 + z**4 / 24) - 1) < 1e-3
