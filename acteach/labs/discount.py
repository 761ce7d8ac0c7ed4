"""The discount lab of notebook 05: the discount factor gamma against the bias (from the
undiscounted gradient) and the variance of the estimator, for both discount options.

On an episodic or finite-horizon MDP the undiscounted return J_1 is finite and is what the
practitioner wants to climb. Discounting the reward-to-go with gamma < 1 biases the estimator
away from grad J_1 and lowers its variance; the lab shows both over a grid of gammas, exactly
(the expectations, `discount.expected_gradient`) and measured (the variance, the cosine of one
estimate with grad J_1). It judges a gamma by what a step uses: the cosine and the scale-optimal
MSE (`estimators.scale_optimal_mse`), never the raw MSE, which the zero estimator already
scores |grad J_1|^2 on and which a gamma that merely shrinks the estimates would win.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import ipywidgets as W
import numpy as np

from acteach._validate import check_seed
from acteach.discount import (DISCOUNT_OPTIONS, expected_gradient, undiscounted,
                              undiscounted_gradient, with_gamma)
from acteach.estimators import GradientPool, mean_cosine, scale_optimal_mse
from acteach.labs._base import (BlittedFigure, check_offered, check_pool, gradient_logits,
                                positive_grid, slider_pair)
from acteach.plotting import COLORS
from acteach.sampling import Batch
from acteach.tabular import TabularMDP, chain_mdp, cosine, sample_trajectories


@dataclass(frozen=True)
class GammaStats:
    """One discount option at one gamma, for estimates of N trajectories (the reward-to-go
    weights sum_{t'>=t} gamma^(t'-t) r_t', times gamma^t under option 2).

    bias, bias_discounted: |E[g] - grad J_1| and |E[g] - grad J_gamma|, exact.
    variance (+- variance_se): total variance of one estimate of N trajectories, measured
    (the per-trajectory variance / N). mse = bias^2 + variance, against grad J_1 (raw: it
    rewards shrinking). scale_optimal_mse (+- scale_optimal_mse_se): min_c E|c g_hat -
    grad J_1|^2 over the n_repeats estimates, measured; zero_mse = |grad J_1|^2.
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
    scale_optimal_mse: float
    scale_optimal_mse_se: float
    zero_mse: float
    cos_mean: float
    cos_estimate: float
    cos_estimate_se: float
    relative_variance: float
    max_z: float


class DiscountLab:
    """The discount lab: bias against the undiscounted gradient, and variance, over a grid of
    gammas.

    The lab samples `pool` trajectories once (the policy does not depend on gamma, so every
    gamma reweights the same trajectories: common random numbers), computes each option's
    per-trajectory gradients at every gamma (`estimators.GradientPool`), and the exact
    expectations; every (gamma, N) pair is then a lookup, and a slider move only redraws
    (blitted).

    mdp, logits: the MDP (its own gamma is ignored) and the (S, A) logits; gammas: the grid
    offered; n_trajectories_values: trajectories per estimate offered; pool: trajectories
    sampled.
    """

    GAMMAS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 1.0)
    N_TRAJECTORIES = (1, 10, 100)

    def __init__(self, mdp: TabularMDP, logits: np.ndarray, gammas: Sequence[float] = GAMMAS,
                 n_trajectories_values: Sequence[int] = N_TRAJECTORIES, pool: int = 4000,
                 seed: int = 0) -> None:
        gammas = tuple(float(g) for g in gammas)
        if not gammas or list(gammas) != sorted(set(gammas)):
            raise ValueError(f"gammas: expected increasing distinct values, got {gammas}")
        for g in gammas:
            with_gamma(mdp, g)                        # a ValueError naming gamma if not in [0, 1]
        self.n_trajectories_values = positive_grid("n_trajectories_values",
                                                   n_trajectories_values)
        check_pool(pool, self.n_trajectories_values[-1], "n_trajectories_values")
        check_seed(seed)
        self.mdp, self.gammas, self.pool = mdp, gammas, pool
        self.logits = gradient_logits(mdp, logits)
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
        discounted = expected_gradient(mdp, self.logits, 2)
        pool = GradientPool(mdp, self.logits, batch)
        for option in DISCOUNT_OPTIONS:
            label = f"option {option}"
            pool.add(label, "reward_to_go", discount_option=option)
            mean = expected_gradient(mdp, self.logits, option)
            one = pool.stats(label, 1, mean)
            bias = float(np.linalg.norm(mean - self.reference))
            signal = float(np.sum(mean ** 2))
            for n in self.n_trajectories_values:
                est = pool.estimates(label, n)
                cos, cos_se = mean_cosine(est, self.reference)
                best_scale, best_scale_se = scale_optimal_mse(est, self.reference)
                variance = one.variance / n
                self._stats[mdp.gamma, option, n] = GammaStats(
                    gamma=mdp.gamma, option=option, n_trajectories=n, n_repeats=len(est),
                    bias=bias, bias_discounted=float(np.linalg.norm(mean - discounted)),
                    variance=variance, variance_se=one.variance_se / n, mse=bias ** 2 + variance,
                    scale_optimal_mse=best_scale, scale_optimal_mse_se=best_scale_se,
                    zero_mse=float(np.sum(self.reference ** 2)),
                    cos_mean=cosine(mean, self.reference), cos_estimate=cos,
                    cos_estimate_se=cos_se,
                    relative_variance=variance / signal if signal > 0 else float("inf"),
                    max_z=one.max_bias_z)

    def _check(self, gamma: float, n_trajectories: int) -> int:
        """The index of gamma in the grid, or a ValueError; N must be offered too."""
        check_offered("n_trajectories", n_trajectories, self.n_trajectories_values)
        for i, g in enumerate(self.gammas):
            if np.isclose(g, gamma, rtol=0, atol=1e-12):
                return i
        raise ValueError(f"gamma: expected one of the grid {self.gammas}, got {gamma!r}")

    def update(self, gamma: float, n_trajectories: int) -> list[GammaStats]:
        """[option 1, option 2] at this gamma, estimates of N = n_trajectories trajectories."""
        g = self.gammas[self._check(gamma, n_trajectories)]
        return [self._stats[g, option, n_trajectories] for option in DISCOUNT_OPTIONS]

    def curves(self, n_trajectories: int) -> dict[int, dict[str, np.ndarray]]:
        """option -> {field: (G,) array over the gamma grid} for estimates of N trajectories."""
        self._check(self.gammas[0], n_trajectories)
        fields = ("bias", "variance", "mse", "scale_optimal_mse", "scale_optimal_mse_se",
                  "cos_mean", "cos_estimate", "cos_estimate_se", "relative_variance")
        return {option: {f: np.array([getattr(self._stats[g, option, n_trajectories], f)
                                      for g in self.gammas])
                         for f in fields}
                for option in DISCOUNT_OPTIONS}

    def best_gamma(self, n_trajectories: int, option: int = 1,
                   by: str = "scale_optimal_mse") -> float:
        """The gamma of the grid with the lowest scale-optimal MSE (by="scale_optimal_mse") or
        the highest mean cosine of one estimate with grad J_1 (by="cos_estimate"), for
        estimates of N trajectories. (Not the raw MSE: it rewards shrinking toward 0.)"""
        check_offered("by", by, ("scale_optimal_mse", "cos_estimate"))
        curve = self.curves(n_trajectories)[option][by]
        return self.gammas[int(np.argmin(curve) if by == "scale_optimal_mse" else
                               np.argmax(curve))]

    def readout(self, gamma: float, n_trajectories: int) -> str:
        """The numbers behind the plot at (gamma, N), as text."""
        rows, n = self.update(gamma, n_trajectories), n_trajectories
        head = (f"{'':<10}{'|bias| vs J_1':>14}{'|bias| vs J_g':>14}{'variance':>20}"
                f"{'cos(E g, J_1)':>14}{'mean cos(g_hat, J_1)':>22}{'scale-opt. MSE':>18}")
        lines = [f"gamma = {gamma:g}, N = {n} trajectories per estimate, {rows[0].n_repeats} "
                 f"estimates (one pool of {self.pool} trajectories, mean length "
                 f"{self.mean_length:.1f} steps); |grad J_1| = "
                 f"{np.linalg.norm(self.reference):.4g}", "", head, "-" * len(head)]
        for s in rows:
            pm = f"{s.variance:.4g} \u00b1 {s.variance_se:.2g}"
            cos = f"{s.cos_estimate:.3f} \u00b1 {s.cos_estimate_se:.3f}"
            best = f"{s.scale_optimal_mse:.4g} \u00b1 {s.scale_optimal_mse_se:.2g}"
            lines.append(f"{'option ' + str(s.option):<10}{s.bias:>14.4g}{s.bias_discounted:>14.4g}"
                         f"{pm:>20}{s.cos_mean:>14.3f}{cos:>22}{best:>18}")
        lines += [f"{'zero':<10}{'':>84}{rows[0].zero_mse:>18.4g}",
                  "", f"At N = {n}, option 1 has its lowest scale-optimal MSE at gamma = "
                      f"{self.best_gamma(n, 1):g} and its best mean cosine at gamma = "
                      f"{self.best_gamma(n, 1, 'cos_estimate'):g}; the zero estimator (no "
                      f"step) scores |grad J_1|^2 = {rows[0].zero_mse:.4g}."]
        return "\n".join(lines)

    def render(self, gamma: float, n_trajectories: int) -> tuple[bytes, str]:
        """PNG bytes of the two panels and the readout text at (gamma, N). The axes and the
        exact curves are drawn on first use; later calls redraw only the measured curves."""
        index = self._check(gamma, n_trajectories)
        if self._plot is None:
            variances = [s.variance for s in self._stats.values() if s.variance > 0]
            exact = self.curves(self.n_trajectories_values[0])
            self._plot = GammaPlot(self.gammas,
                                   {o: exact[o]["bias"] ** 2 for o in DISCOUNT_OPTIONS},
                                   {o: exact[o]["cos_mean"] for o in DISCOUNT_OPTIONS},
                                   (min(variances), max(variances)),
                                   float(np.sum(self.reference ** 2)))
        c = self.curves(n_trajectories)
        png = self._plot.draw(index, {o: c[o]["variance"] for o in DISCOUNT_OPTIONS},
                              {o: c[o]["scale_optimal_mse"] for o in DISCOUNT_OPTIONS},
                              {o: c[o]["cos_estimate"] for o in DISCOUNT_OPTIONS},
                              f"gamma = {self.gammas[index]:g}, N = {n_trajectories}")
        return png, self.readout(gamma, n_trajectories)

    def widget(self, gamma: float = 0.9, n_trajectories: int = 10) -> W.VBox:
        """The interactive lab: gamma and N sliders, the two panels and the readout."""
        gamma = self.gammas[self._check(gamma, n_trajectories)]
        return slider_pair(self.render, (self.gammas, gamma, "gamma"),
                           (self.n_trajectories_values, n_trajectories, "N"))


