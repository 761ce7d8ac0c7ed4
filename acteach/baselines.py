"""Baselines and the advantage (backs notebook 03).

Subtracting a baseline b from the weight leaves the gradient unbiased as long as b does not
depend on the action a_t:  E[grad log pi(a_t|s_t) b(s_t)] = b(s_t) grad sum_a pi(a|s_t) = 0.
The baselines here: the batch mean of the returns (plain, or leaving each trajectory out), the
variance-minimising constant per parameter, and V^pi(s_t) itself, which turns Q into the
advantage A^pi = Q^pi - V^pi. `expected_baseline_term` gives that expectation exactly for a
softmax table, for any b(s, a): zero when b does not depend on the action. Arrays are time-major
(T, N); a baseline is (T, N) or (N,).
"""
from __future__ import annotations

import numpy as np

from acteach._validate import check_array, check_flag, check_positive_int


def expected_baseline_term(pi: np.ndarray, b: np.ndarray) -> np.ndarray:
    """E_{a ~ pi(.|s)}[grad_theta log pi(a|s) b(s, a)] for the softmax table pi = softmax(theta),
    state by state: the score of action a is d log pi(a|s) / d theta[s, c] = 1[a = c] - pi(c|s),
    so entry [s, c] = pi(c|s) (b(s, c) - sum_a pi(a|s) b(s, a)). Zero in every state where b
    does not depend on the action; b = Q^pi gives pi(c|s) A^pi(s, c). pi: (S, A); b: (S, A), or
    (S, 1) for a baseline of the state alone -> (S, A)."""
    pi, b = check_array("pi", pi, 2, "(S, A)"), check_array("b", b, 2, "(S, A)")
    if b.shape not in (pi.shape, (pi.shape[0], 1)):
        raise ValueError(f"b: expected shape {pi.shape} (S, A) or ({pi.shape[0]}, 1), "
                         f"got {b.shape}")
    return pi * (b - (pi * b).sum(axis=1, keepdims=True))


def subtract_baseline(ret: np.ndarray, baseline: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """ret - baseline on the valid steps, 0 elsewhere. ret, mask: (T, N); baseline (T, N), (N,)
    (one value per trajectory) or a scalar."""
    return np.where(mask, ret - np.asarray(baseline), 0.0)


def batch_mean_baseline(returns: np.ndarray, group_size: int,
                        leave_one_out: bool = False) -> np.ndarray:
    """The average return of the trajectories in each trajectory's own estimate.

    returns: (N,) one return per trajectory; trajectories n*g .. n*g + g-1 (g = group_size) form
    one estimate. Plain: b_n = mean of its group, which includes R_n itself, so b_n depends on
    tau_n's actions and biases the gradient by O(1/g). Leave-one-out: b_n = mean of the other
    g - 1 returns, independent of tau_n, so unbiased (b = 0 when g = 1). -> (N,).
    """
    check_positive_int("group_size", group_size)
    check_flag("leave_one_out", leave_one_out)
    returns = check_array("returns", returns, 1, "(N,)")
    if len(returns) % group_size:
        raise ValueError(f"group_size: {group_size} does not divide the {len(returns)} returns")
    groups = returns.reshape(-1, group_size)
    total = groups.sum(axis=1, keepdims=True)
    if not leave_one_out:
        return np.broadcast_to(total / group_size, groups.shape).ravel()
    if group_size == 1:
        return np.zeros_like(returns)
    return ((total - groups) / (group_size - 1)).ravel()


def optimal_constant_baseline(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The constant baseline per parameter that minimises the variance of x - b * y.

    x: (M, P...) per-trajectory gradient terms without a baseline; y: (M, P...) the terms a unit
    baseline multiplies (the score summed over the trajectory). Var(x_i - b_i y_i) is smallest at
    b_i = E[x_i y_i] / E[y_i^2] (Greensmith et al. 2004; E[y] = 0). -> (P...), 0 where E[y^2] = 0.
    """
    num, den = (x * y).mean(axis=0), (y * y).mean(axis=0)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)
