"""The course as a student uses it: JupyterLab in a real browser (Debian's Chromium via Playwright).

For every solution notebook: open it, run all cells, wait for the kernel, assert that no cell
shows an error (this is the suite's one run of the solution notebooks: every cell of every
solution must run without error); then, in every notebook with a lab, move its first slider
with the keyboard and assert that the widget's image changed and its readout shows the new
value.

For every untouched student notebook (the suite's one run of them): Run All, as a student does
first, must reach the end: every check cell fails with ExerciseNotImplemented (it is tagged
`raises-exception`, so Run All goes on past it), every other cell runs without error, the last
cell runs; saved by JupyterLab with its outputs, it holds no work (`exercises build` may refresh
it). Screenshots go to screenshots/. One notebook: `pytest tests/test_browser.py -k 03_`.
Each pytest-xdist worker that runs one of these tests starts its own JupyterLab and browser.

Without Chromium the test is skipped with the reason printed, unless ACTEACH_REQUIRE_BROWSER=1
(set by .ci/run), which turns a missing browser into a failure.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from acteach.exercises import check_cells, held_work, read_notebook

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
STUDENTS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHOTS = ROOT / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("ACTEACH_REQUIRE_BROWSER") == "1"


def browser_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving a copy of the notebooks: the student notebooks
    at its root, the solutions in solutions/."""
    reason = browser_missing()
    if reason:
        if REQUIRED:
            pytest.fail(f"ACTEACH_REQUIRE_BROWSER=1 but {reason}")
        print(f"skipping the browser test: {reason}")
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("lab")
    (folder / "solutions").mkdir()
    for path in SOLUTIONS:
        shutil.copy(path, folder / "solutions" / path.name)
    for path in STUDENTS:
        shutil.copy(path, folder / path.name)
    settings = tmp_path_factory.mktemp("settings") / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)        # no news or update pop-ups over the notebook
    (settings / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.root_dir={folder}", "--ServerApp.token=", "--ServerApp.password=",
         "--ServerApp.allow_root=True", "--ServerApp.disable_check_xsrf=True",
         "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.extension_manager=readonly"],
        stdout=subprocess.DEVNULL, stderr=open(folder / "server.log", "w"),
        env={**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings.parent.parent)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.send_signal(signal.SIGTERM)
        pytest.fail(f"JupyterLab did not start: {(folder / 'server.log').read_text()[-2000:]}")
    yield url
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, lab):
    """A fresh page per notebook; its kernel is shut down afterwards (through the REST API)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield page
    page.close()
    with urllib.request.urlopen(f"{lab}/api/sessions", timeout=10) as response:
        sessions = json.load(response)
    for session in sessions:
        request = urllib.request.Request(f"{lab}/api/sessions/{session['id']}", method="DELETE")
        urllib.request.urlopen(request, timeout=10).close()


# JavaScript run in the page, through the app JupyterLab exposes (expose_app_in_browser).
KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  if (!k || k.status !== 'idle') return false;
  return ![...document.querySelectorAll('.jp-InputArea-prompt')].some(p => p.textContent.includes('*'));
}"""
ERRORS = """() => {
  const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
  const found = [];
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i).toJSON();
    for (const o of (c.outputs || [])) if (o.output_type === 'error') found.push([i, o.ename, o.evalue]);
  }
  return found;
}"""
EXECUTED = """() => {
  const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
  let code = 0, run = 0, last = -1;
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i).toJSON();
    if (c.cell_type === 'code') { code++; last = i; if (c.execution_count) run++; }
  }
  const lastRan = last >= 0 && !!cells.get(last).toJSON().execution_count;
  return [code, run, lastRan];
}"""


