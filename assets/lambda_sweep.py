"""A2C with the GAE target on CartPole-v1, a sweep over lambda (the numbers of notebook 09).

    python assets/lambda_sweep.py [--lams 0 0.5 0.9 0.95 1] [--seeds 0 1 2 3 4]
                                  [--budget 150000] [--jobs 1] [--out assets/lambda_sweep.json]

Every run is acteach's default A2CConfig (8 envs x 4 steps, normalised advantages, separate
networks) with target="gae" and one lam: lam = 0 is the one-step TD target, lam = 1 the n-step
target of the default. Each trains until the mean return of the last 100 episodes reaches 475
(CartPole-v1's "solved") or the budget of environment steps runs out, and reports, per seed,
the environment steps at which the last-20 mean first reached 200 and the last-100 mean first
reached 475 (a run that never did counts as the budget, marked ">"), and the training seconds.

Writes the per-run results and the summary to --out (the file notebook 09 reads), prints a
table, and last one JSON line with the summary.
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmarks' shared table and machine record
from _common import machine, report  # noqa: E402

THRESHOLDS = {"200 (last 20)": (200.0, 20), "475 (last 100)": (475.0, 100)}


def run(job: tuple[float, int, int]) -> dict:
    """One A2C run with target "gae" at lam, stopped at the 475 rule or the budget."""
    from acteach.actor_critic import A2CConfig, train_a2c

    lam, seed, budget = job
    config = A2CConfig(target="gae", lam=lam, seed=seed, total_steps=budget, stop_return=475.0,
                       stop_window=100)
    history = train_a2c(config, progress=False)
    out = {"lam": lam, "seed": seed, "env_steps": history.env_steps,
           "seconds": round(history.seconds, 2)}
    for key, (threshold, window) in THRESHOLDS.items():
        out[key] = history.steps_to_mean_return(threshold, window)
    return out


def summarize(runs: list[dict], budget: int) -> dict:
    """Per threshold: median, min and max steps (unreached = budget) and the unreached count."""
    out = {}
    for key in THRESHOLDS:
        steps = [r[key] if r[key] is not None else budget for r in runs]
        out[key] = {"median": float(np.median(steps)), "min": int(min(steps)),
                    "max": int(max(steps)), "unreached": sum(r[key] is None for r in runs)}
    out["median_seconds"] = round(float(np.median([r["seconds"] for r in runs])), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lams", type=float, nargs="+", default=[0.0, 0.5, 0.9, 0.95, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--budget", type=int, default=150_000)
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs in parallel, each on one thread (default 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "lambda_sweep.json")
    args = parser.parse_args()
    jobs = [(lam, seed, args.budget) for lam in args.lams for seed in args.seeds]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(run, jobs))

    summary = {str(lam): summarize([r for r in runs if r["lam"] == lam], args.budget)
               for lam in args.lams}
    rows = []
    for lam in args.lams:
        s = summary[str(lam)]
        cells = []
        for key in THRESHOLDS:
            t = s[key]
            more = f", {t['unreached']} not reached" if t["unreached"] else ""
            cells.append(f"{t['median']:.0f} ({t['min']}-{t['max']}{more})")
        rows.append([f"{lam:g}", *cells, s["median_seconds"]])
    config = {"env_id": "CartPole-v1", "target": "gae", "budget": args.budget,
              "seeds": args.seeds, "lams": args.lams,
              "note": "acteach.actor_critic.A2CConfig defaults otherwise"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"config": config, "machine": machine(), "jobs": args.jobs,
                                    "thresholds": {k: list(v) for k, v in THRESHOLDS.items()},
                                    "runs": runs, "summary": summary}, indent=1) + "\n")
    report("A2C on CartPole-v1, target gae: env steps until the mean return reaches a threshold"
           f" (median (min-max) over {len(args.seeds)} seeds; unreached = {args.budget})",
           ["lam", *(f"steps to {k}" for k in THRESHOLDS), "median seconds"], rows,
           {"budget": args.budget, "seeds": args.seeds, "summary": summary,
            "out": str(args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT)
                       else args.out)})


if __name__ == "__main__":
    main()
