"""The stored sweep of notebook 06 (assets/batch_ac_sweep.json) holds what
assets/batch_ac_sweep.py produces with its settings: the same methods, learning rates, seeds,
budget and grid; one run per method, lr and selection seed, one per method and evaluation seed
at the best lr the selection runs give, and one gradient measurement per actor-critic method,
checkpoint seed and checkpoint, each with the keys a fresh run or measurement has."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("batch_ac_sweep",
                                                  ROOT / "assets" / "batch_ac_sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stored():
    return json.loads((ROOT / "assets" / "batch_ac_sweep.json").read_text())


def test_stored_settings_are_the_scripts(script, stored):
    assert stored["settings"] == json.loads(json.dumps(script.settings()))


def test_the_best_lr_is_the_one_the_selection_runs_pick(script, stored):
    assert stored["best_lr"] == script.best_lrs(stored["selection"])


def test_one_run_per_method_lr_and_seed_with_a_curve_on_the_grid(script, stored):
    selection = {(r["method"], r["lr"], r["seed"]) for r in stored["selection"]}
    assert selection == {(m, lr, s) for m in script.METHODS for lr in script.LRS
                         for s in script.SELECTION_SEEDS}
    evaluation = {(r["method"], r["lr"], r["seed"]) for r in stored["evaluation"]}
    assert evaluation == {(m, stored["best_lr"][m], s) for m in script.METHODS
                          for s in script.EVALUATION_SEEDS}
    for r in stored["selection"] + stored["evaluation"]:
        assert len(r["curve"]) == len(script.GRID)
        assert r["auc"] == pytest.approx(sum(r["curve"]) / len(r["curve"]), abs=0.01)


def test_a_fresh_run_has_the_stored_keys(script, stored):
    fresh = script.run((next(iter(script.METHODS)), 1e-3, 0, 1_000))
    assert all(set(r) == set(fresh) for r in stored["selection"] + stored["evaluation"])


def test_one_measurement_per_checkpoint_with_every_weight(script, stored):
    from acteach.labs.batch_ac import WEIGHTS, checkpoint_gradients

    cells = {(c["method"], c["seed"], c["steps"]) for c in stored["checkpoints"]}
    assert cells == {(m, s, c) for m in script.METHODS
                     if script.METHODS[m][0] == "actor_critic"
                     for s in script.EVALUATION_SEEDS[:script.CHECKPOINT_SEEDS]
                     for c in script.CHECKPOINTS}
    history = script.train("actor-critic, 1 critic step",
                           script.config_of("actor-critic, 1 critic step", 1e-3, 0, 500))
    fresh = checkpoint_gradients(history.policy, history.critic, 0.99, 2, 2, 4, seed=0)
    for c in stored["checkpoints"]:
        assert set(c) == {"method", "lr", "seed", "steps", *fresh}
        for weight in WEIGHTS:
            assert set(c[weight]) == set(fresh[weight])
            assert c[weight]["variance"] > 0 and -1 <= c[weight]["cosine"] <= 1


def test_checkpoint_gradients_names_a_bad_size():
    from acteach.labs.batch_ac import checkpoint_gradients

    with pytest.raises(ValueError, match="^n_estimates:"):
        checkpoint_gradients(None, None, 0.99, 8, 1, 10, seed=0)
    with pytest.raises(ValueError, match="^n_reference:"):
        checkpoint_gradients(None, None, 0.99, 8, 2, 1, seed=0)
