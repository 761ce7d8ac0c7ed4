"""Online and parallel actor-critic (notebook 07): the online trainer is A2C with one env and
one step, the gradient-noise measurement on planted i.i.d. gradients, the learning grid and
the ParallelLab."""
import numpy as np
import pytest
import torch

import acteach.parallel as parallel
from acteach.actor_critic import Config, train_a2c, train_online_actor_critic
from acteach.parallel import gradient_noise, learning_grid, smoothed
from acteach.widgets import ParallelLab


def test_online_actor_critic_updates_once_per_transition():
    """One env, one step: one update per valid transition; gymnasium's reset steps (after each
    episode's end) give no update."""
    history = train_online_actor_critic(Config(total_steps=300, seed=3), progress=False)
    assert len(history.losses["actor_loss"]) == history.env_steps
    assert len(history.episode_returns) >= 3                   # so reset steps did occur


def test_online_is_the_one_by_one_cell_of_the_grid():
    """With T = 1 the n-step target is the one-step target: the grid's (1, 1) run is the
    online actor-critic, number for number (same seed)."""
    online = train_online_actor_critic(Config(total_steps=200, seed=5), progress=False)
    cell = train_a2c(Config(total_steps=200, seed=5, n_envs=1, n_steps=1, target="n_step"),
                     progress=False)
    assert online.episode_returns == cell.episode_returns
    np.testing.assert_allclose(online.losses["critic_loss"], cell.losses["critic_loss"])


def _iid_gradients(mean, sigma, length, n_envs, seed):
    """A stand-in for transition_gradients: i.i.d. N(mean, sigma^2 I) per transition."""
    rng = np.random.default_rng(seed)
    g = mean + sigma * rng.standard_normal((length, n_envs, len(mean)))
    return torch.as_tensor(g), np.ones((length, n_envs), dtype=bool)


def test_gradient_noise_on_iid_gradients(monkeypatch):
    """Independent transitions: Var of a T-step mean is P sigma^2 / T, T_eff = T, and the
    signal is |mean|^2. Seed 0; tolerance 4 standard errors (each SE from the windows'
    spread; for the signal, the SE of a dot product of two independent means)."""
    mean, sigma, length, n_envs = np.array([0.3, -0.2, 0.1, 0.0]), 1.5, 256, 64
    monkeypatch.setattr(parallel, "transition_gradients",
                        lambda *a, **k: _iid_gradients(mean, sigma, length, n_envs, 0))
    noise = gradient_noise(None, None, n_steps=(1, 4, 16), n_envs=n_envs, length=length)
    expected = len(mean) * sigma**2 / noise.n_steps
    assert np.all(np.abs(noise.variance - expected) < 4 * noise.variance_se)
    half = length * n_envs / 2
    signal_se = np.sqrt(2 * np.sum(mean**2) * sigma**2 / half + len(mean) * sigma**4 / half**2)
    assert abs(noise.signal - np.sum(mean**2)) < 4 * signal_se
    assert noise.effective_steps(1) == 1.0
    assert noise.variance_of(8, 4) == pytest.approx(noise.variance[1] / 8)
    assert noise.snr(8, 4) == pytest.approx(noise.signal / noise.variance_of(8, 4))


def test_gradient_noise_on_cartpole_smoke():
    history = train_a2c(Config(total_steps=500, seed=0), progress=False)
    noise = gradient_noise(history.policy, history.critic, n_steps=(1, 2, 8), n_envs=4,
                           length=32, seed=1)
    assert noise.variance.shape == (3,) and np.all(noise.variance > 0)
    assert 0 < noise.n_transitions <= 4 * 32 and np.isfinite(noise.signal)


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_steps=(2, 4)), "n_steps"), (dict(n_steps=(1, 4, 3)), "n_steps"),
    (dict(length=30, n_steps=(1, 4)), "length"), (dict(n_envs=1), "n_envs"),
])
def test_gradient_noise_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        gradient_noise(None, None, **kwargs)


def test_noise_lookups_reject_unmeasured_windows(monkeypatch):
    monkeypatch.setattr(parallel, "transition_gradients",
                        lambda *a, **k: _iid_gradients(np.zeros(2), 1.0, 16, 4, 0))
    noise = gradient_noise(None, None, n_steps=(1, 4), n_envs=4, length=16)
    with pytest.raises(ValueError, match="^n_steps:"):
        noise.variance_of(1, 8)
    with pytest.raises(ValueError, match="^n_envs:"):
        noise.variance_of(0, 4)


def test_stop_return_ends_training_once_solved():
    config = Config(total_steps=20_000, seed=0, stop_return=20.0, stop_window=5)
    history = train_a2c(config, progress=False)
    assert history.env_steps < 20_000
    reached = history.steps_to_mean_return(20.0, 5)
    assert reached is not None and history.env_steps - reached < 4 * 16   # this rollout
    assert history.seconds_to_mean_return(20.0, 5) <= history.episode_seconds[-1]
    assert np.all(np.diff(history.episode_seconds) >= 0)
    assert history.episode_seconds[-1] <= history.seconds


@pytest.mark.parametrize("field, value", [("stop_return", float("nan")), ("stop_window", 0)])
def test_bad_stop_fields(field, value):
    with pytest.raises(ValueError, match=f"^{field}:"):
        Config(**{field: value})


def test_smoothed_is_the_running_mean_of_the_last_window():
    history = train_a2c(Config(total_steps=400, seed=2), progress=False)
    steps, seconds, mean = smoothed(history, window=3)
    ret = np.asarray(history.episode_returns)
    assert len(steps) == len(seconds) == len(mean) == len(ret)
    assert mean[0] == ret[0] and mean[-1] == pytest.approx(ret[-3:].mean())


@pytest.fixture(scope="module")
def grid():
    return learning_grid(Config(total_steps=300, seed=0), n_envs=(1, 4), n_steps=(1, 4))


def test_learning_grid_trains_every_cell_on_the_same_budget(grid):
    assert sorted(grid) == [(1, 1), (1, 4), (4, 1), (4, 4)]
    for (n, t), history in grid.items():
        assert 300 <= history.env_steps < 300 + n * t
        # a rollout has n * t slots: valid steps plus one reset step after each episode's end
        slots = history.env_steps + len(history.episode_returns)
        assert (history.env_steps // (n * t) <= len(history.losses["actor_loss"])
                <= slots // (n * t) + 1)


def test_parallel_lab_update_render_table(grid):
    lab = ParallelLab(grid, window=2)
    summary = lab.update(4, 1)
    assert summary.env_steps == grid[4, 1].env_steps
    assert summary.updates == len(grid[4, 1].losses["actor_loss"])
    assert summary.final_return == pytest.approx(np.mean(grid[4, 1].episode_returns[-2:]))
    png, text = lab.render(4, 1)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and "N = 4 envs x T = 1 steps" in text
    assert "Online (N = T = 1)" in text
    assert lab.table().count("\n") == 4
    assert lab.widget(1, 4) is not None
    with pytest.raises(ValueError, match="^n_envs, n_steps:"):
        lab.update(2, 2)
