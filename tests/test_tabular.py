"""Exact values and gradients of tabular MDPs, checked against finite differences, Bellman's
equations, hand-worked answers and Monte Carlo."""
import numpy as np
import pytest

from acteach.returns import total_return
from acteach.tabular import (
    TabularMDP,
    chain_mdp,
    cosine,
    exact_policy_gradient,
    exact_return,
    exact_values,
    gridworld_mdp,
    policy_transitions,
    random_mdp,
    row_cosines,
    sample_trajectories,
    softmax_gradient,
    softmax_policy,
    state_occupancy,
)

# Every kind of MDP the course uses: finite and infinite horizon, with and without terminal
# states, gamma < 1 and gamma = 1.
CONFIGS = {
    "infinite, gamma=0.9, no terminal": dict(gamma=0.9),
    "infinite, gamma=1, terminal": dict(gamma=1.0, n_terminal=2),
    "infinite, gamma=0.7, terminal": dict(gamma=0.7, n_terminal=1),
    "horizon 6, gamma=1, no terminal": dict(gamma=1.0, horizon=6),
    "horizon 5, gamma=0.8, terminal": dict(gamma=0.8, horizon=5, n_terminal=2),
}


def finite_difference_gradient(mdp, logits, eps=1e-6):
    grad = np.zeros_like(logits)
    for i in np.ndindex(logits.shape):
        step = np.zeros_like(logits)
        step[i] = eps
        grad[i] = (exact_return(mdp, logits + step) - exact_return(mdp, logits - step)) / (2 * eps)
    return grad


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_policy_gradient_matches_finite_differences(config, seed):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, n_states=6, n_actions=3, **CONFIGS[config])
    logits = rng.normal(size=(6, 3))
    np.testing.assert_allclose(exact_policy_gradient(mdp, logits),
                               finite_difference_gradient(mdp, logits), atol=1e-6)


@pytest.mark.parametrize("mdp", [chain_mdp(), chain_mdp(gamma=0.9), gridworld_mdp(),
                                 gridworld_mdp(horizon=None, gamma=0.95)],
                         ids=["chain", "chain-discounted", "grid", "grid-infinite"])
def test_teaching_mdps_gradient_matches_finite_differences(mdp):
    logits = np.random.default_rng(3).normal(size=(mdp.n_states, mdp.n_actions))
    np.testing.assert_allclose(exact_policy_gradient(mdp, logits),
                               finite_difference_gradient(mdp, logits), atol=1e-5)


@pytest.mark.parametrize("config", CONFIGS)
def test_values_satisfy_bellman_equations(config):
    rng = np.random.default_rng(4)
    mdp = random_mdp(rng, n_states=5, n_actions=2, **CONFIGS[config])
    logits = rng.normal(size=(5, 2))
    pi, live = softmax_policy(logits), ~mdp.terminal
    V, Q = exact_values(mdp, logits)
    if mdp.horizon is None:
        np.testing.assert_allclose(Q, mdp.R + mdp.gamma * mdp.P @ (V * live), atol=1e-10)
        np.testing.assert_allclose(V, (pi * Q).sum(1) * live, atol=1e-10)
    else:
        assert V.shape == (mdp.horizon + 1, 5) and Q.shape == (mdp.horizon, 5, 2)
        np.testing.assert_allclose(V[-1], 0.0)
        np.testing.assert_allclose(Q[0], mdp.R + mdp.gamma * mdp.P @ (V[1] * live), atol=1e-10)


def test_chain_hand_worked_return():
    # No slip, a policy that (almost surely) steps right: -1, -1, then +10 at the last state.
    mdp = chain_mdp(n_states=3, slip=0.0)
    logits = np.tile([-30.0, 30.0], (4, 1))
    assert exact_return(mdp, logits) == pytest.approx(-1 - 1 + 10, abs=1e-9)
    # The same with gamma = 0.5: -1 - 0.5 + 0.25 * 10.
    assert exact_return(chain_mdp(3, slip=0.0, gamma=0.5), logits) == pytest.approx(1.0, abs=1e-9)


