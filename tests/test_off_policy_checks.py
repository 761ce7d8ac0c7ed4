"""The checker of exercise 8.1 (notebook 08): the critic's target with a fresh next action.

It accepts the library's `q_target` and a rewrite from scratch, reports the stub as not
implemented, and rejects each planted mistake with a message that names the call, the expected
and the got value, and a hint naming the mistake."""
import pytest
import torch

from acteach import checks
from acteach.off_policy import q_target


def reference(policy, target_critic, rew, next_obs, next_act, terminated, truncated, gamma,
              alpha, generator=None):
    """The library's q_target under the exercise's signature (it reads neither next_act nor
    truncated: its buffer stores neither)."""
    return q_target(policy, target_critic, rew, next_obs, terminated, gamma, alpha, generator)


def planted(name, fresh=True, no_grad=True, terminal_mask=True, truncation_terminal=False,
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
    q_target.__name__ = name
    return q_target


def stub(policy, target_critic, rew, next_obs, next_act, terminated, truncated, gamma, alpha,
         generator=None):
    raise NotImplementedError("Exercise 8.1: write the body of q_target")


stub.__name__ = "q_target"           # as in the notebook


@pytest.mark.parametrize("fn", [reference, planted("rewrite")], ids=["library", "rewrite"])
def test_checker_accepts_the_reference_and_a_rewrite(fn, capsys):
    checks.check_q_target(fn)
    assert "q_target: all 4 cases agree with the library" in capsys.readouterr().out


def test_checker_reports_the_stub_as_not_implemented():
    with pytest.raises(checks.ExerciseNotImplemented, match="q_target is not implemented yet"):
        checks.check_q_target(stub)


MISTAKES = [
    (planted("buffer_next_action", fresh=False), "uses the buffer's next action"),
    (planted("no_stop_gradient", no_grad=False), "carries a gradient"),
    (planted("no_termination_mask", terminal_mask=False), "terminated transition has no next"),
    (planted("truncation_as_termination", truncation_terminal=True),
     "a time limit is not a terminal state"),
    (planted("no_entropy_term", entropy=0.0), "entropy term is missing"),
    (planted("entropy_sign_flipped", entropy=1.0), "wrong sign of the entropy term"),
    (planted("mean_of_twin_critics", combine="mean"), "MIN of the two target critics"),
    (planted("first_critic_only", combine="first"), "only the first critic is used"),
    (planted("no_gamma", use_gamma=False), "gamma = 0.5 is missing"),
    (planted("global_rng", use_generator=False), "passing the generator"),
]


@pytest.mark.parametrize("mistake, hint", MISTAKES, ids=[m.__name__ for m, _ in MISTAKES])
def test_checker_names_each_planted_mistake(mistake, hint):
    with pytest.raises(checks.CheckFailed) as info:
        checks.check_q_target(mistake)
    assert not isinstance(info.value, checks.ExerciseNotImplemented)
    message = str(info.value)
    assert message.startswith("q_target(policy, target_critic, rew, next_obs, next_act, "
                              "terminated, truncated, gamma=")      # names the call
    assert hint in message, message
    if "carries a gradient" not in message:
        assert "expected" in message and "got" in message and "hint: " in message


def test_the_first_failing_case_is_the_hand_worked_one_and_shows_its_inputs():
    with pytest.raises(checks.CheckFailed) as info:
        checks.check_q_target(planted("no_termination_mask", terminal_mask=False))
    message = str(info.value)
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


def test_an_exception_in_the_students_code_names_the_call():
    def broken(policy, target_critic, rew, next_obs, next_act, terminated, truncated, gamma,
               alpha, generator=None):
        return rew + gamma * (1 - terminated)          # torch refuses `-` on a bool tensor
    with pytest.raises(checks.CheckFailed, match=r"(?s)^q_target\(policy, .* raised RuntimeError"):
        checks.check_q_target(broken)


def test_checker_leaves_the_global_torch_rng_alone():
    state = torch.get_rng_state()
    checks.check_q_target(reference)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("mistake, hint", MISTAKES, ids=[m.__name__ for m, _ in MISTAKES])
def test_random_batches_catch_each_mistake_too(mistake, hint):
    """A function right on the hand-worked batch (5 rows) and wrong on the others is caught on
    a random batch, with the same hint (first_critic_only: there Q'_1 >= Q'_2 on every row,
    so its hint is the max's; no_gamma names the case's gamma)."""
    def right_by_hand_only(policy, target_critic, rew, next_obs, next_act, terminated, truncated,
                           gamma, alpha, generator=None):
        use = reference if len(rew) == 5 else mistake
        return use(policy, target_critic, rew, next_obs, next_act, terminated, truncated, gamma,
                   alpha, generator)
    right_by_hand_only.__name__ = "q_target"
    hint = {"first_critic_only": "MIN of the two target critics",
            "no_gamma": "is missing: y = r + gamma"}.get(mistake.__name__, hint)
    with pytest.raises(checks.CheckFailed) as info:
        checks.check_q_target(right_by_hand_only)
    message = str(info.value)
    assert "a random batch of" in message and hint in message, message
