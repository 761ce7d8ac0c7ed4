"""The variance lab of notebooks 01 and 03: sliders for N and the seed, a checkbox per
estimator, the estimates against the exact gradient and a table of bias, variance and MSE.

For one seed the lab samples a pool of trajectories once and reuses it for every N and every
estimator (common random numbers, `estimators.GradientPool`): an estimate of N trajectories is
the mean of N consecutive trajectories' gradients, so a slider move only regroups numbers
already computed. An estimator whose weights use the whole batch (a batch-mean baseline) is
recomputed on the pool for each N. `show_estimates` draws the lab's picture of any estimates
once, for a notebook cell.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import ipywidgets as W
import numpy as np
from matplotlib.ticker import MaxNLocator

from acteach._validate import check_positive_int, check_seed
from acteach.estimators import (METHODS, GradientPool, GradientStats, estimates_from_batch,
                                expected_counts, summarize)
from acteach.labs._base import (BlittedFigure, LRUCache, axis_range, check_pool, component_xy,
                                gradient_logits, lab_box, positive_grid, seed_slider, slider,
                                top_components)
from acteach.plotting import COLORS, stats_table
from acteach.tabular import (TabularMDP, chain_mdp, exact_policy_gradient,
                             gridworld_mdp)


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
    pool: trajectories sampled per seed; an estimate of N trajectories leaves pool // N
    estimates. n_trajectories_values: the N offered.
    """

    N_TRAJECTORIES = (1, 2, 5, 10, 20, 50, 100)

    def __init__(self, mdp: TabularMDP, logits: np.ndarray,
                 estimators: Sequence[str | Estimator | tuple], pool: int = 20_000,
                 n_trajectories_values: Sequence[int] = N_TRAJECTORIES) -> None:
        self.mdp, self.logits = mdp, gradient_logits(mdp, logits)
        self.estimators = [as_estimator(e) for e in estimators]
        if not self.estimators:
            raise ValueError("estimators: expected at least one estimator")
        labels = [e.label for e in self.estimators]
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:
            raise ValueError(f"estimators: each needs a label of its own, got {twice} more than "
                             "once (name them: ('label', 'method', options))")
        self.n_trajectories_values = positive_grid("n_trajectories_values",
                                                   n_trajectories_values)
        check_pool(pool, max(self.n_trajectories_values), "n_trajectories_values")
        self.pool = pool
        self.exact = exact_policy_gradient(mdp, self.logits)
        self._pools = LRUCache(4)
        self._plot: EstimatePlot | None = None
        self.scale_n = 10 if 10 in self.n_trajectories_values else self.n_trajectories_values[0]

    def _pool(self, seed: int) -> GradientPool:
        """The seed's trajectories with each per-trajectory estimator's gradients (cached)."""
        check_seed(seed)

        def sample() -> GradientPool:
            pool = GradientPool.sample(self.mdp, self.logits, self.pool,
                                       np.random.default_rng(seed))
            for e in self.estimators:
                if not METHODS[e.method].batch_dependent:
                    pool.add(e.label, e.method, **e.options)
            return pool
        return self._pools.get(seed, sample)

    def _stats(self, e: Estimator, n_trajectories: int, seed: int) -> GradientStats:
        pool = self._pool(seed)
        if not METHODS[e.method].batch_dependent:      # the mean of N per-trajectory gradients
            return pool.stats(e.label, n_trajectories, self.exact)
        rng = np.random.default_rng([seed, n_trajectories])
        estimates, extra = estimates_from_batch(self.mdp, self.logits, pool.batch, e.method,
                                                n_trajectories, rng, **e.options)
        steps = (pool.batch.n_steps + extra) * n_trajectories / self.pool
        return summarize(e.label, estimates, self.exact, n_trajectories, steps,
                         expected_counts(self.mdp, self.logits, len(estimates) * n_trajectories))

    def update(self, n_trajectories: int, seed: int = 0, labels: Sequence[str] | None = None
               ) -> list[GradientStats]:
        """Statistics of each chosen estimator (default: all) with N = n_trajectories
        trajectories per estimate."""
        check_positive_int("n_trajectories", n_trajectories)
        if 2 * n_trajectories > self.pool:
            raise ValueError(f"n_trajectories: at most {self.pool // 2} with a pool of "
                             f"{self.pool}, got {n_trajectories}")
        chosen = [e for e in self.estimators if labels is None or e.label in labels]
        return [self._stats(e, n_trajectories, seed) for e in chosen]

    def _readout(self, stats: list[GradientStats], seed: int) -> str:
        return (f"N = {stats[0].n_trajectories} trajectories per estimate, seed {seed}, "
                f"{stats[0].n_repeats} estimates each, "
                f"{stats[0].steps_per_estimate:.0f} env steps per estimate\n\n{stats_table(stats)}")

    def readout(self, n_trajectories: int, seed: int = 0, labels: Sequence[str] | None = None
                ) -> str:
        """The numbers behind the plot: the setting, then a table of bias, variance and cosine with grad J."""
        return self._readout(self.update(n_trajectories, seed, labels), seed)

    def render(self, n_trajectories: int, seed: int = 0, labels: Sequence[str] | None = None
               ) -> tuple[bytes, str]:
        """PNG bytes of the plot and the readout. The plot's axes are fixed on first use, from
        the estimates at N = self.scale_n, seed 0."""
        stats = self.update(n_trajectories, seed, labels)
        if self._plot is None:
            self._plot = EstimatePlot([e.label for e in self.estimators],
                                      self.update(self.scale_n))
        title = f"N = {n_trajectories} trajectories per estimate, {stats[0].n_repeats} estimates"
        return self._plot.draw(stats, title), self._readout(stats, seed)

    def widget(self, n_trajectories: int = 10, seed: int = 0) -> W.VBox:
        """The interactive lab: N and seed sliders, estimator checkboxes, plot and table."""
        boxes = [W.Checkbox(value=True, description=e.label, indent=False)
                 for e in self.estimators]

        def draw(n_trajectories: int, seed: int, *ticked: bool) -> tuple[bytes | None, str]:
            labels = [b.description for b, on in zip(boxes, ticked) if on]
            if not labels:
                return None, "Tick at least one estimator."
            return self.render(n_trajectories, seed, labels)

        return lab_box([[slider(self.n_trajectories_values, n_trajectories, "N"),
                         seed_slider(seed)], boxes], draw)


