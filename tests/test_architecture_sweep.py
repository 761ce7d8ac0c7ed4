"""The stored sweep of notebook 09 section 1 (assets/architecture_sweep.json) holds what
assets/architecture_sweep.py produces with its default settings: the same designs, seeds, budget
and grid, one curve and one final return per design and seed, and the shared networks it keeps,
which rebuild into trained networks on one trunk."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from acteach.actor_critic import A2CConfig
from acteach.architecture import shared_networks, trunk_parameters

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("architecture_sweep",
                                                  ROOT / "assets" / "architecture_sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return _script()


@pytest.fixture(scope="module")
def stored():
    return json.loads((ROOT / "assets" / "architecture_sweep.json").read_text())


def test_stored_settings_are_the_scripts_defaults(script, stored):
    config = stored["config"]
    assert (config["coefs"], config["seeds"], config["budget"], config["keep"],
            config["window"]) == (script.COEFS, script.SEEDS, script.BUDGET, script.KEEP,
                                  script.WINDOW)
    assert config["grid"] == script.grid(script.BUDGET).tolist()
    assert [d["name"] for d in stored["designs"]] == [
        script.design_name(d) for d in script.designs(script.COEFS)]


def test_stored_shapes_and_keys_match_a_fresh_run(script, stored):
    fresh = script.train_design({"shared": True, "value_coef": 0.5}, [0], 2_000, keep=1)
    n_seeds, n_grid = len(stored["config"]["seeds"]), len(stored["config"]["grid"])
    for design in stored["designs"]:
        assert set(design) - {"value_coef"} == set(fresh) - {"value_coef"}
        assert np.shape(design["curves"]) == (n_seeds, n_grid)
        assert np.shape(design["final"]) == (n_seeds,)
        assert len(design["networks"]) == (stored["config"]["keep"] if design["shared"] else 0)
        assert np.all(np.isfinite(design["curves"])) and 8 <= min(design["final"])
        assert max(design["final"]) <= 500


def test_stored_networks_rebuild_on_one_trunk(stored):
    hidden = A2CConfig().hidden
    for design in stored["designs"]:
        for weights in design["networks"]:
            policy, critic = shared_networks(weights, 4, 2, hidden)
            assert len(trunk_parameters(policy, critic)) == 2 * len(hidden)
