"""Checkers of notebook 03 (baselines): exercise 3.1 `loo_baseline`, exercise 3.2
`advantage_weights`, and their registry entries with planted mistakes."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from acteach import returns
from acteach.baselines import batch_mean_baseline, subtract_baseline
from acteach.checks._core import (Case, Checker, against, as_array, mistake, recognise, run_cases,
                                  show, stub)

# ---------------------------------------------------------------------------------------------
# Exercise 3.1: the leave-one-out baseline
# ---------------------------------------------------------------------------------------------


def loo_baseline(returns: np.ndarray, group_size: int) -> np.ndarray:
    """The reference: `batch_mean_baseline(returns, group_size, leave_one_out=True)`."""
    return batch_mean_baseline(returns, group_size, leave_one_out=True)


def _loo_cases(rng: np.random.Generator) -> list[tuple[np.ndarray, int, str]]:
    """(returns, group_size, hint) cases: hand-worked first, then random ones."""
    r = np.array([1.0, 2.0, 3.0, 4.0])
    cases = [
        (r, 2, "groups [1, 2] and [3, 4]: each b_n is the return of the OTHER trajectory of its "
               "group -> [2, 1, 4, 3]"),
        (r, 4, "one group of 4: b_0 = (2 + 3 + 4) / 3 = 3, b_3 = (1 + 2 + 3) / 3 = 2 (divide by "
               "group_size - 1, the number of other returns)"),
        (np.array([6.0, 0.0, 3.0, 10.0, -2.0, 4.0]), 3,
         "two groups of 3: b_0 = (0 + 3) / 2 = 1.5 uses only its own group; "
         "b_3 = (-2 + 4) / 2 = 1"),
        (np.array([5.0, -1.0, 2.0]), 1, "group_size = 1: a trajectory alone in its estimate has no "
                                        "other return to average, so its baseline is 0"),
    ]
    for n, g in ((12, 3), (10, 5), (8, 8), (6, 1), (20, 2)):
        cases.append((rng.normal(size=n).round(2) * 10, g,
                      f"random case: {n // g} groups of {g} consecutive returns"))
    return cases


def _loo_hint(case: Case, got: Any) -> str:
    """Name the mistake the got value matches, if it matches a known one; else the case's."""
    ret, group_size = case.args
    got = as_array(got)
    if not isinstance(got, np.ndarray) or got.shape != ret.shape or group_size == 1:
        return case.hint
    groups = ret.reshape(-1, group_size)
    total = groups.sum(axis=1, keepdims=True)
    known = [
        (batch_mean_baseline(ret, group_size), "b_n includes R_n itself (that is the plain "
         "batch mean, which depends on trajectory n's actions): leave trajectory n out"),
        (((total - groups) / group_size).ravel(), "divide by group_size - 1, the number of OTHER "
         "returns in the group, not by group_size"),
        ((ret.sum() - ret) / max(len(ret) - 1, 1), "average within each group of group_size "
         "consecutive trajectories, not over the whole batch"),
        (np.full(ret.shape, ret.mean()), "average the other returns of each group, not the "
         "whole batch"),
    ]
    return recognise(got, loo_baseline(ret, group_size), known, case.hint)


def check_loo_baseline(fn: Callable) -> None:
    """Exercise 3.1: fn(returns, group_size) must equal
    `acteach.baselines.batch_mean_baseline(returns, group_size, leave_one_out=True)`."""
    cases = [Case(f"loo_baseline(returns={show(ret)}, group_size={group_size})",
                  (ret, group_size), hint=hint)
             for ret, group_size, hint in _loo_cases(np.random.default_rng(3))]
    run_cases("loo_baseline", fn, cases, against(loo_baseline, _loo_hint))


# ---------------------------------------------------------------------------------------------
# Exercise 3.2: the advantage weights Q_hat_t - V(s_t)
# ---------------------------------------------------------------------------------------------

def advantage_weights(rew: np.ndarray, mask: np.ndarray, value: np.ndarray,
                      gamma: float = 1.0) -> np.ndarray:
    """The reference: `subtract_baseline(reward_to_go(rew, mask, gamma), value, mask)`."""
    return subtract_baseline(returns.reward_to_go(rew, mask, gamma), value, mask)


