"""The variance lab widget: sliders for N and the seed, a checkbox per estimator, a live plot and
table of bias, variance and MSE against the exact gradient (used by every notebook).

`VarianceLab.update` is the plain function behind the widget; tests call it directly. For one
seed, the lab samples a pool of trajectories once and reuses it for every N and every
estimator (common random numbers): an estimate of size N is the average over N consecutive
trajectories of the pool, so a slider move only regroups numbers already computed.
"""
from __future__ import annotations

import numbers
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Sequence

import ipywidgets as W
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from acteach._validate import check_finite, check_positive_int
from acteach.critic import (TARGETS, FitConfig, Transitions, batch_fixed_point,
                            check_table_mdp, fit_value_table, transitions, value_error,
                            visit_distribution)
from acteach.discount import (DISCOUNT_OPTIONS, cosine, expected_gradient, undiscounted,
                              undiscounted_gradient, with_gamma)
from acteach.estimators import (METHODS, GradientStats, estimates_from_batch, group_means,
                                 summarize)
from acteach.parallel import smoothed
from acteach.plotting import (EstimatePlot, GammaPlot, LambdaPlot, _pm, _range, canvas_png,
                              stats_table, top_components)
from acteach.sampling import Batch
from acteach.tabular import (TabularMDP, check_logits, exact_policy_gradient, exact_values,
                             sample_trajectories, softmax_policy, state_occupancy)


def _slider(options: Sequence, value: object, description: str) -> W.SelectionSlider:
    """A slider over `options` that redraws when released (not while dragged)."""
    return W.SelectionSlider(options=options, value=value, description=description,
                             continuous_update=False)


def _lab_box(rows: list[list[W.Widget]], render: Callable[..., tuple[bytes | None, str]]
             ) -> W.VBox:
    """Every lab's layout: rows of controls, then the plot, then the readout. When any control
    changes, render(*the controls' values, row by row) gives (PNG bytes, or None to keep the
    plot, and the readout text)."""
    controls = [control for row in rows for control in row]
    image, readout = W.Image(format="png"), W.HTML()

    def redraw(_=None) -> None:
        png, text = render(*(control.value for control in controls))
        if png is not None:
            image.value = png
        readout.value = f"<pre>{text}</pre>"

    for control in controls:
        control.observe(redraw, names="value")
    redraw()
    return W.VBox([row[0] if len(row) == 1 else W.HBox(row) for row in rows] + [image, readout])


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
        seed_slider = W.IntSlider(value=seed, min=0, max=20, description="seed",
                                  continuous_update=False)
        boxes = [W.Checkbox(value=True, description=e.label, indent=False)
                 for e in self.estimators]

        def draw(n: int, seed: int, *ticked: bool) -> tuple[bytes | None, str]:
            labels = [b.description for b, on in zip(boxes, ticked) if on]
            if not labels:
                return None, "Tick at least one estimator."
            stats = self.update(n, seed, labels)
            png, table = self.render(stats)
            return png, (f"N = {n} trajectories per estimate, seed {seed}, "
                         f"{stats[0].n_repeats} estimates each, "
                         f"{stats[0].steps_per_estimate:.0f} env steps per estimate\n\n{table}")

        return _lab_box([[_slider(self.n_values, n, "N"), seed_slider], boxes], draw)


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
        return _lab_box([[_slider(self.k_values, k, "k"), _slider(self.n_values, n, "N")]],
                        lambda k, n: self.render(k, n, seed))


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


# ---------------------------------------------------------------------------------------------
# Notebook 05: the discount lab (gamma against bias and variance)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GammaStats:
    """One discount option at one gamma, for estimates of N trajectories (the reward-to-go
    weights sum_{t'>=t} gamma^(t'-t) r_t', times gamma^t under option 2).

    bias, bias_discounted: |E[g] - grad J_1| and |E[g] - grad J_gamma|, exact.
    variance (+- variance_se): total variance of one estimate of N trajectories, measured
    (the per-trajectory variance / N). mse = bias^2 + variance, against grad J_1.
    cos_mean: cos(E[g], grad J_1), exact. cos_estimate (+- cos_estimate_se): the mean over
    n_repeats estimates of cos(g_hat, grad J_1), measured (a zero estimate counts 0).
    relative_variance: variance / |E[g]|^2, the noise relative to the signal.
    max_z: the largest |sample mean - E[g]| / SE over the components (sampling agrees with the
    exact expectation if this is of the size pure noise gives).
    """

    gamma: float
    option: int
    n_trajectories: int
    n_repeats: int
    bias: float
    bias_discounted: float
    variance: float
    variance_se: float
    mse: float
    cos_mean: float
    cos_estimate: float
    cos_estimate_se: float
    relative_variance: float
    max_z: float


