"""The plumbing every exercise checker shares (notebooks 01-09): call the student's function,
compare with the library, recognise a known mistake, report, and the registry entry of a checker.

A checker builds its cases (hand-worked first, then random ones), each a `Case` naming the call
as its messages show it, and hands them to `run_cases`: it calls the student's function on fresh
copies of the case's arguments and lets the checker's judge compare the answer with the library's.
A wrong answer raises `CheckFailed` (an AssertionError) whose message names the call, the expected
and the got value and, where the answer is a known mistake, what that mistake is; a stub that
still raises NotImplementedError gives an `ExerciseNotImplemented` with a one-line message
instead of a traceback into the stub.

`Checker` registers a checker with its reference function, a stub and its planted mistakes, so
that one test can prove it accepts the one, reports the other and rejects each mistake.
"""
from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch


class CheckFailed(AssertionError):
    """The student's function gave a wrong answer; the message says where."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows in the check cell: the message alone, not a traceback through the
        checker's own code (the message already names the call, the expected and the got)."""
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


class ExerciseNotImplemented(CheckFailed):
    """The exercise still holds its stub."""


def show(x: Any) -> str:
    """A compact text for a value in a message."""
    if isinstance(x, torch.Tensor):
        x = x.detach().numpy()
    if isinstance(x, np.ndarray):
        text = np.array2string(x, precision=4, suppress_small=True, threshold=40)
        return " ".join(text.split())             # on one line: [[1. 2.] [3. 4.]]
    return repr(x)


def call_student(fn: Callable, call: str, *args, **kwargs) -> Any:
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


#: The tolerance of every comparison never falls below float32 rounding: FLOAT32_RTOL of the
#: largest |expected| value (at least 1), everywhere in the array, so that a float32 answer, or
#: one whose last digits differ by a cancellation, is right (float32 keeps ~7 digits: 1e-5 is
#: about 100 roundings).
FLOAT32_RTOL = 1e-5

#: The hint of a result that holds NaN or inf where a finite number is expected.
NONFINITE_HINT = ("a NaN comes from 0/0, inf - inf, log of a negative number, or 0 * inf: "
                  "multiplying by a 0/1 mask does not remove a NaN or an inf (nan * 0 = nan); "
                  "select with np.where / torch.where instead")


def tolerance(expected: Any, atol: float = 1e-6) -> float:
    """atol, raised to float32 rounding of expected's largest value (FLOAT32_RTOL)."""
    scale = float(np.max(np.abs(expected), initial=1.0)) if np.size(expected) else 1.0
    return max(atol, FLOAT32_RTOL * scale)


def nonfinite(call: str, expected: Any, got: np.ndarray, hint: str = "") -> None:
    """Raise CheckFailed if got holds NaN or inf where expected is finite, saying so (a NaN
    matches no known mistake, so a hint matched from the values would be wrong)."""
    bad = ~np.isfinite(got) & np.isfinite(expected)
    if not bad.any():
        return
    kinds = " and ".join(k for k, hit in (("NaN", np.isnan(got[bad]).any()),
                                          ("inf", np.isinf(got[bad]).any())) if hit)
    where = tuple(int(i) for i in np.argwhere(bad)[0]) if got.ndim else ()
    raise CheckFailed(
        f"{call}: the result holds {kinds} ({int(bad.sum())} of {bad.size} entries, the first "
        f"at index {where}), where a finite number is expected\n  expected {show(expected)}\n"
        f"  got      {show(got)}\n  hint: {hint or NONFINITE_HINT}")


def compare(call: str, expected: np.ndarray, got: Any, atol: float = 1e-6,
            hint: str = "") -> None:
    """Raise CheckFailed unless got has expected's shape and values (to atol, never below
    float32 rounding: `tolerance`); NaN or inf in got gets its own message (`nonfinite`)."""
    if isinstance(got, torch.Tensor):
        got = got.detach().numpy()
    if not isinstance(got, (np.ndarray, float, int, np.floating, np.integer)):
        raise CheckFailed(f"{call}: expected an array, got {type(got).__name__}")
    got = np.asarray(got, dtype=np.float64)
    if got.shape != np.shape(expected):
        raise CheckFailed(f"{call}: expected shape {np.shape(expected)}, got shape {got.shape}")
    nonfinite(call, expected, got, hint)
    tol = tolerance(expected, atol)
    if not np.allclose(got, expected, atol=tol, rtol=FLOAT32_RTOL):
        where = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape) if got.ndim else ()
        raise CheckFailed(
            f"{call}:\n  expected {show(expected)}\n  got      {show(got)}\n"
            f"  (largest difference at index {tuple(int(i) for i in where)})"
            + (f"\n  hint: {hint}" if hint else ""))


