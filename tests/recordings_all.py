"""Every sweep of every recording in the repo's ``data/recordings`` (byte-for-byte copies,
some ``.xz``-compressed) or ``../shared/data/recordings``, read with the file formats' own
libraries (pyabf, igor2, NumPy, lzma) rather than hhjax.io, so the reference spike-count
table is checked against data hhjax did not touch.

``sweeps()`` yields ``(recording, sweep, t_ms, v_mV)``; ``data_dir()`` is None when no
copy is available (tests then skip)."""

from __future__ import annotations

import io
import lzma
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CANDIDATES = [HERE.parent / "data" / "recordings", HERE.parent.parent / "shared" / "data" / "recordings"]


def data_dir() -> Path | None:
    for d in CANDIDATES:
        if any(d.glob("current.txt*")) or any(d.glob("*.abf*")):
            return d
    return None


def _abf(path):
    import pyabf  # optional: only for the reference data

    if path.suffix == ".xz":
        with tempfile.NamedTemporaryFile(suffix=".abf", delete=False) as f:
            f.write(lzma.decompress(path.read_bytes()))
        try:
            yield from _abf(Path(f.name))
        finally:
            Path(f.name).unlink()
        return
    abf = pyabf.ABF(str(path))
    for k in abf.sweepList:
        abf.setSweep(k)
        yield k, 1000.0 * np.asarray(abf.sweepX, float), np.asarray(abf.sweepY, float)


def _ibw(path):
    import igor2.binarywave as bw  # optional: only for the reference data

    # igor2 reads a stream (pyabf, in _abf, needs a file)
    w = bw.load(io.BytesIO(lzma.decompress(path.read_bytes())) if path.suffix == ".xz" else str(path))["wave"]
    y = np.asarray(w["wData"], float)
    h = w["wave_header"]
    # version 5 (B6, B8) scales x with sfA/dimUnits, version 2 (B95) with hsA/xUnits
    dx, units = (float(h["sfA"][0]), h["dimUnits"][0]) if "sfA" in h else (float(h["hsA"]), h["xUnits"])
    unit = "".join(c.decode() if isinstance(c, bytes) else str(c) for c in units).strip("\x00")
    dt_ms = dx * 1000.0 if unit.strip() in ("s", "") and dx < 0.01 else dx
    return np.arange(y.size) * dt_ms, y


def sweeps(d: Path | None = None):
    d = d or data_dir()
    if d is None:
        return
    for p in sorted(d.glob("*.abf")) + sorted(d.glob("*.abf.xz")):
        name = p.name.removesuffix(".xz")
        yield from ((name, k, t, v) for k, t, v in _abf(p))
    for p in (d / "current.txt", d / "current.txt.xz"):
        if p.exists():
            a = np.loadtxt(lzma.open(p, "rt") if p.suffix == ".xz" else p)
            yield "current.txt", 0, 1000.0 * a[:, 0], a[:, 2]
            break
    # Igor sets: a folder per cell (B6, B8, B95), its voltage waves ``*Ch3*``, numbered in
    # file-name order; a loose set at the top is B6 (a copy made before the folder).
    sets = {f.name: sorted(f.glob("*Ch3*.ibw*")) for f in sorted(d.iterdir()) if f.is_dir()}
    sets = {name: files for name, files in sets.items() if files} or {"B6": sorted(d.glob("*Ch3*.ibw*"))}
    for name, files in sets.items():
        for k, p in enumerate(files):
            t, v = _ibw(p)
            yield name, k, t, v