class DiscountLab:
    """The discount lab: bias against the undiscounted gradient, and variance, over a grid of
    gammas (backs notebook 05).

    On an episodic or finite-horizon MDP the undiscounted return J_1 is finite and is what the
    practitioner wants to climb. Discounting the reward-to-go with gamma < 1 biases the
    estimator away from grad J_1 and lowers its variance. The lab samples `pool` trajectories
    once (the policy does not depend on gamma, so every gamma reweights the same trajectories:
    common random numbers), computes each option's per-trajectory gradients at every gamma, and
    the exact expectations; every (gamma, N) pair is then a lookup, and a slider move only
    redraws (blitted).

    mdp, logits: the MDP (its own gamma is ignored) and the (S, A) logits; gammas: the grid
    offered; n_values: trajectories per estimate offered; pool: trajectories sampled.
    """

    GAMMAS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 1.0)
    N_VALUES = (1, 10, 100)

    def __init__(self, mdp: TabularMDP, logits: np.ndarray, gammas: Sequence[float] = GAMMAS,
                 n_values: Sequence[int] = N_VALUES, pool: int = 4000, seed: int = 0) -> None:
        check_positive_int("pool", pool)
        gammas = tuple(float(g) for g in gammas)
        if not gammas or list(gammas) != sorted(set(gammas)):
            raise ValueError(f"gammas: expected increasing distinct values, got {gammas}")
        for g in gammas:
            with_gamma(mdp, g)                        # a ValueError naming gamma if not in [0, 1]
        if not n_values:
            raise ValueError(f"n_values: expected at least one value, got {n_values!r}")
        for n in n_values:
            check_positive_int("n_values", n)
        self.n_values = tuple(sorted(n_values))
        if 2 * self.n_values[-1] > pool:
            raise ValueError(f"pool: {pool} trajectories leave fewer than 2 estimates at "
                             f"N = {self.n_values[-1]}; raise pool or lower n_values")
        self.mdp, self.logits, self.gammas, self.pool = mdp, check_logits(mdp, logits), gammas, pool
        self.reference = undiscounted_gradient(mdp, self.logits)   # ValueError if continuing
        batch = sample_trajectories(undiscounted(mdp), self.logits, pool,
                                    np.random.default_rng(seed))
        self.mean_length = float(batch.lengths.mean())
        self._stats: dict[tuple[float, int, int], GammaStats] = {}
        for g in gammas:
            self._measure(with_gamma(mdp, g), batch)
        self._plot: GammaPlot | None = None

    def _measure(self, mdp: TabularMDP, batch: Batch) -> None:
        """Fill the statistics of both options at mdp.gamma, for every N."""
        ref, ref_norm = self.reference.ravel(), np.linalg.norm(self.reference)
        discounted = expected_gradient(mdp, self.logits, 2)
        for option in DISCOUNT_OPTIONS:
            per_trajectory, _ = estimates_from_batch(mdp, self.logits, batch, "reward_to_go", 1,
                                                     discount_option=option)
            mean = expected_gradient(mdp, self.logits, option)
            one = summarize(f"option {option}", per_trajectory, mean, 1)
            bias = float(np.linalg.norm(mean - self.reference))
            signal = float(np.sum(mean ** 2))
            for n in self.n_values:
                est = group_means(per_trajectory, n).reshape(-1, ref.size)
                norms = np.linalg.norm(est, axis=1) * ref_norm
                cos = np.where(norms > 0, est @ ref / np.where(norms > 0, norms, 1.0), 0.0)
                variance = one.variance / n
                self._stats[mdp.gamma, option, n] = GammaStats(
                    gamma=mdp.gamma, option=option, n_trajectories=n, n_repeats=len(est),
                    bias=bias, bias_discounted=float(np.linalg.norm(mean - discounted)),
                    variance=variance, variance_se=one.variance_se / n, mse=bias ** 2 + variance,
                    cos_mean=cosine(mean, self.reference), cos_estimate=float(cos.mean()),
                    cos_estimate_se=float(cos.std(ddof=1) / np.sqrt(len(cos))),
                    relative_variance=variance / signal if signal > 0 else float("inf"),
                    max_z=one.max_bias_z)

    def _check(self, gamma: float, n: int) -> int:
        """The index of gamma in the grid, or a ValueError; n must be offered too."""
        if n not in self.n_values:
            raise ValueError(f"n: expected one of {self.n_values}, got {n!r}")
        for i, g in enumerate(self.gammas):
            if np.isclose(g, gamma, rtol=0, atol=1e-12):
                return i
        raise ValueError(f"gamma: expected one of the grid {self.gammas}, got {gamma!r}")

    def update(self, gamma: float, n: int) -> list[GammaStats]:
        """[option 1, option 2] at this gamma, estimates of N = n trajectories."""
        g = self.gammas[self._check(gamma, n)]
        return [self._stats[g, option, n] for option in DISCOUNT_OPTIONS]

    def curves(self, n: int) -> dict[int, dict[str, np.ndarray]]:
        """option -> {field: (G,) array over the gamma grid} for estimates of N = n."""
        self._check(self.gammas[0], n)
        fields = ("bias", "variance", "mse", "cos_mean", "cos_estimate", "relative_variance")
        return {option: {f: np.array([getattr(self._stats[g, option, n], f) for g in self.gammas])
                         for f in fields}
                for option in DISCOUNT_OPTIONS}

    def best_gamma(self, n: int, option: int = 1, by: str = "mse") -> float:
        """The gamma of the grid with the lowest MSE (by="mse") or the highest mean cosine of one
        estimate with grad J_1 (by="cos_estimate"), for estimates of N = n."""
        curve = self.curves(n)[option][by]
        return self.gammas[int(np.argmin(curve) if by == "mse" else np.argmax(curve))]

    def readout(self, gamma: float, n: int) -> str:
        """The numbers behind the plot at (gamma, N), as text."""
        rows = self.update(gamma, n)
        head = (f"{'':<10}{'|bias| vs J_1':>14}{'|bias| vs J_g':>14}{'variance':>20}"
                f"{'MSE':>11}{'cos(E g, J_1)':>14}{'mean cos(g_hat, J_1)':>22}{'var/|E g|^2':>13}")
        lines = [f"gamma = {gamma:g}, N = {n} trajectories per estimate, {rows[0].n_repeats} "
                 f"estimates (one pool of {self.pool} trajectories, mean length "
                 f"{self.mean_length:.1f} steps); |grad J_1| = "
                 f"{np.linalg.norm(self.reference):.4g}", "", head, "-" * len(head)]
        for s in rows:
            pm = f"{s.variance:.4g} \u00b1 {s.variance_se:.2g}"
            cos = f"{s.cos_estimate:.3f} \u00b1 {s.cos_estimate_se:.3f}"
            lines.append(f"{'option ' + str(s.option):<10}{s.bias:>14.4g}{s.bias_discounted:>14.4g}"
                         f"{pm:>20}{s.mse:>11.4g}{s.cos_mean:>14.3f}{cos:>22}"
                         f"{s.relative_variance:>13.3g}")
        lines += ["", f"At N = {n}, option 1 has its lowest MSE at gamma = "
                      f"{self.best_gamma(n, 1, 'mse'):g} and its best mean cosine at gamma = "
                      f"{self.best_gamma(n, 1, 'cos_estimate'):g}; saying 0 has MSE "
                      f"|grad J_1|^2 = {np.sum(self.reference ** 2):.4g}."]
        return "\n".join(lines)

    def render(self, gamma: float, n: int) -> tuple[bytes, str]:
        """PNG bytes of the two panels and the readout text at (gamma, N). The axes and the
        exact curves are drawn on first use; later calls redraw only the measured curves."""
        index = self._check(gamma, n)
        if self._plot is None:
            variances = [s.variance for s in self._stats.values() if s.variance > 0]
            exact = self.curves(self.n_values[0])
            self._plot = GammaPlot(self.gammas,
                                   {o: exact[o]["bias"] ** 2 for o in DISCOUNT_OPTIONS},
                                   {o: exact[o]["cos_mean"] for o in DISCOUNT_OPTIONS},
                                   (min(variances), max(variances)))
        c = self.curves(n)
        png = self._plot.draw(index, {o: c[o]["variance"] for o in DISCOUNT_OPTIONS},
                              {o: c[o]["mse"] for o in DISCOUNT_OPTIONS},
                              {o: c[o]["cos_estimate"] for o in DISCOUNT_OPTIONS},
                              f"gamma = {self.gammas[index]:g}, N = {n}")
        return png, self.readout(gamma, n)

    def widget(self, gamma: float = 0.9, n: int = 10) -> W.VBox:
        """The interactive lab: gamma and N sliders, the two panels and the readout."""
        gamma = self.gammas[self._check(gamma, n)]
        return _lab_box([[_slider(self.gammas, gamma, "gamma"), _slider(self.n_values, n, "N")]],
                        self.render)


# ---------------------------------------------------------------------------------------------
# Notebook 04: fitting V (CriticLab) and what a wrong critic costs the gradient (CriticBiasLab)
# ---------------------------------------------------------------------------------------------


@dataclass
class CriticFit:
    """What the CriticLab shows for one setting: the table after `steps` updates and the way
    there. value, exact, fixed_point, weights: (S,); curve: (max steps + 1,) the visit-weighted
    RMS error to V^pi after each update; error: curve[steps]; fixed_point: where this target's
    full-batch descent converges on this data set (`batch_fixed_point`), fixed_error its error."""

    target: str
    steps: int
    batch_size: int
    lr: float
    seed: int
    value: np.ndarray
    exact: np.ndarray
    weights: np.ndarray
    curve: np.ndarray
    error: float
    fixed_point: np.ndarray
    fixed_error: float


