"""How long `gradient_statistics` takes: 1,000 estimates of 10 trajectories each.

    python benchmarks/estimators.py

Target: <= 1 s on a 10-state MDP (2 CPU cores). Best and median of 5 runs after a warm-up.
"""
from __future__ import annotations

import time

import numpy as np

from _common import report
from acteach.estimators import gradient_statistics
from acteach.tabular import chain_mdp, random_mdp

CASES = {
    "random MDP, 10 states, 3 actions, gamma=0.9": (
        random_mdp(np.random.default_rng(0), n_states=10, n_actions=3, gamma=0.9), 0.5),
    "random MDP, 10 states, 3 actions, 2 terminal, gamma=1": (
        random_mdp(np.random.default_rng(0), n_states=10, n_actions=3, gamma=1.0, n_terminal=2),
        0.5),
    "chain of 9 states + goal, pi(right)=0.73": (chain_mdp(n_states=9), None),
}


def main() -> None:
    rows, worst = [], 0.0
    for name, (mdp, scale) in CASES.items():
        logits = (np.tile([0.0, 1.0], (mdp.n_states, 1)) if scale is None else
                  np.random.default_rng(1).normal(size=(mdp.n_states, mdp.n_actions)) * scale)
        for method in ("reinforce", "reward_to_go"):
            times = []
            for run in range(6):
                start = time.perf_counter()
                stats = gradient_statistics(mdp, logits, method, 10, 1000,
                                            np.random.default_rng(run))
                times.append(time.perf_counter() - start)
            times = times[1:]                      # the first run warms caches up
            worst = max(worst, float(np.median(times)))
            rows.append([name, method, f"{stats.steps_per_estimate:.0f}",
                         f"{min(times):.3f}", f"{np.median(times):.3f}"])
    report("gradient_statistics: 1,000 estimates x 10 trajectories",
           ["MDP", "method", "steps/estimate", "best s", "median s"], rows,
           {"worst_median_seconds": round(worst, 3), "target_seconds": 1.0})


if __name__ == "__main__":
    main()
