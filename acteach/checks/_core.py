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
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch


class CheckFailed(AssertionError):
    """The student's function gave a wrong answer; the message says where."""


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


def compare(call: str, expected: np.ndarray, got: Any, atol: float = 1e-6,
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
            f"{call}:\n  expected {show(expected)}\n  got      {show(got)}\n"
            f"  (largest difference at index {tuple(int(i) for i in where)})"
            + (f"\n  hint: {hint}" if hint else ""))


def recognise(got: Any, expected: Any, known: list[tuple[Any, str]], default: str,
              rtol: float = 1e-5, atol: float = 1e-6,
              same: Callable[[Any, Any], bool] | None = None) -> str:
    """The text of the first known mistake whose answer got reproduces (and the right answer
    does not), else default. known: (the mistake's answer, its text) pairs. Answers are the
    same by np.allclose (got to a mistake's answer within rtol, atol), or by `same`."""
    for candidate, text in known:
        if same is not None:
            if not same(candidate, expected) and same(got, candidate):
                return text
        elif not np.allclose(candidate, expected) and np.allclose(got, candidate, rtol=rtol,
                                                                  atol=atol):
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


def call_case(fn: Callable, case: Case) -> Any:
    """fn on fresh copies of the case's arguments, the global torch random state left as it
    was (a notebook's later cells draw the same numbers whatever the student's function did)."""
    with torch.random.fork_rng():
        return call_student(fn, case.call, *map(fresh, case.args),
                            **{k: fresh(v) for k, v in case.kwargs.items()})


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

