"""The surrogate objective: a scalar whose autograd gradient is the policy-gradient estimator
(backs notebook 01; every trainer differentiates it).

    L(theta) = (1/N) sum_n sum_t mask[t, n] * log pi_theta(a_t | s_t) * SG[w_t]

SG is stop-gradient (`detach`): the weight is a number, not a function of theta, so
grad L = (1/N) sum_n sum_t grad log pi(a_t|s_t) * w_t = g_hat. Ascend L (or descend -L).
"""
from __future__ import annotations

import torch


def policy_gradient_surrogate(logp: torch.Tensor, weights: torch.Tensor,
                              mask: torch.Tensor) -> torch.Tensor:
    """logp, weights: (T, N) float tensors, mask: (T, N) bool -> scalar tensor.

    logp[t, n] = log pi(a_t | s_t) of trajectory n (with its autograd graph); weights are
    detached here; steps where mask is False count for nothing; divides by N, not by T * N.
    """
    if logp.dim() != 2:
        raise ValueError(f"logp: expected a (T, N) tensor, got shape {tuple(logp.shape)}")
    for name, x in (("weights", weights), ("mask", mask)):
        if x.shape != logp.shape:
            raise ValueError(f"{name}: expected shape {tuple(logp.shape)} (the shape of logp), "
                             f"got {tuple(x.shape)}")
    zero = torch.zeros_like(logp)
    w = torch.where(mask, weights.detach(), zero)           # padding may hold garbage: drop it
    terms = torch.where(mask, logp * w, zero)
    return terms.sum() / logp.shape[1]
