"""Off-policy actor-critic with a replay buffer, exactly, on tabular MDPs (backs notebook 08).

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
The lecture accepts this bias ("we accept this bias"). Even fresh on-policy data leaves some of
it when gamma < 1: grad J weights states by the discounted occupancy sum_t gamma^t Pr(s_t = s),
a real buffer (each step stored once, sampled uniformly) by the undiscounted visits
(`undiscounted_visits`, the weighting "uniform").

This module measures the claims above exactly (numpy) on a `TabularMDP` with a softmax table:
`naive_v_fixed_point` is V of the behaviour policy, `naive_actor_gradient` is biased,
`corrected_q_fixed_point` is exactly Q^pi, `corrected_actor_gradient` differs from the true
gradient only through the state distribution (`off_policy_report` measures all of it at once,
for a buffer of one old policy or of several, `buffer_distribution`; `learning_path` gives the
policies a buffer of age k was filled by);
the same updates on a finite buffer of sampled transitions (`buffer_q_fixed_point`,
`corrected_gradient_samples`, ...) tend to these as the buffer grows.

The corrected algorithm on a continuous-action env, with the pieces that make it learn
reliably, is soft actor-critic: `acteach.sac`.

Shapes: S states, A actions, (T, N) time-major as everywhere.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from acteach._validate import as_rng, check_gamma, check_positive_int, check_real
from acteach.critic import batch_fixed_point, check_table_mdp, transitions
from acteach.estimators import score_weighted_sums
from acteach.sampling import Batch
from acteach.tabular import (
    TabularMDP,
    check_logits,
    cosine,
    exact_policy_gradient,
    exact_values,
    policy_transitions,
    sampling_horizon,
    softmax_policy,
    state_occupancy,
)

# =============================================================================================
# Tabular: what the naive update learns, and what the corrected one learns
# =============================================================================================
#
# The buffer is idealised as unlimited, so each update runs in expectation. It holds the data
# of one behaviour policy beta (logits (S, A)) or equal shares of K policies' data (logits
# (K, S, A): a FIFO replay buffer holding the last K policies' steps). Its states come with a
# weighting (`buffer_distribution`):
#   "discounted"  state s in proportion to d_beta(s) = sum_t gamma^t Pr_beta(s_t = s), the
#                 weighting `exact_policy_gradient` uses for pi (`tabular.state_occupancy`):
#                 the idealisation under which "with pi's own states the corrected gradient is
#                 exact" holds;
#   "uniform"     each step stored once, as a real replay buffer (SAC's included) holds it:
#                 s in proportion to sum_t Pr_beta(s_t = s), undiscounted, over the steps that
#                 sampling keeps (`undiscounted_visits`). Even on-policy this differs from d_pi.
# In a state s the buffer's actions follow the mix beta(a|s) of its policies' actions there,
# the next state p(s'|s, a). A critic that fits the buffer's targets perfectly, table entry by
# table entry, and refits on the new targets until they stop moving is fitted value iteration;
# its "fixed point" is where that stops. `buffer_v_fixed_point`, `buffer_q_fixed_point` and the
# `*_gradient_samples` run the same updates on a finite buffer of sampled transitions.

WEIGHTINGS = ("discounted", "uniform")


def _softmax_score_sum(w: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """sum_a w(s, a) grad_logits log pi(a|s), with d log pi(a|s) / d logits[s, b] = 1[a = b] -
    pi(b|s). w, pi: (S, A) -> (S, A), the gradient with respect to the logits table."""
    return w - w.sum(axis=1, keepdims=True) * pi


def undiscounted_visits(mdp: TabularMDP, logits: np.ndarray) -> np.ndarray:
    """(S,): sum_t Pr(s_t = s, not yet ended), the expected number of steps in s of one episode
    as `sample_trajectories` returns it (cut at the discount tail `sampling_horizon(mdp)` when
    gamma < 1 and nothing else ends it): how a buffer holding each step once weights s."""
    check_table_mdp(mdp)
    horizon = sampling_horizon(mdp)
    if horizon is None:
        return state_occupancy(mdp, logits, discount=1.0)
    live = ~mdp.terminal
    P_pi = policy_transitions(mdp, softmax_policy(check_logits(mdp, logits))) * live[:, None]
    visits, p_t = np.zeros(mdp.n_states), mdp.mu0 * live
    for _ in range(horizon):
        visits += p_t
        p_t = (p_t @ P_pi) * live
    return visits


@dataclass(frozen=True)
class BufferDistribution:
    """What an idealised buffer holds. states: (S,) weight of each state (the discounted
    occupancy or the undiscounted visits, summed over its policies' shares); actions: (S, A)
    the buffer's action mix beta(a|s) in each state (uniform where the buffer has no state)."""

    states: np.ndarray
    actions: np.ndarray


def _behaviour_stack(mdp: TabularMDP, behaviour_logits: np.ndarray) -> np.ndarray:
    """behaviour_logits (S, A) or (K, S, A), checked -> (K, S, A)."""
    stack = np.asarray(behaviour_logits, dtype=float)
    if stack.ndim != 3:
        return check_logits(mdp, stack)[None]
    if len(stack) == 0:
        raise ValueError("behaviour_logits: expected (S, A) or (K, S, A) with K >= 1, got K = 0")
    return np.stack([check_logits(mdp, b) for b in stack])


def buffer_distribution(mdp: TabularMDP, behaviour_logits: np.ndarray,
                        weighting: str = "discounted") -> BufferDistribution:
    """The states and actions of a buffer filled with equal shares (the same number of
    episodes) of the data of each behaviour policy: behaviour_logits (S, A), one policy, or
    (K, S, A), K policies. weighting: "discounted" or "uniform" (see above)."""
    check_table_mdp(mdp)
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting: expected one of {WEIGHTINGS}, got {weighting!r}")
    stack = _behaviour_stack(mdp, behaviour_logits)
    occupancy = undiscounted_visits if weighting == "uniform" else state_occupancy
    d = np.stack([occupancy(mdp, b) for b in stack])                      # (K, S)
    taken = (d[:, :, None] * softmax_policy(stack)).sum(axis=0)          # (S, A)
    states = d.sum(axis=0) / len(stack)
    total = taken.sum(axis=1, keepdims=True)
    actions = np.where(total > 0, taken / np.where(total > 0, total, 1.0), 1.0 / mdp.n_actions)
    return BufferDistribution(states, actions)


def covered_states(mdp: TabularMDP, behaviour_logits: np.ndarray) -> np.ndarray:
    """(S,) bool: the non-terminal states the buffer holds transitions from. A softmax beta
    tries every action, so the buffer covers every (s, a) of these states."""
    return (buffer_distribution(mdp, behaviour_logits).states > 0) & ~mdp.terminal


def naive_v_target(mdp: TabularMDP, behaviour_logits: np.ndarray, value: np.ndarray
                   ) -> np.ndarray:
    """The naive critic's target, averaged over the buffer's transitions from each state s:
    E_{a ~ beta(.|s), s'}[r + gamma (1 - terminal(s')) V(s')] — the actions are the buffer's
    OLD ones. value: (S,) -> (S,), 0 on terminal states."""
    return _mean_target(mdp, buffer_distribution(mdp, behaviour_logits).actions, value)


def _mean_target(mdp: TabularMDP, beta: np.ndarray, value: np.ndarray) -> np.ndarray:
    """sum_a beta(a|s) (r(s, a) + gamma E_{s'}[(1 - terminal(s')) V(s')]). beta: (S, A)."""
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
        scale = 1.0 + (np.abs(new).max() if new.size else 0.0)
        if new.size == 0 or np.abs(new - x).max() <= tol * scale:
            return new, k
        x = new
    raise ValueError(f"max_iters: no convergence to {tol:g} in {max_iters} iterations")


def naive_v_fixed_point(mdp: TabularMDP, behaviour_logits: np.ndarray, tol: float = 1e-12
                        ) -> np.ndarray:
    """Where TD(0) on the old buffer converges: V = naive_v_target(V) on the covered states
    (others stay 0). -> (S,). It is V^beta, the value of the BEHAVIOUR policy (of the buffer's
    action mix, for several policies), not V^pi."""
    return _naive_v(mdp, buffer_distribution(mdp, behaviour_logits), tol)


def _naive_v(mdp: TabularMDP, buffer: BufferDistribution, tol: float) -> np.ndarray:
    covered = (buffer.states > 0) & ~mdp.terminal
    V, _ = iterate_to_fixed_point(
        lambda V: np.where(covered, _mean_target(mdp, buffer.actions, V), V),
        np.zeros(mdp.n_states), tol)
    return V


def corrected_q_fixed_point(mdp: TabularMDP, logits: np.ndarray, behaviour_logits: np.ndarray,
                            tol: float = 1e-12) -> np.ndarray:
    """Where the corrected Q update on the same old buffer converges: Q = corrected_q_target(Q)
    on the (s, a) the buffer covers (others stay 0). -> (S, A). It is Q^pi of the CURRENT policy
    (`exact_values(mdp, logits).Q`): beta only decides which entries get fitted."""
    check_logits(mdp, logits)
    return _corrected_q(mdp, logits, buffer_distribution(mdp, behaviour_logits), tol)


def _corrected_q(mdp: TabularMDP, logits: np.ndarray, buffer: BufferDistribution, tol: float
                 ) -> np.ndarray:
    covered = ((buffer.states > 0) & ~mdp.terminal)[:, None]
    pi, live = softmax_policy(logits), ~mdp.terminal

    def update(Q: np.ndarray) -> np.ndarray:         # corrected_q_target, pi computed once
        next_v = (pi * Q).sum(axis=1) * live
        return np.where(covered, mdp.R + mdp.gamma * mdp.P @ next_v, Q)

    Q, _ = iterate_to_fixed_point(update, np.zeros((mdp.n_states, mdp.n_actions)), tol)
    return Q


def naive_actor_gradient(mdp: TabularMDP, logits: np.ndarray, behaviour_logits: np.ndarray,
                         value: np.ndarray | None = None, weighting: str = "discounted"
                         ) -> np.ndarray:
    """The naive actor's expected gradient: the on-policy formula on the buffer's old (s, a),
        sum_s d_beta(s) sum_a beta(a|s) grad log pi(a|s) E[r + gamma V(s') - V(s) | s, a],
    value: (S,) the critic, default the naive fixed point (V^beta); d_beta weighted as
    `weighting` says. -> (S, A), d/dlogits. With one policy beta, V = V^beta and the
    discounted weighting this is exactly the policy gradient of beta, not of pi."""
    pi = softmax_policy(check_logits(mdp, logits))
    buffer = buffer_distribution(mdp, behaviour_logits, weighting)
    V = _naive_v(mdp, buffer, 1e-12) if value is None else np.asarray(value, dtype=float)
    return _naive_gradient(mdp, pi, buffer, V)


def _naive_gradient(mdp: TabularMDP, pi: np.ndarray, buffer: BufferDistribution, V: np.ndarray
                    ) -> np.ndarray:
    adv = mdp.R + mdp.gamma * mdp.P @ (V * ~mdp.terminal) - V[:, None]        # E[A | s, a]
    return _softmax_score_sum(buffer.states[:, None] * buffer.actions * adv, pi)


def corrected_actor_gradient(mdp: TabularMDP, logits: np.ndarray, behaviour_logits: np.ndarray,
                             q: np.ndarray | None = None, weighting: str = "discounted"
                             ) -> np.ndarray:
    """The corrected actor's expected gradient: buffer states, FRESH actions a ~ pi,
        sum_s d_beta(s) sum_a pi(a|s) grad log pi(a|s) Q(s, a),
    q: (S, A), default the corrected fixed point (Q^pi); d_beta weighted as `weighting` says.
    -> (S, A), d/dlogits. It differs from `exact_policy_gradient` only through d_beta in place
    of d_pi: the bias the lecture accepts (and, with the "uniform" weighting of a real buffer,
    even when beta = pi)."""
    pi = softmax_policy(check_logits(mdp, logits))
    buffer = buffer_distribution(mdp, behaviour_logits, weighting)
    Q = _corrected_q(mdp, logits, buffer, 1e-12) if q is None else np.asarray(q, dtype=float)
    return _softmax_score_sum(buffer.states[:, None] * pi * Q, pi)


def learning_path(mdp: TabularMDP, start_logits: np.ndarray, n_updates: int, lr: float
                  ) -> list[np.ndarray]:
    """The policies of exact gradient ascent, theta_{k+1} = theta_k + lr grad J(theta_k), from
    start_logits: n_updates + 1 logits tables (S, A), the last the current policy. The policy
    k updates old is path[-1 - k]: what a buffer of age k was filled with."""
    check_positive_int("n_updates", n_updates)
    check_real("lr", lr, "positive")
    path = [check_logits(mdp, start_logits)]
    for _ in range(n_updates):
        path.append(path[-1] + lr * exact_policy_gradient(mdp, path[-1]))
    return path


def relative_error(g: np.ndarray, reference: np.ndarray) -> float:
    """||g - reference|| / ||reference|| (Frobenius norms)."""
    return float(np.linalg.norm(g - reference) / np.linalg.norm(reference))


def scale_optimal_error(g: np.ndarray, reference: np.ndarray) -> float:
    """min_{c >= 0} ||c g - reference|| / ||reference||: the error left when a step size picks
    the best scale: sqrt(1 - cos^2) (1 when g points away from reference or is 0), computed as
    the residual of projecting reference on g (no rounding blow-up where cos ~ 1)."""
    g, reference = np.ravel(g), np.ravel(reference)
    c = float(g @ reference) / max(float(g @ g), np.finfo(float).tiny)
    if c <= 0:
        return 1.0
    return float(np.linalg.norm(c * g - reference) / np.linalg.norm(reference))


@dataclass(frozen=True)
class OffPolicyReport:
    """The tabular claims of notebook 08, measured exactly for one (pi, buffer) pair.

    naive_v_error:            max_s |V_naive(s) - V^pi(s)| over the covered states.
    naive_v_behaviour_error:  max_s |V_naive(s) - V^beta(s)| (~0: it learns the old policy;
                              for several policies, the value of the buffer's action mix).
    naive_gradient_bias:      ||g_naive - g|| / ||g||, g = exact_policy_gradient at pi.
    naive_gradient_cosine:    cos(g_naive, g).
    naive_scale_optimal_error: min_c ||c g_naive - g|| / ||g|| (`scale_optimal_error`), the
                              error at the best step size, which absorbs the scale.
    corrected_q_error:        max_{s,a} |Q_corrected - Q^pi| over the covered (s, a) (~0).
    corrected_gradient_gap:   ||g_corrected - g|| / ||g||: the state-distribution bias that is
                              accepted (0 only if d_beta is proportional to d_pi).
    corrected_gradient_cosine: cos(g_corrected, g).
    corrected_scale_optimal_error: min_c ||c g_corrected - g|| / ||g||.
    state_distribution_gap:   total variation between the buffer's states and d_pi, each
                              normalised to 1.
    action_distribution_gap:  the buffer's mean over states of the total variation between
                              its actions beta(.|s) and pi(.|s): what the naive update gets wrong
                              and the corrected one replaces by fresh actions.
    """

    naive_v_error: float
    naive_v_behaviour_error: float
    naive_gradient_bias: float
    naive_gradient_cosine: float
    naive_scale_optimal_error: float
    corrected_q_error: float
    corrected_gradient_gap: float
    corrected_gradient_cosine: float
    corrected_scale_optimal_error: float
    state_distribution_gap: float
    action_distribution_gap: float

    def rows(self) -> list[tuple[str, float]]:
        """(name, value) of every number, for `display.table` or printing."""
        return [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]

    def table(self) -> str:
        """One line per number, for printing in a notebook."""
        return "\n".join(f"{name:27s} {value:.3g}" for name, value in self.rows())


def off_policy_report(mdp: TabularMDP, logits: np.ndarray, behaviour_logits: np.ndarray,
                      weighting: str = "discounted") -> OffPolicyReport:
    """Measure every claim at once: current policy softmax(logits), buffer from
    behaviour_logits ((S, A) one policy, (K, S, A) equal shares of K), its states weighted as
    `weighting` says. All numbers exact (no sampling)."""
    check_table_mdp(mdp)   # a table V (S,) / Q (S, A): no horizon
    buffer = buffer_distribution(mdp, behaviour_logits, weighting)
    covered = (buffer.states > 0) & ~mdp.terminal
    pi = softmax_policy(check_logits(mdp, logits))
    V_pi, Q_pi = exact_values(mdp, logits)
    V_beta = exact_values(mdp, np.log(buffer.actions)).V
    V_naive = _naive_v(mdp, buffer, 1e-12)
    Q_fix = _corrected_q(mdp, logits, buffer, 1e-12)
    g = exact_policy_gradient(mdp, logits)
    g_naive = _naive_gradient(mdp, pi, buffer, V_naive)
    g_fixed = _softmax_score_sum(buffer.states[:, None] * pi * Q_fix, pi)
    d_pi, d_buffer = state_occupancy(mdp, logits), buffer.states / buffer.states.sum()
    action_tv = 0.5 * np.abs(buffer.actions - pi).sum(axis=1)
    return OffPolicyReport(
        naive_v_error=float(np.abs(V_naive - V_pi)[covered].max()),
        naive_v_behaviour_error=float(np.abs(V_naive - V_beta)[covered].max()),
        naive_gradient_bias=relative_error(g_naive, g),
        naive_gradient_cosine=cosine(g_naive, g),
        naive_scale_optimal_error=scale_optimal_error(g_naive, g),
        corrected_q_error=float(np.abs(Q_fix - Q_pi)[covered].max()),
        corrected_gradient_gap=relative_error(g_fixed, g),
        corrected_gradient_cosine=cosine(g_fixed, g),
        corrected_scale_optimal_error=scale_optimal_error(g_fixed, g),
        state_distribution_gap=0.5 * float(np.abs(d_buffer - d_pi / d_pi.sum()).sum()),
        action_distribution_gap=float(d_buffer @ action_tv))


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


def _step_weights(batch: Batch, gamma: float, weighting: str) -> np.ndarray:
    """The weight of every step of a (T, N) batch, 0 off the mask: gamma^t ("discounted", the
    idealised buffer's d_beta) or 1 ("uniform": each stored step once, as a real buffer)."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting: expected one of {WEIGHTINGS}, got {weighting!r}")
    if weighting == "uniform":
        return batch.mask.astype(float)
    return gamma ** np.arange(batch.mask.shape[0])[:, None] * batch.mask


def naive_gradient_samples(mdp: TabularMDP, logits: np.ndarray, buffer: Batch,
                           value: np.ndarray, weighting: str = "discounted") -> np.ndarray:
    """One naive gradient per trajectory n of the buffer (sampled with beta):
        g_n = sum_t w_t grad log pi(a_t|s_t) A_t,
        A_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t),
    a_t the buffer's old action, w_t = gamma^t ("discounted") or 1 ("uniform"). buffer: a
    tabular Batch (T, N); value: (S,). -> (N, S, A); the mean over n estimates
    `naive_actor_gradient` (same weighting) without bias."""
    pi = softmax_policy(check_logits(mdp, logits))
    V = np.asarray(value, dtype=float)
    adv = buffer.rew + mdp.gamma * ~buffer.terminated * V[buffer.next_obs] - V[buffer.obs]
    w = _step_weights(buffer, mdp.gamma, weighting) * adv
    N = buffer.mask.shape[1]
    return score_weighted_sums(pi, buffer, w, np.arange(N), N)


def corrected_gradient_samples(mdp: TabularMDP, logits: np.ndarray, buffer: Batch,
                               q: np.ndarray, rng: np.random.Generator,
                               weighting: str = "discounted") -> np.ndarray:
    """One corrected gradient per trajectory n of the buffer, each old action replaced by a
    FRESH a^pi_t ~ pi(.|s_t):  g_n = sum_t w_t grad log pi(a^pi_t|s_t) Q(s_t, a^pi_t), w_t =
    gamma^t ("discounted") or 1 ("uniform"). q: (S, A). -> (N, S, A); the mean over n
    estimates `corrected_actor_gradient` (same weighting) without bias."""
    rng = as_rng(rng)
    pi = softmax_policy(check_logits(mdp, logits))
    u = rng.random(buffer.obs.shape)
    fresh = (np.cumsum(pi, axis=1)[buffer.obs] < u[..., None]).sum(axis=-1)   # inverse CDF
    fresh = np.minimum(fresh, mdp.n_actions - 1)
    w = _step_weights(buffer, mdp.gamma, weighting) * np.asarray(q, dtype=float)[buffer.obs, fresh]
    N = buffer.mask.shape[1]
    return score_weighted_sums(pi, dataclasses.replace(buffer, act=fresh), w, np.arange(N), N)
