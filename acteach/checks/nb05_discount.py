"""Checker of notebook 05 (discount): exercise 5.1 `discounted_weights`, the weight of each step
in the discounted policy gradient under discount option 1 and 2, and its registry entry with
planted mistakes."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from acteach.checks._core import (Case, Checker, Mistake, against, as_array, recognise, run_cases,
                                  named, show, stub)
from acteach.estimators import discounted_weights

HAND_HINT = ("gamma = 0.5, one trajectory per column, padding (mask False) holds 99. Column 0 "
             "has rewards 1, 2, 4: its discounted rewards-to-go are 3, 4, 4; option 2 weighs "
             "them by gamma^t = 1, 0.5, 0.25. Column 1 ends after 2 steps (rewards 2, 0), "
             "column 2 after 1 (reward 5). Expected, option 2: [[3, 2, 5], [2, 0, 0], "
             "[1, 0, 0]]; option 1: [[3, 2, 5], [4, 0, 0], [4, 0, 0]]")


def _weight_cases(rng: np.random.Generator) -> list[tuple[dict, str]]:
    """(arguments of discounted_weights, hint) cases: the hand-worked case under both options,
    then random padded batches (garbage in the padding) for several gammas."""
    hand = dict(rew=np.array([[1.0, 2.0, 5.0], [2.0, 0.0, 99.0], [4.0, 99.0, 99.0]]),
                mask=np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=bool), gamma=0.5)
    cases = [({**hand, "discount_option": option}, HAND_HINT) for option in (2, 1)]
    for T, N, gamma, option in ((6, 4, 0.9, 2), (7, 3, 0.8, 1), (5, 5, 1.0, 2), (6, 3, 0.0, 2),
                                (8, 4, 0.99, 1)):
        lengths = rng.integers(1, T + 1, size=N)
        mask = np.arange(T)[:, None] < lengths[None, :]
        rew = np.where(mask, rng.normal(size=(T, N)).round(2), 99.0)
        cases.append((dict(rew=rew, mask=mask, gamma=gamma, discount_option=option),
                      f"random case (gamma = {gamma}, option {option}): padded steps hold 99"))
    return cases


def _rtg(rew, mask, gamma):
    """The discounted reward-to-go from scratch, padding dropped."""
    rew = np.where(mask, rew, 0.0)
    out, running = np.zeros_like(rew), np.zeros(rew.shape[1])
    for t in reversed(range(len(rew))):
        running = rew[t] + gamma * running
        out[t] = running
    return np.where(mask, out, 0.0)


def _powers(T: int, gamma: float, shift: int = 0) -> np.ndarray:
    return (float(gamma) ** (np.arange(T) + shift))[:, None]


def _weight_hint(case: Case, got: Any) -> str:
    """Name the mistake the got value matches, if it matches a known one; else the case's."""
    c = case.kwargs
    got = as_array(got)
    if not isinstance(got, np.ndarray) or got.shape != c["rew"].shape:
        return case.hint
    rew, mask, g, option = c["rew"], c["mask"], c["gamma"], c["discount_option"]
    T = len(rew)
    rtg, plain = _rtg(rew, mask, g), _rtg(rew, mask, 1.0)
    with_t = rtg * _powers(T, g)
    past = np.where(mask, np.cumsum(np.where(mask, rew, 0.0) * _powers(T, g), axis=0), 0.0)
    whole = np.where(mask, (np.where(mask, rew, 0.0) * _powers(T, g)).sum(axis=0), 0.0)
    raw = np.zeros_like(rew, dtype=float)
    running = np.zeros(rew.shape[1])
    for t in reversed(range(T)):
        running = rew[t] + g * running
        raw[t] = running
    outer = _powers(T, g) if option == 2 else 1.0
    known = [
        (rtg, "under option 2 the weight of step t carries gamma^t, counted from the episode's "
              "start (t = 0): the discounted reward-to-go times gamma^t"),
        (with_t, "option 1 leaves gamma^t out: its weight is the discounted reward-to-go alone"),
        (rtg * _powers(T, g, 1), "the first step is t = 0, whose factor is gamma^0 = 1: the "
                                 "library counts time from 0 (the lecture's gamma^(t-1) counts "
                                 "from 1)"),
        (with_t * _powers(T, g), "gamma^t twice: sum_{t'>=t} gamma^t' r_t' already holds "
                                 "gamma^t, and it was multiplied by gamma^t again"),
        (plain * outer, "the reward-to-go must be discounted inside the sum: "
                        "sum_{t'>=t} gamma^(t'-t) r_t'"),
        (whole * outer, "only the rewards from step t on count (the reward-to-go), not the "
                        "whole return"),
        (whole, "only the rewards from step t on count (the reward-to-go), not the whole "
                "return"),
        (past, "the reward-to-go sums the rewards from t on, not those up to t"),
        (np.where(mask, raw, 0.0) * outer, "padded steps (mask False) hold garbage rewards: "
                                           "drop them before summing, not only in the output"),
        (raw * outer, "padded steps (mask False) must be 0, and their garbage rewards must not "
                      "enter any sum"),
    ]
    return recognise(got, discounted_weights(**c), known, case.hint)


