"""The variance lab widget: sliders for N and the seed, a checkbox per estimator, a live plot and
table of bias, variance and MSE against the exact gradient (used by every notebook).

`VarianceLab.update` is the plain function behind the widget; tests call it directly. For one
seed, the lab samples a pool of trajectories once and reuses it for every N and every
estimator (common random numbers): an estimate of size N is the average over N consecutive
trajectories of the pool, so a slider move only regroups numbers already computed.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Sequence

import ipywidgets as W
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from acteach._validate import check_positive_int
from acteach.estimators import (METHODS, GradientStats, estimates_from_batch, group_means,
                                 summarize)
from acteach.plotting import EstimatePlot, canvas_png, stats_table
from acteach.sampling import Batch
from acteach.tabular import TabularMDP, check_logits, exact_policy_gradient, sample_trajectories


@dataclass(frozen=True)
class Estimator:
    """One line of the lab: a label, a method name from `METHODS`, and the method's options."""

    label: str
    method: str
    options: dict = field(default_factory=dict)


def as_estimator(spec: str | Estimator | tuple) -> Estimator:
    """'reinforce' | Estimator(...) | (label, method[, options]) -> Estimator, checked."""
    est = (Estimator(spec, spec) if isinstance(spec, str)
           else spec if isinstance(spec, Estimator) else Estimator(*spec))
    if est.method not in METHODS:
        raise ValueError(f"estimators: unknown method {est.method!r}; "
                         f"expected one of {sorted(METHODS)}")
    return est


