"""Checker of notebook 06 (batch actor-critic): exercise 6.1 `actor_critic_losses`, the two
losses' values and gradients, and its registry entry with planted mistakes."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from acteach.checks._core import (Case, CheckFailed, Checker, Mistake, compare, grads, mistake,
                                  named, recognise, run_cases, show, stub)
from acteach.checks.nb04_fitting_v import critic_loss_hint
from acteach.nets import TableValue, ValueNet


class _TablePolicy(torch.nn.Module):
    """pi(a|s) = softmax(logits[s]), a table of logits (S, A) as a parameter: the policy of the
    hand-worked case (obs are state indices), with the `log_prob(obs, act)` of
    `nets.CategoricalPolicy`."""

    def __init__(self, logits: list) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(torch.tensor(logits, dtype=torch.float64))

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        logp_all = torch.log_softmax(self.table[obs], dim=-1)
        return logp_all.gather(-1, torch.as_tensor(act).unsqueeze(-1)).squeeze(-1)


def _hand_worked_case() -> tuple[str, tuple, str]:
    """(label, arguments, hint): notebook 04's hand-worked batch (a 5-state table critic), N = 2
    trajectories of T = 3 steps, 5 of them valid, so that dividing by N, T, T*N, the valid
    steps or nothing all give different losses."""
    b = torch.tensor
    policy = _TablePolicy([[0.0, float(np.log(3.0))]] * 5)     # pi(1|s) = 0.75 everywhere
    table = TableValue(5, init=[1.0, 2.0, 3.0, 4.0, 50.0])      # state 4: terminal, V = 50
    args = (policy, table, b([[0, 3], [1, 0], [2, 2]]), b([[0, 1], [1, 0], [1, 1]]),
            b([[1.0, 2.0], [1.0, -1.0], [10.0, 99.0]], dtype=torch.float64),
            b([[1, 0], [2, 3], [4, 1]]), b([[False, False], [False, False], [True, False]]),
            b([[True, True], [True, True], [True, False]]), 0.5)
    return ("a hand-worked batch: 5-state tables, pi(1|s) = 0.75, V = [1, 2, 3, 4, 50], N = 2 "
            "trajectories, T = 3, 5 valid steps", args,
            "the valid steps' advantages are A = [[1, -1.5], [0.5, 0], [7, -]] (step (2, 0) "
            "terminated: A = r - V(s) = 7; step (2, 1) is padding), log pi = ln 0.25 for "
            "action 0 and ln 0.75 for action 1; actor_loss = -(1/2) sum mask log pi A = 1.556, "
            "critic_loss = the mean of the 5 squared TD errors = 10.5")


def _actor_critic_cases(rng: np.random.Generator) -> list[tuple[str, tuple, str]]:
    """(label, (policy, critic, obs, act, rew, next_obs, terminated, mask, gamma), hint): the
    hand-worked batch, then random float64 batches on small networks. Every case has a
    terminated step whose next observation has a nonzero value, a truncated column, and padding
    with garbage obs and rew."""
    from acteach.nets import CategoricalPolicy

    cases = [_hand_worked_case()]
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
        cases.append((f"random {T}x{N} batch, small networks, gamma = {gamma}", args,
                      "random case: padded steps hold garbage observations and rewards"))
    return cases


def _actor_loss_hint(args: tuple, got: float, expected: float, hint: str) -> str:
    """Name the mistake a wrong actor loss matches, if a known one (the sign, the terminal mask,
    the padding, and every normalisation but 1/N); else hint."""
    policy, net, obs, act, rew, next_obs, terminated, mask, gamma = args
    T, N = mask.shape
    with torch.no_grad():
        value, next_value = net(obs), net(next_obs)
        adv = rew + gamma * torch.where(terminated, 0.0, next_value) - value
        no_terminal = rew + gamma * next_value - value
        logp = policy.log_prob(obs, act)
        per_step = torch.where(mask, logp * adv, 0.0)
        total = float(per_step.sum())
        per_trajectory = float((per_step.sum(dim=0) / mask.sum(dim=0)).mean())
        unmasked = float((logp * adv).sum()) / N
        unterminated = float(torch.where(mask, logp * no_terminal, 0.0).sum()) / N
    n_valid = int(mask.sum())
    by_n = f"divide the sum over the valid steps by N = {N}, the number of trajectories"
    known = [
        (-expected, "wrong sign: the optimiser minimises, so the actor loss is MINUS the "
                    "surrogate (1/N) sum mask * log pi * A"),
        (-unterminated, "a terminated step has no next value: A = r - V(s) there (multiply "
                        "V(next_obs) by 1 - terminated)"),
        (-unmasked, "padded steps (mask False) must count for nothing: their log pi and A are "
                    "garbage"),
        (-total, f"the sum is not divided: {by_n}"),
        (-total / (T * N), f"a mean over all T*N = {T * N} cells (.mean()): {by_n}"),
        (-total / n_valid, f"a mean over the {n_valid} valid steps (mask.sum()): {by_n}"),
        (-total / T, f"divided by T = {T}, the steps per trajectory: {by_n}"),
        (-per_trajectory, "each trajectory averaged over its own length, then the mean: sum "
                          f"over the steps of a trajectory, don't average; {by_n}"),
    ]
    return recognise(got, expected, known, hint)


def _judge_actor_critic(case: Case, got: Any) -> None:
    from acteach.batch_actor_critic import actor_critic_losses

    args, call = case.args, case.call
    net = args[1]
    policy = args[0]
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailed(f"{call}: expected a pair (actor_loss, critic_loss), a tuple or a "
                          f"list of two, got {type(got).__name__}"
                          + (f" of {len(got)}" if isinstance(got, (tuple, list)) else ""))
    for name, x in zip(("actor_loss", "critic_loss"), got):
        if not isinstance(x, torch.Tensor) or x.dim() != 0:
            raise CheckFailed(f"{call}: {name} should be a scalar torch tensor, got {show(x)}")
        if not x.requires_grad:
            raise CheckFailed(f"{call}: {name} has no autograd graph; compute it from the "
                              "networks' outputs")
    actor, crit = actor_critic_losses(*args)
    compare(f"{call}, actor_loss", actor.detach().numpy(), got[0],
            hint=_actor_loss_hint(args, float(got[0].detach()), float(actor.detach()),
                                  "actor_loss = -(1/N) sum over the valid steps of "
                                  "log pi(a|s) * A, with A = r + gamma (1 - terminated) "
                                  "V(next_obs) - V(obs)"))
    critic_args = (args[2], args[4], args[5], args[6], args[7], args[8])
    compare(f"{call}, critic_loss", crit.detach().numpy(), got[1],
            hint=critic_loss_hint(net, critic_args, float(got[1].detach()),
                                  "critic_loss = mean over the valid steps of (SG[r + gamma "
                                  "(1 - terminated) V(next_obs)] - V(obs))^2, as in exercise "
                                  "4.1"))
    compare(f"the gradient of {call}'s actor_loss w.r.t. the policy", grads(actor, policy),
            grads(got[0], policy), hint="the advantage is a constant weight of log pi")
    compare(f"the gradient of {call}'s actor_loss w.r.t. the critic", np.zeros(
            sum(p.numel() for p in net.parameters())), grads(got[0], net),
            hint="detach the advantage: the actor's step must not move V_phi (SG[A])")
    compare(f"the gradient of {call}'s critic_loss w.r.t. the critic", grads(crit, net),
            grads(got[1], net),
            hint="detach the target r + gamma (1 - terminated) V(next_obs): only V(obs) "
                 "is moved (SG[y_hat])")


def check_actor_critic_losses(fn: Callable) -> None:
    """Exercise 6.1: fn(policy, critic, obs, act, rew, next_obs, terminated, mask, gamma) must
    return the pair (actor_loss, critic_loss) (a tuple or a list), scalar tensors with the
    values and gradients of `acteach.batch_actor_critic.actor_critic_losses`: the advantage detached
    (the actor loss moves no critic parameter), the critic's target detached, no bootstrap
    after a terminated step. A hand-worked batch (N = 2, T = 3, 5 valid steps) comes first, so
    that each normalisation mistake gives its own value and hint; then random ones."""
    cases = [Case(f"actor_critic_losses(policy, critic, obs, act, rew, next_obs, terminated, "
                  f"mask, gamma={args[-1]}) on {label}", args, hint=hint)
             for label, args, hint in _actor_critic_cases(np.random.default_rng(6))]
    run_cases("actor_critic_losses", fn, cases, _judge_actor_critic)


# ---------------------------------------------------------------------------------------------
# The reference, another correct solution, and planted mistakes
# ---------------------------------------------------------------------------------------------

def reference(policy, critic, obs, act, rew, next_obs, terminated, mask, gamma):
    """The library's `batch_actor_critic.actor_critic_losses` (imported when called: the module
    brings gymnasium)."""
    from acteach.batch_actor_critic import actor_critic_losses

    return actor_critic_losses(policy, critic, obs, act, rew, next_obs, terminated, mask, gamma)


def _planted(name: str, sign: float = 1.0, detach_adv: bool = True, detach_target: bool = True,
             terminal_mask: bool = True, actor_divisor: str = "N", critic_divisor: str = "valid",
             dtype: torch.dtype = torch.float64, pair: type = tuple) -> Callable:
    """A rewrite of the two losses with at most one mistake (the defaults are all right):
    actor_divisor and critic_divisor are 'N', 'valid' (mask.sum()), 'cells' (T*N) or 'one'."""
    def actor_critic_losses(policy, critic, obs, act, rew, next_obs, terminated, mask, gamma):
        value, next_value = critic(obs).to(dtype), critic(next_obs).to(dtype)
        if terminal_mask:
            next_value = torch.where(terminated, 0.0, next_value)
        target = rew.to(dtype) + gamma * next_value
        adv = target - value
        if detach_adv:
            adv = adv.detach()
        if detach_target:
            target = target.detach()
        divisor = {"N": mask.shape[1], "valid": mask.sum(), "cells": mask.numel(), "one": 1}
        critic_loss = torch.where(mask, (target - value) ** 2, 0.0).sum() / divisor[
            critic_divisor]
        logp = policy.log_prob(obs, act).to(dtype)
        actor_loss = -sign * torch.where(mask, logp * adv, 0.0).sum() / divisor[actor_divisor]
        return pair((actor_loss, critic_loss))
    return named(name, actor_critic_losses)


@mistake("your function changed its argument `rew` in place")
def ac_zeroes_padding_in_place(policy, critic, obs, act, rew, next_obs, terminated, mask, gamma):
    rew[~mask] = 0.0                                    # the caller's rewards, zeroed
    return reference(policy, critic, obs, act, rew, next_obs, terminated, mask, gamma)


ACTOR_CRITIC_LOSSES = Checker(
    check_actor_critic_losses, reference, stub("actor_critic_losses", "6.1"),
    mistakes=(Mistake(_planted("ac_wrong_sign", sign=-1.0), "wrong sign"),
              Mistake(_planted("ac_advantage_not_detached", detach_adv=False),
                      "detach the advantage"),
              Mistake(_planted("ac_target_not_detached", detach_target=False),
                      "detach the target"),
              Mistake(_planted("ac_no_terminal_mask", terminal_mask=False),
                      "terminated step has no next value"),
              Mistake(_planted("ac_actor_sum", actor_divisor="one"),
                      "the sum is not divided: divide the sum over the valid steps by N = 2"),
              Mistake(_planted("ac_actor_mean_over_valid_steps", actor_divisor="valid"),
                      "a mean over the 5 valid steps (mask.sum()): divide the sum over the "
                      "valid steps by N = 2"),
              Mistake(_planted("ac_actor_mean_over_cells", actor_divisor="cells"),
                      "a mean over all T*N = 6 cells (.mean())"),
              Mistake(_planted("ac_critic_divides_by_n", critic_divisor="N"),
                      "divide by their number (mask.sum()), not by N"),
              Mistake(_planted("ac_critic_sum", critic_divisor="one"),
                      "a mean over the valid steps, not a sum"),
              ac_zeroes_padding_in_place),
    rewrites=(_planted("actor_critic_losses_rewrite"),
              _planted("actor_critic_losses_as_a_list", pair=list),
              _planted("actor_critic_losses_float32", dtype=torch.float32)))
