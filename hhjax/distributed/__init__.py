"""Populations over several hosts (``jax.distributed``): build a sharded batch from a
description (:func:`population`), simulate it with :func:`hhjax.simulate` as usual, and
bring results back (:func:`gather`, :func:`local_parts`). See the README's "Beyond one
machine" section for starting on a SLURM allocation."""

from .population import (Grid, Linspace, Normal, Population, Uniform, check_initialized, gather,
                         local_parts, population)

__all__ = ["population", "Population", "Linspace", "Uniform", "Normal", "Grid", "gather",
           "local_parts", "check_initialized"]