def _advantage_cases(rng: np.random.Generator
                     ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, float, str]]:
    """(rew, mask, value, gamma, hint) cases: hand-worked first, then random ones whose padded
    steps hold garbage rewards and values (a critic evaluates padding too)."""
    rew = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 99.0]])
    mask = np.array([[True, True], [True, True], [True, False]])   # trajectory 1 has 2 steps
    value = np.array([[2.0, 1.0], [4.0, 0.5], [1.0, 7.0]])
    cases = [
        (rew, mask, value, 1.0, "reward-to-go [[9, 6], [8, 4], [5, 0]] minus V(s_t) = "
         "[[7, 5], [4, 3.5], [4, 0]]; value[2, 1] = 7 is the critic's output on a padded step: "
         "the weight there is 0"),
        (rew, mask, value, 0.5, "with gamma = 0.5 the reward-to-go of trajectory 0 is "
         "[3.75, 5.5, 5]; subtract V(s_t) of the same step t"),
    ]
    for T, N, gamma in ((6, 4, 0.9), (9, 3, 1.0), (5, 5, 0.0)):
        lengths = rng.integers(1, T + 1, size=N)
        mask = np.arange(T)[:, None] < lengths[None, :]
        cases.append((rng.normal(size=(T, N)).round(2), mask, rng.normal(size=(T, N)).round(2),
                      gamma, "random case: padded steps hold garbage rewards and values"))
    return cases


def _advantage_hint(case: Case, got: Any) -> str:
    """Name the mistake the got value matches, if it matches a known one; else the case's."""
    rew, mask, value, gamma = case.args
    got = as_array(got)
    if not isinstance(got, np.ndarray) or got.shape != rew.shape:
        return case.hint
    rtg = returns.reward_to_go(rew, mask, gamma)
    shifted = np.vstack([value[1:], np.zeros((1, value.shape[1]))])
    known = [
        (rtg - value, "the weight at a padded step (mask False) must be 0: mask the values too"),
        (subtract_baseline(rtg, shifted, mask), "subtract V(s_t) of the same step t, not "
         "V(s_{t+1})"),
        (subtract_baseline(returns.total_return(rew, mask, gamma)[None, :], value, mask),
         "use the reward-to-go Q_hat_t (rewards from t on), not the whole return"),
        (subtract_baseline(returns.reward_to_go(rew, mask, 1.0), value, mask),
         f"discount the reward-to-go with gamma = {gamma}"),
        (-subtract_baseline(rtg, value, mask), "the sign: Q_hat_t - V(s_t), not V(s_t) - Q_hat_t"),
    ]
    return recognise(got, advantage_weights(*case.args), known, case.hint)


def check_advantage_weights(fn: Callable) -> None:
    """Exercise 3.2: fn(rew, mask, value, gamma) must equal the library's weights
    Q_hat_t - V(s_t) on the valid steps, 0 elsewhere:
    `subtract_baseline(reward_to_go(rew, mask, gamma), value, mask)`."""
    cases = [Case(f"advantage_weights(rew={show(rew)}, mask={show(mask)}, value={show(value)}, "
                  f"gamma={gamma})", (rew, mask, value, gamma), hint=hint)
             for rew, mask, value, gamma, hint in _advantage_cases(np.random.default_rng(4))]
    run_cases("advantage_weights", fn, cases, against(advantage_weights, _advantage_hint))


# ---------------------------------------------------------------------------------------------
# Planted mistakes
# ---------------------------------------------------------------------------------------------

@mistake("includes R_n itself")
def loo_includes_itself(returns, group_size):
    return batch_mean_baseline(returns, group_size)


@mistake("group_size - 1")
def loo_divides_by_group_size(returns, group_size):
    groups = returns.reshape(-1, group_size)
    return ((groups.sum(axis=1, keepdims=True) - groups) / group_size).ravel()


@mistake("within each group")
def loo_over_the_whole_batch(returns, group_size):
    return (returns.sum() - returns) / max(len(returns) - 1, 1)


