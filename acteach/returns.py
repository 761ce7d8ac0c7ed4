"""Returns as weights of the policy gradient (backs notebook 01, reward-to-go).

Every estimator in the course is  g = (1/N) sum_n sum_t grad log pi(a_t|s_t) * w_t.
This module holds the weights built from rewards alone:

    total_return:  w_t = sum_{t'} gamma^{t'} r_{t'}         (REINFORCE: the whole return)
    reward_to_go:  w_t = sum_{t' >= t} gamma^{t'-t} r_{t'}  (causality: the past cannot be credited)

Arrays are time-major, (T, N): T time steps, N trajectories; `mask` (T, N) bool marks valid steps.
"""
from __future__ import annotations

import numpy as np

from acteach._validate import check_finite, check_gamma, check_integer


def _check_rewards(rew: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rew = np.asarray(rew, dtype=np.float64)
    mask = np.asarray(mask)
    if rew.ndim != 2:
        raise ValueError(f"rew: expected a (T, N) array, got shape {rew.shape}")
    if mask.shape != rew.shape:
        raise ValueError(f"mask: expected shape {rew.shape} (the shape of rew), got {mask.shape}")
    if mask.dtype != bool:
        raise ValueError(f"mask: expected a bool array, got dtype {mask.dtype}")
    rew = np.where(mask, rew, 0.0)                   # padding may hold garbage: drop it
    check_finite("rew", rew)
    return rew, mask


def discounts(T: int, gamma: float) -> np.ndarray:
    """(T, 1) column of gamma^t, t = 0..T-1, broadcastable against (T, N)."""
    check_integer("T", T)
    if T < 0:
        raise ValueError(f"T: expected an integer >= 0, got {T!r}")
    check_gamma(gamma)
    return (float(gamma) ** np.arange(T, dtype=np.float64))[:, None]


def reward_to_go(rew: np.ndarray, mask: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """Q_hat[t, n] = sum_{t' >= t} gamma^{t'-t} rew[t', n] over valid steps; 0 where mask is False.

    rew: (T, N) float, mask: (T, N) bool -> (T, N) float.
    """
    check_gamma(gamma)
    rew, mask = _check_rewards(rew, mask)
    ret = np.zeros_like(rew)
    running = np.zeros(rew.shape[1])
    for t in reversed(range(rew.shape[0])):
        running = rew[t] + gamma * running
        ret[t] = running
    return np.where(mask, ret, 0.0)


def total_return(rew: np.ndarray, mask: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """R(tau_n) = sum_t gamma^t rew[t, n] over valid steps. rew, mask: (T, N) -> (N,)."""
    check_gamma(gamma)
    rew, mask = _check_rewards(rew, mask)
    return (discounts(rew.shape[0], gamma) * rew).sum(axis=0)
