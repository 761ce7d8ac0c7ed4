"""K independent seeds trained as one computation: `actor_critic.train_a2c_seeds`, the A2C of
notebooks 07 and 09 on many seeds at once.

Small networks spend their time in the overhead of each torch call, not in arithmetic, so K
copies of a network cost little more than one when each layer of all K runs as one batched
matmul. Nothing is shared between the seeds: each has its own weights, its own optimiser state
(Adam is elementwise), its own gradient clipping, its own envs and its own action noise.

    StackedLinear    K linear layers as one: weight (K, in, out), bias (K, 1, out)
    stack_networks   K networks of the same shape (one per seed) -> one network whose every
                     nn.Linear is a StackedLinear; obs (..., K, B, D) -> (..., K, B, ...)
                     (its layers run on (K, B', D), `SeedFirst`; its tanh is `FastTanh`)
    unstack_into     copy seed k's trained weights back into a plain network
    keep_seeds       drop finished seeds from stacked networks and their optimisers' state
    seed_mean        a mean over the valid steps of each seed: (T, K, N) -> (K,)
    SeedEnvs         K vector envs of N envs, each reset with its own seed: obs (K, N, D)
    trust_actions    a vector env without its per-step action-space assertion

Seed k of a stacked run computes what a single run with seed k computes, up to float rounding
(tests/test_stacked.py follows both for several updates).
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from acteach.nets import CategoricalPolicy


class StackedLinear(nn.Module):
    """K independent linear layers: x (..., K, B, in) -> x @ weight + bias, (..., K, B, out).

    Built from K nn.Linear layers (their weights transposed and stacked), so seed k starts
    from exactly the layer a single run with seed k would build. Its parameters carry
    `stacked = True`: their leading axis is the seed (see `training.clip_gradients`).
    """

    def __init__(self, layers: Sequence[nn.Linear]):
        super().__init__()
        self.weight = nn.Parameter(torch.stack([lin.weight.detach().T for lin in layers]))
        self.bias = nn.Parameter(torch.stack([lin.bias.detach()[None] for lin in layers]))
        for p in (self.weight, self.bias):
            p.stacked = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:                                                      # (K, B, in)
            return torch.baddbmm(self.bias, x, self.weight)
        # (..., K, B, in): the seed axis to the front, one batched matmul, and back (a
        # broadcast x @ weight would copy the weights once per leading index)
        K, B = x.shape[-3], x.shape[-2]
        y = torch.baddbmm(self.bias, x.movedim(-3, 0).reshape(K, -1, x.shape[-1]), self.weight)
        return y.reshape(K, *x.shape[:-3], B, -1).movedim(0, -3)


def stack_networks(networks: Sequence[nn.Module], _memo: dict | None = None) -> nn.Module:
    """One network computing K networks of identical structure side by side (seed k = networks[k]).

    Every nn.Linear becomes a StackedLinear (activations have no parameters and are kept), so
    inputs get a seed axis: (..., K, B, D) in, (..., K, B, ...) out. Stacking several networks
    with one memo dict keeps layers they share shared (a trunk under two heads)."""
    memo = {} if _memo is None else _memo
    template = networks[0]
    stacked = copy.deepcopy(template)              # the structure; its layers are replaced below
    for name, module in template.named_modules():
        if isinstance(module, nn.Linear):
            layers = [net.get_submodule(name) for net in networks]
            key = tuple(id(layer) for layer in layers)
            if key not in memo:
                memo[key] = StackedLinear(layers)
            stacked.set_submodule(name, memo[key])
        elif type(module) is nn.Tanh:              # K-fold activations: see FastTanh
            stacked.set_submodule(name, FastTanh())
    for name, module in list(stacked.named_modules()):
        if type(module) is nn.Sequential:          # its layers, run seed axis first
            if not name:
                return SeedFirst(*module)
            stacked.set_submodule(name, SeedFirst(*module))
    return stacked


class SeedFirst(nn.Sequential):
    """The layers of a stacked network run one after another, the seed axis in front: an input
    (..., K, B, D) is laid out as (K, ... * B, D) once, so that each StackedLinear is one plain
    batched matmul instead of moving the axis to the front and back itself; the output is laid
    out back as (..., K, B, ...)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:                                                      # (K, B, D)
            return super().forward(x)
        lead, (K, B) = x.shape[:-3], x.shape[-3:-1]
        y = super().forward(x.movedim(-3, 0).reshape(K, -1, x.shape[-1]))
        return y.reshape(K, *lead, B, *y.shape[2:]).movedim(0, len(lead))