def test_one_step_bandit_gradient_by_hand():
    # One state, horizon 1, rewards (1, 0): J = pi_0, dJ/dlogit_b = pi_0 (1[b=0] - pi_b).
    mdp = TabularMDP(P=np.ones((1, 2, 1)), R=[[1.0, 0.0]], mu0=[1.0], horizon=1)
    logits = np.array([[0.3, -0.2]])
    p0 = softmax_policy(logits)[0, 0]
    assert exact_return(mdp, logits) == pytest.approx(p0)
    np.testing.assert_allclose(exact_policy_gradient(mdp, logits),
                               [[p0 * (1 - p0), -p0 * (1 - p0)]])


@pytest.mark.parametrize("name,mdp", [("chain", chain_mdp()), ("grid", gridworld_mdp()),
                                      ("random", random_mdp(np.random.default_rng(5), gamma=0.9))])
def test_sampled_returns_match_exact_return(name, mdp):
    # Monte Carlo mean of 40,000 returns within 4 standard errors of J (seed 6).
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(mdp.n_states, mdp.n_actions)) * 0.5
    batch = sample_trajectories(mdp, logits, 40_000, rng)
    returns = total_return(batch.rew, batch.mask, mdp.gamma)
    se = returns.std() / np.sqrt(len(returns))
    assert abs(returns.mean() - exact_return(mdp, logits)) < 4 * se


def test_sample_trajectories_layout():
    mdp = gridworld_mdp(horizon=8)
    rng = np.random.default_rng(7)
    batch = sample_trajectories(mdp, np.zeros((mdp.n_states, 4)), 500, rng)
    T, N = batch.mask.shape
    assert N == 500 and T <= 8
    lengths = batch.lengths
    # valid steps form a prefix of each column
    np.testing.assert_array_equal(batch.mask, np.arange(T)[:, None] < lengths[None, :])
    ended = batch.terminated | batch.truncated
    # exactly one end flag per trajectory, on its last valid step
    np.testing.assert_array_equal(ended.sum(0), 1)
    np.testing.assert_array_equal(ended[lengths - 1, np.arange(N)], True)
    assert not (batch.terminated & batch.truncated).any()
    # terminated means the next state is terminal; truncated happens only at the horizon
    assert mdp.terminal[batch.next_obs[batch.terminated]].all()
    assert (lengths[batch.truncated.any(0)] == 8).all()
    assert (batch.rew[~batch.mask] == 0).all()
    # consecutive steps chain: next_obs[t] = obs[t + 1]
    both = batch.mask[1:]
    np.testing.assert_array_equal(batch.next_obs[:-1][both], batch.obs[1:][both])


def test_discounted_infinite_horizon_is_truncated_where_the_tail_is_negligible():
    mdp = random_mdp(np.random.default_rng(8), n_states=4, n_actions=2, gamma=0.5)
    batch = sample_trajectories(mdp, np.zeros((4, 2)), 50, np.random.default_rng(9))
    assert batch.truncated[-1].all() and 0.5 ** len(batch.mask) < 1e-9


def test_sampling_is_reproducible():
    mdp = chain_mdp()
    a = sample_trajectories(mdp, np.zeros((6, 2)), 100, np.random.default_rng(10))
    b = sample_trajectories(mdp, np.zeros((6, 2)), 100, np.random.default_rng(10))
    np.testing.assert_array_equal(a.obs, b.obs)
    np.testing.assert_array_equal(a.act, b.act)


# --- the shared helpers: P_pi, the occupancy, the softmax-score contraction, cosines ---------

def test_policy_transitions_by_hand_and_rows_sum_to_one():
    mdp = chain_mdp(n_states=2, slip=0.0)                 # states 0, 1, goal
    pi = np.array([[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]])
    P_pi = policy_transitions(mdp, pi)
    np.testing.assert_allclose(P_pi, [[0.25, 0.75, 0.0], [0.5, 0.0, 0.5], [0.0, 0.0, 1.0]])
    rng = np.random.default_rng(0)
    m = random_mdp(rng, n_states=5, n_actions=3)
    np.testing.assert_allclose(policy_transitions(m, softmax_policy(rng.normal(size=(5, 3))))
                               .sum(axis=1), 1.0)


