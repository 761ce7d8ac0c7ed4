"""The stored lambda sweep of notebook 09 section 5 (assets/lambda_sweep.json) holds what
assets/lambda_sweep.py produces with its default settings: the same lams, seeds, budget and
grid, and one learning curve and one final return per lam and seed."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("lambda_sweep",
                                                  ROOT / "assets" / "lambda_sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stored():
    return json.loads((ROOT / "assets" / "lambda_sweep.json").read_text())


def test_stored_settings_are_the_scripts_defaults(script, stored):
    config = stored["config"]
    assert (config["lams"], config["seeds"], config["budget"], config["window"]) == (
        script.LAMS, script.SEEDS, script.BUDGET, script.WINDOW)
    assert config["grid"] == script.grid(script.BUDGET).tolist()
    assert [r["lam"] for r in stored["runs"]] == script.LAMS
    assert set(stored["summary"]) == {f"{lam:g}" for lam in script.LAMS}


def test_stored_shapes_and_keys_match_a_fresh_run(script, stored):
    fresh = script.train_lam(0.9, [0], 2_000)
    n_seeds, n_grid = len(stored["config"]["seeds"]), len(stored["config"]["grid"])
    for run in stored["runs"]:
        assert set(run) == set(fresh)
        assert np.shape(run["curves"]) == (n_seeds, n_grid)
        assert np.shape(run["final"]) == (n_seeds,)
        assert np.all(np.isfinite(run["curves"]))
        assert 8 <= min(run["final"]) and max(run["final"]) <= 500
