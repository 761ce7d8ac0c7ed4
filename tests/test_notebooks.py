"""The course's real notebooks: committed clean, in sync, and each student notebook run as a
student runs it.

Every student and solution notebook is run in JupyterLab by tests/test_browser.py: Run All on
an untouched student notebook must reach the end, failing only at its check cells (each with
acteach.checks.ExerciseNotImplemented); no cell of a solution may fail. Here, without a kernel:
no notebook binds an exercise's name again after its def, and every exercise has its check
cell. One student notebook (02, the quickest) is also run by `exercises.run_checks`, the runner
of `python -m acteach check NN`, which must report each exercise "not implemented" and nothing
else (the browser test's Run All of every student notebook asserts the same, so the others are
not run twice).

One notebook, both ways: `pytest tests/test_notebooks.py tests/test_browser.py -k 03_`.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from acteach.exercises import (
    CHECK_CALL,
    RAISES,
    check_cells,
    count_regions,
    dirty_notebooks,
    exercises_in,
    notebook_number,
    notebooks_dir,
    out_of_sync,
    read_notebook,
    rebound_exercises,
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


def test_no_notebook_rebinds_an_exercise_name():
    # a cell after the exercise's def that imports or assigns its name would make a re-run of
    # the check cell check the library's function instead of the student's
    paths = solution_notebooks(NOTEBOOKS) + STUDENTS
    problems = [m for p in paths for m in rebound_exercises(read_notebook(p), p.name)]
    assert paths and problems == [], "\n".join(problems)


def test_every_exercise_has_its_check_cell_and_every_check_is_tagged():
    problems = []
    for path in STUDENTS:
        nb = read_notebook(path)
        solution = read_notebook(NOTEBOOKS / "solutions" / path.name)
        checks = check_cells(nb)
        checked = {call.group(2) for i in checks for call in CHECK_CALL.finditer(nb.cells[i].source)}
        for exercise in exercises_in(solution, notebook_number(path)):
            if exercise.name not in checked:
                problems.append(f"{path.name}: exercise {exercise.label} ({exercise.name}) has no "
                                "check cell")
        problems += [f"{path.name}, cell {i}: a check cell without the tag {RAISES!r}"
                     for i in checks if RAISES not in nb.cells[i].metadata.get("tags", [])]
    assert STUDENTS and problems == [], "\n".join(problems)


@pytest.mark.notebook
@pytest.mark.parametrize("path", [p for p in STUDENTS if p.name.startswith("02_")],
                         ids=lambda p: p.stem)
def test_student_notebook_fails_only_at_its_checks(path: Path):
    results = run_checks(path, timeout=600)
    problems = stub_problems(results)
    assert results and not problems, (
        f"{path.name}: an untouched student notebook must fail at its check cells only, each "
        "with ExerciseNotImplemented\n" + "\n".join(problems))
