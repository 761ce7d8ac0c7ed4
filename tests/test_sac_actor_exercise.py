"""Exercise 8.2, the SAC actor's loss: the library's `sac.actor_loss` is what `sac_losses` uses
and what a student's loss replaces (`train_sac(config, actor_loss=...)`); the single-batch
checker is under the contract of tests/test_checks.py; here, its learning check on Pendulum-v1
passes the reference and fails a plausible mistake."""
import numpy as np
import pytest
import torch

from acteach import checks, sac
from acteach.checks import nb08_off_policy
from acteach.replay import ReplaySample
from acteach.sampling import random_policy_returns


def _agent_and_batch(B: int = 32):
    torch.manual_seed(0)
    agent = sac.make_agent(3, 1, sac.SACConfig(hidden=(16,)))
    rng = np.random.default_rng(0)
    f32 = lambda x: torch.tensor(x, dtype=torch.float32)            # noqa: E731
    batch = ReplaySample(obs=f32(rng.normal(size=(B, 3))), act=f32(rng.uniform(-1, 1, (B, 1))),
                         rew=f32(rng.normal(size=B)), next_obs=f32(rng.normal(size=(B, 3))),
                         terminated=torch.zeros(B, dtype=torch.bool))
    return agent, batch


def test_sac_losses_take_the_actor_loss_they_are_given():
    """The hook: sac_losses' actor loss and entropy are the given function's (loss, logp)."""
    agent, batch = _agent_and_batch()
    logp = torch.linspace(-1.0, 1.0, len(batch))

    def constant(policy, critic, batch, alpha, generator=None):
        return torch.tensor(7.0, requires_grad=True), logp
    losses = sac.sac_losses(agent, batch, 0.99, constant)
    assert losses["actor_loss"].item() == 7.0
    assert losses["entropy"].item() == pytest.approx(0.0, abs=1e-7)


def test_the_library_actor_loss_moves_only_the_policy():
    """d loss / d phi = 0 (the critics are frozen in it); d loss / d theta != 0."""
    agent, batch = _agent_and_batch()
    loss, logp = sac.actor_loss(agent.policy, agent.critic, batch, 0.2)
    assert logp.shape == (len(batch),)
    assert np.abs(checks._core.grads(loss, agent.critic)).max() == 0
    assert np.abs(checks._core.grads(loss, agent.policy)).max() > 0


def test_the_checker_hands_a_policy_without_sample():
    agent, batch = _agent_and_batch()
    with pytest.raises(RuntimeError, match="policy.sample does this exercise"):
        nb08_off_policy.PolicyWithoutSample(agent.policy).sample(batch.obs)


def test_learning_check_passes_the_reference(capsys):
    """The library's actor loss: an evaluation return above LEARN_GOAL = -600 after 3,000 steps
    (measured -218; a random policy -1211 +- 67)."""
    history = checks.check_actor_loss_learns(nb08_off_policy.actor_loss_reference)
    assert history.eval_returns[-1] >= nb08_off_policy.LEARN_GOAL
    assert "actor_loss learns" in capsys.readouterr().out


def test_learning_check_fails_an_actor_loss_without_reparameterisation():
    """a~ detached: no gradient of Q reaches theta, only the entropy term trains the policy
    (measured -1428, at the random policy's level)."""
    no_reparameterisation = next(m.fn for m in checks.CHECKERS["actor_loss"].mistakes
                                 if m.fn.__name__ == "no_reparameterisation")
    with pytest.raises(checks.CheckFailed, match=r"expected an evaluation return of at least"):
        checks.check_actor_loss_learns(no_reparameterisation)


def test_random_policy_returns_are_far_below_the_goal():
    """Measured -1211 +- 67 over 20 episodes."""
    returns = random_policy_returns("Pendulum-v1", 20, seed=1, n_envs=20)
    assert returns.shape == (20,)
    assert returns.mean() + 3 * returns.std(ddof=1) / np.sqrt(20) < nb08_off_policy.LEARN_GOAL