class VarianceLab:
    """Compare gradient estimators on a tabular MDP against its exact policy gradient.

    mdp, logits: the MDP and the (S, A) softmax logits at which the gradient is taken.
    estimators: method names, or (label, method, options) tuples.
    pool: trajectories sampled per seed; an estimate of N trajectories leaves pool // N estimates.
    """

    N_VALUES = (1, 2, 5, 10, 20, 50, 100)

    def __init__(self, mdp: TabularMDP, logits: np.ndarray,
                 estimators: Sequence[str | Estimator | tuple], pool: int = 20_000,
                 n_values: Sequence[int] = N_VALUES) -> None:
        check_positive_int("pool", pool)
        self.mdp, self.logits = mdp, check_logits(mdp, logits)
        self.estimators = [as_estimator(e) for e in estimators]
        if not self.estimators:
            raise ValueError("estimators: expected at least one estimator")
        self.n_values = tuple(n_values)
        if max(self.n_values) * 2 > pool:
            raise ValueError(f"pool: {pool} trajectories leave fewer than 2 estimates at "
                             f"N = {max(self.n_values)}; raise pool or lower n_values")
        self.pool = pool
        self.exact = exact_policy_gradient(mdp, self.logits)
        self._cache: OrderedDict[int, tuple[Batch, dict]] = OrderedDict()
        self._plot: EstimatePlot | None = None
        self.scale_n = 10 if 10 in self.n_values else self.n_values[0]

    def _pool(self, seed: int) -> tuple[Batch, dict]:
        """The trajectories of a seed, and each per-trajectory estimator's gradients with the
        extra environment steps they cost (cached)."""
        if seed not in self._cache:
            rng = np.random.default_rng(seed)
            batch = sample_trajectories(self.mdp, self.logits, self.pool, rng)
            single = {e.label: estimates_from_batch(self.mdp, self.logits, batch, e.method, 1,
                                                    rng, **e.options)
                      for e in self.estimators if not METHODS[e.method].batch_dependent}
            self._cache[seed] = (batch, single)
            while len(self._cache) > 4:
                self._cache.popitem(last=False)
        return self._cache[seed]

    def _estimates(self, e: Estimator, n: int, seed: int) -> tuple[np.ndarray, float]:
        """pool // n estimates of n trajectories each (R, S, A), and env steps per estimate."""
        batch, single = self._pool(seed)
        if e.label in single:          # the mean of n per-trajectory gradients
            per_trajectory, extra = single[e.label]
            estimates = group_means(per_trajectory, n)
        else:
            rng = np.random.default_rng([seed, n])
            estimates, extra = estimates_from_batch(self.mdp, self.logits, batch, e.method, n,
                                                    rng, **e.options)
        return estimates, (batch.n_steps + extra) * n / self.pool

    def update(self, n: int, seed: int = 0, labels: Sequence[str] | None = None
               ) -> list[GradientStats]:
        """Statistics of each chosen estimator with N = n trajectories per estimate."""
        check_positive_int("n", n)
        if 2 * n > self.pool:
            raise ValueError(f"n: at most {self.pool // 2} with a pool of {self.pool}, got {n}")
        chosen = [e for e in self.estimators if labels is None or e.label in labels]
        stats = []
        for e in chosen:
            estimates, steps = self._estimates(e, n, seed)
            stats.append(summarize(e.label, estimates, self.exact, n, steps_per_estimate=steps))
        return stats

    def render(self, stats: list[GradientStats]) -> tuple[bytes, str]:
        """PNG bytes of the plot and the text table for these statistics. The plot's axes are
        fixed on first use, from the estimates at N = self.scale_n, seed 0."""
        if self._plot is None:
            self._plot = EstimatePlot([e.label for e in self.estimators],
                                      self.update(self.scale_n))
        n = stats[0].n_trajectories
        title = f"N = {n} trajectories per estimate, {stats[0].n_repeats} estimates"
        return self._plot.draw(stats, title), stats_table(stats)

    def widget(self, n: int = 10, seed: int = 0) -> W.VBox:
        """The interactive lab: N and seed sliders, estimator checkboxes, plot and table."""
        n_slider = W.SelectionSlider(options=self.n_values, value=n, description="N",
                                     continuous_update=False)
        seed_slider = W.IntSlider(value=seed, min=0, max=20, description="seed",
                                  continuous_update=False)
        boxes = [W.Checkbox(value=True, description=e.label, indent=False)
                 for e in self.estimators]
        image = W.Image(format="png")
        readout = W.HTML()

        def redraw(_=None) -> None:
            labels = [b.description for b in boxes if b.value]
            if not labels:
                readout.value = "<pre>Tick at least one estimator.</pre>"
                return
            stats = self.update(n_slider.value, seed_slider.value, labels)
            image.value, table = self.render(stats)
            readout.value = (f"<pre>N = {n_slider.value} trajectories per estimate, seed "
                             f"{seed_slider.value}, {stats[0].n_repeats} estimates each, "
                             f"{stats[0].steps_per_estimate:.0f} env steps per estimate\n\n"
                             f"{table}</pre>")

        for control in (n_slider, seed_slider, *boxes):
            control.observe(redraw, names="value")
        redraw()
        return W.VBox([W.HBox([n_slider, seed_slider]), W.HBox(boxes), image, readout])


# ---------------------------------------------------------------------------------------------
# Notebook 02: Q from k rollouts (QLab)
# ---------------------------------------------------------------------------------------------