@mistake("group_size = 1")
def loo_group_size_one_is_nan(returns, group_size):
    groups = returns.reshape(-1, group_size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((groups.sum(axis=1, keepdims=True) - groups) / (group_size - 1)).ravel()


@mistake("group_size = 1")
def loo_group_size_one_is_own_return(returns, group_size):
    if group_size == 1:
        return returns.copy()
    return batch_mean_baseline(returns, group_size, leave_one_out=True)


@mistake("mask the values")
def adv_unmasked_value(rew, mask, value, gamma=1.0):
    return returns.reward_to_go(rew, mask, gamma) - value


@mistake("not V(s_{t+1})")
def adv_next_state_value(rew, mask, value, gamma=1.0):
    shifted = np.vstack([value[1:], np.zeros((1, value.shape[1]))])
    return subtract_baseline(returns.reward_to_go(rew, mask, gamma), shifted, mask)


@mistake("not the whole return")
def adv_whole_return(rew, mask, value, gamma=1.0):
    return subtract_baseline(returns.total_return(rew, mask, gamma)[None, :], value, mask)


@mistake("the sign")
def adv_wrong_sign(rew, mask, value, gamma=1.0):
    return -advantage_weights(rew, mask, value, gamma)


@mistake("discount")
def adv_ignores_gamma(rew, mask, value, gamma=1.0):
    return advantage_weights(rew, mask, value, 1.0)


@mistake("your function changed its argument `returns` in place")
def loo_writes_through_a_reshape_view(returns, group_size):
    if group_size == 1:
        return np.zeros(len(returns))
    groups = returns.reshape(-1, group_size)        # a view: writing to it writes to returns
    groups -= groups.sum(axis=1, keepdims=True)     # -(the others' sum)
    return -groups.ravel() / (group_size - 1)


@mistake("your function changed its argument `value` in place")
def adv_masks_value_in_place(rew, mask, value, gamma=1.0):
    value *= mask                                   # zeroes the caller's padded values
    return np.where(mask, returns.reward_to_go(rew, mask, gamma) - value, 0.0)


def loo_float32(returns, group_size):
    """A correct solution in float32, a loop over the groups."""
    returns = np.asarray(returns, dtype=np.float32)
    out = np.zeros_like(returns)
    for start in range(0, len(returns), group_size):
        group = returns[start:start + group_size]
        if group_size > 1:
            out[start:start + group_size] = (group.sum() - group) / (group_size - 1)
    return out


def loo_torch(returns, group_size):
    """A correct solution in torch, returning a tensor."""
    groups = torch.as_tensor(returns).reshape(-1, group_size)
    others = groups.sum(dim=1, keepdim=True) - groups
    return (others / max(group_size - 1, 1)).reshape(-1)


def advantage_weights_float32(rew, mask, value, gamma=1.0):
    """A correct solution in float32."""
    rtg = returns.reward_to_go(rew, mask, gamma).astype(np.float32)
    return np.where(mask, rtg - value.astype(np.float32), np.float32(0.0))


def advantage_weights_torch(rew, mask, value, gamma=1.0):
    """A correct solution in torch, returning a tensor."""
    mask = torch.as_tensor(mask)
    rtg = torch.as_tensor(returns.reward_to_go(rew, mask.numpy(), gamma))
    return torch.where(mask, rtg - torch.as_tensor(value), 0.0)


LOO_BASELINE = Checker(
    check_loo_baseline, loo_baseline, stub("loo_baseline", "3.1"),
    mistakes=(loo_includes_itself, loo_divides_by_group_size, loo_over_the_whole_batch,
              loo_group_size_one_is_nan, loo_group_size_one_is_own_return,
              loo_writes_through_a_reshape_view),
    rewrites=(loo_float32, loo_torch))

ADVANTAGE_WEIGHTS = Checker(
    check_advantage_weights, advantage_weights, stub("advantage_weights", "3.2"),
    mistakes=(adv_unmasked_value, adv_next_state_value, adv_whole_return, adv_wrong_sign,
              adv_ignores_gamma, adv_masks_value_in_place),
    rewrites=(advantage_weights_float32, advantage_weights_torch))
