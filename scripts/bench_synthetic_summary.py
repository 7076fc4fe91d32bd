"""Per cell class and draw, how many fits of the synthetic cells meet every held-out target,
from ``bench_recordings.py --seeds N`` runs on ``synthetic_cells.py`` folders, and whether
the consensus of those N fits does.

    python scripts/bench_synthetic_summary.py DRAW0.json:0 DRAW1.json:1 ... \\
        --out scripts/bench_synthetic_draws_seeds.json.xz

Each argument is a results JSON and the draw it holds (``:K``; a recording named
``..._drawK.npz``, as the plateau folder's are, gives its own draw). The cells are merged
into ``--out`` (xz-compressed where it ends in ``.xz``) with a ``draw`` key; two Markdown
tables (a row per class, a column per draw) are printed and written next to it as ``.md``:
``met/fits`` over the seeds, and ✓ or ✗ for the fit
:func:`hhjax.recordings.consensus.consensus_member` picks from them by their predicted
counts on the sweeps not fitted. Run with ``--seeds 3``, the seeds are the members of the
default fit with key 0, so that is the default fit's result: its members are these fits,
bit for bit. A fit meets every target as ``bench_recordings.every_target_met`` says; one
with nothing held out is not counted.
"""

from __future__ import annotations

import argparse
import json
import lzma
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_recordings import every_target_met, targets  # noqa: E402

from hhjax.io import save_json_atomic, write_atomic  # noqa: E402
from hhjax.recordings.consensus import consensus_member  # noqa: E402


def cell_class(recording: str) -> str:
    """``fs_block_20khz.npz`` -> ``fs_block``; ``rs_plateau_10khz_draw3.npz`` -> ``rs_plateau``."""
    return re.sub(r"_\d+khz$", "", re.sub(r"(_draw\d+)?\.npz$", "", Path(recording).name))


def merged(sources: list) -> list:
    """The cells of every ``(path, draw)`` source, each with its ``draw``."""
    cells = []
    for path, draw in sources:
        for c in json.loads(Path(path).read_text())["cells"]:
            own = re.search(r"_draw(\d+)\.npz$", c["recording"])
            cells.append({**c, "draw": int(own.group(1)) if own else draw})
    return cells


def _met(c: dict):
    return None if "error" in c else every_target_met(targets(c["sweeps"]))


def consensus_picks(cells: list) -> list:
    """Per (draw, recording): the cell entry :func:`consensus_member` keeps of its seeds."""
    groups: dict = {}
    for c in cells:
        if "error" not in c:
            groups.setdefault((c["draw"], c["recording"]), []).append(c)
    picks = []
    for members in groups.values():
        members = sorted(members, key=lambda c: c.get("seed") or 0)
        unfitted = [k for k, s in enumerate(members[0]["sweeps"]) if s["held_out"]]
        counts = [[c["sweeps"][k]["predicted_spikes"] for k in unfitted] for c in members]
        picks.append(members[consensus_member(counts)[0]] if len(members) > 1 and unfitted else members[0])
    return picks


def table(cells: list, mark: bool = False) -> str:
    """Markdown: per class (row) and draw (column), fits meeting every target / fits (with
    ``mark``, one fit per cell: ✓ or ✗)."""
    draws = sorted({c["draw"] for c in cells})
    tally: dict = {}
    for c in cells:
        met = _met(c)
        if met is not None:
            n = tally.setdefault(cell_class(c["recording"]), {}).setdefault(c["draw"], [0, 0])
            n[0] += met
            n[1] += 1
    one = lambda n: ("✓" if n[0] else "✗") if mark and n[1] == 1 else f"{n[0]}/{n[1]}"  # noqa: E731
    lines = ["| cell class | " + " | ".join(f"draw {d}" for d in draws) + " | all draws |",
             "|---|" + "---|" * (len(draws) + 1)]
    grand = [0, 0]
    for name in sorted(tally):
        row = tally[name]
        tot = [sum(row[d][0] for d in row), sum(row[d][1] for d in row)]
        grand = [grand[0] + tot[0], grand[1] + tot[1]]
        lines.append(f"| {name} | " + " | ".join(one(row[d]) if d in row else "–" for d in draws)
                     + f" | {tot[0]}/{tot[1]} |")
    lines.append("| all classes | " + " | ".join(
        f"{sum(tally[n][d][0] for n in tally if d in tally[n])}/{sum(tally[n][d][1] for n in tally if d in tally[n])}"
        for d in draws) + f" | {grand[0]}/{grand[1]} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="+", help="RESULTS.json:DRAW")
    ap.add_argument("--out", required=True, help="merged JSON (the table goes next to it as .md)")
    args = ap.parse_args(argv)
    sources = []
    for s in args.sources:
        path, _, draw = s.rpartition(":")
        if not path or not draw.isdigit() or not Path(path).is_file():
            why = "no such file" if path and draw.isdigit() else "expected RESULTS.json:DRAW"
            print(f"bench_synthetic_summary: {s}: {why}", file=sys.stderr)
            return 2
        sources.append((path, int(draw)))
    cells = merged(sources)
    if args.out.endswith(".xz"):  # 168 fits: 0.4 MB of JSON, 17 kB compressed
        write_atomic(args.out, lzma.compress(json.dumps({"cells": cells}).encode()))
    else:
        save_json_atomic(args.out, {"cells": cells})
    md = ("Fits meeting every held-out target, per seed:\n\n" + table(cells) +
          "\n\nThe consensus of the seeds (the default fit):\n\n" + table(consensus_picks(cells), mark=True))
    Path(args.out.removesuffix(".xz")).with_suffix(".md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
