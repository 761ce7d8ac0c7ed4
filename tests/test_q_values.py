"""Notebook 02 (use Q): the exact Q and the Monte Carlo Q of k rollouts are unbiased, the Monte
Carlo variance falls with k as Var[q_exact] + C/k, k = 1 matches the reward-to-go, the Q lab's
numbers and drawing, and the checker of exercise 2.1 (accepts a correct function, rejects
planted mistakes)."""
import numpy as np
import pytest

from acteach import checks, tabular
from acteach.estimators import (
    Context,
    estimate_gradient,
    estimates_from_batch,
    gradient_statistics,
    method_weights,
    summarize,
)
from acteach.q_values import exact_q_weights, mc_q_estimate
from acteach.tabular import (
    chain_mdp,
    gridworld_mdp,
    random_mdp,
    rollout_returns,
    sample_trajectories,
    softmax_policy,
)
from acteach.widgets import QLab

# Episodic or finite-horizon MDPs only: on a discounted MDP without a horizon every rollout runs
# to the discount tail (~220 steps at gamma = 0.9), which makes q_mc slow.
MDPS = {
    "chain": chain_mdp(),                                        # gamma 1, ends at the goal
    "grid": gridworld_mdp(),                                     # horizon 20
    "chain-horizon-discounted": chain_mdp(gamma=0.8, horizon=12),
    "random-episodic": random_mdp(np.random.default_rng(12), n_states=8, gamma=1.0,
                                  n_terminal=2),
}


def logits_for(mdp, seed=0):
    """Random logits; on the chain, notebook 02's policy (pi(right) = 0.73): random logits there
    lean left and make episodes of ~30 steps, each starting k rollouts per step."""
    if mdp is MDPS["chain"]:
        return np.tile([0.0, 1.0], (mdp.n_states, 1))
    return np.random.default_rng(seed).normal(size=(mdp.n_states, mdp.n_actions)) * 0.5


# --- unbiasedness ---------------------------------------------------------------------------

@pytest.mark.parametrize("method,options",
                         [("q_exact", {}), ("q_mc", {"k": 1}), ("q_mc", {"k": 3})],
                         ids=["q_exact", "q_mc-k1", "q_mc-k3"])
@pytest.mark.parametrize("name", MDPS)
def test_q_estimators_are_unbiased(name, method, options):
    # 2,000 estimates of 5 trajectories, seed 1: every component of the mean within 4 standard
    # errors of exact_policy_gradient (a false alarm has probability < 1e-3 over all components).
    mdp = MDPS[name]
    stats = gradient_statistics(mdp, logits_for(mdp), method, 5, 2000, np.random.default_rng(1),
                                **options)
    assert stats.max_bias_z < 4.0, (stats.bias, stats.bias_se)


def test_q_exact_weights_are_the_exact_q_table():
    mdp = MDPS["chain-horizon-discounted"]
    logits = logits_for(mdp)
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


@pytest.mark.parametrize("name", ["chain", "random-episodic"])
def test_variance_falls_with_k_toward_q_exact(name):
    # One batch of 2,000 estimates of N = 10 (seed 3), rollouts seed 4: each step down
    # k=1 > k=4 > k=16 > q_exact exceeds 4 standard errors of the (paired) difference (measured:
    # 18 or more); the steps per estimate grow with k. Where the rollout term is small next to
    # Var[q_exact] (the discounted chain) the differences of variances are noisier: the next test
    # measures the rollout term itself there.
    mdp = MDPS[name]
    est, steps, base = _on_one_batch(mdp, logits_for(mdp), (1, 4, 16), repeats=2000)
    order = (1, 4, 16, "q_exact")
    for hi, lo in zip(order, order[1:]):
        gap, se = _variance_gap(est[hi], est[lo])
        assert gap > 4 * se, (hi, lo, gap, se)
    assert base < steps[1] < steps[4] < steps[16]


