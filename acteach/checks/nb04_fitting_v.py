"""Checker of notebook 04 (fitting V): exercise 4.1 `critic_loss`, its value and its gradient
w.r.t. the critic's parameters, and its registry entry with planted mistakes."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from acteach import critic
from acteach.checks._core import (Case, Checker, CheckFailed, compare, grads, mistake, recognise,
                                  run_cases, show, stub)
from acteach.nets import TableValue, ValueNet


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
    cases = [("a hand-worked batch: a 5-state table V = [1, 2, 3, 4, 50], N = 2 "
              "trajectories, T = 3, 5 valid steps, gamma = 0.5", table,
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


def critic_loss_hint(net, args: tuple, got: float, hint: str) -> str:
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
    return recognise(got, expected, [(float(value), text) for value, text in known], hint,
                     rtol=1e-6, atol=1e-8)


def _judge_critic_loss(case: Case, got: Any) -> None:
    net, *args = case.args
    call = case.call
    if not isinstance(got, torch.Tensor) or got.dim() != 0:
        raise CheckFailed(f"{call}: expected a scalar torch tensor, got {show(got)}")
    if not got.requires_grad:
        raise CheckFailed(f"{call}: the result has no autograd graph; compute it from "
                          "value_net's outputs (V(obs) must keep its gradient)")
    expected = critic.critic_loss(net, *args)
    compare(call, expected.detach().numpy(), got,
            hint=critic_loss_hint(net, args, float(got.detach()), case.hint))
    wanted, residual = grads(expected, net), grads(critic.residual_loss(net, *args), net)
    got_grad = grads(got, net)
    grad_hint = ("the target is a constant: detach V(next_obs) (SG in the lecture), so the "
                 "gradient only moves V(obs)" if np.allclose(got_grad, residual, atol=1e-6)
                 else "only V(obs) carries a gradient; the target is detached")
    compare(f"the gradient of {call} w.r.t. the critic's parameters", wanted, got_grad,
            hint=grad_hint)


def check_critic_loss(fn: Callable) -> None:
    """Exercise 4.1: fn(value_net, obs, rew, next_obs, terminated, mask, gamma) must be a scalar
    tensor with the value of `acteach.critic.critic_loss` (the mean over the valid steps of
    (SG[r + gamma (1 - terminated) V(next_obs)] - V(obs))^2) and the same gradient w.r.t. the
    critic's parameters: the target detached, so only V(obs) is moved."""
    cases = [Case(f"critic_loss(value_net, obs, rew, next_obs, terminated, mask, "
                  f"gamma={args[-1]}) on {label}", (net, *args), hint=hint)
             for label, net, args, hint in _critic_cases(np.random.default_rng(4))]
    run_cases("critic_loss", fn, cases, _judge_critic_loss)


# ---------------------------------------------------------------------------------------------
# Another correct solution, and planted mistakes
# ---------------------------------------------------------------------------------------------

def critic_loss_with_no_grad(v, obs, rew, next_obs, terminated, mask, gamma=1.0):
    """A correct solution: the target computed under no_grad, a masked sum over mask.sum()."""
    with torch.no_grad():
        target = rew + gamma * (1 - terminated.double()) * v(next_obs)
    return ((target - v(obs)) ** 2 * mask).sum() / mask.sum()


def _masked_mean(x, mask):
    return x[mask].mean()


@mistake("detach V(next_obs)")
def no_detach(v, obs, rew, next_obs, terminated, mask, gamma=1.0):
    return critic.residual_loss(v, obs, rew, next_obs, terminated, mask, gamma)


@mistake("a terminated step has no next value")
def no_terminal_mask(v, obs, rew, next_obs, terminated, mask, gamma=1.0):
    y = rew + gamma * v(next_obs).detach()
    return _masked_mean((y - v(obs)) ** 2, mask)


@mistake("not at obs[t + 1]")
def next_is_obs_shifted(v, obs, rew, next_obs, terminated, mask, gamma=1.0):
    following = torch.cat([obs[1:], obs[-1:]])                # V(obs[t + 1])
    y = rew + gamma * (~terminated) * v(following).detach()
    return _masked_mean((y - v(obs)) ** 2, mask)


@mistake("the target uses the NEXT state")
def next_is_obs(v, obs, rew, next_obs, terminated, mask, gamma=1.0):
    y = rew + gamma * (~terminated) * v(obs).detach()          # V(obs[t])
    return _masked_mean((y - v(obs)) ** 2, mask)


@mistake("padded steps (mask False) must count for nothing")
def padding_not_masked(v, obs, rew, next_obs, terminated, mask, gamma=1.0):
    y = rew + gamma * (~terminated) * v(next_obs).detach()
    return ((y - v(obs)) ** 2).mean()


@mistake("not a sum")
def sum_not_mean(v, obs, rew, next_obs, terminated, mask, gamma=1.0):
    y = rew + gamma * (~terminated) * v(next_obs).detach()
    return ((y - v(obs)) ** 2)[mask].sum()


@mistake("expected a scalar torch tensor")
def returns_a_float(v, obs, rew, next_obs, terminated, mask, gamma=1.0):
    return critic.critic_loss(v, obs, rew, next_obs, terminated, mask, gamma).item()


@mistake("divide by their number (mask.sum()), not by N")
def critic_divides_by_n(v, obs, rew, next_obs, terminated, mask, gamma=1.0):
    y = rew + gamma * (~terminated) * v(next_obs).detach()
    return torch.where(mask, (y - v(obs)) ** 2, 0.0).sum() / mask.shape[1]


@mistake("your function changed its argument `rew` in place")
def critic_zeroes_padding_in_place(v, obs, rew, next_obs, terminated, mask, gamma=1.0):
    rew[~mask] = 0.0                                    # the caller's rewards, zeroed
    return critic.critic_loss(v, obs, rew, next_obs, terminated, mask, gamma)


@mistake("did it call backward()?")
def critic_calls_backward(v, obs, rew, next_obs, terminated, mask, gamma=1.0):
    loss = critic.critic_loss(v, obs, rew, next_obs, terminated, mask, gamma)
    loss.backward(retain_graph=True)                    # fills the caller's .grad
    return loss


def critic_loss_float32(v, obs, rew, next_obs, terminated, mask, gamma=1.0):
    """A correct solution computed in float32 (the network stays float64)."""
    value = v(obs).float()
    with torch.no_grad():
        target = rew.float() + gamma * torch.where(terminated, 0.0, v(next_obs).float())
    return torch.where(mask, (target - value) ** 2, 0.0).sum() / mask.sum()


CRITIC_LOSS = Checker(
    check_critic_loss, critic.critic_loss, stub("critic_loss", "4.1"),
    mistakes=(no_detach, no_terminal_mask, next_is_obs_shifted, next_is_obs, padding_not_masked,
              sum_not_mean, returns_a_float, critic_divides_by_n, critic_zeroes_padding_in_place,
              critic_calls_backward),
    rewrites=(critic_loss_with_no_grad, critic_loss_float32))
