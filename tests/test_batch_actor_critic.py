"""Batch actor-critic and REINFORCE (notebook 06): smoke runs, the advantage of the update worked
by hand, fixed-seed learning runs on CartPole, and many seeds at once (seed k of a batched run
follows the single run with seed k, no gradient flows between seeds) (the checker of exercise
6.1 is in test_checks.py)."""
import dataclasses
import functools

import numpy as np
import pytest
import torch

from acteach.actor_critic import A2CConfig, A2CHistory
from acteach.batch_actor_critic import (
    actor_critic_losses,
    batch_actor_critic_update,
    monte_carlo_targets_of,
    reinforce_update,
    reward_to_go_of,
    td_advantage_of,
    train_batch_actor_critic,
    train_batch_actor_critic_seeds,
    train_reinforce,
    train_reinforce_seeds,
)
from acteach.advantages import td_advantage
from acteach.critic import critic_loss, monte_carlo_loss
from acteach.nets import CategoricalPolicy, ValueNet
from acteach.sampling import Batch, sample_episodes_seeds
from acteach.stacked import stack_pairs, stacked_parameters
from acteach.surrogate import policy_gradient_surrogate


train_reinforce_baseline = functools.partial(train_reinforce, baseline=True)
train_reinforce_baseline_seeds = functools.partial(train_reinforce_seeds, baseline=True)


@pytest.mark.parametrize("train", [train_batch_actor_critic, train_reinforce,
                                   train_reinforce_baseline])
def test_smoke_run_returns_a_well_formed_history(train):
    threads = torch.get_num_threads()
    config = A2CConfig(total_steps=300, n_episodes=4, seed=1, critic_epochs=2)
    history = train(config)
    assert isinstance(history, A2CHistory)
    assert history.env_steps >= 300
    assert len(history.episode_returns) == len(history.episode_steps) > 0
    assert len(history.episode_returns) % config.n_episodes == 0      # whole batches of N episodes
    assert np.all(np.diff(history.episode_steps) > 0)
    assert history.episode_steps[-1] == history.env_steps
    assert sum(history.episode_returns) == history.env_steps          # CartPole: +1 per step
    n_updates = len(history.losses["actor_loss"])
    assert n_updates == len(history.episode_returns) // config.n_episodes
    keys = {"actor_loss", "entropy", "adv_mean"} | ({"critic_loss"} if
                                                    train is not train_reinforce else set())
    assert set(history.losses) == keys
    assert all(np.all(np.isfinite(history.losses[k])) for k in keys)
    assert torch.get_num_threads() == threads and history.seconds > 0


def test_same_seed_same_run_and_monte_carlo_target():
    config = A2CConfig(total_steps=200, n_episodes=2, seed=3, target="n_step", critic_epochs=2)
    a, b = train_batch_actor_critic(config), train_batch_actor_critic(config)
    assert a.episode_returns == b.episode_returns and a.losses == b.losses


def _hand_batch() -> tuple[Batch, ValueNet]:
    """T = 3, N = 2, one-dimensional observations, a linear critic V(s) = s.
    column 0: s = 1, 2, 3, terminated after the third step (next obs 4 has V = 4, unused);
    column 1: s = 5, 6, cut by a time limit after two steps (bootstraps from V(7) = 7);
    step (2, 1) is padding with garbage observations and reward."""
    obs = np.array([[[1.0], [5.0]], [[2.0], [6.0]], [[3.0], [100.0]]], dtype=np.float32)
    next_obs = np.array([[[2.0], [6.0]], [[3.0], [7.0]], [[4.0], [-100.0]]], dtype=np.float32)
    batch = Batch(obs=obs, act=np.array([[0, 1], [1, 0], [1, 0]]), next_obs=next_obs,
                  rew=np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 99.0]]),
                  mask=np.array([[True, True], [True, True], [True, False]]),
                  terminated=np.array([[False, False], [False, False], [True, False]]),
                  truncated=np.array([[False, False], [False, True], [False, False]]))
    critic = ValueNet(1, hidden=())
    with torch.no_grad():
        critic.v_net[0].weight.fill_(1.0)
        critic.v_net[0].bias.fill_(0.0)
    return batch, critic


