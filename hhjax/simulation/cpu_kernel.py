"""A fused CPU kernel for many uncoupled classic-HH neurons (an XLA FFI custom call).

:func:`simulate_cpu` runs ``exp_euler`` (float32) for a batch of :class:`~hhjax.HHParams`
neurons under constant or step currents in one C++ call (``_cpu/hh_kernel.cc``, built by
``pip install``): each block of neurons keeps its state in L1 cache for all ``duration /
dt`` steps, the loop over a block is vectorised by the compiler (AVX-512, AVX2 or the
baseline, chosen at load time by function multiversioning), and blocks run on all cores.
XLA's own CPU code instead runs each step as several kernels with the state going through
memory between them (about 3x slower at 1e4 neurons; README benchmark).

The arithmetic is that of the Pallas GPU kernel (:mod:`hhjax.simulation.pallas`, same
scheme and float32 rounding level as the reference ``lax.scan`` path); exponentials are a
Cephes ``exp2f`` polynomial (about 2 ulp), and the gates' initial steady state (``y0``
``None`` or a voltage) comes from the same rates. Spike counts
(:func:`~hhjax.simulation.trace.upward_crossing` at every step) and ``diverged`` (V ever NaN
or beyond :data:`~hhjax.simulation.DIVERGENCE_BOUND`, or a non-finite final state) follow
:func:`hhjax.simulate`. Records are written straight into the :class:`~hhjax.Trace`
layout: peak memory is the trace plus the inputs. Against the reference path, spike counts
differ only for neurons at a count transition (a current within float32 rounding of the
one where the count steps up; none of 1e5 in ``tests/test_cpu_kernel.py``), and, as in
the Pallas kernel, V below about -950 mV overflows the shared exponentials and turns the
state NaN where the reference may stay finite (such neurons are flagged as diverged).

Step currents are sampled as the reference path samples them: step ``k`` gets the current
at ``t = (k + 1/2) dt`` (float32), so a step edge on a grid point switches on for exactly
the intended steps.

Without a C++ compiler at install time the library is absent: :func:`available` is then
False and :func:`unavailable_reason` says why.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import math
import os
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..models.hh import HHParams, HHState
from ..models.rates import q10_factor
from ..stimulus import Constant, Step, Sum
from .devices import cpu_cores
from .inputs import (GATE_RULES, PARAM_RULES, _batch_shape, _check_finite, _check_record, _check_time,
                     _check_y0)
from .trace import COUNT_THRESHOLD, DIVERGENCE_BOUND, Trace, kernel_failed

__all__ = ["available", "unavailable_reason", "isa", "enabled", "supports_stimulus", "simulate_cpu",
           "try_simulate", "VARIABLES"]

TARGET = "hhjax_hh_exp_euler_cpu"
_ABI = 3  # hhjax_cpu_kernel_abi() of a library this wrapper can drive
VARIABLES = ("v", "m", "h", "n")
"""The state variables of :class:`~hhjax.HHState`, in the kernel's order."""

_LOG2E = math.log2(math.e)
# Rows of the per-neuron constant array (enum Row in hh_kernel.cc).
_ROWS = ("v_offset", "dtq2", "k", "k2", "g_na", "ge_na", "g_k", "ge_k", "g_l", "ie_off", "ie_on")

_STATE: dict = {}  # "ok": bool, "reason": str, "lib": the ctypes handle (kept alive)
_FAILED: list[str] = []  # set once the kernel failed at run time in this process
_LOG = logging.getLogger("hhjax")


def _library_path() -> str | None:
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_cpu")
    found = sorted(glob.glob(os.path.join(here, "_hh_kernel*.so"))
                   + glob.glob(os.path.join(here, "_hh_kernel*.dylib"))
                   + glob.glob(os.path.join(here, "_hh_kernel*.pyd")))
    return found[0] if found else None