def has_widget(notebook: str) -> bool:
    """Does the notebook display an interactive lab (a cell calling `.widget(`)?"""
    nb = json.loads((ROOT / "notebooks" / "solutions" / notebook).read_text())
    return any(".widget(" in "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


WITH_LAB = ("01", "02", "03", "04", "05", "07", "09")


def test_every_notebook_that_teaches_with_a_lab_keeps_it():
    # These notebooks teach with a lab; each must keep one so the browser test moves a slider.
    names = [p.name for p in SOLUTIONS if p.name[:2] in WITH_LAB]
    assert len(names) == len(WITH_LAB) and all(has_widget(name) for name in names)


def wait_idle(page, timeout_s: float) -> None:
    page.wait_for_timeout(1000)
    page.wait_for_function(KERNEL_IDLE, timeout=timeout_s * 1000, polling=500)


QUIET_S = 20


def run_all(page, timeout_s: float) -> list:
    """Run All, wait until every code cell has run, or Run All stopped (a cell failed and the
    kernel has stayed idle for QUIET_S seconds with cells not run), and the kernel is idle; ->
    the cells with errors, [index, ename, evalue]. QUIET_S is long: on a loaded machine the page
    can take several seconds between one cell's end and the next cell's start (after drawing a
    lab), which a short window mistook for a stop."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    deadline, quiet = time.time() + timeout_s, 0
    while time.time() < deadline:
        page.wait_for_timeout(1000)
        code, run, _ = page.evaluate(EXECUTED)
        if run == code:
            break
        stopped = page.evaluate(ERRORS) and page.evaluate(KERNEL_IDLE)
        quiet = quiet + 1 if stopped else 0
        if quiet >= QUIET_S:
            break
    wait_idle(page, timeout_s)
    return page.evaluate(ERRORS)


def open_notebook(page, lab, path: str) -> None:
    """Open notebooks/<path> in a fresh workspace (nothing restored) and wait for its kernel."""
    workspace = path.removesuffix(".ipynb").replace("/", "-")
    page.goto(f"{lab}/lab/workspaces/{workspace}/tree/{path}?reset")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext", timeout=60_000)
    wait_idle(page, 120)


def run_all_problems(errors: list, checks: list[int], code: int, run: int, last_ran: bool) -> list[str]:
    """What is wrong after Run All on an untouched student notebook: a check cell that did not
    fail with ExerciseNotImplemented, any other cell that failed, cells that did not run."""
    failed = {i: (ename, evalue) for i, ename, evalue in errors}
    problems = [f"check cell {i} did not fail with ExerciseNotImplemented (a vacuous check?)"
                for i in checks if failed.get(i, ("",))[0] != "ExerciseNotImplemented"]
    problems += [f"cell {i}: {ename}: {evalue}" for i, (ename, evalue) in failed.items()
                 if i not in checks]
    if run != code or not last_ran:
        problems.append(f"Run All stopped: {code - run} of {code} code cells did not run"
                        + ("" if last_ran else ", the last one among them"))
    return problems


def test_run_all_problems_names_each_kind():
    errors = [[3, "ExerciseNotImplemented", "f is not implemented yet"], [5, "NameError", "x"],
              [7, "CheckFailed", "f(1): expected 2, got 3"]]
    assert run_all_problems(errors, [3, 7, 9], code=10, run=8, last_ran=False) == [
        "check cell 7 did not fail with ExerciseNotImplemented (a vacuous check?)",
        "check cell 9 did not fail with ExerciseNotImplemented (a vacuous check?)",
        "cell 5: NameError: x",
        "Run All stopped: 2 of 10 code cells did not run, the last one among them",
    ]
    assert run_all_problems([[3, "ExerciseNotImplemented", ""]], [3], 4, 4, True) == []


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", [p.name for p in STUDENTS], ids=[p.stem for p in STUDENTS])
def test_run_all_reaches_the_end_of_the_student_notebook(page, lab, notebook, tmp_path):
    SHOTS.mkdir(exist_ok=True)
    stem = notebook.removesuffix(".ipynb")
    checks = check_cells(read_notebook(ROOT / "notebooks" / notebook))
    assert checks, f"{notebook}: no check cell"
    open_notebook(page, lab, notebook)
    errors = run_all(page, 600)
    code, run, last_ran = page.evaluate(EXECUTED)
    page.screenshot(path=str(SHOTS / f"{stem}-student-run.png"), full_page=False)
    page.evaluate("async i => { const nb = window.jupyterapp.shell.currentWidget.content; "
                  "nb.activeCellIndex = i; await nb.scrollToItem(i, 'center'); }", checks[0])
    page.wait_for_timeout(1000)
    page.screenshot(path=str(SHOTS / f"{stem}-student-check.png"), full_page=False)
    problems = run_all_problems(errors, checks, code, run, last_ran)
    assert problems == [], (f"{notebook}: Run All on the untouched student notebook must reach "
                            "the end, failing only at its check cells:\n" + "\n".join(problems))
    # saved by JupyterLab with its outputs, it still holds no work: `exercises build` may refresh it
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty",
                           timeout=30_000)
    with urllib.request.urlopen(f"{lab}/api/contents/{notebook}?content=1", timeout=30) as reply:
        saved = tmp_path / notebook
        saved.write_text(json.dumps(json.load(reply)["content"]), encoding="utf-8")
    assert read_notebook(saved).cells[checks[0]].outputs, "JupyterLab did not save the outputs"
    assert held_work(ROOT / "notebooks" / "solutions" / notebook, saved) == []


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", [p.name for p in SOLUTIONS],
                         ids=[p.stem for p in SOLUTIONS])
def test_notebook_runs_in_jupyterlab_and_its_slider_redraws(page, lab, notebook):
    SHOTS.mkdir(exist_ok=True)
    stem = notebook.removesuffix(".ipynb")
    open_notebook(page, lab, f"solutions/{notebook}")
    errors = run_all(page, 600)
    page.screenshot(path=str(SHOTS / f"{stem}-run.png"), full_page=False)
    assert errors == [], f"{notebook}: cells with errors: " + "; ".join(
        f"cell {i}: {ename}: {evalue}" for i, ename, evalue in errors)
    code, run, _ = page.evaluate(EXECUTED)
    assert run == code, f"{notebook}: {code - run} of {code} code cells did not run"
    if not has_widget(notebook):          # e.g. a training notebook: running it is the test
        assert page.locator(".widget-slider").count() == 0
        return

    slider = page.locator(".widget-slider").first
    slider.scroll_into_view_if_needed()
    box = slider.locator("xpath=ancestor::div[contains(@class,'widget-vbox')][1]")
    image, readout = box.locator("img").first, box.locator(".widget-html-content").first
    before_src = image.get_attribute("src")
    before_value = slider.locator(".widget-readout").inner_text()
    slider.locator(".noUi-handle").focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "([el, old]) => el.getAttribute('src') !== old",
        arg=[image.element_handle(), before_src], timeout=30_000)
    wait_idle(page, 60)
    after_value = slider.locator(".widget-readout").inner_text()
    page.screenshot(path=str(SHOTS / f"{stem}-slider.png"), full_page=False)
    assert after_value != before_value
    assert after_value.strip() in readout.inner_text(), (after_value, readout.inner_text()[:300])
    assert page.evaluate(ERRORS) == [], f"{notebook}: error after moving the slider"
