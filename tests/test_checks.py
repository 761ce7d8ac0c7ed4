"""The exercise checkers (acteach.checks): one contract over every registered checker, then what
some checkers promise beyond it.

The contract (`test_checker_contract`, one run per entry of `checks.CHECKERS`): the library's
reference and every other correct solution pass (float32, torch, a list for a pair, loops); the
stub is reported as not implemented; at least three planted mistakes, each rejected with a
CheckFailed whose message names the call, shows the expected and the got value (or says that the
values agree and what else is wrong), and contains the mistake's hint (a mutated argument, a NaN,
an int mask, each normalisation mistake).

Beyond it, over every checker: the reference's answer in float32 passes; an argument changed in
place is named; a NaN in the answer gets its own message.
"""
import functools
import inspect
import re

import numpy as np
import pytest
import torch

from acteach import checks
from acteach.checks import nb01_reward_to_go, nb04_fitting_v, nb08_off_policy


def _rejects(check, fn) -> checks.CheckFailed:
    with pytest.raises(checks.CheckFailed) as info:
        check(fn)
    assert not isinstance(info.value, checks.ExerciseNotImplemented), str(info.value)
    return info.value


@pytest.mark.parametrize("name", checks.CHECKERS)
def test_checker_contract(name, capsys):
    checker = checks.CHECKERS[name]
    assert checker.check is getattr(checks, f"check_{name}")
    for correct in (checker.reference, *checker.rewrites):
        checker.check(correct)
        assert capsys.readouterr().out.startswith(f"\u2713 {name}: all "), correct.__name__

    with pytest.raises(checks.ExerciseNotImplemented,
                       match=f"^{name} is not implemented yet"):
        checker.check(checker.stub)

    assert len(checker.mistakes) >= 3
    for mistake in checker.mistakes:
        message = str(_rejects(checker.check, mistake.fn))
        assert f"{name}(" in message, (mistake.fn.__name__, message)          # names the call
        assert ("expected" in message and "got" in message
                or "the values agree" in message), (mistake.fn.__name__, message)
        assert mistake.hint and mistake.hint in message, (mistake.fn.__name__, message)


def _wrapped(reference, after):
    """reference with its own signature, its answer passed through after(answer, arguments)
    (arguments: the call's arguments by name)."""
    @functools.wraps(reference)
    def fn(*args, **kwargs):
        arguments = inspect.signature(reference).bind(*args, **kwargs).arguments
        return after(reference(*args, **kwargs), arguments)
    return fn


def _each_answer(answer, change):
    """change applied to an answer, or to both halves of a pair."""
    return type(answer)(map(change, answer)) if isinstance(answer, (tuple, list)) else \
        change(answer)


def _float32(x):
    return x.float() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)


@pytest.mark.parametrize("name", [n for n in checks.CHECKERS if n != "a2c_update"])
def test_every_checker_accepts_the_reference_in_float32(name, capsys):
    """(a2c_update answers a dict of losses and steps networks: tests/test_a2c_capstone.py.)
    Before: 2.1 failed at a horizon's last step ("expected
    1.3504 ... got 1.3504 (inf standard errors off)")."""
    checker = checks.CHECKERS[name]
    checker.check(_wrapped(checker.reference, lambda answer, _: _each_answer(answer, _float32)))
    assert capsys.readouterr().out.startswith(f"\u2713 {name}: all ")


def _change_in_place(x):
    """x changed in place, as a student's `x[...] = ...` or `x -= ...` would."""
    if isinstance(x, torch.Tensor):
        with torch.no_grad():
            x.logical_not_() if x.dtype == torch.bool else x.add_(1)
    elif x.dtype == bool:
        np.logical_not(x, out=x)
    else:
        x += 1


@pytest.mark.parametrize("name", [n for n in checks.CHECKERS if n != "a2c_update"])
def test_every_checker_names_an_argument_changed_in_place(name):
    """A function that returns the right answer but changes its first array argument in place
    is rejected, the argument named. Before: each got a \u2713."""
    checker = checks.CHECKERS[name]
    changed = []

    def change_first_array(answer, arguments):
        name, x = next((k, v) for k, v in arguments.items()
                       if isinstance(v, (np.ndarray, torch.Tensor)))
        _change_in_place(x)
        changed.append(name)
        return answer
    message = str(_rejects(checker.check, _wrapped(checker.reference, change_first_array)))
    assert f"your function changed its argument `{changed[0]}` in place" in message, message
    assert message.startswith(f"{name}(") and "expected" in message and "got" in message


