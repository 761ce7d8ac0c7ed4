"""Online vs parallel actor-critic: how noisy one transition is, and what N envs x T steps buy
(backs notebook 07).

The online actor-critic updates theta from one transition: g_1 = grad log pi(a|s) * A(s, a).
A2C averages the same per-transition gradient over a rollout of N envs x T steps. Envs are
independent, so N envs divide the variance of that average by N. T consecutive steps of one env
may be correlated (nearby states, overlapping futures); they divide it by
T_eff(T) = Var[g_1] / Var[mean of T consecutive g], the effective number of independent steps,
which is measured, not assumed.

    gradient_noise   measures Var of the T-step mean per env (exact algebra for the N envs),
                     T_eff with its SE, and the signal |E g|^2 the noise hides
    learning_grid    trains A2C for every (N, T) of a grid and every seed on one env-step
                     budget, with one advantage treatment for all cells (`grid_config`), each
                     run summarised as a `GridRun` (final return, seconds, learning curve)
    load_grid        the stored sweep of the grid (assets/parallel_grid_sweep.py writes it)
    cell_ci          mean and 95% confidence half-width of a cell over its seeds
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from acteach._validate import check_positive_int, check_seed
from acteach.actor_critic import A2CConfig, A2CHistory, rollout, train_a2c
from acteach.batch_actor_critic import td_advantage_of
from acteach.nets import CategoricalPolicy, ValueNet, per_trajectory_gradients
from acteach.sampling import Batch, make_envs
from acteach.stats import mean_ci


@dataclass
class GradientNoise:
    """Noise of the actor gradient at one policy and critic (the one-step TD advantage).

    n_steps:      (K,) the window lengths T measured.
    variance:     (K,) tr Cov of the mean gradient of T consecutive steps of one env.
    variance_se:  (K,) its standard error (jackknife over the envs: windows of one env may be
                  correlated, envs are independent).
    effective:    (K,) T_eff = variance[T = 1] / variance[T], and effective_se its jackknife
                  standard error (over the envs, the ratio recomputed without each).
    signal:       |E g|^2, the squared norm of the expected gradient (see `signal_estimate`).
    signal_se:    its standard error (jackknife over the envs).
    n_transitions: valid transitions behind `variance`; the signal uses a longer rollout.
    """

    n_steps: np.ndarray
    variance: np.ndarray
    variance_se: np.ndarray
    effective: np.ndarray
    effective_se: np.ndarray
    signal: float
    signal_se: float
    n_transitions: int

    def index(self, n_steps: int) -> int:
        hits = np.flatnonzero(self.n_steps == n_steps)
        if hits.size == 0:
            raise ValueError(f"n_steps: expected one of {self.n_steps.tolist()}, got {n_steps!r}")
        return int(hits[0])

    def variance_of(self, n_envs: int, n_steps: int) -> float:
        """tr Cov of the gradient of one update from n_envs independent envs x n_steps steps."""
        check_positive_int("n_envs", n_envs)
        return float(self.variance[self.index(n_steps)] / n_envs)

    def effective_steps(self, n_steps: int) -> float:
        """T_eff: how many independent transitions T consecutive ones are worth."""
        return float(self.effective[self.index(n_steps)])

    def effective_steps_se(self, n_steps: int) -> float:
        """The standard error of T_eff (jackknife over the envs)."""
        return float(self.effective_se[self.index(n_steps)])

    def snr(self, n_envs: int, n_steps: int) -> float:
        """Signal-to-noise of one update's gradient: |E g|^2 / tr Cov."""
        return self.signal / self.variance_of(n_envs, n_steps)


def sample_record(policy: CategoricalPolicy, env_id: str, n_envs: int, length: int,
                  seed: int) -> Batch:
    """A (length, n_envs) record of pi acting in n_envs fresh envs (see `rollout`)."""
    check_seed(seed)
    for name, value in (("n_envs", n_envs), ("length", length)):
        check_positive_int(name, value)
    envs = make_envs(env_id, n_envs)
    try:
        obs, _ = envs.reset(seed=seed)
        record, _, _ = rollout(envs, policy, obs, np.zeros(n_envs, dtype=bool), length,
                               torch.Generator().manual_seed(seed))
    finally:
        envs.close()
    return record


