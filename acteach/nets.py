"""Small torch networks: policies, critics and per-trajectory gradients (backs notebooks 01
onwards).

The neural path of the course scores trajectories with a network policy instead of a softmax
table: `mlp`, `CategoricalPolicy` (logits from an MLP), the critics `ValueNet` (V_phi(obs) (B,)),
`TableValue` (a table V(s) as a module) and `shared_actor_critic` (one trunk, two heads), and
`as_tensor`, the one array -> tensor conversion. The estimator is the same one as everywhere,

    g_hat = (1/N) sum_n g_n,   g_n = sum_t mask[t, n] w[t, n] grad log pi(act[t, n] | obs[t, n]),

and `per_trajectory_gradients` returns the N vectors g_n, one row each, so their mean is g_hat and
their spread is the estimator's variance.

Shapes: T time steps, N trajectories, D obs dim, A actions, P policy parameters.
Storage is time-major, as in `acteach.sampling.Batch`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical
from torch.func import functional_call, grad, vmap

from acteach._validate import check_finite, check_positive_int

ArrayLike = np.ndarray | torch.Tensor


def mlp(sizes: Sequence[int], activation: Callable[[], nn.Module] = nn.Tanh) -> nn.Sequential:
    """Linear layers sizes[0] -> sizes[1] -> ... -> sizes[-1], `activation` between them.

    No activation after the last layer: the output is a logit or a value, not a feature.
    """
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes: expected at least an input and an output size, got {sizes}")
    for size in sizes:
        check_positive_int("sizes", size)
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def as_tensor(x: ArrayLike, dtype: torch.dtype | None = None) -> torch.Tensor:
    """x (numpy array, sequence or tensor) as a tensor of `dtype` (None: keep x's dtype),
    detached, sharing memory with x where it can (a read-only array is copied)."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        return x if dtype is None else x.to(dtype)
    x = np.asarray(x)
    return torch.as_tensor(x if x.flags.writeable else x.copy(), dtype=dtype)


def _observations(obs: ArrayLike, obs_dim: int, dtype: torch.dtype) -> torch.Tensor:
    """Observation vectors (..., D) as a tensor of dtype (a network's), or a ValueError."""
    obs = as_tensor(obs, dtype)
    if obs.ndim == 0 or obs.shape[-1] != obs_dim:
        raise ValueError(f"obs: expected shape (..., {obs_dim}), got {tuple(obs.shape)}")
    return obs


def _obs_tensor(obs: ArrayLike, dtype: torch.dtype) -> torch.Tensor:
    """Float observations as `dtype` (the policy's); integer ones (state indices) as int64."""
    if isinstance(obs, torch.Tensor):
        is_float = obs.is_floating_point()
    else:
        obs = np.asarray(obs)
        is_float = obs.dtype.kind == "f"
    return as_tensor(obs, dtype if is_float else torch.long)


def _actions(act: ArrayLike) -> torch.Tensor:
    """Discrete actions as int64 indices; a float (or bool) array is refused, never truncated
    (0.5 would silently become action 0). A dtype check only: it also runs under vmap."""
    if isinstance(act, torch.Tensor):
        dtype, ok = act.dtype, not (act.is_floating_point() or act.is_complex()
                                    or act.dtype == torch.bool)
    else:
        act = np.asarray(act)
        dtype, ok = act.dtype, act.dtype.kind in "iu"
    if not ok:
        raise ValueError(f"act: expected integer action indices, got dtype {dtype}")
    return as_tensor(act, torch.long)


class CategoricalPolicy(nn.Module):
    """pi(a | s) = softmax(logits(obs))[a] over A discrete actions; the logits come from an MLP.

    obs_dim:   D, the length of an observation vector.
    n_actions: A, the number of discrete actions.
    hidden:    sizes of the hidden layers (tanh between layers).
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int] = (32,)):
        super().__init__()
        check_positive_int("obs_dim", obs_dim)
        check_positive_int("n_actions", n_actions)
        self.obs_dim = obs_dim
        self.n_actions = n_actions
        self.logits_net = mlp([obs_dim, *hidden, n_actions])

    @property
    def dtype(self) -> torch.dtype:
        return self.logits_net[0].weight.dtype

    def logits(self, obs: ArrayLike) -> torch.Tensor:
        """obs: (..., D) -> (..., A) unnormalised log-probabilities."""
        return self.logits_net(_observations(obs, self.obs_dim, self.dtype))

    def forward(self, obs: ArrayLike) -> Categorical:
        """obs: (..., D) -> the action distribution pi(. | obs), batch shape (...)."""
        return Categorical(logits=self.logits(obs))

    def log_prob(self, obs: ArrayLike, act: ArrayLike) -> torch.Tensor:
        """log pi(act | obs). obs: (..., D), act: (...) int -> (...).

        Written with log_softmax + gather (no distribution object), so it runs under vmap.
        """
        logits = self.logits(obs)
        act = _actions(act)
        if tuple(act.shape) != tuple(logits.shape[:-1]):
            raise ValueError(
                f"act: expected shape {tuple(logits.shape[:-1])} (obs without its last axis), "
                f"got {tuple(act.shape)}"
            )
        logp_all = torch.log_softmax(logits, dim=-1)
        return logp_all.gather(-1, act.unsqueeze(-1)).squeeze(-1)

    def log_prob_and_entropy(self, obs: ArrayLike, act: ArrayLike
                             ) -> tuple[torch.Tensor, torch.Tensor]:
        """(log pi(act | obs), entropy of pi(. | obs)) from one forward pass: (...) each."""
        logp_all = torch.log_softmax(self.logits(obs), dim=-1)                  # (..., A)
        act = _actions(act)
        if tuple(act.shape) != tuple(logp_all.shape[:-1]):
            raise ValueError(f"act: expected shape {tuple(logp_all.shape[:-1])} (obs without "
                             f"its last axis), got {tuple(act.shape)}")
        entropy = -(logp_all.exp() * logp_all).sum(dim=-1)
        return logp_all.gather(-1, act.unsqueeze(-1)).squeeze(-1), entropy

    @torch.no_grad()
    def act(self, obs: np.ndarray, generator: torch.Generator | None = None,
            uniform: torch.Tensor | None = None) -> np.ndarray:
        """Sample a ~ pi(. | obs), no gradient. obs: (N, D) -> (N,) int64 actions.

        Gumbel-max trick: argmax_a (logits[a] + G_a), G_a = -log(-log U_a), U_a ~ Uniform(0, 1),
        is an exact draw from softmax(logits), and on CPU faster than torch.multinomial.
        The U (N, A) are drawn here with generator, or given as uniform (drawn beforehand:
        `actor_critic.rollout` draws a whole rollout's in one call).
        """
        if np.ndim(obs) != 2:
            raise ValueError(f"obs: expected shape (N, {self.obs_dim}), got {tuple(np.shape(obs))}")
        logits = self.logits(obs)
        if uniform is None:
            uniform = torch.rand(logits.shape, generator=generator, dtype=logits.dtype)
        return (logits - torch.log(-torch.log(uniform))).argmax(dim=-1).numpy()


def flat_parameters(policy: nn.Module) -> torch.Tensor:
    """(P,) all parameters, detached, in the column order of `per_trajectory_gradients`."""
    return torch.cat([p.detach().reshape(-1) for _, p in policy.named_parameters()])


def parameter_count(policy: nn.Module) -> int:
    """P, the number of scalar parameters of the policy."""
    return sum(p.numel() for p in policy.parameters())


class _LogProb(nn.Module):
    """Wraps a policy so that functional_call reaches its log_prob instead of its forward."""

    def __init__(self, policy: nn.Module):
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.policy.log_prob(obs, act)


def _trajectory_tensors(
    policy: nn.Module, obs: ArrayLike, act: ArrayLike, weights: ArrayLike, mask: ArrayLike
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    """Check the time-major shapes; return obs, act, coef = mask * weights (zero off the mask), and
    ends (N,) = 1 + the last valid step of each trajectory (0 if it has none).

    Masked steps get obs 0 and act 0 too, so padding (even NaN or an invalid action) contributes
    exactly nothing to the gradient.
    """
    params = list(policy.parameters())
    if not params:
        raise ValueError("policy: expected a module with parameters, got none")
    dtype = params[0].dtype
    mask = as_tensor(mask)
    if mask.ndim != 2 or mask.dtype != torch.bool:
        raise ValueError(
            f"mask: expected a (T, N) bool array, got shape {tuple(mask.shape)}, dtype {mask.dtype}"
        )
    T, N = mask.shape
    obs = _obs_tensor(obs, dtype)
    if obs.ndim < 2 or tuple(obs.shape[:2]) != (T, N):
        raise ValueError(f"obs: expected shape ({T}, {N}, D) (T, N of mask), got {obs.shape}")
    act = as_tensor(act, torch.long)
    if tuple(act.shape) != (T, N):
        raise ValueError(f"act: expected shape ({T}, {N}) (that of mask), got {tuple(act.shape)}")
    weights = as_tensor(weights, dtype)
    if weights.ndim == 1 and weights.shape[0] == N:
        weights = weights.expand(T, N)  # one weight per trajectory, e.g. total_return
    if tuple(weights.shape) != (T, N):
        raise ValueError(f"weights: expected shape ({T}, {N}) or ({N},), got {weights.shape}")
    check_finite("weights", weights[mask].numpy())
    obs_mask = mask.reshape(T, N, *([1] * (obs.ndim - 2)))
    obs = torch.where(obs_mask, obs, torch.zeros((), dtype=obs.dtype))
    act = torch.where(mask, act, torch.zeros((), dtype=act.dtype))
    coef = torch.where(mask, weights, torch.zeros((), dtype=dtype))
    ends = (torch.arange(1, T + 1).unsqueeze(1) * mask).amax(0) if T else torch.zeros(N)
    return obs, act, coef, ends.long().numpy()


def _length_sorted_chunks(ends: np.ndarray, chunk_steps: int) -> list[np.ndarray]:
    """Group trajectories of similar length: lists of columns n, each list with
    len(list) * max(ends[list]) <= chunk_steps (or a single trajectory).

    ends: (N,) int — 1 + the last valid step of each trajectory; 0 for an empty one (left out).
    """
    order = np.argsort(ends, kind="stable")
    sorted_ends = ends[order]
    start, chunks = int(np.searchsorted(sorted_ends, 0, side="right")), []
    while start < len(order):
        most = min(len(order) - start, max(1, chunk_steps // int(sorted_ends[start])))
        padded = np.arange(1, most + 1) * sorted_ends[start : start + most]  # nondecreasing
        size = max(1, int(np.searchsorted(padded, chunk_steps, side="right")))
        chunks.append(order[start : start + size])
        start += size
    return chunks


def per_trajectory_gradients(
    policy: nn.Module,
    obs: ArrayLike,
    act: ArrayLike,
    weights: ArrayLike,
    mask: ArrayLike,
    chunk_steps: int = 2**16,
) -> torch.Tensor:
    """g_n = grad_theta sum_t mask[t, n] * weights[t, n] * log pi(act[t, n] | obs[t, n]), per n.

    obs: (T, N, D); act: (T, N) int; weights: (T, N) float, or (N,) for one weight per trajectory
    (broadcast over t, as `total_return` gives); mask: (T, N) bool.
    Returns (N, P), columns in the order of `flat_parameters(policy)`. Its mean over rows is g_hat.

    `policy` is any nn.Module with `log_prob(obs (..., D), act (...)) -> (...)`. The N gradients
    come from torch.func.grad vmapped over the N axis, in chunks of trajectories of similar length,
    each cut to its longest trajectory and holding at most `chunk_steps` (t, n) cells, so memory
    stays small and padding after the longest episode of a chunk is never computed.
    """
    check_positive_int("chunk_steps", chunk_steps)
    obs, act, coef, ends = _trajectory_tensors(policy, obs, act, weights, mask)
    wrapped = _LogProb(policy)
    params = {name: p.detach() for name, p in wrapped.named_parameters()}
    buffers = {name: b.detach() for name, b in wrapped.named_buffers()}

    def weighted_logp(params: dict, obs_n: torch.Tensor, act_n: torch.Tensor, coef_n: torch.Tensor):
        """obs_n: (T, D), act_n: (T,), coef_n: (T,) -> scalar sum_t coef * log pi."""
        logp = functional_call(wrapped, (params, buffers), (obs_n, act_n))  # (T,)
        return (coef_n * logp).sum()

    grads_fn = vmap(grad(weighted_logp), in_dims=(None, 1, 1, 1))
    out = torch.zeros(coef.shape[1], parameter_count(policy), dtype=coef.dtype)
    for cols in _length_sorted_chunks(ends, chunk_steps):
        t_end, idx = int(ends[cols[-1]]), torch.from_numpy(cols)
        grads = grads_fn(params, obs[:t_end, idx], act[:t_end, idx], coef[:t_end, idx])
        out[idx] = torch.cat([grads[name].reshape(len(cols), -1) for name in params], dim=1)
    return out


# ---------------------------------------------------------------------------------------------
# A critic: V_phi(s) (notebook 03 uses a Monte Carlo fit; notebook 04 is about fitting it)
# ---------------------------------------------------------------------------------------------

class ValueNet(nn.Module):
    """V_phi(s): an MLP from an observation to one number, the value of the state.

    obs_dim: D, the length of an observation vector.
    hidden:  sizes of the hidden layers (tanh between layers).

    forward(obs (..., D)) -> (...) torch: one value per observation, never a trailing axis of 1
    (a batch (B, D) gives (B,), a time-major (T, N, D) gives (T, N)).
    predict(obs (..., D)) -> (...) float64 numpy, without a graph: for weights and baselines.
    """

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (64,)):
        super().__init__()
        check_positive_int("obs_dim", obs_dim)
        self.obs_dim = obs_dim
        self.v_net = mlp([obs_dim, *hidden, 1])

    @property
    def dtype(self) -> torch.dtype:
        return self.v_net[0].weight.dtype

    def forward(self, obs: ArrayLike) -> torch.Tensor:
        """obs: (..., D) -> (...) values V_phi(obs)."""
        return self.v_net(_observations(obs, self.obs_dim, self.dtype)).squeeze(-1)

    @torch.no_grad()
    def predict(self, obs: ArrayLike) -> np.ndarray:
        """obs: (..., D) array -> (...) float64 numpy values, no gradient."""
        return self.forward(obs).double().numpy()


def shared_actor_critic(obs_dim: int, n_actions: int, hidden: Sequence[int] = (64, 64)
                        ) -> tuple[CategoricalPolicy, ValueNet]:
    """A policy and a critic on one trunk: the hidden layers (and their activations) are the same
    modules in both, only the last linear layers (the heads) differ (notebook 09).

    -> (policy, critic): used like separate networks, but a step on either loss moves the
    trunk. Parameters shared by both appear once in nn.ModuleList([policy, critic]).parameters().
    """
    if not hidden:
        raise ValueError("hidden: a shared trunk needs at least one hidden layer, got ()")
    policy = CategoricalPolicy(obs_dim, n_actions, hidden)
    critic = ValueNet(obs_dim, hidden)
    trunk = list(policy.logits_net)[:-1]                  # Linear, Tanh, ..., Tanh
    critic.v_net = nn.Sequential(*trunk, critic.v_net[-1])
    return policy, critic


class TableValue(nn.Module):
    """V_phi(s) = table[s]: a tabular critic, one parameter per state (notebook 04).

    n_states: S. init: optional (S,) initial values (default 0). dtype: float64 by default, so a
    table fitted with torch agrees with the numpy fits of `acteach.critic` to rounding.
    forward(obs (...) int state indices) -> (...) values; predict -> float64 numpy, no graph.
    """

    def __init__(self, n_states: int, init: ArrayLike | None = None,
                 dtype: torch.dtype = torch.float64):
        super().__init__()
        check_positive_int("n_states", n_states)
        table = torch.zeros(n_states, dtype=dtype) if init is None else as_tensor(init, dtype)
        if tuple(table.shape) != (n_states,):
            raise ValueError(f"init: expected shape ({n_states},), got {tuple(table.shape)}")
        self.table = nn.Parameter(table.clone())

    def forward(self, obs: ArrayLike) -> torch.Tensor:
        """obs: (...) int state indices -> (...) values table[obs]."""
        obs = as_tensor(obs, torch.long) if not isinstance(obs, torch.Tensor) else obs
        if obs.is_floating_point() or obs.dtype == torch.bool:
            raise ValueError(f"obs: expected integer state indices, got dtype {obs.dtype}")
        n = self.table.shape[0]
        if obs.numel() and (int(obs.min()) < 0 or int(obs.max()) >= n):
            raise ValueError(f"obs: expected state indices in 0..{n - 1}, got "
                             f"{int(obs.min())}..{int(obs.max())}")
        return self.table[obs]

    @torch.no_grad()
    def predict(self, obs: ArrayLike) -> np.ndarray:
        """obs: (...) int -> (...) float64 numpy values, no gradient."""
        return self.forward(obs).double().numpy()
