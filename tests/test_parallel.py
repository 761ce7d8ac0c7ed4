"""Online and parallel actor-critic (notebook 07): the online trainer is A2C with one env and
one step, the gradient-noise measurement on planted i.i.d. gradients and the learning grid (the
ParallelLab is in test_labs.py)."""
import numpy as np
import pytest
import torch

from acteach.actor_critic import A2CConfig, train_a2c, train_online_actor_critic
from acteach.parallel import (GridRun, cell_ci, grid_cells, grid_config, grid_run,
                              grid_steps, gradient_noise, learning_grid,
                              signal_estimate, window_variance)
from acteach.sampling import random_policy_returns


def test_online_actor_critic_updates_once_per_transition():
    """One env, one step: one update per valid transition; gymnasium's reset steps (after each
    episode's end) give no update."""
    history = train_online_actor_critic(A2CConfig(total_steps=300, seed=3), progress=False)
    assert len(history.losses["actor_loss"]) == history.env_steps
    assert len(history.episode_returns) >= 3                   # so reset steps did occur


def test_online_is_the_one_by_one_cell_of_the_grid():
    """With T = 1 the n-step target is the one-step target: the grid's (1, 1) run is the
    online actor-critic, number for number (same seed)."""
    online = train_online_actor_critic(A2CConfig(total_steps=200, seed=5), progress=False)
    cell = train_a2c(A2CConfig(total_steps=200, seed=5, n_envs=1, n_steps=1, target="n_step"),
                     progress=False)
    assert online.episode_returns == cell.episode_returns
    np.testing.assert_allclose(online.losses["critic_loss"], cell.losses["critic_loss"])


def test_window_variance_on_iid_gradients():
    """Independent N(mean, sigma^2 I) gradients: Var of a T-step mean is P sigma^2 / T.
    Seed 0; tolerance 4 standard errors (from the windows' spread)."""
    P, sigma, L, N = 4, 1.5, 256, 64
    rng = np.random.default_rng(0)
    g = torch.as_tensor(0.3 + sigma * rng.standard_normal((L, N, P)))
    mask = np.ones((L, N), dtype=bool)
    for T in (1, 4, 16):
        variance, se = window_variance(g, mask, T)
        assert abs(variance - P * sigma**2 / T) < 4 * se


def test_window_variance_averages_over_valid_steps_only():
    g = torch.zeros(4, 1, 1)
    g[:, 0, 0] = torch.tensor([2.0, 0.0, 4.0, 6.0])      # step 1 masked: its gradient is 0
    mask = np.array([[True], [False], [True], [True]])
    variance, _ = window_variance(g, mask, 2)             # window means 2 and 5
    assert variance == pytest.approx(np.var([2.0, 5.0], ddof=1))


def test_signal_estimate_is_unbiased_where_the_plain_mean_is_not():
    """|E g|^2 = 0.14 from 32 envs of 10 i.i.d. N(mean, 2^2 I) steps: 400 repetitions
    (seed 1). The estimate's average is within 4 SE of the truth; |mean g|^2 is biased up by
    tr Cov / (number of steps) = 16 / 320 = 0.05: its average is within 4 SE of truth + 0.05
    and more than 4 SE above the truth."""
    mean, sigma, N, steps = np.array([0.3, -0.2, 0.1, 0.0]), 2.0, 32, 10
    rng = np.random.default_rng(1)
    estimates, plain = [], []
    for _ in range(400):
        g = mean + sigma * rng.standard_normal((N, steps, len(mean)))
        estimate, _ = signal_estimate(g.sum(axis=1), np.full(N, steps))
        estimates.append(estimate)
        plain.append(np.sum(g.mean(axis=(0, 1)) ** 2))
    truth, se = np.sum(mean**2), np.std(estimates) / np.sqrt(len(estimates))
    assert abs(np.mean(estimates) - truth) < 4 * se
    plain_se = np.std(plain) / np.sqrt(len(plain))
    assert abs(np.mean(plain) - truth - 16 / (N * steps)) < 4 * plain_se
    assert np.mean(plain) - truth > 4 * plain_se


