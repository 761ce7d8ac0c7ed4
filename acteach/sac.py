"""Soft actor-critic (SAC): the corrected off-policy actor-critic that learns (backs notebook 08).

`acteach.off_policy` measures, on tabular MDPs, what goes wrong when the online actor-critic is
fed from a replay buffer, and the two fixes: learn Q_phi(s, a) on a target with a FRESH
a' ~ pi_theta(.|s'), and score FRESH actions a~ ~ pi_theta(.|s) with Q_phi. This module is that
corrected algorithm on a continuous-action env (Pendulum-v1), with the pieces that make it learn
reliably:

    policy    a tanh-squashed Gaussian, a = tanh(mu + sigma eps), reparameterised
              (`SquashedGaussianPolicy`), so the actor's gradient flows through Q_phi(s, a~)
    critics   twin Q networks and their slowly trailing target copies (`TwinQ`,
              `polyak_update`): y = r + gamma (1 - terminated) [min_j Q'_j(s', a') - alpha log pi]
              (`q_target`)
    entropy   a temperature alpha, tuned so that the policy's entropy tracks a target

One gradient step (`sac_update`) takes the three losses of `sac_losses` on a minibatch of the
`replay.ReplayBuffer` and makes one Adam step; `train_sac` alternates acting (`step_and_store`)
and updating, evaluates the deterministic policy every eval_every steps, and returns a
`SACHistory` that holds the trained `Agent`.

Shapes: B batch, D obs dim, A_d action dim, N envs.
"""
from __future__ import annotations

import copy
import math
import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from acteach._validate import StrictConfig, check_flag, check_positive_int, check_real
from acteach.nets import mlp
from acteach.replay import ReplayBuffer, ReplaySample
from acteach.sampling import check_action_space, make_envs
from acteach.training import (History, check_run_config, interruptible, progress_bar,
                              single_threaded)


@dataclass
class SACConfig(StrictConfig):
    """Hyperparameters of soft actor-critic on a continuous-action env."""

    env_id: str = "Pendulum-v1"
    """gymnasium id of an env with a Box action space and vector observations."""
    n_envs: int = 1
    """N, environments stepped in parallel; each valid transition earns one gradient step."""
    total_steps: int = 6_000
    """Training budget in environment transitions (valid steps, summed over envs)."""
    learning_starts: int = 250
    """Transitions collected with uniformly random actions before the first gradient step
    (250: seeds 0-9 reach an evaluation of -200 at a median of 2,500-3,000 steps, 3,000-3,500
    with 1,000; 100 is too few to fill the first batches with varied transitions)."""
    buffer_size: int = 100_000
    """Capacity of the replay buffer; the oldest transitions are overwritten beyond it."""
    batch_size: int = 128
    """B, transitions per gradient step, drawn uniformly from the buffer."""
    updates_per_step: int = 1
    """Gradient steps per valid transition collected (the update-to-data ratio). 2 costs
    twice the updates per step and learns in fewer steps: seeds 0-4 reach an evaluation of
    -200 (every 500 steps) at a median of 2,000 steps, against 3,000 with 1."""
    gamma: float = 0.99
    """Discount factor in [0, 1]."""
    tau: float = 0.01
    """Polyak rate of the target critics: phi' <- (1 - tau) phi' + tau phi, in (0, 1]."""
    lr: float = 1e-3
    """Adam learning rate of the actor, the critics and the temperature."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the policy and of each critic (ReLU between layers)."""
    alpha: float = 1.0
    """Initial entropy temperature alpha (the fixed one if autotune is False)."""
    autotune: bool = True
    """Tune alpha so that the policy's entropy tracks target_entropy."""
    target_entropy: float | None = None
    """Entropy the temperature aims for; None = -A_d (minus the action dimension)."""
    eval_every: int = 1_000
    """Evaluate the deterministic policy tanh(mean) every this many env steps."""
    eval_episodes: int = 5
    """Episodes per evaluation (run side by side, fresh start states each time)."""
    seed: int = 0
    """Seeds the networks, the action noise, the buffer draws and the env resets."""

    def validate(self) -> None:
        """Raise ValueError naming the first bad field (also run when a field is set; an
        unknown field name is a TypeError: `StrictConfig`)."""
        check_run_config(self, ("n_envs", "total_steps", "buffer_size", "batch_size",
                                "updates_per_step", "eval_every", "eval_episodes"))
        if isinstance(self.learning_starts, bool) or not isinstance(
                self.learning_starts, numbers.Integral) or self.learning_starts < 0:
            raise ValueError(f"learning_starts: expected an integer >= 0, got "
                             f"{self.learning_starts!r}")
        if self.learning_starts >= self.total_steps:
            raise ValueError(f"learning_starts: expected fewer random steps than total_steps "
                             f"({self.total_steps}), got {self.learning_starts}: the run would "
                             "end before its first gradient step")
        check_real("tau", self.tau, "positive")
        if self.tau > 1:
            raise ValueError(f"tau: expected a number in (0, 1], got {self.tau!r}")
        check_real("lr", self.lr, "positive")
        check_real("alpha", self.alpha, "positive")
        check_flag("autotune", self.autotune)
        if self.target_entropy is not None:
            check_real("target_entropy", self.target_entropy)


