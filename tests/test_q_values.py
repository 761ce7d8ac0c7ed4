"""Notebook 02 (use Q): Q from V in one Bellman step is the exact Q; the exact Q and the Monte
Carlo Q of k rollouts are unbiased, the Monte Carlo variance falls with k as Var[q_exact] + C/k,
k = 1 matches the reward-to-go (the Q lab's numbers and drawing are in test_labs.py, the checker
of exercise 2.1 in test_checks.py)."""
import numpy as np
import pytest

from acteach import tabular
from acteach.estimators import (
    Context,
    estimate_gradient,
    estimates_from_batch,
    gradient_statistics,
    method_weights,
    summarize,
)
from acteach.q_values import exact_q_weights, mc_q_estimate, q_from_v
from acteach.tabular import sample_trajectories

# The teaching MDPs of conftest.py that are episodic or have a horizon: on a discounted MDP
# without one every rollout runs to the discount tail (~220 steps at gamma = 0.9), which makes
# q_mc slow. chain: gamma 1, ends at the goal; grid: horizon 20.
EPISODIC = ["chain", "grid", "chain-horizon-discounted", "random-episodic"]


@pytest.fixture
def logits(mdp_name, mdp, logits_for):
    """Random logits; on the chain, notebook 02's policy (pi(right) = 0.73): random logits there
    lean left and make episodes of ~30 steps, each starting k rollouts per step."""
    if mdp_name == "chain":
        return np.tile([0.0, 1.0], (mdp.n_states, 1))
    return logits_for(mdp)


# --- unbiasedness ---------------------------------------------------------------------------

@pytest.mark.parametrize("method,options",
                         [("q_exact", {}), ("q_mc", {"k": 1}), ("q_mc", {"k": 3})],
                         ids=["q_exact", "q_mc-k1", "q_mc-k3"])
@pytest.mark.parametrize("mdp_name", EPISODIC)
def test_q_estimators_are_unbiased(mdp, logits, method, options):
    # 2,000 estimates of 5 trajectories, seed 1: every component of the mean within 4 standard
    # errors of exact_policy_gradient (a false alarm has probability < 1e-3 over all components).
    stats = gradient_statistics(mdp, logits, method, 5, 2000, np.random.default_rng(1),
                                **options)
    assert stats.max_bias_z < 4.0, (stats.bias, stats.bias_se)


@pytest.mark.parametrize("mdp_name", ["chain-horizon-discounted"])
def test_q_exact_weights_are_the_exact_q_table(mdp, logits):
    batch = sample_trajectories(mdp, logits, 30, np.random.default_rng(2))
    Q = tabular.exact_values(mdp, logits).Q                       # (H, S, A)
    expected = np.zeros(batch.mask.shape)
    for t, n in zip(*np.nonzero(batch.mask)):
        expected[t, n] = Q[t, batch.obs[t, n], batch.act[t, n]]
    np.testing.assert_allclose(exact_q_weights(mdp, logits, batch.obs, batch.act, batch.mask),
                               expected)
    # option 2 of the discount multiplies by gamma^t, as for the reward-to-go
    disc = 0.8 ** np.arange(len(batch.mask))[:, None]
    np.testing.assert_allclose(method_weights("q_exact", batch, Context(0.8, mdp, logits)),
                               expected * disc)


# --- variance against k ---------------------------------------------------------------------

def _on_one_batch(mdp, logits, ks, n=10, repeats=1000, seed=3):
    """Estimates of reward_to_go, q_exact and q_mc for each k on the same trajectories."""
    batch = sample_trajectories(mdp, logits, n * repeats, np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1)
    est = {m: estimates_from_batch(mdp, logits, batch, m, n)[0]
           for m in ("reward_to_go", "q_exact")}
    steps = {}
    for k in ks:
        est[k], extra = estimates_from_batch(mdp, logits, batch, "q_mc", n, rng, k=k)
        steps[k] = (batch.n_steps + extra) / repeats
    return est, steps, batch.n_steps / repeats


def _variance_gap(a, b):
    """Var[a] - Var[b] for two estimators on the same trajectories (R, S, A) each, and the
    standard error of that difference (paired: one difference of squared deviations per
    estimate)."""
    R = len(a)
    fa, fb = a.reshape(R, -1), b.reshape(R, -1)
    d = ((fa - fa.mean(0)) ** 2).sum(1) - ((fb - fb.mean(0)) ** 2).sum(1)
    return d.mean() * R / (R - 1), d.std(ddof=1) / np.sqrt(R)


@pytest.mark.parametrize("mdp_name", ["chain", "random-episodic"])
def test_variance_falls_with_k_toward_q_exact(mdp, logits):
    # One batch of 2,000 estimates of N = 10 (seed 3), rollouts seed 4: each step down
    # k=1 > k=4 > k=16 > q_exact exceeds 4 standard errors of the (paired) difference (measured:
    # 18 or more); the steps per estimate grow with k. Where the rollout term is small next to
    # Var[q_exact] (the discounted chain) the differences of variances are noisier: the next test
    # measures the rollout term itself there.
    est, steps, base = _on_one_batch(mdp, logits, (1, 4, 16), repeats=2000)
    order = (1, 4, 16, "q_exact")
    for hi, lo in zip(order, order[1:]):
        gap, se = _variance_gap(est[hi], est[lo])
        assert gap > 4 * se, (hi, lo, gap, se)
    assert base < steps[1] < steps[4] < steps[16]


