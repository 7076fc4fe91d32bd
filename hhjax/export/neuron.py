"""Export a fitted hhjax cell to NEURON: NMODL files, a cell builder and a README.

``to_neuron(params, directory)`` writes

* one ``.mod`` file per mechanism (see :mod:`hhjax.export.nmodl`; none for classic HH in
  NEURON's own convention, which is NEURON's built-in ``hh``), fitted values as defaults;
* ``hhjax_cell.py`` with ``build_cell()`` -> a one-compartment NEURON section whose
  membrane area is the model's (``area`` in cm² for Pospischil; 1e-3 cm² for the density
  models, where an IClamp of 1 nA is 1 µA/cm²), ``V_INIT`` (mV, the ``finitialize`` value
  hhjax starts from), ``NA_PER_UNIT`` (nA per hhjax stimulus unit) and ``CELSIUS``;
* ``README.md``: ``nrnivmodl`` in the directory, then the builder;
* ``hhjax_params.json``: the hhjax parameters it came from (hhjax units).

NEURON's fixed step (``secondorder = 0``) at the same ``dt`` then gives the spike times of
``hhjax.simulate(params, ..., method="neuron")`` (tests/test_export_neuron.py checks all
models to 0.05 ms over 1 s).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..models import model_of
from ..io.results import unit_of
from ._common import area_cm2, hhjax_version, load_cell, nA_per_stimulus_unit, num, soma_diameter_um, write_directory
from .nmodl import mechanisms, mod_files, uses_builtin_hh

BUILDER = "hhjax_cell.py"


def to_neuron(params, directory, *, force: bool = False, prefix: str = "hhjax") -> Path:
    """Write a NEURON version of ``params`` (a params pytree or a ``fit.json`` path) into
    ``directory``, atomically; returns the directory.

    Args:
        params: one cell's parameters (hhjax units: mS/cm², mV, ms, µF/cm², cm²) or the path
            of a ``fit.json`` / params file.
        directory: output folder; must be absent or empty unless ``force`` (then replaced).
        prefix: start of the mechanism names (``{prefix}_pos_hh2``, ...). Two exports with
            different fitted defaults can be loaded into one NEURON only under different
            prefixes (``build_cell`` also sets every value explicitly).

    Example:
        >>> import hhjax, tempfile
        >>> out = to_neuron(hhjax.presets.POSPISCHIL, tempfile.mkdtemp() + "/rs")
        >>> sorted(p.name for p in out.iterdir())
        ['README.md', 'hhjax_cell.py', 'hhjax_params.json', 'hhjax_pos_hh2.mod', 'hhjax_pos_im.mod']
        >>> # then: cd out && nrnivmodl && python -c "import hhjax_cell; hhjax_cell.build_cell()"
    """
    source = str(params) if not dataclasses.is_dataclass(params) else "params"
    cell = load_cell(params)
    if not prefix.isidentifier():
        raise ValueError(f"prefix: must be an identifier, got {prefix!r}")
    files = dict(mod_files(cell, prefix=prefix, source=Path(source).name))
    files[BUILDER] = builder_source(cell, prefix)
    files["README.md"] = readme(cell, prefix, has_mods=bool(files.keys() - {BUILDER}))
    files["hhjax_params.json"] = json.dumps({
        "model": model_of(cell).name,
        "params": {f.name: getattr(cell, f.name) for f in dataclasses.fields(cell)},
        "units": {f.name: unit_of(f.name) for f in dataclasses.fields(cell)},
    }, indent=1) + "\n"
    return write_directory(directory, files, force=force)


def _settings(cell, prefix) -> list[str]:
    """Python lines ``sec.<range var> = value`` (NEURON units) that make the section ``cell``."""
    name = model_of(cell).name
    g = lambda x: num(x / 1000.0)  # noqa: E731  mS/cm² -> S/cm²
    lines = [f"sec.cm = {num(cell.c_m)}  # uF/cm2"]
    if name == "hh":
        mech = "hh" if uses_builtin_hh(cell) else f"{prefix}_hh"
        lines += [f"sec.gnabar_{mech} = {g(cell.g_na)}  # S/cm2", f"sec.gkbar_{mech} = {g(cell.g_k)}",
                  f"sec.gl_{mech} = {g(cell.g_l)}", f"sec.el_{mech} = {num(cell.e_l)}  # mV"]
        if mech != "hh":
            lines.append(f"sec.voff_{mech} = {num(cell.v_offset)}  # mV")
    elif name == "reduced":
        m = f"{prefix}_reduced"
        lines += [f"sec.gnabar_{m} = {g(cell.g_na)}  # S/cm2", f"sec.gkbar_{m} = {g(cell.g_k)}",
                  f"sec.vhalfm_{m} = {num(cell.v_half_m)}  # mV", f"sec.km_{m} = {num(cell.k_m)}",
                  f"sec.vhalfn_{m} = {num(cell.v_half_n)}", f"sec.kn_{m} = {num(cell.k_n)}",
                  f"sec.taun_{m} = {num(cell.tau_n)}  # ms",
                  f"sec.g_pas = {g(cell.g_l)}  # S/cm2", f"sec.e_pas = {num(cell.e_l)}  # mV"]
    else:
        hh2, im = f"{prefix}_pos_hh2", f"{prefix}_pos_im"
        lines += [f"sec.gnabar_{hh2} = {g(cell.g_na)}  # S/cm2", f"sec.gkbar_{hh2} = {g(cell.g_k)}",
                  f"sec.vt_{hh2} = {num(cell.v_t)}  # mV", f"sec.gkbar_{im} = {g(cell.g_m)}",
                  f"sec.taumax_{im} = {num(cell.tau_max)}  # ms",
                  f"sec.g_pas = {g(cell.g_l)}  # S/cm2", f"sec.e_pas = {num(cell.e_l)}  # mV"]
    lines += [f"sec.ena = {num(cell.e_na)}  # mV", f"sec.ek = {num(cell.e_k)}  # mV"]
    return lines


def _celsius(cell) -> float | None:
    name = model_of(cell).name
    if name == "hh":
        return float(cell.celsius)
    if name == "pospischil":
        return 36.0  # the temperature of the paper's (and hhjax's) rates: q10 factor 1
    return None  # the reduced model has no temperature dependence


def builder_source(cell, prefix: str = "hhjax") -> str:
    """The text of ``hhjax_cell.py`` for one cell (see :func:`to_neuron`)."""
    inserts = [m for m in mechanisms(cell, prefix)]
    if model_of(cell).name != "hh":
        inserts.append("pas")
    body = "\n    ".join(_settings(cell, prefix))
    celsius = _celsius(cell)
    builtin = uses_builtin_hh(cell)
    return f'''"""A NEURON cell exported by hhjax {hhjax_version()} (model {model_of(cell).name!r}).

