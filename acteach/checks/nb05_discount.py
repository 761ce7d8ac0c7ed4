"""Checker of notebook 05 (discount): exercise 5.1 `discounted_td_advantage`, terminated and
truncated kept apart, and its registry entry with planted mistakes."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from acteach.advantages import td_advantage
from acteach.checks._core import (Case, Checker, Mistake, against, as_array, recognise, run_cases,
                                  named, show, stub)
from acteach.discount import discounted_td_advantage


def _td_cases(rng: np.random.Generator) -> list[tuple[dict, str]]:
    """(arguments of discounted_td_advantage, hint) cases: hand-worked first, then random ones:
    padded trajectories with garbage in the padding, and vector-env columns in which several
    episodes follow one another (flags mid-column, mask True throughout)."""
    hand = dict(
        rew=np.array([[1.0, 1.0, 2.0], [2.0, 1.0, 0.0], [3.0, 99.0, 4.0]]),
        value=np.array([[4.0, 5.0, 1.0], [6.0, 7.0, 2.0], [8.0, 77.0, 3.0]]),
        next_value=np.array([[10.0, 20.0, 6.0], [30.0, 40.0, 8.0], [50.0, 88.0, 9.0]]),
        terminated=np.array([[0, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=bool),
        truncated=np.array([[0, 0, 0], [0, 0, 0], [1, 0, 1]], dtype=bool),
        mask=np.array([[1, 1, 1], [1, 1, 1], [1, 0, 1]], dtype=bool),
        gamma=0.5)
    cases = [(hand, "gamma = 0.5. Column 0 is cut by the time limit at t = 2: it still "
                    "bootstraps, 3 + 0.5 * 50 - 8 = 20. Column 1 terminates at t = 1: "
                    "1 + 0 - 7 = -6, and its t = 2 is padding (rew 99, value 77 are garbage): 0. "
                    "Column 2 is both terminated and truncated at t = 2: terminated wins, "
                    "4 - 3 = 1. Expected [[2, 6, 4], [11, -6, 2], [20, 0, 1]]")]
    for T, N, gamma, columns_of_episodes in ((6, 5, 0.9, False), (8, 4, 0.99, True),
                                             (5, 6, 1.0, False), (7, 3, 0.0, True)):
        if columns_of_episodes:
            mask = np.ones((T, N), dtype=bool)
            ends = rng.random((T, N)) < 0.3
        else:
            lengths = rng.integers(1, T + 1, size=N)
            mask = np.arange(T)[:, None] < lengths[None, :]
            ends = np.arange(T)[:, None] == lengths[None, :] - 1
        kind = rng.integers(0, 3, size=(T, N))        # 0 terminated, 1 truncated, 2 both
        terminated = ends & (kind != 1)
        truncated = ends & (kind != 0)
        cases.append((dict(rew=rng.normal(size=(T, N)).round(2),
                           value=rng.normal(size=(T, N)).round(2) * 5,
                           next_value=rng.normal(size=(T, N)).round(2) * 5,
                           terminated=terminated, truncated=truncated, mask=mask, gamma=gamma),
                      "random case" + (": several episodes follow one another in a column"
                                       if columns_of_episodes else
                                       ": padded steps hold garbage rewards and values")))
    return cases


def _td_hint(case: Case, got: Any) -> str:
    """Name the mistake the got value matches, if it matches a known one; else the case's."""
    c = case.kwargs
    got = as_array(got)
    if not isinstance(got, np.ndarray) or got.shape != c["rew"].shape:
        return case.hint
    rew, v, nv, g = c["rew"], c["value"], c["next_value"], c["gamma"]
    term, trunc, mask = c["terminated"], c["truncated"], c["mask"]
    none = np.zeros_like(term)
    known = [
        (td_advantage(rew, v, nv, term | trunc, mask, g), "done = terminated | truncated cuts "
         "the bootstrap at the time limit too: a truncated step still has a next state with a "
         "value; only terminated stops the bootstrap"),
        (td_advantage(rew, v, nv, trunc, mask, g), "the flags are swapped: truncation is treated "
         "as termination, and termination is bootstrapped through"),
        (td_advantage(rew, v, nv, none, mask, g), "termination is ignored: after a terminal "
         "state nothing follows, so V(s_{t+1}) must not be added there"),
        (td_advantage(rew, v, nv, term & ~trunc, mask, g), "a step both terminated and truncated "
         "counts as terminated (gymnasium's rule): no bootstrap there"),
        (td_advantage(rew, v, nv, term, mask, 1.0), f"gamma = {g} is missing: "
         "r_t + gamma * V(s_{t+1}) - V(s_t)"),
        (np.where(mask, rew + np.where(term, 0.0, nv) - g * v, 0.0), "gamma multiplies "
         "V(s_{t+1}), not V(s_t)"),
        (np.where(mask, g * (rew + np.where(term, 0.0, nv)) - v, 0.0), "gamma multiplies "
         "V(s_{t+1}) only, not the reward r_t"),
        (rew + g * np.where(term, 0.0, nv) - v, "padded steps (mask False) must be 0: their "
         "rewards and values are garbage"),
    ]
    return recognise(got, discounted_td_advantage(**c), known, case.hint)


