"""Bad input raises a ValueError that names the argument, never a silent wrong number (an
unknown config field: a TypeError naming it). Issue 14's classes are in BAD14 and below."""
import dataclasses

import numpy as np
import pytest
import torch

from acteach.actor_critic import A2CConfig, train_a2c
from acteach.batch_actor_critic import actor_critic_losses, train_batch_actor_critic
from acteach.advantages import episode_ends
from acteach.baselines import batch_mean_baseline
from acteach.critic import FitConfig, critic_loss, fit_value_net
from acteach.decomposition import control_variate_statistics
from acteach.discount import road_mdp
from acteach.estimators import GradientPool, estimate_gradient, gradient_statistics, summarize
from acteach.labs import CriticLab, DiscountLab, QLab, VarianceLab
from acteach.nets import CategoricalPolicy, TableValue, ValueNet
from acteach.q_values import mc_q_estimate
from acteach.replay import ReplayBuffer
from acteach.returns import discounts, reward_to_go, total_return
from acteach.sac import SACConfig, train_sac
from acteach.sampling import Batch, sample_episodes
from acteach.tabular import (TabularMDP, chain_mdp, cosine, exact_policy_gradient, exact_values,
                             random_mdp, rollout_returns, row_cosines, sample_trajectories,
                             step_cap_message)
from acteach.training import single_threaded

P2 = np.full((2, 2, 2), 0.5)        # 2 states, 2 actions, uniform moves
R2 = np.zeros((2, 2))
MU2 = np.array([1.0, 0.0])
RNG = np.random.default_rng(0)
CHAIN = chain_mdp(3)
ZEROS = np.zeros((CHAIN.n_states, CHAIN.n_actions))


def terminal_unreachable():
    P = np.zeros((3, 2, 3))
    P[0, :, 1] = P[1, :, 0] = 1.0     # 0 <-> 1 for ever; state 2 terminal but never reached
    P[2, :, 2] = 1.0
    return TabularMDP(P, np.zeros((3, 2)), [1, 0, 0], gamma=1.0, terminal=[False, False, True])


BAD = {
    "P not (S, A, S)": ("P", lambda: TabularMDP(np.ones((2, 2)), R2, MU2)),
    "R shape disagrees with P": ("R", lambda: TabularMDP(P2, np.zeros((3, 2)), MU2)),
    "mu0 shape disagrees": ("mu0", lambda: TabularMDP(P2, R2, [1.0])),
    "P rows do not sum to 1": ("P", lambda: TabularMDP(P2 * 0.9, R2, MU2)),
    "negative probability": ("P", lambda: TabularMDP(
        np.stack([[[1.5, -0.5], [0.5, 0.5]]] * 2), R2, MU2)),
    "mu0 does not sum to 1": ("mu0", lambda: TabularMDP(P2, R2, [0.5, 0.2])),
    "empty start distribution": ("mu0", lambda: TabularMDP(P2, R2, [0.0, 0.0])),
    "gamma above 1": ("gamma", lambda: TabularMDP(P2, R2, MU2, gamma=1.5)),
    "gamma negative": ("gamma", lambda: TabularMDP(P2, R2, MU2, gamma=-0.1)),
    "horizon zero": ("horizon", lambda: TabularMDP(P2, R2, MU2, horizon=0)),
    "horizon not an integer": ("horizon", lambda: TabularMDP(P2, R2, MU2, horizon=2.5)),
    "NaN reward in the MDP": ("R", lambda: TabularMDP(P2, [[np.nan, 0], [0, 0]], MU2)),
    "an MDP that cannot terminate": ("mdp", lambda: TabularMDP(P2, R2, MU2, gamma=1.0)),
    "terminal state unreachable": ("mdp", terminal_unreachable),
    "start on a terminal state": ("mu0", lambda: TabularMDP(
        P2, R2, [0.5, 0.5], horizon=3, terminal=[False, True])),
    "terminal of the wrong shape": ("terminal", lambda: TabularMDP(
        P2, R2, MU2, horizon=3, terminal=[True])),
    "logits of the wrong shape": ("logits", lambda: exact_values(CHAIN, np.zeros((3, 2)))),
    "NaN logits": ("logits", lambda: exact_values(CHAIN, np.full(ZEROS.shape, np.nan))),
    "N = 0 trajectories": ("n", lambda: sample_trajectories(CHAIN, ZEROS, 0, RNG)),
    "negative N in the estimator": ("n_trajectories", lambda: estimate_gradient(
        CHAIN, ZEROS, -3, "reinforce", RNG)),
    "zero repeats": ("n_repeats", lambda: gradient_statistics(
        CHAIN, ZEROS, "reinforce", 5, 0, RNG)),
    "unknown method": ("method", lambda: estimate_gradient(CHAIN, ZEROS, 5, "reinfroce", RNG)),
    "unknown option": ("k", lambda: estimate_gradient(CHAIN, ZEROS, 5, "reinforce", RNG, k=3)),
    "bad discount option": ("discount_option", lambda: estimate_gradient(
        CHAIN, ZEROS, 5, "reward_to_go", RNG, discount_option=3)),
    "NaN rewards": ("rew", lambda: reward_to_go([[np.nan]], [[True]])),
    "rewards and mask disagree": ("mask", lambda: reward_to_go(np.zeros((3, 2)),
                                                               np.ones((3, 1), bool))),
    "rewards not (T, N)": ("rew", lambda: total_return(np.zeros(3), np.ones(3, bool))),
    "mask not bool": ("mask", lambda: reward_to_go(np.zeros((2, 2)), np.ones((2, 2)))),
    "gamma out of range for returns": ("gamma", lambda: reward_to_go(
        np.zeros((2, 2)), np.ones((2, 2), bool), gamma=2.0)),
}


