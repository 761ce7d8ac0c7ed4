"""Where the variance of the policy gradient comes from (backs notebook 09, n-step returns and
GAE: what a critic can remove, and what no baseline can; Tucker et al. 2018, "The Mirage of
Action-Dependent Baselines").

One trajectory's estimate is g = sum_t g_t, with the step terms

    g_t = d_t (grad log pi(a_t|s_t) w_t + h_t(s_t)),     d_t = gamma^t (discount option 2) or 1,

w_t the weight of a method and h_t(s) a term that depends on the state only (0 except for the
action-dependent control variate below). Each step term has three sources of randomness: the
state s_t (and whether the episode is still running), the action a_t, and the future after
(s_t, a_t), which the weight may depend on. The law of total variance splits Var(g_t), the trace
of its covariance, into

    state   Var_s( E[g_t | s_t] )               the states visited; no baseline touches it
    action  E_s[ Var_a( E[g_t | s_t, a_t] ) ]   the actions' different values; a baseline b(s)
                                                lowers it, Q_hat(s, a) with its correction can
                                                remove it
    future  E_{s,a}[ Var( g_t | s_t, a_t ) ]    the luck of what follows; only replacing the
                                                sampled return by a critic removes it

(s_t takes the value "ended" once the episode is over; then g_t = 0). The three sum to Var(g_t);
`VarianceDecomposition` holds them per step and summed over t. The variance of the whole estimate
also has the covariances between the steps' terms (they share states and futures):

    Var(g) = sum_t [state_t + action_t + future_t] + across_steps.

Everything is exact: backward recursions over the MDP's probabilities for the first and second
moments of the weights and of g, a forward recursion for the state distribution. The first two
moments of the return itself, `return_moments`, are also what the checker of exercise 2.1
measures Monte Carlo Q estimates against. The weights are
those of the registered methods that are a multiple c of the reward-to-go plus a function of
(s_t, a_t): reward_to_go, baseline_v_exact, baseline_v, q_exact, advantage_exact, and the control
variate. Episodes are cut where the sampler cuts them (the horizon, or the discount tail when
gamma < 1 and there is no horizon), so the numbers are those of the estimator as sampled.

The action-dependent control variate (Q-Prop, Gu et al. 2017; Stein control variates, Liu et al.
2018) subtracts Q_hat(s_t, a_t), which depends on the action, and adds back its exact expectation:

    g_t = d_t ( grad log pi(a_t|s_t) (Q_hat_t - Q_hat(s_t, a_t))
                + sum_a pi(a|s_t) grad log pi(a|s_t) Q_hat(s_t, a) ),

unbiased for any Q_hat.

`mean_weight` gives E[w_t | s_t, a_t] of the n-step advantage and of GAE with any critic table
(the exact bias a wrong critic gives them, notebook 09's lab). Shapes: S states, A actions,
T steps, N trajectories, R estimates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from acteach._validate import as_rng, check_discount_option, check_lam, check_positive_int
from acteach.estimators import (GradientStats, estimates_from_batch, expected_counts,
                                score_weighted_sums, summarize)
from acteach.returns import discounts
from acteach.sampling import Batch
from acteach.tabular import (
    MAX_STEPS,
    TabularMDP,
    check_logits,
    exact_policy_gradient,
    exact_values,
    policy_transitions,
    sample_trajectories,
    sampling_horizon,
    softmax_policy,
)

#: With gamma = 1 and no horizon the recursions stop once Pr(still running) is below this.
SURVIVAL_TAIL = 1e-15

#: The methods `variance_decomposition` knows, each a weight c * Q_hat_t + f_t(s_t, a_t).
DECOMPOSABLE = ("reward_to_go", "baseline_v_exact", "baseline_v", "q_exact", "advantage_exact",
                "control_variate")


@dataclass(frozen=True)
class VarianceDecomposition:
    """The exact variance of one trajectory's estimate g = sum_t g_t, split by its sources.

    state, action, future, per_step: (T,) the parts of Var(g_t) at each step t (their sum is
    per_step); total: Var(g), the trace of the covariance of the whole estimate; mean: (S, A),
    E[g]. T is the longest an episode can last (or the step where the survival probability
    falls below SURVIVAL_TAIL).
    """

    method: str
    state: np.ndarray
    action: np.ndarray
    future: np.ndarray
    per_step: np.ndarray
    total: float
    mean: np.ndarray

    @property
    def across_steps(self) -> float:
        """sum_{t != t'} Cov(g_t, g_t'): what the steps' terms add by moving together."""
        return self.total - float(self.per_step.sum())

    def row(self) -> dict:
        """The parts summed over t, for a table: they add up to `total`."""
        return {"method": self.method, "state": float(self.state.sum()),
                "action": float(self.action.sum()), "future": float(self.future.sum()),
                "across steps": self.across_steps, "total": self.total}


