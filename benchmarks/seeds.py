"""What K seeds trained as one computation cost: ten seeds at once against the same seeds one at
a time, for A2C (`actor_critic.train_a2c_seeds` vs `train_a2c`) and for notebook 06's batch
actor-critic and REINFORCE (`batch_actor_critic.train_batch_actor_critic_seeds` vs
`train_batch_actor_critic`, `train_reinforce_seeds` vs `train_reinforce`).

    python benchmarks/seeds.py [--algorithms a2c a2c_budget batch_ac reinforce]
                               [--seeds 0 1 ... 9] [--budget 300000] [--episodes-budget 20000]

A2C trains on CartPole-v1 until the mean return of the last 100 training episodes reaches 475
(or --budget steps); "a2c_budget" is the same A2C for a fixed 100,000 steps each, as the sweeps
of notebooks 07 and 09 train (every seed does the same work, so the ratio is the cost of the
batching itself, not of the batch waiting for a seed that needs more steps). Batch actor-critic and REINFORCE train notebook 06's config (N = 8 whole
episodes per update, 10 critic epochs, the one-step target) for a fixed --episodes-budget of
steps (20,000, the notebook's). Each seed stops on its own and leaves the batch; the batch's
wall-clock is until its last seed stops. For each algorithm the single runs are interleaved
around the batched one (the first half of the seeds, the batch, the second half), each in a
fresh process, one torch thread. Printed: the load average at the start and the end (a warning
when it exceeds the core count), each seed's result in both modes (the same up to float
rounding), and per algorithm

    ratio = batch wall-clock / median single-seed wall-clock      target: <= 2 for 10 seeds

with, since the batch waits for its slowest seed, the slowest single seed's wall-clock beside it.
"""
from __future__ import annotations

import argparse
import functools
import time

import numpy as np

from _common import interleaved, load_average, report

THRESHOLD, WINDOW = 475.0, 100
BUDGET = 300_000             # A2C: steps at most, to the stop rule
A2C_BUDGET = 100_000         # a2c_budget: steps, as the sweeps of notebooks 07 and 09 train
EPISODES_BUDGET = 20_000     # batch actor-critic and REINFORCE: steps, as notebook 06 trains
FINAL_EPISODES = 40          # their result: the mean return of the last 40 episodes
ALGORITHMS = ("a2c", "a2c_budget", "batch_ac", "reinforce")
TITLES = {"a2c": "A2C", "a2c_budget": f"A2C, {A2C_BUDGET:,} steps", "batch_ac": "batch actor-critic",
          "reinforce": "REINFORCE"}


def _config(algorithm: str, seed: int = 0):
    from acteach.actor_critic import A2CConfig

    if algorithm == "a2c":
        return A2CConfig(env_id="CartPole-v1", seed=seed, total_steps=BUDGET,
                         stop_return=THRESHOLD, stop_window=WINDOW)
    if algorithm == "a2c_budget":
        return A2CConfig(env_id="CartPole-v1", seed=seed, total_steps=A2C_BUDGET)
    return A2CConfig(env_id="CartPole-v1", seed=seed, n_episodes=8, total_steps=EPISODES_BUDGET,
                     lr_actor=1e-3, lr_critic=1e-2, critic_epochs=10, target="one_step",
                     gamma=0.99)


def _trainers(algorithm: str):
    """(the single-seed trainer, the many-seeds trainer) of an algorithm."""
    from acteach import actor_critic, batch_actor_critic as bac

    return {"a2c": (actor_critic.train_a2c, actor_critic.train_a2c_seeds),
            "a2c_budget": (actor_critic.train_a2c, actor_critic.train_a2c_seeds),
            "batch_ac": (bac.train_batch_actor_critic, bac.train_batch_actor_critic_seeds),
            "reinforce": (bac.train_reinforce, bac.train_reinforce_seeds)}[algorithm]


def _result(algorithm: str, history) -> int | float | None:
    """A2C: steps to the stop rule (None if not reached); the others: the final mean return."""
    if algorithm == "a2c":
        return history.steps_to_mean_return(THRESHOLD, WINDOW)
    return round(float(np.mean(history.episode_returns[-FINAL_EPISODES:])), 1)


