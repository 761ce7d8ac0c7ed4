"""`python -m acteach check NN`: one line per exercise check, passed / not implemented / wrong."""
import os
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from acteach.__main__ import find_notebook

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
