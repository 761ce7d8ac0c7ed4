"""What the tests share: the five teaching MDPs as fixtures, and the cores under pytest-xdist.

They are episodic and discounted, with and without a horizon. A test that takes `mdp` runs once
per MDP (its id is the MDP's name); parametrizing `mdp_name` picks some of them:

    @pytest.mark.parametrize("mdp_name", ["grid", "chain-horizon-discounted"])
    def test_something(mdp, logits):
        ...

`logits` is the fixed softmax table of `mdp`, `logits_for(mdp, seed)` another one, and `mdps`
the dict of all five by name. The MDPs are built once per test process.

Under pytest-xdist (pyproject's addopts), each worker, and every kernel and JupyterLab it starts,
gets cores / workers threads for torch and BLAS, so the workers do not oversubscribe the cores;
the tests that execute notebooks are collected first.
"""
import os


def _share_the_cores() -> None:
    """OMP/OpenBLAS/MKL threads = cores // xdist workers, before numpy or torch is imported;
    a value already in the environment wins."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                 else os.cpu_count() or 1)
        threads = str(max(1, cores // workers))
        for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(variable, threads)


_share_the_cores()

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from acteach.tabular import chain_mdp, gridworld_mdp, random_mdp  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that execute a notebook first: they are the longest, so under pytest-xdist
    (one test at a time to each worker) they spread over the workers, and the short unit tests
    fill in at the end."""
    items.sort(key=lambda item: item.get_closest_marker("notebook") is None)


_BUILDERS = {
    "chain": lambda: chain_mdp(),
    "grid": lambda: gridworld_mdp(),
    "random-discounted": lambda: random_mdp(np.random.default_rng(11), n_states=8, gamma=0.9),
    "random-episodic": lambda: random_mdp(np.random.default_rng(12), n_states=8, gamma=1.0,
                                          n_terminal=2),
    "chain-horizon-discounted": lambda: chain_mdp(gamma=0.8, horizon=12),
}


def _logits_for(mdp, seed=0):
    """A fixed, moderately random softmax table for an MDP."""
    return np.random.default_rng(seed).normal(size=(mdp.n_states, mdp.n_actions)) * 0.5


@pytest.fixture(scope="session")
def mdps():
    """The five teaching MDPs by name."""
    return {name: build() for name, build in _BUILDERS.items()}


@pytest.fixture(params=list(_BUILDERS))
def mdp_name(request):
    """The name of one teaching MDP: every one in turn, unless the test parametrizes it."""
    return request.param


@pytest.fixture
def mdp(mdps, mdp_name):
    """The teaching MDP named mdp_name."""
    return mdps[mdp_name]


@pytest.fixture
def logits(mdp):
    """The fixed softmax table of `mdp` (seed 0)."""
    return _logits_for(mdp)


@pytest.fixture
def logits_for():
    """logits_for(mdp, seed=0): a fixed, moderately random softmax table for an MDP."""
    return _logits_for
