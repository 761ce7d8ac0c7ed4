"""Exercise checkers (used by every notebook's check cells).

A checker calls the student's function on hand-worked and random inputs, compares with the
library's reference, and raises a `CheckFailed` (an AssertionError) whose message names the
call, the expected and the got value. A stub that still raises NotImplementedError gives an
`ExerciseNotImplemented` with a one-line message instead of a traceback into the stub.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from acteach import critic, returns, surrogate, tabular
from acteach.advantages import episode_ends, gae, td_advantage
from acteach.baselines import batch_mean_baseline, subtract_baseline
from acteach.estimators import Context, method_weights, score_weighted_sums
from acteach.nets import TableValue, ValueNet
from acteach.tabular import (TabularMDP, chain_mdp, random_mdp, sample_trajectories,
                             softmax_policy)


class CheckFailed(AssertionError):
    """The student's function gave a wrong answer; the message says where."""


class ExerciseNotImplemented(CheckFailed):
    """The exercise still holds its stub."""


# ---------------------------------------------------------------------------------------------
# Plumbing: call the student's function, compare, report
# ---------------------------------------------------------------------------------------------

def _show(x: Any) -> str:
    """A compact text for a value in a message."""
    if isinstance(x, torch.Tensor):
        x = x.detach().numpy()
    if isinstance(x, np.ndarray):
        text = np.array2string(x, precision=4, suppress_small=True, threshold=40)
        return " ".join(text.split())             # on one line: [[1. 2.] [3. 4.]]
    return repr(x)


def _call(fn: Callable, call: str, *args, **kwargs) -> Any:
    """fn(*args, **kwargs), turning a stub's NotImplementedError and any other exception into a
    one-line message that names the call."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as e:
        raise ExerciseNotImplemented(
            f"{fn.__name__} is not implemented yet ({e}): write its body, then run this cell "
            "again.") from None
    except Exception as e:  # the student's bug, reported at the call that triggered it
        raise CheckFailed(f"{call} raised {type(e).__name__}: {e}") from e


def _compare(call: str, expected: np.ndarray, got: Any, atol: float = 1e-6,
             hint: str = "") -> None:
    """Raise CheckFailed unless got has expected's shape and values (to atol)."""
    if isinstance(got, torch.Tensor):
        got = got.detach().numpy()
    if not isinstance(got, (np.ndarray, float, int, np.floating)):
        raise CheckFailed(f"{call}: expected an array, got {type(got).__name__}")
    got = np.asarray(got, dtype=np.float64)
    if got.shape != np.shape(expected):
        raise CheckFailed(f"{call}: expected shape {np.shape(expected)}, got shape {got.shape}")
    if not np.allclose(got, expected, atol=atol, rtol=1e-6):
        where = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape) if got.ndim else ()
        raise CheckFailed(
            f"{call}:\n  expected {_show(expected)}\n  got      {_show(got)}\n"
            f"  (largest difference at index {tuple(int(i) for i in where)})"
            + (f"\n  hint: {hint}" if hint else ""))


def _recognise(got: np.ndarray, expected: np.ndarray, known: list[tuple[np.ndarray, str]],
               default: str) -> str:
    """The text of the first known mistake whose answer got reproduces (and the right answer
    does not), else default."""
    for candidate, text in known:
        if not np.allclose(candidate, expected) and np.allclose(got, candidate, atol=1e-6):
            return text
    return default


def _passed(name: str, n_cases: int) -> None:
    print(f"\u2713 {name}: all {n_cases} cases agree with the library.")


# ---------------------------------------------------------------------------------------------
# Notebook 01: reward-to-go
# ---------------------------------------------------------------------------------------------

def _reward_cases(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, float, str]]:
    """(rew, mask, gamma, hint) cases: hand-worked first, then random ones with garbage padding."""
    rew = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 99.0]])
    mask = np.array([[True, True], [True, True], [True, False]])   # trajectory 1 has 2 steps
    cases = [
        (rew[:, :1], mask[:, :1], 1.0, "Q_hat_t sums the rewards from t to the end: [9, 8, 5]"),
        (rew[:, :1], mask[:, :1], 0.5,
         "with gamma = 0.5: 1 + 0.5*3 + 0.25*5 = 3.75, 3 + 0.5*5 = 5.5, 5"),
        (rew, mask, 1.0, "rew[2, 1] = 99 lies past the end of trajectory 1 (mask is False there): "
                         "it must not count, and the output is 0 there"),
    ]
    for T, N, gamma in ((6, 4, 0.9), (9, 3, 1.0), (5, 5, 0.0)):
        lengths = rng.integers(1, T + 1, size=N)
        mask = np.arange(T)[:, None] < lengths[None, :]
        rew = rng.normal(size=(T, N)).round(2)
        cases.append((rew, mask, gamma, "random case: padded steps hold garbage rewards"))
    return cases


def check_reward_to_go(fn: Callable) -> None:
    """Exercise 1.1: fn(rew, mask, gamma) must equal `acteach.returns.reward_to_go`."""
    cases = _reward_cases(np.random.default_rng(0))
    for rew, mask, gamma, hint in cases:
        call = f"reward_to_go(rew={_show(rew)}, mask={_show(mask)}, gamma={gamma})"
        got = _call(fn, call, rew.copy(), mask.copy(), gamma)
        _compare(call, returns.reward_to_go(rew, mask, gamma), got, hint=hint)
    _passed("reward_to_go", len(cases))


def _surrogate_case(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                 torch.Tensor, np.ndarray]:
    """A real tabular batch: logits (S, A) leaf tensor, logp (T, N), weights (T, N), mask (T, N)
    and the library's estimate g_hat (S, A) for these very samples and weights.

    The weights tensor carries a gradient path to the logits (its value is the reward-to-go, but
    it is built from logp), as a critic's output would: only a detached weight gives g_hat.
    """
    rng = np.random.default_rng(seed)
    mdp = chain_mdp(n_states=3)
    logits_np = rng.normal(size=(mdp.n_states, mdp.n_actions))
    batch = sample_trajectories(mdp, logits_np, n, rng)
    w_np = method_weights("reward_to_go", batch, Context(mdp.gamma))
    g_hat = score_weighted_sums(softmax_policy(logits_np), batch, w_np,
                                np.zeros(n, dtype=np.int64), 1)[0] / n
    logits = torch.tensor(logits_np, requires_grad=True)
    logp_all = torch.log_softmax(logits, dim=-1)
    logp = logp_all[torch.as_tensor(batch.obs), torch.as_tensor(batch.act)]
    mask = torch.as_tensor(batch.mask)    # padded steps hold state 0, action 0: real log-probs
    w = torch.where(mask, torch.as_tensor(w_np), torch.full_like(logp, 7.0))   # garbage weights
    weights = w * torch.exp(logp - logp.detach())     # same value as w, but not a constant
    return logits, logp, weights, mask, g_hat


