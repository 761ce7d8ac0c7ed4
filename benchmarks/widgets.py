"""Redraw time of every notebook's lab: what a slider move costs (statistics + plot + text).

    python benchmarks/widgets.py

Target: median <= 150 ms per redraw, for every slider (2 CPU cores). Each lab is built by the
constructor its notebook calls (`acteach.labs.<idea>.notebookNN_lab`), so the benchmark measures
the notebook's own lab. The first display of each lab (sampling its pool) is reported apart;
notebook 07's lab trains its grid of runs first, reported on a row of its own.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from _common import report
from acteach.labs import (CriticBiasLab, CriticLab, DiscountLab, LambdaLab, ParallelLab, QLab,
                          VarianceLab)
from acteach.labs.batch_ac import CriticFitLab, notebook06_lab
from acteach.labs.critic import notebook04_bias_lab, notebook04_lab
from acteach.labs.discount import notebook05_lab
from acteach.labs.gae import notebook09_lab
from acteach.labs.off_policy import BUFFERS, OffPolicyLab, notebook08_lab
from acteach.labs.parallel import notebook07_lab
from acteach.labs.q import notebook02_lab
from acteach.labs.variance import notebook01_lab, notebook03_lab

Moves = dict[str, list[Callable[[], object]]]


def variance_moves(lab: VarianceLab) -> Moves:
    """N moves regroup the cached pool; seed moves sample a new pool (first visit of a seed)."""
    draw = lambda n, seed: lambda: lab.render(n, seed)                   # noqa: E731
    return {"first display": [draw(10, 0)],
            "N": [draw(n, 0) for _ in range(3) for n in lab.n_trajectories_values],
            "seed": [draw(10, seed) for seed in range(1, 11)]}


def q_moves(lab: QLab) -> Moves:
    draw = lambda k, n, seed: lambda: lab.render(k, n, seed)             # noqa: E731
    return {"first display": [draw(4, 10, 0)],
            "k": [draw(k, 10, 0) for _ in range(3) for k in lab.k_values],
            "N": [draw(4, n, 0) for _ in range(3) for n in lab.n_trajectories_values]}


def critic_moves(lab: CriticLab) -> Moves:
    """A steps move looks a fit up; batch, lr, target and seed moves run a new fit."""
    draw = lambda t, s, b, lr, seed=0: lambda: lab.render(t, s, b, lr, seed)   # noqa: E731
    return {"first display": [draw("bootstrapped", 300, 16, 0.1)],
            "steps": [draw("bootstrapped", s, 16, 0.1) for _ in range(3) for s in lab.steps_values],
            "batch": [draw("bootstrapped", 300, b, 0.1) for b in lab.batch_values],
            "lr": [draw("bootstrapped", 300, 16, lr) for lr in lab.lr_values],
            "target": [draw(t, 300, b, 0.1) for b in (64, 256)
                       for t in ("monte_carlo", "full_gradient", "bootstrapped")],
            "seed": [draw("bootstrapped", 300, 16, 0.1, seed) for seed in range(1, 11)]}


def blend_moves(lab: CriticBiasLab) -> Moves:
    draw = lambda a, n, seed=0: lambda: lab.render(a, n, seed)           # noqa: E731
    return {"first display": [draw(0.5, 10)],
            "alpha": [draw(a, 10) for _ in range(2) for a in lab.ALPHAS],
            "N": [draw(0.5, n) for _ in range(3) for n in lab.n_trajectories_values]}


def discount_moves(lab: DiscountLab) -> Moves:
    draw = lambda g, n: lambda: lab.render(g, n)                          # noqa: E731
    middle = lab.gammas[len(lab.gammas) // 2]
    return {"first display": [draw(middle, 10)],
            "gamma": [draw(g, 10) for _ in range(2) for g in lab.gammas],
            "N": [draw(middle, n) for _ in range(3) for n in lab.n_trajectories_values]}


def lambda_moves(lab: LambdaLab) -> Moves:
    """Every move blends and regroups the cached pool; a new (alpha, N) summarises all
    settings."""
    draw = lambda a, lam, n, N: lambda: lab.render(a, lam, n, N)          # noqa: E731
    return {"first display": [draw(1.0, 0.9, 5, 10)],
            "lam": [draw(1.0, lam, 5, 10) for _ in range(2) for lam in lab.lams],
            "n": [draw(1.0, 0.9, "inf" if n is None else n, 10) for _ in range(2)
                  for n in lab.n_values],
            "alpha": [draw(a, 0.9, 5, 10) for _ in range(2) for a in lab.ALPHAS],
            "N": [draw(1.0, 0.9, 5, N) for _ in range(2) for N in lab.n_trajectories_values]}


def parallel_moves(lab: ParallelLab) -> Moves:
    """The runs are trained when the lab is built (see "07 grid training"); moves redraw."""
    draw = lambda n, t: lambda: lab.render(n, t)                          # noqa: E731
    return {"first display": [draw(4, 4)],
            "N envs": [draw(n, 4) for _ in range(3) for n in lab.n_envs],
            "T steps": [draw(4, t) for _ in range(3) for t in lab.n_steps]}


def critic_fit_moves(lab: CriticFitLab) -> Moves:
    draw = lambda k, n: lambda: lab.render(k, n)                          # noqa: E731
    return {"first display": [draw(4, 10)],
            "sweeps k": [draw(k, 10) for _ in range(2) for k in lab.sweeps],
            "N": [draw(4, n) for _ in range(3) for n in lab.n_trajectories_values]}


def off_policy_moves(lab: OffPolicyLab) -> Moves:
    """Every setting is measured when the lab is built; moves only redraw."""
    draw = lambda k, b, w: lambda: lab.render(k, b, w)                  # noqa: E731
    return {"first display": [draw(20, BUFFERS[0], "discounted")],
            "age k": [draw(k, BUFFERS[0], "discounted") for _ in range(2) for k in lab.ages],
            "buffer": [draw(20, b, "discounted") for _ in range(3) for b in BUFFERS],
            "states": [draw(20, BUFFERS[0], w) for _ in range(3)
                       for w in ("discounted", "uniform")]}


#: Each notebook's lab: (its constructor, the slider moves to time). Construction is part of
#: the first display, except notebook 07's, whose training main() times on a row of its own.
LABS: dict[str, tuple[Callable[[], object], Callable[[object], Moves]]] = {
    "01 reward-to-go": (notebook01_lab, variance_moves),
    "02 use Q": (notebook02_lab, q_moves),
    "03 baselines": (notebook03_lab, variance_moves),
    "04 fitting V": (notebook04_lab, critic_moves),
    "04 critic bias": (notebook04_bias_lab, blend_moves),
    "05 discount": (notebook05_lab, discount_moves),
    "06 critic fit": (notebook06_lab, critic_fit_moves),
    "07 online and parallel": (notebook07_lab, parallel_moves),
    "08 buffer age": (notebook08_lab, off_policy_moves),
    "09 n-step and GAE": (notebook09_lab, lambda_moves),
}


def main() -> None:
    rows, summary = [], {}
    for name, (build, moves_of) in LABS.items():
        start = time.perf_counter()
        lab = build()
        built = time.perf_counter() - start
        if build is notebook07_lab:
            rows.append([name, "grid training (not a redraw)", 9, f"{built * 1000:.0f}", ""])
            summary["07 grid training seconds"] = round(built, 1)
            built = 0.0
        for slider, calls in moves_of(lab).items():
            ms = []
            for call in calls:
                start = time.perf_counter()
                call()
                ms.append((time.perf_counter() - start) * 1000)
            if slider == "first display":
                ms[0] += built * 1000
            ms = np.array(ms)
            rows.append([name, slider, len(ms), f"{np.median(ms):.0f}", f"{ms.max():.0f}"])
            summary[f"{name} | {slider} | median_ms"] = round(float(np.median(ms)), 1)
    report("widget redraw", ["notebook", "slider", "moves", "median ms", "max ms"], rows,
           {**summary, "target_median_ms": 150})


if __name__ == "__main__":
    main()