def _steps(mdp: TabularMDP, P_pi: np.ndarray) -> int:
    """How many steps the recursions run: the sampler's cut, or, when episodes only end at
    terminal states, until Pr(still running) < SURVIVAL_TAIL."""
    cap = sampling_horizon(mdp)
    if cap is not None:
        return cap
    p = mdp.mu0.copy()
    for t in range(1, MAX_STEPS):
        p = (p @ P_pi) * ~mdp.terminal
        if p.sum() < SURVIVAL_TAIL:
            return t
    raise ValueError(f"mdp: episodes still running after {MAX_STEPS} steps")


@dataclass(frozen=True)
class ReturnMoments:
    """The first two moments of the return G_t = sum_{t' >= t} gamma^(t' - t) r_t' of one
    rollout from step t, episodes cut after T steps as `_steps` says (the horizon H on a finite
    horizon): Q[t, s, a] = E[G_t | s_t = s, a_t = a] and M2[t, s, a] = E[G_t^2 | s, a], (T, S, A);
    V[t, s] and W[t, s], the same averaged over pi(a|s), (T+1, S), 0 at terminal states and at
    t = T. On a finite horizon Q and V are `tabular.exact_values`' Q and V."""

    Q: np.ndarray
    M2: np.ndarray
    V: np.ndarray
    W: np.ndarray

    @property
    def variance(self) -> np.ndarray:
        """Var[G_t | s_t = s, a_t = a] = M2 - Q^2 (0 where rounding makes it negative):
        (T, S, A)."""
        return np.maximum(self.M2 - self.Q ** 2, 0.0)


def return_moments(mdp: TabularMDP, logits: np.ndarray) -> ReturnMoments:
    """The mean and second moment of the return of one rollout from (s, a) taken at step t,
    exactly (see `ReturnMoments`). Backwards in time, with G = r(s, a) + gamma G' (r is
    deterministic given (s, a)) and primes for the next state averaged over s' ~ p(.|s, a):

        E[G] = r + gamma V',    E[G^2] = r^2 + 2 gamma r V' + gamma^2 W'.
    """
    pi, live, g = softmax_policy(check_logits(mdp, logits)), ~mdp.terminal, mdp.gamma
    T, (S, A) = _steps(mdp, policy_transitions(mdp, pi)), pi.shape
    V, W = np.zeros((T + 1, S)), np.zeros((T + 1, S))
    Q, M2 = np.zeros((T, S, A)), np.zeros((T, S, A))
    for t in reversed(range(T)):
        ev, ew = mdp.P @ (V[t + 1] * live), mdp.P @ (W[t + 1] * live)
        Q[t] = mdp.R + g * ev
        M2[t] = mdp.R ** 2 + 2 * g * mdp.R * ev + g ** 2 * ew
        V[t], W[t] = (pi * Q[t]).sum(axis=1) * live, (pi * M2[t]).sum(axis=1) * live
    return ReturnMoments(Q, M2, V, W)


def _by_step(table: np.ndarray, T: int, per_step: bool, S: int, A: int) -> np.ndarray:
    """A V table ((S,), or (H+1, S) per step) or a Q table ((S, A), or (H, S, A) per step) as
    (T, S, A): one slice per step t, V repeated over the actions."""
    table = table[:T] if per_step else np.broadcast_to(table, (T,) + table.shape)
    return np.broadcast_to(table if table.ndim == 3 else table[..., None], (T, S, A))


