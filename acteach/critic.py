"""Fitting V^pi: policy evaluation (backs notebook 04; notebook 03 uses its Monte Carlo fit).

A critic V_phi(s) approximates V^{pi_theta}(s) = E[ sum_{t' >= t} gamma^(t'-t) r_t' | s_t = s ].
The Monte Carlo fit regresses it on the reward-to-go of sampled trajectories,

    y_{n,t} = sum_{t' >= t} gamma^(t'-t) r_{n,t'},
    L(phi)  = mean over the valid steps (n, t) of (y_{n,t} - V_phi(s_{n,t}))^2,

the lecture's L(phi) up to a constant factor (it sums over t and divides by N; a mean over the
steps has the same minimiser). Shapes: B steps (valid steps only), D obs dim.
"""
from __future__ import annotations

import numbers

import numpy as np
import torch
from torch import nn

from acteach._validate import check_finite, check_positive_int


def _regression_data(value_net: nn.Module, obs, targets) -> tuple[torch.Tensor, torch.Tensor]:
    """obs (B, D) and targets (B,) as tensors of the network's dtype, or a ValueError."""
    params = list(value_net.parameters()) if isinstance(value_net, nn.Module) else []
    if not params:
        raise ValueError("value_net: expected an nn.Module with parameters, e.g. nets.ValueNet")
    dtype = params[0].dtype
    obs = obs.detach().numpy() if isinstance(obs, torch.Tensor) else np.asarray(obs)
    targets = targets.detach().numpy() if isinstance(targets, torch.Tensor) else np.asarray(targets)
    if obs.ndim != 2:
        raise ValueError(f"obs: expected a (B, D) array of the valid steps' observations "
                         f"(e.g. batch.obs[batch.mask]), got shape {obs.shape}")
    if targets.shape != (obs.shape[0],):
        raise ValueError(f"targets: expected shape ({obs.shape[0]},), one per row of obs, "
                         f"got {targets.shape}")
    if obs.shape[0] == 0:
        raise ValueError("obs: expected at least one step, got none")
    check_finite("obs", obs)
    check_finite("targets", targets)
    return (torch.as_tensor(np.array(obs), dtype=dtype),
            torch.as_tensor(np.array(targets), dtype=dtype))


def fit_value_monte_carlo(value_net: nn.Module, obs: np.ndarray, targets: np.ndarray,
                          epochs: int = 10, batch_size: int = 256, lr: float = 3e-3,
                          seed: int = 0) -> list[float]:
    """Monte Carlo policy evaluation: regress V_phi(s_t) on the reward-to-go targets y_t.

    value_net: maps obs (B, D) -> (B,), e.g. `nets.ValueNet`; trained in place.
    obs:       (B, D) float — observations of the valid steps only, e.g. batch.obs[batch.mask].
    targets:   (B,) float — y_t at those steps, e.g.
               reward_to_go(batch.rew, batch.mask, gamma)[batch.mask].
    epochs:    passes over the B steps; batch_size: steps per Adam update; lr: Adam's step size.
    seed:      seeds the shuffling (a torch.Generator), so a fixed seed and initial network give
               the same fit.
    Returns the mean squared error of each epoch, as measured on its minibatches (len = epochs).
    """
    obs_t, y = _regression_data(value_net, obs, targets)
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0:
        raise ValueError(f"lr: expected a positive number, got {lr!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed: expected an integer, got {seed!r}")
    generator = torch.Generator().manual_seed(int(seed))
    optimizer = torch.optim.Adam(value_net.parameters(), lr=lr)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)    # small layers, small minibatches: threads cost more than they give
    try:
        return _fit(value_net, obs_t, y, optimizer, epochs, batch_size, generator)
    finally:
        torch.set_num_threads(threads)


def _fit(value_net: nn.Module, obs: torch.Tensor, y: torch.Tensor,
         optimizer: torch.optim.Optimizer, epochs: int, batch_size: int,
         generator: torch.Generator) -> list[float]:
    """The regression loop of `fit_value_monte_carlo`: obs (B, D), y (B,) -> loss per epoch."""
    losses = []
    for _ in range(epochs):
        order, total = torch.randperm(len(y), generator=generator), 0.0
        for idx in order.split(batch_size):
            value = value_net(obs[idx])
            if value.shape != idx.shape:    # a (B, 1) output would broadcast against (B,)
                raise ValueError(f"value_net: expected an output of shape ({len(idx)},) for "
                                 f"{len(idx)} observations, got {tuple(value.shape)}")
            loss = ((value - y[idx]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / len(y))
    return losses
