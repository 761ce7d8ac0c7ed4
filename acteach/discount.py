"""The discount factor, both kinds (backs notebook 05, discount).

Without a discount the sum of rewards of a continuing task diverges; with gamma in [0, 1) it
converges, and two places of the algorithm change (`acteach.advantages`):

    V's target           y_t = r_t + gamma * V(s_{t+1})
    the advantage        A_t = r_t + gamma * V(s_{t+1}) - V(s_t)

and a time limit (truncation) is not a terminal state: the target bootstraps there.

The policy gradient can then take the discount in two ways (t counted from 0, the library's
convention; the lecture counts from 1 and writes gamma^(t-1)):

    option 1:  g_1 = E[ sum_t grad log pi(a_t|s_t) sum_{t'>=t} gamma^(t'-t) r_t' ]
    option 2:  g_2 = E[ sum_t gamma^t grad log pi(a_t|s_t) sum_{t'>=t} gamma^(t'-t) r_t' ]

Option 2 is the true gradient of the discounted objective J_gamma = E[sum_t gamma^t r_t]
(= `tabular.exact_policy_gradient`). Option 1 is what practice uses; it is the gradient of no
objective in general, but on an episodic task it weights every step fully. On a tabular MDP both
expectations are exact:

    g_k = sum_t sum_s c_k^t Pr(s_t = s) sum_a pi(a|s) grad log pi(a|s) Q_gamma,t(s, a),
    c_2 = gamma, c_1 = 1,

i.e. sum_s D(s) pi(b|s) (Q_gamma(s, b) - V_gamma(s)) with D(s) = sum_t c^t Pr(s_t = s) the
visits counted with discount c (`tabular.state_occupancy(mdp, logits, discount=c)`). With
c = 1 the sum over t is finite only when episodes end (terminal states or a horizon): option 1
is undefined on a continuing MDP. `expected_gradient` computes both, `compare_options` and
`cosine_table` set them against grad J_gamma and grad J_1 (`undiscounted_gradient`);
`with_gamma`, `with_death` (option 2's world, where every step ends the episode with
probability 1 - gamma), `undiscounted` and `road_mdp` (long episodes, local consequences) are the
MDPs the notebook compares them on, and `expected_rewards` shows the divergence step by step.

Truncation, on CartPole: `discounted_td_advantage` (exercise 5.1's library version, terminated
and truncated apart), `cartpole_with_time_limit` (CartPole-v1 run past step 500),
`linear_controller` (a fixed stochastic policy) and `errors_by_distance` (a target's error by
how far before the time limit it was taken).

Shapes: S states, A actions, H the horizon (when finite), T steps, N trajectories.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from acteach._validate import (check_discount_option, check_flags, check_gamma, check_positive_int,
                               check_seed)
from acteach.advantages import td_advantage
from acteach.tabular import (
    TabularMDP,
    check_episodic,
    check_logits,
    cosine,
    exact_policy_gradient,
    exact_values,
    policy_transitions,
    softmax_gradient,
    softmax_policy,
    state_occupancy,
)

DISCOUNT_OPTIONS = (1, 2)


# ---------------------------------------------------------------------------------------------
# The MDP with another gamma; the undiscounted objective
# ---------------------------------------------------------------------------------------------

def with_gamma(mdp: TabularMDP, gamma: float) -> TabularMDP:
    """The same MDP with discount factor gamma (a ValueError naming gamma if not in [0, 1])."""
    check_gamma(gamma)
    return dataclasses.replace(mdp, gamma=float(gamma))


def with_death(mdp: TabularMDP) -> TabularMDP:
    """Option 2's world: the same MDP, undiscounted, in which every step also ends the episode
    with probability 1 - gamma (into an extra terminal state, the last one, named "ended").

    Its return is J_gamma of the original (a reward t steps ahead is collected only if the
    episode survived t steps, with probability gamma^t), so its undiscounted policy gradient,
    restricted to the original states, is option 2's expectation. S + 1 states."""
    S, g = mdp.n_states, mdp.gamma
    P = np.zeros((S + 1, mdp.n_actions, S + 1))
    P[:S, :, :S] = g * mdp.P
    P[:S, :, S] = 1.0 - g
    P[S, :, S] = 1.0
    R = np.vstack([mdp.R, np.zeros((1, mdp.n_actions))])
    names = None if mdp.names is None else (*mdp.names, "ended")
    return TabularMDP(P, R, np.append(mdp.mu0, 0.0), gamma=1.0, horizon=mdp.horizon,
                      terminal=np.append(mdp.terminal, True), names=names)