# ---------------------------------------------------------------------------------------------
# Issue 14: every bad input refused by name (ValueError unless stated), never a silent number
# ---------------------------------------------------------------------------------------------


NAN = float("nan")
LOGITS4 = np.zeros((4, 2))                       # chain_mdp(3): 3 states + the goal


def one_action_mdp():
    P = np.zeros((3, 1, 3))
    P[0, 0, 1] = P[1, 0, 2] = P[2, 0, 2] = 1.0
    return TabularMDP(P, np.ones((3, 1)), [1, 0, 0], terminal=[False, False, True])


def replay_add(buffer=None, **change):
    buffer = buffer or ReplayBuffer(4, 2)
    row = dict(obs=np.zeros((1, 2)), act=np.zeros(1, np.int64), rew=np.zeros(1),
               next_obs=np.zeros((1, 2)), terminated=np.zeros(1, bool))
    row.update(change)
    return buffer.add(**row)


def tiny_nets():
    return CategoricalPolicy(2, 2, (4,)), ValueNet(2, (4,))


def losses_with(**change):
    policy, critic = tiny_nets()
    args = dict(obs=torch.zeros(3, 1, 2), act=np.zeros((3, 1), np.int64), rew=np.zeros((3, 1)),
                next_obs=torch.zeros(3, 1, 2), terminated=np.zeros((3, 1), bool),
                mask=np.ones((3, 1), bool), gamma=0.9)
    args.update(change)
    return actor_critic_losses(policy, critic, **args)


def set_field(config, name, value):
    setattr(config, name, value)


def pool_with_twice_the_label():
    pool = GradientPool.sample(CHAIN, LOGITS4, 20, 0)
    pool.add("a", "reinforce")
    pool.add("a", "reward_to_go")


def rollouts(states, actions, times=None):
    times = np.zeros(len(np.atleast_1d(states)), np.int64) if times is None else times
    return rollout_returns(CHAIN, LOGITS4, states, actions, times, 0)


def enter(context):
    with context:
        pass


