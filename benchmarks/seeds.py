"""What K seeds trained as one computation cost: A2C on CartPole-v1 to the stop rule, ten seeds
at once (`actor_critic.train_a2c_seeds`) against the same seeds one at a time (`train_a2c`).

    python benchmarks/seeds.py [--seeds 0 1 2 3 4 5 6 7 8 9] [--budget 300000]

The rule: train until the mean return of the last 100 training episodes reaches 475 (or the
step budget). Each seed stops on its own and leaves the batch; the batch's wall-clock is until
its last seed stops. The single runs are interleaved around the batched one (the first half of
the seeds, the batch, the second half), each in a fresh process, one torch thread. Printed: the
load average at the start and the end (a warning when it exceeds the core count), each seed's
steps in both modes (the same up to float rounding), and

    ratio = batch wall-clock / median single-seed wall-clock      target: <= 2 for 10 seeds

with, since the batch waits for its slowest seed, the slowest single seed's wall-clock beside it.
"""
from __future__ import annotations

import argparse

import numpy as np

from _common import interleaved, load_average, report

THRESHOLD, WINDOW = 475.0, 100
BUDGET = 300_000


def _config(seed: int = 0):
    from acteach.actor_critic import A2CConfig

    return A2CConfig(env_id="CartPole-v1", seed=seed, total_steps=BUDGET, stop_return=THRESHOLD,
                     stop_window=WINDOW)


def run_single(seed: int) -> dict:
    """One seed with train_a2c: its steps to the rule and its wall-clock."""
    from acteach.actor_critic import train_a2c

    history = train_a2c(_config(seed), progress=False)
    return {"steps": history.steps_to_mean_return(THRESHOLD, WINDOW), "seconds": history.seconds,
            "env_steps": history.env_steps}


def run_batch(seeds: list[int]) -> dict:
    """All seeds with train_a2c_seeds: each seed's steps, the batch's wall-clock."""
    import time

    from acteach.actor_critic import train_a2c_seeds

    tic = time.perf_counter()
    histories = train_a2c_seeds(_config(), seeds)
    seconds = time.perf_counter() - tic
    return {"steps": [h.steps_to_mean_return(THRESHOLD, WINDOW) for h in histories],
            "seconds": seconds, "seed_seconds": [h.seconds for h in histories],
            "env_steps": sum(h.env_steps for h in histories)}


def main() -> None:
    global BUDGET
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--budget", type=int, default=BUDGET)
    args = parser.parse_args()
    BUDGET, seeds = args.budget, args.seeds
    half = len(seeds) // 2
    load_start = load_average("start")
    singles = interleaved({"single": run_single}, seeds[:half])["single"]
    batch = interleaved({"batch": run_batch}, [seeds])["batch"][0]     # the seed list is one job
    singles += interleaved({"single": run_single}, seeds[half:])["single"]
    load_end = load_average("end")

    rows = []
    for seed, single, steps, seconds in zip(seeds, singles, batch["steps"],
                                           batch["seed_seconds"]):
        rows.append([seed, single["steps"] or f">{BUDGET}", f"{single['seconds']:.1f}",
                     steps or f">{BUDGET}", f"{seconds:.1f}"])
    single_seconds = [s["seconds"] for s in singles]
    median, slowest = float(np.median(single_seconds)), max(single_seconds)
    summary = {"seeds": seeds, "budget": BUDGET, "load_start": load_start, "load_end": load_end,
               "batch_seconds": round(batch["seconds"], 2),
               "single_median_seconds": round(median, 2),
               "single_slowest_seconds": round(slowest, 2),
               "single_total_seconds": round(sum(single_seconds), 2),
               "ratio_to_median_single": round(batch["seconds"] / median, 3),
               "ratio_to_slowest_single": round(batch["seconds"] / slowest, 3),
               "target": {"ratio_to_median_single": 2.0}}
    rows.append(["all", "", f"total {sum(single_seconds):.1f}, median {median:.1f}", "",
                 f"batch {batch['seconds']:.1f}"])
    report(f"A2C on CartPole-v1, {len(seeds)} seeds to the last-100 mean of 475: one at a time vs "
           f"all at once (ratio to the median single seed {summary['ratio_to_median_single']}, "
           f"to the slowest {summary['ratio_to_slowest_single']})",
           ["seed", "single: steps", "single: seconds", "batched: steps",
            "batched: seconds until it left"], rows, summary)


if __name__ == "__main__":
    main()
