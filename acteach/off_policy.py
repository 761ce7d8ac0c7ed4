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
The lecture accepts this bias ("we accept this bias").

This module measures the claims above exactly (numpy) on a `TabularMDP` with a softmax table:
`naive_v_fixed_point` is V of the behaviour policy, `naive_actor_gradient` is biased,
`corrected_q_fixed_point` is exactly Q^pi, `corrected_actor_gradient` differs from the true
gradient only through the state distribution (`off_policy_report` measures all of it at once);
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

from acteach._validate import as_rng, check_gamma, check_positive_int
from acteach.critic import batch_fixed_point, check_table_mdp, transitions
from acteach.estimators import score_weighted_sums
from acteach.sampling import Batch
from acteach.tabular import (
    TabularMDP,
    check_logits,
    cosine,
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
    rng = as_rng(rng)
    pi = softmax_policy(check_logits(mdp, logits))
    u = rng.random(buffer.obs.shape)
    fresh = (np.cumsum(pi, axis=1)[buffer.obs] < u[..., None]).sum(axis=-1)   # inverse CDF
    fresh = np.minimum(fresh, mdp.n_actions - 1)
    w = _discounted_steps(buffer, mdp.gamma) * np.asarray(q, dtype=float)[buffer.obs, fresh]
    N = buffer.mask.shape[1]
    return score_weighted_sums(pi, dataclasses.replace(buffer, act=fresh), w, np.arange(N), N)