def test_advantage_of_the_update_worked_by_hand():
    batch, critic = _hand_batch()
    gamma = 0.5
    # A = r + 0.5 (1 - terminated) V(s') - V(s):
    #   column 0: 1 + 1 - 1 = 1;  1 + 1.5 - 2 = 0.5;  terminated: 1 - 3 = -2
    #   column 1: 1 + 3 - 5 = -1;  truncated, bootstraps: 1 + 3.5 - 6 = -1.5;  padding: 0
    hand = np.array([[1.0, -1.0], [0.5, -1.5], [-2.0, 0.0]])
    v, v_next = critic.predict(batch.obs), critic.predict(batch.next_obs)
    np.testing.assert_allclose(td_advantage(batch.rew, v, v_next, batch.terminated, batch.mask,
                                            gamma), hand)
    np.testing.assert_allclose(td_advantage_of(critic, batch, gamma), hand)

    torch.manual_seed(0)
    policy = CategoricalPolicy(1, 2, hidden=(4,))
    actor_loss, critic_loss = actor_critic_losses(policy, critic, batch.obs, batch.act, batch.rew,
                                                  batch.next_obs, batch.terminated, batch.mask,
                                                  gamma)
    logp = policy.log_prob(batch.obs, batch.act)
    expected = -policy_gradient_surrogate(logp, torch.as_tensor(hand, dtype=logp.dtype),
                                          torch.as_tensor(batch.mask))
    assert actor_loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert critic_loss.item() == pytest.approx((1 + 0.25 + 4 + 1 + 2.25) / 5, rel=1e-6)

    # the update: after fitting V_phi, its reported mean advantage is that of td_advantage with
    # the fitted critic (the actor step does not move the critic)
    opt_actor = torch.optim.Adam(policy.parameters(), lr=1e-2)
    opt_critic = torch.optim.Adam(critic.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in policy.parameters()]
    out = batch_actor_critic_update(policy, critic, opt_actor, opt_critic, batch,
                                    A2CConfig(gamma=gamma, target="one_step", critic_epochs=3))
    fitted = td_advantage_of(critic, batch, gamma)
    assert out["adv_mean"] == pytest.approx(fitted[batch.mask].mean(), rel=1e-6)
    assert not np.allclose(fitted, hand)                    # the critic was fitted first
    assert any(not torch.equal(b, p) for b, p in zip(before, policy.parameters()))


def test_batch_actor_critic_learns_cartpole():
    """Fixed seed, the notebook's settings: the mean return of the last 40 episodes is well above
    that of the first 20 (a random CartPole policy scores about 22)."""
    history = train_batch_actor_critic(A2CConfig(seed=0, n_episodes=8, total_steps=20_000,
                                              lr_actor=1e-3, lr_critic=1e-2, target="one_step",
                                              critic_epochs=10))
    first, last = np.mean(history.episode_returns[:20]), np.mean(history.episode_returns[-40:])
    assert last > 2 * first and last > 60, (first, last)


def test_config_rejects_bad_critic_epochs():
    with pytest.raises(ValueError, match="critic_epochs"):
        A2CConfig(critic_epochs=0)


def test_reinforce_baseline_weight_is_reward_to_go_minus_v_worked_by_hand():
    """The hand batch, gamma = 0.5, a critic that the fit leaves at V(s) = s (lr 0): the weight
    is w = G - V(s), the reward-to-go (not bootstrapped at the time limit) minus the baseline:
    column 0: G = 1.75, 1.5, 1 and V = 1, 2, 3; column 1: G = 1.5, 1 and V = 5, 6. The critic
    was fitted to the Monte Carlo target (bootstrapped at the time limit: y = 3.25, 4.5 in
    column 1), and the actor loss is -(1/N) sum log pi(a|s) w."""
    batch, critic = _hand_batch()
    torch.manual_seed(0)
    policy = CategoricalPolicy(1, 2, hidden=())
    w = np.array([[0.75, -3.5], [-0.5, -5.0], [-2.0, 0.0]])
    mask = torch.as_tensor(batch.mask)
    expected = -policy_gradient_surrogate(policy.log_prob(batch.obs, batch.act).detach(),
                                          torch.as_tensor(w, dtype=torch.float32), mask)
    config = A2CConfig(gamma=0.5, critic_epochs=3, ent_coef=0.0)
    losses = reinforce_update(policy, torch.optim.SGD(policy.parameters(), lr=0.1), batch, config,
                              critic, torch.optim.SGD(critic.parameters(), lr=0.0))
    assert losses["adv_mean"] == pytest.approx(w.sum() / 5)
    assert losses["actor_loss"] == pytest.approx(expected.item(), rel=1e-6)
    y = np.array([[1.75, 3.25], [1.5, 4.5], [1.0, 0.0]])
    v = np.array([[1.0, 5.0], [2.0, 6.0], [3.0, 0.0]])
    assert losses["critic_loss"] == pytest.approx(((y - v) ** 2)[batch.mask].mean(), rel=1e-6)
    without = reinforce_update(CategoricalPolicy(1, 2, hidden=()),
                               torch.optim.SGD(policy.parameters(), lr=0.0), batch, config)
    assert without["adv_mean"] == pytest.approx((w + v)[batch.mask].mean())


