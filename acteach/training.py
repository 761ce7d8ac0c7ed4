"""What every training loop shares (backs notebooks 06, 07, 08 and 09, through `actor_critic`,
`sac` and `parallel`; notebook 04 shows its config with `show_config`).

    History          what a run did: env steps, each episode's return, when it ended, the losses
                     of each update; `record_step` and `end_episode` keep it, `add_losses`
                     appends an update's losses; `steps_to_mean_return`, `running_mean`,
                     `learning_curve` and `final_return` read it
    progress_bar     a tqdm bar counting environment steps (off when not asked for)
    single_threaded  torch on one thread for a block, and with a seed a forked global RNG:
                     small networks train far faster on one thread, and a run seeded inside it
                     leaves the caller's RNG state as it was
    interruptible    Ctrl-C ends the training loop, not the run: the trainer returns the
                     History so far, marked interrupted
    clip_gradients   each network's gradient clipped to a global norm, before an optimiser step
                     (stacked parameters, K seeds of `stacked`, seed by seed)
    check_run_config the checks of the fields every trainer's config has (env_id, gamma, ...)
    show_config      a config dataclass printed field by field, each with its docstring

The algorithms keep their own loops (`actor_critic.train_a2c`, `sac.train_sac`, ...), readable
top to bottom; this module holds only the bookkeeping around them.
"""
from __future__ import annotations

import ast
import contextlib
import dataclasses
import inspect
import sys
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from acteach._validate import check_gamma, check_hidden, check_positive_int, check_seed


@dataclass
class History:
    """What a training run did; every trainer fills every field.

    env_steps:        transitions trained on (valid steps, summed over envs).
    episode_returns:  undiscounted return of each finished training episode, in the order
                      they ended.
    episode_steps:    env_steps at which each of those episodes ended (same length).
    episode_seconds:  training seconds elapsed at each of those ends (same length).
    losses:           per update, lists of floats keyed by name (actor_loss, critic_loss, ...).
    seconds:          wall-clock time of the training.
    interrupted:      True if the run was stopped by Ctrl-C (`interruptible`): the fields hold
                      the run up to that moment.
    """

    env_steps: int = 0
    episode_returns: list[float] = field(default_factory=list)
    episode_steps: list[int] = field(default_factory=list)
    episode_seconds: list[float] = field(default_factory=list)
    losses: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    interrupted: bool = False

    def end_episode(self, ret: float, seconds: float) -> None:
        """An episode with return `ret` ended now (at env_steps, after `seconds` of training)."""
        self.episode_returns.append(float(ret))
        self.episode_steps.append(self.env_steps)
        self.episode_seconds.append(seconds)

    def record_step(self, rew: np.ndarray, valid: np.ndarray, ended: np.ndarray,
                    running_return: np.ndarray, seconds: float) -> None:
        """One step of N envs: count its valid transitions, add rew to each env's running
        return and close the episodes that ended on it. rew: (N,) float, 0 where not valid;
        valid, ended: (N,) bool; running_return: (N,) float, updated in place (0 after an end).
        """
        self.env_steps += int(np.sum(valid))
        running_return += rew
        for n in np.flatnonzero(ended):
            self.end_episode(running_return[n], seconds)
            running_return[n] = 0.0

    def add_losses(self, losses: dict[str, float]) -> None:
        """Append one update's losses (and other per-update numbers) to self.losses."""
        for key, value in losses.items():
            self.losses.setdefault(key, []).append(value)

    def steps_to_mean_return(self, threshold: float, window: int = 20) -> int | None:
        """First env step at which the mean of the last `window` episode returns >= threshold."""
        i = self.first_reached(threshold, window)
        return None if i is None else self.episode_steps[i]

    def seconds_to_mean_return(self, threshold: float, window: int = 20) -> float | None:
        """Training seconds until the mean of the last `window` returns first >= threshold."""
        i = self.first_reached(threshold, window)
        return None if i is None else self.episode_seconds[i]

    def first_reached(self, threshold: float, window: int, since: int = 0) -> int | None:
        """Index of the first episode closing a window whose mean return >= threshold.
        since: look only at windows closing at episode `since` or later (a trainer checking
        after every rollout passes the number of episodes it has already checked)."""
        check_positive_int("window", window)
        start = max(since - window + 1, 0)
        returns = np.asarray(self.episode_returns[start:], dtype=float)
        if len(returns) < window:
            return None
        means = np.convolve(returns, np.ones(window) / window, mode="valid")
        reached = np.flatnonzero(means >= threshold - 1e-9)
        return None if reached.size == 0 else start + int(reached[0]) + window - 1

    def running_mean(self, window: int = 20) -> np.ndarray:
        """(E,) at each episode's end, the mean return of the last `window` episodes (fewer at
        the start): the learning curve against `episode_steps`."""
        check_positive_int("window", window)
        ret = np.asarray(self.episode_returns, dtype=float)
        csum = np.concatenate([[0.0], np.cumsum(ret)])
        idx = np.arange(1, len(ret) + 1)
        lo = np.maximum(idx - window, 0)
        return (csum[idx] - csum[lo]) / (idx - lo)

    def learning_curve(self, grid: np.ndarray, window: int = 20) -> np.ndarray:
        """(G,) the mean return of the last `window` episodes finished by each environment step
        of `grid` (NaN before the first episode ends): the curve a learning plot draws."""
        mean = self.running_mean(window)
        ended = np.searchsorted(np.asarray(self.episode_steps), np.asarray(grid), side="right")
        return np.where(ended > 0, mean[np.maximum(ended - 1, 0)] if len(mean) else np.nan,
                        np.nan)

    def final_return(self, window: int = 20) -> float:
        """The mean return of the last `window` episodes (the end of the learning curve)."""
        check_positive_int("window", window)
        if not self.episode_returns:
            raise ValueError("history: no episode finished, so there is no final return")
        return float(np.mean(self.episode_returns[-window:]))


