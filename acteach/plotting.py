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
        self.title = ax_xy.text(0.98, 0.97, "", transform=ax_xy.transAxes, ha="right",
                                va="top", fontsize=9, animated=True)     # clear of the legend
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


# ---------------------------------------------------------------------------------------------
# Notebook 05: the discount factor against bias and variance
# ---------------------------------------------------------------------------------------------

class GammaPlot:
    """The discount lab's figure: two panels over a grid of discount factors (x = the grid's
    index, labelled with its gamma), one colour per discount option, the chosen gamma a
    vertical line.

    Left (log y): |bias|^2 of each option's expectation against the undiscounted gradient
    (exact; drawn once, solid), and the variance of an estimate of N trajectories (measured;
    redrawn for each N, dashed) with their sum, the MSE (dotted). Right: cos(E[g], grad J_1)
    (exact; drawn once, solid) and the mean cosine of one N-trajectory estimate with grad J_1
    (measured; redrawn, markers): how well a single update points uphill on the undiscounted
    return. Axes, ticks, labels and the exact curves are drawn once; a redraw blits the rest.

    gammas: (G,) the grid; bias2, cos_mean: option -> (G,) exact curves; variance_range: the
    (lowest, highest) variance over every N, to fix the left axis.
    """

    def __init__(self, gammas, bias2: dict, cos_mean: dict,
                 variance_range: tuple[float, float]) -> None:
        self.gammas = np.asarray(gammas, dtype=float)
        x = np.arange(len(self.gammas))
        self.x = x
        self.fig = Figure(figsize=(9.5, 3.9), dpi=72)
        self.canvas = FigureCanvasAgg(self.fig)
        ax_b, ax_c = self.fig.subplots(1, 2)
        self.fig.subplots_adjust(left=0.07, right=0.99, bottom=0.13, top=0.78, wspace=0.2)
        positive = np.concatenate([b[b > 0] for b in bias2.values()] + [np.asarray(variance_range)])
        self.floor = positive.min() / 3.0
        top = max(positive.max(), 2 * variance_range[1]) * 3.0
        labels = [f"{g:g}" for g in self.gammas]
        for ax in (ax_b, ax_c):
            ax.set_xticks(x, labels, fontsize=8)
            ax.set_xlim(-0.4, len(x) - 0.6)
            ax.set_xlabel("discount factor gamma")
        ax_b.set(yscale="log", ylim=(self.floor, top), ylabel="squared norm")
        ax_c.set(ylim=(-0.05, 1.05), ylabel="cosine with grad J_1")
        self.colors = {opt: COLORS[i] for i, opt in enumerate(sorted(bias2))}
        self.variance, self.mse, self.cos_estimate = {}, {}, {}
        for opt in sorted(bias2):
            color = self.colors[opt]
            ax_b.plot(x, np.maximum(bias2[opt], self.floor), "-", color=color, lw=1.8,
                      label=f"option {opt}: |bias|^2 (exact)")
            (self.variance[opt],) = ax_b.plot([], [], "o--", ms=3, color=color, lw=1.2,
                                              label=f"option {opt}: variance", animated=True)
            (self.mse[opt],) = ax_b.plot([], [], ":", color=color, lw=1.2, animated=True)
            ax_c.plot(x, cos_mean[opt], "-", color=color, lw=1.8,
                      label=f"option {opt}: cos(E[g], grad J_1)")
            (self.cos_estimate[opt],) = ax_c.plot([], [], "o--", ms=4, color=color, lw=1.0,
                                                  label=f"option {opt}: mean cos(g_hat, grad J_1)",
                                                  animated=True)
        ax_b.plot([], [], ":", color="0.3", label="dotted: MSE = |bias|^2 + variance")
        for ax in (ax_b, ax_c):
            ax.legend(fontsize=7, frameon=False, loc="lower left", bbox_to_anchor=(0, 1),
                      ncol=2, borderaxespad=0.2)
        self.marks = [ax.axvline(0, color="tab:red", lw=1.0, ls="-", alpha=0.6, animated=True)
                      for ax in (ax_b, ax_c)]
        self.title = ax_c.text(0.98, 0.04, "", transform=ax_c.transAxes, ha="right",
                               fontsize=8, animated=True)
        self.axes = (ax_b, ax_c)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    def draw(self, index: int, variance: dict, mse: dict, cos_estimate: dict,
             title: str = "") -> bytes:
        """Redraw the measured curves (option -> (G,) arrays) and mark gamma index `index`."""
        ax_b, ax_c = self.axes
        self.canvas.restore_region(self.background)
        for opt, line in self.variance.items():
            line.set_data(self.x, np.maximum(variance[opt], self.floor))
            self.mse[opt].set_data(self.x, np.maximum(mse[opt], self.floor))
            self.cos_estimate[opt].set_data(self.x, cos_estimate[opt])
            ax_b.draw_artist(line)
            ax_b.draw_artist(self.mse[opt])
            ax_c.draw_artist(self.cos_estimate[opt])
        for ax, mark in zip(self.axes, self.marks):
            mark.set_xdata([index, index])
            ax.draw_artist(mark)
        self.title.set_text(title)
        ax_c.draw_artist(self.title)
        return canvas_png(self.canvas)


