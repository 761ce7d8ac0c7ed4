"""The replay buffer (notebook 08): ring wrap-around, sample shapes and dtypes, sampling only the
filled rows (uniformly), the terminated flag kept and truncation not stored as done, masked
(autoreset) rows skipped, and bad input named."""
import numpy as np
import pytest
import torch

from acteach.replay import ReplayBuffer, ReplaySample
from acteach.sampling import make_envs


def _rows(ids, obs_dim=2):
    """Transitions whose fields encode their id: obs = [id, -id], act = id % 3, rew = id / 10,
    next_obs = obs + 100, terminated = id % 4 == 0."""
    ids = np.asarray(ids, dtype=np.float32)
    obs = np.stack([ids, -ids], axis=1)[:, :obs_dim]
    return dict(obs=obs, act=(ids % 3).astype(np.int64), rew=ids / 10, next_obs=obs + 100,
                terminated=ids % 4 == 0)


def test_add_fills_then_wraps_around_overwriting_the_oldest():
    buffer = ReplayBuffer(capacity=5, obs_dim=2)
    assert buffer.add(**_rows([1, 2, 3])) == 3
    assert len(buffer) == 3 and buffer.cursor == 3 and not buffer.full
    buffer.add(**_rows([4, 5, 6]))                 # rows 3, 4, then wraps to row 0
    assert len(buffer) == 5 and buffer.full and buffer.cursor == 1 and buffer.added == 6
    np.testing.assert_array_equal(buffer.obs[:, 0], [6, 2, 3, 4, 5])
    np.testing.assert_array_equal(buffer.act, [0, 2, 0, 1, 2])
    np.testing.assert_allclose(buffer.rew, np.array([6, 2, 3, 4, 5], np.float32) / 10)
    np.testing.assert_array_equal(buffer.next_obs[:, 0], [106, 102, 103, 104, 105])
    np.testing.assert_array_equal(buffer.terminated, [False, False, False, True, False])
    buffer.add(**_rows(np.arange(10, 18)))         # more rows than capacity: the newest 5 kept
    assert sorted(buffer.obs[:, 0]) == [13, 14, 15, 16, 17] and len(buffer) == 5


@pytest.mark.parametrize("act_dim, rew_dtype", [(None, np.float32), (3, np.float32),
                                                (None, np.float64), (1, np.float64)])
def test_sample_shapes_and_dtypes(act_dim, rew_dtype):
    B, D, N = 7, 4, 3
    buffer = ReplayBuffer(capacity=10, obs_dim=D, act_dim=act_dim, rew_dtype=rew_dtype)
    rng = np.random.default_rng(0)
    act = rng.integers(0, 2, N) if act_dim is None else rng.uniform(-1, 1, (N, act_dim))
    buffer.add(rng.normal(size=(N, D)), act, rng.normal(size=N), rng.normal(size=(N, D)),
               np.array([True, False, False]))
    sample = buffer.sample(B, rng)
    assert isinstance(sample, ReplaySample) and len(sample) == B
    assert sample.obs.shape == sample.next_obs.shape == (B, D)
    assert sample.obs.dtype == sample.next_obs.dtype == torch.float32
    if act_dim is None:
        assert sample.act.shape == (B,) and sample.act.dtype == torch.int64
    else:
        assert sample.act.shape == (B, act_dim) and sample.act.dtype == torch.float32
    assert sample.rew.shape == (B,) and sample.rew.dtype == torch.from_numpy(
        np.zeros(1, rew_dtype)).dtype
    assert sample.terminated.shape == (B,) and sample.terminated.dtype == torch.bool
    before = sample.obs.clone()
    buffer.obs[:] = 1e6                              # the sample is a copy, not a view
    torch.testing.assert_close(sample.obs, before)


def test_only_filled_rows_are_sampled_and_uniformly():
    """7 of 1000 rows filled; 70_000 draws (seed 0): every draw is a filled row, and each row's
    count is within 5 standard errors of 10_000 (sd = sqrt(70_000 * 1/7 * 6/7) ~ 93)."""
    buffer = ReplayBuffer(capacity=1000, obs_dim=2)
    buffer.add(**_rows(np.arange(1, 8)))
    sample = buffer.sample(70_000, np.random.default_rng(0))
    ids = sample.obs[:, 0].numpy().astype(int)
    assert set(ids) == set(range(1, 8))
    counts = np.bincount(ids, minlength=8)[1:]
    assert np.all(np.abs(counts - 10_000) < 5 * np.sqrt(70_000 * (1 / 7) * (6 / 7))), counts
    # each sampled row is one whole transition: its fields belong together
    np.testing.assert_array_equal(sample.next_obs[:, 0].numpy(), ids + 100)
    np.testing.assert_array_equal(sample.act.numpy(), ids % 3)
    np.testing.assert_array_equal(sample.terminated.numpy(), ids % 4 == 0)


