"""Checkers of notebook 01 (reward-to-go): exercise 1.1 `reward_to_go`, exercise 1.2
`policy_gradient_surrogate`, and their registry entries with planted mistakes."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from acteach import returns, surrogate
from acteach.checks._core import (Case, Checker, CheckFailed, against, compare, mistake, recognise,
                                  run_cases, show, stub)
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


def _hand_surrogate_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                     np.ndarray]:
    """A hand-worked batch, as `_surrogate_case` returns it: zero logits over 3 states and 2
    actions (pi = 0.5 everywhere, so grad log pi(a|s) = onehot(a) - 0.5 in row s), N = 2
    trajectories of T = 3 steps, 5 valid (trajectory 1 has 2 steps; its padded step holds state
    0, action 1, weight 7). Dividing by N = 2, T = 3, T*N = 6, the 5 valid steps, by nothing, or
    averaging each trajectory over its length all give different gradients."""
    logits = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    obs, act = torch.tensor([[0, 1], [1, 2], [2, 0]]), torch.tensor([[1, 0], [1, 1], [0, 1]])
    logp = torch.log_softmax(logits, dim=-1)[obs, act]
    w = torch.tensor([[2.0, -1.0], [1.0, 3.0], [4.0, 7.0]], dtype=torch.float64)
    weights = w * torch.exp(logp - logp.detach())     # same value as w, but not a constant
    mask = torch.tensor([[True, True], [True, True], [True, False]])
    g_hat = np.array([[-0.5, 0.5], [-0.5, 0.5], [0.25, -0.25]])    # worked out in the hint
    return logits, logp, weights, mask, g_hat


def _surrogate_hint(case: Case, got_grad: np.ndarray) -> str:
    """Name the mistake whose gradient got_grad is (each normalisation but 1/N, the mask, the
    detach, the sign), else the case's hint."""
    logp, weights, mask = case.args
    logits, g_hat = case.data
    T, N = mask.shape
    w = weights.detach()
    per_step = torch.where(mask, logp * w, 0.0)
    by_n = f"divide the sum by N = {N}, the number of trajectories (mask.shape[1])"
    candidates = [
        (per_step.sum(), f"the sum is not divided: {by_n}"),
        (per_step.mean(), f"a mean over all T*N = {T * N} cells (.mean()): {by_n}"),
        (per_step.sum() / mask.sum(), f"a mean over the {int(mask.sum())} valid steps "
                                      f"(mask.sum()): {by_n}"),
        (per_step.sum() / T, f"divided by T = {T}, the number of steps: {by_n}"),
        ((per_step.sum(dim=0) / mask.sum(dim=0)).mean(), "each trajectory averaged over its "
         f"own length, then the mean: sum over a trajectory's steps, don't average; {by_n}"),
        ((logp * w).sum() / N, "padded steps (mask False) must count for nothing: their "
                               "weights are garbage (select with torch.where(mask, ...))"),
        (torch.where(mask, logp * weights, 0.0).sum() / N, "the weights must be constants: "
         "detach them (weights.detach()), or the gradient flows into them too"),
        (-per_step.sum() / N, "the sign: the surrogate is PLUS (1/N) sum mask * logp * "
                              "weights (the actor's loss, later, is its negative)"),
    ]
    known = [(torch.autograd.grad(value, logits, retain_graph=True)[0].numpy(), text)
             for value, text in candidates]
    return recognise(got_grad, g_hat, known, case.hint)


def _judge_surrogate(case: Case, value: object) -> None:
    logits, g_hat = case.data
    call = case.call
    if not isinstance(value, torch.Tensor) or value.dim() != 0:
        raise CheckFailed(f"{call}: expected a scalar torch tensor, got {show(value)}")
    if not value.requires_grad:
        raise CheckFailed(f"{call}: the result has no autograd graph; build it from logp")
    (grad,) = torch.autograd.grad(value, logits, retain_graph=True, allow_unused=True)
    grad = np.zeros(tuple(logits.shape)) if grad is None else grad.numpy()
    compare(f"the gradient w.r.t. the logits of {call}", g_hat, grad,
            hint=_surrogate_hint(case, grad))
    ref_value = surrogate.policy_gradient_surrogate(*case.args)
    compare(call, ref_value.detach().numpy(), value,
            hint="the value too: (1/N) * sum of mask * logp * weights")


def check_policy_gradient_surrogate(fn: Callable) -> None:
    """Exercise 1.2: the autograd gradient of fn(logp, weights, mask) w.r.t. the logits must be
    the library's estimate g_hat = (1/N) sum_n sum_t grad log pi(a_t|s_t) * w_t: on a
    hand-worked batch (N = 2, where each normalisation mistake gives its own gradient and
    hint), then on real chain batches of N = 1, 5 and 32 trajectories."""
    logits, logp, weights, mask, g_hat = _hand_surrogate_case()
    cases = [Case("policy_gradient_surrogate(logp, weights, mask) on a hand-worked batch of N = 2 "
                  f"trajectories, T = 3 steps\n  logp = {show(logp)}\n  weights = "
                  f"{show(weights)}\n  mask = {show(mask)}", (logp, weights, mask),
                  hint="logits 0 (pi = 0.5): grad log pi(a|s) = onehot(a) - 0.5 in row s; g_hat = "
                       "(1/2) sum over the 5 valid steps of weight * grad log pi = [[-0.5, 0.5], "
                       "[-0.5, 0.5], [0.25, -0.25]]; weights[2, 1] = 7 is padding",
                  data=(logits, g_hat))]
    for seed, n in [(0, 1), (1, 5), (2, 32)]:
        logits, logp, weights, mask, g_hat = _surrogate_case(seed, n)
        cases.append(Case(f"policy_gradient_surrogate(logp, weights, mask) on {n} chain "
                          "trajectories", (logp, weights, mask),
                          hint="the weights must be constants (detach them), padded steps (mask "
                               "False) must count for nothing, and the sum is divided by N, the "
                               "number of trajectories", data=(logits, g_hat)))
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


