"""How fast acteach's SAC solves Pendulum-v1, side by side with Stable-Baselines3's SAC.

    python benchmarks/learning_pendulum.py [--seeds 0 1 2 3 4] [--eval-every 500] [--no-sb3]

The rule, the same for both: every 500 environment steps (--eval-every), evaluate the
deterministic policy (the mean action, squashed) on 5 episodes; report the environment steps
and the training seconds (wall-clock from the first environment step on, evaluation excluded;
building the networks excluded) at the first evaluation whose mean return is >= -200, per seed,
then the median and range, and each side's training milliseconds per env step. Both run with
one torch thread, one run at a time, each in a fresh process, the sides interleaved seed by seed
(acteach 0, SB3 0, acteach 1, ...) so that load drifting during the run lands on both alike; the
load average is printed at the start and the end, with a warning when it exceeds the core
count. A run that has not reached -200 within its step budget counts as the budget (marked
">").

acteach: `acteach.sac.train_sac` with its default SACConfig (64x64 networks, batch
128, learning_starts 250, tau 0.01, lr 1e-3, tuned alpha) but two gradient steps per
transition (updates_per_step=2, the update-to-data ratio; the default 1 reaches -200 about 1,000
steps later). It has no early stop, so each run trains to its budget; only the time to the
first evaluation >= -200 is reported.

Stable-Baselines3 (the optional extra: pip install -e ".[bench]") runs its SAC with the RL Zoo
hyperparameters for Pendulum-v1: learning_rate 1e-3, everything else at SB3's defaults (256x256
networks, batch 256, learning_starts 100, tau 0.005, tuned alpha). A callback evaluates it by the
same rule (same evaluation seeds) and stops it at the first evaluation >= -200.

Target: acteach's median steps <= 0.75x SB3's, and median seconds <= 0.25x SB3's.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from _common import (add_ratios, median_row, ms_per_step, report, run_sides,
                     summarize_runs)

THRESHOLD, EVAL_EPISODES = -200.0, 5
EVAL_EVERY = 500          # --eval-every; a module global so that the runs' processes see it
BUDGET = {"acteach": 8_000, "sb3": 20_000}
UPDATES_PER_STEP = 2      # acteach's gradient steps per transition


def eval_seeds(seed: int) -> np.random.Generator:
    """The seeds of the successive evaluations of a run: acteach's own sequence."""
    return np.random.default_rng([seed, 1])


def run_acteach(seed: int) -> dict:
    """acteach's SAC, its default SACConfig with updates_per_step=2, evaluated every
    EVAL_EVERY steps."""
    from acteach.sac import SACConfig, train_sac

    config = SACConfig(env_id="Pendulum-v1", seed=seed, total_steps=BUDGET["acteach"],
                       updates_per_step=UPDATES_PER_STEP, eval_every=EVAL_EVERY,
                       eval_episodes=EVAL_EPISODES)
    history = train_sac(config, progress=False)
    return {"steps": history.steps_to_eval_return(THRESHOLD),
            "seconds": history.seconds_to_eval_return(THRESHOLD),
            "budget_seconds": history.seconds, "evals": history.eval_returns,
            "step_seconds": history.seconds, "step_count": history.env_steps}


def _evaluate_sb3(model, envs, seed: int) -> float:
    """Mean undiscounted return of SB3's deterministic policy, one episode per env of a vector
    env reset with `seed` (as acteach.sac.evaluate does)."""
    obs, _ = envs.reset(seed=seed)
    returns, done = np.zeros(envs.num_envs), np.zeros(envs.num_envs, dtype=bool)
    while not done.all():
        act, _ = model.predict(obs, deterministic=True)
        obs, rew, terminated, truncated, _ = envs.step(act)
        returns += np.where(done, 0.0, rew)
        done |= terminated | truncated
    return float(returns.mean())


