"""Checker of notebook 02 (use Q): exercise 2.1 `q_from_rollouts`, statistically against the
exact Q^pi, and its registry entry with planted mistakes.

The exact mean and variance of one rollout's return come from
`acteach.decomposition.return_moments`; the tolerances are stated in `check_q_from_rollouts`.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from acteach import tabular
from acteach.checks._core import (FLOAT32_RTOL, NONFINITE_HINT, Case, Checker, CheckFailed,
                                  call_student, compare, mistake, run_cases, show, stub)
from acteach.decomposition import return_moments
from acteach.q_values import mc_q_estimate
from acteach.tabular import (TabularMDP, chain_mdp, random_mdp, rollout_returns,
                             sample_trajectories, softmax_policy)

#: Statistical tolerances of check_q_from_rollouts (see its docstring), and the seed of the
#: batch of its random-MDP case.
Q_COPIES, Q_MEAN_Z, Q_SPREAD_BAND = 1000, 5.0, (0.8, 1.25)
RANDOM_CASE_SEED = 0


def q_cases() -> list[tuple[str, TabularMDP, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                            int]]:
    """(label, mdp, logits, obs, act, mask, k), each with a finite horizon (so the step t
    matters) and padded steps holding state 0, action 0 (as the library pads)."""
    corridor = chain_mdp(n_states=3, slip=0.1, horizon=4)
    c_logits = np.array([[0.0, 1.0], [0.5, 0.0], [0.0, 1.5], [0.0, 0.0]])
    # hand-made, 4 steps x 6 trajectories: every state at several steps, both actions;
    # trajectory 5 reached the goal after 3 steps (step 3 is padding)
    obs = np.array([[0, 0, 0, 0, 0, 0], [1, 0, 1, 0, 1, 1], [2, 1, 0, 0, 2, 2],
                    [2, 2, 1, 0, 1, 0]])
    act = np.array([[1, 0, 1, 1, 1, 1], [1, 1, 0, 1, 0, 1], [0, 1, 1, 0, 1, 1],
                    [1, 0, 1, 0, 0, 0]])
    mask = np.ones((4, 6), dtype=bool)
    mask[3, 5] = False
    act[3, 5] = 0
    cases = [("a 3-state corridor cut at H = 4 steps", corridor, c_logits, obs, act, mask, 4)]
    rand = random_mdp(np.random.default_rng(5), n_states=5, n_actions=2, gamma=0.9, horizon=5,
                       n_terminal=1)
    r_logits = np.random.default_rng(6).normal(size=(5, 2))
    batch = sample_trajectories(rand, r_logits, 6, np.random.default_rng(RANDOM_CASE_SEED))
    cases.append(("a random MDP, gamma = 0.9, cut at H = 5, with a terminal state", rand,
                  r_logits, batch.obs, batch.act, batch.mask, 3))
    return cases


class _CountCalls:
    """Count the calls of tabular.rollout_returns made through fn's globals (any name bound to
    it) or through the module, for the duration of a with-block."""

    def __init__(self, fn: Callable) -> None:
        self.scope = getattr(fn, "__globals__", {})
        self.names = [n for n, v in list(self.scope.items()) if v is tabular.rollout_returns]
        self.calls = 0

    def __enter__(self) -> "_CountCalls":
        original = tabular.rollout_returns

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        self.original = original
        for name in self.names:
            self.scope[name] = counted
        tabular.rollout_returns = counted
        return self

    def __exit__(self, *exc) -> None:
        for name in self.names:
            self.scope[name] = self.original
        tabular.rollout_returns = self.original


def _q_mean_hint(k: int, got: float, cell_t: int, s: int, a: int, Q: np.ndarray,
                 V: np.ndarray) -> str:
    """Name the mistake whose expected value the got mean is much closer to than to Q."""
    truth = Q[cell_t, s, a]
    known = [(k * truth, f"the mean is k = {k} times Q: average the k returns, don't sum them"),
             (Q[0, s, a], "this is Q from step 0 (H steps of rollout): pass each step's index t "
                          "as `times`, so only H - t steps remain"),
             (V[cell_t, s], "this is V_t(s_t), the value of the state: the rollout must start "
                            "with the given action a_t (pass act), not a freshly sampled one")]
    for value, hint in known:
        if abs(got - value) < abs(got - truth) / 3:
            return hint
    return ("each estimate is the mean of k returns of rollout_returns(mdp, logits, states, "
            "actions, times, rng) started from (s_t, a_t) at step t")


def _shape_only(got: Any) -> Any:
    """Zeros of got's shape if it is an array (so `compare` against zeros checks the type and
    the shape only), else got itself (so `compare` reports its type)."""
    return np.zeros(tuple(got.shape)) if isinstance(got, (np.ndarray, torch.Tensor)) else got


def _judge_q(fn: Callable, case: Case, got: Any) -> None:
    """Exact checks on the case's batch, then statistics over Q_COPIES copies of it."""
    mdp, logits, obs, act, mask, k, _ = case.args
    T, N = mask.shape
    call = case.call

    def run(o, a, m, seed):
        return call_student(fn, call, mdp, logits, o.copy(), a.copy(), m.copy(), k,
                            np.random.default_rng(seed))

    # exact checks on the batch itself
    compare(call, np.zeros((T, N)), _shape_only(got))             # an array of shape (T, N)
    got = np.asarray(got.detach().numpy() if isinstance(got, torch.Tensor) else got,
                     dtype=np.float64)
    if not np.all(np.isfinite(got)):
        raise CheckFailed(f"{call}: the result holds NaN or inf; expected finite numbers, got "
                          f"{show(got)}\n  hint: {NONFINITE_HINT}")
    compare(f"{call}, at the padded steps (mask False)", np.zeros(int((~mask).sum())),
            got[~mask], hint="padded steps are not steps: leave them 0, roll out nothing there")
    with _CountCalls(fn) as counter:
        again = np.asarray(run(obs, act, mask, 1), dtype=np.float64)
    if counter.calls > T:
        raise CheckFailed(
            f"{call}, calls of rollout_returns: expected at most T = {T}, got {counter.calls}\n"
            "  hint: one call does it all (np.repeat each valid step's state, action and t k "
            "times); do not loop over trajectories or rollouts")
    if not np.array_equal(got, again):
        raise CheckFailed(f"{call}, twice with rng = np.random.default_rng(1): expected the "
                          "same result, got two different ones\n  hint: draw every random "
                          "number from rng (pass it to rollout_returns)")
    if np.array_equal(got, np.asarray(run(obs, act, mask, 2), dtype=np.float64)):
        raise CheckFailed(f"{call}, with rng seeds 1 and 2: expected different results, got "
                          "identical ones\n  hint: the rollouts must be drawn with the rng "
                          "passed in")
    # statistics over M copies of the batch side by side
    M = Q_COPIES
    many = np.asarray(run(np.tile(obs, (1, M)), np.tile(act, (1, M)), np.tile(mask, (1, M)), 0),
                      dtype=np.float64)
    call_m = f"{call}, {M} copies side by side (seed 0)"
    compare(call_m, np.zeros((T, N * M)), _shape_only(many))
    many = many.reshape(T, M, N)
    moments = return_moments(mdp, logits)
    Q, Var, V = moments.Q, moments.variance, moments.V
    t, n = np.nonzero(mask)
    s, a = obs[t, n], act[t, n]
    truth, var = Q[t, s, a], Var[t, s, a] / k                    # per valid step
    mean = many[t, :, n].mean(axis=1)
    se = np.sqrt(var / M)
    rounding = FLOAT32_RTOL * np.maximum(1.0, np.abs(truth))     # a float32 answer's error
    excess = np.abs(mean - truth) / (Q_MEAN_Z * se + rounding)
    worst = int(np.argmax(excess))
    if not excess[worst] <= 1.0:
        off = abs(mean[worst] - truth[worst])
        how_far = (f"{off / se[worst]:.1f} standard errors off; {Q_MEAN_Z:g} accepted"
                   if se[worst] > 0 else f"off by {off:.3g}; the return from this step is "
                   f"deterministic (standard error 0), so only rounding, {rounding[worst]:.1g}, "
                   "is accepted")
        raise CheckFailed(
            f"{call_m}: at step t = {t[worst]} of trajectory n = {n[worst]} "
            f"(s_t = {s[worst]}, a_t = {a[worst]}), the mean of the {M} estimates:\n"
            f"  expected Q^pi_t(s_t, a_t) = {truth[worst]:.6g} (standard error {se[worst]:.2g})\n"
            f"  got      {mean[worst]:.6g}  ({how_far})\n"
            f"  hint: {_q_mean_hint(k, mean[worst], t[worst], s[worst], a[worst], Q, V)}")
    spread = many[t, :, n].var(axis=1, ddof=1).sum()
    ratio = spread / var.sum()
    lo, hi = Q_SPREAD_BAND
    if not lo <= ratio <= hi:
        hint = (f"a ratio near k = {k}: each estimate holds one return, not the mean of k"
                if abs(ratio - k) < abs(ratio - 1) else
                "the mean of k independent returns has variance Var/k")
        raise CheckFailed(
            f"{call_m}: the variance of the estimates, summed over the {len(t)} valid steps:\n"
            f"  expected sum of Var_t(s_t, a_t) / k = {var.sum():.4g}\n"
            f"  got      {spread:.4g}  (ratio {ratio:.2f}; {lo:g} to {hi:g} accepted)\n"
            f"  hint: {hint}")