def _with_nan(x):
    if isinstance(x, torch.Tensor):
        if x.dim() == 0:
            return x + float("nan")
        x = x.clone()
        x[0] = float("nan")
        return x
    x = np.array(x, dtype=float)
    x[np.nonzero(x)[0][0] if x.ndim == 1 else tuple(np.argwhere(x != 0)[0])] = np.nan
    return x


@pytest.mark.parametrize("name", [n for n in checks.CHECKERS if n != "a2c_update"])
def test_every_checker_says_the_answer_holds_nan(name):
    """Before: 8.1 printed the generator hint for any NaN."""
    checker = checks.CHECKERS[name]
    message = str(_rejects(checker.check, _wrapped(
        checker.reference, lambda answer, _: _each_answer(answer, _with_nan))))
    assert "the result holds NaN" in message, message
    assert "passing the generator" not in message, message


@pytest.mark.parametrize("name, mistakes", [
    ("policy_gradient_surrogate",
     ["surrogate_mean_over_steps", "surrogate_mean_over_valid_steps", "surrogate_sum",
      "surrogate_divides_by_t", "surrogate_mean_per_trajectory"]),
    ("actor_critic_losses",
     ["ac_actor_sum", "ac_actor_mean_over_valid_steps", "ac_actor_mean_over_cells"]),
    ("critic_loss", ["sum_not_mean", "critic_divides_by_n", "padding_not_masked"]),
])
def test_each_normalisation_mistake_gets_its_own_got_and_hint(name, mistakes):
    """On a hand-worked case with N > 1 (N = 2, T = 3, 5 valid steps) dividing by N, T, T*N,
    the valid steps or nothing all give different answers. Before: four normalisation mistakes
    of 1.2 printed the same hint and the same got (its first case had N = 1)."""
    by_name = {m.fn.__name__: m for m in checks.CHECKERS[name].mistakes}
    seen = {}
    for mistake in mistakes:
        message = str(_rejects(checks.CHECKERS[name].check, by_name[mistake].fn))
        assert "hand-worked" in message and "N = 2" in message, message
        got = re.search(r"\n  got +(.*)", message).group(1)
        hint = re.search(r"\n  hint: (.*)", message).group(1)
        seen[mistake] = (got, hint)
    assert len({got for got, _ in seen.values()}) == len(mistakes), seen
    assert len({hint for _, hint in seen.values()}) == len(mistakes), seen


def test_a_network_changed_in_place_is_named():
    """critic_loss calling backward() fills the caller's .grad: named (the contract checks the
    planted mistake's hint); a network whose parameters a function steps is named too."""
    def steps_the_critic(value_net, obs, rew, next_obs, terminated, mask, gamma=1.0):
        loss = nb04_fitting_v.critic.critic_loss(value_net, obs, rew, next_obs, terminated,
                                                 mask, gamma)
        with torch.no_grad():
            for p in value_net.parameters():
                p.add_(0.1)
        return loss
    message = str(_rejects(checks.check_critic_loss, steps_the_critic))
    assert "your function changed its argument `value_net` in place: its " in message, message


def test_a_mutation_is_named_by_the_students_own_parameter_names():
    def reward_to_go(r, m, g=1.0):
        r[~m] = 0.0
        return nb01_reward_to_go.returns.reward_to_go(r, m, g)
    with pytest.raises(checks.CheckFailed, match="changed its argument `r` in place"):
        checks.check_reward_to_go(reward_to_go)


def test_every_checker_is_registered():
    """(check_<exercise>_learns is the learning check of a registered exercise, not a Checker.)"""
    names = [n.removeprefix("check_") for n in checks.__all__ if n.startswith("check_")]
    learns = {n.removesuffix("_learns") for n in names if n.endswith("_learns")}
    public = set(names) - {f"{n}_learns" for n in learns}
    assert learns <= public == set(checks.CHECKERS) == {
        n.removeprefix("check_") for n in dir(checks)
        if n.startswith("check_") and not n.endswith("_learns")}


# --- beyond the contract: an exception in the student's code ------------------------------------

def _index_error_rtg(rew, mask, gamma=1.0):
    return rew[:, 99]


