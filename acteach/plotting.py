"""Plots and tables of gradient estimates (used by the variance widget and every notebook)."""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from acteach.estimators import GradientStats

COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
          "tab:pink", "tab:olive")


def stats_table(stats: Sequence[GradientStats]) -> str:
    """A text table: bias, noise floor, total variance and MSE (each +- one standard error), and
    the variance relative to the first row."""
    width = max(len(s.method) for s in stats) + 2
    head = (f"{'estimator':<{width}}{'|bias|':>9}{'noise':>9}{'variance':>20}"
            f"{'MSE':>20}{'var / first':>13}")
    lines = [head, "-" * len(head)]
    for s in stats:
        ratio = s.variance / stats[0].variance if stats[0].variance > 0 else float("nan")
        lines.append(f"{s.method:<{width}}{s.bias_norm:>9.3g}{s.noise_floor:>9.3g}"
                     f"{_pm(s.variance, s.variance_se):>20}{_pm(s.mse, s.mse_se):>20}"
                     f"{ratio:>13.3f}")
    return "\n".join(lines)


def _pm(value: float, se: float) -> str:
    return f"{value:.4g} \u00b1 {se:.2g}"


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


class EstimatePlot:
    """Many gradient estimates against the true gradient, on axes that stay fixed.

    Left: each estimator's estimates projected on the direction of the true gradient (a
    histogram scaled to its peak), the true length dashed. Right: two components of the
    estimates (the true gradient's largest), the truth a star. The axes are set once from
    `scale_stats` (use the noisiest setting), so a larger N visibly narrows the clouds.
    Redraws only the data (blitting): the axes, ticks and labels are drawn once.
    """

    def __init__(self, labels: Sequence[str], scale_stats: Sequence[GradientStats],
                 max_points: int = 300, bins: int = 41) -> None:
        self.labels, self.max_points = list(labels), max_points
        ref = scale_stats[0].reference
        self.unit = ref.ravel() / max(np.linalg.norm(ref), 1e-12)
        self.comps = top_components(ref) if len(ref) > 1 else [(0,) * ref.ndim] * 2
        self.fig = Figure(figsize=(9, 3.2), dpi=72)
        self.canvas = FigureCanvasAgg(self.fig)
        ax_p, ax_xy = self.fig.subplots(1, 2)
        self.fig.subplots_adjust(left=0.04, right=0.99, bottom=0.17, top=0.88, wspace=0.18)
        proj = np.concatenate([self._project(s.estimates) for s in scale_stats])
        lo, hi = _range(np.append(proj, np.linalg.norm(ref)))
        self.edges = np.linspace(lo, hi, bins)
        xy = np.concatenate([self._xy(s.estimates) for s in scale_stats] + [[self._xy_ref(ref)]])
        (x0, x1), (y0, y1) = _range(xy[:, 0]), _range(xy[:, 1])
        ax_p.set(xlim=(lo, hi), ylim=(0, 1.08), yticks=[],
                 xlabel="estimate projected on the true gradient direction")
        ax_p.axvline(np.linalg.norm(ref), color="k", lw=1.2, ls="--", label="true |grad J|")
        ax_xy.set(xlim=(x0, x1), ylim=(y0, y1), xlabel=f"dJ/dlogits{list(self.comps[0])}",
                  ylabel=f"dJ/dlogits{list(self.comps[1])}")
        ax_xy.scatter(*self._xy_ref(ref), marker="*", s=200, color="k", zorder=3)
        for axis in (ax_p.xaxis, ax_xy.xaxis, ax_xy.yaxis):
            axis.set_major_locator(MaxNLocator(5))
        self.hists, self.clouds = {}, {}
        for k, label in enumerate(self.labels):
            color = COLORS[k % len(COLORS)]
            self.hists[label] = ax_p.stairs(np.zeros(bins - 1), self.edges, color=color, lw=1.8,
                                            label=label, animated=True)
            self.clouds[label] = ax_xy.scatter([], [], s=7, alpha=0.4, color=color,
                                               animated=True)
        ax_p.legend(fontsize=8, frameon=False, loc="lower left", bbox_to_anchor=(0, 1),
                    ncol=4, borderaxespad=0.2)
        self.title = ax_xy.set_title("", fontsize=9, animated=True)
        self.axes = (ax_p, ax_xy)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    def _project(self, estimates: np.ndarray) -> np.ndarray:
        return estimates.reshape(len(estimates), -1) @ self.unit

    def _xy(self, estimates: np.ndarray) -> np.ndarray:
        flat = estimates.reshape(len(estimates), -1)
        shape = estimates.shape[1:]
        return flat[:, [np.ravel_multi_index(c, shape) for c in self.comps]]

    def _xy_ref(self, ref: np.ndarray) -> np.ndarray:
        return np.array([ref[self.comps[0]], ref[self.comps[1]]])

    def draw(self, stats: Sequence[GradientStats], title: str = "") -> bytes:
        """Draw these estimators' estimates (the others are hidden); -> PNG bytes."""
        self.canvas.restore_region(self.background)
        shown = {s.method: s for s in stats}
        ax_p, ax_xy = self.axes
        for label in self.labels:
            if label not in shown:
                continue
            counts, _ = np.histogram(self._project(shown[label].estimates), self.edges)
            self.hists[label].set_data(counts / max(counts.max(), 1))
            self.clouds[label].set_offsets(self._xy(shown[label].estimates[:self.max_points]))
            ax_p.draw_artist(self.hists[label])
            ax_xy.draw_artist(self.clouds[label])
        self.title.set_text(title)
        ax_xy.draw_artist(self.title)
        return self.png()

    def png(self) -> bytes:
        return canvas_png(self.canvas)


