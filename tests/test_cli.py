"""`python -m acteach`, the one command line: `check NN` and `exercises build|check`."""
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from acteach.__main__ import main
from acteach.exercises import find_notebook, notebook_text

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
    assert err.strip().splitlines()[-1] == "run: python -m acteach exercises build"

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

