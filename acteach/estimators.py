"""One policy-gradient estimator, many weights, and its statistics (backs every notebook, from
01).

Every estimator in the course is

    g_hat = (1/N) sum_n sum_t grad log pi(a_t | s_t) * w_t

and the methods differ only in the weight w_t. A method is a name in `METHODS` (`register`),
mapped to a weight function that turns a batch of trajectories into a (T, N) array of weights.

On a tabular MDP with a softmax table of logits, grad log pi(a|s) w.r.t. logits[s', b] is
1[s' = s] (1[a = b] - pi(b|s)), so the sum above is a weighted count of visits
(`score_weighted_sums`), and `gradient_statistics` can measure thousands of estimates against
`exact_policy_gradient`. The statistics: `GradientStats` (bias, variance and MSE with standard
errors, from `summarize`), `pure_noise_max_z` (the largest |z| noise alone gives), `mean_cosine`
(the direction of one estimate against a reference), and what a step uses, since a step size
absorbs an estimate's scale: `scale_optimal_mse` (the MSE at the best scale, against the zero
estimator's |grad J|^2; `scale_optimal_mse_gap` compares two on the same trajectories) and
`signal_to_noise` (along grad J); `GradientPool` regroups one pool of
per-trajectory gradients into estimates of any N (the labs). On a real env with a torch policy,
`trajectory_gradients` gives the same estimator's per-trajectory terms by autograd.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

from acteach._validate import (as_rng, check_discount_option, check_finite, check_positive_int,
                               check_flag, check_shape, check_size, check_unit_interval)
from acteach.advantages import gae, n_step_return, td_advantage
from acteach.baselines import batch_mean_baseline, optimal_constant_baseline, subtract_baseline
from acteach.q_values import exact_q_weights, mc_q_estimate, time_indexed
from acteach.returns import discounts, reward_to_go, total_return
from acteach.sampling import Batch
from acteach.tabular import (
    TabularMDP,
    check_logits,
    exact_policy_gradient,
    exact_values,
    row_cosines,
    sample_trajectories,
    softmax_policy,
    state_occupancy,
)

# ---------------------------------------------------------------------------------------------
# Weights: method name -> weight function
# ---------------------------------------------------------------------------------------------

WeightFunction = Callable[..., np.ndarray]   # (batch, context, **options) -> (T, N) weights


@dataclass
class Context:
    """What a weight function may use beyond the batch. On a real env only gamma is known; on a
    tabular MDP the MDP and the logits are there too (for exact Q and V), and an rng for methods
    that sample more. A method that spends environment steps beyond the batch (extra rollouts)
    adds them to `extra_steps`."""

    gamma: float
    mdp: TabularMDP | None = None
    logits: np.ndarray | None = None
    rng: np.random.Generator | None = None
    group_size: int = 1          # trajectories n*g .. n*g + g-1 form one estimate
    extra_steps: int = 0

    def tabular(self, method: str) -> tuple[TabularMDP, np.ndarray]:
        """The MDP and logits, or a ValueError if this method needs them and they are absent."""
        if self.mdp is None or self.logits is None:
            raise ValueError(f"method: {method!r} needs a tabular MDP (exact values or rollouts)")
        return self.mdp, self.logits

    def sampler(self, method: str) -> np.random.Generator:
        """The rng, or a ValueError: a method that samples more must be reproducible."""
        if self.rng is None:
            raise ValueError(f"rng: method {method!r} samples more trajectories; pass an rng")
        return self.rng


#: A per-parameter baseline: (b with the shape of the gradient, (T, N) weights y_t) such that
#: the estimate becomes  (1/N) sum sum score * w_t  -  b * (1/N) sum sum score * y_t.
Correction = Callable[..., tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Method:
    """A registered estimator: its weight function and the options it accepts, with defaults."""

    name: str
    weights: WeightFunction
    options: dict
    summary: str
    batch_dependent: bool = False   # True when a trajectory's weights use the other trajectories
    correction: Correction | None = None   # a per-parameter baseline (see Correction)


METHODS: dict[str, Method] = {}


def register(name: str, summary: str, batch_dependent: bool = False,
             correction: Correction | None = None, **options
             ) -> Callable[[WeightFunction], WeightFunction]:
    """Add a weight function to `METHODS` under `name`; keyword arguments are its option defaults.
    batch_dependent: the weights of one trajectory depend on the others of its estimate (a batch
    baseline); weight functions then see `ctx.group_size`. correction: a per-parameter baseline,
    called with the same arguments as the weight function."""
    def add(fn: WeightFunction) -> WeightFunction:
        METHODS[name] = Method(name, fn, options, summary, batch_dependent, correction)
        return fn
    return add


def _discount_option(ret: np.ndarray, gamma: float, discount_option: int) -> np.ndarray:
    """Option 2 multiplies the weight at step t by gamma^t (the true gradient of the discounted
    objective); option 1 leaves it out (what practice does)."""
    if check_discount_option(discount_option) == 2:
        return ret * discounts(len(ret), gamma)
    return ret


def discounted_weights(rew: np.ndarray, mask: np.ndarray, gamma: float,
                       discount_option: int) -> np.ndarray:
    """The weight of step t in the discounted policy gradient (notebook 05, exercise 5.1): the
    discounted reward-to-go sum_{t'>=t} gamma^(t'-t) r_t', times gamma^t under option 2 (then
    it is sum_{t'>=t} gamma^t' r_t', the rewards discounted from the episode's start), as it is
    under option 1; 0 on padded steps. Each column is one trajectory from t = 0.
    rew: (T, N) float, mask: (T, N) bool -> (T, N)."""
    return _discount_option(reward_to_go(rew, mask, gamma), gamma, discount_option)


@register("reinforce", "the whole return R(tau) weights every step")
def reinforce_weights(batch: Batch, ctx: Context) -> np.ndarray:
    """w_t = sum_t' gamma^t' r_t' for every valid t. -> (T, N)."""
    return total_return(batch.rew, batch.mask, ctx.gamma)[None, :] * batch.mask


