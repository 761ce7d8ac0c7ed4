"""Targets and advantages from a critic: bootstrapping, terminated vs truncated (backs notebooks
04 and 05, and the n-step returns and GAE of 09; the actor-critic algorithms of 06 onwards use
them).

    one-step target      y_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1})
    TD advantage         A_t = y_t - V(s_t)
    return with bootstrap  G_t = r_t + gamma * G_{t+1} within an episode, cut at termination
                           (nothing follows), and at truncation or the end of the rollout
                           continued by V(s_{t+1}) (the episode would have gone on).
    n-step return        G^(n)_t = r_t + ... + gamma^(n-1) r_{t+n-1} + gamma^n V(s_{t+n}),
                           cut like G_t where the episode ends sooner.
    GAE                  A_t = delta_t + gamma lam A_{t+1}, delta_t the TD advantage, the
                           recursion cut wherever an episode ends (terminated or truncated).

A time limit is not a terminal state: after a truncation the next state still has a value, so
the target bootstraps from V(next_obs). A step both terminated and truncated counts as
terminated, as in gymnasium. Arrays are time-major (T, N); V(s_{t+1}) is `next_value[t]`, the
critic at `next_obs[t]` (the true final observation on the last step of an episode, not the
reset one). Flags may be bool or 0/1.
"""
from __future__ import annotations

import numpy as np

from acteach._validate import check_finite, check_flags, check_gamma, check_lam, check_positive_int


def _check(rew: np.ndarray, mask, gamma: float, **arrays) -> tuple[np.ndarray, np.ndarray, dict]:
    """Validate rew (T, N), mask and gamma, and each (T, N) float array in `arrays`."""
    check_gamma(gamma)
    rew = np.asarray(rew, dtype=np.float64)
    if rew.ndim != 2:
        raise ValueError(f"rew: expected a (T, N) array, got shape {rew.shape}")
    mask = check_flags("mask", mask, rew.shape)
    out = {}
    for name, x in arrays.items():
        x = np.asarray(x, dtype=np.float64)
        if x.shape != rew.shape:
            raise ValueError(f"{name}: expected shape {rew.shape} (the shape of rew), "
                             f"got {x.shape}")
        check_finite(name, np.where(mask, x, 0.0))
        out[name] = np.where(mask, x, 0.0)
    check_finite("rew", np.where(mask, rew, 0.0))
    return np.where(mask, rew, 0.0), mask, out


