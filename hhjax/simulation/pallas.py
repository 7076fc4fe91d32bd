"""A fused Pallas kernel for many uncoupled classic-HH neurons under constant currents.

:func:`simulate_pallas` runs ``exp_euler`` (float32) for a batch of
:class:`~hhjax.HHParams` neurons, each with its own constant current, with the whole time
loop inside one ``pl.pallas_call``: every program of the grid loads a block of neurons'
state and parameters once, keeps them in registers for all ``duration / dt`` steps, counts
spikes and flags divergence on the way, writes the state every ``record_every`` steps and
the final state at the end. A loop with one XLA kernel per step instead reads and writes
the whole state from memory at every step.

:func:`hhjax.simulate` takes this path by itself when it applies (see
:func:`hhjax.simulation.backends.applies`): GPU backend, ``HHParams``, ``method="exp_euler"``, float32, a
:class:`~hhjax.stimulus.Constant` stimulus, no ``checkpoint_every``, concrete (not traced)
inputs, and the environment variable ``HHJAX_PALLAS`` not ``"0"``. On CPU nothing changes;
there the kernel runs only when asked for, in Pallas' interpreter (slow; for tests).

The step is :func:`hhjax.solvers.exp_euler_step` (gates relax exactly towards
``x_inf(V)`` with V frozen, then V relaxes exactly towards ``(sum g e + I) / G`` with the
*new* gates' conductance ``G``), the same scheme and float32 rounding level as the
reference path, with the arithmetic rearranged for a GPU (``u = V - v_offset``):

* **Shared exponentials, as exp2.** ``e20 = exp(-u/20)``; its square is ``exp(-u/10)``,
  which serves alpha_m, beta_h and alpha_n; ``exp(-u/80)`` and ``exp(-u/18)``; then one
  relaxation factor per gate and one for V: seven exponentials per step, no ``sqrt`` or
  ``expm1``, each written as ``exp2`` of a pre-scaled argument (one ``ex2.approx``
  instruction on NVIDIA GPUs; ``exp`` costs ~8 instructions there).
* **One division per gate.** With ``alpha = q num / den`` and ``beta = q b``:
  ``x_inf = num / s`` and ``rate = q s / den`` where ``s = num + b den``; both come from
  ``r = 1 / (s den)``. The 0/0 points of alpha_m and alpha_n (V = -40 and -55 mV with
  ``v_offset = -65``) use the exprel series of :mod:`hhjax.rates` (``|z| < 0.1``).
* **V.** ``V' = V + drive (1 - exp(-x)) / G`` with ``x = dt G / C``: the same value as the
  reference's ``drive (dt/C) (1 - e^-x)/x``; below ``x = 0.02`` a 4-term series replaces
  ``(1 - e^-x)/x`` (``1 - e^-x`` cancels there; series error < 1.4e-9).
* Parameter-only work (``q10`` factor, ``dt q``, ``dt / C``, ``g e`` products,
  ``I + g_l e_l``) is done once, outside the kernel.

Compiled for sm_90 the inner loop is 134 SASS instructions per neuron-step (11 MUFU: 7 ex2
+ 4 rcp), 40 registers, no spills: ~2e11 neuron-steps/s if an H100 were issue-bound.
Measured on an H100 (``scripts/bench_gpu.py``, README): 1.9e11 for the kernel alone at
N = 1e7, about 3x the reference loop. Its spike counts differ from float64's on about twice
as many neurons (2e-5 of them) as the float32 reference loop's: ``ex2.approx`` rounding.

Spike counting and divergence are those of :func:`hhjax.simulate`: upward crossings of
``spike_threshold`` between consecutive steps, and ``diverged`` where the state ever left
``trace.in_range`` (NaN, |V| beyond ``DIVERGENCE_BOUND``, a gate outside [0, 1]; the
initial state included) or the final state is not finite. Gates are clamped to [0, 1]
as in ``solvers.exp_euler_step``. Known
difference: for V below about -930 mV the shared exponentials overflow and the kernel's
state turns NaN where the reference may stay finite (such a run is flagged diverged).

Memory: records are written time-major (coalesced stores; neuron-major stores made the
recorded run 3x slower on an H100), one array per variable, then transposed to the
:class:`~hhjax.Trace` layout one variable at a time, each time-major copy freed after its
transpose: the peak is one variable's worth above the trace, ``4 bytes * N *
(n_steps / record_every + 1)`` per recorded variable (``gates=False`` records V only).
"""