class FastTanh(nn.Module):
    """tanh(x) computed as 2 sigmoid(2x) - 1 (the same to 2e-7), with tanh's own backward
    (1 - y^2). torch's CPU tanh is scalar code, some ten times slower per element than its
    vectorised sigmoid: on the large batches of K seeds' whole episodes (batch actor-critic)
    it cost more than the matmuls. `stack_networks` puts it in place of every nn.Tanh."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (x.requires_grad and torch.is_grad_enabled()):            # e.g. sampling
            return torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)
        return _SigmoidTanh.apply(x)


class _SigmoidTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        y = torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


class StackedPolicy(CategoricalPolicy):
    """K CategoricalPolicies as one: logits, log_prob, log_prob_and_entropy take obs
    (..., K, B, D); `act` draws seed k's actions with seed k's own generator."""

    def __init__(self, policies: Sequence[CategoricalPolicy], memo: dict | None = None):
        nn.Module.__init__(self)
        self.obs_dim, self.n_actions = policies[0].obs_dim, policies[0].n_actions
        self.logits_net = stack_networks([p.logits_net for p in policies], memo)

    @torch.no_grad()
    def act(self, obs: np.ndarray, generator: Sequence[torch.Generator] | None = None,
            uniform: torch.Tensor | None = None) -> np.ndarray:
        """obs: (K, N, D) -> (K, N) int64 actions, seed k's drawn with generator[k] exactly as
        CategoricalPolicy.act draws them (Gumbel-max), or from uniform (K, N, A) if given."""
        logits = self.logits(obs)                                                # (K, N, A)
        if uniform is None:
            uniform = torch.stack([torch.rand(logits.shape[1:], generator=g, dtype=logits.dtype)
                                   for g in generator])
        return (logits - torch.log(-torch.log(uniform))).argmax(dim=-1).numpy()


def stack_pairs(pairs: Sequence[tuple[CategoricalPolicy, nn.Module]]
                ) -> tuple[StackedPolicy, nn.Module]:
    """K (policy, critic) pairs, one per seed -> (stacked policy, stacked critic); a trunk the
    two networks of a pair share stays shared in the stacked pair."""
    memo: dict = {}
    return (StackedPolicy([p for p, _ in pairs], memo),
            stack_networks([c for _, c in pairs], memo))


@torch.no_grad()
def unstack_into(stacked: nn.Module, network: nn.Module, k: int) -> nn.Module:
    """Write seed k's weights of `stacked` into `network` (of the template's structure), in
    place; -> network. (A run of one seed trains the plain network itself: returned as is.)"""
    if stacked is network:
        return network
    for name, module in network.named_modules():
        if isinstance(module, nn.Linear):
            layer = stacked.get_submodule(name)
            module.weight.copy_(layer.weight[k].T)
            module.bias.copy_(layer.bias[k, 0])
    return network


def stacked_parameters(*networks: nn.Module) -> list[nn.Parameter]:
    """The parameters of the networks, each once (a shared trunk is listed once)."""
    seen: dict[int, nn.Parameter] = {}
    for net in networks:
        for p in net.parameters():
            seen.setdefault(id(p), p)
    return list(seen.values())


def seed_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of x over the valid steps (mask True) of each seed: x, mask (T, K, N) -> (K,),
    seed k's mean over its own steps. One seed, (T, N) -> a scalar, the plain mean over the
    valid steps: torch.where(mask, x, 0).sum() / mask.sum()."""
    total = torch.where(mask, x, 0.0)
    if mask.dim() == 3:
        return total.sum((0, 2)) / mask.sum((0, 2))
    return total.sum() / mask.sum()


@torch.no_grad()
def keep_seeds(parameters: Sequence[nn.Parameter], optimizers: Sequence[torch.optim.Optimizer],
               keep: Sequence[int]) -> None:
    """Keep only the seeds `keep` (indices into the seed axis) of stacked parameters, and the
    matching rows of the optimisers' per-parameter state (Adam's moments), in place."""
    index = torch.as_tensor(list(keep), dtype=torch.long)
    for p in parameters:
        p.data = p.data.index_select(0, index)
        p.grad = None
        for optimizer in optimizers:
            state = optimizer.state.get(p, {})
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.dim() > 0:    # not Adam's step count
                    state[key] = value.index_select(0, index)


def trust_actions(envs: Any) -> Any:
    """envs (a vector env of discrete actions), without its per-step assertion that the action
    lies in the action space: a sizeable share of a CartPole step, and needless when the actions
    are argmaxes over that very range, as a CategoricalPolicy's are. -> envs."""
    import gymnasium as gym

    if isinstance(envs.action_space, gym.spaces.MultiDiscrete):
        envs.action_space.contains = _always_contained
    return envs