# --- the networks ------------------------------------------------------------------------------

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
_LOG2, _HALF_LOG_2PI = math.log(2.0), 0.5 * math.log(2.0 * math.pi)


class SquashedGaussianPolicy(nn.Module):
    """pi_theta(a|s): u ~ N(mu_theta(s), sigma_theta(s)^2), a = tanh(u), in (-1, 1)^A_d.

    obs_dim: D; act_dim: A_d; hidden: hidden layer sizes (ReLU). One MLP outputs mu and
    log sigma (clamped to [LOG_STD_MIN, LOG_STD_MAX]). Actions live in (-1, 1); the trainer
    rescales them to the env's bounds.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        check_positive_int("obs_dim", obs_dim)
        check_positive_int("act_dim", act_dim)
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.net = mlp([obs_dim, *hidden, 2 * act_dim], nn.ReLU)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """obs: (B, D) -> mean (B, A_d), log_std (B, A_d) of the Gaussian before the tanh."""
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """a ~ pi(.|obs), reparameterised, and log pi(a|obs). obs: (B, D) -> (B, A_d), (B,).

        a = tanh(mu + sigma * eps), eps ~ N(0, I): a is a differentiable function of theta, so
        grad_theta E[f(a)] = E[grad_theta f(tanh(mu + sigma eps))] (the reparameterisation
        trick). The density of a = tanh(u) is that of u divided by |da/du| = prod (1 - tanh(u)^2):
            log pi(a|s) = log N(u; mu, sigma) - sum log(1 - tanh(u)^2),
        with log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable for large |u|.
        """
        mean, log_std = self(obs)
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        u = mean + log_std.exp() * eps
        log_gauss = -0.5 * eps ** 2 - log_std - _HALF_LOG_2PI
        log_jacobian = 2.0 * (_LOG2 - u - F.softplus(-2.0 * u))
        return torch.tanh(u), (log_gauss - log_jacobian).sum(dim=-1)

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The evaluation action tanh(mu(obs)). obs: (B, D) -> (B, A_d)."""
        return torch.tanh(self(obs)[0])

    @torch.no_grad()
    def act(self, obs: np.ndarray, generator: torch.Generator | None = None,
            deterministic: bool = False) -> np.ndarray:
        """obs: (N, D) numpy -> (N, A_d) float32 numpy actions in (-1, 1), no gradient."""
        obs = torch.as_tensor(np.asarray(obs), dtype=self.net[0].weight.dtype)
        act = self.deterministic(obs) if deterministic else self.sample(obs, generator)[0]
        return act.numpy().astype(np.float32, copy=False)