def check_q_from_rollouts(fn: Callable) -> None:
    """Exercise 2.1: fn(mdp, logits, obs, act, mask, k, rng) -> (T, N), at every valid step the
    mean return of k fresh rollouts from (s_t, a_t) taken at step t; 0 where mask is False.

    Cases: a 3-state corridor cut at H = 4 steps (k = 4), and a random MDP with gamma = 0.9, a
    terminal state and H = 5 (k = 3); both finite-horizon, so the step t matters.
    Exact checks: an array of shape (T, N), finite; 0 at every padded step; at most T calls of
    `rollout_returns` (vectorised over trajectories and rollouts); the same rng seed gives the
    same answer, another seed a different one.
    Statistical checks, on M = 1000 copies of the batch side by side (rng seed 0): at every
    valid step the mean of the M estimates lies within 5 standard errors of the exact
    Q^pi_t(s_t, a_t), the standard error sqrt(Var_t(s_t, a_t) / (k M)) computed exactly (a
    correct function fails this with probability below 1e-5 over all steps), plus float32
    rounding, FLOAT32_RTOL * |Q| (at a horizon's last step the return is deterministic and its
    standard error 0, so a float32 answer differs by rounding alone); and the variance
    of the estimates, summed over the valid steps, is sum Var_t / k to a ratio in [0.8, 1.25]
    (a correct function's ratio is 1 within about 0.05).
    """
    cases = [Case(f"q_from_rollouts(mdp, logits, obs, act, mask, k={k}, rng) on {label}, "
                  f"N = {mask.shape[1]}", (mdp, logits, obs, act, mask, k,
                                           np.random.default_rng(1)))
             for label, mdp, logits, obs, act, mask, k in q_cases()]
    run_cases("q_from_rollouts", fn, cases, lambda case, got: _judge_q(fn, case, got),
              done=f"\u2713 q_from_rollouts: all {len(cases)} cases agree with the exact Q^pi "
                   f"(means within {Q_MEAN_Z:g} standard errors, variance Var/k).")