def test_signal_estimate_jackknife_se_matches_the_spread():
    """The jackknife SE of one estimate is within 25% of the spread over 300 repetitions
    (seed 2)."""
    rng = np.random.default_rng(2)
    draws = [signal_estimate((0.2 + rng.standard_normal((40, 30, 3))).sum(axis=1),
                             np.full(40, 30)) for _ in range(300)]
    spread, se = np.std([d[0] for d in draws]), np.mean([d[1] for d in draws])
    assert se == pytest.approx(spread, rel=0.25)


def test_gradient_noise_on_cartpole():
    history = train_a2c(A2CConfig(total_steps=500, seed=0), progress=False)
    noise = gradient_noise(history.policy, history.critic, n_steps=(1, 2, 8), n_envs=4,
                           length=32, signal_length=64, seed=1)
    assert noise.variance.shape == (3,) and np.all(noise.variance > 0)
    assert 0 < noise.n_transitions <= 4 * 32 and np.isfinite(noise.signal) and noise.signal_se > 0
    assert noise.effective_steps(1) == 1.0 and noise.effective_steps_se(1) == 0.0
    assert noise.effective_se.shape == (3,) and np.all(noise.effective_se[1:] > 0)
    assert noise.variance_of(8, 2) == pytest.approx(noise.variance[1] / 8)
    assert noise.snr(8, 2) == pytest.approx(noise.signal / noise.variance_of(8, 2))
    with pytest.raises(ValueError, match="^n_steps:"):
        noise.variance_of(1, 4)
    with pytest.raises(ValueError, match="^n_envs:"):
        noise.variance_of(0, 2)


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_steps=(2, 4)), "n_steps"), (dict(n_steps=(1, 4, 3)), "n_steps"),
    (dict(length=30, n_steps=(1, 4)), "length"), (dict(n_envs=1), "n_envs"),
    (dict(length=64, signal_length=32), "signal_length"),
])
def test_gradient_noise_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        gradient_noise(None, None, **kwargs)


def test_stop_return_ends_training_once_solved():
    config = A2CConfig(total_steps=20_000, seed=0, stop_return=20.0, stop_window=5)
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
        A2CConfig(**{field: value})


def test_running_mean_is_the_mean_of_the_last_window():
    history = train_a2c(A2CConfig(total_steps=400, seed=2), progress=False)
    steps, seconds, mean = history.episode_steps, history.episode_seconds, history.running_mean(3)
    ret = np.asarray(history.episode_returns)
    assert len(steps) == len(seconds) == len(mean) == len(ret)
    assert mean[0] == ret[0] and mean[-1] == pytest.approx(ret[-3:].mean())


@pytest.fixture(scope="module")
def grid():
    return learning_grid(A2CConfig(total_steps=300), seeds=[0, 1], n_envs=(1, 4),
                         n_steps=(1, 4), window=5, points=6)


def test_learning_grid_trains_every_cell_and_seed_on_the_same_budget(grid):
    cells = grid_cells(grid)
    assert sorted(cells) == [(1, 1), (1, 4), (4, 1), (4, 4)]
    for (n, t), runs in cells.items():
        assert [r.seed for r in runs] == [0, 1]
        for run in runs:
            assert 300 <= run.env_steps < 300 + n * t
            assert run.updates >= run.env_steps // (n * t) and run.seconds > 0
            assert run.curve.shape == run.curve_seconds.shape == (6,)
            assert np.all(np.diff(run.curve_seconds) >= 0)
    assert cells[4, 4][0].final_return != cells[4, 4][1].final_return      # seeds differ


def test_every_cell_of_the_grid_gets_raw_advantages():
    """Standardising one transition is impossible, so no cell standardises (the online cell
    alone used to train on raw advantages)."""
    assert grid_config(A2CConfig(normalize_adv=True)).normalize_adv is False


