"""`python -m acteach`, the one command line: `check NN` and `exercises build|check`."""
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from acteach.__main__ import main
from acteach.exercises import find_notebook, notebook_text, run_checks

CELLS = [
    "import numpy as np\nfrom acteach import checks, returns",
    "def good(rew, mask, gamma=1.0):\n    return returns.reward_to_go(rew, mask, gamma)",
    "def stub(rew, mask, gamma=1.0):\n    raise NotImplementedError('Exercise 9.1')",
    "def bad(rew, mask, gamma=1.0):\n    return np.cumsum(rew, axis=0)",
    "checks.check_reward_to_go(good)",
    "checks.check_reward_to_go(stub)",
    "checks.check_reward_to_go(bad)",
    "1 / 0",
]


@pytest.mark.notebook
def test_check_reports_each_exercise(tmp_path):
    nb = new_notebook(cells=[new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "09_demo.ipynb")
    env = {**os.environ, "ACTEACH_NOTEBOOKS": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "acteach", "check", "9"], env=env,
                         capture_output=True, text=True, timeout=300)
    lines = [line for line in out.stdout.splitlines() if line[:1] in "✓✗"]
    assert lines[0] == "✓ good: passed"
    assert lines[1].startswith("✗ stub: not implemented")
    assert lines[2].startswith("✗ bad: wrong — reward_to_go(rew=")
    assert lines[3].startswith("✗ cell 7 (1 / 0): error — ZeroDivisionError")
    assert out.returncode == 1


def test_find_notebook_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTEACH_NOTEBOOKS", str(tmp_path))
    with pytest.raises(ValueError, match="^notebook: expected a number"):
        find_notebook("three", solutions=False)
    with pytest.raises(ValueError, match="^notebook: no notebook 03"):
        find_notebook("03", solutions=False)
    assert main(["check", "03"]) == 2
    with pytest.raises(SystemExit):
        main(["check", "03", "--timeout", "0.5"])
    with pytest.raises(ValueError, match="^timeout: expected a whole number of seconds"):
        run_checks(tmp_path / "03_x.ipynb", timeout=0)


def _exercises(action: str, root: Path, monkeypatch, capsys) -> tuple[int, str, str]:
    """`python -m acteach exercises <action>` on the notebooks directory root."""
    monkeypatch.setenv("ACTEACH_NOTEBOOKS", str(root))
    code = main(["exercises", action])
    out, err = capsys.readouterr()
    return code, out, err


def test_exercises_build_and_check_round_trip(tmp_path, monkeypatch, capsys):
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

    status, _, err = _exercises("check", root, monkeypatch, capsys)
    assert status == 1
    assert "missing: notebooks/02_baseline.ipynb" in err
    assert "dirty: notebooks/solutions/02_baseline.ipynb" in err
    assert err.strip().splitlines()[-1].startswith("run: python -m acteach exercises build (safe")

    status, out, err = _exercises("build", root, monkeypatch, capsys)
    assert status == 0, err
    assert "cleaned notebooks/solutions/02_baseline.ipynb" in out
    assert "wrote notebooks/02_baseline.ipynb" in out
    student = (root / "02_baseline.ipynb").read_text(encoding="utf-8")
    assert 'raise NotImplementedError(\\"Exercise 2.1: write the body of baseline\\")' in student
    assert "returns.mean()" not in student

    status, out, _ = _exercises("check", root, monkeypatch, capsys)
    assert (status, out.strip()) == (0, "student notebooks in sync")
    _, out, _ = _exercises("build", root, monkeypatch, capsys)
    assert out.strip() == "1 student notebook(s) already up to date"
    assert (root / "02_baseline.ipynb").read_text(encoding="utf-8") == student

    (root / "02_baseline.ipynb").write_text(student.replace("# Baseline", "# Edited"),
                                            encoding="utf-8")
    status, _, err = _exercises("check", root, monkeypatch, capsys)
    assert status == 1 and "stale: notebooks/02_baseline.ipynb" in err