def recognise(got: Any, expected: Any, known: list[tuple[Any, str]], default: str,
              rtol: float = 1e-5, atol: float = 1e-6,
              same: Callable[[Any, Any], bool] | None = None) -> str:
    """The text of the first known mistake whose answer got reproduces (and the right answer
    does not), else default. known: (the mistake's answer, its text) pairs. Answers are the
    same by np.allclose (got to a mistake's answer within rtol, atol, neither below float32
    rounding), or by `same`."""
    for candidate, text in known:
        if same is not None:
            if not same(candidate, expected) and same(got, candidate):
                return text
        elif not np.allclose(candidate, expected, rtol=FLOAT32_RTOL,
                             atol=tolerance(expected, atol)) and np.allclose(
                got, candidate, rtol=max(rtol, FLOAT32_RTOL), atol=tolerance(candidate, atol)):
            return text
    return default


def as_array(got: Any) -> Any:
    """got as a numpy array if it is a tensor, else got itself (for a hint to inspect)."""
    return got.detach().numpy() if isinstance(got, torch.Tensor) else got


def grads(loss: torch.Tensor, net: torch.nn.Module) -> np.ndarray:
    """d loss / d (all the network's parameters), flattened; 0 for parameters it does not use."""
    params = list(net.parameters())
    found = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return np.concatenate([np.zeros(p.numel()) if g is None else g.detach().reshape(-1).numpy()
                           for p, g in zip(params, found)])


def passed(name: str, n_cases: int) -> None:
    print(f"\u2713 {name}: all {n_cases} cases agree with the library.")


# ---------------------------------------------------------------------------------------------
# The loop of every checker
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One call of the student's function: `call` names it in messages; args and kwargs are
    passed (fresh copies each time); `hint` is said when a wrong answer matches no known
    mistake; `data` is whatever else the checker's judge needs (a label, a seed, exact values)."""

    call: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    hint: str = ""
    data: Any = None


def fresh(x: Any) -> Any:
    """A copy of an argument the student's function may change in place or draw from: arrays
    and tensors are copied, random generators restarted from the same state; the rest (MDPs,
    networks, numbers) is passed as it is."""
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, torch.Tensor):
        return x.clone()
    if isinstance(x, np.random.Generator):
        return copy.deepcopy(x)
    if isinstance(x, torch.Generator):
        twin = torch.Generator()
        twin.set_state(x.get_state())
        return twin
    return x


def _snapshot(x: Any) -> Any:
    """What of an argument a call must leave as it was: an array's or a tensor's values (and a
    tensor's requires_grad), a network's parameters and buffers, their requires_grad and .grad;
    None for the rest (numbers, MDPs, random generators, which a function draws from)."""
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, torch.Tensor):
        return x.detach().clone(), x.requires_grad
    if isinstance(x, torch.nn.Module):
        return ({k: v.detach().clone() for k, v in x.state_dict().items()},
                [(p.requires_grad, None if p.grad is None else p.grad.clone())
                 for p in x.parameters()])
    return None


