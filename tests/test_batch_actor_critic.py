"""Batch actor-critic and REINFORCE (notebook 06): smoke runs, the advantage of the update worked
by hand, and one fixed-seed learning run on CartPole (the checker of exercise 6.1 is in
test_checks.py)."""
import numpy as np
import pytest
import torch

from acteach.actor_critic import A2CConfig, A2CHistory
from acteach.batch_actor_critic import (
    actor_critic_losses,
    batch_actor_critic_update,
    td_advantage_of,
    train_batch_actor_critic,
    train_reinforce,
)
from acteach.advantages import td_advantage
from acteach.nets import CategoricalPolicy, ValueNet
from acteach.sampling import Batch
from acteach.surrogate import policy_gradient_surrogate


@pytest.mark.parametrize("train", [train_batch_actor_critic, train_reinforce])
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
                                                    train is train_batch_actor_critic else set())
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


def test_reinforce_learns_cartpole():
    """Fixed seed, notebook 06's settings: REINFORCE with reward-to-go improves too (the last 40
    episodes average well above the first 20)."""
    history = train_reinforce(A2CConfig(seed=0, n_episodes=8, total_steps=20_000,
                                        lr_actor=1e-3, target="one_step"))
    first, last = np.mean(history.episode_returns[:20]), np.mean(history.episode_returns[-40:])
    assert last > 1.5 * first and last > 40, (first, last)
