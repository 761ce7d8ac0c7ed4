"""What every lab shares (the labs of notebooks 01-05, 07 and 09): the layout and its sliders,
the argument checks of a slider's value, one blitted figure and one small cache.

A lab's figure is drawn in two parts. Axes, ticks, labels, legends and whatever never changes
are drawn once and kept as a background (`BlittedFigure.freeze`); a slider move restores that
background, draws only the data artists (those made with animated=True) and encodes a PNG.
Redrawing a whole matplotlib figure would cost ten times more.
"""
from __future__ import annotations

import html
import io
import numbers
from collections import OrderedDict
from typing import Callable, Hashable, Iterable, Sequence, TypeVar

import ipywidgets as W
import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from acteach._validate import check_positive_int, check_real, check_size

V = TypeVar("V")


# ---------------------------------------------------------------------------------------------
# Layout and sliders
# ---------------------------------------------------------------------------------------------

def slider(options: Sequence, value: object, description: str) -> W.SelectionSlider:
    """A slider over `options` that redraws when released (not while dragged)."""
    return W.SelectionSlider(options=options, value=value, description=description,
                             continuous_update=False)


def seed_slider(seed: int) -> W.IntSlider:
    """The seed slider: seeds 0..20, redrawn when released."""
    return W.IntSlider(value=seed, min=0, max=20, description="seed", continuous_update=False)


def lab_box(rows: list[list[W.Widget]], render: Callable[..., tuple[bytes | None, str]],
            **fixed: object) -> W.VBox:
    """Every lab's layout: rows of controls, then the plot, then the readout. When any control
    changes, render(*the controls' values, row by row, **fixed) gives (PNG bytes, or None to
    keep the plot, and the readout text); `fixed` holds the settings no control changes.

    An error while redrawing is shown in the lab's own readout (not in JupyterLab's log
    console), and the control that was moved goes back to the value the plot shows, so the
    sliders and the picture always agree."""
    controls = [control for row in rows for control in row]
    image, readout = W.Image(format="png"), W.HTML()
    shown = [control.value for control in controls]     # the settings the plot shows

    def redraw(change: dict | None = None) -> None:
        values = [control.value for control in controls]
        try:
            png, text = render(*values, **fixed)
        except Exception as error:                         # noqa: BLE001 - shown to the user
            if change is None:                             # the first draw: nothing to go back to
                raise
            moved = [(c, old) for c, old in zip(controls, shown) if c.value != old]
            for control, old in moved:                     # back to what the plot shows
                control.unobserve(redraw, names="value")
                try:
                    control.value = old
                finally:
                    control.observe(redraw, names="value")
            readout.value = redraw_error_html(error, [c.description for c, _ in moved])
            return
        shown[:] = values
        if png is not None:
            image.value = png
        readout.value = f"<pre>{text}</pre>"

    for control in controls:
        control.observe(redraw, names="value")
    redraw()
    return W.VBox([row[0] if len(row) == 1 else W.HBox(row) for row in rows] + [image, readout])


def redraw_error_html(error: BaseException, moved: Sequence[str]) -> str:
    """The readout after a failed redraw: the error, and which controls went back."""
    back = (f"{', '.join(moved)} went back to the setting the plot shows."
            if moved else "The plot shows the last setting that worked.")
    return (f'<pre style="color: #b00020">Could not redraw: {type(error).__name__}: '
            f"{html.escape(str(error))}\n{back}</pre>")


def slider_pair(render: Callable[..., tuple[bytes | None, str]], left: tuple, right: tuple,
                **fixed: object) -> W.VBox:
    """The layout of a lab with two sliders side by side, each given as (options, value,
    description)."""
    return lab_box([[slider(*left), slider(*right)]], render, **fixed)


# ---------------------------------------------------------------------------------------------
# Checks of a lab's settings (each a ValueError naming the argument)
# ---------------------------------------------------------------------------------------------

def check_offered(name: str, value: object, offered: Sequence) -> None:
    """value must be one of the slider's options."""
    if value not in offered:
        raise ValueError(f"{name}: expected one of {tuple(offered)}, got {value!r}")


def check_alpha(alpha: object) -> None:
    """alpha, the blend of two critics: a number in [0, 1]."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha: expected a number in [0, 1], got {alpha!r}")


def positive_grid(name: str, values: Sequence[int]) -> tuple[int, ...]:
    """A slider's options of positive integers (at least one), sorted."""
    if not values:
        raise ValueError(f"{name}: expected at least one value, got {values!r}")
    for v in values:
        check_positive_int(name, v)
    return tuple(sorted(values))


def gradient_logits(mdp: object, logits: object) -> np.ndarray:
    """The logits of a lab that measures policy-gradient estimators, checked (`check_logits`),
    on an MDP whose policy has a choice: with one action the gradient is 0 and there is
    nothing to measure."""
    from acteach.tabular import check_logits

    logits = check_logits(mdp, logits)
    if mdp.n_actions < 2:
        raise ValueError(f"mdp: expected at least 2 actions, got {mdp.n_actions}: with one "
                         "action the policy has no choice and its gradient is 0")
    return logits