class QLab:
    """The Q lab: variance against k and against the environment steps spent (backs notebook 02).

    Three weights for the same estimator g_hat: the reward-to-go Q_hat_{n,t} (one sample of
    Q^pi, free: the trajectory's own future), "q_mc" (the mean of k fresh rollouts from each
    (s_t, a_t): unbiased, Var = Var[q_exact] + C / k, and k rollouts' worth of extra steps) and
    "q_exact" (the exact Q^pi(s_t, a_t): an oracle, no extra steps).

    For one seed the lab samples `pool` trajectories once and computes, per trajectory, the
    gradient of each weight (for q_mc once per k, fresh rollouts, the same trajectories) and the
    extra steps. An estimate of N trajectories is the mean of N consecutive per-trajectory
    gradients, so every (k, N) pair is a regrouping of cached numbers; the statistics of all
    pairs are computed once per seed, and a slider move only redraws (blitted, see `render`).

    mdp, logits: the MDP and the (S, A) logits; k_values: rollouts per step offered;
    n_values: trajectories per estimate offered; pool: trajectories per seed.
    """

    K_VALUES = (1, 2, 4, 8, 16)
    N_VALUES = (1, 2, 5, 10, 20, 50)
    RTG, EXACT = "reward_to_go", "q_exact"

    def __init__(self, mdp: TabularMDP, logits: np.ndarray, k_values: Sequence[int] = K_VALUES,
                 n_values: Sequence[int] = N_VALUES, pool: int = 4000) -> None:
        check_positive_int("pool", pool)
        for name, values in (("k_values", k_values), ("n_values", n_values)):
            if not values:
                raise ValueError(f"{name}: expected at least one value, got {values!r}")
            for v in values:
                check_positive_int(name, v)
        self.mdp, self.logits = mdp, check_logits(mdp, logits)
        self.k_values, self.n_values = tuple(sorted(k_values)), tuple(sorted(n_values))
        if 2 * self.n_values[-1] > pool:
            raise ValueError(f"pool: {pool} trajectories leave fewer than 2 estimates at "
                             f"N = {self.n_values[-1]}; raise pool or lower n_values")
        self.pool = pool
        self.exact = exact_policy_gradient(mdp, self.logits)
        self._cache: OrderedDict[int, dict] = OrderedDict()
        self._plot: _QPlot | None = None

    @staticmethod
    def mc_label(k: int) -> str:
        return f"q_mc k={k}"

    @property
    def labels(self) -> list[str]:
        """The estimators, in plotting order: reward-to-go, q_mc for each k, q_exact."""
        return [self.RTG, *(self.mc_label(k) for k in self.k_values), self.EXACT]

    def _grid(self, seed: int) -> dict[tuple[str, int], GradientStats]:
        """(label, N) -> statistics, for every estimator and every N (cached per seed)."""
        if seed not in self._cache:
            rng = np.random.default_rng(seed)
            batch = sample_trajectories(self.mdp, self.logits, self.pool, rng)
            runs = [(self.RTG, "reward_to_go", {}), (self.EXACT, "q_exact", {})]
            runs += [(self.mc_label(k), "q_mc", {"k": k}) for k in self.k_values]
            grid = {}
            for label, method, options in runs:
                per_trajectory, extra = estimates_from_batch(self.mdp, self.logits, batch,
                                                             method, 1, rng, **options)
                steps_per_trajectory = (batch.n_steps + extra) / self.pool
                for n in self.n_values:
                    grid[label, n] = summarize(label, group_means(per_trajectory, n),
                                               self.exact, n, steps_per_trajectory * n)
            self._cache[seed] = grid
            while len(self._cache) > 4:
                self._cache.popitem(last=False)
        return self._cache[seed]

    def _check(self, k: int, n: int) -> None:
        if k not in self.k_values:
            raise ValueError(f"k: expected one of {self.k_values}, got {k!r}")
        if n not in self.n_values:
            raise ValueError(f"n: expected one of {self.n_values}, got {n!r}")

    def update(self, k: int, n: int, seed: int = 0) -> list[GradientStats]:
        """[reward_to_go, q_mc with k rollouts, q_exact] with N = n trajectories per estimate.
        Each GradientStats carries steps_per_estimate: the N trajectories' steps plus, for q_mc,
        its k rollouts from every step."""
        self._check(k, n)
        grid = self._grid(seed)
        return [grid[self.RTG, n], grid[self.mc_label(k), n], grid[self.EXACT, n]]

    def curves(self, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """label -> (steps per estimate, variance), each (len(n_values),): one curve per
        estimator through the N values."""
        grid = self._grid(seed)
        return {label: (np.array([grid[label, n].steps_per_estimate for n in self.n_values]),
                        np.array([grid[label, n].variance for n in self.n_values]))
                for label in self.labels}

    def readout(self, k: int, n: int, seed: int = 0) -> str:
        """The numbers behind the plot, as text: each estimator's |bias|, noise floor, variance
        +- SE, steps per estimate and variance x steps; then the variances at an equal budget."""
        stats = self.update(k, n, seed)
        budget = stats[1].steps_per_estimate
        head = (f"{'estimator':<14}{'|bias|':>8}{'noise':>8}{'variance':>20}"
                f"{'steps/estimate':>16}{'variance x steps':>18}")
        lines = [f"N = {n} trajectories per estimate, k = {k} rollouts per step, seed {seed}, "
                 f"{stats[0].n_repeats} estimates each", "", head, "-" * len(head)]
        for s in stats:
            pm = f"{s.variance:.4g} \u00b1 {s.variance_se:.2g}"
            lines.append(f"{s.method:<14}{s.bias_norm:>8.3g}{s.noise_floor:>8.3g}{pm:>20}"
                         f"{s.steps_per_estimate:>16,.0f}"
                         f"{s.variance * s.steps_per_estimate:>18,.4g}")
        lines += ["", f"At an equal budget of {budget:,.0f} steps per estimate (what q_mc k={k} "
                      f"spends at N = {n}), variance = (variance x steps) / budget:"]
        for s in stats:
            affords = n * budget / s.steps_per_estimate
            lines.append(f"  {s.method:<14}{s.variance * s.steps_per_estimate / budget:>10.4g}"
                         f"   (N = {affords:,.1f} trajectories)")
        lines.append("  (q_exact is an oracle: its Q costs no steps here. A fitted Q would be cheap "
                     "too, but biased where the fit is off.)")
        return "\n".join(lines)

    def render(self, k: int, n: int, seed: int = 0) -> tuple[bytes, str]:
        """PNG bytes of the two panels and the readout text, for k rollouts and N = n.
        The axes are fixed on first use (from seed 0); later calls redraw only the data."""
        self._check(k, n)
        if self._plot is None:
            self._plot = _QPlot(self, self.curves(0))
        return self._plot.draw(k, n, seed), self.readout(k, n, seed)

    def widget(self, k: int = 4, n: int = 10, seed: int = 0) -> W.VBox:
        """The interactive lab: k and N sliders, the two panels and the readout."""
        self._check(k, n)
        k_slider = W.SelectionSlider(options=self.k_values, value=k, description="k",
                                     continuous_update=False)
        n_slider = W.SelectionSlider(options=self.n_values, value=n, description="N",
                                     continuous_update=False)
        image = W.Image(format="png")
        readout = W.HTML()

        def redraw(_=None) -> None:
            image.value, text = self.render(k_slider.value, n_slider.value, seed)
            readout.value = f"<pre>{text}</pre>"

        for control in (k_slider, n_slider):
            control.observe(redraw, names="value")
        redraw()
        return W.VBox([W.HBox([k_slider, n_slider]), image, readout])


class _QPlot:
    """The QLab figure. Left: variance against k (log x) at the current N, the current k ringed,
    reward-to-go and q_exact as horizontal lines. Right: variance against the environment steps
    per estimate (log-log), one curve per estimator through the N values, the current point
    ringed and its budget a vertical line: at equal budget, the lower curve wins. Dotted: each
    curve continued by the 1/N law (variance x steps constant) across the whole axis.
    Axes, ticks, labels and legend are drawn once; each redraw blits the data artists."""

    def __init__(self, lab: QLab, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        self.lab = lab
        self.fig = Figure(figsize=(9.5, 3.5), dpi=72)
        self.canvas = FigureCanvasAgg(self.fig)
        ax_k, ax_s = self.fig.subplots(1, 2)
        self.fig.subplots_adjust(left=0.08, right=0.99, bottom=0.15, top=0.9, wspace=0.22)
        steps = np.concatenate([c[0] for c in curves.values()])
        var = np.concatenate([c[1] for c in curves.values()])
        ylim = (var.min() / 2.0, var.max() * 2.0)
        ks = np.array(lab.k_values, dtype=float)
        ax_k.set(xscale="log", yscale="log", ylim=ylim, xlim=(ks[0] / 1.4, ks[-1] * 1.4),
                 xlabel="k rollouts per (s_t, a_t)", ylabel="total variance of g_hat")
        ax_k.set_xticks(ks, [str(k) for k in lab.k_values])
        ax_k.minorticks_off()
        self.xlim = (steps.min() / 2, steps.max() * 2)
        ax_s.set(xscale="log", yscale="log", ylim=ylim, xlim=self.xlim,
                 xlabel="env steps per estimate (N trajectories + their rollouts)")
        cmap = colormaps["viridis"]
        colors = {lab.RTG: "k", lab.EXACT: "0.45"}
        for i, k in enumerate(lab.k_values):
            colors[lab.mc_label(k)] = cmap(0.15 + 0.7 * i / max(len(lab.k_values) - 1, 1))
        hline = dict(lw=1.3, animated=True)
        self.rtg_level = ax_k.axhline(ylim[0], color=colors[lab.RTG], label="reward_to_go",
                                      **hline)
        self.exact_level = ax_k.axhline(ylim[0], color=colors[lab.EXACT], ls="--",
                                        label="q_exact", **hline)
        (self.k_curve,) = ax_k.plot([], [], "o-", color=cmap(0.5), label="q_mc", animated=True)
        (self.k_mark,) = ax_k.plot([], [], "o", ms=14, mfc="none", mec="tab:red", mew=2,
                                   animated=True)
        self.k_title = ax_k.set_title("", fontsize=9, animated=True)
        ax_k.legend(fontsize=8, frameon=False, loc="upper right")
        self.s_curves, self.s_laws = {}, {}
        for label in lab.labels:
            style = "x--" if label == lab.EXACT else "o-"
            (self.s_curves[label],) = ax_s.plot([], [], style, ms=4, lw=1.2, color=colors[label],
                                                label=label, animated=True)
            (self.s_laws[label],) = ax_s.plot([], [], ":", lw=0.8, alpha=0.6,
                                              color=colors[label], animated=True)
        (self.s_mark,) = ax_s.plot([], [], "o", ms=14, mfc="none", mec="tab:red", mew=2,
                                   animated=True)
        self.budget = ax_s.axvline(steps.min(), color="tab:red", lw=0.8, ls=":", animated=True)
        self.s_title = ax_s.set_title("", fontsize=9, animated=True)
        ax_s.legend(fontsize=7, frameon=False, loc="lower left", ncol=2)
        self.axes = (ax_k, ax_s)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    def draw(self, k: int, n: int, seed: int) -> bytes:
        """Redraw the data for (k, N = n, seed) on the fixed axes; -> PNG bytes."""
        lab, (ax_k, ax_s) = self.lab, self.axes
        grid, curves = lab._grid(seed), lab.curves(seed)
        self.canvas.restore_region(self.background)
        var_k = [grid[lab.mc_label(j), n].variance for j in lab.k_values]
        self.k_curve.set_data(lab.k_values, var_k)
        self.k_mark.set_data([k], [grid[lab.mc_label(k), n].variance])
        self.rtg_level.set_ydata([grid[lab.RTG, n].variance] * 2)
        self.exact_level.set_ydata([grid[lab.EXACT, n].variance] * 2)
        self.k_title.set_text(f"variance against k, N = {n}, seed {seed}")
        for artist in (self.rtg_level, self.exact_level, self.k_curve, self.k_mark,
                       self.k_title):
            ax_k.draw_artist(artist)
        for label, line in self.s_curves.items():
            steps, var = curves[label]
            line.set_data(steps, var)
            # the 1/N law: variance x steps stays constant, through the smallest N (most estimates)
            self.s_laws[label].set_data(self.xlim, [var[0] * steps[0] / x for x in self.xlim])
            ax_s.draw_artist(self.s_laws[label])
            ax_s.draw_artist(line)
        current = grid[lab.mc_label(k), n]
        self.s_mark.set_data([current.steps_per_estimate], [current.variance])
        self.budget.set_xdata([current.steps_per_estimate] * 2)
        self.s_title.set_text(f"q_mc k={k}, N = {n}: {current.steps_per_estimate:,.0f} steps "
                              "per estimate (dotted)")
        for artist in (self.budget, self.s_mark, self.s_title):
            ax_s.draw_artist(artist)
        return canvas_png(self.canvas)
