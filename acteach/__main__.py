"""The command line of the course (every notebook), for students and instructors.

    python -m acteach check 03              run notebook 03's cells, one line per exercise check
    python -m acteach check 03 --solutions  the same on the solution notebook
    python -m acteach exercises build       clean the solutions, regenerate the student notebooks
    python -m acteach exercises check       fail if a student notebook is out of sync or has outputs

The work is done by acteach.exercises (`run_checks`, `build`, `out_of_sync`, ...); this module
parses the arguments and prints. ACTEACH_NOTEBOOKS overrides the notebooks directory.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from acteach import exercises

BUILD = "python -m acteach exercises build"


def exercises_build(root: Path) -> int:
    """Strip the solution notebooks' outputs, write the student notebooks, warn of the rest."""
    for path in sorted((root / "solutions").glob("*.ipynb")):
        if exercises.clean(path):
            print(f"cleaned {exercises.shown(root, path)}")
    written = exercises.build(root)
    for path in written:
        print(f"wrote {exercises.shown(root, path)}")
    print(f"{len(exercises.solution_notebooks(root)) - len(written)} student notebook(s) "
          "already up to date")
    for message in exercises.out_of_sync(root) + exercises.dirty_notebooks(root):
        print(f"warning: {message}", file=sys.stderr)
    return 0


def exercises_check(root: Path) -> int:
    """0 if every student notebook is in sync and no notebook has outputs; else 1, with why."""
    messages = exercises.out_of_sync(root) + exercises.dirty_notebooks(root)
    if messages:
        for message in messages:
            print(message, file=sys.stderr)
        print(f"run: {BUILD}", file=sys.stderr)
        return 1
    print("student notebooks in sync")
    return 0


def check(number: str, solutions: bool) -> int:
    """Run one notebook and print one line per check cell (and per other failing cell)."""
    try:
        path = exercises.find_notebook(number, solutions)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"running {path.relative_to(exercises.notebooks_dir().parent)} ...")
    results = exercises.run_checks(path)
    for name, verdict, message in results:
        first = message.strip().splitlines()[0] if message.strip() else ""
        print(f"{'✓' if verdict == 'passed' else '✗'} {name}: {verdict}"
              + (f" — {first}" if first else ""))
        for line in message.strip().splitlines()[1:]:
            print(f"    {line}")
    return 0 if all(verdict == "passed" for _, verdict, _ in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acteach", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("check", help="run one notebook's exercise checks")
    run.add_argument("notebook", help="its number, e.g. 03")
    run.add_argument("--solutions", action="store_true", help="the solution notebook")
    ex = sub.add_parser("exercises", help="build or check the student notebooks")
    ex.add_argument("action", choices=["build", "check"])
    args = parser.parse_args(argv)
    if args.command == "check":
        return check(args.notebook, args.solutions)
    root = exercises.notebooks_dir()
    try:
        return exercises_build(root) if args.action == "build" else exercises_check(root)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
