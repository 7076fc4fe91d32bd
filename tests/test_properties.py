"""Issue 16, property-based: for random parameters, currents, initial voltages and methods,
no NaN without ``diverged``, gates in range, finite reverse- and forward-mode derivatives
wherever not diverged, batch == single runs, jit == eager (see tests/properties.py).
500 cases of 8 neurons each; shapes are fixed so each (model, method) compiles once.
scripts/fuzz.py runs the same checks on many more cases, in float32 and float64."""

import warnings

from hypothesis import HealthCheck, Phase, given, settings

import properties as P

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