@mistake("detach them (weights.detach())")
def surrogate_no_detach(logp, weights, mask):
    return torch.where(mask, logp * weights, torch.zeros_like(logp)).sum() / logp.shape[1]


@mistake("a mean over all T*N = 6 cells (.mean()): divide the sum by N = 2")
def surrogate_mean_over_steps(logp, weights, mask):
    return torch.where(mask, logp * weights.detach(), torch.zeros_like(logp)).mean()


@mistake("a mean over the 5 valid steps (mask.sum()): divide the sum by N = 2")
def surrogate_mean_over_valid_steps(logp, weights, mask):
    return torch.where(mask, logp * weights.detach(), 0.0).sum() / mask.sum()


@mistake("the sum is not divided: divide the sum by N = 2")
def surrogate_sum(logp, weights, mask):
    return torch.where(mask, logp * weights.detach(), 0.0).sum()


@mistake("divided by T = 3, the number of steps: divide the sum by N = 2")
def surrogate_divides_by_t(logp, weights, mask):
    return torch.where(mask, logp * weights.detach(), 0.0).sum() / len(logp)


@mistake("each trajectory averaged over its own length")
def surrogate_mean_per_trajectory(logp, weights, mask):
    per_step = torch.where(mask, logp * weights.detach(), 0.0)
    return (per_step.sum(dim=0) / mask.sum(dim=0)).mean()


@mistake("padded steps (mask False) must count for nothing")
def surrogate_ignores_mask(logp, weights, mask):
    return (logp * weights.detach()).sum() / logp.shape[1]


@mistake("the surrogate is PLUS (1/N) sum")
def surrogate_wrong_sign(logp, weights, mask):
    return -surrogate.policy_gradient_surrogate(logp, weights, mask)


@mistake("expected a scalar torch tensor")
def surrogate_numpy(logp, weights, mask):
    return surrogate.policy_gradient_surrogate(logp, weights, mask).item()


@mistake("your function changed its argument `weights` in place")
def surrogate_detaches_in_place(logp, weights, mask):
    weights.detach_()                                   # detaches the caller's tensor
    return torch.where(mask, logp * weights, 0.0).sum() / logp.shape[1]


@mistake("your function changed its argument `rew` in place")
def rtg_zeroes_padding_in_place(rew, mask, gamma=1.0):
    rew[~mask] = 0.0                                    # the caller's rewards, zeroed
    out, running = np.zeros_like(rew), np.zeros(rew.shape[1])
    for t in reversed(range(len(rew))):
        out[t] = running = rew[t] + gamma * running
    return out


@mistake("the result holds NaN")
def rtg_nan_in_padding(rew, mask, gamma=1.0):
    return np.where(mask, returns.reward_to_go(rew, mask, gamma), np.nan)


# ---------------------------------------------------------------------------------------------
# Other correct solutions, as students write them
# ---------------------------------------------------------------------------------------------

def reward_to_go_float32(rew, mask, gamma=1.0):
    """A loop in float32."""
    rew = np.where(mask, rew, 0.0).astype(np.float32)
    out, running = np.zeros_like(rew), np.zeros(rew.shape[1], dtype=np.float32)
    for t in reversed(range(len(rew))):
        out[t] = running = rew[t] + np.float32(gamma) * running
    return out


def reward_to_go_torch(rew, mask, gamma=1.0):
    """In torch, a discount matrix instead of a loop, returning a tensor."""
    rew = torch.where(torch.as_tensor(mask), torch.as_tensor(rew), 0.0)
    T = len(rew)
    steps = torch.arange(T)
    later = steps[None, :] - steps[:, None]                         # t' - t
    discount = torch.where(later >= 0, float(gamma) ** later.clamp(min=0).double(), 0.0)
    return torch.where(torch.as_tensor(mask), discount @ rew, 0.0)


def surrogate_float32(logp, weights, mask):
    """In float32, a multiply by the mask (weights are finite), / mask.shape[1]."""
    w = weights.detach().float() * mask.float()
    return (logp.float() * w).sum() / mask.shape[1]


REWARD_TO_GO = Checker(
    check_reward_to_go, returns.reward_to_go, stub("reward_to_go", "1.1"),
    mistakes=(rtg_ignores_mask, rtg_forward_cumsum, rtg_ignores_gamma, rtg_skips_current_reward,
              rtg_whole_return, rtg_discounts_from_start, rtg_zeroes_padding_in_place,
              rtg_nan_in_padding),
    rewrites=(reward_to_go_float32, reward_to_go_torch))

POLICY_GRADIENT_SURROGATE = Checker(
    check_policy_gradient_surrogate, surrogate.policy_gradient_surrogate,
    stub("policy_gradient_surrogate", "1.2"),
    mistakes=(surrogate_no_detach, surrogate_mean_over_steps, surrogate_mean_over_valid_steps,
              surrogate_sum, surrogate_divides_by_t, surrogate_mean_per_trajectory,
              surrogate_ignores_mask, surrogate_wrong_sign, surrogate_numpy,
              surrogate_detaches_in_place),
    rewrites=(surrogate_float32,))