def _load() -> bool:
    """Load the compiled kernel and register it with XLA, once per process."""
    if "ok" in _STATE:
        return _STATE["ok"]
    path = _library_path()
    _STATE["ok"], _STATE["reason"] = False, None
    if path is None:
        _STATE["reason"] = ("the fused CPU kernel was not built (no C++ compiler when hhjax "
                            "was installed?); reinstall with `pip install -e .` where g++ or "
                            "clang++ exists")
        return False
    try:
        lib = ctypes.CDLL(path)
        abi = lib.hhjax_cpu_kernel_abi()
        if abi != _ABI:
            raise RuntimeError(f"{path} has calling convention {abi}, this hhjax needs {_ABI}; "
                               "rebuild it with `pip install -e .`")
        jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(lib.HhjaxHhExpEulerCpu),
                                    platform="cpu")
    except Exception as exc:  # noqa: BLE001 (any load failure means: use the XLA path)
        _STATE["reason"] = f"the fused CPU kernel could not be loaded ({type(exc).__name__}: {exc})"
        return False
    _STATE["ok"], _STATE["lib"] = True, lib
    return True


def available() -> bool:
    """Whether the fused CPU kernel is built and registered with XLA in this process.

    Example:
        >>> from hhjax.simulation import cpu_kernel
        >>> isinstance(cpu_kernel.available(), bool)
        True
    """
    return _load()


def unavailable_reason() -> str | None:
    """Why :func:`available` is False (one line), or None when it is True."""
    _load()
    return _STATE["reason"]


def available_or_note() -> bool:
    """:func:`available`, and the first time it is False in this process (and a call the
    kernel would have run is made), one note on the ``hhjax`` logger saying why."""
    if _FAILED:
        return False
    if _load():
        return True
    if not _STATE.get("noted"):
        _STATE["noted"] = True
        _LOG.warning("hhjax.simulate: %s; using the XLA path (about 3x slower for large "
                     "batches; set HHJAX_CPU_KERNEL=0 to choose it silently).", _STATE["reason"])
    return False


def isa() -> str | None:
    """The instruction set the kernel's loop runs with on this CPU (e.g. ``"x86-64-v4
    (AVX-512: 16 float32 lanes)"``), or None when the kernel is not available."""
    if not _load():
        return None
    fn = _STATE["lib"].hhjax_cpu_kernel_isa
    fn.restype = ctypes.c_char_p
    return fn().decode()


def enabled() -> bool:
    """Whether ``HHJAX_CPU_KERNEL`` allows :func:`hhjax.simulate` to use the kernel (not "0")."""
    return os.environ.get("HHJAX_CPU_KERNEL", "1").strip().lower() not in ("0", "false", "no", "off")


def _threads() -> int:
    env = os.environ.get("HHJAX_CPU_THREADS", "").strip()
    return max(1, int(env)) if env.isdigit() else cpu_cores()


# ---------------------------------------------------------------------------------------
# Stimuli: a base current, plus a current that is on for steps [on, off)
# ---------------------------------------------------------------------------------------


def supports_stimulus(stim) -> bool:
    """Constant, Step, or a Sum of Constants and at most one Step (concrete leaves)."""
    parts = stim.parts if type(stim) is Sum else (stim,)
    kinds = [type(p) for p in parts]
    return all(k in (Constant, Step) for k in kinds) and kinds.count(Step) <= 1


def _step_window(step, batch, n_steps, dt):
    """``(on, off)`` int32 per neuron: the steps ``k`` whose sample time ``(k + 1/2) dt``
    (float32, as the reference path computes it) lies in ``[start, stop)``."""
    t = (np.arange(n_steps, dtype=np.float32) + np.float32(0.5)) * np.float32(dt)
    start = np.broadcast_to(np.asarray(step.start, np.float32), batch).reshape(-1)
    stop = np.broadcast_to(np.asarray(step.stop, np.float32), batch).reshape(-1)
    return (np.searchsorted(t, start, side="left").astype(np.int32),
            np.searchsorted(t, stop, side="left").astype(np.int32))


def _currents(stim, batch, n_steps, dt):
    """``(i_off, i_on, window)``: currents (µA/cm², float32, NumPy) off and on the step, and
    its (2, size) window of steps."""
    size = int(np.prod(batch)) if batch else 1
    parts = stim.parts if type(stim) is Sum else (stim,)
    base = np.zeros((), np.float32)
    for p in parts:
        if type(p) is Constant:
            base = base + np.asarray(p.amplitude, np.float32)
    steps = [p for p in parts if type(p) is Step]
    if not steps:
        return base, base, np.zeros((2, size), np.int32)
    on, off = _step_window(steps[0], tuple(batch), n_steps, dt)
    return base, base + np.asarray(steps[0].amplitude, np.float32), np.stack([on, off])