def test_exercises_check_reports_a_bad_region_as_an_error(tmp_path, monkeypatch, capsys):
    root = tmp_path / "notebooks"
    solution = root / "solutions" / "03_bad.ipynb"
    solution.parent.mkdir(parents=True)
    nb = new_notebook(cells=[new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n")])
    solution.write_text(notebook_text(nb), encoding="utf-8")
    status, _, err = _exercises("check", root, monkeypatch, capsys)
    assert status == 1
    assert "solutions/03_bad.ipynb, cell 0" in err and "not inside a def" in err



# --- check NN: a missing check cell, a looping exercise, copies, broken notebooks -----------

def _region(name: str, body: str) -> str:
    return (f"def {name}(rew, mask, gamma=1.0):\n    ### BEGIN SOLUTION\n    {body}\n"
            "    ### END SOLUTION")


def _notebook(path: Path, cells: list[str]) -> Path:
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(notebook_text(nb), encoding="utf-8")
    return path


@pytest.mark.notebook
def test_check_names_a_missing_check_cell_and_interrupts_a_looping_exercise(tmp_path):
    # the solution has three exercises; the student's loops in 9.2 and deleted 9.3's check cell
    good = "return returns.reward_to_go(rew, mask, gamma)"
    _notebook(tmp_path / "solutions" / "09_demo.ipynb", [
        CELLS[0], _region("good", good), "checks.check_reward_to_go(good)",
        _region("looping", good), "checks.check_reward_to_go(looping)",
        _region("gone", good), "checks.check_reward_to_go(gone)", "print('the end')"])
    student = _notebook(tmp_path / "09_demo.ipynb", [
        CELLS[0], CELLS[1], "checks.check_reward_to_go(good)",
        "def looping(rew, mask, gamma=1.0):\n    while True:\n        pass",
        "checks.check_reward_to_go(looping)",
        "def gone(rew, mask, gamma=1.0):\n    return rew", "1 / 0"])
    out = subprocess.run([sys.executable, "-m", "acteach", "check", str(student), "--timeout", "5"],
                         capture_output=True, text=True, timeout=300)
    lines = [line for line in out.stdout.splitlines() if line[:1] in "✓✗"]
    assert lines == [
        "✓ good: passed",
        "✗ looping: timed out — still running after 5 s, so it was interrupted (an endless "
        "loop?); the other cells went on",
        "✗ cell 6 (1 / 0): error — ZeroDivisionError: division by zero",
        "✗ exercise 9.3: its check cell is missing; add a code cell after gone with: "
        "checks.check_reward_to_go(gone)",
    ], out.stdout + out.stderr
    assert out.returncode == 1 and "Traceback" not in out.stderr


def test_check_refuses_several_matching_notebooks_and_a_path_picks_one(tmp_path, monkeypatch,
                                                                      capsys):
    monkeypatch.setenv("ACTEACH_NOTEBOOKS", str(tmp_path))
    original = _notebook(tmp_path / "02_use_q.ipynb", ["x = 1"])
    _notebook(tmp_path / "02_use_q-Copy1.ipynb", ["x = 1"])
    assert main(["check", "02"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"error: notebook: 2 notebooks match 02; name the one to check by its path, e.g. "
        f"python -m acteach check {tmp_path.name}/02_use_q.ipynb",
        f"  {tmp_path.name}/02_use_q-Copy1.ipynb",
        f"  {tmp_path.name}/02_use_q.ipynb",
    ]
    assert find_notebook(str(original)) == original
    with pytest.raises(ValueError, match="^notebook: no file"):
        find_notebook(str(tmp_path / "07_nothing.ipynb"))


def test_check_an_invalid_notebook_is_one_line_and_status_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ACTEACH_NOTEBOOKS", str(tmp_path))
    (tmp_path / "03_broken.ipynb").write_text('{"cells": [\n  {"cell_type": "code",\n', "utf-8")
    assert main(["check", "03"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"error: {tmp_path / '03_broken.ipynb'} is not a valid notebook (not JSON: Expecting "
        "property name enclosed in double quotes: line 3 column 1 (char 36)); restore it from a "
        "backup or from git"]
    (tmp_path / "03_broken.ipynb").write_text('{"cells": 3}', "utf-8")
    assert main(["check", "03"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "is not a valid notebook" in err


@pytest.mark.notebook
def test_check_a_dead_kernel_is_one_line_and_status_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ACTEACH_NOTEBOOKS", str(tmp_path))
    _notebook(tmp_path / "04_dies.ipynb", ["x = 1", "import os\nos._exit(1)", "x"])
    assert main(["check", "04"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "error: the kernel died while running cell 1 (import os) (out of memory, or os._exit?); "
        "fix that cell and check again"]


# --- exercises build never destroys work ----------------------------------------------------

def _built_rtg(tmp_path: Path, monkeypatch, capsys) -> Path:
    """notebooks/ with one solution notebook (exercise 2.1, rtg) and its built student notebook."""
    root = tmp_path / "notebooks"
    _notebook(root / "solutions" / "02_rtg.ipynb", [
        CELLS[0], _region("rtg", "return returns.reward_to_go(rew, mask, gamma)"),
        "checks.check_reward_to_go(rtg)"])
    assert _exercises("build", root, monkeypatch, capsys)[0] == 0
    return root


def test_build_skips_a_student_notebook_holding_work_unless_forced(tmp_path, monkeypatch,
                                                                   capsys):
    root = _built_rtg(tmp_path, monkeypatch, capsys)
    path = root / "02_rtg.ipynb"
    stub = path.read_text(encoding="utf-8")
    answer = stub.replace('raise NotImplementedError(\\"Exercise 2.1: write the body of rtg\\")',
                          "return my_answer(rew)")
    assert answer != stub
    path.write_text(answer, encoding="utf-8")

    status, _, err = _exercises("check", root, monkeypatch, capsys)
    assert status == 1
    assert err.splitlines() == [
        "stale: notebooks/02_rtg.ipynb differs from its generated version; it holds work in "
        "exercise 2.1 (rtg), so `exercises build` leaves it alone and only `exercises build "
        "--force` would overwrite it (copy your answers out first)",
        "run: python -m acteach exercises build (safe: it skips the notebooks that hold work "
        "and updates the rest; only python -m acteach exercises build --force overwrites work)"]

    status, out, err = _exercises("build", root, monkeypatch, capsys)
    assert status == 1 and out.strip() == "0 student notebook(s) already up to date"
    assert err.splitlines() == [
        "skipped notebooks/02_rtg.ipynb: your work in exercise 2.1 (rtg) differs from the stub; "
        "it is left as it is. To replace it with the generated notebook (losing that work): "
        "python -m acteach exercises build --force"]
    assert path.read_text(encoding="utf-8") == answer

    monkeypatch.setenv("ACTEACH_NOTEBOOKS", str(root))
    assert main(["exercises", "build", "--force"]) == 0
    assert "wrote notebooks/02_rtg.ipynb" in capsys.readouterr().out
    assert path.read_text(encoding="utf-8") == stub


def test_exercises_check_says_build_is_safe_when_no_exercise_was_edited(tmp_path, monkeypatch,
                                                                        capsys):
    root = _built_rtg(tmp_path, monkeypatch, capsys)
    path = root / "02_rtg.ipynb"
    path.write_text(path.read_text(encoding="utf-8").replace("import numpy", "import  numpy"),
                    encoding="utf-8")
    status, _, err = _exercises("check", root, monkeypatch, capsys)
    assert status == 1 and err.splitlines() == [
        "stale: notebooks/02_rtg.ipynb differs from its generated version (cell(s) 0); no "
        "exercise was edited, so `exercises build` is safe",
        "run: python -m acteach exercises build (safe: no student notebook holds work)"]
    assert _exercises("build", root, monkeypatch, capsys)[:2] == (
        0, "wrote notebooks/02_rtg.ipynb\n0 student notebook(s) already up to date\n")
