"""The MDPs and logits the statistical tests share: episodic and discounted, with and without
a horizon, so every estimator is measured on the same five problems."""
import numpy as np

from acteach.tabular import chain_mdp, gridworld_mdp, random_mdp

MDPS = {
    "chain": chain_mdp(),
    "grid": gridworld_mdp(),
    "random-discounted": random_mdp(np.random.default_rng(11), n_states=8, gamma=0.9),
    "random-episodic": random_mdp(np.random.default_rng(12), n_states=8, gamma=1.0, n_terminal=2),
    "chain-horizon-discounted": chain_mdp(gamma=0.8, horizon=12),
}


def logits_for(mdp, seed=0):
    """A fixed, moderately random softmax table for an MDP."""
    return np.random.default_rng(seed).normal(size=(mdp.n_states, mdp.n_actions)) * 0.5