def bootstrapped_target(rew: np.ndarray, next_value: np.ndarray, terminated: np.ndarray,
                        mask: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """y_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) on valid steps, 0 elsewhere.

    rew, next_value: (T, N) float; terminated, mask: (T, N) bool or 0/1. A truncated step
    bootstraps like any other: its next state still has a value. -> (T, N).
    """
    rew, mask, x = _check(rew, mask, gamma, next_value=next_value)
    terminated = check_flags("terminated", terminated, rew.shape)
    return np.where(mask, rew + gamma * np.where(terminated, 0.0, x["next_value"]), 0.0)


def td_advantage(rew: np.ndarray, value: np.ndarray, next_value: np.ndarray,
                 terminated: np.ndarray, mask: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """A_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t) on valid steps, 0 elsewhere.
    All (T, N). -> (T, N)."""
    target = bootstrapped_target(rew, next_value, terminated, mask, gamma)
    _, mask, x = _check(rew, mask, gamma, value=value)
    return np.where(mask, target - x["value"], 0.0)


def bootstrapped_return(rew: np.ndarray, next_value: np.ndarray, terminated: np.ndarray,
                        truncated: np.ndarray, mask: np.ndarray, gamma: float = 1.0
                        ) -> np.ndarray:
    """G_t: the discounted rewards to the end of the episode, continued by V where it was cut.

        G_t = r_t                                  if terminated_t
        G_t = r_t + gamma * V(s_{t+1})             if truncated_t (and not terminated_t),
                                                   or t is the last valid step of the column
        G_t = r_t + gamma * G_{t+1}                otherwise

    Several episodes may follow one another in a column (a vector env's rollout); the flags mark
    where each ends. With no truncation and every episode terminated, G_t is the reward-to-go.
    All (T, N). -> (T, N), 0 where mask is False.
    """
    rew, mask, x = _check(rew, mask, gamma, next_value=next_value)
    terminated = check_flags("terminated", terminated, rew.shape)
    truncated = check_flags("truncated", truncated, rew.shape) & ~terminated
    T = rew.shape[0]
    last = mask & ~np.vstack([mask[1:], np.zeros((1, rew.shape[1]), dtype=bool)])
    ret = np.zeros_like(rew)
    following = np.zeros(rew.shape[1])                  # G_{t+1}
    for t in reversed(range(T)):
        cut = truncated[t] | last[t]
        future = np.where(terminated[t], 0.0, np.where(cut, x["next_value"][t], following))
        ret[t] = rew[t] + gamma * future
        following = ret[t]
    return np.where(mask, ret, 0.0)


def episode_ends(terminated: np.ndarray, truncated: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Where the return stops collecting rewards of this column: a terminated or truncated step,
    or the last valid step before a masked one (the end of the rollout, or the step before a
    vector env's autoreset step). All (T, N) bool (or 0/1) -> (T, N) bool, False where mask
    is False: a mask to index with, never integers that would fancy-index."""
    mask = check_flags("mask", mask)
    if mask.ndim != 2:
        raise ValueError(f"mask: expected a (T, N) array, got shape {mask.shape}")
    terminated = check_flags("terminated", terminated, mask.shape, "the shape of mask")
    truncated = check_flags("truncated", truncated, mask.shape, "the shape of mask")
    following = np.vstack([mask[1:], np.zeros((1, mask.shape[1]), dtype=bool)])
    return mask & (terminated | truncated | ~following)


def n_step_return(rew: np.ndarray, next_value: np.ndarray, terminated: np.ndarray,
                  truncated: np.ndarray, mask: np.ndarray, gamma: float = 1.0, n: int = 1
                  ) -> np.ndarray:
    """G^(n)_t: n rewards, then the critic.

        G^(n)_t = r_t + gamma r_{t+1} + ... + gamma^(n-1) r_{t+n-1} + gamma^n V(s_{t+n})

    with V(s_{t+n}) = next_value[t+n-1]. If the episode ends first, at step e < t + n - 1, the
    sum stops there: nothing follows a termination, and a truncation (or the end of the rollout,
    or the step before a masked one) is continued by gamma^(e-t+1) V(next_obs[e]), as in
    `bootstrapped_return`. n = 1 gives `bootstrapped_target`; n >= T gives `bootstrapped_return`.
    rew, next_value: (T, N) float; terminated, truncated, mask: (T, N) bool or 0/1; n a
    positive int. -> (T, N), 0 where mask is False.
    """
    check_positive_int("n", n)
    rew, mask, x = _check(rew, mask, gamma, next_value=next_value)
    terminated = check_flags("terminated", terminated, rew.shape)
    truncated = check_flags("truncated", truncated, rew.shape)
    end = episode_ends(terminated, truncated, mask)
    T, N = rew.shape

    def ahead(a: np.ndarray, k: int) -> np.ndarray:       # a[t + k] at row t, 0 past the end
        return np.vstack([a[k:], np.zeros((min(k, T), N), dtype=a.dtype)])

    ret = np.zeros_like(rew)
    open_ = mask.copy()                   # the window from t has not yet met an episode's end
    for k in range(min(n, T)):
        ret += np.where(open_, gamma ** k * ahead(rew, k), 0.0)
        closes = open_ & (ahead(end, k) | (k == n - 1))
        value = np.where(ahead(terminated, k), 0.0, ahead(x["next_value"], k))
        ret += np.where(closes, gamma ** (k + 1) * value, 0.0)
        open_ &= ~closes
    return ret


def gae(rew: np.ndarray, value: np.ndarray, next_value: np.ndarray, terminated: np.ndarray,
        truncated: np.ndarray, mask: np.ndarray, gamma: float = 1.0, lam: float = 0.95
        ) -> np.ndarray:
    """The generalised advantage estimate (Schulman et al. 2016), backwards in time:

        delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t)      (`td_advantage`)
        A_t     = delta_t + gamma lam A_{t+1},  with A_{t+1} taken as 0 where the episode ends
                  at t (terminated, truncated, or the last valid step before a masked one)

    so A_t = sum_k (gamma lam)^k delta_{t+k} over the rest of the episode. A truncation does
    bootstrap inside delta_t, but the next step of the column belongs to another episode (or is
    a masked autoreset step), so the recursion stops. lam = 0 gives `td_advantage`; lam = 1 gives
    `bootstrapped_return` - V when next_value[t] = value[t + 1] inside every episode (the same
    critic at the same state). rew, value, next_value: (T, N) float; terminated, truncated,
    mask: (T, N) bool or 0/1; lam in [0, 1]. -> (T, N), 0 where mask is False.
    """
    check_lam(lam)
    delta = td_advantage(rew, value, next_value, terminated, mask, gamma)
    _, mask, _ = _check(rew, mask, gamma)
    end = episode_ends(check_flags("terminated", terminated, mask.shape),
                       check_flags("truncated", truncated, mask.shape), mask)
    stop = end | ~mask                    # a masked step carries nothing across it
    adv = np.zeros_like(delta)
    following = np.zeros(delta.shape[1])                # A_{t+1}
    for t in reversed(range(len(delta))):
        adv[t] = delta[t] + gamma * lam * np.where(stop[t], 0.0, following)
        following = adv[t]
    return np.where(mask, adv, 0.0)