BAD14 = {
    # NaN / inf where data enters
    "replay: NaN observation": ("obs", lambda: replay_add(obs=np.array([[NAN, 0.0]]))),
    "replay: inf next observation": ("next_obs", lambda: replay_add(
        next_obs=np.array([[np.inf, 0.0]]))),
    "replay: NaN reward": ("rew", lambda: replay_add(rew=np.array([NAN]))),
    "replay: action -1": ("act", lambda: replay_add(act=np.array([-1]))),
    "replay: NaN continuous action": ("act", lambda: replay_add(
        ReplayBuffer(4, 2, act_dim=1), act=np.array([[NAN]]))),
    "replay: float action in a discrete buffer": ("act", lambda: replay_add(
        act=np.array([0.5]))),
    "baseline_v: NaN value table": ("value", lambda: estimate_gradient(
        CHAIN, LOGITS4, 5, "baseline_v", RNG, value=np.full(4, NAN))),
    "baseline_v: NaN from a value function": ("value", lambda: estimate_gradient(
        CHAIN, LOGITS4, 5, "baseline_v", RNG, value=lambda obs: np.full(obs.shape, NAN))),
    "critic_loss: NaN reward": ("rew", lambda: critic_loss(
        TableValue(4), np.array([0, 1]), np.array([NAN, 0.0]), np.array([1, 2]),
        np.zeros(2, bool), np.ones(2, bool))),
    "fit_value_net: NaN observations": ("batch.obs", lambda: fit_value_net(
        ValueNet(2, (4,)), Batch(obs=np.full((2, 1, 2), NAN), act=np.zeros((2, 1), np.int64),
                                 rew=np.zeros((2, 1)), next_obs=np.zeros((2, 1, 2)),
                                 mask=np.ones((2, 1), bool), terminated=np.zeros((2, 1), bool),
                                 truncated=np.zeros((2, 1), bool)), FitConfig(steps=1))),
    "gradient_statistics: NaN reference": ("reference", lambda: gradient_statistics(
        CHAIN, LOGITS4, "reinforce", 2, 4, RNG, reference=np.full((4, 2), NAN))),
    "gradient_statistics: reference of the wrong shape": ("reference", lambda: (
        gradient_statistics(CHAIN, LOGITS4, "reinforce", 2, 4, RNG, reference=np.zeros(3)))),
    "summarize: NaN estimates": ("estimates", lambda: summarize(
        "x", np.full((3, 2), NAN), np.zeros(2), 1)),
    "cosine: NaN": ("a", lambda: cosine([NAN, 1.0], [1.0, 1.0])),
    "row_cosines: inf": ("b", lambda: row_cosines(np.ones((2, 2)), np.full((2, 2), np.inf))),
    "TabularMDP: NaN in P": ("P", lambda: TabularMDP(np.full((2, 2, 2), NAN), R2, MU2)),
    "TabularMDP: NaN in mu0": ("mu0", lambda: TabularMDP(P2, R2, [NAN, 1.0])),
    "logits as strings": ("logits", lambda: exact_values(CHAIN, np.full((4, 2), "a"))),
    # ranges
    "actor_critic_losses: gamma = 2": ("gamma", lambda: losses_with(gamma=2.0)),
    "log_prob: float action 0.5": ("act", lambda: tiny_nets()[0].log_prob(
        torch.zeros(3, 2), torch.tensor([0.5, 1.0, 0.0]))),
    "log_prob_and_entropy: float actions": ("act", lambda: tiny_nets()[0].log_prob_and_entropy(
        torch.zeros(2, 2), np.array([0.0, 1.0]))),
    "FitConfig: lr = inf": ("lr", lambda: FitConfig(lr=float("inf"))),
    "FitConfig: steps = True": ("steps", lambda: FitConfig(steps=True)),
    "SACConfig: learning_starts > total_steps": ("learning_starts", lambda: SACConfig(
        total_steps=1_000, learning_starts=5_000)),
    "SACConfig: learning_starts = total_steps": ("learning_starts", lambda: SACConfig(
        total_steps=1_000, learning_starts=1_000)),
    "gradient_statistics: n_repeats = 1": ("n_repeats", lambda: gradient_statistics(
        CHAIN, LOGITS4, "reinforce", 5, 1, RNG)),
    "rollout_returns: action out of range": ("actions", lambda: rollouts([0], [2])),
    "rollout_returns: state out of range": ("states", lambda: rollouts([7], [0])),
    # truthy non-bools as flags
    "discount_option = True": ("discount_option", lambda: estimate_gradient(
        CHAIN, LOGITS4, 5, "reward_to_go", RNG, discount_option=True)),
    "A2CConfig: normalize_adv = 'no'": ("normalize_adv", lambda: A2CConfig(normalize_adv="no")),
    "A2CConfig: shared = 1": ("shared", lambda: A2CConfig(shared=1)),
    "SACConfig: autotune = 'yes'": ("autotune", lambda: SACConfig(autotune="yes")),
    "random_mdp: n_terminal = True": ("n_terminal", lambda: random_mdp(RNG, n_terminal=True)),
    "batch_mean_baseline: leave_one_out = 'yes'": ("leave_one_out", lambda: batch_mean_baseline(
        np.zeros(4), 2, leave_one_out="yes")),
    "batch_mean_baseline: NaN return": ("returns", lambda: batch_mean_baseline(
        np.array([NAN, 1.0]), 2)),
    "GradientPool.add: by_length = 1": ("by_length", lambda: GradientPool.sample(
        CHAIN, LOGITS4, 4, 0).add("a", "reinforce", by_length=1)),
    # a bad value set after construction is refused there
    "A2CConfig: lr_actor = inf set later": ("lr_actor", lambda: set_field(
        A2CConfig(), "lr_actor", float("inf"))),
    "SACConfig: gamma = 2 set later": ("gamma", lambda: set_field(SACConfig(), "gamma", 2.0)),
    "FitConfig: target misspelt, set later": ("target", lambda: set_field(
        FitConfig(), "target", "bootstraped")),
    # shape and type surprises
    "episode_ends: flags of 2": ("mask", lambda: episode_ends(
        np.zeros((2, 1)), np.zeros((2, 1)), np.full((2, 1), 2))),
    "episode_ends: terminated of another shape": ("terminated", lambda: episode_ends(
        np.zeros((3, 1)), np.zeros((2, 1)), np.ones((2, 1)))),
    "rollout_returns: states and actions of different lengths": ("actions", lambda: rollouts(
        [0, 1, 2], [0])),
    "rollout_returns: float states": ("states", lambda: rollouts([0.5], [0])),
    "discounts: T = 2.5": ("T", lambda: discounts(2.5, 0.9)),
    "discounts: T = -1": ("T", lambda: discounts(-1, 0.9)),
    "TabularMDP: terminal = [0, 2]": ("terminal", lambda: TabularMDP(
        P2, R2, MU2, horizon=3, terminal=[0, 2])),
    "VarianceLab: two estimators under one label": ("estimators", lambda: VarianceLab(
        CHAIN, LOGITS4, [("a", "reinforce"), ("a", "reward_to_go")], pool=40)),
    "GradientPool: a label added twice": ("label", pool_with_twice_the_label),
    "exact_values: not an MDP": ("mdp", lambda: exact_values("chain", LOGITS4)),
    # seeds and generators
    "rng = None": ("rng", lambda: sample_trajectories(CHAIN, LOGITS4, 3, None)),
    "rng = -1": ("rng", lambda: sample_trajectories(CHAIN, LOGITS4, 3, -1)),
    "rng = 1.5": ("rng", lambda: random_mdp(1.5)),
    "rng = True": ("rng", lambda: estimate_gradient(CHAIN, LOGITS4, 3, "reinforce", True)),
    "mc_q_estimate: rng = 'a'": ("rng", lambda: mc_q_estimate(
        CHAIN, LOGITS4, np.zeros((1, 1), int), np.zeros((1, 1), int), np.ones((1, 1), bool),
        1, "a")),
    "replay sample: rng = None": ("rng", lambda: (lambda b: (replay_add(b), b.sample(2, None)))(
        ReplayBuffer(4, 2))),
    "A2CConfig: seed = -1": ("seed", lambda: A2CConfig(seed=-1)),
    "SACConfig: seed = -1": ("seed", lambda: SACConfig(seed=-1)),
    "FitConfig: seed = -1": ("seed", lambda: FitConfig(seed=-1)),
    "single_threaded: seed = -1": ("seed", lambda: enter(single_threaded(-1))),
    "sample_episodes: seed = -1": ("seed", lambda: sample_episodes(
        "CartPole-v1", tiny_nets()[0], 1, seed=-1)),
    "road_mdp: seed = -1": ("seed", lambda: road_mdp(seed=-1)),
    # huge sizes, refused before allocating
    "10^10 trajectories": ("n", lambda: sample_trajectories(CHAIN, LOGITS4, 10**10, RNG)),
    "random_mdp with 10^5 states": ("n_states", lambda: random_mdp(RNG, n_states=10**5)),
    "chain_mdp with 10^6 states": ("n_states", lambda: chain_mdp(10**6)),
    "replay buffer of 10^10 rows": ("capacity", lambda: ReplayBuffer(10**10, 4)),
    "estimate_gradient from 10^10 trajectories": ("n_trajectories", lambda: estimate_gradient(
        CHAIN, LOGITS4, 10**10, "reinforce", RNG)),
    "gradient_statistics with 10^9 repeats": ("n_repeats", lambda: gradient_statistics(
        CHAIN, LOGITS4, "reinforce", 10, 10**9, RNG)),
    "VarianceLab with a pool of 10^10": ("pool", lambda: VarianceLab(
        CHAIN, LOGITS4, ["reinforce"], pool=10**10)),
    "control_variate_statistics: n_repeats = 1": ("n_repeats", lambda: (
        control_variate_statistics(CHAIN, LOGITS4, 5, 1, RNG))),
    # labs
    "VarianceLab: empty N values": ("n_trajectories_values", lambda: VarianceLab(
        CHAIN, LOGITS4, ["reinforce"], pool=40, n_trajectories_values=[])),
    "VarianceLab: fractional N": ("n_trajectories_values", lambda: VarianceLab(
        CHAIN, LOGITS4, ["reinforce"], pool=40, n_trajectories_values=[2.5])),
    "VarianceLab: an MDP with one action": ("mdp", lambda: VarianceLab(
        one_action_mdp(), np.zeros((3, 1)), ["reinforce"], pool=40)),
    "VarianceLab: seed -1": ("seed", lambda: VarianceLab(
        CHAIN, LOGITS4, ["reinforce"], pool=400).update(10, -1)),
    "QLab: seed 2.5": ("seed", lambda: QLab(CHAIN, LOGITS4, pool=400).update(1, 10, 2.5)),
    "DiscountLab: seed -1": ("seed", lambda: DiscountLab(CHAIN, LOGITS4, pool=400, seed=-1)),
    "QLab: an MDP with one action": ("mdp", lambda: QLab(one_action_mdp(), np.zeros((3, 1)))),
    "CriticLab: lr 0": ("lr_values", lambda: CriticLab(CHAIN, LOGITS4, lr_values=[0.0])),
    "CriticLab: fractional steps": ("steps_values", lambda: CriticLab(
        CHAIN, LOGITS4, steps_values=[0.5])),
    "CriticLab: fractional batch": ("batch_values", lambda: CriticLab(
        CHAIN, LOGITS4, batch_values=[2.5])),
    # the exact ground truth where it cannot be computed
    "exact_values: a saturated policy at gamma = 1": ("logits", lambda: exact_values(
        chain_mdp(3, slip=0.0), np.tile([800.0, 0.0], (4, 1)))),
    "exact_policy_gradient: a near-deterministic policy": ("logits", lambda: (
        exact_policy_gradient(chain_mdp(3, slip=0.0), np.tile([15.0, 0.0], (4, 1))))),
}


