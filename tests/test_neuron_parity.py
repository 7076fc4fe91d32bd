"""method="neuron" reproduces NEURON's own output, step for step.

Reference data: NEURON 9.0.2 (pip package `neuron`), a single-compartment section with
the built-in `hh` mechanism (rate tables off: `usetable_hh = 0`), `secondorder = 0`,
dt = 0.025 ms, `finitialize(-65)`, IClamp of 10 µA/cm² from 10 to 90 ms, 100 ms.
Spike times are 0 mV upward crossings of the recorded voltage, linearly interpolated.
Produced by scripts/peers/run_neuron.py (W1), not by hhjax.
"""

import numpy as np

import hhjax
from hhjax import presets, stimulus

NEURON_9_0_2_W1_SPIKES_MS = [11.92230, 26.89721, 41.59817, 56.28695, 70.97493, 85.66273]


def test_neuron_method_matches_neuron_spike_times():
    tr = hhjax.simulate(presets.NEURON, stimulus.step(10.0, 10.0, 90.0), duration=100.0,
                        dt=0.025, method="neuron")
    sp = hhjax.spike_times(tr.t, tr.v)
    ours = np.asarray(sp.times)[: int(sp.count)]
    assert ours.shape == (6,)
    # float32 rounding over 4000 steps; NEURON's scheme itself is 0.35 ms off the exact solution.
    np.testing.assert_allclose(ours, NEURON_9_0_2_W1_SPIKES_MS, atol=2e-3)