@register("reward_to_go", "only the rewards from t on: Q_hat_t = sum_{t'>=t} r_t'",
          discount_option=2)
def reward_to_go_weights(batch: Batch, ctx: Context, discount_option: int) -> np.ndarray:
    """w_t = sum_{t'>=t} gamma^(t'-t) r_t' (times gamma^t under discount option 2). -> (T, N)."""
    return discounted_weights(batch.rew, batch.mask, ctx.gamma, discount_option)


@register("q_exact", "the exact Q^pi(s_t, a_t) in place of the reward-to-go",
          discount_option=2)
def q_exact_weights(batch: Batch, ctx: Context, discount_option: int) -> np.ndarray:
    """w_t = Q^pi(s_t, a_t), exactly (tabular only). -> (T, N)."""
    mdp, logits = ctx.tabular("q_exact")
    q = exact_q_weights(mdp, logits, batch.obs, batch.act, batch.mask)
    return _discount_option(q, ctx.gamma, discount_option)


@register("q_mc", "Q estimated by the mean of k fresh rollouts from (s_t, a_t)",
          k=1, discount_option=2)
def q_mc_weights(batch: Batch, ctx: Context, k: int, discount_option: int) -> np.ndarray:
    """w_t = mean return of k rollouts from (s_t, a_t) (tabular only; counts their steps)."""
    mdp, logits = ctx.tabular("q_mc")
    q, steps = mc_q_estimate(mdp, logits, batch.obs, batch.act, batch.mask, k,
                             ctx.sampler("q_mc"))
    ctx.extra_steps += steps
    return _discount_option(q, ctx.gamma, discount_option)


def _batch_mean_weights(batch: Batch, ctx: Context, discount_option: int,
                        leave_one_out: bool) -> np.ndarray:
    ret = reward_to_go(batch.rew, batch.mask, ctx.gamma)
    used = len(ret[0]) // ctx.group_size * ctx.group_size        # leftovers are in no estimate
    b = np.zeros(len(ret[0]))
    b[:used] = batch_mean_baseline(ret[0, :used], ctx.group_size, leave_one_out)  # R = Q_hat_0
    return _discount_option(subtract_baseline(ret, b, batch.mask), ctx.gamma, discount_option)


@register("baseline_mean", "reward-to-go minus the batch-average return (biased by O(1/N))",
          batch_dependent=True, discount_option=2)
def baseline_mean_weights(batch: Batch, ctx: Context, discount_option: int) -> np.ndarray:
    """w_t = Q_hat_t - (1/N) sum_m R(tau_m), the mean over the estimate's own N trajectories."""
    return _batch_mean_weights(batch, ctx, discount_option, leave_one_out=False)


@register("baseline_loo", "reward-to-go minus the average return of the other N-1 trajectories",
          batch_dependent=True, discount_option=2)
def baseline_loo_weights(batch: Batch, ctx: Context, discount_option: int) -> np.ndarray:
    """w_t = Q_hat_t - (1/(N-1)) sum_{m != n} R(tau_m): independent of tau_n, so unbiased."""
    return _batch_mean_weights(batch, ctx, discount_option, leave_one_out=True)


