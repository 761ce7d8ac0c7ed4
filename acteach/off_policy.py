"""Off-policy actor-critic with a replay buffer (backs notebook 08).

The online actor-critic, fed from a replay buffer `acteach.replay.ReplayBuffer` instead of the
latest step, is the lecture's "naive" off-policy actor-critic:

    1. take a ~ pi_theta(a|s), store (s, a, r, s') in the buffer
    2. sample a batch {(s_i, a_i, r_i, s'_i)} from the buffer
    3. update V_phi on y_i = r_i + gamma V_phi(s'_i)
    4. A(s_i, a_i) = r_i + gamma V_phi(s'_i) - V_phi(s_i)
    5. grad J = sum_i grad log pi(a_i|s_i) A(s_i, a_i)

and it is broken twice: the a_i came from OLDER policies, so (3) learns the value of the old
policies, not of pi_theta, and (5) scores old actions with the current policy. The fixes:

    3'. learn Q_phi(s, a) on y_i = r_i + gamma Q_phi(s'_i, a'_i), a'_i ~ pi_theta(.|s'_i) FRESH
        (Q is defined for any action, so the old a_i is fine on the left-hand side)
    5'. grad J = sum_i grad log pi(a^pi_i|s_i) Q_phi(s_i, a^pi_i), a^pi_i ~ pi_theta(.|s_i) FRESH

What is left: the states s_i still come from the buffer's distribution, not from pi_theta's.
The lecture accepts this bias ("we accept this bias").

Two parts:
  tabular  (numpy, exact) the claims above measured on a `TabularMDP` with a softmax table:
           `naive_v_fixed_point` is V of the behaviour policy, `naive_actor_gradient` is biased,
           `corrected_q_fixed_point` is exactly Q^pi, `corrected_actor_gradient` differs from the
           true gradient only through the state distribution (`off_policy_report`); the
           same updates on a finite buffer of sampled transitions (`buffer_q_fixed_point`,
           `corrected_gradient_samples`, ...) tend to these as the buffer grows.
  neural   (torch, Pendulum-v1) the corrected algorithm with the pieces that make it learn
           reliably, i.e. soft actor-critic (SAC): a tanh-squashed Gaussian policy with the
           reparameterised gradient, twin critics with target networks, an entropy term with
           an automatically tuned temperature (`sac_update`, `train_off_policy`).

Shapes: S states, A actions (tabular); B batch, D obs dim, A_d action dim (neural);
(T, N) time-major as everywhere.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from acteach._validate import (check_gamma, check_hidden, check_integer, check_positive_int,
                               check_real)
from acteach.actor_critic import History, make_envs
from acteach.critic import batch_fixed_point, check_table_mdp, transitions
from acteach.estimators import score_weighted_sums
from acteach.nets import mlp
from acteach.replay import ReplayBuffer, ReplaySample
from acteach.sampling import Batch
from acteach.tabular import (
    TabularMDP,
    check_logits,
    exact_policy_gradient,
    exact_values,
    softmax_policy,
    state_occupancy,
)

# =============================================================================================
# Tabular: what the naive update learns, and what the corrected one learns
# =============================================================================================
#
# The buffer is idealised as unlimited and filled by ONE behaviour policy beta (softmax of
# `behaviour_logits`; a real buffer mixes many old policies): state s appears in proportion to
# d_beta(s) = sum_t gamma^t Pr_beta(s_t = s) (`tabular.state_occupancy`, the weighting that
# `exact_policy_gradient` uses for pi), the action with beta(a|s), the next state with
# p(s'|s, a). With beta = pi every formula below gives the on-policy answer exactly.
# A fitted critic with a perfect regressor on such a buffer sets each table entry to the mean
# target of the transitions it covers (fitted value iteration); the "fixed point" is where
# that stops moving. (A real buffer holds each visited step once, not weighted by gamma^t:
# the undiscounted state weighting of notebook 05's option 1, a further approximation that
# is not measured here.) `buffer_v_fixed_point`, `buffer_q_fixed_point` and the
# `*_gradient_samples` run the same updates on a finite buffer of sampled transitions.

def _softmax_score_sum(w: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """sum_a w(s, a) grad_logits log pi(a|s), with d log pi(a|s) / d logits[s, b] = 1[a = b] -
    pi(b|s). w, pi: (S, A) -> (S, A), the gradient with respect to the logits table."""
    return w - w.sum(axis=1, keepdims=True) * pi


def covered_states(mdp: TabularMDP, behaviour_logits: np.ndarray) -> np.ndarray:
    """(S,) bool: the non-terminal states the buffer holds transitions from (d_beta(s) > 0).
    A softmax beta tries every action, so the buffer covers every (s, a) of these states."""
    check_table_mdp(mdp)   # a table V (S,) / Q (S, A): no horizon
    return (state_occupancy(mdp, behaviour_logits) > 0) & ~mdp.terminal


def naive_v_target(mdp: TabularMDP, behaviour_logits: np.ndarray, value: np.ndarray
                   ) -> np.ndarray:
    """The naive critic's target, averaged over the buffer's transitions from each state s:
    E_{a ~ beta(.|s), s'}[r + gamma (1 - terminal(s')) V(s')] — the actions are the buffer's
    OLD ones. value: (S,) -> (S,), 0 on terminal states."""
    beta = softmax_policy(check_logits(mdp, behaviour_logits))
    live = ~mdp.terminal
    y = mdp.R + mdp.gamma * mdp.P @ (np.asarray(value, dtype=float) * live)    # (S, A)
    return (beta * y).sum(axis=1) * live


def corrected_q_target(mdp: TabularMDP, logits: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The corrected critic's target, averaged over the buffer's transitions from (s, a):
    r(s, a) + gamma E_{s'}[sum_a' pi(a'|s') Q(s', a')] — the expected form of a' ~ pi(.|s')
    drawn FRESH from the current policy. q: (S, A) -> (S, A), 0 on terminal states."""
    pi = softmax_policy(check_logits(mdp, logits))
    live = ~mdp.terminal
    next_v = (pi * np.asarray(q, dtype=float)).sum(axis=1) * live               # (S',)
    return (mdp.R + mdp.gamma * mdp.P @ next_v) * live[:, None]


def iterate_to_fixed_point(update: Callable[[np.ndarray], np.ndarray], init: np.ndarray,
                           tol: float = 1e-12, max_iters: int = 100_000
                           ) -> tuple[np.ndarray, int]:
    """x <- update(x) from init until max |change| <= tol * (1 + max |x|). -> (x, iterations).
    A ValueError naming max_iters if it has not converged by then."""
    check_positive_int("max_iters", max_iters)
    x = np.asarray(init, dtype=float)
    for k in range(1, max_iters + 1):
        new = update(x)
        scale = 1.0 + np.max(np.abs(new), initial=0.0)
        if np.max(np.abs(new - x), initial=0.0) <= tol * scale:
            return new, k
        x = new
    raise ValueError(f"max_iters: no convergence to {tol:g} in {max_iters} iterations")


def naive_v_fixed_point(mdp: TabularMDP, behaviour_logits: np.ndarray, tol: float = 1e-12
                        ) -> np.ndarray:
    """Where TD(0) on the old buffer converges: V = naive_v_target(V) on the covered states
    (others stay 0). -> (S,). It is V^beta, the value of the BEHAVIOUR policy, not V^pi."""
    covered = covered_states(mdp, behaviour_logits)
    V, _ = iterate_to_fixed_point(
        lambda V: np.where(covered, naive_v_target(mdp, behaviour_logits, V), V),
        np.zeros(mdp.n_states), tol)
    return V


def corrected_q_fixed_point(mdp: TabularMDP, logits: np.ndarray, behaviour_logits: np.ndarray,
                            tol: float = 1e-12) -> np.ndarray:
    """Where the corrected Q update on the same old buffer converges: Q = corrected_q_target(Q)
    on the (s, a) the buffer covers (others stay 0). -> (S, A). It is Q^pi of the CURRENT policy
    (`exact_values(mdp, logits).Q`): beta only decides which entries get fitted."""
    covered = covered_states(mdp, behaviour_logits)[:, None]
    Q, _ = iterate_to_fixed_point(
        lambda Q: np.where(covered, corrected_q_target(mdp, logits, Q), Q),
        np.zeros((mdp.n_states, mdp.n_actions)), tol)
    return Q


def naive_actor_gradient(mdp: TabularMDP, logits: np.ndarray, behaviour_logits: np.ndarray,
                         value: np.ndarray | None = None) -> np.ndarray:
    """The naive actor's expected gradient: the on-policy formula on the buffer's old (s, a),
        sum_s d_beta(s) sum_a beta(a|s) grad log pi(a|s) E[r + gamma V(s') - V(s) | s, a],
    value: (S,) the critic, default the naive fixed point (V^beta). -> (S, A), d/dlogits.
    With V = V^beta this is exactly the policy gradient of beta, not of pi."""
    beta = softmax_policy(check_logits(mdp, behaviour_logits))
    pi = softmax_policy(check_logits(mdp, logits))
    V = naive_v_fixed_point(mdp, behaviour_logits) if value is None else np.asarray(value, float)
    adv = mdp.R + mdp.gamma * mdp.P @ (V * ~mdp.terminal) - V[:, None]        # E[A | s, a]
    d = state_occupancy(mdp, behaviour_logits)
    return _softmax_score_sum(d[:, None] * beta * adv, pi)


def corrected_actor_gradient(mdp: TabularMDP, logits: np.ndarray, behaviour_logits: np.ndarray,
                             q: np.ndarray | None = None) -> np.ndarray:
    """The corrected actor's expected gradient: buffer states, FRESH actions a ~ pi,
        sum_s d_beta(s) sum_a pi(a|s) grad log pi(a|s) Q(s, a),
    q: (S, A), default the corrected fixed point (Q^pi). -> (S, A), d/dlogits.
    It differs from `exact_policy_gradient` only through d_beta in place of d_pi: the bias
    the lecture accepts."""
    pi = softmax_policy(check_logits(mdp, logits))
    Q = corrected_q_fixed_point(mdp, logits, behaviour_logits) if q is None else np.asarray(q)
    d = state_occupancy(mdp, behaviour_logits)
    return _softmax_score_sum(d[:, None] * pi * Q, pi)


def relative_error(g: np.ndarray, reference: np.ndarray) -> float:
    """||g - reference|| / ||reference|| (Frobenius norms)."""
    return float(np.linalg.norm(g - reference) / np.linalg.norm(reference))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The cosine of the angle between two gradients, flattened."""
    return float(np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@dataclass(frozen=True)
class OffPolicyReport:
    """The tabular claims of notebook 08, measured exactly for one (pi, beta) pair.

    naive_v_error:            max_s |V_naive(s) - V^pi(s)| over the covered states.
    naive_v_behaviour_error:  max_s |V_naive(s) - V^beta(s)| (~0: it learns the old policy).
    naive_gradient_bias:      ||g_naive - g|| / ||g||, g = exact_policy_gradient at pi.
    naive_gradient_cosine:    cos(g_naive, g).
    corrected_q_error:        max_{s,a} |Q_corrected - Q^pi| over the covered (s, a) (~0).
    corrected_gradient_gap:   ||g_corrected - g|| / ||g||: the state-distribution bias that is
                              accepted (0 only if d_beta is proportional to d_pi).
    corrected_gradient_cosine: cos(g_corrected, g).
    state_distribution_gap:   total variation between d_beta and d_pi, each normalised to 1.
    """

    naive_v_error: float
    naive_v_behaviour_error: float
    naive_gradient_bias: float
    naive_gradient_cosine: float
    corrected_q_error: float
    corrected_gradient_gap: float
    corrected_gradient_cosine: float
    state_distribution_gap: float

    def table(self) -> str:
        """One line per number, for printing in a notebook."""
        return "\n".join(f"{f.name:27s} {getattr(self, f.name):.3g}"
                         for f in dataclasses.fields(self))


def off_policy_report(mdp: TabularMDP, logits: np.ndarray, behaviour_logits: np.ndarray
                      ) -> OffPolicyReport:
    """Measure every claim at once: current policy softmax(logits), buffer from
    softmax(behaviour_logits). All numbers exact (no sampling)."""
    check_table_mdp(mdp)   # a table V (S,) / Q (S, A): no horizon
    covered = covered_states(mdp, behaviour_logits)
    V_pi, Q_pi = exact_values(mdp, logits)
    V_beta = exact_values(mdp, behaviour_logits).V
    V_naive = naive_v_fixed_point(mdp, behaviour_logits)
    Q_fix = corrected_q_fixed_point(mdp, logits, behaviour_logits)
    g = exact_policy_gradient(mdp, logits)
    g_naive = naive_actor_gradient(mdp, logits, behaviour_logits, V_naive)
    g_fixed = corrected_actor_gradient(mdp, logits, behaviour_logits, Q_fix)
    d_pi, d_beta = state_occupancy(mdp, logits), state_occupancy(mdp, behaviour_logits)
    return OffPolicyReport(
        naive_v_error=float(np.abs(V_naive - V_pi)[covered].max()),
        naive_v_behaviour_error=float(np.abs(V_naive - V_beta)[covered].max()),
        naive_gradient_bias=relative_error(g_naive, g),
        naive_gradient_cosine=cosine(g_naive, g),
        corrected_q_error=float(np.abs(Q_fix - Q_pi)[covered].max()),
        corrected_gradient_gap=relative_error(g_fixed, g),
        corrected_gradient_cosine=cosine(g_fixed, g),
        state_distribution_gap=0.5 * float(np.abs(d_beta / d_beta.sum()
                                                  - d_pi / d_pi.sum()).sum()))


# --- the same updates on a finite buffer of real transitions (a tabular Batch of beta) ------

def buffer_v_fixed_point(buffer: Batch, n_states: int, gamma: float) -> np.ndarray:
    """The naive critic on real transitions: where TD(0) on a finite buffer converges, the
    table V (S,) with, in each state, the mean of r_i + gamma (1 - terminated_i) V(s'_i) over
    the buffer's transitions from it equal to V (`critic.batch_fixed_point`, "bootstrapped").
    It is V^beta of the data's empirical MDP: -> V^beta, not V^pi, as the buffer grows."""
    return batch_fixed_point(transitions(buffer, gamma), n_states, "bootstrapped")


def buffer_q_fixed_point(buffer: Batch, logits: np.ndarray, gamma: float, tol: float = 1e-12
                         ) -> np.ndarray:
    """The corrected critic on real transitions (old actions a_i, tabular Batch of beta):
        Q(s, a) <- mean over the buffer's i with (s_i, a_i) = (s, a) of
                   r_i + gamma (1 - terminated_i) sum_a' pi(a'|s'_i) Q(s'_i, a'),
    iterated to its fixed point. -> (S, A); pairs never seen stay 0. It is Q^pi of the
    data's empirical MDP: -> Q^pi of the CURRENT policy as the buffer grows.
    The mean over i is linear in Q, so the data are summed once per (s, a, s') first."""
    check_gamma(gamma)
    pi = softmax_policy(np.asarray(logits, dtype=float))
    S, A = pi.shape
    m = np.asarray(buffer.mask, dtype=bool)
    cell, s_next = buffer.obs[m] * A + buffer.act[m], buffer.next_obs[m]
    counts = np.bincount(cell, minlength=S * A)
    n = np.maximum(counts, 1)[:, None]
    r_mean = np.bincount(cell, np.asarray(buffer.rew, dtype=float)[m], S * A) / n[:, 0]
    bootstrap = gamma * ~np.asarray(buffer.terminated, dtype=bool)[m]
    p_next = np.bincount(cell * S + s_next, bootstrap, S * A * S).reshape(S * A, S) / n
    seen = (counts > 0).reshape(S, A)

    def update(Q: np.ndarray) -> np.ndarray:
        y = r_mean + p_next @ (pi * Q).sum(axis=1)                      # expected a' ~ pi
        return np.where(seen, y.reshape(S, A), 0.0)

    Q, _ = iterate_to_fixed_point(update, np.zeros((S, A)), tol)
    return Q


def _discounted_steps(batch: Batch, gamma: float) -> np.ndarray:
    """gamma^t at every step of a (T, N) batch, 0 off the mask: the buffer's d_beta weighting."""
    return gamma ** np.arange(batch.mask.shape[0])[:, None] * batch.mask


def naive_gradient_samples(mdp: TabularMDP, logits: np.ndarray, buffer: Batch,
                           value: np.ndarray) -> np.ndarray:
    """One naive gradient per trajectory n of the buffer (sampled with beta):
        g_n = sum_t gamma^t grad log pi(a_t|s_t) A_t,
        A_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t),
    a_t the buffer's old action. buffer: a tabular Batch (T, N); value: (S,). -> (N, S, A);
    the mean over n estimates `naive_actor_gradient` without bias."""
    pi = softmax_policy(check_logits(mdp, logits))
    V = np.asarray(value, dtype=float)
    adv = buffer.rew + mdp.gamma * ~buffer.terminated * V[buffer.next_obs] - V[buffer.obs]
    w = _discounted_steps(buffer, mdp.gamma) * adv
    N = buffer.mask.shape[1]
    return score_weighted_sums(pi, buffer, w, np.arange(N), N)


def corrected_gradient_samples(mdp: TabularMDP, logits: np.ndarray, buffer: Batch,
                               q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One corrected gradient per trajectory n of the buffer, each old action replaced by a
    FRESH a^pi_t ~ pi(.|s_t):  g_n = sum_t gamma^t grad log pi(a^pi_t|s_t) Q(s_t, a^pi_t).
    q: (S, A). -> (N, S, A); the mean over n estimates `corrected_actor_gradient` without bias."""
    pi = softmax_policy(check_logits(mdp, logits))
    u = rng.random(buffer.obs.shape)
    fresh = (np.cumsum(pi, axis=1)[buffer.obs] < u[..., None]).sum(axis=-1)   # inverse CDF
    fresh = np.minimum(fresh, mdp.n_actions - 1)
    w = _discounted_steps(buffer, mdp.gamma) * np.asarray(q, dtype=float)[buffer.obs, fresh]
    N = buffer.mask.shape[1]
    return score_weighted_sums(pi, dataclasses.replace(buffer, act=fresh), w, np.arange(N), N)


# =============================================================================================
# Neural: soft actor-critic on a continuous action space (Pendulum-v1)
# =============================================================================================

@dataclass
class Config:
    """Hyperparameters of the off-policy actor-critic (SAC) on a continuous-action env."""

    env_id: str = "Pendulum-v1"
    """gymnasium id of an env with a Box action space and vector observations."""
    n_envs: int = 1
    """N, environments stepped in parallel; each valid transition earns one gradient step."""
    total_steps: int = 6_000
    """Training budget in environment transitions (valid steps, summed over envs)."""
    learning_starts: int = 1_000
    """Transitions collected with uniformly random actions before the first gradient step."""
    buffer_size: int = 100_000
    """Capacity of the replay buffer; the oldest transitions are overwritten beyond it."""
    batch_size: int = 128
    """B, transitions per gradient step, drawn uniformly from the buffer."""
    gamma: float = 0.99
    """Discount factor in [0, 1]."""
    tau: float = 0.01
    """Polyak rate of the target critics: phi' <- (1 - tau) phi' + tau phi, in (0, 1]."""
    lr: float = 1e-3
    """Adam learning rate of the actor, the critics and the temperature."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the policy and of each critic (ReLU between layers)."""
    alpha: float = 1.0
    """Initial entropy temperature alpha (the fixed one if autotune is False)."""
    autotune: bool = True
    """Tune alpha so that the policy's entropy tracks target_entropy."""
    target_entropy: float | None = None
    """Entropy the temperature aims for; None = -A_d (minus the action dimension)."""
    eval_every: int = 1_000
    """Evaluate the deterministic policy tanh(mean) every this many env steps."""
    eval_episodes: int = 5
    """Episodes per evaluation (run side by side, fresh start states each time)."""
    seed: int = 0
    """Seeds the networks, the action noise, the buffer draws and the env resets."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        if not isinstance(self.env_id, str) or not self.env_id:
            raise ValueError(f"env_id: expected a gymnasium env id, got {self.env_id!r}")
        for name in ("n_envs", "total_steps", "buffer_size", "batch_size", "eval_every",
                     "eval_episodes"):
            check_positive_int(name, getattr(self, name))
        if isinstance(self.learning_starts, bool) or not isinstance(
                self.learning_starts, numbers.Integral) or self.learning_starts < 0:
            raise ValueError(f"learning_starts: expected an integer >= 0, got "
                             f"{self.learning_starts!r}")
        check_gamma(self.gamma)
        check_real("tau", self.tau, "positive")
        if self.tau > 1:
            raise ValueError(f"tau: expected a number in (0, 1], got {self.tau!r}")
        check_real("lr", self.lr, "positive")
        check_real("alpha", self.alpha, "positive")
        if not isinstance(self.autotune, bool):
            raise ValueError(f"autotune: expected True or False, got {self.autotune!r}")
        if self.target_entropy is not None:
            check_real("target_entropy", self.target_entropy)
        check_hidden(self.hidden)
        check_integer("seed", self.seed)


# --- the networks ------------------------------------------------------------------------------

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
_LOG2, _HALF_LOG_2PI = math.log(2.0), 0.5 * math.log(2.0 * math.pi)


class SquashedGaussianPolicy(nn.Module):
    """pi_theta(a|s): u ~ N(mu_theta(s), sigma_theta(s)^2), a = tanh(u), in (-1, 1)^A_d.

    obs_dim: D; act_dim: A_d; hidden: hidden layer sizes (ReLU). One MLP outputs mu and
    log sigma (clamped to [LOG_STD_MIN, LOG_STD_MAX]). Actions live in (-1, 1); the trainer
    rescales them to the env's bounds.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        check_positive_int("obs_dim", obs_dim)
        check_positive_int("act_dim", act_dim)
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.net = mlp([obs_dim, *hidden, 2 * act_dim], nn.ReLU)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """obs: (B, D) -> mean (B, A_d), log_std (B, A_d) of the Gaussian before the tanh."""
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """a ~ pi(.|obs), reparameterised, and log pi(a|obs). obs: (B, D) -> (B, A_d), (B,).

        a = tanh(mu + sigma * eps), eps ~ N(0, I): a is a differentiable function of theta, so
        grad_theta E[f(a)] = E[grad_theta f(tanh(mu + sigma eps))] (the reparameterisation
        trick). The density of a = tanh(u) is that of u divided by |da/du| = prod (1 - tanh(u)^2):
            log pi(a|s) = log N(u; mu, sigma) - sum log(1 - tanh(u)^2),
        with log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable for large |u|.
        """
        mean, log_std = self(obs)
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        u = mean + log_std.exp() * eps
        log_gauss = -0.5 * eps ** 2 - log_std - _HALF_LOG_2PI
        log_jacobian = 2.0 * (_LOG2 - u - F.softplus(-2.0 * u))
        return torch.tanh(u), (log_gauss - log_jacobian).sum(dim=-1)

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The evaluation action tanh(mu(obs)). obs: (B, D) -> (B, A_d)."""
        return torch.tanh(self(obs)[0])

    @torch.no_grad()
    def act(self, obs: np.ndarray, generator: torch.Generator | None = None,
            deterministic: bool = False) -> np.ndarray:
        """obs: (N, D) numpy -> (N, A_d) float32 numpy actions in (-1, 1), no gradient."""
        obs = torch.as_tensor(np.asarray(obs), dtype=self.net[0].weight.dtype)
        act = self.deterministic(obs) if deterministic else self.sample(obs, generator)[0]
        return act.numpy().astype(np.float32, copy=False)


class TwinQ(nn.Module):
    """Q_phi1(s, a) and Q_phi2(s, a): two independent MLPs held as one module.

    Their weights are stacked on a leading axis of 2, so each layer of both runs as one batched
    matmul (torch.baddbmm). Same initialisation as nn.Linear, drawn independently per critic.
    obs_dim: D; act_dim: A_d; hidden: hidden layer sizes (ReLU).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        check_positive_int("obs_dim", obs_dim)
        check_positive_int("act_dim", act_dim)
        sizes = [obs_dim + act_dim, *hidden, 1]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(n_in)
            self.weights.append(nn.Parameter(torch.empty(2, n_in, n_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(2, 1, n_out).uniform_(-bound, bound)))

    def forward(self, obs: torch.Tensor, act: torch.Tensor, frozen: bool = False
                ) -> torch.Tensor:
        """obs: (B, D), act: (B, A_d) -> (2, B): row j is Q_phi_j(obs, act).

        frozen=True uses detached weights: the output still depends on act (for the actor's
        gradient) but no gradient reaches phi.
        """
        x = torch.cat([obs, act], dim=-1).expand(2, -1, -1)              # (2, B, D + A_d)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if frozen:
                w, b = w.detach(), b.detach()
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = torch.relu(x)
        return x.squeeze(-1)


@dataclass
class Agent:
    """Everything SAC trains: the actor, the twin critics, their target copies, the
    temperature (as log alpha, so alpha > 0) and one Adam optimiser over all of them."""

    policy: SquashedGaussianPolicy
    critic: TwinQ
    target_critic: TwinQ
    log_alpha: torch.Tensor
    optimizer: torch.optim.Optimizer
    target_entropy: float

    @property
    def alpha(self) -> float:
        return float(self.log_alpha.detach().exp())


def make_agent(obs_dim: int, act_dim: int, config: Config) -> Agent:
    """Fresh networks (from torch's global RNG), the target critics a copy of the critics."""
    policy = SquashedGaussianPolicy(obs_dim, act_dim, config.hidden)
    critic = TwinQ(obs_dim, act_dim, config.hidden)
    target_critic = copy.deepcopy(critic).requires_grad_(False)
    log_alpha = torch.tensor(math.log(config.alpha), requires_grad=config.autotune)
    params = [*policy.parameters(), *critic.parameters()] + ([log_alpha] if config.autotune else [])
    optimizer = torch.optim.Adam(params, lr=config.lr, fused=True)
    target_entropy = -float(act_dim) if config.target_entropy is None else config.target_entropy
    return Agent(policy, critic, target_critic, log_alpha, optimizer, target_entropy)


# --- the update, top to bottom -------------------------------------------------------------------

def q_target(policy: SquashedGaussianPolicy, target_critic: TwinQ, rew: torch.Tensor,
             next_obs: torch.Tensor, terminated: torch.Tensor, gamma: float, alpha: float,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """The critic's target, a constant (computed under no_grad: stop-gradient):

        y = r + gamma (1 - terminated) [min_j Q'_j(s', a') - alpha log pi(a'|s')],
        a' ~ pi_theta(.|s') drawn FRESH from the current policy (never the buffer's next action).

    min_j over the two target critics counters the overestimation a max-like actor causes;
    the -alpha log pi term adds the entropy of the next step (the soft value of s').
    rew: (B,); next_obs: (B, D); terminated: (B,) bool — a truncated step is stored with
    terminated False, so it bootstraps. -> (B,) float32, no graph.
    """
    with torch.no_grad():
        next_act, next_logp = policy.sample(next_obs, generator)
        next_q = target_critic(next_obs, next_act).amin(dim=0)               # (B,)
        soft_value = next_q - alpha * next_logp
        return rew.to(soft_value.dtype) + gamma * torch.where(terminated, 0.0, soft_value)


def sac_losses(agent: Agent, batch: ReplaySample, gamma: float
               ) -> dict[str, torch.Tensor]:
    """The three losses of one SAC step on a minibatch from the buffer (scalars).

    critic_loss = sum_j mean_B (Q_j(s, a) - y)^2     a the buffer's OLD action: Q(s, a) is
                                                      defined for any a; y from `q_target`
    actor_loss  = mean_B [alpha log pi(a~|s) - min_j Q_j(s, a~)],  a~ ~ pi(.|s) FRESH and
                  reparameterised; Q's weights frozen here, so this loss only moves theta
    alpha_loss  = -mean_B log_alpha (log pi(a~|s) + target_entropy)    raises alpha while the
                  entropy -log pi is below the target, lowers it when above
    """
    alpha = agent.log_alpha.exp().detach()
    y = q_target(agent.policy, agent.target_critic, batch.rew, batch.next_obs,
                 batch.terminated, gamma, float(alpha))
    q = agent.critic(batch.obs, batch.act)                                    # (2, B)
    critic_loss = ((q - y) ** 2).mean(dim=1).sum()
    act, logp = agent.policy.sample(batch.obs)
    q_pi = agent.critic(batch.obs, act, frozen=True).amin(dim=0)
    actor_loss = (alpha * logp - q_pi).mean()
    alpha_loss = -(agent.log_alpha * (logp.detach() + agent.target_entropy)).mean()
    return {"critic_loss": critic_loss, "actor_loss": actor_loss, "alpha_loss": alpha_loss,
            "entropy": -logp.detach().mean(), "q_mean": q.detach().mean()}


def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """phi' <- (1 - tau) phi' + tau phi: the target critics trail the critics slowly, so the
    target y does not move with every step of phi (a moving target destabilises the fit)."""
    with torch.no_grad():
        for target_param, param in zip(target.parameters(), online.parameters()):
            target_param.lerp_(param, tau)                  # t + tau (p - t)


def sac_update(agent: Agent, batch: ReplaySample, config: Config) -> dict[str, float]:
    """One gradient step of every part: the sum of the three losses of `sac_losses` (each
    reaches only its own parameters), one Adam step, then `polyak_update`. -> the losses,
    the policy's entropy, the mean Q and alpha, as floats.

    All three losses are taken at the same parameters and stepped together, one backward
    pass instead of two: the actor follows the critic as it was before this step (most
    implementations step the critic first and let the actor follow the updated one).
    """
    losses = sac_losses(agent, batch, config.gamma)
    total = losses["critic_loss"] + losses["actor_loss"]
    if config.autotune:
        total = total + losses["alpha_loss"]
    agent.optimizer.zero_grad()
    total.backward()
    agent.optimizer.step()
    polyak_update(agent.target_critic, agent.critic, config.tau)
    out = {key: value.item() for key, value in losses.items()}
    out["alpha"] = agent.alpha
    return out


# --- the training loop ------------------------------------------------------------------------

@dataclass
class OffPolicyHistory(History):
    """What a run of `train_off_policy` did. From `actor_critic.History`: env_steps,
    episode_returns, episode_steps (of the stochastic training episodes), losses (per gradient
    step: critic_loss, actor_loss, alpha_loss, entropy, q_mean, alpha) and seconds — here the
    wall-clock time of training only, evaluation excluded. Added:

    eval_steps:          env_steps at each evaluation.
    eval_returns:        mean undiscounted return of the deterministic policy tanh(mean) over
                         eval_episodes episodes, at each evaluation.
    eval_episode_returns: the eval_episodes returns of each evaluation.
    eval_train_seconds:  training seconds elapsed (evaluation excluded) at each evaluation.
    eval_seconds:        wall-clock time spent in evaluations, in total.
    """

    eval_steps: list[int] = field(default_factory=list)
    eval_returns: list[float] = field(default_factory=list)
    eval_episode_returns: list[list[float]] = field(default_factory=list)
    eval_train_seconds: list[float] = field(default_factory=list)
    eval_seconds: float = 0.0

    def first_eval_reaching(self, threshold: float) -> int | None:
        """Index of the first evaluation whose mean return is >= threshold, or None."""
        hits = np.flatnonzero(np.asarray(self.eval_returns) >= threshold)
        return int(hits[0]) if hits.size else None

    def steps_to_eval_return(self, threshold: float) -> int | None:
        """env_steps at the first evaluation with mean return >= threshold, or None."""
        i = self.first_eval_reaching(threshold)
        return None if i is None else self.eval_steps[i]

    def seconds_to_eval_return(self, threshold: float) -> float | None:
        """Training seconds (evaluation excluded) to the first evaluation >= threshold."""
        i = self.first_eval_reaching(threshold)
        return None if i is None else self.eval_train_seconds[i]


def evaluate(policy: SquashedGaussianPolicy, envs: Any, seed: int) -> np.ndarray:
    """One episode per env of a vector env with the deterministic policy tanh(mean).
    -> (n_envs,) undiscounted returns. Resets envs with `seed`."""
    obs, _ = envs.reset(seed=seed)
    low, high = envs.single_action_space.low, envs.single_action_space.high
    returns, done = np.zeros(envs.num_envs), np.zeros(envs.num_envs, dtype=bool)
    while not done.all():
        act = policy.act(obs, deterministic=True)
        obs, rew, terminated, truncated, _ = envs.step(_to_env(act, low, high))
        returns += np.where(done, 0.0, rew)
        done |= terminated | truncated
    return returns


def _to_env(act: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Actions in (-1, 1) rescaled to the env's box [low, high] (Pendulum: [-2, 2])."""
    return (low + (act + 1.0) * 0.5 * (high - low)).astype(np.float32)


def step_and_store(envs: Any, buffer: ReplayBuffer, obs: np.ndarray, autoreset: np.ndarray,
                   act: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Step the N envs with act (N, A_d) in (-1, 1) and store the valid transitions.

    obs: (N, D) the current observations; autoreset: (N,) bool, True where the previous step
    ended an episode, so this step is gymnasium's reset step: not a transition, not stored.
    Stored: (obs, act, rew, next_obs, terminated) — next_obs the true final observation on the
    step that ends an episode, terminated without truncated (a time limit bootstraps).
    -> next_obs (N, D) and autoreset (N,) for the next call; rew (N,), 0 on reset steps;
    ended (N,) bool, the episodes that ended on this step.
    """
    low, high = envs.single_action_space.low, envs.single_action_space.high
    next_obs, rew, terminated, truncated, _ = envs.step(_to_env(act, low, high))
    valid = ~autoreset
    buffer.add(obs, act, rew, next_obs, terminated, mask=valid)
    ended = (terminated | truncated) & valid
    return next_obs, ended, np.where(valid, rew, 0.0), ended


def train_off_policy(config: Config, progress: bool = False) -> OffPolicyHistory:
    """Train SAC for config.total_steps transitions; evaluate every config.eval_every.

    Runs with torch.set_num_threads(1) (small nets train far faster on one thread) and
    restores the thread count and the global torch RNG state afterwards.
    """
    import gymnasium as gym

    config.validate()
    envs = make_envs(config.env_id, config.n_envs)
    if not isinstance(envs.single_action_space, gym.spaces.Box):
        envs.close()
        raise ValueError(f"env_id: expected an env with continuous (Box) actions, got "
                         f"{config.env_id!r} with {envs.single_action_space}")
    eval_envs = make_envs(config.env_id, config.eval_episodes)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)
            return _train(config, envs, eval_envs, progress)
    finally:
        envs.close()
        eval_envs.close()
        torch.set_num_threads(threads)


def _train(config: Config, envs: Any, eval_envs: Any, progress: bool) -> OffPolicyHistory:
    """The loop of train_off_policy: act (uniformly at random until learning_starts), store,
    one sac_update per valid transition, evaluate every eval_every steps."""
    from tqdm.auto import tqdm

    obs_dim, act_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    agent = make_agent(obs_dim, act_dim, config)
    buffer = ReplayBuffer(config.buffer_size, obs_dim, act_dim)
    rng, generator = np.random.default_rng(config.seed), torch.Generator().manual_seed(config.seed)
    eval_seeds = np.random.default_rng([config.seed, 1])
    obs, _ = envs.reset(seed=config.seed)
    autoreset = np.zeros(config.n_envs, dtype=bool)
    running, history, next_eval = np.zeros(config.n_envs), OffPolicyHistory(), config.eval_every
    start = time.perf_counter()
    with tqdm(total=config.total_steps, disable=not progress, unit="step", desc="SAC") as bar:
        while history.env_steps < config.total_steps:
            if history.env_steps < config.learning_starts:
                act = rng.uniform(-1.0, 1.0, (config.n_envs, act_dim)).astype(np.float32)
            else:
                act = agent.policy.act(obs, generator)
            valid = ~autoreset
            obs, autoreset, rew, ended = step_and_store(envs, buffer, obs, autoreset, act)
            n_valid = int(valid.sum())
            history.env_steps += n_valid
            running += rew
            for n in np.flatnonzero(ended):
                history.episode_returns.append(float(running[n]))
                history.episode_steps.append(history.env_steps)
                running[n] = 0.0
            if history.env_steps >= config.learning_starts:
                for _ in range(n_valid):
                    losses = sac_update(agent, buffer.sample(config.batch_size, rng), config)
                    for key, value in losses.items():
                        history.losses.setdefault(key, []).append(value)
            bar.update(n_valid)
            if history.env_steps >= next_eval:
                history.seconds = time.perf_counter() - start
                _evaluate_into(history, agent.policy, eval_envs, int(eval_seeds.integers(2**31)))
                bar.set_postfix(eval=f"{history.eval_returns[-1]:.0f}")
                next_eval += config.eval_every
                start = time.perf_counter() - history.seconds        # the clock skips the eval
    history.seconds = time.perf_counter() - start
    return history


def _evaluate_into(history: OffPolicyHistory, policy: SquashedGaussianPolicy, envs: Any,
                   seed: int) -> None:
    """Run `evaluate` and append its results to history, timing it apart from training."""
    tic = time.perf_counter()
    returns = evaluate(policy, envs, seed)
    history.eval_seconds += time.perf_counter() - tic
    history.eval_steps.append(history.env_steps)
    history.eval_returns.append(float(returns.mean()))
    history.eval_episode_returns.append(returns.tolist())
    history.eval_train_seconds.append(history.seconds)