from __future__ import annotations

import math
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..models.hh import HHParams, HHState
from ..models.rates import q10_factor
from .inputs import _batch_shape, _check_finite, _check_time, _check_y0
from .records import _batch_major, _compiled_transpose, _padded_size
from .trace import COUNT_THRESHOLD, DIVERGENCE_BOUND, Trace, in_range, upward_crossing
from ..models.steady import steady_state
from ..stimulus import Constant

__all__ = ["simulate_pallas", "DEFAULT_BLOCK", "DIVERGENCE_BOUND"]

DEFAULT_BLOCK = 128
"""Neurons per program: one per thread with the default ``num_warps = block // 32``."""


_F = np.float32
_E25 = _F(math.exp(2.5))
_E1 = _F(math.e)
_E3 = _F(math.exp(3.0))
_SERIES_BELOW = _F(1e-1)     # |z| below which 1/exprel uses the series (as hhjax.rates, f32)
_PHI_SERIES_BELOW = _F(0.02)  # x below which (1 - e^-x)/x uses its series
_LOG2E = math.log2(math.e)
# exp(-u/k) = exp2(u * _Mk): exp2 is one hardware instruction on a GPU, exp is several.
_M20, _M18, _M80 = (_F(-_LOG2E / k) for k in (20.0, 18.0, 80.0))

# Rows of the per-neuron constant array fed to the kernel.
_ROWS = ("v_offset", "dtq2", "k", "k2", "g_na", "ge_na", "g_k", "ge_k", "g_l", "ie")


# ---------------------------------------------------------------------------------------
# One step (pure jnp on arrays; runs inside the kernel)
# ---------------------------------------------------------------------------------------


def _ratio_pair(z, d):
    """``(num, den)`` with ``num / den = z / (e^z - 1)`` given ``d = e^z - 1``;
    ``(1, exprel series)`` near ``z = 0``. Every use is homogeneous in the pair."""
    small = jnp.abs(z) < _SERIES_BELOW
    series = 1.0 + z * (0.5 + z * (_F(1 / 6) + z * (_F(1 / 24) + z * _F(1 / 120))))
    return jnp.where(small, _F(1.0), z), jnp.where(small, series, d)


def _gate(x, num, den, s, dtq2):
    """Relax gate ``x`` over one step: ``x_inf = num/s``, ``dt rate = dtq s/den``
    (``dtq2 = dtq log2(e)``, so that the decay is one ``exp2``)."""
    r = 1.0 / (s * den)
    x_inf = (num * den) * r
    decay = jnp.exp2(-dtq2 * ((s * s) * r))
    x = x_inf + (x - x_inf) * decay
    return jnp.where(x < 0.0, _F(0.0), jnp.where(x > 1.0, _F(1.0), x))  # as solvers.clamp_unit


def _step(c, v, m, h, n):
    """One exp_euler step; ``c`` maps :data:`_ROWS` to arrays. Returns ``(v, m, h, n)``."""
    u = v - c["v_offset"]
    e20 = jnp.exp2(u * _M20)   # exp(-u/20)
    e10 = e20 * e20
    dtq2 = c["dtq2"]

    # m: alpha = q z/(e^z - 1), z = (25 - u)/10; beta = 4 q exp(-u/18)
    num, den = _ratio_pair(_F(2.5) - _F(0.1) * u, _E25 * e10 - 1.0)
    s = num + (_F(4.0) * jnp.exp2(u * _M18)) * den
    m = _gate(m, num, den, s, dtq2)

    # h: alpha = 0.07 q exp(-u/20) = q a/b, beta = q/b with b = exp((30 - u)/10) + 1
    b = _E3 * e10 + 1.0
    a = (_F(0.07) * e20) * b
    h = _gate(h, a, b, a + 1.0, dtq2)

    # n: alpha = 0.1 q z/(e^z - 1), z = (10 - u)/10; beta = 0.125 q exp(-u/80)
    num, den = _ratio_pair(_F(1.0) - _F(0.1) * u, _E1 * e10 - 1.0)
    num = _F(0.1) * num
    s = num + (_F(0.125) * jnp.exp2(u * _M80)) * den
    n = _gate(n, num, den, s, dtq2)

    # V relaxes towards (sum g e + I)/G with the new gates' conductance G:
    # V' = V + drive (dt/C) phi(x), phi(x) = (1 - e^-x)/x, x = dt G / C, i.e.
    # V' = V + drive (1 - e^-x) / G away from x = 0.
    m3h = m * m * m * h
    n2 = n * n
    n4 = n2 * n2
    g = c["g_na"] * m3h + (c["g_k"] * n4 + c["g_l"])
    drive = c["ge_na"] * m3h + (c["ge_k"] * n4 + c["ie"]) - g * v
    x = c["k"] * g
    small = jnp.abs(x) < _PHI_SERIES_BELOW
    g_safe = jnp.where(small, _F(1.0), g)
    step = jnp.where(small,
                     c["k"] * (1.0 - x * (0.5 - x * (_F(1 / 6) - x * _F(1 / 24)))),
                     (1.0 - jnp.exp2(-(c["k2"] * g_safe))) / g_safe)
    return v + drive * step, m, h, n