def transition_gradients(policy: CategoricalPolicy, critic: ValueNet, record: Batch,
                         gamma: float) -> torch.Tensor:
    """g[t, n] = grad_theta log pi(a_t|s_t) * A_t for every step of a (T, N) record, with
    A_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t) from `critic`.
    -> (T, N, P) float32; 0 where record.mask is False (gymnasium's reset steps)."""
    T, N = record.mask.shape
    adv = td_advantage_of(critic, record, gamma).astype(np.float32)            # (T, N)
    flat = lambda x: x.reshape(1, T * N, *x.shape[2:])                        # noqa: E731
    g = per_trajectory_gradients(policy, flat(record.obs), flat(record.act), flat(adv),
                                 flat(record.mask))                            # (T * N, P)
    return g.reshape(T, N, -1)


def window_stats(g: torch.Tensor, mask: np.ndarray, T: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each column's windows of T consecutive steps, summed up for `pooled_variance`.

    g: (L, N, P) per-step gradients (0 where mask is False); mask: (L, N); L a multiple of T.
    Each column is cut into L / T windows; a window's mean m_w is over its valid steps (windows
    with none are left out). -> per column n: (sum of m_w (N, P), sum of |m_w|^2 (N,), number
    of windows (N,)), float64.
    """
    L, N = mask.shape
    mask_t = torch.as_tensor(mask, dtype=g.dtype)
    sums = g.reshape(L // T, T, N, -1).sum(dim=1)                             # (W, N, P)
    counts = mask_t.reshape(L // T, T, N).sum(dim=1)                          # (W, N)
    means = sums / counts.clamp(min=1).unsqueeze(-1)                          # 0 where empty
    return (means.sum(dim=0).double().numpy(), means.pow(2).sum(dim=(0, 2)).double().numpy(),
            (counts > 0).sum(dim=0).double().numpy())


def pooled_variance(s1: np.ndarray, s2: np.ndarray, c: np.ndarray) -> float:
    """tr Cov of the window means pooled over the columns of `window_stats`' sums."""
    total, n = s1.sum(axis=0), c.sum()
    return float((s2.sum() - total @ total / n) / (n - 1))


def window_variance(g: torch.Tensor, mask: np.ndarray, T: int) -> tuple[float, float]:
    """tr Cov of the mean of g over windows of T consecutive valid steps of one column, and its
    standard error: jackknife over the columns (independent envs; the windows of one column
    need not be independent). -> (variance, se); se is NaN for one column."""
    s1, s2, c = window_stats(g, mask, T)
    se = _jackknife_se(_leave_one_out(s1, s2, c)) if len(c) > 1 else float("nan")
    return pooled_variance(s1, s2, c), se


