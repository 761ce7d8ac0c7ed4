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

A check cell is a code cell that calls a checker (`check_...(`). In the student notebook every
check cell is tagged `raises-exception`, so JupyterLab's Run All (and nbclient) go on past its
failure and an untouched notebook runs to its last cell. `run_checks` executes a notebook and
reports each check cell as passed, not implemented, wrong, error or timed out, each exercise
whose check cell is gone as missing, and any other cell that failed. A check always checks the
student's function: no cell after an exercise's def may bind its name again
(`rebound_exercises` finds one; the library's version goes by a name of its own).

`build` never overwrites work: a student notebook whose exercise cells differ from the
generated stubs is skipped (and named) unless `force=True`.

The command line is `python -m acteach` (see acteach/__main__.py):

    python -m acteach exercises build [--force]  # clean the solutions, write the students
    python -m acteach exercises check   # exit 1 if a student notebook is out of sync or dirty
    python -m acteach check NN          # run notebook NN (or a path), one line per exercise

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
from typing import NamedTuple

import nbformat
from nbformat import NotebookNode

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
NOTEBOOK_NAME = re.compile(r"^(\d{2})_[^/\\]+\.ipynb$")
# a call of a checker, `check_...(`, not its definition `def check_...(`; groups: the
# checker's name and the name of its first argument (the function checked; "" if none)
CHECK_CALL = re.compile(r"(?<!def )\b(check_\w+)\((\w*)")

RAISES = "raises-exception"        # the tag that lets Run All go on past a failing cell
# the line a region becomes in the student notebook; groups: "N.K" and the function's name
STUB = re.compile(r'raise NotImplementedError\("Exercise (\d+\.\d+): write the body of (\w+)"\)')

_MARKER = re.compile(r"^\s*#+\s*(BEGIN|END)\s+SOLUTION\b", re.IGNORECASE | re.MULTILINE)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_LOCAL_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp,
                 ast.SetComp, ast.DictComp, ast.GeneratorExp)
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


class Exercise(NamedTuple):
    """One exercise of a notebook: its label "N.K", the function the student writes, its cell."""
    label: str
    name: str
    cell: int


def exercises_in(nb: NotebookNode, number: int, name: str = "notebook") -> list[Exercise]:
    """The exercises of a solution notebook (its regions), or, where it has none, of a student
    notebook (its untouched stubs `raise NotImplementedError("Exercise N.K: ...")`)."""
    found: list[Exercise] = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            for _, _, function in _regions(cell.source, f"{name}, cell {i}"):
                found.append(Exercise(f"{number}.{len(found) + 1}", function, i))
    if found:
        return found
    return [Exercise(m.group(1), m.group(2), i) for i, cell in enumerate(nb.cells)
            if cell.cell_type == "code" for m in STUB.finditer(cell.source)]


def checked_names(nb: NotebookNode) -> dict[str, int]:
    """{the function a check cell checks: the index of its first check cell}."""
    names: dict[str, int] = {}
    for i in check_cells(nb):
        for call in CHECK_CALL.finditer(nb.cells[i].source):
            names.setdefault(call.group(2), i)
    return names


def _bound_names(source: str) -> list[tuple[int, str, str]]:
    """(line, name, statement) for every name a cell binds: import, assignment, def, for, with."""
    try:
        tree = ast.parse(source)
    except SyntaxError:                 # IPython syntax (%magic): nothing we can judge
        return []
    lines = source.splitlines()
    found = []
    nodes: list[ast.AST] = [tree]
    while nodes:                        # the cell's own scope: not into defs or comprehensions
        node = nodes.pop()
        if not isinstance(node, _LOCAL_SCOPES):
            nodes.extend(ast.iter_child_nodes(node))
        names: list[str] = []
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.asname or a.name.split(".")[0] for a in node.names]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names = [node.id]
        for bound in names:
            found.append((node.lineno, bound, lines[node.lineno - 1].strip()))
    return found


