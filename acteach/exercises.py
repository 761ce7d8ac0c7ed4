"""Exercises of every notebook: solution -> student notebooks, and running their checks.

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

A region is found from its markers (whole-line comments) and `ast`: it must lie in the body of
a def, not in a class body or at the top level; a malformed, unbalanced, nested or empty region
is a ValueError naming the notebook, the cell and the line.

A check cell is a code cell that calls a checker (`check_...(`). `run_checks` executes a notebook
and reports each check cell as passed, not implemented, wrong or error, and any other cell that
failed. On a student notebook every check cell must be "not implemented" and no other cell may
fail; the test suite asserts that through `run_checks`, the runner of `python -m acteach check`.

The command line is `python -m acteach` (see acteach/__main__.py):

    python -m acteach exercises build   # clean the solutions, write the student notebooks
    python -m acteach exercises check   # exit 1 if a student notebook is out of sync or dirty
    python -m acteach check NN          # run notebook NN, one line per exercise check

The environment variable ACTEACH_NOTEBOOKS overrides the notebooks directory.
"""
from __future__ import annotations

import ast
import copy
import hashlib
import io
import json
import os
import re
import tokenize
from pathlib import Path

import nbformat
from nbformat import NotebookNode

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
NOTEBOOK_NAME = re.compile(r"^(\d{2})_[^/\\]+\.ipynb$")
# a call of a checker, `check_...(`, not its definition `def check_...(`; groups: the
# checker's name and the name of its first argument (the function checked; "" if none)
CHECK_CALL = re.compile(r"(?<!def )\b(check_\w+)\((\w*)")

_MARKER = re.compile(r"^\s*#+\s*(BEGIN|END)\s+SOLUTION\b", re.IGNORECASE | re.MULTILINE)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
             tokenize.ENDMARKER}


def notebooks_dir() -> Path:
    """The notebooks directory: $ACTEACH_NOTEBOOKS if set, else the repository's notebooks/."""
    override = os.environ.get("ACTEACH_NOTEBOOKS")
    if override:
        return Path(override).resolve()
    return Path(__file__).resolve().parent.parent / "notebooks"


def _root(root: Path | None) -> Path:
    return notebooks_dir() if root is None else Path(root)


# --- regions -------------------------------------------------------------------------------


def _marker_kind(line: str, where: str, lineno: int) -> str | None:
    """'begin', 'end' or None for an ordinary comment; a near-miss marker is an error."""
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