@pytest.mark.parametrize("case", {**BAD, **BAD14})
def test_bad_input_raises_value_error_naming_the_argument(case):
    argument, make = {**BAD, **BAD14}[case]
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value).startswith(f"{argument}:"), str(info.value)


@pytest.mark.parametrize("make, name, suggestion", [
    (A2CConfig, "lr_actr", "lr_actor"), (SACConfig, "learning_start", "learning_starts"),
    (FitConfig, "step", "steps"), (A2CConfig, "n_env", "n_envs")])
def test_config_refuses_an_unknown_attribute_after_construction(make, name, suggestion):
    config = make()
    before = dataclasses.asdict(config)
    with pytest.raises(TypeError, match=f"^{name}: .* did you mean {suggestion}\\?"):
        setattr(config, name, 1e-2)
    assert not hasattr(config, name) and dataclasses.asdict(config) == before
    config.validate()


def test_a_refused_value_keeps_the_old_one():
    config = A2CConfig()
    with pytest.raises(ValueError, match="^gamma:"):
        config.gamma = 2.0
    assert config.gamma == 0.99
    config.gamma = 0.5                                       # a good value is taken
    assert dataclasses.replace(config, n_envs=2).gamma == 0.5


@pytest.mark.parametrize("train, env_id, message", [
    (train_a2c, "Pendulum-v1", "env_id: A2C needs a Discrete action space; Pendulum-v1 has Box("),
    (train_batch_actor_critic, "Pendulum-v1",
     "env_id: batch actor-critic needs a Discrete action space; Pendulum-v1 has Box("),
    (train_sac, "CartPole-v1",
     "env_id: SAC needs a continuous (Box) action space; CartPole-v1 has Discrete(2)"),
])
def test_an_algorithm_refuses_an_env_of_the_wrong_kind_by_name(train, env_id, message):
    config = (SACConfig(env_id=env_id, total_steps=10, learning_starts=0)
              if train is train_sac else A2CConfig(env_id=env_id, total_steps=10))
    with pytest.raises(ValueError) as info:
        train(config)
    assert str(info.value).startswith(message), str(info.value)


