"""The exact variance decomposition (notebook 09): the parts add up, the totals agree with Monte
Carlo, a perfect V(s) changes only the action part; the action-dependent control variate is
unbiased for any Q_hat, and its variance is what the decomposition says.

Statistical tests state their seed and tolerance (4 standard errors). The Monte Carlo checks of
variances use the MDPs with a horizon or a discount: on the episodic ones without a horizon the
squared norms have a long tail (long episodes), so the sample variance and its own standard
error are unreliable at a few thousand samples (measured: z ~ -3 at 4,000, ~ -0.5 at 100,000).
"""
import numpy as np
import pytest

from acteach.decomposition import (
    DECOMPOSABLE,
    control_variate_estimates,
    control_variate_statistics,
    decomposition_table,
    mean_weight,
    variance_decomposition,
)
from acteach.discount import expected_gradient
from acteach.estimators import (
    Context,
    estimates_from_batch,
    gradient_statistics,
    method_weights,
    score_weighted_sums,
)
from acteach.tabular import (chain_mdp, exact_policy_gradient, exact_values, sample_trajectories,
                             softmax_gradient, softmax_policy, state_occupancy)

METHODS = ["reward_to_go", "baseline_v_exact", "advantage_exact", "control_variate"]
BOUNDED = ["grid", "chain-horizon-discounted", "random-discounted"]


@pytest.mark.parametrize("method", METHODS + ["q_exact"])
def test_parts_add_up_and_the_mean_is_the_gradient(mdp, logits, method):
    dec = variance_decomposition(mdp, logits, method)
    scale = 1.0 + dec.total
    np.testing.assert_allclose(dec.state + dec.action + dec.future, dec.per_step,
                               atol=1e-8 * scale, rtol=0)
    row = dec.row()
    assert abs(row["state"] + row["action"] + row["future"] + row["across steps"]
               - row["total"]) < 1e-8 * scale
    assert min(dec.state.min(), dec.action.min(), dec.future.min()) > -1e-10 * scale
    np.testing.assert_allclose(dec.mean, exact_policy_gradient(mdp, logits), atol=1e-9)


@pytest.mark.parametrize("mdp_name", ["chain", "grid", "random-episodic",
                                      "chain-horizon-discounted"])
def test_option_one_mean_is_its_expectation(mdp, logits):
    dec = variance_decomposition(mdp, logits, "reward_to_go", discount_option=1)
    np.testing.assert_allclose(dec.mean, expected_gradient(mdp, logits, 1), atol=1e-9)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mdp_name", BOUNDED)
def test_total_variance_matches_monte_carlo(mdp, logits, method):
    # 4,000 single-trajectory estimates (seed 30): the sample variance within 4 standard errors
    # of the exact Var(g).
    rng = np.random.default_rng(30)
    if method == "control_variate":
        stats = control_variate_statistics(mdp, logits, 1, 4000, rng)
    else:
        stats = gradient_statistics(mdp, logits, method, 1, 4000, rng)
    exact = variance_decomposition(mdp, logits, method).total
    assert abs(stats.variance - exact) < 4 * stats.variance_se, (stats.variance, exact)


@pytest.mark.parametrize("method", ["reward_to_go", "baseline_v_exact", "advantage_exact"])
@pytest.mark.parametrize("mdp_name", ["grid", "chain-horizon-discounted"])
def test_sum_of_step_variances_matches_monte_carlo(mdp, logits, method):
    # 3,000 trajectories (seed 31): each step's term g_t apart, its sample variance summed over
    # t, within 4 standard errors of the exact sum_t Var(g_t) = sum of the three parts.
    M = 3000
    batch = sample_trajectories(mdp, logits, M, np.random.default_rng(31))
    w = method_weights(method, batch, Context(mdp.gamma, mdp, logits))
    pi, each, T = softmax_policy(logits), np.arange(M), len(w)
    spread = np.zeros(M)
    for t in range(T):
        g_t = score_weighted_sums(pi, batch, np.where(np.arange(T)[:, None] == t, w, 0.0),
                                  each, M).reshape(M, -1)
        spread += ((g_t - g_t.mean(axis=0)) ** 2).sum(axis=1) * M / (M - 1)
    dec = variance_decomposition(mdp, logits, method)
    se = spread.std(ddof=1) / np.sqrt(M)
    assert abs(spread.mean() - dec.per_step.sum()) < 4 * se, (spread.mean(), dec.per_step.sum())


