"""The discount factor, both kinds: exact expectations of the two options, the undiscounted
gradient, cosines, and bad inputs (the discount lab is in test_labs.py, the checker of
exercise 5.1 in test_checks.py)."""
import numpy as np
import pytest

from acteach.advantages import td_advantage
from acteach.discount import (
    OptionComparison,
    cartpole_with_time_limit,
    compare_options,
    cosine_table,
    discounted_td_advantage,
    errors_by_distance,
    expected_gradient,
    expected_rewards,
    linear_controller,
    road_mdp,
    undiscounted,
    undiscounted_gradient,
    with_death,
    with_gamma,
)
from acteach.estimators import sample_estimates
from acteach.tabular import (TabularMDP, chain_mdp, cosine, exact_policy_gradient, exact_return,
                             gridworld_mdp, random_mdp, state_occupancy)


def _logits(mdp, seed, scale=0.7):
    return np.random.default_rng(seed).normal(size=(mdp.n_states, mdp.n_actions)) * scale


# Episodic or finite-horizon MDPs (option 1 is defined), gamma < 1.
EPISODIC = {
    "chain, terminal": chain_mdp(n_states=5, slip=0.1, gamma=0.9),
    "gridworld, H = 20 and terminals": gridworld_mdp(gamma=0.8),
    "random, H = 12": random_mdp(np.random.default_rng(1), n_states=6, n_actions=3, gamma=0.9,
                                 horizon=12),
    "random, terminal": random_mdp(np.random.default_rng(2), n_states=7, n_actions=2, gamma=0.95,
                                   n_terminal=2),
    "road, terminal": road_mdp(length=12, gamma=0.7),
}
CONTINUING = random_mdp(np.random.default_rng(3), n_states=5, n_actions=2, gamma=0.9)


def tiny_mdp(gamma):
    """A (start) -> B (action 0) or C (action 1), reward 0; B pays [0, 1]; C pays [0, 0];
    B and C loop on themselves; horizon 2. At uniform logits, by hand:
    option 1 = [[g/8, -g/8], [-1/8, 1/8], [0, 0]], option 2 = [[g/8, -g/8], [-g/8, g/8], [0, 0]],
    grad J_1 = [[1/8, -1/8], [-1/8, 1/8], [0, 0]]."""
    P = np.zeros((3, 2, 3))
    P[0, 0, 1] = P[0, 1, 2] = 1.0
    P[1, :, 1] = P[2, :, 2] = 1.0
    R = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    return TabularMDP(P, R, np.array([1.0, 0.0, 0.0]), gamma=gamma, horizon=2)


# --- exact expectations ------------------------------------------------------------------------

@pytest.mark.parametrize("name", EPISODIC)
def test_option_2_is_the_gradient_of_the_discounted_objective(name):
    mdp = EPISODIC[name]
    for seed in (0, 1):
        logits = _logits(mdp, seed)
        np.testing.assert_allclose(expected_gradient(mdp, logits, 2),
                                   exact_policy_gradient(mdp, logits), atol=1e-8, rtol=0)


@pytest.mark.parametrize("mdp", [*EPISODIC.values(), CONTINUING], ids=[*EPISODIC, "continuing"])
def test_option_2_is_the_undiscounted_gradient_of_a_world_that_ends_with_probability_1_minus_gamma(mdp):
    logits = _logits(mdp, 5)
    dying = with_death(mdp)
    padded = np.vstack([logits, np.zeros((1, mdp.n_actions))])   # the extra state's logits
    assert dying.gamma == 1.0 and dying.n_states == mdp.n_states + 1
    np.testing.assert_allclose(undiscounted_gradient(dying, padded)[:-1],
                               expected_gradient(mdp, logits, 2), atol=1e-10)
    assert exact_return(dying, padded) == pytest.approx(exact_return(mdp, logits), abs=1e-10)


def test_option_2_is_defined_on_a_continuing_mdp_option_1_is_not():
    logits = _logits(CONTINUING, 0)
    np.testing.assert_allclose(expected_gradient(CONTINUING, logits, 2),
                               exact_policy_gradient(CONTINUING, logits), atol=1e-8, rtol=0)
    for call in (lambda: expected_gradient(CONTINUING, logits, 1),
                 lambda: undiscounted_gradient(CONTINUING, logits),
                 lambda: state_occupancy(CONTINUING, logits, discount=1.0),
                 lambda: undiscounted(CONTINUING)):
        with pytest.raises(ValueError, match="^mdp: .*continuing MDP"):
            call()


