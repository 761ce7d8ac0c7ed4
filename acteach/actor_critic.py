"""On-policy actor-critic algorithms: batch, online and synchronous parallel (A2C) (backs notebooks
06 and 07; notebook 09 trains A2C with the GAE target and a shared trunk).

The lecture's actor-critic algorithm, run on N environments in parallel for n_steps each:

    1. sample with pi_theta:      n_steps steps of N envs -> a time-major (T, N) record
    2. fit V_phi:                 regress V_phi(s_t) on the target y_t (stop-gradient)
    3. advantage:                 A_t = y_t - V_phi(s_t)
    4. policy gradient:           grad J = mean over valid steps of grad log pi(a_t|s_t) * A_t
    5. update theta:              one optimiser step on -J (plus an optional entropy bonus)

Two targets y_t, named as in `acteach.advantages`:
    "one_step"  y_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1})        (the lecture's TD target)
    "n_step"    y_t = bootstrapped_return: rewards to the end of the rollout, then V (A2C's choice)

With n_envs=1 and n_steps=1 this is the lecture's online actor-critic; with many envs it is A2C.
Notebook 06's batch actor-critic and REINFORCE (`acteach.batch_actor_critic`) instead sample
n_episodes whole episodes per update. All of them read one `A2CConfig` and return an
`A2CHistory`; the bookkeeping around their loops is `acteach.training`'s.

Many seeds at once: `train_a2c_seeds(config, seeds)` trains one A2C run per seed as one
computation (`acteach.stacked`: K networks as batched layers, K vector envs), each run the one
`train_a2c` would do with its seed, up to float rounding; `train_a2c` is its one-seed case. The
same `rollout` and `a2c_update` serve both: with K seeds the record is (T, K, N) and each loss
has one value per seed.

Vector envs (gymnasium 1.x) autoreset on the NEXT step: after a step that ends an episode, the
following step() ignores the action, returns the reset observation and reward 0. That step is
not a transition of the MDP, so `rollout` puts it off the mask. The done step itself returns the
true final observation as next_obs, so a truncated step bootstraps from the right state.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from acteach._validate import (StrictConfig, check_flag, check_integer, check_lam,
                               check_positive_int, check_real)
from acteach.advantages import bootstrapped_return, bootstrapped_target, gae
from acteach.nets import CategoricalPolicy, ValueNet, shared_actor_critic
from acteach.sampling import Batch, check_action_space, check_next_step_autoreset, make_envs
from acteach.stacked import (SeedEnvs, keep_seeds, stack_pairs,
                             stacked_parameters, trust_actions, unstack_into)
from acteach.surrogate import policy_gradient_surrogate
from acteach.training import (History, check_run_config, clip_gradients, interruptible,
                              progress_bar, single_threaded)

#: The critic targets of A2C (batch training: the first two). `critic.TARGETS` are the ways
#: to fit V of notebook 04, a different list.
A2C_TARGETS = ("one_step", "n_step", "gae")


@dataclass
class A2CConfig(StrictConfig):
    """Hyperparameters of A2C (synchronous parallel actor-critic), of the lecture's online
    actor-critic (A2C with one env and one step) and of notebook 06's batch actor-critic and
    REINFORCE (whole episodes; the fields marked "batch training" are theirs)."""

    env_id: str = "CartPole-v1"
    """gymnasium id of an env with discrete actions and vector observations."""
    n_envs: int = 8
    """A2C: N, the number of environments stepped in parallel."""
    n_steps: int = 4
    """A2C: T, steps per env per update (a rollout is T * N transitions)."""
    n_episodes: int = 8
    """Batch training: N, the number of whole episodes sampled per update."""
    gamma: float = 0.99
    """Discount factor in [0, 1]."""
    target: str = "n_step"
    """Critic target: "one_step" (r + gamma V(s')), "n_step" (bootstrapped return) or "gae"
    (the lambda-return V(s) + GAE(lam); its advantage is the GAE). Batch training: not "gae"."""
    lam: float = 0.95
    """GAE's lambda in [0, 1] (target "gae" only): 0 is the one-step, 1 the n-step target."""
    lr_actor: float = 1e-3
    """Adam learning rate of the policy pi_theta."""
    lr_critic: float = 3e-3
    """Adam learning rate of the critic V_phi (its own optimiser, so no value_coef is needed)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of both the policy and the critic."""
    shared: bool = False
    """A2C only: one trunk (the hidden layers) under both heads, trained by one Adam at
    lr_actor on actor_loss + value_coef * critic_loss; False = two separate networks."""
    value_coef: float = 0.5
    """Weight of the critic loss in the shared network's single loss (shared only)."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus in the actor loss (0 = none)."""
    normalize_adv: bool = True
    """Standardise advantages over the valid steps of each rollout before the actor step."""
    max_grad_norm: float | None = 0.5
    """Clip each network's gradient to this global norm; None = no clipping."""
    critic_epochs: int = 5
    """Batch actor-critic only: full-batch Adam steps fitting V_phi on each batch of episodes."""
    total_steps: int = 50_000
    """Training budget in environment transitions (valid steps, summed over envs)."""
    stop_return: float | None = None
    """Stop early once the mean return of the last `stop_window` episodes reaches this."""
    stop_window: int = 100
    """Episodes averaged for stop_return."""
    seed: int = 0
    """Seeds the networks' initialisation, the action sampling and the env resets."""

    def validate(self) -> None:
        """Raise ValueError naming the first bad field (also run when a field is set; an
        unknown field name is a TypeError: `StrictConfig`)."""
        check_run_config(self, ("n_envs", "n_steps", "n_episodes", "total_steps",
                                "critic_epochs", "stop_window"))
        check_lam(self.lam)
        check_real("value_coef", self.value_coef, "positive")
        check_flag("shared", self.shared)
        check_flag("normalize_adv", self.normalize_adv)
        if self.target not in A2C_TARGETS:
            raise ValueError(f"target: expected one of {A2C_TARGETS}, got {self.target!r}")
        for name in ("lr_actor", "lr_critic"):
            check_real(name, getattr(self, name), "positive")
        check_real("ent_coef", self.ent_coef, "nonnegative")
        if self.max_grad_norm is not None:
            check_real("max_grad_norm", self.max_grad_norm, "positive")
        if self.stop_return is not None:
            check_real("stop_return", self.stop_return)


# ---------------------------------------------------------------------------------------------
# 1. Sample with pi_theta
# ---------------------------------------------------------------------------------------------

def valid_steps(terminated: np.ndarray, truncated: np.ndarray, autoreset: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Which steps of a vector-env rollout are transitions of the MDP (exercise 7.1).

    terminated, truncated: (T, N) bool, as envs.step returned them over T calls (on gymnasium's
    reset step both are False); autoreset: (N,) bool, True for the envs whose step just before
    this rollout ended an episode. With next-step autoreset, the step after an episode's end
    (terminated or truncated) only resets that env: it is not a transition.
    -> (mask (T, N) bool, autoreset (N,) bool to pass on to the next rollout).
    """
    terminated = np.asarray(terminated, dtype=bool)
    truncated = np.asarray(truncated, dtype=bool)
    autoreset = np.asarray(autoreset, dtype=bool)
    if terminated.ndim != 2 or truncated.shape != terminated.shape:
        raise ValueError(f"truncated: expected the (T, N) shape of terminated "
                         f"{terminated.shape}, got {truncated.shape}")
    if autoreset.shape != terminated.shape[1:]:
        raise ValueError(f"autoreset: expected shape ({terminated.shape[1]},), got "
                         f"{autoreset.shape}")
    mask = np.empty_like(terminated)
    for t in range(len(terminated)):
        mask[t] = ~autoreset
        autoreset = (terminated[t] | truncated[t]) & mask[t]
    return mask, autoreset


def rollout(envs: Any, policy: CategoricalPolicy, obs: np.ndarray, autoreset: np.ndarray,
            n_steps: int, generator: torch.Generator) -> tuple[Batch, np.ndarray, np.ndarray]:
    """Step the N envs n_steps times with a ~ pi_theta(. | obs).

    obs: (N, D) the current observations; autoreset: (N,) bool, True for envs whose previous
    step ended an episode (their next step is gymnasium's reset step, not a transition).
    Returns (record, obs, autoreset) — the last two to pass to the next call. record is a
    time-major Batch with T = n_steps: obs, next_obs (T, N, D) float32, act (T, N) int64,
    rew (T, N) float64, mask / terminated / truncated (T, N) bool. mask is False on reset steps
    (and their rew and flags are 0); on a done step next_obs is the true final observation.
    K stacked seeds (`train_a2c_seeds`): envs a `stacked.SeedEnvs`, policy a `StackedPolicy`,
    one generator per seed; every (N, ...) above is then (K, N, ...).
    """
    check_positive_int("n_steps", n_steps)
    check_next_step_autoreset(envs)
    steps = []
    for _ in range(n_steps):
        act = policy.act(obs, generator)
        next_obs, rew, terminated, truncated, _ = envs.step(act)
        valid = ~autoreset
        steps.append({"obs": np.asarray(obs, np.float32), "act": act.astype(np.int64),
                      "rew": np.where(valid, rew, 0.0),
                      "next_obs": np.asarray(next_obs, np.float32), "mask": valid,
                      "terminated": terminated & valid, "truncated": truncated & valid})
        autoreset = (terminated | truncated) & valid
        obs = next_obs
    return Batch.from_steps(steps), obs, autoreset


# ---------------------------------------------------------------------------------------------
# 2-5. Fit V_phi, advantage, policy gradient, update theta
# ---------------------------------------------------------------------------------------------

def critic_targets(critic: ValueNet, record: Batch, config: A2CConfig,
                   next_value: np.ndarray | None = None, value: np.ndarray | None = None
                   ) -> np.ndarray:
    """y: (T, N) float64, the critic's target (stop-gradient: computed from V without a graph).
    next_value, value: V(s_{t+1}), V(s_t) (T, N) if already computed, else the critic is run.
    "gae": y = V(s_t) + GAE_t, so that the advantage y - V(s_t) is the GAE."""
    if next_value is None:
        next_value = critic.predict(record.next_obs)                         # V(s_{t+1}), (T, N)
    if config.target == "one_step":
        return bootstrapped_target(record.rew, next_value, record.terminated, record.mask,
                                   config.gamma)
    if config.target == "gae":
        value = critic.predict(record.obs) if value is None else value
        adv = gae(record.rew, value, next_value, record.terminated, record.truncated,
                  record.mask, config.gamma, config.lam)
        return np.where(record.mask, value + adv, 0.0)
    return bootstrapped_return(record.rew, next_value, record.terminated, record.truncated,
                               record.mask, config.gamma)


def adam(module: torch.nn.Module, lr: float) -> torch.optim.Adam:
    """Adam on the module's parameters; the fused CPU kernel updates all of them in one call,
    which matters for small nets stepped thousands of times."""
    return torch.optim.Adam(module.parameters(), lr=lr, fused=True)


def actor_critic_adam(policy: torch.nn.Module, critic: torch.nn.Module, config: A2CConfig
                      ) -> torch.optim.Adam:
    """One Adam over both networks, each its own parameter group with its own learning rate,
    so one update is one optimiser call (the per-call overhead dominates with small nets).
    Per-parameter Adam is unchanged: it is the same as two optimisers, one per network."""
    return torch.optim.Adam([{"params": policy.parameters(), "lr": config.lr_actor},
                             {"params": critic.parameters(), "lr": config.lr_critic}],
                            fused=True)


def a2c_losses(policy: CategoricalPolicy, critic: ValueNet, record: Batch, config: A2CConfig
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The two losses of one actor-critic update from a (T, N) record, means over valid steps:

    critic_loss = mean_t,n (y - V_phi(s))^2                      y from `critic_targets`
    adv         = y - V_phi(s), detached                         the TD / n-step / GAE advantage
                  (standardised over the valid steps if config.normalize_adv)
    actor_loss  = -policy_gradient_surrogate(logp, adv, mask) * N / (number of valid steps)
                  - ent_coef * mean entropy
    -> (actor_loss, critic_loss), scalar tensors with their graphs.
    """
    return _a2c_terms(policy, critic, record, config)[:2]


def _a2c_terms(policy: CategoricalPolicy, critic: ValueNet, record: Batch, config: A2CConfig
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """a2c_losses, plus the mean entropy and the mean advantage (for history). A record of K
    stacked seeds, (T, K, N), gives each of them per seed, shape (K,) (`acteach.stacked`)."""
    mask = torch.as_tensor(record.mask)
    valid = _ValidSteps(mask)
    value, next_value = critic(np.stack([record.obs, record.next_obs]))      # one forward pass
    T = mask.shape[0]
    y = critic_targets(critic, _columns(record), config,                      # column by column
                       next_value.detach().double().numpy().reshape(T, -1),
                       value.detach().double().numpy().reshape(T, -1))
    y = torch.as_tensor(y.reshape(mask.shape), dtype=critic.dtype)            # a constant

    critic_loss = valid.mean((y - value) ** 2)                                # value = V_phi(s_t)

    adv = torch.where(mask, y - value.detach(), 0.0)                          # A_t, no gradient
    if config.normalize_adv:
        adv = valid.standardise(adv)
    logp, entropy = policy.log_prob_and_entropy(record.obs, record.act)      # (T, N) each
    surrogate = valid.surrogate(logp, adv)
    entropy = valid.mean(entropy)
    actor_loss = -surrogate - config.ent_coef * entropy
    return actor_loss, critic_loss, entropy, valid.mean(adv)


class _ValidSteps:
    """Means over the valid steps of one run's (T, N) mask — or, for K stacked seeds' (T, K, N)
    mask, over each seed's own valid steps, one number per seed (K,). (The one-run formulas are
    kept as they were, so train_a2c's runs are the same to the last bit.)"""

    def __init__(self, mask: torch.Tensor):
        self.mask, self.stacked = mask, mask.dim() == 3
        self.n = (mask.sum((0, 2)).clamp(min=1) if self.stacked else max(int(mask.sum()), 1))

    def mean(self, x: torch.Tensor, keepdim: bool = False) -> torch.Tensor:
        n = self.n.view(1, -1, 1) if keepdim and self.stacked else self.n
        total = torch.where(self.mask, x, 0.0)
        return total.sum((0, 2), keepdim=keepdim) / n if self.stacked else total.sum() / n

    def standardise(self, adv: torch.Tensor) -> torch.Tensor:
        """(adv - mean) / std over the valid steps, 0 elsewhere; as it was with one valid step."""
        if not self.stacked:
            if self.n <= 1:
                return adv
            valid = adv[self.mask]
            return torch.where(self.mask, (adv - valid.mean()) / (valid.std() + 1e-8), 0.0)
        n = self.n.view(1, -1, 1)
        mean = self.mean(adv, keepdim=True)
        std = (self.mean((adv - mean) ** 2, keepdim=True) * n / (n - 1).clamp(min=1)).sqrt()
        return torch.where((n > 1) & self.mask, (adv - mean) / (std + 1e-8), adv)

    def surrogate(self, logp: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
        """policy_gradient_surrogate(logp, adv, mask) * N / (valid steps): the mean over the
        valid steps of log pi * A (of each seed)."""
        if self.stacked:
            return self.mean(logp * adv)
        return policy_gradient_surrogate(logp, adv, self.mask) * self.mask.shape[1] / self.n


def _columns(record: Batch) -> Batch:
    """A record of K stacked seeds (T, K, N, ...) as (T, K * N, ...) columns; others as is."""
    if record.mask.ndim == 2:
        return record
    T, K, N = record.mask.shape
    return Batch(**{key: value.reshape(T, K * N, *value.shape[3:])
                    for key, value in vars(record).items()})


def a2c_update(policy: CategoricalPolicy, critic: ValueNet, opt_actor: torch.optim.Optimizer,
               opt_critic: torch.optim.Optimizer | None, record: Batch, config: A2CConfig
               ) -> dict[str, float]:
    """One actor-critic update from a (T, N) record: a step on the losses of `a2c_losses`.

    Separate networks: opt_critic steps on critic_loss, opt_actor on actor_loss; or, with
    opt_critic None, opt_actor holds both (`actor_critic_adam`) and steps on their sum. A
    shared trunk (config.shared, opt_critic None): actor_loss + value_coef * critic_loss.
    Returns the losses, the mean entropy and the mean advantage as floats (lists of K floats,
    one per seed, for K stacked seeds: `train_a2c_seeds`).
    """
    actor_loss, critic_loss, entropy, adv_mean = _a2c_terms(policy, critic, record, config)
    # separate networks: the critic loss moves only phi and the actor loss only theta (adv is
    # detached), so one backward pass of their sum gives each network its own gradient; a
    # shared trunk feels both, the critic's weighted by value_coef
    # (K seeds stacked: one loss per seed; their sum gives each seed the gradient of its own)
    loss = actor_loss + (config.value_coef if config.shared else 1.0) * critic_loss
    optimizers = [opt_actor] if opt_critic is None else [opt_critic, opt_actor]
    for opt in optimizers:
        opt.zero_grad()
    loss.sum().backward()
    for opt in optimizers:
        clip_gradients(opt, config.max_grad_norm)          # each network's gradient on its own
        opt.step()
    return {"actor_loss": actor_loss.tolist(), "critic_loss": critic_loss.tolist(),
            "entropy": entropy.tolist(), "adv_mean": adv_mean.tolist()}


# ---------------------------------------------------------------------------------------------
# Training loop
# ---------------------------------------------------------------------------------------------

@dataclass
class A2CHistory(History):
    """What `train_a2c`, `train_batch_actor_critic` or `train_reinforce` did: the fields of
    `training.History` (losses per update: actor_loss, critic_loss, entropy, adv_mean; no
    critic_loss for REINFORCE), and the trained networks.

    policy:  the trained CategoricalPolicy.
    critic:  the trained ValueNet (None for REINFORCE, which has no critic).
    """

    policy: CategoricalPolicy | None = None
    critic: ValueNet | None = None


def _record_rollout(history: A2CHistory, record: Batch, running_return: np.ndarray,
                    seconds: float) -> None:
    """Add the rollout's steps and finished episodes to history, step by step; running_return
    (N,) is updated in place. seconds: training time so far, stamped on each episode end."""
    for t in range(record.rew.shape[0]):
        history.record_step(record.rew[t], record.mask[t],
                            record.terminated[t] | record.truncated[t], running_return, seconds)


def _reached_stop(history: A2CHistory, config: A2CConfig) -> bool:
    """Has the mean of stop_window consecutive returns reached stop_return (ever, so also
    inside the last rollout)?"""
    return (config.stop_return is not None and
            history.first_reached(config.stop_return, config.stop_window) is not None)


def train_a2c(config: A2CConfig, progress: bool = True) -> A2CHistory:
    """Train a CategoricalPolicy and a ValueNet with A2C for config.total_steps transitions.

    Runs `training.single_threaded(config.seed)`: torch on one thread (small nets on a few
    cores train far faster on one thread), the thread count and the global torch RNG state
    restored afterwards. It is `train_a2c_seeds` with the one seed config.seed.
    """
    return train_a2c_seeds(config, [config.seed], progress)[0]


def train_a2c_seeds(config: A2CConfig, seeds: Sequence[int], progress: bool = False
                    ) -> list[A2CHistory]:
    """Train one A2C run per seed, all of them as one computation (`acteach.stacked`): K
    networks as batched layers, K vector envs of N envs, one optimiser call for all.

    Run k is the run of train_a2c(replace(config, seed=seeds[k])), up to float rounding: the
    same initialisation, env resets and action noise, its own Adam state and gradient clipping,
    no gradient between seeds. Each run stops on its own (total_steps or stop_return) and
    leaves the batch then; its History's seconds are the batch's wall-clock until that moment.
    """
    config.validate()
    if isinstance(seeds, (int, np.integer)) or len(seeds) == 0:
        raise ValueError(f"seeds: expected a non-empty list of integer seeds, got {seeds!r}")
    for seed in seeds:
        check_integer("seeds", seed)
    if config.n_steps == 1 and len(seeds) > 1:
        # one-step rollouts can hold no transition for one seed but not another (all its envs
        # on gymnasium's reset step); such a seed skips its update, so run them one by one
        return [train_a2c(dataclasses.replace(config, seed=int(s)), progress) for s in seeds]
    envs = (trust_actions(make_envs(config.env_id, config.n_envs)) if len(seeds) == 1
            else SeedEnvs(config.env_id, config.n_envs, len(seeds)))
    check_action_space(envs, config.env_id, "Discrete", "A2C")
    try:
        with single_threaded(int(seeds[0])):
            return _train(config, [int(s) for s in seeds], envs, progress)
    finally:
        envs.close()


def train_online_actor_critic(config: A2CConfig, progress: bool = True) -> A2CHistory:
    """The lecture's online actor-critic: one env, one transition (s, a, r, s'), then one step
    of V_phi on the target r + gamma V_phi(s') and one step of theta on grad log pi(a|s) A.
    It is train_a2c with n_envs = 1, n_steps = 1 and the one-step target."""
    return train_a2c(dataclasses.replace(config, n_envs=1, n_steps=1, target="one_step"),
                     progress)


def _networks(config: A2CConfig, obs_dim: int, n_actions: int, seed: int
              ) -> tuple[CategoricalPolicy, ValueNet]:
    """The (policy, critic) a run with this seed starts from (from torch's global RNG)."""
    torch.manual_seed(seed)
    if config.shared:
        return shared_actor_critic(obs_dim, n_actions, config.hidden)
    return CategoricalPolicy(obs_dim, n_actions, config.hidden), ValueNet(obs_dim, config.hidden)


def _train(config: A2CConfig, seeds: list[int], envs: Any, progress: bool
           ) -> list[A2CHistory]:
    """The loop of train_a2c_seeds: rollout, a2c_update, bookkeeping per seed; a seed that is
    done leaves the batch (its rows of the networks, the optimiser, the envs). One seed runs on
    the plain networks and envs (a record (T, N)), seen below as a batch of one."""
    start = time.perf_counter()
    one = len(seeds) == 1
    obs_dim, n_actions = envs.single_observation_space.shape[0], envs.single_action_space.n
    pairs = [_networks(config, obs_dim, n_actions, seed) for seed in seeds]
    policy, critic = pairs[0] if one else stack_pairs(pairs)
    if config.shared:
        opt_actor = adam(torch.nn.ModuleList([policy, critic]), config.lr_actor)
    else:
        opt_actor = actor_critic_adam(policy, critic, config)
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    obs, _ = envs.reset(seed=seeds[0]) if one else envs.reset(seeds)
    autoreset = np.zeros((len(seeds), config.n_envs), dtype=bool)
    running_return = np.zeros((len(seeds), config.n_envs))
    histories = [A2CHistory() for _ in seeds]
    live = list(range(len(seeds)))                  # the seeds still training, in batch order
    with (progress_bar(config.total_steps * len(seeds), progress, "A2C") as bar,
          interruptible(histories, "A2C")):
        while live:
            record, obs, autoreset = rollout(envs, policy, obs, autoreset[0] if one else autoreset,
                                             config.n_steps, generators[0] if one else generators)
            losses = (a2c_update(policy, critic, opt_actor, None, record, config)
                      if record.mask.any() else None)     # a lone reset step has nothing
            if one:                                       # as a batch of one seed
                record = Batch(**{key: value[:, None] for key, value in vars(record).items()})
                losses = losses and {key: [value] for key, value in losses.items()}
                autoreset = autoreset[None]
            seconds = time.perf_counter() - start
            for i, k in enumerate(live):
                if losses is not None:
                    histories[k].add_losses({key: value[i] for key, value in losses.items()})
                before = histories[k].env_steps
                _record_rollout(histories[k], Batch(**{key: value[:, i] for key, value
                                                       in vars(record).items()}),
                                running_return[i], seconds)
                bar.update(histories[k].env_steps - before)
            done = [i for i, k in enumerate(live) if histories[k].env_steps >= config.total_steps
                    or _reached_stop(histories[k], config)]
            for i in done:
                k = live[i]
                histories[k].seconds = seconds
                histories[k].policy = unstack_into(policy, pairs[k][0], i)
                histories[k].critic = unstack_into(critic, pairs[k][1], i)
            if done:
                keep = [i for i in range(len(live)) if i not in done]
                live = [live[i] for i in keep]
                if live:
                    keep_seeds(stacked_parameters(policy, critic), opt_actor, keep)
                    envs.keep(keep)
                    obs, autoreset = obs[keep], autoreset[keep]
                    running_return = running_return[keep]
                    generators = [generators[i] for i in keep]
    for i, k in enumerate(live):            # interrupted (Ctrl-C): the runs so far
        histories[k].seconds = time.perf_counter() - start
        histories[k].policy = unstack_into(policy, pairs[k][0], i)
        histories[k].critic = unstack_into(critic, pairs[k][1], i)
    return histories
