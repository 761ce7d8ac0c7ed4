"""Checker of notebook 02 (use Q): exercise 2.1 `q_from_v`, Q from V in one Bellman step,
against `acteach.q_values.q_from_v`, and its registry entry with planted mistakes."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from acteach.checks._core import (Case, Checker, against, as_array, mistake, recognise,
                                  run_cases, show, stub)
from acteach.q_values import q_from_v as library_q_from_v
from acteach.tabular import TabularMDP, chain_mdp, gridworld_mdp, random_mdp


def q_from_v(mdp: TabularMDP, V: np.ndarray) -> np.ndarray:
    """The reference: `acteach.q_values.q_from_v(mdp, V)`."""
    return library_q_from_v(mdp, V)


def _q_cases(rng: np.random.Generator) -> list[tuple[str, TabularMDP, np.ndarray, str]]:
    """(label, mdp, V, hint) cases: hand-worked first. Every V is an arbitrary table (a fitted
    critic's, say), nonzero at the terminal states, so their V must be ignored."""
    two = chain_mdp(n_states=2, slip=0.0)
    slippery = chain_mdp(n_states=2, slip=0.1, gamma=0.5)
    cases = [
        ("a 2-state corridor, no slip, gamma = 1", two, np.array([1.0, 2.0, 5.0]),
         "states 0, 1, goal; V = [1, 2, 5]: Q(0, left) = -1 + V(0) = 0, Q(0, right) = -1 + V(1) "
         "= 1, Q(1, left) = -1 + V(0) = 0, Q(1, right) = 10 + 0 = 10 (the goal is terminal: "
         "its V counts as 0, whatever the table says); the goal's own row is 0"),
        ("the same corridor, slip 0.1, gamma = 0.5", slippery, np.array([1.0, 2.0, 5.0]),
         "Q(0, right) = -1 + 0.5 (0.9 V(1) + 0.1 V(0)) = -0.05: the expectation over s' with "
         "p(s'|s, a), discounted once"),
    ]
    for label, mdp in (("the 5-state corridor", chain_mdp()),
                       ("a random MDP, gamma = 0.9", random_mdp(rng, n_states=6, gamma=0.9)),
                       ("a random MDP with 2 terminal states", random_mdp(
                           rng, n_states=7, gamma=1.0, n_terminal=2)),
                       ("the gridworld, cut at H = 20 (V indexed by the step)", gridworld_mdp()),
                       ("a corridor, gamma = 0.8, cut at H = 6", chain_mdp(gamma=0.8, horizon=6))):
        shape = (mdp.n_states,) if mdp.horizon is None else (mdp.horizon + 1, mdp.n_states)
        cases.append((label, mdp, rng.normal(size=shape).round(2) * 3,
                      "random case: V is any table (a critic's), nonzero at the terminal states"
                      + ("; with a horizon, Q_t uses V_{t+1}" if mdp.horizon else "")))
    return cases


def _after(mdp, V):
    return V if mdp.horizon is None else V[1:]


def _ahead(mdp, v):
    """sum_s' p(s'|s, a) v(s') for v (S,) or (H, S) -> (S, A) or (H, S, A)."""
    return np.einsum("sax,...x->...sa", mdp.P, v)


def _q_hint(case: Case, got: Any) -> str:
    """Name the mistake the got value matches, if it matches a known one; else the case's."""
    mdp, V = case.args
    got = as_array(got)
    expected = q_from_v(mdp, V)
    if not isinstance(got, np.ndarray) or got.shape != expected.shape:
        return case.hint
    after = V if mdp.horizon is None else V[1:]
    live = np.where(mdp.terminal, 0.0, after)
    same_step = V if mdp.horizon is None else V[:-1]
    known = [
        (mdp.R + mdp.gamma * _ahead(mdp, after), "a terminal state has no future: its V counts "
         "as 0 (mask V with mdp.terminal before taking the expectation)"),
        (mdp.R + _ahead(mdp, live), f"discount the next state's value once: gamma = "
         f"{mdp.gamma}"),
        (mdp.gamma * _ahead(mdp, live), "Q starts with the reward r(s, a) of the action itself"),
        (mdp.R + mdp.gamma * np.where(mdp.terminal, 0.0, same_step)[..., None],
         "Q(s, a) uses V of the NEXT state s', averaged with p(s'|s, a), not V(s)"),
        (mdp.R + mdp.gamma * np.einsum("xas,...x->...sa", mdp.P, live), "P[s, a, s'] is "
         "p(s'|s, a): sum over its LAST axis (P @ V), not its first"),
    ]
    if mdp.horizon is not None:
        known.append((mdp.R + mdp.gamma * _ahead(mdp, np.where(mdp.terminal, 0.0, V[:-1])),
                      "with a horizon, Q_t(s, a) looks one step ahead: it uses V_{t+1}, "
                      "i.e. V[1:], not V[:-1]"))
    return recognise(got, expected, known, case.hint)


def check_q_from_v(fn: Callable) -> None:
    """Exercise 2.1: fn(mdp, V) must equal `acteach.q_values.q_from_v(mdp, V)`:
    Q(s, a) = r(s, a) + gamma sum_s' p(s'|s, a) V(s'), terminal V counting as 0, with a horizon
    Q_t from V_{t+1}."""
    cases = [Case(f"q_from_v(mdp=<{label}>, V={show(V)})", (mdp, V), hint=hint)
             for label, mdp, V, hint in _q_cases(np.random.default_rng(21))]
    run_cases("q_from_v", fn, cases, against(q_from_v, _q_hint))


# ---------------------------------------------------------------------------------------------
# Planted mistakes and other correct solutions
# ---------------------------------------------------------------------------------------------

@mistake("its V counts as 0")
def q_counts_terminal_values(mdp, V):
    return mdp.R + mdp.gamma * _ahead(mdp, _after(mdp, V))


@mistake("discount the next state's value once")
def q_forgets_gamma(mdp, V):
    return mdp.R + _ahead(mdp, np.where(mdp.terminal, 0.0, _after(mdp, V)))


@mistake("starts with the reward")
def q_forgets_the_reward(mdp, V):
    return mdp.gamma * _ahead(mdp, np.where(mdp.terminal, 0.0, _after(mdp, V)))


@mistake("V of the NEXT state")
def q_uses_this_states_value(mdp, V):
    same = V if mdp.horizon is None else V[:-1]
    return mdp.R + mdp.gamma * np.where(mdp.terminal, 0.0, same)[..., None]


@mistake("sum over its LAST axis")
def q_sums_the_wrong_axis(mdp, V):
    live = np.where(mdp.terminal, 0.0, _after(mdp, V))
    return mdp.R + mdp.gamma * np.einsum("xas,...x->...sa", mdp.P, live)


@mistake("V_{t+1}")
def q_uses_v_of_the_same_step(mdp, V):
    same = V if mdp.horizon is None else V[:-1]
    return mdp.R + mdp.gamma * _ahead(mdp, np.where(mdp.terminal, 0.0, same))


@mistake("your function changed its argument `V` in place")
def q_zeroes_terminal_values_in_place(mdp, V):
    V[..., mdp.terminal] = 0.0
    return mdp.R + mdp.gamma * _ahead(mdp, _after(mdp, V))


def q_from_v_loops(mdp, V):
    """A correct solution with loops over states, actions and next states."""
    steps = [V] if mdp.horizon is None else [V[t + 1] for t in range(mdp.horizon)]
    out = []
    for v in steps:
        q = np.zeros((mdp.n_states, mdp.n_actions))
        for s in range(mdp.n_states):
            for a in range(mdp.n_actions):
                q[s, a] = mdp.R[s, a] + mdp.gamma * sum(
                    mdp.P[s, a, x] * v[x] for x in range(mdp.n_states) if not mdp.terminal[x])
        out.append(q)
    return out[0] if mdp.horizon is None else np.stack(out)


def q_from_v_torch(mdp, V):
    """A correct solution in torch, float32, returning a tensor."""
    v = torch.as_tensor(_after(mdp, V), dtype=torch.float32)
    v = torch.where(torch.tensor(mdp.terminal), 0.0, v)
    P, R = (torch.tensor(x, dtype=torch.float32) for x in (mdp.P, mdp.R))
    return R + mdp.gamma * torch.einsum("sax,...x->...sa", P, v)


Q_FROM_V = Checker(
    check_q_from_v, q_from_v, stub("q_from_v", "2.1"),
    mistakes=(q_counts_terminal_values, q_forgets_gamma, q_forgets_the_reward,
              q_uses_this_states_value, q_sums_the_wrong_axis, q_uses_v_of_the_same_step,
              q_zeroes_terminal_values_in_place),
    rewrites=(q_from_v_loops, q_from_v_torch))
