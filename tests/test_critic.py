"""Fitting V (notebook 04): the targets, the tabular fits against the exact V^pi, the full
gradient's other fixed point, the TD advantage with an exact and a wrong V, the neural fit, and
the value-fits figure (the two labs are in test_labs.py, the checker of exercise 4.1 in
test_checks.py)."""
import numpy as np
import pytest
import torch

from acteach import critic
from acteach.critic import (
    TARGETS,
    FitConfig,
    batch_fixed_point,
    fit_value_table,
    fit_value_tables,
    mean_squared_td_error,
    residual_fixed_point,
    transitions,
    value_error,
    visit_distribution,
)
from acteach.estimators import gradient_statistics
from acteach.nets import CategoricalPolicy, TableValue, ValueNet
from acteach.plotting import value_fits_figure
from acteach.returns import reward_to_go
from acteach.sampling import Batch
from acteach.tabular import chain_mdp, exact_values, gridworld_mdp, random_mdp, sample_trajectories

CHAIN = chain_mdp(n_states=5, slip=0.1)
CHAIN_LOGITS = np.tile([0.0, 1.0], (CHAIN.n_states, 1))
GRID = gridworld_mdp(horizon=None)
GRID_LOGITS = np.random.default_rng(3).normal(size=(GRID.n_states, GRID.n_actions)) * 0.5
RANDOM = random_mdp(np.random.default_rng(7), n_states=8, n_actions=3, gamma=0.9)
RANDOM_LOGITS = np.random.default_rng(3).normal(size=(8, 3)) * 0.5
# (mdp, logits, trajectories): gamma = 1 with termination (chain, gridworld without a horizon),
# and gamma = 0.9 with no terminal state (episodes cut at the discount tail: they bootstrap)
TABULAR = {"chain": (CHAIN, CHAIN_LOGITS, 2000), "gridworld": (GRID, GRID_LOGITS, 2000),
           "random": (RANDOM, RANDOM_LOGITS, 200)}


def _data(name: str, seed: int = 0):
    mdp, logits, n = TABULAR[name]
    return transitions(sample_trajectories(mdp, logits, n, np.random.default_rng(seed)),
                       mdp.gamma)


# --- targets by hand --------------------------------------------------------------------------

def _hand_batch() -> Batch:
    # column 0: 0 -> 1 -> terminal 2; column 1: 1 -> 0, cut by a time limit (next state 1)
    def b(x, dt=bool):
        return np.array(x, dtype=dt)
    return Batch(obs=b([[0, 1], [1, 0]], int), act=b([[0, 0], [0, 0]], int),
                 rew=b([[1.0, 2.0], [3.0, 4.0]], float), next_obs=b([[1, 0], [2, 1]], int),
                 mask=b([[1, 1], [1, 1]]), terminated=b([[0, 0], [1, 0]]),
                 truncated=b([[0, 0], [0, 1]]))


def test_transitions_by_hand():
    data = transitions(_hand_batch(), gamma=0.5, value=np.array([10.0, 20.0, 30.0]))
    # valid steps in (t, n) order: (0,0), (0,1), (1,0), (1,1)
    np.testing.assert_array_equal(data.obs, [0, 1, 1, 0])
    np.testing.assert_array_equal(data.next_obs, [1, 0, 2, 1])
    np.testing.assert_allclose(data.bootstrap, [0.5, 0.5, 0.0, 0.5])   # terminated: no V(s')
    # Monte Carlo targets: column 0 ends at the terminal state; column 1 was truncated, so its
    # last target continues with V(next state 1) = 20
    np.testing.assert_allclose(data.ret, [1 + 0.5 * 3, 2 + 0.5 * (4 + 0.5 * 20), 3.0,
                                          4 + 0.5 * 20])


