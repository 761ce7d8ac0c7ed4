"""The command line of the course (every notebook), for students and instructors.

    python -m acteach check 03              run notebook 03's cells, one line per exercise check
    python -m acteach check notebooks/03_baselines-Copy1.ipynb   the same on a notebook by path
    python -m acteach check 03 --solutions  the same on the solution notebook
    python -m acteach check 03 --timeout 60 seconds per cell before it is interrupted
    python -m acteach exercises build       clean the solutions, regenerate the student notebooks
                                            (skipping any whose exercise cells hold work)
    python -m acteach exercises build --force   ... overwriting them too
    python -m acteach exercises check       fail if a student notebook is out of sync or has outputs

The work is done by acteach.exercises (`run_checks`, `build`, `out_of_sync`, ...); this module
parses the arguments and prints. ACTEACH_NOTEBOOKS overrides the notebooks directory.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from acteach import exercises
except ImportError as error:    # `doctor` must still run where the course's packages are missing
    exercises, MISSING = None, error

BUILD = "python -m acteach exercises build"
TIMEOUT = 60


def exercises_build(root: Path, force: bool = False) -> int:
    """Strip the solution notebooks' outputs, write the student notebooks except those holding
    work (unless force), warn of the rest. 1 if a notebook was skipped."""
    for path in sorted((root / "solutions").glob("*.ipynb")):
        if exercises.clean(path):
            print(f"cleaned {exercises.shown(root, path)}")
    written, skipped = exercises.build(root, force=force)
    for path in written:
        print(f"wrote {exercises.shown(root, path)}")
    for path, reason in skipped:
        print(f"skipped {exercises.shown(root, path)}: {reason}; it is left as it is. To "
              f"replace it with the generated notebook (losing that work): {BUILD} --force",
              file=sys.stderr)
    print(f"{len(exercises.solution_notebooks(root)) - len(written) - len(skipped)} student "
          "notebook(s) already up to date")
    for message in exercises.out_of_sync(root) + exercises.dirty_notebooks(root):
        if not any(message.startswith(f"stale: {exercises.shown(root, p)} ") for p, _ in skipped):
            print(f"warning: {message}", file=sys.stderr)
    return 1 if skipped else 0


def exercises_check(root: Path) -> int:
    """0 if every student notebook is in sync and no notebook has outputs; else 1, with why
    and which command is safe."""
    messages = exercises.out_of_sync(root) + exercises.dirty_notebooks(root)
    if messages:
        for message in messages:
            print(message, file=sys.stderr)
        if any("holds work" in message for message in messages):
            print(f"run: {BUILD} (safe: it skips the notebooks that hold work and updates the "
                  f"rest; only {BUILD} --force overwrites work)", file=sys.stderr)
        else:
            print(f"run: {BUILD} (safe: no student notebook holds work)", file=sys.stderr)
        return 1
    print("student notebooks in sync")
    return 0


def check(notebook: str, solutions: bool, timeout: int = TIMEOUT) -> int:
    """Run one notebook and print one line per check cell (and per other failing cell).
    0 if every check passed, 1 if not, 2 if the notebook could not be found, read or run."""
    try:
        path = exercises.find_notebook(notebook, solutions)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        shown = path.resolve().relative_to(exercises.notebooks_dir().parent)
    except ValueError:
        shown = path
    print(f"running {shown} ...", flush=True)
    try:
        results = exercises.run_checks(path, timeout=timeout)
    except exercises.RunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, verdict, message in results:
        first = message.strip().splitlines()[0] if message.strip() else ""
        if verdict == "missing":
            print(f"✗ {name}: {first}")
            continue
        print(f"{'✓' if verdict == 'passed' else '✗'} {name}: {verdict}"
              + (f" — {first}" if first else ""))
        for line in message.strip().splitlines()[1:]:
            print(f"    {line}")
    return 0 if all(verdict == "passed" for _, verdict, _ in results) else 1


def _seconds(text: str) -> int:
    """--timeout: a whole number of seconds >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of seconds >= 1, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acteach", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("check", help="run one notebook's exercise checks")
    run.add_argument("notebook", help="its number, e.g. 03, or its path")
    run.add_argument("--solutions", action="store_true", help="the solution notebook")
    run.add_argument("--timeout", type=_seconds, default=TIMEOUT, metavar="SECONDS",
                     help=f"per cell, before it is interrupted (default {TIMEOUT})")
    ex = sub.add_parser("exercises", help="build or check the student notebooks")
    ex.add_argument("action", choices=["build", "check"])
    ex.add_argument("--force", action="store_true",
                    help="build: overwrite student notebooks even where they hold work")
    sub.add_parser("doctor", help="which installed packages differ from the tested versions")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        from acteach import doctor
        return doctor.report()
    if exercises is None:
        print(f"error: {MISSING}; run python -m acteach doctor to see what differs from the "
              "tested set", file=sys.stderr)
        return 2
    if args.command == "check":
        return check(args.notebook, args.solutions, args.timeout)
    root = exercises.notebooks_dir()
    try:
        if args.action == "build":
            return exercises_build(root, force=args.force)
        return exercises_check(root)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
