"""Shared trunk vs separate networks (notebook 09): the two losses are those a2c_update steps on,
the trunk is found by identity, the gradients on it are split exactly, and the interference
measurement is deterministic, frozen and refuses separate networks."""
import copy

import numpy as np
import pytest
import torch

from acteach.actor_critic import A2CConfig, a2c_update
from acteach.architecture import (
    Interference,
    a2c_losses,
    gradient_interference,
    loss_gradients,
    network_weights,
    shared_networks,
    trunk_parameters,
)
from acteach.nets import CategoricalPolicy, ValueNet, shared_actor_critic
from acteach.parallel import sample_record


def _record(policy, seed=0):
    return sample_record(policy, "CartPole-v1", n_envs=4, length=8, seed=seed)


def _nets(shared, seed=0):
    torch.manual_seed(seed)
    if shared:
        return shared_actor_critic(4, 2, (16, 16))
    return CategoricalPolicy(4, 2, (16, 16)), ValueNet(4, (16, 16))


def _flat_grad(loss, params):
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params,
                                                                  allow_unused=True,
                                                                  materialize_grads=True)])


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("target, ent_coef", [("n_step", 0.0), ("gae", 0.01), ("one_step", 0.0)])
def test_a2c_losses_are_what_a2c_update_steps_on(shared, target, ent_coef):
    # SGD with lr = 1 and no clipping: a2c_update moves every parameter by minus the gradient
    # of the loss it steps on; that gradient must come from a2c_losses.
    config = A2CConfig(n_envs=4, n_steps=8, target=target, ent_coef=ent_coef, shared=shared,
                    value_coef=0.3, max_grad_norm=None, hidden=(16, 16))
    policy, critic = _nets(shared)
    record = _record(policy, seed=1)
    before_policy, before_critic = copy.deepcopy((policy, critic))    # keeps the sharing
    actor_loss, critic_loss = a2c_losses(before_policy, before_critic, record, config)
    if shared:
        params = list(torch.nn.ModuleList([before_policy, before_critic]).parameters())
        expected = -_flat_grad(actor_loss + config.value_coef * critic_loss, params)
        opt = torch.optim.SGD(torch.nn.ModuleList([policy, critic]).parameters(), lr=1.0)
        out = a2c_update(policy, critic, opt, None, record, config)
        after = torch.cat([p.detach().reshape(-1) for p in
                           torch.nn.ModuleList([policy, critic]).parameters()])
        start = torch.cat([p.detach().reshape(-1) for p in params])
    else:
        expected = -torch.cat([_flat_grad(actor_loss, list(before_policy.parameters())),
                               _flat_grad(critic_loss, list(before_critic.parameters()))])
        out = a2c_update(policy, critic, torch.optim.SGD(policy.parameters(), lr=1.0),
                         torch.optim.SGD(critic.parameters(), lr=1.0), record, config)
        after = torch.cat([p.detach().reshape(-1) for m in (policy, critic)
                           for p in m.parameters()])
        start = torch.cat([p.detach().reshape(-1) for m in (before_policy, before_critic)
                           for p in m.parameters()])
    torch.testing.assert_close(after - start, expected, rtol=1e-4, atol=1e-6)
    assert np.isclose(out["actor_loss"], actor_loss.item(), rtol=1e-5)
    assert np.isclose(out["critic_loss"], critic_loss.item(), rtol=1e-5)


def test_trunk_is_the_hidden_layers_and_separate_networks_have_none():
    policy, critic = _nets(shared=True)
    trunk = trunk_parameters(policy, critic)
    assert sum(p.numel() for p in trunk) == (4 * 16 + 16) + (16 * 16 + 16)
    heads = {id(p) for p in policy.logits_net[-1].parameters()} | {
        id(p) for p in critic.v_net[-1].parameters()}
    assert not heads & {id(p) for p in trunk}
    with pytest.raises(ValueError, match="critic: shares no parameters"):
        trunk_parameters(*_nets(shared=False))


