"""Command line for students and instructors.

    python -m acteach check 03              run notebook 03's cells, one line per exercise check
    python -m acteach check 03 --solutions  the same on the solution notebook
    python -m acteach exercises build       regenerate the student notebooks (instructors)
    python -m acteach exercises check       fail if a student notebook is out of sync
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from acteach import exercises

CHECK_CALL = re.compile(r"\b(check_\w+)\((\w+)")


def find_notebook(number: str, solutions: bool) -> Path:
    """notebooks/NN_*.ipynb (or notebooks/solutions/NN_*.ipynb) for a number like '3' or '03'."""
    folder = exercises.notebooks_dir() / ("solutions" if solutions else "")
    if not number.isdigit():
        raise ValueError(f"notebook: expected a number like 03, got {number!r}")
    found = sorted(folder.glob(f"{int(number):02d}_*.ipynb"))
    if not found:
        raise ValueError(f"notebook: no notebook {int(number):02d} in {folder}")
    return found[0]


def run_checks(path: Path) -> list[tuple[str, str, str]]:
    """Execute a notebook top to bottom; -> (cell, verdict, message) for every check cell and for
    any other cell that failed. verdict: passed | not implemented | wrong | error."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    checks = set(exercises.check_cells(nb))
    results = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        error = next((o for o in cell.outputs if o.output_type == "error"), None)
        if i in checks:
            call = CHECK_CALL.search(cell.source)
            name = call.group(2) if call else f"cell {i}"
            results.append((name, *_verdict(error)))
        elif error is not None:
            results.append((f"cell {i} ({cell.source.splitlines()[0][:50]})", "error",
                            f"{error.ename}: {error.evalue}"))
    return results


def _verdict(error) -> tuple[str, str]:
    if error is None:
        return "passed", ""
    if error.ename == "ExerciseNotImplemented":
        return "not implemented", error.evalue
    if error.ename == "CheckFailed":
        return "wrong", error.evalue
    return "error", f"{error.ename}: {error.evalue}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acteach", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="run one notebook's exercise checks")
    check.add_argument("notebook", help="its number, e.g. 03")
    check.add_argument("--solutions", action="store_true", help="the solution notebook")
    ex = sub.add_parser("exercises", help="build or check the student notebooks")
    ex.add_argument("action", choices=["build", "check"])
    args = parser.parse_args(argv)
    if args.command == "exercises":
        return exercises.main([args.action])
    try:
        path = find_notebook(args.notebook, args.solutions)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"running {path.relative_to(exercises.notebooks_dir().parent)} ...")
    results = run_checks(path)
    for name, verdict, message in results:
        first = message.strip().splitlines()[0] if message.strip() else ""
        print(f"{'✓' if verdict == 'passed' else '✗'} {name}: {verdict}"
              + (f" — {first}" if first else ""))
        for line in message.strip().splitlines()[1:]:
            print(f"    {line}")
    return 0 if all(verdict == "passed" for _, verdict, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