def _weight(mdp: TabularMDP, logits: np.ndarray, method: str, T: int, value, q_hat
            ) -> tuple[float, np.ndarray, np.ndarray]:
    """The weight w_t = c * Q_hat_t + f_t(s, a) and the state term h_t(s) of `method`:
    c, f (T, S, A) and h (T, S, A), h[t, s] the row s of h_t(s) (its other rows are 0)."""
    S, A = mdp.n_states, mdp.n_actions
    finite = mdp.horizon is not None
    V, Q = (_by_step(x, T, finite, S, A) for x in exact_values(mdp, logits))
    zero = np.zeros((T, S, A))
    if method == "reward_to_go":
        return 1.0, zero, zero
    if method == "baseline_v_exact":
        return 1.0, -V, zero
    if method == "baseline_v":
        table = None if value is None else np.asarray(value, dtype=float)
        shapes = [(S,)] + ([(mdp.horizon + 1, S)] if finite else [])
        if table is None or table.shape not in shapes:
            raise ValueError(f"value: method 'baseline_v' needs a table of V of shape "
                             f"{' or '.join(map(str, shapes))}, got "
                             f"{None if table is None else table.shape}")
        return 1.0, -_by_step(table, T, table.ndim == 2, S, A), zero
    if method == "q_exact":
        return 0.0, Q, zero
    if method == "advantage_exact":
        return 0.0, Q - V, zero
    if method == "control_variate":
        q = Q if q_hat is None else _q_hat_table(mdp, q_hat, T)
        return 1.0, -q, _expected_score_term(softmax_policy(logits), q)
    raise ValueError(f"method: expected one of {list(DECOMPOSABLE)}, got {method!r}")


def _expected_score_term(pi: np.ndarray, q: np.ndarray) -> np.ndarray:
    """h(s) = sum_a pi(a|s) grad log pi(a|s) Q_hat(s, a), whose only nonzero row is row s:
    pi(.|s) * (Q_hat(s, .) - sum_a pi(a|s) Q_hat(s, a)). q (..., S, A) -> (..., S, A)."""
    return pi * (q - (pi * q).sum(axis=-1, keepdims=True))


def _q_hat_table(mdp: TabularMDP, q_hat: np.ndarray, T: int) -> np.ndarray:
    """q_hat (S, A), or (H, S, A) on a finite horizon, as (T, S, A); else a ValueError."""
    q_hat = np.asarray(q_hat, dtype=float)
    S, A = mdp.n_states, mdp.n_actions
    if q_hat.shape == (S, A):
        return np.broadcast_to(q_hat, (T, S, A))
    if mdp.horizon is not None and q_hat.shape == (mdp.horizon, S, A):
        return q_hat[:T]
    raise ValueError(f"q_hat: expected a table (S, A) = {(S, A)} (or (H, S, A) on a finite "
                     f"horizon), got shape {q_hat.shape}")


def _scores(pi: np.ndarray) -> np.ndarray:
    """psi[s, a] = grad log pi(a|s) w.r.t. the logits, flattened: (S, A, S*A)."""
    S, A = pi.shape
    psi = np.zeros((S, A, S, A))
    for s in range(S):
        psi[s, :, s, :] = np.eye(A) - pi[s]
    return psi.reshape(S, A, S * A)


