"""Generate the tutorial notebooks (outputs cleared) and, optionally, run them once.

    python notebooks/_build.py            # write notebooks/0*.ipynb with empty outputs
    python notebooks/_build.py 10_sbi_posterior.ipynb   # only the named notebook(s)
    python notebooks/_build.py --execute  # also run each one (not under CI) so that it
                                          # writes its figure to docs/figures/; the
                                          # executed copies are not saved

The notebooks are the source of truth once committed; this script only keeps them
consistent (same setup cell, cleared outputs, python3 kernel).
"""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def md(text):
    return new_markdown_cell(textwrap.dedent(text).strip("\n"))


def code(text):
    return new_code_cell(textwrap.dedent(text).strip("\n"))


def setup(extra_imports="", ci_note="", ci_lines=""):
    """The shared first code cell: imports, the CI switch and where figures go."""
    return code(
        f"""
        import os
        import tempfile
        from pathlib import Path

        import numpy as np
        import matplotlib.pyplot as plt
        import jax.numpy as jnp

        import hhjax
        {extra_imports}
        %matplotlib inline

        CI = bool(os.environ.get("CI"))
        # Under CI (tests/test_notebooks.py sets CI=1) figures go to a temporary folder rather
        # than docs/figures, and {ci_note}
        FIGDIR = Path(tempfile.mkdtemp()) if CI else Path("..", "docs", "figures")
        {ci_lines}
        """
    )


# --------------------------------------------------------------------------------------
# 01 — seed 000: Case Studies in Neural Data Analysis, "The Hodgkin-Huxley model"
# --------------------------------------------------------------------------------------

