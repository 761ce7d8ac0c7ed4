"""Checker of notebook 09 (beyond the lecture): exercise 9.1 `gae` on vector-env rollouts, and
its registry entry with planted mistakes."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from acteach.advantages import episode_ends, gae, td_advantage
from acteach.checks._core import (Case, Checker, Mistake, against, as_array, recognise, run_cases,
                                  named, show, stub)

GAE_ARGUMENTS = ("rew", "value", "next_value", "terminated", "truncated", "mask", "gamma", "lam")


def _gae_cases(rng: np.random.Generator) -> list[tuple[dict, str]]:
    """(arguments of gae, hint) cases: two hand-worked vector-env rollouts, then random ones:
    vector-env columns (episodes follow one another, some after a masked autoreset step) and
    padded trajectories with garbage in the padding."""
    b = np.array
    vec = dict(
        rew=b([[1.0, 1.0], [2.0, 1.0], [99.0, 1.0], [1.0, 1.0], [3.0, 1.0], [2.0, 1.0]]),
        value=b([[3.0, 0.0], [6.0, 2.0], [77.0, 4.0], [2.0, 6.0], [4.0, 8.0], [8.0, 10.0]]),
        next_value=b([[6.0, 2.0], [10.0, 4.0], [55.0, 6.0], [4.0, 8.0], [50.0, 10.0],
                      [6.0, 12.0]]),
        terminated=b([[0, 0], [0, 0], [0, 0], [0, 0], [1, 0], [0, 0]], dtype=bool),
        truncated=b([[0, 0], [1, 0], [0, 0], [0, 0], [0, 0], [0, 0]], dtype=bool),
        mask=b([[1, 1], [1, 1], [0, 1], [1, 1], [1, 1], [1, 1]], dtype=bool),
        gamma=0.5, lam=0.5)
    follow = dict(
        rew=b([[1.0, 2.0], [1.0, 0.0], [1.0, 1.0], [1.0, 99.0], [1.0, 99.0]]),
        value=b([[1.0, 1.0], [2.0, 3.0], [3.0, 2.0], [1.0, 77.0], [2.0, 77.0]]),
        next_value=b([[2.0, 3.0], [5.0, 2.0], [1.0, 4.0], [2.0, 88.0], [40.0, 88.0]]),
        terminated=b([[0, 0], [0, 0], [0, 0], [0, 0], [1, 0]], dtype=bool),
        truncated=b([[0, 0], [1, 0], [0, 0], [0, 0], [0, 0]], dtype=bool),
        mask=b([[1, 1], [1, 1], [1, 1], [1, 0], [1, 0]], dtype=bool),
        gamma=1.0, lam=0.5)
    cases = [
        (vec, "gamma = lam = 0.5. Column 0: episode A is cut by the time limit at t = 1 (delta "
              "bootstraps: 2 + 0.5 * 10 - 6 = 1, and the recursion stops: A_1 = 1); t = 2 is the "
              "vector env's autoreset step, masked: 0 (rew 99, value 77 are garbage); episode B "
              "terminates at t = 4: delta = 3 - 4 = -1 (next_value 50 must not count). Column 0 "
              "expected [1.25, 1, 0, 0.75, -1, -3]"),
        (follow, "gamma = 1, lam = 0.5. Column 0: episode A is cut at t = 1 and episode B starts "
                 "right at t = 2 (no masked step between): A_1 = delta_1 = 1 + 5 - 2 = 4, "
                 "nothing of B flows into A; B terminates at t = 4: delta_4 = 1 - 2 = -1. "
                 "Expected column 0 [4, 4, -0.25, 1.5, -1]. Column 1 ends at t = 2 without a "
                 "flag (the rollout's end): it bootstraps there, and its rows 3, 4 are "
                 "padding. Expected column 1 [4.25, 0.5, 3, 0, 0]"),
    ]
    for T, N, gamma, lam, vector_env in ((8, 4, 0.9, 0.95, True), (7, 5, 0.99, 0.8, False),
                                         (9, 3, 1.0, 0.5, True), (6, 4, 0.8, 0.0, True),
                                         (6, 3, 0.9, 1.0, False)):
        if vector_env:
            ends, autoreset = rng.random((T, N)) < 0.3, rng.random((T, N)) < 0.5
            mask = np.ones((T, N), dtype=bool)
            for t in range(1, T):            # after some ends, a masked autoreset step
                mask[t] = ~(ends[t - 1] & mask[t - 1] & autoreset[t - 1])
            ends &= mask
        else:
            lengths = rng.integers(2, T + 1, size=N)
            mask = np.arange(T)[:, None] < lengths[None, :]
            ends = (np.arange(T)[:, None] == lengths[None, :] - 1) & (rng.random(N) < 0.7)
        kind = rng.integers(0, 3, size=(T, N))        # 0 terminated, 1 truncated, 2 both
        garbage = np.where(mask, 0.0, 50.0)
        cases.append((dict(rew=rng.normal(size=(T, N)).round(2) + garbage,
                           value=(rng.normal(size=(T, N)) * 3).round(2) + garbage,
                           next_value=(rng.normal(size=(T, N)) * 3).round(2) + garbage,
                           terminated=ends & (kind != 1), truncated=ends & (kind != 0),
                           mask=mask, gamma=gamma, lam=lam),
                      "random case" + (": episodes follow one another in a column, some after "
                                       "a masked autoreset step" if vector_env else
                                       ": padded trajectories, garbage in the padding")))
    return cases


def reference(rew, value, next_value, terminated, truncated, mask, gamma, lam):
    """`acteach.advantages.gae` under the exercise's signature (the checker passes keywords)."""
    return gae(rew, value, next_value, terminated, truncated, mask, gamma, lam)


