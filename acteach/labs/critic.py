"""The two labs of notebook 04: fitting a table V with the three targets (CriticLab), and what
a wrong critic costs the policy gradient (CriticBiasLab).

CriticLab fits V to one data set per seed by plain minibatch SGD (`critic.fit_value_table`) and
shows the table and its error to V^pi after any number of updates. CriticBiasLab weights the
estimator with the TD advantage of V_alpha = (1 - alpha) V^pi + alpha V_poor and judges it, as
a step uses it, by its scale-optimal MSE (against reward-to-go's and the zero estimator's).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import ipywidgets as W
import numpy as np
from matplotlib.ticker import MaxNLocator

from acteach._validate import check_integer, check_positive_int, check_seed
from acteach.critic import (TARGETS, FitConfig, Transitions, batch_fixed_point, check_table_mdp,
                            fit_value_table, residual_fixed_point, transitions, value_error,
                            visit_distribution)
from acteach.estimators import GradientPool, GradientStats, scale_optimal_mse_gap
from acteach.labs._base import (BlittedFigure, LRUCache, axis_range, check_alpha, check_offered,
                                check_pool, component_xy, gradient_logits, lab_box, positive_grid,
                                real_grid, seed_slider, slider, slider_pair, top_components)
from acteach.plotting import plus_minus
from acteach.tabular import (TabularMDP, chain_mdp, check_logits, exact_policy_gradient,
                             exact_values, sample_trajectories)

# ---------------------------------------------------------------------------------------------
# Fitting V: the three targets
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
    against the exact V^pi.

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
        if not steps_values:
            raise ValueError(f"steps_values: expected at least one value, got {steps_values!r}")
        for steps in steps_values:
            check_integer("steps_values", steps)
            if steps < 0:
                raise ValueError(f"steps_values: expected steps >= 0, got {steps}")
        self.steps_values = tuple(sorted(steps_values))
        self.batch_values = positive_grid("batch_values", batch_values)
        self.lr_values = real_grid("lr_values", lr_values)
        self.max_steps = max(self.steps_values[-1], 1)
        self.exact = exact_values(mdp, self.logits).V
        self.weights = visit_distribution(mdp, self.logits)
        self._data, self._fits = LRUCache(4), LRUCache(32)
        self._fixed: dict[tuple, np.ndarray] = {}
        self._plot: CriticPlot | None = None

    def data(self, seed: int = 0) -> Transitions:
        """The data set of a seed: n_trajectories trajectories' valid steps (cached)."""
        return self._data.get(seed, lambda: transitions(
            sample_trajectories(self.mdp, self.logits, self.n_trajectories,
                                np.random.default_rng(seed)), self.mdp.gamma))

    def _check(self, target: str, steps: int, batch_size: int, lr: float) -> None:
        check_offered("target", target, TARGETS)
        check_offered("steps", steps, self.steps_values)
        check_offered("batch_size", batch_size, self.batch_values)
        check_offered("lr", lr, self.lr_values)

    def history(self, target: str, batch_size: int, lr: float, seed: int = 0) -> np.ndarray:
        """(max steps + 1, S): the table after each update of one fit (cached)."""
        config = FitConfig(target, self.max_steps, batch_size, lr, seed)
        return self._fits.get((target, batch_size, lr, seed), lambda: fit_value_table(
            self.data(seed), self.mdp.n_states, config))

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

    def _readout(self, fit: CriticFit) -> str:
        names = self.mdp.names or tuple(str(s) for s in range(self.mdp.n_states))
        shown = [s for s in range(self.mdp.n_states) if self.weights[s] > 0]
        data = self.data(fit.seed)
        lines = [f"{self.LABELS[fit.target]}: {fit.steps} updates of {fit.batch_size} transitions, "
                 f"lr = {fit.lr:g}, seed {fit.seed}; data: {self.n_trajectories} trajectories, "
                 f"{len(data)} transitions",
                 "",
                 "state        " + "".join(f"{names[s]:>9}" for s in shown),
                 "V^pi (exact) " + "".join(f"{self.exact[s]:9.3f}" for s in shown),
                 "V fitted     " + "".join(_cell(fit.value[s]) for s in shown),
                 "fixed point  " + "".join(f"{fit.fixed_point[s]:9.3f}" for s in shown),
                 "",
                 f"RMS error to V^pi (weighted by visits): {_cell(fit.error).strip()}   "
                 f"(at the fixed point of this target on this data: {fit.fixed_error:.3f})"]
        if not np.isfinite(fit.error) or fit.error > 1e3:
            lines.append("the fit diverged: each update overshoots (lower lr, or a larger batch)")
        return "\n".join(lines)

    def readout(self, target: str, steps: int, batch_size: int, lr: float, seed: int = 0) -> str:
        """The numbers behind the plot, as text."""
        return self._readout(self.update(target, steps, batch_size, lr, seed))

    def render(self, target: str, steps: int, batch_size: int, lr: float,
               seed: int = 0) -> tuple[bytes, str]:
        """PNG bytes of the plot and the readout. Axes fixed on first use; redraws blit."""
        fit = self.update(target, steps, batch_size, lr, seed)
        if self._plot is None:
            self._plot = CriticPlot(self)
        return self._plot.draw(fit), self._readout(fit)

    def widget(self, target: str = "bootstrapped", steps: int = 300, batch_size: int = 16,
               lr: float = 0.1, seed: int = 0) -> W.VBox:
        """The interactive lab: target, steps, batch size, lr and seed; plot and readout."""
        self._check(target, steps, batch_size, lr)
        target_w = W.ToggleButtons(options=[(self.LABELS[t], t) for t in TARGETS], value=target)
        return lab_box([[target_w],
                        [slider(self.steps_values, steps, "steps"),
                         slider(self.batch_values, batch_size, "batch")],
                        [slider(self.lr_values, lr, "lr"), seed_slider(seed)]], self.render)


