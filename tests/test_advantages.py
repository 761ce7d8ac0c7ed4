"""Targets and advantages with terminated and truncated kept apart: hand-worked answers."""
import numpy as np
import pytest

from acteach.advantages import (bootstrapped_return, bootstrapped_target, gae, n_step_return,
                                td_advantage)

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


# --- n-step returns and GAE (notebook 09) ----------------------------------------------------

# gamma = 0.5. Column 0 is a vector env's: episode A (t = 0, 1) cut by the time limit at t = 1
# (next_value[1] = 10 is V of its true final observation); t = 2 is the autoreset step, masked
# (its entries are garbage); episode B (t = 3, 4) terminates at t = 4 (next_value[4] = 50 is
# the terminal state's and must not count); episode C starts at t = 5, cut by the rollout's end.
# Column 1: one episode over the whole rollout, V(s_{t+1}) = next_value[t] = value[t + 1].
VEC = dict(
    rew=np.array([[1.0, 1.0], [2.0, 1.0], [99.0, 1.0], [1.0, 1.0], [3.0, 1.0], [2.0, 1.0]]),
    value=np.array([[3.0, 0.0], [6.0, 2.0], [77.0, 4.0], [2.0, 6.0], [4.0, 8.0], [8.0, 10.0]]),
    next_value=np.array([[6.0, 2.0], [10.0, 4.0], [55.0, 6.0], [4.0, 8.0], [50.0, 10.0],
                         [6.0, 12.0]]),
    terminated=np.array([[0, 0], [0, 0], [0, 0], [0, 0], [1, 0], [0, 0]], dtype=bool),
    truncated=np.array([[0, 0], [1, 0], [0, 0], [0, 0], [0, 0], [0, 0]], dtype=bool),
    mask=np.array([[1, 1], [1, 1], [0, 1], [1, 1], [1, 1], [1, 1]], dtype=bool),
)


def test_n_step_return_by_hand():
    v = VEC
    got = n_step_return(v["rew"], v["next_value"], v["terminated"], v["truncated"], v["mask"],
                        0.5, n=2)
    expected = [[1 + 0.5 * 2 + 0.25 * 10, 1 + 0.5 * 1 + 0.25 * 4],   # A's window ends at its cut
                [2 + 0.5 * 10, 1.5 + 0.25 * 6],                      # truncated: bootstrap
                [0.0, 1.5 + 0.25 * 8],                               # autoreset step: 0
                [1 + 0.5 * 3, 1.5 + 0.25 * 10],                      # B terminates at t = 4
                [3.0, 1.5 + 0.25 * 12],                              # terminated: r only
                [2 + 0.5 * 6, 1 + 0.5 * 12]]                         # rollout's end: bootstrap
    np.testing.assert_allclose(got, expected)


def test_gae_by_hand():
    v = VEC
    got = gae(v["rew"], v["value"], v["next_value"], v["terminated"], v["truncated"], v["mask"],
              0.5, lam=0.5)
    # column 0: delta = [1 + 3 - 3, 2 + 5 - 6, -, 1 + 2 - 2, 3 - 4, 2 + 3 - 8] = [1, 1, -, 1, -1, -3]
    # and the recursion (gamma lam = 0.25) stops at the truncation, the termination and the end
    col0 = [1 + 0.25 * 1, 1.0, 0.0, 1 + 0.25 * -1, -1.0, -3.0]
    # column 1: delta_t = 1 + 0.5 (2t + 2) - 2t = 2 - t; A_t = delta_t + 0.25 A_{t+1}
    col1 = [0.0] * 6
    following = 0.0
    for t in reversed(range(6)):
        col1[t] = following = (2 - t) + 0.25 * following
    np.testing.assert_allclose(got, np.column_stack([col0, col1]))
    assert got[0, 0] == 1.25 and got[5, 1] == -3.0


def _vector_env_rollout(seed, T=12, N=5):
    """Random vector-env columns: episodes end at random (terminated, truncated or both), an end
    is followed by a masked autoreset step or directly by the next episode, garbage on masked
    steps, and V consistent inside an episode: next_value[t] = value[t + 1]."""
    rng = np.random.default_rng(seed)
    ends = rng.random((T, N)) < 0.25
    kind = rng.integers(0, 3, size=(T, N))
    mask = np.ones((T, N), dtype=bool)
    mask[1:] &= ~(ends[:-1] & (rng.random((T - 1, N)) < 0.5))      # some autoreset steps
    ends &= mask
    value = rng.normal(size=(T, N)) * 3
    next_value = np.vstack([value[1:], rng.normal(size=(1, N))])
    next_value = np.where(ends | ~np.vstack([mask[1:], np.ones((1, N), bool)]),
                          rng.normal(size=(T, N)) * 3, next_value)
    rew = np.where(mask, rng.normal(size=(T, N)), 99.0)
    return dict(rew=rew, value=np.where(mask, value, 77.0), next_value=next_value,
                terminated=ends & (kind != 1), truncated=ends & (kind != 0), mask=mask)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("gamma", [0.9, 1.0])