def _leave_one_out(s1: np.ndarray, s2: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(N,) pooled_variance without each column in turn."""
    return np.array([pooled_variance(np.delete(s1, n, 0), np.delete(s2, n), np.delete(c, n))
                     for n in range(len(c))])


def _jackknife_se(left_out: np.ndarray) -> float:
    n = len(left_out)
    return float(np.sqrt((n - 1) / n * ((left_out - left_out.mean()) ** 2).sum()))


def signal_estimate(sums: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """|E g|^2 from per-env gradient sums, without the upward bias of |mean g|^2.

    sums: (N, P), env n's sum of per-step gradients; counts: (N,) its valid steps. |mean g|^2
    contains every product g_i . g_j, including i = j and pairs of one env (correlated); the
    estimate keeps only pairs from different envs, which are independent:
        (|sum_n S_n|^2 - sum_n |S_n|^2) / (C^2 - sum_n c_n^2),   C = sum_n c_n.
    -> (estimate, jackknife standard error over the envs).
    """
    sums, counts = np.asarray(sums, dtype=np.float64), np.asarray(counts, dtype=np.float64)
    if sums.ndim != 2 or len(sums) < 2 or counts.shape != (len(sums),):
        raise ValueError(f"sums: expected (N, P) with N >= 2 and counts (N,), got "
                         f"{sums.shape} and {counts.shape}")
    total, own = sums.sum(axis=0), (sums ** 2).sum(axis=1)                     # (P,), (N,)
    cross = lambda t, o, c, c2: (t @ t - o) / (c ** 2 - c2)                     # noqa: E731
    estimate = cross(total, own.sum(), counts.sum(), (counts ** 2).sum())
    left_out = np.array([cross(total - sums[n], own.sum() - own[n], counts.sum() - counts[n],
                               (counts ** 2).sum() - counts[n] ** 2) for n in range(len(sums))])
    n = len(sums)
    se = np.sqrt((n - 1) / n * ((left_out - left_out.mean()) ** 2).sum())
    return float(estimate), float(se)


def gradient_noise(policy: CategoricalPolicy, critic: ValueNet, env_id: str = "CartPole-v1",
                   n_steps: Sequence[int] = (1, 4, 16, 64), n_envs: int = 32, length: int = 256,
                   signal_length: int = 1024, gamma: float = 0.99, seed: int = 0
                   ) -> GradientNoise:
    """Measure the noise and the signal of the actor gradient at one policy and critic.

    One rollout of n_envs envs x signal_length steps. Its first `length` steps give every
    transition's gradient, and `window_variance` for each T; the whole rollout gives each env's
    gradient sum (one vmapped gradient per env) and `signal_estimate`.
    """
    check_seed(seed)
    n_steps = np.asarray(n_steps, dtype=int)
    check_positive_int("n_envs", n_envs)
    if n_envs < 2:
        raise ValueError(f"n_envs: expected at least 2 (pairs of envs for the signal), got "
                         f"{n_envs}")
    if n_steps.ndim != 1 or n_steps[0] != 1 or (np.diff(n_steps) <= 0).any():
        raise ValueError(f"n_steps: expected increasing window lengths starting at 1, "
                         f"got {n_steps.tolist()}")
    for T in n_steps:
        if length % T:
            raise ValueError(f"length: expected a multiple of every n_steps, {length} is not "
                             f"a multiple of {T}")
    if signal_length < length:
        raise ValueError(f"signal_length: expected at least length = {length}, got "
                         f"{signal_length}")
    record = sample_record(policy, env_id, n_envs, signal_length, seed)
    head = Batch(**{k: v[:length] for k, v in vars(record).items()})
    g = transition_gradients(policy, critic, head, gamma)                      # (L, N, P)
    stats = [window_stats(g, head.mask, int(T)) for T in n_steps]
    del g
    variance = np.array([pooled_variance(*s) for s in stats])
    left_out = np.array([_leave_one_out(*s) for s in stats])                  # (K, N)
    variance_se = np.array([_jackknife_se(row) for row in left_out])
    effective = variance[0] / variance
    effective_se = np.array([_jackknife_se(left_out[0] / row) for row in left_out])
    adv = td_advantage_of(critic, record, gamma).astype(np.float32)
    sums = per_trajectory_gradients(policy, record.obs, record.act, adv, record.mask)  # (N, P)
    signal, signal_se = signal_estimate(sums.double().numpy(), record.mask.sum(axis=0))
    return GradientNoise(n_steps, variance, variance_se, effective, effective_se, signal,
                         signal_se, int(head.mask.sum()))


#: The grid of notebook 07: N envs x T steps per update, every cell on the same budget.
GRID_N_ENVS, GRID_N_STEPS = (1, 4, 16), (1, 4, 16)
#: The stored sweep of the grid (written by assets/parallel_grid_sweep.py).
SWEEP_FILE = Path(__file__).resolve().parent.parent / "assets" / "parallel_grid_sweep.json"


@dataclass
class GridRun:
    """One A2C run of the N x T grid, in numbers.

    updates, env_steps, seconds: what the run did and its wall-clock training time.
    final_return: mean return of its last `window` episodes.
    curve:         (G,) the mean return of the last `window` episodes at each step of the
                   grid's `at_steps` (NaN before the first episode ends).
    curve_seconds: (G,) the training seconds at those steps (interpolated between episodes).
    """

    n_envs: int
    n_steps: int
    seed: int
    updates: int
    env_steps: int
    seconds: float
    final_return: float
    curve: np.ndarray
    curve_seconds: np.ndarray

    @property
    def key(self) -> tuple[int, int]:
        return self.n_envs, self.n_steps

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out["curve"] = [None if np.isnan(x) else round(float(x), 2) for x in self.curve]
        out["curve_seconds"] = [round(float(x), 3) for x in self.curve_seconds]
        out["seconds"], out["final_return"] = round(self.seconds, 3), round(self.final_return, 2)
        return out

    @classmethod
    def from_json(cls, d: dict) -> "GridRun":
        return cls(**{**d, "curve": np.array([np.nan if x is None else x for x in d["curve"]]),
                      "curve_seconds": np.asarray(d["curve_seconds"], dtype=float)})


def grid_config(config: A2CConfig) -> A2CConfig:
    """The grid's one advantage treatment: raw advantages in every cell. Standardising over a
    rollout cannot be done for the online cell (one transition: its std is undefined, and the
    library then leaves it raw), so no cell standardises."""
    return dataclasses.replace(config, normalize_adv=False)


def grid_run(history: A2CHistory, n_envs: int, n_steps: int, seed: int, at_steps: np.ndarray,
             window: int = 20) -> GridRun:
    """Summarise one run: its numbers and its curve at the env steps `at_steps`."""
    steps, seconds = np.asarray(history.episode_steps), np.asarray(history.episode_seconds)
    mean = history.running_mean(window)
    at_steps = np.asarray(at_steps, dtype=float)
    curve = history.learning_curve(at_steps, window)
    curve_seconds = np.interp(at_steps, np.concatenate([[0], steps, [history.env_steps]]),
                              np.concatenate([[0], seconds, [history.seconds]]))
    final = float(mean[-1]) if len(mean) else float("nan")
    return GridRun(int(n_envs), int(n_steps), int(seed), len(history.losses.get("actor_loss", [])),
                   int(history.env_steps), float(history.seconds), final, curve, curve_seconds)


def learning_grid(config: A2CConfig, seeds: Sequence[int], n_envs: Sequence[int] = GRID_N_ENVS,
                  n_steps: Sequence[int] = GRID_N_STEPS, window: int = 20, points: int = 50
                  ) -> list[GridRun]:
    """Train A2C for every (N, T) of the grid and every seed, on config.total_steps env steps,
    with the grid's one advantage treatment (`grid_config`), and summarise each run (`grid_run`,
    its curve at `points` equally spaced env steps).

    Runs one seed at a time (`train_a2c`), so that each run's seconds are its own wall-clock:
    K seeds trained as one computation share theirs.
    """
    if len(seeds) == 0:
        raise ValueError("seeds: expected at least one seed")
    check_positive_int("points", points)
    config = grid_config(config)
    at_steps = grid_steps(config.total_steps, points)
    runs = []
    for n in n_envs:
        for t in n_steps:
            cell = dataclasses.replace(config, n_envs=int(n), n_steps=int(t))
            for seed in seeds:
                history = train_a2c(dataclasses.replace(cell, seed=int(seed)), progress=False)
                runs.append(grid_run(history, n, t, seed, at_steps, window))
    return runs


def grid_steps(total_steps: int, points: int) -> np.ndarray:
    """The env steps at which a grid run's curve is taken: `points` equally spaced, the last
    at total_steps."""
    return np.linspace(total_steps / points, total_steps, points).round()


def load_grid(path: Path = SWEEP_FILE) -> tuple[dict, list[GridRun]]:
    """The stored sweep: (its settings, its runs) (see assets/parallel_grid_sweep.py)."""
    data = json.loads(Path(path).read_text())
    return {**data["settings"], "machine": data["machine"]}, [GridRun.from_json(r)
                                                               for r in data["runs"]]


def grid_cells(runs: Sequence[GridRun]) -> dict[tuple[int, int], list[GridRun]]:
    """The runs grouped by (n_envs, n_steps), in grid order, each cell's in seed order."""
    cells: dict[tuple[int, int], list[GridRun]] = {}
    for run in sorted(runs, key=lambda r: (r.n_envs, r.n_steps, r.seed)):
        cells.setdefault(run.key, []).append(run)
    return cells


def cell_ci(runs: Sequence[GridRun], field: str) -> tuple[float, float]:
    """`stats.mean_ci` of a field over a cell's seeds: (mean, 95% half-width)."""
    return mean_ci([getattr(r, field) for r in runs])
