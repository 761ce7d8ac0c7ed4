"""Every checker accepts the library's reference, reports a stub as not implemented, and rejects
plausible mistakes with a message naming the call, the expected and the got value."""
import numpy as np
import pytest
import torch

from acteach import advantages, checks, returns, surrogate


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 1.1: write the body of f")


# --- wrong reward_to_go ---------------------------------------------------------------------
def rtg_ignores_mask(rew, mask, gamma=1.0):
    return returns.reward_to_go(rew, np.ones_like(mask), gamma)


def rtg_forward_cumsum(rew, mask, gamma=1.0):
    return np.cumsum(np.where(mask, rew, 0.0), axis=0)


def rtg_ignores_gamma(rew, mask, gamma=1.0):
    return returns.reward_to_go(rew, mask, 1.0)


def rtg_skips_current_reward(rew, mask, gamma=1.0):
    return returns.reward_to_go(rew, mask, gamma) - np.where(mask, rew, 0.0)


def rtg_whole_return(rew, mask, gamma=1.0):
    return returns.total_return(rew, mask, gamma)[None, :] * mask


def rtg_discounts_from_start(rew, mask, gamma=1.0):   # gamma^t' instead of gamma^(t'-t)
    disc = gamma ** np.arange(len(rew))[:, None]
    return returns.reward_to_go(rew * disc, mask, 1.0)


# --- wrong surrogate ------------------------------------------------------------------------
def surrogate_no_detach(logp, weights, mask):
    return torch.where(mask, logp * weights, torch.zeros_like(logp)).sum() / logp.shape[1]


def surrogate_mean_over_steps(logp, weights, mask):
    return torch.where(mask, logp * weights.detach(), torch.zeros_like(logp)).mean()


def surrogate_ignores_mask(logp, weights, mask):
    return (logp * weights.detach()).sum() / logp.shape[1]


def surrogate_wrong_sign(logp, weights, mask):
    return -surrogate.policy_gradient_surrogate(logp, weights, mask)


def surrogate_numpy(logp, weights, mask):
    return surrogate.policy_gradient_surrogate(logp, weights, mask).item()


# --- wrong gae (exercise 9.1) -----------------------------------------------------------------
def gae_by_loop(rew, value, next_value, terminated, truncated, mask, gamma, lam,
                cut_at_truncation=True, no_bootstrap_after="terminated", use_lam=True,
                backward=True, use_mask=True):
    """A student's GAE from scratch; the keyword arguments plant one mistake each."""
    rew, value, next_value = (np.asarray(x, dtype=float) for x in (rew, value, next_value))
    term, trunc, mask = (np.asarray(x, dtype=bool) for x in (terminated, truncated, mask))
    if not use_mask:
        mask = np.ones_like(mask)
    T, N = rew.shape
    next_valid = np.vstack([mask[1:], np.zeros((1, N), dtype=bool)])
    no_next = {"terminated": term, "nothing": np.zeros_like(term), "done": term | trunc}
    delta = rew + gamma * np.where(no_next[no_bootstrap_after], 0.0, next_value) - value
    stop = term | ~next_valid | (trunc if cut_at_truncation else False)
    factor = gamma * lam if use_lam else gamma
    adv, carried = np.zeros((T, N)), np.zeros(N)
    if backward:
        for t in reversed(range(T)):
            adv[t] = carried = delta[t] + factor * np.where(stop[t], 0.0, carried)
    else:
        for t in range(T):
            adv[t] = delta[t] + factor * carried
            carried = np.where(stop[t], 0.0, adv[t])
    return np.where(mask, adv, 0.0)


def planted(name, **mistake):
    """gae_by_loop with one mistake, under the exercise's signature (the checker passes keywords)."""
    def wrong(rew, value, next_value, terminated, truncated, mask, gamma, lam):
        return gae_by_loop(rew, value, next_value, terminated, truncated, mask, gamma, lam,
                           **mistake)
    wrong.__name__ = name
    return wrong