@pytest.mark.parametrize("target", TARGETS)
def test_one_numpy_update_is_one_sgd_step_on_the_torch_loss(target):
    # The numpy fit and the lecture's losses in torch agree: one full-batch update of the table
    # equals one plain SGD step on monte_carlo_loss / critic_loss / residual_loss.
    batch = _hand_batch()
    init = np.array([0.5, -1.0, 0.0])
    data = transitions(batch, gamma=0.5)
    table = fit_value_table(data, 3, FitConfig(target, steps=1, batch_size=None, lr=0.1),
                            init=init)
    net = TableValue(3, init=init)
    args = (batch.obs, batch.rew, batch.next_obs, batch.terminated, batch.mask, 0.5)
    if target == "monte_carlo":
        targets = data.ret.reshape(2, 2)       # every cell valid: (t, n) order is row-major
        loss = critic.monte_carlo_loss(net, batch.obs, targets, batch.mask)
    else:
        loss = (critic.critic_loss if target == "bootstrapped" else critic.residual_loss)(
            net, *args)
    loss.backward()
    with torch.no_grad():
        after = net.table - 0.1 * net.table.grad
    np.testing.assert_allclose(table[1], after.numpy(), atol=1e-12)


def test_critic_loss_by_hand_and_the_stop_gradient():
    net = TableValue(3, init=[1.0, 2.0, 7.0])
    batch = _hand_batch()
    args = (batch.obs, batch.rew, batch.next_obs, batch.terminated, batch.mask, 0.5)
    # TD errors: (0,0) 1 + 0.5*2 - 1 = 1; (0,1) 2 + 0.5*1 - 2 = 0.5; (1,0) 3 - 2 = 1 (terminated:
    # V(2) = 7 unused); (1,1) 4 + 0.5*2 - 1 = 4 (truncated: bootstraps from next_obs = 1)
    loss = critic.critic_loss(net, *args)
    assert loss.item() == pytest.approx((1 + 0.25 + 1 + 16) / 4)
    (grad,) = torch.autograd.grad(loss, net.table)
    np.testing.assert_allclose(grad.numpy(), [-(2 / 4) * (1 + 4), -(2 / 4) * (0.5 + 1), 0.0])
    full = critic.residual_loss(net, *args)
    assert full.item() == pytest.approx(loss.item())        # same value, other gradient
    (grad_full,) = torch.autograd.grad(full, net.table)
    # the target's own term: +2/4 * gamma * delta at V(s'): s' = 1 (delta 1), 0 (0.5), 1 (4)
    np.testing.assert_allclose(grad_full.numpy() - grad.numpy(),
                               [0.5 * 0.5 * 0.5, 0.5 * 0.5 * (1 + 4), 0.0])


# --- tabular fits converge (fixed seeds) ------------------------------------------------------