class CriticLab:
    """Fit a table V to a fixed policy's data with one of the three targets, and watch it
    against the exact V^pi (backs notebook 04).

    For one seed the lab samples `n_trajectories` trajectories once (the data set; every setting
    of that seed fits the same data). A fit runs plain minibatch SGD (`fit_value_table`) for the
    largest number of steps offered and keeps every intermediate table, cached per (target,
    batch size, lr, seed): moving the steps slider only looks up, and any other move costs at
    most one fit (vectorised numpy, one update is a few bincounts). The plot is blitted.

    mdp (no horizon), logits: the MDP and the (S, A) logits of the policy evaluated.
    """

    STEPS = (0, 10, 30, 100, 300, 1000, 2000)
    BATCH_SIZES = (1, 4, 16, 64, 256)
    LRS = (0.01, 0.03, 0.1, 0.3, 1.0)
    LABELS = {"monte_carlo": "Monte Carlo y", "bootstrapped": "bootstrapped y_hat (SG)",
              "full_gradient": "full gradient (no SG)"}

    def __init__(self, mdp: TabularMDP, logits: np.ndarray, n_trajectories: int = 100,
                 steps_values: Sequence[int] = STEPS,
                 batch_values: Sequence[int] = BATCH_SIZES,
                 lr_values: Sequence[float] = LRS) -> None:
        check_table_mdp(mdp)
        check_positive_int("n_trajectories", n_trajectories)
        self.mdp, self.logits = mdp, check_logits(mdp, logits)
        self.n_trajectories = n_trajectories
        self.steps_values = tuple(sorted(steps_values))
        self.batch_values, self.lr_values = tuple(batch_values), tuple(lr_values)
        for name, values in (("steps_values", self.steps_values),
                             ("batch_values", self.batch_values), ("lr_values", self.lr_values)):
            if not values:
                raise ValueError(f"{name}: expected at least one value, got {values!r}")
        if self.steps_values[0] < 0:
            raise ValueError(f"steps_values: expected steps >= 0, got {self.steps_values[0]}")
        self.max_steps = max(self.steps_values[-1], 1)
        self.exact = exact_values(mdp, self.logits).V
        self.weights = visit_distribution(mdp, self.logits)
        self._data: OrderedDict[int, Transitions] = OrderedDict()
        self._fits: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._fixed: dict[tuple, np.ndarray] = {}
        self._plot: _CriticPlot | None = None

    def data(self, seed: int = 0) -> Transitions:
        """The data set of a seed: n_trajectories trajectories' valid steps (cached)."""
        if seed not in self._data:
            batch = sample_trajectories(self.mdp, self.logits, self.n_trajectories,
                                        np.random.default_rng(seed))
            self._data[seed] = transitions(batch, self.mdp.gamma)
            while len(self._data) > 4:
                self._data.popitem(last=False)
        return self._data[seed]

    def _check(self, target: str, steps: int, batch_size: int, lr: float) -> None:
        if target not in TARGETS:
            raise ValueError(f"target: expected one of {TARGETS}, got {target!r}")
        for name, value, offered in (("steps", steps, self.steps_values),
                                     ("batch_size", batch_size, self.batch_values),
                                     ("lr", lr, self.lr_values)):
            if value not in offered:
                raise ValueError(f"{name}: expected one of {offered}, got {value!r}")

    def history(self, target: str, batch_size: int, lr: float, seed: int = 0) -> np.ndarray:
        """(max steps + 1, S): the table after each update of one fit (cached)."""
        key = (target, batch_size, lr, seed)
        if key not in self._fits:
            config = FitConfig(target, self.max_steps, batch_size, lr, seed)
            self._fits[key] = fit_value_table(self.data(seed), self.mdp.n_states, config)
            while len(self._fits) > 32:
                self._fits.popitem(last=False)
        self._fits.move_to_end(key)
        return self._fits[key]

    def fixed_point(self, target: str, seed: int = 0) -> np.ndarray:
        """(S,) where full-batch descent with this target converges on the seed's data."""
        if (target, seed) not in self._fixed:
            self._fixed[target, seed] = batch_fixed_point(self.data(seed), self.mdp.n_states,
                                                          target)
        return self._fixed[target, seed]

    def update(self, target: str, steps: int, batch_size: int, lr: float,
               seed: int = 0) -> CriticFit:
        """The fit of `target` after `steps` updates of `batch_size` transitions at step size lr."""
        self._check(target, steps, batch_size, lr)
        hist = self.history(target, batch_size, lr, seed)
        with np.errstate(over="ignore", invalid="ignore"):
            curve = value_error(hist, self.exact, self.weights)
        fixed = self.fixed_point(target, seed)
        return CriticFit(target, steps, batch_size, lr, seed, hist[steps].copy(), self.exact,
                         self.weights, curve, float(curve[steps]), fixed,
                         float(value_error(fixed, self.exact, self.weights)))

    def readout(self, fit: CriticFit) -> str:
        """The numbers behind the plot, as text."""
        names = self.mdp.names or tuple(str(s) for s in range(self.mdp.n_states))
        shown = [s for s in range(self.mdp.n_states) if self.weights[s] > 0]
        data = self.data(fit.seed)
        lines = [f"{self.LABELS[fit.target]}: {fit.steps} updates of {fit.batch_size} transitions, "
                 f"lr = {fit.lr:g}, seed {fit.seed}; data: {self.n_trajectories} trajectories, "
                 f"{len(data)} transitions",
                 "",
                 "state        " + "".join(f"{names[s]:>9}" for s in shown),
                 "V^pi (exact) " + "".join(f"{self.exact[s]:9.3f}" for s in shown),
                 "V fitted     " + "".join(_num(fit.value[s]) for s in shown),
                 "fixed point  " + "".join(f"{fit.fixed_point[s]:9.3f}" for s in shown),
                 "",
                 f"RMS error to V^pi (weighted by visits): {_num(fit.error).strip()}   "
                 f"(at the fixed point of this target on this data: {fit.fixed_error:.3f})"]
        if not np.isfinite(fit.error) or fit.error > 1e3:
            lines.append("the fit diverged: each update overshoots (lower lr, or a larger batch)")
        return "\n".join(lines)

    def render(self, target: str, steps: int, batch_size: int, lr: float,
               seed: int = 0) -> tuple[bytes, str]:
        """PNG bytes of the plot and the readout. Axes fixed on first use; redraws blit."""
        fit = self.update(target, steps, batch_size, lr, seed)
        if self._plot is None:
            self._plot = _CriticPlot(self)
        return self._plot.draw(fit), self.readout(fit)

    def widget(self, target: str = "bootstrapped", steps: int = 300, batch_size: int = 16,
               lr: float = 0.1, seed: int = 0) -> W.VBox:
        """The interactive lab: target, steps, batch size, lr and seed; plot and readout."""
        self._check(target, steps, batch_size, lr)
        target_w = W.ToggleButtons(options=[(self.LABELS[t], t) for t in TARGETS], value=target)
        seed_w = W.IntSlider(value=seed, min=0, max=20, description="seed",
                             continuous_update=False)
        return _lab_box([[target_w],
                         [_slider(self.steps_values, steps, "steps"),
                          _slider(self.batch_values, batch_size, "batch")],
                         [_slider(self.lr_values, lr, "lr"), seed_w]], self.render)


def _num(x: float) -> str:
    """A table cell of width 9 for a value that may have diverged."""
    return f"{x:9.3f}" if np.isfinite(x) and abs(x) < 1e5 else f"{x:9.2g}"


class _CriticPlot:
    """The CriticLab figure. Left: per state, V^pi (grey bar), the fitted V (coloured bar) and
    the target's fixed point on this data (black tick). Right: the RMS error to V^pi against the
    number of updates (log-log), the current step ringed, the fixed point's error dashed. The
    axes are fixed once (values that run off them are clipped); each redraw blits the data."""

    COLORS = {"monte_carlo": "tab:blue", "bootstrapped": "tab:orange",
              "full_gradient": "tab:purple"}

    def __init__(self, lab: CriticLab) -> None:
        self.lab = lab
        self.states = np.flatnonzero(lab.weights > 0)
        names = lab.mdp.names or tuple(str(s) for s in range(lab.mdp.n_states))
        self.fig = Figure(figsize=(9.5, 3.4), dpi=72)
        self.canvas = FigureCanvasAgg(self.fig)
        ax_v, ax_e = self.fig.subplots(1, 2)
        self.fig.subplots_adjust(left=0.07, right=0.99, bottom=0.16, top=0.88, wspace=0.22)
        span = np.concatenate([lab.exact[self.states], [0.0]]
                              + [lab.fixed_point(t)[self.states] for t in TARGETS])
        lo, hi = span.min(), span.max()
        pad = 0.25 * (hi - lo) + 1e-9
        x = np.arange(len(self.states))
        ax_v.bar(x, lab.exact[self.states], width=0.8, color="0.85", edgecolor="0.55",
                 label="V^pi (exact)")
        ax_v.axhline(0.0, color="0.6", lw=0.6)
        ax_v.set(xlim=(-0.6, len(x) - 0.4), ylim=(lo - pad, hi + pad), xticks=x,
                 xticklabels=[names[s] for s in self.states], xlabel="state s", ylabel="V(s)")
        self.bars = ax_v.bar(x, np.zeros(len(x)), width=0.45, color="tab:orange",
                             animated=True)
        (self.ticks,) = ax_v.plot(x, np.zeros(len(x)), "_", ms=22, mew=2.5, color="k",
                                  label="fixed point of the target", animated=True)
        ax_v.legend(fontsize=8, frameon=False, loc="upper left")
        ax_v.text(0.99, 0.02, "coloured bars: V fitted", transform=ax_v.transAxes, fontsize=8,
                  ha="right", va="bottom")
        self.v_title = ax_v.set_title("", fontsize=9, animated=True)
        steps = np.arange(1, lab.max_steps + 2)
        zero_error = float(value_error(np.zeros_like(lab.exact), lab.exact, lab.weights))
        ax_e.set(xscale="log", yscale="log", xlim=(1, lab.max_steps + 1),
                 ylim=(zero_error / 200, zero_error * 10),
                 xlabel="updates + 1", ylabel="RMS error to V^pi")
        self.steps = steps
        (self.curve,) = ax_e.plot([], [], lw=1.2, animated=True)
        (self.mark,) = ax_e.plot([], [], "o", ms=12, mfc="none", mec="tab:red", mew=2,
                                 animated=True)
        self.floor = ax_e.axhline(zero_error, color="k", ls="--", lw=1,
                                  label="error of the fixed point", animated=True)
        ax_e.axhline(zero_error, color="0.6", ls=":", lw=1, label="V = 0 (the start)")
        ax_e.legend(fontsize=8, frameon=False, loc="lower left")
        self.e_title = ax_e.set_title("", fontsize=9, animated=True)
        self.axes = (ax_v, ax_e)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    def draw(self, fit: CriticFit) -> bytes:
        """Redraw the data of one fit on the fixed axes; -> PNG bytes."""
        ax_v, ax_e = self.axes
        color = self.COLORS[fit.target]
        self.canvas.restore_region(self.background)
        lo, hi = ax_v.get_ylim()
        for bar, v in zip(self.bars, fit.value[self.states]):
            bar.set_height(float(np.clip(v, lo - 1, hi + 1)) if np.isfinite(v) else 0.0)
            bar.set_color(color)
            ax_v.draw_artist(bar)
        self.ticks.set_ydata(fit.fixed_point[self.states])
        ax_v.draw_artist(self.ticks)
        self.v_title.set_text(f"{CriticLab.LABELS[fit.target]}: {fit.steps} updates, "
                              f"batch {fit.batch_size}, lr {fit.lr:g}")
        ax_v.draw_artist(self.v_title)
        curve = np.where(np.isfinite(fit.curve), fit.curve, 1e300)
        self.curve.set_data(self.steps, np.minimum(curve, 1e30))
        self.curve.set_color(color)
        self.mark.set_data([fit.steps + 1], [min(curve[fit.steps], 1e30)])
        self.floor.set_ydata([fit.fixed_error] * 2)
        shown = _num(fit.error).strip()
        self.e_title.set_text(f"error after {fit.steps} updates: {shown}")
        for artist in (self.floor, self.curve, self.mark, self.e_title):
            ax_e.draw_artist(artist)
        return canvas_png(self.canvas)