gae_no_cut_at_truncation = planted("gae_no_cut_at_truncation", cut_at_truncation=False)
gae_bootstraps_through_termination = planted("gae_bootstraps_through_termination",
                                             no_bootstrap_after="nothing")
gae_no_bootstrap_at_truncation = planted("gae_no_bootstrap_at_truncation",   # done = term | trunc
                                         no_bootstrap_after="done")
gae_forgets_lam = planted("gae_forgets_lam", use_lam=False)
gae_forward_recursion = planted("gae_forward_recursion", backward=False)
gae_ignores_mask = planted("gae_ignores_mask", use_mask=False)


def gae_positional(rew, value, next_value, terminated, truncated, mask, gamma, lam):
    return advantages.gae(rew, value, next_value, terminated, truncated, mask, gamma, lam)


CHECKERS = {
    "reward_to_go": (checks.check_reward_to_go, returns.reward_to_go,
                     [rtg_ignores_mask, rtg_forward_cumsum, rtg_ignores_gamma,
                      rtg_skips_current_reward, rtg_whole_return, rtg_discounts_from_start]),
    "policy_gradient_surrogate": (checks.check_policy_gradient_surrogate,
                                  surrogate.policy_gradient_surrogate,
                                  [surrogate_no_detach, surrogate_mean_over_steps,
                                   surrogate_ignores_mask, surrogate_wrong_sign, surrogate_numpy]),
    "gae": (checks.check_gae, gae_positional,
            [gae_no_cut_at_truncation, gae_bootstraps_through_termination,
             gae_no_bootstrap_at_truncation, gae_forgets_lam, gae_forward_recursion,
             gae_ignores_mask]),
}


@pytest.mark.parametrize("name", CHECKERS)
def test_checker_accepts_the_reference(name, capsys):
    checker, reference, _ = CHECKERS[name]
    checker(reference)
    assert "agree with the library" in capsys.readouterr().out


@pytest.mark.parametrize("name", CHECKERS)
def test_checker_reports_a_stub_as_not_implemented(name):
    checker, _, _ = CHECKERS[name]
    with pytest.raises(checks.ExerciseNotImplemented, match="not implemented yet"):
        checker(stub)


@pytest.mark.parametrize("name,mistake", [(name, m) for name, (_, _, ms) in CHECKERS.items()
                                          for m in ms], ids=lambda x: getattr(x, "__name__", x))
def test_checker_rejects_a_planted_mistake(name, mistake):
    checker, _, _ = CHECKERS[name]
    with pytest.raises(checks.CheckFailed) as info:
        checker(mistake)
    assert not isinstance(info.value, checks.ExerciseNotImplemented)
    message = str(info.value)
    assert name in message                                     # names the call
    if "expected shape" not in message and "scalar" not in message:
        assert "expected" in message and "got" in message


def test_each_checker_has_at_least_three_planted_mistakes():
    assert all(len(mistakes) >= 3 for _, _, mistakes in CHECKERS.values())


def test_an_exception_in_the_students_code_names_the_call():
    def broken(rew, mask, gamma=1.0):
        return rew[:, 99]
    with pytest.raises(checks.CheckFailed, match=r"reward_to_go\(rew=.* raised IndexError"):
        checks.check_reward_to_go(broken)


def test_gae_checker_accepts_a_loop_written_from_scratch(capsys):
    checks.check_gae(gae_by_loop)
    assert "gae: all" in capsys.readouterr().out


@pytest.mark.parametrize("mistake,hint", [
    (gae_no_cut_at_truncation, "stop at a truncation"),
    (gae_bootstraps_through_termination, "terminated step has no next value"),
    (gae_no_bootstrap_at_truncation, "truncated step still bootstraps"),
    (gae_forgets_lam, "lam = 0.5 is missing"),
    (gae_forward_recursion, "backwards in time"),
    (gae_ignores_mask, "masked steps"),
], ids=lambda x: getattr(x, "__name__", ""))
def test_gae_checker_names_the_mistake(mistake, hint):
    with pytest.raises(checks.CheckFailed, match=r"(?s)gae\(rew=.*expected.*got.*hint: .*"
                       + hint):
        checks.check_gae(mistake)
