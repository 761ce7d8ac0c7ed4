"""Batch actor-critic and REINFORCE (backs notebook 06): N whole episodes per update.

The lecture's batch actor-critic, one update per batch of whole episodes:

    1. sample N episodes with pi_theta        (`sampling.sample_episodes`)
    2. fit V_phi to the targets               (critic_epochs full-batch steps)
    3. A = r + gamma V_phi(s') - V_phi(s)     (the fitted critic, detached)
    4. grad J = (1/N) sum_n sum_t grad log pi(a_t|s_t) A_t
    5. theta <- one optimiser step on -J

REINFORCE with reward-to-go runs on the same budget and sampling, with w_t the reward-to-go.
Both read an `actor_critic.A2CConfig` and return an `actor_critic.A2CHistory`.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from acteach._validate import check_gamma
from acteach.actor_critic import A2CConfig, A2CHistory, _reached_stop, adam
from acteach.advantages import bootstrapped_return, td_advantage
from acteach.critic import critic_loss as bootstrapped_critic_loss
from acteach.critic import monte_carlo_loss
from acteach.nets import CategoricalPolicy, ValueNet
from acteach.returns import reward_to_go
from acteach.sampling import Batch, check_action_space, make_envs, sample_episodes
from acteach.surrogate import policy_gradient_surrogate
from acteach.training import clip_gradients, interruptible, progress_bar, single_threaded


def actor_critic_losses(policy: CategoricalPolicy, critic: torch.nn.Module, obs, act, rew,
                        next_obs, terminated, mask, gamma: float
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """The two losses of one actor-critic update on a time-major batch (exercise 6.1).

    obs, next_obs: (T, N, D) float; act: (T, N) int; rew: (T, N) float; terminated, mask:
    (T, N) bool. next_obs[t] is the true next observation (also after a truncation).
        y_hat = r + gamma (1 - terminated) V_phi(s')           the bootstrapped target
        A     = SG[y_hat - V_phi(s)]                           the TD advantage, a constant
        actor_loss  = -(1/N) sum_n sum_t mask * log pi(a_t|s_t) * A     (-surrogate)
        critic_loss = mean over valid steps of (SG[y_hat] - V_phi(s))^2
    -> (actor_loss, critic_loss), scalar tensors; the actor loss moves only theta, the critic
    loss only V_phi(s).
    """
    check_gamma(gamma)
    mask = torch.as_tensor(np.asarray(mask, dtype=bool))
    value, next_value = critic(obs), critic(next_obs)                         # (T, N) each
    done = torch.as_tensor(np.asarray(terminated, dtype=bool))
    r = torch.as_tensor(np.asarray(rew)).to(value.dtype)
    target = (r + gamma * torch.where(done, 0.0, next_value)).detach()         # SG[y_hat]
    adv = (target - value).detach()                                            # SG[A]
    critic_loss = torch.where(mask, (target - value) ** 2, 0.0).sum() / mask.sum()
    logp = policy.log_prob(obs, act)                                           # (T, N)
    actor_loss = -policy_gradient_surrogate(logp, adv.to(logp.dtype), mask)
    return actor_loss, critic_loss


def batch_actor_critic_update(policy: CategoricalPolicy, critic: ValueNet,
                              opt_actor: torch.optim.Optimizer,
                              opt_critic: torch.optim.Optimizer, batch: Batch, config: A2CConfig
                              ) -> dict[str, float]:
    """Steps 2-5 of the lecture's batch actor-critic on N whole episodes (step 1 made `batch`).

    2. fit V_phi: config.critic_epochs full-batch steps on the target of config.target —
       "one_step": (SG[r + gamma (1 - terminated) V(s')] - V(s))^2, y recomputed each step;
       "n_step": the Monte Carlo target, the reward-to-go (bootstrapped only where truncated).
    3. A = r + gamma (1 - terminated) V_phi(s') - V_phi(s), with the fitted V_phi, detached.
    4. grad J = (1/N) sum_n sum_t grad log pi(a_t|s_t) A_t: the gradient of the surrogate.
    5. one step of theta on -surrogate (- ent_coef * mean entropy).
    Returns the final losses, the mean entropy and the mean advantage over valid steps.
    """
    args = (batch.obs, batch.rew, batch.next_obs, batch.terminated, batch.mask, config.gamma)
    if config.target == "n_step":
        y = bootstrapped_return(batch.rew, critic.predict(batch.next_obs), batch.terminated,
                                batch.truncated, batch.mask, config.gamma)
    for _ in range(config.critic_epochs):                                     # 2. fit V_phi
        if config.target == "one_step":
            critic_loss = bootstrapped_critic_loss(critic, *args)
        else:
            critic_loss = monte_carlo_loss(critic, batch.obs, y, batch.mask)
        opt_critic.zero_grad()
        critic_loss.backward()
        clip_gradients(opt_critic, config.max_grad_norm)
        opt_critic.step()

    actor_loss, critic_loss = actor_critic_losses(                            # 3. and 4.
        policy, critic, batch.obs, batch.act, batch.rew, batch.next_obs, batch.terminated,
        batch.mask, config.gamma)
    mask = torch.as_tensor(batch.mask)
    entropy = torch.where(mask, policy(batch.obs).entropy(), 0.0).sum() / mask.sum()
    opt_actor.zero_grad()                                                     # 5. update theta
    (actor_loss - config.ent_coef * entropy).backward()
    clip_gradients(opt_actor, config.max_grad_norm)
    opt_actor.step()

    adv = td_advantage_of(critic, batch, config.gamma)
    return {"actor_loss": actor_loss.item(), "critic_loss": critic_loss.item(),
            "entropy": entropy.item(), "adv_mean": float(adv[batch.mask].mean())}


def td_advantage_of(critic: torch.nn.Module, batch: Batch, gamma: float) -> np.ndarray:
    """A = r + gamma (1 - terminated) V(s') - V(s) of the critic on a batch. -> (T, N) float64."""
    return td_advantage(batch.rew, critic.predict(batch.obs), critic.predict(batch.next_obs),
                        batch.terminated, batch.mask, gamma)


def reinforce_update(policy: CategoricalPolicy, opt_actor: torch.optim.Optimizer, batch: Batch,
                     config: A2CConfig) -> dict[str, float]:
    """REINFORCE with reward-to-go on N whole episodes: one step of theta on -surrogate with
    w_t = sum_{t' >= t} gamma^(t'-t) r_t' (- ent_coef * mean entropy)."""
    ret = reward_to_go(batch.rew, batch.mask, config.gamma)                  # (T, N)
    mask = torch.as_tensor(batch.mask)
    logp = policy.log_prob(batch.obs, batch.act)
    actor_loss = -policy_gradient_surrogate(logp, torch.as_tensor(ret, dtype=logp.dtype), mask)
    entropy = torch.where(mask, policy(batch.obs).entropy(), 0.0).sum() / mask.sum()
    opt_actor.zero_grad()
    (actor_loss - config.ent_coef * entropy).backward()
    clip_gradients(opt_actor, config.max_grad_norm)
    opt_actor.step()
    return {"actor_loss": actor_loss.item(), "entropy": entropy.item(),
            "adv_mean": float(ret[batch.mask].mean())}


def _record_batch(history: A2CHistory, batch: Batch, seconds: float) -> None:
    """Add a batch of N whole episodes to history, as if run one after the other."""
    for length, ret in zip(batch.lengths, batch.rew.sum(axis=0)):
        history.env_steps += int(length)
        history.end_episode(ret, seconds)


def _train_episodes(config: A2CConfig, with_critic: bool, progress: bool) -> A2CHistory:
    """The loop of train_batch_actor_critic / train_reinforce: N episodes, one update."""
    config.validate()
    for name, ok in (("target", config.target != "gae"), ("shared", not config.shared)):
        if not ok:
            raise ValueError(f"{name}: batch training supports separate networks and the "
                             f"one_step or n_step target, got {name}={getattr(config, name)!r}")
    env = make_envs(config.env_id, 1)
    check_action_space(env, config.env_id, "Discrete",
                       "batch actor-critic" if with_critic else "REINFORCE")
    obs_dim, n_actions = env.single_observation_space.shape[0], env.single_action_space.n
    env.close()
    start = time.perf_counter()
    with single_threaded(config.seed):
        policy = CategoricalPolicy(obs_dim, n_actions, config.hidden)
        critic = ValueNet(obs_dim, config.hidden)
        opt_actor = adam(policy, config.lr_actor)
        opt_critic = adam(critic, config.lr_critic)
        seeds, history = np.random.default_rng(config.seed), A2CHistory()
        desc = "batch AC" if with_critic else "REINFORCE"
        with progress_bar(config.total_steps, progress, desc) as bar, interruptible(history, desc):
            while history.env_steps < config.total_steps:
                batch = sample_episodes(config.env_id, policy, config.n_episodes,   # 1. sample
                                        seed=int(seeds.integers(2**31)))
                history.add_losses(
                    batch_actor_critic_update(policy, critic, opt_actor, opt_critic, batch,
                                              config) if with_critic
                    else reinforce_update(policy, opt_actor, batch, config))
                before = history.env_steps
                _record_batch(history, batch, time.perf_counter() - start)
                bar.update(history.env_steps - before)
                if _reached_stop(history, config):
                    break
        history.policy, history.critic = policy, critic if with_critic else None
    history.seconds = time.perf_counter() - start
    return history


def train_batch_actor_critic(config: A2CConfig, progress: bool = False) -> A2CHistory:
    """Batch actor-critic: sample config.n_episodes whole episodes with pi_theta, then
    `batch_actor_critic_update`; repeat until config.total_steps transitions were sampled.
    Single-threaded torch; the global torch RNG state and thread count are restored."""
    return _train_episodes(config, with_critic=True, progress=progress)


def train_reinforce(config: A2CConfig, progress: bool = False) -> A2CHistory:
    """REINFORCE with reward-to-go on the same budget and sampling as train_batch_actor_critic
    (config.n_episodes whole episodes per update; the critic fields are unused)."""
    return _train_episodes(config, with_critic=False, progress=progress)
