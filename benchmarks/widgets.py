"""Redraw time of the variance lab: what a slider move costs (statistics + plot + table).

    python benchmarks/widgets.py

Target: median <= 150 ms per redraw (2 CPU cores). Each notebook's lab is listed here.
An N move regroups the cached pool; a seed move samples a new pool (the first visit of a seed).
"""
from __future__ import annotations

import time

import numpy as np

from _common import report
from acteach.tabular import chain_mdp
from acteach.widgets import VarianceLab


def notebook_labs() -> dict[str, VarianceLab]:
    """The labs as the notebooks build them."""
    chain = chain_mdp(n_states=5, slip=0.1)
    return {"01 reward-to-go": VarianceLab(chain, np.tile([0.0, 1.0], (chain.n_states, 1)),
                                           ["reinforce", "reward_to_go"])}


def redraw(lab: VarianceLab, n: int, seed: int) -> float:
    start = time.perf_counter()
    lab.render(lab.update(n, seed))
    return time.perf_counter() - start


def main() -> None:
    rows, summary = [], {}
    for name, lab in notebook_labs().items():
        redraw(lab, 10, 0)                                   # the first display
        n_moves = [redraw(lab, n, 0) for _ in range(3) for n in lab.n_values]
        seed_moves = [redraw(lab, 10, seed) for seed in range(1, 11)]
        for slider, times in (("N", n_moves), ("seed", seed_moves)):
            ms = np.array(times) * 1000
            rows.append([name, slider, len(ms), f"{np.median(ms):.0f}", f"{ms.max():.0f}"])
            summary[f"{name} {slider} median_ms"] = round(float(np.median(ms)), 1)
    report("variance lab redraw", ["notebook", "slider", "moves", "median ms", "max ms"], rows,
           {**summary, "target_median_ms": 150})


if __name__ == "__main__":
    main()
