"""Issue 16: corrupted recordings are one ValueError naming the file, never another exception
or a hang. A small run of ``scripts/fuzz_loaders.py`` (which runs 1,000 mutants per format)
on the repository's own recordings, and the ABF corruptions that used to take minutes."""

from __future__ import annotations

import importlib.util
import signal
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

from hhjax.io import load_recording

ROOT = Path(__file__).resolve().parent.parent
RECORDINGS = ROOT / "data" / "recordings"
SCRIPT = ROOT / "scripts" / "fuzz_loaders.py"


def _script():
    spec = importlib.util.spec_from_file_location("fuzz_loaders", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sources(tmp_path, fuzz):
    rec = load_recording(RECORDINGS / "File_axon_5.abf")
    csv, nwb = tmp_path / "cell.csv", tmp_path / "cell.nwb"
    rows = np.column_stack([rec.t, rec.v[0], rec.i[0]])
    csv.write_text("t_ms,v_mV,i_pA\n" + "\n".join(",".join(f"{x:.6g}" for x in r) for r in rows) + "\n")
    fuzz.write_nwb(rec.select([0, 1]), nwb)
    return {"abf": ([RECORDINGS / "File_axon_5.abf"], False), "csv": ([csv], True), "nwb": ([nwb], False),
            "ibw": ([RECORDINGS / "B6" / "B6_Ch3_IDRest_181.ibw", RECORDINGS / "B6" / "B6_Ch0_IDRest_181.ibw"],
                    False)}


@pytest.mark.parametrize("fmt", ["abf", "csv", "nwb", "ibw"])
def test_mutants_give_only_documented_errors(tmp_path, fmt):
    pytest.importorskip("pynwb")
    pytest.importorskip("igor2")
    fuzz = _script()
    files, text = _sources(tmp_path, fuzz)[fmt]
    old = signal.signal(signal.SIGALRM, fuzz._alarm)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # corrupted files warn (implausible voltage, HDF5 links)
            counts = fuzz.fuzz(files, 40, np.random.default_rng(1), 120.0, text)  # 120 s: a hang guard
    finally:
        signal.signal(signal.SIGALRM, old)
    assert counts["failures"] == 0, counts["failed"]
    assert counts["timeouts"] == 0
    assert counts["loaded"] + counts["documented_errors"] == 40
    assert counts["documented_errors"] > 0  # the mutations do break files


def _abf_bytes():
    return bytearray((RECORDINGS / "File_axon_5.abf").read_bytes())


def test_abf_with_a_block_inserted_is_rejected_before_pyabf_allocates(tmp_path):
    """4 KB inserted into the data shift the synch array at the end of the file onto samples:
    pyabf then read sweep lengths of ~1e9 samples and filled them (up to 193 s per load)."""
    b = _abf_bytes()
    b[200_000:200_000] = bytes(4096)
    p = tmp_path / "shifted.abf"
    p.write_bytes(bytes(b))
    with pytest.raises(ValueError, match=r"shifted\.abf: corrupted ABF file: the synch array"):
        load_recording(p)


@pytest.mark.parametrize("offset, value, message", [
    (12, 2**31, "sweeps but only"),               # lActualEpisodes
    (92 + 8, 2**30, "ADC section"),               # ADC section entry count
    (236 + 8, 2**31 - 1, "data section"),         # data section entry count
])
def test_abf_with_absurd_header_counts_is_rejected(tmp_path, offset, value, message):
    b = _abf_bytes()
    b[offset:offset + 4] = struct.pack("<I", value)
    p = tmp_path / "bad.abf"
    p.write_bytes(bytes(b))
    with pytest.raises(ValueError, match=message) as ei:
        load_recording(p)
    assert str(ei.value).startswith(f"{p}: ") and "\n" not in str(ei.value)


def test_real_abf_files_pass_the_header_checks():
    from hhjax.io.abf_checks import check_abf_header
    from hhjax.io.sources import opened
    files = sorted(RECORDINGS.glob("*.abf*"))
    assert len(files) >= 5
    for f in files:
        with opened(str(f), f) as plain:
            check_abf_header(f.name, plain)


def test_csv_nan_and_inf_are_named_by_column_and_row(tmp_path):
    p = tmp_path / "cell.csv"
    p.write_text("t_ms,v_mV,i_pA\n0,-65,0\n0.1,-65,0\n0.2,nan,0\n0.3,-65,inf\n")
    with pytest.raises(ValueError, match=r"cell\.csv: column v_mV, row 3: NaN"):
        load_recording(p)
    p.write_text("t_ms,v_mV,i_pA\n0,-65,0\nnan,-65,0\n0.2,-65,0\n")
    with pytest.raises(ValueError, match=r"column t_ms, row 2: NaN"):
        load_recording(p)


def test_nwb_series_larger_than_free_memory_is_refused_before_reading(tmp_path, monkeypatch):
    pytest.importorskip("pynwb")
    from hhjax.io import nwb2
    p = tmp_path / "cell.nwb"
    _script().write_nwb(load_recording(RECORDINGS / "File_axon_5.abf").select([0]), p)
    monkeypatch.setattr(nwb2, "available", lambda platform=None: 16 * 20000 - 1)  # one sweep: 20,000 samples
    with pytest.raises(ValueError, match=r"cell\.nwb: series 'vm_0' declares \(20000,\) samples .* free memory"):
        load_recording(p)


def test_ibw_with_an_absurd_section_size_is_rejected_and_later_loads_work(tmp_path):
    """A flipped bit in dimEUnitsSize made igor2 build a 2 GB parser, kept for every later load."""
    pytest.importorskip("igor2")
    from hhjax.io import read_ibw
    good = RECORDINGS / "B6" / "B6_Ch0_IDRest_181.ibw"
    b = bytearray(good.read_bytes())
    b[20:24] = struct.pack(">l", 67108864)   # the big-endian v5 header's first dimEUnitsSize
    p = tmp_path / "bad.ibw"
    p.write_bytes(bytes(b))
    with pytest.raises(ValueError, match=r"bad\.ibw: corrupted Igor binary wave: its header declares"):
        read_ibw(p)
    assert read_ibw(good)["values"].size == 12000
