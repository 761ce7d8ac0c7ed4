"""One network or two: the actor's and the critic's losses on a shared trunk (backs notebook 09,
the lecture's "Net Architecture").

A2C's two networks (`A2CConfig(shared=False)`) each have their own optimiser. With a shared trunk
(`A2CConfig(shared=True)`, `acteach.nets.shared_actor_critic`) the hidden layers feed both heads,
and one optimiser steps on

    loss = actor_loss + value_coef * critic_loss,

so on the trunk's parameters w the update follows

    g = g_actor + value_coef * g_critic,    g_actor = grad_w actor_loss, g_critic = grad_w critic_loss.

Each head has parameters of one loss only, and Adam scales every parameter's step by its own
gradient's size: value_coef hardly changes a head's step. On the trunk it sets the mix. Whether
the two losses help or hinder each other there is a measurement:

    cos(g_actor, g_critic)         > 0 they pull the same way, < 0 against each other, ~ 0 apart
    cos(g, g_actor)                how much of the trunk's step still serves the actor
    |value_coef g_critic| / |g_actor|   whose gradient dominates the trunk

`gradient_interference` measures them at a frozen policy and critic over several rollouts (the
spread over rollouts is the noise of one update). Shapes: T steps, N envs, P trunk parameters.

Which design learns faster is a learning experiment over seeds (`History.learning_curve` and
`final_return`, `stats.mean_ci` over seeds); `network_weights` / `shared_networks` store trained
shared networks compactly (assets/architecture_sweep.py saves them; notebook 09 measures their
interference).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np
import torch

from acteach._validate import check_positive_int, check_seed
from acteach.actor_critic import A2CConfig, a2c_losses, rollout
from acteach.nets import CategoricalPolicy, ValueNet, shared_actor_critic
from acteach.sampling import Batch, make_envs
from acteach.tabular import cosine, row_cosines


def trunk_parameters(policy: torch.nn.Module, critic: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters the policy and the critic share (the same tensors), in the policy's order;
    a ValueError if they share none (two separate networks)."""
    in_critic = {id(p) for p in critic.parameters()}
    shared = [p for p in policy.parameters() if id(p) in in_critic]
    if not shared:
        raise ValueError("critic: shares no parameters with policy (separate networks have no "
                         "trunk; build them with acteach.nets.shared_actor_critic)")
    return shared


def loss_gradients(policy: CategoricalPolicy, critic: ValueNet, record: Batch, config: A2CConfig
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(g_actor, g_critic): the gradients of `a2c_losses` w.r.t. the trunk's parameters,
    each (P,) float64, flattened in the order of `trunk_parameters`. The networks' .grad fields
    are left untouched."""
    trunk = trunk_parameters(policy, critic)
    actor_loss, critic_loss = a2c_losses(policy, critic, record, config)
    g_actor = torch.autograd.grad(actor_loss, trunk, retain_graph=True)
    g_critic = torch.autograd.grad(critic_loss, trunk)
    return tuple(torch.cat([g.reshape(-1) for g in grads]).double().numpy()
                 for grads in (g_actor, g_critic))


@dataclass(frozen=True)
class Interference:
    """The actor's and the critic's gradients on the trunk, one row per rollout.

    g_actor, g_critic: (R, P) float64, R rollouts of N envs x T steps at a frozen policy and
    critic, P trunk parameters.
    """

    g_actor: np.ndarray
    g_critic: np.ndarray

    @property
    def cosine(self) -> np.ndarray:
        """(R,) cos(g_actor, g_critic) per rollout: the interference in one update."""
        return row_cosines(self.g_actor, self.g_critic)

    @property
    def mean_cosine(self) -> float:
        """cos of the two gradients averaged over the R rollouts: where the losses pull on
        average, with much of each rollout's noise averaged out."""
        return cosine(self.g_actor.mean(axis=0), self.g_critic.mean(axis=0))

    def critic_to_actor(self, value_coef: float) -> np.ndarray:
        """(R,) |value_coef g_critic| / |g_actor|: > 1 where the critic dominates the trunk."""
        return (value_coef * np.linalg.norm(self.g_critic, axis=1)
                / np.linalg.norm(self.g_actor, axis=1))

    def alignment(self, value_coef: float) -> np.ndarray:
        """(R,) cos(g_actor + value_coef g_critic, g_actor): how well the trunk's step at this
        value_coef still follows the actor's gradient (1 at value_coef = 0)."""
        return row_cosines(self.g_actor + value_coef * self.g_critic, self.g_actor)


def gradient_interference(policy: CategoricalPolicy, critic: ValueNet, config: A2CConfig,
                          n_rollouts: int = 16, seed: int = 0) -> Interference:
    """g_actor and g_critic on the trunk for n_rollouts consecutive rollouts of config.n_envs
    envs x config.n_steps steps (the losses of `a2c_losses` with config's target, gamma,
    normalize_adv and ent_coef), the networks frozen: nothing is updated. Envs reset with
    `seed`, actions sampled with a generator seeded by it."""
    check_seed(seed)
    check_positive_int("n_rollouts", n_rollouts)
    trunk_parameters(policy, critic)                          # refuse separate networks early
    envs = make_envs(config.env_id, config.n_envs)
    generator = torch.Generator().manual_seed(seed)
    rows = []
    try:
        obs, _ = envs.reset(seed=seed)
        autoreset = np.zeros(config.n_envs, dtype=bool)
        for _ in range(n_rollouts):
            record, obs, autoreset = rollout(envs, policy, obs, autoreset, config.n_steps,
                                             generator)
            rows.append(loss_gradients(policy, critic, record, config))
    finally:
        envs.close()
    return Interference(np.array([a for a, _ in rows]), np.array([c for _, c in rows]))


# ---------------------------------------------------------------------------------------------
# Learning over seeds, and trained networks kept for the measurement
# ---------------------------------------------------------------------------------------------

def network_weights(policy: CategoricalPolicy, critic: ValueNet) -> dict[str, str]:
    """A shared policy and critic as JSON-ready text: each tensor of the policy (trunk and
    actor head) and of the critic's head, float32 bytes in base64 (about 25 kB for 64 x 64)."""
    trunk_parameters(policy, critic)                          # refuse separate networks
    tensors = {f"policy.{k}": v for k, v in policy.state_dict().items()}
    tensors |= {f"critic_head.{k}": v for k, v in critic.v_net[-1].state_dict().items()}
    return {k: base64.b64encode(v.detach().float().numpy().tobytes()).decode("ascii")
            for k, v in tensors.items()}


def shared_networks(weights: dict[str, str], obs_dim: int, n_actions: int,
                    hidden: tuple[int, ...]) -> tuple[CategoricalPolicy, ValueNet]:
    """The (policy, critic) on one trunk that `network_weights` stored, rebuilt exactly."""
    policy, critic = shared_actor_critic(obs_dim, n_actions, hidden)
    modules = {"policy": policy, "critic_head": critic.v_net[-1]}
    for prefix, module in modules.items():
        state = module.state_dict()
        for name, tensor in state.items():
            key = f"{prefix}.{name}"
            if key not in weights:
                raise ValueError(f"weights: no tensor {key!r} (expected the keys of "
                                 f"network_weights for hidden {hidden})")
            raw = np.frombuffer(base64.b64decode(weights[key]), dtype=np.float32)
            if raw.size != tensor.numel():
                raise ValueError(f"weights: {key!r} holds {raw.size} numbers, the network "
                                 f"with hidden {hidden} needs {tensor.numel()}")
            state[name] = torch.from_numpy(raw.copy()).reshape(tensor.shape)
        module.load_state_dict(state)
    return policy, critic