def check_policy_gradient_surrogate(fn: Callable) -> None:
    """Exercise 1.2: the autograd gradient of fn(logp, weights, mask) w.r.t. the logits must be
    the library's estimate g_hat = (1/N) sum_n sum_t grad log pi(a_t|s_t) * w_t."""
    cases = [(0, 1), (1, 5), (2, 32)]
    for seed, n in cases:
        logits, logp, weights, mask, g_hat = _surrogate_case(seed, n)
        call = f"policy_gradient_surrogate(logp, weights, mask) on {n} chain trajectories"
        value = _call(fn, call, logp, weights, mask)
        if not isinstance(value, torch.Tensor) or value.dim() != 0:
            raise CheckFailed(f"{call}: expected a scalar torch tensor, got {_show(value)}")
        if not value.requires_grad:
            raise CheckFailed(f"{call}: the result has no autograd graph; build it from logp")
        (grad,) = torch.autograd.grad(value, logits)
        _compare(f"the gradient of {call} w.r.t. the logits", g_hat, grad, hint=(
            "the weights must be constants (detach them), padded steps (mask False) must count "
            "for nothing, and the sum is divided by N, the number of trajectories"))
        ref_value = surrogate.policy_gradient_surrogate(logp, weights, mask)
        _compare(call, ref_value.detach().numpy(), value,
                 hint="the value too: (1/N) * sum of mask * logp * weights")
    _passed("policy_gradient_surrogate", len(cases))


# ---------------------------------------------------------------------------------------------
# Notebook 02: use Q
# ---------------------------------------------------------------------------------------------


#: Statistical tolerances of check_q_from_rollouts (see its docstring), and the seed of the
#: batch of its random-MDP case.
Q_COPIES, Q_MEAN_Z, Q_SPREAD_BAND = 1000, 5.0, (0.8, 1.25)
RANDOM_CASE_SEED = 0


