"""The course's real notebooks: committed clean, in sync, and each student notebook run as a
student runs it.

Every student notebook in notebooks/ is executed by `exercises.run_checks`, the runner of
`python -m acteach check NN`: each check cell must report "not implemented" (the stub raised
acteach.checks.ExerciseNotImplemented) and no other cell may fail. The solution notebooks are
run in JupyterLab by tests/test_browser.py, which asserts that no cell fails there.

One notebook, both ways: `pytest tests/test_notebooks.py tests/test_browser.py -k 03_`.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from acteach.exercises import (
    check_cells,
    count_regions,
    dirty_notebooks,
    notebooks_dir,
    out_of_sync,
    read_notebook,
    run_checks,
    solution_notebooks,
    student_notebooks,
)

NOTEBOOKS = notebooks_dir()
STUDENTS = student_notebooks(NOTEBOOKS)
BUILD = "run: python -m acteach exercises build"


def test_notebooks_are_clean():
    dirty = dirty_notebooks(NOTEBOOKS)
    assert dirty == [], "\n".join(dirty + [BUILD])


def test_student_notebooks_in_sync():
    messages = out_of_sync(NOTEBOOKS)
    assert messages == [], "\n".join(messages + [BUILD])


def test_every_solution_has_a_student_version_and_exercises():
    problems = []
    for solution in solution_notebooks(NOTEBOOKS):
        nb = read_notebook(solution)
        if count_regions(nb, name=f"solutions/{solution.name}") == 0:
            problems.append(f"solutions/{solution.name}: no ### BEGIN SOLUTION region")
        if not check_cells(nb):
            problems.append(f"solutions/{solution.name}: no check cell (a `check_...(` call)")
        if not (NOTEBOOKS / solution.name).exists():
            problems.append(f"{solution.name}: no student notebook")
    assert problems == [], "\n".join(problems)


def stub_problems(results: list[tuple[str, str, str]]) -> list[str]:
    """What is wrong in run_checks' results on an untouched student notebook: a check that is
    not "not implemented", or any other cell that failed."""
    problems = []
    for name, verdict, message in results:
        first = message.strip().splitlines()[0] if message.strip() else ""
        if verdict == "passed":
            problems.append(f"{name}: passed on the stub, so the check is vacuous "
                            "(it should raise ExerciseNotImplemented)")
        elif verdict != "not implemented":
            problems.append(f"{name}: {verdict} — {first}")
    return problems


def test_stub_problems_name_unexpected_errors_and_vacuous_checks():
    results = [("f", "not implemented", "f is not implemented yet"),
               ("g", "passed", ""),
               ("h", "wrong", "h(1): expected 2, got 3\n  hint: ..."),
               ("cell 0 (import numpy as np)", "error", "NameError: name 'f' is not defined")]
    assert stub_problems(results) == [
        "g: passed on the stub, so the check is vacuous (it should raise ExerciseNotImplemented)",
        "h: wrong — h(1): expected 2, got 3",
        "cell 0 (import numpy as np): error — NameError: name 'f' is not defined",
    ]


@pytest.mark.notebook
@pytest.mark.parametrize("path", STUDENTS, ids=[p.stem for p in STUDENTS])
def test_student_notebook_fails_only_at_its_checks(path: Path):
    results = run_checks(path)
    problems = stub_problems(results)
    assert results and not problems, (
        f"{path.name}: an untouched student notebook must fail at its check cells only, each "
        "with ExerciseNotImplemented\n" + "\n".join(problems))