def test_same_generator_seed_same_sample():
    buffer = ReplayBuffer(capacity=50, obs_dim=2)
    buffer.add(**_rows(np.arange(30)))
    a = buffer.sample(16, np.random.default_rng(3))
    b = buffer.sample(16, np.random.default_rng(3))
    torch.testing.assert_close(a.obs, b.obs)


def test_terminated_flag_is_kept_per_row():
    buffer = ReplayBuffer(capacity=8, obs_dim=2)
    buffer.add(**_rows(np.arange(8)))
    np.testing.assert_array_equal(buffer.terminated, np.arange(8) % 4 == 0)
    got = buffer.gather(np.array([0, 1, 4, 5]))
    np.testing.assert_array_equal(got.terminated.numpy(), [True, False, True, False])


def test_masked_rows_are_skipped():
    buffer = ReplayBuffer(capacity=8, obs_dim=2)
    stored = buffer.add(**_rows([1, 2, 3, 4]), mask=np.array([True, False, True, False]))
    assert stored == 2 and len(buffer) == 2 and buffer.added == 2
    np.testing.assert_array_equal(buffer.obs[:2, 0], [1, 3])
    assert buffer.add(**_rows([5, 6]), mask=np.zeros(2, bool)) == 0 and len(buffer) == 2
    sample = buffer.sample(200, np.random.default_rng(0))
    assert set(sample.obs[:, 0].numpy().astype(int)) == {1, 3}


def test_vector_env_step_truncation_is_not_stored_as_done_and_autoreset_step_is_skipped():
    """Pendulum cut at 3 steps, 2 envs, 5 steps: steps 0-2 are episode one (step 2 truncated),
    step 3 is gymnasium's reset step (masked), step 4 starts episode two. The stored
    truncated transition has terminated False and the true final observation as next_obs."""
    envs = make_envs("Pendulum-v1", 2, max_episode_steps=3)
    buffer = ReplayBuffer(capacity=20, obs_dim=3, act_dim=1)
    obs, _ = envs.reset(seed=0)
    autoreset, truncations = np.zeros(2, bool), []
    for _ in range(5):
        act = np.full((2, 1), 0.5, np.float32)
        next_obs, rew, terminated, truncated, _ = envs.step(act)
        buffer.add(obs, act, rew, next_obs, terminated, mask=~autoreset)
        truncations.append(truncated & ~autoreset)
        autoreset, obs = (terminated | truncated) & ~autoreset, next_obs
    envs.close()
    assert len(buffer) == 8                                     # 5 steps x 2 envs - 2 masked
    np.testing.assert_array_equal(truncations[2], [True, True])
    assert not buffer.terminated[:8].any()                      # truncated: bootstrap
    final, start_two = buffer.next_obs[4:6], buffer.obs[6:8]    # rows of steps 2 and 4
    assert not np.allclose(final, start_two)                    # final obs, not the reset obs
    np.testing.assert_array_equal(buffer.next_obs[2:4], buffer.obs[4:6])   # within an episode


@pytest.mark.parametrize("kwargs, name", [
    (dict(capacity=0, obs_dim=2), "capacity"),
    (dict(capacity=4, obs_dim=2.0), "obs_dim"),
    (dict(capacity=4, obs_dim=2, act_dim=0), "act_dim"),
    (dict(capacity=4, obs_dim=2, rew_dtype=np.int32), "rew_dtype"),
])
def test_bad_construction_names_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        ReplayBuffer(**kwargs)


@pytest.mark.parametrize("field, value, name", [
    ("obs", np.zeros((2, 3)), "obs"),
    ("next_obs", np.zeros((3, 2)), "next_obs"),
    ("act", np.zeros(2), "act"),                    # float actions for a discrete buffer
    ("rew", np.zeros(3), "rew"),
    ("rew", np.array([np.nan, 0.0]), "rew"),
    ("terminated", np.array([0, 2]), "terminated"),
    ("mask", np.ones(3, bool), "mask"),
])
def test_bad_add_names_the_argument(field, value, name):
    buffer = ReplayBuffer(capacity=4, obs_dim=2)
    rows = _rows([1, 2])
    rows[field] = value
    with pytest.raises(ValueError, match=f"^{name}:"):
        buffer.add(**rows)


def test_bad_sample_names_the_argument():
    buffer = ReplayBuffer(capacity=4, obs_dim=2)
    with pytest.raises(ValueError, match="^batch_size:"):
        buffer.sample(4, np.random.default_rng(0))            # empty
    buffer.add(**_rows([1]))
    with pytest.raises(ValueError, match="^batch_size:"):
        buffer.sample(0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="^rng:"):
        buffer.sample(4, None)
    assert len(buffer.sample(4, 0).rew) == 4                  # an int seed is a fresh Generator
    with pytest.raises(ValueError, match="^idx:"):
        buffer.gather(np.array([1]))                            # row 1 not filled yet
    continuous = ReplayBuffer(capacity=4, obs_dim=2, act_dim=2)
    with pytest.raises(ValueError, match="^act:"):
        continuous.add(np.zeros((1, 2)), np.zeros((1, 3)), np.zeros(1), np.zeros((1, 2)),
                       np.zeros(1, bool))
