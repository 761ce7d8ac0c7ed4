"""Checkers of notebook 03 (baselines): exercise 3.1 `expected_baseline_term` (the exact
E[grad log pi(a|s) b(s, a)] of a softmax table), exercise 3.2 `loo_baseline`, and their registry
entries with planted mistakes."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from acteach.baselines import batch_mean_baseline
from acteach.baselines import expected_baseline_term as library_expected_baseline_term
from acteach.checks._core import (Case, Checker, against, as_array, mistake, recognise, run_cases,
                                  show, stub)

# ---------------------------------------------------------------------------------------------
# Exercise 3.1: the expected baseline term E[grad log pi(a|s) b(s, a)], exactly
# ---------------------------------------------------------------------------------------------

def expected_baseline_term(pi: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The reference: `acteach.baselines.expected_baseline_term(pi, b)`."""
    return library_expected_baseline_term(pi, b)


def _term_cases(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(pi, b, hint) cases: hand-worked first, then random softmax tables with baselines of the
    state alone (every column equal) and of the action."""
    pi = np.array([[0.25, 0.75]])
    cases = [
        (pi, np.array([[4.0, 0.0]]), "b depends on the action: E_pi[b] = 0.25 * 4 = 1, so entry "
         "c is pi(c) (b(c) - 1) = [0.25 * 3, 0.75 * (-1)] = [0.75, -0.75]"),
        (pi, np.array([[2.0, 2.0]]), "b = 2 for both actions: sum_a pi(a) (1[a = c] - pi(c)) 2 "
         "= 2 (pi(c) - pi(c)) = 0: a baseline of the state alone adds nothing in expectation"),
    ]
    for S, A in ((3, 2), (4, 3), (5, 4)):
        logits = rng.normal(size=(S, A))
        pi = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        state_only = np.repeat(rng.normal(size=(S, 1)).round(2) * 5, A, axis=1)
        cases.append((pi, state_only, f"random case: {S} states, b of the state alone "
                                      "(equal columns)"))
        cases.append((pi, rng.normal(size=(S, A)).round(2) * 5,
                      f"random case: {S} states, b depends on the action"))
    return cases


def _term_hint(case: Case, got: Any) -> str:
    """Name the mistake the got value matches, if it matches a known one; else the case's."""
    pi, b = case.args
    got = as_array(got)
    if not isinstance(got, np.ndarray) or got.shape != pi.shape:
        return case.hint
    mean_b = (pi * b).sum(axis=1, keepdims=True)
    known = [
        (pi * b, "the score of a softmax is d log pi(a|s) / d theta[s, c] = 1[a = c] - pi(c|s): "
         "the - pi(c|s) (from the normaliser) is missing"),
        (pi * (mean_b - b), "the sign: the score is 1[a = c] - pi(c|s), not pi(c|s) - 1[a = c]"),
        (b - pi * b.sum(axis=1, keepdims=True), "an expectation over a ~ pi(.|s): weight each "
         "action's term by pi(a|s)"),
        (pi * (b - b.mean(axis=1, keepdims=True)), "the average of b inside is sum_a pi(a|s) "
         "b(s, a), weighted by the policy, not the plain mean over actions"),
        (np.zeros_like(pi), "the term vanishes only when b does not depend on the action; here "
         "it does"),
    ]
    return recognise(got, expected_baseline_term(pi, b), known, case.hint)


def check_expected_baseline_term(fn: Callable) -> None:
    """Exercise 3.1: fn(pi, b) must equal `acteach.baselines.expected_baseline_term(pi, b)`:
    entry [s, c] = sum_a pi(a|s) (1[a = c] - pi(c|s)) b(s, a)."""
    cases = [Case(f"expected_baseline_term(pi={show(pi)}, b={show(b)})", (pi, b), hint=hint)
             for pi, b, hint in _term_cases(np.random.default_rng(4))]
    run_cases("expected_baseline_term", fn, cases, against(expected_baseline_term, _term_hint))


# ---------------------------------------------------------------------------------------------
# Exercise 3.2: the leave-one-out baseline
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
    """Exercise 3.2: fn(returns, group_size) must equal
    `acteach.baselines.batch_mean_baseline(returns, group_size, leave_one_out=True)`."""
    cases = [Case(f"loo_baseline(returns={show(ret)}, group_size={group_size})",
                  (ret, group_size), hint=hint)
             for ret, group_size, hint in _loo_cases(np.random.default_rng(3))]
    run_cases("loo_baseline", fn, cases, against(loo_baseline, _loo_hint))


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


@mistake("your function changed its argument `returns` in place")
def loo_writes_through_a_reshape_view(returns, group_size):
    if group_size == 1:
        return np.zeros(len(returns))
    groups = returns.reshape(-1, group_size)        # a view: writing to it writes to returns
    groups -= groups.sum(axis=1, keepdims=True)     # -(the others' sum)
    return -groups.ravel() / (group_size - 1)


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


@mistake("the - pi(c|s) (from the normaliser) is missing")
def term_without_the_normaliser(pi, b):
    return pi * b


@mistake("the sign")
def term_with_the_wrong_sign(pi, b):
    return -expected_baseline_term(pi, b)


@mistake("weight each action's term by pi(a|s)")
def term_unweighted_sum_over_actions(pi, b):
    return b - pi * b.sum(axis=1, keepdims=True)


@mistake("weighted by the policy, not the plain mean")
def term_plain_mean_of_b(pi, b):
    return pi * (b - b.mean(axis=1, keepdims=True))


@mistake("vanishes only when b does not depend on the action")
def term_always_zero(pi, b):
    return np.zeros_like(pi)


@mistake("your function changed its argument `b` in place")
def term_centres_b_in_place(pi, b):
    b -= (pi * b).sum(axis=1, keepdims=True)
    return pi * b


def term_loops(pi, b):
    """A correct solution with loops: the expectation written term by term."""
    S, A = pi.shape
    out = np.zeros((S, A))
    for s in range(S):
        for a in range(A):
            score = -pi[s].copy()
            score[a] += 1.0
            out[s] += pi[s, a] * score * b[s, a]
    return out


def term_autograd(pi, b):
    """A correct solution by autograd: the gradient of sum_a SG[pi(a|s)] log pi(a|s) b(s, a)
    with respect to the logits (log pi recovers logits up to a constant per state)."""
    theta = torch.log(torch.as_tensor(pi)).requires_grad_(True)
    logp = torch.log_softmax(theta, dim=1)
    (logp.exp().detach() * logp * torch.as_tensor(b)).sum().backward()
    return theta.grad


LOO_BASELINE = Checker(
    check_loo_baseline, loo_baseline, stub("loo_baseline", "3.2"),
    mistakes=(loo_includes_itself, loo_divides_by_group_size, loo_over_the_whole_batch,
              loo_group_size_one_is_nan, loo_group_size_one_is_own_return,
              loo_writes_through_a_reshape_view),
    rewrites=(loo_float32, loo_torch))

EXPECTED_BASELINE_TERM = Checker(
    check_expected_baseline_term, expected_baseline_term, stub("expected_baseline_term", "3.1"),
    mistakes=(term_without_the_normaliser, term_with_the_wrong_sign,
              term_unweighted_sum_over_actions, term_plain_mean_of_b, term_always_zero,
              term_centres_b_in_place),
    rewrites=(term_loops, term_autograd))