class TwinQ(nn.Module):
    """Q_phi1(s, a) and Q_phi2(s, a): two independent MLPs held as one module.

    Their weights are stacked on a leading axis of 2, so each layer of both runs as one batched
    matmul (torch.baddbmm). Same initialisation as nn.Linear, drawn independently per critic.
    obs_dim: D; act_dim: A_d; hidden: hidden layer sizes (ReLU).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        check_positive_int("obs_dim", obs_dim)
        check_positive_int("act_dim", act_dim)
        sizes = [obs_dim + act_dim, *hidden, 1]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(n_in)
            self.weights.append(nn.Parameter(torch.empty(2, n_in, n_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(2, 1, n_out).uniform_(-bound, bound)))

    def forward(self, obs: torch.Tensor, act: torch.Tensor, frozen: bool = False
                ) -> torch.Tensor:
        """obs: (B, D), act: (B, A_d) -> (2, B): row j is Q_phi_j(obs, act).

        frozen=True uses detached weights: the output still depends on act (for the actor's
        gradient) but no gradient reaches phi.
        """
        x = torch.cat([obs, act], dim=-1).expand(2, -1, -1)              # (2, B, D + A_d)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if frozen:
                w, b = w.detach(), b.detach()
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = torch.relu(x)
        return x.squeeze(-1)


@dataclass
class Agent:
    """Everything SAC trains: the actor, the twin critics, their target copies, the
    temperature (as log alpha, so alpha > 0) and one Adam optimiser over all of them."""

    policy: SquashedGaussianPolicy
    critic: TwinQ
    target_critic: TwinQ
    log_alpha: torch.Tensor
    optimizer: torch.optim.Optimizer
    target_entropy: float

    @property
    def alpha(self) -> float:
        return float(self.log_alpha.detach().exp())


def make_agent(obs_dim: int, act_dim: int, config: SACConfig) -> Agent:
    """Fresh networks (from torch's global RNG), the target critics a copy of the critics."""
    policy = SquashedGaussianPolicy(obs_dim, act_dim, config.hidden)
    critic = TwinQ(obs_dim, act_dim, config.hidden)
    target_critic = copy.deepcopy(critic).requires_grad_(False)
    log_alpha = torch.tensor(math.log(config.alpha), requires_grad=config.autotune)
    params = [*policy.parameters(), *critic.parameters()] + ([log_alpha] if config.autotune else [])
    optimizer = torch.optim.Adam(params, lr=config.lr, fused=True)
    target_entropy = -float(act_dim) if config.target_entropy is None else config.target_entropy
    return Agent(policy, critic, target_critic, log_alpha, optimizer, target_entropy)


# --- the update, top to bottom -------------------------------------------------------------------

def q_target(policy: SquashedGaussianPolicy, target_critic: TwinQ, rew: torch.Tensor,
             next_obs: torch.Tensor, terminated: torch.Tensor, gamma: float, alpha: float,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """The critic's target, a constant (computed under no_grad: stop-gradient):

        y = r + gamma (1 - terminated) [min_j Q'_j(s', a') - alpha log pi(a'|s')],
        a' ~ pi_theta(.|s') drawn FRESH from the current policy (never the buffer's next action).

    min_j over the two target critics counters the overestimation a max-like actor causes;
    the -alpha log pi term adds the entropy of the next step (the soft value of s').
    rew: (B,); next_obs: (B, D); terminated: (B,) bool — a truncated step is stored with
    terminated False, so it bootstraps. -> (B,) float32, no graph.
    """
    with torch.no_grad():
        next_act, next_logp = policy.sample(next_obs, generator)
        next_q = target_critic(next_obs, next_act).amin(dim=0)               # (B,)
        soft_value = next_q - alpha * next_logp
        return rew.to(soft_value.dtype) + gamma * torch.where(terminated, 0.0, soft_value)


def actor_loss(policy: SquashedGaussianPolicy, critic: TwinQ, batch: ReplaySample, alpha: float,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The actor's loss, step 5' with SAC's pieces:

        mean_B [alpha log pi(a~|s) - min_j Q_j(s, a~)],   a~ = tanh(mu + sigma eps) ~ pi(.|s)

    a~ drawn FRESH at the buffer's states (never the buffer's old action batch.act) and
    reparameterised, so the gradient reaches theta through a~; log pi with the tanh correction
    (`SquashedGaussianPolicy.sample`); the critics' weights frozen, so this loss moves only
    theta. -> (the loss, a scalar; log pi(a~|s) (B,), which the temperature's loss reuses).
    """
    act, logp = policy.sample(batch.obs, generator)
    q = critic(batch.obs, act, frozen=True).amin(dim=0)                     # (B,)
    return (alpha * logp - q).mean(), logp


def sac_losses(agent: Agent, batch: ReplaySample, gamma: float,
               actor_loss: Callable[..., tuple[torch.Tensor, torch.Tensor]] = actor_loss
               ) -> dict[str, torch.Tensor]:
    """The three losses of one SAC step on a minibatch from the buffer (scalars).

    critic_loss = sum_j mean_B (Q_j(s, a) - y)^2     a the buffer's OLD action: Q(s, a) is
                                                      defined for any a; y from `q_target`
    actor_loss  = mean_B [alpha log pi(a~|s) - min_j Q_j(s, a~)],  a~ ~ pi(.|s) FRESH and
                  reparameterised; Q's weights frozen here, so this loss only moves theta
    alpha_loss  = -mean_B log_alpha (log pi(a~|s) + target_entropy)    raises alpha while the
                  entropy -log pi is below the target, lowers it when above
    actor_loss (the keyword): the function of the actor's loss, `actor_loss` by default (a
    student's own, with its signature, plugs in here).
    """
    alpha = agent.log_alpha.exp().detach()
    y = q_target(agent.policy, agent.target_critic, batch.rew, batch.next_obs,
                 batch.terminated, gamma, float(alpha))
    q = agent.critic(batch.obs, batch.act)                                    # (2, B)
    critic_loss = ((q - y) ** 2).mean(dim=1).sum()
    actor, logp = actor_loss(agent.policy, agent.critic, batch, alpha)
    alpha_loss = -(agent.log_alpha * (logp.detach() + agent.target_entropy)).mean()
    return {"critic_loss": critic_loss, "actor_loss": actor, "alpha_loss": alpha_loss,
            "entropy": -logp.detach().mean(), "q_mean": q.detach().mean()}


def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """phi' <- (1 - tau) phi' + tau phi: the target critics trail the critics slowly, so the
    target y does not move with every step of phi (a moving target destabilises the fit)."""
    with torch.no_grad():
        for target_param, param in zip(target.parameters(), online.parameters()):
            target_param.lerp_(param, tau)                  # t + tau (p - t)


def sac_update(agent: Agent, batch: ReplaySample, config: SACConfig,
               actor_loss: Callable[..., tuple[torch.Tensor, torch.Tensor]] = actor_loss
               ) -> dict[str, float]:
    """One gradient step of every part: the sum of the three losses of `sac_losses` (each
    reaches only its own parameters), one Adam step, then `polyak_update`. -> the losses,
    the policy's entropy, the mean Q and alpha, as floats.

    All three losses are taken at the same parameters and stepped together, one backward
    pass instead of two: the actor follows the critic as it was before this step (most
    implementations step the critic first and let the actor follow the updated one).
    """
    losses = sac_losses(agent, batch, config.gamma, actor_loss)
    total = losses["critic_loss"] + losses["actor_loss"]
    if config.autotune:
        total = total + losses["alpha_loss"]
    agent.optimizer.zero_grad()
    total.backward()
    agent.optimizer.step()
    polyak_update(agent.target_critic, agent.critic, config.tau)
    out = {key: value.item() for key, value in losses.items()}
    out["alpha"] = agent.alpha
    return out


# --- the training loop ------------------------------------------------------------------------

@dataclass
class SACHistory(History):
    """What a run of `train_sac` did. The fields of `training.History`: env_steps, the
    stochastic training episodes (episode_returns, episode_steps, episode_seconds), losses per
    gradient step (critic_loss, actor_loss, alpha_loss, entropy, q_mean, alpha) and seconds,
    all timed in training seconds (evaluation excluded). Added:

    agent:               the trained Agent (policy, critics, target critics, temperature).
    eval_steps:          env_steps at each evaluation.
    eval_returns:        mean undiscounted return of the deterministic policy tanh(mean) over
                         eval_episodes episodes, at each evaluation.
    eval_episode_returns: the eval_episodes returns of each evaluation.
    eval_train_seconds:  training seconds elapsed (evaluation excluded) at each evaluation.
    eval_seconds:        wall-clock time spent in evaluations, in total.
    """

    agent: Agent | None = None
    eval_steps: list[int] = field(default_factory=list)
    eval_returns: list[float] = field(default_factory=list)
    eval_episode_returns: list[list[float]] = field(default_factory=list)
    eval_train_seconds: list[float] = field(default_factory=list)
    eval_seconds: float = 0.0

    def first_eval_reaching(self, threshold: float) -> int | None:
        """Index of the first evaluation whose mean return is >= threshold, or None."""
        hits = np.flatnonzero(np.asarray(self.eval_returns) >= threshold)
        return int(hits[0]) if hits.size else None

    def steps_to_eval_return(self, threshold: float) -> int | None:
        """env_steps at the first evaluation with mean return >= threshold, or None."""
        i = self.first_eval_reaching(threshold)
        return None if i is None else self.eval_steps[i]

    def seconds_to_eval_return(self, threshold: float) -> float | None:
        """Training seconds (evaluation excluded) to the first evaluation >= threshold."""
        i = self.first_eval_reaching(threshold)
        return None if i is None else self.eval_train_seconds[i]


def evaluate(policy: SquashedGaussianPolicy, envs: Any, seed: int) -> np.ndarray:
    """One episode per env of a vector env with the deterministic policy tanh(mean).
    -> (n_envs,) undiscounted returns. Resets envs with `seed`."""
    obs, _ = envs.reset(seed=seed)
    low, high = envs.single_action_space.low, envs.single_action_space.high
    returns, done = np.zeros(envs.num_envs), np.zeros(envs.num_envs, dtype=bool)
    while not done.all():
        act = policy.act(obs, deterministic=True)
        obs, rew, terminated, truncated, _ = envs.step(_to_env(act, low, high))
        returns += np.where(done, 0.0, rew)
        done |= terminated | truncated
    return returns


def _to_env(act: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Actions in (-1, 1) rescaled to the env's box [low, high] (Pendulum: [-2, 2])."""
    return (low + (act + 1.0) * 0.5 * (high - low)).astype(np.float32)


def step_and_store(envs: Any, buffer: ReplayBuffer, obs: np.ndarray, autoreset: np.ndarray,
                   act: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step the N envs with act (N, A_d) in (-1, 1) and store the valid transitions.

    obs: (N, D) the current observations; autoreset: (N,) bool, True where the previous step
    ended an episode, so this step is gymnasium's reset step: not a transition, not stored.
    Stored: (obs, act, rew, next_obs, terminated) — next_obs the true final observation on the
    step that ends an episode, terminated without truncated (a time limit bootstraps).
    -> next_obs (N, D); rew (N,), 0 on reset steps; ended (N,) bool, the episodes that ended
    on this step, which is also the autoreset to pass to the next call.
    """
    low, high = envs.single_action_space.low, envs.single_action_space.high
    next_obs, rew, terminated, truncated, _ = envs.step(_to_env(act, low, high))
    valid = ~autoreset
    buffer.add(obs, act, rew, next_obs, terminated, mask=valid)
    return next_obs, np.where(valid, rew, 0.0), (terminated | truncated) & valid


def train_sac(config: SACConfig, progress: bool = False,
              actor_loss: Callable[..., tuple[torch.Tensor, torch.Tensor]] = actor_loss
              ) -> SACHistory:
    """Train SAC for config.total_steps transitions; evaluate every config.eval_every.
    actor_loss: the actor's loss each `sac_update` takes (`actor_loss`, or a student's own).

    Runs `training.single_threaded(config.seed)`: torch on one thread (small nets train far
    faster on one thread), the thread count and the global torch RNG state restored afterwards.
    """
    config.validate()
    envs = make_envs(config.env_id, config.n_envs)
    check_action_space(envs, config.env_id, "Box", "SAC")
    eval_envs = make_envs(config.env_id, config.eval_episodes)
    try:
        with single_threaded(config.seed):
            return _train(config, envs, eval_envs, progress, actor_loss)
    finally:
        envs.close()
        eval_envs.close()


def _train(config: SACConfig, envs: Any, eval_envs: Any, progress: bool,
           actor_loss: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> SACHistory:
    """The loop of train_sac: act (uniformly at random until learning_starts), store, one
    sac_update per valid transition (updates_per_step of them), evaluate every eval_every
    steps."""
    obs_dim, act_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    agent = make_agent(obs_dim, act_dim, config)
    buffer = ReplayBuffer(config.buffer_size, obs_dim, act_dim)
    rng, generator = np.random.default_rng(config.seed), torch.Generator().manual_seed(config.seed)
    eval_seeds = np.random.default_rng([config.seed, 1])
    obs, _ = envs.reset(seed=config.seed)
    autoreset = np.zeros(config.n_envs, dtype=bool)
    running, next_eval = np.zeros(config.n_envs), config.eval_every
    history = SACHistory(agent=agent)
    start = time.perf_counter()
    with progress_bar(config.total_steps, progress, "SAC") as bar, interruptible(history, "SAC"):
        while history.env_steps < config.total_steps:
            if history.env_steps < config.learning_starts:
                act = rng.uniform(-1.0, 1.0, (config.n_envs, act_dim)).astype(np.float32)
            else:
                act = agent.policy.act(obs, generator)
            valid = ~autoreset
            obs, rew, autoreset = step_and_store(envs, buffer, obs, autoreset, act)
            history.record_step(rew, valid, autoreset, running, time.perf_counter() - start)
            if history.env_steps >= config.learning_starts:
                for _ in range(config.updates_per_step * int(valid.sum())):
                    history.add_losses(sac_update(agent, buffer.sample(config.batch_size, rng),
                                                  config, actor_loss))
            bar.update(int(valid.sum()))
            if history.env_steps >= next_eval:
                history.seconds = time.perf_counter() - start
                _evaluate_into(history, agent.policy, eval_envs, int(eval_seeds.integers(2**31)))
                bar.set_postfix(eval=f"{history.eval_returns[-1]:.0f}")
                next_eval += config.eval_every
                start = time.perf_counter() - history.seconds        # the clock skips the eval
    history.seconds = time.perf_counter() - start
    return history


def _evaluate_into(history: SACHistory, policy: SquashedGaussianPolicy, envs: Any,
                   seed: int) -> None:
    """Run `evaluate` and append its results to history, timing it apart from training."""
    tic = time.perf_counter()
    returns = evaluate(policy, envs, seed)
    history.eval_seconds += time.perf_counter() - tic
    history.eval_steps.append(history.env_steps)
    history.eval_returns.append(float(returns.mean()))
    history.eval_episode_returns.append(returns.tolist())
    history.eval_train_seconds.append(history.seconds)