NB01 = [
    md(
        """
        # 01 · Hodgkin–Huxley basics

        Reproduces **seed 000**: the *Case Studies in Neural Data Analysis* module
        "The Hodgkin-Huxley model" (`content/A02/HH.ipynb`, function `HH(I0, T0)` from
        `HH_functions.py`), with `hhjax` doing the simulation. We follow its five parts: the
        code, rest at `I0 = 0`, repetitive spiking at `I0 = 10`, and the gates, conductances and
        currents during one spike, and answer every **Q:** box of the original in prose.
        """
    ),
    setup(
        extra_imports="from hhjax.analysis import conductances, currents, resting_state, spike_times\n"
        "        from hhjax.plot import plot_trace, save",
        ci_note="nothing else changes: every run here is\n        # 10 000 Euler steps, "
        "so there is no size to reduce.",
    ),
    md(
        """
        ## Part 1: the HH code

        > **Q:** Examine this code. Can you make sense of it? Can you identify the gating
        > variables? The rate functions? The equations that define the dynamics?

        *Answer.* `m`, `h` and `n` are the **gating variables**: `m` activates and `h`
        inactivates the sodium conductance, `n` activates the potassium conductance. `alphaM`,
        `betaM`, `alphaH`, `betaH`, `alphaN`, `betaN` are the voltage-dependent **rate
        functions** (1/ms) at which each gate opens (α) and closes (β). The four lines inside the
        loop are **forward-Euler steps** (dt = 0.01 ms) of

        $$C\\,\\frac{dV}{dt} = \\bar g_{Na} m^3 h\\,(E_{Na}-V) + \\bar g_K n^4 (E_K - V)
          + \\bar g_L (E_L - V) + I_0, \\qquad
          \\frac{dx}{dt} = \\alpha_x(V)(1-x) - \\beta_x(V)\\,x \\quad (x = m, h, n),$$

        with C = 1 µF/cm² left implicit. The reversal potentials are written relative to rest
        (`ENa - (V+65)`), so in absolute terms E_Na = 115 − 65 = 50 mV, E_K = −12 − 65 = −77 mV
        and E_L = 10.6 − 65 = −54.4 mV. That is `hhjax.presets.SEED000` (NEURON's `hh` values with
        E_L = −54.4 mV). The rate functions (printed in the course's `HH_functions.py`, not on
        the seed page) are the classic HH rates in the −65 mV convention, which is what
        `hhjax.models.hh_rates` implements. `method="euler"` updates every variable from the
        old state, exactly like the loop, and `y0` is the seed's `V[0], m[0], h[0], n[0]`.
        """
    ),
    code(
        """
        P = hhjax.presets.SEED000
        Y0 = hhjax.HHState(v=-70.0, m=0.05, h=0.54, n=0.34)  # the seed's V[0], m[0], h[0], n[0]


        def HH(I0, T0):
            \"\"\"The seed's HH(I0, T0): forward Euler, dt = 0.01 ms, from the seed's initial state.\"\"\"
            return hhjax.simulate(P, I0, duration=T0, dt=0.01, method="euler", y0=Y0)


        P
        """
    ),
    md(
        """
        As a check, here is the seed's loop re-typed in NumPy (rates from the course's
        `HH_functions.py`), against `HH` above. hhjax works in float32 by default, so agreement
        to a few thousandths of a mV is what to expect.
        """
    ),
    code(
        """
        def seed_HH(I0, T0, dt=0.01):
            aM = lambda V: (2.5 - 0.1 * (V + 65)) / (np.exp(2.5 - 0.1 * (V + 65)) - 1)
            bM = lambda V: 4 * np.exp(-(V + 65) / 18)
            aH = lambda V: 0.07 * np.exp(-(V + 65) / 20)
            bH = lambda V: 1 / (np.exp(3.0 - 0.1 * (V + 65)) + 1)
            aN = lambda V: (0.1 - 0.01 * (V + 65)) / (np.exp(1 - 0.1 * (V + 65)) - 1)
            bN = lambda V: 0.125 * np.exp(-(V + 65) / 80)
            T = int(np.ceil(T0 / dt))
            V, m, h, n = (np.zeros(T) for _ in range(4))
            V[0], m[0], h[0], n[0] = -70.0, 0.05, 0.54, 0.34
            for i in range(T - 1):
                V[i + 1] = V[i] + dt * (120 * m[i]**3 * h[i] * (115 - (V[i] + 65))
                                        + 36 * n[i]**4 * (-12 - (V[i] + 65))
                                        + 0.3 * (10.6 - (V[i] + 65)) + I0)
                m[i + 1] = m[i] + dt * (aM(V[i]) * (1 - m[i]) - bM(V[i]) * m[i])
                h[i + 1] = h[i] + dt * (aH(V[i]) * (1 - h[i]) - bH(V[i]) * h[i])
                n[i + 1] = n[i] + dt * (aN(V[i]) * (1 - n[i]) - bN(V[i]) * n[i])
            return V


        ref = seed_HH(10.0, 100.0)
        ours = np.asarray(HH(10.0, 100.0).v)[: ref.size]  # the seed keeps T0/dt samples, hhjax one more (t = T0)
        print(f"max |V_hhjax - V_seed| over 100 ms at I0 = 10 (seven spikes): {np.abs(ours - ref).max():.4f} mV")
        """
    ),
    md(
        """
        ## Part 2: low input current, `I0 = 0`, for `T0 = 100` ms
        """
    ),
    code(
        """
        tr0 = HH(0.0, 100.0)
        fig = plot_trace(tr0, panels=("v", "gates"), title="I0 = 0")
        """
    ),
    md(
        """
        > **Q:** What are the dynamics of the voltage resulting from this simulation?

        *Answer.* The seed's initial state is not an equilibrium, so V first relaxes: it rises
        from −70 mV, overshoots slightly to about −64.5 mV near 9 ms, dips back and settles at
        about −65 mV within ~30 ms, where it stays. There is no spike.

        > **Q:** What are the dynamics of the gating variables (`m`, `h`, `n`)?

        *Answer.* They too relax to constants. `m` drops from 0.05 to ~0.03 in the first
        fraction of a millisecond (it is the fastest gate and −70 mV is below its steady state),
        then follows V up to ~0.053. `h` rises slowly from 0.54 to ~0.60 and `n` drifts from 0.34
        down to ~0.31 and back up to ~0.318: both are slow gates that follow the small voltage
        transient smoothly.

        > **Q:** What are the final values (after the 100 ms of simulation) of `V`, `m`, `h`,
        > and `n`?

        *Answer.* See the table below: V ≈ −65.00 mV, m ≈ 0.0529, h ≈ 0.596, n ≈ 0.318. They match
        the fixed point that `hhjax.analysis.resting_state` computes directly (Newton on the
        steady-state current–voltage relation) to well under 0.01 mV and 10⁻³ in the gates.
        """
    ),
    code(
        """
        final = hhjax.final_state(tr0)
        rest = resting_state(P)
        print(f"{'':3s} {'after 100 ms':>13s} {'resting_state':>14s}")
        for name in ("v", "m", "h", "n"):
            print(f"{name:3s} {float(getattr(final, name)):13.4f} {float(getattr(rest, name)):14.4f}")
        """
    ),
    md(
        """
        **Observation for Part 2.** At `I0 = 0` the dynamics approach a *fixed point*, a single
        point (V, m, h, n) ≈ (−65, 0.053, 0.596, 0.318) in the four-dimensional state space.

        ## Part 3: high input current, `I0 = 10`
        """
    ),
    code(
        """
        tr = HH(10.0, 100.0)
        sp = spike_times(tr.t, tr.v)
        times = np.asarray(sp.times[: int(sp.count)])
        print(f"{int(sp.count)} spikes at", np.round(times, 2), "ms")
        print(f"interspike interval {np.diff(times).mean():.2f} ms -> {1000 / np.diff(times).mean():.0f} Hz")
        fig = plot_trace(tr, panels=("v",), title="I0 = 10")
        """
    ),
    md(
        """
        > **Q:** What happens to the dynamics?

        *Answer.* The model **fires repeatedly**: seven spikes in 100 ms, the first at ~2.7 ms
        and then regularly every ~14.6 ms (about 68 Hz), each overshooting to about +30 mV and
        followed by an afterhyperpolarisation to about −75 mV. The fixed point still exists but
        has lost its stability; the trajectory now circles a limit cycle (see notebook 03).

        Now zoom on the spike near 47 ms. `plot_trace` draws voltage, gates, conductances and
        currents on **linked time axes** (`sharex`, the seed's ASIDE), so zooming or panning one
        panel moves them all.
        """
    ),
    code(
        """
        fig_spike = plot_trace(tr, P, xlim=(42, 56), title="One spike (I0 = 10), seed 000 Parts 3–5")
        """
    ),
    code(
        """
        _ = save(fig_spike, FIGDIR / "nb01_spike.png", dpi=100)
        """
    ),
    md(
        """
        > **Q:** Describe how the gates swing open and closed during a spike.

        *Answer.* As V starts to climb, `m` (fast) swings open from ~0.1 to almost 1 within
        about half a millisecond; this is the regenerative upstroke. `h` (slow) then closes
        from ~0.45 to ~0.07 and `n` (slow) opens from ~0.4 to ~0.75; together they end the
        spike. On the way down `m` snaps shut first; `h` and `n` recover over the next ~10 ms,
        which is why the next spike has to wait (refractoriness and the afterhyperpolarisation
        while `n` is still high).

        > **Q:** Where do these terms (`gNa = gNa0*m**3*h`, `gK = gK0*n**4`, `gL = gL0`) come
        > from?

        *Answer.* From the HH current equation: each conductance is its maximal value times the
        fraction of open channels. A Na⁺ channel conducts only when its three activation gates
        (`m`) are open *and* its inactivation gate (`h`) is not closed, probability m³h; a K⁺
        channel needs four `n` gates, probability n⁴. The leak has no gates, so it is constant.
        `hhjax.analysis.conductances(P, trace)` returns exactly these.

        > **Q:** How do the conductances evolve during a spike?

        *Answer.* g_Na rises first and fast, from almost 0 to a peak of ~22 mS/cm² at the top
        of the spike, and falls back within ~2 ms as `h` closes and `m` shuts. g_K rises later
        and more slowly (peak ~11 mS/cm² during the downstroke) and decays over several ms,
        outlasting the spike and causing the afterhyperpolarisation. g_L stays at 0.3 mS/cm².

        > **Q:** How do the *currents* evolve during a spike? (the seed repeats the conductance
        > question here)

        *Answer.* hhjax uses the physiological convention, outward positive, I = g (V − E);
        the seed plots `g*(E - V)`, inward positive, i.e. the mirror image
        (`-currents(...)`). The sodium current is a large inward (negative) pulse during the
        upstroke and peak, reaching about −690 µA/cm² early in the downstroke; the potassium
        current is outward (peak about +720 µA/cm²), arrives later, lasts longer and pulls V
        back down; the leak current is tiny on this scale. (The y-range of each panel covers the
        whole 100 ms run, whose first spike, starting from the seed's initial state, is larger.)
        """
    ),
    md(
        """
        ## The dip in I_Na near 47 ms

        > **Q:** You may notice a small, transient decrease in the sodium current `INa` near
        > 47 ms. What causes this?

        *Answer.* I_Na = g_Na · (V − E_Na) is a product. At the spike peak V comes close to
        E_Na = 50 mV, so the **driving force E_Na − V shrinks** (from ~40 mV to ~19 mV) faster
        than g_Na is still growing: the magnitude of I_Na falls although the channels keep
        opening. As V levels off at its peak the driving force stops shrinking, g_Na's growth
        wins again, and once V turns down the growing driving force lifts |I_Na| to its main
        maximum; only then does the closing of `h` (and the shutting of `m`) make g_Na, and
        with it I_Na, collapse. The numbers below show it: |I_Na| reaches a first
        maximum at ~46.9 ms, falls to a local minimum at ~47.0 ms while g_Na keeps rising (its
        peak is at ~47.2 ms), i.e. just before the voltage peak (~47.1 ms) where E_Na − V is
        smallest, and then rises to its main maximum at ~47.7 ms.
        """
    ),
    code(
        """
        t = np.asarray(tr.t)
        v = np.asarray(tr.v)
        g_na = np.asarray(conductances(P, tr)["na"])
        i_in = -np.asarray(currents(P, tr)["na"])  # inward positive, as the seed plots it
        win = (t > 46.5) & (t < 48.0)
        k = np.flatnonzero(win)
        d = np.diff(i_in[k])
        turns = k[1:-1][np.sign(d[:-1]) != np.sign(d[1:])]
        print("local extrema of -I_Na (inward) in 46.5-48 ms:", np.round(t[turns], 2), "ms")
        print("V peak at", round(float(t[k][v[k].argmax()]), 2), "ms; g_Na peak at",
              round(float(t[k][g_na[k].argmax()]), 2), "ms\\n")
        print(f"{'t (ms)':>7s} {'V (mV)':>8s} {'g_Na':>7s} {'E_Na-V':>7s} {'-I_Na':>7s}")
        for j in k[(t[k] >= 46.80) & (t[k] <= 47.25)][::3]:
            print(f"{t[j]:7.2f} {v[j]:8.2f} {g_na[j]:7.2f} {P.e_na - v[j]:7.2f} {i_in[j]:7.1f}")
        """
    ),
    code(
        """
        fig = plot_trace(tr, P, panels=("v", "conductances", "currents"), xlim=(46.4, 48.4),
                         title="The I_Na dip: V approaches E_Na while g_Na still rises")
        fig.axes[0].axhline(P.e_na, color="tab:pink", ls="--", lw=1, label="E_Na")
        fig.axes[0].legend(loc="lower right", fontsize=8)
        for ax in fig.axes:
            for tt in t[turns][:2]:
                ax.axvline(tt, color="0.6", lw=0.8, ls=":")
        """
    ),
    md(
        """
        In the top panel the gap between V and the dashed E_Na line *is* the driving force; it
        is narrowest exactly where the current (bottom) dips, while g_Na (middle) is still on its
        way up. The effect is a property of the equations, not of the Euler step: with
        `method="rk4"` the extrema fall at the same times (46.91, 47.02, 47.74 ms).
        """
    ),
]


# --------------------------------------------------------------------------------------
# 02 — seed 001: reduced two-variable model with ipywidgets
# --------------------------------------------------------------------------------------

