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

`a2c_loop` is the training loop, those steps top to bottom: `rollout` (1), then the update
(2-5, `a2c_update`; `train_a2c(config, update=...)` plugs in another with its signature).
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
from collections.abc import Callable, Sequence
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
    """Which steps of a vector-env rollout are transitions of the MDP.

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
    record = _empty_record(n_steps, np.shape(obs))
    uniform = _action_noise(generator, (n_steps, *np.shape(obs)[:-1], policy.n_actions))
    for t in range(n_steps):
        act = policy.act(obs, uniform=uniform[t])                 # a ~ pi_theta(. | obs)
        next_obs, rew, terminated, truncated, _ = envs.step(act)
        valid = ~autoreset                                        # not gymnasium's reset step
        record.obs[t], record.act[t], record.next_obs[t] = obs, act, next_obs
        record.rew[t] = np.where(valid, rew, 0.0)
        record.mask[t] = valid
        record.terminated[t], record.truncated[t] = terminated & valid, truncated & valid
        autoreset = (terminated | truncated) & valid
        obs = next_obs
    return record, obs, autoreset


def _empty_record(n_steps: int, obs_shape: tuple[int, ...]) -> Batch:
    """A Batch of n_steps steps of envs whose observations are obs_shape (..., D), to fill."""
    steps = (n_steps, *obs_shape[:-1])
    return Batch(obs=np.empty((n_steps, *obs_shape), np.float32), act=np.empty(steps, np.int64),
                 rew=np.empty(steps), next_obs=np.empty((n_steps, *obs_shape), np.float32),
                 mask=np.empty(steps, bool), terminated=np.empty(steps, bool),
                 truncated=np.empty(steps, bool))


def _action_noise(generator: torch.Generator | Sequence[torch.Generator],
                  shape: tuple[int, ...]) -> torch.Tensor:
    """The U ~ Uniform(0, 1) of a rollout's Gumbel-max draws, shape (T, ..., A), one call per
    generator; with K generators (stacked seeds, shape (T, K, N, A)) seed k's from its own,
    the very numbers its single run draws."""
    if isinstance(generator, torch.Generator) or generator is None:
        return torch.rand(shape, generator=generator)
    return torch.stack([torch.rand((shape[0], *shape[2:]), generator=g) for g in generator], 1)


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
    stacked seeds, (T, K, N), gives each of them per seed, shape (K,) (`acteach.stacked`);
    a (T, N) record is computed as one such seed and gives scalars."""
    one = record.mask.ndim == 2
    if one:
        record = Batch(**{key: value[:, None] for key, value in vars(record).items()})
    mask = torch.as_tensor(record.mask)                                       # (T, K, N)
    n_valid = mask.sum((0, 2)).clamp(min=1)                                   # (K,)
    value, next_value = critic(np.stack([record.obs, record.next_obs]))      # one forward pass
    T = mask.shape[0]
    y = critic_targets(critic, _columns(record), config,                      # column by column
                       next_value.detach().double().numpy().reshape(T, -1),
                       value.detach().double().numpy().reshape(T, -1))
    y = torch.as_tensor(y.reshape(mask.shape), dtype=critic.dtype)            # a constant

    critic_loss = _valid_mean((y - value) ** 2, mask, n_valid)                # value = V_phi(s_t)

    adv = torch.where(mask, y - value.detach(), 0.0)                          # A_t, no gradient
    if config.normalize_adv:
        adv = _standardise(adv, mask, n_valid)
    logp, entropy = policy.log_prob_and_entropy(record.obs, record.act)      # (T, K, N) each
    actor_loss = -policy_gradient_surrogate(logp, adv, mask) * mask.shape[2] / n_valid
    entropy = _valid_mean(entropy, mask, n_valid)
    if config.ent_coef:                      # (0: entropy stays out of the backward pass)
        actor_loss = actor_loss - config.ent_coef * entropy
    terms = actor_loss, critic_loss, entropy, _valid_mean(adv, mask, n_valid)
    return tuple(term[0] for term in terms) if one else terms


def _valid_mean(x: torch.Tensor, mask: torch.Tensor, n_valid: torch.Tensor) -> torch.Tensor:
    """The mean of x over the valid steps of each seed: (T, K, N) -> (K,)."""
    return torch.where(mask, x, 0.0).sum((0, 2)) / n_valid