def test_loss_gradients_split_the_shared_step_exactly():
    config = A2CConfig(n_envs=4, n_steps=8, shared=True, value_coef=0.7, hidden=(16, 16))
    policy, critic = _nets(shared=True, seed=2)
    record = _record(policy, seed=3)
    g_actor, g_critic = loss_gradients(policy, critic, record, config)
    assert all(p.grad is None for p in trunk_parameters(policy, critic))   # left untouched
    actor_loss, critic_loss = a2c_losses(policy, critic, record, config)
    combined = _flat_grad(actor_loss + 0.7 * critic_loss, trunk_parameters(policy, critic))
    np.testing.assert_allclose(g_actor + 0.7 * g_critic, combined.double().numpy(),
                               rtol=1e-5, atol=1e-7)
    assert g_actor.shape == g_critic.shape == (combined.numel(),)
    assert np.linalg.norm(g_actor) > 0 and np.linalg.norm(g_critic) > 0


def test_interference_on_hand_made_gradients():
    inter = Interference(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[0.0, 1.0], [2.0, 2.0]]))
    np.testing.assert_allclose(inter.cosine, [0.0, 1.0])
    np.testing.assert_allclose(inter.critic_to_actor(0.5), [0.5, 1.0])
    np.testing.assert_allclose(inter.alignment(1.0), [1 / np.sqrt(2), 1.0])
    np.testing.assert_allclose(inter.alignment(0.0), [1.0, 1.0])
    # the means over the rows: g_actor [1, 0.5], g_critic [1, 1.5]
    assert np.isclose(inter.mean_cosine, 1.75 / (np.hypot(1, 0.5) * np.hypot(1, 1.5)))


def test_gradient_interference_is_deterministic_and_leaves_the_networks_alone():
    config = A2CConfig(n_envs=4, n_steps=4, shared=True, hidden=(16, 16))
    policy, critic = _nets(shared=True, seed=4)
    before = [p.detach().clone() for p in torch.nn.ModuleList([policy, critic]).parameters()]
    first = gradient_interference(policy, critic, config, n_rollouts=5, seed=7)
    again = gradient_interference(policy, critic, config, n_rollouts=5, seed=7)
    other = gradient_interference(policy, critic, config, n_rollouts=5, seed=8)
    P = sum(p.numel() for p in trunk_parameters(policy, critic))
    assert first.g_actor.shape == first.g_critic.shape == (5, P)
    np.testing.assert_array_equal(first.g_actor, again.g_actor)
    np.testing.assert_array_equal(first.g_critic, again.g_critic)
    assert not np.array_equal(first.g_actor, other.g_actor)
    assert np.all(np.abs(first.cosine) <= 1 + 1e-12)
    for p, q in zip(torch.nn.ModuleList([policy, critic]).parameters(), before):
        assert torch.equal(p.detach(), q) and p.grad is None


def test_gradient_interference_refuses_separate_networks_and_bad_counts():
    config = A2CConfig(n_envs=2, n_steps=2, hidden=(16, 16))
    with pytest.raises(ValueError, match="critic: shares no parameters"):
        gradient_interference(*_nets(shared=False), config)
    with pytest.raises(ValueError, match="n_rollouts"):
        gradient_interference(*_nets(shared=True), config, n_rollouts=0)


def test_at_initialisation_the_critic_dominates_the_trunk():
    # The claim notebook 09 prints: at value_coef 0.5 the critic's gradient on a fresh shared
    # trunk is many times the actor's (returns are not normalised, advantages are), so the
    # shared step follows the actor's gradient poorly. Seeds 0 (networks) and 1 (rollouts).
    config = A2CConfig(shared=True)
    torch.manual_seed(0)
    policy, critic = shared_actor_critic(4, 2, config.hidden)
    inter = gradient_interference(policy, critic, config, n_rollouts=16, seed=1)
    assert np.median(inter.critic_to_actor(0.5)) > 3
    assert np.median(inter.alignment(0.5)) < np.median(inter.alignment(0.05)) < 1


def test_network_weights_rebuild_the_same_shared_networks():
    policy, critic = _nets(shared=True, seed=5)
    rebuilt = shared_networks(network_weights(policy, critic), 4, 2, (16, 16))
    trunk_parameters(*rebuilt)                                  # still one trunk
    obs = torch.randn(7, 4)
    torch.testing.assert_close(rebuilt[0](obs).logits, policy(obs).logits)
    torch.testing.assert_close(rebuilt[1](obs), critic(obs))
    with pytest.raises(ValueError, match="weights: 'policy.logits_net.0.weight' holds"):
        shared_networks(network_weights(policy, critic), 4, 2, (8, 8))
    with pytest.raises(ValueError, match="critic: shares no parameters"):
        network_weights(*_nets(shared=False))