NB02 = [
    md(
        """
        # 02 · Reduced model explorer

        Reproduces **seed 001**: the interactive "Hodgkin-Huxley model" page whose `HH_model(C,
        Gna, Gk, Gleak, Iin)` simulates a two-variable reduction of HH and is driven by
        `ipywidgets` sliders. Here the model is `hhjax.presets.REDUCED`:

        $$C\\frac{dV}{dt} = -g_{Na}\\,m_\\infty(V)^3\\,(0.89 - 1.1n)(V-E_{Na}) - g_K n^4 (V-E_K)
          - g_L (V - E_L) + I, \\qquad \\frac{dn}{dt} = \\frac{n_\\infty(V) - n}{\\tau_n}$$

        with E_Na = 50, E_K = −80, E_L = −65 mV, m∞ = 1/(1+exp((−40−V)/7)),
        n∞ = 1/(1+exp((−45−V)/15)) and τ_n = 10 ms. (The seed's comments say −77 and −54 mV for
        E_K and E_leak; its code uses −80 and −65, and so do we.) Like the seed: forward Euler,
        dt = 0.5 ms, 1000 ms, starting from V = E_leak = −65 mV and n = 0. The seed's
        `!pip install interact` / `interactive` lines install unrelated packages and are not
        needed: `interact` comes from `ipywidgets`.

        Without a running kernel the sliders do nothing, so a **static gallery** of the model's
        regimes follows at the end.
        """
    ),
    setup(
        extra_imports="import dataclasses\n        import time\n\n        import jax\n"
        "        from hhjax import ReducedState\n        from hhjax.analysis import spike_times\n"
        "        from hhjax.plot import plot_trace, save",
        ci_note="nothing else changes: a run is only\n        # 2000 Euler steps.",
    ),
    md(
        """
        ## One compiled function for every slider position

        `run(params, i_in)` is jitted once. The parameters (a `ReducedParams` pytree) and the
        current are *traced* arguments, so new slider values only change the numbers fed to the
        compiled code; only the durations and the method, which fix array sizes, are static. The
        counter increments only when JAX traces (compiles) the function.
        """
    ),
    code(
        """
        T_END, DT = 1000.0, 0.5
        Y0 = ReducedState(v=-65.0, n=0.0)  # the seed's V = Eleak, n = 0
        n_compiles = 0


        @jax.jit
        def run(params, i_in):
            global n_compiles
            n_compiles += 1  # a Python side effect: it runs only while JAX traces the function
            return hhjax.simulate(params, hhjax.stimulus.constant(i_in), duration=T_END, dt=DT,
                                  method="euler", y0=Y0)


        def reduced_params(C, Gna, Gk, Gleak):
            \"\"\"The seed's slider values as a ReducedParams (floats, so the jit signature never changes).\"\"\"
            return dataclasses.replace(hhjax.presets.REDUCED, c_m=float(C), g_na=float(Gna),
                                       g_k=float(Gk), g_l=float(Gleak))


        for label, args in (("first call (compiles)", (1.0, 2.0, 1.44, 0.2, 2.0)),
                            ("second call, new values", (1.3, 2.5, 1.0, 0.3, 4.5))):
            t0 = time.perf_counter()
            trace = run(reduced_params(*args[:4]), float(args[4]))
            trace.v.block_until_ready()
            print(f"{label:26s} {1e3 * (time.perf_counter() - t0):8.1f} ms   compilations so far: {n_compiles}")
        assert n_compiles == 1, "moving a slider must not recompile"
        """
    ),
    md(
        """
        The second call, with every parameter and the current changed, costs a few
        milliseconds and no compilation. As a check, the seed's own loop (re-typed below) gives
        the same voltage trace to float32 rounding.
        """
    ),
    code(
        """
        def seed_HH_model(C, Gna, Gk, Gleak, Iin):
            \"\"\"Seed 001's loop (without the plotting), returning V.\"\"\"
            dt, t_end = 0.5, 1000
            time_ = int(t_end / dt)
            Ena, Ek, Eleak, kn, km, tau, Vn = 50.0, -80.0, -65.0, 15.0, 7.0, 10.0, -45.0
            n = np.zeros(time_)
            V = Eleak * np.ones(time_)
            for t in range(1, time_):
                minf = 1 / (1 + np.exp((-40.0 - V[t - 1]) / km))
                ninf = 1 / (1 + np.exp((Vn - V[t - 1]) / kn))
                h = 0.89 - 1.1 * n[t - 1]
                dvdt = (1 / C) * (-Gna * minf**3 * h * (V[t - 1] - Ena) - Gk * n[t - 1]**4 * (V[t - 1] - Ek)
                                  - Gleak * (V[t - 1] - Eleak) + Iin)
                V[t] = V[t - 1] + dvdt * dt
                n[t] = n[t - 1] + (1 / tau) * (ninf - n[t - 1]) * dt
            return V


        for args in ((1.0, 2.0, 1.44, 0.2, 2.0), (1.0, 2.0, 1.44, 0.2, 5.0)):
            ref = seed_HH_model(*args)
            ours = np.asarray(run(reduced_params(*args[:4]), args[4]).v)[: ref.size]
            print(f"sliders {args}: max |dV| = {np.abs(ours - ref).max():.1e} mV")
        print("compilations so far:", n_compiles)
        """
    ),
    md(
        """
        ## The explorer

        Same sliders, ranges and defaults as the seed. The seed used `interact_manual` (a
        "Run" button); a run now takes milliseconds, so plain `interact` re-simulates when a
        slider is released (`continuous_update=False`). If `ipywidgets` is not installed the
        cell just draws the default setting.
        """
    ),
    code(
        """
        def show(C=1.0, Gna=2.0, Gk=1.44, Gleak=0.2, Iin=2.0):
            tr = run(reduced_params(C, Gna, Gk, Gleak), float(Iin))
            n_spikes = int(tr.spike_count)
            status = "diverged (reduce C or the conductances)" if bool(tr.diverged) else f"{n_spikes} spikes"
            fig = plot_trace(tr, panels=("v",), title=f"C={C}, gNa={Gna}, gK={Gk}, gLeak={Gleak}, I={Iin}: {status}")
            fig.axes[0].set_ylim(-100, 100)
            plt.show()


        try:
            import ipywidgets as widgets
        except ImportError:
            widgets = None

        if widgets is None:
            print("ipywidgets is not installed: showing the default setting (see the gallery below).")
            show()
        else:
            def slider(value, lo, hi, description):
                return widgets.FloatSlider(value=value, min=lo, max=hi, step=0.1, continuous_update=False,
                                           style={"description_width": "initial"}, description=description)

            widgets.interact(
                show,
                C=slider(1.0, 0.1, 2.0, "C membrane capacitance"),
                Gna=slider(2.0, 0.0, 5.0, "gNa conductance"),
                Gk=slider(1.44, 0.0, 5.0, "gK conductance"),
                Gleak=slider(0.2, 0.0, 1.0, "gLeak conductance"),
                Iin=slider(2.0, 0.0, 10.0, "Input current"),
            )
        print("compilations so far:", n_compiles)
        """
    ),
    md(
        """
        ## A gallery of regimes (for readers without a kernel)

        Six slider settings, simulated in **one batched call**: every field of `ReducedParams`
        and the current may be an array, and the batch is simulated in parallel.

        * **rest** — the seed's defaults (I = 2): V settles at a depolarised but stable
          −56 mV; the default setting does not spike.
        * **single spike** — I = 3: one spike at onset (n starts at 0, so Na⁺ is fully
          available), then a stable fixed point near −53 mV.
        * **tonic spiking** — I = 5: regular firing, ~34 spikes in 1 s.
        * **depolarisation block** — gK = 0.5, I = 10: one spike, then V is stuck near −28 mV,
          where Na⁺ is inactivated (h = 0.89 − 1.1 n is small) and weak K⁺ cannot repolarise.
        * **leak shunt** — gLeak = 0.5, I = 5: the large leak clamps V below threshold.
        * **Euler artefact** — gNa = 5, I = 10: the first spike peaks near +100 mV, far above
          E_Na = 50 mV, which the real dynamics can never do. dt = 0.5 ms is too coarse for the fast upstroke; the same
          setting with `method="exp_euler"` stays below E_Na (printed below).
        """
    ),
    code(
        """
        settings = [  # (title, C, gNa, gK, gLeak, I)
            ("rest (seed defaults, I = 2)", 1.0, 2.0, 1.44, 0.2, 2.0),
            ("single spike (I = 3)", 1.0, 2.0, 1.44, 0.2, 3.0),
            ("tonic spiking (I = 5)", 1.0, 2.0, 1.44, 0.2, 5.0),
            ("depolarisation block (gK = 0.5, I = 10)", 1.0, 2.0, 0.5, 0.2, 10.0),
            ("leak shunt (gLeak = 0.5, I = 5)", 1.0, 2.0, 1.44, 0.5, 5.0),
            ("Euler artefact (gNa = 5, I = 10)", 1.0, 5.0, 1.44, 0.2, 10.0),
        ]
        C, Gna, Gk, Gleak, amps = (jnp.asarray(col) for col in np.array([s[1:] for s in settings]).T)
        batch = dataclasses.replace(hhjax.presets.REDUCED, c_m=C, g_na=Gna, g_k=Gk, g_l=Gleak)
        gallery = hhjax.simulate(batch, hhjax.stimulus.constant(amps), duration=T_END, dt=DT,
                                 method="euler", y0=Y0)

        fig_gallery, axes = plt.subplots(3, 2, figsize=(9, 7.5), sharex=True, sharey=True)
        for i, (ax, s) in enumerate(zip(axes.ravel(), settings)):
            plot_trace(gallery, panels=("v",), index=i, axes=[ax], title=f"{s[0]}: {int(gallery.spike_count[i])} spike(s)")
            ax.set_ylim(-100, 110)
            ax.title.set_fontsize(9)
        for ax in axes[:-1].ravel():
            ax.set_xlabel("")
        fig_gallery.tight_layout()

        exp = hhjax.simulate(reduced_params(1.0, 5.0, 1.44, 0.2), 10.0, duration=T_END, dt=DT,
                             method="exp_euler", y0=Y0)
        print(f"gNa = 5, I = 10: peak V {float(gallery.v[5].max()):.1f} mV with Euler, "
              f"{float(exp.v.max()):.1f} mV with exp_euler (E_Na = 50 mV)")
        """
    ),
    code(
        """
        _ = save(fig_gallery, FIGDIR / "nb02_gallery.png", dpi=100)
        """
    ),
]


