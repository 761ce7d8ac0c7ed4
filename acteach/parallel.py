"""Online vs parallel actor-critic: how noisy one transition is, and what N envs x T steps buy
(backs notebook 07).

The online actor-critic updates theta from one transition: g_1 = grad log pi(a|s) * A(s, a).
A2C averages the same per-transition gradient over a rollout of N envs x T steps. Envs are
independent, so N envs divide the variance of that average by N. T consecutive steps of one env
are correlated (nearby states, overlapping futures), so they divide it by less than T: by
T_eff(T) = Var[g_1] / Var[mean of T consecutive g], the effective number of independent steps.

    gradient_noise   measures Var of the T-step mean per env (exact algebra for the N envs)
                     and the signal |E g|^2 it hides
    learning_grid    trains A2C once for every (N, T) of a grid on the same env-step budget
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from acteach._validate import check_positive_int, check_seed
from acteach.actor_critic import A2CConfig, A2CHistory, rollout, train_a2c
from acteach.batch_actor_critic import td_advantage_of
from acteach.nets import CategoricalPolicy, ValueNet, per_trajectory_gradients
from acteach.sampling import Batch, make_envs
from acteach.training import History


@dataclass
class GradientNoise:
    """Noise of the actor gradient at one policy and critic (the one-step TD advantage).

    n_steps:      (K,) the window lengths T measured.
    variance:     (K,) tr Cov of the mean gradient of T consecutive steps of one env.
    variance_se:  (K,) a standard error of each (windows treated as independent).
    signal:       |E g|^2, the squared norm of the expected gradient (see `signal_estimate`).
    signal_se:    its standard error (jackknife over the envs).
    n_transitions: valid transitions behind `variance`; the signal uses a longer rollout.
    """

    n_steps: np.ndarray
    variance: np.ndarray
    variance_se: np.ndarray
    signal: float
    signal_se: float
    n_transitions: int

    def index(self, n_steps: int) -> int:
        hits = np.flatnonzero(self.n_steps == n_steps)
        if hits.size == 0:
            raise ValueError(f"n_steps: expected one of {self.n_steps.tolist()}, got {n_steps!r}")
        return int(hits[0])

    def variance_of(self, n_envs: int, n_steps: int) -> float:
        """tr Cov of the gradient of one update from n_envs independent envs x n_steps steps."""
        check_positive_int("n_envs", n_envs)
        return float(self.variance[self.index(n_steps)] / n_envs)

    def effective_steps(self, n_steps: int) -> float:
        """T_eff: how many independent transitions T consecutive ones are worth."""
        return float(self.variance[self.index(1)] / self.variance[self.index(n_steps)])

    def snr(self, n_envs: int, n_steps: int) -> float:
        """Signal-to-noise of one update's gradient: |E g|^2 / tr Cov."""
        return self.signal / self.variance_of(n_envs, n_steps)


def sample_record(policy: CategoricalPolicy, env_id: str, n_envs: int, length: int,
                  seed: int) -> Batch:
    """A (length, n_envs) record of pi acting in n_envs fresh envs (see `rollout`)."""
    check_seed(seed)
    for name, value in (("n_envs", n_envs), ("length", length)):
        check_positive_int(name, value)
    envs = make_envs(env_id, n_envs)
    try:
        obs, _ = envs.reset(seed=seed)
        record, _, _ = rollout(envs, policy, obs, np.zeros(n_envs, dtype=bool), length,
                               torch.Generator().manual_seed(seed))
    finally:
        envs.close()
    return record


def transition_gradients(policy: CategoricalPolicy, critic: ValueNet, record: Batch,
                         gamma: float) -> torch.Tensor:
    """g[t, n] = grad_theta log pi(a_t|s_t) * A_t for every step of a (T, N) record, with
    A_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t) from `critic`.
    -> (T, N, P) float32; 0 where record.mask is False (gymnasium's reset steps)."""
    T, N = record.mask.shape
    adv = td_advantage_of(critic, record, gamma).astype(np.float32)            # (T, N)
    flat = lambda x: x.reshape(1, T * N, *x.shape[2:])                        # noqa: E731
    g = per_trajectory_gradients(policy, flat(record.obs), flat(record.act), flat(adv),
                                 flat(record.mask))                            # (T * N, P)
    return g.reshape(T, N, -1)