@pytest.mark.parametrize("name", ["chain, terminal", "random, H = 12"])
def test_option_1_matches_the_monte_carlo_mean_of_its_estimator(name):
    # 20,000 single-trajectory estimates of estimate_gradient's estimator (sample_estimates is
    # what estimate_gradient calls), discount_option=1: every component within 4 SE of the
    # exact expectation; and the exact option 2 is rejected by the same sample.
    mdp = EPISODIC[name]
    logits = _logits(mdp, 0)
    est, _ = sample_estimates(mdp, logits, "reward_to_go", 1, 20_000, np.random.default_rng(7),
                              discount_option=1)
    mean, se = est.mean(axis=0), est.std(axis=0, ddof=1) / np.sqrt(len(est))
    exact = expected_gradient(mdp, logits, 1)
    z = np.abs(mean - exact)[se > 0] / se[se > 0]
    assert z.max() < 4.0
    z2 = np.abs(mean - expected_gradient(mdp, logits, 2))[se > 0] / se[se > 0]
    assert z2.max() > 10.0


def test_by_hand_on_a_tiny_mdp():
    g = 0.6
    mdp, logits = tiny_mdp(g), np.zeros((3, 2))
    np.testing.assert_allclose(expected_gradient(mdp, logits, 1),
                               [[g / 8, -g / 8], [-1 / 8, 1 / 8], [0, 0]], atol=1e-12)
    np.testing.assert_allclose(expected_gradient(mdp, logits, 2),
                               [[g / 8, -g / 8], [-g / 8, g / 8], [0, 0]], atol=1e-12)
    np.testing.assert_allclose(undiscounted_gradient(mdp, logits),
                               [[1 / 8, -1 / 8], [-1 / 8, 1 / 8], [0, 0]], atol=1e-12)
    cos = compare_options(mdp, logits).cosines()
    by_hand = (1 + g) / np.sqrt(2 * (1 + g ** 2))
    assert cos["option 1 vs grad J_1"] == pytest.approx(by_hand, abs=1e-12)
    assert cos["option 1 vs grad J_gamma"] == pytest.approx(by_hand, abs=1e-12)
    assert cos["option 2 vs grad J_gamma"] == pytest.approx(1.0, abs=1e-12)
    assert cos["option 2 vs grad J_1"] == pytest.approx(1.0, abs=1e-12)


def test_cosines_lie_in_minus_one_one():
    rng = np.random.default_rng(0)
    for k in range(20):
        mdp = random_mdp(rng, n_states=5, n_actions=3, gamma=float(rng.uniform(0, 1)),
                         horizon=int(rng.integers(1, 15)))
        for value in compare_options(mdp, _logits(mdp, k, 2.0)).cosines().values():
            assert np.isnan(value) or -1.0 <= value <= 1.0
    assert cosine([1.0, 0.0], [-3.0, 0.0]) == -1.0
    assert cosine([1.0, 1.0], [0.0, 2.0]) == pytest.approx(np.sqrt(0.5))
    assert cosine([0.0, 0.0], [1.0, 0.0]) == 0.0      # the contract of tabular.cosine: 0, not nan


@pytest.mark.parametrize("name", EPISODIC)
def test_with_gamma_one_both_options_are_the_undiscounted_gradient(name):
    mdp = with_gamma(EPISODIC[name], 1.0)
    logits = _logits(mdp, 3)
    exact = exact_policy_gradient(mdp, logits)
    for option in (1, 2):
        np.testing.assert_allclose(expected_gradient(mdp, logits, option), exact, atol=1e-10)
    np.testing.assert_allclose(undiscounted_gradient(EPISODIC[name], logits), exact, atol=1e-10)
    assert all(c == pytest.approx(1.0) for c in compare_options(mdp, logits).cosines().values())


def test_without_setbacks_on_the_road_option_1_is_the_undiscounted_gradient():
    # Actions change only their own reward: Q_gamma - V_gamma = Q_1 - V_1 at every state.
    mdp = road_mdp(length=15, setback=0.0, gamma=0.5)
    logits = _logits(mdp, 0)
    np.testing.assert_allclose(expected_gradient(mdp, logits, 1),
                               undiscounted_gradient(mdp, logits), atol=1e-12)
    assert cosine(expected_gradient(mdp, logits, 2), undiscounted_gradient(mdp, logits)) < 0.9