def _optimal_baseline(batch: Batch, ctx: Context, discount_option: int, pilot: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """b*_i = E[x_i y_i] / E[y_i^2] from an independent pilot batch (not counted in the steps)."""
    mdp, logits = ctx.tabular("baseline_optimal")
    check_positive_int("pilot", pilot)
    trial = sample_trajectories(mdp, logits, pilot, ctx.sampler("baseline_optimal"))
    pi, each = softmax_policy(logits), np.arange(pilot)
    x = score_weighted_sums(pi, trial, reward_to_go_weights(trial, ctx, discount_option),
                            each, pilot)
    unit = _discount_option(trial.mask.astype(float), ctx.gamma, discount_option)
    y = score_weighted_sums(pi, trial, unit, each, pilot)
    b = optimal_constant_baseline(x, y)
    return b, _discount_option(batch.mask.astype(float), ctx.gamma, discount_option)


@register("baseline_optimal", "reward-to-go minus the variance-minimising constant per parameter "
          "(from a pilot batch, not counted in the steps)",
          correction=_optimal_baseline, discount_option=2, pilot=5000)
def baseline_optimal_weights(batch: Batch, ctx: Context, discount_option: int,
                             pilot: int) -> np.ndarray:
    """w_t = Q_hat_t; the per-parameter baseline b* comes in through the correction."""
    return reward_to_go_weights(batch, ctx, discount_option)


@register("baseline_v_exact", "reward-to-go minus the exact V^pi(s_t)", discount_option=2)
def baseline_v_exact_weights(batch: Batch, ctx: Context, discount_option: int) -> np.ndarray:
    """w_t = Q_hat_t - V^pi(s_t) (tabular only). -> (T, N)."""
    mdp, logits = ctx.tabular("baseline_v_exact")
    v = time_indexed(exact_values(mdp, logits).V, mdp, batch.obs)
    ret = reward_to_go(batch.rew, batch.mask, ctx.gamma)
    return _discount_option(subtract_baseline(ret, v, batch.mask), ctx.gamma, discount_option)


@register("advantage_exact", "the exact advantage A^pi = Q^pi(s_t, a_t) - V^pi(s_t)",
          discount_option=2)
def advantage_exact_weights(batch: Batch, ctx: Context, discount_option: int) -> np.ndarray:
    """w_t = Q^pi(s_t, a_t) - V^pi(s_t) (tabular only). -> (T, N)."""
    mdp, logits = ctx.tabular("advantage_exact")
    values = exact_values(mdp, logits)
    q = time_indexed(values.Q, mdp, batch.obs, batch.act)
    v = time_indexed(values.V, mdp, batch.obs)
    return _discount_option(subtract_baseline(q, v, batch.mask), ctx.gamma, discount_option)


@register("baseline_action", "reward-to-go minus Q^pi(s_t, a_t): a baseline that depends on the "
          "action (biased, for demonstration)", discount_option=2)
def baseline_action_weights(batch: Batch, ctx: Context, discount_option: int) -> np.ndarray:
    """w_t = Q_hat_t - Q^pi(s_t, a_t): E[w_t | s_t, a_t] = 0, so the estimate's mean is 0, not
    the gradient. Shows why a baseline must not depend on a_t."""
    mdp, logits = ctx.tabular("baseline_action")
    q = time_indexed(exact_values(mdp, logits).Q, mdp, batch.obs, batch.act)
    ret = reward_to_go(batch.rew, batch.mask, ctx.gamma)
    return _discount_option(subtract_baseline(ret, q, batch.mask), ctx.gamma, discount_option)


@register("baseline_v", "reward-to-go minus a supplied V(s_t) (a fitted critic, or any table)",
          value=None, discount_option=2)
def baseline_v_weights(batch: Batch, ctx: Context, value, discount_option: int) -> np.ndarray:
    """w_t = Q_hat_t - V(s_t). value: a table (S,) for a tabular batch, or a function of the
    observations (T, N, ...) -> (T, N) (e.g. a fitted network)."""
    if value is None:
        raise ValueError("value: method 'baseline_v' needs value=, a table (S,) or a function "
                         "obs (T, N, ...) -> (T, N)")
    if callable(value):
        v = np.asarray(value(batch.obs), dtype=float)
    else:
        table = np.asarray(value, dtype=float)
        if ctx.mdp is None or table.shape != (ctx.mdp.n_states,):
            raise ValueError(f"value: expected a table (S,) of V(s) for a tabular MDP, or a "
                             f"function of the observations; got shape {table.shape}")
        check_finite("value", table)
        v = table[batch.obs]
    if v.shape != batch.mask.shape:
        raise ValueError(f"value: expected values of shape {batch.mask.shape} (T, N), got {v.shape}")
    check_finite("value", np.where(batch.mask, v, 0.0))
    ret = reward_to_go(batch.rew, batch.mask, ctx.gamma)
    return _discount_option(subtract_baseline(ret, np.asarray(v), batch.mask), ctx.gamma,
                            discount_option)


def _values_at(batch: Batch, ctx: Context, value, method: str) -> tuple[np.ndarray, np.ndarray]:
    """V(s_t) and V(s_{t+1}) at every step, (T, N) each, from `value`: None or "exact" = the
    exact V^pi (tabular only); a table (S,) or, for a finite horizon, (H + 1, S) indexed by the
    step; or a function of the observations (T, N, ...) -> (T, N), e.g. a fitted network."""
    if isinstance(value, str) and value != "exact":
        raise ValueError(f"value: expected None or 'exact' (the exact V^pi), a table or a "
                         f"function of the observations; got {value!r}")
    if value is None or isinstance(value, str):
        mdp, logits = ctx.tabular(method)
        value = exact_values(mdp, logits).V
    if callable(value):
        v, v_next = (np.asarray(value(o), dtype=float) for o in (batch.obs, batch.next_obs))
    else:
        table = np.asarray(value, dtype=float)
        S = ctx.mdp.n_states if ctx.mdp is not None else None
        H = ctx.mdp.horizon if ctx.mdp is not None else None
        if table.shape == (S,):
            v, v_next = table[batch.obs], table[batch.next_obs]
        elif H is not None and table.shape == (H + 1, S):
            t = np.broadcast_to(np.arange(len(batch.obs))[:, None], batch.obs.shape)
            v, v_next = table[t, batch.obs], table[t + 1, batch.next_obs]
        else:
            raise ValueError(f"value: expected a table (S,) or (H + 1, S) of V for a tabular "
                             f"MDP, or a function of the observations; got shape {table.shape}")
    for x in (v, v_next):
        if x.shape != batch.mask.shape:
            raise ValueError(f"value: expected values of shape {batch.mask.shape} (T, N), "
                             f"got {x.shape}")
    return v, v_next


@register("advantage_td", "the one-step TD advantage r + gamma V(s') - V(s) with a supplied V",
          value=None, discount_option=2)
def advantage_td_weights(batch: Batch, ctx: Context, value, discount_option: int) -> np.ndarray:
    """w_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t); value as in `_values_at`
    (None: the exact V^pi, which makes the estimator unbiased). -> (T, N)."""
    v, v_next = _values_at(batch, ctx, value, "advantage_td")
    adv = td_advantage(batch.rew, v, v_next, batch.terminated, batch.mask, ctx.gamma)
    return _discount_option(adv, ctx.gamma, discount_option)


@register("n_step", "the n-step advantage: n rewards, then gamma^n V(s_{t+n}), minus V(s_t)",
          n=4, value=None, discount_option=2)
def n_step_weights(batch: Batch, ctx: Context, n: int, value, discount_option: int
                   ) -> np.ndarray:
    """w_t = G^(n)_t - V(s_t) (`acteach.advantages.n_step_return`); value as in `_values_at`
    (None: the exact V^pi, which makes the estimator unbiased for every n). n = 1 is
    advantage_td; n >= the longest episode is the reward-to-go minus V(s_t). -> (T, N)."""
    v, v_next = _values_at(batch, ctx, value, "n_step")
    ret = n_step_return(batch.rew, v_next, batch.terminated, batch.truncated, batch.mask,
                        ctx.gamma, n)
    return _discount_option(subtract_baseline(ret, v, batch.mask), ctx.gamma, discount_option)


@register("gae", "the generalised advantage estimate: sum_k (gamma lam)^k delta_{t+k}",
          lam=0.95, value=None, discount_option=2)
def gae_weights(batch: Batch, ctx: Context, lam: float, value, discount_option: int
                ) -> np.ndarray:
    """w_t = A^GAE(gamma, lam)_t (`acteach.advantages.gae`); value as in `_values_at` (None:
    the exact V^pi, unbiased for every lam). lam = 0 is advantage_td; lam = 1 is the
    reward-to-go minus V(s_t), bootstrapped where an episode was cut. -> (T, N)."""
    v, v_next = _values_at(batch, ctx, value, "gae")
    adv = gae(batch.rew, v, v_next, batch.terminated, batch.truncated, batch.mask, ctx.gamma,
              lam)
    return _discount_option(adv, ctx.gamma, discount_option)


def method_options(method: str, options: dict) -> tuple[Method, dict]:
    """The registered method and its options with defaults filled in, or a ValueError."""
    if method not in METHODS:
        raise ValueError(f"method: unknown method {method!r}; expected one of {sorted(METHODS)}")
    spec = METHODS[method]
    unknown = set(options) - set(spec.options)
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: not an option of method {method!r} "
                         f"(its options: {sorted(spec.options) or 'none'})")
    return spec, {**spec.options, **options}