def variance_decomposition(mdp: TabularMDP, logits: np.ndarray, method: str = "reward_to_go",
                           discount_option: int = 2, value: np.ndarray | None = None,
                           q_hat: np.ndarray | None = None) -> VarianceDecomposition:
    """The exact state / action / future parts of the variance of one trajectory's estimate
    with the weights of `method` (one of DECOMPOSABLE), and its total variance and mean.

    value: the V table of "baseline_v"; q_hat: the Q_hat (S, A) or (H, S, A) of
    "control_variate" (None: the exact Q^pi). discount_option: 2 multiplies step t by gamma^t.

    Backwards in t, with x_t = g_t / d_t and G_t = x_t + d G_{t+1} (d = gamma under option 2,
    else 1; g = G_0), primes for the next state's quantities averaged over s' ~ p(.|s, a):

        Q_t = r + gamma V'             M2_t = E[Q_hat_t^2 | s, a] = r^2 + 2 gamma r V' + gamma^2 W'
        E[G_t | s, a] = u + c gamma psi V' + d mu',      u = psi (c r + f_t) + h_t,

    and likewise E[Q_hat_t G_t | s, a] and E[|G_t|^2 | s, a]; V, W, mu, nu, kappa are these
    averaged over pi(a|s). Forwards: Pr(s_t = s, still running), then the parts at each step.
    """
    logits = check_logits(mdp, logits)
    option = check_discount_option(discount_option)
    pi, live, g = softmax_policy(logits), ~mdp.terminal, mdp.gamma
    S, A = pi.shape
    P_pi = policy_transitions(mdp, pi)
    T = _steps(mdp, P_pi)
    c, f, h = _weight(mdp, logits, method, T, value, q_hat)
    psi = _scores(pi)                                              # (S, A, K)
    psi2 = 1.0 - 2.0 * pi + (pi ** 2).sum(axis=1, keepdims=True)   # |psi(s, a)|^2
    h_rows = np.einsum("sx,tsa->tsxa", np.eye(S), h).reshape(T, S, S * A)   # h_t(s) in row s
    d = g if option == 2 else 1.0
    R, K = mdp.R, S * A

    # backwards: first and second moments of the reward-to-go (return_moments) and of G_t
    moments = return_moments(mdp, logits)
    mu, nu, kappa = np.zeros((S, K)), np.zeros((S, K)), np.zeros(S)
    m1, m2 = np.zeros((T, S, A)), np.zeros((T, S, A))          # E[w_t | s, a], E[w_t^2 | s, a]
    for t in reversed(range(T)):
        EV, EW, Ek = (mdp.P @ (x * live) for x in (moments.V[t + 1], moments.W[t + 1], kappa))
        Emu, Enu = (np.einsum("sax,xk->sak", mdp.P, x * live[:, None]) for x in (mu, nu))
        Q, M2 = moments.Q[t], moments.M2[t]
        m1[t], m2[t] = c * Q + f[t], c ** 2 * M2 + 2 * c * f[t] * Q + f[t] ** 2
        u = psi * (c * R + f[t])[..., None] + h_rows[t][:, None, :]    # g_t's part known at t
        G = u + c * g * psi * EV[..., None] + d * Emu
        QG = (R[..., None] * G + g * u * EV[..., None] + c * g ** 2 * psi * EW[..., None]
              + d * g * Enu)
        G2 = ((u * u).sum(-1) + c ** 2 * g ** 2 * psi2 * EW + d ** 2 * Ek
              + 2 * c * g * (u * psi).sum(-1) * EV + 2 * d * (u * Emu).sum(-1)
              + 2 * c * g * d * (psi * Enu).sum(-1))
        mu, nu = (np.einsum("sa,sak->sk", pi, x) * live[:, None] for x in (G, QG))
        kappa = (pi * G2).sum(1) * live
    mean = mdp.mu0 @ mu
    total = float(mdp.mu0 @ kappa - mean @ mean)

    # forwards: the state distribution; then the three parts of Var(g_t) at every step
    p = np.zeros((T, S))                                            # Pr(s_t = s, running)
    p[0] = mdp.mu0 * live
    for t in range(1, T):
        p[t] = (p[t - 1] @ P_pi) * live
    d2 = (g ** (2.0 * np.arange(T)) if option == 2 else np.ones(T))[:, None]    # d_t^2
    score = np.eye(A)[None] - pi[:, None, :]                        # psi(s, a), row s: (S, A, A)
    cond_sa = score * m1[..., None] + h[:, :, None, :]              # E[g_t | s, a] / d_t
    cond_s = (pi[..., None] * cond_sa).sum(axis=2)                  # E[g_t | s] / d_t
    sq_s = (cond_s ** 2).sum(-1)                                    # (T, S)
    second = (psi2 * m2 + 2 * m1 * (score * h[:, :, None, :]).sum(-1)
              + (h ** 2).sum(-1)[..., None])                        # E[|g_t|^2 | s, a] / d_t^2
    future = (d2 * p * (pi * psi2 * (m2 - m1 ** 2)).sum(-1)).sum(-1)
    action = (d2 * p * ((pi * (cond_sa ** 2).sum(-1)).sum(-1) - sq_s)).sum(-1)
    state = (d2 * (p - p ** 2) * sq_s).sum(-1)     # the E[g_t | s] of different s: other rows
    per_step = (d2 * (p * (pi * second).sum(-1) - p ** 2 * sq_s)).sum(-1)
    return VarianceDecomposition(method, state, action, future, per_step, total,
                                 mean.reshape(S, A))


