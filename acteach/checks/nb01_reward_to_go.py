"""Checkers of notebook 01 (reward-to-go): exercise 1.1 `reward_to_go`, exercise 1.2
`policy_gradient_surrogate`, and their registry entries with planted mistakes."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from acteach import returns, surrogate
from acteach.checks._core import (Case, Checker, CheckFailed, against, compare, mistake, run_cases,
                                  show, stub)
from acteach.estimators import Context, method_weights, score_weighted_sums
from acteach.tabular import chain_mdp, sample_trajectories, softmax_policy

# ---------------------------------------------------------------------------------------------
# Exercise 1.1: reward-to-go
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
    cases = [Case(f"reward_to_go(rew={show(rew)}, mask={show(mask)}, gamma={gamma})",
                  (rew, mask, gamma), hint=hint)
             for rew, mask, gamma, hint in _reward_cases(np.random.default_rng(0))]
    run_cases("reward_to_go", fn, cases, against(returns.reward_to_go))


# ---------------------------------------------------------------------------------------------
# Exercise 1.2: the surrogate whose gradient is the estimate
# ---------------------------------------------------------------------------------------------

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


def _judge_surrogate(case: Case, value: object) -> None:
    logits, g_hat = case.data
    call = case.call
    if not isinstance(value, torch.Tensor) or value.dim() != 0:
        raise CheckFailed(f"{call}: expected a scalar torch tensor, got {show(value)}")
    if not value.requires_grad:
        raise CheckFailed(f"{call}: the result has no autograd graph; build it from logp")
    (grad,) = torch.autograd.grad(value, logits)
    compare(f"the gradient of {call} w.r.t. the logits", g_hat, grad, hint=(
        "the weights must be constants (detach them), padded steps (mask False) must count "
        "for nothing, and the sum is divided by N, the number of trajectories"))
    ref_value = surrogate.policy_gradient_surrogate(*case.args)
    compare(call, ref_value.detach().numpy(), value,
            hint="the value too: (1/N) * sum of mask * logp * weights")


def check_policy_gradient_surrogate(fn: Callable) -> None:
    """Exercise 1.2: the autograd gradient of fn(logp, weights, mask) w.r.t. the logits must be
    the library's estimate g_hat = (1/N) sum_n sum_t grad log pi(a_t|s_t) * w_t."""
    cases = []
    for seed, n in [(0, 1), (1, 5), (2, 32)]:
        logits, logp, weights, mask, g_hat = _surrogate_case(seed, n)
        cases.append(Case(f"policy_gradient_surrogate(logp, weights, mask) on {n} chain "
                          "trajectories", (logp, weights, mask), data=(logits, g_hat)))
    run_cases("policy_gradient_surrogate", fn, cases, _judge_surrogate)


# ---------------------------------------------------------------------------------------------
# Planted mistakes
# ---------------------------------------------------------------------------------------------

@mistake("rew[2, 1] = 99 lies past the end of trajectory 1")
def rtg_ignores_mask(rew, mask, gamma=1.0):
    return returns.reward_to_go(rew, np.ones_like(mask), gamma)


@mistake("Q_hat_t sums the rewards from t to the end")
def rtg_forward_cumsum(rew, mask, gamma=1.0):
    return np.cumsum(np.where(mask, rew, 0.0), axis=0)


@mistake("with gamma = 0.5: 1 + 0.5*3 + 0.25*5 = 3.75")
def rtg_ignores_gamma(rew, mask, gamma=1.0):
    return returns.reward_to_go(rew, mask, 1.0)


@mistake("Q_hat_t sums the rewards from t to the end")
def rtg_skips_current_reward(rew, mask, gamma=1.0):
    return returns.reward_to_go(rew, mask, gamma) - np.where(mask, rew, 0.0)


@mistake("Q_hat_t sums the rewards from t to the end")
def rtg_whole_return(rew, mask, gamma=1.0):
    return returns.total_return(rew, mask, gamma)[None, :] * mask


@mistake("with gamma = 0.5: 1 + 0.5*3 + 0.25*5 = 3.75")
def rtg_discounts_from_start(rew, mask, gamma=1.0):   # gamma^t' instead of gamma^(t'-t)
    disc = gamma ** np.arange(len(rew))[:, None]
    return returns.reward_to_go(rew * disc, mask, 1.0)


@mistake("the weights must be constants (detach them)")
def surrogate_no_detach(logp, weights, mask):
    return torch.where(mask, logp * weights, torch.zeros_like(logp)).sum() / logp.shape[1]


@mistake("divided by N, the number of trajectories")
def surrogate_mean_over_steps(logp, weights, mask):
    return torch.where(mask, logp * weights.detach(), torch.zeros_like(logp)).mean()


@mistake("padded steps (mask False) must count for nothing")
def surrogate_ignores_mask(logp, weights, mask):
    return (logp * weights.detach()).sum() / logp.shape[1]


@mistake("the gradient of policy_gradient_surrogate")
def surrogate_wrong_sign(logp, weights, mask):
    return -surrogate.policy_gradient_surrogate(logp, weights, mask)


@mistake("expected a scalar torch tensor")
def surrogate_numpy(logp, weights, mask):
    return surrogate.policy_gradient_surrogate(logp, weights, mask).item()


REWARD_TO_GO = Checker(
    check_reward_to_go, returns.reward_to_go, stub("reward_to_go", "1.1"),
    mistakes=(rtg_ignores_mask, rtg_forward_cumsum, rtg_ignores_gamma, rtg_skips_current_reward,
              rtg_whole_return, rtg_discounts_from_start))

POLICY_GRADIENT_SURROGATE = Checker(
    check_policy_gradient_surrogate, surrogate.policy_gradient_surrogate,
    stub("policy_gradient_surrogate", "1.2"),
    mistakes=(surrogate_no_detach, surrogate_mean_over_steps, surrogate_ignores_mask,
              surrogate_wrong_sign, surrogate_numpy))