@pytest.mark.parametrize("name", ["chain", "grid", "chain-horizon-discounted"])
def test_rollout_term_falls_as_one_over_k(name):
    # Given the trajectories, the rollouts' noise has mean 0 and is independent across steps, so
    # E|g_k - g_exact|^2 = C / k exactly. k times the measured term agrees across k = 1, 4, 16
    # within 4 standard errors (one batch of 1,000 estimates of N = 10, seed 3).
    mdp = MDPS[name]
    logits = logits_for(mdp)
    est, _, _ = _on_one_batch(mdp, logits, (1, 4, 16))
    terms = {k: summarize("term", est[k] - est["q_exact"], np.zeros_like(logits), 10)
             for k in (1, 4, 16)}
    scaled = {k: (k * t.mse, k * t.mse_se) for k, t in terms.items()}
    for a, b in ((1, 4), (4, 16), (1, 16)):
        assert abs(scaled[a][0] - scaled[b][0]) < 4 * np.hypot(scaled[a][1], scaled[b][1]), scaled


@pytest.mark.parametrize("name", ["chain", "grid", "random-episodic"])
def test_q_mc_k1_has_the_variance_of_reward_to_go(name):
    # 2,000 estimates of N = 10 each (seeds 5 and 6): the variances agree within 4 standard errors
    # of the difference (at this size, about 10-20% of the variance). They are not the same
    # estimator: consecutive reward-to-gos share one future, k = 1 rollouts are independent, so
    # at 100,000 per-trajectory estimates the variances differ by a few percent (measured:
    # gridworld +4%, chain cut at 15 steps +6%, random episodic -4%). The exact claim, "the same
    # distribution at every step", is the next test.
    mdp = MDPS[name]
    logits = logits_for(mdp)
    rtg = gradient_statistics(mdp, logits, "reward_to_go", 10, 2000, np.random.default_rng(5))
    mc1 = gradient_statistics(mdp, logits, "q_mc", 10, 2000, np.random.default_rng(6), k=1)
    assert abs(rtg.variance - mc1.variance) < 4 * np.hypot(rtg.variance_se, mc1.variance_se), \
        (rtg.variance, mc1.variance)


@pytest.mark.parametrize("name", ["chain", "grid"])
def test_q_mc_k1_weights_match_reward_to_go_step_by_step(name):
    # At every step, one rollout from (s_t, a_t) and the reward-to-go have the same distribution.
    # Per (s, a), the sums over a trajectory's visits of w and w^2 have the same mean under both
    # weights; trajectories are independent, so the paired per-trajectory differences have an
    # honest standard error: every mean difference within 4 of them (8,000 trajectories, seed 7).
    mdp = MDPS[name]
    logits = logits_for(mdp)
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
def test_k_below_one_or_not_an_integer_is_refused(k):
    mdp = MDPS["chain"]
    logits = logits_for(mdp)
    batch = sample_trajectories(mdp, logits, 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="^k: expected a positive integer"):
        mc_q_estimate(mdp, logits, batch.obs, batch.act, batch.mask, k, np.random.default_rng(0))
    with pytest.raises(ValueError, match="^k:"):
        estimate_gradient(mdp, logits, 3, "q_mc", np.random.default_rng(0), k=k)
    with pytest.raises(ValueError, match="^k:"):
        gradient_statistics(mdp, logits, "q_mc", 2, 3, np.random.default_rng(0), k=k)


# --- the Q lab ------------------------------------------------------------------------------

LAB_MDP = chain_mdp()
LAB_LOGITS = np.tile([0.0, 1.0], (LAB_MDP.n_states, 1))


@pytest.fixture(scope="module")
def lab():
    return QLab(LAB_MDP, LAB_LOGITS, k_values=(1, 4, 16), n_values=(1, 5, 20), pool=1000)


def test_lab_update_gives_reward_to_go_q_mc_and_q_exact(lab):
    stats = lab.update(k=4, n=5, seed=0)
    assert [s.method for s in stats] == ["reward_to_go", "q_mc k=4", "q_exact"]
    assert all(s.n_trajectories == 5 and s.n_repeats == 200 for s in stats)
    rtg, mc, exact = stats
    assert rtg.steps_per_estimate == exact.steps_per_estimate < mc.steps_per_estimate
    assert lab.update(4, 20)[1].steps_per_estimate == pytest.approx(4 * mc.steps_per_estimate)
    assert lab.update(4, 5, seed=0)[1] is mc                            # cached
    assert lab.update(4, 5, seed=1)[1].variance != mc.variance


def test_lab_variance_falls_with_k(lab):
    v = {k: lab.update(k, 1)[1].variance for k in lab.k_values}
    exact = lab.update(1, 1)[2].variance
    assert v[1] > v[4] > v[16] > exact