def _cell(x: float) -> str:
    """A table cell of width 9 for a value that may have diverged."""
    return f"{x:9.3f}" if np.isfinite(x) and abs(x) < 1e5 else f"{x:9.2g}"


class CriticPlot(BlittedFigure):
    """The CriticLab figure. Left: per state, V^pi (grey bar), the fitted V (coloured bar) and
    the target's fixed point on this data (black tick). Right: the RMS error to V^pi against the
    number of updates (log-log), the current step ringed, the fixed point's error dashed. The
    axes are fixed once (values that run off them are clipped)."""

    COLORS = {"monte_carlo": "tab:blue", "bootstrapped": "tab:orange",
              "full_gradient": "tab:purple"}

    def __init__(self, lab: CriticLab) -> None:
        super().__init__((9.5, 3.4), left=0.07, right=0.99, bottom=0.16, top=0.88, wspace=0.22)
        self.states = np.flatnonzero(lab.weights > 0)
        names = lab.mdp.names or tuple(str(s) for s in range(lab.mdp.n_states))
        ax_v, ax_e = self.axes
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
        self.steps = np.arange(1, lab.max_steps + 2)
        zero_error = float(value_error(np.zeros_like(lab.exact), lab.exact, lab.weights))
        ax_e.set(xscale="log", yscale="log", xlim=(1, lab.max_steps + 1),
                 ylim=(zero_error / 200, zero_error * 10),
                 xlabel="updates + 1", ylabel="RMS error to V^pi")
        (self.curve,) = ax_e.plot([], [], lw=1.2, animated=True)
        (self.mark,) = ax_e.plot([], [], "o", ms=12, mfc="none", mec="tab:red", mew=2,
                                 animated=True)
        self.floor = ax_e.axhline(zero_error, color="k", ls="--", lw=1,
                                  label="error of the fixed point", animated=True)
        ax_e.axhline(zero_error, color="0.6", ls=":", lw=1, label="V = 0 (the start)")
        ax_e.legend(fontsize=8, frameon=False, loc="lower left")
        self.e_title = ax_e.set_title("", fontsize=9, animated=True)
        self.freeze()

    def artists(self, fit: CriticFit):
        """The data of one fit on the fixed axes."""
        color = self.COLORS[fit.target]
        lo, hi = self.axes[0].get_ylim()
        for bar, v in zip(self.bars, fit.value[self.states]):
            bar.set_height(float(np.clip(v, lo - 1, hi + 1)) if np.isfinite(v) else 0.0)
            bar.set_color(color)
            yield bar
        self.ticks.set_ydata(fit.fixed_point[self.states])
        self.v_title.set_text(f"{CriticLab.LABELS[fit.target]}: {fit.steps} updates, "
                              f"batch {fit.batch_size}, lr {fit.lr:g}")
        yield from (self.ticks, self.v_title)
        curve = np.where(np.isfinite(fit.curve), fit.curve, 1e300)
        self.curve.set_data(self.steps, np.minimum(curve, 1e30))
        self.curve.set_color(color)
        self.mark.set_data([fit.steps + 1], [min(curve[fit.steps], 1e30)])
        self.floor.set_ydata([fit.fixed_error] * 2)
        self.e_title.set_text(f"error after {fit.steps} updates: {_cell(fit.error).strip()}")
        yield from (self.floor, self.curve, self.mark, self.e_title)


