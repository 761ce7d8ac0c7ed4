"""Batch actor-critic and REINFORCE (backs notebook 06): N whole episodes per update.

The lecture's batch actor-critic, one update per batch of whole episodes:

    1. sample N episodes with pi_theta        (`sampling.sample_episodes`)
    2. fit V_phi to the targets               (critic_epochs full-batch steps)
    3. A = r + gamma V_phi(s') - V_phi(s)     (the fitted critic, detached)
    4. grad J = (1/N) sum_n sum_t grad log pi(a_t|s_t) A_t
    5. theta <- one optimiser step on -J

REINFORCE with reward-to-go runs on the same budget and sampling, with w_t the reward-to-go;
REINFORCE with a V baseline (`baseline=True`) first fits V_phi to the reward-to-go as in step 2
(the "n_step" target), then takes w_t = reward-to-go_t - V_phi(s_t), detached.
All read an `actor_critic.A2CConfig` and return an `actor_critic.A2CHistory`.

Many seeds at once: `train_batch_actor_critic_seeds(config, seeds)` and
`train_reinforce_seeds(config, seeds, baseline=...)` train one run per seed as one computation
(`acteach.stacked`: K networks as batched layers, `sampling.sample_episodes_seeds`), each run
the one the single trainer would do with its seed, up to float rounding; the single trainers
are their one-seed case. The same update functions serve both: with K seeds the batch is
(T, K, N) and every loss and mean has one value per seed, over that seed's own steps.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from acteach._validate import check_gamma, check_seed
from acteach.actor_critic import A2CConfig, A2CHistory, _reached_stop, adam
from acteach.advantages import bootstrapped_return, td_advantage
from acteach.critic import critic_loss as bootstrapped_critic_loss
from acteach.critic import monte_carlo_loss
from acteach.nets import CategoricalPolicy, ValueNet
from acteach.returns import reward_to_go
from acteach.sampling import (Batch, check_action_space, make_envs, sample_episodes,
                              sample_episodes_seeds)
from acteach.stacked import keep_seeds, seed_mean, stack_pairs, stacked_parameters, unstack_into
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
    loss only V_phi(s). K stacked seeds: every (T, N) is (T, K, N), each loss (K,), per seed.
    """
    check_gamma(gamma)
    mask = torch.as_tensor(np.asarray(mask, dtype=bool))
    value, next_value = critic(obs), critic(next_obs)                         # (T, N) each
    done = torch.as_tensor(np.asarray(terminated, dtype=bool))
    r = torch.as_tensor(np.asarray(rew)).to(value.dtype)
    target = (r + gamma * torch.where(done, 0.0, next_value)).detach()         # SG[y_hat]
    adv = (target - value).detach()                                            # SG[A]
    critic_loss = seed_mean((target - value) ** 2, mask)
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
    K stacked seeds (a (T, K, N) batch): each loss is (K,), one per seed; backpropagating
    their sum gives each seed the gradient of its own loss, and the values are lists of K.
    """
    fit_critic(critic, opt_critic, batch, config, config.target)              # 2. fit V_phi
    actor_loss, critic_loss = actor_critic_losses(                            # 3. and 4.
        policy, critic, batch.obs, batch.act, batch.rew, batch.next_obs, batch.terminated,
        batch.mask, config.gamma)
    mask = torch.as_tensor(batch.mask)
    with torch.set_grad_enabled(config.ent_coef > 0):       # without the bonus, only reported
        entropy = seed_mean(policy(batch.obs).entropy(), mask)
    opt_actor.zero_grad()                                                     # 5. update theta
    (actor_loss - config.ent_coef * entropy).sum().backward()
    clip_gradients(opt_actor, config.max_grad_norm)
    opt_actor.step()

    adv = torch.as_tensor(td_advantage_of(critic, batch, config.gamma))
    return {"actor_loss": actor_loss.tolist(), "critic_loss": critic_loss.tolist(),
            "entropy": entropy.tolist(), "adv_mean": seed_mean(adv, mask).tolist()}


def fit_critic(critic: ValueNet, opt_critic: torch.optim.Optimizer, batch: Batch,
               config: A2CConfig, target: str) -> torch.Tensor:
    """Step 2, fit V_phi: config.critic_epochs full-batch steps on the target's squared error,
    "one_step": (SG[r + gamma (1 - terminated) V(s')] - V(s))^2, y recomputed each step;
    "n_step": (y - V(s))^2 with y the Monte Carlo target, the reward-to-go (bootstrapped only
    where truncated), computed once. -> the last step's loss ((K,) for K stacked seeds)."""
    args = (batch.obs, batch.rew, batch.next_obs, batch.terminated, batch.mask, config.gamma)
    if target == "n_step":
        y = monte_carlo_targets_of(critic, batch, config.gamma)
    for _ in range(config.critic_epochs):
        if target == "one_step":
            critic_loss = bootstrapped_critic_loss(critic, *args)
        else:
            critic_loss = monte_carlo_loss(critic, batch.obs, y, batch.mask)
        opt_critic.zero_grad()
        critic_loss.sum().backward()                  # K seeds: each gets its own loss's gradient
        clip_gradients(opt_critic, config.max_grad_norm)
        opt_critic.step()
    return critic_loss.detach()


def td_advantage_of(critic: torch.nn.Module, batch: Batch, gamma: float) -> np.ndarray:
    """A = r + gamma (1 - terminated) V(s') - V(s) of the critic on a batch. -> (T, N) float64
    ((T, K, N) for K stacked seeds)."""
    cols = batch.columns()
    adv = td_advantage(cols.rew, critic.predict(batch.obs).reshape(cols.mask.shape),
                       critic.predict(batch.next_obs).reshape(cols.mask.shape),
                       cols.terminated, cols.mask, gamma)
    return adv.reshape(batch.mask.shape)


def monte_carlo_targets_of(critic: torch.nn.Module, batch: Batch, gamma: float) -> np.ndarray:
    """y = the reward-to-go, continued by V(s') where an episode was truncated. -> (T, N)
    float64 ((T, K, N) for K stacked seeds)."""
    cols = batch.columns()
    y = bootstrapped_return(cols.rew, critic.predict(batch.next_obs).reshape(cols.mask.shape),
                            cols.terminated, cols.truncated, cols.mask, gamma)
    return y.reshape(batch.mask.shape)


def reward_to_go_of(batch: Batch, gamma: float) -> np.ndarray:
    """w_t = sum_{t' >= t} gamma^(t'-t) r_t' of each episode. -> (T, N) float64 ((T, K, N))."""
    cols = batch.columns()
    return reward_to_go(cols.rew, cols.mask, gamma).reshape(batch.mask.shape)


def reinforce_update(policy: CategoricalPolicy, opt_actor: torch.optim.Optimizer, batch: Batch,
                     config: A2CConfig, critic: ValueNet | None = None,
                     opt_critic: torch.optim.Optimizer | None = None) -> dict[str, float]:
    """REINFORCE on N whole episodes: one step of theta on -surrogate (- ent_coef * mean
    entropy) with w_t = sum_{t' >= t} gamma^(t'-t) r_t', the reward-to-go.
    With a critic, REINFORCE with a V baseline: first fit V_phi to the reward-to-go
    (`fit_critic`, the "n_step" target, config.critic_epochs steps), then w_t = reward-to-go_t
    - V_phi(s_t) with the fitted V_phi, detached: the same expected gradient, lower variance.
    K stacked seeds: as in `batch_actor_critic_update`, one loss per seed."""
    weight = torch.as_tensor(reward_to_go_of(batch, config.gamma))           # (T, N)
    losses = {}
    if critic is not None:
        losses["critic_loss"] = fit_critic(critic, opt_critic, batch, config, "n_step").tolist()
        weight = weight - torch.as_tensor(critic.predict(batch.obs))        # SG[G_t - V(s_t)]
    mask = torch.as_tensor(batch.mask)
    logp = policy.log_prob(batch.obs, batch.act)
    actor_loss = -policy_gradient_surrogate(logp, weight.to(logp.dtype), mask)
    with torch.set_grad_enabled(config.ent_coef > 0):       # without the bonus, only reported
        entropy = seed_mean(policy(batch.obs).entropy(), mask)
    opt_actor.zero_grad()
    (actor_loss - config.ent_coef * entropy).sum().backward()
    clip_gradients(opt_actor, config.max_grad_norm)
    opt_actor.step()
    return {"actor_loss": actor_loss.tolist(), **losses, "entropy": entropy.tolist(),
            "adv_mean": seed_mean(weight, mask).tolist()}


def _record_batch(history: A2CHistory, rew: np.ndarray, mask: np.ndarray, seconds: float
                  ) -> None:
    """Add a batch of N whole episodes (rew, mask (T, N)) to history, as if run one after the
    other."""
    for length, ret in zip(mask.sum(axis=0), rew.sum(axis=0)):
        history.env_steps += int(length)
        history.end_episode(ret, seconds)


def _check_batch_config(config: A2CConfig, seeds: Sequence[int], algorithm: str
                        ) -> tuple[int, int]:
    """The checks of the trainers; -> (obs_dim, n_actions) of the env."""
    config.validate()
    for name, ok in (("target", config.target != "gae"), ("shared", not config.shared)):
        if not ok:
            raise ValueError(f"{name}: batch training supports separate networks and the "
                             f"one_step or n_step target, got {name}={getattr(config, name)!r}")
    if isinstance(seeds, (int, np.integer, str)) or len(seeds) == 0:
        raise ValueError(f"seeds: expected a non-empty list of integer seeds, got {seeds!r}")
    for seed in seeds:
        check_seed(seed, "seeds")
    env = make_envs(config.env_id, 1)
    check_action_space(env, config.env_id, "Discrete", algorithm)
    obs_dim, n_actions = env.single_observation_space.shape[0], env.single_action_space.n
    env.close()
    return obs_dim, n_actions


def _train_episodes(config: A2CConfig, seeds: Sequence[int], algorithm: str,
                    progress: bool) -> list[A2CHistory]:
    """The loop of the trainers (algorithm: "batch actor-critic", "REINFORCE" or "REINFORCE
    with baseline"), for K seeds as one computation: N episodes per seed, one
    update; a seed that is done (total_steps or stop_return) leaves the batch (its rows of the
    networks and of the optimisers' state). One seed runs on the plain networks, sampled by
    sample_episodes: the batch (T, N) is then seen as a batch of one seed."""
    desc = {"batch actor-critic": "batch AC", "REINFORCE": "REINFORCE",
            "REINFORCE with baseline": "REINFORCE+V"}[algorithm]
    with_critic = algorithm != "REINFORCE"                   # the critic is trained and kept
    obs_dim, n_actions = _check_batch_config(config, seeds, algorithm)
    seeds, one = [int(s) for s in seeds], len(seeds) == 1
    start = time.perf_counter()
    with single_threaded(seeds[0]):
        pairs = [_networks(config, obs_dim, n_actions, seed) for seed in seeds]
        policy, critic = pairs[0] if one else stack_pairs(pairs)
        opt_actor, opt_critic = adam(policy, config.lr_actor), adam(critic, config.lr_critic)
        episode_seeds = [np.random.default_rng(seed) for seed in seeds]
        histories = [A2CHistory() for _ in seeds]
        live = list(range(len(seeds)))             # the seeds still training, in batch order
        with (progress_bar(config.total_steps * len(seeds), progress, desc) as bar,
              interruptible(histories, desc)):
            while live:
                draws = [int(episode_seeds[k].integers(2**31)) for k in live]
                if one:                                                           # 1. sample
                    batch = sample_episodes(config.env_id, policy, config.n_episodes, draws[0])
                else:
                    batch = sample_episodes_seeds(config.env_id, policy, config.n_episodes, draws)
                if algorithm == "batch actor-critic":                     # 2.-5. update
                    losses = batch_actor_critic_update(policy, critic, opt_actor, opt_critic,
                                                       batch, config)
                else:
                    losses = reinforce_update(policy, opt_actor, batch, config,
                                              *((critic, opt_critic) if with_critic else ()))
                if one:                                   # as a batch of one seed
                    batch = Batch(**{key: value[:, None] for key, value in vars(batch).items()})
                    losses = {key: [value] for key, value in losses.items()}
                seconds = time.perf_counter() - start
                for i, k in enumerate(live):
                    histories[k].add_losses({key: value[i] for key, value in losses.items()})
                    before = histories[k].env_steps
                    _record_batch(histories[k], batch.rew[:, i], batch.mask[:, i], seconds)
                    bar.update(histories[k].env_steps - before)
                done = [i for i, k in enumerate(live)
                        if histories[k].env_steps >= config.total_steps
                        or _reached_stop(histories[k], config)]
                for i in done:
                    _finish(histories[live[i]], pairs[live[i]], policy, critic, i, seconds,
                            with_critic)
                if done:
                    keep = [i for i in range(len(live)) if i not in done]
                    live = [live[i] for i in keep]
                    if live:
                        keep_seeds(stacked_parameters(policy, critic), [opt_actor, opt_critic],
                                   keep)
        for i, k in enumerate(live):                # interrupted (Ctrl-C): the runs so far
            _finish(histories[k], pairs[k], policy, critic, i, time.perf_counter() - start,
                    with_critic)
    return histories


def _networks(config: A2CConfig, obs_dim: int, n_actions: int, seed: int
              ) -> tuple[CategoricalPolicy, ValueNet]:
    """The (policy, critic) a run with this seed starts from (from torch's global RNG; REINFORCE
    without a baseline builds the critic too, unused, so all start from the same policy)."""
    torch.manual_seed(seed)
    return CategoricalPolicy(obs_dim, n_actions, config.hidden), ValueNet(obs_dim, config.hidden)


def _finish(history: A2CHistory, pair: tuple[CategoricalPolicy, ValueNet],
            policy: torch.nn.Module, critic: torch.nn.Module, i: int, seconds: float,
            with_critic: bool) -> None:
    """A seed leaves the batch: its trained networks (row i of the stacked ones) and seconds."""
    history.seconds = seconds
    history.policy = unstack_into(policy, pair[0], i)
    history.critic = unstack_into(critic, pair[1], i) if with_critic else None


def train_batch_actor_critic(config: A2CConfig, progress: bool = False) -> A2CHistory:
    """Batch actor-critic: sample config.n_episodes whole episodes with pi_theta, then
    `batch_actor_critic_update`; repeat until config.total_steps transitions were sampled.
    Single-threaded torch; the global torch RNG state and thread count are restored.
    It is `train_batch_actor_critic_seeds` with the one seed config.seed."""
    return train_batch_actor_critic_seeds(config, [config.seed], progress)[0]


def train_reinforce(config: A2CConfig, progress: bool = False, baseline: bool = False
                    ) -> A2CHistory:
    """REINFORCE with reward-to-go on the same budget and sampling as train_batch_actor_critic
    (config.n_episodes whole episodes per update); baseline=True subtracts V_phi(s_t), fitted
    to the reward-to-go with config.critic_epochs steps of lr_critic (config.target is not used;
    without a baseline, no critic field is). It is `train_reinforce_seeds` with the one seed
    config.seed."""
    return train_reinforce_seeds(config, [config.seed], progress, baseline)[0]


def train_batch_actor_critic_seeds(config: A2CConfig, seeds: Sequence[int],
                                   progress: bool = False) -> list[A2CHistory]:
    """One batch actor-critic run per seed, all of them as one computation (`acteach.stacked`):
    K networks as batched layers, N episodes of each seed sampled together, one optimiser call
    per step for all. Run k is train_batch_actor_critic(replace(config, seed=seeds[k])), up to
    float rounding: the same initialisation, episodes and action noise, its own Adam state and
    gradient clipping, no gradient between seeds (config.seed is not used). Each run stops on
    its own (total_steps or stop_return) and leaves the batch; its History's seconds are the
    batch's wall-clock until then."""
    return _train_episodes(config, seeds, "batch actor-critic", progress)


def train_reinforce_seeds(config: A2CConfig, seeds: Sequence[int], progress: bool = False,
                          baseline: bool = False) -> list[A2CHistory]:
    """One REINFORCE run per seed as one computation, as `train_batch_actor_critic_seeds`:
    run k is train_reinforce(replace(config, seed=seeds[k]), baseline=baseline), up to float
    rounding."""
    return _train_episodes(config, seeds, "REINFORCE with baseline" if baseline else "REINFORCE",
                           progress)