def _index_error_loo(returns, group_size):
    return returns[99]


def _runtime_error_q_target(policy, target_critic, rew, next_obs, next_act, terminated,
                            truncated, gamma, alpha, generator=None):
    return rew + gamma * (1 - terminated)          # torch refuses `-` on a bool tensor


@pytest.mark.parametrize("check, broken, message", [
    (checks.check_reward_to_go, _index_error_rtg, r"reward_to_go\(rew=.* raised IndexError"),
    (checks.check_loo_baseline, _index_error_loo, r"loo_baseline\(returns=.* raised IndexError"),
    (checks.check_q_target, _runtime_error_q_target,
     r"(?s)^q_target\(policy, .* raised RuntimeError"),
], ids=["reward_to_go", "loo_baseline", "q_target"])
def test_an_exception_in_the_students_code_names_the_call(check, broken, message):
    with pytest.raises(checks.CheckFailed, match=message):
        check(broken)




# --- check_q_target: the hand-worked case first, a shape hint, the global RNG, random batches ----

def test_q_target_checker_fails_first_on_the_hand_worked_case_and_shows_its_inputs():
    no_termination_mask = next(m.fn for m in checks.CHECKERS["q_target"].mistakes
                               if m.fn.__name__ == "no_termination_mask")
    message = str(_rejects(checks.check_q_target, no_termination_mask))
    assert "hand-worked batch of 5 transitions" in message
    assert "terminated = [False True False False True]" in message
    assert "expected [ 4.05 2. 5.7 -5.5 0.5 ]" in message


def test_a_target_of_both_critics_gets_a_shape_hint():
    def both_rows(policy, target_critic, rew, next_obs, next_act, terminated, truncated, gamma,
                  alpha, generator=None):
        with torch.no_grad():
            act, logp = policy.sample(next_obs, generator)
            soft = target_critic(next_obs, act) - alpha * logp
            return rew + gamma * torch.where(terminated, 0.0, soft)
    with pytest.raises(checks.CheckFailed, match=r"expected shape \(5,\), got shape \(2, 5\) "
                       r"\(target_critic returns \(2, B\)"):
        checks.check_q_target(both_rows)


def test_q_target_checker_leaves_the_global_torch_rng_alone():
    state = torch.get_rng_state()
    checks.check_q_target(nb08_off_policy.reference)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("mistake", checks.CHECKERS["q_target"].mistakes,
                         ids=lambda m: m.fn.__name__)
def test_random_q_target_batches_catch_each_mistake_too(mistake):
    """A function right on the hand-worked batch (5 rows) and wrong on the others is caught on
    a random batch, with the same hint (first_critic_only: there Q'_1 >= Q'_2 on every row,
    so its hint is the max's; no_gamma names the case's gamma)."""
    reference = nb08_off_policy.reference

    def right_by_hand_only(policy, target_critic, rew, next_obs, next_act, terminated, truncated,
                           gamma, alpha, generator=None):
        use = reference if len(rew) == 5 else mistake.fn
        return use(policy, target_critic, rew, next_obs, next_act, terminated, truncated, gamma,
                   alpha, generator)
    right_by_hand_only.__name__ = "q_target"
    hint = {"first_critic_only": "MIN of the two target critics",
            "no_gamma": "is missing: y = r + gamma"}.get(mistake.fn.__name__, mistake.hint)
    message = str(_rejects(checks.check_q_target, right_by_hand_only))
    assert "a random batch of" in message and hint in message, message


def test_a_failed_check_shows_its_message_not_a_traceback_into_the_checker():
    """IPython renders an exception with _render_traceback_ by its lines alone: a check cell shows
    the one message (call, expected, got, hint), not the checker's own frames."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shown = []
    shell._showtraceback = lambda etype, evalue, stb: shown.append("\n".join(stb))
    shell.run_cell("from acteach import checks\n"
                   "def reward_to_go(rew, mask, gamma=1.0):\n"
                   "    raise NotImplementedError('Exercise 1.1: write the body of reward_to_go')\n"
                   "checks.check_reward_to_go(reward_to_go)")
    assert len(shown) == 1
    assert "ExerciseNotImplemented" in shown[0] and "reward_to_go is not implemented yet" in shown[0]
    assert "_core.py" not in shown[0] and "Traceback" not in shown[0]
    assert len(shown[0].splitlines()) == 1
