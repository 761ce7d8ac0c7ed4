"""The bookkeeping every trainer shares (notebooks 06-09): History's episode records and
thresholds, the one-thread / forked-RNG context, gradient clipping per network, and show_config."""
import dataclasses
import functools

import numpy as np
import pytest
import torch

from acteach.actor_critic import A2CConfig
from acteach.critic import FitConfig
from acteach.sac import SACConfig
from acteach.training import History, clip_gradients, show_config, single_threaded


def test_steps_to_mean_return():
    history = History(episode_returns=[10.0, 30.0, 50.0], episode_steps=[5, 20, 40])
    assert history.steps_to_mean_return(40.0, window=2) == 40
    assert history.steps_to_mean_return(20.0, window=2) == 20
    assert history.steps_to_mean_return(100.0, window=2) is None


def test_first_reached_since_looks_only_at_windows_closing_at_later_episodes():
    """A trainer checking after each rollout passes the episodes it has checked: the windows
    closing before them are skipped, those straddling them are not."""
    history = History(episode_returns=[50.0, 10.0, 10.0, 30.0, 50.0])
    assert history.first_reached(30.0, window=2) == 1                # (50 + 10) / 2
    assert history.first_reached(30.0, window=2, since=2) == 4      # (30 + 50) / 2
    assert history.first_reached(20.0, window=2, since=3) == 3      # straddles: (10 + 30) / 2
    assert history.first_reached(30.0, window=2, since=5) is None   # nothing new


def test_record_step_counts_valid_steps_and_closes_episodes_by_hand():
    """Two envs, three steps: env 0 ends an episode of return 3 on step 1, env 1 one of
    return 6 on step 2 (its step 1 was not valid, so its reward there is 0 and not counted)."""
    history, running = History(), np.zeros(2)
    steps = [  # rew, valid, ended, seconds
        (np.array([1.0, 2.0]), np.array([True, True]), np.array([False, False]), 0.1),
        (np.array([2.0, 0.0]), np.array([True, False]), np.array([True, False]), 0.2),
        (np.array([5.0, 4.0]), np.array([True, True]), np.array([False, True]), 0.3),
    ]
    for rew, valid, ended, seconds in steps:
        history.record_step(rew, valid, ended, running, seconds)
    assert history.env_steps == 5
    assert history.episode_returns == [3.0, 6.0]
    assert history.episode_steps == [3, 5] and history.episode_seconds == [0.2, 0.3]
    np.testing.assert_array_equal(running, [5.0, 0.0])
    assert history.seconds_to_mean_return(4.0, window=1) == 0.3
    history.env_steps += 7
    history.end_episode(9.0, 1.5)
    assert history.episode_steps[-1] == 12 and history.episode_seconds[-1] == 1.5


def test_add_losses_appends_per_key():
    history = History()
    history.add_losses({"actor_loss": 1.0, "critic_loss": 2.0})
    history.add_losses({"actor_loss": 3.0, "critic_loss": 4.0})
    assert history.losses == {"actor_loss": [1.0, 3.0], "critic_loss": [2.0, 4.0]}


def test_single_threaded_restores_threads_and_the_rng_also_after_an_error():
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    with single_threaded(seed=7):
        assert torch.get_num_threads() == 1
        inside = torch.rand(3)
    assert torch.equal(torch.random.get_rng_state(), state)        # the caller's RNG untouched
    with single_threaded(seed=7):
        assert torch.equal(torch.rand(3), inside)                  # seeded: reproducible
    with pytest.raises(RuntimeError):
        with single_threaded():
            raise RuntimeError("inside")
    assert torch.get_num_threads() == threads
    with single_threaded():                                        # no seed: the RNG runs on
        torch.rand(1)
    assert not torch.equal(torch.random.get_rng_state(), state)
    with pytest.raises(ValueError, match="^seed:"):
        with single_threaded(seed=1.5):
            pass


def test_clip_gradients_clips_each_parameter_group_on_its_own():
    """Two groups with gradient norms 5 and 0.3, clipped to 1: the first is scaled to norm 1,
    the second is left alone; None leaves both."""
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b]}], lr=1.0)
    for max_norm, expected_a in ((None, [3.0, 4.0]), (1.0, [0.6, 0.8])):
        a.grad, b.grad = torch.tensor([3.0, 4.0]), torch.tensor([0.3])
        clip_gradients(opt, max_norm)
        torch.testing.assert_close(a.grad, torch.tensor(expected_a))
        torch.testing.assert_close(b.grad, torch.tensor([0.3]))