def decomposition_table(mdp: TabularMDP, logits: np.ndarray,
                        methods: tuple[str, ...] = ("reward_to_go", "baseline_v_exact",
                                                    "control_variate", "advantage_exact"),
                        discount_option: int = 2) -> list[dict]:
    """`VarianceDecomposition.row()` of each method: what V(s) removes (part of the action
    part), what Q_hat(s, a) with its correction removes (the whole action part), what a critic
    in place of the return removes (the future part), and what none of them touches (state)."""
    return [variance_decomposition(mdp, logits, m, discount_option).row() for m in methods]


# ---------------------------------------------------------------------------------------------
# The action-dependent control variate, sampled
# ---------------------------------------------------------------------------------------------

def control_variate_estimates(mdp: TabularMDP, logits: np.ndarray, batch: Batch,
                              n_trajectories: int, q_hat: np.ndarray | None = None,
                              discount_option: int = 2) -> np.ndarray:
    """R = batch size // n_trajectories estimates, each of n_trajectories trajectories, of

        (1/N) sum_n sum_t d_t [ grad log pi(a_t|s_t) (Q_hat_t - Q_hat(s_t, a_t))
                                + sum_a pi(a|s_t) grad log pi(a|s_t) Q_hat(s_t, a) ]

    (Q_hat_t the reward-to-go, d_t = gamma^t under option 2). q_hat: (S, A), or (H, S, A) on a
    finite horizon; None = the exact Q^pi. Unbiased for any q_hat. -> (R, S, A)."""
    check_positive_int("n_trajectories", n_trajectories)
    logits = check_logits(mdp, logits)
    option = check_discount_option(discount_option)
    T, N = batch.mask.shape
    pi = softmax_policy(logits)
    rtg, _ = estimates_from_batch(mdp, logits, batch, "reward_to_go", n_trajectories,
                                  discount_option=option)
    R = len(rtg)
    if q_hat is None:
        q_hat = exact_values(mdp, logits).Q
    q = _q_hat_table(mdp, q_hat, T)
    t_idx = np.broadcast_to(np.arange(T)[:, None], (T, N))
    d = discounts(T, mdp.gamma) if option == 2 else np.ones((T, 1))
    q_taken = np.where(batch.mask, q[t_idx, batch.obs, batch.act], 0.0) * d
    group = np.arange(N) // n_trajectories
    subtract = score_weighted_sums(pi, batch, q_taken, group, R)
    # the correction: row s_t gets d_t * pi(s_t) * (Q_hat(s_t, .) - sum_a pi Q_hat(s_t, a))
    h = _expected_score_term(pi, q)                                        # (T, S, A)
    cells = batch.mask & (group < R)[None, :]
    t, n = np.nonzero(cells)
    s = batch.obs[t, n]
    added = np.zeros((R, mdp.n_states, mdp.n_actions))
    np.add.at(added, (group[n], s), d[t] * h[t, s])
    return rtg - (subtract - added) / n_trajectories


