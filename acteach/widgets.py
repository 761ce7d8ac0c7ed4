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

from acteach._validate import check_positive_int
from acteach.estimators import (METHODS, GradientStats, estimates_from_batch, group_means,
                                 summarize)
from acteach.plotting import EstimatePlot, stats_table
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
