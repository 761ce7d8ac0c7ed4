"""Tests over the course's real notebooks in notebooks/ (and the CLI on a synthetic tree).

Solution notebooks are executed by nbval (pytest's testpaths hold notebooks/solutions with
--nbval-lax); here the student notebooks are executed, and must fail exactly at their check
cells, each with acteach.checks.ExerciseNotImplemented.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from acteach.exercises import (
    check_cells,
    count_regions,
    dirty_notebooks,
    notebook_text,
    notebooks_dir,
    out_of_sync,
    read_notebook,
    solution_notebooks,
    student_notebooks,
)

NOTEBOOKS = notebooks_dir()
STUDENTS = student_notebooks(NOTEBOOKS)


def test_notebooks_are_clean():
    dirty = dirty_notebooks(NOTEBOOKS)
    assert dirty == [], "\n".join(dirty + ["run: python -m acteach.exercises build"])


def test_student_notebooks_in_sync():
    messages = out_of_sync(NOTEBOOKS)
    assert messages == [], "\n".join(messages + ["run: python -m acteach.exercises build"])


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


def _first_line(source: str) -> str:
    return next((line for line in source.splitlines() if line.strip()), "")


def _errors(nb: nbformat.NotebookNode) -> dict[int, tuple[str, str]]:
    """cell index -> (ename, evalue) of the cells whose outputs hold an error."""
    found = {}
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") == "error":
                found[i] = (output.get("ename", ""), output.get("evalue", ""))
                break
    return found


def _stub_report(nb: nbformat.NotebookNode, errors: dict[int, tuple[str, str]]) -> list[str]:
    checks = set(check_cells(nb))
    report = []
    for i in sorted(errors):
        ename, evalue = errors[i]
        error = f"{ename}: {evalue.splitlines()[0] if evalue else ''}"
        cell = f"cell {i} ({_first_line(nb.cells[i].source)!r})"
        if i not in checks:
            report.append(f"unexpected error in {cell}: {error}")
        elif ename != "ExerciseNotImplemented":
            report.append(f"check {cell} failed with {error} (expected ExerciseNotImplemented)")
    for i in sorted(checks - set(errors)):
        report.append(
            f"check cell {i} ({_first_line(nb.cells[i].source)!r}) passed on the stub: "
            "the check is vacuous (it should raise ExerciseNotImplemented)"
        )
    return report


@pytest.mark.notebook
@pytest.mark.parametrize("path", STUDENTS, ids=[p.name for p in STUDENTS])
def test_student_notebook_fails_only_at_checks(path: Path):
    from nbclient import NotebookClient

    nb = read_notebook(path)
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    errors = _errors(nb)
    report = _stub_report(nb, errors)
    assert set(errors) == set(check_cells(nb)) and not report, (
        f"{path.name}: the stubbed notebook must fail at its check cells only, each with "
        "ExerciseNotImplemented\n" + "\n".join(report)
    )


def test_stub_report_names_unexpected_errors_and_vacuous_checks():
    nb = new_notebook(
        cells=[
            new_code_cell("import numpy as np\nx = f()"),
            new_code_cell("check_f(f)"),
            new_code_cell("check_g(g)"),
            new_code_cell("check_h(h)"),
        ]
    )
    errors = {
        0: ("NotImplementedError", "Exercise 1.1: write the body of f"),
        1: ("ExerciseNotImplemented", "f is not implemented yet"),
        3: ("CheckFailed", "h(1): expected 2, got 3"),
    }
    report = _stub_report(nb, errors)
    assert report == [
        "unexpected error in cell 0 ('import numpy as np'): "
        "NotImplementedError: Exercise 1.1: write the body of f",
        "check cell 3 ('check_h(h)') failed with CheckFailed: h(1): expected 2, got 3 "
        "(expected ExerciseNotImplemented)",
        "check cell 2 ('check_g(g)') passed on the stub: the check is vacuous "
        "(it should raise ExerciseNotImplemented)",
    ]
    assert _stub_report(nb, {1: errors[1], 2: errors[1], 3: errors[1]}) == []


def _cli(command: str, root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ACTEACH_NOTEBOOKS": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "acteach.exercises", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_build_and_check_round_trip(tmp_path):
    root = tmp_path / "notebooks"
    solution = root / "solutions" / "02_baseline.ipynb"
    solution.parent.mkdir(parents=True)
    code = new_code_cell(
        "def baseline(returns):\n"
        '    """Mean return."""\n'
        "    ### BEGIN SOLUTION\n"
        "    return returns.mean()\n"
        "    ### END SOLUTION\n",
        execution_count=1,
    )
    nb = new_notebook(cells=[new_markdown_cell("# Baseline"), code, new_code_cell("check_b(baseline)")])
    solution.write_text(notebook_text(nb), encoding="utf-8")

    checked = _cli("check", root)
    assert checked.returncode == 1
    assert "missing: notebooks/02_baseline.ipynb" in checked.stderr
    assert "dirty: notebooks/solutions/02_baseline.ipynb" in checked.stderr

    built = _cli("build", root)
    assert built.returncode == 0, built.stderr
    assert "cleaned notebooks/solutions/02_baseline.ipynb" in built.stdout
    assert "wrote notebooks/02_baseline.ipynb" in built.stdout
    student = (root / "02_baseline.ipynb").read_text(encoding="utf-8")
    assert 'raise NotImplementedError(\\"Exercise 2.1: write the body of baseline\\")' in student
    assert "returns.mean()" not in student

    checked = _cli("check", root)
    assert (checked.returncode, checked.stdout.strip()) == (0, "student notebooks in sync")
    assert _cli("build", root).stdout.strip() == "1 student notebook(s) already up to date"
    assert (root / "02_baseline.ipynb").read_text(encoding="utf-8") == student

    (root / "02_baseline.ipynb").write_text(student.replace("# Baseline", "# Edited"), encoding="utf-8")
    checked = _cli("check", root)
    assert checked.returncode == 1 and "stale: notebooks/02_baseline.ipynb" in checked.stderr


def test_cli_reports_a_bad_region_as_an_error(tmp_path):
    root = tmp_path / "notebooks"
    solution = root / "solutions" / "03_bad.ipynb"
    solution.parent.mkdir(parents=True)
    nb = new_notebook(cells=[new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n")])
    solution.write_text(notebook_text(nb), encoding="utf-8")
    result = _cli("check", root)
    assert result.returncode == 1
    assert "solutions/03_bad.ipynb, cell 0" in result.stderr and "not inside a def" in result.stderr
