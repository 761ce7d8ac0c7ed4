"""Online vs parallel actor-critic: how noisy one transition is, and what N envs x T steps buy
(backs notebook 07).

The online actor-critic updates theta from one transition: g_1 = grad log pi(a|s) * A(s, a).
A2C averages the same per-transition gradient over a rollout of N envs x T steps. Envs are
independent, so N envs divide the variance of that average by N. T consecutive steps of one env
are correlated (nearby states, overlapping futures), so they divide it by less than T: by
T_eff(T) = Var[g_1] / Var[mean of T consecutive g], the effective number of independent steps.

    gradient_noise   measures Var of the T-step mean per env (exact algebra for the N envs)
    learning_grid    trains A2C once for every (N, T) of a grid on the same env-step budget
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from acteach._validate import check_positive_int
from acteach.actor_critic import Config, History, make_envs, rollout, td_advantage_of, train_a2c
from acteach.nets import CategoricalPolicy, ValueNet, per_trajectory_gradients


@dataclass
class GradientNoise:
    """Noise of the actor gradient at one policy and critic (the one-step TD advantage).

    n_steps:      (K,) the window lengths T measured.
    variance:     (K,) tr Cov of the mean gradient of T consecutive steps of one env.
    variance_se:  (K,) a standard error of each (windows treated as independent).
    signal:       |E g|^2, the squared norm of the expected gradient, estimated without the
                  upward bias of |mean g|^2 as the dot product of the mean gradients of two
                  independent halves of the envs (so it may come out negative when tiny).
    n_transitions: valid transitions measured (n_envs x length, less autoreset steps).
    """

    n_steps: np.ndarray
    variance: np.ndarray
    variance_se: np.ndarray
    signal: float
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
        """Signal-to-noise of one update's gradient: |g_bar|^2 / tr Cov."""
        return self.signal / self.variance_of(n_envs, n_steps)


def transition_gradients(policy: CategoricalPolicy, critic: ValueNet, env_id: str,
                         n_envs: int, length: int, gamma: float, seed: int
                         ) -> tuple[torch.Tensor, np.ndarray]:
    """Run n_envs envs for `length` steps with pi and return every transition's gradient.

    g[t, n] = grad_theta log pi(a_t|s_t) * A_t, A_t = r_t + gamma (1 - terminated_t) V(s_{t+1})
    - V(s_t) from `critic`. -> (g (length, n_envs, P) torch, mask (length, n_envs) bool); g is 0
    where mask is False (gymnasium's autoreset steps).
    """
    for name, value in (("n_envs", n_envs), ("length", length)):
        check_positive_int(name, value)
    envs = make_envs(env_id, n_envs)
    try:
        obs, _ = envs.reset(seed=seed)
        generator = torch.Generator().manual_seed(seed)
        record, _, _ = rollout(envs, policy, obs, np.zeros(n_envs, dtype=bool), length,
                               generator)
    finally:
        envs.close()
    adv = td_advantage_of(critic, record, gamma).astype(np.float32)            # (T, N)
    flat = lambda x: x.reshape(1, length * n_envs, *x.shape[2:])              # noqa: E731
    g = per_trajectory_gradients(policy, flat(record.obs), flat(record.act), flat(adv),
                                 flat(record.mask))                            # (T * N, P)
    return g.reshape(length, n_envs, -1), record.mask


def gradient_noise(policy: CategoricalPolicy, critic: ValueNet, env_id: str = "CartPole-v1",
                   n_steps: Sequence[int] = (1, 4, 16, 64), n_envs: int = 32, length: int = 256,
                   gamma: float = 0.99, seed: int = 0) -> GradientNoise:
    """Measure Var of the mean actor gradient over T consecutive steps of one env, for each T.

    Each of the n_envs columns of a length-step rollout is cut into windows of T steps; a
    window's gradient is the mean over its valid steps. The variance over all windows is the
    variance of one env's T-step update; N independent envs divide it by N.
    """
    n_steps = np.asarray(n_steps, dtype=int)
    check_positive_int("n_envs", n_envs)
    if n_envs < 2:
        raise ValueError(f"n_envs: expected at least 2 (two halves for the signal), got {n_envs}")
    if n_steps.ndim != 1 or n_steps[0] != 1 or (np.diff(n_steps) <= 0).any():
        raise ValueError(f"n_steps: expected increasing window lengths starting at 1, "
                         f"got {n_steps.tolist()}")
    for T in n_steps:
        if length % T:
            raise ValueError(f"length: expected a multiple of every n_steps, {length} is not "
                             f"a multiple of {T}")
    g, mask = transition_gradients(policy, critic, env_id, n_envs, length, gamma, seed)
    mask_t = torch.as_tensor(mask, dtype=g.dtype)
    half = n_envs // 2                        # two independent halves of the envs: the dot of
    g_a, g_b = (g[:, cols].sum(dim=(0, 1)) / mask_t[:, cols].sum()     # their means is an
                for cols in (slice(None, half), slice(half, None)))     # unbiased |g|^2
    signal = float(g_a @ g_b)
    variance, variance_se = [], []
    for T in n_steps:
        sums = g.reshape(length // T, T, n_envs, -1).sum(dim=1)               # (W, N, P)
        counts = mask_t.reshape(length // T, T, n_envs).sum(dim=1)            # (W, N)
        keep = counts > 0
        means = sums[keep] / counts[keep].unsqueeze(-1)                        # (windows, P)
        sq = (means - means.mean(dim=0)).pow(2).sum(dim=1).numpy()            # |g_w - g_bar|^2
        variance.append(sq.sum() / (len(sq) - 1))
        variance_se.append(sq.std(ddof=1) / np.sqrt(len(sq)))
    return GradientNoise(n_steps, np.array(variance), np.array(variance_se), signal,
                         int(mask.sum()))


def learning_grid(config: Config, n_envs: Sequence[int] = (1, 4, 16),
                  n_steps: Sequence[int] = (1, 4, 16)) -> dict[tuple[int, int], History]:
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