def method_weights(method: str, batch: Batch, ctx: Context, **options) -> np.ndarray:
    """The (T, N) weights of `method` on `batch`, after checking the method name and options."""
    spec, options = method_options(method, options)
    if spec.correction is not None:
        raise ValueError(f"method: {method!r} has a per-parameter baseline, not one weight per "
                         "step; use estimates_from_batch")
    return spec.weights(batch, ctx, **options)


# ---------------------------------------------------------------------------------------------
# The estimator on a tabular MDP
# ---------------------------------------------------------------------------------------------

def score_weighted_sums(pi: np.ndarray, batch: Batch, weights: np.ndarray,
                        group: np.ndarray, n_groups: int) -> np.ndarray:
    """sum over the trajectories n of each group of sum_t grad log pi(a_t|s_t) * w_t.

    pi: (S, A) policy; weights: (T, N); group: (N,) int, the estimate each trajectory belongs to
    (trajectories with a group outside [0, n_groups) are left out) -> (n_groups, S, A).
    With the softmax score, the sum is (weighted visits of (s, a)) - (weighted visits of s) * pi.
    """
    S, A = pi.shape
    N = batch.mask.shape[1]
    cells = np.flatnonzero(batch.mask & ((group >= 0) & (group < n_groups))[None, :])
    s, a, w = batch.obs.ravel()[cells], batch.act.ravel()[cells], weights.ravel()[cells]
    g = group[cells % N]
    visits_sa = np.bincount((g * S + s) * A + a, weights=w, minlength=n_groups * S * A)
    visits_s = np.bincount(g * S + s, weights=w, minlength=n_groups * S)
    return visits_sa.reshape(n_groups, S, A) - visits_s.reshape(n_groups, S, 1) * pi


def estimates_from_batch(mdp: TabularMDP, logits: np.ndarray, batch: Batch, method: str,
                         n_trajectories: int, rng: np.random.Generator | None = None,
                         **options) -> tuple[np.ndarray, int]:
    """Split a batch into R = batch size // n_trajectories estimates of n_trajectories each
    (trajectory n belongs to estimate n // n_trajectories; leftovers are unused).
    -> estimates (R, S, A), and the environment steps spent beyond the batch (extra rollouts)."""
    rng = None if rng is None else as_rng(rng)
    check_positive_int("n_trajectories", n_trajectories)
    logits = check_logits(mdp, logits)
    n_repeats = batch.mask.shape[1] // n_trajectories
    if n_repeats == 0:
        raise ValueError(f"n_trajectories: the batch holds {batch.mask.shape[1]} trajectories, "
                         f"fewer than n_trajectories = {n_trajectories}")
    spec, options = method_options(method, options)
    ctx = Context(mdp.gamma, mdp, logits, rng, group_size=n_trajectories)
    pi = softmax_policy(logits)
    group = np.arange(batch.mask.shape[1]) // n_trajectories
    sums = score_weighted_sums(pi, batch, spec.weights(batch, ctx, **options), group, n_repeats)
    if spec.correction is not None:
        b, y = spec.correction(batch, ctx, **options)
        sums -= b * score_weighted_sums(pi, batch, y, group, n_repeats)
    return sums / n_trajectories, ctx.extra_steps


def sample_estimates(mdp: TabularMDP, logits: np.ndarray, method: str, n_trajectories: int,
                     n_repeats: int, rng: np.random.Generator, **options
                     ) -> tuple[np.ndarray, float]:
    """n_repeats independent estimates, each from n_trajectories fresh trajectories, sampled
    in one batch. -> estimates (n_repeats, S, A) and the environment steps per estimate
    (the trajectories plus any extra rollouts)."""
    rng = as_rng(rng)
    check_positive_int("n_trajectories", n_trajectories)
    check_positive_int("n_repeats", n_repeats)
    check_size("n_repeats" if n_repeats > 1 else "n_trajectories",
               12.0 * n_trajectories * n_repeats, 8,
               f"{n_trajectories:,} x {n_repeats:,} trajectories")
    batch = sample_trajectories(mdp, logits, n_trajectories * n_repeats, rng)
    estimates, extra = estimates_from_batch(mdp, logits, batch, method, n_trajectories, rng,
                                            **options)
    return estimates, (batch.n_steps + extra) / n_repeats


def estimate_gradient(mdp: TabularMDP, logits: np.ndarray, n_trajectories: int, method: str,
                      rng: np.random.Generator, **options) -> np.ndarray:
    """g_hat = (1/N) sum_n sum_t grad log pi(a_t|s_t) * w_t from N = n_trajectories fresh
    trajectories, w given by `method` (see `METHODS`). -> (S, A), the shape of logits."""
    rng = as_rng(rng)
    estimates, _ = sample_estimates(mdp, logits, method, n_trajectories, 1, rng, **options)
    return estimates[0]


# ---------------------------------------------------------------------------------------------
# Statistics of many estimates against a reference
# ---------------------------------------------------------------------------------------------