def run_sb3(seed: int) -> dict:
    """SB3's SAC (RL Zoo Pendulum-v1 settings), evaluated and stopped by a callback."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback

    from acteach.sampling import make_envs

    torch.set_num_threads(1)

    class EvaluateEvery(BaseCallback):
        """Every EVAL_EVERY steps: evaluate (off the clock); stop at the first >= THRESHOLD."""

        def __init__(self) -> None:
            super().__init__()
            self.envs = make_envs("Pendulum-v1", EVAL_EPISODES)     # as acteach's evaluation
            self.seeds = eval_seeds(seed)
            self.evals: list[float] = []
            self.steps = self.seconds = None
            self.eval_seconds = 0.0
            self.start = 0.0

        def _on_training_start(self) -> None:
            self.start = time.perf_counter()

        def train_seconds(self) -> float:
            return time.perf_counter() - self.start - self.eval_seconds

        def _on_step(self) -> bool:
            if self.num_timesteps % EVAL_EVERY:
                return True
            seconds = self.train_seconds()
            tic = time.perf_counter()
            self.evals.append(_evaluate_sb3(self.model, self.envs,
                                            int(self.seeds.integers(2**31))))
            self.eval_seconds += time.perf_counter() - tic
            if self.evals[-1] >= THRESHOLD:
                self.steps, self.seconds = self.num_timesteps, seconds
                return False
            return True

    model = SAC("MlpPolicy", gym.make("Pendulum-v1"), learning_rate=1e-3, seed=seed,
                device="cpu", verbose=0)
    callback = EvaluateEvery()
    model.learn(total_timesteps=BUDGET["sb3"], callback=callback)
    callback.envs.close()
    return {"steps": callback.steps, "seconds": callback.seconds,
            "budget_seconds": callback.train_seconds(), "evals": callback.evals,
            "step_seconds": callback.train_seconds(), "step_count": model.num_timesteps}


def _row(name: str, seed: int, r: dict) -> list:
    steps = r["steps"] if r["steps"] is not None else f">{BUDGET[name]}"
    seconds = f"{r['seconds']:.1f}" if r["seconds"] is not None else f">{r['budget_seconds']:.1f}"
    return [name, seed, steps, seconds, f"{1000 * r['step_seconds'] / r['step_count']:.3f}",
            " ".join(f"{x:.0f}" for x in r["evals"])]


def main() -> None:
    global EVAL_EVERY
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY)
    parser.add_argument("--no-sb3", action="store_true", help="acteach only")
    parser.add_argument("--budget", type=int, default=None,
                        help=f"one step budget for both sides (a smoke run; default: {BUDGET})")
    args = parser.parse_args()
    EVAL_EVERY = args.eval_every
    if args.budget is not None:
        BUDGET.update(acteach=args.budget, sb3=args.budget)
    results, load_start, load_end = run_sides(run_acteach, run_sb3, args.seeds, args.no_sb3,
                                              _row)

    rows, summary = [], {"threshold": THRESHOLD, "eval_every": EVAL_EVERY,
                         "eval_episodes": EVAL_EPISODES, "budget": BUDGET,
                         "acteach_updates_per_step": UPDATES_PER_STEP, "interleaved": True,
                         "load_start": load_start, "load_end": load_end}
    for name, runs in results.items():
        rows += [_row(name, seed, r) for seed, r in zip(args.seeds, runs)]
        summary[name] = summarize_runs(runs, BUDGET[name])
        summary[name]["ms_per_step"] = ms_per_step(runs)
        rows.append(median_row(name, summary[name]) + [f"{summary[name]['ms_per_step']:.3f}", ""])
    add_ratios(summary, {"steps_ratio": 0.75, "seconds_ratio": 0.25})
    report(f"Pendulum-v1: steps and training seconds until the deterministic evaluation "
           f"({EVAL_EPISODES} episodes every {EVAL_EVERY:,} steps) first reaches -200",
           ["agent", "seed", "env steps", "train seconds", "ms per env step",
            "evaluation returns"], rows, summary)


if __name__ == "__main__":
    main()