def window_variance(g: torch.Tensor, mask: np.ndarray, T: int) -> tuple[float, float]:
    """tr Cov of the mean of g over windows of T consecutive valid steps of one column.

    g: (L, N, P) per-step gradients (0 where mask is False); mask: (L, N); L a multiple of T.
    Each column is cut into L / T windows; a window's mean is over its valid steps (windows with
    none are dropped). -> (variance, its standard error, windows treated as independent).
    """
    L, N = mask.shape
    mask_t = torch.as_tensor(mask, dtype=g.dtype)
    sums = g.reshape(L // T, T, N, -1).sum(dim=1)                             # (W, N, P)
    counts = mask_t.reshape(L // T, T, N).sum(dim=1)                          # (W, N)
    keep = counts > 0
    means = sums[keep] / counts[keep].unsqueeze(-1)                            # (windows, P)
    sq = (means - means.mean(dim=0)).pow(2).sum(dim=1).double().numpy()      # |g_w - g_bar|^2
    return float(sq.sum() / (len(sq) - 1)), float(sq.std(ddof=1) / np.sqrt(len(sq)))


def signal_estimate(sums: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """|E g|^2 from per-env gradient sums, without the upward bias of |mean g|^2.

    sums: (N, P), env n's sum of per-step gradients; counts: (N,) its valid steps. |mean g|^2
    contains every product g_i . g_j, including i = j and pairs of one env (correlated); the
    estimate keeps only pairs from different envs, which are independent:
        (|sum_n S_n|^2 - sum_n |S_n|^2) / (C^2 - sum_n c_n^2),   C = sum_n c_n.
    -> (estimate, jackknife standard error over the envs).
    """
    sums, counts = np.asarray(sums, dtype=np.float64), np.asarray(counts, dtype=np.float64)
    if sums.ndim != 2 or len(sums) < 2 or counts.shape != (len(sums),):
        raise ValueError(f"sums: expected (N, P) with N >= 2 and counts (N,), got "
                         f"{sums.shape} and {counts.shape}")
    total, own = sums.sum(axis=0), (sums ** 2).sum(axis=1)                     # (P,), (N,)
    cross = lambda t, o, c, c2: (t @ t - o) / (c ** 2 - c2)                     # noqa: E731
    estimate = cross(total, own.sum(), counts.sum(), (counts ** 2).sum())
    left_out = np.array([cross(total - sums[n], own.sum() - own[n], counts.sum() - counts[n],
                               (counts ** 2).sum() - counts[n] ** 2) for n in range(len(sums))])
    n = len(sums)
    se = np.sqrt((n - 1) / n * ((left_out - left_out.mean()) ** 2).sum())
    return float(estimate), float(se)


def gradient_noise(policy: CategoricalPolicy, critic: ValueNet, env_id: str = "CartPole-v1",
                   n_steps: Sequence[int] = (1, 4, 16, 64), n_envs: int = 32, length: int = 256,
                   signal_length: int = 1024, gamma: float = 0.99, seed: int = 0
                   ) -> GradientNoise:
    """Measure the noise and the signal of the actor gradient at one policy and critic.

    One rollout of n_envs envs x signal_length steps. Its first `length` steps give every
    transition's gradient, and `window_variance` for each T; the whole rollout gives each env's
    gradient sum (one vmapped gradient per env) and `signal_estimate`.
    """
    check_seed(seed)
    n_steps = np.asarray(n_steps, dtype=int)
    check_positive_int("n_envs", n_envs)
    if n_envs < 2:
        raise ValueError(f"n_envs: expected at least 2 (pairs of envs for the signal), got "
                         f"{n_envs}")
    if n_steps.ndim != 1 or n_steps[0] != 1 or (np.diff(n_steps) <= 0).any():
        raise ValueError(f"n_steps: expected increasing window lengths starting at 1, "
                         f"got {n_steps.tolist()}")
    for T in n_steps:
        if length % T:
            raise ValueError(f"length: expected a multiple of every n_steps, {length} is not "
                             f"a multiple of {T}")
    if signal_length < length:
        raise ValueError(f"signal_length: expected at least length = {length}, got "
                         f"{signal_length}")
    record = sample_record(policy, env_id, n_envs, signal_length, seed)
    head = Batch(**{k: v[:length] for k, v in vars(record).items()})
    g = transition_gradients(policy, critic, head, gamma)                      # (L, N, P)
    variance, variance_se = zip(*(window_variance(g, head.mask, int(T)) for T in n_steps))
    del g
    adv = td_advantage_of(critic, record, gamma).astype(np.float32)
    sums = per_trajectory_gradients(policy, record.obs, record.act, adv, record.mask)  # (N, P)
    signal, signal_se = signal_estimate(sums.double().numpy(), record.mask.sum(axis=0))
    return GradientNoise(n_steps, np.array(variance), np.array(variance_se), signal, signal_se,
                         int(head.mask.sum()))


def learning_grid(config: A2CConfig, n_envs: Sequence[int] = (1, 4, 16),
                  n_steps: Sequence[int] = (1, 4, 16)) -> dict[tuple[int, int], A2CHistory]:
    """Train A2C once per (N, T) on config.total_steps env steps (same seed, same everything
    else) and return the histories, keyed by (n_envs, n_steps)."""
    histories = {}
    for n in n_envs:
        for t in n_steps:
            run = dataclasses.replace(config, n_envs=int(n), n_steps=int(t))
            histories[int(n), int(t)] = train_a2c(run, progress=False)
    return histories


def smoothed(history: History, window: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(env steps, seconds, mean of the last `window` returns) at each episode's end."""
    check_positive_int("window", window)
    ret = np.asarray(history.episode_returns, dtype=float)
    csum = np.concatenate([[0.0], np.cumsum(ret)])
    idx = np.arange(1, len(ret) + 1)
    lo = np.maximum(idx - window, 0)
    mean = (csum[idx] - csum[lo]) / (idx - lo)
    return np.asarray(history.episode_steps), np.asarray(history.episode_seconds), mean