def run_single(algorithm: str, seed: int) -> dict:
    """One seed with the single-seed trainer: its result and its wall-clock."""
    single, _ = _trainers(algorithm)
    history = single(_config(algorithm, seed), progress=False)
    return {"result": _result(algorithm, history), "seconds": history.seconds,
            "env_steps": history.env_steps}


def run_batch(algorithm: str, seeds: list[int]) -> dict:
    """All seeds with the many-seeds trainer: each seed's result, the batch's wall-clock."""
    _, many = _trainers(algorithm)
    tic = time.perf_counter()
    histories = many(_config(algorithm), seeds)
    seconds = time.perf_counter() - tic
    return {"results": [_result(algorithm, h) for h in histories], "seconds": seconds,
            "seed_seconds": [h.seconds for h in histories],
            "env_steps": sum(h.env_steps for h in histories)}


def measure(algorithm: str, seeds: list[int]) -> dict:
    """The interleaved runs of one algorithm, its table printed; -> its summary."""
    half = len(seeds) // 2
    single = functools.partial(run_single, algorithm)
    singles = interleaved({"single": single}, seeds[:half])["single"]
    batch = interleaved({"batch": functools.partial(run_batch, algorithm)},
                        [seeds])["batch"][0]                          # the seed list is one job
    singles += interleaved({"single": single}, seeds[half:])["single"]

    unsolved = f">{BUDGET}"
    show = (lambda r: unsolved if r is None else r) if algorithm == "a2c" else (lambda r: r)
    rows = [[seed, show(s["result"]), f"{s['seconds']:.1f}", show(r), f"{sec:.1f}"]
            for seed, s, r, sec in zip(seeds, singles, batch["results"], batch["seed_seconds"])]
    single_seconds = [s["seconds"] for s in singles]
    median, slowest = float(np.median(single_seconds)), max(single_seconds)
    summary = {"batch_seconds": round(batch["seconds"], 2),
               "single_median_seconds": round(median, 2),
               "single_slowest_seconds": round(slowest, 2),
               "single_total_seconds": round(sum(single_seconds), 2),
               "ratio_to_median_single": round(batch["seconds"] / median, 3),
               "ratio_to_slowest_single": round(batch["seconds"] / slowest, 3),
               "target": {"ratio_to_median_single": 2.0}}
    rows.append(["all", "", f"total {sum(single_seconds):.1f}, median {median:.1f}", "",
                 f"batch {batch['seconds']:.1f}"])
    budget = A2C_BUDGET if algorithm == "a2c_budget" else EPISODES_BUDGET
    what = ("steps to the last-100 mean of 475" if algorithm == "a2c"
            else f"mean return of the last {FINAL_EPISODES} episodes after {budget:,} steps")
    report(f"{TITLES[algorithm]} on CartPole-v1, {len(seeds)} seeds: one at a time vs all at "
           f"once (ratio to the median single seed {summary['ratio_to_median_single']}, to the "
           f"slowest {summary['ratio_to_slowest_single']})",
           ["seed", f"single: {what}", "single: seconds", "batched: the same",
            "batched: seconds until it left"], rows, summary)
    return summary


def main() -> None:
    global BUDGET, EPISODES_BUDGET
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", nargs="+", choices=ALGORITHMS, default=list(ALGORITHMS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--budget", type=int, default=BUDGET)
    parser.add_argument("--episodes-budget", type=int, default=EPISODES_BUDGET)
    args = parser.parse_args()
    BUDGET, EPISODES_BUDGET = args.budget, args.episodes_budget
    load_start = load_average("start")
    summaries = {algorithm: measure(algorithm, args.seeds) for algorithm in args.algorithms}
    load_end = load_average("end")
    report("Many seeds at once: batch wall-clock / median single-seed wall-clock",
           ["algorithm", "ratio to the median single", "to the slowest single"],
           [[TITLES[a], s["ratio_to_median_single"], s["ratio_to_slowest_single"]]
            for a, s in summaries.items()],
           {"seeds": args.seeds, "budget": BUDGET, "episodes_budget": EPISODES_BUDGET,
            "load_start": load_start, "load_end": load_end, "algorithms": summaries})


if __name__ == "__main__":
    main()
