"""The exercise checkers (acteach.checks): one contract over every registered checker, then what
some checkers promise beyond it.

The contract (`test_checker_contract`, one run per entry of `checks.CHECKERS`): the library's
reference and every other correct solution pass; the stub is reported as not implemented; at
least three planted mistakes, each rejected with a CheckFailed whose message names the call,
shows the expected and the got value (or says that the values agree and what else is wrong), and
contains the mistake's hint.
"""
import numpy as np
import pytest
import torch

from acteach import checks, tabular
from acteach.checks import nb02_use_q, nb08_off_policy
from acteach.decomposition import return_moments


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


def test_every_checker_is_registered():
    public = {n.removeprefix("check_") for n in checks.__all__ if n.startswith("check_")}
    assert public == set(checks.CHECKERS) == {
        n.removeprefix("check_") for n in dir(checks) if n.startswith("check_")}


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


# --- check_q_from_rollouts: counting calls, and the exact moments behind its tolerances ----------

def test_q_checker_restores_rollout_returns():
    original = tabular.rollout_returns
    for mistake in (nb02_use_q.q_loops_over_steps, nb02_use_q.q_sums_the_k_returns):
        assert mistake.hint in str(_rejects(checks.check_q_from_rollouts, mistake.fn))
    assert tabular.rollout_returns is original
    assert nb02_use_q.rollout_returns is original


def test_q_checker_moments_match_the_exact_values_and_sampling():
    # The checker's exact mean and variance of a rollout's return: the mean is exact_values' Q;
    # the variance matches 20,000 rollouts per step within 10% (seed 0).
    for label, mdp, logits, obs, act, mask, k in nb02_use_q.q_cases():
        moments = return_moments(mdp, logits)
        values = tabular.exact_values(mdp, logits)
        np.testing.assert_allclose(moments.Q, values.Q)
        np.testing.assert_allclose(moments.V, values.V)
        t, n = np.nonzero(mask)
        s, a = obs[t, n], act[t, n]
        m = 20_000
        returns, _ = tabular.rollout_returns(mdp, logits, np.repeat(s, m), np.repeat(a, m),
                                             np.repeat(t, m), np.random.default_rng(0))
        sampled = returns.reshape(-1, m).var(axis=1)
        np.testing.assert_allclose(sampled, moments.variance[t, s, a], rtol=0.1, atol=1e-9,
                                   err_msg=label)
        assert (~mask).any(), f"{label}: the case needs padded steps"


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
