"""Batch actor-critic against REINFORCE on CartPole-v1 (the numbers of notebook 06).

    python assets/batch_ac_sweep.py [--jobs 2] [--out assets/batch_ac_sweep.json]

Methods on one budget and one sampling scheme (N = 8 whole episodes per update, Adam,
gradient-norm clipping 0.5, discount option 1), at gamma = 0.99 unless named:
    REINFORCE with reward-to-go weights           (`train_reinforce`)
    REINFORCE with a V baseline, 10 critic steps  (`train_reinforce`, baseline=True)
    batch actor-critic, 10 critic steps per update  (`train_batch_actor_critic`, critic_epochs=10)
    batch actor-critic, 1 critic step per update    (critic_epochs=1: a critic barely fitted)
    REINFORCE and the 10-step one at gamma = 0.9    (a horizon of ~10 steps: an easier critic)

1. Learning-rate selection: each method at every lr of LRS on SELECTION_SEEDS; the best lr is
   the one with the highest mean area under the learning curve (the curve's mean over the
   budget, so learning fast counts, not only the end).
2. Evaluation: each method at its best lr on fresh EVALUATION_SEEDS (the seeds that chose the
   lr are not reused, so the comparison carries no selection bias).
3. Gradients along training: for the actor-critic runs of the first CHECKPOINT_SEEDS
   evaluation seeds, at CHECKPOINTS environment steps (a run to that budget is the prefix of the
   full run), the variance of one update's gradient estimate and its cosine with a
   large-sample reference, for reward-to-go, reward-to-go minus V, and the TD advantage, all at
   that run's policy and critic (`acteach.labs.batch_ac.checkpoint_gradients`).

Writes everything to --out (the file notebook 06 reads), prints a table, and last one JSON line
with the summary. About 30 minutes with --jobs 2 on a quiet 2-core machine. --methods NAME ...
runs only those methods and replaces their entries in an existing --out.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmarks' shared table and machine record
from _common import machine, report  # noqa: E402

BUDGET = 60_000
#: The learning curves are read off at these environment steps.
GRID = list(range(0, BUDGET + 1, 2_000))
BASE = {"env_id": "CartPole-v1", "n_episodes": 8, "total_steps": BUDGET, "gamma": 0.99,
        "lr_critic": 1e-2, "target": "one_step", "max_grad_norm": 0.5}
#: method -> (trainer, the config fields that differ from BASE)
METHODS = {"REINFORCE": ("reinforce", {}),
           "REINFORCE with V baseline": ("reinforce_baseline", {"critic_epochs": 10}),
           "actor-critic, 10 critic steps": ("actor_critic", {"critic_epochs": 10}),
           "actor-critic, 1 critic step": ("actor_critic", {"critic_epochs": 1}),
           "REINFORCE, gamma 0.9": ("reinforce", {"gamma": 0.9}),
           "actor-critic, 10 critic steps, gamma 0.9": ("actor_critic",
                                                        {"critic_epochs": 10, "gamma": 0.9})}
LRS = [1e-3, 3e-3, 1e-2]
SELECTION_SEEDS = list(range(6))
EVALUATION_SEEDS = list(range(10, 22))
CHECKPOINTS = [5_000, 20_000, BUDGET]
CHECKPOINT_SEEDS = 2
#: Episodes per gradient estimate (one update's N), estimates per checkpoint, and episodes of
#: the reference gradient.
N, N_ESTIMATES, N_REFERENCE = 8, 30, 480
FINAL_EPISODES = 40      # the final return: mean of the last 40 training episodes


def config_of(method: str, lr: float, seed: int, total_steps: int = BUDGET):
    from acteach.actor_critic import A2CConfig

    return A2CConfig(**{**BASE, **METHODS[method][1], "lr_actor": lr, "seed": seed,
                        "total_steps": total_steps})


def train(method: str, config):
    from acteach.batch_actor_critic import train_batch_actor_critic, train_reinforce

    kind = METHODS[method][0]
    if kind == "actor_critic":
        return train_batch_actor_critic(config)
    return train_reinforce(config, baseline=kind == "reinforce_baseline")


def curve_of(history) -> np.ndarray:
    """The mean return of the last 20 episodes, read off at GRID's steps."""
    return np.interp(GRID, history.episode_steps, history.running_mean())