def test_lab_statistics_agree_with_gradient_statistics(lab):
    # Same estimator, independent samples: variances within 4 standard errors (seeds 0 and 9).
    ours = lab.update(4, 5, seed=0)[1]
    ref = gradient_statistics(LAB_MDP, LAB_LOGITS, "q_mc", 5, 400, np.random.default_rng(9), k=4)
    assert abs(ours.variance - ref.variance) < 4 * np.hypot(ours.variance_se, ref.variance_se)
    assert ours.steps_per_estimate == pytest.approx(ref.steps_per_estimate, rel=0.1)


def test_lab_curves_run_through_the_n_values(lab):
    curves = lab.curves(0)
    assert list(curves) == ["reward_to_go", "q_mc k=1", "q_mc k=4", "q_mc k=16", "q_exact"]
    steps, var = curves["q_mc k=4"]
    assert steps.shape == var.shape == (3,)
    assert np.all(np.diff(steps) > 0) and var[0] == lab.update(4, 1)[1].variance


def test_lab_render_draws_a_png_that_changes_with_k_and_n(lab):
    png1, text = lab.render(1, 5)
    png2, _ = lab.render(16, 5)
    png3, _ = lab.render(16, 20)
    assert png1[:8] == b"\x89PNG\r\n\x1a\n"
    assert len({png1, png2, png3}) == 3
    assert "q_mc k=1" in text and "equal budget" in text and "variance x steps" in text


def test_lab_widget_builds_and_redraws(lab):
    box = lab.widget(k=4, n=5)
    k_slider, n_slider = box.children[0].children
    image, readout = box.children[1], box.children[2]
    before = image.value
    k_slider.value = 16
    assert image.value != before and "k = 16" in readout.value
    n_slider.value = 20
    assert "N = 20" in readout.value


def test_bad_lab_arguments(lab):
    with pytest.raises(ValueError, match="^k:"):
        lab.update(k=3, n=5)
    with pytest.raises(ValueError, match="^n:"):
        lab.update(k=4, n=7)
    with pytest.raises(ValueError, match="^pool:"):
        QLab(LAB_MDP, LAB_LOGITS, pool=50)
    with pytest.raises(ValueError, match="^k_values:"):
        QLab(LAB_MDP, LAB_LOGITS, k_values=(0, 1))
    with pytest.raises(ValueError, match="^logits:"):
        QLab(LAB_MDP, np.zeros((2, 2)))


# --- the checker of exercise 2.1 ------------------------------------------------------------

def q_from_rollouts(mdp, logits, obs, act, mask, k, rng):
    """A correct solution, written independently of the library's mc_q_estimate."""
    t, n = np.nonzero(mask)
    states, actions, times = (np.repeat(x, k) for x in (obs[t, n], act[t, n], t))
    returns, _ = rollout_returns(mdp, logits, states, actions, times, rng)
    q = np.zeros(mask.shape)
    q[t, n] = returns.reshape(-1, k).mean(axis=1)
    return q


def library_version(mdp, logits, obs, act, mask, k, rng):
    return mc_q_estimate(mdp, logits, obs, act, mask, k, rng)[0]


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 2.1: write the body of q_from_rollouts")


def q_sums_the_k_returns(mdp, logits, obs, act, mask, k, rng):
    return q_from_rollouts(mdp, logits, obs, act, mask, k, rng) * k


def q_ignores_k(mdp, logits, obs, act, mask, k, rng):
    return q_from_rollouts(mdp, logits, obs, act, mask, 1, rng)


def q_starts_at_time_zero(mdp, logits, obs, act, mask, k, rng):
    t, n = np.nonzero(mask)
    states, actions = np.repeat(obs[t, n], k), np.repeat(act[t, n], k)
    returns, _ = rollout_returns(mdp, logits, states, actions, np.zeros_like(states), rng)
    q = np.zeros(mask.shape)
    q[t, n] = returns.reshape(-1, k).mean(axis=1)
    return q


def q_samples_a_fresh_action(mdp, logits, obs, act, mask, k, rng):
    pi = softmax_policy(logits)
    t, n = np.nonzero(mask)
    states, times = np.repeat(obs[t, n], k), np.repeat(t, k)
    actions = (rng.random(states.size)[:, None] > np.cumsum(pi[states], axis=1)).sum(axis=1)
    returns, _ = rollout_returns(mdp, logits, states, actions, times, rng)
    q = np.zeros(mask.shape)
    q[t, n] = returns.reshape(-1, k).mean(axis=1)
    return q