# ---------------------------------------------------------------------------------------------
# What a wrong critic costs the gradient
# ---------------------------------------------------------------------------------------------

@dataclass
class BlendStats:
    """The CriticBiasLab's numbers at one (alpha, N): the statistics of reward-to-go and of the
    TD advantage with V_alpha = (1 - alpha) V^pi + alpha V_poor (GradientStats each)."""

    alpha: float
    n_trajectories: int
    reward_to_go: GradientStats
    advantage_td: GradientStats


class CriticBiasLab:
    """What a wrong critic costs: the TD advantage r + gamma V(s') - V(s) as the weight, with
    V_alpha = (1 - alpha) V^pi + alpha V_poor, against reward-to-go.

    With the exact V^pi (alpha = 0) the estimator is unbiased; a wrong V biases it. The weight
    is linear in V, so for the same trajectories the estimate at alpha is exactly
    (1 - alpha) g(V^pi) + alpha g(V_poor): per seed the lab computes the per-trajectory
    gradients of both ends (and of reward-to-go) once (`estimators.GradientPool`), and every
    (alpha, N) is a blend and a regrouping of cached numbers. Its bias grows like alpha, its
    variance changes with alpha too. The raw MSE = |bias|^2 + variance would reward a critic
    that merely shrinks the estimates (the zero estimator scores |grad J|^2); a step size
    absorbs the scale, so the lab judges by the scale-optimal MSE min_c E|c g_hat - grad J|^2
    (`estimators.scale_optimal_mse`), against reward-to-go's and the zero estimator's.

    mdp, logits: a tabular MDP (no horizon) and the policy; v_poor: (S,) the wrong table;
    n_trajectories_values: trajectories per estimate offered; pool: trajectories per seed.
    """

    ALPHAS = tuple(np.round(np.linspace(0.0, 1.0, 21), 2))
    N_TRAJECTORIES = (1, 3, 10, 30, 100)

    def __init__(self, mdp: TabularMDP, logits: np.ndarray, v_poor: np.ndarray,
                 n_trajectories_values: Sequence[int] = N_TRAJECTORIES, pool: int = 6000
                 ) -> None:
        check_table_mdp(mdp)
        check_positive_int("pool", pool)
        self.mdp, self.logits = mdp, gradient_logits(mdp, logits)
        v_poor = np.asarray(v_poor, dtype=float)
        if v_poor.shape != (mdp.n_states,):
            raise ValueError(f"v_poor: expected a table ({mdp.n_states},), got {v_poor.shape}")
        self.v_exact, self.v_poor = exact_values(mdp, self.logits).V, v_poor
        self.n_trajectories_values = positive_grid("n_trajectories_values",
                                                   n_trajectories_values)
        check_pool(pool, self.n_trajectories_values[-1], "n_trajectories_values")
        self.pool = pool
        self.exact = exact_policy_gradient(mdp, self.logits)
        self._pools = LRUCache(4)
        self._curves = LRUCache(16)
        self._plot: BlendPlot | None = None

    def blend(self, alpha: float) -> np.ndarray:
        """V_alpha = (1 - alpha) V^pi + alpha V_poor, (S,)."""
        return (1.0 - alpha) * self.v_exact + alpha * self.v_poor

    def _pool(self, seed: int) -> GradientPool:
        """The seed's per-trajectory gradients of reward-to-go, and of the TD advantage with
        V^pi and with V_poor (cached)."""
        check_seed(seed)

        def sample() -> GradientPool:
            pool = GradientPool.sample(self.mdp, self.logits, self.pool,
                                       np.random.default_rng(seed))
            pool.add("reward_to_go", "reward_to_go")
            pool.add("advantage_td", "advantage_td", critics=(self.v_exact, self.v_poor))
            return pool
        return self._pools.get(seed, sample)

    def _check(self, alpha: float, n_trajectories: int) -> None:
        check_alpha(alpha)
        check_offered("n_trajectories", n_trajectories, self.n_trajectories_values)

    def update(self, alpha: float, n_trajectories: int, seed: int = 0) -> BlendStats:
        """Statistics of reward-to-go and of advantage_td with V_alpha, N per estimate."""
        self._check(alpha, n_trajectories)
        pool = self._pool(seed)
        return BlendStats(float(alpha), n_trajectories,
                          pool.stats("reward_to_go", n_trajectories, self.exact),
                          pool.stats("advantage_td", n_trajectories, self.exact, alpha,
                                     name=f"advantage_td, alpha = {alpha:g}"))

    def curves(self, n_trajectories: int, seed: int = 0) -> dict[str, np.ndarray]:
        """Over the alpha grid: 'alpha', 'bias2' (|bias|^2), 'variance', 'mse' (raw) and
        'scale_optimal_mse' of the TD advantage; and, one number each, 'rtg_scale_optimal_mse'
        (reward-to-go's, it has no alpha) and 'zero_mse' (|grad J|^2). Cached."""
        def measure() -> dict[str, np.ndarray]:
            rows = [self.update(a, n_trajectories, seed).advantage_td for a in self.ALPHAS]
            rtg = self.update(0.0, n_trajectories, seed).reward_to_go
            return {"alpha": np.array(self.ALPHAS),
                    "bias2": np.array([s.bias_norm ** 2 for s in rows]),
                    "variance": np.array([s.variance for s in rows]),
                    "mse": np.array([s.mse for s in rows]),
                    "scale_optimal_mse": np.array([s.scale_optimal_mse for s in rows]),
                    "rtg_scale_optimal_mse": np.array(rtg.scale_optimal_mse),
                    "zero_mse": np.array(rtg.zero_mse)}
        return self._curves.get((n_trajectories, seed), measure)

    def _readout(self, stats: BlendStats) -> str:
        rtg, td = stats.reward_to_go, stats.advantage_td
        head = (f"{'weight':<30}{'|bias|':>8}{'variance':>18}{'cos with grad J':>18}"
                f"{'scale-opt. MSE':>18}")
        lines = [f"N = {stats.n_trajectories} trajectories per estimate, {td.n_repeats} "
                 f"estimates; V_alpha = (1 - {stats.alpha:g}) V^pi + {stats.alpha:g} V_poor", "",
                 head, "-" * len(head)]
        for label, s in (("reward-to-go", rtg), (f"TD advantage, alpha = {stats.alpha:g}", td)):
            lines.append(f"{label:<30}{s.bias_norm:>8.3g}"
                         f"{plus_minus(s.variance, s.variance_se):>18}"
                         f"{plus_minus(s.cosine, s.cosine_se):>18}"
                         f"{plus_minus(s.scale_optimal_mse, s.scale_optimal_mse_se):>18}")
        lines.append(f"{'zero estimator (no step)':<30}{'':>8}{0:>18}{0:>18}{td.zero_mse:>18.4g}")
        gap, gap_se = scale_optimal_mse_gap(td.estimates, rtg.estimates, self.exact)
        winner = ("neither, within 2 paired SE" if abs(gap) < 2 * gap_se else
                  "the TD advantage" if gap < 0 else "reward-to-go")
        lines += ["", f"|bias| / noise floor of the TD advantage: "
                      f"{td.bias_norm / max(td.noise_floor, 1e-300):.1f}   (about 1 or less: no "
                      f"bias visible)",
                  f"lower scale-optimal MSE (the MSE once the step size picks the best scale): "
                  f"{winner} (TD - reward-to-go = {plus_minus(gap, gap_se)}, paired: the same "
                  f"trajectories)"]
        return "\n".join(lines)

    def readout(self, alpha: float, n_trajectories: int, seed: int = 0) -> str:
        """The numbers behind the plot, as text."""
        return self._readout(self.update(alpha, n_trajectories, seed))

    def render(self, alpha: float, n_trajectories: int, seed: int = 0) -> tuple[bytes, str]:
        """PNG bytes of the plot and the readout. Axes fixed on first use; redraws blit."""
        stats = self.update(alpha, n_trajectories, seed)
        if self._plot is None:
            self._plot = BlendPlot(self)
        return (self._plot.draw(stats, self.curves(n_trajectories, seed)),
                self._readout(stats))

    def widget(self, alpha: float = 0.0, n_trajectories: int = 10, seed: int = 0) -> W.VBox:
        """The interactive lab: alpha and N sliders, plot and readout."""
        self._check(alpha, n_trajectories)
        return slider_pair(self.render, (self.ALPHAS, alpha, "alpha"),
                           (self.n_trajectories_values, n_trajectories, "N"), seed=seed)