def real_grid(name: str, values: Sequence[float], bound: str = "positive") -> tuple[float, ...]:
    """A slider's options of finite numbers (at least one; bound "positive" or "nonnegative"),
    in the order given."""
    if not values:
        raise ValueError(f"{name}: expected at least one value, got {values!r}")
    for v in values:
        check_real(name, v, bound)
    return tuple(values)


def check_pool(pool: int, largest: int, grid_name: str) -> None:
    """A pool of trajectories must leave at least 2 estimates of the largest N offered."""
    check_positive_int("pool", pool)
    check_size("pool", 12.0 * pool, 8, f"a pool of {pool:,} trajectories")
    if 2 * largest > pool:
        raise ValueError(f"pool: {pool} trajectories leave fewer than 2 estimates at N = "
                         f"{largest}; raise pool or lower {grid_name}")


# ---------------------------------------------------------------------------------------------
# One small cache
# ---------------------------------------------------------------------------------------------

class LRUCache:
    """The results of the last `size` keys used: `get(key, compute)` returns the kept result, or
    computes, keeps and returns it, dropping the least recently used key beyond `size`. Results
    are functions of their key (a seed's pool, a fit), so a dropped one is recomputed the same."""

    def __init__(self, size: int) -> None:
        check_positive_int("size", size)
        self.size, self._items = size, OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        if key not in self._items:
            self._items[key] = compute()
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        self._items.move_to_end(key)
        return self._items[key]

    def __len__(self) -> int:
        return len(self._items)


# ---------------------------------------------------------------------------------------------
# One blitted figure
# ---------------------------------------------------------------------------------------------

class BlittedFigure:
    """A row of panels whose static parts are drawn once; `draw` redraws only the data.

    A subclass makes its panels with `super().__init__`, draws the static parts on `self.axes`,
    makes each changing artist with animated=True, ends its __init__ with `self.freeze()`, and
    implements `artists(*args)`: set the data for these arguments and yield the artists to
    draw, in drawing order. `draw(*args)` -> PNG bytes.

    figsize: inches; panels: how many side by side; sharey: one y axis; margins: for
    `Figure.subplots_adjust` (left, right, bottom, top, wspace).
    """

    def __init__(self, figsize: tuple[float, float], panels: int = 2, sharey: bool = False,
                 **margins: float) -> None:
        self.fig = Figure(figsize=figsize, dpi=72)
        self.canvas = FigureCanvasAgg(self.fig)
        self.axes = self.fig.subplots(1, panels, sharey=sharey)
        self.fig.subplots_adjust(**margins)

    def freeze(self) -> None:
        """Draw the figure as it is and keep it as the background of every redraw."""
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    def artists(self, *args) -> Iterable[Artist]:
        raise NotImplementedError

    def draw(self, *args) -> bytes:
        """Restore the background, draw the data artists for these arguments; -> PNG bytes."""
        self.canvas.restore_region(self.background)
        for artist in self.artists(*args):
            self.fig.draw_artist(artist)
        return canvas_png(self.canvas)


def canvas_png(canvas: FigureCanvasAgg) -> bytes:
    """A drawn Agg canvas as PNG bytes (fast compression: labs redraw on every slider move)."""
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw",
                             "RGBA", 0, 1)
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=1)
    return buf.getvalue()


def axis_range(x: np.ndarray, pad: float = 0.08) -> tuple[float, float]:
    """Axis limits covering the 0.5..99.5 percentiles of x, padded."""
    lo, hi = np.percentile(x, [0.5, 99.5])
    span = max(hi - lo, 1e-9)
    return float(lo - pad * span), float(hi + pad * span)


def top_components(reference: np.ndarray, k: int = 2) -> list[tuple[int, ...]]:
    """The largest |component| of the reference gradient in each of the k states where it is
    largest. (Two components of one state would be tied: a softmax gradient sums to zero over the
    actions of a state.) -> k index tuples, largest first."""
    if reference.ndim == 1:
        return [(int(i),) for i in np.argsort(-np.abs(reference), kind="stable")[:k]]
    flat = np.abs(reference).reshape(len(reference), -1)
    best_action = flat.argmax(axis=1)
    states = np.argsort(-flat.max(axis=1), kind="stable")[:k]
    return [(int(s), *(int(i) for i in np.unravel_index(best_action[s], reference.shape[1:])))
            for s in states]


def component_xy(estimates: np.ndarray, comps: Sequence[tuple[int, ...]]) -> np.ndarray:
    """(R, *shape) estimates -> (R, 2): their components at the two index tuples `comps`."""
    flat = estimates.reshape(len(estimates), -1)
    return flat[:, [np.ravel_multi_index(c, estimates.shape[1:]) for c in comps]]
