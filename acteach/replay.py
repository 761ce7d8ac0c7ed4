"""A replay buffer: the transitions an off-policy learner trains on (backs notebook 08).

An on-policy actor-critic throws each rollout away after one update. An off-policy one keeps
every transition (s, a, r, s', terminated) in a buffer and trains on uniform random minibatches
of it, old and new alike, so each environment step is reused many times. The price: the
actions in the buffer came from older policies (`acteach.off_policy` is about what that breaks).

What is stored, and what is not:
  terminated  True when s' is a terminal state: the target r + gamma (1 - terminated) Q(s', a')
              does not bootstrap there, nothing follows.
  truncated   NOT stored. A time limit is not a terminal state: after a truncation s' still
              has a value and the target bootstraps from it, exactly as after any other step.
              Storing `terminated | truncated` as done (the bug the course avoids, see
              `acteach.advantages`) would teach the critic that the pendulum is worth 0 at
              step 200.
  mask        gymnasium's vector envs autoreset on the step after an episode ends; that step
              is not a transition of the MDP (`acteach.actor_critic.rollout`), and `add` skips
              the rows whose mask is False.

Storage is a ring of preallocated numpy arrays: `add` writes at the cursor and wraps around,
overwriting the oldest rows once `capacity` is reached. `sample` draws B row indices uniformly
(with replacement) from the filled rows with a numpy Generator and gathers each array once.
Uniform draws weight every stored step alike: a state in proportion to how often it was
visited, without the gamma^t of the discounted occupancy in grad J (`off_policy`'s "uniform"
weighting; notebook 08 measures what that costs even on fresh on-policy data).

Shapes: C capacity, N envs (rows given to one `add`), B batch, D obs dim, A_d action dim.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from acteach._validate import as_rng, check_finite, check_flags, check_positive_int, check_size


@dataclass(frozen=True)
class ReplaySample:
    """B transitions drawn from a ReplayBuffer, as torch tensors (sharing no memory with it).

    obs:        (B, D) float32 — s.
    act:        (B,) int64 (discrete actions) or (B, A_d) float32 (continuous actions) — a, the
                action the behaviour policy took (an OLD action, not one of the current policy).
    rew:        (B,) float32 or float64 (the buffer's rew_dtype) — r.
    next_obs:   (B, D) float32 — s', the true next observation (also after a truncation).
    terminated: (B,) bool — s' is terminal: no bootstrap.
    """

    obs: torch.Tensor
    act: torch.Tensor
    rew: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor

    def __len__(self) -> int:
        return self.rew.shape[0]


class ReplayBuffer:
    """A ring buffer of transitions (s, a, r, s', terminated) in preallocated numpy arrays.

    capacity:  C, the most transitions kept; older ones are overwritten first.
    obs_dim:   D, the length of an observation vector.
    act_dim:   None for discrete actions (stored as int64 scalars), or A_d for continuous
               actions (stored as float32 vectors of length A_d).
    rew_dtype: np.float32 (default) or np.float64.

    The arrays are public for reading: obs, next_obs (C, D) float32; act (C,) int64 or
    (C, A_d) float32; rew (C,); terminated (C,) bool. Rows 0 .. len(buffer) - 1 are filled.
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int | None = None,
                 rew_dtype: type = np.float32):
        check_positive_int("capacity", capacity)
        check_positive_int("obs_dim", obs_dim)
        if act_dim is not None:
            check_positive_int("act_dim", act_dim)
        if np.dtype(rew_dtype) not in (np.float32, np.float64):
            raise ValueError(f"rew_dtype: expected np.float32 or np.float64, got {rew_dtype!r}")
        check_size("capacity", capacity * (2 * obs_dim + (act_dim or 2) + 2), 4,
                   f"a buffer of {capacity:,} transitions")
        self.capacity, self.obs_dim, self.act_dim = int(capacity), int(obs_dim), act_dim
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        if act_dim is None:
            self.act = np.zeros(capacity, dtype=np.int64)
        else:
            self.act = np.zeros((capacity, act_dim), dtype=np.float32)
        self.rew = np.zeros(capacity, dtype=rew_dtype)
        self.terminated = np.zeros(capacity, dtype=bool)
        self.cursor = 0            # the row the next transition goes to
        self.size = 0              # the number of filled rows
        self.added = 0             # transitions added in total (overwritten ones included)

    def __len__(self) -> int:
        return self.size

    @property
    def full(self) -> bool:
        """True once every row holds a transition (from then on `add` overwrites the oldest)."""
        return self.size == self.capacity

    def add(self, obs: np.ndarray, act: np.ndarray, rew: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, mask: np.ndarray | None = None) -> int:
        """Store one vector-env step: N transitions at once, one per env.

        obs, next_obs: (N, D) — next_obs the true next observation (gymnasium returns the
        final one on the step that ends an episode); act: (N,) int (discrete) or (N, A_d)
        float (continuous); rew: (N,); terminated: (N,) bool — NOT terminated | truncated;
        mask: (N,) bool or None (all valid) — rows with False (the autoreset step) are skipped.
        Returns the number of valid rows (mask True); all are stored (only the newest
        `capacity` of them if there are more).
        """
        obs, next_obs = self._obs("obs", obs), self._obs("next_obs", next_obs)
        n = obs.shape[0]
        if next_obs.shape[0] != n:
            raise ValueError(f"next_obs: expected {n} rows (those of obs), got {next_obs.shape[0]}")
        act = self._act(act, n)
        rew = np.asarray(rew, dtype=self.rew.dtype)
        if rew.shape != (n,):
            raise ValueError(f"rew: expected shape ({n},) (one per row of obs), got {rew.shape}")
        terminated = check_flags("terminated", terminated, (n,), "one per row of obs")
        keep = np.ones(n, dtype=bool) if mask is None else check_flags("mask", mask, (n,), "one per row of obs")
        for name, x in (("obs", obs), ("act", act), ("rew", rew), ("next_obs", next_obs)):
            check_finite(name, x[keep])
        rows = np.flatnonzero(keep)[-self.capacity:]   # more rows than capacity: keep the newest
        k = rows.size
        where = (self.cursor + np.arange(k)) % self.capacity
        self.obs[where], self.next_obs[where] = obs[rows], next_obs[rows]
        self.act[where], self.rew[where] = act[rows], rew[rows]
        self.terminated[where] = terminated[rows]
        self.cursor = (self.cursor + k) % self.capacity
        self.size = min(self.size + k, self.capacity)
        self.added += int(keep.sum())
        return int(keep.sum())

    def sample(self, batch_size: int, rng: np.random.Generator) -> ReplaySample:
        """B transitions drawn uniformly, with replacement, from the filled rows.

        rng: the numpy Generator that draws the row indices, or an int seed for a fresh one.
        """
        check_positive_int("batch_size", batch_size)
        rng = as_rng(rng)
        if self.size == 0:
            raise ValueError("batch_size: cannot sample from an empty buffer; add transitions "
                             "first")
        return self.gather(rng.integers(0, self.size, size=batch_size))

    def gather(self, idx: np.ndarray) -> ReplaySample:
        """The transitions in rows idx (B,) int, as tensors; each array is indexed once (numpy
        fancy indexing copies, so the sample shares no memory with the buffer)."""
        idx = np.asarray(idx)
        if idx.ndim != 1 or idx.dtype.kind not in "iu" or (idx.size and (
                idx.min() < 0 or idx.max() >= self.size)):
            raise ValueError(f"idx: expected a (B,) array of filled rows in 0..{self.size - 1}, "
                             f"got {idx!r}")
        return ReplaySample(*(torch.from_numpy(x[idx]) for x in
                              (self.obs, self.act, self.rew, self.next_obs, self.terminated)))

    def _obs(self, name: str, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.obs_dim:
            raise ValueError(f"{name}: expected shape (N, {self.obs_dim}), got {x.shape}")
        return x

    def _act(self, act: np.ndarray, n: int) -> np.ndarray:
        act = np.asarray(act)
        if self.act_dim is None:
            if act.shape != (n,) or act.dtype.kind not in "iu":
                raise ValueError(f"act: expected ({n},) integer actions, got shape {act.shape}, "
                                 f"dtype {act.dtype}")
            if act.size and act.min() < 0:
                raise ValueError(f"act: expected action indices >= 0, got {act.min()}")
            return act.astype(np.int64)
        if act.shape != (n, self.act_dim) or act.dtype.kind not in "fiu":
            raise ValueError(f"act: expected ({n}, {self.act_dim}) float actions, got shape "
                             f"{act.shape}, dtype {act.dtype}")
        return act.astype(np.float32)

