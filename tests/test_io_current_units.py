"""Currents in the wrong unit: a warning that names the unit that fits, and ``i_units`` /
``--i-units`` to read the file in it.

The files are written here with known steps (150 pA); each is then mislabelled the way a
rig or an export gets it wrong, so the expected unit is known without hhjax."""

import warnings

import numpy as np
import pytest

from hhjax.io import ImplausibleCurrentWarning, Recording, load_recording
from hhjax.io.sources import I_SPAN_MAX_PA, I_SPAN_MIN_PA, check_current_plausible


def _csv(path, i_values, i_label):
    t = np.arange(500) * 0.1
    step = np.where((t >= 10) & (t < 30), 1.0, 0.0)
    v = -65.0 + 15.0 * step + np.sin(t)
    np.savetxt(path, np.column_stack([t, v, step * i_values]), delimiter=",",
               header=f"t_ms,v_mV,i_{i_label}", comments="")
    return path


def _quiet_load(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImplausibleCurrentWarning)
        return load_recording(path, **kw)


@pytest.mark.parametrize("values, label, fix", [
    (0.15, "pA", "nA"),     # nA exported under a pA header
    (150e-12, "pA", "A"),   # SI amperes under a pA header
    (150.0, "nA", "pA"),    # pA under an nA header: read as 150 nA, 1000 times the step
])
def test_a_mislabelled_current_warns_naming_the_unit_that_fits(tmp_path, values, label, fix):
    p = _csv(tmp_path / "cell.csv", values, label)
    with pytest.warns(ImplausibleCurrentWarning) as caught:
        load_recording(p)
    msg = str(caught[0].message)
    assert "\n" not in msg and msg.startswith(f"{p}: current implausible for pA")
    assert f"i_units='{fix}'" in msg and "--i-units" in msg
    rec = _quiet_load(p, i_units=fix)  # the suggestion, taken, reads the 150 pA step
    assert float(rec.i.max()) == pytest.approx(150.0, rel=1e-6)


def test_plausible_currents_and_a_current_that_never_changes_do_not_warn(tmp_path):
    _quiet_load(_csv(tmp_path / "ok.csv", 150.0, "pA"))
    _quiet_load(_csv(tmp_path / "nA.csv", 0.15, "nA"))
    _quiet_load(_csv(tmp_path / "none.csv", 0.0, "pA"))  # no stimulus: another rule's business


def test_the_bounds_are_the_documented_ones():
    t = np.arange(4) * 0.1

    def warns(span):
        rec = Recording(t, np.full((1, 4), -65.0), np.array([[0.0, span, span, 0.0]]), (0,), 1e4)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            check_current_plausible(rec, "x.npz", "pA")
        return any(issubclass(x.category, ImplausibleCurrentWarning) for x in w)

    assert not warns(I_SPAN_MIN_PA) and not warns(I_SPAN_MAX_PA)
    assert warns(I_SPAN_MIN_PA * 0.99) and warns(I_SPAN_MAX_PA * 1.01)


def test_cli_fit_takes_i_units_and_says_so_when_it_is_not_a_unit(tmp_path, capsys):
    from hhjax.cli import main

    p = _csv(tmp_path / "cell.csv", 0.15, "pA")
    out = tmp_path / "fit.json"
    assert main(["fit", str(p), "--i-units", "furlong", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "i_units='furlong' is not a known current unit" in err
    assert not out.exists()


def test_cli_evaluate_warns_once_and_i_units_silences_it(tmp_path, capsys, monkeypatch):
    from hhjax import save_params
    from hhjax.cli import main
    from hhjax.models.pospischil import RS

    monkeypatch.setenv("HHJAX_NO_CACHE", "1")
    p = _csv(tmp_path / "cell.csv", 0.15, "pA")
    fit_path = save_params(tmp_path / "fit.json", RS, settings={"dt_ms": 0.1})
    assert main(["evaluate", str(fit_path), str(p), "--out", str(tmp_path / "e.json")]) == 0
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"hhjax evaluate: warning: {p}: current implausible") and "\n" not in err
    assert main(["evaluate", str(fit_path), str(p), "--i-units", "nA", "--out", str(tmp_path / "e.json")]) == 0
    assert "current implausible" not in capsys.readouterr().err


def test_evaluate_reads_the_recording_as_the_fit_did(tmp_path, capsys, monkeypatch):
    """A unit fixed with --i-units at fit time is not lost at evaluate time: evaluate reads
    the file the same way (and says so), so the 0.15-labelled-pA step is 150 pA again."""
    import json

    from hhjax.cli import main

    monkeypatch.setenv("HHJAX_NO_CACHE", "1")
    p = _csv(tmp_path / "cell.csv", 0.15, "pA")
    fit_path, eval_path = tmp_path / "fit.json", tmp_path / "e.json"
    assert main(["fit", str(p), "--i-units", "nA", "--starts", "1", "--steps", "1", "--generations", "1",
                 "--population", "8", "--no-checkpoint", "--out", str(fit_path)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(fit_path), str(p), "--out", str(eval_path)]) == 0
    err = capsys.readouterr().err
    assert "current implausible" not in err and "--i-units nA, as the fit read its recording" in err
    assert json.loads(eval_path.read_text())["sweeps"][0]["current_pA"] == pytest.approx(150.0, rel=1e-6)
    # Given explicitly, the flag wins: read as pA, the file's step is implausible again.
    assert main(["evaluate", str(fit_path), str(p), "--i-units", "pA", "--out", str(eval_path)]) == 0
    err = capsys.readouterr().err
    assert "current implausible" in err and "as the fit read" not in err