def test_grid_run_curve_is_the_running_mean_at_each_step():
    history = train_a2c(A2CConfig(total_steps=400, seed=2), progress=False)
    at = grid_steps(400, 4)
    run = grid_run(history, 8, 4, 2, at, window=3)
    steps, mean = history.episode_steps, history.running_mean(3)
    for point, value in zip(at, run.curve):
        ended = np.searchsorted(steps, point, side="right")
        assert value == (mean[ended - 1] if ended else pytest.approx(np.nan, nan_ok=True))
    assert run.final_return == mean[-1]
    back = GridRun.from_json(run.to_json())
    np.testing.assert_allclose(back.curve, run.curve, atol=0.005)
    assert back.key == (8, 4) and back.updates == run.updates


def test_cell_ci_is_students_t_over_seeds(grid):
    runs = grid_cells(grid)[4, 4]
    mean, half = cell_ci(runs, "final_return")
    finals = [r.final_return for r in runs]
    assert mean == pytest.approx(np.mean(finals))
    assert half == pytest.approx(12.7062 * np.std(finals, ddof=1) / np.sqrt(2), rel=1e-5)
    assert np.isnan(cell_ci(runs[:1], "final_return")[1])


def test_t_eff_has_a_jackknife_se_on_iid_gradients():
    """i.i.d. gradients: T_eff = T; the jackknife SE over the envs covers it (4 SE)."""
    from acteach.parallel import _jackknife_se, _leave_one_out, pooled_variance, window_stats
    rng = np.random.default_rng(4)
    g = torch.as_tensor(rng.standard_normal((64, 32, 3)))
    mask = np.ones((64, 32), dtype=bool)
    stats = {T: window_stats(g, mask, T) for T in (1, 4)}
    ratio = pooled_variance(*stats[1]) / pooled_variance(*stats[4])
    se = _jackknife_se(_leave_one_out(*stats[1]) / _leave_one_out(*stats[4]))
    assert abs(ratio - 4) < 4 * se and 0 < se < 1


# ---------------------------------------------------------------------------------------------
# valid_steps: which steps of a vector-env rollout are transitions
# ---------------------------------------------------------------------------------------------

from acteach.actor_critic import rollout, valid_steps  # noqa: E402
from acteach.nets import CategoricalPolicy  # noqa: E402


def test_valid_steps_by_hand():
    term = np.array([[0, 0], [1, 0], [0, 0], [0, 0], [0, 0]], dtype=bool)
    trunc = np.array([[0, 0], [0, 0], [0, 0], [0, 1], [0, 0]], dtype=bool)
    mask, carry = valid_steps(term, trunc, np.array([False, True]))
    np.testing.assert_array_equal(mask.T.astype(int), [[1, 1, 0, 1, 1], [0, 1, 1, 1, 0]])
    np.testing.assert_array_equal(carry, [False, False])
    _, carry = valid_steps(term[:2], trunc[:2], np.array([False, True]))
    np.testing.assert_array_equal(carry, [True, False])


def test_valid_steps_matches_the_rollouts_mask_on_real_envs():
    """Raw flags from a real vector env (episodes cut at 3 steps), fed through valid_steps,
    give the mask `rollout` recorded, across two rollouts."""
    from acteach.sampling import make_envs

    envs = make_envs("CartPole-v1", 3, max_episode_steps=3)
    torch.manual_seed(0)
    policy, generator = CategoricalPolicy(4, 2), torch.Generator().manual_seed(0)
    obs, _ = envs.reset(seed=0)
    autoreset = carry = np.zeros(3, bool)
    for _ in range(2):
        record, obs, autoreset_next = rollout(envs, policy, obs, autoreset, 7, generator)
        # rollout keeps the flags of valid steps; gymnasium's reset steps have both False
        mask, carry = valid_steps(record.terminated, record.truncated, carry)
        np.testing.assert_array_equal(mask, record.mask)
        np.testing.assert_array_equal(carry, autoreset_next)
        autoreset = autoreset_next
    envs.close()


def test_random_policy_returns_take_as_many_episodes_from_every_env():
    returns = random_policy_returns("CartPole-v1", n_episodes=40, seed=3)
    assert returns.shape == (48,)                       # 3 episodes from each of 16 envs
    assert np.all(returns >= 8) and np.all(returns == np.round(returns))   # CartPole: +1 a step
    np.testing.assert_array_equal(returns, random_policy_returns("CartPole-v1", n_episodes=40, seed=3))