def check_discounted_td_advantage(fn: Callable) -> None:
    """Exercise 5.1: fn(rew, value, next_value, terminated, truncated, mask, gamma) must equal
    `acteach.advantages.td_advantage(rew, value, next_value, terminated, mask, gamma)`:
    r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t) on valid steps, 0 elsewhere (truncated
    steps bootstrap; a step both terminated and truncated counts as terminated)."""
    cases = [Case("discounted_td_advantage(" + ", ".join(f"{k}={show(v)}" for k, v in c.items())
                  + ")", kwargs=c, hint=hint)
             for c, hint in _td_cases(np.random.default_rng(5))]
    run_cases("discounted_td_advantage", fn, cases, against(discounted_td_advantage, _td_hint))


# ---------------------------------------------------------------------------------------------
# Another correct solution, and planted mistakes
# ---------------------------------------------------------------------------------------------

def td_from_scratch(rew, value, next_value, terminated, truncated, mask, gamma):
    """A correct solution without the library."""
    future = np.where(np.asarray(terminated, dtype=bool), 0.0, next_value)
    return np.where(mask, rew + gamma * future - value, 0.0)


def td_float32(rew, value, next_value, terminated, truncated, mask, gamma):
    """A correct solution in float32."""
    rew, value, next_value = (np.asarray(x, dtype=np.float32) for x in (rew, value, next_value))
    return np.where(mask, rew + np.float32(gamma) * np.where(terminated, 0, next_value) - value,
                    np.float32(0))


def td_torch(rew, value, next_value, terminated, truncated, mask, gamma):
    """A correct solution in torch, returning a tensor."""
    rew, value, next_value, terminated, mask = map(
        torch.as_tensor, (rew, value, next_value, terminated, mask))
    return torch.where(mask, rew + gamma * (~terminated) * next_value - value, 0.0)


def td_zeroes_next_value_in_place(rew, value, next_value, terminated, truncated, mask, gamma):
    """Right values, but the caller's next_value is zeroed where terminated."""
    next_value[terminated] = 0.0
    return np.where(mask, rew + gamma * next_value - value, 0.0)


def _td(rew, value, next_value, cut, mask, gamma):
    return np.where(mask, rew + gamma * np.where(cut, 0.0, next_value) - value, 0.0)


def _planted(name: str, body: Callable, hint: str) -> Mistake:
    """body(r, v, nv, te, tr, m, g) as a wrong discounted_td_advantage with the exercise's
    signature (the checker calls it by keyword, as the notebook's def line names the arguments),
    named `name`, whose checker's message must contain hint."""
    def discounted_td_advantage(rew, value, next_value, terminated, truncated, mask, gamma):
        return body(rew, value, next_value, terminated, truncated, mask, gamma)
    return Mistake(named(name, discounted_td_advantage), hint)


DISCOUNTED_TD_ADVANTAGE = Checker(
    check_discounted_td_advantage, discounted_td_advantage,
    stub("discounted_td_advantage", "5.1"),
    mistakes=tuple(_planted(name, body, hint) for name, body, hint in [
        ("td_done_is_terminated_or_truncated",
         lambda r, v, nv, te, tr, m, g: _td(r, v, nv, te | tr, m, g), "terminated | truncated"),
        ("td_truncation_as_termination",
         lambda r, v, nv, te, tr, m, g: _td(r, v, nv, tr, m, g), "swapped"),
        ("td_termination_ignored",
         lambda r, v, nv, te, tr, m, g: _td(r, v, nv, np.zeros_like(te), m, g),
         "termination is ignored"),
        ("td_both_flags_count_as_truncated",
         lambda r, v, nv, te, tr, m, g: _td(r, v, nv, te & ~tr, m, g), "both terminated and"),
        ("td_forgot_gamma",
         lambda r, v, nv, te, tr, m, g: _td(r, v, nv, te, m, 1.0), "is missing"),
        ("td_gamma_on_value",
         lambda r, v, nv, te, tr, m, g: np.where(m, r + np.where(te, 0.0, nv) - g * v, 0.0),
         "not V(s_t)"),
        ("td_gamma_on_the_reward_too",
         lambda r, v, nv, te, tr, m, g: np.where(m, g * (r + np.where(te, 0.0, nv)) - v, 0.0),
         "not the reward"),
        ("td_padding_not_masked",
         lambda r, v, nv, te, tr, m, g: r + g * np.where(te, 0.0, nv) - v, "padded steps"),
        ("td_wrong_sign",
         lambda r, v, nv, te, tr, m, g: -_td(r, v, nv, te, m, g),
         "Expected [[2, 6, 4], [11, -6, 2], [20, 0, 1]]"),
        ("td_returns_a_list",
         lambda r, v, nv, te, tr, m, g: _td(r, v, nv, te, m, g).tolist(),
         "expected an array, got list"),
    ]) + (Mistake(td_zeroes_next_value_in_place,
                  "your function changed its argument `next_value` in place"),),
    rewrites=(td_from_scratch, td_float32, td_torch))