# --------------------------------------------------------------------------------------
# 03 — seed 002: Bonaccorso, double impulse, phase plane, limit cycles
# --------------------------------------------------------------------------------------

NB03 = [
    md(
        """
        # 03 · Phase plane and limit cycles

        Reproduces **seed 002**: G. Bonaccorso, "Hodgkin-Huxley spiking neuron model in Python"
        (2017): the 1952 model driven by a double impulse, and its trajectories in the V–n and
        V–m planes. The seed page shows its equations, stimulus and plots only as images, **no
        numbers**; the values used here come from the GIST it links: the 1952 convention (rest at
        0 mV; E_Na = 115, E_K = −12, E_L = 10.613 mV; 120/36/0.3 mS/cm²; 1 µF/cm²;
        `hhjax.presets.HH1952`), the stimulus `Id(t)` = 150 µA/cm² for 0 < t < 1 ms and 50 µA/cm²
        for 10 < t < 11 ms, the initial state with every gate at steady state for V = 0, and
        `T = np.linspace(0, 50, 10000)` integrated by `odeint`. We use hhjax's RK4 at dt = 0.005 ms
        (10 000 steps over 50 ms). We then go further than the seed: a true limit cycle under
        constant current, and the nullclines of seed 001's reduced model.
        """
    ),
    setup(
        extra_imports="import dataclasses\n\n        import jax\n        from hhjax import ReducedState\n"
        "        from hhjax.analysis import resting_state, spike_times\n"
        "        from hhjax.models.reduced import n_inf\n"
        "        from hhjax.plot import plot_phase, plot_trace, save\n"
        "        from hhjax.solvers import derivatives",
        ci_note="the constant-current run that traces the\n        # limit cycle is "
        "shortened from 200 ms to 100 ms (three cycles remain after the 50 ms transient).",
        ci_lines="T_CYCLE = 100.0 if CI else 200.0  # ms",
    ),
    code(
        """
        P = hhjax.presets.HH1952
        stim = hhjax.stimulus.pulses([150.0, 50.0], [0.0, 10.0], [1.0, 1.0])
        # y0=0.0: gates at steady state for V = 0. In the 1952 convention rest is 0 mV and spikes
        # peak near +100 mV, so count upward crossings of +50 mV (simulate counts them on the fly).
        tr = hhjax.simulate(P, stim, duration=50.0, dt=0.005, method="rk4", y0=0.0, spike_threshold=50.0)
        print(f"{int(tr.spike_count)} spikes; peak V {float(tr.v.max()):.1f} mV; V at 50 ms {float(tr.v[-1]):.3f} mV")
        fig = plot_trace(tr, panels=("stimulus", "v", "gates"), stimulus=stim,
                         title="Double impulse (seed 002 / gist): 150 µA/cm² at 0–1 ms, 50 at 10–11 ms")
        """
    ),
    md(
        """
        Both impulses fire a spike. The second one is only a third of the first but arrives
        10 ms later, when the neuron has largely recovered (h back to ~0.54, n down to ~0.36),
        so it is still above threshold. After the second spike V returns to its resting value
        of 0 mV.

        ## V–n and V–m trajectories
        """
    ),
    code(
        """
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
        plot_phase(tr, "v", "n", ax=axes[0], color="tab:green")
        plot_phase(tr, "v", "m", ax=axes[1], color="tab:red")
        axes[0].set_title("V–n"); axes[1].set_title("V–m")
        fig.tight_layout()
        """
    ),
    md(
        """
        Each spike is a loop, run anticlockwise in these axes. In V–n the upstroke runs right along
        the bottom (n barely moves while V shoots up), n then climbs while V falls along the
        top, V drops into the afterhyperpolarisation at high n (left edge) and n slowly decays
        back towards 0.32. In V–m, m rises steeply with V, saturates near 1 at the peak and falls
        back with V; the loop's width is m's short lag behind V. This is the cycle the
        seed describes: steady state, potential increase, spike, potential decrease, steady
        state.

        Strictly speaking these are **not limit cycles**: with brief impulses each loop ends at the
        stable resting fixed point (V = 0 mV, n ≈ 0.318), and the second loop is smaller because it
        starts from a not quite recovered state. A limit cycle needs a *sustained* drive: under a
        constant current above rheobase the fixed point loses stability and every trajectory
        winds onto the same closed orbit.

        ## A real limit cycle: constant current
        """
    ),
    code(
        """
        DT_CYCLE = 0.01
        cyc = hhjax.simulate(P, 10.0, duration=T_CYCLE, dt=DT_CYCLE, y0=0.0)  # default method, exp_euler
        sp = spike_times(cyc.t, cyc.v, threshold=50.0, max_spikes=32)
        isi = np.diff(np.asarray(sp.times[: int(sp.count)]))
        print(f"{int(sp.count)} spikes; interspike intervals (ms):", np.round(isi, 3))

        T_SKIP = 50.0  # discard the transient
        keep = int(T_SKIP / DT_CYCLE)
        steady = dataclasses.replace(cyc, t=cyc.t[keep:],
                                     state=jax.tree_util.tree_map(lambda x: x[..., keep:], cyc.state))
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
        plot_phase(cyc, "v", "n", ax=axes[0], color="0.75", lw=0.8, label="whole run")
        plot_phase(steady, "v", "n", ax=axes[0], color="tab:green", lw=1.5, label=f"after {T_SKIP:.0f} ms")
        plot_phase(steady, "v", "m", ax=axes[1], color="tab:red", lw=1.5)
        axes[0].legend(fontsize=8); axes[0].set_title("V–n, I = 10 µA/cm²"); axes[1].set_title("V–m")
        fig.tight_layout()
        """
    ),
    md(
        """
        The first interspike interval is longer (the trajectory starts at rest), after which the
        period settles to ~14.6 ms (68 Hz) and every later cycle lies on the same closed curve:
        a stable limit cycle. (This run uses hhjax's default `exp_euler` method, accurate
        enough at dt = 0.01 ms and cheaper to compile than RK4; `jax.tree_util.tree_map` over
        `trace.state` slices every recorded variable at once.)

        ## Nullclines of the reduced model (seed 001)

        The two-variable model of notebook 02 lives in the V–n plane, so its whole phase
        portrait can be drawn. The **V-nullcline** is where dV/dt = 0 (computed here by
        evaluating hhjax's own right-hand side, `hhjax.solvers.derivatives`, on a grid and
        contouring the zero level); the **n-nullcline** is n = n∞(V). Fixed points are their
        intersections; `resting_state` finds the one near rest.
        """
    ),
    code(
        """
        R = hhjax.presets.REDUCED
        model = hhjax.model_of(R)
        vg, ng = jnp.meshgrid(jnp.linspace(-90.0, 60.0, 301), jnp.linspace(0.0, 1.0, 201))


        def phase_portrait(ax, i_in, duration=200.0):
            dv = derivatives(model, R, ReducedState(v=vg, n=ng), i_in).v
            ax.contour(np.asarray(vg), np.asarray(ng), np.asarray(dv), levels=[0.0], colors="k", linewidths=1.2)
            ax.plot([], [], "k", lw=1.2, label="dV/dt = 0")
            ax.plot(np.asarray(vg[0]), np.asarray(n_inf(R, vg[0])), "tab:blue", lw=1.2, label="dn/dt = 0")
            traj = hhjax.simulate(R, i_in, duration=duration, dt=0.05, method="euler", y0=ReducedState(v=-65.0, n=0.0))
            plot_phase(traj, "v", "n", ax=ax, color="tab:orange", lw=1.2, label="trajectory")
            fp = resting_state(R, i_in)
            ax.plot(float(fp.v), float(fp.n), "o", mfc="w", mec="k", label="fixed point")
            ax.set_ylim(0, 1); ax.set_xlim(-90, 60)
            ax.set_title(f"reduced model, I = {i_in:g}: {int(traj.spike_count)} spikes in {duration:.0f} ms")
            return fp


        fig_nc, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
        for ax, i_in in zip(axes, (2.0, 5.0)):
            fp = phase_portrait(ax, i_in)
            print(f"I = {i_in}: fixed point V = {float(fp.v):.2f} mV, n = {float(fp.n):.3f}")
        axes[0].legend(fontsize=8, loc="upper left")
        fig_nc.tight_layout()
        """
    ),
    md(
        """
        At I = 2 (the seed's default) the trajectory from (−65 mV, n = 0) rises to the steep
        left branch of the V-nullcline and settles at the stable fixed point where the two
        nullclines cross (−56 mV): no spike. At I = 5 the V-nullcline is lifted and the crossing
        (−44 mV) lies on its hump, where the fixed point is unstable. After one large first spike
        (n starts at 0, so h = 0.89 − 1.1 n is high and Na⁺ fully available) the trajectory
        settles on a limit cycle around the fixed point: V shoots right along the bottom while n
        is low (upstroke), n grows (and h with it shrinks) as V comes back along the top
        (downstroke), and n decays on the left until the next upstroke. (Forward Euler at
        dt = 0.05 ms here, finer than the seed's 0.5 ms, to draw a smooth curve.)
        """
    ),
    code(
        """
        _ = save(fig_nc, FIGDIR / "nb03_nullclines.png", dpi=100)
        """
    ),
]