# ---------------------------------------------------------------------------------------
# The kernel
# ---------------------------------------------------------------------------------------


def _make_kernel(*, n_rec, record_every, spike_threshold):
    count_spikes = spike_threshold is not None
    thr = _F(spike_threshold if count_spikes else 0.0)

    def kernel(c_ref, y0_ref, state_ref, ints_ref, *rec_refs):
        c = {name: c_ref[i, :] for i, name in enumerate(_ROWS)}
        st0 = tuple(y0_ref[i, :] for i in range(4))
        for i, rec_ref in enumerate(rec_refs):
            rec_ref[0, :] = st0[i]
        zeros = jnp.zeros_like(st0[0], jnp.int32)
        # NaN fails the comparison, so it counts as out of bounds.
        bad0 = jnp.where(in_range(*st0), zeros, zeros + 1)

        def one_step(_, carry):
            v, m, h, n, count, bad = carry
            v_new, m, h, n = _step(c, v, m, h, n)
            if count_spikes:
                crossed = upward_crossing(v, v_new, thr)
                count = jnp.where(crossed, count + 1, count)
            bad = jnp.where(in_range(v_new, m, h, n), bad, zeros + 1)
            return v_new, m, h, n, count, bad

        def one_record(j, carry):
            carry = lax.fori_loop(0, record_every, one_step, carry)
            for i, rec_ref in enumerate(rec_refs):
                rec_ref[j + 1, :] = carry[i]
            return carry

        v, m, h, n, count, bad = lax.fori_loop(0, n_rec - 1, one_record,
                                               st0 + (zeros, bad0))
        for i, x in enumerate((v, m, h, n)):
            state_ref[i, :] = x
        ints_ref[0, :] = count
        ints_ref[1, :] = bad

    return kernel


def _constants(params, amplitude, dt):
    """Per-neuron constants of the step (:data:`_ROWS`), float32."""
    p = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), params)
    q = jnp.asarray(q10_factor(p.celsius), jnp.float32)
    k = jnp.float32(dt) / p.c_m
    return dict(
        v_offset=p.v_offset, dtq2=jnp.float32(dt * _LOG2E) * q, k=k, k2=jnp.float32(_LOG2E) * k,
        g_na=p.g_na, ge_na=p.g_na * p.e_na,
        g_k=p.g_k, ge_k=p.g_k * p.e_k,
        g_l=p.g_l, ie=jnp.asarray(amplitude, jnp.float32) + p.g_l * p.e_l,
    )


@partial(jax.jit, static_argnames=("batch", "n_steps", "dt", "record_every",
                                   "spike_threshold", "block", "gates", "interpret",
                                   "num_warps"))