def _standardise(adv: torch.Tensor, mask: torch.Tensor, n_valid: torch.Tensor) -> torch.Tensor:
    """(adv - mean) / std over the valid steps of each seed (std with n - 1), 0 off them; a
    seed with a single valid step keeps its advantage as it is. (One seed: its valid steps
    picked out, so that a run is the same to the last bit as it has always been.)"""
    if adv.shape[1] == 1:
        if n_valid[0] <= 1:
            return adv
        valid = adv[mask]
        return torch.where(mask, (adv - valid.mean()) / (valid.std() + 1e-8), 0.0)
    n = n_valid.view(1, -1, 1)
    mean = torch.where(mask, adv, 0.0).sum((0, 2), keepdim=True) / n
    var = torch.where(mask, (adv - mean) ** 2, 0.0).sum((0, 2), keepdim=True) / (n - 1).clamp(min=1)
    return torch.where((n > 1) & mask, (adv - mean) / (var.sqrt() + 1e-8), adv)


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

    Separate networks: opt_critic steps on critic_loss, opt_actor on actor_loss. A shared
    trunk (config.shared, opt_critic None): opt_actor on actor_loss + value_coef * critic_loss
    (`a2c_optimizers` makes both).
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


def train_a2c(config: A2CConfig, progress: bool = True, update: Callable = a2c_update
              ) -> A2CHistory:
    """Train a CategoricalPolicy and a ValueNet with A2C for config.total_steps transitions
    (`a2c_loop` is the loop).

    update: the update made after each rollout, called as update(policy, critic, opt_actor,
    opt_critic, record, config) -> dict of losses (floats), the signature of `a2c_update`: a
    student's own update plugs in here. Separate networks get one Adam each; a shared trunk
    (config.shared) one Adam over both, and opt_critic None.

    Runs `training.single_threaded(config.seed)`: torch on one thread (small nets on a few
    cores train far faster on one thread), the thread count and the global torch RNG state
    restored afterwards. It is `train_a2c_seeds` with the one seed config.seed.
    """
    if not callable(update):
        raise ValueError(f"update: expected a function update(policy, critic, opt_actor, "
                         f"opt_critic, record, config) -> dict of losses, got {update!r}")
    return _train(config, [config.seed], progress, update)[0]


def train_a2c_seeds(config: A2CConfig, seeds: Sequence[int], progress: bool = False
                    ) -> list[A2CHistory]:
    """Train one A2C run per seed, all of them as one computation (`acteach.stacked`): K
    networks as batched layers, K vector envs of N envs, one optimiser call per network for
    all seeds.

    Run k is the run of train_a2c(replace(config, seed=seeds[k])), up to float rounding: the
    same initialisation, env resets and action noise, its own Adam state and gradient clipping,
    no gradient between seeds. Each run stops on its own (total_steps or stop_return) and
    leaves the batch then; its History's seconds are the batch's wall-clock until that moment.
    """
    if isinstance(seeds, (int, np.integer)) or len(seeds) == 0:
        raise ValueError(f"seeds: expected a non-empty list of integer seeds, got {seeds!r}")
    for seed in seeds:
        check_integer("seeds", seed)
    if config.n_steps == 1 and len(seeds) > 1:
        # one-step rollouts can hold no transition for one seed but not another (all its envs
        # on gymnasium's reset step); such a seed skips its update, so run them one by one
        return [train_a2c(dataclasses.replace(config, seed=int(s)), False) for s in seeds]
    return _train(config, [int(s) for s in seeds], progress, a2c_update)


def train_online_actor_critic(config: A2CConfig, progress: bool = True) -> A2CHistory:
    """The lecture's online actor-critic: one env, one transition (s, a, r, s'), then one step
    of V_phi on the target r + gamma V_phi(s') and one step of theta on grad log pi(a|s) A.
    It is train_a2c with n_envs = 1, n_steps = 1 and the one-step target."""
    return train_a2c(dataclasses.replace(config, n_envs=1, n_steps=1, target="one_step"),
                     progress)


