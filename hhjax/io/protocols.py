"""Which protocol of a cell's file (or file set) is the recording, when it holds several.

Rigs store more than one protocol per cell: Blue Brain folders of Igor waves hold
``X_IDRest_ch1_*`` beside ``X_APWaveform_ch1_*``; an NWB file holds long steps, short
pulses, ramps and noise, each with sweeps of its own length. A :class:`Recording` is sweeps
of one length and rate, so one protocol is chosen, by one rule for every format: the one
whose sweeps hold the most spikes (by the package's detector,
:func:`hhjax.analysis.spikes.spike_peaks`) while the current is above its holding level by
more than half its depolarising excursion, i.e. the protocol that samples the f–I curve
best. Ties go to the first by name. A warning names the choice, its score and the others,
and how to pick another (``channel=`` for Igor sets, ``sweeps=`` for NWB and neo files).

Two rules come before it, for the files of the Allen Institute (NWB 1 from the Cell Types
Database, NWB 2 from MIES, as on DANDI): where a file has Allen's long current steps
(:data:`STEP_PROTOCOL`, by :func:`protocol_family`), those are the recording
(:func:`prefer_steps`), cut to one length where they differ only in baseline after their
steps (:func:`trim_steps`); and a sweep cut short where the recording stopped
(:func:`cut_short`) is left out, its padding not being the cell's.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..analysis.spikes import spike_peaks
from .recording import format_sweeps

#: The Allen Institute's protocol of long current steps (its f–I curve: 1 s steps), preferred
#: where a file has it: its other protocols (short pulses, ramps, noise, test pulses) do not
#: sample the f–I curve, and a noise sweep can hold more spikes than a step.
STEP_PROTOCOL = "Long Square"
# The names of STEP_PROTOCOL: NWB 1's aibs_stimulus_name, and the MIES stimulus codes that the
# Allen stimulus ontology (ipfx/defaults/stimulus_ontology.json) calls "Long Square", written
# with a suffix such as "_DA_0": C1LSCOARSE150216, C1LSFINEST150112, C1LSCRESEP170313 (coarse,
# fine and other 1 s step sets), X1PS_SubThresh, X3LP_Rheo, X4PS_SupraThresh (the same steps in
# three sets: below, at and above rheobase), subthreshold_171, longsquaretemp, Rheo_Supra_backu.
_LONG_SQUARE_NAMES = re.compile(r"long square|C1LS(COARSE|FINEST|CRESEP)|PS_(Sub|Supra)Thresh|LP_Rheo|"
                                r"^subthreshold|^longsquaretemp|^Rheo_Supra", re.IGNORECASE)
#: A sweep whose voltage ends in a run of exact zeros this long (ms) was cut short: MIES pads a
#: sweep it stopped early with zeros (ipfx reads them as missing), and no cell's voltage stays
#: at exactly 0.000 mV for a millisecond of samples.
CUT_ZEROS_MS = 1.0


def protocol_family(name: Any) -> str:
    """:data:`STEP_PROTOCOL` for the names Allen files give its long current steps, else
    ``name`` ("protocol" when there is none).

    >>> protocol_family("X4PS_SupraThresh_DA_0"), protocol_family("C1NSSEED_1_DA_0")
    ('Long Square', 'C1NSSEED_1_DA_0')
    """
    name = str(name or "protocol")
    return STEP_PROTOCOL if _LONG_SQUARE_NAMES.search(name) else name


def prefer_steps(path: Any, numbers: Sequence[int], names: Sequence[Any]) -> list:
    """The sweep ``numbers`` whose protocol (``names``, one per sweep) is :data:`STEP_PROTOCOL`,
    with a warning naming the sweeps of other protocols left out; all of them where none is.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     kept = prefer_steps("cell.nwb", [3, 4, 5], ["X1PS_SubThresh_DA_0", "C1NSSEED_1_DA_0", "X4PS_SupraThresh_DA_0"])
    >>> kept, "1 sweep of other protocols left out (C1NSSEED_1_DA_0: 4)" in str(w[0].message)
    ([3, 5], True)
    """
    steps = [n for n, name in zip(numbers, names) if protocol_family(name) == STEP_PROTOCOL]
    others: dict = {}
    for n, name in zip(numbers, names):
        if n not in steps:
            others.setdefault(str(name or "protocol"), []).append(n)
    if steps and others:
        n_left = len(numbers) - len(steps)
        warnings.warn(f"{path}: using the {STEP_PROTOCOL} sweeps (Allen's f–I steps; {format_sweeps(steps)}); "
                      f"{n_left} sweep{'s' if n_left > 1 else ''} of other protocols left out "
                      f"({'; '.join(f'{k}: {format_sweeps(v)}' for k, v in others.items())}); "
                      "pass sweeps=[...] to choose others", UserWarning, stacklevel=5)
    return list(steps or numbers)


def trim_steps(path: Any, names: Sequence[Any], vs: list, cs: list, rates: Sequence[float]) -> tuple[list, list]:
    """Sweeps of :data:`STEP_PROTOCOL` (``names``, one per sweep) at one rate but of
    different lengths, cut to the shortest where every longer one's current ``cs`` is flat
    from there on: only baseline after their steps goes, and Allen's three step sets (below,
    at and above rheobase) stay one recording. ``vs``, ``cs``: voltage (mV) and current (pA)
    per sweep; other sweeps are returned as they are.

    >>> import warnings
    >>> c = [np.r_[np.zeros(10), np.full(20, 50.0), np.zeros(n)] for n in (10, 30)]
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     vs, cs = trim_steps("f", ["Long Square"] * 2, [np.zeros(x.size) for x in c], c, [1e4, 1e4])
    >>> [v.size for v in vs], [x.size for x in cs]
    ([40, 40], [40, 40])
    """
    steps = [j for j, name in enumerate(names) if protocol_family(name) == STEP_PROTOCOL]
    if len({rates[j] for j in steps}) != 1 or len({vs[j].size for j in steps}) < 2:
        return vs, cs
    n = min(vs[j].size for j in steps)
    if any(np.ptp(cs[j][n - 1:]) > 1e-3 for j in steps):  # a step runs past the shortest sweep
        return vs, cs
    cut = [j for j in steps if vs[j].size > n]
    warnings.warn(f"{path}: {len(cut)} {STEP_PROTOCOL} sweep{'s' if len(cut) > 1 else ''} longer than the shortest "
                  f"({n / rates[steps[0]]:g} s) cut to it; only baseline after the steps is cut", UserWarning,
                  stacklevel=5)
    return ([v[:n] if j in cut else v for j, v in enumerate(vs)], [c[:n] if j in cut else c for j, c in enumerate(cs)])


def cut_short(v_mV: np.ndarray, i_pA: np.ndarray, rate_hz: float) -> bool:
    """Whether a sweep was cut short where the recording stopped: a non-finite sample (NaN
    padding) or a voltage that ends in :data:`CUT_ZEROS_MS` or more of exact zeros (MIES's).

    >>> v = np.full(100, -65.0); v[-20:] = 0.0              # 2 ms of zeros at 10 kHz
    >>> cut_short(v, np.zeros(100), 10_000.0), cut_short(v[:-15], np.zeros(85), 10_000.0)
    (True, False)
    """
    v = np.asarray(v_mV)
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(i_pA))):
        return True
    nonzero = np.flatnonzero(v)
    zeros = v.size - (int(nonzero[-1]) + 1 if nonzero.size else 0)
    return zeros * 1000.0 / rate_hz >= CUT_ZEROS_MS


def spikes_in_steps(v_mV: np.ndarray, i_pA: np.ndarray, rate_hz: float) -> int:
    """Spikes of one sweep while the current ``i_pA`` is above its holding level (the median
    of its first 5 %) by more than half its depolarising excursion; 0 without one.

    >>> t = np.arange(0, 300, 0.1)
    >>> i = np.where((t > 100) & (t < 200), 100.0, 0.0)
    >>> v = -65.0 + 90.0 * (np.abs(t - 150.0) < 0.5)          # one spike, inside the step
    >>> spikes_in_steps(v, i, 10_000.0), spikes_in_steps(v, -i, 10_000.0)
    (1, 0)
    """
    i_pA = np.asarray(i_pA, float)
    hold = float(np.median(i_pA[: max(1, i_pA.size // 20)]))  # sweeps start at the holding level
    top = float(np.max(i_pA)) - hold
    if top <= 0:
        return 0
    t = np.arange(np.size(v_mV)) * (1000.0 / rate_hz)
    return int(np.sum(i_pA[spike_peaks(t, np.asarray(v_mV, float))] > hold + 0.5 * top))


def choose_protocol(label: str, kind: str, names: Sequence[str], scores: Sequence[int], how: str,
                    stacklevel: int = 5) -> int:
    """Index of the protocol with the highest score (spikes during depolarising steps, summed
    over its sweeps; -1: cannot form a recording) among ``names``, with a warning naming it,
    the others and ``how`` to choose another; ``kind`` says what the candidates are.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     k = choose_protocol("cell.nwb", "protocols", ["ramp", "steps"], [3, 40], "pass sweeps=[...]")
    >>> k, "using steps (40 spikes" in str(w[0].message)
    (1, True)
    """
    best = int(np.argmax(scores))
    others = ", ".join(f"{n} ({s})" for k, (n, s) in enumerate(zip(names, scores)) if k != best)
    warnings.warn(f"{label}: {len(names)} {kind}; using {names[best]} ({scores[best]} spikes during "
                  f"depolarising steps; others: {others}); {how}", UserWarning, stacklevel=stacklevel)
    return best


def choose_group(label: str, kind: str, keys: Sequence[Any], name: Callable[[Any, list], str],
                 score: Callable[[Any, list], int]) -> list:
    """Positions in ``keys`` (one per sweep: what tells its protocol apart, such as its length
    and rate) of the protocol :func:`choose_protocol` picks: sweeps of equal keys are one
    protocol, in the order of their first sweep; ``name(key, positions)`` labels one for the
    warning and ``score(key, positions)`` scores it. NWB and neo files group by it.

    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     choose_group("f", "protocols", [300, 600, 300], lambda k, js: str(k), lambda k, js: k * len(js))
    [0, 2]
    """
    groups: dict = {}
    for j, key in enumerate(keys):
        groups.setdefault(key, []).append(j)
    order = list(groups)  # dicts keep insertion order: by each group's first sweep
    best = choose_protocol(label, kind, [name(g, groups[g]) for g in order], [score(g, groups[g]) for g in order],
                           "pass sweeps=[...] to choose another", stacklevel=6)
    return groups[order[best]]


def one_protocol(path: Any, numbers: list, names: list, sizes: list, rates: list, spikes: Callable[[int], int],
                 by_name: bool) -> list:
    """Positions of the sweeps of one protocol, where an NWB file's sweeps differ in length or
    rate (long steps, short pulses, ramps, noise): sweeps are grouped by length and rate, and
    with ``by_name`` by protocol (``names``) too, and the group is chosen by this module's
    rule; where they make one group, every position, with no warning. ``numbers``: the
    sweeps' numbers, for the warning; ``sizes``: each sweep's length (samples); ``rates``: its
    sampling rate (Hz); ``spikes(j)``: sweep ``j``'s spikes during depolarising steps
    (:func:`spikes_in_steps`), the score, asked for only where there is a choice. Allen's long-square step sets
    (:func:`protocol_family`) are one protocol where their sweeps agree in length and rate.
    ``by_name`` suits names from a fixed vocabulary (NWB 1's); names a rig wrote may label
    each sweep ("step +50 pA"), and only name the groups here.

    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     one_protocol("f", [0, 1, 2], ["step -50 pA", "step +50 pA", "ramp"], [10, 10, 20], [1e4] * 3,
    ...                  [0, 4, 3].__getitem__, by_name=False)
    [0, 1]
    """
    keys = [(protocol_family(name) if by_name else "", n, r) for name, n, r in zip(names, sizes, rates)]
    if len(set(keys)) < 2:
        return list(range(len(keys)))

    def label(g, js):
        told = list(dict.fromkeys(str(names[j]) for j in js))
        name = g[0] or ", ".join(told[:3]) + (", ..." if len(told) > 3 else "")
        return f"{name} (sweeps {format_sweeps([numbers[j] for j in js])}, {g[1] / g[2]:g} s)"

    return choose_group(path, "protocols of different sweep lengths", keys, label,
                        lambda g, js: sum(spikes(j) for j in js))


def settle_protocol(path: Any, numbers: list, names: list, vs: list, cs: list, rates: list, *, chosen: bool,
                    split_names: bool = False) -> tuple[list, list, list]:
    """The last step of an NWB reader, once its sweeps are read and those cut short left out:
    step sets cut to one length (:func:`trim_steps`), then, unless the user chose the sweeps
    (``chosen``), one protocol (:func:`one_protocol`) where they differ in length or rate, or
    with ``split_names`` (NWB 1, whose names are the Allen stimulus vocabulary) in protocol
    (:func:`protocol_family`) too, and grouped by it. Arguments as
    :func:`one_protocol`'s, with ``vs``, ``cs`` each sweep's voltage (mV) and current (pA);
    returns the positions kept and the (trimmed) voltages and currents of every sweep.

    >>> vs = [np.zeros(10), np.zeros(10)]
    >>> settle_protocol("f", [0, 1], ["Long Square", "Short Square"], vs, vs, [1e4, 1e4], chosen=True,
    ...                 split_names=True)[0]
    [0, 1]
    """
    vs, cs = trim_steps(path, names, vs, cs, rates)
    if chosen:
        return list(range(len(vs))), vs, cs
    return one_protocol(path, numbers, names, [v.size for v in vs], rates,
                        lambda j: spikes_in_steps(vs[j], cs[j], rates[j]), by_name=split_names), vs, cs


def not_cut_short(numbers: Sequence[int], read: Callable, cut: list) -> Iterator[tuple]:
    """``(k, v, c, rate)`` of each sweep ``k`` of ``numbers``, read in turn (``read(k)``: its
    voltage, current and rate), but those :func:`cut_short`, whose numbers go to ``cut``.

    >>> cut = []
    >>> [k for k, *_ in not_cut_short([1, 2], lambda k: (np.full(9, -65.0 * (k == 1)), np.zeros(9), 1e3), cut)], cut
    ([1], [2])
    """
    for k in numbers:
        v, c, rate = read(k)
        if cut_short(v, c, rate):
            cut.append(k)
        else:
            yield k, v, c, rate