def _always_contained(x: Any) -> bool:
    return True


class SeedEnvs:
    """K vector envs of N envs each, stepped as one: obs (K, N, D), actions (K, N, ...).

    Env k is reset with seeds[k], so seed k sees the very states a single run with a vector env
    of N envs reset with seeds[k] sees. Built by `sampling.make_envs`; the same next-step
    autoreset as each of them (their metadata is this one's). CartPole-v1, whose vector env is
    numpy-vectorised, runs as ONE vector env of K * N envs whose start states seed k draws from
    its own generator (`_SeedDraws`): one env call per step instead of K.
    """

    def __init__(self, env_id: str, n: int, k: int, **kwargs: Any):
        from acteach.sampling import make_envs

        one = trust_actions(make_envs(env_id, n * k, **kwargs))
        if _draws_start_states_in_one_call(one):
            self.envs, self.joint = [one], True
        else:
            one.close()
            self.envs, self.joint = [trust_actions(make_envs(env_id, n, **kwargs))
                                     for _ in range(k)], False
        first = self.envs[0]
        self.metadata = first.metadata
        self.single_observation_space = first.single_observation_space
        self.single_action_space = first.single_action_space
        self.num_envs, self.n_seeds = n, k
        self.live = list(range(k))              # the seeds still stepped, as rows of the arrays

    def reset(self, seeds: Sequence[int]) -> tuple[np.ndarray, list]:
        if self.joint:
            env = self.envs[0].unwrapped
            env._np_random = _SeedDraws(env, [int(s) for s in seeds], self.num_envs)
            obs, info = self.envs[0].reset()
            return obs.reshape(self.n_seeds, self.num_envs, -1), [info]
        out = [env.reset(seed=int(s)) for env, s in zip(self.envs, seeds)]
        return np.stack([obs for obs, _ in out]), [info for _, info in out]

    def step(self, act: np.ndarray) -> tuple[np.ndarray, ...]:
        if self.joint:
            every = len(self.live) == self.n_seeds
            full = np.zeros((self.n_seeds, self.num_envs), dtype=np.asarray(act).dtype)
            full[self.live] = act               # seeds that left get action 0, never read
            obs, rew, terminated, truncated, info = self.envs[0].step(full.reshape(-1))
            rows = lambda x: (x.reshape(self.n_seeds, self.num_envs, *x.shape[1:])  # noqa: E731
                              [slice(None) if every else self.live])
            return rows(obs), rows(rew), rows(terminated), rows(truncated), [info]
        out = [env.step(a) for env, a in zip(self.envs, act)]
        obs, rew, terminated, truncated, infos = zip(*out)
        return np.stack(obs), np.stack(rew), np.stack(terminated), np.stack(truncated), infos

    def keep(self, keep: Sequence[int]) -> None:
        """Step only the seeds `keep` (indices into the seeds still stepped) from now on."""
        self.live = [self.live[i] for i in keep]
        if not self.joint:
            for i, env in enumerate(self.envs):
                if i not in set(keep):
                    env.close()
            self.envs = [self.envs[i] for i in keep]

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _draws_start_states_in_one_call(envs: Any) -> bool:
    """Is envs gymnasium's numpy CartPole vector env (its start states: one call
    np_random.uniform(low, high, size=(4, number of envs starting))?"""
    from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

    return type(envs.unwrapped) is CartPoleVectorEnv


class _SeedDraws:
    """Stands in for the np_random of a CartPole vector env of K * N envs: a draw of start
    states for some of its envs is made seed by seed, each seed's from its own generator, seeded
    as a vector env of N envs reset with that seed seeds its own. The envs starting are all of
    them (a reset, or every env ended at once) or those the env's prev_done marks."""

    def __init__(self, env: Any, seeds: list[int], n: int):
        from gymnasium.utils import seeding

        self.env, self.n = env, n
        self.generators = [seeding.np_random(seed)[0] for seed in seeds]

    def uniform(self, low: float, high: float, size: tuple[int, int]) -> np.ndarray:
        k_n = self.n * len(self.generators)
        if size[1] == 0:                        # no env starting (most steps): nothing to draw
            return np.empty(size)
        starting = (np.arange(k_n) if size[1] == k_n else np.flatnonzero(self.env.prev_done))
        counts = np.bincount(starting // self.n, minlength=len(self.generators))  # per seed
        # (a seed with no env starting draws nothing, as its own env's (4, 0) draw does)
        return np.concatenate([np.empty((size[0], 0))] + [
            self.generators[k].uniform(low, high, size=(size[0], int(c)))
            for k, c in enumerate(counts) if c], axis=1)
