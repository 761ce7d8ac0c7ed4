"""Exercise pipeline: solution notebooks -> student notebooks (backs every notebook).

The solution notebooks `notebooks/solutions/NN_topic.ipynb` are the source of truth. In their
code cells, each exercise is a region inside a function body:

    def reward_to_go(rew, mask, gamma=1.0):
        \"\"\"docstring stays\"\"\"
        ### BEGIN SOLUTION
        ...solution lines...
        ### END SOLUTION

The student notebook `notebooks/NN_topic.ipynb` is generated from it: every region (markers
included) becomes one line

        raise NotImplementedError("Exercise N.K: write the body of reward_to_go")

at the marker's indentation, where N is int(NN) and K counts the regions of the notebook in cell
order. Everything else is copied, outputs and execution counts are dropped, cell ids are kept,
and the text is written by nbformat (indent=1, final newline) so regenerating is byte-identical.

A check cell is a code cell that calls a checker (`check_...(`); run on a student notebook, it
must fail with `acteach.checks.ExerciseNotImplemented` and no other cell may fail.

    python -m acteach.exercises build   # clean the solutions, write the student notebooks
    python -m acteach.exercises check   # exit 1 if a student notebook is out of sync or dirty

The environment variable ACTEACH_NOTEBOOKS overrides the notebooks directory.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import nbformat
from nbformat import NotebookNode

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
NOTEBOOK_NAME = re.compile(r"^(\d{2})_[^/\\]+\.ipynb$")
# a call of a checker, `check_...(`; not its definition `def check_...(`
CHECK_CALL = re.compile(r"(?<!def )\bcheck_\w+\(")

_MARKER = re.compile(r"^\s*#+\s*(BEGIN|END)\s+SOLUTION\b", re.IGNORECASE)
_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)\s*\(")
_BLOCK = re.compile(
    r"^\s*(?:class|if|elif|else|for|while|with|try|except|finally|match|case|async)\b"
)


def notebooks_dir() -> Path:
    """The notebooks directory: $ACTEACH_NOTEBOOKS if set, else the repository's notebooks/."""
    override = os.environ.get("ACTEACH_NOTEBOOKS")
    if override:
        return Path(override).resolve()
    return Path(__file__).resolve().parent.parent / "notebooks"


def _root(root: Path | None) -> Path:
    return notebooks_dir() if root is None else Path(root)


# --- regions -------------------------------------------------------------------------------


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _enclosing_def(lines: list[str], marker: int) -> str | None:
    """Name of the nearest `def` enclosing line `marker`, or None if it is not inside a def.

    Walks back over the preceding lines: a less indented `def` encloses the marker; a less
    indented block statement (if/for/with/...) lowers the bar; a `class` body is not a function
    body. Other less indented lines are continuations (multi-line signatures, docstrings).
    """
    limit = _indent(lines[marker])
    for line in reversed(lines[:marker]):
        if not line.strip() or _indent(line) >= limit:
            continue
        found = _DEF.match(line)
        if found:
            return found.group(2)
        if _BLOCK.match(line):
            if line.lstrip().startswith("class"):
                return None
            limit = _indent(line)
    return None


def _marker_kind(line: str, where: str, lineno: int) -> str | None:
    """'begin', 'end' or None for an ordinary line; a near-miss marker is an error."""
    if not _MARKER.match(line):
        return None
    stripped = line.strip()
    if stripped == BEGIN:
        return "begin"
    if stripped == END:
        return "end"
    raise ValueError(
        f"{where}, line {lineno}: malformed marker {stripped!r}; write exactly {BEGIN!r} or {END!r}"
    )