def test_reinforce_learns_cartpole():
    """Fixed seed, notebook 06's settings: REINFORCE with reward-to-go improves too (the last 40
    episodes average well above the first 20)."""
    history = train_reinforce(A2CConfig(seed=0, n_episodes=8, total_steps=20_000,
                                        lr_actor=1e-3, target="one_step"))
    first, last = np.mean(history.episode_returns[:20]), np.mean(history.episode_returns[-40:])
    assert last > 1.5 * first and last > 40, (first, last)


def test_reinforce_with_baseline_learns_cartpole():
    """Fixed seed, notebook 06's settings with a V baseline fitted by 10 steps per update: the
    last 40 episodes average well above the first 20 (about 30 at the start)."""
    history = train_reinforce(A2CConfig(seed=0, n_episodes=8, total_steps=20_000, lr_actor=1e-3,
                                        lr_critic=1e-2, critic_epochs=10), baseline=True)
    first, last = np.mean(history.episode_returns[:20]), np.mean(history.episode_returns[-40:])
    assert last > 2 * first and last > 60, (first, last)


# --- many seeds at once ----------------------------------------------------------------------

def _flat(network: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in network.parameters()])


def _initial(network: torch.nn.Module, seed: int) -> torch.nn.Module:
    """The network a run with this seed starts from (policy first, then critic)."""
    torch.manual_seed(seed)
    policy, critic = CategoricalPolicy(4, 2, (64, 64)), ValueNet(4, (64, 64))
    return policy if isinstance(network, CategoricalPolicy) else critic


@pytest.mark.parametrize("train, train_seeds, target", [
    (train_batch_actor_critic, train_batch_actor_critic_seeds, "one_step"),
    (train_batch_actor_critic, train_batch_actor_critic_seeds, "n_step"),
    (train_reinforce, train_reinforce_seeds, "one_step"),
    (train_reinforce_baseline, train_reinforce_baseline_seeds, "one_step")])
def test_seed_k_of_a_batched_run_follows_the_single_run_with_seed_k(train, train_seeds, target):
    """Three seeds at once, each run to 3-6 updates (they leave the batch at different times):
    the same episodes as the single run with that seed, the losses and the trained networks
    the same to float tolerance. (Adam divides by the root of the squared gradient: where a
    gradient is near 0 it turns rounding, here also the batched tanh's 2e-7, into up to a whole
    step of lr = 1e-3. So each weight agrees to 10% of one step, and the difference of all the
    weights is under 0.1% of how far training moved them.)"""
    config = A2CConfig(n_episodes=2, total_steps=150, critic_epochs=3, target=target,
                       lr_actor=1e-3, lr_critic=1e-3)
    seeds = [3, 0, 5]
    batched = train_seeds(config, seeds)
    assert len({h.env_steps for h in batched}) > 1                   # they left at different times
    for seed, h in zip(seeds, batched):
        single = train(dataclasses.replace(config, seed=seed))
        assert len(h.losses["actor_loss"]) == len(single.losses["actor_loss"]) >= 3
        assert h.episode_returns == single.episode_returns and h.env_steps == single.env_steps
        for key, values in single.losses.items():
            np.testing.assert_allclose(h.losses[key], values, rtol=1e-4, atol=1e-5)
        assert (h.critic is None) == (single.critic is None)
        for net, one in ((h.policy, single.policy), (h.critic, single.critic)):
            if net is not None:
                moved = (_flat(one) - _flat(_initial(one, seed))).norm()
                torch.testing.assert_close(_flat(net), _flat(one), rtol=0, atol=1e-4)
                assert (_flat(net) - _flat(one)).norm() < 1e-3 * moved


def _stacked_batch(seeds=(0, 1, 2), n=3):
    pairs = []
    for seed in seeds:
        torch.manual_seed(seed)
        pairs.append((CategoricalPolicy(4, 2, (16,)), ValueNet(4, (16,))))
    policy, critic = stack_pairs(pairs)
    return pairs, policy, critic, sample_episodes_seeds("CartPole-v1", policy, n, list(seeds))


