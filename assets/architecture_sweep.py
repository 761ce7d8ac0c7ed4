"""Shared trunk vs separate networks: A2C on CartPole-v1 over value_coef (notebook 09, section 1).

    python assets/architecture_sweep.py [--coefs 0.5 0.05 0.005] [--seeds 0 1 ... 19]
                                        [--budget 100000] [--keep 3] [--out ...json]

Every run is acteach's default A2CConfig (8 envs x 4 steps, n-step target, normalised
advantages, gradient-norm clipping 0.5, Adam) for --budget environment steps: separate networks
(lr_actor 1e-3, lr_critic 3e-3), and one shared trunk (one Adam at lr_actor on
actor_loss + value_coef * critic_loss) at each value_coef of --coefs. The seeds of one design
train as one computation (`train_a2c_seeds`).

Writes to --out (the file notebook 09 reads): per design and seed the learning curve (mean
return of the last 20 episodes at each step of GRID) and the final return (the last 20
episodes), the trained shared networks of the first --keep seeds (for the interference
measurement), and the settings; prints a table, and last one JSON line with the summary.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmarks' shared table and machine record
from _common import write_sweep  # noqa: E402

COEFS = [0.5, 0.05, 0.005]   # value_coef of the shared trunk (0.5: SB3's and CleanRL's vf_coef)
SEEDS = list(range(20))
BUDGET = 100_000             # environment steps per run
KEEP = 3                     # trained shared networks saved per value_coef (the first seeds)
WINDOW = 20                  # episodes in the running mean of a learning curve and the final return
N_GRID = 50                  # points of the learning curves, evenly spaced up to the budget


def designs(coefs: list[float]) -> list[dict]:
    """The A2CConfig fields of each design: separate networks, then a shared trunk per coef."""
    return [{"shared": False}] + [{"shared": True, "value_coef": c} for c in coefs]


def design_name(design: dict) -> str:
    """'separate networks' or 'shared, value_coef c'."""
    return (f"shared, value_coef {design['value_coef']:g}" if design["shared"]
            else "separate networks")


def grid(budget: int) -> np.ndarray:
    """The environment steps at which the learning curves are read."""
    return np.linspace(budget / N_GRID, budget, N_GRID).round().astype(int)


def train_design(design: dict, seeds: list[int], budget: int, keep: int) -> dict:
    """Train one design on every seed (one computation); its curves, final returns and, for a
    shared trunk, the networks of the first `keep` seeds."""
    from acteach.actor_critic import A2CConfig, train_a2c_seeds
    from acteach.architecture import network_weights

    histories = train_a2c_seeds(A2CConfig(total_steps=budget, **design), seeds)
    return {"name": design_name(design), **design,
            "curves": [h.learning_curve(grid(budget), WINDOW).round(2).tolist()
                       for h in histories],
            "final": [round(h.final_return(WINDOW), 2) for h in histories],
            "seconds": round(max(h.seconds for h in histories), 1),
            "networks": ([network_weights(h.policy, h.critic) for h in histories[:keep]]
                         if design["shared"] else [])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coefs", type=float, nargs="+", default=COEFS)
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--budget", type=int, default=BUDGET)
    parser.add_argument("--keep", type=int, default=KEEP,
                        help="trained shared networks saved per value_coef (the first seeds)")
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "architecture_sweep.json")
    args = parser.parse_args()
    results = []
    for design in designs(args.coefs):
        results.append(train_design(design, args.seeds, args.budget, args.keep))
        print(f"{results[-1]['name']}: {results[-1]['seconds']} s", flush=True)

    config = {"env_id": "CartPole-v1", "budget": args.budget, "seeds": args.seeds,
              "coefs": args.coefs, "keep": args.keep, "window": WINDOW,
              "grid": grid(args.budget).tolist(),
              "note": "acteach.actor_critic.A2CConfig defaults otherwise"}
    write_sweep(args.out, config, "designs", results, "name",
                f"A2C on CartPole-v1, {args.budget:,} steps", WINDOW)

if __name__ == "__main__":
    main()