def _is_code(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _regions(source: str, where: str) -> list[tuple[int, int, str]]:
    """(begin line, end line, enclosing def) of each region in a cell's source, in order."""
    lines = source.split("\n")
    regions: list[tuple[int, int, str]] = []
    begin: int | None = None
    for i, line in enumerate(lines):
        kind = _marker_kind(line, where, i + 1)
        if kind == "begin":
            if begin is not None:
                raise ValueError(
                    f"{where}, line {i + 1}: nested {BEGIN!r} (the one on line {begin + 1} is open)"
                )
            begin = i
        elif kind == "end":
            if begin is None:
                raise ValueError(f"{where}, line {i + 1}: unbalanced {END!r} without {BEGIN!r}")
            regions.append(_region(lines, begin, i, where))
            begin = None
    if begin is not None:
        raise ValueError(f"{where}, line {begin + 1}: unbalanced {BEGIN!r} without {END!r}")
    return regions


def _region(lines: list[str], begin: int, end: int, where: str) -> tuple[int, int, str]:
    if not any(_is_code(line) for line in lines[begin + 1 : end]):
        raise ValueError(f"{where}, line {begin + 1}: empty solution region (no code)")
    name = _enclosing_def(lines, begin)
    if name is None:
        raise ValueError(f"{where}, line {begin + 1}: solution region is not inside a def")
    return begin, end, name


def _stub_source(source: str, where: str, number: int, first: int) -> tuple[str, int]:
    """The cell source with its regions stubbed, numbering from `first`; and the region count."""
    regions = _regions(source, where)
    if not regions:
        return source, 0
    lines = source.split("\n")
    out: list[str] = []
    start = 0
    for k, (begin, end, name) in enumerate(regions):
        pad = lines[begin][: _indent(lines[begin])]
        message = f"Exercise {number}.{first + k}: write the body of {name}"
        out += lines[start:begin] + [f'{pad}raise NotImplementedError("{message}")']
        start = end + 1
    out += lines[start:]
    return "\n".join(out), len(regions)


def count_regions(nb: NotebookNode, name: str = "notebook") -> int:
    """Number of solution regions in the notebook's code cells (validating them)."""
    return sum(
        len(_regions(cell.source, f"{name}, cell {i}"))
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
    )


def check_cells(nb: NotebookNode) -> list[int]:
    """Indices of the code cells that call a checker (`check_...(`, not `def check_...(`)."""
    return [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and CHECK_CALL.search(cell.source)
    ]


# --- notebooks -----------------------------------------------------------------------------


def _strip(nb: NotebookNode) -> NotebookNode:
    """The notebook (modified in place) without outputs and execution counts."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def build_student_notebook(
    nb: NotebookNode, number: int, name: str | None = None
) -> NotebookNode:
    """The student version of a solution notebook: regions stubbed, outputs stripped.

    `number` is the notebook's NN; `name` (default "notebook NN") names it in errors.
    The input notebook is not modified; metadata and cell ids are kept.
    """
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise ValueError(f"number: expected a non-negative int, got {number!r}")
    name = name or f"notebook {number:02d}"
    student = _strip(copy.deepcopy(nb))
    exercise = 1
    for i, cell in enumerate(student.cells):
        if cell.cell_type != "code":
            continue
        cell.source, found = _stub_source(cell.source, f"{name}, cell {i}", number, exercise)
        exercise += found
    return student


def notebook_number(path: Path) -> int:
    """NN of a notebook named NN_topic.ipynb."""
    match = NOTEBOOK_NAME.match(Path(path).name)
    if not match:
        raise ValueError(f"path: {path} is not named NN_topic.ipynb")
    return int(match.group(1))


def student_path(solution_path: Path) -> Path:
    """notebooks/solutions/NN_topic.ipynb -> notebooks/NN_topic.ipynb."""
    solution_path = Path(solution_path)
    notebook_number(solution_path)
    if solution_path.parent.name != "solutions":
        raise ValueError(f"solution_path: {solution_path} is not in a solutions/ directory")
    return solution_path.parent.parent / solution_path.name


def _stable_id(index: int, cell: dict, used: set[str]) -> str:
    digest = hashlib.sha1(f"{index}\0{cell.get('cell_type')}\0{cell.get('source')}".encode())
    cell_id = digest.hexdigest()[:8]
    while cell_id in used:
        cell_id = hashlib.sha1(cell_id.encode()).hexdigest()[:8]
    return cell_id


def read_notebook(path: Path) -> NotebookNode:
    """Read a notebook; in nbformat >= 4.5, missing cell ids get deterministic ones."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if (data.get("nbformat"), data.get("nbformat_minor", 0)) >= (4, 5):
        used = {cell["id"] for cell in data.get("cells", []) if "id" in cell}
        for i, cell in enumerate(data.get("cells", [])):
            if "id" not in cell:
                cell["id"] = _stable_id(i, cell, used)
                used.add(cell["id"])
    return nbformat.reads(json.dumps(data), as_version=4)


def notebook_text(nb: NotebookNode) -> str:
    """The canonical file text of a notebook (nbformat, indent=1, final newline)."""
    text = nbformat.writes(nb, version=4, indent=1)
    return text if text.endswith("\n") else text + "\n"


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    return True


def solution_notebooks(root: Path | None = None) -> list[Path]:
    """The solution notebooks NN_topic.ipynb in root/solutions, sorted."""
    folder = _root(root) / "solutions"
    return sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_NAME.match(p.name))