Units are NEURON's: mV, ms, S/cm2, uF/cm2, um, nA.

    nrnivmodl            # in this directory, once (compiles the .mod files)
    python -c "import hhjax_cell as c; print(c.build_cell())"

``build_cell()`` returns one section; ``NA_PER_UNIT`` converts hhjax stimulus units (uA/cm2
or pA) to an IClamp's nA; start runs with ``h.finitialize(V_INIT)`` and ``h.secondorder = 0``
to reproduce ``hhjax.simulate(..., method="neuron")``.
"""

import glob
import os

from neuron import h

HERE = os.path.dirname(os.path.abspath(__file__))
MECHANISMS = {inserts!r}
DIAM_UM = {num(soma_diameter_um(cell))}  # L = diam: lateral area {num(area_cm2(cell))} cm2
V_INIT = {num(model_of(cell).default_voltage(cell))}  # mV
NA_PER_UNIT = {num(nA_per_stimulus_unit(cell))}  # nA per hhjax stimulus unit ({model_of(cell).stimulus_units})
CELSIUS = {None if celsius is None else num(celsius)}  # degC (global in NEURON); None: no temperature dependence


def _known_mechanisms():
    mt, name, names = h.MechanismType(0), h.ref(""), set()
    for i in range(int(mt.count())):
        mt.select(i)
        mt.selected(name)
        names.add(name[0])
    return names


def load_mechanisms():
    """Load this directory's compiled mechanisms (after ``nrnivmodl``) unless loaded."""
    if set(MECHANISMS) <= _known_mechanisms():
        return
    libs = sorted(glob.glob(os.path.join(HERE, "*", "libnrnmech.so"))
                  + glob.glob(os.path.join(HERE, "*", ".libs", "libnrnmech.so")))
    if not libs:
        raise RuntimeError(f"no compiled mechanisms in {{HERE}}: run nrnivmodl there first")
    h.nrn_load_dll(libs[0])