@dataclass
class BlendStats:
    """The CriticBiasLab's numbers at one (alpha, N): the statistics of reward-to-go and of the
    TD advantage with V_alpha = (1 - alpha) V^pi + alpha V_poor (GradientStats each)."""

    alpha: float
    n: int
    reward_to_go: GradientStats
    advantage_td: GradientStats


class CriticBiasLab:
    """What a wrong critic costs: the TD advantage r + gamma V(s') - V(s) as the weight, with
    V_alpha = (1 - alpha) V^pi + alpha V_poor, against reward-to-go (backs notebook 04).

    With the exact V^pi (alpha = 0) the estimator is unbiased; a wrong V biases it. The weight
    is linear in V, so for the same trajectories the estimate at alpha is exactly
    (1 - alpha) g(V^pi) + alpha g(V_poor): per seed the lab computes the per-trajectory
    gradients of both ends (and of reward-to-go) once, and every (alpha, N) is a mix and a
    regrouping of cached numbers. Its bias grows like alpha, its variance changes with alpha
    too, and the MSE = |bias|^2 + variance is compared with reward-to-go's (unbiased, noisier).

    mdp, logits: a tabular MDP (no horizon) and the policy; v_poor: (S,) the wrong table;
    n_values: trajectories per estimate offered; pool: trajectories per seed.
    """

    ALPHAS = tuple(np.round(np.linspace(0.0, 1.0, 21), 2))
    N_VALUES = (1, 3, 10, 30, 100)

    def __init__(self, mdp: TabularMDP, logits: np.ndarray, v_poor: np.ndarray,
                 n_values: Sequence[int] = N_VALUES, pool: int = 6000) -> None:
        check_table_mdp(mdp)
        check_positive_int("pool", pool)
        self.mdp, self.logits = mdp, check_logits(mdp, logits)
        v_poor = np.asarray(v_poor, dtype=float)
        if v_poor.shape != (mdp.n_states,):
            raise ValueError(f"v_poor: expected a table ({mdp.n_states},), got {v_poor.shape}")
        self.v_exact, self.v_poor = exact_values(mdp, self.logits).V, v_poor
        self.n_values = tuple(sorted(n_values))
        for n in self.n_values:
            check_positive_int("n_values", n)
        if 2 * self.n_values[-1] > pool:
            raise ValueError(f"pool: {pool} trajectories leave fewer than 2 estimates at "
                             f"N = {self.n_values[-1]}; raise pool or lower n_values")
        self.pool = pool
        self.exact = exact_policy_gradient(mdp, self.logits)
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._curves: dict[tuple[int, int], dict[str, np.ndarray]] = {}
        self._plot: _BlendPlot | None = None

    def blend(self, alpha: float) -> np.ndarray:
        """V_alpha = (1 - alpha) V^pi + alpha V_poor, (S,)."""
        return (1.0 - alpha) * self.v_exact + alpha * self.v_poor

    def _per_trajectory(self, seed: int) -> dict[str, np.ndarray]:
        """Per-trajectory gradients (pool, S, A) of reward-to-go and of the TD advantage with
        V^pi and with V_poor, on the seed's pool (cached)."""
        if seed not in self._cache:
            rng = np.random.default_rng(seed)
            batch = sample_trajectories(self.mdp, self.logits, self.pool, rng)
            one = lambda method, **o: estimates_from_batch(self.mdp, self.logits, batch,  # noqa
                                                           method, 1, rng, **o)[0]
            self._cache[seed] = {"rtg": one("reward_to_go"),
                                 "exact": one("advantage_td", value=self.v_exact),
                                 "poor": one("advantage_td", value=self.v_poor)}
            while len(self._cache) > 4:
                dropped, _ = self._cache.popitem(last=False)
                self._curves = {k: v for k, v in self._curves.items() if k[1] != dropped}
        return self._cache[seed]

    def _check(self, alpha: float, n: int) -> None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise ValueError(f"alpha: expected a number in [0, 1], got {alpha!r}")
        if n not in self.n_values:
            raise ValueError(f"n: expected one of {self.n_values}, got {n!r}")

    def update(self, alpha: float, n: int, seed: int = 0) -> BlendStats:
        """Statistics of reward-to-go and of advantage_td with V_alpha, N = n per estimate."""
        self._check(alpha, n)
        per = self._per_trajectory(seed)
        g0, g1 = group_means(per["exact"], n), group_means(per["poor"], n)
        mixed = (1.0 - alpha) * g0 + alpha * g1
        rtg = summarize("reward_to_go", group_means(per["rtg"], n), self.exact, n)
        return BlendStats(float(alpha), n, rtg,
                          summarize(f"advantage_td, alpha = {alpha:g}", mixed, self.exact, n))

    def curves(self, n: int, seed: int = 0) -> dict[str, np.ndarray]:
        """Over the alpha grid: 'alpha', 'bias2' (|bias|^2), 'variance', 'mse' of the TD
        advantage; and 'rtg_mse', reward-to-go's MSE (one number, it has no alpha). Cached."""
        if (n, seed) not in self._curves:
            rows = [self.update(a, n, seed).advantage_td for a in self.ALPHAS]
            self._curves[n, seed] = {
                "alpha": np.array(self.ALPHAS),
                "bias2": np.array([s.bias_norm ** 2 for s in rows]),
                "variance": np.array([s.variance for s in rows]),
                "mse": np.array([s.mse for s in rows]),
                "rtg_mse": np.array(self.update(0.0, n, seed).reward_to_go.mse)}
        return self._curves[n, seed]

    def readout(self, stats: BlendStats) -> str:
        """The numbers behind the plot, as text."""
        rtg, td = stats.reward_to_go, stats.advantage_td
        head = f"{'weight':<30}{'|bias|':>9}{'noise':>9}{'variance':>20}{'MSE':>20}"
        lines = [f"N = {stats.n} trajectories per estimate, {td.n_repeats} estimates; "
                 f"V_alpha = (1 - {stats.alpha:g}) V^pi + {stats.alpha:g} V_poor", "", head,
                 "-" * len(head)]
        for label, s in (("reward-to-go", rtg), (f"TD advantage, alpha = {stats.alpha:g}", td)):
            lines.append(f"{label:<30}{s.bias_norm:>9.3g}{s.noise_floor:>9.3g}"
                         f"{_pm(s.variance, s.variance_se):>20}{_pm(s.mse, s.mse_se):>20}")
        winner = "the TD advantage" if td.mse < rtg.mse else "reward-to-go"
        lines += ["", f"|bias| / noise floor of the TD advantage: "
                      f"{td.bias_norm / max(td.noise_floor, 1e-300):.1f}   (about 1 or less: no "
                      f"bias visible)",
                  f"variance: TD advantage / reward-to-go = {td.variance / rtg.variance:.3f};  "
                  f"lower MSE here: {winner}"]
        return "\n".join(lines)

    def render(self, alpha: float, n: int, seed: int = 0) -> tuple[bytes, str]:
        """PNG bytes of the plot and the readout. Axes fixed on first use; redraws blit."""
        stats = self.update(alpha, n, seed)
        if self._plot is None:
            self._plot = _BlendPlot(self)
        return self._plot.draw(stats, self.curves(n, seed)), self.readout(stats)

    def widget(self, alpha: float = 0.0, n: int = 10, seed: int = 0) -> W.VBox:
        """The interactive lab: alpha and N sliders, plot and readout."""
        self._check(alpha, n)
        return _lab_box([[_slider(self.ALPHAS, alpha, "alpha"), _slider(self.n_values, n, "N")]],
                        lambda alpha, n: self.render(alpha, n, seed))