# ---------------------------------------------------------------------------------------------
# The reference, another correct solution, and planted mistakes
# ---------------------------------------------------------------------------------------------

def reference(mdp, logits, obs, act, mask, k, rng):
    """The library's `mc_q_estimate` under the exercise's signature (it also returns the steps
    the rollouts cost)."""
    return mc_q_estimate(mdp, logits, obs, act, mask, k, rng)[0]


def _mean_per_step(mask: np.ndarray, returns: np.ndarray, k: int) -> np.ndarray:
    """(T, N): at the i-th valid step (in np.nonzero order) the mean of returns[i k:(i+1) k]."""
    t, n = np.nonzero(mask)
    q = np.zeros(mask.shape)
    q[t, n] = returns.reshape(-1, k).mean(axis=1)
    return q


def q_from_rollouts(mdp, logits, obs, act, mask, k, rng):
    """A correct solution, written independently of the library's mc_q_estimate."""
    t, n = np.nonzero(mask)
    states, actions, times = (np.repeat(x, k) for x in (obs[t, n], act[t, n], t))
    returns, _ = rollout_returns(mdp, logits, states, actions, times, rng)
    return _mean_per_step(mask, returns, k)


@mistake("don't sum")
def q_sums_the_k_returns(mdp, logits, obs, act, mask, k, rng):
    return q_from_rollouts(mdp, logits, obs, act, mask, k, rng) * k


