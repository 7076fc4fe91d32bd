"""Export a fitted hhjax cell to NeuroML 2 (via libNeuroML), validated against the schema.

``to_neuroml(params, directory)`` writes ``hhjax_cell.net.nml``: the ion channels, a
one-compartment cell (cylinder with the model's membrane area, spike threshold 0 mV, initial
potential the one ``hhjax.simulate`` starts from) and a one-cell network at the model's
temperature. Units are written out in every value (mV, ms, per_ms, mS_per_cm2, uF_per_cm2,
um, degC).

What NeuroML expresses exactly, and what not:

* Classic HH (any ``v_offset``, any temperature), the Pospischil Na/Kd rates with the V_T
  shift, the leaks, the reduced model's instantaneous ``m_inf`` and the temperature factors
  (``q10ExpTemp``) are NeuroML's standard forms (HHExpLinearRate, HHExpRate, HHSigmoidRate,
  HHSigmoidVariable, fixedTimeCourse): exact.
* Two pieces have no standard form and are written as small LEMS ComponentTypes in the same
  document (exact in any LEMS-based simulator, but a NeuroML tool that only knows the standard
  types cannot read them): the M current's ``tau_p(V) = tau_max / (3.3 e^w + e^-w)``
  (``hhjax_tau_p``) and the reduced model's inactivation, slaved to the K gate
  (``h = 0.89 - 1.1 n``). NeuroML gates cannot read another channel's gate, so the Na channel
  carries its own copy: a gate ``h`` with ``h_inf = 0.89 - 1.1 n_inf(V)`` (``hhjax_h_inf``)
  and ``tau = tau_n``, which obeys exactly the same equation as ``0.89 - 1.1 n``.
* NeuroML says nothing about the integration method: a simulator's own scheme gives spike
  times that differ from ``method="neuron"`` by its own discretisation error. Pospischil's
  temperature dependence (q10 3 for Na/Kd, 2.3 for the M current, from 36 °C) is ModelDB's;
  hhjax itself has none, which is what the written temperature of 36 °C gives.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import tempfile
from pathlib import Path

from ..models import model_of
from ._common import area_cm2, load_cell, soma_diameter_um, write_directory

FILE = "hhjax_cell.net.nml"


def _mv(x):
    return f"{float(x)!r}mV"


def _q10(factor, temp):
    import neuroml  # noqa: PLC0415  (optional dependency: pip install hhjax[export])

    return neuroml.Q10Settings(type="q10ExpTemp", q10_factor=str(factor), experimental_temp=f"{temp}degC")


def _rates_gate(gid, fwd, rev, q10=None):
    """A ``gateHHrates`` gate; ``fwd``/``rev`` are (type, rate per_ms, midpoint mV, scale mV)."""
    import neuroml  # noqa: PLC0415

    def rate(spec):
        kind, r, mid, scale = spec
        return neuroml.HHRate(type=kind, rate=f"{float(r)!r}per_ms", midpoint=_mv(mid), scale=_mv(scale))

    return neuroml.GateHHRates(id=gid, instances=1, forward_rate=rate(fwd), reverse_rate=rate(rev),
                               q10_settings=q10)


def _hh_like_channels(p, offset, q10, names):
    """Na (m^3 h) and K (n^4) channels in the HH rate family, rates written around
    ``offset`` (mV); ``names`` gives the channel ids. Returns (na, k) IonChannelHH."""
    import neuroml  # noqa: PLC0415

    if names == "hh":  # u = V - v_offset; NEURON's hh.mod rates
        m = (("HHExpLinearRate", 1.0, offset + 25, 10), ("HHExpRate", 4.0, offset, -18))
        h = (("HHExpRate", 0.07, offset, -20), ("HHSigmoidRate", 1.0, offset + 30, 10))
        n = (("HHExpLinearRate", 0.1, offset + 10, 10), ("HHExpRate", 0.125, offset, -80))
    else:  # u = V - V_T; Pospischil et al. (2008)
        m = (("HHExpLinearRate", 1.28, offset + 13, 4), ("HHExpLinearRate", 1.4, offset + 40, -5))
        h = (("HHExpRate", 0.128, offset + 17, -18), ("HHSigmoidRate", 4.0, offset + 40, 5))
        n = (("HHExpLinearRate", 0.16, offset + 15, 5), ("HHExpRate", 0.5, offset + 10, -40))
    na = neuroml.IonChannelHH(id=f"{names}_na", species="na", conductance="10pS")
    na.gate_hh_rates = [_rates_gate("m", *m, q10=q10), _rates_gate("h", *h, q10=q10)]
    na.gate_hh_rates[0].instances = 3
    k = neuroml.IonChannelHH(id=f"{names}_k", species="k", conductance="10pS")
    k.gate_hh_rates = [_rates_gate("n", *n, q10=q10)]
    k.gate_hh_rates[0].instances = 4
    return na, k


def _component_types(names):
    """The LEMS ComponentTypes for the two non-standard pieces (see the module docstring)."""
    import neuroml  # noqa: PLC0415

    out = []
    if "tau_p" in names:
        out.append(neuroml.ComponentType(
            name="hhjax_tau_p", extends="baseVoltageDepTime",
            description="Pospischil M current: tau = tau_max / (3.3 exp(w) + exp(-w)), w = (v + 35 mV) / 20 mV",
            Parameter=[neuroml.Parameter(name="tau", dimension="time")],
            Constant=[neuroml.Constant(name="V35", dimension="voltage", value="35mV"),
                      neuroml.Constant(name="V20", dimension="voltage", value="20mV")],
            Requirement=[neuroml.Requirement(name="v", dimension="voltage")],
            Dynamics=[neuroml.Dynamics(DerivedVariable=[
                neuroml.DerivedVariable(name="w", dimension="none", value="(v + V35) / V20"),
                neuroml.DerivedVariable(name="t", dimension="time", exposure="t",
                                        value="tau / (3.3 * exp(w) + exp(-w))")])]))
    if "h_inf" in names:
        out.append(neuroml.ComponentType(
            name="hhjax_h_inf", extends="baseVoltageDepVariable",
            description="reduced model: h_inf = 0.89 - 1.1 / (1 + exp((midpoint - v) / scale))",
            Parameter=[neuroml.Parameter(name="midpoint", dimension="voltage"),
                       neuroml.Parameter(name="scale", dimension="voltage")],
            Requirement=[neuroml.Requirement(name="v", dimension="voltage")],
            Dynamics=[neuroml.Dynamics(DerivedVariable=[
                neuroml.DerivedVariable(name="x", dimension="none", exposure="x",
                                        value="0.89 - 1.1 / (1 + exp((midpoint - v) / scale))")])]))
    return out


def _channels(p):
    """(ion channels, [(channel, ion, mS/cm², erev mV)], component types, temperature °C)."""
    import neuroml  # noqa: PLC0415

    name = model_of(p).name
    leak = neuroml.IonChannelHH(id="leak", species=None, type="ionChannelPassive", conductance="10pS")
    if name == "hh":
        na, k = _hh_like_channels(p, p.v_offset, _q10(3, 6.3), "hh")
        return [na, k, leak], [(na, "na", p.g_na, p.e_na), (k, "k", p.g_k, p.e_k),
                               (leak, "non_specific", p.g_l, p.e_l)], [], float(p.celsius)
    if name == "pospischil":
        na, k = _hh_like_channels(p, p.v_t, _q10(3, 36), "pospischil")
        im = neuroml.IonChannelHH(id="pospischil_m", species="k", conductance="10pS")
        im.gate_hh_tau_infs = [neuroml.GateHHTauInf(
            id="p", instances=1, q10_settings=_q10(2.3, 36),
            time_course=neuroml.HHTime(type="hhjax_tau_p", tau=f"{p.tau_max!r}ms"),
            steady_state=neuroml.HHVariable(type="HHSigmoidVariable", rate="1", midpoint="-35mV",
                                            scale="10mV"))]
        return ([na, k, im, leak],
                [(na, "na", p.g_na, p.e_na), (k, "k", p.g_k, p.e_k), (im, "k", p.g_m, p.e_k),
                 (leak, "non_specific", p.g_l, p.e_l)], _component_types({"tau_p"}), 36.0)
    if name == "reduced":
        na = neuroml.IonChannelHH(id="reduced_na", species="na", conductance="10pS")
        na.gate_hh_instantaneouses = [neuroml.GateHHInstantaneous(
            id="m", instances=3, steady_state=neuroml.HHVariable(
                type="HHSigmoidVariable", rate="1", midpoint=_mv(p.v_half_m), scale=_mv(p.k_m)))]
        tau = neuroml.HHTime(type="fixedTimeCourse", tau=f"{p.tau_n!r}ms")
        na.gate_hh_tau_infs = [neuroml.GateHHTauInf(
            id="h", instances=1, time_course=tau,
            steady_state=neuroml.HHVariable(type="hhjax_h_inf", midpoint=_mv(p.v_half_n), scale=_mv(p.k_n)))]
        k = neuroml.IonChannelHH(id="reduced_k", species="k", conductance="10pS")
        k.gate_hh_tau_infs = [neuroml.GateHHTauInf(
            id="n", instances=4, time_course=neuroml.HHTime(type="fixedTimeCourse", tau=f"{p.tau_n!r}ms"),
            steady_state=neuroml.HHVariable(type="HHSigmoidVariable", rate="1", midpoint=_mv(p.v_half_n),
                                            scale=_mv(p.k_n)))]
        return ([na, k, leak], [(na, "na", p.g_na, p.e_na), (k, "k", p.g_k, p.e_k),
                                (leak, "non_specific", p.g_l, p.e_l)], _component_types({"h_inf"}), None)
    raise ValueError(f"params: no NeuroML export for model {name!r}")


def neuroml_document(params, cell_id: str = "hhjax_cell"):
    """The libNeuroML document (channels, cell, network) for one cell's ``params``.

    >>> import hhjax
    >>> doc = neuroml_document(hhjax.presets.POSPISCHIL)   # doctest: +SKIP
    >>> [c.id for c in doc.ion_channel_hhs]                 # doctest: +SKIP
    ['pospischil_na', 'pospischil_k', 'pospischil_m', 'leak']
    """
    import neuroml  # noqa: PLC0415  (optional dependency: pip install hhjax[export])

    p = load_cell(params)
    channels, densities, ctypes, celsius = _channels(p)
    d = soma_diameter_um(p)
    morph = neuroml.Morphology(id=f"{cell_id}_morphology", segments=[neuroml.Segment(
        id=0, name="soma", proximal=neuroml.Point3DWithDiam(x=0, y=0, z=0, diameter=d),
        distal=neuroml.Point3DWithDiam(x=0, y=d, z=0, diameter=d))])
    morph.segment_groups = [neuroml.SegmentGroup(id="all", members=[neuroml.Member(segments=0)])]
    membrane = neuroml.MembraneProperties(
        channel_densities=[neuroml.ChannelDensity(
            id=f"{ch.id}_density", ion_channel=ch.id, cond_density=f"{float(g)!r}mS_per_cm2",
            erev=_mv(e), ion=ion, segment_groups="all") for ch, ion, g, e in densities],
        spike_threshes=[neuroml.SpikeThresh(value="0mV", segment_groups="all")],
        specific_capacitances=[neuroml.SpecificCapacitance(value=f"{p.c_m!r}uF_per_cm2", segment_groups="all")],
        init_memb_potentials=[neuroml.InitMembPotential(
            value=_mv(model_of(p).default_voltage(p)), segment_groups="all")])
    intra = neuroml.IntracellularProperties(
        resistivities=[neuroml.Resistivity(value="100ohm_cm", segment_groups="all")])
    cell = neuroml.Cell(id=cell_id, morphology=morph, biophysical_properties=neuroml.BiophysicalProperties(
        id=f"{cell_id}_biophysics", membrane_properties=membrane, intracellular_properties=intra))
    cell.notes = (f"hhjax {model_of(p).name} cell: one cylinder, L = diam = {d:.6g} um, membrane area "
                  f"{area_cm2(p):.6g} cm2. " + ", ".join(f"{f.name}={getattr(p, f.name)!r}"
                                                         for f in dataclasses.fields(p)))
    pop = neuroml.Population(id="pop", component=cell_id, size=1)
    net = neuroml.Network(id=f"{cell_id}_network", populations=[pop])
    if celsius is not None:
        net.type, net.temperature = "networkWithTemperature", f"{celsius!r}degC"
    doc = neuroml.NeuroMLDocument(id=f"{cell_id}_doc", ion_channel_hhs=channels, cells=[cell],
                                  networks=[net])
    doc.ComponentType = ctypes
    return doc


def to_neuroml(params, directory, *, force: bool = False, validate: bool = True) -> Path:
    """Write ``params`` (a params pytree or a ``fit.json`` path) as a NeuroML 2 document
    ``hhjax_cell.net.nml`` into ``directory``, atomically; returns the file's path.

    Values keep hhjax's units, written out (mS_per_cm2, mV, ms, uF_per_cm2, um, degC).
    With ``validate`` (default) the document is checked against the NeuroML 2 schema
    (libNeuroML's ``validate_neuroml2``, offline) before anything is written.

    Example:
        >>> import hhjax, tempfile                                    # doctest: +SKIP
        >>> path = to_neuroml(hhjax.presets.NEURON, tempfile.mkdtemp() + "/nml")  # doctest: +SKIP
        >>> path.name                                                 # doctest: +SKIP
        'hhjax_cell.net.nml'
    """
    from neuroml.utils import validate_neuroml2  # noqa: PLC0415  (optional dependency)
    from neuroml.writers import NeuroMLWriter  # noqa: PLC0415

    doc = neuroml_document(params)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / FILE
        NeuroMLWriter.write(doc, str(path))
        if validate:
            with contextlib.redirect_stdout(io.StringIO()):  # it prints "It's valid!"
                validate_neuroml2(str(path))
        text = path.read_text()
    readme = ("# NeuroML 2 export of an hhjax cell\n\n"
              f"`{FILE}`: ion channels, the cell and a one-cell network. Validate with\n"
              f"`python -c \"from neuroml.utils import validate_neuroml2; validate_neuroml2('{FILE}')\"`\n"
              f"or `pynml -validate {FILE}`.\n\n"
              "What NeuroML expresses" + __doc__.split("What NeuroML expresses", 1)[1] + "\n")
    out = write_directory(directory, {FILE: text, "README.md": readme}, force=force)
    return out / FILE