def _run(params, amplitude, y0, *, batch, n_steps, dt, record_every, spike_threshold, block,
         gates, interpret, num_warps):
    from jax.experimental import pallas as pl  # noqa: PLC0415 (optional, heavy import)

    size = int(np.prod(batch)) if batch else 1
    padded = _padded_size(size, block)
    n_rec = n_steps // record_every + 1
    t = jnp.arange(n_rec, dtype=jnp.float32) * jnp.float32(dt * record_every)
    n_vars = 4 if gates else 1
    if size == 0:  # an empty batch: empty results, as simulate's reference path gives
        return (t, [jnp.zeros((n_rec, 0), jnp.float32)] * n_vars,
                jnp.zeros(batch, jnp.int32), jnp.zeros(batch, bool))

    def per_neuron(x):
        # (batch) -> (padded,), padding with the last neuron's values (finite, harmless).
        x = jnp.broadcast_to(jnp.asarray(x, jnp.float32), batch).reshape(size)
        return jnp.pad(x, (0, padded - size), mode="edge") if padded > size else x

    params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), params)
    if y0 is None:
        state0 = steady_state(params, params.v_offset)
    elif isinstance(y0, HHState):
        state0 = y0
    else:
        state0 = steady_state(params, jnp.asarray(y0, jnp.float32))
    y0_arr = jnp.stack([per_neuron(x) for x in (state0.v, state0.m, state0.h, state0.n)])
    consts = _constants(params, amplitude, dt)
    c_arr = jnp.stack([per_neuron(consts[name]) for name in _ROWS])

    kernel = _make_kernel(n_rec=n_rec, record_every=record_every,
                          spike_threshold=spike_threshold)
    compiler_params = None
    if not interpret:
        from jax.experimental.pallas import triton as plgpu  # noqa: PLC0415

        # num_stages=1: the kernel has no loads in its loops to pipeline.
        compiler_params = plgpu.CompilerParams(num_warps=num_warps, num_stages=1)
    call = pl.pallas_call(
        kernel,
        grid=(padded // block,),
        in_specs=[pl.BlockSpec((len(_ROWS), block), lambda i: (0, i)),
                  pl.BlockSpec((4, block), lambda i: (0, i))],
        out_specs=[pl.BlockSpec((4, block), lambda i: (0, i)),
                   pl.BlockSpec((2, block), lambda i: (0, i))]
                  + [pl.BlockSpec((n_rec, block), lambda i: (0, i))] * n_vars,
        out_shape=[jax.ShapeDtypeStruct((4, padded), jnp.float32),
                   jax.ShapeDtypeStruct((2, padded), jnp.int32)]
                  + [jax.ShapeDtypeStruct((n_rec, padded), jnp.float32)] * n_vars,
        interpret=interpret,
        compiler_params=compiler_params,
        name="hh_exp_euler",
    )
    final, ints, *rec = call(c_arr, y0_arr)
    finite = jnp.all(jnp.isfinite(final), axis=0)
    unflat = partial(_batch_major, size=size, batch=tuple(batch))
    return t, rec, unflat(ints[0]), unflat((ints[1] != 0) | ~finite)


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def simulate_pallas(params, amplitudes=0.0, *, duration, dt, y0=None, record_every=None,
                    spike_threshold=COUNT_THRESHOLD, gates=True, block=DEFAULT_BLOCK, num_warps=None,
                    interpret=None):
    """Run uncoupled HH neurons under constant currents with the fused Pallas kernel.

    Same scheme and result as ``hhjax.simulate(params, hhjax.stimulus.constant(amplitudes),
    duration=duration, dt=dt, method="exp_euler", y0=y0, record_every=record_every,
    spike_threshold=spike_threshold)`` in float32, to float32 rounding.

    Args:
        params: :class:`~hhjax.HHParams`; any leaf may be an array (one value per neuron,
            broadcasting with ``amplitudes`` and ``y0``). ``celsius`` sets the q10 factor.
        amplitudes: constant injected current per neuron (µA/cm²): a number, an array, or
            a :class:`hhjax.stimulus.Constant`.
        duration, dt: simulated time and time step (ms); ``dt`` must divide ``duration``.
        y0: ``None`` (gates at steady state at ``v_offset``), a voltage in mV (gates at
            steady state there) or an :class:`~hhjax.HHState`.
        record_every: record the state every this many steps (it must divide the number of
            steps); ``None`` records only the initial and the final state.
        spike_threshold: upward crossings of this voltage (mV) are counted at every step;
            ``None`` disables counting (counts are then 0).
        gates: also record m, h, n (``False``: V only, a quarter of the memory;
            ``trace.m``, ``trace.h`` and ``trace.n`` are then ``None``).
        block: neurons per program (a power of two, at least 32); the batch is padded up
            to a multiple of it. ``num_warps``: Triton warps per program (default
            ``block // 32``, at most 8).
        interpret: run in Pallas' interpreter; default ``True`` on CPU, ``False`` on GPU.

    Returns:
        A :class:`~hhjax.Trace`: ``t`` (ms, float32), ``state`` an :class:`~hhjax.HHState`
        with leaves of shape ``batch + (n_records,)`` (V in mV), ``spike_count`` (int32)
        and ``diverged`` (bool) of shape ``batch``.

    Example:
        >>> import jax.numpy as jnp, hhjax
        >>> from hhjax.simulation.pallas import simulate_pallas
        >>> tr = simulate_pallas(hhjax.presets.NEURON, jnp.array([0.0, 10.0]),
        ...                      duration=20.0, dt=0.025, record_every=40)
        >>> tr.v.shape, tr.spike_count.tolist()
        ((2, 21), [0, 2])
    """
    if type(params) is not HHParams:
        raise TypeError(f"params: the Pallas kernel needs HHParams, got {type(params).__name__}")
    if isinstance(amplitudes, Constant):
        amplitudes = amplitudes.amplitude
    if callable(amplitudes) or isinstance(amplitudes, (str, bytes)):
        raise TypeError(
            "amplitudes: expected constant currents (a number, an array or "
            f"hhjax.stimulus.Constant), got {type(amplitudes).__name__}; time-varying "
            "stimuli run on hhjax.simulate")
    try:
        amplitudes = jnp.asarray(amplitudes)
    except TypeError:
        raise TypeError(f"amplitudes: expected numbers, got {type(amplitudes).__name__}") from None
    if not jnp.issubdtype(amplitudes.dtype, jnp.number) or jnp.issubdtype(amplitudes.dtype,
                                                                           jnp.complexfloating):
        raise TypeError(f"amplitudes: expected real numbers, got dtype {amplitudes.dtype}")
    n_steps = _check_time(duration, dt, 1, None)
    if record_every is None:
        record_every = n_steps
    n_steps = _check_time(duration, dt, record_every, None)
    if not isinstance(block, (int, np.integer)) or block < 32 or block & (block - 1):
        raise ValueError(f"block: expected a power of two >= 32, got {block!r}")
    if spike_threshold is not None:
        spike_threshold = float(spike_threshold)
        if not math.isfinite(spike_threshold):
            raise ValueError(f"spike_threshold: must be finite (mV), got {spike_threshold}")
    _check_finite(params, "params")
    _check_finite(amplitudes, "amplitudes")
    _check_y0(y0, HHState)
    return _launch(params, amplitudes, y0, batch=_batch_shape(params, Constant(amplitudes), y0, None),
                   n_steps=n_steps, dt=dt, record_every=record_every,
                   spike_threshold=spike_threshold, gates=gates, block=block,
                   num_warps=num_warps, interpret=interpret)


def _launch(params, amplitudes, y0, *, batch, n_steps, dt, record_every, spike_threshold,
            gates=True, block=DEFAULT_BLOCK, num_warps=None, interpret=None):
    """:func:`simulate_pallas` after its checks and shapes (:func:`hhjax.simulate` has made
    the same ones, so :mod:`hhjax.simulation.backends` starts here rather than redo them)."""
    if num_warps is None:
        num_warps = max(1, min(8, int(block) // 32))
    if interpret is None:
        interpret = jax.default_backend() == "cpu"
    size = int(np.prod(batch)) if batch else 1
    traced = any(isinstance(x, jax.core.Tracer)
                 for x in jax.tree_util.tree_leaves((params, amplitudes, y0)))
    if size and not traced:
        to_trace_layout = _compiled_transpose(
            (n_steps // int(record_every) + 1, _padded_size(size, int(block))), size, tuple(batch))
    else:
        to_trace_layout = partial(_batch_major, size=size, batch=tuple(batch))
    with warnings.catch_warnings():
        # JAX >= 0.11 deprecates Pallas' Triton backend; nothing a user of hhjax can act
        # on, and under -W error it turned into a failure that disabled the kernel.
        warnings.filterwarnings("ignore", "The Pallas Triton backend is deprecated",
                                DeprecationWarning)
        t, rec, count, diverged = _run(
            params, amplitudes, y0, batch=tuple(batch), n_steps=n_steps, dt=float(dt),
            record_every=int(record_every), spike_threshold=spike_threshold, block=int(block),
            gates=bool(gates), interpret=bool(interpret), num_warps=int(num_warps))
    # The kernel writes time-major records (coalesced stores); each is turned to the Trace
    # layout and its time-major copy freed before the next starts, so that the peak is
    # ~1.25x the trace (H100: one jitted function holding all of them peaked at 2.0x).
    records = []
    for i in range(len(rec)):
        records.append(to_trace_layout(rec[i]))
        if size and not traced:
            records[-1].block_until_ready()
            rec[i].delete()
    v = records[0]
    m, h, n = records[1:] if gates else (None, None, None)
    return Trace(t=t, state=HHState(v=v, m=m, h=h, n=n), spike_count=count, diverged=diverged)