def _backward(delta: np.ndarray, stop: np.ndarray, factor: float) -> np.ndarray:
    """A_t = delta_t + factor * A_{t+1}, A_{t+1} taken as 0 where stop_t."""
    adv, following = np.zeros_like(delta), np.zeros(delta.shape[1])
    for t in reversed(range(len(delta))):
        adv[t] = following = delta[t] + factor * np.where(stop[t], 0.0, following)
    return adv


def _gae_hint(case: Case, got: Any) -> str:
    """Name the mistake the got value matches, if it matches a known one; else the case's."""
    c, hint = case.kwargs, case.hint
    got = as_array(got)
    if not isinstance(got, np.ndarray) or got.shape != c["rew"].shape:
        return hint
    rew, v, nv, g, lam = c["rew"], c["value"], c["next_value"], c["gamma"], c["lam"]
    term, trunc, mask = c["terminated"], c["truncated"], c["mask"]
    none, every = np.zeros_like(term), np.ones_like(mask)
    delta = td_advantage(rew, v, nv, term, mask, g)
    stop = episode_ends(term, trunc, mask) | ~mask
    first = np.ones((1, mask.shape[1]), dtype=bool)

    def forward(delta: np.ndarray, stop: np.ndarray) -> np.ndarray:   # A_t = d_t + g l A_{t-1}
        starts = np.vstack([first, stop[:-1]])
        return np.where(mask, _backward(delta[::-1], starts[::-1], g * lam)[::-1], 0.0)

    raw_delta = rew + g * np.where(term, 0.0, nv) - v          # garbage on masked steps too
    raw_stop = term | trunc | ~np.vstack([mask[1:], ~first])
    backwards = ("the recursion runs backwards in time: A_t needs A_{t+1}, so loop "
                 "t = T-1, ..., 0")
    known = [
        (gae(rew, v, nv, term, none, mask, g, lam), "the recursion must stop at a truncation "
         "too: the next step of the column belongs to another episode (A_{t+1} counts only "
         "if the episode goes on: multiply it by 1 - (terminated or truncated))"),
        (gae(rew, v, nv, term | trunc, trunc, mask, g, lam), "a truncated step still "
         "bootstraps in delta (r + gamma V(next_obs) - V(s)): only terminated removes the next "
         "value; truncated only stops the recursion"),
        (gae(rew, v, nv, none, term | trunc, mask, g, lam), "a terminated step has no next "
         "value: delta_t = r_t - V(s_t) there (multiply V(s_{t+1}) by 1 - terminated)"),
        (gae(rew, v, nv, term, trunc, mask, g, 1.0), f"lam = {lam} is missing: the recursion "
         "is A_t = delta_t + gamma * lam * A_{t+1}"),
        (_backward(delta, stop, lam), f"gamma = {g} is missing in the recursion: "
         "A_t = delta_t + gamma * lam * A_{t+1}"),
        (delta, "this is the TD advantage delta_t alone: "
         "add gamma * lam * A_{t+1}"),
        (forward(delta, stop), backwards),
        (forward(raw_delta, raw_stop), backwards),
        (gae(rew, v, nv, term, trunc, every, g, lam), "masked steps (mask False) must be 0 and "
         "carry nothing: their rewards and values are garbage"),
        (np.where(mask, gae(rew, v, nv, term, trunc, every, g, lam), 0.0), "a masked step "
         "carries nothing across it: its garbage must not flow into the steps before it"),
    ]
    return recognise(got, reference(**c), known, hint)