@dataclass
class GradientStats:
    """Bias, variance and MSE of an estimator, from R independent estimates.

    estimates: (R, *shape) the estimates; reference: (*shape) the exact gradient (or, on a real
    env, a large-sample estimate). Each scalar comes with its standard error (`*_se`).
    variance is the total variance, the trace of the covariance of one estimate.
    noise_floor = sqrt(variance / R): the size ||bias|| would have from noise alone.
    What a step uses (a step size absorbs an estimate's scale, so judge by these, not by the
    raw MSE, which rewards shrinking): `cosine`, `scale_optimal_mse` (each with its SE), and
    `zero_mse`, the zero estimator's MSE, the line any estimator must beat.
    """

    method: str
    n_trajectories: int
    estimates: np.ndarray
    reference: np.ndarray
    mean: np.ndarray
    bias: np.ndarray
    bias_se: np.ndarray
    bias_norm: float
    noise_floor: float
    variance: float
    variance_se: float
    mse: float
    mse_se: float
    steps_per_estimate: float
    counts: np.ndarray | None = None

    @property
    def n_repeats(self) -> int:
        return len(self.estimates)

    @property
    def judged(self) -> np.ndarray:
        """(*shape) bool: the components `max_bias_z` judges: a standard error > 0 and, when
        `counts` is known (tabular), both sides of the component expected at least
        MIN_EXPECTED_COUNT times over all the trajectories."""
        ok = self.bias_se > 0
        if self.counts is not None:
            ok = ok & (self.counts >= MIN_EXPECTED_COUNT)
        return ok

    @property
    def max_bias_z(self) -> float:
        """The largest |bias| / standard error over the judged components (`judged`): ~N(0, 1)
        each if unbiased; compare with `pure_noise_max_z(judged.sum())`.

        A component (s, a) whose action a (or whose every other action) is so rare in s that
        it is seldom or never sampled is left out: its standard error, estimated from the
        samples, misses the rare draws and collapses, and an unbiased estimator would show a
        huge z (a false alarm: z = 29 on gridworld_mdp() with logits N(0, 1) x 3, where
        |bias| / noise_floor = 0.63)."""
        ok = self.judged.ravel()
        z = np.abs(self.bias.ravel())[ok] / self.bias_se.ravel()[ok]
        return float(z.max()) if z.size else 0.0

    @cached_property
    def _cosine(self) -> tuple[float, float]:
        return mean_cosine(self.estimates, self.reference)

    @property
    def cosine(self) -> float:
        """The expected cosine of one estimate with the reference (`mean_cosine`): how well the
        direction a step takes follows grad J."""
        return self._cosine[0]

    @property
    def cosine_se(self) -> float:
        return self._cosine[1]

    @cached_property
    def _scale_optimal(self) -> tuple[float, float]:
        return scale_optimal_mse(self.estimates, self.reference)

    @property
    def scale_optimal_mse(self) -> float:
        """min_{c >= 0} E|c g_hat - reference|^2 (`scale_optimal_mse`): the MSE once a step size
        has picked the best scale; compare with `zero_mse`."""
        return self._scale_optimal[0]

    @property
    def scale_optimal_mse_se(self) -> float:
        return self._scale_optimal[1]

    @property
    def zero_mse(self) -> float:
        """|reference|^2: the MSE of the zero estimator, the line any estimator must beat."""
        return float(np.sum(np.asarray(self.reference, dtype=float) ** 2))

    def row(self) -> dict:
        """The scalars, for a table."""
        return {"method": self.method, "N": self.n_trajectories, "bias": self.bias_norm,
                "noise floor": self.noise_floor, "variance": self.variance,
                "variance SE": self.variance_se, "MSE": self.mse, "MSE SE": self.mse_se}


#: A component (s, a) of a tabular gradient enters `GradientStats.max_bias_z` only if, over all
#: the R x N trajectories behind the estimates, both "a taken in s" and "another action taken
#: in s" are expected at least this often (`expected_counts`). With 30, an unbiased estimator
#: on sharp policies exceeds the 99% pure-noise level about as often as pure noise does
#: (tests/test_estimators.py: the false-alarm rate).
MIN_EXPECTED_COUNT = 30.0


def expected_counts(mdp: TabularMDP, logits: np.ndarray, n_episodes: int) -> np.ndarray:
    """(S, A): over n_episodes trajectories, how often the rarer side of gradient component
    (s, a) is expected to be sampled: min(E[# times a taken in s], E[# times another action
    taken in s]). The visits are `state_occupancy` without a discount (with gamma where the
    episodes need not end: a lower bound, since sampling runs to the discount tail)."""
    pi = softmax_policy(check_logits(mdp, logits))
    check_positive_int("n_episodes", n_episodes)
    try:
        visits = state_occupancy(mdp, logits, discount=1.0)
    except ValueError:                               # a continuing MDP: count with gamma
        visits = state_occupancy(mdp, logits)
    if visits.ndim == 2:
        visits = visits.sum(axis=0)
    taken = n_episodes * visits[:, None] * pi
    return np.minimum(taken, n_episodes * visits[:, None] - taken)


def _estimates_against(estimates: np.ndarray, reference: np.ndarray, needs: str) -> np.ndarray:
    """estimates (R, *shape) as floats, R >= 2 (what `needs` two of), against a reference of
    shape (*shape); or a ValueError naming the argument."""
    estimates = np.asarray(estimates, dtype=float)
    if len(estimates) < 2:
        raise ValueError(f"estimates: need at least 2 estimates for {needs}, got {len(estimates)}")
    if estimates.shape[1:] != np.shape(reference):
        raise ValueError(f"reference: expected shape {estimates.shape[1:]}, got {np.shape(reference)}")
    return estimates


