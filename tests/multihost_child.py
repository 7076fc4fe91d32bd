"""One process of tests/test_multihost.py: ``python multihost_child.py MODE PID NPROC PORT OUT``.

MODE ``multi``: join a ``jax.distributed`` run of NPROC processes (2 CPU devices each, gloo
collectives), simulate a population of 1e5 neurons over all devices, save this process's
spike counts (and the gathered whole) to OUT/counts_PID.npz. ``single``: the same on one
process and one device. ``die``: process 1 exits right after joining.
"""

import os
import sys

mode, pid, nproc, port, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]

import jax  # noqa: E402

jax.config.update("jax_platforms", "cpu")
jax.config.update("jax_num_cpu_devices", 1 if mode == "single" else 2)
if mode != "single":
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=nproc, process_id=pid,
                               heartbeat_timeout_seconds=10, initialization_timeout=60)

import numpy as np  # noqa: E402

import hhjax  # noqa: E402
from hhjax.distributed import Linspace, Uniform, gather, local_parts, population  # noqa: E402

if mode == "die" and pid == 1:
    os._exit(3)
N = 100_000
pop = population(N, current=Linspace(0.0, 15.0), g_na=Uniform(100.0, 140.0), key=jax.random.key(7))
tr = hhjax.simulate(pop.params(hhjax.presets.NEURON), hhjax.stimulus.constant(pop["current"]),
                    duration=20.0, dt=0.025, record_every=40)
parts = local_parts(tr.spike_count, pop.size)
kernel_counts = np.zeros(0)
if mode == "multi":
    # The GPU path (one Pallas kernel per device under shard_map), here in Pallas'
    # interpreter on a smaller population, against the reference loop on the same devices.
    from hhjax.simulation.devices import batch_layout
    from hhjax.simulation.sharding import run_pallas_sharded
    small = population(4096, current=Linspace(0.0, 15.0))
    n_shards, padded = batch_layout(small.size)
    tk = run_pallas_sharded(hhjax.presets.NEURON, small["current"], None, batch=(small.padded,), n_steps=400,
                            dt=0.025, record_every=400, spike_threshold=0.0, n_shards=n_shards, padded=padded)
    ts = hhjax.simulate(hhjax.presets.NEURON, hhjax.stimulus.constant(small["current"]), duration=10.0,
                        dt=0.025, record_every=400)
    kernel_counts = np.stack([gather(tk.spike_count, small.size), gather(ts.spike_count, small.size)])
# A batch that does not divide over the devices (1001 neurons, plain NumPy currents): padded,
# not refused.
odd = hhjax.simulate(hhjax.presets.NEURON, hhjax.stimulus.constant(np.linspace(0.0, 15.0, 1001)),
                     duration=10.0, dt=0.025, record_every=400)
np.savez(os.path.join(out, f"counts_{pid}.npz"), odd=gather(odd.spike_count), **{str(s): a for s, a in parts},
         total=gather(tr.spike_count, pop.size), devices=len(tr.spike_count.sharding.device_set),
         processes=jax.process_count(), v_spans_processes=not tr.v.is_fully_addressable,
         kernel_counts=kernel_counts)
print("done", flush=True)