@pytest.mark.parametrize("config", CONFIGS)
def test_state_occupancy_counts_discounted_visits(config):
    # d(s) (or d_t(s)) against a Monte Carlo count of c^t 1[s_t = s] on 20,000 trajectories,
    # every entry within 5 SE; c = gamma (the default) and c = 1 where episodes end.
    rng = np.random.default_rng(5)
    mdp = random_mdp(rng, n_states=5, n_actions=2, **CONFIGS[config])
    logits = rng.normal(size=(5, 2))
    batch = sample_trajectories(mdp, logits, 20_000, np.random.default_rng(6))
    T, N = batch.mask.shape
    discounts = [None] + ([1.0] if mdp.horizon is not None or mdp.terminal.any() else [])
    for c in discounts:
        weight = (mdp.gamma if c is None else c) ** np.arange(T)[:, None] * batch.mask
        onehot = (batch.obs[..., None] == np.arange(5)) * weight[..., None]       # (T, N, S)
        per = onehot if mdp.horizon is not None else onehot.sum(axis=0)
        d = state_occupancy(mdp, logits) if c is None else state_occupancy(mdp, logits, discount=c)
        if mdp.horizon is not None:
            per = per[: mdp.horizon]
            d = d[:T]
        mean, se = per.mean(axis=-2), per.std(axis=-2, ddof=1) / np.sqrt(N)
        assert np.all(np.abs(mean - d) <= 5 * se + 1e-9)


def test_state_occupancy_default_is_the_discount_gamma_and_refuses_divergent_counts():
    mdp = random_mdp(np.random.default_rng(1), n_states=5, gamma=0.8)
    logits = np.zeros((5, 3))
    np.testing.assert_array_equal(state_occupancy(mdp, logits),
                                  state_occupancy(mdp, logits, discount=0.8))
    assert state_occupancy(mdp, logits, discount=0.0) == pytest.approx(mdp.mu0)
    with pytest.raises(ValueError, match="^mdp: .*continuing MDP"):
        state_occupancy(mdp, logits, discount=1.0)
    for bad in (1.5, -0.1, True, "0.5", np.nan):
        with pytest.raises(ValueError, match="^discount:"):
            state_occupancy(mdp, logits, discount=bad)


def test_softmax_gradient_by_hand_and_over_time():
    pi = np.array([[0.5, 0.5], [0.25, 0.75]])
    adv = np.array([[1.0, -1.0], [3.0, -1.0]])
    np.testing.assert_allclose(softmax_gradient(np.array([2.0, 4.0]), pi, adv),
                               [[1.0, -1.0], [3.0, -3.0]])
    # time-indexed: the sum over t of the per-step contractions
    rng = np.random.default_rng(2)
    d, advs = rng.random((4, 2)), rng.normal(size=(4, 2, 2))
    np.testing.assert_allclose(softmax_gradient(d, pi, advs),
                               sum(softmax_gradient(d[t], pi, advs[t]) for t in range(4)))
    with pytest.raises(ValueError, match="^adv:"):
        softmax_gradient(d, pi, adv)
    with pytest.raises(ValueError, match="^adv:"):
        softmax_gradient(np.ones(3), pi, adv)


def test_cosine_and_row_cosines():
    assert cosine([1.0, 0.0], [-3.0, 0.0]) == -1.0
    assert cosine(np.eye(2), np.ones((2, 2))) == pytest.approx(np.sqrt(0.5))   # flattened
    assert cosine([0.0, 0.0], [1.0, 0.0]) == 0.0 and cosine([1.0], [0.0]) == 0.0
    a = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    b = np.array([[2.0, 0.0], [1.0, 0.0], [-1.0, -1.0]])
    np.testing.assert_allclose(row_cosines(a, b), [1.0, 0.0, -1.0])
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    np.testing.assert_allclose(row_cosines(x, y), [cosine(u, v) for u, v in zip(x, y)])
    assert np.all(np.abs(row_cosines(x, x)) <= 1.0)
    with pytest.raises(ValueError, match="^b:"):
        cosine(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="^b:"):
        row_cosines(np.ones((2, 3)), np.ones((3, 3)))


# ---------------------------------------------------------------------------------------------
# Ill-conditioned ground truth: gamma = 1 and a near-deterministic policy, against mpmath
# ---------------------------------------------------------------------------------------------