# ---------------------------------------------------------------------------------------------
# Notebook 04: fitted tables V against the exact V^pi
# ---------------------------------------------------------------------------------------------

def value_fits_figure(exact: np.ndarray, fits: dict[str, np.ndarray], weights: np.ndarray,
                      names: Sequence[str] | None = None, title: str = "") -> Figure:
    """Tables fitted by several targets against the exact V^pi, and how they got there.

    exact, weights: (S,) V^pi and the visit distribution (states with weight 0 are left out);
    fits: label -> the tables after each update, (steps + 1, S), or (steps + 1, R, S) for R
    independent fits (the bars show their mean, the curves the mean error and a band of one
    standard error). Left: the last tables per state next to V^pi (grey). Right: the visit-
    weighted RMS error to V^pi against the number of updates (log-log).
    """
    exact, weights = np.asarray(exact, dtype=float), np.asarray(weights, dtype=float)
    if exact.ndim != 1 or weights.shape != exact.shape:
        raise ValueError(f"weights: expected shape {exact.shape} (that of exact), "
                         f"got {weights.shape}")
    states = np.flatnonzero(weights > 0)
    names = [str(s) for s in range(len(exact))] if names is None else list(names)
    fig = Figure(figsize=(9.5, 3.4), dpi=80)
    FigureCanvasAgg(fig)
    ax_v, ax_e = fig.subplots(1, 2)
    x = np.arange(len(states))
    width = 0.8 / (len(fits) + 1)
    ax_v.bar(x - 0.4 + width / 2, exact[states], width, color="0.75", label="V^pi (exact)")
    for k, (label, hist) in enumerate(fits.items()):
        hist = np.asarray(hist, dtype=float)
        if hist.ndim not in (2, 3) or hist.shape[-1] != len(exact):
            raise ValueError(f"fits: expected {label!r} of shape (steps + 1, {len(exact)}) or "
                             f"(steps + 1, R, {len(exact)}), got {hist.shape}")
        runs = hist if hist.ndim == 3 else hist[:, None, :]
        color = COLORS[k % len(COLORS)]
        ax_v.bar(x - 0.4 + (k + 1.5) * width, runs[-1].mean(axis=0)[states], width, color=color,
                 label=label)
        err = np.sqrt(((runs - exact) ** 2 * weights).sum(axis=-1) / weights.sum())  # (steps+1, R)
        steps = np.arange(1, len(err) + 1)
        mean = err.mean(axis=1)
        ax_e.plot(steps, mean, color=color, lw=1.5, label=label)
        if err.shape[1] > 1:
            se = err.std(axis=1, ddof=1) / np.sqrt(err.shape[1])
            ax_e.fill_between(steps, mean - se, mean + se, color=color, alpha=0.25, lw=0)
    ax_v.axhline(0.0, color="0.6", lw=0.6)
    ax_v.set(xticks=x, xticklabels=[names[s] for s in states], xlabel="state s", ylabel="V(s)")
    ax_v.legend(fontsize=8, frameon=False, loc="upper left")
    ax_e.set(xscale="log", yscale="log", xlabel="updates + 1",
             ylabel="RMS error to V^pi (visit-weighted)")
    ax_e.legend(fontsize=8, frameon=False, loc="lower left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Notebook 09: n-step returns and GAE, bias against variance
# ---------------------------------------------------------------------------------------------

class LambdaPlot:
    """The n-step / GAE lab's figure: two panels on one log y axis, GAE over a grid of lam (left)
    and the n-step advantage over a grid of n (right), x = the grid's index labelled with its
    value. In each: |bias|^2 (exact, red), the variance of one estimate (measured, blue) and the
    MSE (measured, black), variance and MSE with bars of +- one standard error; the current
    setting a vertical line, the lowest MSE a star (the MSE drawn thick, the variance thin on
    top: where the bias is 0 they coincide). Values below the axis (a zero bias) sit on its
    floor. Axes, ticks, labels and legend are drawn once; a redraw blits the data.

    lams: (L,) the lam grid; n_labels: (K,) the labels of the n grid ("1", ..., "inf");
    y_range: (lowest, highest) value to show, which fixes the y axis.
    """

    KEYS = ("gae", "n_step")

    def __init__(self, lams: Sequence[float], n_labels: Sequence[str],
                 y_range: tuple[float, float]) -> None:
        from matplotlib.collections import LineCollection

        lo, hi = float(y_range[0]), float(y_range[1])
        if not 0 < lo < hi:
            raise ValueError(f"y_range: expected 0 < lowest < highest, got {y_range!r}")
        self.floor = lo
        self.fig = Figure(figsize=(9.5, 3.6), dpi=72)
        self.canvas = FigureCanvasAgg(self.fig)
        axes = self.fig.subplots(1, 2, sharey=True)
        self.fig.subplots_adjust(left=0.07, right=0.99, bottom=0.15, top=0.8, wspace=0.05)
        ticks = ([f"{lam:g}" for lam in lams], [str(n) for n in n_labels])
        xlabels = ("GAE lam   (0: TD advantage, 1: Monte Carlo)",
                   "n-step n   (1: TD advantage, inf: Monte Carlo)")
        self.x, self.artists = {}, {}
        for key, ax, labels, xlabel in zip(self.KEYS, axes, ticks, xlabels):
            x = np.arange(len(labels))
            self.x[key] = x
            ax.set_xticks(x, labels, fontsize=8)
            ax.set(xlim=(-0.4, len(x) - 0.6), xlabel=xlabel, yscale="log", ylim=(lo, hi))
            art = {}
            (art["bias2"],) = ax.plot([], [], "-", color="tab:red", lw=1.8,
                                      label="|bias|^2 (exact; 0 sits on the floor)",
                                      animated=True)
            (art["mse"],) = ax.plot([], [], "s-", ms=5, color="k", lw=2.4,
                                    label="MSE = |bias|^2 + variance", animated=True)
            (art["variance"],) = ax.plot([], [], "o-", ms=3, color="tab:blue", lw=1.1,
                                         label="variance", animated=True)
            for name, color in (("variance_bars", "tab:blue"), ("mse_bars", "k")):
                art[name] = LineCollection([], colors=color, lw=1.0, animated=True)
                ax.add_collection(art[name])
            (art["best"],) = ax.plot([], [], "*", ms=13, color="gold", mec="k",
                                     label="lowest MSE", animated=True)
            art["now"] = ax.axvline(0, color="tab:red", ls=":", lw=1.2, animated=True)
            art["title"] = ax.text(0.02, 0.97, "", transform=ax.transAxes, fontsize=8,
                                   va="top", animated=True)
            self.artists[key] = (ax, art)
        axes[0].set_ylabel("per estimate (squared norm)")
        axes[0].legend(fontsize=8, frameon=False, loc="lower left", bbox_to_anchor=(0, 1),
                       ncol=4, borderaxespad=0.2)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    def _bars(self, x: np.ndarray, y: np.ndarray, se: np.ndarray) -> list:
        low, high = np.maximum(y - se, self.floor), np.maximum(y + se, self.floor)
        return [[(xi, a), (xi, b)] for xi, a, b in zip(x, low, high)]

    def draw(self, curves: dict, current: dict, best: dict, titles: dict) -> bytes:
        """Redraw the data; -> PNG bytes. Each argument is keyed by "gae" and "n_step": curves
        -> {"bias2", "variance", "variance_se", "mse", "mse_se"}, each an array over its grid;
        current, best -> an index into the grid; titles -> a line of text."""
        self.canvas.restore_region(self.background)
        for key in self.KEYS:
            ax, art = self.artists[key]
            c, x = curves[key], self.x[key]
            for name in ("bias2", "variance", "mse"):
                art[name].set_data(x, np.maximum(c[name], self.floor))
            art["variance_bars"].set_segments(self._bars(x, c["variance"], c["variance_se"]))
            art["mse_bars"].set_segments(self._bars(x, c["mse"], c["mse_se"]))
            art["best"].set_data([x[best[key]]], [max(c["mse"][best[key]], self.floor)])
            art["now"].set_xdata([current[key]] * 2)
            art["title"].set_text(titles[key])
            for name in ("now", "bias2", "mse_bars", "mse", "variance_bars", "variance", "best",
                         "title"):
                ax.draw_artist(art[name])
        return canvas_png(self.canvas)