def test_what_a_perfect_v_removes_and_what_it_cannot(mdp, logits):
    rtg, v, adv, cv = (variance_decomposition(mdp, logits, m) for m in METHODS)
    close = dict(rtol=1e-9, atol=1e-12)
    # V(s) lowers the action part only: the state and future parts are untouched
    np.testing.assert_allclose(v.state, rtg.state, **close)
    np.testing.assert_allclose(v.future, rtg.future, **close)
    assert v.action.sum() < rtg.action.sum()
    # the exact advantage (a perfect critic in place of the return) removes the future part
    np.testing.assert_allclose(adv.future, 0.0, atol=1e-10)
    np.testing.assert_allclose(adv.action, v.action, **close)
    np.testing.assert_allclose(adv.state, v.state, **close)
    # Q^pi(s, a) with its correction removes the whole action part, and nothing else
    np.testing.assert_allclose(cv.action, 0.0, atol=1e-10)
    np.testing.assert_allclose(cv.state, rtg.state, **close)
    np.testing.assert_allclose(cv.future, rtg.future, **close)


@pytest.mark.parametrize("mdp_name", ["random-episodic"])
def test_a_state_dependent_baseline_v_table_keeps_state_and_future(mdp, logits):
    rtg = variance_decomposition(mdp, logits, "reward_to_go")
    for table in (np.full(mdp.n_states, 3.0), exact_values(mdp, logits).V):
        dec = variance_decomposition(mdp, logits, "baseline_v", value=table)
        np.testing.assert_allclose(dec.state, rtg.state, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(dec.future, rtg.future, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        dec.total, variance_decomposition(mdp, logits, "baseline_v_exact").total, rtol=1e-12)


@pytest.mark.parametrize("mdp_name", ["chain", "grid", "chain-horizon-discounted"])
def test_control_variate_is_unbiased_for_any_q_hat(mdp, logits):
    # 2,000 estimates of N = 5 (seed 32), with the exact Q^pi and with Q^pi plus fixed noise
    # of twice its mean size (seed 33): every component within 4 standard errors.
    Q = exact_values(mdp, logits).Q
    wrong = Q + np.random.default_rng(33).normal(size=Q.shape) * 2 * np.abs(Q).mean()
    for q_hat in (None, wrong):
        stats = control_variate_statistics(mdp, logits, 5, 2000, np.random.default_rng(32),
                                           q_hat=q_hat)
        assert stats.max_bias_z < 4, stats.max_bias_z


@pytest.mark.parametrize("mdp_name", ["grid"])
def test_control_variate_without_its_correction_is_biased(mdp, logits):
    # Subtracting Q_hat(s, a) alone (the "baseline_action" method) has mean 0, not the gradient.
    stats = gradient_statistics(mdp, logits, "baseline_action", 5, 3000,
                                np.random.default_rng(32))
    assert stats.max_bias_z > 4


@pytest.mark.parametrize("mdp_name", BOUNDED)
def test_control_variate_variance_against_the_v_baseline(mdp, logits):
    # Common random numbers: 4,000 single-trajectory estimates (seed 34) with the control
    # variate (exact Q^pi) and with reward-to-go minus V^pi; the paired difference of their
    # spreads is within 4 standard errors of the exact difference of the total variances.
    M = 4000
    batch = sample_trajectories(mdp, logits, M, np.random.default_rng(34))

    def spread(est):
        flat = est.reshape(M, -1)
        return ((flat - flat.mean(axis=0)) ** 2).sum(axis=1) * M / (M - 1)

    cv = spread(control_variate_estimates(mdp, logits, batch, 1))
    v = spread(estimates_from_batch(mdp, logits, batch, "baseline_v_exact", 1)[0])
    diff = cv - v
    exact = (variance_decomposition(mdp, logits, "control_variate").total
             - variance_decomposition(mdp, logits, "baseline_v_exact").total)
    assert abs(diff.mean() - exact) < 4 * diff.std(ddof=1) / np.sqrt(M), (diff.mean(), exact)


@pytest.mark.parametrize("mdp_name", ["grid"])
def test_decomposition_table_rows(mdp, logits):
    rows = decomposition_table(mdp, logits)
    assert [r["method"] for r in rows] == ["reward_to_go", "baseline_v_exact", "control_variate",
                                           "advantage_exact"]
    assert set(DECOMPOSABLE) >= {r["method"] for r in rows}


@pytest.mark.parametrize("call,argument", [
    (lambda m, l: variance_decomposition(m, l, "gae"), "method"),
    (lambda m, l: variance_decomposition(m, l, "baseline_v"), "value"),
    (lambda m, l: variance_decomposition(m, l, "baseline_v", value=np.zeros(3)), "value"),
    (lambda m, l: variance_decomposition(m, l, "control_variate", q_hat=np.zeros(3)), "q_hat"),
    (lambda m, l: variance_decomposition(m, l, discount_option=3), "discount_option"),
    (lambda m, l: variance_decomposition(m, l[:2]), "logits"),
    (lambda m, l: control_variate_statistics(m, l, 0, 10, np.random.default_rng(0)),
     "n_trajectories"),
    (lambda m, l: control_variate_statistics(m, l, 1, 10, np.random.default_rng(0),
                                             q_hat=np.zeros((2, 2))), "q_hat"),
])
@pytest.mark.parametrize("mdp_name", ["grid"])
def test_bad_input_names_the_argument(call, argument, mdp, logits):
    with pytest.raises(ValueError, match=f"^{argument}:"):
        call(mdp, logits)


# --- E[w_t | s, a] of the n-step advantage and of GAE (notebook 09's lab) -----------------------

@pytest.mark.parametrize("mdp_name", ["chain", "random-discounted", "random-episodic"])
def test_mean_weight_with_v_pi_is_the_advantage_at_every_lam_and_n(mdp, logits):
    V, Q = exact_values(mdp, logits)
    for options in ({"lam": 0.0}, {"lam": 0.7}, {"lam": 1.0}, {"n": 1}, {"n": 4}, {}):
        np.testing.assert_allclose(mean_weight(mdp, logits, V, **options), Q - V[:, None],
                                   atol=1e-9, err_msg=str(options))


@pytest.mark.parametrize("mdp_name", ["chain", "random-discounted"])
def test_mean_weight_with_any_v_by_hand(mdp, logits):
    # one step: E[delta | s, a]; lam = 0 is one step; lam = 1 (or n = inf) telescopes to the
    # return minus V(s_t), whatever V is; GAE at lam and n steps agree with their first terms.
    value = np.random.default_rng(5).normal(size=mdp.n_states)
    Q = exact_values(mdp, logits).Q
    live = ~mdp.terminal
    delta = mdp.R + mdp.gamma * (mdp.P * live) @ value - value[:, None]
    np.testing.assert_allclose(mean_weight(mdp, logits, value, n=1), delta, atol=1e-12)
    np.testing.assert_allclose(mean_weight(mdp, logits, value, lam=0.0), delta, atol=1e-12)
    for options in ({"lam": 1.0}, {}):
        np.testing.assert_allclose(mean_weight(mdp, logits, value, **options),
                                   Q - value[:, None], atol=1e-9)
    assert not np.allclose(mean_weight(mdp, logits, value, n=2), delta)


@pytest.mark.parametrize("options, method, sampled, biased", [
    ({"lam": 0.5}, "gae", {"lam": 0.5}, True), ({"n": 3}, "n_step", {"n": 3}, True),
    ({}, "n_step", {"n": 10_000}, False)])              # n = inf: n past every episode's end
@pytest.mark.parametrize("mdp_name", ["chain"])
def test_mean_weight_gives_the_sampled_estimator_its_mean(mdp, logits, options, method, sampled,
                                                          biased):
    # 3,000 one-trajectory estimates with a wrong critic (V = 0), seed 2: every component of the
    # mean within 4.5 standard errors of the softmax contraction of E[w | s, a] (option 2).
    value = np.zeros(mdp.n_states)
    q = mean_weight(mdp, logits, value, **options)
    pi = softmax_policy(logits)
    expected = softmax_gradient(state_occupancy(mdp, logits), pi,
                                q - (pi * q).sum(axis=1, keepdims=True))
    s = gradient_statistics(mdp, logits, method, 1, 3000, np.random.default_rng(2), value=value,
                            **sampled)
    seen = s.bias_se > 0                           # the goal is never left: no score there
    z = np.abs(s.mean - expected)[seen] / s.bias_se[seen]
    assert z.max() < 4.5, z.max()
    bias = np.abs(expected - exact_policy_gradient(mdp, logits)).max()
    assert bias > 0.1 if biased else bias < 1e-9      # V = 0 biases the short sums only


@pytest.mark.parametrize("mdp_name", ["chain"])
@pytest.mark.parametrize("call, argument", [
    (lambda m, l: mean_weight(chain_mdp(horizon=5), l, np.zeros(6)), "mdp"),
    (lambda m, l: mean_weight(m, l, np.zeros(3)), "value"),
    (lambda m, l: mean_weight(m, l, np.zeros(6), lam=0.5, n=2), "n"),
    (lambda m, l: mean_weight(m, l, np.zeros(6), lam=1.5), "lam"),
    (lambda m, l: mean_weight(m, l, np.zeros(6), n=0), "n"),
    (lambda m, l: mean_weight(m, l[:2], np.zeros(6)), "logits"),
])
def test_mean_weight_bad_input_names_the_argument(call, argument, mdp, logits):
    with pytest.raises(ValueError, match=f"^{argument}:"):
        call(mdp, logits)