def canvas_png(canvas: FigureCanvasAgg) -> bytes:
    """A drawn Agg canvas as PNG bytes (fast compression: widgets redraw on every slider move)."""
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw",
                             "RGBA", 0, 1)
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=1)
    return buf.getvalue()


def _range(x: np.ndarray, pad: float = 0.08) -> tuple[float, float]:
    """Axis limits covering the 0.5..99.5 percentiles of x, padded."""
    lo, hi = np.percentile(x, [0.5, 99.5])
    span = max(hi - lo, 1e-9)
    return float(lo - pad * span), float(hi + pad * span)


def show_estimates(stats: Sequence[GradientStats], title: str = ""):
    """An image of these estimates for a notebook cell (axes scaled to these estimates)."""
    from IPython.display import Image as IPythonImage
    plot = EstimatePlot([s.method for s in stats], stats)
    return IPythonImage(plot.draw(stats, title))


# ---------------------------------------------------------------------------------------------
# Notebook 03: baselines state by state
# ---------------------------------------------------------------------------------------------

def baselines_by_state_figure(value: np.ndarray, constant: float, per_parameter: np.ndarray,
                              names: Sequence[str] | None = None, title: str = "") -> Figure:
    """Baselines side by side, one group per state s: V^pi(s) (a bar), one constant baseline for
    every state (a dashed line, e.g. the batch-mean return) and the per-parameter baseline
    b*[s, a] of each action's logit (markers).

    value: (S,) V^pi of the states shown; constant: a float; per_parameter: (S, A), e.g.
    `optimal_constant_baseline` of a softmax table; names: S labels (default 0..S-1).
    """
    value, per_parameter = np.asarray(value, dtype=float), np.asarray(per_parameter, dtype=float)
    if value.ndim != 1:
        raise ValueError(f"value: expected shape (S,), got {value.shape}")
    if per_parameter.ndim != 2 or per_parameter.shape[0] != value.shape[0]:
        raise ValueError(f"per_parameter: expected shape ({value.shape[0]}, A), "
                         f"got {per_parameter.shape}")
    names = [str(s) for s in range(len(value))] if names is None else list(names)
    if len(names) != len(value):
        raise ValueError(f"names: expected {len(value)} labels, got {len(names)}")
    fig = Figure(figsize=(7.5, 3.2), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    x = np.arange(len(value))
    ax.bar(x, value, width=0.6, color="0.82", edgecolor="0.5", label=r"$V^{\pi_\theta}(s)$")
    ax.axhline(constant, color="k", ls="--", lw=1.2, label=f"batch-mean return = {constant:.3g}")
    A = per_parameter.shape[1]
    offsets = (np.arange(A) - (A - 1) / 2) * 0.12
    for a in range(A):
        ax.scatter(x + offsets[a], per_parameter[:, a], s=36, zorder=3,
                   color=COLORS[(a + 1) % len(COLORS)], marker="os^vD<>p"[a % 8],
                   label=f"$b^*$ of the logit of action {a}")
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set(xticks=x, xticklabels=names, xlabel="state s", ylabel="baseline")
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def show_baselines_by_state(value: np.ndarray, constant: float, per_parameter: np.ndarray,
                            names: Sequence[str] | None = None, title: str = ""):
    """`baselines_by_state_figure` as an image for a notebook cell."""
    from IPython.display import Image as IPythonImage
    fig = baselines_by_state_figure(value, constant, per_parameter, names, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return IPythonImage(buf.getvalue())


def show_figure(fig: Figure):
    """A matplotlib Figure (made without pyplot, as this module makes them) as an image for a
    notebook cell."""
    from IPython.display import Image as IPythonImage
    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return IPythonImage(buf.getvalue())
