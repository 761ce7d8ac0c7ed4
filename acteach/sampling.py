"""Trajectory batches: the one data layout every estimator, critic and algorithm reads.

Storage is time-major: index [t, n] is step t of trajectory (or environment) n.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