def rebound_exercises(nb: NotebookNode, name: str = "notebook") -> list[str]:
    """One message per cell that binds an exercise's name again after the exercise's def (e.g.
    `from acteach.critic import critic_loss`): re-running the check would check that instead.

    An exercise here is a function a check cell checks; its def is the first cell defining it."""
    defined: dict[str, int] = {}
    messages = []
    checked = checked_names(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for line, bound, statement in sorted(_bound_names(cell.source)):
            if bound not in checked:
                continue
            if bound not in defined:
                if statement.startswith(("def ", "async def ")):
                    defined[bound] = i
                continue
            if i == defined[bound]:
                continue
            messages.append(
                f"{name}, cell {i}, line {line}: `{statement}` binds {bound} again after the "
                f"exercise's def (cell {defined[bound]}), so its check would no longer check the "
                f"student's function; import the library's version under a name of its own "
                f"(`... import {bound} as library_{bound}`)")
    return messages


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
    """The student version of a solution notebook: regions stubbed, outputs stripped, check
    cells tagged `raises-exception` (so Run All goes on past them).

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
    for i in check_cells(student):      # Run All goes on past a check that fails
        tags = student.cells[i].metadata.setdefault("tags", [])
        if RAISES not in tags:
            tags.append(RAISES)
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


def held_work(solution: Path, target: Path) -> list[str]:
    """What building would lose in the existing student notebook `target`: each exercise whose
    cell differs from its generated stub, as "exercise 2.1 (q_from_v)", or the whole file
    if it is not a readable notebook. [] if the target is missing or holds no work."""
    if not target.exists():
        return []
    try:
        existing = read_notebook(target)
    except Exception as error:          # noqa: BLE001 (JSON, nbformat: any unreadable file)
        return [f"the whole file (not a readable notebook: {type(error).__name__})"]
    solution_nb = read_notebook(solution)
    number = notebook_number(solution)
    generated = build_student_notebook(solution_nb, number, name=f"solutions/{solution.name}")
    by_id = {cell.get("id"): cell for cell in existing.cells}
    work = []
    for exercise in exercises_in(solution_nb, number, f"solutions/{solution.name}"):
        stub = generated.cells[exercise.cell]
        cell = by_id.get(stub.get("id"))
        if cell is not None and cell.source != stub.source:
            work.append(f"exercise {exercise.label} ({exercise.name})")
    return work


class Built(NamedTuple):
    """What `build` did: the student notebooks written, and those skipped with the reason."""
    written: list[Path]
    skipped: list[tuple[Path, str]]


def build(root: Path | None = None, force: bool = False) -> Built:
    """Write the student notebook of every solution notebook, except (unless `force`) one
    whose exercise cells hold work: it is skipped, with the reason."""
    written, skipped = [], []
    for solution in solution_notebooks(root):
        target = student_path(solution)
        text = student_text(solution)
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        work = [] if force else held_work(solution, target)
        if work:
            skipped.append((target, "your work in " + ", ".join(work) + " differs from the stub"))
        elif _write_if_changed(target, text):
            written.append(target)
    return Built(written, skipped)


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
            messages.append(f"stale: {shown(root, target)} differs from its generated version"
                            + _what_differs(target, generated, held_work(solution, target)))
    expected = {s.name for s in solutions}
    for student in student_notebooks(root):
        if student.name not in expected:
            messages.append(f"extra: {shown(root, student)} has no solution notebook")
    return messages


def _what_differs(target: Path, generated: str, work: list[str]) -> str:
    """The tail of a "stale" message: which cells differ, and whether build would keep it."""
    if work:
        return (f"; it holds work in {', '.join(work)}, so `exercises build` leaves it alone "
                "and only `exercises build --force` would overwrite it (copy your answers out "
                "first)")
    try:
        old, new = read_notebook(target), nbformat.reads(generated, as_version=4)
    except Exception:                   # noqa: BLE001
        return ""
    by_id = {cell.get("id"): cell for cell in old.cells}
    cells = [i for i, cell in enumerate(new.cells)
             if by_id.get(cell.get("id"), {}).get("source") != cell.source
             or by_id[cell.get("id")].get("metadata") != cell.metadata]
    outputs = sum(1 for cell in old.cells if cell.get("outputs")
                  or cell.get("execution_count") is not None)
    what = []
    if cells:
        what.append(f"cell(s) {', '.join(map(str, cells[:8]))}{' ...' if len(cells) > 8 else ''}")
    if outputs:
        what.append(f"outputs in {outputs} cell(s)")
    detail = f" ({'; '.join(what)})" if what else ""
    return f"{detail}; no exercise was edited, so `exercises build` is safe"


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


class RunError(Exception):
    """A notebook that cannot be run or judged (unreadable, or its kernel died): one line."""


def find_notebook(notebook: str, solutions: bool = False) -> Path:
    """The notebook to check: a path to an .ipynb file, or a number like '3' or '03' naming
    the one notebooks/NN_*.ipynb (notebooks/solutions/NN_*.ipynb with `solutions`).

    Several matches (e.g. JupyterLab's 02_use_q-Copy1.ipynb beside 02_use_q.ipynb) are a
    ValueError listing them: name one by its path."""
    if notebook.endswith(".ipynb") or "/" in notebook or os.sep in notebook:
        path = Path(notebook)
        if not path.is_file():
            raise ValueError(f"notebook: no file {notebook}")
        return path
    folder = notebooks_dir() / ("solutions" if solutions else "")
    if not notebook.isdigit():
        raise ValueError(f"notebook: expected a number like 03 or a path, got {notebook!r}")
    found = sorted(folder.glob(f"{int(notebook):02d}_*.ipynb"))
    if not found:
        raise ValueError(f"notebook: no notebook {int(notebook):02d} in {folder}")
    if len(found) > 1:
        listed = "\n".join(f"  {shown(folder, path)}" for path in found)
        raise ValueError(
            f"notebook: {len(found)} notebooks match {int(notebook):02d}; name the one to check "
            f"by its path, e.g. python -m acteach check "
            f"{shown(folder, min(found, key=lambda p: len(p.name)))}\n{listed}")
    return found[0]


def notebook_exercises(path: Path) -> tuple[list[Exercise], dict[str, str]]:
    """The exercises a notebook must check, and {function: its check cell's source}: from the
    solution notebook of the same number (path's own solutions/ folder, or path itself if it
    is a solution), else from the notebook's own stubs."""
    path = Path(path)
    match = NOTEBOOK_NAME.match(path.name)
    if not match:
        return [], {}
    number = int(match.group(1))
    if path.parent.name == "solutions":
        solution = path
    else:
        same = path.parent / "solutions" / path.name
        candidates = sorted((path.parent / "solutions").glob(f"{number:02d}_*.ipynb"))
        solution = same if same.exists() else candidates[0] if len(candidates) == 1 else None
    try:
        source = read_notebook(solution) if solution else read_notebook(path)
        found = exercises_in(source, number, str(solution or path))
    except Exception:                   # noqa: BLE001 (a broken solution: judge by the stubs)
        return [], {}
    checks = {name: source.cells[i].source.strip() for name, i in checked_names(source).items()}
    return found, checks


def run_checks(path: Path, timeout: int = 60) -> list[tuple[str, str, str]]:
    """Execute a notebook top to bottom in a fresh kernel (cells that fail do not stop it);
    -> (name, verdict, message) for every check cell, named by the function it checks, for
    every exercise without a check cell ("exercise N.K", verdict "missing"), and for every
    other cell that failed or timed out, named "cell i (its first line)".

    verdict: passed | not implemented | wrong | error | timed out | missing.
    `python -m acteach check` prints these. timeout: seconds per cell; a cell that runs longer
    is interrupted (KeyboardInterrupt in the kernel) and the next cells still run. A notebook
    that cannot be read, or a kernel that dies, is a RunError with a one-line message.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
        raise ValueError(f"timeout: expected a whole number of seconds >= 1, got {timeout!r}")
    path = Path(path)
    try:
        nb = read_notebook(path)
    except json.JSONDecodeError as error:
        raise RunError(f"{path} is not a valid notebook (not JSON: {error}); restore it from "
                       "a backup or from git") from None
    except Exception as error:          # noqa: BLE001 (nbformat: JSON but not a notebook)
        raise RunError(f"{path} is not a valid notebook ({type(error).__name__}: "
                       f"{str(error).splitlines()[0] if str(error) else ''})") from None
    exercises, check_sources = notebook_exercises(path)
    timed_out: set[int] = set()
    running = [-1]

    def started(cell, cell_index, **_):
        running[0] = cell_index

    def failed(cell, cell_index, execute_reply, **_):
        if execute_reply["content"].get("ename") == "CellTimeout":
            timed_out.add(cell_index)

    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=True,
        interrupt_on_timeout=True, on_cell_start=started, on_cell_error=failed,
        error_on_timeout={"ename": "CellTimeout", "evalue": f"timed out after {timeout} s",
                          "traceback": []},
        resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except DeadKernelError:
        cell = nb.cells[running[0]] if running[0] >= 0 else None
        where = f" while running {_cell_name(running[0], cell)}" if cell else ""
        raise RunError(f"the kernel died{where} (out of memory, or os._exit?); "
                       "fix that cell and check again") from None
    checks = set(check_cells(nb))
    results = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        error = next((o for o in cell.outputs if o.output_type == "error"), None)
        if i in timed_out:
            call = CHECK_CALL.search(cell.source) if i in checks else None
            name = (call and call.group(2)) or _cell_name(i, cell)
            results.append((name, "timed out", f"still running after {timeout} s, so it was "
                            "interrupted (an endless loop?); the other cells went on"))
        elif i in checks:
            call = CHECK_CALL.search(cell.source)
            results.append((call.group(2) or f"cell {i}", *_verdict(error)))
        elif error is not None:
            results.append((_cell_name(i, cell), "error", f"{error.ename}: {error.evalue}"))
    checked = checked_names(nb)
    for exercise in exercises:
        if exercise.name not in checked:
            again = check_sources.get(exercise.name)
            results.append((f"exercise {exercise.label}", "missing",
                            "its check cell is missing"
                            + (f"; add a code cell after {exercise.name} with: {again}"
                               if again else "")))
    return results


def _cell_name(i: int, cell: NotebookNode) -> str:
    lines = cell.source.strip().splitlines()
    return f"cell {i} ({lines[0][:50] if lines else 'empty'})"


def _verdict(error: NotebookNode | None) -> tuple[str, str]:
    if error is None:
        return "passed", ""
    if error.ename == "ExerciseNotImplemented":
        return "not implemented", error.evalue
    if error.ename == "CheckFailed":
        return "wrong", error.evalue
    return "error", f"{error.ename}: {error.evalue}"