def test_visits_and_expected_rewards():
    for mdp in EPISODIC.values():
        logits = _logits(mdp, 4)
        np.testing.assert_allclose(state_occupancy(mdp, logits, discount=mdp.gamma),
                                   state_occupancy(mdp, logits), atol=1e-10)
        rewards = expected_rewards(mdp, logits, 400)
        np.testing.assert_allclose((mdp.gamma ** np.arange(400)) @ rewards,
                                   exact_return(mdp, logits), atol=1e-8)
        np.testing.assert_allclose(rewards.sum(), exact_return(undiscounted(mdp), logits),
                                   atol=1e-6)
    # continuing: partial sums grow like the average reward x T
    logits = _logits(CONTINUING, 0)
    rewards = expected_rewards(CONTINUING, logits, 4000)
    rate = rewards[-1]
    assert abs(rate) > 0.01
    assert rewards[:2000].sum() / rewards[:1000].sum() == pytest.approx(2.0, rel=0.02)


def test_cosine_table_lists_every_mdp():
    rows = [(name, compare_options(m, _logits(m, 0))) for name, m in EPISODIC.items()]
    table = cosine_table(rows)
    assert all(name in table for name in EPISODIC)
    assert isinstance(rows[0][1], OptionComparison)


# --- the discounted TD advantage -----------------------------------------------------------------

def test_a_step_both_terminated_and_truncated_counts_as_terminated():
    rew, value, next_value = np.array([[1.0]]), np.array([[2.0]]), np.array([[10.0]])
    flag = np.array([[True]])
    both = discounted_td_advantage(rew, value, next_value, flag, flag, flag, 0.5)
    truncated_only = discounted_td_advantage(rew, value, next_value, ~flag, flag, flag, 0.5)
    assert both[0, 0] == 1.0 - 2.0
    assert truncated_only[0, 0] == 1.0 + 0.5 * 10.0 - 2.0


def test_discounted_td_advantage_is_the_library_td_advantage():
    rng = np.random.default_rng(0)
    shape = (7, 5)
    args = [rng.normal(size=shape) for _ in range(3)]
    term, trunc = rng.random(shape) < 0.2, rng.random(shape) < 0.2
    mask = rng.random(shape) < 0.8
    np.testing.assert_allclose(discounted_td_advantage(*args, term, trunc, mask, 0.9),
                               td_advantage(*args, term, mask, 0.9))


# --- bad inputs -----------------------------------------------------------------------------------

GOOD = dict(rew=np.ones((3, 2)), value=np.zeros((3, 2)), next_value=np.zeros((3, 2)),
            terminated=np.zeros((3, 2), dtype=bool), truncated=np.zeros((3, 2), dtype=bool),
            mask=np.ones((3, 2), dtype=bool), gamma=0.9)


