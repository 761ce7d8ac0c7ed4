"""K seeds as one computation (acteach.stacked, actor_critic.train_a2c_seeds): seed k of a stacked
run follows the single run with seed k to float tolerance, no gradient flows between seeds, each
seed's gradient is clipped on its own, and seeds that stop early leave the batch cleanly."""
import dataclasses

import numpy as np
import pytest
import torch

from acteach.actor_critic import A2CConfig, a2c_losses, rollout, train_a2c, train_a2c_seeds
from acteach.nets import CategoricalPolicy, ValueNet, shared_actor_critic
from acteach.stacked import (SeedEnvs, StackedLinear, keep_seeds, stack_pairs,
                             stacked_parameters, unstack_into)
from acteach.training import clip_gradients


def _pairs(seeds, shared=False, hidden=(16, 16)):
    pairs = []
    for seed in seeds:
        torch.manual_seed(seed)
        pairs.append(shared_actor_critic(4, 2, hidden) if shared
                     else (CategoricalPolicy(4, 2, hidden), ValueNet(4, hidden)))
    return pairs


def test_stacked_networks_compute_each_seed_as_its_own_network():
    pairs = _pairs([0, 1, 2])
    policy, critic = stack_pairs(pairs)
    obs = torch.randn(5, 3, 7, 4)                                     # (T, K, N, D)
    for k, (p, c) in enumerate(pairs):
        torch.testing.assert_close(policy.logits(obs)[:, k], p.logits(obs[:, k]))
        torch.testing.assert_close(critic(obs)[:, k], c(obs[:, k]))
    torch.testing.assert_close(policy.logits(obs[0])[1], pairs[1][0].logits(obs[0, 1]))  # (K, N, D)


def test_shared_trunk_stays_shared_and_unstack_gives_the_trained_weights():
    pairs = _pairs([0, 1], shared=True)
    policy, critic = stack_pairs(pairs)
    assert policy.logits_net[0] is critic.v_net[0]                    # the trunk, once
    assert len(stacked_parameters(policy, critic)) == 4 + 2 + 2
    with torch.no_grad():
        policy.logits_net[0].weight[1] += 1.0
    fresh = _pairs([1], shared=True)[0]
    p, c = unstack_into(policy, fresh[0], 1), unstack_into(critic, fresh[1], 1)
    obs = torch.randn(6, 4)
    torch.testing.assert_close(p.logits(obs), policy.logits(obs.expand(2, 6, 4))[1])
    torch.testing.assert_close(c(obs), critic(obs.expand(2, 6, 4))[1])
    assert p.logits_net[0] is c.v_net[0]


def _stacked_record(seeds, n_envs=3, n_steps=6):
    pairs = _pairs(seeds)
    policy, critic = stack_pairs(pairs)
    envs = SeedEnvs("CartPole-v1", n_envs, len(seeds), max_episode_steps=4)
    obs, _ = envs.reset(seeds)
    record, _, _ = rollout(envs, policy, obs, np.zeros((len(seeds), n_envs), bool), n_steps,
                           [torch.Generator().manual_seed(s) for s in seeds])
    envs.close()
    return pairs, policy, critic, record


def test_no_gradient_flows_between_seeds():
    _, policy, critic, record = _stacked_record([0, 1, 2])
    actor_loss, critic_loss = a2c_losses(policy, critic, record, A2CConfig(ent_coef=0.01))
    assert actor_loss.shape == critic_loss.shape == (3,)
    params = stacked_parameters(policy, critic)
    grads = torch.autograd.grad(actor_loss[1] + critic_loss[1], params)
    for g in grads:
        assert g[1].abs().sum() > 0
        assert torch.all(g[0] == 0) and torch.all(g[2] == 0)


def test_losses_of_each_seed_are_those_of_its_single_network():
    pairs, policy, critic, record = _stacked_record([4, 7])
    config = A2CConfig(target="gae", lam=0.9, ent_coef=0.01)
    stacked = a2c_losses(policy, critic, record, config)
    for k, (p, c) in enumerate(pairs):
        one = dataclasses.replace(record)
        for key, value in vars(record).items():
            setattr(one, key, value[:, k])
        single = a2c_losses(p, c, one, config)
        for s, o in zip(stacked, single):
            torch.testing.assert_close(s[k], o, rtol=1e-5, atol=1e-6)