def _return_moments(mdp: TabularMDP, logits: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finite horizon H only. The mean Q[t, s, a] and variance Var[t, s, a] of the return of one
    rollout from (s, a) taken at step t, and V[t, s]: (H, S, A), (H, S, A), (H+1, S).
    Backwards in time, with G = r(s, a) + gamma G' (r is deterministic given (s, a)):
    E[G] = r + gamma E[V'],  E[G^2] = r^2 + 2 gamma r E[V'] + gamma^2 E[W'],  W = E[G^2 | s]."""
    pi, live, g = softmax_policy(logits), ~mdp.terminal, mdp.gamma
    H, (S, A) = mdp.horizon, mdp.R.shape
    V, W = np.zeros((H + 1, S)), np.zeros((H + 1, S))
    Q, M2 = np.zeros((H, S, A)), np.zeros((H, S, A))
    for t in reversed(range(H)):
        ev, ew = mdp.P @ (V[t + 1] * live), mdp.P @ (W[t + 1] * live)
        Q[t] = mdp.R + g * ev
        M2[t] = mdp.R ** 2 + 2 * g * mdp.R * ev + g ** 2 * ew
        V[t], W[t] = (pi * Q[t]).sum(axis=1) * live, (pi * M2[t]).sum(axis=1) * live
    return Q, np.maximum(M2 - Q ** 2, 0.0), V


def _q_cases() -> list[tuple[str, TabularMDP, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
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
    """Zeros of got's shape if it is an array (so `_compare` against zeros checks the type and
    the shape only), else got itself (so `_compare` reports its type)."""
    return np.zeros(tuple(got.shape)) if isinstance(got, (np.ndarray, torch.Tensor)) else got


def _check_q_case(fn: Callable, label: str, mdp: TabularMDP, logits: np.ndarray,
                  obs: np.ndarray, act: np.ndarray, mask: np.ndarray, k: int) -> None:
    T, N = mask.shape
    call = f"q_from_rollouts(mdp, logits, obs, act, mask, k={k}, rng) on {label}, N = {N}"

    def run(o, a, m, seed):
        return _call(fn, call, mdp, logits, o.copy(), a.copy(), m.copy(), k,
                     np.random.default_rng(seed))

    # exact checks on the batch itself
    with _CountCalls(fn) as counter:
        got = run(obs, act, mask, 1)
    _compare(call, np.zeros((T, N)), _shape_only(got))            # an array of shape (T, N)
    got = np.asarray(got.detach().numpy() if isinstance(got, torch.Tensor) else got,
                     dtype=np.float64)
    if not np.all(np.isfinite(got)):
        raise CheckFailed(f"{call}: expected finite numbers, got {_show(got)}")
    _compare(f"{call}, at the padded steps (mask False)", np.zeros(int((~mask).sum())),
             got[~mask], hint="padded steps are not steps: leave them 0, roll out nothing there")
    if counter.calls > T:
        raise CheckFailed(
            f"{call}, calls of rollout_returns: expected at most T = {T}, got {counter.calls}\n"
            "  hint: one call does it all (np.repeat each valid step's state, action and t k "
            "times); do not loop over trajectories or rollouts")
    if not np.array_equal(got, np.asarray(run(obs, act, mask, 1), dtype=np.float64)):
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
    _compare(call_m, np.zeros((T, N * M)), _shape_only(many))
    many = many.reshape(T, M, N)
    Q, Var, V = _return_moments(mdp, logits)
    t, n = np.nonzero(mask)
    s, a = obs[t, n], act[t, n]
    truth, var = Q[t, s, a], Var[t, s, a] / k                    # per valid step
    mean = many[t, :, n].mean(axis=1)
    se = np.sqrt(var / M)
    excess = np.abs(mean - truth) / (Q_MEAN_Z * se + 1e-9)
    worst = int(np.argmax(excess))
    if not excess[worst] <= 1.0:
        z = abs(mean[worst] - truth[worst]) / se[worst] if se[worst] > 0 else np.inf
        raise CheckFailed(
            f"{call_m}: at step t = {t[worst]} of trajectory n = {n[worst]} "
            f"(s_t = {s[worst]}, a_t = {a[worst]}), the mean of the {M} estimates:\n"
            f"  expected Q^pi_t(s_t, a_t) = {truth[worst]:.4f} (standard error {se[worst]:.2g})\n"
            f"  got      {mean[worst]:.4f}  ({z:.1f} standard errors off; "
            f"{Q_MEAN_Z:g} accepted)\n"
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
    correct function fails this with probability below 1e-5 over all steps); and the variance
    of the estimates, summed over the valid steps, is sum Var_t / k to a ratio in [0.8, 1.25]
    (a correct function's ratio is 1 within about 0.05).
    """
    cases = _q_cases()
    for case in cases:
        _check_q_case(fn, *case)
    print(f"\u2713 q_from_rollouts: all {len(cases)} cases agree with the exact Q^pi "
          f"(means within {Q_MEAN_Z:g} standard errors, variance Var/k).")


# ---------------------------------------------------------------------------------------------
# Notebook 03: baselines
# ---------------------------------------------------------------------------------------------


def _loo_cases(rng: np.random.Generator) -> list[tuple[np.ndarray, int, str]]:
    """(returns, group_size, hint) cases: hand-worked first, then random ones."""
    r = np.array([1.0, 2.0, 3.0, 4.0])
    cases = [
        (r, 2, "groups [1, 2] and [3, 4]: each b_n is the return of the OTHER trajectory of its "
               "group -> [2, 1, 4, 3]"),
        (r, 4, "one group of 4: b_0 = (2 + 3 + 4) / 3 = 3, b_3 = (1 + 2 + 3) / 3 = 2 (divide by "
               "group_size - 1, the number of other returns)"),
        (np.array([6.0, 0.0, 3.0, 10.0, -2.0, 4.0]), 3,
         "two groups of 3: b_0 = (0 + 3) / 2 = 1.5 uses only its own group; b_3 = (-2 + 4) / 2 = 1"),
        (np.array([5.0, -1.0, 2.0]), 1, "group_size = 1: a trajectory alone in its estimate has no "
                                        "other return to average, so its baseline is 0"),
    ]
    for n, g in ((12, 3), (10, 5), (8, 8), (6, 1), (20, 2)):
        cases.append((rng.normal(size=n).round(2) * 10, g,
                      f"random case: {n // g} groups of {g} consecutive returns"))
    return cases


def _loo_hint(ret: np.ndarray, group_size: int, got: Any, hint: str) -> str:
    """Name the mistake the got value matches, if it matches a known one; else `hint`."""
    if isinstance(got, torch.Tensor):
        got = got.detach().numpy()
    if not isinstance(got, np.ndarray) or got.shape != ret.shape or group_size == 1:
        return hint
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
    expected = batch_mean_baseline(ret, group_size, leave_one_out=True)
    for value, text in known:
        if not np.allclose(value, expected) and np.allclose(got, value, atol=1e-6):
            return text
    return hint


def check_loo_baseline(fn: Callable) -> None:
    """Exercise 3.1: fn(returns, group_size) must equal
    `acteach.baselines.batch_mean_baseline(returns, group_size, leave_one_out=True)`."""
    cases = _loo_cases(np.random.default_rng(3))
    for ret, group_size, hint in cases:
        call = f"loo_baseline(returns={_show(ret)}, group_size={group_size})"
        got = _call(fn, call, ret.copy(), group_size)
        expected = batch_mean_baseline(ret, group_size, leave_one_out=True)
        _compare(call, expected, got, hint=_loo_hint(ret, group_size, got, hint))
    _passed("loo_baseline", len(cases))


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


def _advantage_hint(rew: np.ndarray, mask: np.ndarray, value: np.ndarray, gamma: float,
                    got: Any, hint: str) -> str:
    """Name the mistake the got value matches, if it matches a known one; else `hint`."""
    if isinstance(got, torch.Tensor):
        got = got.detach().numpy()
    if not isinstance(got, np.ndarray) or got.shape != rew.shape:
        return hint
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
    expected = subtract_baseline(rtg, value, mask)
    return _recognise(got, expected, known, hint)


def check_advantage_weights(fn: Callable) -> None:
    """Exercise 3.2: fn(rew, mask, value, gamma) must equal the library's weights
    Q_hat_t - V(s_t) on the valid steps, 0 elsewhere:
    `subtract_baseline(reward_to_go(rew, mask, gamma), value, mask)`."""
    cases = _advantage_cases(np.random.default_rng(4))
    for rew, mask, value, gamma, hint in cases:
        call = (f"advantage_weights(rew={_show(rew)}, mask={_show(mask)}, value={_show(value)}, "
                f"gamma={gamma})")
        got = _call(fn, call, rew.copy(), mask.copy(), value.copy(), gamma)
        expected = subtract_baseline(returns.reward_to_go(rew, mask, gamma), value, mask)
        _compare(call, expected, got, hint=_advantage_hint(rew, mask, value, gamma, got, hint))
    _passed("advantage_weights", len(cases))


# ---------------------------------------------------------------------------------------------
# Notebook 05: discount
# ---------------------------------------------------------------------------------------------


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


def _reference_td(c: dict) -> np.ndarray:
    return td_advantage(c["rew"], c["value"], c["next_value"], c["terminated"], c["mask"],
                        c["gamma"])


def _td_hint(c: dict, got: Any, hint: str) -> str:
    """Name the mistake the got value matches, if it matches a known one; else `hint`."""
    if isinstance(got, torch.Tensor):
        got = got.detach().numpy()
    if not isinstance(got, np.ndarray) or got.shape != c["rew"].shape:
        return hint
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
    expected = _reference_td(c)
    return _recognise(got, expected, known, hint)


def check_discounted_td_advantage(fn: Callable) -> None:
    """Exercise 5.1: fn(rew, value, next_value, terminated, truncated, mask, gamma) must equal
    `acteach.advantages.td_advantage(rew, value, next_value, terminated, mask, gamma)`:
    r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t) on valid steps, 0 elsewhere (truncated
    steps bootstrap; a step both terminated and truncated counts as terminated)."""
    cases = _td_cases(np.random.default_rng(5))
    for c, hint in cases:
        call = ("discounted_td_advantage(" + ", ".join(
            f"{k}={_show(v)}" for k, v in c.items()) + ")")
        got = _call(fn, call, **{k: (v.copy() if isinstance(v, np.ndarray) else v)
                                 for k, v in c.items()})
        _compare(call, _reference_td(c), got, hint=_td_hint(c, got, hint))
    _passed("discounted_td_advantage", len(cases))


# ---------------------------------------------------------------------------------------------
# Notebook 04: fitting V
# ---------------------------------------------------------------------------------------------


def _critic_cases(rng: np.random.Generator) -> list[tuple[str, torch.nn.Module, tuple, str]]:
    """(label, critic, (obs, rew, next_obs, terminated, mask, gamma), hint): a hand-worked case
    on a table critic, then random ones on a small float64 network. Every case has a truncated
    step (it bootstraps from next_obs, which differs from obs[t + 1]), a terminated step whose
    next state has a large value, and padding holding garbage observations and rewards."""
    table = TableValue(5, init=[1.0, 2.0, 3.0, 4.0, 50.0])      # state 4: terminal, V = 50
    # column 0: 0 -> 1 -> 2 -> terminal 4;  column 1: 3 -> 0 -> 3, cut by a time limit after
    # 2 steps (next_obs[1, 1] = 3 is the real next state; obs[2, 1] = 2 is padding)
    obs = torch.tensor([[0, 3], [1, 0], [2, 2]])
    next_obs = torch.tensor([[1, 0], [2, 3], [4, 1]])
    rew = torch.tensor([[1.0, 2.0], [1.0, -1.0], [10.0, 99.0]], dtype=torch.float64)
    terminated = torch.tensor([[False, False], [False, False], [True, False]])
    mask = torch.tensor([[True, True], [True, True], [True, False]])
    cases = [("a 5-state table V = [1, 2, 3, 4, 50], gamma = 0.5", table,
              (obs, rew, next_obs, terminated, mask, 0.5),
              "the valid steps' TD errors y_hat - V(s_t) are [[1, -1.5], [0.5, 0], [7, -]]: "
              "step (2, 0) terminated, so y_hat = r = 10 (V(next_obs) = 50 must not count); step "
              "(2, 1) is padding; the loss is the mean of the 5 squares, 10.5")]
    for T, N, gamma in ((5, 4, 0.9), (6, 3, 1.0), (4, 5, 0.7)):
        torch.manual_seed(int(rng.integers(1 << 30)))
        net = ValueNet(obs_dim=3, hidden=(8,)).double()
        lengths = rng.integers(2, T + 1, size=N)
        lengths[0] = T                                   # one column fills the whole batch
        valid = np.arange(T)[:, None] < lengths
        states = rng.normal(size=(T + 1, N, 3))
        nxt = states[1:].copy()
        last = lengths - 1
        ends = rng.random(N) < 0.5                       # terminated, else truncated
        nxt[last, np.arange(N)] = rng.normal(size=(N, 3))    # the true final observation
        term = np.zeros((T, N), dtype=bool)
        term[last[ends], np.flatnonzero(ends)] = True
        garbage = ~valid
        o = np.where(valid[..., None], states[:-1], 10 * rng.normal(size=(T, N, 3)))
        nxt = np.where(valid[..., None], nxt, 10 * rng.normal(size=(T, N, 3)))
        r = np.where(valid, rng.normal(size=(T, N)).round(2), 99.0)
        term |= garbage & (rng.random((T, N)) < 0.5)     # flags in padding are garbage too
        cases.append((f"random {T}x{N} batch, a small network, gamma = {gamma}", net,
                      (torch.tensor(o), torch.tensor(r), torch.tensor(nxt), torch.tensor(term),
                       torch.tensor(valid), gamma),
                      "random case: padded steps hold garbage observations, rewards and flags"))
    return cases


def _grads(loss: torch.Tensor, net: torch.nn.Module) -> np.ndarray:
    """d loss / d (all the critic's parameters), flattened; 0 for parameters it does not use."""
    params = list(net.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return np.concatenate([np.zeros(p.numel()) if g is None else g.detach().reshape(-1).numpy()
                           for p, g in zip(params, grads)])


def _critic_loss_hint(net, args: tuple, got: float, hint: str) -> str:
    """Name the mistake the got value matches, if it matches a known one; else `hint`."""
    obs, rew, next_obs, terminated, mask, gamma = args
    never = torch.zeros_like(terminated)
    shifted = torch.cat([obs[1:], obs[-1:]])                # obs[t + 1] (last row repeated)
    everywhere = torch.ones_like(mask)
    with torch.no_grad():
        v, v_next = net(obs), net(next_obs)
        errors = rew + gamma * torch.where(terminated, 0.0, v_next) - v
        known = [
            (critic.critic_loss(net, obs, rew, next_obs, never, mask, gamma),
             "a terminated step has no next value: y_hat = r there (multiply V(next_obs) by "
             "1 - terminated)"),
            (critic.critic_loss(net, obs, rew, shifted, terminated, mask, gamma),
             "V(s_{t+1}) is the critic at next_obs[t], not at obs[t + 1]: after a truncation (or "
             "at the end of a padded column) obs[t + 1] is padding, not the next state"),
            (critic.critic_loss(net, obs, rew, obs, terminated, mask, gamma),
             "the target uses the NEXT state: V(next_obs[t]), not V(obs[t])"),
            (critic.critic_loss(net, obs, rew, next_obs, terminated, mask, 1.0),
             f"discount the next value with gamma = {gamma}"),
            ((torch.where(mask, errors, 0.0) ** 2).sum() / mask.shape[1],
             "a mean over the valid steps: divide by their number (mask.sum()), not by N"),
            ((torch.where(mask, errors, 0.0) ** 2).sum() / mask.numel(),
             "a mean over the valid steps: divide by their number (mask.sum()), not by all T*N "
             "cells"),
            ((torch.where(mask, errors, 0.0) ** 2).sum(),
             "a mean over the valid steps, not a sum"),
            ((errors ** 2).mean(), "padded steps (mask False) must count for nothing: average "
                                   "over the valid steps only"),
            (critic.critic_loss(net, obs, rew, next_obs, terminated, everywhere, gamma),
             "padded steps (mask False) must count for nothing: average over the valid steps "
             "only"),
        ]
    expected = critic.critic_loss(net, obs, rew, next_obs, terminated, mask, gamma).item()
    for value, text in known:
        value = float(value)
        if not np.isclose(value, expected) and np.isclose(got, value, rtol=1e-6, atol=1e-8):
            return text
    return hint


def check_critic_loss(fn: Callable) -> None:
    """Exercise 4.1: fn(value_net, obs, rew, next_obs, terminated, mask, gamma) must be a scalar
    tensor with the value of `acteach.critic.critic_loss` (the mean over the valid steps of
    (SG[r + gamma (1 - terminated) V(next_obs)] - V(obs))^2) and the same gradient w.r.t. the
    critic's parameters: the target detached, so only V(obs) is moved."""
    cases = _critic_cases(np.random.default_rng(4))
    for label, net, args, hint in cases:
        obs, rew, next_obs, terminated, mask, gamma = args
        call = (f"critic_loss(value_net, obs, rew, next_obs, terminated, mask, gamma={gamma}) on "
                f"{label}")
        copies = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
        got = _call(fn, call, net, *copies)
        if not isinstance(got, torch.Tensor) or got.dim() != 0:
            raise CheckFailed(f"{call}: expected a scalar torch tensor, got {_show(got)}")
        if not got.requires_grad:
            raise CheckFailed(f"{call}: the result has no autograd graph; compute it from "
                              "value_net's outputs (V(obs) must keep its gradient)")
        expected = critic.critic_loss(net, *args)
        _compare(call, expected.detach().numpy(), got,
                 hint=_critic_loss_hint(net, args, float(got.detach()), hint))
        wanted, residual = _grads(expected, net), _grads(critic.residual_loss(net, *args), net)
        got_grad = _grads(got, net)
        grad_hint = ("the target is a constant: detach V(next_obs) (SG in the lecture), so the "
                     "gradient only moves V(obs)" if np.allclose(got_grad, residual, atol=1e-6)
                     else "only V(obs) carries a gradient; the target is detached")
        _compare(f"the gradient of {call} w.r.t. the critic's parameters", wanted, got_grad,
                 hint=grad_hint)
    _passed("critic_loss", len(cases))


# ---------------------------------------------------------------------------------------------
# Notebook 06: batch actor-critic
# ---------------------------------------------------------------------------------------------

def _actor_critic_cases(rng: np.random.Generator) -> list[tuple[str, tuple, dict]]:
    """(label, (policy, critic, obs, act, rew, next_obs, terminated, mask, gamma), named):
    random float64 batches on small networks. Every case has a terminated step whose next
    observation has a nonzero value, a truncated column, and padding with garbage obs and rew."""
    from acteach.nets import CategoricalPolicy

    cases = []
    for T, N, gamma in ((4, 3, 0.9), (5, 2, 1.0), (3, 4, 0.8)):
        torch.manual_seed(int(rng.integers(1 << 30)))
        policy = CategoricalPolicy(3, 2, hidden=(8,)).double()
        net = ValueNet(obs_dim=3, hidden=(8,)).double()
        lengths = rng.integers(2, T + 1, size=N)
        lengths[0] = T
        valid = np.arange(T)[:, None] < lengths
        states = rng.normal(size=(T + 1, N, 3))
        nxt = states[1:].copy()
        last = lengths - 1
        ends = np.arange(N) % 2 == 0                     # even columns terminate, odd are cut
        nxt[last, np.arange(N)] = rng.normal(size=(N, 3))
        term = np.zeros((T, N), dtype=bool)
        term[last[ends], np.flatnonzero(ends)] = True
        o = np.where(valid[..., None], states[:-1], 10 * rng.normal(size=(T, N, 3)))
        nxt = np.where(valid[..., None], nxt, 10 * rng.normal(size=(T, N, 3)))
        r = np.where(valid, rng.normal(size=(T, N)).round(2), 99.0)
        act = np.where(valid, rng.integers(0, 2, size=(T, N)), 0)
        args = (policy, net, torch.tensor(o), torch.tensor(act), torch.tensor(r),
                torch.tensor(nxt), torch.tensor(term), torch.tensor(valid), gamma)
        cases.append((f"random {T}x{N} batch, small networks, gamma = {gamma}", args))
    return cases


def _actor_loss_hint(args: tuple, got: float, expected: float) -> str:
    """Name the mistake a wrong actor loss matches, if a known one."""
    from acteach.actor_critic import actor_critic_losses

    policy, net, obs, act, rew, next_obs, terminated, mask, gamma = args
    never = torch.zeros_like(terminated)
    with torch.no_grad():
        no_mask = float(actor_critic_losses(policy, net, obs, act, rew, next_obs, never, mask,
                                            gamma)[0])
    if np.isclose(got, -expected, rtol=1e-6, atol=1e-9):
        return ("wrong sign: the optimiser minimises, so the actor loss is MINUS the surrogate "
                "(1/N) sum mask * log pi * A")
    if not np.isclose(no_mask, expected) and np.isclose(got, no_mask, rtol=1e-6, atol=1e-9):
        return ("a terminated step has no next value: A = r - V(s) there (multiply V(next_obs) "
                "by 1 - terminated)")
    return ("actor_loss = -(1/N) sum over valid steps of log pi(a|s) * A, with A = r + gamma "
            "(1 - terminated) V(next_obs) - V(obs); divide by N (columns), not by the step count")


def check_actor_critic_losses(fn: Callable) -> None:
    """Exercise 6.1: fn(policy, critic, obs, act, rew, next_obs, terminated, mask, gamma) must
    return (actor_loss, critic_loss), scalar tensors with the values and gradients of
    `acteach.actor_critic.actor_critic_losses`: the advantage detached (the actor loss moves no
    critic parameter), the critic's target detached, no bootstrap after a terminated step."""
    from acteach.actor_critic import actor_critic_losses

    cases = _actor_critic_cases(np.random.default_rng(6))
    for label, args in cases:
        policy, net = args[0], args[1]
        gamma = args[-1]
        call = (f"actor_critic_losses(policy, critic, obs, act, rew, next_obs, terminated, mask, "
                f"gamma={gamma}) on {label}")
        copies = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
        got = _call(fn, call, *copies)
        if not isinstance(got, tuple) or len(got) != 2:
            raise CheckFailed(f"{call}: expected a pair (actor_loss, critic_loss), got "
                              f"{type(got).__name__}")
        for name, x in zip(("actor_loss", "critic_loss"), got):
            if not isinstance(x, torch.Tensor) or x.dim() != 0:
                raise CheckFailed(f"{call}: {name} should be a scalar torch tensor, got {_show(x)}")
            if not x.requires_grad:
                raise CheckFailed(f"{call}: {name} has no autograd graph; compute it from the "
                                  "networks' outputs")
        actor, crit = actor_critic_losses(*args)
        _compare(f"{call}, actor_loss", actor.detach().numpy(), got[0],
                 hint=_actor_loss_hint(args, float(got[0].detach()), float(actor.detach())))
        _compare(f"{call}, critic_loss", crit.detach().numpy(), got[1],
                 hint="critic_loss = mean over the valid steps of (SG[r + gamma (1 - terminated) "
                      "V(next_obs)] - V(obs))^2, as in exercise 4.1")
        _compare(f"the gradient of {call}'s actor_loss w.r.t. the policy", _grads(actor, policy),
                 _grads(got[0], policy), hint="the advantage is a constant weight of log pi")
        _compare(f"the gradient of {call}'s actor_loss w.r.t. the critic", np.zeros(
                 sum(p.numel() for p in net.parameters())), _grads(got[0], net),
                 hint="detach the advantage: the actor's step must not move V_phi (SG[A])")
        _compare(f"the gradient of {call}'s critic_loss w.r.t. the critic", _grads(crit, net),
                 _grads(got[1], net),
                 hint="detach the target r + gamma (1 - terminated) V(next_obs): only V(obs) "
                      "is moved (SG[y_hat])")
    _passed("actor_critic_losses", len(cases))


# ---------------------------------------------------------------------------------------------
# Notebook 07: the valid steps of a vector-env rollout
# ---------------------------------------------------------------------------------------------

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
    from acteach.actor_critic import valid_steps
    if np.array_equal(got_mask, valid_steps(terminated, truncated, np.zeros_like(autoreset))[0]):
        return ("the first step of an env whose previous step (in the last rollout) ended an "
                "episode is a reset step: start from the autoreset argument")
    if np.array_equal(got_mask, valid_steps(terminated, np.zeros_like(truncated), autoreset)[0]):
        return "a truncated episode ends too: the env resets after it as after a termination"
    return "mask[t] is False exactly where the env's previous step ended an episode"


def check_valid_steps(fn: Callable) -> None:
    """Exercise 7.1: fn(terminated, truncated, autoreset) must return (mask, autoreset) as
    `acteach.actor_critic.valid_steps` does, on hand-worked and random next-step-autoreset
    rollouts."""
    from acteach.actor_critic import valid_steps

    cases = _valid_steps_cases(np.random.default_rng(7))
    for label, args in cases:
        call = f"valid_steps(terminated, truncated, autoreset) on {label}"
        got = _call(fn, call, *(a.copy() for a in args))
        if not isinstance(got, tuple) or len(got) != 2:
            raise CheckFailed(f"{call}: expected a pair (mask, autoreset), got "
                              f"{type(got).__name__}")
        mask, carry = valid_steps(*args)
        got_mask = np.asarray(got[0])
        hint = _valid_steps_hint(args, got_mask.astype(bool)) if got_mask.shape == mask.shape \
            else ""
        if len(args[0]) <= 6:
            call += (f"\n  terminated.T = {_show(args[0].T.astype(int))}, truncated.T = "
                     f"{_show(args[1].T.astype(int))}, autoreset = {_show(args[2].astype(int))}")
        _compare(f"{call}\n  mask", mask.astype(float), got_mask.astype(float), hint=hint)
        _compare(f"{call}\n  autoreset returned", carry.astype(float),
                 np.asarray(got[1]).astype(float),
                 hint="return the autoreset flags after the last step: True where the last "
                      "step was valid and ended an episode")
    _passed("valid_steps", len(cases))


# ---------------------------------------------------------------------------------------------
# Notebook 09: n-step returns and GAE
# ---------------------------------------------------------------------------------------------

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


def _reference_gae(c: dict) -> np.ndarray:
    return gae(*(c[k] for k in GAE_ARGUMENTS))


def _backward(delta: np.ndarray, stop: np.ndarray, factor: float) -> np.ndarray:
    """A_t = delta_t + factor * A_{t+1}, A_{t+1} taken as 0 where stop_t."""
    adv, following = np.zeros_like(delta), np.zeros(delta.shape[1])
    for t in reversed(range(len(delta))):
        adv[t] = following = delta[t] + factor * np.where(stop[t], 0.0, following)
    return adv


def _gae_hint(c: dict, got: Any, hint: str) -> str:
    """Name the mistake the got value matches, if it matches a known one; else `hint`."""
    if isinstance(got, torch.Tensor):
        got = got.detach().numpy()
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
    expected = _reference_gae(c)
    return _recognise(got, expected, known, hint)


def check_gae(fn: Callable) -> None:
    """Exercise 9.1: fn(rew, value, next_value, terminated, truncated, mask, gamma, lam) on
    (T, N) arrays must equal `acteach.advantages.gae`: delta_t = r_t + gamma (1 - terminated_t)
    V(s_{t+1}) - V(s_t), A_t = delta_t + gamma lam A_{t+1} with the recursion cut wherever an
    episode ends (terminated or truncated, or the last valid step before a masked one), and 0
    on masked steps. Hand-worked cases include a truncation in the middle of a vector-env
    column followed by a masked autoreset step, and one followed directly by the next episode."""
    cases = _gae_cases(np.random.default_rng(9))
    for c, hint in cases:
        call = "gae(" + ", ".join(f"{k}={_show(c[k])}" for k in GAE_ARGUMENTS) + ")"
        got = _call(fn, call, **{k: (v.copy() if isinstance(v, np.ndarray) else v)
                                 for k, v in c.items()})
        _compare(call, _reference_gae(c), got, hint=_gae_hint(c, got, hint))
    _passed("gae", len(cases))


# ---------------------------------------------------------------------------------------------
# Notebook 08: the critic's target with a fresh next action
# ---------------------------------------------------------------------------------------------

Q_TARGET_ARGUMENTS = ("rew", "next_obs", "next_act", "terminated", "truncated", "gamma", "alpha")


class _GivenPolicy(torch.nn.Module):
    """Stands in for pi in the hand-worked case: `sample` returns given 'fresh' next actions and
    log-probabilities, both times a parameter w = 1, so that they carry a gradient as a real
    policy's do."""

    def __init__(self, act: list, logp: list):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(1.0))
        self.given_act, self.given_logp = torch.tensor(act), torch.tensor(logp)

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.w * self.given_act, self.w * self.given_logp


class _LinearTwinQ(torch.nn.Module):
    """Q_1(s, a) = w (s_0 + s_1 + 10 a), Q_2(s, a) = w (s_0 + s_1 + 20 a), w = 1 a parameter:
    (2, B) like `off_policy.TwinQ`."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(1.0))

    def forward(self, obs: torch.Tensor, act: torch.Tensor, frozen: bool = False
                ) -> torch.Tensor:
        base = obs.sum(dim=-1)
        return self.w * torch.stack([base + 10 * act[:, 0], base + 20 * act[:, 0]])


def _q_target_cases(rng: np.random.Generator) -> list[tuple[str, Any, Any, dict, int, str]]:
    """(label, policy, target_critic, arguments, generator seed, hint) cases: the hand-worked
    batch, then random batches with a real squashed Gaussian policy and twin critics whose
    parameters require a gradient. Every batch has terminated rows (with a nonzero next value),
    truncated-only rows, a row with both flags, and buffer next actions unlike pi's."""
    from acteach.off_policy import SquashedGaussianPolicy, TwinQ

    b = torch.tensor
    hand = dict(rew=b([1.0, 2.0, 3.0, -1.0, 0.5]),
                next_obs=b([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 1.0], [2.0, 2.0]]),
                next_act=b([[0.9], [0.9], [0.9], [-0.9], [0.9]]),
                terminated=b([False, True, False, False, True]),
                truncated=b([False, False, True, False, True]), gamma=0.5, alpha=0.1)
    cases = [("the hand-worked batch of 5 transitions", _GivenPolicy(
        [[0.5], [-0.5], [0.25], [-0.5], [0.5]], [-1.0, 0.0, 1.0, 0.0, -2.0]), _LinearTwinQ(),
        hand, 0,
        "gamma = 0.5, alpha = 0.1, Q'_1 = s'_0 + s'_1 + 10 a', Q'_2 = s'_0 + s'_1 + 20 a', "
        "fresh a' = (0.5, -0.5, 0.25, -0.5, 0.5), log pi(a'|s') = (-1, 0, 1, 0, -2). Row 0: "
        "min(6, 11) = 6, y = 1 + 0.5 (6 + 0.1) = 4.05; row 1 terminated: y = 2; row 2 only "
        "truncated, bootstraps: y = 3 + 0.5 (5.5 - 0.1) = 5.7; row 3: min(-4, -9) = -9, "
        "y = -1 + 0.5 (-9) = -5.5; row 4 terminated (and truncated): y = 0.5")]
    for B, D, A_d, gamma, alpha in ((8, 3, 1, 0.99, 0.2), (16, 3, 2, 0.9, 1.0),
                                    (32, 4, 1, 0.5, 0.05)):
        with torch.random.fork_rng():
            torch.manual_seed(int(rng.integers(1 << 30)))
            policy = SquashedGaussianPolicy(D, A_d, hidden=(16,))
            twin_q = TwinQ(D, A_d, hidden=(16,))
            with torch.no_grad():                  # spread Q's values (fresh init is ~0)
                twin_q.weights[-1].mul_(20.0)
        flags = rng.integers(0, 4, size=B)         # 0 neither, 1 terminated, 2 truncated, 3 both
        flags[:4] = (0, 1, 2, 3)
        args = dict(rew=torch.tensor(rng.normal(size=B).round(2), dtype=torch.float32),
                    next_obs=torch.tensor(rng.normal(size=(B, D)), dtype=torch.float32),
                    next_act=torch.tensor(rng.uniform(-1, 1, size=(B, A_d)),
                                          dtype=torch.float32),
                    terminated=torch.tensor((flags == 1) | (flags == 3)),
                    truncated=torch.tensor(flags >= 2), gamma=gamma, alpha=alpha)
        cases.append((f"a random batch of {B} transitions (obs dim {D}, action dim {A_d}), a "
                      "real squashed Gaussian policy and twin critics", policy, twin_q, args,
                      int(rng.integers(1 << 30)), "y = r + gamma (1 - terminated) [min_j "
                      "Q'_j(s', a') - alpha log pi(a'|s')], a' ~ pi(.|s') drawn with "
                      "policy.sample(next_obs, generator)"))
    return cases


def _copies(args: dict) -> dict:
    return {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in args.items()}


def _q_target_variant(policy: Any, twin_q: Any, c: dict, seed: int, *, act: str = "fresh",
                      combine: str = "min", entropy: float = -1.0, use_alpha: bool = True,
                      use_gamma: bool = True, second_draw: bool = False) -> torch.Tensor:
    """The target with one deliberate change (the default arguments give the right one)."""
    with torch.no_grad():
        generator = torch.Generator().manual_seed(seed)
        next_act, logp = policy.sample(c["next_obs"], generator)
        if second_draw:                         # log pi of ANOTHER draw than the a' used
            logp = policy.sample(c["next_obs"], generator)[1]
        if act == "buffer":
            next_act = c["next_act"]
        q = twin_q(c["next_obs"], next_act)
        q = {"min": q.amin(dim=0), "mean": q.mean(dim=0), "max": q.amax(dim=0),
             "first": q[0], "second": q[1]}[combine]
        soft = q + entropy * (c["alpha"] if use_alpha else 1.0) * logp
        gamma = c["gamma"] if use_gamma else 1.0
        return c["rew"] + gamma * torch.where(c["terminated"], 0.0, soft)


def _same(a: Any, b: torch.Tensor) -> bool:
    if not isinstance(a, torch.Tensor) or a.shape != b.shape:
        return False
    return bool(torch.allclose(a.detach().to(b.dtype), b, atol=1e-4, rtol=1e-5))


def _q_target_hint(fn: Callable, policy: Any, twin_q: Any, c: dict, seed: int, got: Any,
                   expected: torch.Tensor, hint: str) -> str:
    """Name the mistake: first by probing fn (does it read the buffer's next action, or
    truncated; is it reproducible with the same generator; is y = r after a termination), then
    by matching got against known wrong targets; else `hint`."""
    def again(global_seed: int | None = None, **change: Any) -> Any:
        """fn once more; the global torch RNG as for the first call unless global_seed."""
        try:
            with torch.random.fork_rng():
                if global_seed is not None:
                    torch.manual_seed(global_seed)
                return fn(policy, twin_q, **{**_copies(c), **change},
                          generator=torch.Generator().manual_seed(seed))
        except Exception:
            return None

    if not _same(again(global_seed=seed + 1), got.detach()):
        return ("the target changes with torch's global random state: draw a' with "
                "policy.sample(next_obs, generator), passing the generator (without it the "
                "check cannot reproduce your draw)")
    flipped = c["next_act"].flip(0) * -0.5
    if not _same(again(next_act=flipped), got.detach()):
        return ("the target uses the buffer's next action: a' must be drawn FRESH from the "
                "current policy, a', log pi = policy.sample(next_obs, generator); the buffer's "
                "next_act is what an OLD policy did in s' (with it you learn Q of the old "
                "policy)")
    term = c["terminated"]
    if not torch.allclose(got.detach()[term].to(expected.dtype), c["rew"][term].to(
            expected.dtype), atol=1e-4):
        return ("a terminated transition has no next value: y = r there (multiply the soft "
                "value of s' by 1 - terminated, or torch.where(terminated, 0, ...))")
    if not _same(again(truncated=~c["truncated"]), got.detach()):
        return ("the target depends on truncated: a time limit is not a terminal state, s' "
                "still has a value and y bootstraps from it; only terminated stops the "
                "bootstrap")
    known = [
        (dict(entropy=0.0), "the entropy term is missing: the soft value of s' is min_j "
                            "Q'_j(s', a') - alpha log pi(a'|s')"),
        (dict(entropy=1.0), "wrong sign of the entropy term: the soft value is min_j Q'_j(s', "
                            "a') MINUS alpha log pi(a'|s') (-log pi is the entropy bonus)"),
        (dict(use_alpha=False), f"the entropy term is weighted by the temperature alpha = "
                                f"{c['alpha']}: - alpha log pi(a'|s')"),
        (dict(combine="mean"), "take the MIN of the two target critics (target_critic returns "
                               "(2, B)), not their mean: the min counters overestimation"),
        (dict(combine="max"), "take the MIN of the two target critics, not the max"),
        (dict(combine="first"), "only the first critic is used: take the min of both rows of "
                                "target_critic(next_obs, a'), (2, B) -> (B,)"),
        (dict(combine="second"), "only the second critic is used: take the min of both rows "
                                 "of target_critic(next_obs, a'), (2, B) -> (B,)"),
        (dict(use_gamma=False), f"gamma = {c['gamma']} is missing: y = r + gamma (1 - "
                                "terminated) [...]"),
        (dict(second_draw=True), "log pi belongs to another draw than the a' you evaluate "
                                 "Q' at: one call of policy.sample(next_obs, generator) "
                                 "returns both a' and its log pi(a'|s')"),
    ]
    for change, text in known:
        candidate = _q_target_variant(policy, twin_q, c, seed, **change)
        if not _same(candidate, expected) and _same(got, candidate):
            return text
    return hint


def check_q_target(fn: Callable) -> None:
    """Exercise 8.1: fn(policy, target_critic, rew, next_obs, next_act, terminated, truncated,
    gamma, alpha, generator) must return the critic's target of `acteach.off_policy.q_target`,
        y = r + gamma (1 - terminated) [min_j Q'_j(s', a') - alpha log pi(a'|s')],
    a' ~ pi(.|s') drawn FRESH with policy.sample(next_obs, generator) (not the buffer's
    next_act), bootstrapping after a truncation, as a (B,) tensor without a gradient (the
    target is a constant: SG[y]). Checked on a hand-worked batch and random ones with a real
    squashed Gaussian policy and twin critics, the fresh draws reproduced from the generator's
    seed."""
    from acteach.off_policy import q_target

    cases = _q_target_cases(np.random.default_rng(8))
    for label, policy, twin_q, c, seed, hint in cases:
        call = (f"q_target(policy, target_critic, rew, next_obs, next_act, terminated, "
                f"truncated, gamma={c['gamma']}, alpha={c['alpha']}, generator) on {label}")
        if len(c["rew"]) <= 8:
            call += "".join(f"\n  {k} = {_show(c[k])}" for k in Q_TARGET_ARGUMENTS[:5])
        with torch.random.fork_rng():
            got = _call(fn, call, policy, twin_q, **_copies(c),
                        generator=torch.Generator().manual_seed(seed))
        B = len(c["rew"])
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"{call}: expected a ({B},) torch tensor, got {type(got).__name__}")
        if got.shape != (B,):
            shape_hint = (" (target_critic returns (2, B), one row per critic: take the min "
                          "over dim 0)" if got.shape == (2, B) else "")
            raise CheckFailed(f"{call}: expected shape ({B},), got shape {tuple(got.shape)}"
                              + shape_hint)
        expected = q_target(policy, twin_q, c["rew"], c["next_obs"], c["terminated"],
                            c["gamma"], c["alpha"], torch.Generator().manual_seed(seed))
        if not _same(got, expected):
            _compare(call, expected.numpy().astype(np.float64),
                     got.detach().to(torch.float64), atol=1e-4,
                     hint=_q_target_hint(fn, policy, twin_q, c, seed, got, expected, hint))
        if got.requires_grad:
            raise CheckFailed(
                f"{call}:\n  the values agree, but the target carries a gradient (grad_fn="
                f"{type(got.grad_fn).__name__}): a target is a constant, SG[y]\n  hint: compute "
                "it under `with torch.no_grad():` (or .detach() it); otherwise the critic "
                "loss (Q(s, a) - y)^2 would also move the target critics and the policy")
    _passed("q_target", len(cases))