@pytest.mark.parametrize("name", TABULAR)
@pytest.mark.parametrize("target", TARGETS)
def test_full_batch_descent_reaches_the_batch_fixed_point(name, target):
    # The fitting loop with batch_size=None is plain gradient descent; its limit is the linear-
    # algebra fixed point of `batch_fixed_point`: to 1e-6 after 3000 updates at lr = 1, on a
    # tenth of the data of the other tests. Except the full gradient on the random MDP, which is
    # ill-conditioned (gamma = 0.9 and 219-step episodes leave its objective nearly flat in some
    # directions): there within 0.05 (measured 0.015 after 2000 updates).
    mdp, logits, n = TABULAR[name]
    data = transitions(sample_trajectories(mdp, logits, max(n // 10, 20),
                                           np.random.default_rng(0)), mdp.gamma)
    table = fit_value_table(data, mdp.n_states, FitConfig(target, 3000, None, 1.0))
    fixed = batch_fixed_point(data, mdp.n_states, target)
    slow = (name, target) == ("random", "full_gradient")
    np.testing.assert_allclose(table[-1], fixed, atol=0.05 if slow else 1e-6)


@pytest.mark.parametrize("name", TABULAR)
def test_minibatch_fits_converge_to_their_fixed_points(name):
    # Minibatch SGD (B = 256, lr = 0.3, 6000 updates, seed 1), its iterates averaged over the
    # second half, on 2000 trajectories (200 of 219 steps for the random MDP). Tolerance: a
    # visit-weighted RMS error below 5% of the visit-weighted RMS of V^pi (measured: <= 3%).
    # Monte Carlo and bootstrapped targets land on V^pi; the full gradient on the minimiser of
    # the mean squared TD error (`residual_fixed_point`).
    mdp, logits, _ = TABULAR[name]
    V = exact_values(mdp, logits).V
    d = visit_distribution(mdp, logits)
    scale = float(np.sqrt((d * V ** 2).sum()))
    data = _data(name)
    goal = {"monte_carlo": V, "bootstrapped": V, "full_gradient": residual_fixed_point(mdp, logits)}
    for target in TARGETS:
        table = fit_value_table(data, mdp.n_states, FitConfig(target, 6000, 256, 0.3, seed=1))
        error = value_error(table[3000:].mean(axis=0), goal[target], d)
        assert error < 0.05 * scale, (name, target, error, scale)


@pytest.mark.parametrize("name", ["chain", "gridworld"])
def test_the_full_gradient_has_another_fixed_point(name):
    # With a random next state, the full gradient's limit is not V^pi: measured, it is at least
    # 20 times farther from V^pi than the bootstrapped fit, and it has a smaller mean squared TD
    # error than V^pi itself (it minimises that, V^pi does not).
    mdp, logits, _ = TABULAR[name]
    V, d = exact_values(mdp, logits).V, visit_distribution(mdp, logits)
    data = _data(name)
    td = value_error(batch_fixed_point(data, mdp.n_states, "bootstrapped"), V, d)
    res = residual_fixed_point(mdp, logits)
    assert value_error(batch_fixed_point(data, mdp.n_states, "full_gradient"), V, d) > 20 * td
    assert value_error(res, V, d) > 20 * td
    assert mean_squared_td_error(mdp, logits, res) < mean_squared_td_error(mdp, logits, V)


def test_with_a_certain_next_state_the_two_fixed_points_meet():
    mdp = chain_mdp(n_states=5, slip=0.0)
    logits = np.tile([0.0, 40.0], (mdp.n_states, 1))       # pi(right) = 1 - 4e-18
    V, d = exact_values(mdp, logits).V, visit_distribution(mdp, logits)
    assert value_error(residual_fixed_point(mdp, logits), V, d) < 1e-6


def test_fits_side_by_side_equal_fits_one_by_one():
    data = [_data("chain", seed) for seed in (1, 2)]
    config = FitConfig("bootstrapped", 50, 16, 0.1, seed=4)
    together = fit_value_tables(data, CHAIN.n_states, config)
    assert together.shape == (51, 2, CHAIN.n_states)
    full = FitConfig("bootstrapped", 50, None, 0.1)
    np.testing.assert_allclose(fit_value_tables(data, CHAIN.n_states, full)[:, 1],
                               fit_value_table(data[1], CHAIN.n_states, full))
    assert np.all(np.isfinite(together))


def test_visit_distribution_matches_the_samples():
    batch = sample_trajectories(CHAIN, CHAIN_LOGITS, 20_000, np.random.default_rng(3))
    counts = np.bincount(batch.obs[batch.mask], minlength=CHAIN.n_states) / batch.n_steps
    d = visit_distribution(CHAIN, CHAIN_LOGITS)
    assert d.sum() == pytest.approx(1.0) and d[-1] == 0.0
    np.testing.assert_allclose(counts, d, atol=0.005)        # ~ 5 SE at 220,000 steps


# --- the TD advantage: unbiased with V^pi, biased with a wrong V -----------------------------

ESTIMATOR_CASES = {
    "chain, gamma = 1": (CHAIN, CHAIN_LOGITS, 1000),
    "gridworld, H = 20 (V indexed by t)": (gridworld_mdp(), GRID_LOGITS, 1000),
    "random, gamma = 0.9, H = 10, option 2": (
        random_mdp(np.random.default_rng(7), n_states=6, n_actions=2, gamma=0.9, horizon=10,
                   n_terminal=1), np.random.default_rng(3).normal(size=(6, 2)) * 0.5, 4000),
}


@pytest.mark.parametrize("name", ESTIMATOR_CASES)
def test_advantage_td_with_the_exact_value_is_unbiased(name):
    # R estimates of N = 10 (rng 11): every component's |mean - exact| within 4 standard errors
    # (the largest of <= 44 |z| exceeds 4 with probability below 0.3% if unbiased); and the
    # variance is below reward-to-go's.
    mdp, logits, R = ESTIMATOR_CASES[name]
    stats = gradient_statistics(mdp, logits, "advantage_td", 10, R, np.random.default_rng(11))
    rtg = gradient_statistics(mdp, logits, "reward_to_go", 10, R, np.random.default_rng(11))
    assert stats.max_bias_z < 4, stats.max_bias_z
    assert stats.variance < rtg.variance


@pytest.mark.parametrize("name", ESTIMATOR_CASES)
def test_advantage_td_with_a_perturbed_value_is_biased(name):
    # V^pi plus fixed noise of the size of |V^pi| (rng 5): the bias stands out, z > 4, and
    # |bias| > 4 noise floors.
    mdp, logits, R = ESTIMATOR_CASES[name]
    V = exact_values(mdp, logits).V
    wrong = V + np.random.default_rng(5).normal(size=V.shape) * np.abs(V).mean()
    stats = gradient_statistics(mdp, logits, "advantage_td", 10, R, np.random.default_rng(11),
                                value=wrong)
    assert stats.max_bias_z > 4 and stats.bias_norm > 4 * stats.noise_floor, \
        (stats.max_bias_z, stats.bias_norm, stats.noise_floor)


# --- bad inputs name the argument --------------------------------------------------------------

def _bad_calls():
    batch, net = _hand_batch(), TableValue(3)
    args = (batch.obs, batch.rew, batch.next_obs, batch.terminated, batch.mask)
    data = transitions(batch, 1.0)

    return [
        (lambda: FitConfig(target="td0"), "target"),
        (lambda: FitConfig(steps=0), "steps"),
        (lambda: FitConfig(batch_size=0), "batch_size"),
        (lambda: FitConfig(lr=0.0), "lr"),
        (lambda: FitConfig(seed=1.5), "seed"),
        (lambda: FitConfig(seed=-1), "seed"),
        (lambda: FitConfig(lr=float("inf")), "lr"),
        (lambda: transitions(batch, gamma=1.5), "gamma"),
        (lambda: transitions(batch, 1.0, value=np.zeros(2)), "value"),
        (lambda: fit_value_tables([], 3, FitConfig()), "datasets"),
        (lambda: fit_value_table(data, 2, FitConfig()), "n_states"),
        (lambda: fit_value_table(data, 3, FitConfig(), init=np.zeros(4)), "init"),
        (lambda: batch_fixed_point(data, 3, "td"), "target"),
        (lambda: visit_distribution(gridworld_mdp(), GRID_LOGITS), "mdp"),
        (lambda: critic.critic_loss(net, *args, gamma=2.0), "gamma"),
        (lambda: critic.critic_loss(net, batch.obs[:1], *args[1:]), "obs"),
        (lambda: critic.critic_loss(net, args[0], batch.rew[:, :1], *args[2:]), "rew"),
        (lambda: critic.critic_loss(net, *args[:4], np.full((2, 2), 0.5)), "mask"),
        (lambda: critic.critic_loss(net, *args[:4], np.zeros((2, 2), dtype=bool)), "mask"),
        (lambda: critic.monte_carlo_loss(torch.nn.Linear(2, 1), np.zeros((3, 2)), np.zeros(3),
                                         np.ones(3, dtype=bool)), "value_net"),
        (lambda: critic.fit_value_net(ValueNet(4), batch, FitConfig(batch_size=None)), "config"),
        (lambda: critic.rollout_values("CartPole-v1", None, np.zeros(4), 2, 0), "states"),
        (lambda: critic.rollout_values("CartPole-v1", None, np.zeros((1, 4)), 0, 0),
         "n_rollouts"),
        (lambda: TableValue(3, init=np.zeros(2)), "init"),
        (lambda: TableValue(3)(torch.zeros(2)), "obs"),
        (lambda: TableValue(3)(torch.tensor([3])), "obs"),
        (lambda: value_fits_figure(np.zeros(3), {}, np.zeros(2)), "weights"),
    ]


@pytest.mark.parametrize("index", range(len(_bad_calls())))
def test_bad_input_names_the_argument(index):
    call, argument = _bad_calls()[index]
    with pytest.raises(ValueError, match=f"^{argument}:"):
        call()


# --- the neural fit on CartPole-v1 (smoke, tiny budget) ---------------------------------------

@pytest.fixture(scope="module")
def cartpole():
    from acteach.sampling import sample_episodes
    torch.manual_seed(0)
    policy = CategoricalPolicy(obs_dim=4, n_actions=2, hidden=(32,))
    return policy, sample_episodes("CartPole-v1", policy, 16, seed=3)


@pytest.mark.parametrize("target", TARGETS)
def test_neural_fit_runs_and_is_reproducible(cartpole, target):
    _, batch = cartpole
    obs = batch.obs[batch.mask]
    ret = reward_to_go(batch.rew, batch.mask)[batch.mask]
    fits = []
    for _ in range(2):
        torch.manual_seed(1)
        net = ValueNet(obs_dim=4, hidden=(16,))
        before = ((net.predict(obs) - ret) ** 2).mean()
        losses = critic.fit_value_net(net, batch, FitConfig(target, 60, 32, 3e-2, seed=2))
        fits.append((losses, net.predict(obs)))
    assert len(fits[0][0]) == 60 and np.all(np.isfinite(fits[0][0]))
    assert fits[0][0] == fits[1][0]
    np.testing.assert_array_equal(fits[0][1], fits[1][1])
    if target != "full_gradient":      # closer to the returns than the untrained net
        assert ((fits[0][1] - ret) ** 2).mean() < before / 2


def test_rollout_values_start_where_told(cartpole):
    policy, batch = cartpole
    states = batch.obs[batch.mask][:3]
    values, se = critic.rollout_values("CartPole-v1", policy, states, 8, seed=0)
    assert values.shape == se.shape == (3,) and np.all(values >= 1) and np.all(se >= 0)
    # a state about to fall (pole far past the threshold's reach) ends at once: value 1
    falling = np.array([[0.0, 0.0, 0.2, 3.0]])
    assert critic.rollout_values("CartPole-v1", policy, falling, 4, seed=0)[0][0] == 1.0


def test_value_fits_figure_draws():
    data = transitions(sample_trajectories(CHAIN, CHAIN_LOGITS, 100, np.random.default_rng(0)),
                       CHAIN.gamma)
    hist = fit_value_table(data, CHAIN.n_states, FitConfig("bootstrapped", 300, 16, 0.1))
    fig = value_fits_figure(exact_values(CHAIN, CHAIN_LOGITS).V,
                            {"td": hist, "two": np.stack([hist, hist], axis=1)},
                            visit_distribution(CHAIN, CHAIN_LOGITS), CHAIN.names)
    fig.canvas.draw()
    assert len(fig.axes) == 2


def test_both_neural_fits_run_the_same_adam_step():
    # One full-batch epoch of fit_value_monte_carlo, and one update of fit_value_net on a batch
    # of one valid step drawn with replacement, are each one Adam step on monte_carlo_loss.
    x = np.random.default_rng(0).normal(size=(40, 3))
    y = x @ [1.0, -2.0, 0.5]
    torch.manual_seed(0)
    net, twin = ValueNet(3, hidden=(8,)), ValueNet(3, hidden=(8,))
    twin.load_state_dict(net.state_dict())
    losses = critic.fit_value_monte_carlo(net, x, y, epochs=1, batch_size=40, lr=0.01)
    opt = torch.optim.Adam(twin.parameters(), lr=0.01)
    loss = critic.monte_carlo_loss(twin, x.astype(np.float32), y.astype(np.float32),
                                   np.ones(40, dtype=bool))
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert losses == [pytest.approx(loss.item(), rel=1e-6)]
    for a, b in zip(net.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)
    # mask flags may be 0/1, as everywhere else (one flag check: _validate.check_flags)
    assert critic.monte_carlo_loss(twin, x[:3], y[:3], [1, 0, 1]).item() == pytest.approx(
        critic.monte_carlo_loss(twin, x[[0, 2]], y[[0, 2]], [True, True]).item())


# --- K stacked seeds: one loss per seed ------------------------------------------------------

def _stacked_critic_batch(seeds=(0, 1, 2)):
    from acteach.sampling import sample_episodes_seeds
    from acteach.stacked import stack_pairs

    pairs = []
    for seed in seeds:
        torch.manual_seed(seed)
        pairs.append((CategoricalPolicy(4, 2, (8,)), ValueNet(4, (8,))))
    policy, stacked = stack_pairs(pairs)
    return [c for _, c in pairs], stacked, sample_episodes_seeds("CartPole-v1", policy, 4,
                                                                 list(seeds))


@pytest.mark.parametrize("loss", ["monte_carlo_loss", "critic_loss", "residual_loss"])
def test_stacked_losses_are_each_seed_s_own_loss_and_ignore_padding(loss):
    """A (T, K, N) batch gives one loss per seed, seed k's equal (value and gradient) to the
    loss of its own critic on its own (T, N) column; garbage on the padding changes nothing."""
    critics, stacked, batch = _stacked_critic_batch()
    fn = getattr(critic, loss)

    def args(b):
        if loss == "monte_carlo_loss":
            return b.obs, reward_to_go(*_columns(b.rew, b.mask), 0.9).reshape(b.mask.shape), b.mask
        return b.obs, b.rew, b.next_obs, b.terminated, b.mask, 0.9

    losses = fn(stacked, *args(batch))
    assert losses.shape == (3,)
    grads = torch.autograd.grad(losses.sum(), list(stacked.parameters()))
    for k, net in enumerate(critics):
        column = Batch(**{key: value[:, k] for key, value in vars(batch).items()})
        one = fn(net, *args(column))
        torch.testing.assert_close(losses[k], one, rtol=1e-5, atol=1e-6)
        for own, row in zip(torch.autograd.grad(one, list(net.parameters())),
                            [g[k] for g in grads]):               # StackedLinear: weight.T
            torch.testing.assert_close(row.reshape(-1), own.mT.reshape(-1) if own.dim() == 2
                                       else own, rtol=1e-4, atol=1e-6)
    garbage = Batch(**{key: value.copy() for key, value in vars(batch).items()})
    for key in ("obs", "next_obs", "rew"):
        getattr(garbage, key)[~batch.mask] = np.nan
    torch.testing.assert_close(fn(stacked, *args(garbage)), losses)
    for g in torch.autograd.grad(fn(stacked, *args(garbage)).sum(), list(stacked.parameters())):
        assert torch.isfinite(g).all()


def _columns(rew, mask):
    T = rew.shape[0]
    return rew.reshape(T, -1), mask.reshape(T, -1)


def test_a_seed_without_a_valid_step_is_refused():
    _, stacked, batch = _stacked_critic_batch()
    mask = batch.mask.copy()
    mask[:, 1] = False
    with pytest.raises(ValueError, match="^mask: .*each of the K = 3 seeds"):
        critic.critic_loss(stacked, batch.obs, batch.rew, batch.next_obs, batch.terminated,
                           mask, 0.9)
