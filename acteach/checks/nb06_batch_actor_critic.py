"""Checker of notebook 06 (batch actor-critic): exercise 6.1 `actor_critic_losses`, the two
losses' values and gradients, and its registry entry with planted mistakes."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from acteach.checks._core import (Case, CheckFailed, Checker, Mistake, compare, grads,
                                  named, run_cases, show, stub)
from acteach.nets import ValueNet


def _actor_critic_cases(rng: np.random.Generator) -> list[tuple[str, tuple]]:
    """(label, (policy, critic, obs, act, rew, next_obs, terminated, mask, gamma)): random
    float64 batches on small networks. Every case has a terminated step whose next observation
    has a nonzero value, a truncated column, and padding with garbage obs and rew."""
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


def _judge_actor_critic(case: Case, got: Any) -> None:
    from acteach.actor_critic import actor_critic_losses

    args, call = case.args, case.call
    net = args[1]
    policy = args[0]
    if not isinstance(got, tuple) or len(got) != 2:
        raise CheckFailed(f"{call}: expected a pair (actor_loss, critic_loss), got "
                          f"{type(got).__name__}")
    for name, x in zip(("actor_loss", "critic_loss"), got):
        if not isinstance(x, torch.Tensor) or x.dim() != 0:
            raise CheckFailed(f"{call}: {name} should be a scalar torch tensor, got {show(x)}")
        if not x.requires_grad:
            raise CheckFailed(f"{call}: {name} has no autograd graph; compute it from the "
                              "networks' outputs")
    actor, crit = actor_critic_losses(*args)
    compare(f"{call}, actor_loss", actor.detach().numpy(), got[0],
            hint=_actor_loss_hint(args, float(got[0].detach()), float(actor.detach())))
    compare(f"{call}, critic_loss", crit.detach().numpy(), got[1],
            hint="critic_loss = mean over the valid steps of (SG[r + gamma (1 - terminated) "
                 "V(next_obs)] - V(obs))^2, as in exercise 4.1")
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
    return (actor_loss, critic_loss), scalar tensors with the values and gradients of
    `acteach.actor_critic.actor_critic_losses`: the advantage detached (the actor loss moves no
    critic parameter), the critic's target detached, no bootstrap after a terminated step."""
    cases = [Case(f"actor_critic_losses(policy, critic, obs, act, rew, next_obs, terminated, "
                  f"mask, gamma={args[-1]}) on {label}", args)
             for label, args in _actor_critic_cases(np.random.default_rng(6))]
    run_cases("actor_critic_losses", fn, cases, _judge_actor_critic)


# ---------------------------------------------------------------------------------------------
# The reference, another correct solution, and planted mistakes
# ---------------------------------------------------------------------------------------------

def reference(policy, critic, obs, act, rew, next_obs, terminated, mask, gamma):
    """The library's `actor_critic.actor_critic_losses` (imported when called: the module
    brings gymnasium)."""
    from acteach.actor_critic import actor_critic_losses

    return actor_critic_losses(policy, critic, obs, act, rew, next_obs, terminated, mask, gamma)


def _planted(name: str, sign: float = 1.0, detach_adv: bool = True, detach_target: bool = True,
             terminal_mask: bool = True) -> Callable:
    """A rewrite of the two losses with at most one mistake (the defaults are all right)."""
    def actor_critic_losses(policy, critic, obs, act, rew, next_obs, terminated, mask, gamma):
        value, next_value = critic(obs), critic(next_obs)
        if terminal_mask:
            next_value = torch.where(terminated, 0.0, next_value)
        target = rew + gamma * next_value
        adv = target - value
        if detach_adv:
            adv = adv.detach()
        if detach_target:
            target = target.detach()
        critic_loss = ((target - value)[mask] ** 2).mean()
        logp = policy.log_prob(obs, act)
        actor_loss = -sign * torch.where(mask, logp * adv, 0.0).sum() / mask.shape[1]
        return actor_loss, critic_loss
    return named(name, actor_critic_losses)


ACTOR_CRITIC_LOSSES = Checker(
    check_actor_critic_losses, reference, stub("actor_critic_losses", "6.1"),
    mistakes=(Mistake(_planted("ac_wrong_sign", sign=-1.0), "wrong sign"),
              Mistake(_planted("ac_advantage_not_detached", detach_adv=False),
                      "detach the advantage"),
              Mistake(_planted("ac_target_not_detached", detach_target=False),
                      "detach the target"),
              Mistake(_planted("ac_no_terminal_mask", terminal_mask=False),
                      "terminated step has no next value")),
    rewrites=(_planted("actor_critic_losses_rewrite"),))