@mistake("not the mean of k")
def q_ignores_k(mdp, logits, obs, act, mask, k, rng):
    return q_from_rollouts(mdp, logits, obs, act, mask, 1, rng)


@mistake("as `times`")
def q_starts_at_time_zero(mdp, logits, obs, act, mask, k, rng):
    t, n = np.nonzero(mask)
    states, actions = np.repeat(obs[t, n], k), np.repeat(act[t, n], k)
    returns, _ = rollout_returns(mdp, logits, states, actions, np.zeros_like(states), rng)
    return _mean_per_step(mask, returns, k)


@mistake("given action")
def q_samples_a_fresh_action(mdp, logits, obs, act, mask, k, rng):
    pi = softmax_policy(logits)
    t, n = np.nonzero(mask)
    states, times = np.repeat(obs[t, n], k), np.repeat(t, k)
    actions = (rng.random(states.size)[:, None] > np.cumsum(pi[states], axis=1)).sum(axis=1)
    returns, _ = rollout_returns(mdp, logits, states, actions, times, rng)
    return _mean_per_step(mask, returns, k)


@mistake("padded steps")
def q_does_not_mask(mdp, logits, obs, act, mask, k, rng):
    return q_from_rollouts(mdp, logits, obs, act, np.ones_like(mask), k, rng)


@mistake("ratio")
def q_reuses_one_rollout(mdp, logits, obs, act, mask, k, rng):
    t, n = np.nonzero(mask)
    returns, _ = rollout_returns(mdp, logits, obs[t, n], act[t, n], t, rng)
    return _mean_per_step(mask, np.repeat(returns, k), k)


@mistake("draw every random number from rng")
def q_ignores_rng(mdp, logits, obs, act, mask, k, rng):
    return q_from_rollouts(mdp, logits, obs, act, mask, k, np.random.default_rng())


@mistake("calls of rollout_returns")
def q_loops_over_steps(mdp, logits, obs, act, mask, k, rng):
    q = np.zeros(mask.shape)
    for t, n in zip(*np.nonzero(mask)):
        returns, _ = rollout_returns(mdp, logits, np.repeat(obs[t, n], k),
                                     np.repeat(act[t, n], k), np.repeat(t, k), rng)
        q[t, n] = returns.mean()
    return q


@mistake("expected an array, got tuple")
def q_returns_the_steps_too(mdp, logits, obs, act, mask, k, rng):
    return mc_q_estimate(mdp, logits, obs, act, mask, k, rng)


@mistake("your function changed its argument `logits` in place")
def q_stabilises_logits_in_place(mdp, logits, obs, act, mask, k, rng):
    logits -= logits.max(axis=1, keepdims=True)     # same policy, but the caller's logits change
    return q_from_rollouts(mdp, logits, obs, act, mask, k, rng)


def q_from_rollouts_float32(mdp, logits, obs, act, mask, k, rng):
    """A correct solution returning float32 (at a horizon's last step, where the return is
    deterministic, its means differ from Q by rounding alone)."""
    return q_from_rollouts(mdp, logits, obs, act, mask, k, rng).astype(np.float32)


Q_FROM_ROLLOUTS = Checker(
    check_q_from_rollouts, reference, stub("q_from_rollouts", "2.1"),
    mistakes=(q_sums_the_k_returns, q_ignores_k, q_starts_at_time_zero, q_samples_a_fresh_action,
              q_does_not_mask, q_reuses_one_rollout, q_ignores_rng, q_loops_over_steps,
              q_returns_the_steps_too, q_stabilises_logits_in_place),
    rewrites=(q_from_rollouts, q_from_rollouts_float32))