def control_variate_statistics(mdp: TabularMDP, logits: np.ndarray, n_trajectories: int,
                               n_repeats: int, rng: np.random.Generator,
                               q_hat: np.ndarray | None = None,
                               discount_option: int = 2) -> GradientStats:
    """Bias, variance and MSE of the control variate estimator against exact_policy_gradient
    (for option 2; under option 1 the bias includes option 1's own), as `gradient_statistics`."""
    rng = as_rng(rng)
    check_positive_int("n_trajectories", n_trajectories)
    check_positive_int("n_repeats", n_repeats)
    if n_repeats < 2:
        raise ValueError(f"n_repeats: expected at least 2 repeats (a variance needs 2 "
                         f"estimates), got {n_repeats}")
    batch = sample_trajectories(mdp, logits, n_trajectories * n_repeats, rng)
    est = control_variate_estimates(mdp, logits, batch, n_trajectories, q_hat, discount_option)
    return summarize("control_variate", est, exact_policy_gradient(mdp, logits), n_trajectories,
                     steps_per_estimate=batch.n_steps / n_repeats,
                     counts=expected_counts(mdp, logits, n_trajectories * n_repeats))


# ---------------------------------------------------------------------------------------------
# E[w_t | s, a] of the n-step advantage and of GAE, with any critic table
# ---------------------------------------------------------------------------------------------

def mean_weight(mdp: TabularMDP, logits: np.ndarray, value: np.ndarray,
                lam: float | None = None, n: int | None = None) -> np.ndarray:
    """E[w_t | s_t = s, a_t = a] (S, A), exactly, for the GAE weight (lam) or the n-step
    advantage (n; both None: the whole return minus V(s_t)) with a critic table value (S,), on
    an MDP without a horizon. Both weights are discounted sums of the TD errors of the episode,

        w_t = sum_k c_k delta_{t+k},   c_k = (gamma lam)^k (GAE),  gamma^k [k < n] (n-step),

    and E[delta_t | s, a] = r(s, a) + gamma sum_s' p(s'|s, a) [s' not terminal] V(s') - V(s).
    So E[w_t | s, a] = E[delta_t | s, a] + c_1 sum_s' p(s'|s, a) [s' not terminal] h(s'), with
    h(s) the expected rest of the sum from s_{t+1} = s: for GAE h = E[w | s] itself (a linear
    solve, h = delta_pi + gamma lam P_pi h); for n steps the first n - 1 terms (n - 1 backups).
    With V = V^pi every lam and n give Q^pi - V^pi; with lam = 1 (or n = None) any V gives
    Q^pi(s, a) - V(s). (Sampling cuts a gamma < 1 episode at the discount tail, 1e-10:
    neglected here.) The softmax-score contraction of it (`tabular.softmax_gradient`) is the
    estimator's exact expectation."""
    logits = check_logits(mdp, logits)
    if mdp.horizon is not None:
        raise ValueError(f"mdp: expected an MDP without a horizon (a table V), got horizon "
                         f"{mdp.horizon}")
    value = np.asarray(value, dtype=float)
    if value.shape != (mdp.n_states,):
        raise ValueError(f"value: expected a table ({mdp.n_states},), got {value.shape}")
    if lam is not None and n is not None:
        raise ValueError(f"n: expected None when lam is given (GAE), got {n!r}")
    if lam is not None:
        check_lam(lam)
    if n is not None:
        check_positive_int("n", n)
    pi = softmax_policy(logits)
    live = ~mdp.terminal
    p_live = mdp.P * live                                    # (S, A, S): the episode goes on
    delta = mdp.R + mdp.gamma * p_live @ value - value[:, None]          # (S, A)
    delta_pi = (pi * delta).sum(axis=1)                                  # (S,)
    p_pi = policy_transitions(mdp, pi) * live                            # (S, S)
    h = np.zeros(mdp.n_states)
    if n is None:                      # geometric weights: h = delta_pi + decay P_pi h
        decay = mdp.gamma * (1.0 if lam is None else lam)
        idx = np.flatnonzero(live)
        h[idx] = np.linalg.solve(np.eye(idx.size) - decay * p_pi[np.ix_(idx, idx)],
                                 delta_pi[idx])
        return delta + decay * p_live @ h
    for _ in range(n - 1):             # h_j = sum_{k<j} gamma^k E[delta_{t+k} | s_t = s]
        h = delta_pi + mdp.gamma * p_pi @ h
    return delta + mdp.gamma * p_live @ h
