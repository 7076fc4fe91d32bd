"""``hhjax fit-many`` on a Dask LocalCluster of 2 workers (issue 17): the same parameters as
fitting the cells one after another, a worker killed mid-run costs nothing but time, an
unreadable file fails alone with its error in the table, reruns skip finished cells and
refit changed ones, and an unreachable scheduler is one line, exit 2.

Cells: four 2-sweep windows of a real recording (data/recordings), written as NPZ files; the
fits are tiny (1 generation of 8, no LM steps) so that the test measures the machinery.
The reference is ``fit_recording`` called for each cell in turn, in one process with the
workers' environment (so that both use the same single-threaded XLA programs)."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dask.distributed")

from hhjax.cluster import FitSettings, core_sets, find_cells, input_hash, worker_env  # noqa: E402
from hhjax.cluster.cells import finished_row  # noqa: E402
from hhjax.io import example_recording  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SOURCE = example_recording("File_axon_5.abf")  # in the repo (data/recordings): never skipped
SETTINGS = FitSettings(n_starts=1, steps=0, generations=1, population=8, plot=True)
FLAGS = ["--starts", "1", "--steps", "0", "--generations", "1", "--population", "8"]
NAMES = [f"cell{k}" for k in range(4)]
PARAMS = ("g_na", "g_k", "g_m", "tau_max", "v_t", "g_l", "e_l", "area")

SEQUENTIAL = """
import json, sys
from hhjax.cluster import FitSettings
from hhjax.io import load_recording
from hhjax.recordings import fit_recording
s = FitSettings(**json.loads(sys.argv[1]))
out = {}
for path in sys.argv[2:]:
    r = fit_recording(load_recording(path), n_starts=s.n_starts, steps=s.steps, dt=s.dt, key=s.seed,
                      generations=s.generations, population=s.population, progress=False)
    out[path] = {n: float(getattr(r.params, n)) for n in %r}
