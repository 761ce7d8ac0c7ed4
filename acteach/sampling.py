"""Trajectory batches and gymnasium envs: the one data layout every estimator, critic and
algorithm reads, and the one way to make a vector env (backs every notebook: 01-05 read the
Batch that `tabular.sample_trajectories` fills, 01 and 03-06 sample gymnasium episodes here,
06-09 train on envs made here).

    Batch             N trajectories (or envs) of T steps, time-major: [t, n] is step t of n;
                      `Batch.from_steps` stacks per-step records into one
    make_envs         n copies of a gymnasium env as one vector env (next-step autoreset)
    check_action_space  an algorithm refuses an env whose actions are of the wrong kind
    sample_episodes   the first episode of each of n envs, as a padded Batch
    random_policy_returns  the returns of the uniformly random policy (what learning must beat)
    sample_episodes_seeds  the same for K seeds at once (K stacked networks, `acteach.stacked`):
                      seed k's episodes are those sample_episodes gives with seed k, in a
                      Batch (T, K, N)
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from acteach._validate import check_positive_int, check_seed


@dataclass
class Batch:
    """N trajectories of at most T steps, padded to a common length.

    obs:        (T, N) int state indices (tabular) or (T, N, D) float observations.
    act:        (T, N) int actions (or (T, N, D_act) float for continuous actions).
    rew:        (T, N) float rewards; 0 where mask is False.
    next_obs:   like obs — the state after each step (used for bootstrapping).
    mask:       (T, N) bool — True on the valid steps of each trajectory.
    terminated: (T, N) bool — True on the step that reached a terminal state (no bootstrap).
    truncated:  (T, N) bool — True on the step where the episode was cut short by a time limit
                (bootstrap from V(next_obs)).

    K seeds trained as one computation (`acteach.stacked`) have a seed axis after the time
    axis: every (T, N) above is then (T, K, N), column [:, k] seed k's own Batch.
    """

    obs: np.ndarray
    act: np.ndarray
    rew: np.ndarray
    next_obs: np.ndarray
    mask: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        """(N,) number of valid steps of each trajectory."""
        return self.mask.sum(axis=0)

    @property
    def n_steps(self) -> int:
        """Total number of environment steps in the batch."""
        return int(self.mask.sum())

    def columns(self) -> Batch:
        """The seed axis folded into the trajectories: (T, K, N, ...) -> (T, K * N, ...), views;
        a (T, N) Batch as it is. Functions of (T, N) arrays (returns, targets, advantages) then
        run on the columns of all K seeds at once; reshape their (T, K * N) result to (T, K, N).
        """
        if self.mask.ndim == 2:
            return self
        T, K, N = self.mask.shape
        return Batch(**{key: value.reshape(T, K * N, *value.shape[3:])
                        for key, value in vars(self).items()})

    @classmethod
    def from_steps(cls, steps: Sequence[dict[str, np.ndarray]]) -> Batch:
        """Stack T per-step records, each a dict of the Batch fields as (N, ...) arrays, into
        a time-major Batch of (T, N, ...) arrays."""
        if not steps:
            raise ValueError("steps: expected at least one step record, got none")
        return cls(**{key: np.stack([step[key] for step in steps]) for key in steps[0]})


class Actor(Protocol):
    """Anything that picks actions for a batch of observations, e.g. `nets.CategoricalPolicy`."""

    def act(self, obs: np.ndarray, generator: Any) -> np.ndarray:
        """obs: (N, D) -> (N,) actions, drawn with the torch.Generator `generator`."""
        ...


def make_envs(env_id: str, n: int, **kwargs: Any) -> Any:
    """n copies of env_id stepped as one gymnasium vector env: the env's own numpy-vectorised
    version if it ships one (CartPole-v1 does), else a SyncVectorEnv looping over n copies.
    kwargs go to gymnasium.make_vec (e.g. max_episode_steps). The envs autoreset on the NEXT
    step (gymnasium's default), which `actor_critic.rollout` and `sac.step_and_store` mask."""
    import gymnasium as gym  # imported here so the tabular path never pays for gymnasium

    if not isinstance(env_id, str) or env_id not in gym.registry:
        raise ValueError(f"env_id: expected the id of a registered gymnasium env, got {env_id!r}")
    check_positive_int("n", n)
    has_vector = gym.spec(env_id).vector_entry_point is not None
    mode = "vector_entry_point" if has_vector else "sync"
    envs = gym.make_vec(env_id, num_envs=n, vectorization_mode=mode, **kwargs)
    check_next_step_autoreset(envs)
    return envs


def check_action_space(envs: Any, env_id: str, kind: str, algorithm: str) -> None:
    """A ValueError naming env_id unless the (vector) env's actions are of `kind`: "Discrete"
    (A2C, REINFORCE, the categorical policies) or "Box" (SAC, the squashed Gaussian policy).
    The envs are closed before the error is raised."""
    import gymnasium as gym

    space = getattr(envs, "single_action_space", getattr(envs, "action_space", None))
    expected = {"Discrete": gym.spaces.Discrete, "Box": gym.spaces.Box}[kind]
    if not isinstance(space, expected):
        envs.close()
        word = "a Discrete" if kind == "Discrete" else "a continuous (Box)"
        raise ValueError(f"env_id: {algorithm} needs {word} action space; {env_id} has {space}")


def check_next_step_autoreset(envs: Any) -> None:
    """Masking reset steps assumes gymnasium's default next-step autoreset: after a step that
    ends an episode, the next step() only resets that env. Refuse envs that do otherwise."""
    mode = envs.metadata.get("autoreset_mode")
    if mode is not None and getattr(mode, "name", str(mode)) != "NEXT_STEP":
        raise ValueError(f"envs: expected next-step autoreset, got autoreset_mode={mode}")


def _first_episodes(steps: list[dict[str, np.ndarray]], cut: bool) -> Batch:
    """Stack per-step records (keys: Batch fields, each (N, ...)) into a time-major Batch.

    Steps after each env's first episode are already off the mask; here their obs, act, rew and
    flags are zeroed, so padding is clean. cut: the loop stopped at max_steps, so trajectories
    still running get truncated=True on their last step (cut short by a time limit).
    """
    fields = vars(Batch.from_steps(steps))
    mask = fields["mask"]
    for key in ("obs", "act", "rew", "next_obs", "terminated", "truncated"):
        m = mask.reshape(mask.shape + (1,) * (fields[key].ndim - mask.ndim))
        fields[key] = np.where(m, fields[key], np.zeros((), fields[key].dtype))
    if cut:
        running = mask[-1] & ~fields["terminated"][-1]
        fields["truncated"][-1] |= running
    return Batch(**fields)


def _copy_obs(obs: np.ndarray) -> np.ndarray:
    """A copy of obs; float observations as float32, others (state indices) as they are."""
    obs = np.asarray(obs)
    return obs.astype(np.float32) if obs.dtype.kind == "f" else obs.copy()


def _step_record(
    obs: np.ndarray,
    act: np.ndarray,
    rew: np.ndarray,
    next_obs: np.ndarray,
    running: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
) -> dict[str, np.ndarray]:
    """One time step of the N envs as copies in the Batch dtypes; mask = still in episode one."""
    return {
        "obs": _copy_obs(obs),
        "act": act.astype(np.int64) if act.dtype.kind in "iub" else act.astype(np.float32),
        "rew": np.asarray(rew, dtype=np.float64),
        "next_obs": _copy_obs(next_obs),
        "mask": running.copy(),
        "terminated": np.asarray(terminated, dtype=bool) & running,
        "truncated": np.asarray(truncated, dtype=bool) & running,
    }


def sample_episodes(
    env_id: str, policy: Actor, n: int, seed: int, max_steps: int | None = None
) -> Batch:
    """Run n episodes at once on a gymnasium vector env; keep each env's first episode.

    The envs are reset with `seed`, and actions come from `policy.act(obs, generator)` with a
    torch.Generator seeded with `seed`, so a fixed seed gives the same Batch. Only envs still in
    their first episode are passed to the policy (the others repeat their last, unused action).
    The loop runs until every env has ended its first episode (terminated or truncated, as
    gymnasium reports), or for max_steps steps if given; an episode cut there gets truncated=True.
    Returns a Batch with T = the longest episode:
    obs, next_obs: (T, N, D) float32 — next_obs is the true final observation on the last step;
    act: (T, N) int64; rew: (T, N) float64; mask, terminated, truncated: (T, N) bool, the flags
    True only on the last valid step. After an episode ends, mask is False and all fields are 0
    (gymnasium's autoreset steps that follow are discarded).
    """
    import torch  # imported here so the tabular path never pays for torch

    check_positive_int("n", n)
    check_seed(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed: expected an integer, got {seed!r}")
    if max_steps is not None:
        check_positive_int("max_steps", max_steps)
    env = make_envs(env_id, n)
    generator = torch.Generator().manual_seed(int(seed))
    try:
        obs, _ = env.reset(seed=int(seed))
        return _first_episodes_of(env, obs, lambda obs, running: policy.act(obs[running],
                                                                             generator),
                                  max_steps)
    finally:
        env.close()


def sample_episodes_seeds(env_id: str, policy: Any, n: int, seeds: Sequence[int],
                          max_steps: int | None = None) -> Batch:
    """sample_episodes for K seeds at once: n episodes per seed, of K networks stacked as one
    (`stacked.StackedPolicy`, obs (K, n, D) -> logits (K, n, A)), on one `stacked.SeedEnvs`.

    Seed k's episodes are those sample_episodes(env_id, policy_k, n, seeds[k], max_steps) gives
    for the network policy_k that is row k of `policy`: its envs reset with seeds[k], its
    actions drawn with its own torch.Generator seeded with seeds[k], for its running envs only,
    exactly as CategoricalPolicy.act draws them (the stacked logits agree to about 1e-6).
    -> a Batch (T, K, n), T the longest of all K * n episodes; [:, k] is seed k's Batch padded
    to that T.
    """
    import torch

    from acteach.stacked import SeedEnvs

    check_positive_int("n", n)
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise ValueError(f"seeds: expected a non-empty list of integer seeds, got {seeds!r}")
    for s in seeds:
        check_seed(s, "seeds")
    if max_steps is not None:
        check_positive_int("max_steps", max_steps)
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    envs = SeedEnvs(env_id, n, len(seeds))
    try:
        obs, _ = envs.reset(seeds)
        return _first_episodes_of(envs, obs, _seed_by_seed(policy, generators), max_steps)
    finally:
        envs.close()


def _seed_by_seed(policy: Any, generators: Sequence[Any]) -> Any:
    """choose(obs (K, N, D), running (K, N) bool) -> the actions of the running envs, seed by
    seed in row order: one forward pass of the stacked policy, then seed k's Gumbel noise from
    generators[k] for its running envs only, as CategoricalPolicy.act(obs[k, running[k]]) draws
    it."""
    import torch

    def choose(obs: np.ndarray, running: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = policy.logits(obs)[torch.as_tensor(running)]              # (R, A)
            uniform = torch.cat([torch.rand((int(count), logits.shape[-1]), generator=g,
                                            dtype=logits.dtype)
                                 for g, count in zip(generators, running.sum(axis=1))])
            return (logits - torch.log(-torch.log(uniform))).argmax(dim=-1).numpy()
    return choose


def _first_episodes_of(env: Any, obs: np.ndarray, choose: Any, max_steps: int | None) -> Batch:
    """The loop of both samplers: step env (just reset, at obs (..., D)) until every env has
    ended its first episode (or max_steps), asking choose(obs, running) for the actions of the
    envs still running (the others repeat their last, unused action). -> a padded Batch."""
    steps: list[dict[str, np.ndarray]] = []
    running = np.ones(obs.shape[:-1], dtype=bool)
    act = np.asarray(choose(obs, running)).reshape(running.shape)
    while running.any() and (max_steps is None or len(steps) < max_steps):
        if steps:  # only envs still in their first episode ask the policy; others repeat
            act = act.copy()
            act[running] = choose(obs, running)
        next_obs, rew, terminated, truncated, _ = env.step(act)
        steps.append(_step_record(obs, act, rew, next_obs, running, terminated, truncated))
        running = running & ~(terminated | truncated)
        obs = next_obs
    return _first_episodes(steps, cut=bool(running.any()))


def random_policy_returns(env_id: str, n_episodes: int, seed: int = 0, n_envs: int = 16
                          ) -> np.ndarray:
    """Returns of the uniformly random policy (the level a run must beat to have learned
    anything): the first n_episodes / n_envs episodes of each of n_envs envs stepped together
    (the first n_episodes to end would favour short ones); actions uniform over a Discrete
    space or over a Box's [low, high]. -> (n_episodes,) rounded up to a multiple of n_envs."""
    check_seed(seed)
    check_positive_int("n_episodes", n_episodes)
    check_positive_int("n_envs", n_envs)
    per_env = -(-n_episodes // n_envs)
    envs = make_envs(env_id, n_envs)
    space = envs.single_action_space
    rng = np.random.default_rng(seed)
    returns: list[list[float]] = [[] for _ in range(n_envs)]
    try:
        envs.reset(seed=seed)
        running, autoreset = np.zeros(n_envs), np.zeros(n_envs, dtype=bool)
        while min(map(len, returns)) < per_env:
            act = (rng.integers(0, space.n, size=n_envs) if hasattr(space, "n") else
                   rng.uniform(space.low, space.high, (n_envs, *space.shape)).astype(space.dtype))
            _, rew, terminated, truncated, _ = envs.step(act)
            running += np.where(autoreset, 0.0, rew)          # a reset step is no transition
            autoreset = (terminated | truncated) & ~autoreset
            for n in np.flatnonzero(autoreset):
                returns[n].append(running[n])
                running[n] = 0.0
    finally:
        envs.close()
    return np.array([r[:per_env] for r in returns]).reshape(-1)
