"""Checker of notebook 07 (online and parallel actor-critic): the capstone, exercise 7.1
`a2c_update`, the whole A2C update from a rollout record, checked two ways.

`check_a2c_update` runs the student's update on fixed records (terminations, truncations, reset
steps, a rollout's end) from fixed networks, and compares what one update leaves behind with the
library's `actor_critic.a2c_update`: the two losses it returns and the gradient each network
was stepped with (the optimisers are plain SGD, so a step is -lr x the clipped gradient, read
back from the parameters; zeroing .grad before or after the step are both right). A wrong
answer is matched against the planted mistakes below to name it.

`check_a2c_update_learns` plugs the update into the library's loop (`train_a2c(config, update=...)`)
and asks for a 100-episode mean return of 200 on CartPole-v1 within a fixed budget and seed. It
sees what one update cannot: one that is right once but leaves the networks or the optimisers
wrong for the next (e.g. a policy frozen for the critic's fit and never unfrozen). Not every
such slip fails: gradients never zeroed still learn here, because clipping in place and Adam
turn the accumulated gradient into a bounded momentum.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable

import numpy as np
import torch

from acteach.checks._core import (CheckFailed, Checker, call_student, compare, mistake, named,
                                  show, stub)

#: The learning check's run: A2C on CartPole-v1, 16 envs x 8 steps, stopped at a 100-episode
#: mean return of 200 or at the budget of 100,000 env steps. The library's update reached 200
#: after 31,000-68,000 steps on seeds 0-11 (a correct update whose float rounding differs is
#: another draw from that spread).
LEARN_GOAL, LEARN_WINDOW = 200.0, 100
#: SGD's learning rate in the single-batch check: a step is -SGD_LR x the clipped gradient.
SGD_LR = 0.1


def learn_config():
    """The A2CConfig of the learning check."""
    from acteach.actor_critic import A2CConfig

    return A2CConfig(n_envs=16, n_steps=8, total_steps=100_000, stop_return=LEARN_GOAL,
                     stop_window=LEARN_WINDOW, seed=0)


# ---------------------------------------------------------------------------------------------
# The cases: fixed records and networks
# ---------------------------------------------------------------------------------------------

def _record(rng: np.random.Generator, T: int, N: int, end_prob: float, autoreset: np.ndarray
            ) -> Any:
    """A (T, N) record as `actor_critic.rollout` gives it, with random observations: episodes
    end (terminated or truncated, alike likely) with probability end_prob at a step, the step
    after an end is a reset step (mask False, reward and flags 0), envs with autoreset True
    start on one. As in a real rollout, obs[t + 1] is next_obs[t] (on a reset step, the
    observation is the ended episode's last one), so V(s_{t+1}) may be read from either."""
    from acteach.sampling import Batch

    terminated, truncated, mask = (np.zeros((T, N), bool) for _ in range(3))
    resetting = autoreset.copy()
    for t in range(T):
        mask[t] = ~resetting
        ends = mask[t] & (rng.random(N) < end_prob)
        kind = rng.random(N) < 0.5
        terminated[t], truncated[t] = ends & kind, ends & ~kind
        resetting = ends
    states = rng.normal(size=(T + 1, N, 4)).astype(np.float32)    # obs[t + 1] = next_obs[t]
    return Batch(obs=states[:-1], act=rng.integers(0, 2, size=(T, N)),
                 rew=np.where(mask, rng.uniform(0.5, 1.5, size=(T, N)), 0.0),
                 next_obs=states[1:], mask=mask, terminated=terminated, truncated=truncated)


def _hand_record() -> Any:
    """T = 4 steps of N = 2 envs: env 0 terminates at t = 1 (t = 2 is its reset step) and runs
    on to the rollout's end; env 1 is truncated at t = 2 (t = 3 is its reset step)."""
    from acteach.sampling import Batch

    states = np.random.default_rng(3).normal(size=(5, 2, 4)).astype(np.float32)
    b = lambda rows: np.array(rows, dtype=bool)                                # noqa: E731
    mask = b([[1, 1], [1, 1], [0, 1], [1, 0]])
    return Batch(obs=states[:-1], act=np.array([[0, 1], [1, 1], [0, 0], [1, 0]]),
                 rew=np.where(mask, 1.0, 0.0), next_obs=states[1:], mask=mask,
                 terminated=b([[0, 0], [1, 0], [0, 0], [0, 0]]),
                 truncated=b([[0, 0], [0, 0], [0, 1], [0, 0]]))


def _networks(seed: int) -> tuple[Any, Any]:
    """A small policy and critic; the critic's output bias is raised to 5 so that V(s') is far
    from 0 (a target that drops or keeps it by mistake then differs clearly)."""
    from acteach.nets import CategoricalPolicy, ValueNet

    torch.manual_seed(seed)
    policy, critic = CategoricalPolicy(4, 2, (16,)), ValueNet(4, (16,))
    with torch.no_grad():
        critic.v_net[-1].bias.add_(5.0)
    return policy, critic


@dataclasses.dataclass(frozen=True)
class UpdateCase:
    """One call: `call` names it in messages; the networks are copied for each call."""

    call: str
    policy: Any
    critic: Any
    record: Any
    config: Any


def _cases() -> list[UpdateCase]:
    from acteach.actor_critic import A2CConfig

    rng = np.random.default_rng(7)
    base = A2CConfig()                                 # normalised advantages, clip 0.5, no bonus
    settings = [
        ("a hand-worked record (N = 2 envs, T = 4 steps: env 0 terminates at t = 1, env 1 is "
         "truncated at t = 2)", _hand_record(), base),
        ("a random record of 4 envs x 8 steps", _record(rng, 8, 4, 0.2, rng.random(4) < 0.3),
         base),
        ("a random record of 3 envs x 5 steps, gamma = 0.9, raw advantages, ent_coef = 0.05, "
         "no clipping", _record(rng, 5, 3, 0.3, np.array([True, False, False])),
         dataclasses.replace(base, gamma=0.9, normalize_adv=False, ent_coef=0.05,
                             max_grad_norm=None)),
        ("a random record of 8 envs x 6 steps, max_grad_norm = 0.1",
         _record(rng, 6, 8, 0.25, rng.random(8) < 0.3),
         dataclasses.replace(base, max_grad_norm=0.1)),
    ]
    cases = []
    for i, (label, record, config) in enumerate(settings):
        policy, critic = _networks(i)
        cases.append(UpdateCase(f"a2c_update(policy, critic, opt_actor, opt_critic, record, "
                                f"config) on {label}", policy, critic, record, config))
    return cases


# ---------------------------------------------------------------------------------------------
# Running an update and comparing what it left behind
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Outcome:
    """What one update did: the losses it returned, and the gradient each network was stepped
    with, -(parameters after - before) / lr, flattened (0 for a network not stepped)."""

    losses: dict
    grad_actor: np.ndarray
    grad_critic: np.ndarray


def _flat(tensors) -> np.ndarray:
    return np.concatenate([t.detach().reshape(-1).double().numpy() for t in tensors])


def _run(update: Callable, case: UpdateCase, student: bool = False) -> Outcome:
    """update on copies of the case's networks, with one SGD optimiser each; the global torch
    random state is left as it was."""
    policy, critic = copy.deepcopy(case.policy), copy.deepcopy(case.critic)
    opt_actor = torch.optim.SGD(policy.parameters(), lr=SGD_LR)
    opt_critic = torch.optim.SGD(critic.parameters(), lr=SGD_LR)
    before = [_flat(net.parameters()) for net in (policy, critic)]
    record = copy.deepcopy(case.record)
    with torch.random.fork_rng():
        if student:
            losses = call_student(update, case.call, policy, critic, opt_actor, opt_critic,
                                  record, case.config)
        else:
            losses = update(policy, critic, opt_actor, opt_critic, record, case.config)
    after = [_flat(net.parameters()) for net in (policy, critic)]
    return Outcome(losses, (before[0] - after[0]) / SGD_LR, (before[1] - after[1]) / SGD_LR)


def _loss_values(call: str, losses: Any) -> np.ndarray:
    """The returned (actor_loss, critic_loss) as floats, or a CheckFailed saying what is
    missing."""
    if not isinstance(losses, dict) or not {"actor_loss", "critic_loss"} <= set(losses):
        raise CheckFailed(
            f"{call}: expected a dict with at least the keys 'actor_loss' and 'critic_loss' "
            f"(floats: train_a2c records them), got "
            f"{sorted(losses) if isinstance(losses, dict) else type(losses).__name__}")
    try:
        return np.array([float(losses["actor_loss"]), float(losses["critic_loss"])])
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckFailed(f"{call}: the losses must be numbers (loss.item()), got "
                          f"{show(losses['actor_loss'])} and {show(losses['critic_loss'])} "
                          f"({e})") from None


#: What the student's outcome is compared on, in order, with the hint when no known mistake
#: matches.
_PARTS = (
    ("the returned [actor_loss, critic_loss]", lambda o: _loss_values("", o.losses),
     "actor_loss = -mean over valid steps of log pi(a|s) * A  - ent_coef * mean entropy; "
     "critic_loss = mean over valid steps of (y - V(s))^2"),
    ("the gradient the critic was stepped with, -(after - before) / lr (SGD, lr 0.1)",
     lambda o: o.grad_critic,
     "the critic steps once (opt_critic.step(), after backward() and clipping) on the gradient "
     "of critic_loss alone: the target y and the advantage are constants"),
    ("the gradient the policy was stepped with, -(after - before) / lr (SGD, lr 0.1)",
     lambda o: o.grad_actor,
     "the policy steps once (opt_actor.step(), after backward() and clipping) on the gradient "
     "of actor_loss, clipped to norm max_grad_norm"),
)


def _same(a: Outcome, b: Outcome) -> bool:
    return all(np.allclose(get(a), get(b), rtol=1e-4, atol=1e-5) for _, get, _ in _PARTS)


def _judge(case: UpdateCase, got: Outcome) -> None:
    expected = _run(reference, case)
    _loss_values(case.call, got.losses)
    for what, get, default in _PARTS:
        exp, out = get(expected), get(got)
        if np.allclose(out, exp, rtol=1e-4, atol=1e-5):
            continue
        known = ((m, _run(m.fn, case)) for m in MISTAKES)                 # the first it matches
        hint = next((m.hint for m, outcome in known
                     if not _same(outcome, expected) and _same(got, outcome)), default)
        compare(f"{case.call}\n  {what}", exp, out, atol=1e-5, hint=hint)
        raise CheckFailed(f"{case.call}\n  {what}: expected {show(exp)}\n  got      {show(out)}"
                          f"\n  hint: {hint}")


def check_a2c_update(fn: Callable) -> None:
    """Exercise 7.1: fn(policy, critic, opt_actor, opt_critic, record, config) must do what
    `acteach.actor_critic.a2c_update` does with separate networks: the n-step targets, the
    advantage (standardised over the valid steps if config.normalize_adv), the two losses
    (means over the valid steps), one step of each optimiser on its network's gradient clipped
    to config.max_grad_norm; and return a dict with 'actor_loss' and 'critic_loss'."""
    cases = _cases()
    for case in cases:
        _judge(case, _run(fn, case, student=True))
    print(f"\u2713 a2c_update: all {len(cases)} records give the library's losses, gradients "
          f"and steps.")


def check_a2c_update_learns(fn: Callable, config: Any = None) -> Any:
    """The second check of exercise 7.1: train_a2c(config, update=fn) on CartPole-v1 must reach
    a mean return of 200 over 100 episodes within config.total_steps (default `learn_config`).
    On failure, shows the student's learning curve beside the reference's and raises
    CheckFailed. -> the student's A2CHistory."""
    from acteach.actor_critic import a2c_update, train_a2c

    config = learn_config() if config is None else config
    call = f"train_a2c(config, update={getattr(fn, '__name__', 'update')})"
    name = getattr(fn, "__name__", "update")
    history = call_student(named(name, lambda: train_a2c(config, progress=False, update=fn)),
                           call)                       # a stub is reported by the update's name
    steps = history.steps_to_mean_return(LEARN_GOAL, LEARN_WINDOW)
    if steps is not None:
        print(f"\u2713 your A2C reached a mean return of {LEARN_GOAL:.0f} over "
              f"{LEARN_WINDOW} episodes after {steps:,} env steps "
              f"({history.seconds:.1f} s).")
        return history
    ref = train_a2c(config, progress=False, update=a2c_update)
    _show_curves(history, ref, config)
    best = _best_mean(history)
    ref_steps = ref.steps_to_mean_return(LEARN_GOAL, LEARN_WINDOW)
    raise CheckFailed(
        f"{call} on CartPole-v1 ({config.n_envs} envs x {config.n_steps} steps, seed "
        f"{config.seed}): expected a mean return of {LEARN_GOAL:.0f} over {LEARN_WINDOW} "
        f"episodes within {config.total_steps:,} env steps (the library's update reached it at "
        f"{ref_steps:,}), got a best {LEARN_WINDOW}-episode mean of {best:.1f}"
        if ref_steps is not None else f"{call}: the reference did not learn either")


def _best_mean(history: Any) -> float:
    ret = np.asarray(history.episode_returns, dtype=float)
    if len(ret) < LEARN_WINDOW:
        return float(ret.mean()) if len(ret) else float("nan")
    return float(np.convolve(ret, np.ones(LEARN_WINDOW) / LEARN_WINDOW, "valid").max())


def _show_curves(student: Any, ref: Any, config: Any) -> None:
    """Both learning curves (mean of the last 100 episodes against env steps), in the cell."""
    from IPython.display import display
    from matplotlib.figure import Figure

    from acteach.plotting import show_figure

    fig = Figure(figsize=(6, 2.8))
    ax = fig.add_subplot()
    for history, label, color in ((ref, "library's a2c_update", "0.5"),
                                  (student, "your a2c_update", "tab:red")):
        ax.plot(history.episode_steps, history.running_mean(LEARN_WINDOW), color=color, lw=2, label=label)
    ax.axhline(LEARN_GOAL, color="k", ls="--", lw=1)
    ax.set(xlabel="env steps", ylabel=f"mean return, last {LEARN_WINDOW}",
           xlim=(0, config.total_steps))
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    display(show_figure(fig))


# ---------------------------------------------------------------------------------------------
# The reference and planted mistakes
# ---------------------------------------------------------------------------------------------

def reference(policy, critic, opt_actor, opt_critic, record, config):
    """The library's `actor_critic.a2c_update` (imported when called: the module brings
    gymnasium)."""
    from acteach.actor_critic import a2c_update

    return a2c_update(policy, critic, opt_actor, opt_critic, record, config)


def _n_step_target(record, next_value: torch.Tensor, gamma: float, slip: str = ""
                   ) -> torch.Tensor:
    """y_t = r_t + gamma * (0 if terminated_t, V(s_{t+1}) if truncated_t or t is the rollout's
    last step, y_{t+1} otherwise), as a student writes it: a loop backwards over t."""
    rew = torch.as_tensor(record.rew, dtype=next_value.dtype)
    terminated = torch.as_tensor(record.terminated)
    truncated = torch.as_tensor(record.truncated)
    if slip == "truncation_as_termination":
        terminated = terminated | truncated
    ahead = torch.zeros_like(next_value[-1]) if slip == "no_bootstrap_at_end" else next_value[-1]
    ys = []
    for t in reversed(range(len(rew))):
        ahead = torch.where(truncated[t], next_value[t], ahead)
        if slip == "no_terminal_mask":
            ahead = torch.where(terminated[t], next_value[t], ahead)
        else:
            ahead = torch.where(terminated[t], 0.0, ahead)
        ahead = rew[t] + gamma * ahead
        ys.append(ahead)
    return torch.stack(ys[::-1])


def _update(policy, critic, opt_actor, opt_critic, record, config, slip: str = ""):
    """The A2C update written from scratch, as the notebook's solution is; `slip` plants one
    mistake."""
    mask = torch.as_tensor(record.mask)
    value = critic(record.obs)                                      # V(s_t), with its graph
    next_value = critic(record.next_obs)
    if slip != "target_not_detached":
        next_value = next_value.detach()                           # the target is a constant
    y = _n_step_target(record, next_value, config.gamma, slip)
    critic_loss = ((y - value)[mask] ** 2).mean()
    adv = (y - value) if slip == "adv_not_detached" else (y - value).detach()
    if slip == "normalised_with_padding" and config.normalize_adv:
        adv = torch.where(mask, adv, 0.0)
        adv = ((adv - adv.mean()) / (adv.std() + 1e-8))[mask]
    else:
        adv = adv[mask]
        if config.normalize_adv and slip != "not_normalised":
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    logp, entropy = policy.log_prob_and_entropy(record.obs, record.act)
    surrogate = ((logp[mask] * adv).sum() / mask.shape[1] if slip == "divided_by_n_envs"
                 else (logp[mask] * adv).mean())
    bonus = 0.0 if slip == "no_entropy_bonus" else config.ent_coef * entropy[mask].mean()
    actor_loss = (surrogate if slip == "actor_sign" else -surrogate) - bonus
    opt_actor.zero_grad()
    opt_critic.zero_grad()
    (actor_loss + critic_loss).backward()
    if config.max_grad_norm is not None and slip != "no_clipping":
        if slip == "clipped_together":
            torch.nn.utils.clip_grad_norm_([*policy.parameters(), *critic.parameters()],
                                           config.max_grad_norm)
        else:
            torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
            torch.nn.utils.clip_grad_norm_(critic.parameters(), config.max_grad_norm)
    opt_actor.step()
    opt_critic.step()
    return {"actor_loss": actor_loss.item(), "critic_loss": critic_loss.item()}


def _planted(slip: str, hint: str):
    return mistake(hint)(named(f"a2c_update_{slip}",
                               lambda *args: _update(*args, slip=slip)))


MISTAKES = (
    _planted("actor_sign", "the actor loss is MINUS the surrogate: minimising "
             "-mean(log pi * A) climbs J; with + the policy descends"),
    _planted("adv_not_detached", "detach the advantage (A = (y - V(s)).detach()): undetached, "
             "the actor loss pushes V_phi too"),
    _planted("target_not_detached", "the target y is a constant (compute V(s') under "
             "torch.no_grad() or .detach() it): the critic regresses toward y, it does not "
             "move y"),
    _planted("no_terminal_mask", "after a terminated step nothing follows: y = r there, no "
             "gamma * V(s') (the (1 - terminated) mask)"),
    _planted("truncation_as_termination", "a truncated step was cut by the time limit, not "
             "ended: its target bootstraps, y = r + gamma * V(s')"),
    _planted("no_bootstrap_at_end", "at the rollout's last step the episode goes on: y = r + "
             "gamma * V(s') there (the n-step target bootstraps where the record stops)"),
    _planted("not_normalised", "standardise the advantages when config.normalize_adv: "
             "(A - mean) / (std + 1e-8) over the valid steps"),
    _planted("normalised_with_padding", "standardise over the valid steps only: the reset "
             "steps (mask False) are not transitions"),
    _planted("divided_by_n_envs", "A2C's actor loss is a mean over the valid steps (divide by "
             "their number), not a sum over steps divided by N"),
    _planted("no_entropy_bonus", "subtract config.ent_coef * (mean entropy over the valid "
             "steps) from the actor loss"),
    _planted("no_clipping", "clip each network's gradient to norm config.max_grad_norm "
             "(torch.nn.utils.clip_grad_norm_) between backward() and step()"),
    _planted("clipped_together", "clip each network's gradient on its own, not the two "
             "together"),
)

def a2c_update_from_scratch(policy, critic, opt_actor, opt_critic, record, config):
    """A correct solution written from scratch (the notebook's)."""
    return _update(policy, critic, opt_actor, opt_critic, record, config)


def a2c_update_numpy_target(policy, critic, opt_actor, opt_critic, record, config):
    """A correct solution: the target from the library's `bootstrapped_return` in numpy, the
    masked means by torch.where and division."""
    from acteach.advantages import bootstrapped_return

    mask = torch.as_tensor(record.mask)
    n = mask.sum()
    y = torch.as_tensor(bootstrapped_return(record.rew, critic.predict(record.next_obs),
                                            record.terminated, record.truncated, record.mask,
                                            config.gamma), dtype=torch.float32)
    value = critic(record.obs)
    critic_loss = torch.where(mask, (y - value) ** 2, 0.0).sum() / n
    adv = torch.where(mask, y - value.detach(), 0.0)
    if config.normalize_adv:
        mean = adv.sum() / n
        std = (torch.where(mask, (adv - mean) ** 2, 0.0).sum() / (n - 1)).sqrt()
        adv = torch.where(mask, (adv - mean) / (std + 1e-8), 0.0)
    logp, entropy = policy.log_prob_and_entropy(record.obs, record.act)
    actor_loss = (-(logp * adv).sum() / n
                  - config.ent_coef * torch.where(mask, entropy, 0.0).sum() / n)
    for opt, loss in ((opt_actor, actor_loss), (opt_critic, critic_loss)):
        opt.zero_grad()
        loss.backward()
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(opt.param_groups[0]["params"], config.max_grad_norm)
        opt.step()
    return {"actor_loss": actor_loss.item(), "critic_loss": critic_loss.item()}


def a2c_update_values_shifted(policy, critic, opt_actor, opt_critic, record, config):
    """A correct solution, CleanRL's way: V(s_{t+1}) is V of the next row's observation (one
    forward pass), the critic run on next_obs only for the rollout's last row."""
    mask = torch.as_tensor(record.mask)
    value = critic(record.obs)
    with torch.no_grad():
        next_value = torch.cat([value[1:], critic(record.next_obs[-1:])])
    y = _n_step_target(record, next_value, config.gamma)
    return _step_on(policy, critic, opt_actor, opt_critic, record, config, mask, value, y)


def _step_on(policy, critic, opt_actor, opt_critic, record, config, mask, value, y):
    critic_loss = ((y - value)[mask] ** 2).mean()
    adv = (y - value.detach())[mask]
    if config.normalize_adv:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    logp, entropy = policy.log_prob_and_entropy(record.obs, record.act)
    actor_loss = -(logp[mask] * adv).mean() - config.ent_coef * entropy[mask].mean()
    opt_actor.zero_grad()
    opt_critic.zero_grad()
    (actor_loss + critic_loss).backward()
    for net, opt in ((policy, opt_actor), (critic, opt_critic)):
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(net.parameters(), config.max_grad_norm)
        opt.step()
        opt.zero_grad()                          # zeroing after the step is as good as before
    return {"actor_loss": actor_loss.item(), "critic_loss": critic_loss.item()}


A2C_UPDATE = Checker(check_a2c_update, reference, stub("a2c_update", "7.1"),
                     mistakes=MISTAKES,
                     rewrites=(a2c_update_from_scratch, a2c_update_numpy_target,
                               a2c_update_values_shifted))
