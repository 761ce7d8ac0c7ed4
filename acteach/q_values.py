"""Q in place of the single-sample return (backs notebook 02, use Q).

The reward-to-go Q_hat_{n,t} is one sample of what (s_t, a_t) is worth. Its expectation is

    Q^pi(s_t, a_t) = E[ sum_{t' >= t} gamma^(t'-t) r_t' | s_t, a_t ],

quieter but unknown. Three ways to get it: exactly, on a tabular MDP (`exact_q_weights`); by
averaging k fresh rollouts from (s_t, a_t) (`mc_q_estimate`): unbiased, less noisy as k grows,
and k times the environment steps; or from V in one step (`q_from_v`),

    Q^pi(s, a) = r(s, a) + gamma E[V^pi(s') | s, a],

whose one-sample form r_t + gamma V^pi(s_{t+1}) is why a critic fits V (S inputs), not Q
(S x A): Q follows from V. Arrays are time-major (T, N).
"""
from __future__ import annotations

import numpy as np

from acteach._validate import as_rng, check_positive_int
from acteach.tabular import TabularMDP, exact_values, rollout_returns


def time_indexed(table: np.ndarray, mdp: TabularMDP, obs: np.ndarray, *rest: np.ndarray
                 ) -> np.ndarray:
    """Look up V[s] / Q[s, a] (infinite horizon) or V[t, s] / Q[t, s, a] (finite horizon) at
    every step of a (T, N) batch: obs, and act for Q. -> (T, N)."""
    if mdp.horizon is None:
        return table[(obs, *rest)]
    t = np.broadcast_to(np.arange(obs.shape[0])[:, None], obs.shape)
    return table[(t, obs, *rest)]


def q_from_v(mdp: TabularMDP, V: np.ndarray) -> np.ndarray:
    """Q(s, a) = r(s, a) + gamma sum_s' p(s'|s, a) V(s'), a terminal state's V counting as 0
    (nothing follows it). V: (S,) -> Q (S, A); with a horizon H, V: (H + 1, S) indexed by the
    step -> Q (H, S, A), Q_t from V_{t+1}. With V = V^pi this is Q^pi (`exact_values`)."""
    V = np.asarray(V, dtype=float)
    expected = (mdp.n_states,) if mdp.horizon is None else (mdp.horizon + 1, mdp.n_states)
    if V.shape != expected:
        raise ValueError(f"V: expected shape {expected} for this MDP, got {V.shape}")
    after = np.where(mdp.terminal, 0.0, V if mdp.horizon is None else V[1:])
    return mdp.R + mdp.gamma * np.einsum("sax,...x->...sa", mdp.P, after)


def exact_q_weights(mdp: TabularMDP, logits: np.ndarray, obs: np.ndarray, act: np.ndarray,
                    mask: np.ndarray) -> np.ndarray:
    """Q^pi(s_t, a_t) at every valid step, exactly; 0 elsewhere. obs, act, mask: (T, N)."""
    Q = exact_values(mdp, logits).Q
    return np.where(mask, time_indexed(Q, mdp, obs, act), 0.0)


def mc_q_estimate(mdp: TabularMDP, logits: np.ndarray, obs: np.ndarray, act: np.ndarray,
                  mask: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Q_hat^(k)(s_t, a_t): the mean return of k fresh rollouts from each valid (s_t, a_t).

    obs, act, mask: (T, N). Returns (T, N) estimates (0 where mask is False) and the environment
    steps the k rollouts per step cost. With k = 1 each estimate has the distribution of the
    reward-to-go Q_hat_t, but the rollouts of different steps are independent, whereas the
    reward-to-gos of one trajectory share their future: the gradient's variance differs a little.
    """
    rng = as_rng(rng)
    check_positive_int("k", k)
    t, n = np.nonzero(mask)
    reps = np.repeat(np.arange(t.size), k)                    # k rollouts per valid step
    returns, steps = rollout_returns(mdp, logits, obs[t, n][reps], act[t, n][reps], t[reps], rng)
    q = np.zeros(mask.shape)
    q[t, n] = returns.reshape(t.size, k).mean(axis=1) if t.size else 0.0
    return q, steps
