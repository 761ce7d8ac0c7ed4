"""How fast acteach's SAC solves Pendulum-v1, side by side with Stable-Baselines3's SAC.

    python benchmarks/learning_pendulum.py [--seeds 0 1 2 3 4] [--no-sb3]

The rule, the same for both: every 1,000 environment steps, evaluate the deterministic policy
(the mean action, squashed) on 5 episodes; report the environment steps and the training seconds
(wall-clock from the first environment step on, evaluation excluded; building the networks
excluded) at the first evaluation whose mean return is >= -200, per seed, then the median and
range. Both run with one torch thread, one run at a time. A run that has not reached -200
within its step budget counts as the budget (marked ">").

acteach: `acteach.sac.train_sac` with its default SACConfig (64x64 networks, batch
128, learning_starts 1,000, tau 0.01, lr 1e-3, tuned alpha). It has no early stop, so each run
trains to its budget; only the time to the first evaluation >= -200 is reported.

Stable-Baselines3 (the optional extra: pip install -e ".[bench]") runs its SAC with the RL Zoo
hyperparameters for Pendulum-v1: learning_rate 1e-3, everything else at SB3's defaults (256x256
networks, batch 256, learning_starts 100, tau 0.005, tuned alpha). A callback evaluates it by the
same rule (same evaluation seeds) and stops it at the first evaluation >= -200.

Target: acteach's median steps <= SB3's, and median seconds <= 0.4x SB3's.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from _common import add_ratios, median_row, report, summarize_runs

THRESHOLD, EVAL_EVERY, EVAL_EPISODES = -200.0, 1_000, 5
BUDGET = {"acteach": 8_000, "sb3": 20_000}


def eval_seeds(seed: int) -> np.random.Generator:
    """The seeds of the successive evaluations of a run: acteach's own sequence."""
    return np.random.default_rng([seed, 1])


def run_acteach(seed: int) -> dict:
    """acteach's SAC with its default SACConfig, evaluated every EVAL_EVERY steps."""
    from acteach.sac import SACConfig, train_sac

    config = SACConfig(env_id="Pendulum-v1", seed=seed, total_steps=BUDGET["acteach"],
                       eval_every=EVAL_EVERY, eval_episodes=EVAL_EPISODES)
    history = train_sac(config, progress=False)
    return {"steps": history.steps_to_eval_return(THRESHOLD),
            "seconds": history.seconds_to_eval_return(THRESHOLD),
            "budget_seconds": history.seconds, "evals": history.eval_returns}


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
            "budget_seconds": callback.train_seconds(), "evals": callback.evals}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--no-sb3", action="store_true", help="acteach only")
    args = parser.parse_args()
    runners = {"acteach": run_acteach}
    if not args.no_sb3:
        try:
            import stable_baselines3  # noqa: F401
            runners["sb3"] = run_sb3
        except ImportError:
            print("stable-baselines3 is not installed (pip install -e '.[bench]'): "
                  "acteach only")

    rows, summary = [], {"threshold": THRESHOLD, "eval_every": EVAL_EVERY,
                         "eval_episodes": EVAL_EPISODES, "budget": BUDGET}
    for name, run in runners.items():
        results = []
        for seed in args.seeds:
            r = run(seed)
            results.append(r)
            steps = r["steps"] if r["steps"] is not None else f">{BUDGET[name]}"
            seconds = (f"{r['seconds']:.1f}" if r["seconds"] is not None
                       else f">{r['budget_seconds']:.1f}")
            evals = " ".join(f"{x:.0f}" for x in r["evals"])
            rows.append([name, seed, steps, seconds, evals])
            print(f"{name} seed {seed}: steps {steps}, seconds {seconds}; evaluations {evals}",
                  flush=True)
        summary[name] = summarize_runs(results, BUDGET[name])
        rows.append(median_row(name, summary[name]) + [""])
    add_ratios(summary, {"steps_ratio": 1.0, "seconds_ratio": 0.4})
    report("Pendulum-v1: steps and training seconds until the deterministic evaluation "
           "(5 episodes every 1,000 steps) first reaches -200",
           ["agent", "seed", "env steps", "train seconds", "evaluation returns"], rows, summary)


if __name__ == "__main__":
    main()