def _constants(params, i_off, i_on, dt, batch):
    """The (11, size) per-neuron constants of the step (:data:`_ROWS`), float32.

    Computed with NumPy, one IEEE operation at a time: inside XLA the same expressions
    were rounded differently for different batch shapes (a fused multiply-add in one,
    not in the other), so a neuron alone and in a batch drifted apart by 5e-3 mV."""
    size = int(np.prod(batch)) if batch else 1
    f32 = np.float32
    p = {k: np.asarray(getattr(params, k), f32) for k in params.__dataclass_fields__}
    q = np.asarray(q10_factor(p["celsius"]), f32)
    k = f32(dt) / p["c_m"]
    ie_l = p["g_l"] * p["e_l"]
    consts = dict(v_offset=p["v_offset"], dtq2=f32(dt * _LOG2E) * q, k=k, k2=f32(_LOG2E) * k,
                  g_na=p["g_na"], ge_na=p["g_na"] * p["e_na"], g_k=p["g_k"],
                  ge_k=p["g_k"] * p["e_k"], g_l=p["g_l"], ie_off=i_off + ie_l, ie_on=i_on + ie_l)
    return np.stack([np.broadcast_to(np.asarray(consts[name], f32), batch).reshape(size)
                     for name in _ROWS])


# ---------------------------------------------------------------------------------------
# The call
# ---------------------------------------------------------------------------------------


def _initial_state(params, y0, batch):
    """``(y0 array (4, size), init_gates)``: with ``init_gates`` the kernel starts the gates
    at their steady state at the given V (``steady_state``'s rule, in the kernel's rates)."""
    size = int(np.prod(batch)) if batch else 1

    def per_neuron(x):
        return np.broadcast_to(np.asarray(x, np.float32), batch).reshape(size)

    if isinstance(y0, HHState):
        return np.stack([per_neuron(getattr(y0, name)) for name in VARIABLES]), False
    v = per_neuron(params.v_offset if y0 is None else y0)
    return np.stack([v] + [np.zeros_like(v)] * 3), True


@partial(jax.jit, static_argnames=("batch", "n_steps", "dt", "record_every", "threshold",
                                   "init_gates", "record", "threads"))
def _run(c_arr, y0_arr, window, *, batch, n_steps, dt, record_every, threshold, init_gates,
         record, threads):
    # Only the call and reshapes: everything else is done beforehand with NumPy, so that
    # a first call compiles in a few tens of milliseconds.
    size = int(np.prod(batch)) if batch else 1
    n_rec = n_steps // record_every + 1
    mask = sum(1 << i for i, name in enumerate(VARIABLES) if name in record)
    out_types = ([jax.ShapeDtypeStruct((4, size), jnp.float32),
                  jax.ShapeDtypeStruct((2, size), jnp.int32)]
                 + [jax.ShapeDtypeStruct((size, n_rec), jnp.float32)] * len(record))
    call = jax.ffi.ffi_call(TARGET, out_types)
    _, ints, *recs = call(c_arr, y0_arr, window,
                          n_steps=np.int64(n_steps), record_every=np.int64(record_every),
                          threshold=np.float32(np.nan if threshold is None else threshold),
                          bound=np.float32(DIVERGENCE_BOUND), init_gates=np.int64(init_gates),
                          rec_mask=np.int64(mask),
                          threads=np.int64(threads))
    by_name = {name: r for name, r in zip([n for n in VARIABLES if n in record], recs)}
    state = HHState(**{name: by_name[name].reshape(tuple(batch) + (n_rec,)) if name in by_name
                       else None for name in VARIABLES})
    t = jnp.arange(n_rec, dtype=jnp.float32) * jnp.float32(dt * record_every)
    return Trace(t=t, state=state, spike_count=ints[0].reshape(batch),
                      diverged=(ints[1] != 0).reshape(batch))


def _launch(params, stim, y0, *, batch, n_steps, dt, record_every, spike_threshold,
            record=None):
    """The kernel's :class:`~hhjax.Trace` after the checks of :func:`hhjax.simulate`
    (``batch`` and ``n_steps`` as it computed them)."""
    if not _load():
        raise RuntimeError(f"simulate_cpu: {_STATE['reason']}")
    i_off, i_on, window = _currents(stim, tuple(batch), n_steps, dt)
    c_arr = _constants(params, i_off, i_on, dt, tuple(batch))
    y0_arr, init_gates = _initial_state(params, y0, tuple(batch))
    threshold = None if spike_threshold is None else float(spike_threshold)  # NaN counts nothing
    return _run(c_arr, y0_arr, window, init_gates=init_gates, batch=tuple(batch), n_steps=int(n_steps),
                dt=float(dt), record_every=int(record_every), threshold=threshold,
                record=VARIABLES if record is None else tuple(record), threads=_threads())


