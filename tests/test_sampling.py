"""make_envs, the one way to make a vector env, Batch.from_steps, the one way to stack per-step
records into a time-major Batch, and sample_episodes_seeds, K seeds' episodes at once
(sample_episodes itself: tests/test_nets.py)."""
import numpy as np
import pytest
import torch

from acteach.sampling import Batch, make_envs, sample_episodes, sample_episodes_seeds


def test_make_envs_uses_the_vectorised_env_when_there_is_one_and_passes_kwargs():
    envs = make_envs("CartPole-v1", 3, max_episode_steps=2)
    try:
        assert envs.num_envs == 3 and envs.metadata["autoreset_mode"].name == "NEXT_STEP"
        assert type(envs).__name__ == "CartPoleVectorEnv"
        envs.reset(seed=0)
        _, _, _, truncated, _ = envs.step(np.zeros(3, dtype=np.int64))
        _, _, _, truncated, _ = envs.step(np.zeros(3, dtype=np.int64))
        assert truncated.all()                                   # max_episode_steps=2 applied
    finally:
        envs.close()
    envs = make_envs("Pendulum-v1", 2)                             # no vector version: sync
    try:
        assert type(envs).__name__ == "SyncVectorEnv" and envs.num_envs == 2
    finally:
        envs.close()


@pytest.mark.parametrize("env_id, n, name", [("NoSuchEnv-v0", 2, "env_id"), (3, 2, "env_id"),
                                             ("CartPole-v1", 0, "n")])
def test_make_envs_names_a_bad_argument(env_id, n, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        make_envs(env_id, n)


def test_from_steps_stacks_time_major():
    steps = [{"obs": np.full((2, 3), t, np.float32), "act": np.array([t, -t]),
              "rew": np.array([1.0, 2.0]) * t, "next_obs": np.full((2, 3), t + 1, np.float32),
              "mask": np.array([True, t < 2]), "terminated": np.array([False, t == 1]),
              "truncated": np.zeros(2, bool)} for t in range(3)]
    batch = Batch.from_steps(steps)
    assert batch.obs.shape == (3, 2, 3) and batch.act.shape == (3, 2)
    np.testing.assert_array_equal(batch.act[:, 1], [0, -1, -2])
    np.testing.assert_array_equal(batch.mask, [[True, True], [True, True], [True, False]])
    assert batch.n_steps == 5 and batch.lengths.tolist() == [3, 2]
    with pytest.raises(ValueError, match="^steps:"):
        Batch.from_steps([])


def _policies(seeds, hidden=(16,)):
    from acteach.nets import CategoricalPolicy
    from acteach.stacked import StackedPolicy

    policies = []
    for seed in seeds:
        torch.manual_seed(seed)
        policies.append(CategoricalPolicy(4, 2, hidden))
    return policies, StackedPolicy(policies)


def test_sample_episodes_seeds_gives_each_seed_the_episodes_sample_episodes_gives_it():
    """Seed k's column of a (T, K, N) batch is sample_episodes of its own network with its own
    seed, padded to the longest episode of all seeds: the same actions, lengths and
    observations (the stacked logits agree to about 1e-6, far from any tie of these draws)."""
    seeds = [4, 0, 9]
    policies, stacked = _policies(seeds)
    batch = sample_episodes_seeds("CartPole-v1", stacked, 5, seeds)
    assert batch.mask.shape == batch.rew.shape == (len(batch.mask), 3, 5)
    assert batch.obs.shape == batch.next_obs.shape == (*batch.mask.shape, 4)
    for k, (policy, seed) in enumerate(zip(policies, seeds)):
        one = sample_episodes("CartPole-v1", policy, 5, seed=seed)
        T = len(one.mask)
        for key, value in vars(one).items():
            column = getattr(batch, key)[:, k]
            np.testing.assert_array_equal(column[:T], value, err_msg=key)
            assert not column[T:].any(), key                       # padding: zeros
    assert batch.lengths.shape == (3, 5) and batch.n_steps == batch.mask.sum()


def test_sample_episodes_seeds_cut_at_max_steps_and_refuses_bad_seeds():
    _, stacked = _policies([0, 1])
    cut = sample_episodes_seeds("CartPole-v1", stacked, 4, [0, 1], max_steps=3)
    assert cut.mask.shape == (3, 2, 4) and cut.truncated[-1].all()
    for seeds in ([], [0, -1], [0, 1.0], 0):
        with pytest.raises(ValueError, match="^seeds:"):
            sample_episodes_seeds("CartPole-v1", stacked, 4, seeds)


def test_columns_fold_the_seed_axis_into_the_trajectories():
    _, stacked = _policies([0, 1])
    batch = sample_episodes_seeds("CartPole-v1", stacked, 3, [0, 1])
    cols = batch.columns()
    T = len(batch.mask)
    assert cols.mask.shape == (T, 6) and cols.obs.shape == (T, 6, 4)
    np.testing.assert_array_equal(cols.rew[:, 3:], batch.rew[:, 1])          # seed 1: columns 3-5
    one = Batch(**{key: value[:, 0] for key, value in vars(batch).items()})
    assert one.columns() is one