class _BlendPlot:
    """The CriticBiasLab figure. Left: |bias|^2, variance and MSE of the TD advantage against
    alpha (log y), reward-to-go's MSE a horizontal line, the current alpha a vertical one.
    Right: the estimates on the true gradient's two largest components, reward-to-go grey, the
    TD advantage coloured, the truth a star, the TD estimates' mean a cross. Axes fixed from
    the second smallest N (or the only one); redraws blit."""

    def __init__(self, lab: CriticBiasLab, max_points: int = 300) -> None:
        self.lab, self.max_points = lab, max_points
        scale_n = lab.n_values[min(1, len(lab.n_values) - 1)]
        self.comps = top_components(lab.exact)
        self.fig = Figure(figsize=(9.5, 3.4), dpi=72)
        self.canvas = FigureCanvasAgg(self.fig)
        ax_c, ax_xy = self.fig.subplots(1, 2)
        self.fig.subplots_adjust(left=0.08, right=0.99, bottom=0.16, top=0.88, wspace=0.22)
        values = []
        for n in lab.n_values:
            c = lab.curves(n)
            values += [c["variance"], c["mse"], c["bias2"][1:], [c["rtg_mse"]]]
        values = np.concatenate([np.ravel(v) for v in values])
        values = values[values > 0]
        ax_c.set(yscale="log", xlim=(-0.03, 1.03), ylim=(values.min() / 2, values.max() * 2),
                 xlabel="alpha  (0: V^pi, 1: V_poor)", ylabel="per estimate")
        self.lines = {}
        for key, style, label in (("bias2", "r-", "|bias|^2"), ("variance", "b-", "variance"),
                                  ("mse", "k-", "MSE")):
            (self.lines[key],) = ax_c.plot([], [], style, lw=1.5, label=label, animated=True)
        self.rtg = ax_c.axhline(values.min(), color="0.5", ls="--", lw=1.2,
                                label="MSE of reward-to-go", animated=True)
        self.now = ax_c.axvline(0.0, color="tab:red", ls=":", lw=1, animated=True)
        ax_c.legend(fontsize=8, frameon=False, loc="lower right")
        self.c_title = ax_c.set_title("", fontsize=9, animated=True)
        both = lab.update(1.0, scale_n)
        clouds = np.concatenate([self._xy(both.reward_to_go.estimates),
                                 self._xy(both.advantage_td.estimates),
                                 self._xy(lab.update(0.0, scale_n).advantage_td.estimates),
                                 [self._xy(lab.exact[None])[0]]])
        (x0, x1), (y0, y1) = _range(clouds[:, 0]), _range(clouds[:, 1])
        ax_xy.set(xlim=(x0, x1), ylim=(y0, y1), xlabel=f"dJ/dlogits{list(self.comps[0])}",
                  ylabel=f"dJ/dlogits{list(self.comps[1])}")
        for axis in (ax_xy.xaxis, ax_xy.yaxis):
            axis.set_major_locator(MaxNLocator(5))
        self.cloud_rtg = ax_xy.scatter([], [], s=7, alpha=0.3, color="0.55",
                                       label="reward-to-go", animated=True)
        self.cloud_td = ax_xy.scatter([], [], s=7, alpha=0.4, color="tab:orange",
                                      label="TD advantage, V_alpha", animated=True)
        ax_xy.scatter(*self._xy(lab.exact[None])[0], marker="*", s=200, color="k", zorder=3,
                      label="exact gradient")
        (self.mean_td,) = ax_xy.plot([], [], "X", ms=10, color="tab:red", mec="k",
                                     label="mean of the TD estimates", animated=True)
        ax_xy.legend(fontsize=7, frameon=False, loc="upper right", ncol=2)
        self.axes = (ax_c, ax_xy)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    def _xy(self, estimates: np.ndarray) -> np.ndarray:
        flat = estimates.reshape(len(estimates), -1)
        shape = self.lab.exact.shape
        return flat[:, [np.ravel_multi_index(c, shape) for c in self.comps]]

    def draw(self, stats: BlendStats, curves: dict[str, np.ndarray]) -> bytes:
        """Redraw the data for one (alpha, N) on the fixed axes; -> PNG bytes."""
        ax_c, ax_xy = self.axes
        self.canvas.restore_region(self.background)
        for key, line in self.lines.items():
            line.set_data(curves["alpha"], np.maximum(curves[key], 1e-300))
            ax_c.draw_artist(line)
        self.rtg.set_ydata([float(curves["rtg_mse"])] * 2)
        self.now.set_xdata([stats.alpha] * 2)
        self.c_title.set_text(f"N = {stats.n}: MSE {stats.advantage_td.mse:.3g} (TD, alpha = "
                              f"{stats.alpha:g}) vs {stats.reward_to_go.mse:.3g} (reward-to-go)")
        for artist in (self.rtg, self.now, self.c_title):
            ax_c.draw_artist(artist)
        self.cloud_rtg.set_offsets(self._xy(stats.reward_to_go.estimates[:self.max_points]))
        self.cloud_td.set_offsets(self._xy(stats.advantage_td.estimates[:self.max_points]))
        self.mean_td.set_data(*([v] for v in self._xy(stats.advantage_td.mean[None])[0]))
        for artist in (self.cloud_rtg, self.cloud_td, self.mean_td):
            ax_xy.draw_artist(artist)
        return canvas_png(self.canvas)


# ---------------------------------------------------------------------------------------------
# Notebook 07: A2C's learning curves over N envs x T steps per update (ParallelLab)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunSummary:
    """One training run of the ParallelLab's grid, in numbers."""

    n_envs: int
    n_steps: int
    updates: int
    env_steps: int
    seconds: float
    final_return: float        # mean of the last `window` episode returns
    best_return: float         # best mean of `window` consecutive episode returns


class ParallelLab:
    """Learning curves of A2C for each (N envs, T steps per update) of a grid (backs notebook 07).

    histories: (N, T) -> History, e.g. from `acteach.parallel.learning_grid` (same budget, same
    seed). Two panels: the mean return of the last `window` episodes against env steps and
    against wall-clock seconds; every run faint, the chosen one bold, the online actor-critic
    (N = T = 1) dashed. The runs are trained before the lab is built; a slider move redraws.
    """

    def __init__(self, histories: dict, window: int = 20) -> None:
        check_positive_int("window", window)
        if not histories:
            raise ValueError("histories: expected at least one (n_envs, n_steps) -> History")
        self.histories, self.window = dict(histories), window
        self.n_envs = tuple(sorted({n for n, _ in self.histories}))
        self.n_steps = tuple(sorted({t for _, t in self.histories}))
        self.curves = {key: smoothed(h, window) for key, h in self.histories.items()}
        self._plot: _CurvesPlot | None = None

    def _check(self, n_envs: int, n_steps: int) -> tuple[int, int]:
        if (n_envs, n_steps) not in self.histories:
            raise ValueError(f"n_envs, n_steps: expected a pair of the grid "
                             f"{sorted(self.histories)}, got {(n_envs, n_steps)!r}")
        return n_envs, n_steps

    def update(self, n_envs: int, n_steps: int) -> RunSummary:
        """The numbers of the (n_envs, n_steps) run."""
        key = self._check(n_envs, n_steps)
        h, (_, _, mean) = self.histories[key], self.curves[key]
        return RunSummary(n_envs, n_steps, len(h.losses.get("actor_loss", [])), h.env_steps,
                          h.seconds, float(mean[-1]) if len(mean) else float("nan"),
                          float(mean[self.window - 1:].max()) if len(mean) >= self.window
                          else float("nan"))

    def table(self) -> str:
        """Every run of the grid: updates, seconds, final and best mean return."""
        lines = [f"{'N envs':>7}{'T steps':>8}{'batch':>7}{'updates':>9}{'seconds':>9}"
                 f"{'final ret' + str(self.window):>13}{'best ret' + str(self.window):>12}"]
        for key in sorted(self.histories):
            s = self.update(*key)
            lines.append(f"{s.n_envs:>7}{s.n_steps:>8}{s.n_envs * s.n_steps:>7}{s.updates:>9}"
                         f"{s.seconds:>9.1f}{s.final_return:>13.1f}{s.best_return:>12.1f}")
        return "\n".join(lines)

    def readout(self, n_envs: int, n_steps: int) -> str:
        s, online = self.update(n_envs, n_steps), self.histories.get((1, 1))
        text = (f"N = {n_envs} envs x T = {n_steps} steps: batch {n_envs * n_steps}, "
                f"{s.updates} updates in {s.env_steps} env steps, {s.seconds:.1f} s; mean return "
                f"of the last {self.window} episodes {s.final_return:.1f} "
                f"(best {s.best_return:.1f}).")
        if online is not None and (n_envs, n_steps) != (1, 1):
            o = self.update(1, 1)
            text += (f"\nOnline (N = T = 1): {o.updates} updates, {o.seconds:.1f} s, final "
                     f"{o.final_return:.1f}.")
        return text

    def render(self, n_envs: int, n_steps: int) -> tuple[bytes, str]:
        """PNG bytes of the two panels with (n_envs, n_steps) highlighted, and the readout."""
        key = self._check(n_envs, n_steps)
        if self._plot is None:
            self._plot = _CurvesPlot(self.curves, self.window)
        return self._plot.draw(key), self.readout(*key)

    def widget(self, n_envs: int | None = None, n_steps: int | None = None) -> W.VBox:
        """The interactive lab: N envs and T steps sliders, the curves and the readout."""
        n_envs = self.n_envs[-1] if n_envs is None else n_envs
        n_steps = self.n_steps[-1] if n_steps is None else n_steps
        self._check(n_envs, n_steps)

        def draw(n_envs: int, n_steps: int) -> tuple[bytes | None, str]:
            if (n_envs, n_steps) not in self.histories:
                return None, f"(N, T) = {(n_envs, n_steps)} is not in the grid"
            return self.render(n_envs, n_steps)

        return _lab_box([[_slider(self.n_envs, n_envs, "N envs"),
                          _slider(self.n_steps, n_steps, "T steps")]], draw)