class GammaPlot(BlittedFigure):
    """The discount lab's figure: three panels over a grid of discount factors (x = the grid's
    index, labelled with its gamma), one colour per discount option, the chosen gamma a
    vertical line.

    Left (log y): |bias|^2 of each option's expectation against the undiscounted gradient
    (exact; drawn once, solid) and the variance of an estimate of N trajectories (measured;
    redrawn for each N, dashed): the trade. Middle: the scale-optimal MSE of an estimate
    (measured, redrawn), against the zero estimator's MSE |grad J_1|^2 (a black line): what a
    step with the best step size gains. Right: cos(E[g], grad J_1) (exact; drawn once, solid)
    and the mean cosine of one N-trajectory estimate with grad J_1 (measured; redrawn,
    markers): how well a single update points uphill on the undiscounted return.

    gammas: (G,) the grid; bias2, cos_mean: option -> (G,) exact curves; variance_range: the
    (lowest, highest) variance over every N, to fix the left axis; zero_mse: |grad J_1|^2.
    """

    def __init__(self, gammas, bias2: dict, cos_mean: dict,
                 variance_range: tuple[float, float], zero_mse: float) -> None:
        super().__init__((11.5, 3.9), panels=3, left=0.06, right=0.99, bottom=0.13, top=0.76,
                         wspace=0.28)
        self.gammas = np.asarray(gammas, dtype=float)
        x = self.x = np.arange(len(self.gammas))
        ax_b, ax_m, ax_c = self.axes
        positive = np.concatenate([b[b > 0] for b in bias2.values()] + [np.asarray(variance_range)])
        self.floor = positive.min() / 3.0
        top = max(positive.max(), 2 * variance_range[1]) * 3.0
        labels = [f"{g:g}" for g in self.gammas]
        for ax in self.axes:
            ax.set_xticks(x, labels, fontsize=7)
            ax.set_xlim(-0.4, len(x) - 0.6)
            ax.set_xlabel("discount factor gamma")
        ax_b.set(yscale="log", ylim=(self.floor, top), ylabel="squared norm")
        ax_m.set(ylim=(0, 1.1 * zero_mse), ylabel="min_c E|c g_hat - grad J_1|^2")
        ax_c.set(ylim=(-0.05, 1.05), ylabel="cosine with grad J_1")
        self.colors = {opt: COLORS[i] for i, opt in enumerate(sorted(bias2))}
        self.variance, self.scale_optimal, self.cos_estimate = {}, {}, {}
        for opt in sorted(bias2):
            color = self.colors[opt]
            ax_b.plot(x, np.maximum(bias2[opt], self.floor), "-", color=color, lw=1.8,
                      label=f"option {opt}: |bias|^2 (exact)")
            (self.variance[opt],) = ax_b.plot([], [], "o--", ms=3, color=color, lw=1.2,
                                              label=f"option {opt}: variance", animated=True)
            (self.scale_optimal[opt],) = ax_m.plot([], [], "s-", ms=4, color=color, lw=1.2,
                                                   label=f"option {opt}", animated=True)
            ax_c.plot(x, cos_mean[opt], "-", color=color, lw=1.8,
                      label=f"option {opt}: cos(E[g], grad J_1)")
            (self.cos_estimate[opt],) = ax_c.plot([], [], "o--", ms=4, color=color, lw=1.0,
                                                  label=f"option {opt}: mean cos(g_hat, J_1)",
                                                  animated=True)
        ax_m.axhline(zero_mse, color="k", lw=1.2, label="zero estimator: |grad J_1|^2")
        for ax, ncol in ((ax_b, 2), (ax_m, 1), (ax_c, 1)):
            ax.legend(fontsize=7, frameon=False, loc="lower left", bbox_to_anchor=(0, 1),
                      ncol=ncol, borderaxespad=0.2)
        self.marks = [ax.axvline(0, color="tab:red", lw=1.0, ls="-", alpha=0.6, animated=True)
                      for ax in self.axes]
        self.title = ax_c.text(0.98, 0.04, "", transform=ax_c.transAxes, ha="right",
                               fontsize=8, animated=True)
        self.freeze()

    def artists(self, index: int, variance: dict, scale_optimal: dict, cos_estimate: dict,
                title: str = ""):
        """The measured curves (option -> (G,) arrays) and the mark at gamma index `index`."""
        for opt, line in self.variance.items():
            line.set_data(self.x, np.maximum(variance[opt], self.floor))
            self.scale_optimal[opt].set_data(self.x, scale_optimal[opt])
            self.cos_estimate[opt].set_data(self.x, cos_estimate[opt])
            yield from (line, self.scale_optimal[opt], self.cos_estimate[opt])
        for mark in self.marks:
            mark.set_xdata([index, index])
            yield mark
        self.title.set_text(title)
        yield self.title


def notebook05_lab() -> DiscountLab:
    """Notebook 05's lab: the 10-state corridor (slip 0.1, gamma 0.9) with pi(right | s) = 0.73,
    N in (1, 10, 100), one pool of 4,000 trajectories."""
    mdp = chain_mdp(n_states=10, slip=0.1, gamma=0.9)
    return DiscountLab(mdp, np.tile([0.0, 1.0], (mdp.n_states, 1)),
                       n_trajectories_values=(1, 10, 100), pool=4000)