def _train(config: A2CConfig, seeds: list[int], progress: bool, update: Callable
           ) -> list[A2CHistory]:
    """a2c_loop on the envs of the seeds (one vector env for one seed, else `SeedEnvs`), on
    one torch thread, closing the envs afterwards."""
    config.validate()
    envs = (trust_actions(make_envs(config.env_id, config.n_envs)) if len(seeds) == 1
            else SeedEnvs(config.env_id, config.n_envs, len(seeds)))
    check_action_space(envs, config.env_id, "Discrete", "A2C")
    try:
        with single_threaded(seeds[0]):
            return a2c_loop(config, seeds, envs, update, progress)
    finally:
        envs.close()


def a2c_loop(config: A2CConfig, seeds: list[int], envs: Any, update: Callable = a2c_update,
             progress: bool = False) -> list[A2CHistory]:
    """A2C's training loop, the lecture's algorithm top to bottom: sample a rollout with
    pi_theta, then `update` (2-5: the targets, the advantage, the two losses, one step of each
    network), until total_steps transitions or the stop rule.

    seeds: one seed (plain networks and envs, a (T, N) record) or K seeds trained as one
    computation (`train_a2c_seeds`: stacked networks, `SeedEnvs`, a (T, K, N) record);
    `_Runs` keeps each seed's History and takes a seed that is done out of the batch.
    -> one A2CHistory per seed.
    """
    runs = _Runs(config, seeds, envs)
    policy, critic = runs.policy, runs.critic                     # pi_theta, V_phi
    opt_actor, opt_critic = a2c_optimizers(policy, critic, config)
    obs, autoreset = runs.reset(envs)
    with (progress_bar(config.total_steps * len(seeds), progress, "A2C") as bar,
          interruptible(runs.histories, "A2C")):
        while runs.live:
            # 1. sample with pi_theta: n_steps steps of the N envs -> a time-major record
            record, obs, autoreset = rollout(envs, policy, obs, autoreset, config.n_steps,
                                             runs.generators)
            # 2-5. fit V_phi to the targets y, advantage A = y - V_phi(s), policy gradient,
            #      one step of each network (a lone reset step holds no transition: no update)
            losses = (update(policy, critic, opt_actor, opt_critic, record, config)
                      if record.mask.any() else None)
            # bookkeeping: steps, episode returns and losses of each seed; a seed that is
            # done (total_steps or stop_return) leaves the batch
            bar.update(runs.record(record, losses))
            obs, autoreset = runs.leave_when_done(obs, autoreset, envs, opt_actor, opt_critic)
    return runs.finish()


def a2c_optimizers(policy: torch.nn.Module, critic: torch.nn.Module, config: A2CConfig
                   ) -> tuple[torch.optim.Adam, torch.optim.Adam | None]:
    """(opt_actor, opt_critic): Adam at lr_actor on the policy and Adam at lr_critic on the
    critic; a shared trunk (config.shared): one Adam at lr_actor over both, and None."""
    if config.shared:
        return adam(torch.nn.ModuleList([policy, critic]), config.lr_actor), None
    return adam(policy, config.lr_actor), adam(critic, config.lr_critic)


def _reached_stop(history: A2CHistory, config: A2CConfig) -> bool:
    """Has the mean of stop_window consecutive returns reached stop_return (ever, so also
    inside the last rollout)?"""
    return (config.stop_return is not None and
            history.first_reached(config.stop_return, config.stop_window) is not None)


