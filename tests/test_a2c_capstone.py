"""The capstone of notebook 07 (exercise 7.1, the whole A2C update), checked two ways: on fixed
records against the library (the checker contract of tests/test_checks.py covers the
reference, the stub and the planted mistakes), and by learning, which must catch a slip that
one update cannot show."""
from __future__ import annotations

import re

import pytest

from acteach import checks
from acteach.actor_critic import a2c_update
from acteach.checks import nb07_online_parallel as capstone


def policy_frozen_and_never_unfrozen(policy, critic, opt_actor, opt_critic, record, config):
    """Spinning Up's freeze pattern half-copied: after its step, pi_theta is frozen
    (requires_grad False) so that the critic's fit cannot move it, and never unfrozen. The
    first update is right; from the second on the actor's loss has no graph, the summed loss
    still has one (through the critic), and the policy silently stops learning."""
    losses = capstone.a2c_update_from_scratch(policy, critic, opt_actor, opt_critic, record,
                                              config)
    policy.requires_grad_(False)
    return losses


def test_a_correct_update_written_from_scratch_passes_both_checks():
    checks.check_a2c_update(capstone.a2c_update_from_scratch)
    history = checks.check_a2c_update_learns(capstone.a2c_update_from_scratch)
    assert history.steps_to_mean_return(capstone.LEARN_GOAL, capstone.LEARN_WINDOW) is not None


def test_the_library_update_learns_within_the_budget():
    history = checks.check_a2c_update_learns(a2c_update)
    assert history.env_steps <= capstone.learn_config().total_steps
    assert history.steps_to_mean_return(200, 100) is not None


def test_learning_catches_a_slip_that_one_update_cannot_show(capsys):
    """The single-batch check passes the frozen policy (its first update is the library's);
    the learning check fails it and shows both learning curves."""
    checks.check_a2c_update(policy_frozen_and_never_unfrozen)
    with pytest.raises(checks.CheckFailed) as failure:
        checks.check_a2c_update_learns(policy_frozen_and_never_unfrozen)
    message = str(failure.value)
    assert "expected a mean return of 200 over 100 episodes within 100,000 env steps" in message
    best = float(re.search(r"got a best 100-episode mean of ([\d.]+)", message).group(1))
    assert best < 200
    assert "Image" in capsys.readouterr().out          # the two curves, displayed as a PNG


def test_the_single_batch_check_names_a_planted_mistake_on_the_hand_worked_record():
    mistakes = {m.fn.__name__: m for m in checks.CHECKERS["a2c_update"].mistakes}
    with pytest.raises(checks.CheckFailed, match="hand-worked") as failure:
        checks.check_a2c_update(mistakes["a2c_update_truncation_as_termination"].fn)
    assert "truncated step was cut by the time limit" in str(failure.value)


def test_an_update_that_returns_no_losses_is_told_what_to_return():
    def returns_nothing(policy, critic, opt_actor, opt_critic, record, config):
        a2c_update(policy, critic, opt_actor, opt_critic, record, config)
    with pytest.raises(checks.CheckFailed, match="expected a dict with at least the keys "
                                                 "'actor_loss' and 'critic_loss'"):
        checks.check_a2c_update(returns_nothing)


def test_the_learning_check_reports_a_stub_by_the_updates_name():
    with pytest.raises(checks.ExerciseNotImplemented, match="^a2c_update is not implemented"):
        checks.check_a2c_update_learns(checks.CHECKERS["a2c_update"].stub)
