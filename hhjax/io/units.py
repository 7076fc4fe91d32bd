"""Units: hhjax's internal ones (ms, mV, pA) and the conversions from what files write.

Internal units are fixed so the rest of hhjax never has to guess: time in ms, membrane
voltage in mV, injected current in pA.
"""

from __future__ import annotations

from typing import Any, Optional

from .recording import fail

# Factors to the internal unit. Keys are lower-cased so 'MV'/'mv' from sloppy
# headers still work; NWB spells SI units out ('volts', 'amperes').
_VOLTAGE_TO_MV = {"mv": 1.0, "millivolt": 1.0, "millivolts": 1.0,
                  "v": 1e3, "volt": 1e3, "volts": 1e3}
_CURRENT_TO_PA = {"pa": 1.0, "picoampere": 1.0, "picoamperes": 1.0,
                  "na": 1e3, "nanoampere": 1e3, "nanoamperes": 1e3,
                  "a": 1e12, "amp": 1e12, "amps": 1e12, "ampere": 1e12, "amperes": 1e12}
_TIME_TO_MS = {"ms": 1.0, "s": 1e3, "sec": 1e3, "seconds": 1e3}

UNITS = {"t": "ms", "v": "mV", "i": "pA"}


def _label(units: Any) -> str:
    return str(units or "").replace("\x00", "").strip()  # ABF headers pad with NULs and spaces


def unit_factor(path: Any, kind: str, file_unit: Any, override: str | None) -> float:
    """Factor that converts ``kind`` ('v', 'i' or 't') from the file's unit to mV/pA/ms.

    ``override`` (the user's ``v_units``/``i_units``) replaces the file's label,
    for files whose labels are wrong or missing.

    Example:
        >>> unit_factor("x.csv", "v", "V", None)
        1000.0
    """
    table, name, internal, kw, flag = {
        "v": (_VOLTAGE_TO_MV, "voltage", "mV", "v_units", " (--v-units on the command line)"),
        "i": (_CURRENT_TO_PA, "current", "pA", "i_units", " (--i-units on the command line)"),
        "t": (_TIME_TO_MS, "time", "ms", "t_units", ""),
    }[kind]
    key = _label(file_unit if override is None else override)
    if key.lower() in table:
        return table[key.lower()]
    if override is not None:
        raise fail(path, f"{kw}={override!r} is not a known {name} unit "
                         f"(known: {sorted(set(table))})")
    raise fail(path, f"{name} units {key!r} are not {internal}; pass {kw}=... to convert{flag}")


def units_kind(units: Any) -> Optional[str]:
    """``'v'`` if ``units`` name a voltage, ``'i'`` a current, else None.

    >>> units_kind("nA"), units_kind("mV "), units_kind("V"), units_kind("?")
    ('i', 'v', 'v', None)
    """
    key = _label(units).lower()
    return "v" if key in _VOLTAGE_TO_MV else "i" if key in _CURRENT_TO_PA else None