def test_gae_identities(seed, gamma):
    c = _vector_env_rollout(seed)
    args = (c["rew"], c["value"], c["next_value"], c["terminated"], c["truncated"], c["mask"])
    # lam = 1: the bootstrapped return minus V; lam = 0: the TD advantage
    ret = bootstrapped_return(c["rew"], c["next_value"], c["terminated"], c["truncated"],
                              c["mask"], gamma)
    np.testing.assert_allclose(gae(*args, gamma, lam=1.0),
                               np.where(c["mask"], ret - c["value"], 0.0), atol=1e-12)
    np.testing.assert_allclose(gae(*args, gamma, lam=0.0),
                               td_advantage(c["rew"], c["value"], c["next_value"],
                                            c["terminated"], c["mask"], gamma), atol=1e-12)
    # in between, A_t = sum_k (gamma lam)^k delta_{t+k} up to the end of the episode
    lam, delta = 0.7, td_advantage(*args[:4], c["mask"], gamma)
    end = c["terminated"] | c["truncated"] | ~np.vstack([c["mask"][1:], np.zeros((1, 5), bool)])
    expected = np.zeros_like(delta)
    for t, n in zip(*np.nonzero(c["mask"])):
        k = 0
        while True:
            expected[t, n] += (gamma * lam) ** k * delta[t + k, n]
            if end[t + k, n]:
                break
            k += 1
    np.testing.assert_allclose(gae(*args, gamma, lam=lam), expected, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("gamma", [0.9, 1.0])
def test_n_step_return_identities(seed, gamma):
    c = _vector_env_rollout(seed)
    args = (c["rew"], c["next_value"], c["terminated"], c["truncated"], c["mask"], gamma)
    np.testing.assert_allclose(n_step_return(*args, n=1),
                               bootstrapped_target(c["rew"], c["next_value"], c["terminated"],
                                                   c["mask"], gamma), atol=1e-12)
    ret = bootstrapped_return(*args)
    for n in (12, 13, 100):                                        # n >= T
        np.testing.assert_allclose(n_step_return(*args, n=n), ret, atol=1e-12)
    # in between: the rewards of the window, then V where it closes (a plain loop per cell)
    end = c["terminated"] | c["truncated"] | ~np.vstack([c["mask"][1:], np.zeros((1, 5), bool)])
    expected = np.zeros_like(ret)
    for t, n in zip(*np.nonzero(c["mask"])):
        for k in range(3):
            expected[t, n] += gamma ** k * c["rew"][t + k, n]
            if end[t + k, n] or k == 2:
                if not c["terminated"][t + k, n]:
                    expected[t, n] += gamma ** (k + 1) * c["next_value"][t + k, n]
                break
    np.testing.assert_allclose(n_step_return(*args, n=3), expected, atol=1e-12)


def test_gae_on_a_tabular_batch_with_lam_one_is_the_return_minus_v():
    # a real batch: next_obs[t] = obs[t + 1] inside a trajectory, so the identity holds
    from acteach.returns import reward_to_go
    from acteach.tabular import chain_mdp, exact_values, sample_trajectories
    mdp = chain_mdp(gamma=0.9)
    logits = np.zeros((6, 2))
    b = sample_trajectories(mdp, logits, 30, np.random.default_rng(0))
    V = exact_values(mdp, logits).V
    adv = gae(b.rew, V[b.obs], V[b.next_obs], b.terminated, b.truncated, b.mask, 0.9, 1.0)
    bootstrap = bootstrapped_return(b.rew, V[b.next_obs], b.terminated, b.truncated, b.mask, 0.9)
    np.testing.assert_allclose(adv, np.where(b.mask, bootstrap - V[b.obs], 0.0), atol=1e-10)
    if not b.truncated.any():                      # every episode reached the goal
        np.testing.assert_allclose(adv, np.where(b.mask, reward_to_go(b.rew, b.mask, 0.9)
                                                 - V[b.obs], 0.0), atol=1e-10)


@pytest.mark.parametrize("call,argument", [
    (lambda: n_step_return(REW, NEXT_V, TERM, TRUNC, MASK, 0.5, n=0), "n"),
    (lambda: n_step_return(REW, NEXT_V, TERM, TRUNC, MASK, 0.5, n=2.0), "n"),
    (lambda: n_step_return(REW, NEXT_V, TERM, TRUNC, MASK, 0.5, n=True), "n"),
    (lambda: n_step_return(REW, NEXT_V, TERM, TRUNC[:, :1], MASK, 0.5, n=2), "truncated"),
    (lambda: n_step_return(REW, NEXT_V[:2], TERM, TRUNC, MASK, 0.5, n=2), "next_value"),
    (lambda: n_step_return(REW, NEXT_V, TERM, TRUNC, MASK, 1.1, n=2), "gamma"),
    (lambda: gae(REW, NEXT_V, NEXT_V, TERM, TRUNC, MASK, 0.5, lam=1.5), "lam"),
    (lambda: gae(REW, NEXT_V, NEXT_V, TERM, TRUNC, MASK, 0.5, lam=-0.1), "lam"),
    (lambda: gae(REW, NEXT_V, NEXT_V, TERM, TRUNC, MASK, 0.5, lam="0.9"), "lam"),
    (lambda: gae(REW, NEXT_V[:, :1], NEXT_V, TERM, TRUNC, MASK, 0.5, lam=0.9), "value"),
    (lambda: gae(REW, NEXT_V, NEXT_V, TERM, TRUNC * 2, MASK, 0.5, lam=0.9), "truncated"),
    (lambda: gae(REW, NEXT_V, NEXT_V, TERM, TRUNC, MASK * 0.5, 0.5, lam=0.9), "mask"),
    (lambda: gae(REW[:, 0], NEXT_V, NEXT_V, TERM, TRUNC, MASK, 0.5, lam=0.9), "rew"),
])
def test_n_step_and_gae_bad_input_names_the_argument(call, argument):
    with pytest.raises(ValueError, match=f"^{argument}:"):
        call()