def undiscounted(mdp: TabularMDP) -> TabularMDP:
    """The same MDP with gamma = 1: its objective J_1 = E[sum_t r_t] is the return the
    practitioner cares about. ValueError on a continuing MDP, where J_1 is infinite."""
    check_episodic(mdp, "the undiscounted objective")
    return with_gamma(mdp, 1.0)


def road_mdp(length: int = 40, setback: float = 0.3, gamma: float = 1.0, seed: int = 0
             ) -> TabularMDP:
    """A road of `length` states walked in order to a terminal end: long episodes whose
    decisions have local consequences (the regime of practice: episode >> 1 / (1 - gamma)).

    In state s, action 0 (drive on) pays 0 and moves to s + 1; action 1 (stop at the roadside
    offer) pays the offer b_s and, with probability `setback`, loses a step (stays at s). The
    offers b_s ~ N(0, 1), rounded to 0.01, are fixed by `seed`. An action's consequences are its
    own reward and at most a delay, so a discounted advantage hardly differs from an
    undiscounted one; but the states are visited at very different times (state s around t = s).
    """
    check_seed(seed)
    check_positive_int("length", length)
    if not 0.0 <= setback < 1.0:
        raise ValueError(f"setback: expected a probability in [0, 1), got {setback}")
    offers = np.random.default_rng(seed).normal(size=length).round(2)
    S = length + 1
    P, R = np.zeros((S, 2, S)), np.zeros((S, 2))
    for s in range(length):
        P[s, 0, s + 1] = 1.0
        P[s, 1, s + 1] = 1.0 - setback
        P[s, 1, s] += setback
        R[s, 1] = offers[s]
    mu0, terminal = np.zeros(S), np.zeros(S, dtype=bool)
    mu0[0], terminal[length] = 1.0, True
    names = tuple(str(s) for s in range(length)) + ("end",)
    return TabularMDP(P, R, mu0, gamma=gamma, terminal=terminal, names=names)


# ---------------------------------------------------------------------------------------------
# Expected rewards, step by step
# ---------------------------------------------------------------------------------------------

def expected_rewards(mdp: TabularMDP, logits: np.ndarray, n_steps: int) -> np.ndarray:
    """E[r(s_t, a_t)] for t = 0..n_steps-1, undiscounted (0 once the episode has ended or the
    horizon has passed). Works on a continuing MDP: its partial sums show the divergence.
    -> (n_steps,)."""
    check_positive_int("n_steps", n_steps)
    pi = softmax_policy(check_logits(mdp, logits))
    P_pi = policy_transitions(mdp, pi) * ~mdp.terminal[:, None]     # stops at terminal states
    r_pi = (pi * mdp.R).sum(axis=1) * ~mdp.terminal
    out = np.zeros(n_steps)
    p = mdp.mu0.copy()
    last = n_steps if mdp.horizon is None else min(n_steps, mdp.horizon)
    for t in range(last):
        out[t] = p @ r_pi
        p = p @ P_pi
    return out


# ---------------------------------------------------------------------------------------------
# The exact expectation of each option
# ---------------------------------------------------------------------------------------------