def summarize(method: str, estimates: np.ndarray, reference: np.ndarray, n_trajectories: int,
              steps_per_estimate: float = float("nan"), counts: np.ndarray | None = None
              ) -> GradientStats:
    """Bias, variance and MSE with standard errors of R estimates (R, *shape) against reference.
    counts: (*shape) `expected_counts` of the R x N trajectories (tabular), so that
    `max_bias_z` leaves out the components too rare to judge; None = judge every component."""
    estimates = _estimates_against(estimates, reference, "a variance")
    R = len(estimates)
    check_finite("estimates", estimates)
    check_finite("reference", reference)
    flat, ref = estimates.reshape(R, -1), np.ravel(reference)
    mean = flat.mean(axis=0)
    spread = ((flat - mean) ** 2).sum(axis=1) * R / (R - 1)    # unbiased per-estimate spread
    error = ((flat - ref) ** 2).sum(axis=1)
    variance = float(spread.mean())
    shape = estimates.shape[1:]
    return GradientStats(
        method=method, n_trajectories=n_trajectories, estimates=estimates,
        reference=np.asarray(reference), mean=mean.reshape(shape),
        bias=(mean - ref).reshape(shape),
        bias_se=(flat.std(axis=0, ddof=1) / np.sqrt(R)).reshape(shape),
        bias_norm=float(np.linalg.norm(mean - ref)), noise_floor=float(np.sqrt(variance / R)),
        variance=variance, variance_se=float(spread.std(ddof=1) / np.sqrt(R)),
        mse=float(error.mean()), mse_se=float(error.std(ddof=1) / np.sqrt(R)),
        steps_per_estimate=steps_per_estimate,
        counts=None if counts is None else np.asarray(counts, dtype=float).reshape(shape))


def gradient_statistics(mdp: TabularMDP, logits: np.ndarray, method: str, n_trajectories: int,
                        n_repeats: int, rng: np.random.Generator, *,
                        reference: np.ndarray | None = None, **options) -> GradientStats:
    """Measure `method`: n_repeats estimates of n_trajectories trajectories each; their mean,
    bias, total variance and MSE, each with a standard error.

    The bias is measured against `reference`, by default `exact_policy_gradient`: the gradient
    of the MDP's (discounted) objective. To ask another question, pass another exact vector, e.g.
    the gradient of the undiscounted objective, or the expectation of discount option 1
    (`acteach.discount`)."""
    rng = as_rng(rng)
    check_positive_int("n_repeats", n_repeats)
    if n_repeats < 2:
        raise ValueError(f"n_repeats: expected at least 2 repeats (a variance needs 2 "
                         f"estimates), got {n_repeats}")
    if reference is not None:
        reference = np.asarray(reference, dtype=float)
        check_shape("reference", reference, np.shape(logits), "(S, A), the shape of logits")
        check_finite("reference", reference)
    estimates, steps = sample_estimates(mdp, logits, method, n_trajectories, n_repeats, rng,
                                        **options)
    if reference is None:
        reference = exact_policy_gradient(mdp, logits)
    return summarize(method, estimates, np.asarray(reference, dtype=float), n_trajectories,
                     steps_per_estimate=steps,
                     counts=expected_counts(mdp, logits, n_trajectories * n_repeats))


def pure_noise_max_z(n_components: int, quantile: float = 0.999) -> float:
    """The `quantile` of the largest |z| over n_components independent N(0, 1) z-scores: what
    `GradientStats.max_bias_z` of an unbiased estimator shows from noise alone. From 10,000
    simulated draws with a fixed seed (99), so the same call gives the same number."""
    check_positive_int("n_components", n_components)
    check_unit_interval("quantile", quantile)
    z = np.random.default_rng(99).standard_normal((10_000, n_components))
    return float(np.quantile(np.abs(z).max(axis=1), quantile))


def _projection_rows(estimates: np.ndarray, reference: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, float]:
    """Per estimate x_r = g_hat_r . u (u = reference / |reference|) and y_r = |g_hat_r|^2, (R,)
    each, and |reference|^2."""
    estimates = _estimates_against(estimates, reference, "a standard error")
    check_finite("estimates", estimates)
    check_finite("reference", reference)
    flat, ref = estimates.reshape(len(estimates), -1), np.ravel(reference).astype(float)
    norm2 = float(ref @ ref)
    u = ref / np.sqrt(norm2) if norm2 > 0 else ref
    return flat @ u, (flat ** 2).sum(axis=1), norm2


def _delta_se(cov: np.ndarray, gradient: np.ndarray, R: int) -> float:
    """The delta method: the SE of f(means) from the covariance of the per-estimate values
    whose means f takes, and the gradient of f at the means."""
    return float(np.sqrt(max(gradient @ cov @ gradient, 0.0) / R))


def _scale_optimal(x: np.ndarray, y: np.ndarray, norm2: float) -> tuple[float, np.ndarray]:
    """|g|^2 (1 - a^2 / b) with a = max(mean x, 0), b = mean y, and its gradient in (a, b)."""
    a, b = float(x.mean()), float(y.mean())
    if b == 0.0 or a <= 0.0:
        return norm2, np.zeros(2)
    return norm2 * (1.0 - a * a / b), norm2 * np.array([-2.0 * a / b, a * a / b ** 2])


