"""Checker of notebook 07 (online and parallel actor-critic): exercise 7.1 `valid_steps`, the
valid steps of a next-step-autoreset vector-env rollout, and its registry entry with planted
mistakes."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from acteach.checks._core import (Case, Checker, CheckFailed, as_array, compare, is_bool, mistake,
                                  run_cases, show, stub)


def _vector_env_flags(rng: np.random.Generator, T: int, N: int, end_prob: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(terminated, truncated, autoreset) as T calls of a next-step-autoreset vector env give
    them: an episode ends at a step with probability end_prob (terminated or truncated alike);
    the step after an end is a reset step (both flags False); some envs enter the rollout right
    after an episode's end (autoreset True)."""
    autoreset = rng.random(N) < 0.3
    terminated, truncated = np.zeros((T, N), bool), np.zeros((T, N), bool)
    resetting = autoreset.copy()
    for t in range(T):
        ends = ~resetting & (rng.random(N) < end_prob)
        kind = rng.random(N) < 0.5
        terminated[t], truncated[t] = ends & kind, ends & ~kind
        resetting = ends
    return terminated, truncated, autoreset


def _valid_steps_cases(rng: np.random.Generator) -> list[tuple[str, tuple]]:
    b = np.array
    by_hand = (b([[0, 0], [1, 0], [0, 0], [0, 0], [0, 0]], dtype=bool),     # terminated
               b([[0, 0], [0, 0], [0, 0], [0, 1], [0, 0]], dtype=bool),     # truncated
               b([False, True]))                                          # autoreset
    cases = [("a hand-worked rollout (env 0 terminates at t = 1, env 1 starts with a reset step "
              "and is truncated at t = 3)", by_hand),
             ("a rollout whose last step ends an episode",
              (b([[0], [0], [1]], dtype=bool), b([[0], [0], [0]], dtype=bool), b([False])))]
    for T, N, p in ((6, 3, 0.3), (12, 5, 0.5), (1, 4, 0.5), (20, 8, 0.2)):
        cases.append((f"random flags of {N} envs x {T} steps", _vector_env_flags(rng, T, N, p)))
    return cases


def _valid_steps_hint(args: tuple, got_mask: np.ndarray) -> str:
    """Name the likely mistake from what the student's mask looks like."""
    terminated, truncated, autoreset = args
    done = terminated | truncated
    if np.array_equal(got_mask, ~done):
        return ("the step that ends an episode IS a transition (its reward and next_obs are "
                "real); it is the step after it, gymnasium's reset step, that is not")
    if np.array_equal(got_mask, reference(terminated, truncated, np.zeros_like(autoreset))[0]):
        return ("the first step of an env whose previous step (in the last rollout) ended an "
                "episode is a reset step: start from the autoreset argument")
    if np.array_equal(got_mask, reference(terminated, np.zeros_like(truncated), autoreset)[0]):
        return "a truncated episode ends too: the env resets after it as after a termination"
    return "mask[t] is False exactly where the env's previous step ended an episode"


def _judge_valid_steps(case: Case, got: Any) -> None:
    args, call = case.args, case.call
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailed(f"{call}: expected a pair (mask, autoreset), a tuple or a list of "
                          f"two, got {type(got).__name__}"
                          + (f" of {len(got)}" if isinstance(got, (tuple, list)) else ""))
    mask, carry = reference(*args)
    got_mask, got_carry = as_array(got[0]), as_array(got[1])
    hint = _valid_steps_hint(args, np.asarray(got_mask).astype(bool)) \
        if np.shape(got_mask) == mask.shape else ""
    if len(args[0]) <= 6:
        call += (f"\n  terminated.T = {show(args[0].T.astype(int))}, truncated.T = "
                 f"{show(args[1].T.astype(int))}, autoreset = {show(args[2].astype(int))}")
    compare(f"{call}\n  mask", mask.astype(float), np.asarray(got_mask).astype(float),
            hint=hint)
    compare(f"{call}\n  autoreset returned", carry.astype(float),
            np.asarray(got_carry).astype(float),
            hint="return the autoreset flags after the last step: True where the last "
                 "step was valid and ended an episode")
    for name, x in (("mask", got_mask), ("autoreset", got_carry)):
        if not is_bool(x):
            dtype = x.dtype if isinstance(x, torch.Tensor) else np.asarray(x).dtype
            raise CheckFailed(
                f"{call}\n  {name}: the values agree, but its dtype is {dtype}: expected a "
                f"bool array, got {dtype} 0/1 values\n  hint: indexing with a 0/1 integer "
                "array picks rows 0 and 1 (x[mask] is x[[0, 1, 1, ...]]), not the valid steps, "
                "and ~ on it gives -1 and -2: build it as a bool array (np.zeros(shape, "
                "dtype=bool), or comparisons such as done & ~autoreset), or convert with "
                ".astype(bool)")