class _CurvesPlot:
    """ParallelLab's figure: every run faint and drawn once; the chosen run blitted bold."""

    def __init__(self, curves: dict, window: int) -> None:
        self.fig = Figure(figsize=(9.5, 3.4), dpi=72)
        self.canvas = FigureCanvasAgg(self.fig)
        ax_s, ax_t = self.fig.subplots(1, 2, sharey=True)
        self.fig.subplots_adjust(left=0.07, right=0.99, bottom=0.15, top=0.9, wspace=0.06)
        self.curves = curves
        for key, (steps, seconds, mean) in curves.items():
            style = dict(color="0.2", lw=1.2, ls="--", label="online (N = T = 1)") \
                if key == (1, 1) else dict(color="0.75", lw=0.9)
            ax_s.plot(steps, mean, **style)
            ax_t.plot(seconds, mean, **style)
        ax_s.set(xlabel="env steps", ylabel=f"mean return, last {window} episodes")
        ax_t.set(xlabel="wall-clock seconds")
        ax_s.set_xlim(0, max(c[0][-1] for c in curves.values() if len(c[0])))
        ax_t.set_xlim(0, max(c[1][-1] for c in curves.values() if len(c[1])))
        ax_s.set_ylim(0, max(max(c[2].max() for c in curves.values() if len(c[2])) * 1.05, 1))
        (self.line_s,) = ax_s.plot([], [], color="tab:red", lw=2.2, animated=True,
                                   label="chosen N x T")
        (self.line_t,) = ax_t.plot([], [], color="tab:red", lw=2.2, animated=True)
        ax_s.legend(fontsize=8, frameon=False, loc="upper left")
        self.title = ax_t.text(0.98, 0.04, "", transform=ax_t.transAxes, ha="right",
                               fontsize=9, animated=True)
        self.axes = (ax_s, ax_t)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    def draw(self, key: tuple[int, int]) -> bytes:
        steps, seconds, mean = self.curves[key]
        self.canvas.restore_region(self.background)
        self.line_s.set_data(steps, mean)
        self.line_t.set_data(seconds, mean)
        self.title.set_text(f"N = {key[0]}, T = {key[1]}")
        self.axes[0].draw_artist(self.line_s)
        self.axes[1].draw_artist(self.line_t)
        self.axes[1].draw_artist(self.title)
        return canvas_png(self.canvas)


# ---------------------------------------------------------------------------------------------
# Notebook 09: n-step returns and GAE against a wrong critic (LambdaLab)
# ---------------------------------------------------------------------------------------------

def _length_chunks(batch: Batch, quantiles: Sequence[float] = (0.5, 0.8, 0.95)
                   ) -> list[tuple[np.ndarray, Batch]]:
    """The trajectories of a batch in a few groups of similar length, each group cut to its
    longest trajectory: [(columns (M,), sub-batch (T_i, M))]. One trajectory's n-step or GAE
    weights depend on it alone, so they are the same in its sub-batch; the weight functions,
    which loop over T on whole (T, N) arrays, then see far less padding."""
    lengths = batch.lengths
    order = np.argsort(lengths, kind="stable")
    cuts = [0, *(int(q * len(order)) for q in quantiles), len(order)]
    chunks = []
    for start, stop in zip(cuts[:-1], cuts[1:]):
        if stop > start:
            cols = order[start:stop]
            T = int(lengths[cols].max())
            chunks.append((cols, Batch(**{k: v[:T, cols] for k, v in vars(batch).items()})))
    return chunks


def _mean_weight(mdp: TabularMDP, logits: np.ndarray, value: np.ndarray,
                 lam: float | None = None, n: int | None = None) -> np.ndarray:
    """E[w_t | s_t = s, a_t = a] (S, A), exactly, for the GAE weight (lam) or the n-step
    advantage (n; both None: the whole return minus V(s_t)) with a critic table value (S,), on
    an MDP without a horizon. Both weights are discounted sums of the TD errors of the episode,

        w_t = sum_k c_k delta_{t+k},   c_k = (gamma lam)^k (GAE),  gamma^k [k < n] (n-step),

    and E[delta_t | s, a] = r(s, a) + gamma sum_s' p(s'|s, a) [s' not terminal] V(s') - V(s).
    So E[w_t | s, a] = E[delta_t | s, a] + c_1 sum_s' p(s'|s, a) [s' not terminal] h(s'), with
    h(s) the expected rest of the sum from s_{t+1} = s: for GAE h = E[w | s] itself (a linear
    solve, h = delta_pi + gamma lam P_pi h); for n steps the first n - 1 terms (n - 1 backups).
    (Sampling cuts a gamma < 1 episode at the discount tail, 1e-10: neglected here.)"""
    pi = softmax_policy(logits)
    live = ~mdp.terminal
    p_live = mdp.P * live                                    # (S, A, S): the episode goes on
    delta = mdp.R + mdp.gamma * p_live @ value - value[:, None]          # (S, A)
    delta_pi = (pi * delta).sum(axis=1)                                  # (S,)
    p_pi = np.einsum("sa,sax->sx", pi, p_live)                           # (S, S)
    h = np.zeros(mdp.n_states)
    if n is None:                      # geometric weights: h = delta_pi + decay P_pi h
        decay = mdp.gamma * (1.0 if lam is None else lam)
        idx = np.flatnonzero(live)
        h[idx] = np.linalg.solve(np.eye(idx.size) - decay * p_pi[np.ix_(idx, idx)],
                                 delta_pi[idx])
        return delta + decay * p_live @ h
    for _ in range(n - 1):             # h_j = sum_{k<j} gamma^k E[delta_{t+k} | s_t = s]
        h = delta_pi + mdp.gamma * p_pi @ h
    return delta + mdp.gamma * p_live @ h


@dataclass
class LambdaStats:
    """The LambdaLab's numbers at one setting: GAE at lam and the n-step advantage at n (None:
    n = inf), with V_alpha = (1 - alpha) V^pi + alpha V_wrong and N = n_trajectories per
    estimate (GradientStats each, measured on the seed's pool against the exact gradient), and
    each one's exact |bias|^2 = |E[g_hat] - grad J|^2 (no sampling)."""

    alpha: float
    lam: float
    n: int | None
    n_trajectories: int
    seed: int
    gae: GradientStats
    n_step: GradientStats
    gae_bias2: float
    n_step_bias2: float


