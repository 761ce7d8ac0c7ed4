"""The n-step / GAE lab of notebook 09: bias, variance and MSE of the n-step advantage and of
GAE over lam and over n, with a critic between the exact V^pi and a wrong one, each setting
judged by what a step uses: the scale-optimal MSE min_c E|c g_hat - grad J|^2 (a step size
absorbs the scale of an estimate) and the expected cosine with grad J, against the zero
estimator's MSE |grad J|^2.

Both weights are discounted sums of TD errors delta_t = r_t + gamma V(s_{t+1}) - V(s_t): GAE
sums all of the episode's with weights (gamma lam)^k, the n-step advantage the first n with
gamma^k. The exact bias of each comes from `decomposition.mean_weight` (E[w_t | s_t, a_t])
contracted with the softmax score (`tabular.softmax_gradient`); the variance is measured on a
pool of trajectories (`estimators.GradientPool`).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Sequence

import ipywidgets as W
import numpy as np
from matplotlib.collections import LineCollection

from acteach._validate import check_finite, check_positive_int, check_seed
from acteach.critic import check_table_mdp, value_error, visit_distribution
from acteach.decomposition import mean_weight
from acteach.estimators import GradientPool, GradientStats
from acteach.labs._base import (BlittedFigure, LRUCache, check_alpha, check_pool, gradient_logits,
                                lab_box, slider)
from acteach.plotting import plus_minus
from acteach.tabular import (TabularMDP, chain_mdp, exact_policy_gradient,
                             exact_values, softmax_gradient, softmax_policy, state_occupancy)


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
    """n-step returns and GAE with a wrong critic: bias, variance and MSE over lam and over n.

    With the exact V^pi every lam and every n is unbiased and only the variance changes (on the
    course's MDPs it grows towards lam = 1 and n = inf); with a wrong V the short sums inherit
    V's error (bias), while lam = 1 and n = inf are the return minus a baseline: unbiased, and
    the noisiest. The critic is V_alpha = (1 - alpha) V^pi + alpha V_wrong, and the best lam or
    n moves with alpha and with N.

    "Best" is the lowest scale-optimal MSE (`GradientStats.scale_optimal_mse`), not the raw MSE:
    a step size rescales any estimate, so an estimator that shrinks toward 0 gains nothing, and
    the zero estimator's MSE |grad J|^2 (`zero_mse`) is the line every setting must beat.

    The weights are affine in V, so for the same trajectories the per-trajectory gradient at
    alpha is (1 - alpha) g(V^pi) + alpha g(V_wrong). Per seed the lab samples `pool`
    trajectories once and computes both ends for every lam and every n (common random numbers);
    a slider move only blends and regroups cached numbers, and the plot is blitted. The |bias|^2
    curves are exact (`expected_gradient`). n = inf is computed as GAE with lam = 1: on a
    tabular batch the two are the same numbers.

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
        self.mdp, self.logits = mdp, gradient_logits(mdp, logits)
        self.v_exact = exact_values(mdp, self.logits).V
        self.v_wrong = (np.zeros(mdp.n_states) if v_wrong is None
                        else np.asarray(v_wrong, dtype=float))
        if self.v_wrong.shape != (mdp.n_states,):
            raise ValueError(f"v_wrong: expected a table ({mdp.n_states},), "
                             f"got {self.v_wrong.shape}")
        check_finite("v_wrong", self.v_wrong)
        self.lams = _increasing("lams", lams, real=True)
        finite = [n for n in n_values if n is not None and n != "inf"]
        self.n_values = _increasing("n_values", finite) + ((None,) if len(finite) < len(n_values)
                                                           else ())
        if len(n_values) - len(finite) > 1:
            raise ValueError("n_values: expected inf (None) at most once")
        self.n_trajectories_values = _increasing("n_trajectories_values", n_trajectories_values)
        check_pool(pool, self.n_trajectories_values[-1], "n_trajectories_values")
        self.pool = pool
        self.exact = exact_policy_gradient(mdp, self.logits)
        self.visits = visit_distribution(mdp, self.logits)
        self.settings = [("gae", lam) for lam in self.lams] + [("n_step", n)
                                                               for n in self.n_values]
        self._expected = {s: (self.expected_gradient(s, 0.0), self.expected_gradient(s, 1.0))
                          for s in self.settings}
        self.zero_mse = float(np.sum(self.exact ** 2))   # the zero estimator's MSE, |grad J|^2
        self._pools, self._stats = LRUCache(3), LRUCache(4)
        self._plot: LambdaPlot | None = None

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
        option 2, as the lab's estimates): the softmax-score contraction of
        q(s, a) = E[w_t | s_t = s, a_t = a] (`decomposition.mean_weight`) minus its pi-average.
        With V^pi (alpha = 0) it is grad J."""
        method, x = setting
        options = {"lam": x} if method == "gae" else {"n": x}
        q = mean_weight(self.mdp, self.logits, self.blend(alpha), **options)
        pi = softmax_policy(self.logits)
        return softmax_gradient(state_occupancy(self.mdp, self.logits), pi,
                                q - (pi * q).sum(axis=1, keepdims=True))

    def bias2(self, setting: tuple, alpha: float) -> float:
        """|E[g_hat] - grad J|^2 with V_alpha, exact (the expectation is affine in alpha)."""
        at_exact, at_wrong = self._expected[setting]
        mean = (1.0 - alpha) * at_exact + alpha * at_wrong
        return float(np.sum((mean - self.exact) ** 2))

    # -- the pool of a seed -------------------------------------------------------------------

    @staticmethod
    def _method(setting: tuple) -> tuple[str, dict]:
        """The estimator method and options of a setting; n = inf is GAE with lam = 1."""
        method, x = setting
        if method == "n_step" and x is None:
            return "gae", {"lam": 1.0}
        return method, {"lam": x} if method == "gae" else {"n": x}

    def _key(self, setting: tuple) -> str:
        """The pool's label of a setting's weight (n = inf shares GAE lam = 1's)."""
        method, options = self._method(setting)
        return f"{method} {options}"

    def _pool(self, seed: int) -> GradientPool:
        """The seed's trajectories, and per setting the per-trajectory gradients with V^pi and
        with V_wrong (cached, the last 3 seeds)."""
        def sample() -> GradientPool:
            pool = GradientPool.sample(self.mdp, self.logits, self.pool,
                                       np.random.default_rng(seed))
            for key, (method, options) in {self._key(s): self._method(s)
                                           for s in self.settings}.items():
                pool.add(key, method, critics=(self.v_exact, self.v_wrong), by_length=True,
                         **options)
            return pool
        return self._pools.get(seed, sample)

    def batch(self, seed: int = 0):
        """The trajectories of a seed's pool (estimate r uses trajectories r N .. r N + N - 1)."""
        check_seed(seed)
        return self._pool(seed).batch

    def _all_stats(self, alpha: float, n_trajectories: int, seed: int
                   ) -> dict[tuple, GradientStats]:
        """setting -> GradientStats at (alpha, N, seed), every setting (cached)."""
        def measure() -> dict[tuple, GradientStats]:
            pool = self._pool(seed)
            return {s: pool.stats(self._key(s), n_trajectories, self.exact, alpha,
                                  name=self.label(s))
                    for s in self.settings}
        return self._stats.get((float(alpha), n_trajectories, seed), measure)

    # -- what the sliders ask -------------------------------------------------------------------

    def _check(self, alpha: float, lam: float, n, n_trajectories: int, seed: int
               ) -> tuple[float, int | None]:
        """The grid's lam and n (None for inf), or a ValueError naming the bad argument."""
        check_alpha(alpha)
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
        check_seed(seed)
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
        'bias2' (exact), 'variance', 'variance_se', 'mse', 'mse_se', 'scale_optimal_mse',
        'scale_optimal_mse_se', 'cosine', 'cosine_se', 'bias_norm' (measured), 'noise_floor'},
        each an array over the grid."""
        self._check(alpha, self.lams[0], self.n_values[0], n_trajectories, seed)
        stats = self._all_stats(alpha, n_trajectories, seed)
        out = {}
        for method, grid in (("gae", self.lams), ("n_step", self.n_values)):
            rows = [stats[method, x] for x in grid]
            out[method] = {"x": np.array(grid, dtype=object if method == "n_step" else float),
                           "bias2": np.array([self.bias2((method, x), alpha) for x in grid])}
            for f in ("variance", "variance_se", "mse", "mse_se", "scale_optimal_mse",
                      "scale_optimal_mse_se", "cosine", "cosine_se", "bias_norm", "noise_floor"):
                out[method][f] = np.array([getattr(s, f) for s in rows])
        return out

    def best(self, alpha: float, n_trajectories: int, seed: int = 0) -> tuple[float, int | None]:
        """(the lam, the n) of the grids with the lowest scale-optimal MSE: the best estimate
        once the step size has chosen its scale."""
        c = self.curves(alpha, n_trajectories, seed)
        return (self.lams[int(np.argmin(c["gae"]["scale_optimal_mse"]))],
                self.n_values[int(np.argmin(c["n_step"]["scale_optimal_mse"]))])

    def _readout(self, stats: LambdaStats) -> str:
        a, N = stats.alpha, stats.n_trajectories
        err = value_error(self.blend(a), self.v_exact, self.visits)
        rows = [(f"GAE lam = {stats.lam:g}", stats.gae, stats.gae_bias2),
                (f"n-step n = {'inf' if stats.n is None else stats.n}", stats.n_step,
                 stats.n_step_bias2)]
        head = (f"{'weight':<20}{'|bias|^2 exact':>15}{'variance':>20}{'MSE':>20}"
                f"{'scale-optimal MSE':>20}{'cosine with grad J':>20}")
        lines = [f"V_alpha = (1 - {a:g}) V^pi + {a:g} V_wrong: RMS error to V^pi {err:.3g} "
                 f"(visit-weighted; V_wrong's: "
                 f"{value_error(self.v_wrong, self.v_exact, self.visits):.3g})",
                 f"N = {N} trajectories per estimate, {stats.gae.n_repeats} estimates from one "
                 f"pool of {self.pool} (seed {stats.seed});  |grad J|^2 = "
                 f"{self.zero_mse:.4g} (the zero estimator's MSE)", "", head, "-" * len(head)]
        for label, s, b2 in rows:
            lines.append(f"{label:<20}{b2:>15.4g}{plus_minus(s.variance, s.variance_se):>20}"
                         f"{plus_minus(s.mse, s.mse_se):>20}"
                         f"{plus_minus(s.scale_optimal_mse, s.scale_optimal_mse_se):>20}"
                         f"{plus_minus(s.cosine, s.cosine_se):>20}")
        best_lam, best_n = self.best(a, N, stats.seed)
        stats_all = self._all_stats(a, N, stats.seed)
        lo_gae, lo_n = stats_all["gae", best_lam], stats_all["n_step", best_n]
        lines += ["", f"lowest scale-optimal MSE at N = {N}: GAE at lam = {best_lam:g} "
                      f"({plus_minus(lo_gae.scale_optimal_mse, lo_gae.scale_optimal_mse_se)}), "
                      f"n-step at n = {'inf' if best_n is None else best_n} "
                      f"({plus_minus(lo_n.scale_optimal_mse, lo_n.scale_optimal_mse_se)})"]
        return "\n".join(lines)

    def readout(self, alpha: float, lam: float, n: int | str | None, n_trajectories: int,
                seed: int = 0) -> str:
        """The numbers behind the plot, as text."""
        return self._readout(self.update(alpha, lam, n, n_trajectories, seed))

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
        best = {k: int(np.argmin(c[k]["scale_optimal_mse"])) for k in c}
        titles = {"gae": f"lam = {stats.lam:g}: scale-optimal MSE "
                         f"{stats.gae.scale_optimal_mse:.3g}, cosine {stats.gae.cosine:.2f}",
                  "n_step": f"n = {'inf' if stats.n is None else stats.n}: scale-optimal MSE "
                            f"{stats.n_step.scale_optimal_mse:.3g}, cosine "
                            f"{stats.n_step.cosine:.2f}   (alpha = {stats.alpha:g}, N = "
                            f"{stats.n_trajectories})"}
        return self._plot.draw(c, current, best, titles), self._readout(stats)

    def _make_plot(self) -> LambdaPlot:
        ends = [self._all_stats(a, 1, 0) for a in (0.0, 1.0)]
        variance = np.array([s.variance for e in ends for s in e.values()])
        top = max(s.mse + 2 * s.mse_se for e in ends for s in e.values())
        low = variance[variance > 0].min() / self.n_trajectories_values[-1] / 3.0
        return LambdaPlot(self.lams, ["inf" if n is None else str(n) for n in self.n_values],
                          (low, top * 2.0), self.zero_mse)

    def widget(self, alpha: float = 1.0, lam: float = 0.9, n: int | str | None = 5,
               n_trajectories: int = 10, seed: int = 0) -> W.VBox:
        """The interactive lab: alpha, N, lam and n sliders; the two panels and the readout."""
        lam, n = self._check(alpha, lam, n, n_trajectories, seed)
        alphas = sorted({*self.ALPHAS, float(alpha)})
        n_options = [("inf" if v is None else str(v), "inf" if v is None else v)
                     for v in self.n_values]
        return lab_box([[slider(alphas, float(alpha), "alpha"),
                         slider(self.n_trajectories_values, n_trajectories, "N")],
                        [slider(self.lams, lam, "lam"),
                         slider(n_options, "inf" if n is None else n, "n")]],
                       lambda alpha, n_traj, lam, n: self.render(alpha, lam, n, n_traj, seed))


def _increasing(name: str, values: Sequence, real: bool = False) -> tuple:
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


class LambdaPlot(BlittedFigure):
    """The lab's figure: two panels on one log y axis, GAE over a grid of lam (left) and the
    n-step advantage over a grid of n (right), x = the grid's index labelled with its value. In
    each: |bias|^2 (exact, red), the variance of one estimate (measured, blue), the MSE (measured,
    black) and the scale-optimal MSE (measured, green, thick: the criterion), with bars of +- one
    standard error; the zero estimator's MSE a grey dashed line; the current setting a vertical
    line, the lowest scale-optimal MSE a star. Values below the axis (a zero bias) sit on its
    floor.

    lams: (L,) the lam grid; n_labels: (K,) the labels of the n grid ("1", ..., "inf");
    y_range: (lowest, highest) value to show, which fixes the y axis; zero_mse: |grad J|^2.
    """

    KEYS = ("gae", "n_step")

    def __init__(self, lams: Sequence[float], n_labels: Sequence[str],
                 y_range: tuple[float, float], zero_mse: float) -> None:
        lo, hi = float(y_range[0]), float(y_range[1])
        if not 0 < lo < hi:
            raise ValueError(f"y_range: expected 0 < lowest < highest, got {y_range!r}")
        super().__init__((9.5, 3.6), sharey=True, left=0.07, right=0.99, bottom=0.15, top=0.8,
                         wspace=0.05)
        self.floor = lo
        ticks = ([f"{lam:g}" for lam in lams], [str(n) for n in n_labels])
        xlabels = ("GAE lam   (0: TD advantage, 1: Monte Carlo)",
                   "n-step n   (1: TD advantage, inf: Monte Carlo)")
        self.x, self.art = {}, {}
        for key, ax, labels, xlabel in zip(self.KEYS, self.axes, ticks, xlabels):
            x = self.x[key] = np.arange(len(labels))
            ax.set_xticks(x, labels, fontsize=8)
            ax.set(xlim=(-0.4, len(x) - 0.6), xlabel=xlabel, yscale="log", ylim=(lo, hi))
            ax.axhline(zero_mse, color="0.5", ls="--", lw=1.2, label="zero estimator: |grad J|^2")
            art = self.art[key] = {}
            (art["bias2"],) = ax.plot([], [], "-", color="tab:red", lw=1.8,
                                      label="|bias|^2 (exact; 0 sits on the floor)",
                                      animated=True)
            (art["mse"],) = ax.plot([], [], "s-", ms=3, color="k", lw=1.0,
                                    label="MSE = |bias|^2 + variance", animated=True)
            (art["scaled"],) = ax.plot([], [], "D-", ms=5, color="tab:green", lw=2.4,
                                       label="scale-optimal MSE", animated=True)
            (art["variance"],) = ax.plot([], [], "o-", ms=3, color="tab:blue", lw=1.1,
                                         label="variance", animated=True)
            for name, color in (("variance_bars", "tab:blue"), ("mse_bars", "k"),
                                ("scaled_bars", "tab:green")):
                art[name] = LineCollection([], colors=color, lw=1.0, animated=True)
                ax.add_collection(art[name])
            (art["best"],) = ax.plot([], [], "*", ms=13, color="gold", mec="k",
                                     label="lowest scale-optimal MSE", animated=True)
            art["now"] = ax.axvline(0, color="tab:red", ls=":", lw=1.2, animated=True)
            art["title"] = ax.text(0.02, 0.97, "", transform=ax.transAxes, fontsize=8,
                                   va="top", animated=True)
        self.axes[0].set_ylabel("per estimate (squared norm)")
        self.axes[0].legend(fontsize=8, frameon=False, loc="lower left", bbox_to_anchor=(0, 1),
                            ncol=4, borderaxespad=0.2)
        self.freeze()

    def _bars(self, x: np.ndarray, y: np.ndarray, se: np.ndarray) -> list:
        low, high = np.maximum(y - se, self.floor), np.maximum(y + se, self.floor)
        return [[(xi, a), (xi, b)] for xi, a, b in zip(x, low, high)]

    def artists(self, curves: dict, current: dict, best: dict, titles: dict):
        """Each argument is keyed by "gae" and "n_step": curves -> {"bias2", "variance",
        "variance_se", "mse", "mse_se", "scale_optimal_mse", "scale_optimal_mse_se"}, each an
        array over its grid; current, best -> an index into the grid; titles -> a line of
        text."""
        for key in self.KEYS:
            art, c, x = self.art[key], curves[key], self.x[key]
            for name in ("bias2", "variance", "mse"):
                art[name].set_data(x, np.maximum(c[name], self.floor))
            scaled = c["scale_optimal_mse"]
            art["scaled"].set_data(x, np.maximum(scaled, self.floor))
            art["variance_bars"].set_segments(self._bars(x, c["variance"], c["variance_se"]))
            art["mse_bars"].set_segments(self._bars(x, c["mse"], c["mse_se"]))
            art["scaled_bars"].set_segments(self._bars(x, scaled, c["scale_optimal_mse_se"]))
            art["best"].set_data([x[best[key]]], [max(scaled[best[key]], self.floor)])
            art["now"].set_xdata([current[key]] * 2)
            art["title"].set_text(titles[key])
            yield from (art[name] for name in ("now", "bias2", "mse_bars", "mse",
                                               "variance_bars", "variance", "scaled_bars",
                                               "scaled", "best", "title"))


def notebook09_lab() -> LambdaLab:
    """Notebook 09's lab: the 5-state corridor (slip 0.1) with pi(right | s) = 0.73, V_wrong = 0
    (a critic that has learned nothing), a pool of 6,000 trajectories per seed."""
    corridor = chain_mdp()
    return LambdaLab(corridor, np.tile([0.0, 1.0], (corridor.n_states, 1)),
                     np.zeros(corridor.n_states), pool=6000)
