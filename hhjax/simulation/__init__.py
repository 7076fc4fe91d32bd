"""Simulation backends (the fused CPU kernel lives in :mod:`hhjax.simulation.cpu_kernel`)."""