@pytest.mark.parametrize("change, name", [
    (dict(gamma=1.5), "gamma"), (dict(gamma=-0.1), "gamma"),
    (dict(mask=np.ones((2, 3), dtype=bool)), "mask"),
    (dict(terminated=np.zeros((3,), dtype=bool)), "terminated"),
    (dict(truncated=np.zeros((3, 3), dtype=bool)), "truncated"),
    (dict(mask=np.full((3, 2), 2)), "mask"), (dict(mask=np.full((3, 2), 0.5)), "mask"),
    (dict(terminated=np.full((3, 2), "yes")), "terminated"),
    (dict(truncated=np.full((3, 2), -1)), "truncated"),
    (dict(value=np.zeros((3, 1))), "value"),
])
def test_bad_advantage_inputs_name_the_argument(change, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        discounted_td_advantage(**{**GOOD, **change})


def test_flags_as_0_1_are_accepted():
    flags = {k: GOOD[k].astype(int) for k in ("terminated", "truncated", "mask")}
    np.testing.assert_allclose(discounted_td_advantage(**{**GOOD, **flags}),
                               discounted_td_advantage(**GOOD))


def test_bad_tabular_inputs_name_the_argument():
    mdp = EPISODIC["chain, terminal"]
    logits = _logits(mdp, 0)
    for option in (3, 0, True, "1", None):
        with pytest.raises(ValueError, match="^discount_option:"):
            expected_gradient(mdp, logits, option)
    for gamma in (1.5, -0.1, True):
        with pytest.raises(ValueError, match="^gamma:"):
            with_gamma(mdp, gamma)
        with pytest.raises(ValueError, match="^discount:"):
            state_occupancy(mdp, logits, discount=gamma)
    with pytest.raises(ValueError, match="^logits:"):
        expected_gradient(mdp, logits[:-1], 1)
    with pytest.raises(ValueError, match="^n_steps:"):
        expected_rewards(mdp, logits, 0)
    with pytest.raises(ValueError, match="^b:"):
        cosine(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="^setback:"):
        road_mdp(setback=1.0)
    with pytest.raises(ValueError, match="^max_episode_steps:"):
        cartpole_with_time_limit(0)
    with pytest.raises(ValueError, match="^sharpness:"):
        linear_controller([0.0, 1.0], 0.0)
    with pytest.raises(ValueError, match="^edges:"):
        errors_by_distance(np.zeros(3), np.zeros(3), [5, 1])


# --- CartPole past its time limit -----------------------------------------------------------------

def test_the_longer_cartpole_continues_the_same_episodes():
    from acteach.sampling import sample_episodes
    policy = linear_controller([0.0, 0.5, 1.0, 1.0], 30.0)       # reaches the limit
    short = sample_episodes("CartPole-v1", policy, 2, seed=0)
    env_id = cartpole_with_time_limit(600)
    assert cartpole_with_time_limit(600) == env_id               # registered once
    long = sample_episodes(env_id, policy, 2, seed=0)
    assert short.truncated[-1].all() and short.obs.shape[0] == 500
    assert long.obs.shape[0] > 500 and not long.truncated[499].any()
    np.testing.assert_array_equal(long.obs[:500], short.obs)
    np.testing.assert_array_equal(long.act[:500], short.act)


def test_errors_by_distance_by_hand():
    rows = errors_by_distance(np.array([1.0, 3.0, -2.0, 5.0]), np.array([0, 0, 1, 7]),
                              [0, 1, 5, 10])
    assert [(r.lo, r.hi, r.count) for r in rows] == [(0, 1, 2), (1, 5, 1), (5, 10, 1)]
    assert rows[0].mean == 2.0 and rows[0].rms == pytest.approx(np.sqrt(5.0))
    assert rows[0].se == pytest.approx(np.std([1.0, 3.0], ddof=1) / np.sqrt(2))


def test_gradient_statistics_measures_option_1_against_its_own_expectation():
    # Option 1 is biased for the discounted objective but unbiased for its own exact
    # expectation: 3,000 estimates of N = 5 (seed 3), every component within 4 SE.
    from acteach.discount import expected_gradient
    from acteach.estimators import gradient_statistics
    mdp = chain_mdp(n_states=4, gamma=0.8)
    logits = np.tile([0.0, 1.0], (mdp.n_states, 1))
    own = gradient_statistics(mdp, logits, "reward_to_go", 5, 3000, np.random.default_rng(3),
                              reference=expected_gradient(mdp, logits, 1), discount_option=1)
    assert own.max_bias_z < 4.0
    versus_j_gamma = gradient_statistics(mdp, logits, "reward_to_go", 5, 3000,
                                         np.random.default_rng(3), discount_option=1)
    assert versus_j_gamma.max_bias_z > 4.0


def test_discounted_weights_are_the_discounted_rewards_from_t_on():
    # Option 2's weight is sum_{t' >= t} gamma^t' r_t' (discounted from the episode's start);
    # option 1's is that over gamma^t; padded steps are 0 and their rewards never enter a sum.
    from acteach.estimators import discounted_weights
    rew = np.array([[1.0, 2.0], [2.0, 99.0], [4.0, 99.0]])
    mask = np.array([[1, 1], [1, 0], [1, 0]], dtype=bool)
    np.testing.assert_allclose(discounted_weights(rew, mask, 0.5, 2), [[3, 2], [2, 0], [1, 0]])
    np.testing.assert_allclose(discounted_weights(rew, mask, 0.5, 1), [[3, 2], [4, 0], [4, 0]])
    with pytest.raises(ValueError, match="^discount_option:"):
        discounted_weights(rew, mask, 0.5, 3)
