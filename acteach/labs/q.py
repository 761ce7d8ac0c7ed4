"""The Q lab of notebook 02: the variance of the estimator with Q from k rollouts, against k and
against the environment steps spent.

Three weights for the same estimator g_hat: the reward-to-go Q_hat_{n,t} (one sample of Q^pi,
free: the trajectory's own future), "q_mc" (the mean of k fresh rollouts from each
(s_t, a_t): unbiased, Var = Var[q_exact] + C / k, and k rollouts' worth of extra steps) and
"q_exact" (the exact Q^pi(s_t, a_t): an oracle, no extra steps).
"""
from __future__ import annotations

from typing import Sequence

import ipywidgets as W
import numpy as np
from matplotlib import colormaps

from acteach.estimators import GradientPool, GradientStats
from acteach._validate import check_seed
from acteach.labs._base import (BlittedFigure, LRUCache, check_offered, check_pool,
                                gradient_logits, positive_grid, slider_pair)
from acteach.tabular import TabularMDP, chain_mdp, exact_policy_gradient


class QLab:
    """The Q lab: variance against k and against the environment steps spent.

    For one seed the lab samples `pool` trajectories once and computes, per trajectory, the
    gradient of each weight (for q_mc once per k, fresh rollouts, the same trajectories) and the
    extra steps (`estimators.GradientPool`). An estimate of N trajectories is the mean of N
    consecutive per-trajectory gradients, so every (k, N) pair is a regrouping of cached
    numbers; the statistics of all pairs are computed once per seed, and a slider move only
    redraws (blitted).

    mdp, logits: the MDP and the (S, A) logits; k_values: rollouts per step offered;
    n_trajectories_values: trajectories per estimate offered; pool: trajectories per seed.
    """

    K_VALUES = (1, 2, 4, 8, 16)
    N_TRAJECTORIES = (1, 2, 5, 10, 20, 50)
    RTG, EXACT = "reward_to_go", "q_exact"

    def __init__(self, mdp: TabularMDP, logits: np.ndarray, k_values: Sequence[int] = K_VALUES,
                 n_trajectories_values: Sequence[int] = N_TRAJECTORIES, pool: int = 4000
                 ) -> None:
        self.k_values = positive_grid("k_values", k_values)
        self.n_trajectories_values = positive_grid("n_trajectories_values",
                                                   n_trajectories_values)
        check_pool(pool, self.n_trajectories_values[-1], "n_trajectories_values")
        self.mdp, self.logits = mdp, gradient_logits(mdp, logits)
        self.pool = pool
        self.exact = exact_policy_gradient(mdp, self.logits)
        self._grids = LRUCache(4)
        self._plot: QPlot | None = None

    @staticmethod
    def mc_label(k: int) -> str:
        return f"q_mc k={k}"

    @property
    def labels(self) -> list[str]:
        """The estimators, in plotting order: reward-to-go, q_mc for each k, q_exact."""
        return [self.RTG, *(self.mc_label(k) for k in self.k_values), self.EXACT]

    def _grid(self, seed: int) -> dict[tuple[str, int], GradientStats]:
        """(label, N) -> statistics, for every estimator and every N (cached per seed)."""
        check_seed(seed)

        def measure() -> dict[tuple[str, int], GradientStats]:
            pool = GradientPool.sample(self.mdp, self.logits, self.pool,
                                       np.random.default_rng(seed))
            pool.add(self.RTG, "reward_to_go")
            pool.add(self.EXACT, "q_exact")
            for k in self.k_values:
                pool.add(self.mc_label(k), "q_mc", k=k)
            return {(label, n): pool.stats(label, n, self.exact)
                    for label in self.labels for n in self.n_trajectories_values}
        return self._grids.get(seed, measure)

    def _check(self, k: int, n_trajectories: int) -> None:
        check_offered("k", k, self.k_values)
        check_offered("n_trajectories", n_trajectories, self.n_trajectories_values)

    def update(self, k: int, n_trajectories: int, seed: int = 0) -> list[GradientStats]:
        """[reward_to_go, q_mc with k rollouts, q_exact] with N = n_trajectories per estimate.
        Each GradientStats carries steps_per_estimate: the N trajectories' steps plus, for q_mc,
        its k rollouts from every step."""
        self._check(k, n_trajectories)
        grid = self._grid(seed)
        return [grid[self.RTG, n_trajectories], grid[self.mc_label(k), n_trajectories],
                grid[self.EXACT, n_trajectories]]

    def curves(self, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """label -> (steps per estimate, variance), each (len(n_trajectories_values),): one
        curve per estimator through the N values."""
        grid, ns = self._grid(seed), self.n_trajectories_values
        return {label: (np.array([grid[label, n].steps_per_estimate for n in ns]),
                        np.array([grid[label, n].variance for n in ns]))
                for label in self.labels}

    def readout(self, k: int, n_trajectories: int, seed: int = 0) -> str:
        """The numbers behind the plot, as text: each estimator's |bias|, noise floor, variance
        +- SE, steps per estimate and variance x steps; then the variances at an equal budget."""
        stats, n = self.update(k, n_trajectories, seed), n_trajectories
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

    def render(self, k: int, n_trajectories: int, seed: int = 0) -> tuple[bytes, str]:
        """PNG bytes of the two panels and the readout text, for k rollouts and N trajectories.
        The axes are fixed on first use (from seed 0); later calls redraw only the data."""
        self._check(k, n_trajectories)
        if self._plot is None:
            self._plot = QPlot(self, self.curves(0))
        return (self._plot.draw(k, n_trajectories, seed),
                self.readout(k, n_trajectories, seed))

    def widget(self, k: int = 4, n_trajectories: int = 10, seed: int = 0) -> W.VBox:
        """The interactive lab: k and N sliders, the two panels and the readout."""
        self._check(k, n_trajectories)
        return slider_pair(self.render, (self.k_values, k, "k"),
                           (self.n_trajectories_values, n_trajectories, "N"), seed=seed)


class QPlot(BlittedFigure):
    """The QLab figure. Left: variance against k (log x) at the current N, the current k ringed,
    reward-to-go and q_exact as horizontal lines. Right: variance against the environment steps
    per estimate (log-log), one curve per estimator through the N values, the current point
    ringed and its budget a vertical line: at equal budget, the lower curve wins. Dotted: each
    curve continued by the 1/N law (variance x steps constant) across the whole axis."""

    def __init__(self, lab: QLab, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        super().__init__((9.5, 3.5), left=0.08, right=0.99, bottom=0.15, top=0.9, wspace=0.22)
        self.lab = lab
        ax_k, ax_s = self.axes
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
        self.freeze()

    def artists(self, k: int, n_trajectories: int, seed: int):
        """The data for (k, N, seed) on the fixed axes."""
        lab, n = self.lab, n_trajectories
        grid, curves = lab._grid(seed), lab.curves(seed)
        self.k_curve.set_data(lab.k_values, [grid[lab.mc_label(j), n].variance
                                             for j in lab.k_values])
        self.k_mark.set_data([k], [grid[lab.mc_label(k), n].variance])
        self.rtg_level.set_ydata([grid[lab.RTG, n].variance] * 2)
        self.exact_level.set_ydata([grid[lab.EXACT, n].variance] * 2)
        self.k_title.set_text(f"variance against k, N = {n}, seed {seed}")
        yield from (self.rtg_level, self.exact_level, self.k_curve, self.k_mark, self.k_title)
        for label, line in self.s_curves.items():
            steps, var = curves[label]
            line.set_data(steps, var)
            # the 1/N law: variance x steps stays constant, through the smallest N (most estimates)
            self.s_laws[label].set_data(self.xlim, [var[0] * steps[0] / x for x in self.xlim])
            yield from (self.s_laws[label], line)
        current = grid[lab.mc_label(k), n]
        self.s_mark.set_data([current.steps_per_estimate], [current.variance])
        self.budget.set_xdata([current.steps_per_estimate] * 2)
        self.s_title.set_text(f"q_mc k={k}, N = {n}: {current.steps_per_estimate:,.0f} steps "
                              "per estimate (dotted)")
        yield from (self.budget, self.s_mark, self.s_title)


def notebook02_lab() -> QLab:
    """Notebook 02's lab: the 5-state corridor (slip 0.1) with pi(right | s) = 0.73, k in
    1..16, N in 1..50, a pool of 4,000 trajectories per seed."""
    mdp = chain_mdp(n_states=5, slip=0.1)
    return QLab(mdp, np.tile([0.0, 1.0], (mdp.n_states, 1)))
