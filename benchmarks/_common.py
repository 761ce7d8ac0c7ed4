"""Shared output of the benchmarks: a table, then one JSON line (the last line printed)."""
from __future__ import annotations

import json
import os
import platform
import time


def machine() -> dict:
    """What the numbers were measured on."""
    return {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
            "python": platform.python_version()}


def report(title: str, header: list[str], rows: list[list], summary: dict) -> None:
    """Print a fixed-width table and, last, one JSON line with the summary."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print(title)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
    print(json.dumps({"benchmark": title, **machine(), **summary}))