def _equal(a: Any, b: Any) -> bool:
    """Same shape, dtype and values (NaN equal to NaN): numpy arrays or torch tensors."""
    a, b = (x.numpy() if isinstance(x, torch.Tensor) else x for x in (a, b))
    return (a.shape == b.shape and a.dtype == b.dtype
            and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def _first_change(before: np.ndarray, after: np.ndarray) -> str:
    """Where and how an array first differs: ' (at index (2, 1): 99.0 -> 0.0)'."""
    if before.shape != after.shape or before.dtype != after.dtype:
        return f" (shape {before.shape} {before.dtype} -> {after.shape} {after.dtype})"
    changed = ~((before == after) | (np.isnan(before) & np.isnan(after))
                if before.dtype.kind in "fc" else before == after)
    i = tuple(int(k) for k in np.argwhere(changed)[0]) if before.ndim else ()
    return f" (at index {i}: {before[i].item()!r} -> {after[i].item()!r})"


def changed_in_place(call: str, name: str, before: Any, now: Any) -> None:
    """Raise CheckFailed, naming the argument, if the student's call changed it in place:
    before is `_snapshot` of the argument taken before the call, now the argument after it."""
    head = f"{call}: your function changed its argument `{name}` in place"
    hint = ("\n  hint: the caller's arrays must come back as they went in (a notebook's later "
            "cells use them): build new arrays (np.where(mask, rew, 0.0), x.copy(), "
            "torch.where, x.clone()) instead of assigning into an argument (x[...] = , x -= , "
            "x += , x.detach_(), x.add_())")
    if isinstance(now, torch.Tensor):
        before, requires_grad = before
        if requires_grad and not now.requires_grad:
            raise CheckFailed(
                f"{head}: it was detached from its graph (requires_grad True -> False)\n"
                f"  expected `{name}` unchanged, got it detached\n  hint: x.detach() returns "
                "a new tensor and leaves the argument alone; x.detach_() detaches the caller's "
                "tensor")
        before, now = before.numpy(), now.detach().numpy()
    if isinstance(now, np.ndarray):
        if not _equal(before, now):
            raise CheckFailed(f"{head}{_first_change(before, now)}\n  expected `{name}` "
                              f"unchanged: {show(before)}\n  got      {show(now)}{hint}")
    elif isinstance(now, torch.nn.Module):
        (state, params), (state_now, params_now) = before, _snapshot(now)
        what = ([f"its {k}" for k, v in state.items() if not _equal(v, state_now[k])]
                + ["requires_grad of its parameters" for (g, _), (h, _) in
                   zip(params, params_now) if g != h][:1]
                + [".grad of its parameters (did it call backward()?)"
                   for (_, g), (_, h) in zip(params, params_now)
                   if (g is None) != (h is None) or (g is not None and not _equal(g, h))][:1])
        if what:
            raise CheckFailed(f"{head}: {', '.join(what[:3])}\n  expected the network "
                              f"`{name}` unchanged, got it changed\n  hint: a loss or a "
                              "target reads a network; it never steps, freezes or "
                              "differentiates it (the caller does)")


def _argument_names(fn: Callable, args: tuple, kwargs: dict) -> list[tuple[str, Any]]:
    """(name, value) of every argument of the call, by fn's own parameter names where its
    signature binds them, else 'argument i'."""
    try:
        signature = inspect.signature(fn)
        bound = signature.bind(*args, **kwargs).arguments
    except (TypeError, ValueError):
        return [(f"argument {i + 1}", a) for i, a in enumerate(args)] + list(kwargs.items())
    named_args = []
    for name, value in bound.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            named_args += [(f"{name}[{i}]", v) for i, v in enumerate(value)]
        elif kind is inspect.Parameter.VAR_KEYWORD:
            named_args += list(value.items())
        else:
            named_args.append((name, value))
    return named_args


def call_case(fn: Callable, case: Case) -> Any:
    """fn on fresh copies of the case's arguments, the global torch random state left as it
    was (a notebook's later cells draw the same numbers whatever the student's function did);
    an argument the call changed in place (an array, a tensor, a network) is named
    (`changed_in_place`)."""
    args = tuple(map(fresh, case.args))
    kwargs = {k: fresh(v) for k, v in case.kwargs.items()}
    watched = [(name, value, _snapshot(value))
               for name, value in _argument_names(fn, args, kwargs)]
    with torch.random.fork_rng():
        got = call_student(fn, case.call, *args, **kwargs)
    for name, value, before in watched:
        if before is not None:
            changed_in_place(case.call, name, before, value)
    return got


def run_cases(name: str, fn: Callable, cases: Iterable[Case],
              judge: Callable[[Case, Any], None], done: str | None = None) -> None:
    """The loop of every checker: for each case, in order, call fn (`call_case`) and
    judge(case, answer), which raises CheckFailed at the first wrong answer; then print that
    all cases agree (or `done`)."""
    cases = list(cases)
    for case in cases:
        judge(case, call_case(fn, case))
    if done is None:
        passed(name, len(cases))
    else:
        print(done)


def against(reference: Callable, hint: Callable[[Case, Any], str] | None = None
            ) -> Callable[[Case, Any], None]:
    """The judge of a checker whose answer is one array: compare it with reference(*args,
    **kwargs) of the case; the hint is hint(case, got) (the known mistake it matches), else
    the case's own."""
    def judge(case: Case, got: Any) -> None:
        expected = reference(*case.args, **case.kwargs)
        compare(case.call, expected, got, hint=case.hint if hint is None else hint(case, got))
    return judge


# ---------------------------------------------------------------------------------------------
# The registry entry of a checker
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mistake:
    """A planted mistake: a wrong function, and text the checker's message must contain (the
    hint that names the mistake)."""

    fn: Callable
    hint: str


@dataclass(frozen=True)
class Checker:
    """A checker with what proves it: the library's reference (with the student's signature),
    a stub as a student gets it, planted mistakes, each of which the checker must reject with
    its hint, and `rewrites`: other correct solutions, written as a student might (loops,
    no_grad, from scratch), that it must accept too."""

    check: Callable[[Callable], None]
    reference: Callable
    stub: Callable
    mistakes: tuple[Mistake, ...]
    rewrites: tuple[Callable, ...] = ()

    @property
    def name(self) -> str:
        """The exercise's function: check_reward_to_go -> reward_to_go."""
        return self.check.__name__.removeprefix("check_")


def mistake(hint: str) -> Callable[[Callable], Mistake]:
    """Decorator: the function below is a planted mistake, and its checker's message must
    contain hint."""
    return lambda fn: Mistake(fn, hint)


def stub(name: str, exercise: str) -> Callable:
    """The exercise's function as the student notebook has it: its body raises
    NotImplementedError."""
    def fn(*args, **kwargs):
        raise NotImplementedError(f"Exercise {exercise}: write the body of {name}")
    return named(name, fn)


def named(name: str, fn: Callable) -> Callable:
    """fn, its __name__ (what messages and test ids call it) set to name."""
    fn.__name__ = fn.__qualname__ = name
    return fn

