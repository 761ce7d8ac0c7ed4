"""A2C on CartPole-v1 for every N envs x T steps per update, several seeds (notebook 07's grid).

    python assets/parallel_grid_sweep.py [--seeds 0 1 2 3 4] [--budget 20000] [--jobs 1]
                                         [--part all|grid|entropy]
                                         [--out assets/parallel_grid_sweep.json]

Every cell is acteach's default A2CConfig with n_envs = N, n_steps = T and raw advantages
(`parallel.grid_config`: standardising a one-transition rollout is impossible, so no cell
standardises), trained for --budget environment steps; (N, T) = (1, 1) is the online
actor-critic. Each run records its updates, wall-clock seconds, the mean return of its last 20
episodes, and its learning curve at 50 equally spaced env steps (`parallel.learning_grid`).

The entropy part: the cell N = 4, T = 4 (raw advantages) with and without an entropy bonus
(ent_coef 0 and 0.01), seeds 0-4, the same budget: each run's peak and final 20-episode mean
return and the policy's mean entropy over its first 50 and its last 100 updates. It asks whether
the drops of some curves after their peak are the policy's entropy collapsing.

Writes the settings and the runs to --out (the file notebook 07 and its lab read; --part
entropy adds that part to an existing file), then prints one line per cell: final return and
seconds, mean +- the 95% confidence half-width over seeds. The seconds were measured on the
machine named in the file: compare them with one another.
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmarks' machine record
from _common import machine  # noqa: E402

WINDOW, POINTS = 20, 50
SEEDS, BUDGET = [0, 1, 2, 3, 4], 20_000          # the grid's default seeds and env steps per run
ENTROPY_CELL, ENTROPY_COEFS, ENTROPY_SEEDS = (4, 4), (0.0, 0.01), (0, 1, 2, 3, 4)
_warm = False


def settings(seeds: list[int], budget: int) -> dict:
    """What the file was computed with (the test compares it with the script's defaults)."""
    from acteach.parallel import GRID_N_ENVS, GRID_N_STEPS

    return {"n_envs": list(GRID_N_ENVS), "n_steps": list(GRID_N_STEPS), "seeds": list(seeds),
            "total_steps": budget, "window": WINDOW, "points": POINTS, "normalize_adv": False}


def run(job: tuple[int, int, int, int]) -> dict:
    """One run of the grid: cell (n_envs, n_steps), one seed."""
    from acteach.actor_critic import A2CConfig
    from acteach.parallel import learning_grid

    n_envs, n_steps, seed, budget = job
    global _warm
    if not _warm:     # a process's first run pays torch's and gymnasium's one-time start-up
        learning_grid(A2CConfig(total_steps=500), [0], (4,), (4,))
        _warm = True
    (grid_run,) = learning_grid(A2CConfig(total_steps=budget), [seed], (n_envs,), (n_steps,),
                                WINDOW, POINTS)
    return grid_run.to_json()


def entropy_part(budget: int) -> dict:
    """The entropy comparison (see the module docstring), each coefficient's seeds trained as
    one computation."""
    import numpy as np

    from acteach.actor_critic import A2CConfig, train_a2c_seeds

    out = {"settings": {"cell": list(ENTROPY_CELL), "ent_coefs": list(ENTROPY_COEFS),
                        "seeds": list(ENTROPY_SEEDS), "total_steps": budget, "window": WINDOW},
           "runs": []}
    for coef in ENTROPY_COEFS:
        config = A2CConfig(total_steps=budget, n_envs=ENTROPY_CELL[0], n_steps=ENTROPY_CELL[1],
                           normalize_adv=False, ent_coef=coef)
        for seed, history in zip(ENTROPY_SEEDS, train_a2c_seeds(config, list(ENTROPY_SEEDS))):
            mean = history.running_mean(WINDOW)
            entropy = np.asarray(history.losses["entropy"])
            out["runs"].append({"ent_coef": coef, "seed": seed,
                                "peak_return": round(float(mean.max()), 2),
                                "final_return": round(float(mean[-1]), 2),
                                "entropy_start": round(float(entropy[:50].mean()), 4),
                                "entropy_end": round(float(entropy[-100:].mean()), 4)})
    return out


def main() -> None:
    from acteach.parallel import GRID_N_ENVS, GRID_N_STEPS, GridRun, cell_ci, grid_cells

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--budget", type=int, default=BUDGET)
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs in parallel, each on one thread (default 1)")
    parser.add_argument("--part", choices=("all", "grid", "entropy"), default="all")
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "parallel_grid_sweep.json")
    args = parser.parse_args()
    if args.part == "entropy":
        out = json.loads(args.out.read_text())
        out["entropy"] = entropy_part(args.budget)
        args.out.write_text(json.dumps(out, indent=1) + "\n")
        return
    jobs = [(n, t, seed, args.budget) for n in GRID_N_ENVS for t in GRID_N_STEPS
            for seed in args.seeds]
    runs = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for result in pool.map(run, jobs):          # in order; each run printed as it ends
            runs.append(result)
            print(f"N = {result['n_envs']}, T = {result['n_steps']}, seed {result['seed']}: "
                  f"final return {result['final_return']}, {result['seconds']} s", flush=True)
    out = {"settings": settings(args.seeds, args.budget), "machine": machine(), "runs": runs}
    if args.part == "all":
        out["entropy"] = entropy_part(args.budget)
    elif args.out.exists():                         # the grid alone: keep the stored entropy part
        out["entropy"] = json.loads(args.out.read_text())["entropy"]
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    for (n, t), cell in grid_cells([GridRun.from_json(r) for r in runs]).items():
        ret, sec = cell_ci(cell, "final_return"), cell_ci(cell, "seconds")
        print(f"N = {n:>2}, T = {t:>2}: final return {ret[0]:6.1f} +- {ret[1]:5.1f}, "
              f"{sec[0]:6.1f} +- {sec[1]:4.1f} s")


if __name__ == "__main__":
    main()
