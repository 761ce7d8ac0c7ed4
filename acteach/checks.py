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

from acteach import returns, surrogate
from acteach.estimators import Context, method_weights, score_weighted_sums
from acteach.tabular import chain_mdp, sample_trajectories, softmax_policy


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