# --------------------------------------------------------------------------------------
# 04 — seed 003: Taehoon Kim's slides, Dayan & Abbott, the 1–3 ms pulse
# --------------------------------------------------------------------------------------

NB04 = [
    md(
        """
        # 04 · Pulse response (Dayan & Abbott parameters)

        Reproduces **seed 003**: Taehoon Kim, "7. Hodgkin-Huxley model coding" (slides; data from
        Dayan & Abbott's *Theoretical Neuroscience*, code adapted from Bonaccorso). Parameters
        g_K = 36, g_Na = 120, g_L = 0.3 mS/cm², C = 1 µF/cm², V_K = −77, V_Na = 50,
        V_L = −54.387 mV (`hhjax.presets.DAYAN_ABBOTT`); a 10 µA/cm² pulse for 1 < t < 3 ms
        (`hhjax.stimulus.pulse(10., 1., 2.)`); initial state (V, n, m, h) = (−65, 0.317, 0.05, 0.6);
        0–50 ms with `T = np.linspace(0, 50, 10000)` and `odeint`. We use RK4 at dt = 0.005 ms.

        Two slips in the seed's code:

        1. The parameters define `Vl = -54.387`, but `compute_derivatives` uses `VL`, so the code
           as written stops with `NameError: name 'VL' is not defined` at the first call. (We
           rename it to run the seed's code below.)
        2. Its `beta_h` is `1.0 / (1 + np.exp(-(V+35)))`, dropping the `/10` of the formula on
           its own slide, β_h = 1/(1 + exp(−0.1(V + 35))). The last section shows what that does.

        (The slide *formula* for α_h, 0.07 exp((V + 65)/20), also lost a minus sign; the code's
        `0.07 * np.exp(-(V+65)/20)` is the correct one.)
        """
    ),
    setup(
        extra_imports="import dataclasses\n\n        import jax\n"
        "        from hhjax import HHState\n        from hhjax.analysis import resting_state, spike_times\n"
        "        from hhjax.plot import plot_trace, save",
        ci_note="nothing else changes: each run is 10 000\n        # RK4 steps, so there "
        "is no size to reduce.",
    ),
    code(
        """
        P = hhjax.presets.DAYAN_ABBOTT
        stim = hhjax.stimulus.pulse(10.0, 1.0, 2.0)             # 10 µA/cm² for 1 <= t < 3 ms
        Y0 = HHState(v=-65.0, m=0.05, h=0.6, n=0.317)           # the seed's Y = (V, n, m, h)
        DT = 0.005


        def run(params):
            return hhjax.simulate(params, stim, duration=50.0, dt=DT, method="rk4", y0=Y0)


        tr = run(P)
        sp = spike_times(tr.t, tr.v)
        print(f"{int(sp.count)} spike, crossing 0 mV at {float(sp.times[0]):.2f} ms; peak {float(tr.v.max()):.1f} mV")
        fig = plot_trace(tr, panels=("stimulus", "v"), stimulus=stim,
                         title="Stimulus (current density) and neuron potential with a spike")
        """
    ),
    code(
        """
        _ = save(fig, FIGDIR / "nb04_pulse_response.png", dpi=100)
        """
    ),
    md(
        """
        A 2 ms pulse of 10 µA/cm² (20 nC/cm²) is enough for one action potential: V crosses
        0 mV at ~2.9 ms, peaks at ~+40 mV, undershoots to about −76 mV and returns to rest
        (−65 mV) with a small damped ripple.

        ### Check against the seed's own code

        The seed's functions, copied with only `VL` renamed, solved by `scipy.integrate.odeint`
        on the seed's time grid. With the *formula's* β_h it should match `DAYAN_ABBOTT`; as
        written (the slip) it should match the custom model defined in the next section.
        """
    ),
    code(
        """
        try:
            from scipy.integrate import odeint
        except ImportError:
            odeint = None


        def alpha_n(V): return (0.01 * (V + 55)) / (1 - np.exp(-(V + 55) / 10))
        def beta_n(V): return 0.125 * np.exp(-(V + 65) / 80.0)
        def alpha_m(V): return (0.1 * (V + 40)) / (1 - np.exp(-(V + 40) / 10))
        def beta_m(V): return 4.0 * np.exp(-(V + 65) / 18.0)
        def alpha_h(V): return 0.07 * np.exp(-(V + 65) / 20.0)
        def beta_h(V): return 1.0 / (1 + np.exp(-(V + 35)))                # as in the seed's code
        def beta_h_formula(V): return 1.0 / (1 + np.exp(-0.1 * (V + 35)))  # as on its slide

        gK, gNa, gL, Cm, VK, VNa, VL = 36.0, 120.0, 0.3, 1.0, -77, 50, -54.387  # `Vl` renamed `VL`


        def Id(t):
            if 1.0 < t < 3.0:
                return 10.0
            return 0.0


        def seed_derivatives(bh):
            def compute_derivatives(y, t0):
                dy = np.zeros((4,))
                V, n, m, h = y
                GK = (gK / Cm) * np.power(n, 4.0)
                GNa = (gNa / Cm) * np.power(m, 3.0) * h
                GL = gL / Cm
                dy[0] = (Id(t0) / Cm) - (GK * (V - VK)) - (GNa * (V - VNa)) - (GL * (V - VL))
                dy[1] = (alpha_n(V) * (1.0 - n)) - (beta_n(V) * n)
                dy[2] = (alpha_m(V) * (1.0 - m)) - (beta_m(V) * m)
                dy[3] = (alpha_h(V) * (1.0 - h)) - (bh(V) * h)
                return dy
            return compute_derivatives


        T = np.linspace(0.0, 50.0, 10000)
        Y = np.array([-65, 0.317, 0.05, 0.6])
        seed_V = {}
        if odeint is not None:
            seed_V["formula"] = odeint(seed_derivatives(beta_h_formula), Y, T)[:, 0]
            seed_V["slip"] = odeint(seed_derivatives(beta_h), Y, T)[:, 0]
            ours = np.interp(T, np.asarray(tr.t), np.asarray(tr.v))
            print(f"formula beta_h: max |V_hhjax - V_odeint| = {np.abs(ours - seed_V['formula']).max():.3f} mV")
        else:
            print("scipy is not installed: skipping the comparison with the seed's odeint code")
        """
    ),
    md(
        """
        The remaining difference (thousandths of a mV) comes from odeint's own tolerances and
        float32.

        ## The β_h slip as a custom model

        A model in hhjax is a few pure functions of (params, state), so the slip takes a dozen
        lines: a params type (same fields as `HHParams`, registered as a pytree) and its kinetics,
        identical to the HH rates except β_h. Registering it makes `simulate`,
        `steady_state` and `resting_state` work with it unchanged.
        """
    ),
    code(
        """
        from hhjax.models import HHParams, Model, hh_rates, register


        @dataclasses.dataclass(frozen=True)
        class SlipParams(HHParams):
            \"\"\"HH parameters whose model uses seed 003's beta_h = 1 / (1 + exp(-(V + 35))).\"\"\"


        jax.tree_util.register_dataclass(
            SlipParams, data_fields=[f.name for f in dataclasses.fields(HHParams)], meta_fields=[])


        def slip_kinetics(p, v):
            a_m, b_m, a_h, _, a_n, b_n = hh_rates(p, v)
            b_h = 1.0 / (1.0 + jnp.exp(-(v + 35.0)))  # the slip: no /10
            return {name: (a / (a + b), a + b) for name, a, b in (("m", a_m, b_m), ("h", a_h, b_h), ("n", a_n, b_n))}


        def hh_channels(p, s):
            return {"na": (p.g_na * s.m**3 * s.h, p.e_na), "k": (p.g_k * s.n**4, p.e_k),
                    "l": (p.g_l * jnp.ones_like(s.v), p.e_l)}


        register(Model(name="hh_beta_h_slip", params_type=SlipParams, state_type=HHState,
                       kinetics=slip_kinetics, channels=hh_channels,
                       capacitance=lambda p: p.c_m, default_voltage=lambda p: p.v_offset))

        SLIP = SlipParams(**dataclasses.asdict(P))
        tr_slip = run(SLIP)
        if "slip" in seed_V:
            ours = np.interp(T, np.asarray(tr_slip.t), np.asarray(tr_slip.v))
            print(f"seed code as written: max |V_hhjax - V_odeint| = {np.abs(ours - seed_V['slip']).max():.3f} mV")
        """
    ),
    code(
        """
        # The seed's own NumPy rate functions (defined above), on a voltage grid.
        v_grid = np.linspace(-90.0, 20.0, 441)
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        for bh, label, style in ((beta_h_formula, "formula: 1/(1+exp(-0.1(V+35)))", "-"),
                                 (beta_h, "seed code: 1/(1+exp(-(V+35)))", "--")):
            axes[0].plot(v_grid, bh(v_grid), style, label=label)
            axes[1].plot(v_grid, alpha_h(v_grid) / (alpha_h(v_grid) + bh(v_grid)), style, label=label)
        axes[0].set_ylabel("β_h (1/ms)"); axes[1].set_ylabel("h∞")
        for ax in axes:
            ax.set_xlabel("V (mV)"); ax.axvline(-65, color="0.7", lw=0.8)
        axes[1].legend(fontsize=8)
        fig.tight_layout()
        """
    ),
    md(
        """
        Without the /10 the logistic is ten times steeper: β_h becomes a near **step function**
        of V, ≈ 0 below −40 mV and ≈ 1/ms above −30 mV. Consequences:

        * **h inactivates far more abruptly** as a function of V: nothing closes h until V passes
          about −40 mV, then it closes at the full rate at once; h∞ drops from 1 to almost 0
          within ~10 mV instead of over ~50 mV. During the spike itself V is far above −35 mV in
          both versions, so h closes at nearly the same rate (β_h ≈ 1/ms either way).
        * **At rest h∞ ≈ 1, not 0.6**: below −40 mV nothing closes h, so after the spike h keeps
          recovering past the seed's initial 0.6 towards 1. The neuron ends with more Na⁺
          available than the true model, its resting potential shifts up by about 1 mV
          (`resting_state` below) and the 50 ms trace has not settled.
        * Before the spike h *rises* (from 0.6 towards 1) instead of staying put, so the spike
          starts ~0.1 ms earlier and peaks ~2 mV higher; the large ΔV printed below is just that
          shift on the steep upstroke.
        """
    ),
    code(
        """
        fig_cmp = plot_trace(tr, panels=("v", "gates"), title="β_h as on the slide (solid) vs as in the seed's code (dashed)")
        plot_trace(tr_slip, panels=("v", "gates"), axes=fig_cmp.axes)
        n_lines = len(fig_cmp.axes[1].lines) // 2
        fig_cmp.axes[0].lines[1].set(color="tab:orange", ls="--")
        for line in fig_cmp.axes[1].lines[n_lines:]:
            line.set(ls="--")
        fig_cmp.axes[0].legend(["formula β_h", "seed code β_h"], fontsize=8, loc="upper right")
        fig_cmp.axes[1].legend(fig_cmp.axes[1].lines[:n_lines], ["m", "h", "n"], fontsize=8, loc="upper right")

        for name, trace, params in (("formula", tr, P), ("seed code", tr_slip, SLIP)):
            s = spike_times(trace.t, trace.v)
            print(f"{name:10s}: spike at {float(s.times[0]):.2f} ms, peak {float(trace.v.max()):5.1f} mV, "
                  f"min h {float(trace.h.min()):.3f}, h at 50 ms {float(trace.h[-1]):.3f}, "
                  f"V at 50 ms {float(trace.v[-1]):6.2f} mV, resting_state V {float(resting_state(params).v):6.2f} mV")
        print(f"max |ΔV| = {float(jnp.abs(tr.v - tr_slip.v).max()):.1f} mV, max |Δh| = {float(jnp.abs(tr.h - tr_slip.h).max()):.2f}")
        print("h∞(-65 mV) from hhjax.steady_state:", round(float(hhjax.steady_state(P, -65.0).h), 3), "(formula),",
              round(float(hhjax.steady_state(SLIP, -65.0).h), 3), "(seed code)")
        """
    ),
]