print(json.dumps(out))
""" % (PARAMS,)


def _cli(*args):
    return [sys.executable, "-c", "import sys, hhjax.cli as c; sys.exit(c.main())", *args]


def _env(cache):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_COMPILATION_CACHE_DIR")}
    env.update(worker_env(cache), PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
               JAX_PLATFORMS="cpu")
    return env


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    from hhjax.io import load_recording

    folder = tmp_path_factory.mktemp("cells")
    rec = load_recording(SOURCE)
    for name, sweeps in zip(NAMES, [(1, 6), (2, 6), (1, 7), (2, 7)]):
        rec.select(list(sweeps)).time_window(0.0, 700.0).to_npz(folder / f"{name}.npz")
    return folder


def test_fit_many_matches_sequential_fits_survives_a_killed_worker_and_resumes(cells, tmp_path):
    cache, out = tmp_path / "xla", tmp_path / "out"
    paths = [str(cells / f"{n}.npz") for n in NAMES]
    import dataclasses

    seq = subprocess.run([sys.executable, "-c", SEQUENTIAL, json.dumps(dataclasses.asdict(SETTINGS)), *paths],
                         capture_output=True, text=True, env=_env(cache), cwd=ROOT, timeout=600)
    assert seq.returncode == 0, seq.stderr[-3000:]
    reference = json.loads(seq.stdout.strip().splitlines()[-1])

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.abf").write_bytes(b"not an ABF file" * 10)
    run = subprocess.Popen(_cli("fit-many", str(cells), str(bad), "--out", str(out), "--workers", "2",
                                "--cache-dir", str(cache), *FLAGS),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(cache), cwd=ROOT)
    killed = None
    deadline = time.monotonic() + 480
    while run.poll() is None and time.monotonic() < deadline:
        if killed is None:
            for marker in out.glob("cell*/running.json"):
                try:
                    pid = json.loads(marker.read_text())["pid"]
                    os.kill(pid, signal.SIGKILL)  # a worker process, mid-fit
                    killed = (marker.parent.name, pid)
                    break
                except (OSError, ValueError, KeyError):
                    continue
        time.sleep(0.1)
    if run.poll() is None:
        run.kill()
    stdout, stderr = run.communicate()
    assert killed is not None, "no worker was seen fitting"
    assert run.returncode == 1, stderr[-3000:]  # 1: a cell failed (the broken file)
    table = {r["cell"]: r for r in json.loads((out / "summary.json").read_text())["cells"]}
    assert sorted(table) == sorted(NAMES + ["broken"])
    assert table["broken"]["status"] == "failed" and table["broken"]["error"]
    csv_lines = (out / "summary.csv").read_text().splitlines()
    assert len(csv_lines) == 6 and csv_lines[0].startswith("cell,status")
    for name, path in zip(NAMES, paths):
        row = table[name]
        assert row["status"] == "ok", row
        for f in ("fit.json", "eval.json", "fit.png", "done.json"):
            assert (out / name / f).stat().st_size > 0
        for p in PARAMS:
            np.testing.assert_allclose(row[p], reference[path][p], rtol=1e-5, err_msg=f"{name}.{p}")
    assert table[killed[0]]["worker"].split(":")[-1] != str(killed[1])  # refitted elsewhere
    if hasattr(os, "sched_getaffinity"):  # each worker, the restarted one too, on its own cores
        assert {tuple(table[n]["cores"]) for n in NAMES} <= {tuple(c) for c in core_sets(2)}, table
    # The workers found the fit's programs in the cache the sequential run filled (every
    # program is cached, not only those that took JAX's default 1 s to compile).
    built = [(table[n]["xla_programs"], table[n]["xla_cache_hits"]) for n in NAMES]
    print("programs built, cache hits per cell:", built)
    assert sum(p for p, _ in built) > 0
    assert all(h >= p / 2 for p, h in built), built

    # Rerun on the good cells: all skipped, no cluster needed.
    again = subprocess.run(_cli("fit-many", str(cells), "--out", str(out), *FLAGS), capture_output=True,
                           text=True, env=_env(cache), cwd=ROOT, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("skipped (finished before)") == 4
    # A changed input is no longer finished.
    changed = find_cells([paths[0]])[0]
    assert finished_row(out, changed, input_hash(changed, SETTINGS)) is not None
    with open(paths[0], "ab") as fh:
        fh.write(b"\0")
    assert finished_row(out, changed, input_hash(changed, SETTINGS)) is None


def test_unreachable_scheduler_is_one_line_and_exit_2(cells, tmp_path):
    start = time.monotonic()
    r = subprocess.run(_cli("fit-many", str(cells), "--out", str(tmp_path / "o"), "--scheduler",
                            "tcp://127.0.0.1:9", "--connect-timeout", "2"),
                       capture_output=True, text=True, env=_env(tmp_path / "x"), cwd=ROOT, timeout=120)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "tcp://127.0.0.1:9" in lines[0] and "did not answer" in lines[0], r.stderr
    assert time.monotonic() - start < 120


def test_find_cells_names_folders_and_globs(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.abf").write_bytes(b"1")
    (tmp_path / "b" / "x.abf").write_bytes(b"2")
    ibw = tmp_path / "b" / "cellB6"
    ibw.mkdir()
    for k in range(3):
        (ibw / f"s{k}.ibw").write_bytes(b"3")
    found = find_cells([tmp_path / "a", str(tmp_path / "b" / "*"), tmp_path / "a" / "x.abf"])
    assert [c.name for c in found] == ["x", "cellB6", "b_x"]  # each once; the .ibw folder is one cell
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        find_cells([str(tmp_path / "nothing-here*")])


def test_fit_cell_with_another_model_reports_it_and_its_conductances(cells, tmp_path):
    """--model reaches the worker: an LTS fit (T-type Ca) writes its model and g_cat/v_x
    to the row and fit.json; the model is part of the input hash."""
    from hhjax.cluster import fit_cell
    from hhjax import load_params

    cell = find_cells([cells / "cell0.npz"])[0]
    lts = FitSettings(model="pospischil_lts", n_starts=1, steps=0, generations=1, population=8, plot=False)
    assert input_hash(cell, lts) != input_hash(cell, SETTINGS)
    row = fit_cell(cell, tmp_path, lts, input_hash(cell, lts))
    assert row["status"] == "ok", row.get("error")
    assert row["model"] == "pospischil_lts" and np.isfinite(row["g_cat"]) and np.isfinite(row["v_x"])
    fitted = load_params(tmp_path / "cell0" / "fit.json")
    assert float(fitted.g_cat) == pytest.approx(row["g_cat"])


def test_unknown_model_is_one_line_and_exit_2(tmp_path):
    r = subprocess.run(_cli("fit-many", str(tmp_path), "--out", str(tmp_path / "o"), "--model", "purkinje"),
                       capture_output=True, text=True, env=_env(tmp_path / "x"), cwd=ROOT, timeout=120)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--model: 'purkinje'" in lines[0], r.stderr


def test_the_input_hash_counts_the_fits_a_consensus_makes(cells, monkeypatch):
    """The default ``members`` (None) hashes as the number of fits it makes, so a cell fitted
    under one default is not taken as finished under another."""
    from hhjax.recordings import consensus

    cell = find_cells([cells / "cell0.npz"])[0]
    auto = dataclasses.replace(SETTINGS, model="auto")
    default, auto_before = input_hash(cell, SETTINGS), input_hash(cell, auto)
    assert default == input_hash(cell, dataclasses.replace(SETTINGS, members=consensus.CONSENSUS_MEMBERS))
    assert default != input_hash(cell, dataclasses.replace(SETTINGS, members=1))
    monkeypatch.setattr(consensus, "CONSENSUS_MEMBERS", 5)
    assert input_hash(cell, SETTINGS) != default
    assert input_hash(cell, auto) == auto_before  # auto makes single fits: its cells stay finished


def test_the_input_hash_counts_the_package_version(cells, monkeypatch):
    """Cells fitted by another release of hhjax are fitted again: its rules may differ."""
    from hhjax.cluster import cells as cells_module

    cell = find_cells([cells / "cell0.npz"])[0]
    before = input_hash(cell, SETTINGS)
    monkeypatch.setattr(cells_module, "package_version", lambda: "999.0")
    assert input_hash(cell, SETTINGS) != before


def test_fit_many_fits_without_a_time_limit(cells, monkeypatch, tmp_path):
    """A batch fit is the same on any machine: fit-many turns off the limit that keeps an
    interactive fit within its time (recordings.cell_fit.FIT_WALL_SECONDS)."""
    from hhjax.cluster import cells as cells_module

    seen = {}

    def stand_in(rec, model, **kw):
        seen.update(kw)
        raise RuntimeError("stand-in: stop here")

    monkeypatch.setattr(cells_module, "fit_with_model", stand_in)
    cell = find_cells([cells / "cell0.npz"])[0]
    with pytest.raises(RuntimeError, match="stand-in"):
        cells_module._fit_and_write(cell, tmp_path, SETTINGS)
    assert seen["time_limit"] is False


def test_units_reach_every_cell_and_a_wrong_one_is_one_line(monkeypatch, tmp_path):
    """--i-units/--v-units are read into every cell as load_recording reads them: a 150 pA
    step written in nA under a pA label loads as 150 pA with i_units='nA' (0.15 pA, with a
    warning, without); a unit of the wrong kind stops fit-many before any cell, in one line."""
    from hhjax.cluster import cells as cells_module
    from hhjax.io import ImplausibleCurrentWarning

    t = np.arange(500) * 0.1
    step = ((t >= 10) & (t < 30)).astype(float)
    np.savetxt(tmp_path / "nA.csv", np.column_stack([t, -65.0 + 10.0 * step, 0.15 * step]), delimiter=",",
               header="t_ms,v_mV,i_pA", comments="")
    seen = {}

    def stand_in(rec, model, **kw):
        seen["i_max"] = float(rec.i.max())
        raise RuntimeError("stand-in: stop here")

    monkeypatch.setattr(cells_module, "fit_with_model", stand_in)
    cell = find_cells([tmp_path / "nA.csv"])[0]
    with pytest.raises(RuntimeError, match="stand-in"):
        cells_module._fit_and_write(cell, tmp_path, dataclasses.replace(SETTINGS, i_units="nA"))
    assert seen["i_max"] == pytest.approx(150.0)
    with pytest.warns(ImplausibleCurrentWarning), pytest.raises(RuntimeError, match="stand-in"):
        cells_module._fit_and_write(cell, tmp_path, SETTINGS)
    assert seen["i_max"] == pytest.approx(0.15)
    r = subprocess.run(_cli("fit-many", str(tmp_path), "--out", str(tmp_path / "o"), "--i-units", "mV"),
                       capture_output=True, text=True, env=_env(tmp_path / "x"), cwd=ROOT, timeout=120)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "--i-units: 'mV' is not a current" in lines[0], r.stderr
    assert not (tmp_path / "o").exists()
