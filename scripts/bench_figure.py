"""The benchmark figure of the README, drawn from what scripts/bench.py measured.

    python scripts/bench_figure.py [scripts/bench_results.json] [docs/figures/bench.png]

Left: W2 throughput (neuron-steps/s) against the number of neurons for every system in the
JSON. Right: one neuron, W1 run time and W3 gradient time (ms). Only numbers in the JSON
are drawn; a system or workload that was skipped is left out.
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# label -> (colour, line style); labels are the JSON's peer systems and hhjax's own rows.
STYLE = {
    "hhjax, use_all_cores()": ("C0", "-"),
    "hhjax, one device": ("C0", "--"),
    "jaxley-f32": ("C1", "-"),
    "brian2-cpp_standalone": ("C2", "-"),
    "brian2-cython": ("C2", ":"),
    "neuron": ("C3", "-"),
    "C loop (cpu_ceiling.c)": ("0.4", "-."),
}


def _w2_series(res):
    """``{label: ([N], [neuron-steps/s])}`` for every system with W2 numbers."""
    out = {}

    def add(label, rows):
        pts = sorted((int(n), r["neuron_steps_per_s"]) for n, r in rows.items()
                     if isinstance(r, dict) and r.get("neuron_steps_per_s"))
        if pts:
            out[label] = ([n for n, _ in pts], [x for _, x in pts])

    add("hhjax, use_all_cores()", {n: r for n, r in res.get("W2_all_cores", {}).items() if n.isdigit()})
    add("hhjax, one device", res.get("W2", {}))
    peers = res.get("peers", {})
    for system in sorted({k.split(":")[0] for k in peers}):
        add(system, {k.split(":")[2]: r for k, r in peers.items()
                     if k.startswith(system + ":W2:") and not r.get("skipped")})
    ceiling = res.get("ceiling", {})
    if not ceiling.get("skipped"):
        add("C loop (cpu_ceiling.c)", {n: r for n, r in ceiling.items() if n.isdigit()})
    return out


def _single_neuron_bars(res):
    """``[(label, ms, colour)]``: W1 runs and W3 gradients of one neuron."""
    peers = res.get("peers", {})
    bars = []

    def peer_ms(key):
        r = peers.get(key)
        return None if not r or r.get("skipped") else 1e3 * r["run_s_median"]

    w1 = res.get("W1", {}).get("run_s")
    for label, ms, colour in (
        ("hhjax simulate", w1 and 1e3 * w1, "C0"),
        ("Jaxley simulate", peer_ms("jaxley-f32:W1:1"), "C1"),
        ("NEURON simulate", peer_ms("neuron:W1:1"), "C3"),
        ("Brian2 cpp simulate", peer_ms("brian2-cpp_standalone:W1:1"), "C2"),
    ):
        if ms:
            bars.append((label, ms, colour))
    w3 = res.get("W3", {})
    for key, label in (("single_forward", "hhjax value_and_grad_forward"),
                       ("single", "hhjax jax.grad"), ("single_jacfwd", "hhjax jax.jacfwd")):
        if key in w3:
            bars.append((label, 1e3 * w3[key]["run_s"], "C0"))
    ms = peer_ms("jaxley-f32:W3:1")
    if ms:
        bars.append(("Jaxley jax.grad", ms, "C1"))
    return bars


def figure(res, path):
    """Draw the two panels from a bench_results.json dict and save them to ``path``."""
    import matplotlib  # noqa: PLC0415 (only this script needs it)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), width_ratios=(1.1, 1))
    for label, (ns, rates) in _w2_series(res).items():
        colour, style = STYLE.get(label, ("0.6", "-"))
        left.plot(ns, rates, style, color=colour, marker="o", ms=4, label=label)
    left.set(xscale="log", yscale="log", xlabel="neurons N",
             ylabel="neuron-steps per second (higher is better)",
             title="W2: N neurons, 100 ms, V every 10 steps")
    left.grid(True, which="both", alpha=0.3)
    left.set_ylim(2e5, 3e8)  # room for the legend under the slowest system
    left.legend(fontsize=7.5, loc="lower center", ncol=2)

    bars = _single_neuron_bars(res)
    y = range(len(bars))
    right.barh(list(y), [b[1] for b in bars], color=[b[2] for b in bars])
    right.set_yticks(list(y), [b[0] for b in bars], fontsize=8)
    right.invert_yaxis()
    for i, (_, ms, _) in enumerate(bars):
        right.text(ms * 1.08, i, f"{ms:.3g} ms", va="center", fontsize=8)
    right.set(xscale="log", xlabel="wall time, ms (lower is better)",
              title="one neuron, 100 ms: W1 simulate, W3 gradient")
    right.set_xlim(right=max(b[1] for b in bars) * 6)
    m = res["machine"]
    fig.suptitle(f"{m['cpu']}, {m['cores']} cores ({', '.join(m['isa'])}), jax {m['jax']}, "
                 f"commit {res.get('commit', '?')}, {res['started'][:10]}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


if __name__ == "__main__":
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "bench_results.json")
    dst = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "docs", "figures", "bench.png")
    with open(src) as f:
        print(figure(json.load(f), dst))
