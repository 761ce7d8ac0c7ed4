"""Notebook 06: what the critic buys the gradient of one update, measured two ways.

`checkpoint_gradients` measures, on CartPole-v1 at a trained policy and critic, the variance of
one update's gradient estimate and its cosine with a large-sample reference, for reward-to-go,
reward-to-go minus V and the TD advantage (notebook 06 and assets/batch_ac_sweep.py).

`CriticFitLab` is the notebook's lab: on a tabular MDP, a critic fitted by k sweeps of the
Bellman backup from V = 0, and the exact bias, the variance and the cosine with the exact
gradient of the TD-advantage estimator against reward-to-go and reward-to-go minus V.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Sequence

import ipywidgets as W
import numpy as np

from acteach._validate import check_positive_int, check_seed
from acteach.estimators import (GradientStats, estimates_from_batch, group_means, mean_cosine,
                                summarize, trajectory_gradients)
from acteach.labs._base import (BlittedFigure, LRUCache, check_offered, check_pool,
                                gradient_logits, positive_grid, slider_pair)
from acteach.display import table_view
from acteach.tabular import (TabularMDP, chain_mdp, cosine, exact_policy_gradient, exact_values,
                             policy_transitions, sample_trajectories, softmax_gradient,
                             softmax_policy, state_occupancy)

#: The weights compared, as `acteach.estimators` names them: REINFORCE's reward-to-go, the
#: same minus the critic's V(s_t), and the batch actor-critic's TD advantage.
WEIGHTS = ("reward_to_go", "baseline_v", "advantage_td")


def checkpoint_gradients(policy, critic, gamma: float, n_trajectories: int, n_estimates: int,
                         n_reference: int, seed: int, env_id: str = "CartPole-v1") -> dict:
    """Gradient statistics of one update's estimate at a policy and its critic.

    The reference is the mean over n_reference fresh episodes of reward-to-go minus V (unbiased
    for the gradient under discount option 1, as the trainers use, and the least noisy of the
    unbiased weights here). Then n_estimates x n_trajectories other episodes make n_estimates
    estimates of n_trajectories episodes each (one update's N) with each of `WEIGHTS`, all on
    the same episodes. The critic is frozen as given (the update's refit of V is not applied).

    -> {"episode_length": mean length, "reference_norm": |reference|, "reference_noise":
    its standard error's size sqrt(trace cov / n_reference), and per weight: "variance",
    "variance_se" (of one estimate, the trace of its covariance), "cosine", "cosine_se" (the
    mean cosine of one estimate with the reference), "mean_cosine" (the cosine of the
    estimates' mean with the reference: the direction the weight averages to)}.
    """
    from acteach.sampling import sample_episodes

    for name, value in (("n_trajectories", n_trajectories), ("n_estimates", n_estimates),
                        ("n_reference", n_reference)):
        check_positive_int(name, value)
    for name, value in (("n_estimates", n_estimates), ("n_reference", n_reference)):
        if value < 2:
            raise ValueError(f"{name}: expected at least 2 (a variance needs 2), got {value}")
    options = {"value": critic.predict, "discount_option": 1}
    ref_batch = sample_episodes(env_id, policy, n_reference, seed=seed)
    per_ref = trajectory_gradients(policy, ref_batch, "baseline_v", gamma, **options)
    reference = per_ref.mean(axis=0)
    batch = sample_episodes(env_id, policy, n_estimates * n_trajectories, seed=seed + 1)
    out = {"episode_length": float(np.mean(batch.lengths)),
           "reference_norm": float(np.linalg.norm(reference)),
           "reference_noise": float(np.sqrt(per_ref.var(axis=0, ddof=1).sum() / n_reference))}
    for weight in WEIGHTS:
        more = {} if weight == "reward_to_go" else {"value": critic.predict}
        per = trajectory_gradients(policy, batch, weight, gamma, discount_option=1, **more)
        estimates = group_means(per, n_trajectories)
        stats = summarize(weight, estimates, reference, n_trajectories)
        cos, cos_se = mean_cosine(estimates, reference)
        out[weight] = {"variance": stats.variance, "variance_se": stats.variance_se,
                       "cosine": cos, "cosine_se": cos_se,
                       "mean_cosine": cosine(stats.mean, reference)}
    return out


# ---------------------------------------------------------------------------------------------
# The lab: how well the critic is fitted against the bias and variance of the gradient
# ---------------------------------------------------------------------------------------------

@dataclass
class FitStats:
    """The CriticFitLab's numbers at one (k, N). value: (S,) the critic V_k; value_error: its
    RMS error to V^pi over the states, weighted by the policy's visits; stats: weight name ->
    GradientStats of N-trajectory estimates against the exact gradient; bias: weight name ->
    the exact |E[estimate] - grad J| (0 for the two unbiased weights); cosine: weight name ->
    (mean cosine of one estimate with grad J, its SE)."""

    sweeps: int
    n_trajectories: int
    value: np.ndarray
    value_error: float
    stats: dict[str, GradientStats]
    bias: dict[str, float]
    cosine: dict[str, tuple[float, float]]


class CriticFitLab:
    """How well the critic is fitted, against what the actor-critic gradient gets from it.

    The critic V_k is k sweeps of the Bellman backup from V_0 = 0, V_{k+1} = r_pi + gamma
    P_pi V_k (each sweep is one step of fitting V toward its target on infinite data; V_k -> V^pi).
    Three weights share one pool of trajectories per seed: reward-to-go (REINFORCE, no critic),
    reward-to-go minus V_k(s_t) (unbiased for every V_k) and the TD advantage
    r + gamma V_k(s') - V_k(s) (the batch actor-critic's; unbiased only at V^pi).

    Each weight is affine in V, so a trajectory's gradient with V_k is its gradient with V = 0
    plus sum_s V_k(s) times the change that V = e_s makes: per seed the lab computes those
    S + 1 gradients once, and every (k, N) is a contraction and a regrouping. The TD estimate's
    expectation is exact (`softmax_gradient` of r + gamma P V_k), so its bias is exact; the
    variances and cosines are measured on the pool, with their standard errors.

    mdp (no horizon), logits: the MDP and the (S, A) logits of the policy; sweeps: the k
    offered; n_trajectories_values: trajectories per estimate offered; pool: per seed.
    """

    SWEEPS = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
    N_TRAJECTORIES = (1, 3, 10, 30)
    LABELS = {"reward_to_go": "reward-to-go (REINFORCE)", "baseline_v": "reward-to-go - V_k(s)",
              "advantage_td": "TD advantage (actor-critic)"}

    def __init__(self, mdp: TabularMDP, logits: np.ndarray,
                 sweeps: Sequence[int] = SWEEPS,
                 n_trajectories_values: Sequence[int] = N_TRAJECTORIES, pool: int = 6000
                 ) -> None:
        if mdp.horizon is not None:
            raise ValueError(f"mdp: expected an MDP without a horizon (V is one table), got "
                             f"horizon {mdp.horizon}")
        self.mdp, self.logits = mdp, gradient_logits(mdp, logits)
        if not sweeps or any(isinstance(k, bool) or not isinstance(k, numbers.Integral)
                             or k < 0 for k in sweeps):
            raise ValueError(f"sweeps: expected integers >= 0 (at least one), got {sweeps!r}")
        self.sweeps = tuple(sorted(int(k) for k in sweeps))
        self.n_trajectories_values = positive_grid("n_trajectories_values",
                                                   n_trajectories_values)
        check_pool(pool, self.n_trajectories_values[-1], "n_trajectories_values")
        self.pool = pool
        pi = softmax_policy(self.logits)
        self.exact = exact_policy_gradient(mdp, self.logits)
        self.v_exact = exact_values(mdp, self.logits).V
        self.visits = state_occupancy(mdp, self.logits)
        live = ~mdp.terminal if mdp.terminal is not None else np.ones(mdp.n_states, bool)
        P_pi, r_pi = policy_transitions(mdp, pi), (pi * mdp.R).sum(axis=1)
        values = [np.zeros(mdp.n_states)]
        for _ in range(self.sweeps[-1]):
            values.append(live * (r_pi + mdp.gamma * P_pi @ values[-1]))
        self.values = {k: values[k] for k in self.sweeps}
        self._pi, self._live = pi, live
        self._pools = LRUCache(4)
        self._curves = LRUCache(16)
        self._plot: FitPlot | None = None

    def td_expectation(self, value: np.ndarray) -> np.ndarray:
        """E[TD-advantage estimate] with the critic `value` (S,): the softmax contraction of
        r(s, a) + gamma E[V(s')] (terminal V = 0) minus its pi-average. -> (S, A)."""
        q = self.mdp.R + self.mdp.gamma * self.mdp.P @ (self._live * value)
        adv = q - (self._pi * q).sum(axis=1, keepdims=True)
        return softmax_gradient(self.visits, self._pi, adv)

    def _basis(self, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per weight: the per-trajectory gradients with V = 0 (M, S, A) and the change each
        unit table e_s makes (S, M, S, A); reward-to-go has no change (None). Cached per seed."""
        check_seed(seed)

        def compute() -> dict:
            rng = np.random.default_rng(seed)
            batch = sample_trajectories(self.mdp, self.logits, self.pool, rng)

            def per_trajectory(method: str, **options) -> np.ndarray:
                return estimates_from_batch(self.mdp, self.logits, batch, method, 1,
                                            **options)[0]
            out = {"reward_to_go": (per_trajectory("reward_to_go"), None)}
            S = self.mdp.n_states
            for method in ("baseline_v", "advantage_td"):
                at_zero = per_trajectory(method, value=np.zeros(S))
                change = np.stack([per_trajectory(method, value=np.eye(S)[s]) - at_zero
                                   for s in range(S)])
                out[method] = (at_zero, change)
            return out
        return self._pools.get(seed, compute)

    def _check(self, sweeps: int, n_trajectories: int) -> None:
        check_offered("sweeps", sweeps, self.sweeps)
        check_offered("n_trajectories", n_trajectories, self.n_trajectories_values)

    def update(self, sweeps: int, n_trajectories: int, seed: int = 0) -> FitStats:
        """The critic V_k (k = sweeps) and the three weights' statistics, N per estimate."""
        self._check(sweeps, n_trajectories)
        value = self.values[sweeps]
        stats, bias, cos = {}, {}, {}
        for method, (at_zero, change) in self._basis(seed).items():
            per = at_zero if change is None else at_zero + np.tensordot(value, change, axes=1)
            estimates = group_means(per, n_trajectories)
            stats[method] = summarize(method, estimates, self.exact, n_trajectories)
            cos[method] = mean_cosine(estimates, self.exact)
            bias[method] = (float(np.linalg.norm(self.td_expectation(value) - self.exact))
                            if method == "advantage_td" else 0.0)
        error = float(np.sqrt(np.average((value - self.v_exact) ** 2, weights=self.visits)))
        return FitStats(sweeps, n_trajectories, value, error, stats, bias, cos)

    def curves(self, n_trajectories: int, seed: int = 0) -> dict[str, np.ndarray]:
        """Over the offered k: 'error' (V_k's RMS error), and per weight '<name> variance',
        '<name> cosine' and '<name> bias2' (exact |bias|^2). Cached."""
        def measure() -> dict[str, np.ndarray]:
            rows = [self.update(k, n_trajectories, seed) for k in self.sweeps]
            out = {"error": np.array([r.value_error for r in rows])}
            for method in WEIGHTS:
                out[f"{method} variance"] = np.array([r.stats[method].variance for r in rows])
                out[f"{method} cosine"] = np.array([r.cosine[method][0] for r in rows])
                out[f"{method} bias2"] = np.array([r.bias[method] ** 2 for r in rows])
            return out
        return self._curves.get((n_trajectories, seed), measure)

    def _readout(self, fit: FitStats) -> str:
        rows = [[self.LABELS[m], fit.bias[m], (fit.stats[m].variance, fit.stats[m].variance_se),
                 fit.cosine[m], (fit.stats[m].scale_optimal_mse, fit.stats[m].scale_optimal_mse_se)]
                for m in WEIGHTS]
        table = table_view(rows, ["weight", "|bias| (exact)", "variance", "cosine with grad J",
                                  "scale-optimal MSE"]).text
        zero = fit.stats["reward_to_go"].zero_mse
        return (f"k = {fit.sweeps} sweeps: RMS error of V_k {fit.value_error:.3g}; "
                f"N = {fit.n_trajectories} trajectories per estimate, "
                f"{fit.stats['reward_to_go'].n_repeats} estimates\n\n{table}\n\n"
                f"zero estimator's MSE |grad J|^2 = {zero:.3g}; scale-optimal MSE = "
                "min_c E|c g_hat - grad J|^2,\nwhat is left once the step size picks the scale")

    def readout(self, sweeps: int, n_trajectories: int, seed: int = 0) -> str:
        """The numbers behind the plot, as text."""
        return self._readout(self.update(sweeps, n_trajectories, seed))

    def render(self, sweeps: int, n_trajectories: int, seed: int = 0) -> tuple[bytes, str]:
        """PNG bytes of the plot and the readout. Axes fixed on first use; redraws blit."""
        fit = self.update(sweeps, n_trajectories, seed)
        if self._plot is None:
            self._plot = FitPlot(self)
        return self._plot.draw(fit, self.curves(n_trajectories, seed)), self._readout(fit)

    def widget(self, sweeps: int = 4, n_trajectories: int = 10, seed: int = 0) -> W.VBox:
        """The interactive lab: the critic's sweeps k and N, plot and readout."""
        self._check(sweeps, n_trajectories)
        return slider_pair(self.render, (self.sweeps, sweeps, "sweeps k"),
                           (self.n_trajectories_values, n_trajectories, "N"), seed=seed)


class FitPlot(BlittedFigure):
    """The CriticFitLab figure, both panels against the critic's sweeps k (V_0 = 0 left, V^pi
    at the right end). Left (log y): the variance of one estimate for each weight and the TD
    estimate's exact |bias|^2. Right: the mean cosine of one estimate with grad J for each
    weight. A dotted line marks the current k."""

    COLORS = {"reward_to_go": "0.45", "baseline_v": "tab:blue", "advantage_td": "tab:orange"}

    def __init__(self, lab: CriticFitLab) -> None:
        super().__init__((9.5, 3.4), left=0.08, right=0.99, bottom=0.16, top=0.88, wspace=0.22)
        ax_v, ax_c = self.axes
        x = np.array(lab.sweeps, dtype=float)
        values = []
        for n in lab.n_trajectories_values:
            c = lab.curves(n)
            values += [c[f"{m} variance"] for m in WEIGHTS] + [c["advantage_td bias2"]]
        values = np.concatenate(values)
        values = values[values > 0]
        ax_v.set(yscale="log", xlim=(x[0] - 0.5, x[-1] + 0.5),
                 ylim=(values.min() / 2, values.max() * 2),
                 xlabel="critic: sweeps k of the Bellman backup from V = 0",
                 ylabel="per estimate")
        ax_c.set(xlim=ax_v.get_xlim(), ylim=(-0.05, 1.0), xlabel=ax_v.get_xlabel(),
                 ylabel="mean cosine with grad J")
        self.lines = {}
        for method in WEIGHTS:
            color, label = self.COLORS[method], CriticFitLab.LABELS[method]
            (self.lines[f"{method} variance"],) = ax_v.plot(
                [], [], "-", color=color, lw=1.5, label=f"variance, {label}", animated=True)
            (self.lines[f"{method} cosine"],) = ax_c.plot(
                [], [], "o-", ms=3, color=color, lw=1.5, label=label, animated=True)
        (self.lines["advantage_td bias2"],) = ax_v.plot(
            [], [], "--", color=self.COLORS["advantage_td"], lw=1.5,
            label="|bias|^2, TD advantage (exact)", animated=True)
        self.now = [ax.axvline(0.0, color="tab:red", ls=":", lw=1, animated=True)
                    for ax in self.axes]
        ax_v.legend(fontsize=7, frameon=False, loc="lower left")
        ax_c.legend(fontsize=7, frameon=False, loc="lower right")
        self.title = ax_v.set_title("", fontsize=9, animated=True)
        self.x = x
        self.freeze()

    def artists(self, fit: FitStats, curves: dict[str, np.ndarray]):
        """The data for one (k, N) on the fixed axes."""
        for key, line in self.lines.items():
            line.set_data(self.x, np.maximum(curves[key], 1e-300) if "cosine" not in key
                          else curves[key])
            yield line
        for line in self.now:
            line.set_xdata([fit.sweeps] * 2)
            yield line
        self.title.set_text(f"k = {fit.sweeps}, N = {fit.n_trajectories}: RMS error of V_k "
                            f"{fit.value_error:.3g}")
        yield self.title


def notebook06_lab() -> CriticFitLab:
    """Notebook 06's lab: the corridor of notebooks 01-05 (slip 0.1), pi(right | s) = 0.73,
    a pool of 6,000 trajectories per seed."""
    mdp = chain_mdp(n_states=5, slip=0.1)
    return CriticFitLab(mdp, np.tile([0.0, 1.0], (mdp.n_states, 1)))