def scale_optimal_mse(estimates: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """min_{c >= 0} E|c g_hat - g|^2 with g = reference, and its standard error: the MSE left
    once the step size has chosen the best scale for this estimator. A step size (and Adam
    even more) absorbs the scale of an estimate, so an estimator is no better for shrinking
    toward 0; the zero estimator scores |g|^2 (`GradientStats.zero_mse`), and so does any
    estimator that points downhill on average (c = 0 is then the best scale).

    With a = E[g_hat . u] (u = g / |g|, the mean projection on the reference direction) and
    b = E|g_hat|^2: c* = |g| a / b and the value is |g|^2 (1 - a^2 / b), a = max(a, 0). It is
    |g|^2 / (1 + SNR) with the SNR of `signal_to_noise`. Plug-in: a and b are the means over
    the R estimates (R >= 2), so the value is the in-sample minimum, optimistic by O(1/R).
    The SE is by the delta method on (a, b), from the sample covariance of the per-estimate
    (g_hat_r . u, |g_hat_r|^2). Zero estimates (b = 0): the value is |g|^2 with SE 0."""
    x, y, norm2 = _projection_rows(estimates, reference)
    value, gradient = _scale_optimal(x, y, norm2)
    return float(value), _delta_se(np.cov(np.stack([x, y])), gradient, len(x))


def scale_optimal_mse_gap(estimates: np.ndarray, others: np.ndarray, reference: np.ndarray
                          ) -> tuple[float, float]:
    """scale_optimal_mse(estimates) - scale_optimal_mse(others), and its SE, for two estimators
    measured on the same trajectories (row r of both from the same draw, e.g. two weights of
    one `GradientPool`): the delta method on the joint covariance of the four per-estimate
    values counts the pairing, which two separate SEs cannot. Negative: `estimates` is better."""
    if np.shape(others) != np.shape(estimates):
        raise ValueError(f"others: expected the shape of estimates {np.shape(estimates)} (paired "
                         f"row by row), got {np.shape(others)}")
    x1, y1, norm2 = _projection_rows(estimates, reference)
    x2, y2, _ = _projection_rows(others, reference)
    (v1, g1), (v2, g2) = _scale_optimal(x1, y1, norm2), _scale_optimal(x2, y2, norm2)
    gradient = np.concatenate([g1, -g2])
    return float(v1 - v2), _delta_se(np.cov(np.stack([x1, y1, x2, y2])), gradient, len(x1))


def signal_to_noise(estimates: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """The signal-to-noise ratio of an estimator along the reference direction, and its SE.

    A step theta + alpha g_hat raises J, to first order, by alpha g_hat . grad J: only the
    projection of g_hat on u = grad J / |grad J| climbs; everything else in g_hat (its variance,
    and any mean component orthogonal to grad J) only costs, at second order, as
    alpha^2 |g_hat|^2. So, with a = max(E[g_hat . u], 0) and b = E|g_hat|^2:

        SNR = a^2 / (b - a^2)    (signal: the mean projection squared; noise: the rest of E|g_hat|^2)

    It is scale-free (c g_hat has the same SNR) and 0 for the zero estimator and for one that
    points downhill on average; `scale_optimal_mse` = |grad J|^2 / (1 + SNR). Plug-in from the
    R estimates (R >= 2), SE by the delta method (as `scale_optimal_mse`). An estimator with
    no noise at all (b = a^2 > 0) has SNR = inf."""
    x, y, _ = _projection_rows(estimates, reference)
    cov, a, b = np.cov(np.stack([x, y])), float(x.mean()), float(y.mean())
    if b == 0.0 or a <= 0.0:
        return 0.0, 0.0
    rest = b - a * a
    if rest <= 0.0:
        return float("inf"), 0.0
    gradient = np.array([2.0 * a * b, -a * a]) / rest ** 2
    return float(a * a / rest), _delta_se(cov, gradient, len(x))


def paired_ratio(numerator: np.ndarray, denominator: np.ndarray) -> tuple[float, float]:
    """mean(numerator) / mean(denominator) of paired samples (row i of both comes from the same
    draw, e.g. two fits of one data set), and its SE by the delta method, which counts the
    pairing: Var ~ (Var a / B^2 + A^2 Var b / B^4 - 2 A Cov(a, b) / B^3) / n. Both (n,), n >= 2."""
    a, b = (np.asarray(x, dtype=float) for x in (numerator, denominator))
    if a.ndim != 1 or len(a) < 2:
        raise ValueError(f"numerator: expected (n,) paired samples, n >= 2, got shape {a.shape}")
    if b.shape != a.shape:
        raise ValueError(f"denominator: expected the shape of numerator {a.shape}, got {b.shape}")
    check_finite("numerator", a)
    check_finite("denominator", b)
    A, B = a.mean(), b.mean()
    if B == 0:
        raise ValueError("denominator: its mean is 0, the ratio is undefined")
    gradient = np.array([1.0 / B, -A / B ** 2])
    return float(A / B), _delta_se(np.cov(np.stack([a, b])), gradient, len(a))


def mean_cosine(estimates: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """The mean cosine of single estimates with a reference gradient, and its standard error:
    how well one estimate's direction follows the reference (scale-free, unlike the MSE).
    estimates: (R, *shape), R >= 2; reference: (*shape). An estimate that is 0 counts as 0."""
    estimates = _estimates_against(estimates, reference, "a standard error")
    R = len(estimates)
    flat = estimates.reshape(R, -1)
    cos = row_cosines(flat, np.broadcast_to(np.ravel(reference), flat.shape))
    return float(cos.mean()), float(cos.std(ddof=1) / np.sqrt(R))


# ---------------------------------------------------------------------------------------------
# The same estimator on a real environment, with a torch policy
# ---------------------------------------------------------------------------------------------

def group_means(per_trajectory: np.ndarray, n_trajectories: int) -> np.ndarray:
    """Average consecutive groups of n_trajectories rows: (M, *shape) -> (M // n, *shape), the
    estimates of n_trajectories each (leftover rows are unused)."""
    check_positive_int("n_trajectories", n_trajectories)
    R = len(per_trajectory) // n_trajectories
    if R == 0:
        raise ValueError(f"n_trajectories: {n_trajectories} is more than the "
                         f"{len(per_trajectory)} trajectories available")
    grouped = per_trajectory[:R * n_trajectories]
    return grouped.reshape(R, n_trajectories, *per_trajectory.shape[1:]).mean(axis=1)


class GradientPool:
    """Per-trajectory gradients of several weights on one pool of trajectories, regrouped into
    estimates of any N (what the labs of notebooks 01-05 and 09 show).

    An estimate of N trajectories is the mean of N consecutive trajectories' gradients
    sum_t grad log pi(a_t|s_t) w_t (`group_means`): once each trajectory's gradient is known,
    every N is a regrouping, and every weight sees the same trajectories (common random
    numbers). A weight affine in a critic V (advantage_td, n_step, gae) is computed at two
    critics V_0 and V_1; its estimates with V_alpha = (1 - alpha) V_0 + alpha V_1 are the same
    blend of the two ends' estimates, exactly.

    mdp, logits: the MDP the weights are computed on and its (S, A) logits; batch: the pool of
    M trajectories, (T, M); rng: for weights that sample more (q_mc), drawn from in the order
    the weights are added.
    """

    def __init__(self, mdp: TabularMDP, logits: np.ndarray, batch: Batch,
                 rng: np.random.Generator | None = None) -> None:
        rng = None if rng is None else as_rng(rng)
        self.mdp, self.logits, self.batch, self.rng = mdp, check_logits(mdp, logits), batch, rng
        self.size = batch.mask.shape[1]
        self._ends: dict[str, tuple[np.ndarray, ...]] = {}
        self._extra_steps: dict[str, int] = {}

    @classmethod
    def sample(cls, mdp: TabularMDP, logits: np.ndarray, size: int,
               rng: np.random.Generator) -> GradientPool:
        """A pool of `size` fresh trajectories; rng samples them, then serves the weights."""
        rng = as_rng(rng)
        check_positive_int("size", size)
        check_size("size", 12.0 * size, 8, f"a pool of {size:,} trajectories")
        return cls(mdp, logits, sample_trajectories(mdp, logits, size, rng), rng)

    def add(self, label: str, method: str, critics: tuple[np.ndarray, np.ndarray] | None = None,
            by_length: bool = False, **options) -> None:
        """Compute the per-trajectory gradients of `method` (with `options`), kept as `label`.

        critics: (V_0, V_1), two (S,) tables, for a weight affine in the critic (`value=`).
        by_length: compute trajectories of similar length together (the same numbers with less
        padding, for weights that loop over T and sample nothing)."""
        if method in METHODS and METHODS[method].batch_dependent:
            raise ValueError(f"method: {method!r} uses the whole batch; a pool regroups "
                             "per-trajectory gradients of weights of one trajectory only")
        check_flag("by_length", by_length)
        if label in self._ends:
            raise ValueError(f"label: {label!r} is already taken in this pool; give each "
                             "weight a label of its own")
        ends = []
        for value in (None,) if critics is None else critics:
            more = options if value is None else {**options, "value": value}
            gradients, extra = self._per_trajectory(method, by_length, **more)
            ends.append(gradients)
        self._ends[label], self._extra_steps[label] = tuple(ends), extra

    def _per_trajectory(self, method: str, by_length: bool, **options) -> tuple[np.ndarray, int]:
        if not by_length:
            return estimates_from_batch(self.mdp, self.logits, self.batch, method, 1, self.rng,
                                        **options)
        out, extra = np.empty((self.size, *self.logits.shape)), 0
        for cols, sub in _length_chunks(self.batch):
            out[cols], more = estimates_from_batch(self.mdp, self.logits, sub, method, 1,
                                                   self.rng, **options)
            extra += more
        return out, extra

    def estimates(self, label: str, n_trajectories: int, alpha: float = 0.0) -> np.ndarray:
        """(M // N, S, A): the estimates of N = n_trajectories trajectories each; for a weight
        added with two critics, with V_alpha (alpha in [0, 1])."""
        ends = self._ends[label]
        if len(ends) == 1:
            if alpha != 0.0:
                raise ValueError(f"alpha: {label!r} was added with one critic, got {alpha!r}")
            return group_means(ends[0], n_trajectories)
        return ((1.0 - alpha) * group_means(ends[0], n_trajectories)
                + alpha * group_means(ends[1], n_trajectories))

    def steps_per_estimate(self, label: str, n_trajectories: int) -> float:
        """Environment steps behind one estimate: N trajectories' own, plus the weight's extra
        rollouts (q_mc)."""
        return (self.batch.n_steps + self._extra_steps[label]) * n_trajectories / self.size

    def stats(self, label: str, n_trajectories: int, reference: np.ndarray, alpha: float = 0.0,
              name: str | None = None) -> GradientStats:
        """`summarize` of `estimates(label, n_trajectories, alpha)` against reference, named
        `name` (default: the label)."""
        return summarize(label if name is None else name,
                         self.estimates(label, n_trajectories, alpha), reference, n_trajectories,
                         self.steps_per_estimate(label, n_trajectories),
                         expected_counts(self.mdp, self.logits,
                                         self.size // n_trajectories * n_trajectories))


def _length_chunks(batch: Batch, quantiles: tuple[float, ...] = (0.5, 0.8, 0.95)
                   ) -> list[tuple[np.ndarray, Batch]]:
    """The trajectories of a batch in a few groups of similar length, each group cut to its
    longest trajectory: [(columns (M_i,), sub-batch (T_i, M_i))]. One trajectory's n-step or GAE
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


def trajectory_gradients(policy, batch: Batch, method: str, gamma: float = 1.0,
                         **options) -> np.ndarray:
    """For each trajectory n of a batch from a real env, sum_t grad log pi(a_t|s_t) * w_t with
    the weights of `method`, w.r.t. all the policy's parameters. -> (N, P) float64.

    Only the score differs from the tabular path: it comes from autograd (torch.func) instead
    of a formula. The weights are the very same functions.
    """
    from acteach.nets import per_trajectory_gradients   # torch only where a network is used
    if METHODS.get(method) is not None and METHODS[method].batch_dependent:
        raise ValueError(f"method: {method!r} uses the whole batch; per-trajectory gradients "
                         "need a method whose weights depend on one trajectory only")
    weights = method_weights(method, batch, Context(gamma), **options)
    return per_trajectory_gradients(policy, batch.obs, batch.act, weights,
                                    batch.mask).double().numpy()
