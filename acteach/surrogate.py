"""The surrogate objective: a scalar whose autograd gradient is the policy-gradient estimator
(backs notebook 01; every trainer differentiates it).

    L(theta) = (1/N) sum_n sum_t mask[t, n] * log pi_theta(a_t | s_t) * SG[w_t]

SG is stop-gradient (`detach`): the weight is a number, not a function of theta, so
grad L = (1/N) sum_n sum_t grad log pi(a_t|s_t) * w_t = g_hat. Ascend L (or descend -L).
K seeds trained as one computation (`acteach.stacked`) give (T, K, N) arrays and one L per seed.
"""
from __future__ import annotations

import torch


def policy_gradient_surrogate(logp: torch.Tensor, weights: torch.Tensor,
                              mask: torch.Tensor) -> torch.Tensor:
    """logp, weights: (T, N) float tensors, mask: (T, N) bool -> scalar tensor.

    logp[t, n] = log pi(a_t | s_t) of trajectory n (with its autograd graph); weights are
    detached here; steps where mask is False count for nothing; divides by N, not by T * N.
    K stacked seeds: logp, weights, mask (T, K, N) -> (K,), seed k's L from its own N
    trajectories (the sum of the K gives each seed the gradient of its own).
    """
    if logp.dim() not in (2, 3):
        raise ValueError(f"logp: expected a (T, N) tensor (or (T, K, N) for K seeds), got "
                         f"shape {tuple(logp.shape)}")
    for name, x in (("weights", weights), ("mask", mask)):
        if x.shape != logp.shape:
            raise ValueError(f"{name}: expected shape {tuple(logp.shape)} (the shape of logp), "
                             f"got {tuple(x.shape)}")
    zero = torch.zeros_like(logp)
    w = torch.where(mask, weights.detach(), zero)           # padding may hold garbage: drop it
    terms = torch.where(mask, logp * w, zero)
    if logp.dim() == 3:
        return terms.sum((0, 2)) / logp.shape[2]
    return terms.sum() / logp.shape[1]
