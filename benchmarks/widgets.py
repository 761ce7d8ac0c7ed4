"""Redraw time of every notebook's widget: what a slider move costs (statistics + plot + text).

    python benchmarks/widgets.py

Target: median <= 150 ms per redraw, for every slider (2 CPU cores). The labs are built as the
notebooks build them. The first display of each lab (sampling its pool) is reported apart.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from _common import report
from acteach.critic import residual_fixed_point
from acteach.tabular import chain_mdp, gridworld_mdp
from acteach.actor_critic import Config
from acteach.parallel import learning_grid
from acteach.widgets import (CriticBiasLab, CriticLab, DiscountLab, LambdaLab, ParallelLab, QLab,
                             VarianceLab)

CHAIN = chain_mdp(n_states=5, slip=0.1)
PREFERS_RIGHT = np.tile([0.0, 1.0], (CHAIN.n_states, 1))
LONG_CHAIN = chain_mdp(n_states=10, slip=0.1, gamma=0.9)
GRID = gridworld_mdp()
GRID_LOGITS = np.random.default_rng(3).normal(size=(GRID.n_states, GRID.n_actions)) * 0.5
BASELINES = ["reinforce", "reward_to_go", "baseline_mean", "baseline_loo", "baseline_optimal",
             "baseline_v_exact", "advantage_exact"]


def vlab_moves(lab: VarianceLab) -> dict[str, list[Callable[[], object]]]:
    """N moves regroup the cached pool; seed moves sample a new pool (first visit of a seed)."""
    draw = lambda n, seed: lambda: lab.render(lab.update(n, seed))   # noqa: E731
    return {"first display": [draw(10, 0)],
            "N": [draw(n, 0) for _ in range(3) for n in lab.n_values],
            "seed": [draw(10, seed) for seed in range(1, 11)]}


def qlab_moves(lab: QLab) -> dict[str, list[Callable[[], object]]]:
    draw = lambda k, n, seed: lambda: lab.render(k, n, seed)         # noqa: E731
    return {"first display": [draw(4, 10, 0)],
            "k": [draw(k, 10, 0) for _ in range(3) for k in lab.k_values],
            "N": [draw(4, n, 0) for _ in range(3) for n in lab.n_values]}


def critic_moves(lab: CriticLab) -> dict[str, list[Callable[[], object]]]:
    """A steps move looks a fit up; batch, lr, target and seed moves run a new fit."""
    draw = lambda t, s, b, lr, seed=0: lambda: lab.render(t, s, b, lr, seed)   # noqa: E731
    return {"first display": [draw("bootstrapped", 300, 16, 0.1)],
            "steps": [draw("bootstrapped", s, 16, 0.1) for _ in range(3) for s in lab.steps_values],
            "batch": [draw("bootstrapped", 300, b, 0.1) for b in lab.batch_values],
            "lr": [draw("bootstrapped", 300, 16, lr) for lr in lab.lr_values],
            "target": [draw(t, 300, b, 0.1) for b in (64, 256)
                       for t in ("monte_carlo", "full_gradient", "bootstrapped")],
            "seed": [draw("bootstrapped", 300, 16, 0.1, seed) for seed in range(1, 11)]}


def blend_moves(lab: CriticBiasLab) -> dict[str, list[Callable[[], object]]]:
    draw = lambda a, n, seed=0: lambda: lab.render(a, n, seed)   # noqa: E731
    return {"first display": [draw(0.5, 10)],
            "alpha": [draw(a, 10) for _ in range(2) for a in lab.ALPHAS],
            "N": [draw(0.5, n) for _ in range(3) for n in lab.n_values]}


def discount_moves(lab: DiscountLab) -> dict[str, list[Callable[[], object]]]:
    draw = lambda g, n: lambda: lab.render(g, n)                          # noqa: E731
    middle = lab.gammas[len(lab.gammas) // 2]
    return {"first display": [draw(middle, 10)],
            "gamma": [draw(g, 10) for _ in range(2) for g in lab.gammas],
            "N": [draw(middle, n) for _ in range(3) for n in lab.n_values]}


def lambda_moves(lab: LambdaLab) -> dict[str, list[Callable[[], object]]]:
    """Every move mixes and regroups the cached pool; a new (alpha, N) summarises all settings."""
    draw = lambda a, lam, n, N: lambda: lab.render(a, lam, n, N)          # noqa: E731
    return {"first display": [draw(1.0, 0.9, 5, 10)],
            "lam": [draw(1.0, lam, 5, 10) for _ in range(2) for lam in lab.lams],
            "n": [draw(1.0, 0.9, "inf" if n is None else n, 10) for _ in range(2)
                  for n in lab.n_values],
            "alpha": [draw(a, 0.9, 5, 10) for _ in range(2) for a in lab.ALPHAS],
            "N": [draw(1.0, 0.9, 5, N) for _ in range(2) for N in lab.n_trajectories_values]}


def parallel_moves(lab: ParallelLab) -> dict[str, list[Callable[[], object]]]:
    """The runs are trained before the lab is built (see "07 grid training"); moves redraw."""
    draw = lambda n, t: lambda: lab.render(n, t)                          # noqa: E731
    return {"first display": [draw(4, 4)],
            "N envs": [draw(n, 4) for _ in range(3) for n in lab.n_envs],
            "T steps": [draw(4, t) for _ in range(3) for t in lab.n_steps]}


def notebook_07_grid() -> dict:
    """Notebook 07's grid: 3 x 3 A2C runs of 2,000 env steps each. Training is not a redraw:
    main() trains it first and reports its time on a row of its own."""
    return learning_grid(Config(total_steps=2_000, seed=0), n_envs=(1, 4, 16), n_steps=(1, 4, 16))


GRID_07: dict = {}


def notebook_widgets() -> dict[str, Callable[[], dict]]:
    """Each notebook's widget, built lazily (construction is part of the first display)."""
    return {
        "01 reward-to-go": lambda: vlab_moves(
            VarianceLab(CHAIN, PREFERS_RIGHT, ["reinforce", "reward_to_go"])),
        "02 use Q": lambda: qlab_moves(QLab(CHAIN, PREFERS_RIGHT)),
        "03 baselines": lambda: vlab_moves(VarianceLab(GRID, GRID_LOGITS, BASELINES, pool=6_000,
                                                       n_values=(1, 2, 5, 10, 20, 50))),
        "04 fitting V": lambda: critic_moves(CriticLab(CHAIN, PREFERS_RIGHT)),
        "04 critic bias": lambda: blend_moves(
            CriticBiasLab(CHAIN, PREFERS_RIGHT, residual_fixed_point(CHAIN, PREFERS_RIGHT))),
        "05 discount": lambda: discount_moves(DiscountLab(
            LONG_CHAIN, np.tile([0.0, 1.0], (LONG_CHAIN.n_states, 1)), n_values=(1, 10, 100))),
        "07 online and parallel": lambda: parallel_moves(ParallelLab(GRID_07, window=20)),
        "09 n-step and GAE": lambda: lambda_moves(LambdaLab(CHAIN, PREFERS_RIGHT)),
    }


def main() -> None:
    rows, summary = [], {}
    start = time.perf_counter()
    GRID_07.update(notebook_07_grid())
    seconds = time.perf_counter() - start
    rows.append(["07 online and parallel", "grid training (not a redraw)", 9, f"{seconds * 1000:.0f}",
                 ""])
    summary["07 grid training seconds"] = round(seconds, 1)
    for name, build in notebook_widgets().items():
        start = time.perf_counter()
        moves = build()
        built = time.perf_counter() - start
        for slider, calls in moves.items():
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
