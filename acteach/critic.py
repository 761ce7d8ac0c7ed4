"""Fitting V^pi: policy evaluation (backs notebook 04; notebook 03 uses its Monte Carlo fit).

A critic V_phi(s) approximates V^{pi_theta}(s) = E[ sum_{t' >= t} gamma^(t'-t) r_t' | s_t = s ]
for a fixed policy, by regression on a target y:

    Monte Carlo      y_{n,t} = sum_{t' >= t} gamma^(t'-t) r_{n,t'}          (the reward-to-go)
    bootstrapped     y_hat_{n,t} = r_{n,t} + gamma (1 - terminated_{n,t}) V_phi(s_{n,t+1})
    L(phi)  = mean over the valid steps (n, t) of (SG[y] - V_phi(s_{n,t}))^2,

the lecture's L(phi) up to a constant factor (it sums over t and divides by N; a mean over the
steps has the same minimiser). SG is stop-gradient: the bootstrapped target is a number, not a
function of phi. Without it (`residual_loss`, the "full gradient" or residual gradient) the
gradient also flows into V_phi(s_{t+1}), and the fit minimises the mean squared TD error, whose
minimiser is not V^pi when the next state is random (`residual_fixed_point`).

A terminated step has no next value (nothing follows); a truncated step bootstraps like any other
(a time limit is not a terminal state), as in `acteach.advantages`.

Two paths, one set of targets, one `FitConfig`:
  tabular  a table V (S,), one parameter per state, NOT indexed by time: the MDPs must have no
           horizon (then V^pi does not depend on t). Fitted by plain minibatch SGD in numpy,
           vectorised over independent data sets (`fit_value_tables`); `batch_fixed_point` says
           where full-batch descent ends, by linear algebra. Exact references on the MDP:
           `visit_distribution`, `value_error`, `residual_fixed_point`, `mean_squared_td_error`.
  neural   a network V_phi (e.g. `nets.ValueNet`) on observations, fitted with Adam by one update
           loop: `fit_value_net` (a batch's targets, random minibatches) and
           `fit_value_monte_carlo` (given targets, in epochs; notebooks 03 and 05);
           `critic_loss` is the lecture's bootstrapped loss with SG, `monte_carlo_loss` and
           `residual_loss` the other two. `rollout_values` is a large-sample Monte Carlo V^pi on
           CartPole from fixed states, the reference for the neural fits.
Shapes: M transitions, S states, R independent data sets, B steps, D obs dim, (T, N) time-major;
(T, K, N) for K seeds trained as one computation (`acteach.stacked`): the neural losses then
give one value per seed, each over its own valid steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from acteach._validate import (
    StrictConfig,
    check_finite,
    check_flags,
    check_gamma,
    check_positive_int,
    check_real,
    check_seed,
)
from acteach.advantages import bootstrapped_return
from acteach.nets import as_tensor
from acteach.sampling import Batch, make_envs
from acteach.tabular import (
    MAX_STEPS,
    TabularMDP,
    check_logits,
    policy_transitions,
    sampling_horizon,
    softmax_policy,
)
from acteach.training import single_threaded

#: The three ways to fit V, as the lecture (and the widget) names them.
TARGETS = ("monte_carlo", "bootstrapped", "full_gradient")


@dataclass
class FitConfig(StrictConfig):
    """How to fit a critic: the target, and the minibatch updates."""

    target: str = "bootstrapped"
    """'monte_carlo': y = the reward-to-go; 'bootstrapped': y_hat = r + gamma (1 - terminated)
    SG[V(s')]; 'full_gradient': the same y_hat without SG (the residual gradient)."""
    steps: int = 1000
    """Number of updates."""
    batch_size: int | None = 64
    """Transitions per update, drawn uniformly with replacement from the data; None = all of
    them, every update (full-batch gradient descent, no sampling noise)."""
    lr: float = 0.1
    """Step size: of plain SGD for a table, of Adam for a network."""
    seed: int = 0
    """Seeds the minibatch draws, so a fixed seed and initial critic give the same fit."""

    def validate(self) -> None:
        """Raise ValueError naming the first bad field (also run when a field is set; an
        unknown field name is a TypeError: `StrictConfig`)."""
        if self.target not in TARGETS:
            raise ValueError(f"target: expected one of {TARGETS}, got {self.target!r}")
        check_positive_int("steps", self.steps)
        if self.batch_size is not None:
            check_positive_int("batch_size", self.batch_size)
        check_real("lr", self.lr, "positive")
        check_seed(self.seed)


# ---------------------------------------------------------------------------------------------
# Tabular: a table V (S,), fitted in numpy
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Transitions:
    """The valid steps of a tabular batch, flattened: what a table V is fitted on. M steps.

    obs:       (M,) int — s_t.
    rew:       (M,) float — r_t.
    next_obs:  (M,) int — s_{t+1}.
    bootstrap: (M,) float — gamma * (1 - terminated_t), the weight of V(s_{t+1}) in y_hat.
    ret:       (M,) float — the Monte Carlo target y_t: the discounted rewards to the end of the
               episode, continued by V only where the episode was cut (`bootstrapped_return`).
    """

    obs: np.ndarray
    rew: np.ndarray
    next_obs: np.ndarray
    bootstrap: np.ndarray
    ret: np.ndarray

    def __len__(self) -> int:
        return len(self.rew)


def check_table_mdp(mdp: TabularMDP) -> None:
    """A ValueError unless V^pi of this MDP is a table (S,): no horizon."""
    if not isinstance(mdp, TabularMDP):
        raise ValueError(f"mdp: expected a TabularMDP, got {type(mdp).__name__}")
    if mdp.horizon is not None:
        raise ValueError(f"mdp: a horizon ({mdp.horizon}) makes V^pi depend on the step t; the "
                         "table V here has one entry per state: use an MDP without a horizon")


def transitions(batch: Batch, gamma: float, value: np.ndarray | None = None) -> Transitions:
    """Flatten a tabular batch's valid steps. value: (S,) table that continues the Monte Carlo
    target where an episode was truncated (default 0); terminated steps never bootstrap."""
    check_gamma(gamma)
    obs, next_obs = np.asarray(batch.obs), np.asarray(batch.next_obs)
    if obs.shape != batch.mask.shape or obs.dtype.kind not in "iu":
        raise ValueError(f"batch: expected a tabular batch, obs (T, N) int state indices, got "
                         f"shape {obs.shape}, dtype {obs.dtype}")
    if value is None:
        next_value = np.zeros(obs.shape)
    else:
        table = np.asarray(value, dtype=float)
        if table.ndim != 1 or next_obs.max(initial=0) >= len(table):
            raise ValueError(f"value: expected a table (S,) covering the states of the batch, "
                             f"got shape {table.shape}")
        next_value = table[next_obs]
    terminated = check_flags("terminated", batch.terminated, obs.shape)
    ret = bootstrapped_return(batch.rew, next_value, terminated, batch.truncated, batch.mask,
                              gamma)
    m = batch.mask
    return Transitions(obs=obs[m], rew=np.asarray(batch.rew, dtype=float)[m],
                       next_obs=next_obs[m], bootstrap=gamma * (~terminated[m]), ret=ret[m])


def _stack(datasets: Sequence[Transitions], n_states: int) -> tuple[Transitions, np.ndarray]:
    """R data sets as one, the states of data set r shifted to r*S .. r*S + S-1 (so one table
    of R*S entries holds R independent tables); and the start of each data set, (R + 1,)."""
    sizes = [len(d) for d in datasets]
    if not datasets or min(sizes) == 0:
        raise ValueError("datasets: expected at least one data set, each with transitions")
    for d in datasets:
        if max(d.obs.max(), d.next_obs.max()) >= n_states or min(d.obs.min(), d.next_obs.min()) < 0:
            raise ValueError(f"n_states: the data holds states outside 0..{n_states - 1}")
    shift = np.repeat(np.arange(len(datasets)) * n_states, sizes)
    joined = {f: np.concatenate([getattr(d, f) for d in datasets])
              for f in ("obs", "rew", "next_obs", "bootstrap", "ret")}
    joined["obs"] = joined["obs"] + shift
    joined["next_obs"] = joined["next_obs"] + shift
    return Transitions(**joined), np.concatenate([[0], np.cumsum(sizes)])


def _draws(starts: np.ndarray, config: FitConfig) -> tuple[np.ndarray, np.ndarray]:
    """The transitions of every update: (steps, K) indices, and each one's weight in the mean,
    (K,), so that every data set's loss is a mean over its own B (or M_r) transitions."""
    sizes = np.diff(starts)
    if config.batch_size is None:                       # all transitions, every update
        weight = np.repeat(1.0 / sizes, sizes)
        return np.broadcast_to(np.arange(starts[-1]), (config.steps, starts[-1])), weight
    rng = np.random.default_rng(config.seed)
    u = rng.random((config.steps, len(sizes), config.batch_size))
    picks = starts[:-1, None] + (u * sizes[:, None]).astype(np.int64)
    return picks.reshape(config.steps, -1), np.full(picks[0].size, 1.0 / config.batch_size)


def fit_value_tables(datasets: Sequence[Transitions], n_states: int, config: FitConfig,
                     init: np.ndarray | None = None) -> np.ndarray:
    """Fit R independent tables V (S,), one per data set, side by side. -> (steps + 1, R, S):
    the tables before the first update (row 0 = init, default 0) and after each update.

    Each update is one step of plain gradient descent on the lecture's loss, a mean over B
    transitions (s, r, s') of its data set:  V <- V - lr * grad, grad = d/dV mean (SG[y] - V(s))^2.
      monte_carlo:   y = the reward-to-go (fixed numbers).
      bootstrapped:  y = r + gamma (1 - terminated) V(s'), from the current table, held fixed.
      full_gradient: the same y, but differentiated too: V(s') gets -gamma (1 - terminated) times
                     the gradient of V(s) (the residual gradient).
    """
    data, starts = _stack(datasets, n_states)
    picks, weight = _draws(starts, config)
    R, full = len(datasets), config.target == "full_gradient"
    V = np.zeros(R * n_states) if init is None else _init(init, R, n_states)
    history = np.empty((config.steps + 1, R * n_states))
    history[0] = V
    with np.errstate(over="ignore", invalid="ignore"):     # a too large lr may diverge: let it
        for k, i in enumerate(picks):
            s, s_next = data.obs[i], data.next_obs[i]
            if config.target == "monte_carlo":
                y = data.ret[i]
            else:
                y = data.rew[i] + data.bootstrap[i] * V[s_next]      # SG: y is just numbers
            delta = weight * (y - V[s])
            grad = -2.0 * np.bincount(s, delta, minlength=R * n_states)
            if full:    # the target's own gradient: d/dV(s') of (y - V(s))^2
                grad += 2.0 * np.bincount(s_next, data.bootstrap[i] * delta, minlength=R * n_states)
            V = V - config.lr * grad
            history[k + 1] = V
    return history.reshape(config.steps + 1, R, n_states)


def fit_value_table(data: Transitions, n_states: int, config: FitConfig,
                    init: np.ndarray | None = None) -> np.ndarray:
    """`fit_value_tables` on one data set. -> (steps + 1, S): the table after each update."""
    return fit_value_tables([data], n_states, config, init)[:, 0]


def _init(init: np.ndarray, R: int, n_states: int) -> np.ndarray:
    init = np.asarray(init, dtype=float)
    if init.shape not in ((n_states,), (R, n_states)):
        raise ValueError(f"init: expected a table ({n_states},) or one per data set "
                         f"({R}, {n_states}), got shape {init.shape}")
    check_finite("init", init)
    return np.broadcast_to(init, (R, n_states)).ravel().copy()


def batch_fixed_point(data: Transitions, n_states: int, target: str) -> np.ndarray:
    """Where full-batch gradient descent on one data set converges (from V = 0, a small enough
    lr), by linear algebra instead of iterations. -> (S,); states the data never moves stay 0.

      monte_carlo:   V(s) = the mean of the targets y seen in s.
      bootstrapped:  sum over the steps i taken in s of (r_i + b_i V(s'_i) - V(s)) = 0, b_i =
                     gamma (1 - terminated_i): V of the MDP the data itself describes (its
                     empirical transitions and rewards; "certainty equivalence").
      full_gradient: the least-squares solution of r_i + b_i V(s'_i) - V(s_i) = 0 over all i.
    """
    if target not in TARGETS:
        raise ValueError(f"target: expected one of {TARGETS}, got {target!r}")
    d, _ = _stack([data], n_states)
    V = np.zeros(n_states)
    seen = np.bincount(d.obs, minlength=n_states) > 0
    if target == "monte_carlo":
        V[seen] = (np.bincount(d.obs, d.ret, n_states)[seen]
                   / np.bincount(d.obs, minlength=n_states)[seen])
        return V
    moved = seen.copy()
    if target == "full_gradient":
        moved[d.next_obs[d.bootstrap > 0]] = True       # the target's gradient moves V(s') too
    col = np.cumsum(moved) - 1
    # one row per transition: -V(s_i) + b_i V(s'_i) = -r_i  (V fixed at 0 outside `moved`)
    M = np.zeros((len(d), int(moved.sum())))
    rows = np.arange(len(d))
    M[rows, col[d.obs]] -= 1.0
    nxt = moved[d.next_obs] & (d.bootstrap > 0)
    np.add.at(M, (rows[nxt], col[d.next_obs[nxt]]), d.bootstrap[nxt])
    if target == "bootstrapped":    # the semi-gradient's stationarity: sum_i in s of delta_i = 0
        Z = np.zeros((len(d), M.shape[1]))
        Z[rows, col[d.obs]] = 1.0
        V[moved] = np.linalg.solve(Z.T @ M, -Z.T @ d.rew)
    else:
        V[moved] = np.linalg.lstsq(M, -d.rew, rcond=None)[0]
    return V


# --- exact references on a tabular MDP -------------------------------------------------------

def visit_distribution(mdp: TabularMDP, logits: np.ndarray) -> np.ndarray:
    """The fraction of sampled steps spent in each state, (S,), summing to 1: the distribution
    the fitted transitions come from (undiscounted, up to the step where sampling truncates).
    Terminal states get 0: no step is taken from them."""
    check_table_mdp(mdp)
    pi = softmax_policy(check_logits(mdp, logits))
    P_pi = policy_transitions(mdp, pi) * ~mdp.terminal[:, None]
    cap = sampling_horizon(mdp) or MAX_STEPS
    d, total = mdp.mu0.copy(), np.zeros(mdp.n_states)
    for _ in range(cap):
        total += d
        d = (d @ P_pi) * ~mdp.terminal
        if d.sum() < 1e-13:
            break
    return total / total.sum()


def value_error(value: np.ndarray, reference: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The visit-weighted RMS error sqrt(sum_s w(s) (V(s) - V_ref(s))^2 / sum_s w(s)).
    value: (..., S), e.g. a fit's history (steps + 1, S); reference, weights: (S,). -> (...)."""
    w = np.asarray(weights, dtype=float)
    return np.sqrt(((np.asarray(value) - reference) ** 2 * w).sum(axis=-1) / w.sum())


def residual_fixed_point(mdp: TabularMDP, logits: np.ndarray) -> np.ndarray:
    """Where the full gradient leads with unlimited data: the table (S,) that minimises the mean
    squared TD error  E_{s ~ d, a ~ pi, s' ~ p}[(r(s, a) + gamma (1 - term(s')) V(s') - V(s))^2],
    d = `visit_distribution`. A weighted least-squares problem, solved exactly. It equals V^pi
    only where s' is certain given s: a random next state adds gamma^2 Var[V(s') | s] to the
    objective, which the minimiser trades against the Bellman error. Terminal states: 0."""
    pi = softmax_policy(check_logits(mdp, logits))
    d = visit_distribution(mdp, logits)
    S, A = pi.shape
    live = np.flatnonzero(~mdp.terminal & (d > 0))
    s, a, s2 = (x.ravel() for x in np.meshgrid(live, np.arange(A), np.arange(S), indexing="ij"))
    w = d[s] * pi[s, a] * mdp.P[s, a, s2]
    keep = w > 0
    s, a, s2, w = s[keep], a[keep], s2[keep], w[keep]
    # residual of row k: R[s, a] + c_k V[s2] - V[s];  least squares in the unknowns V[live]
    col = -np.ones(S, dtype=np.int64)
    col[live] = np.arange(live.size)
    rows = np.arange(s.size)
    M = np.zeros((s.size, live.size))
    M[rows, col[s]] -= 1.0
    c = mdp.gamma * (~mdp.terminal[s2] & (col[s2] >= 0))
    np.add.at(M, (rows[c > 0], col[s2[c > 0]]), c[c > 0])
    root = np.sqrt(w)
    sol, *_ = np.linalg.lstsq(M * root[:, None], -mdp.R[s, a] * root, rcond=None)
    V = np.zeros(S)
    V[live] = sol
    return V


def mean_squared_td_error(mdp: TabularMDP, logits: np.ndarray, value: np.ndarray) -> float:
    """E_{s ~ d, a ~ pi, s' ~ p}[(r + gamma (1 - term(s')) V(s') - V(s))^2] for a table (S,):
    the objective the full gradient descends (`residual_fixed_point` is its minimiser)."""
    pi = softmax_policy(check_logits(mdp, logits))
    d = visit_distribution(mdp, logits)
    V = np.asarray(value, dtype=float)
    nxt = mdp.gamma * np.where(mdp.terminal, 0.0, V)                       # (S',)
    err = mdp.R[:, :, None] + nxt[None, None, :] - V[:, None, None]         # (S, A, S')
    return float(np.einsum("s,sa,sax,sax->", d, pi, mdp.P, err ** 2))


# ---------------------------------------------------------------------------------------------
# Neural: the losses, and the fit of a network V_phi
# ---------------------------------------------------------------------------------------------

class _ValidSteps:
    """The valid steps of a mask, the layout the neural losses compute on (padding never
    reaches a loss nor its gradient).

    One data set (mask of any shape): x[mask], (B,), B valid steps.
    K stacked seeds (mask (T, K, N), a network from `stacked.stack_networks`): each seed's
    valid steps packed into a row, (K, B), B the most valid steps of any seed; a shorter row is
    filled up with its seed's first valid step, which `mean` leaves out. The stacked network
    then runs on K * B rows, not on the T * K * N of the padded batch.
    """

    def __init__(self, mask):
        mask = as_tensor(check_flags("mask", mask))
        if not mask.any():
            raise ValueError("mask: expected at least one valid step, got none")
        self.mask = mask
        if mask.dim() != 3:
            return
        T, K, N = mask.shape
        rows = mask.transpose(0, 1).reshape(K, T * N)               # seed k's steps, (t, n) order
        self.count = rows.sum(dim=1)
        if not bool((self.count > 0).all()):
            raise ValueError(f"mask: expected at least one valid step of each of the K = {K} "
                             f"seeds of a (T, K, N) mask")
        order = torch.sort((~rows).to(torch.uint8), dim=1, stable=True).indices
        B = int(self.count.max())
        self.valid = torch.arange(B) < self.count[:, None]            # (K, B)
        order = torch.where(self.valid, order[:, :B], order[:, :1])
        flat = torch.arange(T * K * N).view(T, K, N).transpose(0, 1).reshape(K, T * N)
        self.index = flat.gather(1, order)                            # into (T * K * N)

    def take(self, name: str, x) -> torch.Tensor:
        """x (*mask.shape, ...) on the valid steps: (B, ...), or (K, B, ...) for K seeds."""
        x = as_tensor(x)
        mask = self.mask
        if tuple(x.shape[:mask.dim()]) != tuple(mask.shape):
            raise ValueError(f"{name}: expected leading shape {tuple(mask.shape)} (that of "
                             f"mask), got {tuple(x.shape)}")
        if mask.dim() == 3:
            return x.reshape(mask.numel(), *x.shape[3:])[self.index]
        return x[mask]

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of x (from `take`) over the valid steps: a scalar, or (K,), one per seed."""
        if self.mask.dim() == 3:
            return torch.where(self.valid, x, 0.0).sum(dim=1) / self.count
        return x.mean()

    def values(self, value_net: nn.Module, obs: torch.Tensor) -> torch.Tensor:
        """V_phi(obs) for obs from `take`, one value per observation. Float observations are
        cast to the critic's dtype; integer ones (states of a table) are kept."""
        params = list(value_net.parameters()) if isinstance(value_net, nn.Module) else []
        if not params:
            raise ValueError("value_net: expected an nn.Module with parameters, e.g. "
                             "nets.ValueNet")
        if obs.is_floating_point():
            obs = obs.to(params[0].dtype)
        value = value_net(obs)
        shape = tuple(self.index.shape) if self.mask.dim() == 3 else (obs.shape[0],)
        if tuple(value.shape) != shape:   # a (B, 1) output would broadcast against (B,)
            raise ValueError(f"value_net: expected an output of shape {shape} for "
                             f"observations {tuple(obs.shape)}, got {tuple(value.shape)}")
        return value


def monte_carlo_loss(value_net: nn.Module, obs, targets, mask) -> torch.Tensor:
    """L(phi) = mean over the valid steps of (y - V_phi(s))^2, y the Monte Carlo target.

    obs: (*shape, D) (or (*shape,) int states for a table); targets: (*shape,) float;
    mask: (*shape,) bool, True on valid steps (padding is never evaluated). -> scalar tensor.
    K stacked seeds (`acteach.stacked`): shape (T, K, N) -> (K,), each seed's own mean.
    """
    steps = _ValidSteps(mask)
    value = steps.values(value_net, steps.take("obs", obs))
    y = steps.take("targets", targets).to(value.dtype)
    return steps.mean((y - value) ** 2)


def _td_terms(value_net: nn.Module, obs, rew, next_obs, terminated, mask, gamma: float,
              target_graph: bool = True) -> tuple[torch.Tensor, torch.Tensor, _ValidSteps]:
    """V_phi(s_t) and the target y_hat = r + gamma (1 - terminated) V_phi(s_{t+1}) on the valid
    steps (`_ValidSteps.take`), V_phi(s_t) with its autograd graph, y_hat with its own if
    target_graph; and the valid steps."""
    check_gamma(gamma)
    steps = _ValidSteps(mask)
    value = steps.values(value_net, steps.take("obs", obs))
    with torch.set_grad_enabled(target_graph and torch.is_grad_enabled()):
        next_value = steps.values(value_net, steps.take("next_obs", next_obs))
    done = steps.take("terminated", terminated)
    if done.dtype != torch.bool:
        done = done != 0
    r = steps.take("rew", rew).to(value.dtype)
    if not bool(torch.isfinite(r).all()):
        raise ValueError("rew: expected finite numbers on the valid steps, got NaN or inf")
    target = r + gamma * torch.where(done, torch.zeros_like(next_value), next_value)
    return value, target, steps


def critic_loss(value_net: nn.Module, obs, rew, next_obs, terminated, mask,
                gamma: float = 1.0) -> torch.Tensor:
    """The lecture's bootstrapped loss: mean over the valid steps of (SG[y_hat] - V_phi(s_t))^2,
    y_hat = r_t + gamma (1 - terminated_t) V_phi(s_{t+1}), SG = stop-gradient (detach).

    obs, next_obs: (*shape, D) (or (*shape,) int states for a table critic); rew: (*shape,)
    float; terminated, mask: (*shape,) bool. V(s_{t+1}) is the critic at next_obs[t] (the true
    next observation, also after a truncation), never obs[t + 1]. -> scalar tensor.
    K stacked seeds (`acteach.stacked`): shape (T, K, N) -> (K,), each seed's own mean.
    """
    value, target, steps = _td_terms(value_net, obs, rew, next_obs, terminated, mask, gamma,
                                     target_graph=False)
    return steps.mean((target.detach() - value) ** 2)


def residual_loss(value_net: nn.Module, obs, rew, next_obs, terminated, mask,
                  gamma: float = 1.0) -> torch.Tensor:
    """The same squared TD error as `critic_loss` (same value), without the stop-gradient: its
    gradient also moves V_phi(s_{t+1}) (the "full" or residual gradient). -> scalar tensor
    (K stacked seeds: (K,))."""
    value, target, steps = _td_terms(value_net, obs, rew, next_obs, terminated, mask, gamma)
    return steps.mean((target - value) ** 2)


def fit_value_net(value_net: nn.Module, batch: Batch, config: FitConfig,
                  gamma: float = 1.0) -> list[float]:
    """Fit V_phi in place on the valid steps of a batch (obs (T, N, D)), with Adam.

    config.target picks the loss: `monte_carlo_loss` on the reward-to-go (continued by the
    initial V_phi where an episode was truncated), `critic_loss` (bootstrapped, SG, the target
    recomputed from the current V_phi at every update) or `residual_loss` (full gradient).
    Each update draws config.batch_size steps uniformly with replacement.
    Returns the loss of each update (len = config.steps).
    """
    check_gamma(gamma)
    if config.batch_size is None:
        raise ValueError("config: batch_size=None (full batch) is for tables; give a batch size")
    m = np.asarray(batch.mask, dtype=bool)
    if not m.any():
        raise ValueError("batch: expected at least one valid step, got none")
    data = {"obs": batch.obs[m], "rew": batch.rew[m], "next_obs": batch.next_obs[m],
            "terminated": batch.terminated[m]}
    for name in ("obs", "rew", "next_obs"):
        check_finite(f"batch.{name}", np.asarray(data[name], dtype=float))
    if config.target == "monte_carlo":
        with torch.no_grad():
            next_value = _predict(value_net, batch.next_obs)
        data["ret"] = bootstrapped_return(batch.rew, next_value, batch.terminated,
                                          batch.truncated, m, gamma)[m]
    data = {k: as_tensor(v) for k, v in data.items()}
    M = len(data["rew"])
    generator = torch.Generator().manual_seed(int(config.seed))
    draws = (torch.randint(M, (config.batch_size,), generator=generator)
             for _ in range(config.steps))
    loss_fn = {"bootstrapped": critic_loss, "full_gradient": residual_loss}.get(config.target)

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        every = torch.ones(len(idx), dtype=torch.bool)
        if loss_fn is None:
            return monte_carlo_loss(value_net, data["obs"][idx], data["ret"][idx], every)
        return loss_fn(value_net, data["obs"][idx], data["rew"][idx], data["next_obs"][idx],
                       data["terminated"][idx], every, gamma)

    return _train(value_net, draws, loss_of, config.lr)


def fit_value_monte_carlo(value_net: nn.Module, obs: np.ndarray, targets: np.ndarray,
                          epochs: int = 10, batch_size: int = 256, lr: float = 3e-3,
                          seed: int = 0) -> list[float]:
    """Monte Carlo policy evaluation: regress V_phi(s_t) on given targets y_t, in epochs.

    value_net: maps obs (B, D) -> (B,), e.g. `nets.ValueNet`; trained in place.
    obs:       (B, D) float — observations of the valid steps only, e.g. batch.obs[batch.mask].
    targets:   (B,) float — y_t at those steps, e.g.
               reward_to_go(batch.rew, batch.mask, gamma)[batch.mask].
    epochs:    passes over the B steps, each in a fresh random order, cut into minibatches of
               batch_size (the last one smaller); one Adam update (step size lr) per minibatch
               on `monte_carlo_loss`.
    seed:      seeds the shuffling (a torch.Generator), so a fixed seed and initial network give
               the same fit.
    Returns the mean squared error of each epoch, as measured on its minibatches (len = epochs).
    Unlike `fit_value_net` it takes any targets (not only a batch's reward-to-go) and sweeps
    the data in epochs; both run the same update loop.
    """
    obs_t, y = _regression_data(value_net, obs, targets)
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    check_real("lr", lr, "positive")
    check_seed(seed)
    generator = torch.Generator().manual_seed(int(seed))
    B = len(y)
    draws = (idx for _ in range(epochs)
             for idx in torch.randperm(B, generator=generator).split(batch_size))
    every = torch.ones(min(batch_size, B), dtype=torch.bool)
    losses = _train(value_net, draws,
                    lambda idx: monte_carlo_loss(value_net, obs_t[idx], y[idx], every[:len(idx)]),
                    lr)
    sizes = [len(chunk) for chunk in torch.arange(B).split(batch_size)]
    per_epoch = []
    for e in range(epochs):              # each epoch's mean over its minibatches' steps
        total = 0.0
        for loss, size in zip(losses[e * len(sizes):(e + 1) * len(sizes)], sizes):
            total += loss * size
        per_epoch.append(total / B)
    return per_epoch


def _train(value_net: nn.Module, draws: Iterable[torch.Tensor],
           loss_of: Callable[[torch.Tensor], torch.Tensor], lr: float) -> list[float]:
    """The update loop of both fits: for each minibatch of step indices, its loss and one Adam
    step (step size lr). -> the loss of each update. Runs on one torch thread: with small
    layers and minibatches, threads cost more than they give."""
    optimizer = torch.optim.Adam(value_net.parameters(), lr=lr)
    losses = []
    with single_threaded():
        for idx in draws:
            loss = loss_of(idx)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


def _predict(value_net: nn.Module, obs: np.ndarray) -> np.ndarray:
    """V_phi at time-major observations (T, N, ...) -> (T, N) float64, no graph."""
    params = list(value_net.parameters()) if isinstance(value_net, nn.Module) else []
    if not params:
        raise ValueError("value_net: expected an nn.Module with parameters, e.g. nets.ValueNet")
    x = as_tensor(obs)
    x = x.to(params[0].dtype) if x.is_floating_point() else x
    value = value_net(x)
    if tuple(value.shape) != tuple(x.shape[:2]):
        raise ValueError(f"value_net: expected values of shape {tuple(x.shape[:2])} (T, N) for "
                         f"observations {tuple(x.shape)}, got {tuple(value.shape)}")
    return value.double().numpy()


def _regression_data(value_net: nn.Module, obs, targets) -> tuple[torch.Tensor, torch.Tensor]:
    """obs (B, D) and targets (B,) as tensors of the network's dtype, or a ValueError."""
    params = list(value_net.parameters()) if isinstance(value_net, nn.Module) else []
    if not params:
        raise ValueError("value_net: expected an nn.Module with parameters, e.g. nets.ValueNet")
    dtype = params[0].dtype
    obs = obs.detach().numpy() if isinstance(obs, torch.Tensor) else np.asarray(obs)
    targets = targets.detach().numpy() if isinstance(targets, torch.Tensor) else np.asarray(targets)
    if obs.ndim != 2:
        raise ValueError(f"obs: expected a (B, D) array of the valid steps' observations "
                         f"(e.g. batch.obs[batch.mask]), got shape {obs.shape}")
    if targets.shape != (obs.shape[0],):
        raise ValueError(f"targets: expected shape ({obs.shape[0]},), one per row of obs, "
                         f"got {targets.shape}")
    if obs.shape[0] == 0:
        raise ValueError("obs: expected at least one step, got none")
    check_finite("obs", obs)
    check_finite("targets", targets)
    return as_tensor(np.array(obs), dtype), as_tensor(np.array(targets), dtype)


# ---------------------------------------------------------------------------------------------
# A large-sample reference on CartPole: many rollouts from a few fixed states
# ---------------------------------------------------------------------------------------------

def rollout_values(env_id: str, policy, states: np.ndarray, n_rollouts: int, seed: int,
                   gamma: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo V^pi at K given states: the mean discounted return of n_rollouts episodes of
    `policy` started from each, and its standard error. -> (K,), (K,).

    For gymnasium's classic-control vector envs whose physical state is settable (CartPole-v1):
    the env is reset, then its `state` overwritten with `states` (K, D), each repeated
    n_rollouts times. A rollout runs until it terminates (the time limit restarts at the given
    state: with episodes far shorter than the limit, as here, it never binds; one that does is
    reported). Actions come from `policy.act(obs, generator)`, generator seeded with `seed`.
    """
    check_positive_int("n_rollouts", n_rollouts)
    check_gamma(gamma)
    check_seed(seed)
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2:
        raise ValueError(f"states: expected a (K, D) array of states, got shape {states.shape}")
    M = len(states) * n_rollouts
    env = make_envs(env_id, M)
    try:
        if getattr(env.unwrapped, "state", None) is None and not hasattr(env.unwrapped, "state"):
            raise ValueError(f"env_id: {env_id!r} has no settable `state`; expected a "
                             "classic-control vector env such as CartPole-v1")
        env.reset(seed=int(seed))
        if env.unwrapped.state.shape != (states.shape[1], M):
            raise ValueError(f"states: expected rows of length {env.unwrapped.state.shape[0]}, "
                             f"got {states.shape[1]}")
        env.unwrapped.state = np.repeat(states, n_rollouts, axis=0).T.copy()
        obs = np.repeat(states, n_rollouts, axis=0).astype(np.float32)
        generator = torch.Generator().manual_seed(int(seed))
        ret, running, discount = np.zeros(M), np.ones(M, dtype=bool), 1.0
        while running.any():
            act = np.zeros(M, dtype=np.int64)
            act[running] = policy.act(obs[running], generator)
            obs, rew, terminated, truncated, _ = env.step(act)
            ret[running] += discount * rew[running]
            if np.any(truncated & ~terminated & running):
                raise ValueError("states: a rollout reached the env's time limit; the returns "
                                 "would be cut short")
            running &= ~terminated
            discount *= gamma
    finally:
        env.close()
    ret = ret.reshape(len(states), n_rollouts)
    return ret.mean(axis=1), ret.std(axis=1, ddof=1) / np.sqrt(n_rollouts)
