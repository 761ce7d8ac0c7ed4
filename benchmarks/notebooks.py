"""Wall-clock of every solution notebook, run top to bottom.

    python benchmarks/notebooks.py [NN ...]

Target: <= 60 s each on 2 CPU cores. Executes with nbclient in a fresh kernel.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from _common import report

SOLUTIONS = Path(__file__).resolve().parent.parent / "notebooks" / "solutions"


def run(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - start


def main(only: list[str]) -> None:
    paths = [p for p in sorted(SOLUTIONS.glob("*.ipynb")) if not only or p.name[:2] in only]
    rows, summary = [], {}
    for path in paths:
        seconds = run(path)
        rows.append([path.name, f"{seconds:.1f}", "yes" if seconds <= 60 else "NO"])
        summary[path.stem] = round(seconds, 1)
    report("notebook run time (solution versions)", ["notebook", "seconds", "<= 60 s"], rows,
           {"seconds": summary, "target_seconds": 60})


if __name__ == "__main__":
    main(sys.argv[1:])