def check_gae(fn: Callable) -> None:
    """Exercise 9.1: fn(rew, value, next_value, terminated, truncated, mask, gamma, lam) on
    (T, N) arrays must equal `acteach.advantages.gae`: delta_t = r_t + gamma (1 - terminated_t)
    V(s_{t+1}) - V(s_t), A_t = delta_t + gamma lam A_{t+1} with the recursion cut wherever an
    episode ends (terminated or truncated, or the last valid step before a masked one), and 0
    on masked steps. Hand-worked cases include a truncation in the middle of a vector-env
    column followed by a masked autoreset step, and one followed directly by the next episode."""
    cases = [Case("gae(" + ", ".join(f"{k}={show(c[k])}" for k in GAE_ARGUMENTS) + ")",
                  kwargs=c, hint=hint)
             for c, hint in _gae_cases(np.random.default_rng(9))]
    run_cases("gae", fn, cases, against(reference, _gae_hint))


# ---------------------------------------------------------------------------------------------
# Another correct solution, and planted mistakes
# ---------------------------------------------------------------------------------------------

def gae_by_loop(rew, value, next_value, terminated, truncated, mask, gamma, lam,
                cut_at_truncation=True, no_bootstrap_after="terminated", use_lam=True,
                backward=True, use_mask=True):
    """A student's GAE from scratch; the keyword arguments plant one mistake each."""
    rew, value, next_value = (np.asarray(x, dtype=float) for x in (rew, value, next_value))
    term, trunc, mask = (np.asarray(x, dtype=bool) for x in (terminated, truncated, mask))
    if not use_mask:
        mask = np.ones_like(mask)
    T, N = rew.shape
    next_valid = np.vstack([mask[1:], np.zeros((1, N), dtype=bool)])
    no_next = {"terminated": term, "nothing": np.zeros_like(term), "done": term | trunc}
    delta = rew + gamma * np.where(no_next[no_bootstrap_after], 0.0, next_value) - value
    stop = term | ~next_valid | (trunc if cut_at_truncation else False)
    factor = gamma * lam if use_lam else gamma
    adv, carried = np.zeros((T, N)), np.zeros(N)
    if backward:
        for t in reversed(range(T)):
            adv[t] = carried = delta[t] + factor * np.where(stop[t], 0.0, carried)
    else:
        for t in range(T):
            adv[t] = delta[t] + factor * carried
            carried = np.where(stop[t], 0.0, adv[t])
    return np.where(mask, adv, 0.0)


def _planted(name: str, **mistake) -> Callable:
    """gae_by_loop with one mistake, under the exercise's signature (the checker passes
    keywords), named `name`."""
    def wrong(rew, value, next_value, terminated, truncated, mask, gamma, lam):
        return gae_by_loop(rew, value, next_value, terminated, truncated, mask, gamma, lam,
                           **mistake)
    return named(name, wrong)


def gae_zeroes_padding_in_place(rew, value, next_value, terminated, truncated, mask, gamma,
                                lam):
    """Right values, but the caller's garbage rewards and values are zeroed in place."""
    rew[~mask] = 0.0
    value[~mask] = 0.0
    return gae_by_loop(rew, value, next_value, terminated, truncated, mask, gamma, lam)


def gae_float32(rew, value, next_value, terminated, truncated, mask, gamma, lam):
    """A correct solution computed in float32 throughout."""
    f32 = np.float32
    mask = np.asarray(mask, dtype=bool)
    rew, value, next_value = (np.where(mask, x, 0).astype(f32) for x in (rew, value, next_value))
    delta = rew + f32(gamma) * np.where(terminated, f32(0), next_value) - value
    last_valid = ~np.vstack([mask[1:], np.zeros((1, mask.shape[1]), dtype=bool)])
    goes_on = ~(np.asarray(terminated) | np.asarray(truncated) | last_valid | ~mask)
    adv = np.zeros_like(delta)
    for t in reversed(range(len(delta))):
        following = adv[t + 1] if t + 1 < len(delta) else f32(0)
        adv[t] = delta[t] + f32(gamma * lam) * np.where(goes_on[t], following, f32(0))
    return np.where(mask, adv, f32(0))


GAE = Checker(
    check_gae, reference, stub("gae", "9.1"),
    mistakes=(Mistake(_planted("gae_no_cut_at_truncation", cut_at_truncation=False),
                      "stop at a truncation"),
              Mistake(_planted("gae_bootstraps_through_termination",
                               no_bootstrap_after="nothing"),
                      "terminated step has no next value"),
              Mistake(_planted("gae_no_bootstrap_at_truncation", no_bootstrap_after="done"),
                      "truncated step still bootstraps"),
              Mistake(_planted("gae_forgets_lam", use_lam=False), "lam = 0.5 is missing"),
              Mistake(_planted("gae_forward_recursion", backward=False), "backwards in time"),
              Mistake(_planted("gae_ignores_mask", use_mask=False), "masked steps"),
              Mistake(gae_zeroes_padding_in_place,
                      "your function changed its argument `rew` in place")),
    rewrites=(gae_by_loop, gae_float32))
