"""Small tabular MDPs: exact ground truth, fast sampling, the teaching MDPs (backs every
notebook; introduced in 01).

A tabular MDP is small enough that V^pi, Q^pi, the return J(theta) and the policy gradient
dJ/dtheta can be computed exactly, with linear algebra instead of sampling. Every estimator in
the course is measured against these numbers. The module holds

  the MDP       `TabularMDP` (P, R, mu0, gamma, horizon, terminal states), `check_logits`,
                `check_episodic` (every episode ends);
  exact maths   `exact_values`, `exact_return`, `policy_transitions` (P_pi), `state_occupancy`
                (visits counted with a discount), `softmax_gradient` (the softmax-score
                contraction d * pi * (Q - V)), `exact_policy_gradient`; and `cosine` /
                `row_cosines`, how the course compares a gradient's direction with another's;
  sampling      `sample_trajectories` (a `Batch` of N trajectories, vectorised over them) and
                `rollout_returns` (fresh rollouts from given (s, a)), cut where the horizon or
                the discount tail ends them;
  teaching MDPs `chain_mdp`, `gridworld_mdp`, `random_mdp`.

The policy is a softmax over a table of logits, theta = logits of shape (S, A):

    pi(a | s) = exp(logits[s, a]) / sum_b exp(logits[s, b])

Shapes: S states, A actions, H the horizon (when finite), T time steps, N trajectories.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from acteach.sampling import Batch
from acteach._validate import (
    as_rng,
    check_array,
    check_finite,
    check_flags,
    check_gamma,
    check_positive_int,
    check_probability_vectors,
    check_shape,
    check_size,
    check_unit_interval,
)


@dataclass(frozen=True)
class TabularMDP:
    """A finite MDP with expected rewards, a start distribution and optional terminal states.

    P:        (S, A, S) float — P[s, a, s'] = p(s' | s, a); each P[s, a] sums to 1.
    R:        (S, A) float — r(s, a), the reward for taking a in s.
    mu0:      (S,) float — the start distribution p(s_1).
    gamma:    discount factor in [0, 1].
    horizon:  None = run until a terminal state (or forever when gamma < 1);
              an int H = at most H steps.
    terminal: (S,) bool — absorbing states: no reward, the episode ends on arrival. Their
              rows of P and R are ignored.
    names:    optional labels of the states, for plots.
    """

    P: np.ndarray
    R: np.ndarray
    mu0: np.ndarray
    gamma: float = 1.0
    horizon: int | None = None
    terminal: np.ndarray | None = None
    names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        P, R, mu0 = (check_array(name, x) for name, x in
                     (("P", self.P), ("R", self.R), ("mu0", self.mu0)))
        if P.ndim != 3 or P.shape[0] != P.shape[2]:
            raise ValueError(f"P: expected shape (S, A, S), got {P.shape}")
        S, A = P.shape[:2]
        if S == 0 or A == 0:
            raise ValueError(f"P: expected at least one state and one action, got shape {P.shape}")
        check_shape("R", R, (S, A), "(S, A) = shape of P's first two axes")
        check_shape("mu0", mu0, (S,), "(S,)")
        check_finite("R", R)
        if mu0.sum() == 0:
            raise ValueError("mu0: the start distribution is empty (all zeros); it must sum to 1")
        check_probability_vectors("mu0", mu0, "the start distribution")
        check_gamma(self.gamma)
        if self.horizon is not None:
            check_positive_int("horizon", self.horizon)
        term = (np.zeros(S, dtype=bool) if self.terminal is None
                else check_flags("terminal", self.terminal, (S,), "(S,) bool, one per state"))
        check_probability_vectors("P", P[~term], "each P[s, a] of a non-terminal s")
        if np.any(mu0[term] > 0):
            raise ValueError("mu0: the start distribution puts mass on a terminal state "
                             f"(states {np.flatnonzero(term & (mu0 > 0)).tolist()})")
        # Terminal states are absorbing with zero reward: make the arrays say so.
        for s in np.flatnonzero(term):
            P[s] = 0.0
            P[s, :, s] = 1.0
        R[term] = 0.0
        for name, value in (("P", P), ("R", R), ("mu0", mu0), ("terminal", term)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        if self.horizon is None and self.gamma == 1.0:
            stuck = states_that_cannot_terminate(self)
            if stuck.size:
                raise ValueError(
                    "mdp: with gamma = 1 and no horizon the return must be finite, but no terminal "
                    f"state can be reached from states {stuck.tolist()}; set gamma < 1 or a horizon")

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]


def states_that_cannot_terminate(mdp: TabularMDP) -> np.ndarray:
    """Non-terminal states from which no terminal state is reachable under any action.

    A softmax policy gives every action positive probability, so this does not depend on the
    logits: these states loop forever under every softmax policy.
    """
    return _never_reaching(mdp.P.sum(axis=1) > 0, mdp.terminal)


def _never_reaching(edges: np.ndarray, terminal: np.ndarray) -> np.ndarray:
    """Non-terminal states from which no path of edges (S, S) bool (s -> s' possible) reaches a
    terminal state (S,) bool."""
    can_reach = terminal.copy()
    while True:
        grown = can_reach | (edges & can_reach[None, :]).any(axis=1)
        if (grown == can_reach).all():
            return np.flatnonzero(~can_reach)
        can_reach = grown


def check_episodic(mdp: TabularMDP, what: str) -> None:
    """ValueError unless every episode ends: a horizon, or a terminal state reachable from every
    state (a softmax policy tries every action, so reachability does not depend on the logits)."""
    if mdp.horizon is not None:
        return
    stuck = states_that_cannot_terminate(mdp)
    if stuck.size:
        raise ValueError(
            f"mdp: {what} sums every step with weight 1, which diverges on a continuing MDP (no "
            f"horizon, and no terminal state reachable from states {stuck.tolist()}); give the "
            "MDP a horizon or terminal states")


def softmax_policy(logits: np.ndarray) -> np.ndarray:
    """pi[s, a] = softmax(logits[s])[a]. logits, pi: (S, A)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def check_logits(mdp: TabularMDP, logits: np.ndarray) -> np.ndarray:
    """Return logits as a float array (a torch tensor is detached: the exact maths is numpy),
    or raise ValueError if it does not fit the MDP."""
    if not isinstance(mdp, TabularMDP):
        raise ValueError(f"mdp: expected a TabularMDP, got {type(mdp).__name__}")
    logits = check_array("logits", logits)
    check_shape("logits", logits, (mdp.n_states, mdp.n_actions), "(S, A) of the MDP")
    check_finite("logits", logits)
    return logits


class Values(NamedTuple):
    """V and Q of a policy. Infinite horizon: V (S,), Q (S, A). Horizon H: V (H+1, S), Q (H, S, A),
    indexed by the time step t = 0..H-1 (V[H] = 0: nothing is left to collect)."""

    V: np.ndarray
    Q: np.ndarray


def exact_values(mdp: TabularMDP, logits: np.ndarray) -> Values:
    """V^pi and Q^pi of the softmax policy, exactly.

    Q(s, a) = r(s, a) + gamma * sum_s' p(s'|s, a) V(s'),   V(s) = sum_a pi(a|s) Q(s, a).
    Finite horizon: solved backwards in time. Infinite horizon: one linear solve,
    V = (I - gamma P_pi)^-1 r_pi on the non-terminal states.
    """
    pi = softmax_policy(check_logits(mdp, logits))
    live = ~mdp.terminal
    if mdp.horizon is not None:
        V = np.zeros((mdp.horizon + 1, mdp.n_states))
        Q = np.zeros((mdp.horizon, mdp.n_states, mdp.n_actions))
        for t in reversed(range(mdp.horizon)):
            Q[t] = mdp.R + mdp.gamma * mdp.P @ (V[t + 1] * live)
            V[t] = (pi * Q[t]).sum(axis=1) * live
        return Values(V, Q)
    r_pi = (pi * mdp.R).sum(axis=1)                           # (S,)
    idx, lu = _live_chain_lu(mdp, pi, mdp.gamma)
    V = np.zeros(mdp.n_states)
    V[idx] = lu.solve(r_pi[idx])
    if not np.all(np.isfinite(V)):
        raise ValueError("logits: V^pi overflows float64 under this policy (episodes expected "
                         "to last beyond 1e308 steps); use smaller logit gaps")
    Q = mdp.R + mdp.gamma * mdp.P @ (V * live)
    return Values(V, Q)


class _MMatrixLU:
    """The LU factors of an M-matrix M = diag(slack + row sums of off) - off (off >= 0 off the
    diagonal, slack >= 0), computed without a single subtraction (the GTH / Grassmann-Taksar-
    Heyman elimination): each pivot is the (updated) slack plus the (updated) outflows, never
    1 - (1 - tiny). Both solves are subtraction-free too (L^-1 and U^-1 are >= 0), so V^pi and
    the occupancy keep full relative accuracy even when I - gamma P_pi is nearly singular
    (gamma = 1 and a near-deterministic policy, where np.linalg.solve loses every digit).

    off: (n, n) >= 0, its diagonal ignored; slack: (n,) >= 0, the mass leaving the chain (to a
    terminal state, or 1 - gamma). A zero pivot (a set of states the chain never leaves)
    raises _Singular."""

    def __init__(self, off: np.ndarray, slack: np.ndarray) -> None:
        n = slack.size
        A = -np.array(off, dtype=np.float64)
        np.fill_diagonal(A, 0.0)
        s = np.array(slack, dtype=np.float64)
        self.pivots = np.empty(n)
        for k in range(n):
            pivot = s[k] - A[k, k + 1:].sum()               # slack + outflow: a sum of >= 0
            if not pivot > 0.0:
                raise _Singular(k)
            self.pivots[k] = pivot
            mult = A[k + 1:, k] / pivot                     # <= 0: L's column k
            A[k + 1:, k] = mult
            A[k + 1:, k + 1:] -= np.outer(mult, A[k, k + 1:])   # >= 0 taken off <= 0 entries
            s[k + 1:] -= mult * s[k]                        # the slack grows: no cancellation
        self.A = A                                          # L below, U's off-diagonal above

    def solve(self, b: np.ndarray) -> np.ndarray:
        """x with M x = b."""
        A, n = self.A, self.pivots.size
        y = np.array(b, dtype=np.float64)
        for i in range(1, n):
            y[i] -= A[i, :i] @ y[:i]
        x = np.empty(n)
        for k in reversed(range(n)):
            x[k] = (y[k] - A[k, k + 1:] @ x[k + 1:]) / self.pivots[k]
        return x

    def solve_transposed(self, b: np.ndarray) -> np.ndarray:
        """x with M^T x = b (M^T = U^T L^T)."""
        A, n = self.A, self.pivots.size
        z = np.empty(n)
        for k in range(n):
            z[k] = (b[k] - A[:k, k] @ z[:k]) / self.pivots[k]
        x = z.copy()
        for k in reversed(range(n - 1)):
            x[k] = z[k] - A[k + 1:, k] @ x[k + 1:]
        return x


class _Singular(Exception):
    """A zero pivot in `_MMatrixLU`: some states are never left."""


def _live_chain_lu(mdp: TabularMDP, pi: np.ndarray, c: float
                   ) -> tuple[np.ndarray, _MMatrixLU]:
    """The non-terminal states idx and the factors of I - c P_pi on them, as an M-matrix:
    off = c P_pi between distinct live states, slack = (1 - c) + c Pr(next state terminal).
    With c = 1, a policy under which some states never reach a terminal state (an action's
    probability underflowing to 0) is a ValueError naming logits."""
    P_pi = policy_transitions(mdp, pi)
    live = ~mdp.terminal
    idx = np.flatnonzero(live)
    off = c * P_pi[np.ix_(idx, idx)]
    slack = (1.0 - c) + c * P_pi[np.ix_(idx, np.flatnonzero(mdp.terminal))].sum(axis=1)
    try:
        return idx, _MMatrixLU(off, slack)
    except _Singular:
        stuck = _never_reaching(P_pi > 0, mdp.terminal)
        raise ValueError(
            f"logits: under this policy no terminal state can be reached from states "
            f"{stuck.tolist()}: the actions leading there have probability 0 in float64 (logit "
            "gaps of about 745 or more), so with gamma = 1 and no horizon the return is "
            "infinite; use smaller logit gaps") from None


def exact_return(mdp: TabularMDP, logits: np.ndarray) -> float:
    """J(theta) = E_{s_1 ~ mu0}[V^pi(s_1)], the expected (discounted) return."""
    V = exact_values(mdp, logits).V
    return float(mdp.mu0 @ (V[0] if mdp.horizon is not None else V))


def policy_transitions(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """P_pi[s, s'] = sum_a pi(a|s) p(s'|s, a), the policy's state chain. pi: (S, A) -> (S, S).

    Terminal states keep their self-loops (rows of mdp.P); a chain that stops at terminal
    states multiplies by ~mdp.terminal[:, None]."""
    return np.einsum("sa,sax->sx", pi, mdp.P)


def state_occupancy(mdp: TabularMDP, logits: np.ndarray,
                    discount: float | None = None) -> np.ndarray:
    """State visits counted with a discount c (default c = mdp.gamma): horizon H -> (H, S),
    d[t, s] = c^t Pr(s_t = s, not yet ended); no horizon -> (S,), summed over t:
    d(s) = sum_t c^t Pr(s_t = s). Terminal states are never visited (the episode has ended on
    arrival).

    c = gamma gives the discounted occupancy of the policy gradient theorem; c = 1 the expected
    number of visits, finite only when episodes end (a ValueError naming mdp otherwise).
    """
    pi = softmax_policy(check_logits(mdp, logits))
    if discount is not None:
        check_unit_interval("discount", discount)
    c = mdp.gamma if discount is None else discount
    live = ~mdp.terminal
    if c == 1.0:
        check_episodic(mdp, "counting visits without a discount (discount = 1)")
    P_pi = policy_transitions(mdp, pi) * live[:, None]      # the chain stops at terminals
    if mdp.horizon is not None:
        d = np.zeros((mdp.horizon, mdp.n_states))
        d[0] = mdp.mu0
        for t in range(1, mdp.horizon):
            d[t] = c * (d[t - 1] @ P_pi) * live
        return d
    idx, lu = _live_chain_lu(mdp, pi, c)
    d = np.zeros(mdp.n_states)
    d[idx] = lu.solve_transposed(mdp.mu0[idx])
    if not np.all(np.isfinite(d)):
        raise ValueError("logits: the expected number of visits overflows float64 under this "
                         "policy; use smaller logit gaps")
    return d


def softmax_gradient(occupancy: np.ndarray, pi: np.ndarray, adv: np.ndarray) -> np.ndarray:
    """The softmax-score contraction: dJ/dlogits[s, b] = sum_t d_t(s) pi(b|s) A_t(s, b), (S, A).

    For a softmax table d log pi(a|s) / d logits[s, b] = 1[a = b] - pi(b|s), so
    E_a[grad log pi(a|s) Q(s, a)] in row s is pi(b|s) (Q(s, b) - V(s)), V = sum_a pi Q.
    occupancy (S,) with adv (S, A) (no horizon: d summed over t), or occupancy (H, S) with
    adv (H, S, A) (time-indexed, summed over t here); pi: (S, A); adv = Q - V (or any
    E[w | s, a] minus its pi-average).
    """
    occupancy, adv = np.asarray(occupancy), np.asarray(adv)
    if occupancy.ndim == 2:
        if adv.shape != occupancy.shape + pi.shape[1:]:
            raise ValueError(f"adv: expected shape {occupancy.shape + pi.shape[1:]} (H, S, A) "
                             f"for an occupancy (H, S), got {adv.shape}")
        return np.einsum("ts,sa,tsa->sa", occupancy, pi, adv)
    if adv.shape != pi.shape or occupancy.shape != pi.shape[:1]:
        raise ValueError(f"adv: expected shape {pi.shape} (S, A) with an occupancy (S,), got "
                         f"adv {adv.shape}, occupancy {occupancy.shape}")
    return occupancy[:, None] * pi * adv


def exact_policy_gradient(mdp: TabularMDP, logits: np.ndarray) -> np.ndarray:
    """dJ/dlogits, (S, A), by the policy gradient theorem.

    grad J = sum_t E[gamma^t grad log pi(a_t|s_t) Q(s_t, a_t)], and for a softmax table
    d log pi(a|s) / d logits[s, b] = 1[a = b] - pi(b|s), so

        dJ/dlogits[s, b] = sum_t d_t(s) pi(b|s) (Q_t(s, b) - V_t(s))   (`softmax_gradient`).
    """
    logits = check_logits(mdp, logits)
    V, Q = exact_values(mdp, logits)
    adv = Q - (V[:-1, :, None] if mdp.horizon is not None else V[:, None])
    pi, occupancy = softmax_policy(logits), state_occupancy(mdp, logits)
    grad = softmax_gradient(occupancy, pi, adv)
    # Q - V cancels when one action dominates and |Q| is huge (gamma = 1, a near-deterministic
    # policy): V and Q are each accurate to a few ulps, their difference maybe not. Bound the
    # error that rounding of Q and V puts into the gradient, and refuse rather than mislead.
    scale = _q_error_scale(mdp, V)
    v_scale = (pi * scale).sum(axis=-1, keepdims=True)
    error = softmax_gradient(occupancy, pi, ROUNDING * (scale + v_scale))
    if np.linalg.norm(error) > GRADIENT_RTOL * np.linalg.norm(grad):
        raise ValueError(
            f"logits: the policy is so close to deterministic that dJ/dlogits is not accurate "
            f"in float64: Q - V cancels (|Q| up to {np.abs(Q).max():.3g}), leaving a rounding "
            f"error up to {np.linalg.norm(error) / max(np.linalg.norm(grad), 1e-300):.2g} of "
            f"the gradient's size (allowed: {GRADIENT_RTOL:g}); use smaller logit gaps")
    return grad


#: Relative rounding error assumed for each exact V and Q entry (a generous bound: the
#: subtraction-free solve keeps V to a few ulps), and the largest relative error of
#: exact_policy_gradient that it returns rather than refuses.
ROUNDING = 64 * np.finfo(np.float64).eps
GRADIENT_RTOL = 1e-6


def _q_error_scale(mdp: TabularMDP, V: np.ndarray) -> np.ndarray:
    """|r(s, a)| + gamma sum_s' p(s'|s, a) |V(s')|: the size of the terms summed into Q(s, a),
    which sets its absolute rounding error. V (S,) or (H + 1, S) -> (S, A) or (H, S, A)."""
    if mdp.horizon is None:
        return np.abs(mdp.R) + mdp.gamma * mdp.P @ np.abs(V)
    return np.abs(mdp.R)[None] + mdp.gamma * np.einsum("sax,tx->tsa", mdp.P, np.abs(V[1:]))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """a . b / (|a| |b|) of two gradients of the same shape, flattened, in [-1, 1]; 0.0 if either
    is the zero vector."""
    a, b = np.ravel(check_array("a", a)), np.ravel(check_array("b", b))
    if a.shape != b.shape:
        raise ValueError(f"b: expected the shape of a, {a.shape}, got {b.shape}")
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(np.clip(a @ b / norm, -1.0, 1.0)) if norm > 0 else 0.0


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of (R, P) arrays -> (R,), in [-1, 1]; 0 where either row is 0."""
    a, b = check_array("a", a), check_array("b", b)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"b: expected (R, P) arrays of one shape, got a {a.shape}, b {b.shape}")
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    cos = (a * b).sum(axis=-1) / np.where(norms > 0, norms, 1.0)
    return np.where(norms > 0, np.clip(cos, -1.0, 1.0), 0.0)


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------

#: With gamma < 1 and no horizon an episode may never end; sampling stops once gamma^t falls
#: below this, so the neglected tail of any return is below 1e-10 * max|r| / (1 - gamma).
DISCOUNT_TAIL = 1e-10
#: With gamma = 1 and no horizon, episodes end almost surely, but a batch longer than this is
#: refused rather than looping for ever.
MAX_STEPS = 100_000


def sampling_horizon(mdp: TabularMDP) -> int | None:
    """The step at which sampling truncates an episode: the horizon, the discount tail, or None."""
    if mdp.horizon is not None:
        return mdp.horizon
    if mdp.gamma < 1.0:
        return 1 if mdp.gamma == 0 else int(np.ceil(np.log(DISCOUNT_TAIL) / np.log(mdp.gamma)))
    return None


def step_cap_message(mdp: TabularMDP, what: str) -> str:
    """Why sampling stopped at MAX_STEPS, and what to change: the message names the real cause
    (a gamma < 1 whose discount tail is longer than the cap, or gamma = 1 with episodes that
    rarely end), never advice the MDP already follows."""
    head = f"mdp: {what} still running after {MAX_STEPS:,} steps, the most sampling takes"
    if mdp.gamma < 1.0:
        tail = sampling_horizon(mdp)
        largest = float(np.exp(np.log(DISCOUNT_TAIL) / MAX_STEPS))
        return (f"{head}; with gamma = {mdp.gamma} and no horizon an episode is only cut where "
                f"gamma^t < {DISCOUNT_TAIL:g}, after {tail:,} steps; give the MDP a horizon, or "
                f"a gamma of at most {np.floor(largest * 1e5) / 1e5:.5f}")
    return (f"{head}; with gamma = 1 and no horizon an episode runs until it reaches a terminal "
            "state, which this policy rarely does; give the MDP a horizon or gamma < 1, or use "
            "logits that reach a terminal state sooner")


class _AliasTable:
    """Draws from many categorical rows at once in O(1) per draw (Walker's alias method).

    table (K, M): K probability rows over M outcomes. Column j of row k keeps outcome j with
    probability keep[k, j] and otherwise gives alias[k, j]; a draw picks a column uniformly.
    """

    def __init__(self, table: np.ndarray) -> None:
        table = table.reshape(-1, table.shape[-1])
        K, M = table.shape
        self.width = M
        self.keep = np.ones((K, M))
        self.alias = np.tile(np.arange(M), (K, 1))
        for k in range(K):
            scaled = table[k] * M
            small = [j for j in range(M) if scaled[j] < 1.0]
            large = [j for j in range(M) if scaled[j] >= 1.0]
            while small and large:
                j, big = small.pop(), large[-1]
                self.keep[k, j], self.alias[k, j] = scaled[j], big
                scaled[big] -= 1.0 - scaled[j]
                if scaled[big] < 1.0:
                    small.append(large.pop())
        self.keep, self.alias = self.keep.ravel(), self.alias.ravel()

    def sample(self, rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
        """One draw from each row in rows (N,) int -> (N,) int outcomes."""
        u = rng.random(rows.shape) * self.width
        column = u.astype(np.int64)
        cell = rows * self.width + column
        return np.where(u - column < self.keep[cell], column, self.alias[cell])


def sample_trajectories(mdp: TabularMDP, logits: np.ndarray, n: int,
                        rng: np.random.Generator) -> Batch:
    """n trajectories of the softmax policy at once: a loop over time, vectorised over trajectories.

    Returns a `Batch` of (T, n) arrays, T the longest trajectory: obs/act/next_obs int state and
    action indices, rew float, mask bool (valid steps), terminated (reached a terminal state) and
    truncated (cut by the horizon, or by the discount tail when gamma < 1 and no horizon).
    Each step only touches the trajectories still running.
    """
    rng = as_rng(rng)
    check_positive_int("n", n)
    check_size("n", 12 * n, 8, f"{n:,} trajectories")
    pi = softmax_policy(check_logits(mdp, logits))
    cap = sampling_horizon(mdp)
    policy, dynamics = _AliasTable(pi), _AliasTable(mdp.P)
    running = np.arange(n)                                   # indices of live trajectories
    s = _AliasTable(mdp.mu0[None]).sample(rng, np.zeros(n, dtype=np.int64))
    steps = []
    while running.size:
        t = len(steps)
        if t >= MAX_STEPS:
            raise ValueError(step_cap_message(mdp, f"{running.size} of {n} trajectories"))
        a = policy.sample(rng, s)
        s_next = dynamics.sample(rng, s * mdp.n_actions + a)
        terminated = mdp.terminal[s_next]
        truncated = ~terminated & (t + 1 == cap)
        steps.append((running, s, a, s_next, terminated, truncated))
        go_on = ~(terminated | truncated)
        running, s = running[go_on], s_next[go_on]
    return _to_batch(mdp, steps, n)


def rollout_returns(mdp: TabularMDP, logits: np.ndarray, states: np.ndarray,
                    actions: np.ndarray, times: np.ndarray, rng: np.random.Generator
                    ) -> tuple[np.ndarray, int]:
    """One fresh rollout from each (state, action) taken at step `times`, the policy after that.

    states, actions, times: (M,) int. Returns the discounted returns (M,), each an unbiased
    sample of Q^pi_t(s, a) (time-indexed when the horizon is finite: H - t steps remain), and the
    number of environment steps the rollouts took. Vectorised over the M rollouts.
    """
    rng = as_rng(rng)
    pi = softmax_policy(check_logits(mdp, logits))
    policy, dynamics = _AliasTable(pi), _AliasTable(mdp.P)
    cap = sampling_horizon(mdp)
    s = _indices("states", states, mdp.n_states, None)
    a = _indices("actions", actions, mdp.n_actions, s.shape)
    times = _indices("times", times, np.iinfo(np.int64).max, s.shape)
    steps_left = (np.full(s.shape, np.iinfo(np.int64).max) if cap is None
                  else cap - times if mdp.horizon is not None
                  else np.full(s.shape, cap))
    if np.any(steps_left <= 0):
        raise ValueError(f"times: expected steps before the horizon {mdp.horizon}, got "
                         f"{np.asarray(times).max()}")
    returns = np.zeros(s.shape)
    running, discount, steps = np.arange(s.size), 1.0, 0
    for _ in range(MAX_STEPS):
        if not running.size:
            break
        returns[running] += discount * mdp.R[s, a]
        steps += running.size
        s_next = dynamics.sample(rng, s * mdp.n_actions + a)
        steps_left = steps_left - 1
        go_on = ~mdp.terminal[s_next] & (steps_left > 0)
        running, s, steps_left = running[go_on], s_next[go_on], steps_left[go_on]
        a = policy.sample(rng, s)
        discount *= mdp.gamma
    else:
        raise ValueError(step_cap_message(mdp, f"{running.size} of {returns.size} rollouts"))
    return returns, steps


def _indices(name: str, x: object, size: int, shape: tuple | None) -> np.ndarray:
    """x as an (M,) int64 array of indices in 0..size-1 (shape: that of the first such array,
    never broadcast), or a ValueError naming it."""
    arr = np.asarray(x)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ValueError(f"{name}: expected a 1-d array of integers, got shape {arr.shape}, "
                         f"dtype {arr.dtype}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name}: expected the shape of states, {shape}, got {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= size):
        raise ValueError(f"{name}: expected integers in 0..{size - 1}, got "
                         f"{arr.min()}..{arr.max()}")
    return arr.astype(np.int64)


def _to_batch(mdp: TabularMDP, steps: list, n: int) -> Batch:
    """Scatter per-step records of the live trajectories into padded (T, n) arrays."""
    T = len(steps)
    cells = np.concatenate([t * n + step[0] for t, step in enumerate(steps)])   # flat [t, n]
    s, a, s_next, term, trunc = (np.concatenate(x) for x in list(zip(*steps))[1:])

    def scatter(values: np.ndarray, fill) -> np.ndarray:
        out = np.full(T * n, fill, dtype=values.dtype)
        out[cells] = values
        return out.reshape(T, n)

    return Batch(obs=scatter(s, 0), act=scatter(a, 0), rew=scatter(mdp.R[s, a], 0.0),
                 next_obs=scatter(s_next, 0), mask=scatter(np.ones_like(term), False),
                 terminated=scatter(term, False), truncated=scatter(trunc, False))


# ---------------------------------------------------------------------------------------------
# Teaching MDPs
# ---------------------------------------------------------------------------------------------

def chain_mdp(n_states: int = 5, slip: float = 0.1, step_reward: float = -1.0,
              goal_reward: float = 10.0, gamma: float = 1.0, horizon: int | None = None
              ) -> TabularMDP:
    """A corridor: states 0..n-1, then a terminal goal. Action 0 = left, action 1 = right.

    Each step costs `step_reward`; stepping right from the last state heads for the goal and pays
    `goal_reward` (paid for the attempt: r depends on (s, a) only). With probability `slip` a move
    goes the other way.
    Why it is interesting for variance: every return shares a large common part (the goal
    reward), so raw returns are large and similar; the part that tells actions apart is small.
    REINFORCE's weights are dominated by that common part, which is exactly what reward-to-go
    and baselines remove. Episode lengths vary, so the number of score terms varies too.
    """
    check_positive_int("n_states", n_states)
    check_size("n_states", 2.0 * (n_states + 1) ** 2, 8, "a transition table P (S, A, S)")
    if not 0.0 <= slip < 0.5:
        raise ValueError(f"slip: expected a probability in [0, 0.5), got {slip}")
    S, goal = n_states + 1, n_states
    P = np.zeros((S, 2, S))
    R = np.full((S, 2), float(step_reward))
    for s in range(n_states):
        left, right = max(s - 1, 0), s + 1
        P[s, 0, left] += 1 - slip
        P[s, 0, right] += slip
        P[s, 1, right] += 1 - slip
        P[s, 1, left] += slip
    R[n_states - 1, 1] = goal_reward
    mu0 = np.zeros(S)
    mu0[0] = 1.0
    terminal = np.zeros(S, dtype=bool)
    terminal[goal] = True
    names = tuple(str(s) for s in range(n_states)) + ("goal",)
    return TabularMDP(P, R, mu0, gamma=gamma, horizon=horizon, terminal=terminal, names=names)


def gridworld_mdp(slip: float = 0.1, gamma: float = 1.0, horizon: int | None = 20) -> TabularMDP:
    """A 3x4 gridworld with a goal (+1) and a trap (-1), both terminal, and a wall.

        . . . G        G = goal (+1, terminal)
        . # . X        X = trap (-1, terminal), # = wall
        S . . .        S = start

    Actions 0..3 = up, right, down, left; with probability `slip` the move goes to a random
    perpendicular direction; moving into a wall or the edge stays put. Each step costs 0.04.
    Why it is interesting for variance: returns are bimodal (goal or trap) and the sign of a
    whole return depends on a few late actions, so early actions get credited with the luck of
    the late ones; the horizon cuts some episodes short, so lengths vary.
    """
    if not 0.0 <= slip < 1.0:
        raise ValueError(f"slip: expected a probability in [0, 1), got {slip}")
    rows, cols = 3, 4
    wall, goal, trap, start = (1, 1), (0, 3), (1, 3), (2, 0)
    cells = [(r, c) for r in range(rows) for c in range(cols) if (r, c) != wall]
    index = {cell: i for i, cell in enumerate(cells)}
    moves = [(-1, 0), (0, 1), (1, 0), (0, -1)]
    S, A = len(cells), 4
    P = np.zeros((S, A, S))
    R = np.full((S, A), -0.04)
    for (r, c), s in index.items():
        for a in range(A):
            outcomes = [(a, 1 - slip), ((a + 1) % 4, slip / 2), ((a + 3) % 4, slip / 2)]
            for direction, p in outcomes:
                dr, dc = moves[direction]
                nxt = (r + dr, c + dc)
                if nxt not in index:
                    nxt = (r, c)
                P[s, a, index[nxt]] += p
                R[s, a] += p * {goal: 1.0, trap: -1.0}.get(nxt, 0.0)
    mu0 = np.zeros(S)
    mu0[index[start]] = 1.0
    terminal = np.zeros(S, dtype=bool)
    terminal[[index[goal], index[trap]]] = True
    names = tuple({goal: "G", trap: "X", start: "S"}.get(cell, f"{cell[0]}{cell[1]}")
                  for cell in cells)
    return TabularMDP(P, R, mu0, gamma=gamma, horizon=horizon, terminal=terminal, names=names)


def random_mdp(rng: np.random.Generator, n_states: int = 10, n_actions: int = 3,
               gamma: float = 0.9, horizon: int | None = None, n_terminal: int = 0,
               branching: int = 3, reward_scale: float = 1.0) -> TabularMDP:
    """A random MDP: each (s, a) moves to `branching` random next states with Dirichlet weights,
    rewards are Gaussian with std `reward_scale`; the last `n_terminal` states are terminal.

    Why it is interesting for variance: no structure to hide behind. The estimators' relative
    variances on many random MDPs show what holds in general rather than on a tailored example.
    With gamma = 1 and no horizon, pass n_terminal >= 1 (a terminal state is made reachable).
    """
    rng = as_rng(rng)
    check_positive_int("n_states", n_states)
    check_positive_int("n_actions", n_actions)
    check_positive_int("branching", branching)
    check_size("n_states", float(n_states) ** 2 * n_actions, 8, "a transition table P (S, A, S)")
    if isinstance(n_terminal, bool) or not isinstance(n_terminal, numbers.Integral):
        raise ValueError(f"n_terminal: expected an integer, got {n_terminal!r}")
    if not 0 <= n_terminal < n_states:
        raise ValueError(f"n_terminal: expected 0 <= n_terminal < n_states, got {n_terminal}")
    S, A = n_states, n_actions
    P = np.zeros((S, A, S))
    for s in range(S):
        for a in range(A):
            nxt = rng.choice(S, size=min(branching, S), replace=False)
            P[s, a, nxt] = rng.dirichlet(np.ones(nxt.size))
    terminal = np.zeros(S, dtype=bool)
    if n_terminal:
        terminal[S - n_terminal:] = True
        # every live state gets a 10% chance of ending on one action, so the episode can end
        for s in range(S - n_terminal):
            a = rng.integers(A)
            P[s, a] *= 0.9
            P[s, a, rng.integers(S - n_terminal, S)] += 0.1
    R = reward_scale * rng.standard_normal((S, A))
    mu0 = np.zeros(S)
    mu0[: S - n_terminal] = rng.dirichlet(np.ones(S - n_terminal))
    return TabularMDP(P, R, mu0, gamma=gamma, horizon=horizon, terminal=terminal)
