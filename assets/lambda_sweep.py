"""A2C with the GAE target on CartPole-v1, a sweep over lambda (notebook 09, section 5).

    python assets/lambda_sweep.py [--lams 0 0.5 0.9 0.95 1] [--seeds 0 1 ... 9]
                                  [--budget 100000] [--out assets/lambda_sweep.json]

Every run is acteach's default A2CConfig (8 envs x 4 steps, normalised advantages, gradient-norm
clipping 0.5, separate networks, Adam) with target="gae" and one lam: lam = 0 is the one-step TD
target, lam = 1 the n-step target of the default. Each trains for --budget environment steps;
the seeds of one lam train as one computation (`train_a2c_seeds`).

Writes to --out (the file notebook 09 reads): per lam and seed the learning curve (mean return
of the last 20 episodes at each step of GRID) and the final return (the last 20 episodes), and
the settings; prints a table, and last one JSON line with the summary.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmarks' shared table and machine record
from _common import write_sweep  # noqa: E402

LAMS = [0.0, 0.5, 0.9, 0.95, 1.0]
SEEDS = list(range(10))
BUDGET = 100_000             # environment steps per run
WINDOW = 20                  # episodes in the running mean of a learning curve and the final return
N_GRID = 50                  # points of the learning curves, evenly spaced up to the budget


def grid(budget: int) -> np.ndarray:
    """The environment steps at which the learning curves are read."""
    return np.linspace(budget / N_GRID, budget, N_GRID).round().astype(int)


def train_lam(lam: float, seeds: list[int], budget: int) -> dict:
    """Train A2C with target "gae" at lam on every seed (one computation); its curves and final
    returns."""
    from acteach.actor_critic import A2CConfig, train_a2c_seeds

    histories = train_a2c_seeds(A2CConfig(target="gae", lam=lam, total_steps=budget), seeds)
    return {"lam": lam,
            "curves": [h.learning_curve(grid(budget), WINDOW).round(2).tolist()
                       for h in histories],
            "final": [round(h.final_return(WINDOW), 2) for h in histories],
            "seconds": round(max(h.seconds for h in histories), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lams", type=float, nargs="+", default=LAMS)
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--budget", type=int, default=BUDGET)
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "lambda_sweep.json")
    args = parser.parse_args()
    results = []
    for lam in args.lams:
        results.append(train_lam(lam, args.seeds, args.budget))
        print(f"lam {lam:g}: {results[-1]['seconds']} s", flush=True)

    config = {"env_id": "CartPole-v1", "target": "gae", "budget": args.budget,
              "seeds": args.seeds, "lams": args.lams, "window": WINDOW,
              "grid": grid(args.budget).tolist(),
              "note": "acteach.actor_critic.A2CConfig defaults otherwise"}
    write_sweep(args.out, config, "runs", results, "lam",
                f"A2C on CartPole-v1, target gae, {args.budget:,} steps", WINDOW)

if __name__ == "__main__":
    main()
