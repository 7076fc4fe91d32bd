"""Injected currents as pytrees: ``I(t)`` with ``t`` in ms, amplitudes in the model's units.

For the density models (classic HH, reduced) amplitudes are µA/cm²; for models with a
membrane area (Pospischil) they are pA. Every amplitude, time and rate is a pytree leaf,
so it can be an array (a batch of neurons) and it can be differentiated. Smooth stimuli
(sine, ramp, OU noise) have useful gradients in all of them; the hard edges of ``step`` and
``pulses`` have a zero derivative with respect to their times (the current is sampled once
per step, so moving an edge by less than ``dt`` changes nothing).

Stimuli add: ``step(10, 10, 90) + sine(2, 50)`` is a :class:`Sum`.

>>> import jax.numpy as jnp
>>> s = step(jnp.array([5.0, 10.0]), start=10.0, stop=90.0)
>>> s(50.0).tolist()
[5.0, 10.0]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _validate as check
from ._pytree import pytree_dataclass


class Stimulus:
    """Base class: a pytree callable ``I(t)`` (``t`` in ms)."""

    def __add__(self, other):
        return Sum((self, as_stimulus(other)))

    __radd__ = __add__


@pytree_dataclass
class Constant(Stimulus):
    """A constant current ``amplitude`` (for all t)."""

    amplitude: float

    def __call__(self, t):
        return jnp.asarray(self.amplitude) + 0.0 * t


@pytree_dataclass
class Step(Stimulus):
    """``amplitude`` for ``start <= t < stop`` (ms), else 0."""

    amplitude: float
    start: float = 0.0
    stop: float = jnp.inf

    def __call__(self, t):
        on = (t >= self.start) & (t < self.stop)
        return jnp.where(on, self.amplitude, 0.0 * jnp.asarray(self.amplitude))


@pytree_dataclass
class PulseTrain(Stimulus):
    """``n_pulses`` pulses of ``amplitude`` and ``width`` (ms), one every ``period`` (ms)."""

    amplitude: float
    start: float
    width: float
    period: float
    n_pulses: float = 1.0

    def __call__(self, t):
        rel = t - self.start
        phase = jnp.mod(rel, self.period)
        on = (rel >= 0) & (phase < self.width) & (rel < self.n_pulses * self.period)
        return jnp.where(on, self.amplitude, 0.0 * jnp.asarray(self.amplitude))


@pytree_dataclass
class Ramp(Stimulus):
    """Linear ramp from ``amp_start`` at ``start`` to ``amp_stop`` at ``stop``, 0 outside."""

    amp_start: float
    amp_stop: float
    start: float
    stop: float

    def __call__(self, t):
        frac = (t - self.start) / (self.stop - self.start)
        value = self.amp_start + frac * (self.amp_stop - self.amp_start)
        return jnp.where((t >= self.start) & (t < self.stop), value, 0.0 * value)


@pytree_dataclass
class Sine(Stimulus):
    """``offset + amplitude * sin(2π f t / 1000 + phase)`` for ``start <= t < stop``.

    ``frequency`` is in Hz, ``phase`` in radians.
    """

    amplitude: float
    frequency: float
    phase: float = 0.0
    offset: float = 0.0
    start: float = 0.0
    stop: float = jnp.inf

    def __call__(self, t):
        value = self.offset + self.amplitude * jnp.sin(
            2e-3 * jnp.pi * self.frequency * t + self.phase
        )
        return jnp.where((t >= self.start) & (t < self.stop), value, 0.0 * value)


@pytree_dataclass(static=("interpolation",))
class Sampled(Stimulus):
    """A waveform sampled every ``dt`` ms from ``t0`` (last axis of ``values`` is time).

    ``interpolation="hold"`` (zero-order hold, right for command steps of a recording) or
    ``"linear"``. Outside the samples the first/last value is held.
    """

    values: jax.Array
    dt: float
    t0: float = 0.0
    interpolation: str = "hold"

    def __call__(self, t):
        values = jnp.asarray(self.values)
        n = values.shape[-1]
        pos = (t - self.t0) / self.dt
        if self.interpolation == "linear":
            lo = jnp.clip(jnp.floor(pos), 0, n - 1).astype(jnp.int32)
            hi = jnp.minimum(lo + 1, n - 1)
            w = jnp.clip(pos - lo, 0.0, 1.0)
            return values[..., lo] * (1 - w) + values[..., hi] * w
        idx = jnp.clip(jnp.floor(pos), 0, n - 1).astype(jnp.int32)
        return values[..., idx]


@pytree_dataclass
class Sum(Stimulus):
    """The sum of several stimuli."""

    parts: tuple

    def __call__(self, t):
        total = 0.0
        for part in self.parts:
            total = total + part(t)
        return total


@pytree_dataclass(static=("fn",))
class Function(Stimulus):
    """Any function ``fn(t)`` of time (ms) as a stimulus; :func:`as_stimulus` wraps plain
    functions in it.

    ``fn`` is part of the compiled program, as with ``jax.jit``: values it reads from
    outside (globals, closures) are frozen when a function object is first simulated. To
    vary a current between calls, or differentiate with respect to it, use the stimuli of
    this module, whose amplitudes and times are pytree leaves.

    >>> Function(lambda t: 2.0 * (t > 5.0))(10.0).item()
    2.0
    """

    fn: object

    def __call__(self, t):
        return jnp.asarray(self.fn(t))


def as_stimulus(x):
    """Turn a number into :class:`Constant` and a plain function of time into
    :class:`Function`; pass stimuli through."""
    if isinstance(x, Stimulus):
        return x
    if callable(x):
        return Function(x)
    return Constant(x)


def constant(amplitude):
    """A constant current; an array gives one current per neuron (a batch).

    >>> constant(jnp.array([2.0, 20.0]))(5.0).tolist()
    [2.0, 20.0]
    """
    return Constant(jnp.asarray(check.real_array(amplitude, "amplitude", "µA/cm² or pA")))


def step(amplitude, start=0.0, stop=jnp.inf):
    """A current step: ``amplitude`` (µA/cm² or pA) from ``start`` to ``stop`` (ms).

    >>> float(step(10.0, 10.0, 90.0)(5.0))
    0.0
    """
    check.real_array(amplitude, "amplitude", "µA/cm² or pA")
    check.interval(start, stop)
    return Step(amplitude, start, stop)


def pulse(amplitude, start, duration):
    """One rectangular pulse of ``duration`` ms from ``start`` ms.

    Seed 003's stimulus is ``pulse(10.0, 1.0, 2.0)``.
    """
    check.real_array(amplitude, "amplitude", "µA/cm² or pA")
    check.real_array(start, "start", "ms")
    check.interval(0.0, duration, "0", "duration")
    return Step(amplitude, start, start + duration)


def pulses(amplitudes, starts, durations):
    """Several pulses, as a :class:`Sum` (e.g. seed 002's double impulse).

    >>> s = pulses([150.0, 50.0], [0.0, 10.0], [1.0, 1.0])
    >>> float(s(10.5))
    50.0
    """
    lengths = {len(x) if hasattr(x, "__len__") else -1 for x in (amplitudes, starts, durations)}
    if len(lengths) != 1:
        raise ValueError(f"pulses: amplitudes, starts and durations differ in length ({sorted(lengths)})")
    return Sum(tuple(pulse(a, s, d) for a, s, d in zip(amplitudes, starts, durations)))


def pulse_train(amplitude, start, width, period, n_pulses):
    """Regular pulses: ``n_pulses`` of ``width`` ms, one every ``period`` ms."""
    check.real_array(amplitude, "amplitude", "µA/cm² or pA")
    check.number(start, "start", "ms")
    check.number(width, "width", "ms", low=0.0, low_open=True)
    check.number(period, "period", "ms", low=0.0, low_open=True)
    check.integer(n_pulses, "n_pulses", low=0)
    return PulseTrain(amplitude, start, width, period, float(n_pulses))


def ramp(amp_start, amp_stop, start, stop):
    """A linear ramp of current between ``start`` and ``stop`` (ms)."""
    check.real_array(amp_start, "amp_start", "µA/cm² or pA")
    check.real_array(amp_stop, "amp_stop", "µA/cm² or pA")
    check.interval(start, stop)
    return Ramp(amp_start, amp_stop, start, stop)


def sine(amplitude, frequency, phase=0.0, offset=0.0, start=0.0, stop=jnp.inf):
    """A sinusoidal current; ``frequency`` in Hz."""
    check.real_array(amplitude, "amplitude", "µA/cm² or pA")
    check.real_array(frequency, "frequency", "Hz")
    check.real_array(phase, "phase", "rad")
    check.real_array(offset, "offset", "µA/cm² or pA")
    check.interval(start, stop)
    return Sine(amplitude, frequency, phase, offset, start, stop)


def sampled(values, dt, t0=0.0, interpolation="hold"):
    """A recorded or precomputed waveform sampled every ``dt`` ms (time on the last axis)."""
    if interpolation not in ("hold", "linear"):
        raise ValueError(f"interpolation: expected 'hold' or 'linear', got {interpolation!r}")
    check.real_array(values, "values", "µA/cm² or pA")
    check.positive_number(dt, "dt", "ms")
    check.number(t0, "t0", "ms")
    return Sampled(jnp.asarray(values), dt, t0, interpolation)


def ou_noise(key, *, duration, dt, mean=0.0, sigma=1.0, tau=5.0, shape=()):
    """Ornstein–Uhlenbeck current noise, exactly discretised, as a :class:`Sampled` stimulus.

    ``mean`` and ``sigma`` (stationary s.d.) are in the stimulus units, ``tau`` and ``dt``
    in ms; ``shape`` gives independent realisations (batch axes). The first sample is drawn
    from the stationary distribution.

    >>> noise = ou_noise(jax.random.PRNGKey(0), duration=100.0, dt=0.1, sigma=2.0)
    >>> noise.values.shape
    (1001,)
    """
    check.positive_number(duration, "duration", "ms")
    check.positive_number(dt, "dt", "ms")
    check.positive_number(tau, "tau", "ms")
    check.real_array(sigma, "sigma", "µA/cm² or pA", low=0.0)
    check.real_array(mean, "mean", "µA/cm² or pA")
    n = int(round(duration / dt)) + 1
    a = jnp.exp(-dt / tau)
    z = jax.random.normal(key, (n,) + tuple(shape))
    scale = jnp.sqrt(1.0 - a * a)

    def body(x, zk):
        x = a * x + scale * zk
        return x, x

    _, xs = jax.lax.scan(body, z[0], z[1:])
    x = jnp.concatenate([z[:1], xs], axis=0)
    values = mean + sigma * jnp.moveaxis(x, 0, -1)
    return Sampled(values, dt, 0.0, "linear")