def progress_bar(total: int, enabled: bool, desc: str) -> Any:
    """A tqdm bar over `total` environment steps, labelled `desc`; disabled unless enabled."""
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, unit="step", desc=desc)


@contextlib.contextmanager
def single_threaded(seed: int | None = None) -> Iterator[None]:
    """torch on one thread inside the block (small layers: threads cost more than they give).
    With a seed, the global torch RNG is also forked and seeded with it, so networks built
    inside are reproducible and the caller's RNG state is untouched. Thread count (and RNG
    state) are restored on the way out, also after an exception."""
    if seed is not None:
        check_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def interruptible(histories: History | Sequence[History], what: str = "training"
                  ) -> Iterator[None]:
    """Ctrl-C inside the block ends the block, not the run: each history is marked
    interrupted = True, a note on stderr says so, and the code after the block runs, so the
    trainer fills in and returns the History so far instead of losing it. Context managers
    around the block (the progress bar, `single_threaded`) close and restore as usual. Use it
    innermost, around the training loop only:

        with progress_bar(...) as bar, interruptible(history):
            while ...: ...
    """
    try:
        yield
    except KeyboardInterrupt:
        runs = [histories] if isinstance(histories, History) else list(histories)
        for history in runs:
            history.interrupted = True
        steps = ", ".join(f"{h.env_steps:,}" for h in runs)
        print(f"{what} interrupted (Ctrl-C) after {steps} env steps: the History so far is "
              "returned, with interrupted=True", file=sys.stderr)


def clip_gradients(optimizer: torch.optim.Optimizer, max_grad_norm: float | None) -> None:
    """Scale the gradient of each of the optimiser's parameter groups (one network each) down
    to global norm max_grad_norm if it is longer, in place; None = no clipping. Stacked
    parameters (K seeds of `stacked`) are clipped seed by seed: each seed's norm is over its
    own rows. (torch.nn.utils.clip_grad_norm_'s arithmetic, without its per-call overhead.)"""
    if max_grad_norm is None:
        return
    for group in optimizer.param_groups:
        grads = [p.grad for p in group["params"] if p.grad is not None]
        if not grads:
            continue
        if not getattr(group["params"][0], "stacked", False):
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            torch._foreach_mul_(grads, (max_grad_norm / (norm + 1e-6)).clamp(max=1.0))
            continue
        K = grads[0].shape[0]
        norms = torch.linalg.vector_norm(torch.cat([g.reshape(K, -1) for g in grads], 1), dim=1)
        scale = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)                  # (K,)
        for g in grads:                                                # seed k's rows * scale[k]
            g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))


def check_run_config(config: Any, positive_ints: Sequence[str]) -> None:
    """The checks of the fields every trainer's config has, each a ValueError naming the field:
    env_id a gymnasium id (a non-empty string; whether it is registered is checked when the
    envs are made), the fields named in positive_ints positive integers, gamma in [0, 1],
    hidden a tuple of layer sizes, seed an integer >= 0."""
    if not isinstance(config.env_id, str) or not config.env_id:
        raise ValueError(f"env_id: expected a gymnasium env id, got {config.env_id!r}")
    for name in positive_ints:
        check_positive_int(name, getattr(config, name))
    check_gamma(config.gamma)
    check_hidden(config.hidden)
    check_seed(config.seed)


def show_config(config: Any, fields: Sequence[str] | None = None) -> None:
    """Print a config dataclass one field a line, `name = value`, each followed by the
    docstring written under that field (as CleanRL prints its Args). fields: the names to
    show, in that order; None = all of them."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise ValueError(f"config: expected a dataclass instance, got {config!r}")
    names = [f.name for f in dataclasses.fields(config)]
    if fields is None:
        fields = names
    unknown = [name for name in fields if name not in names]
    if unknown:
        raise ValueError(f"fields: expected names of {type(config).__name__}'s fields, got "
                         f"{unknown}")
    docs = _field_docs(type(config))
    print("\n".join(f"{name} = {getattr(config, name)!r}\n    {docs.get(name, '')}".rstrip()
                    for name in fields))


def _field_docs(cls: type) -> dict[str, str]:
    """The docstring under each annotated field of a dataclass (and of its dataclass bases),
    read from the source."""
    docs: dict[str, str] = {}
    for klass in reversed([k for k in cls.__mro__ if dataclasses.is_dataclass(k)]):
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
        for field_, doc in zip(body, body[1:]):
            if (isinstance(field_, ast.AnnAssign) and isinstance(field_.target, ast.Name)
                    and isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)):
                docs[field_.target.id] = " ".join(str(doc.value.value).split())
    return docs