# --------------------------------------------------------------------------------------
# 05 — seed 004: Neuromorphic Engineering Book, pyHH, ion currents
# --------------------------------------------------------------------------------------

NB05 = [
    md(
        """
        # 05 · Ion currents during a current step

        Reproduces **seed 004**: *Neuromorphic Engineering Book*, chapter 5.3 "The Hodgkin-Huxley
        neuron model", whose Python demonstration is adapted from Scott Harden's **pyHH**. Its
        convention is the 1952 paper's: rest at 0 mV, E_Na = 115, E_K = −12 and E_leak = 10.6 mV
        (pyHH rounds the paper's 10.613), 120/36/0.3 mS/cm², C = 1 µF/cm². The model starts with
        its gates at steady state for V = 0 and is stepped by forward Euler at dt = 0.05 ms for
        5000 points (250 ms); a step of 10 µA/cm² is applied for points 2000–2999, i.e. from 100 to
        150 ms. pyHH plots `Vm - 70` (to look like a neuron resting near −70 mV) with the stimulus
        drawn on the same axis, then the gates and the ionic currents, all with `xlim(90, 160)`.
        """
    ),
    setup(
        extra_imports="import dataclasses\n\n        from hhjax.analysis import currents, spike_times\n"
        "        from hhjax.plot import plot_trace, save",
        ci_note="nothing else changes: a run is 5000\n        # Euler steps, so there is no "
        "size to reduce.",
    ),
    md(
        """
        pyHH's `Iterate` first computes the rates at the current V, then updates V with the old
        gates, then the gates with the old rates: exactly forward Euler, `method="euler"`. Its
        currents are outward positive, `INa = gNa m³h (Vm − ENa)`, the same convention as
        `hhjax.analysis.currents`, and its net current is
        **`Isum = stim − INa − IK − Ileak`** (= C dV/dt). One bookkeeping detail: pyHH stores
        `Vm` *after* each step but the currents from *before* it, both at `times[i] = i·dt`, so
        its voltage plot is shifted one step (0.05 ms) to the left; hhjax's sample k is the state
        at k·dt throughout.
        """
    ),
    code(
        """
        P = dataclasses.replace(hhjax.presets.HH1952, e_l=10.6)  # pyHH's EKleak = 10.6
        DT, N = 0.05, 5000
        stim = hhjax.stimulus.step(10.0, 100.0, 150.0)           # pyHH: stim[2000:3000] = 10
        tr = hhjax.simulate(P, stim, duration=N * DT, dt=DT, method="euler", y0=0.0)

        t = np.asarray(tr.t)
        I = {k: np.asarray(x) for k, x in currents(P, tr).items()}
        stim_t = np.where((t >= 100.0) & (t < 150.0), 10.0, 0.0)
        I_sum = stim_t - I["na"] - I["k"] - I["l"]
        sp = spike_times(tr.t, tr.v, threshold=50.0)
        print(f"{int(sp.count)} spikes at", np.round(np.asarray(sp.times[: int(sp.count)]), 2), "ms")
        """
    ),
    md(
        """
        ### Check against pyHH

        pyHH's `HHModel` class, condensed but with its arithmetic unchanged, run for the seed's
        5000 points:
        """
    ),
    code(
        """
        class HHModel:
            class Gate:
                alpha, beta, state = 0, 0, 0

                def update(self, dt):
                    self.state += dt * (self.alpha * (1 - self.state) - self.beta * self.state)

                def setInfiniteState(self):
                    self.state = self.alpha / (self.alpha + self.beta)

            ENa, EK, EKleak = 115, -12, 10.6
            gNa, gK, gKleak = 120, 36, 0.3
            m, n, h = Gate(), Gate(), Gate()
            Cm = 1

            def __init__(self, startingVoltage=0):
                self.Vm = startingVoltage
                self.UpdateGateTimeConstants(startingVoltage)
                for g in (self.m, self.n, self.h):
                    g.setInfiniteState()

            def UpdateGateTimeConstants(self, Vm):
                self.n.alpha = .01 * ((10 - Vm) / (np.exp((10 - Vm) / 10) - 1))
                self.n.beta = .125 * np.exp(-Vm / 80)
                self.m.alpha = .1 * ((25 - Vm) / (np.exp((25 - Vm) / 10) - 1))
                self.m.beta = 4 * np.exp(-Vm / 18)
                self.h.alpha = .07 * np.exp(-Vm / 20)
                self.h.beta = 1 / (np.exp((30 - Vm) / 10) + 1)

            def Iterate(self, stimulusCurrent=0, deltaTms=0.05):
                self.UpdateGateTimeConstants(self.Vm)
                self.INa = np.power(self.m.state, 3) * self.gNa * self.h.state * (self.Vm - self.ENa)
                self.IK = np.power(self.n.state, 4) * self.gK * (self.Vm - self.EK)
                self.IKleak = self.gKleak * (self.Vm - self.EKleak)
                self.Isum = stimulusCurrent - self.INa - self.IK - self.IKleak
                self.Vm += deltaTms * self.Isum / self.Cm
                for g in (self.n, self.m, self.h):
                    g.update(deltaTms)


        hh = HHModel()
        stim_py = np.zeros(N)
        stim_py[2000:3000] = 10
        Vm, INa, Isum = np.empty(N), np.empty(N), np.empty(N)
        for i in range(N):
            hh.Iterate(stimulusCurrent=stim_py[i], deltaTms=DT)
            Vm[i], INa[i], Isum[i] = hh.Vm, hh.INa, hh.Isum
        v = np.asarray(tr.v)
        print(f"max |V - Vm_pyHH|     = {np.abs(v[1:] - Vm).max():.4f} mV   (hhjax sample i+1 vs pyHH Vm[i])")
        print(f"max |I_Na - INa_pyHH| = {np.abs(I['na'][:-1] - INa).max():.3f} µA/cm² (of a peak {np.abs(INa).max():.0f})")
        print(f"max |I_sum - Isum|    = {np.abs(I_sum[:-1] - Isum).max():.3f} µA/cm²")
        """
    ),
    md(
        """
        ## pyHH's three plots (xlim 90–160 ms), on linked axes

        Top: `Vm − 70` with the stimulus, scaled the same way (`stim − 70`); middle: the gates;
        bottom: I_Na, I_K, I_leak from `hhjax.analysis.currents` and pyHH's I_sum.
        """
    ),
    code(
        """
        fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
        shifted = dataclasses.replace(tr, state=dataclasses.replace(tr.state, v=tr.v - 70.0))  # pyHH's "Vm - 70"
        plot_trace(shifted, panels=("v",), axes=axes[:1], title="Hodgkin-Huxley Neuron Model (pyHH, seed 004)")
        axes[0].plot(t, stim_t - 70.0, color="sandybrown", lw=2, label="Stimuli (Scaled)")
        axes[0].set_ylabel("Membrane Potential (mV)")
        axes[0].legend(axes[0].lines[:2], ["Vm - 70", "Stimuli (Scaled)"], loc=1, fontsize=8)
        axes[0].set_xlabel("")
        plot_trace(tr, P, panels=("gates", "currents"), axes=axes[1:], xlim=(90, 160))
        axes[1].set_ylabel("Gate state")
        axes[2].plot(t, I_sum, color="tab:orange", lw=1, label="I_sum")
        axes[2].legend(loc=1, fontsize=8)
        axes[2].set_ylabel("Current (µA/cm²)")
        fig.tight_layout()
        """
    ),
    code(
        """
        _ = save(fig, FIGDIR / "nb05_ion_currents.png", dpi=100)
        """
    ),
    md(
        """
        **What the figure shows.** The 10 µA/cm² step makes the model fire four spikes, at about
        102, 117, 131 and 146 ms (about 68 Hz), and it falls silent when the step ends at 150 ms.
        In the 0 mV convention the spikes peak near +100 mV (+27 to +37 mV after pyHH's −70 shift).

        * **Gates.** Each spike is `m` jumping to ~1, `h` closing and `n` opening; between spikes
          `h` and `n` recover only partly, which sets the firing rate.
        * **Currents** (outward positive): I_Na is a brief, large *negative* (inward) current,
          several hundred µA/cm², on the upstroke; I_K is a positive (outward), slower and longer
          current on the downstroke; I_leak is small. Before 100 ms all are constant and sum to
          ~0, because the model sits at its fixed point.
        * **I_sum** = stim − I_Na − I_K − I_leak is C dV/dt: positive during the upstroke,
          negative during the repolarisation, and exactly the small stimulus-driven ramp between
          spikes. pyHH plots it alongside the ionic currents, so its sign is the opposite of
          theirs (it is the net *inward* current that charges the membrane).
        """
    ),
]