def check_valid_steps(fn: Callable) -> None:
    """Exercise 7.1: fn(terminated, truncated, autoreset) must return the pair (mask, autoreset)
    (a tuple or a list; bool arrays, numpy or torch) as `acteach.actor_critic.valid_steps`
    does, on hand-worked and random next-step-autoreset rollouts; a 0/1 integer mask with the
    right values is refused (it indexes rows 0 and 1, not the valid steps)."""
    cases = [Case(f"valid_steps(terminated, truncated, autoreset) on {label}", args)
             for label, args in _valid_steps_cases(np.random.default_rng(7))]
    run_cases("valid_steps", fn, cases, _judge_valid_steps)


# ---------------------------------------------------------------------------------------------
# The reference and planted mistakes
# ---------------------------------------------------------------------------------------------

def reference(terminated, truncated, autoreset):
    """The library's `actor_critic.valid_steps` (imported when called: the module brings
    gymnasium)."""
    from acteach.actor_critic import valid_steps

    return valid_steps(terminated, truncated, autoreset)


@mistake("step after it")
def valid_steps_masks_the_done_step(terminated, truncated, autoreset):
    return ~(terminated | truncated), autoreset


@mistake("start from the autoreset argument")
def valid_steps_ignores_incoming_autoreset(terminated, truncated, autoreset):
    return reference(terminated, truncated, np.zeros_like(autoreset))


@mistake("truncated episode ends too")
def valid_steps_ignores_truncation(terminated, truncated, autoreset):
    return reference(terminated, np.zeros_like(truncated), autoreset)


@mistake("after the last step")
def valid_steps_returns_the_input_autoreset(terminated, truncated, autoreset):
    return reference(terminated, truncated, autoreset)[0], autoreset


@mistake("expected")
def valid_steps_shifted_without_carry(terminated, truncated, autoreset):
    done = terminated | truncated
    mask = np.ones_like(done)
    mask[1:] = ~done[:-1]
    return mask, done[-1]


@mistake("the values agree, but its dtype is int64: expected a bool array")
def valid_steps_int_mask(terminated, truncated, autoreset):
    mask = np.zeros(terminated.shape, dtype=int)        # 0/1, not bool
    for t in range(len(terminated)):
        mask[t] = ~autoreset
        autoreset = (terminated[t] | truncated[t]) & (mask[t] == 1)
    return mask, autoreset


@mistake("your function changed its argument `autoreset` in place")
def valid_steps_updates_autoreset_in_place(terminated, truncated, autoreset):
    mask = np.zeros(terminated.shape, dtype=bool)
    for t in range(len(terminated)):
        mask[t] = ~autoreset
        autoreset[:] = (terminated[t] | truncated[t]) & mask[t]   # the caller's array
    return mask, autoreset


def valid_steps_as_a_list(terminated, truncated, autoreset):
    """A correct solution returning the pair as a list."""
    return list(reference(terminated, truncated, autoreset))


def valid_steps_torch(terminated, truncated, autoreset):
    """A correct solution in torch: bool tensors, shifted done flags instead of a loop."""
    done = torch.as_tensor(terminated) | torch.as_tensor(truncated)
    ended = torch.as_tensor(autoreset)
    mask = torch.empty_like(done)
    for t in range(len(done)):
        mask[t] = ~ended
        ended = done[t] & mask[t]
    return mask, ended


VALID_STEPS = Checker(
    check_valid_steps, reference, stub("valid_steps", "7.1"),
    mistakes=(valid_steps_masks_the_done_step, valid_steps_ignores_incoming_autoreset,
              valid_steps_ignores_truncation, valid_steps_returns_the_input_autoreset,
              valid_steps_shifted_without_carry, valid_steps_int_mask,
              valid_steps_updates_autoreset_in_place),
    rewrites=(valid_steps_as_a_list, valid_steps_torch))