def try_simulate(params, stim, y0, *, batch, n_steps, dt, record_every, spike_threshold,
                 record=None) -> Trace | None:
    """The kernel's trace for :func:`hhjax.simulate` (after its checks), or ``None`` if the
    kernel failed here: then warn once and leave this and every later call to the XLA path.
    Out-of-memory errors are raised (the XLA path needs at least as much)."""
    try:
        return jax.block_until_ready(_launch(
            params, stim, y0, batch=batch, n_steps=n_steps, dt=dt, record_every=record_every,
            spike_threshold=spike_threshold, record=record))
    except Exception as exc:  # noqa: BLE001 (any failure of the kernel -> the XLA path)
        kernel_failed(exc, _FAILED, "the fused CPU kernel failed", "XLA path", "HHJAX_CPU_KERNEL", stacklevel=4)
        return None


def simulate_cpu(params: HHParams, stimulus=0.0, *, duration: float, dt: float, y0=None,
                 record_every: int = 1, spike_threshold: float | None = COUNT_THRESHOLD,
                 record=None) -> Trace:
    """Run uncoupled classic-HH neurons with the fused CPU kernel (exp_euler, float32).

    Same inputs and result as ``hhjax.simulate(params, stimulus, duration=duration, dt=dt,
    y0=y0, record_every=record_every, spike_threshold=spike_threshold)`` in float32, to
    float32 rounding (the kernel's exponentials differ from XLA's in the last bits), which
    :func:`hhjax.simulate` does by itself where the kernel applies.

    Args:
        params: :class:`~hhjax.HHParams`; any leaf may be an array (one value per neuron,
            broadcasting with the stimulus and ``y0``).
        stimulus: current in µA/cm²: a number or array (constant), or a
            :func:`hhjax.stimulus.step` / ``constant(...) + step(...)``.
        duration, dt: simulated time and time step (ms); ``dt`` must divide ``duration``.
        y0: ``None`` (gates at steady state at ``v_offset``), a voltage (mV) or an
            :class:`~hhjax.HHState`.
        record_every: keep every k-th sample (it must divide the number of steps).
        spike_threshold: voltage (mV) whose upward crossings are counted at every step;
            ``None`` disables counting.
        record: names of the state variables to record (``None``, the default: all of
            ``v, m, h, n``); the others are ``None`` in the returned trace's state.

    Returns:
        A :class:`~hhjax.Trace` (``t`` in ms, V in mV, leaves ``batch + (n_samples,)``).

    Example:
        >>> import jax.numpy as jnp, hhjax
        >>> from hhjax.simulation import cpu_kernel
        >>> if cpu_kernel.available():
        ...     tr = cpu_kernel.simulate_cpu(hhjax.presets.NEURON, jnp.array([0.0, 10.0]),
        ...                                  duration=20.0, dt=0.025, record_every=40)
        ...     print(tr.v.shape, tr.spike_count.tolist())
        ... else:
        ...     print((2, 21), [0, 2])
        (2, 21) [0, 2]
    """

    if type(params) is not HHParams:
        raise TypeError(f"params: the CPU kernel needs HHParams, got {type(params).__name__}")
    n_steps = _check_time(duration, dt, record_every, None)
    stim = stimulus if callable(stimulus) else Constant(stimulus)
    if not supports_stimulus(stim):
        raise TypeError("stimulus: the CPU kernel takes constant currents or one step "
                        f"(plus constants), got {type(stimulus).__name__}; use hhjax.simulate")
    _check_finite(params, "params", rules=PARAM_RULES)
    _check_finite(stim, "stimulus")
    _check_y0(y0, HHState, GATE_RULES)
    record = _check_record(record, HHState)
    batch = _batch_shape(params, stim, y0 if not isinstance(y0, (int, float)) else None, None)
    return _launch(params, stim, y0, batch=tuple(batch), n_steps=n_steps, dt=dt,
                   record_every=record_every, spike_threshold=spike_threshold, record=record)
