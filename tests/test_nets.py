"""The neural path: per-trajectory policy gradients (torch.func) and CartPole rollouts.

(a) per_trajectory_gradients equals a plain autograd loop; masked steps contribute nothing.
(b) reward-to-go and total-return weights estimate the same gradient on CartPole-v1, and
    reward-to-go has the smaller variance.
(c) sample_episodes keeps each env's first episode, as gymnasium reports it.
(d) bad shapes raise ValueError naming the argument.
"""
import gymnasium as gym
import numpy as np
import pytest
import torch

from acteach.nets import (
    CategoricalPolicy,
    as_tensor,
    flat_parameters,
    mlp,
    parameter_count,
    per_trajectory_gradients,
)
from acteach.returns import reward_to_go, total_return
from acteach.sampling import sample_episodes

T, N, D, A = 7, 6, 4, 3
LENGTHS = np.array([7, 3, 1, 0, 5, 7])  # one trajectory of each kind: full, short, empty


def make_policy(seed=0, dtype=torch.float32, obs_dim=D, n_actions=A):
    torch.manual_seed(seed)
    return CategoricalPolicy(obs_dim, n_actions, hidden=(16, 8)).to(dtype)


def random_inputs(seed=0):
    """obs (T, N, D), act (T, N), weights (T, N), mask (T, N) with prefix lengths LENGTHS."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(T, N, D)).astype(np.float32)
    act = rng.integers(0, A, size=(T, N))
    weights = rng.normal(size=(T, N))
    mask = np.arange(T)[:, None] < LENGTHS[None, :]
    return obs, act, weights, mask


def loop_gradients(policy, obs, act, weights, mask):
    """(N, P) reference: one autograd.grad per trajectory on its weighted log-likelihood."""
    params = list(policy.parameters())
    dtype = params[0].dtype
    rows = []
    for n in range(mask.shape[1]):
        valid = torch.as_tensor(mask[:, n])
        logp = policy.log_prob(torch.as_tensor(obs[:, n], dtype=dtype)[valid],
                               torch.as_tensor(act[:, n])[valid])
        total = (torch.as_tensor(weights[:, n], dtype=dtype)[valid] * logp).sum()
        grads = torch.autograd.grad(total, params, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                               for g, p in zip(grads, params)]))
    return torch.stack(rows)


# ---------------------------------------------------------------- (a) exact gradients

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_per_trajectory_gradients_match_autograd_loop(dtype):
    policy = make_policy(dtype=dtype)
    obs, act, weights, mask = random_inputs()
    got = per_trajectory_gradients(policy, obs, act, weights, mask)
    assert got.shape == (N, parameter_count(policy)) and got.dtype == dtype
    torch.testing.assert_close(got, loop_gradients(policy, obs, act, weights, mask),
                               rtol=1e-5, atol=1e-5)
    assert torch.all(got[LENGTHS == 0] == 0)


def test_masked_steps_contribute_nothing():
    policy = make_policy()
    obs, act, weights, mask = random_inputs()
    clean = per_trajectory_gradients(policy, obs, act, weights, mask)
    garbage_obs, garbage_act, garbage_w = obs.copy(), act.copy(), weights.copy()
    garbage_obs[~mask] = np.nan
    garbage_act[~mask] = 99  # not even a valid action
    garbage_w[~mask] = 1e30
    dirty = per_trajectory_gradients(policy, garbage_obs, garbage_act, garbage_w, mask)
    torch.testing.assert_close(dirty, clean, rtol=0, atol=0)


def test_chunking_and_per_trajectory_weights():
    policy = make_policy(dtype=torch.float64)
    obs, act, weights, mask = random_inputs(seed=1)
    whole = per_trajectory_gradients(policy, obs, act, weights, mask)
    one_at_a_time = per_trajectory_gradients(policy, obs, act, weights, mask, chunk_steps=1)
    torch.testing.assert_close(one_at_a_time, whole, rtol=1e-12, atol=1e-12)
    # A (N,) weight is one weight per trajectory, the same as broadcasting it over time.
    per_traj = weights[0]
    torch.testing.assert_close(
        per_trajectory_gradients(policy, obs, act, per_traj, mask),
        per_trajectory_gradients(policy, obs, act, np.broadcast_to(per_traj, (T, N)), mask))


def test_flat_parameters_order_and_count():
    policy = CategoricalPolicy(4, 2)
    assert parameter_count(policy) == 4 * 32 + 32 + 32 * 2 + 2
    torch.testing.assert_close(flat_parameters(policy),
                               torch.nn.utils.parameters_to_vector(policy.parameters()))
    assert not flat_parameters(policy).requires_grad


def test_policy_distribution_and_sampling():
    policy = make_policy()
    obs = np.random.default_rng(0).normal(size=(5, D)).astype(np.float32)
    dist = policy(obs)
    act = np.arange(5) % A
    torch.testing.assert_close(policy.log_prob(obs, act), dist.log_prob(torch.as_tensor(act)))
    # Gumbel-max sampling draws from pi: empirical frequencies on one state, 4 SE tolerance.
    many = np.repeat(obs[:1], 20000, axis=0)
    draws = policy.act(many, torch.Generator().manual_seed(0))
    assert draws.shape == (20000,) and draws.dtype == np.int64
    freq = np.bincount(draws, minlength=A) / len(draws)
    p = dist.probs[0].detach().numpy()
    assert np.all(np.abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / len(draws)))
    # the uniforms drawn beforehand (a rollout's, in one call) give the very same actions
    uniform = torch.rand((20000, A), generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(policy.act(many, uniform=uniform), draws)


# ---------------------------------------------------------------- (b) estimators on CartPole

def cartpole_gradients(policy, weight_fn, seed, n=4000):
    """(n, P) per-trajectory gradients on n fresh CartPole-v1 episodes."""
    batch = sample_episodes("CartPole-v1", policy, n, seed=seed)
    weights = weight_fn(batch.rew, batch.mask, 1.0)
    return per_trajectory_gradients(policy, batch.obs, batch.act, weights, batch.mask).double()


def test_reward_to_go_and_total_return_agree_on_cartpole():
    """Both weights are unbiased for the same gradient; reward-to-go has the smaller variance.

    Seeds fixed: policy init 0; batches from independent seeds 101 (reward-to-go),
    202 (total return), 303 (pilot direction); 4000 trajectories each.
    Tolerance: 4 combined standard errors, sqrt(var_a / N + var_b / N), for each of the P = 226
    components, and for the projection on the (independent) pilot estimate of the gradient.
    """
    policy = make_policy(obs_dim=4, n_actions=2)
    g_rtg = cartpole_gradients(policy, reward_to_go, seed=101)
    g_tot = cartpole_gradients(policy, total_return, seed=202)
    n = g_rtg.shape[0]
    diff = g_rtg.mean(0) - g_tot.mean(0)
    se = torch.sqrt(g_rtg.var(0) / n + g_tot.var(0) / n)
    assert torch.all(diff.abs() <= 4 * se + 1e-9), (diff.abs() / se).max()

    direction = cartpole_gradients(policy, reward_to_go, seed=303).mean(0)
    direction = direction / direction.norm()
    proj_rtg, proj_tot = g_rtg @ direction, g_tot @ direction
    se_proj = torch.sqrt(proj_rtg.var() / n + proj_tot.var() / n)
    assert abs(proj_rtg.mean() - proj_tot.mean()) <= 4 * se_proj
    # ...and the test has power: along that direction the gradient itself is many SEs from 0.
    assert proj_rtg.mean() > 4 * torch.sqrt(proj_rtg.var() / n)

    assert g_rtg.var(0).sum() < g_tot.var(0).sum()


# ---------------------------------------------------------------- (c) sampling

def check_batch_layout(batch, n, obs_dim):
    steps, cols = batch.mask.shape
    assert cols == n and batch.obs.shape == batch.next_obs.shape == (steps, n, obs_dim)
    assert batch.obs.dtype == batch.next_obs.dtype == np.float32
    assert batch.act.dtype == np.int64 and batch.act.shape == (steps, n)
    assert batch.rew.dtype == np.float64 and batch.mask.dtype == bool
    lengths = batch.lengths
    assert steps == lengths.max() and np.all(lengths >= 1)
    # mask is a prefix of each column
    np.testing.assert_array_equal(batch.mask, np.arange(steps)[:, None] < lengths[None, :])
    # exactly one end flag per trajectory, on its last valid step
    done = batch.terminated | batch.truncated
    np.testing.assert_array_equal(done.sum(axis=0), np.ones(n))
    assert np.all(done[lengths - 1, np.arange(n)])
    # padding is zero; consecutive steps chain: obs[t + 1] = next_obs[t]
    assert not batch.rew[~batch.mask].any() and not batch.obs[~batch.mask].any()
    both = batch.mask[1:]
    np.testing.assert_array_equal(batch.obs[1:][both], batch.next_obs[:-1][both])


def test_sample_episodes_layout_and_gymnasium_lengths():
    policy = make_policy(obs_dim=4, n_actions=2)
    n, seed = 64, 3
    batch = sample_episodes("CartPole-v1", policy, n, seed=seed)
    check_batch_layout(batch, n, 4)
    np.testing.assert_array_equal(batch.rew.sum(axis=0), batch.lengths)  # +1 per CartPole step

    # Replay the recorded actions on a fresh env: gymnasium's own first episode ends agree.
    env = gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="vector_entry_point")
    obs, _ = env.reset(seed=seed)
    np.testing.assert_array_equal(obs, batch.obs[0])
    first_end = np.full(n, -1)
    for t in range(batch.mask.shape[0]):
        obs, _, terminated, truncated, _ = env.step(batch.act[t])
        fresh = (first_end < 0) & (terminated | truncated)
        valid = batch.mask[t]
        np.testing.assert_array_equal(obs[valid], batch.next_obs[t][valid])  # incl. final obs
        np.testing.assert_array_equal(terminated[valid], batch.terminated[t][valid])
        first_end[fresh] = t + 1
    env.close()
    np.testing.assert_array_equal(first_end, batch.lengths)


class Balancer:
    """A linear hand controller that keeps the pole up: push where pole and cart are heading.
    Any object with act(obs, generator) is a policy for sample_episodes."""

    def act(self, obs, generator):
        return (obs @ np.array([0.1, 0.5, 1.0, 1.0], np.float32) > 0).astype(np.int64)


def test_time_limit_is_truncation_not_termination():
    batch = sample_episodes("CartPole-v1", Balancer(), 20, seed=0)
    check_batch_layout(batch, 20, 4)
    at_limit = batch.lengths == 500  # CartPole-v1's time limit
    assert at_limit.sum() >= 15
    np.testing.assert_array_equal(batch.truncated.any(axis=0), at_limit)
    np.testing.assert_array_equal(batch.terminated.any(axis=0), ~at_limit)


def test_max_steps_cuts_with_truncation():
    policy = make_policy(obs_dim=4, n_actions=2)
    full = sample_episodes("CartPole-v1", policy, 200, seed=5)
    cut = sample_episodes("CartPole-v1", policy, 200, seed=5, max_steps=10)
    check_batch_layout(cut, 200, 4)
    assert cut.mask.shape[0] == 10
    for name in ("obs", "act", "rew", "next_obs", "mask", "terminated"):
        np.testing.assert_array_equal(getattr(cut, name), getattr(full, name)[:10])
    np.testing.assert_array_equal(cut.truncated[-1], full.lengths > 10)


def test_sample_episodes_is_deterministic():
    policy = make_policy(obs_dim=4, n_actions=2)
    a = sample_episodes("CartPole-v1", policy, 50, seed=7)
    b = sample_episodes("CartPole-v1", policy, 50, seed=7)
    c = sample_episodes("CartPole-v1", policy, 50, seed=8)
    for name in ("obs", "act", "rew", "next_obs", "mask", "terminated", "truncated"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.obs.shape != c.obs.shape or not np.array_equal(a.obs, c.obs)


def test_sync_fallback_for_envs_without_a_vector_version():
    # MountainCar-v0 has no vector_entry_point; a random policy never reaches the flag in 200 steps.
    batch = sample_episodes("MountainCar-v0", make_policy(obs_dim=2, n_actions=3), 3, seed=0)
    check_batch_layout(batch, 3, 2)
    np.testing.assert_array_equal(batch.lengths, [200] * 3)
    assert batch.truncated[-1].all()


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_sample_episodes_rejects_bad_n(n):
    with pytest.raises(ValueError, match="^n:"):
        sample_episodes("CartPole-v1", make_policy(obs_dim=4, n_actions=2), n, seed=0)


@pytest.mark.parametrize("env_id", ["NoSuchEnv-v0", 5])
def test_sample_episodes_rejects_bad_env_id(env_id):
    with pytest.raises(ValueError, match="^env_id:"):
        sample_episodes(env_id, make_policy(obs_dim=4, n_actions=2), 2, seed=0)


def test_sample_episodes_rejects_bad_seed_and_max_steps():
    policy = make_policy(obs_dim=4, n_actions=2)
    with pytest.raises(ValueError, match="^seed:"):
        sample_episodes("CartPole-v1", policy, 2, seed=None)
    with pytest.raises(ValueError, match="^max_steps:"):
        sample_episodes("CartPole-v1", policy, 2, seed=0, max_steps=0)


# ---------------------------------------------------------------- (d) bad inputs

def bad(**changes):
    obs, act, weights, mask = random_inputs()
    args = dict(obs=obs, act=act, weights=weights, mask=mask) | changes
    return args


@pytest.mark.parametrize("name, args", [
    ("obs", bad(obs=np.zeros((T, N + 1, D), np.float32))),
    ("obs", bad(obs=np.zeros((T - 1, N, D), np.float32))),
    ("act", bad(act=np.zeros((T, N + 1), int))),
    ("act", bad(act=np.zeros((T,), int))),
    ("weights", bad(weights=np.zeros((T, N - 1)))),
    ("weights", bad(weights=np.zeros((N + 1,)))),
    ("weights", bad(weights=np.full((T, N), np.nan))),
    ("mask", bad(mask=np.ones((T, N)))),  # not bool
    ("mask", bad(mask=np.ones((T, N, 1), bool))),
])
def test_per_trajectory_gradients_rejects_bad_shapes(name, args):
    with pytest.raises(ValueError, match=f"^{name}:"):
        per_trajectory_gradients(make_policy(), **args)


def test_policy_and_mlp_reject_bad_inputs():
    policy = make_policy()
    with pytest.raises(ValueError, match="^obs:"):
        policy.log_prob(np.zeros((5, D + 1), np.float32), np.zeros(5, int))
    with pytest.raises(ValueError, match="^act:"):
        policy.log_prob(np.zeros((5, D), np.float32), np.zeros(4, int))
    with pytest.raises(ValueError, match="^obs:"):
        policy.act(np.zeros(D, np.float32))
    with pytest.raises(ValueError, match="^sizes:"):
        mlp([4])
    with pytest.raises(ValueError, match="^n_actions:"):
        CategoricalPolicy(4, 0)
    with pytest.raises(ValueError, match="^policy:"):
        per_trajectory_gradients(torch.nn.Identity(), *random_inputs())


def test_as_tensor_converts_detaches_and_keeps_dtype_unless_told():
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = as_tensor(x)
    assert t.dtype == torch.float64 and t.shape == (2, 3)
    t[0, 0] = 7.0                                   # shares memory with a writeable array
    assert x[0, 0] == 7.0
    assert as_tensor(x, torch.float32).dtype == torch.float32
    frozen = x.copy()
    frozen.setflags(write=False)
    as_tensor(frozen)[0, 0] = -1.0                   # a read-only array is copied, not written
    assert frozen[0, 0] == 7.0
    assert as_tensor([True, False]).dtype == torch.bool
    w = torch.ones(3, requires_grad=True)
    assert not as_tensor(w).requires_grad and as_tensor(w, torch.float64).dtype == torch.float64