class BlendPlot(BlittedFigure):
    """The CriticBiasLab figure. Left: |bias|^2, variance and scale-optimal MSE of the TD
    advantage against alpha (log y); reward-to-go's scale-optimal MSE and the zero estimator's
    MSE |grad J|^2 horizontal lines, the current alpha a vertical one.
    Right: the estimates on the true gradient's two largest components, reward-to-go grey, the
    TD advantage coloured, the truth a star, the TD estimates' mean a cross. Axes fixed from
    the second smallest N (or the only one)."""

    def __init__(self, lab: CriticBiasLab, max_points: int = 300) -> None:
        super().__init__((9.5, 3.8), left=0.08, right=0.99, bottom=0.14, top=0.8, wspace=0.22)
        self.max_points = max_points
        ns = lab.n_trajectories_values
        scale_n = ns[min(1, len(ns) - 1)]
        self.comps = top_components(lab.exact)
        ax_c, ax_xy = self.axes
        values = []
        for n in ns:
            c = lab.curves(n)
            values += [c["variance"], c["scale_optimal_mse"], c["bias2"][1:],
                       [c["rtg_scale_optimal_mse"], c["zero_mse"]]]
        values = np.concatenate([np.ravel(v) for v in values])
        values = values[values > 0]
        ax_c.set(yscale="log", xlim=(-0.03, 1.03), ylim=(values.min() / 2, values.max() * 2),
                 xlabel="alpha  (0: V^pi, 1: V_poor)", ylabel="per estimate")
        self.lines = {}
        for key, style, label in (("bias2", "r-", "|bias|^2"), ("variance", "b-", "variance"),
                                  ("scale_optimal_mse", "k-", "scale-optimal MSE")):
            (self.lines[key],) = ax_c.plot([], [], style, lw=1.5, label=label, animated=True)
        self.rtg = ax_c.axhline(values.min(), color="0.5", ls="--", lw=1.2,
                                label="reward-to-go, scale-optimal MSE", animated=True)
        ax_c.axhline(float(lab.curves(ns[0])["zero_mse"]), color="k", ls=":", lw=1.2,
                     label="zero estimator: |grad J|^2")
        self.now = ax_c.axvline(0.0, color="tab:red", ls=":", lw=1, animated=True)
        ax_c.legend(fontsize=7, frameon=False, loc="lower left", bbox_to_anchor=(0, 1),
                    ncol=2, borderaxespad=0.2)
        self.c_title = ax_c.text(0.98, 0.03, "", transform=ax_c.transAxes, fontsize=8,
                                 ha="right", va="bottom", animated=True)
        both = lab.update(1.0, scale_n)
        clouds = np.concatenate([self._xy(both.reward_to_go.estimates),
                                 self._xy(both.advantage_td.estimates),
                                 self._xy(lab.update(0.0, scale_n).advantage_td.estimates),
                                 self._xy(lab.exact[None])])
        (x0, x1), (y0, y1) = axis_range(clouds[:, 0]), axis_range(clouds[:, 1])
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
        self.freeze()

    def _xy(self, estimates: np.ndarray) -> np.ndarray:
        return component_xy(estimates, self.comps)

    def artists(self, stats: BlendStats, curves: dict[str, np.ndarray]):
        """The data for one (alpha, N) on the fixed axes."""
        for key, line in self.lines.items():
            line.set_data(curves["alpha"], np.maximum(curves[key], 1e-300))
            yield line
        self.rtg.set_ydata([float(curves["rtg_scale_optimal_mse"])] * 2)
        self.now.set_xdata([stats.alpha] * 2)
        self.c_title.set_text(f"N = {stats.n_trajectories}, scale-optimal MSE: TD "
                              f"{stats.advantage_td.scale_optimal_mse:.3g}, reward-to-go "
                              f"{stats.reward_to_go.scale_optimal_mse:.3g}")
        yield from (self.rtg, self.now, self.c_title)
        self.cloud_rtg.set_offsets(self._xy(stats.reward_to_go.estimates[:self.max_points]))
        self.cloud_td.set_offsets(self._xy(stats.advantage_td.estimates[:self.max_points]))
        self.mean_td.set_data(*([v] for v in self._xy(stats.advantage_td.mean[None])[0]))
        yield from (self.cloud_rtg, self.cloud_td, self.mean_td)


# ---------------------------------------------------------------------------------------------
# The labs notebook 04 shows (the notebook and benchmarks/widgets.py both build them here)
# ---------------------------------------------------------------------------------------------

def _corridor() -> tuple[TabularMDP, np.ndarray]:
    """Notebook 04's MDP and policy: the 5-state corridor (slip 0.1), pi(right | s) = 0.73."""
    mdp = chain_mdp(n_states=5, slip=0.1)
    return mdp, np.tile([0.0, 1.0], (mdp.n_states, 1))


def notebook04_lab() -> CriticLab:
    """Notebook 04's fitting lab: the corridor, data sets of 100 trajectories."""
    return CriticLab(*_corridor(), n_trajectories=100)


def notebook04_bias_lab() -> CriticBiasLab:
    """Notebook 04's wrong-critic lab: the corridor, V_poor the full-gradient limit
    (`critic.residual_fixed_point`), a pool of 6,000 trajectories per seed."""
    mdp, logits = _corridor()
    return CriticBiasLab(mdp, logits, v_poor=residual_fixed_point(mdp, logits))
