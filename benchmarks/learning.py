"""How fast acteach's A2C solves CartPole-v1, side by side with Stable-Baselines3's A2C.

    python benchmarks/learning.py [--seeds 0 1 2 3 4] [--no-sb3]

The rule, the same for both: train on CartPole-v1 until the mean return of the last 100
training episodes first reaches 475; report the environment steps and the training seconds
(everything from the first reset on; neither side evaluates; the one-time import of torch's
optimiser machinery, about 1-2 s, is done before the clock on both sides) at that moment, per
seed, then the median and range, and each side's training milliseconds per env step. Both run
with one torch thread, one run at a time, each in a fresh process, the sides interleaved seed by
seed (acteach 0, SB3 0, acteach 1, ...) so that load drifting during the run lands on both
alike; the load average is printed at the start and the end, with a warning when it exceeds the
core count. A run that has not reached 475 within its step budget counts as the budget (marked
">").

Stable-Baselines3 (the optional extra: pip install -e ".[bench]") runs its A2C with the RL Zoo
hyperparameters for CartPole-v1: 8 envs, ent_coef 0, everything else at SB3's defaults.

Target: acteach's median steps <= 0.5x SB3's, and median seconds <= 0.25x SB3's.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from _common import (add_ratios, import_torch_optim, median_row, ms_per_step, report,
                     run_sides, summarize_runs)

THRESHOLD, WINDOW = 475.0, 100
BUDGET = {"acteach": 300_000, "sb3": 1_000_000}


def run_acteach(seed: int) -> dict:
    """acteach's A2C with its default A2CConfig, stopped when the rule is met."""
    from acteach.actor_critic import A2CConfig, train_a2c

    import_torch_optim()
    config = A2CConfig(env_id="CartPole-v1", seed=seed, total_steps=BUDGET["acteach"],
                       stop_return=THRESHOLD, stop_window=WINDOW)
    history = train_a2c(config, progress=False)
    steps = history.steps_to_mean_return(THRESHOLD, WINDOW)
    seconds = history.seconds_to_mean_return(THRESHOLD, WINDOW)
    return {"steps": steps, "seconds": seconds, "budget_seconds": history.seconds,
            "step_seconds": history.seconds, "step_count": history.env_steps}


def run_sb3(seed: int) -> dict:
    """SB3's A2C (RL Zoo CartPole-v1 settings), stopped by a callback when the rule is met."""
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    import_torch_optim()

    class StopWhenSolved(BaseCallback):
        """Collects finished episodes from the Monitor infos; stops at the rule."""

        def __init__(self) -> None:
            super().__init__()
            self.returns: list[float] = []
            self.steps = self.seconds = None
            self.start = time.perf_counter()

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.returns.append(info["episode"]["r"])
            if (len(self.returns) >= WINDOW
                    and np.mean(self.returns[-WINDOW:]) >= THRESHOLD - 1e-9):
                self.steps, self.seconds = self.num_timesteps, time.perf_counter() - self.start
                return False
            return True

    start = time.perf_counter()
    envs = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = A2C("MlpPolicy", envs, ent_coef=0.0, seed=seed, device="cpu", verbose=0)
    callback = StopWhenSolved()
    callback.start = start
    model.learn(total_timesteps=BUDGET["sb3"], callback=callback)
    seconds = time.perf_counter() - start
    envs.close()
    return {"steps": callback.steps, "seconds": callback.seconds, "budget_seconds": seconds,
            "step_seconds": seconds, "step_count": model.num_timesteps}


def _row(name: str, seed: int, r: dict) -> list:
    steps = r["steps"] if r["steps"] is not None else f">{BUDGET[name]}"
    seconds = f"{r['seconds']:.1f}" if r["seconds"] is not None else f">{r['budget_seconds']:.1f}"
    return [name, seed, steps, seconds, f"{1000 * r['step_seconds'] / r['step_count']:.3f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--no-sb3", action="store_true", help="acteach only")
    parser.add_argument("--budget", type=int, default=None,
                        help="one step budget for both sides (a smoke run; default: "
                             f"{BUDGET})")
    args = parser.parse_args()
    if args.budget is not None:
        BUDGET.update(acteach=args.budget, sb3=args.budget)
    results, load_start, load_end = run_sides(run_acteach, run_sb3, args.seeds, args.no_sb3,
                                              _row)

    rows, summary = [], {"threshold": THRESHOLD, "window": WINDOW, "interleaved": True,
                         "load_start": load_start, "load_end": load_end}
    for name, runs in results.items():
        rows += [_row(name, seed, r) for seed, r in zip(args.seeds, runs)]
        summary[name] = summarize_runs(runs, BUDGET[name])
        summary[name]["ms_per_step"] = ms_per_step(runs)
        rows.append(median_row(name, summary[name]) + [f"{summary[name]['ms_per_step']:.3f}"])
    add_ratios(summary, {"steps_ratio": 0.5, "seconds_ratio": 0.25})
    report("CartPole-v1: steps and seconds until the last-100 mean return reaches 475",
           ["agent", "seed", "env steps", "train seconds", "ms per env step"], rows, summary)


if __name__ == "__main__":
    main()