class _Runs:
    """The seed plumbing of `a2c_loop`: each seed's networks, action noise and History, and
    which seeds are still training. One seed trains the plain networks; K seeds train stacked
    ones (`acteach.stacked`), and a seed that is done leaves them (its rows of the networks,
    of the optimiser state and of the envs), its trained weights copied out first."""

    def __init__(self, config: A2CConfig, seeds: list[int], envs: Any):
        self.config, self.seeds, self.start = config, seeds, time.perf_counter()
        obs_dim, n_actions = envs.single_observation_space.shape[0], envs.single_action_space.n
        self.pairs = [_networks(config, obs_dim, n_actions, seed) for seed in seeds]
        self.one = len(seeds) == 1
        self.policy, self.critic = self.pairs[0] if self.one else stack_pairs(self.pairs)
        self._generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.histories = [A2CHistory() for _ in seeds]
        self.live = list(range(len(seeds)))          # the seeds still training, in batch order
        self.running_return = np.zeros((len(seeds), config.n_envs))
        self.checked = [0] * len(seeds)              # episodes checked for the stop rule

    @property
    def generators(self) -> torch.Generator | list[torch.Generator]:
        """The action noise: one seed's generator, or one per live seed."""
        return self._generators[0] if self.one else self._generators

    def reset(self, envs: Any) -> tuple[np.ndarray, np.ndarray]:
        """The first observations, each seed's envs reset with its seed, and no autoreset."""
        obs, _ = envs.reset(seed=self.seeds[0]) if self.one else envs.reset(self.seeds)
        return obs, np.zeros(obs.shape[:-1], dtype=bool)

    def record(self, record: Batch, losses: dict | None) -> int:
        """Add the rollout's steps, finished episodes and the update's losses to each live
        seed's History (all seeds' steps at once: `History.record_step` step by step would
        cost K * T calls); -> the number of transitions added (for the progress bar)."""
        seconds = time.perf_counter() - self.start
        mask, rew, ended = record.mask, record.rew, record.terminated | record.truncated
        if self.one:                                             # as a batch of one seed
            mask, rew, ended = mask[:, None], rew[:, None], ended[:, None]
        histories = [self.histories[k] for k in self.live]
        before = np.array([history.env_steps for history in histories])
        steps = before + np.cumsum(mask.sum(axis=2), axis=0)    # (T, K): env_steps after t
        for t in range(len(mask)):
            self.running_return += rew[t]
            for i, n in zip(*np.nonzero(ended[t])):
                histories[i].env_steps = int(steps[t, i])
                histories[i].end_episode(self.running_return[i, n], seconds)
                self.running_return[i, n] = 0.0
        for i, history in enumerate(histories):
            history.env_steps = int(steps[-1, i])
            if losses is not None:
                history.add_losses({key: float(value) if self.one else value[i]
                                    for key, value in losses.items()})
        return int(steps[-1].sum() - before.sum())

    def leave_when_done(self, obs: np.ndarray, autoreset: np.ndarray, envs: Any,
                        *optimizers: torch.optim.Optimizer | None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Seeds that reached total_steps or the stop rule leave the batch: their History gets
        its seconds and trained networks; -> obs and autoreset of the seeds that stay."""
        done = [i for i, k in enumerate(self.live) if self._done(k)]
        if not done:
            return obs, autoreset
        self._finish(done)
        keep = [i for i in range(len(self.live)) if i not in done]
        self.live = [self.live[i] for i in keep]
        if self.live:                                # only K > 1 stacked seeds get here
            keep_seeds(stacked_parameters(self.policy, self.critic),
                       [opt for opt in optimizers if opt is not None], keep)
            envs.keep(keep)
            self.running_return = self.running_return[keep]
            self._generators = [self._generators[i] for i in keep]
            obs, autoreset = obs[keep], autoreset[keep]
        return obs, autoreset

    def _done(self, k: int) -> bool:
        """Has seed k trained total_steps transitions, or reached stop_return (checking the
        windows that close at its episodes since the last check)?"""
        history, config = self.histories[k], self.config
        if history.env_steps >= config.total_steps:
            return True
        if config.stop_return is None or len(history.episode_returns) == self.checked[k]:
            return False
        since, self.checked[k] = self.checked[k], len(history.episode_returns)
        return history.first_reached(config.stop_return, config.stop_window, since) is not None

    def finish(self) -> list[A2CHistory]:
        """The Histories, those of seeds still training (an interrupted run) completed."""
        self._finish(range(len(self.live)))
        return self.histories

    def _finish(self, rows: Sequence[int]) -> None:
        seconds = time.perf_counter() - self.start
        for i in rows:
            k = self.live[i]
            self.histories[k].seconds = seconds
            self.histories[k].policy = unstack_into(self.policy, self.pairs[k][0], i)
            self.histories[k].critic = unstack_into(self.critic, self.pairs[k][1], i)


def _networks(config: A2CConfig, obs_dim: int, n_actions: int, seed: int
              ) -> tuple[CategoricalPolicy, ValueNet]:
    """The (policy, critic) a run with this seed starts from (from torch's global RNG)."""
    torch.manual_seed(seed)
    if config.shared:
        return shared_actor_critic(obs_dim, n_actions, config.hidden)
    return CategoricalPolicy(obs_dim, n_actions, config.hidden), ValueNet(obs_dim, config.hidden)