def _mp_exact(mdp, logits, dps=120):
    """V (S,) and dJ/dlogits (S, A) of an MDP without a horizon in mpmath at dps digits: the
    reference (mpmath is in the tests only)."""
    mpmath = pytest.importorskip("mpmath")
    mp = mpmath.mp
    mp.dps = dps
    S, A = mdp.n_states, mdp.n_actions
    live = [s for s in range(S) if not mdp.terminal[s]]
    e = [[mpmath.exp(mpmath.mpf(float(logits[s, a]))) for a in range(A)] for s in range(S)]
    pi = [[x / sum(row) for x in row] for row in e]
    P = [[[mpmath.mpf(float(mdp.P[s, a, t])) for t in range(S)] for a in range(A)]
         for s in range(S)]
    R = [[mpmath.mpf(float(mdp.R[s, a])) for a in range(A)] for s in range(S)]
    n = len(live)
    M = mpmath.matrix(n, n)
    r = mpmath.matrix(n, 1)
    for i, s in enumerate(live):
        r[i] = sum(pi[s][a] * R[s][a] for a in range(A))
        for j, t in enumerate(live):
            M[i, j] = (1 if i == j else 0) - mdp.gamma * sum(pi[s][a] * P[s][a][t]
                                                            for a in range(A))
    v = mpmath.lu_solve(M, r)
    V = [mpmath.mpf(0)] * S
    for i, s in enumerate(live):
        V[s] = v[i]
    mu = mpmath.matrix([mpmath.mpf(float(mdp.mu0[s])) for s in live])
    d_live = mpmath.lu_solve(M.T, mu)
    d = [mpmath.mpf(0)] * S
    for i, s in enumerate(live):
        d[s] = d_live[i]
    Q = [[R[s][a] + mdp.gamma * sum(P[s][a][t] * V[t] for t in live) for a in range(A)]
         for s in range(S)]
    grad = [[d[s] * pi[s][b] * (Q[s][b] - V[s]) for b in range(A)] for s in range(S)]
    to_float = np.vectorize(float)
    return to_float(np.array(V, dtype=object)), to_float(np.array(grad, dtype=object))


@pytest.mark.parametrize("gap", [0.0, 2.0, 5.0, 15.0, 30.0])
def test_exact_values_stay_accurate_when_the_solve_is_ill_conditioned(gap):
    """chain_mdp(3, slip=0) at gamma = 1, the policy going left with logit gap `gap`: V[0] is
    about -e^(3 gap) (-3.5e19 at 15, -1.2e39 at 30). np.linalg.solve was off by 1000x at 15 and
    had the wrong sign at 30; the subtraction-free solve agrees with mpmath (120 digits) to
    1e-12 relative, entry by entry."""
    mdp = chain_mdp(3, slip=0.0)
    logits = np.tile([gap, 0.0], (mdp.n_states, 1))
    V_ref, _ = _mp_exact(mdp, logits)
    np.testing.assert_allclose(exact_values(mdp, logits).V, V_ref, rtol=1e-12)
    d = state_occupancy(mdp, logits)
    assert d[0] >= 1.0 and np.all(np.isfinite(d))


@pytest.mark.parametrize("mdp_name, gap", [("chain", 2.0), ("chain", 5.0), ("gridworld", 6.0)])
def test_exact_policy_gradient_matches_mpmath_where_it_answers(mdp_name, gap):
    if mdp_name == "chain":
        mdp = chain_mdp(3, slip=0.0)
        logits = np.tile([gap, 0.0], (mdp.n_states, 1))
    else:
        mdp = gridworld_mdp(horizon=None)
        logits = gap * np.random.default_rng(0).standard_normal((mdp.n_states, 4))
    _, grad_ref = _mp_exact(mdp, logits)
    grad = exact_policy_gradient(mdp, logits)
    assert np.linalg.norm(grad - grad_ref) <= 1e-6 * np.linalg.norm(grad_ref)


@pytest.mark.parametrize("gap", [10.0, 15.0, 30.0])
def test_exact_policy_gradient_refuses_when_rounding_would_dominate(gap):
    mdp = chain_mdp(3, slip=0.0)
    with pytest.raises(ValueError, match="^logits: the policy is so close to deterministic"):
        exact_policy_gradient(mdp, np.tile([gap, 0.0], (mdp.n_states, 1)))


def test_a_saturated_policy_that_never_ends_is_refused_by_name():
    mdp = chain_mdp(3, slip=0.0)
    with pytest.raises(ValueError, match=r"^logits: under this policy no terminal state can be "
                                         r"reached from states \[0, 1, 2\]"):
        exact_values(mdp, np.tile([800.0, 0.0], (mdp.n_states, 1)))