# --------------------------------------------------------------------------------------
# 10 — simulation-based inference with sbi (issue 18), Gonçalves et al. (2020)'s HH example
# --------------------------------------------------------------------------------------

NB10 = [
    md(
        """
        # 10 · A posterior over a real cell's conductances with `sbi`

        Gonçalves et al. (2020, *eLife* 9:e56261) infer the posterior of a Pospischil-type HH
        model's parameters from an Allen recording with neural posterior estimation (NPE):
        simulate many parameter sets drawn from a prior, reduce each voltage trace to summary
        statistics, train a conditional density estimator, then condition it on the data.
        `hhjax.sbi` supplies the simulator (one batched, jit-compiled `hhjax.simulate` per call)
        and the summaries (spike count, resting potential and its std, mean, std, skewness,
        kurtosis and autocorrelation of V during the step).

        The data: `18711001.abf`, shipped in the repository's `data/recordings/` (as in
        notebook 07), the sweeps that `hhjax fit RECORDING --model pospischil` fits, cropped to
        their depolarising step (823.4–1323.4 ms; we keep 700–1450 ms). Should the file be
        missing, a synthetic "recording" of the RS preset with 0.5 mV noise stands in, and the
        notebook says so.

        We infer `g_na`, `g_k`, `g_m` and `v_t`; the other parameters stay at the fit's values.
        At the end the posterior's marginals are compared with the fit's Laplace standard
        errors. **Under `CI`** the sizes are small (a short search, 1 000 simulations, 10
        training epochs): the posterior is then wide and only shows that everything runs.
        """
    ),
    setup(
        extra_imports="import time\n\n        import torch\n"
        "        from sbi.inference import NPE\n"
        "        from torch.utils.tensorboard import SummaryWriter\n"
        "        from hhjax.recordings.cell_fit import fit_recording\n"
        "        from hhjax.sbi import GONCALVES_NAMES, goncalves_summary, prior, simulator",
        ci_note="the fit's search, the number of simulations and the\n        # training are small.",
        ci_lines="N_SIMS = 1_000 if CI else 30_000\n"
        "        FIT_SIZE = dict(generations=3, population=32, n_starts=1, steps=2) if CI else {}\n"
        "        torch.manual_seed(0)",
    ),
    md(
        """
        ## The recording and the fit (`hhjax fit`)

        `fit_recording` is the function behind `hhjax fit RECORDING --model pospischil`: it picks
        four sweeps (one subthreshold, three spiking), fits eight parameters and reports Laplace
        standard errors from the Gauss–Newton curvature of its loss.
        """
    ),
    code(
        """
        T0, T1, ON, OFF, DT = 700.0, 1450.0, 823.4, 1323.4, 0.1   # ms
        try:
            rec = hhjax.io.load_recording(hhjax.io.example_recording("18711001.abf"))
        except FileNotFoundError:
            rec = None
        if rec is not None:
            fit = fit_recording(rec, key=0, progress=False, **FIT_SIZE)
            base, sweeps = fit.params, list(fit.sweeps)
            r = rec.resample(DT)
            t = np.asarray(r.t)
            keep = (t >= T0 - 1e-6) & (t <= T1 + 1e-6)
            v_obs = np.asarray(r.v)[sweeps][:, keep]
            amps = np.array([np.asarray(r.i[k])[(t > ON + 50) & (t < OFF - 50)].mean() for k in sweeps])
            stderr = {k: float(v) for k, v in fit.stderr.items() if np.isfinite(v)}  # NaN: not identified
            print(f"recording: sweeps {sweeps}, steps {amps.round(1).tolist()} pA")
        else:
            print("18711001.abf is missing: using a synthetic recording")
            base, sweeps, amps = hhjax.presets.POSPISCHIL, [0, 1, 2, 3], np.array([-20.0, 100.0, 200.0, 300.0])
            tr = hhjax.simulate(base, hhjax.stimulus.step(amps, ON - T0, OFF - T0), duration=T1 - T0, dt=DT)
            v_obs = np.asarray(tr.v) + np.random.default_rng(0).normal(0, 0.5, tr.v.shape)
            stderr = {}
        t_obs = np.arange(v_obs.shape[-1]) * DT
        for name in ("g_na", "g_k", "g_m", "v_t", "g_l", "e_l"):
            se = stderr.get(name)
            print(f"{name:6s} {getattr(base, name):10.4g}" + (f" ± {se:.2g}" if se is not None else ""))
        """
    ),
    md(
        """
        ## Simulator, summaries and prior

        One call simulates every parameter set under all four sweeps' steps and concatenates
        the 8 summaries of each sweep (32 numbers per parameter set). The prior is uniform over
        ranges around the literature cell, inside hhjax's physiological bounds; parameter sets
        outside them would come back as NaN rows (with a warning), which sbi drops.
        """
    ),
    code(
        """
        NAMES = ["g_na", "g_k", "g_m", "v_t"]
        BOUNDS = {"g_na": (10.0, 150.0), "g_k": (0.5, 30.0), "g_m": (0.001, 0.5),
                  "v_t": (float(base.v_t) - 10.0, float(base.v_t) + 10.0)}
        stim = hhjax.stimulus.step(amps, ON - T0, OFF - T0)
        sim = simulator(base, stim, NAMES, duration=T1 - T0, dt=DT, record_every=1, bounds=BOUNDS)
        p = prior(base, NAMES, bounds=BOUNDS)

        obs = hhjax.Trace(t=jnp.asarray(t_obs), state=hhjax.steady_state(base, jnp.asarray(v_obs)),
                          spike_count=None, diverged=None)
        x_o = np.asarray(goncalves_summary(obs, ON - T0, OFF - T0, sample_dt=DT)).reshape(1, -1)
        print(dict(zip(GONCALVES_NAMES, x_o[0, -8:].round(2))))

        theta = p.sample((N_SIMS,))
        t_start = time.perf_counter()
        x = torch.cat([sim(chunk) for chunk in theta.split(5_000)])
        print(f"{N_SIMS} parameter sets x {len(sweeps)} sweeps of {T1 - T0:.0f} ms: "
              f"{time.perf_counter() - t_start:.1f} s (compilation included)")
        """
    ),
    md(
        """
        ## Neural posterior estimation

        sbi z-scores the summaries and fits a masked autoregressive flow to p(θ | x).
        """
    ),
    code(
        """
        ok = torch.isfinite(x).all(dim=1)
        # sbi logs training to tensorboard; into a temporary folder, not ./sbi-logs
        writer = SummaryWriter(tempfile.mkdtemp())
        inference = NPE(prior=p, show_progress_bars=False, summary_writer=writer)
        inference.append_simulations(theta[ok], x[ok].float())
        inference.train(max_num_epochs=10 if CI else 300, show_train_summary=False)
        posterior = inference.build_posterior()
        samples = posterior.sample((2_000,), x=torch.as_tensor(x_o, dtype=torch.float32),
                                   show_progress_bars=False)
        for i, name in enumerate(NAMES):
            q = np.quantile(samples[:, i].numpy(), [0.05, 0.5, 0.95])
            print(f"{name:5s} median {q[1]:8.4g}, 90 % interval [{q[0]:.4g}, {q[2]:.4g}]")
        """
    ),
    md(
        """
        ## Posterior predictive traces against the data
        """
    ),
    code(
        """
        import dataclasses

        draws = samples[:8].double().numpy()
        params = dataclasses.replace(base, **{n: jnp.asarray(draws[:, i])[:, None] for i, n in enumerate(NAMES)})
        pred = hhjax.simulate(params, stim, duration=T1 - T0, dt=DT)
        j = int(np.argmax(amps))
        fig, ax = plt.subplots(figsize=(9, 3.2))
        for v in np.asarray(pred.v)[:, j]:
            ax.plot(np.asarray(pred.t) + T0, v, "C3", lw=0.5, alpha=0.5)
        ax.plot(t_obs + T0, v_obs[j], "k", lw=0.7, label=f"data, {amps[j]:.0f} pA")
        ax.plot([], [], "C3", label="posterior predictive (8 draws)")
        ax.set_xlabel("time (ms)"); ax.set_ylabel("V (mV)"); ax.legend(fontsize=8, loc="upper right")
        fig.savefig(FIGDIR / "nb10_predictive.png", dpi=90, bbox_inches="tight")
        """
    ),
    md(
        """
        ## Posterior marginals and the fit's Laplace errors

        Histograms: NPE's marginals. Red: a Gaussian at the fit's value with its Laplace standard
        error (where `hhjax fit` reported one). The Laplace approximation is local: it describes
        the curvature of the fit's loss at its optimum, with that loss's noise model. The NPE
        posterior is global and uses different data (the summaries, not the samples), so the
        two need not agree; where the posterior is much wider than the Laplace error, the
        summaries constrain that parameter less than the full voltage trace does.
        """
    ),
    code(
        """
        fig, axes = plt.subplots(1, len(NAMES), figsize=(12, 2.6))
        for i, (name, ax) in enumerate(zip(NAMES, axes)):
            ax.hist(samples[:, i].numpy(), bins=40, density=True, color="0.6")
            se, mu = stderr.get(name), float(getattr(base, name))
            if se:
                grid = np.linspace(mu - 4 * se, mu + 4 * se, 200)
                ax.plot(grid, np.exp(-0.5 * ((grid - mu) / se) ** 2) / (se * np.sqrt(2 * np.pi)), "C3")
            ax.axvline(mu, color="C3", lw=0.8, ls="--")
            ax.set_xlabel(f"{name} ({hhjax.io.results.unit_of(name)})")
            sd = float(samples[:, i].std())
            print(f"{name:5s} posterior sd {sd:.3g}   Laplace se {se if se else float('nan'):.3g}")
        axes[0].set_ylabel("density")
        fig.tight_layout()
        fig.savefig(FIGDIR / "nb10_marginals.png", dpi=90, bbox_inches="tight")
        """
    ),
]


NOTEBOOKS = {
    "01_hodgkin_huxley_basics.ipynb": NB01,
    "02_reduced_model_explorer.ipynb": NB02,
    "03_phase_plane_limit_cycles.ipynb": NB03,
    "04_pulse_response.ipynb": NB04,
    "05_ion_currents.ipynb": NB05,
    "10_sbi_posterior.ipynb": NB10,
}


def build(only=()):
    for name, cells in NOTEBOOKS.items():
        if only and name not in only:
            continue
        nb = new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"c{i:02d}"
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print("wrote", name)


def execute():
    from nbclient import NotebookClient

    for name in NOTEBOOKS:
        nb = nbformat.read(HERE / name, as_version=4)
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(HERE)}}).execute()
        print(f"ran {name} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    # python notebooks/_build.py [NAME.ipynb ...]: only those notebooks
    build([a for a in sys.argv[1:] if a.endswith(".ipynb")])
    if "--execute" in sys.argv:
        execute()