def check_discounted_weights(fn: Callable) -> None:
    """Exercise 5.1: fn(rew, mask, gamma, discount_option) must equal
    `acteach.estimators.discounted_weights`: the discounted reward-to-go
    sum_{t'>=t} gamma^(t'-t) r_t', times gamma^t under option 2, 0 on padded steps."""
    cases = [Case("discounted_weights(" + ", ".join(f"{k}={show(v)}" for k, v in c.items()) + ")",
                  kwargs=c, hint=hint)
             for c, hint in _weight_cases(np.random.default_rng(5))]
    run_cases("discounted_weights", fn, cases, against(discounted_weights, _weight_hint))


# ---------------------------------------------------------------------------------------------
# Other correct solutions, and planted mistakes
# ---------------------------------------------------------------------------------------------

def weights_from_scratch(rew, mask, gamma, discount_option):
    """A correct solution with a loop over time and no library."""
    w = _rtg(np.asarray(rew, dtype=float), mask, gamma)
    return w * _powers(len(w), gamma) if discount_option == 2 else w


def weights_as_discounted_sums(rew, mask, gamma, discount_option):
    """A correct solution: option 2 as sum_{t'>=t} gamma^t' r_t', a reversed cumulative sum."""
    T = len(rew)
    discounted = np.where(mask, rew, 0.0) * _powers(T, gamma)
    from_start = np.where(mask, np.cumsum(discounted[::-1], axis=0)[::-1], 0.0)
    if discount_option == 2:
        return from_start
    return np.where(mask, from_start / np.where(_powers(T, gamma) > 0, _powers(T, gamma), 1.0),
                    0.0) if gamma > 0 else np.where(mask, rew, 0.0)


def weights_torch(rew, mask, gamma, discount_option):
    """A correct solution in torch, returning a float32 tensor."""
    rew, mask = torch.as_tensor(rew, dtype=torch.float32), torch.as_tensor(mask)
    rew = torch.where(mask, rew, torch.zeros_like(rew))
    out, running = torch.zeros_like(rew), torch.zeros(rew.shape[1])
    for t in reversed(range(rew.shape[0])):
        running = rew[t] + gamma * running
        out[t] = running * (gamma ** t if discount_option == 2 else 1.0)
    return torch.where(mask, out, torch.zeros_like(out))


def weights_zero_padding_in_place(rew, mask, gamma, discount_option):
    """Right values, but the caller's rew is zeroed in the padding."""
    rew[~mask] = 0.0
    return weights_from_scratch(rew, mask, gamma, discount_option)


def _planted(name: str, body: Callable, hint: str) -> Mistake:
    """body(rew, mask, gamma, option) as a wrong discounted_weights with the exercise's signature,
    named `name`, whose checker's message must contain hint."""
    def discounted_weights(rew, mask, gamma, discount_option):
        return body(rew, mask, gamma, discount_option)
    return Mistake(named(name, discounted_weights), hint)


def _scaled(rtg: Callable, shift: int = 0, both: bool = False) -> Callable:
    """rtg(rew, mask, gamma) times gamma^(t + shift) under option 2 (under both if `both`)."""
    def body(rew, mask, gamma, option):
        w = rtg(rew, mask, gamma)
        return w * _powers(len(w), gamma, shift) if (option == 2 or both) else w
    return body


DISCOUNTED_WEIGHTS = Checker(
    check_discounted_weights, discounted_weights, stub("discounted_weights", "5.1"),
    mistakes=tuple(_planted(name, body, hint) for name, body, hint in [
        ("weights_option_2_without_gamma_t", lambda r, m, g, o: _rtg(r, m, g), "carries gamma^t"),
        ("weights_gamma_t_under_both_options", _scaled(_rtg, both=True), "leaves gamma^t out"),
        ("weights_time_from_one", _scaled(_rtg, shift=1), "counts time from 0"),
        ("weights_undiscounted_reward_to_go", _scaled(lambda r, m, g: _rtg(r, m, 1.0)),
         "discounted inside the sum"),
        ("weights_whole_return",
         _scaled(lambda r, m, g: np.where(m, _rtg(r, m, g)[:1], 0.0)), "not the whole return"),
        ("weights_padding_summed",
         _scaled(lambda r, m, g: np.where(m, _rtg(r, np.ones_like(m), g), 0.0)),
         "drop them before summing"),
        ("weights_wrong_sign", lambda r, m, g, o: -discounted_weights(r, m, g, o),
         "Expected, option 2"),
        ("weights_returns_a_list", lambda r, m, g, o: discounted_weights(r, m, g, o).tolist(),
         "expected an array, got list"),
    ]) + (Mistake(weights_zero_padding_in_place,
                  "your function changed its argument `rew` in place"),),
    rewrites=(weights_from_scratch, weights_as_discounted_sums, weights_torch))