def expected_gradient(mdp: TabularMDP, logits: np.ndarray, discount_option: int) -> np.ndarray:
    """The exact expectation of the estimator with reward-to-go (or Q_gamma) weights under a
    discount option, (S, A):

        option 2:  sum_t gamma^t E[grad log pi(a_t|s_t) Q_gamma,t(s_t, a_t)]  = grad J_gamma
        option 1:  sum_t         E[grad log pi(a_t|s_t) Q_gamma,t(s_t, a_t)]

    For the softmax table, dJ/dlogits[s, b] = sum_t c^t Pr(s_t = s) pi(b|s) (Q_t(s, b) - V_t(s)),
    c = gamma (option 2) or 1 (option 1). Option 1 raises ValueError on a continuing MDP (no
    horizon, some state cannot terminate): its sum over t diverges.
    """
    option = check_discount_option(discount_option)
    logits = check_logits(mdp, logits)
    if option == 1:
        check_episodic(mdp, "discount option 1")
    V, Q = exact_values(mdp, logits)
    adv = Q - (V[:-1, :, None] if mdp.horizon is not None else V[:, None])
    D = state_occupancy(mdp, logits, mdp.gamma if option == 2 else 1.0)
    return softmax_gradient(D, softmax_policy(logits), adv)


def undiscounted_gradient(mdp: TabularMDP, logits: np.ndarray) -> np.ndarray:
    """grad J_1, the exact gradient of the undiscounted return E[sum_t r_t] of the same MDP,
    (S, A). ValueError on a continuing MDP."""
    return expected_gradient(undiscounted(mdp), logits, 2)


@dataclasses.dataclass(frozen=True)
class OptionComparison:
    """Both options' exact expectations on one MDP at one policy, next to the exact gradients of
    the discounted objective J_gamma and of the undiscounted one J_1. All (S, A)."""

    gamma: float
    option1: np.ndarray
    option2: np.ndarray
    discounted: np.ndarray
    undiscounted: np.ndarray

    def cosines(self) -> dict[str, float]:
        """cos(E[g_k], grad J) for k = 1, 2 and J = J_gamma, J_1."""
        return {f"option {k} vs grad J_{target}": cosine(g, ref)
                for k, g in ((1, self.option1), (2, self.option2))
                for target, ref in (("gamma", self.discounted), ("1", self.undiscounted))}


def compare_options(mdp: TabularMDP, logits: np.ndarray) -> OptionComparison:
    """Exact E[g_1], E[g_2], grad J_gamma and grad J_1 on an episodic or finite-horizon MDP."""
    return OptionComparison(mdp.gamma, expected_gradient(mdp, logits, 1),
                            expected_gradient(mdp, logits, 2),
                            exact_policy_gradient(mdp, logits),
                            undiscounted_gradient(mdp, logits))


