"""Unit tests of the solution -> student notebook builder, on synthetic notebooks."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from acteach.exercises import (
    RAISES,
    Exercise,
    build,
    build_student_notebook,
    check_cells,
    clean,
    count_regions,
    dirty_notebooks,
    exercises_in,
    held_work,
    notebook_text,
    out_of_sync,
    read_notebook,
    rebound_exercises,
    student_path,
)

RTG = '''import numpy as np


def reward_to_go(rew, mask, gamma=1.0):
    """Q_hat[t, n] = sum_{t' >= t} gamma^{t'-t} rew[t', n]."""
    ### BEGIN SOLUTION
    out = np.zeros_like(rew)
    running = 0.0
    for t in reversed(range(len(rew))):
        running = rew[t] + gamma * running
        out[t] = running
    return out
    ### END SOLUTION
'''

NESTED = '''class Agent:
    def act(self, obs):
        """Pick an action."""
        if obs is None:
            ### BEGIN SOLUTION
            return 0
            ### END SOLUTION
        return 1
'''

BASELINE = '''def baseline(
    returns,
    axis=1,
):
    """Mean return over trajectories."""
    ### BEGIN SOLUTION
    return returns.mean(axis=axis, keepdims=True)
    ### END SOLUTION
'''


def solution_notebook() -> nbformat.NotebookNode:
    """A two-exercise solution notebook, with outputs and execution counts as if run."""
    run = new_code_cell("x = 1\nx", execution_count=3)
    run.outputs = [new_output("execute_result", data={"text/plain": "1"}, execution_count=3)]
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Reward to go\n\nThe *past* cannot be credited."),
            new_code_cell(RTG, execution_count=1),
            new_code_cell("check_reward_to_go(reward_to_go)", execution_count=2),
            run,
            new_code_cell(BASELINE),
            new_code_cell("check_baseline(baseline)"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nb.cells[1].metadata["tags"] = ["exercise"]
    return nb


def one_cell(source: str) -> nbformat.NotebookNode:
    return new_notebook(cells=[new_code_cell(source)])


def write(path: Path, nb: nbformat.NotebookNode) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(notebook_text(nb), encoding="utf-8")
    return path


# --- stubbing ------------------------------------------------------------------------------


def test_region_is_replaced_by_one_stub_line_at_the_marker_indentation():
    student = build_student_notebook(solution_notebook(), 1)
    source = student.cells[1].source
    assert "BEGIN SOLUTION" not in source and "END SOLUTION" not in source
    assert "running" not in source
    stub = '    raise NotImplementedError("Exercise 1.1: write the body of reward_to_go")'
    assert source.splitlines()[-1] == stub
    assert source.count("NotImplementedError") == 1


def test_signature_docstring_and_surrounding_code_are_kept():
    source = build_student_notebook(solution_notebook(), 1).cells[1].source
    lines = source.splitlines()
    assert lines[0] == "import numpy as np"
    assert "def reward_to_go(rew, mask, gamma=1.0):" in lines
    assert '    """Q_hat[t, n] = sum_{t\' >= t} gamma^{t\'-t} rew[t\', n]."""' in lines
    compile(source, "<student>", "exec")


def test_two_exercises_are_numbered_in_cell_order_with_the_notebook_number():
    student = build_student_notebook(solution_notebook(), 7)
    assert "Exercise 7.1: write the body of reward_to_go" in student.cells[1].source
    assert "Exercise 7.2: write the body of baseline" in student.cells[4].source
    assert count_regions(solution_notebook()) == 2


def test_nested_region_in_a_method_and_multiline_signature():
    source = build_student_notebook(one_cell(NESTED), 3).cells[0].source
    assert source.splitlines() == [
        "class Agent:",
        "    def act(self, obs):",
        '        """Pick an action."""',
        "        if obs is None:",
        '            raise NotImplementedError("Exercise 3.1: write the body of act")',
        "        return 1",
    ]
    stub = build_student_notebook(one_cell(BASELINE), 2).cells[0].source
    assert 'raise NotImplementedError("Exercise 2.1: write the body of baseline")' in stub
    assert stub.startswith("def baseline(\n    returns,\n    axis=1,\n):")


def test_two_regions_in_one_cell_are_both_numbered():
    source = build_student_notebook(one_cell(RTG + "\n\n" + BASELINE), 4).cells[0].source
    assert "Exercise 4.1: write the body of reward_to_go" in source
    assert "Exercise 4.2: write the body of baseline" in source
    assert "keepdims" not in source


def test_check_cells_are_tagged_raises_exception_in_the_student_notebook_only():
    solution = solution_notebook()
    student = build_student_notebook(solution, 1)
    assert [i for i, c in enumerate(student.cells) if RAISES in c.metadata.get("tags", [])] == [2, 5]
    assert not any(c.metadata.get("tags") == [RAISES] for c in solution.cells)
    assert build_student_notebook(student, 1) == student     # the tag is not added twice


def test_markdown_metadata_and_ids_are_copied_unchanged():
    solution = solution_notebook()
    student = build_student_notebook(solution, 1)
    assert student.cells[0] == solution.cells[0]
    assert student.metadata == solution.metadata
    assert student.cells[1].metadata == {"tags": ["exercise"]}
    assert student.cells[2].metadata == {"tags": [RAISES]}
    assert [c.metadata for c in solution.cells] == [{}, {"tags": ["exercise"]}, {}, {}, {}, {}]
    assert [c.id for c in student.cells] == [c.id for c in solution.cells]
    assert student.cells[3].source == solution.cells[3].source


def test_outputs_and_execution_counts_are_stripped_and_input_untouched():
    solution = solution_notebook()
    before = notebook_text(solution)
    student = build_student_notebook(solution, 1)
    code = [c for c in student.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert notebook_text(solution) == before  # the solution notebook is not modified
    assert solution.cells[3].outputs  # ... it still has its output


def test_check_cells_are_the_cells_calling_a_checker():
    assert check_cells(solution_notebook()) == [2, 5]
    nb = new_notebook(
        cells=[
            new_markdown_cell("check_x(f) in markdown is not a check cell"),
            new_code_cell("from acteach.checks import check_rtg"),
            new_code_cell("recheck_rtg(f)"),
            new_code_cell("result = check_rtg (f)"),
            new_code_cell("x = 1\ncheck_rtg(f)"),
            new_code_cell("def check_local(f):\n    assert f(1) == 2"),
            new_code_cell("acteach.checks.check_rtg(f)"),
        ]
    )
    assert check_cells(nb) == [4, 6]


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, reason",
    [
        ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "not inside a def"),
        ("for i in range(3):\n    ### BEGIN SOLUTION\n    x = i\n    ### END SOLUTION\n",
         "not inside a def"),
        ("class A:\n    ### BEGIN SOLUTION\n    x = 1\n    ### END SOLUTION\n", "not inside a def"),
        ("def f():\n    class A:\n        ### BEGIN SOLUTION\n        x = 1\n"
         "        ### END SOLUTION\n", "not inside a def"),
        ("def f():\n    ### BEGIN SOLUTION\n    x = 1\ny = 2\n    ### END SOLUTION\n",
         "not inside a def"),
        ("def f(:\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n", "line 1"),
        ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "unbalanced"),
        ("def f():\n    return 1\n    ### END SOLUTION\n", "unbalanced"),
        ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    return 1\n"
         "    ### END SOLUTION\n    ### END SOLUTION\n", "nested"),
        ("def f():\n    ### BEGIN SOLUTION\n\n    ### END SOLUTION\n", "empty"),
        ("def f():\n    ### BEGIN SOLUTION\n    # TODO\n    ### END SOLUTION\n", "empty"),
        ("def f():\n    ## BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n", "malformed"),
    ],
)
def test_bad_regions_raise_value_error_naming_notebook_and_cell(source, reason):
    nb = new_notebook(cells=[new_markdown_cell("intro"), new_code_cell(source)])
    with pytest.raises(ValueError, match=reason) as error:
        build_student_notebook(nb, 5, name="solutions/05_bad.ipynb")
    assert "solutions/05_bad.ipynb, cell 1" in str(error.value)


def test_a_marker_inside_a_string_is_text_not_a_marker():
    source = ('def f():\n    """Write it between\n    ### BEGIN SOLUTION\n    and the end."""\n'
              '    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n')
    stub = build_student_notebook(one_cell(source), 6).cells[0].source
    assert stub.splitlines()[2:] == ["    ### BEGIN SOLUTION", '    and the end."""',
                                     '    raise NotImplementedError("Exercise 6.1: write the body of f")']


def test_default_name_in_errors_is_the_notebook_number():
    with pytest.raises(ValueError, match="notebook 05, cell 0"):
        build_student_notebook(one_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION"), 5)


def test_student_path_and_bad_names(tmp_path):
    solution = tmp_path / "notebooks" / "solutions" / "03_actor_critic.ipynb"
    assert student_path(solution) == tmp_path / "notebooks" / "03_actor_critic.ipynb"
    with pytest.raises(ValueError, match="NN_topic"):
        student_path(tmp_path / "solutions" / "intro.ipynb")
    with pytest.raises(ValueError, match="solutions/"):
        student_path(tmp_path / "drafts" / "03_actor_critic.ipynb")


# --- files ---------------------------------------------------------------------------------


def test_build_writes_students_and_is_byte_identical_when_repeated(tmp_path):
    write(tmp_path / "solutions" / "01_reward_to_go.ipynb", solution_notebook())
    target = tmp_path / "01_reward_to_go.ipynb"
    assert build(tmp_path) == ([target], [])
    first = target.read_bytes()
    assert first.endswith(b"}\n") and b'\n "cells": [\n  {' in first  # nbformat, indent=1
    assert build(tmp_path) == ([], [])  # nothing changed, nothing written
    target.unlink()
    assert build(tmp_path) == ([target], [])
    assert target.read_bytes() == first
    student = nbformat.reads(first.decode(), as_version=4)
    assert "Exercise 1.2: write the body of baseline" in student.cells[4].source
    assert out_of_sync(tmp_path) == []


def test_missing_cell_ids_get_deterministic_ids(tmp_path):
    path = write(tmp_path / "solutions" / "02_ids.ipynb", solution_notebook())
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"id": ', '"old_id": '), encoding="utf-8")
    ids = [c.id for c in read_notebook(path).cells]
    assert ids == [c.id for c in read_notebook(path).cells]
    assert len(set(ids)) == len(ids)
    build(tmp_path)
    assert out_of_sync(tmp_path) == []


def test_out_of_sync_detects_missing_stale_and_extra(tmp_path):
    assert out_of_sync(tmp_path) == []  # an empty tree is in sync
    solution = write(tmp_path / "solutions" / "01_reward_to_go.ipynb", solution_notebook())
    assert out_of_sync(tmp_path) == [
        "missing: " + f"{tmp_path.name}/01_reward_to_go.ipynb "
        f"(from {tmp_path.name}/solutions/01_reward_to_go.ipynb)"
    ]
    build(tmp_path)
    assert out_of_sync(tmp_path) == []

    nb = solution_notebook()
    nb.cells[0].source += "\nEdited."
    write(solution, nb)
    (stale,) = out_of_sync(tmp_path)
    assert stale.startswith("stale: ") and "01_reward_to_go.ipynb" in stale
    build(tmp_path)

    write(tmp_path / "02_orphan.ipynb", one_cell("x = 1"))
    write(tmp_path / "solutions" / "notes.ipynb", one_cell("x = 1"))
    messages = out_of_sync(tmp_path)
    assert any(m.startswith("extra: ") and "02_orphan.ipynb" in m for m in messages)
    assert any(m.startswith("misnamed: ") and "notes.ipynb" in m for m in messages)
    assert len(messages) == 2


def test_dirty_notebooks_detects_outputs_and_execution_counts(tmp_path):
    write(tmp_path / "solutions" / "01_ok.ipynb", one_cell("x = 1"))
    assert dirty_notebooks(tmp_path) == []

    write(tmp_path / "solutions" / "02_run.ipynb", solution_notebook())  # outputs and counts
    counted = one_cell("x = 1")
    counted.cells[0].execution_count = 4
    write(tmp_path / "03_counted.ipynb", counted)
    output = one_cell("print(1)")
    output.cells[0].outputs = [new_output("stream", name="stdout", text="1\n")]
    write(tmp_path / "04_output.ipynb", output)

    messages = dirty_notebooks(tmp_path)
    assert len(messages) == 3
    text = "\n".join(messages)
    assert "01_ok" not in text
    assert "02_run.ipynb has 1 cell(s) with outputs and 3 with execution counts" in text
    assert "03_counted.ipynb has 0 cell(s) with outputs and 1 with execution counts" in text
    assert "04_output.ipynb has 1 cell(s) with outputs and 0 with execution counts" in text


def test_clean_strips_outputs_in_place_and_is_idempotent(tmp_path):
    original = solution_notebook()
    path = write(tmp_path / "solutions" / "01_run.ipynb", original)
    assert dirty_notebooks(tmp_path)
    assert clean(path) is True
    assert dirty_notebooks(tmp_path) == []
    cleaned = path.read_bytes()
    assert clean(path) is False
    assert path.read_bytes() == cleaned
    nb = read_notebook(path)
    assert "running = rew[t] + gamma * running" in nb.cells[1].source  # solutions stay solutions
    assert [c.id for c in nb.cells] == [c.id for c in original.cells]


# --- exercises, rebinding, work -------------------------------------------------------------


def test_exercises_come_from_the_regions_or_else_from_the_stubs():
    solution = solution_notebook()
    expected = [Exercise("1.1", "reward_to_go", 1), Exercise("1.2", "baseline", 4)]
    assert exercises_in(solution, 1) == expected
    assert exercises_in(build_student_notebook(solution, 1), 1) == expected


REBIND = [
    "def critic_loss(v):\n    ### BEGIN SOLUTION\n    return v\n    ### END SOLUTION",
    "check_critic_loss(critic_loss)",
    "from acteach.critic import critic_loss as library_critic_loss\n"
    "def helper():\n    critic_loss = 1\n    return critic_loss\n"
    "values = [critic_loss for critic_loss in range(3)]",
]


def test_rebinding_an_exercise_name_after_its_def_is_found():
    assert rebound_exercises(new_notebook(cells=[new_code_cell(c) for c in REBIND])) == []
    for later in ("from acteach.critic import critic_loss  # the library's",
                  "critic_loss = library_critic_loss", "import critic_loss",
                  "for critic_loss in (1, 2):\n    pass"):
        nb = new_notebook(cells=[new_code_cell(c) for c in REBIND + [later]])
        (message,) = rebound_exercises(nb, "04_fitting_v.ipynb")
        assert message.startswith(f"04_fitting_v.ipynb, cell 3, line 1: `{later.splitlines()[0]}` "
                                  "binds critic_loss again after the exercise's def (cell 0)")
    before = new_notebook(cells=[new_code_cell("from acteach.critic import critic_loss")]
                          + [new_code_cell(c) for c in REBIND])
    assert rebound_exercises(before) == []      # before the def: the def wins


def test_held_work_names_each_edited_exercise(tmp_path):
    solution = write(tmp_path / "solutions" / "01_reward_to_go.ipynb", solution_notebook())
    target = tmp_path / "01_reward_to_go.ipynb"
    assert held_work(solution, target) == []                 # no student notebook yet
    build(tmp_path)
    assert held_work(solution, target) == []                 # untouched
    student = read_notebook(target)
    student.cells[4].source = student.cells[4].source.replace(
        'raise NotImplementedError("Exercise 1.2: write the body of baseline")', "return 0")
    student.cells[0].source = "# my notes"                   # not an exercise: not work
    student.cells[3].outputs = [new_output("stream", name="stdout", text="1\n")]
    write(target, student)
    assert held_work(solution, target) == ["exercise 1.2 (baseline)"]
    assert build(tmp_path) == ([], [(target, "your work in exercise 1.2 (baseline) differs from "
                                              "the stub")])
    assert "return 0" in read_notebook(target).cells[4].source
    assert build(tmp_path, force=True) == ([target], [])
    assert held_work(solution, target) == []
    target.write_text("{not json", encoding="utf-8")
    assert held_work(solution, target) == ["the whole file (not a readable notebook: "
                                           "JSONDecodeError)"]
    assert build(tmp_path).skipped[0][0] == target
