"""The estimator lab: unbiased estimators agree with the exact gradient, the score sums are
right, and the statistics are consistent."""
import numpy as np
import pytest

from acteach.estimators import (
    Context,
    estimate_gradient,
    gradient_statistics,
    method_weights,
    sample_estimates,
    score_weighted_sums,
    summarize,
)
from acteach.returns import reward_to_go, total_return
from acteach.tabular import chain_mdp, gridworld_mdp, random_mdp, sample_trajectories, softmax_policy

from mdps import MDPS, logits_for      # shared by the statistical tests


@pytest.mark.parametrize("method", ["reinforce", "reward_to_go"])
@pytest.mark.parametrize("name", MDPS)
def test_estimator_is_unbiased(name, method):
    # 4,000 estimates of 5 trajectories, seed 1: every component of the mean within 4 standard
    # errors of the exact gradient (a false alarm has probability < 1e-3 over all components).
    mdp = MDPS[name]
    stats = gradient_statistics(mdp, logits_for(mdp), method, 5, 4000, np.random.default_rng(1))
    assert stats.max_bias_z < 4.0, (stats.bias, stats.bias_se)


@pytest.mark.parametrize("name", MDPS)
def test_reward_to_go_has_less_variance_than_reinforce(name):
    mdp, rng = MDPS[name], np.random.default_rng(2)
    rei = gradient_statistics(mdp, logits_for(mdp), "reinforce", 5, 4000, rng)
    rtg = gradient_statistics(mdp, logits_for(mdp), "reward_to_go", 5, 4000, rng)
    # the gap exceeds 4 standard errors of the difference
    assert rei.variance - rtg.variance > 4 * np.hypot(rei.variance_se, rtg.variance_se)


def test_score_weighted_sums_match_a_plain_loop():
    mdp = random_mdp(np.random.default_rng(3), n_states=5, n_actions=3, gamma=0.9)
    logits = logits_for(mdp, 4)
    pi = softmax_policy(logits)
    batch = sample_trajectories(mdp, logits, 7, np.random.default_rng(5))
    weights = np.random.default_rng(6).normal(size=batch.mask.shape)
    group = np.array([0, 0, 1, 1, 1, 2, 2])
    expected = np.zeros((3, 5, 3))
    for t, n in zip(*np.nonzero(batch.mask)):
        s, a = batch.obs[t, n], batch.act[t, n]
        score = np.zeros((5, 3))
        score[s] = -pi[s]
        score[s, a] += 1.0                       # grad of log softmax(logits[s])[a]
        expected[group[n]] += score * weights[t, n]
    np.testing.assert_allclose(score_weighted_sums(pi, batch, weights, group, 3), expected)


def test_weights_follow_the_lecture():
    mdp = chain_mdp(gamma=0.5)
    batch = sample_trajectories(mdp, np.zeros((6, 2)), 20, np.random.default_rng(7))
    T = len(batch.mask)
    disc = 0.5 ** np.arange(T)[:, None]
    rtg = reward_to_go(batch.rew, batch.mask, 0.5)
    np.testing.assert_allclose(method_weights("reward_to_go", batch, Context(0.5)), rtg * disc)
    np.testing.assert_allclose(method_weights("reward_to_go", batch, Context(0.5),
                                              discount_option=1), rtg)
    np.testing.assert_allclose(method_weights("reinforce", batch, Context(0.5)),
                               total_return(batch.rew, batch.mask, 0.5) * batch.mask)


def test_estimate_gradient_is_the_mean_of_its_trajectories():
    mdp, logits = chain_mdp(), np.zeros((6, 2))
    g = estimate_gradient(mdp, logits, 10, "reward_to_go", np.random.default_rng(8))
    per_trajectory, _ = sample_estimates(mdp, logits, "reward_to_go", 1, 10,
                                         np.random.default_rng(8))
    np.testing.assert_allclose(g, per_trajectory.mean(axis=0))


def test_statistics_are_consistent():
    mdp = gridworld_mdp()
    rng = np.random.default_rng(9)
    s5 = gradient_statistics(mdp, np.zeros((mdp.n_states, 4)), "reward_to_go", 5, 3000, rng)
    s20 = gradient_statistics(mdp, np.zeros((mdp.n_states, 4)), "reward_to_go", 20, 3000, rng)
    # MSE = |bias|^2 + variance, up to the noise of the estimates (exact identity of samples)
    assert s5.mse == pytest.approx(s5.bias_norm ** 2 + s5.variance * (2999 / 3000), rel=1e-9)
    # variance falls as 1/N: 4x the trajectories, 1/4 of the variance (within 4 SE)
    assert abs(s5.variance / 4 - s20.variance) < 4 * np.hypot(s5.variance_se / 4, s20.variance_se)


def test_summarize_by_hand():
    est = np.array([[1.0, 0.0], [3.0, 2.0]])
    stats = summarize("x", est, np.array([1.0, 1.0]), n_trajectories=1)
    np.testing.assert_allclose(stats.mean, [2.0, 1.0])
    np.testing.assert_allclose(stats.bias, [1.0, 0.0])
    assert stats.variance == pytest.approx(4.0)      # per-component sample variances 2 + 2
    assert stats.mse == pytest.approx(((0 + 1) + (4 + 1)) / 2)   # squared errors 1 and 5