class LambdaLab:
    """n-step returns and GAE with a wrong critic: bias, variance and MSE over lam and over n
    (backs notebook 09).

    Both weights are discounted sums of TD errors delta_t = r_t + gamma V(s_{t+1}) - V(s_t):
    GAE sums all of the episode's with weights (gamma lam)^k, the n-step advantage the first n
    with gamma^k. With the exact V^pi every lam and every n is unbiased and only the variance
    changes (on the course's MDPs it grows towards lam = 1 and n = inf); with a wrong V the
    short sums inherit V's error (bias), while lam = 1 and n = inf are the return minus a
    baseline: unbiased, and the noisiest. The critic is V_alpha = (1 - alpha) V^pi +
    alpha V_wrong, and the best lam or n by MSE moves with alpha and with N.

    The weights are affine in V, so for the same trajectories the per-trajectory gradient at
    alpha is (1 - alpha) g(V^pi) + alpha g(V_wrong). Per seed the lab samples `pool`
    trajectories once and computes both ends for every lam and every n (common random numbers);
    a slider move only mixes and regroups cached numbers, and the plot is blitted. The |bias|^2
    curves are exact (`expected_gradient`: E[w_t | s_t, a_t] solves a linear system).
    n = inf is computed as GAE with lam = 1: on a tabular batch the two are the same numbers.

    mdp, logits: a tabular MDP without a horizon and the (S, A) logits; v_wrong: (S,) the wrong
    table (default zeros: a critic that has learned nothing); lams, n_values (None = inf) and
    n_trajectories_values: the grids offered; pool: trajectories sampled per seed. Best on an
    episodic MDP: on a continuing one (gamma < 1, no terminal state) every trajectory runs to
    the discount tail, and a pool takes seconds (5 s for 4000 trajectories of 219 steps).
    """

    LAMS = (0.0, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 1.0)
    N_STEPS = (1, 2, 3, 5, 10, 20, None)
    N_TRAJECTORIES = (1, 3, 10, 30, 100)
    ALPHAS = tuple(round(0.1 * i, 1) for i in range(11))

    def __init__(self, mdp: TabularMDP, logits: np.ndarray, v_wrong: np.ndarray | None = None,
                 lams: Sequence[float] = LAMS, n_values: Sequence[int | None] = N_STEPS,
                 n_trajectories_values: Sequence[int] = N_TRAJECTORIES, pool: int = 6000
                 ) -> None:
        check_table_mdp(mdp)
        check_positive_int("pool", pool)
        self.mdp, self.logits = mdp, check_logits(mdp, logits)
        self.v_exact = exact_values(mdp, self.logits).V
        self.v_wrong = (np.zeros(mdp.n_states) if v_wrong is None
                        else np.asarray(v_wrong, dtype=float))
        if self.v_wrong.shape != (mdp.n_states,):
            raise ValueError(f"v_wrong: expected a table ({mdp.n_states},), "
                             f"got {self.v_wrong.shape}")
        check_finite("v_wrong", self.v_wrong)
        self.lams = self._grid("lams", lams, real=True)
        finite = [n for n in n_values if n is not None and n != "inf"]
        self.n_values = self._grid("n_values", finite) + ((None,) if len(finite) < len(n_values)
                                                          else ())
        if len(n_values) - len(finite) > 1:
            raise ValueError("n_values: expected inf (None) at most once")
        self.n_trajectories_values = self._grid("n_trajectories_values", n_trajectories_values)
        if 2 * self.n_trajectories_values[-1] > pool:
            raise ValueError(f"pool: {pool} trajectories leave fewer than 2 estimates at N = "
                             f"{self.n_trajectories_values[-1]}; raise pool or lower "
                             "n_trajectories_values")
        self.pool = pool
        self.exact = exact_policy_gradient(mdp, self.logits)
        self.visits = visit_distribution(mdp, self.logits)
        self.settings = [("gae", lam) for lam in self.lams] + [("n_step", n)
                                                               for n in self.n_values]
        self._expected = {s: (self.expected_gradient(s, 0.0), self.expected_gradient(s, 1.0))
                          for s in self.settings}
        self._pools: OrderedDict[int, tuple[Batch, dict]] = OrderedDict()
        self._stats: OrderedDict[tuple, dict[tuple, GradientStats]] = OrderedDict()
        self._plot: LambdaPlot | None = None

    @staticmethod
    def _grid(name: str, values: Sequence, real: bool = False) -> tuple:
        """values as an increasing tuple of distinct positive ints (or numbers in [0, 1])."""
        values = tuple(values)
        if not values:
            raise ValueError(f"{name}: expected at least one value, got {values!r}")
        for v in values:
            if real:
                if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 <= v <= 1:
                    raise ValueError(f"{name}: expected numbers in [0, 1], got {v!r}")
            else:
                check_positive_int(name, v)
        values = tuple(float(v) for v in values) if real else tuple(int(v) for v in values)
        if list(values) != sorted(set(values)):
            raise ValueError(f"{name}: expected increasing distinct values, got {values}")
        return values

    # -- the critic and the exact expectations --------------------------------------------

    def blend(self, alpha: float) -> np.ndarray:
        """V_alpha = (1 - alpha) V^pi + alpha V_wrong, (S,)."""
        return (1.0 - alpha) * self.v_exact + alpha * self.v_wrong

    @staticmethod
    def label(setting: tuple) -> str:
        """('gae', 0.9) -> 'gae lam=0.9'; ('n_step', None) -> 'n_step n=inf'."""
        method, x = setting
        if method == "gae":
            return f"gae lam={x:g}"
        return f"n_step n={'inf' if x is None else x}"

    def expected_gradient(self, setting: tuple, alpha: float) -> np.ndarray:
        """E[g_hat] (S, A) exactly, for ('gae', lam) or ('n_step', n) with V_alpha (discount
        option 2, as the lab's estimates): sum_s d(s) pi(b|s) (q(s, b) - sum_a pi(a|s) q(s, a))
        with q(s, a) = E[w_t | s_t = s, a_t = a]. With V^pi (alpha = 0) it is grad J."""
        method, x = setting
        options = {"lam": x} if method == "gae" else {"n": x}
        q = _mean_weight(self.mdp, self.logits, self.blend(alpha), **options)
        pi = softmax_policy(self.logits)
        d = state_occupancy(self.mdp, self.logits)
        return d[:, None] * pi * (q - (pi * q).sum(axis=1, keepdims=True))

    def bias2(self, setting: tuple, alpha: float) -> float:
        """|E[g_hat] - grad J|^2 with V_alpha, exact (the expectation is affine in alpha)."""
        at_exact, at_wrong = self._expected[setting]
        mean = (1.0 - alpha) * at_exact + alpha * at_wrong
        return float(np.sum((mean - self.exact) ** 2))

    # -- the pool of a seed -------------------------------------------------------------------

    def _method(self, setting: tuple) -> tuple[str, dict]:
        """The estimator method and options of a setting; n = inf is GAE with lam = 1."""
        method, x = setting
        if method == "n_step" and x is None:
            return "gae", {"lam": 1.0}
        return method, {"lam": x} if method == "gae" else {"n": x}

    def _gradients(self, chunks: list, method: str, value: np.ndarray, options: dict
                   ) -> np.ndarray:
        """Per-trajectory gradients (pool, S, A) of one method with the critic `value`."""
        out = np.empty((self.pool, *self.exact.shape))
        for cols, sub in chunks:
            out[cols] = estimates_from_batch(self.mdp, self.logits, sub, method, 1,
                                             value=value, **options)[0]
        return out

    def _pool(self, seed: int) -> tuple[Batch, dict[tuple, tuple[np.ndarray, np.ndarray]]]:
        """The seed's trajectories, and per setting the per-trajectory gradients (pool, S, A)
        with V^pi and with V_wrong (cached, the last 3 seeds)."""
        if seed not in self._pools:
            batch = sample_trajectories(self.mdp, self.logits, self.pool,
                                        np.random.default_rng(seed))
            chunks, done, per = _length_chunks(batch), {}, {}
            for setting in self.settings:
                method, options = self._method(setting)
                key = (method, *options.items())
                if key not in done:
                    done[key] = tuple(self._gradients(chunks, method, v, options)
                                      for v in (self.v_exact, self.v_wrong))
                per[setting] = done[key]
            self._pools[seed] = (batch, per)
            while len(self._pools) > 3:
                dropped, _ = self._pools.popitem(last=False)
                for key in [k for k in self._stats if k[2] == dropped]:
                    del self._stats[key]
        self._pools.move_to_end(seed)
        return self._pools[seed]

    def batch(self, seed: int = 0) -> Batch:
        """The trajectories of a seed's pool (estimate r uses trajectories r N .. r N + N - 1)."""
        self._check_seed(seed)
        return self._pool(seed)[0]

    def _all_stats(self, alpha: float, n_trajectories: int, seed: int
                   ) -> dict[tuple, GradientStats]:
        """setting -> GradientStats at (alpha, N, seed), every setting (cached)."""
        key = (float(alpha), n_trajectories, seed)
        if key not in self._stats:
            _, per = self._pool(seed)
            self._stats[key] = {
                s: summarize(self.label(s), (1.0 - alpha) * group_means(g0, n_trajectories)
                             + alpha * group_means(g1, n_trajectories), self.exact,
                             n_trajectories)
                for s, (g0, g1) in per.items()}
            while len(self._stats) > 4:
                self._stats.popitem(last=False)
        self._stats.move_to_end(key)
        return self._stats[key]

    # -- what the sliders ask -------------------------------------------------------------------

    @staticmethod
    def _check_seed(seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")

    def _check(self, alpha: float, lam: float, n, n_trajectories: int, seed: int
               ) -> tuple[float, int | None]:
        """The grid's lam and n (None for inf), or a ValueError naming the bad argument."""
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
            raise ValueError(f"alpha: expected a number in [0, 1], got {alpha!r}")
        if isinstance(lam, bool) or not isinstance(lam, numbers.Real):
            raise ValueError(f"lam: expected one of {self.lams}, got {lam!r}")
        found = [g for g in self.lams if abs(g - lam) <= 1e-12]
        if not found:
            raise ValueError(f"lam: expected one of {self.lams}, got {lam!r}")
        if n == "inf":
            n = None
        if isinstance(n, bool) or n not in self.n_values:
            shown = tuple("inf" if v is None else v for v in self.n_values)
            raise ValueError(f"n: expected one of {shown} ('inf' or None: the whole return), "
                             f"got {n!r}")
        n = self.n_values[self.n_values.index(n)]
        if isinstance(n_trajectories, bool) or n_trajectories not in self.n_trajectories_values:
            raise ValueError(f"n_trajectories: expected one of {self.n_trajectories_values}, "
                             f"got {n_trajectories!r}")
        self._check_seed(seed)
        return found[0], n

    def update(self, alpha: float, lam: float, n: int | str | None, n_trajectories: int,
               seed: int = 0) -> LambdaStats:
        """GAE at lam and the n-step advantage at n ('inf' or None: the whole return), critic
        V_alpha, estimates of N = n_trajectories trajectories from the seed's pool."""
        lam, n = self._check(alpha, lam, n, n_trajectories, seed)
        stats = self._all_stats(alpha, n_trajectories, seed)
        return LambdaStats(float(alpha), lam, n, n_trajectories, seed, stats["gae", lam],
                           stats["n_step", n], self.bias2(("gae", lam), alpha),
                           self.bias2(("n_step", n), alpha))

    def curves(self, alpha: float, n_trajectories: int, seed: int = 0
               ) -> dict[str, dict[str, np.ndarray]]:
        """'gae' (over the lam grid) and 'n_step' (over the n grid) -> {'x': the grid,
        'bias2' (exact), 'variance', 'variance_se', 'mse', 'mse_se', 'bias_norm' (measured),
        'noise_floor'}, each an array over the grid."""
        self._check(alpha, self.lams[0], self.n_values[0], n_trajectories, seed)
        stats = self._all_stats(alpha, n_trajectories, seed)
        out = {}
        for method, grid in (("gae", self.lams), ("n_step", self.n_values)):
            rows = [stats[method, x] for x in grid]
            out[method] = {"x": np.array(grid, dtype=object if method == "n_step" else float),
                           "bias2": np.array([self.bias2((method, x), alpha) for x in grid])}
            for f in ("variance", "variance_se", "mse", "mse_se", "bias_norm", "noise_floor"):
                out[method][f] = np.array([getattr(s, f) for s in rows])
        return out

    def best(self, alpha: float, n_trajectories: int, seed: int = 0) -> tuple[float, int | None]:
        """(the lam, the n) of the grids with the lowest measured MSE."""
        c = self.curves(alpha, n_trajectories, seed)
        return (self.lams[int(np.argmin(c["gae"]["mse"]))],
                self.n_values[int(np.argmin(c["n_step"]["mse"]))])

    def readout(self, stats: LambdaStats) -> str:
        """The numbers behind the plot, as text."""
        a, N = stats.alpha, stats.n_trajectories
        err = value_error(self.blend(a), self.v_exact, self.visits)
        rows = [(f"GAE lam = {stats.lam:g}", stats.gae, stats.gae_bias2),
                (f"n-step n = {'inf' if stats.n is None else stats.n}", stats.n_step,
                 stats.n_step_bias2)]
        head = (f"{'weight':<22}{'|bias|^2 exact':>15}{'variance':>22}{'MSE':>22}"
                f"{'|bias| measured / noise':>25}")
        lines = [f"V_alpha = (1 - {a:g}) V^pi + {a:g} V_wrong: RMS error to V^pi {err:.3g} "
                 f"(visit-weighted; V_wrong's: "
                 f"{value_error(self.v_wrong, self.v_exact, self.visits):.3g})",
                 f"N = {N} trajectories per estimate, {stats.gae.n_repeats} estimates from one "
                 f"pool of {self.pool} (seed {stats.seed});  |grad J|^2 = "
                 f"{np.sum(self.exact ** 2):.4g}", "", head, "-" * len(head)]
        for label, s, b2 in rows:
            ratio = s.bias_norm / max(s.noise_floor, 1e-300)
            lines.append(f"{label:<22}{b2:>15.4g}{_pm(s.variance, s.variance_se):>22}"
                         f"{_pm(s.mse, s.mse_se):>22}{ratio:>25.1f}")
        best_lam, best_n = self.best(a, N, stats.seed)
        stats_all = self._all_stats(a, N, stats.seed)
        lo_gae, lo_n = stats_all["gae", best_lam], stats_all["n_step", best_n]
        lines += ["", f"lowest MSE at N = {N}: GAE at lam = {best_lam:g} "
                      f"({_pm(lo_gae.mse, lo_gae.mse_se)}), n-step at n = "
                      f"{'inf' if best_n is None else best_n} ({_pm(lo_n.mse, lo_n.mse_se)})",
                  "(|bias| measured / noise about 1 or less: no bias visible in this pool)"]
        return "\n".join(lines)

    def render(self, alpha: float, lam: float, n: int | str | None, n_trajectories: int,
               seed: int = 0) -> tuple[bytes, str]:
        """PNG bytes of the two panels and the readout. Axes fixed on first use (from seed 0:
        the variance of one trajectory at alpha = 0 and 1, down to the largest N); redraws
        blit."""
        stats = self.update(alpha, lam, n, n_trajectories, seed)
        if self._plot is None:
            self._plot = self._make_plot()
        c = self.curves(alpha, n_trajectories, seed)
        current = {"gae": self.lams.index(stats.lam), "n_step": self.n_values.index(stats.n)}
        best = {k: int(np.argmin(c[k]["mse"])) for k in c}
        titles = {"gae": f"lam = {stats.lam:g}: MSE {stats.gae.mse:.3g}",
                  "n_step": f"n = {'inf' if stats.n is None else stats.n}: MSE "
                            f"{stats.n_step.mse:.3g}   (alpha = {stats.alpha:g}, N = "
                            f"{stats.n_trajectories})"}
        return self._plot.draw(c, current, best, titles), self.readout(stats)

    def _make_plot(self) -> LambdaPlot:
        ends = [self._all_stats(a, 1, 0) for a in (0.0, 1.0)]
        variance = np.array([s.variance for e in ends for s in e.values()])
        top = max(s.mse + 2 * s.mse_se for e in ends for s in e.values())
        low = variance[variance > 0].min() / self.n_trajectories_values[-1] / 3.0
        return LambdaPlot(self.lams, ["inf" if n is None else str(n) for n in self.n_values],
                          (low, top * 2.0))

    def widget(self, alpha: float = 1.0, lam: float = 0.9, n: int | str | None = 5,
               n_trajectories: int = 10, seed: int = 0) -> W.VBox:
        """The interactive lab: alpha, N, lam and n sliders; the two panels and the readout."""
        lam, n = self._check(alpha, lam, n, n_trajectories, seed)
        alphas = sorted({*self.ALPHAS, float(alpha)})
        n_options = [("inf" if v is None else str(v), "inf" if v is None else v)
                     for v in self.n_values]
        return _lab_box([[_slider(alphas, float(alpha), "alpha"),
                          _slider(self.n_trajectories_values, n_trajectories, "N")],
                         [_slider(self.lams, lam, "lam"),
                          _slider(n_options, "inf" if n is None else n, "n")]],
                        lambda alpha, n_traj, lam, n: self.render(alpha, lam, n, n_traj, seed))
