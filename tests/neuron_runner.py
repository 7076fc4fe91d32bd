"""Run an hhjax NEURON export in NEURON itself (a subprocess of tests/test_export_neuron.py).

    python tests/neuron_runner.py EXPORT_DIR DT TSTOP START STOP AMP [AMP ...]

Loads EXPORT_DIR/hhjax_cell.py, applies each step current (hhjax stimulus units, from START
to STOP ms) with an IClamp, runs NEURON's fixed step (secondorder 0) and prints JSON
``{"spikes": [[ms, ...], ...]}``: upward 0 mV crossings of the recorded voltage, linearly
interpolated. A subprocess per export keeps mechanism names from clashing between exports.
"""

import json
import sys

import numpy as np


def crossing_times(t, v, level=0.0):
    """Upward crossings of ``level`` (mV), linearly interpolated (ms); the same rule for
    NEURON's and hhjax's voltages, so the comparison is of the simulators alone."""
    t, v = np.asarray(t, float), np.asarray(v, float)
    i = np.flatnonzero((v[:-1] < level) & (v[1:] >= level))
    return t[i] + (level - v[i]) / (v[i + 1] - v[i]) * (t[i + 1] - t[i])


def main(argv):
    directory, dt, tstop, start, stop = argv[0], *map(float, argv[1:5])
    amps = [float(a) for a in argv[5:]]
    sys.path.insert(0, directory)
    import hhjax_cell  # noqa: PLC0415  (the export under test)
    from neuron import h  # noqa: PLC0415

    h.load_file("stdrun.hoc")
    sec = hhjax_cell.build_cell()
    stim = h.IClamp(sec(0.5))
    v = h.Vector().record(sec(0.5)._ref_v)
    t = h.Vector().record(h._ref_t)
    h.dt, h.steps_per_ms, h.secondorder = dt, 1.0 / dt, 0
    out = []
    for amp in amps:
        stim.delay, stim.dur, stim.amp = start, stop - start, amp * hhjax_cell.NA_PER_UNIT
        h.finitialize(hhjax_cell.V_INIT)
        h.continuerun(tstop)
        tv = np.asarray(t)
        out.append(crossing_times(tv, np.asarray(v)).tolist())
    print(json.dumps({"spikes": out, "n_samples": len(tv)}))


if __name__ == "__main__":
    main(sys.argv[1:])