@pytest.mark.parametrize("mdp_name", ["chain", "grid", "chain-horizon-discounted"])
def test_rollout_term_falls_as_one_over_k(mdp, logits):
    # Given the trajectories, the rollouts' noise has mean 0 and is independent across steps, so
    # E|g_k - g_exact|^2 = C / k exactly. k times the measured term agrees across k = 1, 4, 16
    # within 4 standard errors (one batch of 1,000 estimates of N = 10, seed 3).
    est, _, _ = _on_one_batch(mdp, logits, (1, 4, 16))
    terms = {k: summarize("term", est[k] - est["q_exact"], np.zeros_like(logits), 10)
             for k in (1, 4, 16)}
    scaled = {k: (k * t.mse, k * t.mse_se) for k, t in terms.items()}
    for a, b in ((1, 4), (4, 16), (1, 16)):
        assert abs(scaled[a][0] - scaled[b][0]) < 4 * np.hypot(scaled[a][1], scaled[b][1]), scaled


@pytest.mark.parametrize("mdp_name", ["chain", "grid", "random-episodic"])
def test_q_mc_k1_has_the_variance_of_reward_to_go(mdp, logits):
    # 2,000 estimates of N = 10 each (seeds 5 and 6): the variances agree within 4 standard errors
    # of the difference (at this size, about 10-20% of the variance). They are not the same
    # estimator: consecutive reward-to-gos share one future, k = 1 rollouts are independent, so
    # at 100,000 per-trajectory estimates the variances differ by a few percent (measured:
    # gridworld +4%, chain cut at 15 steps +6%, random episodic -4%). The exact claim, "the same
    # distribution at every step", is the next test.
    rtg = gradient_statistics(mdp, logits, "reward_to_go", 10, 2000, np.random.default_rng(5))
    mc1 = gradient_statistics(mdp, logits, "q_mc", 10, 2000, np.random.default_rng(6), k=1)
    assert abs(rtg.variance - mc1.variance) < 4 * np.hypot(rtg.variance_se, mc1.variance_se), \
        (rtg.variance, mc1.variance)


@pytest.mark.parametrize("mdp_name", ["chain", "grid"])
def test_q_mc_k1_weights_match_reward_to_go_step_by_step(mdp, logits):
    # At every step, one rollout from (s_t, a_t) and the reward-to-go have the same distribution.
    # Per (s, a), the sums over a trajectory's visits of w and w^2 have the same mean under both
    # weights; trajectories are independent, so the paired per-trajectory differences have an
    # honest standard error: every mean difference within 4 of them (8,000 trajectories, seed 7).
    batch = sample_trajectories(mdp, logits, 8000, np.random.default_rng(7))
    ctx = Context(1.0, mdp, logits, np.random.default_rng(8))
    rtg = method_weights("reward_to_go", batch, ctx, discount_option=1)
    mc1 = method_weights("q_mc", batch, ctx, k=1, discount_option=1)
    cell = batch.obs * mdp.n_actions + batch.act                    # (T, N) index of (s, a)
    for power in (1, 2):
        for c in np.unique(cell[batch.mask]):
            here = batch.mask & (cell == c)
            d = (np.where(here, rtg ** power - mc1 ** power, 0.0)).sum(axis=0)   # (N,)
            se = d.std(ddof=1) / np.sqrt(d.size)
            assert abs(d.mean()) < 4 * se + 1e-12, (power, divmod(int(c), mdp.n_actions))


# --- bad k ----------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [0, -1, 1.5, True])
@pytest.mark.parametrize("mdp_name", ["chain"])
def test_k_below_one_or_not_an_integer_is_refused(mdp, logits, k):
    batch = sample_trajectories(mdp, logits, 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="^k: expected a positive integer"):
        mc_q_estimate(mdp, logits, batch.obs, batch.act, batch.mask, k, np.random.default_rng(0))
    with pytest.raises(ValueError, match="^k:"):
        estimate_gradient(mdp, logits, 3, "q_mc", np.random.default_rng(0), k=k)
    with pytest.raises(ValueError, match="^k:"):
        gradient_statistics(mdp, logits, "q_mc", 2, 3, np.random.default_rng(0), k=k)


# --- Q from V ---------------------------------------------------------------------------------

def test_q_from_v_of_the_exact_v_is_the_exact_q(mdp, logits):
    values = tabular.exact_values(mdp, logits)
    np.testing.assert_allclose(q_from_v(mdp, values.V), values.Q, atol=1e-12)


def test_q_from_v_by_hand_ignores_the_value_of_a_terminal_state():
    # states 0, 1, goal; no slip; V = [1, 2, 5]: the goal's 5 never counts
    mdp = tabular.chain_mdp(n_states=2, slip=0.0)
    np.testing.assert_allclose(q_from_v(mdp, np.array([1.0, 2.0, 5.0])),
                               [[0.0, 1.0], [0.0, 10.0], [0.0, 0.0]])


@pytest.mark.parametrize("mdp_name", ["grid"])
def test_q_from_v_wants_one_value_per_step_with_a_horizon(mdp):
    with pytest.raises(ValueError, match=r"^V: expected shape \(21, 11\)"):
        q_from_v(mdp, np.zeros(mdp.n_states))