def q_does_not_mask(mdp, logits, obs, act, mask, k, rng):
    return q_from_rollouts(mdp, logits, obs, act, np.ones_like(mask), k, rng)


def q_reuses_one_rollout(mdp, logits, obs, act, mask, k, rng):
    t, n = np.nonzero(mask)
    returns, _ = rollout_returns(mdp, logits, obs[t, n], act[t, n], t, rng)
    q = np.zeros(mask.shape)
    q[t, n] = np.repeat(returns, k).reshape(-1, k).mean(axis=1)
    return q


def q_ignores_rng(mdp, logits, obs, act, mask, k, rng):
    return q_from_rollouts(mdp, logits, obs, act, mask, k, np.random.default_rng())


def q_loops_over_steps(mdp, logits, obs, act, mask, k, rng):
    q = np.zeros(mask.shape)
    for t, n in zip(*np.nonzero(mask)):
        returns, _ = rollout_returns(mdp, logits, np.repeat(obs[t, n], k),
                                     np.repeat(act[t, n], k), np.repeat(t, k), rng)
        q[t, n] = returns.mean()
    return q


def q_returns_the_steps_too(mdp, logits, obs, act, mask, k, rng):
    return mc_q_estimate(mdp, logits, obs, act, mask, k, rng)


MISTAKES = {   # mistake -> a phrase its message must contain (the hint that names it)
    q_sums_the_k_returns: "don't sum",
    q_ignores_k: "not the mean of k",
    q_starts_at_time_zero: "as `times`",
    q_samples_a_fresh_action: "given action",
    q_does_not_mask: "padded steps",
    q_reuses_one_rollout: "ratio",
    q_ignores_rng: "draw every random number from rng",
    q_loops_over_steps: "calls of rollout_returns",
    q_returns_the_steps_too: "expected an array, got tuple",
}


@pytest.mark.parametrize("fn", [q_from_rollouts, library_version], ids=lambda f: f.__name__)
def test_checker_accepts_a_correct_function(fn, capsys):
    checks.check_q_from_rollouts(fn)
    assert "\u2713 q_from_rollouts" in capsys.readouterr().out


def test_checker_reports_a_stub_as_not_implemented():
    with pytest.raises(checks.ExerciseNotImplemented, match="not implemented yet"):
        checks.check_q_from_rollouts(stub)


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda f: f.__name__)
def test_checker_rejects_a_planted_mistake(mistake):
    with pytest.raises(checks.CheckFailed) as info:
        checks.check_q_from_rollouts(mistake)
    assert not isinstance(info.value, checks.ExerciseNotImplemented)
    message = str(info.value)
    assert "q_from_rollouts(" in message                       # names the call
    assert "expected" in message and "got" in message
    assert MISTAKES[mistake] in message, message


def test_checker_restores_rollout_returns():
    original = tabular.rollout_returns
    with pytest.raises(checks.CheckFailed):
        checks.check_q_from_rollouts(q_loops_over_steps)
    with pytest.raises(checks.CheckFailed):
        checks.check_q_from_rollouts(q_sums_the_k_returns)
    assert tabular.rollout_returns is original
    assert globals()["rollout_returns"] is original


def test_checker_moments_match_the_exact_values_and_sampling():
    # The checker's exact mean and variance of a rollout's return: the mean is exact_values' Q;
    # the variance matches 20,000 rollouts per step within 10% (seed 0).
    for label, mdp, logits, obs, act, mask, k in checks._q_cases():
        Q, Var, V = checks._return_moments(mdp, logits)
        values = tabular.exact_values(mdp, logits)
        np.testing.assert_allclose(Q, values.Q)
        np.testing.assert_allclose(V, values.V)
        t, n = np.nonzero(mask)
        s, a = obs[t, n], act[t, n]
        m = 20_000
        returns, _ = rollout_returns(mdp, logits, np.repeat(s, m), np.repeat(a, m),
                                     np.repeat(t, m), np.random.default_rng(0))
        sampled = returns.reshape(-1, m).var(axis=1)
        np.testing.assert_allclose(sampled, Var[t, s, a], rtol=0.1, atol=1e-9, err_msg=label)
        assert (~mask).any(), f"{label}: the case needs padded steps"
