"""Checker of notebook 08 (off-policy actor-critic): exercise 8.1 `q_target`, the critic's
target with a FRESH next action, and its registry entry with planted mistakes.

The random cases use a real `acteach.sac.SquashedGaussianPolicy` and `TwinQ` (imported when a
case is built: the module brings gymnasium); the fresh draws are reproduced from the
generator's seed, so a mistake is recognised by recomputing the target with it.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from acteach.checks._core import (Case, CheckFailed, Checker, Mistake, compare, named, nonfinite,
                                  recognise, run_cases, show, stub)

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
    (2, B) like `sac.TwinQ`."""

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
    from acteach.sac import SquashedGaussianPolicy, TwinQ

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
    return recognise(got, expected, [(_q_target_variant(policy, twin_q, c, seed, **change), text)
                                     for change, text in known], hint, same=_same)


def _judge_q_target(fn: Callable, case: Case, got: Any) -> None:
    from acteach.sac import q_target

    policy, twin_q = case.args
    (c, seed), call = case.data, case.call
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
    nonfinite(call, expected.numpy(), got.detach().to(torch.float64).numpy())
    if not _same(got, expected):
        compare(call, expected.numpy().astype(np.float64),
                got.detach().to(torch.float64), atol=1e-4,
                hint=_q_target_hint(fn, policy, twin_q, c, seed, got, expected, case.hint))
    if got.requires_grad:
        raise CheckFailed(
            f"{call}:\n  the values agree, but the target carries a gradient (grad_fn="
            f"{type(got.grad_fn).__name__}): a target is a constant, SG[y]\n  hint: compute "
            "it under `with torch.no_grad():` (or .detach() it); otherwise the critic "
            "loss (Q(s, a) - y)^2 would also move the target critics and the policy")


def check_q_target(fn: Callable) -> None:
    """Exercise 8.1: fn(policy, target_critic, rew, next_obs, next_act, terminated, truncated,
    gamma, alpha, generator) must return the critic's target of `acteach.sac.q_target`,
        y = r + gamma (1 - terminated) [min_j Q'_j(s', a') - alpha log pi(a'|s')],
    a' ~ pi(.|s') drawn FRESH with policy.sample(next_obs, generator) (not the buffer's
    next_act), bootstrapping after a truncation, as a (B,) tensor without a gradient (the
    target is a constant: SG[y]). Checked on a hand-worked batch and random ones with a real
    squashed Gaussian policy and twin critics, the fresh draws reproduced from the generator's
    seed."""
    cases = []
    for label, policy, twin_q, c, seed, hint in _q_target_cases(np.random.default_rng(8)):
        call = (f"q_target(policy, target_critic, rew, next_obs, next_act, terminated, "
                f"truncated, gamma={c['gamma']}, alpha={c['alpha']}, generator) on {label}")
        if len(c["rew"]) <= 8:
            call += "".join(f"\n  {k} = {show(c[k])}" for k in Q_TARGET_ARGUMENTS[:5])
        cases.append(Case(call, (policy, twin_q),
                          {**c, "generator": torch.Generator().manual_seed(seed)}, hint, (c, seed)))
    run_cases("q_target", fn, cases, lambda case, got: _judge_q_target(fn, case, got))


# ---------------------------------------------------------------------------------------------
# The reference, another correct solution, and planted mistakes
# ---------------------------------------------------------------------------------------------

def reference(policy, target_critic, rew, next_obs, next_act, terminated, truncated, gamma,
              alpha, generator=None):
    """The library's `sac.q_target` under the exercise's signature (it reads neither next_act
    nor truncated: its buffer stores neither)."""
    from acteach.sac import q_target

    return q_target(policy, target_critic, rew, next_obs, terminated, gamma, alpha, generator)


def _planted(name, fresh=True, no_grad=True, terminal_mask=True, truncation_terminal=False,
             entropy=-1.0, combine="min", use_gamma=True, use_generator=True):
    """A rewrite of the target with at most one mistake (the defaults are all right)."""
    def q_target(policy, target_critic, rew, next_obs, next_act, terminated, truncated, gamma,
                 alpha, generator=None):
        with torch.set_grad_enabled(not no_grad):
            act, logp = policy.sample(next_obs, generator if use_generator else None)
            if not fresh:
                act = next_act
            q = target_critic(next_obs, act)
            q = {"min": q.min(dim=0).values, "mean": q.mean(dim=0), "first": q[0]}[combine]
            soft = q + entropy * alpha * logp
            done = (terminated | truncated) if truncation_terminal else terminated
            if terminal_mask:
                soft = soft * (~done).to(soft.dtype)
            return rew + (gamma if use_gamma else 1.0) * soft
    return named(name, q_target)


def q_target_nan_at_saturated_actions(policy, target_critic, rew, next_obs, next_act,
                                      terminated, truncated, gamma, alpha, generator=None):
    """log pi written by hand is -inf where an action saturates (log(1 - tanh^2) = log 0),
    here wherever |a'| > 0.5, and multiplying by 1 - terminated turns 0 * inf into NaN."""
    with torch.no_grad():
        act, logp = policy.sample(next_obs, generator)
        logp = torch.where(act.abs().amax(dim=-1) > 0.5, -torch.inf, logp)
        soft = target_critic(next_obs, act).min(dim=0).values - alpha * logp
        return rew + gamma * (~terminated) * soft


def q_target_adds_into_rew(policy, target_critic, rew, next_obs, next_act, terminated,
                           truncated, gamma, alpha, generator=None):
    """Right values, but y is rew itself, added to in place."""
    with torch.no_grad():
        act, logp = policy.sample(next_obs, generator)
        soft = target_critic(next_obs, act).min(dim=0).values - alpha * logp
        y = rew
        y += gamma * torch.where(terminated, 0.0, soft)
        return y


def q_target_float64(policy, target_critic, rew, next_obs, next_act, terminated, truncated,
                     gamma, alpha, generator=None):
    """A correct solution that returns float64."""
    with torch.no_grad():
        act, logp = policy.sample(next_obs, generator)
        soft = target_critic(next_obs, act).amin(dim=0).double() - alpha * logp.double()
        return rew.double() + gamma * (~terminated).double() * soft


Q_TARGET = Checker(
    check_q_target, reference, stub("q_target", "8.1"),
    mistakes=(Mistake(_planted("buffer_next_action", fresh=False),
                      "uses the buffer's next action"),
              Mistake(_planted("no_stop_gradient", no_grad=False), "carries a gradient"),
              Mistake(_planted("no_termination_mask", terminal_mask=False),
                      "terminated transition has no next"),
              Mistake(_planted("truncation_as_termination", truncation_terminal=True),
                      "a time limit is not a terminal state"),
              Mistake(_planted("no_entropy_term", entropy=0.0), "entropy term is missing"),
              Mistake(_planted("entropy_sign_flipped", entropy=1.0),
                      "wrong sign of the entropy term"),
              Mistake(_planted("mean_of_twin_critics", combine="mean"),
                      "MIN of the two target critics"),
              Mistake(_planted("first_critic_only", combine="first"),
                      "only the first critic is used"),
              Mistake(_planted("no_gamma", use_gamma=False), "gamma = 0.5 is missing"),
              Mistake(_planted("global_rng", use_generator=False), "passing the generator"),
              Mistake(q_target_nan_at_saturated_actions, "the result holds NaN"),
              Mistake(q_target_adds_into_rew,
                      "your function changed its argument `rew` in place")),
    rewrites=(_planted("q_target_rewrite"), q_target_float64))
