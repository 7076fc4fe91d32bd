"""NeuroML 2 export: the document validates against the NeuroML schema (libNeuroML, offline),
and its channels, read back and evaluated with the NeuroML 2 definitions of the standard rate
types (written here from the NeuroML2 core ComponentTypes, not from hhjax), give hhjax's
steady states, time constants and conductances over -100..+50 mV for every model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import re

import jax
import numpy as np
import pytest

import hhjax

neuroml = pytest.importorskip("neuroml", reason="libNeuroML (pip package 'libNeuroML') is not installed")
from neuroml.loaders import read_neuroml2_file  # noqa: E402
from neuroml.utils import validate_neuroml2  # noqa: E402

from hhjax.export import to_neuroml  # noqa: E402

V = np.linspace(-100.0, 50.0, 301) + 0.0137  # mV, off the 0/0 points

CELLS = {
    "hh": hhjax.presets.NEURON,
    "hh1952_warm": dataclasses.replace(hhjax.presets.HH1952, celsius=18.5),
    "reduced": dataclasses.replace(hhjax.presets.REDUCED, v_half_n=-41.0, tau_n=7.0),
    "pospischil_rs": hhjax.presets.POSPISCHIL,
    "pospischil_fs": hhjax.presets.POSPISCHIL_FS,
}

_UNITS = {"mV": 1.0, "ms": 1.0, "per_ms": 1.0, "mS_per_cm2": 1.0, "degC": 1.0, "uF_per_cm2": 1.0,
          "": 1.0}


def q(text):
    """A NeuroML quantity in hhjax's units (the export writes mV, ms, per_ms, mS_per_cm2)."""
    m = re.fullmatch(r"\s*([-+0-9.eE]+)\s*([A-Za-z_0-9]*)\s*", str(text))
    return float(m.group(1)) * _UNITS[m.group(2)]


def standard(kind, rate, mid, scale, v):
    """NeuroML 2 core types (Channels.xml)."""
    if kind == "HHExpRate":
        return rate * np.exp((v - mid) / scale)
    if kind in ("HHSigmoidRate", "HHSigmoidVariable"):
        return rate / (1 + np.exp(0 - (v - mid) / scale))
    if kind == "HHExpLinearRate":
        x = (v - mid) / scale
        return rate * x / (1 - np.exp(0 - x))
    raise KeyError(kind)


def custom(doc, comp, v):
    """Evaluate a document-defined ComponentType's DerivedVariables (LEMS expressions)."""
    ct = next(c for c in doc.ComponentType if c.name == comp.type)
    env = {"exp": np.exp, "v": v}
    env.update({c.name: q(c.value) for c in ct.Constant})
    env.update({p.name: q(getattr(comp, p.name)) for p in ct.Parameter})
    out = None
    for dv in ct.Dynamics[0].DerivedVariable:
        env[dv.name] = out = eval(dv.value, {"__builtins__": {}}, env)  # noqa: S307
    return out


def gate_values(doc, gate, v, temp):
    """(x_inf, 1/tau) of a NeuroML gate at ``v`` (mV) and temperature ``temp`` (degC)."""
    qs = gate.q10_settings if hasattr(gate, "q10_settings") else None
    factor = 1.0 if qs is None else float(qs.q10_factor) ** ((temp - q(qs.experimental_temp)) / 10)
    if isinstance(gate, neuroml.GateHHRates):
        a, b = (standard(r.type, q(r.rate), q(r.midpoint), q(r.scale), v)
                for r in (gate.forward_rate, gate.reverse_rate))
        return a / (a + b), (a + b) * factor
    ss = gate.steady_state
    inf = (standard(ss.type, q(ss.rate), q(ss.midpoint), q(ss.scale), v)
           if ss.type.startswith("HH") else custom(doc, ss, v))
    if isinstance(gate, neuroml.GateHHInstantaneous):
        return inf, None
    tc = gate.time_course
    tau = q(tc.tau) if tc.type == "fixedTimeCourse" else custom(doc, tc, v)
    return inf, factor / tau


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    out = {}
    for name, params in CELLS.items():
        path = to_neuroml(params, tmp_path_factory.mktemp("nml") / name)
        with contextlib.redirect_stdout(io.StringIO()):
            validate_neuroml2(str(path))  # raises on a schema violation
        out[name] = read_neuroml2_file(str(path))
    return out


@pytest.mark.parametrize("name", list(CELLS))
def test_neuroml_channels_equal_hhjax(name, documents):
    params, doc = CELLS[name], documents[name]
    model = hhjax.model_of(params)
    net = doc.networks[0]
    temp = q(net.temperature) if net.temperature else 0.0
    cell = doc.cells[0]
    mp = cell.biophysical_properties.membrane_properties
    assert q(mp.specific_capacitances[0].value) == params.c_m
    assert q(mp.init_memb_potentials[0].value) == model.default_voltage(params)
    seg = cell.morphology.segments[0]
    area_cm2 = math.pi * seg.distal.diameter * (seg.distal.y - seg.proximal.y) * 1e-8
    assert area_cm2 == pytest.approx(getattr(params, "area", 1e-3), rel=1e-12)

    with jax.enable_x64(True):  # float64 on both sides
        state = hhjax.steady_state(params, V)
        ours_g = {k: np.asarray(g) for k, (g, _) in model.channels(params, state).items()}
        ours_e = {k: float(e) for k, (_, e) in model.channels(params, state).items()}
        kin = {k: (np.asarray(x), np.asarray(r)) for k, (x, r) in model.kinetics(params, V).items()}
    channels = {c.id: c for c in doc.ion_channel_hhs}
    total_theirs = {}
    for dens in mp.channel_densities:
        ch = channels[dens.ion_channel]
        g = np.full_like(V, q(dens.cond_density))
        gates = (ch.gate_hh_rates + ch.gate_hh_tau_infs + ch.gate_hh_instantaneouses)
        for gate in gates:
            inf, rate = gate_values(doc, gate, V, temp)
            g = g * inf ** gate.instances
            key = gate.id if gate.id in kin else "n"  # the reduced Na's h gate runs at n's rate
            if rate is not None:
                np.testing.assert_allclose(rate, kin[key][1], rtol=1e-9, err_msg=f"{ch.id}.{gate.id}")
            if gate.id in kin and ch.id != "reduced_na":
                np.testing.assert_allclose(inf, kin[gate.id][0], rtol=1e-9, atol=1e-12,
                                           err_msg=f"{ch.id}.{gate.id}")
        key = {"na": "na", "k": "k", "m": "m", "leak": "l"}[ch.id.split("_")[-1]]
        total_theirs[key] = g
        assert q(dens.erev) == ours_e[key]
    assert sorted(total_theirs) == sorted(ours_g)
    for key in ours_g:
        np.testing.assert_allclose(total_theirs[key], ours_g[key], rtol=1e-9, atol=1e-12, err_msg=key)


def test_neuroml_export_from_fit_json_and_bad_input(tmp_path):
    params = dataclasses.replace(hhjax.presets.POSPISCHIL, g_na=44.0, v_t=-60.0)
    fit_json = hhjax.save_params(tmp_path / "fit.json", params)
    path = to_neuroml(fit_json, tmp_path / "out")
    text = path.read_text()
    assert 'condDensity="44.0mS_per_cm2"' in text and 'midpoint="-47.0mV"' in text  # V_T + 13
    assert "cannot read" not in text and (tmp_path / "out" / "README.md").exists()
    with pytest.raises(ValueError, match="not empty"):
        to_neuroml(fit_json, tmp_path / "out")
