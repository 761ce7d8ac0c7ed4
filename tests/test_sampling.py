"""make_envs, the one way to make a vector env, and Batch.from_steps, the one way to stack
per-step records into a time-major Batch (sample_episodes itself: tests/test_nets.py)."""
import numpy as np
import pytest

from acteach.sampling import Batch, make_envs


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