def test_clip_gradients_is_clip_grad_norm_to_the_last_bit():
    """Its arithmetic is torch.nn.utils.clip_grad_norm_'s (a run stays the same to the bit)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    grads = [torch.randn_like(p) for p in net.parameters()]
    clipped = []
    for clip in (clip_gradients, None):
        for p, g in zip(net.parameters(), grads):
            p.grad = g.clone()
        if clip is None:
            torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
        else:
            clip(torch.optim.SGD(net.parameters(), lr=1.0), 0.5)
        clipped.append([p.grad.clone() for p in net.parameters()])
    for mine, theirs in zip(*clipped):
        assert torch.equal(mine, theirs)


@pytest.mark.parametrize("config", [A2CConfig(), SACConfig(), FitConfig()],
                         ids=lambda c: type(c).__name__)
def test_show_config_prints_every_field_with_its_docstring(config, capsys):
    """Every field of each config is documented, and shown as `name = value` + its doc."""
    show_config(config)
    lines = capsys.readouterr().out.splitlines()
    fields = dataclasses.fields(config)
    assert len(lines) == 2 * len(fields)
    for f, name_line, doc_line in zip(fields, lines[::2], lines[1::2]):
        assert name_line == f"{f.name} = {getattr(config, f.name)!r}"
        assert doc_line.startswith("    ") and len(doc_line.strip()) > 10, f.name


def test_show_config_shows_the_chosen_fields_in_order(capsys):
    show_config(A2CConfig(n_episodes=4), ("n_episodes", "gamma"))
    out = capsys.readouterr().out
    assert out.startswith("n_episodes = 4\n    Batch training: N,") and "\ngamma = 0.99\n" in out
    with pytest.raises(ValueError, match="^fields:"):
        show_config(A2CConfig(), ("n_env",))
    with pytest.raises(ValueError, match="^config:"):
        show_config(A2CConfig)


# ---------------------------------------------------------------------------------------------
# Ctrl-C: the History so far is returned, marked interrupted, and everything is put back
# ---------------------------------------------------------------------------------------------

def _interrupt_after(n_calls: int, fn):
    """fn, but the n_calls-th call raises KeyboardInterrupt (a simulated Ctrl-C)."""
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n_calls:
            raise KeyboardInterrupt
        return fn(*args, **kwargs)
    return wrapped


@pytest.mark.parametrize("trainer", ["train_a2c", "train_batch_actor_critic", "train_reinforce",
                                     "train_sac"])
def test_ctrl_c_returns_the_history_so_far(trainer, monkeypatch, capsys):
    import tqdm

    from acteach import actor_critic, batch_actor_critic, sac
    module = {"train_sac": sac, "train_a2c": actor_critic}.get(trainer, batch_actor_critic)
    update = {"train_a2c": "a2c_update", "train_batch_actor_critic": "batch_actor_critic_update",
              "train_reinforce": "reinforce_update", "train_sac": "sac_update"}[trainer]
    interrupting = _interrupt_after(3, getattr(module, update))
    if trainer == "train_a2c":                                    # its update is an argument
        train = functools.partial(module.train_a2c, update=interrupting)
    else:
        monkeypatch.setattr(module, update, interrupting)
        train = getattr(module, trainer)
    config = (SACConfig(total_steps=400, learning_starts=50, batch_size=16, eval_every=10_000,
                        eval_episodes=1, seed=0) if trainer == "train_sac"
              else A2CConfig(total_steps=5_000, n_envs=2, n_episodes=2, seed=0))
    threads, rng_state = torch.get_num_threads(), torch.random.get_rng_state()
    history = train(config, progress=True)
    assert history.interrupted and 0 < history.env_steps < config.total_steps
    assert len(next(iter(history.losses.values()))) == 2          # the two finished updates
    assert history.seconds > 0
    assert (history.agent if trainer == "train_sac" else history.policy) is not None
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    assert not getattr(tqdm.tqdm, "_instances", set())             # the progress bar closed
    assert "interrupted (Ctrl-C)" in capsys.readouterr().err


def test_an_uninterrupted_run_is_not_marked():
    from acteach.batch_actor_critic import train_reinforce
    history = train_reinforce(A2CConfig(total_steps=50, n_episodes=2, seed=0))
    assert not history.interrupted


def test_single_threaded_restores_threads_and_rng_after_ctrl_c():
    threads, state = torch.get_num_threads(), torch.random.get_rng_state()
    with pytest.raises(KeyboardInterrupt):
        with single_threaded(3):
            torch.rand(5)
            raise KeyboardInterrupt
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), state)


def _history(returns, steps):
    history = History()
    history.episode_returns, history.episode_steps = list(returns), list(steps)
    return history


def test_learning_curve_is_the_running_mean_of_finished_episodes():
    history = _history([10.0, 20.0, 30.0, 40.0], [10, 30, 60, 100])
    curve = history.learning_curve(np.array([5, 10, 59, 60, 200]), window=2)
    np.testing.assert_allclose(curve, [np.nan, 10.0, 15.0, 25.0, 35.0])
    assert history.final_return(window=2) == 35.0 and history.final_return(window=20) == 25.0
    with pytest.raises(ValueError, match="history: no episode finished"):
        History().final_return()
