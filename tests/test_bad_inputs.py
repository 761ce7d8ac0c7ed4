"""Bad input raises a ValueError that names the argument, never a silent wrong number."""
import numpy as np
import pytest

from acteach.estimators import estimate_gradient, gradient_statistics
from acteach.returns import reward_to_go, total_return
from acteach.tabular import TabularMDP, chain_mdp, exact_values, sample_trajectories

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


@pytest.mark.parametrize("case", BAD)
def test_bad_input_raises_value_error_naming_the_argument(case):
    argument, make = BAD[case]
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value).startswith(f"{argument}:"), str(info.value)
