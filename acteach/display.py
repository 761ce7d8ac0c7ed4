"""Predict-first prompts and tables for every notebook (01-09).

Before a measurement, `predict` asks the student to commit to an answer (a row of toggle
buttons with nothing selected); after it, `reveal` compares the stored click with what was
measured. An unanswered prompt is reported as unanswered: neither call blocks or raises, so
Run All reaches the end. `table` shows a result table as HTML in JupyterLab and as aligned text
elsewhere, with a (value, se) cell written "value ± se", instead of print-formatting loops.
"""
from __future__ import annotations

import html
import numbers
from typing import Any, Sequence

import ipywidgets as widgets
import numpy as np
from IPython.display import display

#: The prompt of each key shown so far: the student's choice is its `.value` (None: no click).
PROMPTS: dict[str, widgets.ToggleButtons] = {}


def predict(key: str, question: str, options: Sequence[str]) -> None:
    """Show `question` with one toggle button per option and nothing selected; the click is
    kept under `key` for `reveal`. Showing the prompt again clears the earlier answer."""
    if not options:
        raise ValueError("options: expected at least one answer to choose from")
    buttons = widgets.ToggleButtons(options=[str(o) for o in options], value=None,
                                    style={"button_width": "auto"})
    PROMPTS[key] = buttons
    display(widgets.VBox([widgets.HTML(f"<b>Predict first.</b> {html.escape(question)}"),
                          buttons]))


def prediction(key: str) -> str | None:
    """The option the student chose at the prompt `key`, or None (not answered, not shown)."""
    buttons = PROMPTS.get(key)
    return None if buttons is None else buttons.value


def verdict(key: str, answer: str, detail: str = "") -> str:
    """The sentence `reveal` shows: the prediction, the measured answer and ✓ or ✗."""
    measured = f"the measurement says {answer}" + (f" ({detail})" if detail else "")
    guess = prediction(key)
    if guess is None:
        return f"No prediction made; {measured}."
    return f"You predicted {guess}; {measured} {'✓' if guess == str(answer) else '✗'}"


def reveal(key: str, answer: str, detail: str = "") -> None:
    """Show how the prediction made at the prompt `key` compares with the measured `answer`
    (one of the prompt's options); `detail` is the measurement itself, e.g. '0.41 ± 0.02'."""
    display(_Rich(verdict(key, answer, detail)))


class _Rich:
    """A text with an HTML form: JupyterLab shows the HTML, a terminal the text."""

    def __init__(self, text: str, html_text: str | None = None):
        self.text, self.html_text = text, html_text or f"<p>{html.escape(text)}</p>"

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.html_text


def cell_text(value: Any, digits: int = 3) -> str:
    """One cell: a (value, se) pair as 'value ± se' (se to 2 significant digits), a bool as
    True / False, a real number to `digits` significant digits, anything else as str."""
    if (isinstance(value, tuple) and len(value) == 2
            and all(isinstance(v, numbers.Real) for v in value)):
        return f"{cell_text(value[0], digits)} ± {float(value[1]):.2g}"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.{digits}g}"
    return "" if value is None else str(value)


def table(rows: Sequence[Sequence[Any]], columns: Sequence[str], *, digits: int = 3,
          title: str | None = None) -> None:
    """Show rows (each one value per column; a (value, se) pair reads 'value ± se') as an HTML
    table in JupyterLab and as aligned text elsewhere."""
    display(table_view(rows, columns, digits=digits, title=title))


def table_view(rows: Sequence[Sequence[Any]], columns: Sequence[str], *, digits: int = 3,
               title: str | None = None) -> _Rich:
    """What `table` shows, as an object with a text (str) and an HTML (_repr_html_) form."""
    columns = [str(c) for c in columns]
    cells = [[cell_text(v, digits) for v in row] for row in rows]
    for i, row in enumerate(cells):
        if len(row) != len(columns):
            raise ValueError(f"rows: row {i} has {len(row)} values, expected {len(columns)} "
                             f"(one per column of {columns})")
    widths = [max(len(r[j]) for r in [columns, *cells]) for j in range(len(columns))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                         for j, (c, w) in enumerate(zip(row, widths))).rstrip()

    text = [line(columns), "  ".join("-" * w for w in widths), *map(line, cells)]
    if title:
        text.insert(0, title)

    def tr(row: list[str], tag: str) -> str:
        return "<tr>" + "".join(
            f'<{tag} style="text-align:{"left" if j == 0 else "right"}">{html.escape(c)}</{tag}>'
            for j, c in enumerate(row)) + "</tr>"

    caption = f"<caption>{html.escape(title)}</caption>" if title else ""
    body = "".join(tr(r, "td") for r in cells)
    html_text = (f'<table style="font-variant-numeric:tabular-nums">{caption}'
                 f"<thead>{tr(columns, 'th')}</thead><tbody>{body}</tbody></table>")
    return _Rich("\n".join(text), html_text)