def student_notebooks(root: Path | None = None) -> list[Path]:
    """The student notebooks NN_topic.ipynb in root, sorted."""
    return sorted(p for p in _root(root).glob("*.ipynb") if NOTEBOOK_NAME.match(p.name))


def student_text(solution: Path) -> str:
    """The generated text of the student version of a solution notebook."""
    nb = build_student_notebook(
        read_notebook(solution), notebook_number(solution), name=f"solutions/{solution.name}"
    )
    return notebook_text(nb)


def build(root: Path | None = None) -> list[Path]:
    """Write the student notebook of every solution notebook; return those created or changed."""
    written = []
    for solution in solution_notebooks(root):
        target = student_path(solution)
        if _write_if_changed(target, student_text(solution)):
            written.append(target)
    return written


def clean(path: Path) -> bool:
    """Strip a notebook's outputs and execution counts in place; True if the file changed."""
    path = Path(path)
    return _write_if_changed(path, notebook_text(_strip(read_notebook(path))))


# --- checks --------------------------------------------------------------------------------


def _show(root: Path, path: Path) -> str:
    return f"{root.name}/{path.relative_to(root).as_posix()}"


def out_of_sync(root: Path | None = None) -> list[str]:
    """One message per student notebook that is missing, stale or extra.

    Also reported: a solution notebook not named NN_topic.ipynb ("misnamed"), and one whose
    regions are malformed ("invalid", with the ValueError's message).
    """
    root = _root(root)
    messages = []
    for solution in sorted((root / "solutions").glob("*.ipynb")):
        if not NOTEBOOK_NAME.match(solution.name):
            messages.append(f"misnamed: {_show(root, solution)} is not named NN_topic.ipynb")
    solutions = solution_notebooks(root)
    for solution in solutions:
        target = student_path(solution)
        try:
            generated = student_text(solution)
        except ValueError as error:
            messages.append(f"invalid: {error}")
            continue
        if not target.exists():
            messages.append(f"missing: {_show(root, target)} (from {_show(root, solution)})")
        elif target.read_text(encoding="utf-8") != generated:
            messages.append(f"stale: {_show(root, target)} differs from its generated version")
    expected = {s.name for s in solutions}
    for student in student_notebooks(root):
        if student.name not in expected:
            messages.append(f"extra: {_show(root, student)} has no solution notebook")
    return messages


def _dirt(nb: NotebookNode) -> tuple[int, int]:
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    with_outputs = sum(1 for cell in code if cell.get("outputs"))
    with_counts = sum(1 for cell in code if cell.get("execution_count") is not None)
    return with_outputs, with_counts


def dirty_notebooks(root: Path | None = None) -> list[str]:
    """One message per notebook (student or solution) that has outputs or execution counts."""
    root = _root(root)
    messages = []
    for path in sorted(root.glob("*.ipynb")) + sorted((root / "solutions").glob("*.ipynb")):
        with_outputs, with_counts = _dirt(read_notebook(path))
        if with_outputs or with_counts:
            messages.append(
                f"dirty: {_show(root, path)} has {with_outputs} cell(s) with outputs and "
                f"{with_counts} with execution counts"
            )
    return messages


# --- command line --------------------------------------------------------------------------


def _cmd_build(root: Path) -> int:
    for path in sorted((root / "solutions").glob("*.ipynb")):
        if clean(path):
            print(f"cleaned {_show(root, path)}")
    written = build(root)
    for path in written:
        print(f"wrote {_show(root, path)}")
    print(f"{len(solution_notebooks(root)) - len(written)} student notebook(s) already up to date")
    for message in out_of_sync(root) + dirty_notebooks(root):
        print(f"warning: {message}", file=sys.stderr)
    return 0


def _cmd_check(root: Path) -> int:
    messages = out_of_sync(root) + dirty_notebooks(root)
    if messages:
        for message in messages:
            print(message, file=sys.stderr)
        print("run: python -m acteach.exercises build", file=sys.stderr)
        return 1
    print("student notebooks in sync")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line: `build` or `check` (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m acteach.exercises", description=__doc__.splitlines()[0]
    )
    parser.add_argument("command", choices=["build", "check"])
    parser.add_argument(
        "--root", type=Path, default=None, help="notebooks directory (default: $ACTEACH_NOTEBOOKS "
        "or the repository's notebooks/)"
    )
    args = parser.parse_args(argv)
    root = _root(args.root)
    try:
        return _cmd_build(root) if args.command == "build" else _cmd_check(root)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