def test_an_int_seed_is_a_fresh_generator_everywhere_an_rng_is_taken():
    a = estimate_gradient(CHAIN, LOGITS4, 5, "reinforce", 3)
    b = estimate_gradient(CHAIN, LOGITS4, 5, "reinforce", np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    batch = sample_trajectories(CHAIN, LOGITS4, 4, 7)
    np.testing.assert_array_equal(batch.act, sample_trajectories(
        CHAIN, LOGITS4, 4, np.random.default_rng(7)).act)
    assert random_mdp(0).n_states == 10
    assert gradient_statistics(CHAIN, LOGITS4, "reinforce", 2, 3, 0).n_repeats == 3


def test_logits_as_a_tensor_that_requires_grad_are_read_as_numbers():
    logits = torch.zeros(4, 2, requires_grad=True)
    np.testing.assert_array_equal(exact_values(CHAIN, logits).V, exact_values(CHAIN, LOGITS4).V)


def test_episode_ends_of_integer_flags_is_a_bool_mask():
    ends = episode_ends(np.array([[0], [1]]), np.zeros((2, 1), int), np.ones((2, 1), int))
    assert ends.dtype == bool and ends[:, 0].tolist() == [False, True]


def test_the_step_cap_message_names_the_real_cause():
    """gamma = 0.99999 is already < 1: the advice is a horizon or a gamma whose discount tail
    fits the cap, never "set gamma < 1"."""
    slow = chain_mdp(3, gamma=0.99999)
    message = step_cap_message(slow, "1 of 1 trajectories")
    assert message.startswith("mdp: ") and "gamma < 1" not in message
    assert "gamma = 0.99999" in message and "2,302,574 steps" in message
    assert "a gamma of at most 0.99976" in message
    assert "gamma < 1" in step_cap_message(chain_mdp(3), "1 of 1 trajectories")
