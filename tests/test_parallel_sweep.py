"""The stored sweep of notebook 07's N x T grid (assets/parallel_grid_sweep.json) has the
settings and the shapes that assets/parallel_grid_sweep.py writes, and a run of the script
reproduces a stored run."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from acteach.parallel import GRID_N_ENVS, GRID_N_STEPS, SWEEP_FILE, grid_cells, load_grid


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("parallel_grid_sweep",
                                                  SWEEP_FILE.with_suffix(".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stored():
    return load_grid(SWEEP_FILE)


def test_the_stored_settings_are_the_scripts_defaults(script, stored):
    settings, _ = stored
    assert {k: v for k, v in settings.items() if k != "machine"} == \
        script.settings(script.SEEDS, script.BUDGET)
    assert settings["total_steps"] >= 20_000 and len(settings["seeds"]) >= 3


def test_every_cell_has_every_seed_and_full_curves(stored):
    settings, runs = stored
    cells = grid_cells(runs)
    assert sorted(cells) == [(n, t) for n in GRID_N_ENVS for t in GRID_N_STEPS]
    for (n, t), cell in cells.items():
        assert [r.seed for r in cell] == settings["seeds"]
        for run in cell:
            assert settings["total_steps"] <= run.env_steps < settings["total_steps"] + n * t
            assert run.curve.shape == run.curve_seconds.shape == (settings["points"],)
            assert np.isfinite(run.final_return) and run.seconds > 0
            assert 0 < run.final_return <= 500 and np.nanmax(run.curve) <= 500   # CartPole-v1


def test_the_script_reproduces_a_stored_run(script, stored):
    """The cheapest cell (16 envs x 16 steps), seed 0, run again: the same returns; the
    seconds are this machine's."""
    settings, runs = stored
    again = script.run((16, 16, settings["seeds"][0], settings["total_steps"]))
    kept = next(r for r in runs if r.key == (16, 16) and r.seed == settings["seeds"][0])
    assert again["updates"] == kept.updates and again["env_steps"] == kept.env_steps
    assert again["final_return"] == pytest.approx(kept.final_return, abs=0.01)


def test_the_entropy_part_has_the_scripts_settings_and_every_run(script):
    entropy = json.loads(SWEEP_FILE.read_text())["entropy"]
    assert entropy["settings"] == {"cell": list(script.ENTROPY_CELL),
                                   "ent_coefs": list(script.ENTROPY_COEFS),
                                   "seeds": list(script.ENTROPY_SEEDS), "total_steps": 20_000,
                                   "window": script.WINDOW}
    runs = entropy["runs"]
    assert [(r["ent_coef"], r["seed"]) for r in runs] == [
        (c, s) for c in script.ENTROPY_COEFS for s in script.ENTROPY_SEEDS]
    for r in runs:
        assert r["peak_return"] >= r["final_return"] > 0
        assert 0 < r["entropy_end"] <= np.log(2) and 0 < r["entropy_start"] <= np.log(2)
