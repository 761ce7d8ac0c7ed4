"""Targets and advantages with terminated and truncated kept apart: hand-worked answers."""
import numpy as np
import pytest

from acteach.advantages import bootstrapped_return, bootstrapped_target, td_advantage

# Two columns, gamma = 0.5. Column 0: three steps, cut by the time limit at t = 2.
# Column 1: two steps, terminated at t = 1 (its third cell is padding with garbage).
REW = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 99.0]])
MASK = np.array([[1, 1], [1, 1], [1, 0]], dtype=bool)
NEXT_V = np.array([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]])
TERM = np.array([[0, 0], [0, 1], [0, 0]], dtype=bool)
TRUNC = np.array([[0, 0], [0, 0], [1, 0]], dtype=bool)


def test_one_step_target_by_hand():
    expected = [[1 + 0.5 * 10, 1 + 0.5 * 20],
                [2 + 0.5 * 30, 1.0],                 # terminated: no bootstrap
                [3 + 0.5 * 50, 0.0]]                 # truncated: bootstrap; padding: 0
    np.testing.assert_allclose(bootstrapped_target(REW, NEXT_V, TERM, MASK, 0.5), expected)


def test_td_advantage_by_hand():
    value = np.array([[4.0, 5.0], [6.0, 7.0], [8.0, 9.0]])
    expected = [[6 - 4, 11 - 5], [17 - 6, 1 - 7], [28 - 8, 0]]
    np.testing.assert_allclose(td_advantage(REW, value, NEXT_V, TERM, MASK, 0.5), expected)


def test_return_bootstraps_at_truncation_and_stops_at_termination():
    expected = [[1 + 0.5 * 16, 1 + 0.5 * 1], [2 + 0.5 * 28, 1.0], [3 + 0.5 * 50, 0.0]]
    np.testing.assert_allclose(bootstrapped_return(REW, NEXT_V, TERM, TRUNC, MASK, 0.5), expected)


def test_truncation_treated_as_termination_loses_the_future():
    wrong = bootstrapped_return(REW, NEXT_V, TERM | TRUNC, np.zeros_like(TRUNC), MASK, 0.5)
    right = bootstrapped_return(REW, NEXT_V, TERM, TRUNC, MASK, 0.5)
    np.testing.assert_allclose(right[:, 0] - wrong[:, 0], [0.125 * 50, 0.25 * 50, 0.5 * 50])


def test_a_step_both_terminated_and_truncated_counts_as_terminated():
    both = TRUNC | np.array([[0, 0], [0, 0], [1, 0]], dtype=bool)
    terminated = TERM | both
    ret = bootstrapped_return(REW, NEXT_V, terminated, both, MASK, 0.5)
    assert ret[2, 0] == 3.0 and ret[0, 0] == 1 + 0.5 * (2 + 0.5 * 3)


def test_episodes_following_each_other_in_a_column():
    # A vector env's column: episode A (2 steps, terminated), then episode B (2 steps, cut by
    # the end of the rollout: bootstrap from V(next_obs) of the last step).
    rew = np.array([[1.0], [1.0], [1.0], [1.0]])
    term = np.array([[0], [1], [0], [0]], dtype=bool)
    next_v = np.array([[5.0], [7.0], [5.0], [8.0]])
    ret = bootstrapped_return(rew, next_v, term, np.zeros_like(term), np.ones_like(term), 1.0)
    np.testing.assert_allclose(ret[:, 0], [2.0, 1.0, 1 + 1 + 8, 1 + 8])


def test_without_truncation_the_return_is_the_reward_to_go():
    from acteach.returns import reward_to_go
    rng = np.random.default_rng(0)
    rew = rng.normal(size=(6, 4))
    lengths = np.array([6, 3, 1, 5])
    mask = np.arange(6)[:, None] < lengths
    term = np.arange(6)[:, None] == lengths - 1
    ret = bootstrapped_return(rew, rng.normal(size=(6, 4)), term, np.zeros_like(term), mask, 0.9)
    np.testing.assert_allclose(ret, reward_to_go(rew, mask, 0.9))


def test_flags_may_be_zero_one():
    ints = bootstrapped_target(REW, NEXT_V, TERM.astype(int), MASK.astype(int), 0.5)
    np.testing.assert_allclose(ints, bootstrapped_target(REW, NEXT_V, TERM, MASK, 0.5))


@pytest.mark.parametrize("call,argument", [
    (lambda: bootstrapped_target(REW, NEXT_V, TERM, MASK, gamma=1.5), "gamma"),
    (lambda: bootstrapped_target(REW, NEXT_V, TERM, MASK[:2], 0.5), "mask"),
    (lambda: bootstrapped_target(REW, NEXT_V, TERM * 2, MASK, 0.5), "terminated"),
    (lambda: bootstrapped_target(REW, NEXT_V, TERM, MASK * 0.5, 0.5), "mask"),
    (lambda: bootstrapped_target(REW, NEXT_V[:, :1], TERM, MASK, 0.5), "next_value"),
    (lambda: td_advantage(REW, np.zeros(3), NEXT_V, TERM, MASK), "value"),
    (lambda: bootstrapped_return(REW, NEXT_V, TERM, TRUNC[:, :1], MASK), "truncated"),
    (lambda: bootstrapped_target(REW[:, 0], NEXT_V, TERM, MASK), "rew"),
    (lambda: bootstrapped_target(np.full((3, 2), np.nan), NEXT_V, TERM, MASK), "rew"),
])
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(ValueError, match=f"^{argument}:"):
        call()