def run(job: tuple) -> dict:
    """One training run (method, lr, seed[, total_steps]): its learning curve, the area under
    it, the final return and seconds."""
    method, lr, seed, *budget = job
    history = train(method, config_of(method, lr, seed, *budget))
    curve = curve_of(history)
    return {"method": method, "lr": lr, "seed": seed, "curve": np.round(curve, 2).tolist(),
            "auc": round(float(curve.mean()), 2),
            "final": round(float(np.mean(history.episode_returns[-FINAL_EPISODES:])), 2),
            "updates": len(history.losses["actor_loss"]), "seconds": round(history.seconds, 2)}


def measure(job: tuple[str, float, int, int]) -> dict:
    """Gradient statistics at one checkpoint of one actor-critic run."""
    from acteach.labs.batch_ac import checkpoint_gradients

    method, lr, seed, steps = job
    history = train(method, config_of(method, lr, seed, steps))
    stats = checkpoint_gradients(history.policy, history.critic, gamma_of(method), N, N_ESTIMATES,
                                 N_REFERENCE, seed=10_000 * seed + steps // 1000)
    return {"method": method, "lr": lr, "seed": seed, "steps": steps, **stats}


def gamma_of(method: str) -> float:
    """The discount the method trains (and is measured) with."""
    return METHODS[method][1].get("gamma", BASE["gamma"])


def best_lrs(runs: list[dict]) -> dict[str, float]:
    """Per method, the lr with the highest mean area under the curve."""
    out = {}
    for method in METHODS:
        auc = {lr: np.mean([r["auc"] for r in runs if r["method"] == method and r["lr"] == lr])
               for lr in LRS}
        out[method] = max(auc, key=auc.get)
    return out


def settings() -> dict:
    """What the JSON file records of the script's settings (tests/test_batch_ac_sweep.py)."""
    return {"base": BASE, "methods": {m: v[1] for m, v in METHODS.items()}, "lrs": LRS,
            "selection_seeds": SELECTION_SEEDS, "evaluation_seeds": EVALUATION_SEEDS,
            "grid": GRID, "checkpoints": CHECKPOINTS, "checkpoint_seeds": CHECKPOINT_SEEDS,
            "n": N, "n_estimates": N_ESTIMATES, "n_reference": N_REFERENCE,
            "final_episodes": FINAL_EPISODES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2,
                        help="runs in parallel, each on one thread (default 2)")
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "batch_ac_sweep.json")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    args = parser.parse_args()
    start, out = time.perf_counter(), {"settings": settings(), "machine": machine()}
    old = (json.loads(args.out.read_text()) if args.out.exists() and args.methods != list(METHODS)
           else {})

    def kept(part: str) -> list[dict]:          # the entries of the methods not rerun
        return [r for r in old.get(part, []) if r["method"] not in args.methods]

    def save(**parts) -> None:                  # after each phase, so a stopped run keeps some
        out.update(parts, minutes=round(old.get("minutes", 0)             # the whole sweep's
                                        + (time.perf_counter() - start) / 60, 1))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out) + "\n")

    methods = args.methods
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        selection = kept("selection") + list(pool.map(run, [
            (m, lr, s) for m in methods for lr in LRS for s in SELECTION_SEEDS]))
        best = best_lrs(selection)
        save(best_lr=best, selection=selection)
        evaluation = kept("evaluation") + list(pool.map(run, [
            (m, best[m], s) for m in methods for s in EVALUATION_SEEDS]))
        save(evaluation=evaluation)
        checkpoints = kept("checkpoints") + list(pool.map(measure, [
            (m, best[m], s, c) for m in methods if METHODS[m][0] == "actor_critic"
            for s in EVALUATION_SEEDS[:CHECKPOINT_SEEDS] for c in CHECKPOINTS]))
        save(checkpoints=checkpoints)
    rows = []
    for method in METHODS:
        final = [r["final"] for r in evaluation if r["method"] == method]
        auc = [r["auc"] for r in evaluation if r["method"] == method]
        rows.append([method, f"{best[method]:g}",
                     f"{np.mean(final):.1f} ± {np.std(final, ddof=1) / np.sqrt(len(final)):.1f}",
                     f"{np.mean(auc):.1f} ± {np.std(auc, ddof=1) / np.sqrt(len(auc)):.1f}"])
    report(f"CartPole-v1, {BUDGET} steps, {len(EVALUATION_SEEDS)} evaluation seeds (mean ± SE)",
           ["method", "best lr", "final return", "area under the curve"], rows,
           {"best_lr": best, "out": str(args.out)})


if __name__ == "__main__":
    main()