def test_clip_gradients_clips_each_seed_on_its_own():
    layer = StackedLinear([torch.nn.Linear(3, 2) for _ in range(2)])
    opt = torch.optim.SGD(layer.parameters(), lr=1.0)
    layer.weight.grad = torch.stack([torch.full((3, 2), 10.0), torch.full((3, 2), 0.01)])
    layer.bias.grad = torch.zeros(2, 1, 2)
    small = layer.weight.grad[1].clone()
    clip_gradients(opt, 1.0)
    assert layer.weight.grad[0].norm().item() == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(layer.weight.grad[1], small)          # under the norm: untouched


def test_keep_seeds_drops_rows_of_parameters_and_adam_state():
    layer = StackedLinear([torch.nn.Linear(3, 2) for _ in range(3)])
    opt = torch.optim.Adam(layer.parameters(), lr=0.1)
    layer(torch.randn(3, 5, 3)).sum().backward()
    opt.step()
    before = layer.weight.detach().clone(), opt.state[layer.weight]["exp_avg"].clone()
    keep_seeds(list(layer.parameters()), [opt], [0, 2])
    assert layer.weight.shape == (2, 3, 2)
    torch.testing.assert_close(layer.weight.detach(), before[0][[0, 2]])
    torch.testing.assert_close(opt.state[layer.weight]["exp_avg"], before[1][[0, 2]])


@pytest.mark.parametrize("kwargs", [dict(), dict(shared=True, target="gae")])
def test_seed_k_of_a_stacked_run_follows_the_single_run_with_seed_k(kwargs):
    """Seeds stop at different times (stop_return over 10 episodes); each follows its single run:
    the same episodes, losses to float tolerance, the same trained networks to tolerance."""
    config = A2CConfig(total_steps=2_500, stop_return=40.0, stop_window=10, **kwargs)
    seeds = [3, 0, 5]
    stacked = train_a2c_seeds(config, seeds)
    assert len({h.env_steps for h in stacked}) > 1                     # they left at different times
    for seed, h in zip(seeds, stacked):
        single = train_a2c(dataclasses.replace(config, seed=seed), progress=False)
        assert h.env_steps == single.env_steps
        assert h.episode_returns == single.episode_returns
        for key, values in single.losses.items():
            np.testing.assert_allclose(h.losses[key], values, rtol=1e-4, atol=1e-5)
        for mine, theirs in ((h.policy, single.policy), (h.critic, single.critic)):
            for a, b in zip(mine.parameters(), theirs.parameters()):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_train_a2c_seeds_rejects_bad_seeds():
    for seeds in ([], 3, [0, 1.5]):
        with pytest.raises(ValueError, match="^seeds:"):
            train_a2c_seeds(A2CConfig(total_steps=10), seeds)


def test_many_seeds_at_once_learn_cartpole():
    """Fixed seeds 0-2 trained together: each reaches a mean of 200 over 20 episodes within 50k
    steps (a learning test; seed 0 alone reaches it in about 15k)."""
    histories = train_a2c_seeds(A2CConfig(total_steps=50_000, stop_return=200.0, stop_window=20),
                                [0, 1, 2])
    for seed, h in enumerate(histories):
        assert h.steps_to_mean_return(200.0, 20) is not None, (seed, h.episode_returns[-20:])
        assert isinstance(h.policy, CategoricalPolicy) and isinstance(h.critic, ValueNet)


def test_envs_without_a_numpy_vector_env_step_seed_by_seed_and_match_too():
    """Acrobot-v1 has no numpy vector env: SeedEnvs steps K vector envs, one per seed."""
    config = A2CConfig(env_id="Acrobot-v1", total_steps=160, n_envs=2, n_steps=4)
    envs = SeedEnvs(config.env_id, 2, 2)
    assert not envs.joint and len(envs.envs) == 2
    envs.close()
    stacked = train_a2c_seeds(config, [1, 2])
    for seed, h in zip([1, 2], stacked):
        single = train_a2c(dataclasses.replace(config, seed=seed), progress=False)
        for key, values in single.losses.items():
            np.testing.assert_allclose(h.losses[key], values, rtol=1e-4, atol=1e-5)