class EstimatePlot(BlittedFigure):
    """Many gradient estimates against the true gradient, on axes that stay fixed.

    Left: each estimator's estimates projected on the direction of the true gradient (a
    histogram scaled to its peak) with its mean (a dotted line ending in a triangle), the true
    length dashed: a skewed histogram whose mean sits on the dashed line is unbiased. Right: two
    components of the estimates (the true gradient's largest), the truth a star drawn over the
    clouds. Above both, the
    title, then the legend. The axes are set once from `scale_stats` (use the noisiest setting),
    so a larger N visibly narrows the clouds.
    """

    def __init__(self, labels: Sequence[str], scale_stats: Sequence[GradientStats],
                 max_points: int = 300, bins: int = 41) -> None:
        ncol = min(len(labels) + 1, 4)
        legend_rows = -(-(len(labels) + 1) // ncol)
        header = 0.3 + 0.19 * legend_rows                   # inches: the title, then the legend
        height = 2.85 + header
        super().__init__((9, height), left=0.04, right=0.99, bottom=0.5 / height,
                         top=1 - header / height, wspace=0.18)
        self.labels, self.max_points = list(labels), max_points
        ref = scale_stats[0].reference
        self.unit = ref.ravel() / max(np.linalg.norm(ref), 1e-12)
        self.comps = top_components(ref) if len(ref) > 1 else [(0,) * ref.ndim] * 2
        ax_p, ax_xy = self.axes
        proj = np.concatenate([self._project(s.estimates) for s in scale_stats])
        lo, hi = axis_range(np.append(proj, np.linalg.norm(ref)))
        self.edges = np.linspace(lo, hi, bins)
        truth = np.array([[ref[self.comps[0]], ref[self.comps[1]]]])
        xy = np.concatenate([component_xy(s.estimates, self.comps) for s in scale_stats] + [truth])
        (x0, x1), (y0, y1) = axis_range(xy[:, 0]), axis_range(xy[:, 1])
        ax_p.set(xlim=(lo, hi), ylim=(0, 1.12), yticks=[],
                 xlabel="estimate projected on the true gradient direction (\u25bc mean)")
        ax_p.axvline(np.linalg.norm(ref), color="k", lw=1.2, ls="--", label="true |grad J|")
        ax_xy.set(xlim=(x0, x1), ylim=(y0, y1), xlabel=f"dJ/dlogits{list(self.comps[0])}",
                  ylabel=f"dJ/dlogits{list(self.comps[1])}")
        self.star = ax_xy.scatter(*truth[0], marker="*", s=200, color="k", edgecolor="w",
                                  animated=True)             # drawn last: above the clouds
        for axis in (ax_p.xaxis, ax_xy.xaxis, ax_xy.yaxis):
            axis.set_major_locator(MaxNLocator(5))
        self.hists, self.clouds, self.means = {}, {}, {}
        for k, label in enumerate(self.labels):
            color = COLORS[k % len(COLORS)]
            self.hists[label] = ax_p.stairs(np.zeros(bins - 1), self.edges, color=color, lw=1.8,
                                            label=label, animated=True)
            (self.means[label],) = ax_p.plot([], [], ":", color=color, lw=1.4, marker="v",
                                             markevery=[1], ms=7, animated=True)
            self.clouds[label] = ax_xy.scatter([], [], s=7, alpha=0.4, color=color,
                                               animated=True)
        self.fig.legend(*ax_p.get_legend_handles_labels(), fontsize=8, frameon=False, ncol=ncol,
                        loc="upper left", bbox_to_anchor=(0.03, 1 - 0.25 / height),
                        borderaxespad=0.0)
        self.title = self.fig.text(0.04, 1 - 0.06 / height, "", ha="left", va="top",
                                   fontsize=9, animated=True)
        self.freeze()

    def _project(self, estimates: np.ndarray) -> np.ndarray:
        return estimates.reshape(len(estimates), -1) @ self.unit

    def artists(self, stats: Sequence[GradientStats], title: str = ""):
        """These estimators' estimates and means (the others are hidden) and the title."""
        shown = {s.method: s for s in stats}
        for label in self.labels:
            if label in shown:
                projected = self._project(shown[label].estimates)
                counts, _ = np.histogram(projected, self.edges)
                self.hists[label].set_data(counts / max(counts.max(), 1))
                self.means[label].set_data([projected.mean()] * 2, [0.0, 1.06])
                self.clouds[label].set_offsets(
                    component_xy(shown[label].estimates[:self.max_points], self.comps))
                yield self.hists[label]
                yield self.means[label]
                yield self.clouds[label]
        self.title.set_text(title)
        yield self.star
        yield self.title


def show_estimates(stats: Sequence[GradientStats], title: str = ""):
    """The lab's picture of these estimates as an image for a notebook cell (axes scaled to
    these estimates)."""
    from IPython.display import Image as IPythonImage
    plot = EstimatePlot([s.method for s in stats], stats)
    return IPythonImage(plot.draw(stats, title))


# ---------------------------------------------------------------------------------------------
# The labs the notebooks show (the notebook and benchmarks/widgets.py both build them here)
# ---------------------------------------------------------------------------------------------

def notebook01_lab() -> VarianceLab:
    """Notebook 01's lab: reinforce against reward-to-go on the 5-state corridor (slip 0.1) with
    pi(right | s) = 0.73, a pool of 20,000 trajectories per seed."""
    mdp = chain_mdp(n_states=5, slip=0.1)
    return VarianceLab(mdp, np.tile([0.0, 1.0], (mdp.n_states, 1)), ["reinforce", "reward_to_go"])


def notebook03_lab() -> VarianceLab:
    """Notebook 03's lab: the baselines on the gridworld at random logits (seed 3, scale 0.5),
    a pool of 6,000 trajectories per seed (N up to 50) so that a slider move stays fast."""
    mdp = gridworld_mdp()
    logits = np.random.default_rng(3).normal(size=(mdp.n_states, mdp.n_actions)) * 0.5
    methods = ["reinforce", "reward_to_go", "baseline_mean", "baseline_loo", "baseline_optimal",
               "baseline_v_exact", "advantage_exact"]
    return VarianceLab(mdp, logits, methods, pool=6_000,
                       n_trajectories_values=(1, 2, 5, 10, 20, 50))
