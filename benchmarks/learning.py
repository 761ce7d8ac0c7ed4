"""How fast acteach's A2C solves CartPole-v1, side by side with Stable-Baselines3's A2C.

    python benchmarks/learning.py [--seeds 0 1 2 3 4] [--jobs 1] [--no-sb3]

The rule, the same for both: train on CartPole-v1 until the mean return of the last 100
training episodes first reaches 475; report the environment steps and the training seconds
(everything from the first reset on; neither side evaluates) at that moment, per seed, then the
median and range. Both run with one torch thread. A run that has not reached 475 within its
step budget counts as the budget (and is marked ">").

Stable-Baselines3 (the optional extra: pip install -e ".[bench]") runs its A2C with the RL Zoo
hyperparameters for CartPole-v1: 8 envs, ent_coef 0, everything else at SB3's defaults.

Target: acteach's median steps <= 0.6x SB3's, and median seconds <= 0.4x SB3's.
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from _common import add_ratios, median_row, report, summarize_runs

THRESHOLD, WINDOW = 475.0, 100
BUDGET = {"acteach": 300_000, "sb3": 1_000_000}


def run_acteach(seed: int) -> dict:
    """acteach's A2C with its default A2CConfig, stopped when the rule is met."""
    from acteach.actor_critic import A2CConfig, train_a2c

    config = A2CConfig(env_id="CartPole-v1", seed=seed, total_steps=BUDGET["acteach"],
                       stop_return=THRESHOLD, stop_window=WINDOW)
    history = train_a2c(config, progress=False)
    steps = history.steps_to_mean_return(THRESHOLD, WINDOW)
    seconds = history.seconds_to_mean_return(THRESHOLD, WINDOW)
    return {"steps": steps, "seconds": seconds, "budget_seconds": history.seconds}


def run_sb3(seed: int) -> dict:
    """SB3's A2C (RL Zoo CartPole-v1 settings), stopped by a callback when the rule is met."""
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)

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
    envs.close()
    return {"steps": callback.steps, "seconds": callback.seconds,
            "budget_seconds": time.perf_counter() - start}


def _one(job: tuple[str, int]) -> tuple[str, int, dict]:
    name, seed = job
    return name, seed, (run_acteach if name == "acteach" else run_sb3)(seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs in parallel, each on one thread (default 1)")
    parser.add_argument("--no-sb3", action="store_true", help="acteach only")
    args = parser.parse_args()
    names = ["acteach"]
    if not args.no_sb3:
        try:
            import stable_baselines3  # noqa: F401
            names.append("sb3")
        except ImportError:
            print("stable-baselines3 is not installed (pip install -e '.[bench]'): "
                  "acteach only")
    jobs = [(name, seed) for name in names for seed in args.seeds]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        done = list(pool.map(_one, jobs))

    rows, summary = [], {"threshold": THRESHOLD, "window": WINDOW, "jobs": args.jobs}
    for name in names:
        results = [r for n, _, r in done if n == name]
        for (_, seed, r) in (d for d in done if d[0] == name):
            steps = r["steps"] if r["steps"] is not None else f">{BUDGET[name]}"
            seconds = (f"{r['seconds']:.1f}" if r["seconds"] is not None
                       else f">{r['budget_seconds']:.1f}")
            rows.append([name, seed, steps, seconds])
        summary[name] = summarize_runs(results, BUDGET[name])
        rows.append(median_row(name, summary[name]))
    add_ratios(summary, {"steps_ratio": 0.6, "seconds_ratio": 0.4})
    report("CartPole-v1: steps and seconds until the last-100 mean return reaches 475",
           ["agent", "seed", "env steps", "train seconds"], rows, summary)


if __name__ == "__main__":
    main()
