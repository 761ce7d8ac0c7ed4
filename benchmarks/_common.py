"""Shared output of the benchmarks: a table, then one JSON line (the last line printed)."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def machine() -> dict:
    """What the numbers were measured on."""
    return {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
            "python": platform.python_version()}


def import_torch_optim() -> None:
    """Import what torch imports lazily when the first optimiser is built (torch._dynamo,
    about 1-2 s, once per process), so that the clock of either side times training, not this
    one-time import. Every runner calls it before its clock starts."""
    import torch._dynamo  # noqa: F401


def load_average(when: str) -> list[float]:
    """Print the 1, 5 and 15-minute load averages, with a warning when the 1-minute one exceeds
    the core count (other jobs then share the cores and the timings are not to be trusted);
    -> the three numbers."""
    load = [round(x, 2) for x in os.getloadavg()]
    cores = os.cpu_count() or 1
    print(f"load average at {when}: {load[0]} {load[1]} {load[2]} ({cores} cores)", flush=True)
    if load[0] > cores:
        print(f"WARNING: the load average {load[0]} exceeds the {cores} cores: other jobs share "
              f"the machine, so the timings below are not to be trusted", flush=True)
    return load


def interleaved(runners: dict, seeds: list[int], on_result=None) -> dict[str, list[dict]]:
    """Run every side on seed 0, then every side on seed 1, ... (acteach 0, SB3 0, acteach 1,
    ...), each in a fresh process, so that load drifting during the benchmark lands on both
    sides alike. runners: name -> a picklable function seed -> result dict. on_result(name, seed,
    result) is called as each run ends. -> name -> results in seed order."""
    from concurrent.futures import ProcessPoolExecutor

    results: dict[str, list[dict]] = {name: [] for name in runners}
    for seed in seeds:
        for name, run in runners.items():
            with ProcessPoolExecutor(max_workers=1) as pool:       # a fresh process per run
                result = pool.submit(run, seed).result()
            results[name].append(result)
            if on_result is not None:
                on_result(name, seed, result)
    return results


def ms_per_step(results: list[dict]) -> float:
    """Median over runs of the training milliseconds per environment step."""
    return round(float(np.median([1000 * r["step_seconds"] / r["step_count"]
                                  for r in results])), 4)


def report(title: str, header: list[str], rows: list[list], summary: dict) -> None:
    """Print a fixed-width table and, last, one JSON line with the summary."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print(title)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
    print(json.dumps({"benchmark": title, **machine(), **summary}))


def summarize_runs(results: list[dict], budget: int) -> dict:
    """Median and range of steps and seconds over seeds; an unsolved run (steps None) counts
    as the budget and its whole training time."""
    steps = [r["steps"] if r["steps"] is not None else budget for r in results]
    seconds = [r["seconds"] if r["seconds"] is not None else r["budget_seconds"]
               for r in results]
    return {"median_steps": float(np.median(steps)), "min_steps": min(steps),
            "max_steps": max(steps), "median_seconds": round(float(np.median(seconds)), 1),
            "min_seconds": round(min(seconds), 1), "max_seconds": round(max(seconds), 1),
            "unsolved": sum(r["steps"] is None for r in results)}


def median_row(name: str, summary: dict) -> list:
    """The table row "name, median, steps (range), seconds (range)" of summarize_runs' dict."""
    s = summary
    return [name, "median", f"{s['median_steps']:.0f} ({s['min_steps']}-{s['max_steps']})",
            f"{s['median_seconds']} ({s['min_seconds']}-{s['max_seconds']})"]


def add_ratios(summary: dict, targets: dict) -> None:
    """acteach's medians over SB3's, in place, when both ran."""
    if "sb3" in summary:
        for key in ("steps", "seconds"):
            summary[f"{key}_ratio"] = round(summary["acteach"][f"median_{key}"]
                                            / summary["sb3"][f"median_{key}"], 3)
        summary["targets"] = targets


def run_sides(run_acteach, run_sb3, seeds: list[int], no_sb3: bool, row
              ) -> tuple[dict[str, list[dict]], list[float], list[float]]:
    """acteach and SB3 interleaved seed by seed (acteach alone with no_sb3, or when
    stable-baselines3 is not installed), each result printed as it comes by
    row(name, seed, result) -> printable fields; -> (results by side, load at start, at end)."""
    runners = {"acteach": run_acteach}
    if not no_sb3:
        try:
            import stable_baselines3  # noqa: F401
            runners["sb3"] = run_sb3
        except ImportError:
            print("stable-baselines3 is not installed (pip install -e '.[bench]'): "
                  "acteach only")
    load_start = load_average("start")
    results = interleaved(runners, seeds,
                          lambda name, seed, r: print(*row(name, seed, r), flush=True))
    return results, load_start, load_average("end")


def write_sweep(out: Path, config: dict, runs_key: str, runs: list[dict], label_key: str,
                title: str, window: int) -> None:
    """Write a learning sweep of assets/ (its config, the machine, the runs under runs_key and a
    summary: each run's final return as mean and 95% CI half-width over its seeds, by the run's
    label_key) to out, and report it as a table ending in one JSON line."""
    from acteach.stats import mean_ci

    summary, rows = {}, []
    for r in runs:
        label = r[label_key] if isinstance(r[label_key], str) else f"{r[label_key]:g}"
        mean, half = mean_ci(r["final"])
        summary[label] = {"final_mean": round(float(mean), 1),
                          "ci95_half_width": round(float(half), 1)}
        rows.append([label, f"{mean:.1f} ± {half:.1f}", min(r["final"]), max(r["final"]),
                     r["seconds"]])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": config, "machine": machine(), runs_key: runs,
                               "summary": summary}) + "\n")
    root = Path(__file__).resolve().parent.parent
    report(f"{title}: final return (last {window} episodes), mean ± 95% CI over "
           f"{len(config['seeds'])} seeds",
           [label_key, "final return", "min", "max", "seconds"], rows,
           {"budget": config["budget"], "seeds": config["seeds"], "summary": summary,
            "out": str(out.relative_to(root) if out.is_relative_to(root) else out)})
