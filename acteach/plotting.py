"""Still figures and tables for the notebooks (01-05, 07, 09) and the labs: a table of gradient
statistics (`show_stats` in a notebook, `stats_table` as text in a lab's readout), baselines
state by state (03), fitted value tables against V^pi (04), and `show_figure` to show any
matplotlib Figure made without pyplot in a notebook cell.
The labs' live figures live with their labs (`acteach.labs`)."""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from acteach import display
from acteach.estimators import GradientStats

COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
          "tab:pink", "tab:olive")


def stats_table(stats: Sequence[GradientStats]) -> str:
    """A text table: bias, noise floor, total variance and the mean cosine with the exact
    gradient (each +- one standard error), and the variance relative to the first row. (No raw
    MSE: it rewards an estimator for shrinking toward 0.)"""
    width = max(len(s.method) for s in stats) + 2
    head = (f"{'estimator':<{width}}{'|bias|':>9}{'noise':>9}{'variance':>20}"
            f"{'cosine with grad J':>20}{'var / first':>13}")
    lines = [head, "-" * len(head)]
    for s in stats:
        ratio = s.variance / stats[0].variance if stats[0].variance > 0 else float("nan")
        lines.append(f"{s.method:<{width}}{s.bias_norm:>9.3g}{s.noise_floor:>9.3g}"
                     f"{plus_minus(s.variance, s.variance_se):>20}"
                     f"{plus_minus(s.cosine, s.cosine_se):>20}{ratio:>13.3f}")
    return "\n".join(lines)


def variance_ratio(num: GradientStats, den: GradientStats) -> tuple[float, float]:
    """Var(num) / Var(den) and its standard error.

    With as many estimates on both sides, they are paired by index and the SE comes from the
    ratio's influence function over the R pairs: valid whether or not the two estimators saw
    the same trajectories, and much tighter when they did (their noise then cancels in the
    ratio). Otherwise the two variances' SEs are combined as independent (delta method)."""
    a, b = (s.estimates.reshape(len(s.estimates), -1) for s in (num, den))
    if len(a) != len(b):
        ratio = num.variance / den.variance
        return ratio, ratio * float(np.hypot(num.variance_se / num.variance,
                                             den.variance_se / den.variance))
    da, db = (((x - x.mean(axis=0)) ** 2).sum(axis=1) for x in (a, b))
    ratio = da.mean() / db.mean()
    influence = (da - ratio * db) / db.mean()
    return float(ratio), float(influence.std(ddof=1) / np.sqrt(len(da)))


def show_stats(stats: Sequence[GradientStats], title: str | None = None) -> None:
    """A table, one row per estimator: |bias| next to its noise floor and the largest
    |bias| / SE over the components (an unbiased estimator's stays within pure noise's range),
    the total variance, the variance relative to the first row, and the expected cosine with
    the exact gradient (the direction a step takes), each +- its standard error."""
    rows = [[s.method, s.bias_norm, s.noise_floor, s.max_bias_z, (s.variance, s.variance_se),
             variance_ratio(s, stats[0]) if k else 1, (s.cosine, s.cosine_se)]
            for k, s in enumerate(stats)]
    display.table(rows, ["estimator", "|bias|", "noise floor", "max |bias|/SE", "variance",
                         f"variance / {stats[0].method}'s", "cos(g_hat, grad J)"], title=title)


def plus_minus(value: float, se: float) -> str:
    """'value ± se', for a table cell."""
    return f"{value:.4g} \u00b1 {se:.2g}"


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