def _parse(source: str, where: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError as error:
        raise ValueError(f"{where}, line {error.lineno}: {error.msg}") from None


def _tokens(source: str, where: str) -> list[tokenize.TokenInfo]:
    try:
        return list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        _parse(source, where)           # raises with the parser's line and message
        raise


def _enclosing_def(tree: ast.Module, first: int, last: int) -> str | None:
    """Name of the function whose body holds every statement on lines first..last (1-based),
    or None if the innermost def or class around them is not a def (or there is none)."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    inside = [n for n in ast.walk(tree) if isinstance(n, ast.stmt) and first <= n.lineno <= last]
    node = min(inside, key=lambda n: (n.lineno, -n.end_lineno))
    while node in parents and not isinstance(node, _SCOPES):
        node = parents[node]
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    if any(not node.lineno < n.lineno <= node.end_lineno for n in inside):
        return None                     # the region runs out of the def
    return node.name


def _regions(source: str, where: str) -> list[tuple[int, int, str]]:
    """(begin line, end line, enclosing def) of each region in a cell's source, in order.

    Lines count from 0. The markers are whole-line comments; the enclosing def is the function
    whose body holds the region's statements, found with `ast`.
    """
    if not _MARKER.search(source):
        return []
    tokens = _tokens(source, where)
    regions: list[tuple[int, int]] = []
    begin: int | None = None
    for token in tokens:
        row = token.start[0]
        if token.type != tokenize.COMMENT or token.line.strip() != token.string.strip():
            continue
        kind = _marker_kind(token.string, where, row)
        if kind == "begin":
            if begin is not None:
                raise ValueError(
                    f"{where}, line {row}: nested {BEGIN!r} (the one on line {begin} is open)"
                )
            begin = row
        elif kind == "end":
            if begin is None:
                raise ValueError(f"{where}, line {row}: unbalanced {END!r} without {BEGIN!r}")
            regions.append((begin, row))
            begin = None
    if begin is not None:
        raise ValueError(f"{where}, line {begin}: unbalanced {BEGIN!r} without {END!r}")
    for begin, end in regions:
        if not any(begin < t.start[0] < end for t in tokens if t.type not in _NOT_CODE):
            raise ValueError(f"{where}, line {begin}: empty solution region (no code)")
    tree = _parse(source, where)
    found = []
    for begin, end in regions:
        name = _enclosing_def(tree, begin + 1, end - 1)
        if name is None:
            raise ValueError(f"{where}, line {begin}: solution region is not inside a def")
        found.append((begin - 1, end - 1, name))
    return found


def _stub_source(source: str, where: str, number: int, first: int) -> tuple[str, int]:
    """The cell source with its regions stubbed, numbering from `first`; and the region count."""
    regions = _regions(source, where)
    if not regions:
        return source, 0
    lines = source.split("\n")
    out: list[str] = []
    start = 0
    for k, (begin, end, name) in enumerate(regions):
        pad = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
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


# --- in sync and clean ---------------------------------------------------------------------


def shown(root: Path, path: Path) -> str:
    """A path under root as the messages show it, e.g. "notebooks/solutions/01_x.ipynb"."""
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
            messages.append(f"misnamed: {shown(root, solution)} is not named NN_topic.ipynb")
    solutions = solution_notebooks(root)
    for solution in solutions:
        target = student_path(solution)
        try:
            generated = student_text(solution)
        except ValueError as error:
            messages.append(f"invalid: {error}")
            continue
        if not target.exists():
            messages.append(f"missing: {shown(root, target)} (from {shown(root, solution)})")
        elif target.read_text(encoding="utf-8") != generated:
            messages.append(f"stale: {shown(root, target)} differs from its generated version")
    expected = {s.name for s in solutions}
    for student in student_notebooks(root):
        if student.name not in expected:
            messages.append(f"extra: {shown(root, student)} has no solution notebook")
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
                f"dirty: {shown(root, path)} has {with_outputs} cell(s) with outputs and "
                f"{with_counts} with execution counts"
            )
    return messages


# --- running a notebook's checks -----------------------------------------------------------


def find_notebook(number: str, solutions: bool = False) -> Path:
    """notebooks/NN_*.ipynb (or notebooks/solutions/NN_*.ipynb) for a number like '3' or '03'."""
    folder = notebooks_dir() / ("solutions" if solutions else "")
    if not number.isdigit():
        raise ValueError(f"notebook: expected a number like 03, got {number!r}")
    found = sorted(folder.glob(f"{int(number):02d}_*.ipynb"))
    if not found:
        raise ValueError(f"notebook: no notebook {int(number):02d} in {folder}")
    return found[0]


def run_checks(path: Path, timeout: int = 600) -> list[tuple[str, str, str]]:
    """Execute a notebook top to bottom in a fresh kernel (cells that fail do not stop it);
    -> (name, verdict, message) for every check cell, named by the function it checks, and for
    every other cell that failed, named "cell i (its first line)".

    verdict: passed | not implemented | wrong | error. `python -m acteach check` prints these;
    the test suite runs every student notebook through this function. timeout: seconds per cell.
    """
    from nbclient import NotebookClient

    path = Path(path)
    nb = read_notebook(path)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    checks = set(check_cells(nb))
    results = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        error = next((o for o in cell.outputs if o.output_type == "error"), None)
        if i in checks:
            call = CHECK_CALL.search(cell.source)
            results.append((call.group(2) or f"cell {i}", *_verdict(error)))
        elif error is not None:
            results.append((f"cell {i} ({cell.source.splitlines()[0][:50]})", "error",
                            f"{error.ename}: {error.evalue}"))
    return results


def _verdict(error: NotebookNode | None) -> tuple[str, str]:
    if error is None:
        return "passed", ""
    if error.ename == "ExerciseNotImplemented":
        return "not implemented", error.evalue
    if error.ename == "CheckFailed":
        return "wrong", error.evalue
    return "error", f"{error.ename}: {error.evalue}"