def build_cell(name="hhjax_cell"):
    """One-compartment section with the exported channels and fitted values.

    Sets NEURON's global ``celsius`` to ``CELSIUS`` when that is not None{
        " and switches the built-in hh rate tables off (usetable_hh = 0)" if builtin else ""}.
    """
    load_mechanisms()
    sec = h.Section(name=name)
    sec.nseg = 1
    sec.L = sec.diam = DIAM_UM
    for mech in MECHANISMS:
        sec.insert(mech)
    {body}
    if CELSIUS is not None:
        h.celsius = CELSIUS{chr(10) + "    h.usetable_hh = 0  # exact rates, as hhjax" if builtin else ""}
    return sec
'''


def readme(cell, prefix: str = "hhjax", has_mods: bool = True) -> str:
    """The README snippet written next to the export."""
    model = model_of(cell)
    compile_step = ("nrnivmodl          # compiles the .mod files into x86_64/ (or arm64/)\n"
                    if has_mods else "# (no .mod files: NEURON's built-in hh is exactly this model)\n")
    return f"""# NEURON export of an hhjax `{model.name}` cell

```sh
# in this directory:
{compile_step}python - <<'EOF'
from neuron import h
h.load_file("stdrun.hoc")
import hhjax_cell
sec = hhjax_cell.build_cell()
stim = h.IClamp(sec(0.5))
stim.delay, stim.dur = 100, 500                      # ms
stim.amp = 200 * hhjax_cell.NA_PER_UNIT              # 200 {model.stimulus_units} in nA
v, t = h.Vector().record(sec(0.5)._ref_v), h.Vector().record(h._ref_t)
h.dt, h.secondorder = 0.025, 0                       # hhjax.simulate(..., method="neuron")
h.finitialize(hhjax_cell.V_INIT)
h.continuerun(700)
print(max(v))
EOF
```

Units: mV, ms, S/cm² (hhjax's mS/cm² / 1000), µF/cm², µm, nA. The section is one
compartment, L = diam = {soma_diameter_um(cell):.6g} µm (membrane area {area_cm2(cell):.6g} cm²).
Mechanisms: {", ".join(mechanisms(cell, prefix) + ([] if model.name == "hh" else ["pas (leak)"]))}.
Fitted values are the PARAMETER defaults in the .mod files and are also set by `build_cell()`.
Temperature: {_temperature_note(cell)}
"""


def _temperature_note(cell) -> str:
    name = model_of(cell).name
    if name == "hh":
        return (f"rates scale by 3^((celsius - 6.3)/10); build_cell() sets h.celsius = "
                f"{cell.celsius:g} (a global).")
    if name == "pospischil":
        return ("Na/Kd rates scale by q10_*=3 and the M current by 2.3 per 10 °C from temp_* = "
                "36 °C (ModelDB 123623); build_cell() sets h.celsius = 36, where the factors are 1 "
                "as in hhjax.")
    return "the reduced model has no temperature dependence."