def _losses(policy, critic, batch, gamma=0.9):
    """Every loss the two updates differentiate, one per seed each."""
    args = (batch.obs, batch.rew, batch.next_obs, batch.terminated, batch.mask, gamma)
    actor, critic_ = actor_critic_losses(policy, critic, batch.obs, batch.act, *args[1:])
    logp = policy.log_prob(batch.obs, batch.act)
    reinforce = -policy_gradient_surrogate(
        logp, torch.as_tensor(reward_to_go_of(batch, gamma), dtype=logp.dtype),
        torch.as_tensor(batch.mask))
    return [actor, critic_, critic_loss(critic, *args), reinforce,
            monte_carlo_loss(critic, batch.obs, monte_carlo_targets_of(critic, batch, gamma),
                             batch.mask)]


def test_each_seed_s_losses_are_those_of_its_own_network_on_its_own_episodes():
    pairs, policy, critic, batch = _stacked_batch()
    stacked = _losses(policy, critic, batch)
    for k, (p, c) in enumerate(pairs):
        column = Batch(**{key: value[:, k] for key, value in vars(batch).items()})
        for s, one in zip(stacked, _losses(p, c, column)):
            assert s.shape == (3,) and one.dim() == 0
            torch.testing.assert_close(s[k], one, rtol=1e-5, atol=1e-6)


def test_no_gradient_flows_between_seeds():
    """The gradient of seed 1's losses is zero on the rows of seeds 0 and 2; and perturbing seed
    0's episodes (its rewards and observations) leaves seeds 1 and 2's gradients exactly as
    they were."""
    _, policy, critic, batch = _stacked_batch()
    params = stacked_parameters(policy, critic)

    def gradients(batch):
        total = sum(loss.sum() for loss in _losses(policy, critic, batch))
        return torch.autograd.grad(total, params)

    for loss in _losses(policy, critic, batch):
        grads = torch.autograd.grad(loss[1], params, allow_unused=True)
        for g in grads:
            if g is not None:
                assert torch.all(g[0] == 0) and torch.all(g[2] == 0)
    perturbed = dataclasses.replace(batch, rew=batch.rew.copy(), obs=batch.obs.copy())
    perturbed.rew[:, 0] *= 3.0
    perturbed.obs[:, 0] += 0.5
    before, after = gradients(batch), gradients(perturbed)
    assert any(not torch.equal(b[0], a[0]) for b, a in zip(before, after))
    for b, a in zip(before, after):
        assert torch.equal(b[1:], a[1:])


@pytest.mark.parametrize("train_seeds", [train_batch_actor_critic_seeds, train_reinforce_seeds])
@pytest.mark.parametrize("seeds", [[], [0, 1.5], [0, -1], 3, "01"])
def test_bad_seeds_are_refused_by_name(train_seeds, seeds):
    with pytest.raises(ValueError, match="^seeds:"):
        train_seeds(A2CConfig(total_steps=100), seeds)


@pytest.mark.parametrize("train_seeds, factor, floor", [(train_batch_actor_critic_seeds, 2, 60),
                                                        (train_reinforce_seeds, 1.5, 40)])
def test_both_trainers_learn_cartpole_with_seeds_batched(train_seeds, factor, floor):
    """Fixed seeds 1 and 2 trained as one computation, notebook 06's settings: each seed's last
    40 episodes average well above its first 20 (the single-seed tests above ask the same)."""
    histories = train_seeds(A2CConfig(n_episodes=8, total_steps=20_000, lr_actor=1e-3,
                                      lr_critic=1e-2, target="one_step", critic_epochs=10),
                            [1, 2])
    for h in histories:
        first, last = np.mean(h.episode_returns[:20]), np.mean(h.episode_returns[-40:])
        assert h.env_steps >= 20_000
        assert last > factor * first and last > floor, (first, last)


def test_the_batched_networks_tanh_is_tanh():
    """The stacked networks of the batched trainers compute tanh as 2 sigmoid(2x) - 1 (torch's
    CPU tanh is slow): the same values to 2e-7, and tanh's gradient."""
    _, policy, critic, _ = _stacked_batch()
    activations = [m for net in (policy, critic) for m in net.modules()
                   if not list(m.children()) and not list(m.parameters(recurse=False))]
    assert activations and not any(isinstance(m, torch.nn.Tanh) for m in activations)
    x = torch.linspace(-12, 12, 2001, requires_grad=True)
    exact = torch.tanh(x)
    (grad_exact,) = torch.autograd.grad(exact.sum(), x)
    for activation in activations:
        y = activation(x)
        torch.testing.assert_close(y, exact, rtol=0, atol=2e-7)
        (grad,) = torch.autograd.grad(y.sum(), x)
        torch.testing.assert_close(grad, grad_exact, rtol=0, atol=1e-6)
        with torch.no_grad():
            torch.testing.assert_close(activation(x), exact.detach(), rtol=0, atol=2e-7)