def cosine_table(rows: Sequence[tuple[str, OptionComparison]]) -> str:
    """A text table of the four cosines (and the norms) of labelled comparisons."""
    head = (f"{'MDP':<34}{'gamma':>6}{'cos(g1,J_g)':>13}{'cos(g1,J_1)':>13}{'cos(g2,J_g)':>13}"
            f"{'cos(g2,J_1)':>13}{'|g1|':>9}{'|g2|':>9}{'|grad J_1|':>12}")
    lines = [head, "-" * len(head)]
    for label, c in rows:
        cos = c.cosines()
        lines.append(
            f"{label:<34}{c.gamma:>6.3g}{cos['option 1 vs grad J_gamma']:>13.4f}"
            f"{cos['option 1 vs grad J_1']:>13.4f}{cos['option 2 vs grad J_gamma']:>13.4f}"
            f"{cos['option 2 vs grad J_1']:>13.4f}{np.linalg.norm(c.option1):>9.4f}"
            f"{np.linalg.norm(c.option2):>9.4f}{np.linalg.norm(c.undiscounted):>12.4f}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The discounted advantage with terminated and truncated apart (exercise 5.1's library version)
# ---------------------------------------------------------------------------------------------

def discounted_td_advantage(rew: np.ndarray, value: np.ndarray, next_value: np.ndarray,
                            terminated: np.ndarray, truncated: np.ndarray, mask: np.ndarray,
                            gamma: float) -> np.ndarray:
    """A_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t) on valid steps, 0 elsewhere.

    A truncated step bootstraps (a time limit is not a terminal state); a step both terminated
    and truncated counts as terminated. rew, value, next_value: (T, N) float; terminated,
    truncated, mask: (T, N) bool or 0/1. -> (T, N). `truncated` is checked but, as the formula
    shows, not needed: only termination stops the bootstrap (never terminated | truncated).
    """
    check_flags("truncated", truncated, np.shape(rew))
    return td_advantage(rew, value, next_value, terminated, mask, gamma)


# ---------------------------------------------------------------------------------------------
# CartPole past its time limit
# ---------------------------------------------------------------------------------------------

def cartpole_with_time_limit(max_episode_steps: int) -> str:
    """The id of CartPole-v1 with another time limit (registered on first use), for
    `sampling.sample_episodes`: the same dynamics, reset and vector env, so with the same seed and
    policy its episodes are CartPole-v1's, continued past step 500."""
    import gymnasium as gym

    check_positive_int("max_episode_steps", max_episode_steps)
    env_id = f"acteach/CartPoleT{max_episode_steps}-v1"
    if env_id not in gym.registry:
        base = gym.spec("CartPole-v1")
        gym.register(id=env_id, entry_point=base.entry_point,
                     vector_entry_point=base.vector_entry_point,
                     max_episode_steps=max_episode_steps,
                     reward_threshold=base.reward_threshold)
    return env_id


def linear_controller(weights: Sequence[float], sharpness: float):
    """A stochastic linear controller as a `nets.CategoricalPolicy` with no hidden layer:
    logit(action 1) - logit(action 0) = sharpness * weights . obs, so
    pi(1 | obs) = sigmoid(sharpness * weights . obs). weights: (D,); larger sharpness, closer to
    the deterministic rule "action 1 iff weights . obs > 0"."""
    import torch

    from acteach.nets import CategoricalPolicy

    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w)):
        raise ValueError(f"weights: expected a finite (D,) vector, got {weights!r}")
    if not np.isfinite(sharpness) or sharpness <= 0:
        raise ValueError(f"sharpness: expected a positive number, got {sharpness!r}")
    policy = CategoricalPolicy(obs_dim=w.size, n_actions=2, hidden=())
    layer = policy.logits_net[0]
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
        layer.weight[1] = torch.as_tensor(sharpness * w, dtype=layer.weight.dtype)
    return policy


@dataclasses.dataclass(frozen=True)
class ErrorRow:
    """Errors of one group of targets: steps whose distance to the time limit is in [lo, hi)."""

    lo: int
    hi: int
    count: int
    mean: float
    se: float
    rms: float


def errors_by_distance(error: np.ndarray, distance: np.ndarray,
                       edges: Sequence[int]) -> list[ErrorRow]:
    """Group target errors by how many steps before the time limit they were taken.
    error, distance: (B,) float / int, one per valid step; edges: increasing bin edges.
    -> one ErrorRow per bin [edges[i], edges[i + 1]): count, mean +- SE, root mean square."""
    error, distance = np.asarray(error, dtype=float), np.asarray(distance)
    if error.shape != distance.shape or error.ndim != 1:
        raise ValueError(f"distance: expected the shape of error, {error.shape}, "
                         f"got {distance.shape}")
    edges = list(edges)
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges: expected at least two increasing edges, got {edges}")
    rows = []
    for lo, hi in zip(edges, edges[1:]):
        e = error[(distance >= lo) & (distance < hi)]
        se = float(e.std(ddof=1) / np.sqrt(e.size)) if e.size > 1 else float("nan")
        rows.append(ErrorRow(lo, hi, int(e.size), float(e.mean()) if e.size else float("nan"),
                             se, float(np.sqrt((e ** 2).mean())) if e.size else float("nan")))
    return rows
