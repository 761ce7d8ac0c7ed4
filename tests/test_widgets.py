"""The variance lab: its update function gives the statistics the widget shows."""
import numpy as np
import pytest

from acteach.estimators import gradient_statistics
from acteach.tabular import chain_mdp
from acteach.widgets import VarianceLab

MDP = chain_mdp()
LOGITS = np.tile([0.0, 1.0], (MDP.n_states, 1))


@pytest.fixture(scope="module")
def lab():
    return VarianceLab(MDP, LOGITS, ["reinforce", ("rtg", "reward_to_go")], pool=4000)


def test_update_gives_one_row_per_estimator(lab):
    stats = lab.update(n=10, seed=0)
    assert [s.method for s in stats] == ["reinforce", "rtg"]
    assert all(s.n_repeats == 400 and s.n_trajectories == 10 for s in stats)
    assert [s.method for s in lab.update(10, 0, labels=["rtg"])] == ["rtg"]


def test_lab_statistics_agree_with_gradient_statistics(lab):
    # Same estimator, independent samples: variances within 4 standard errors (seeds 0 and 1).
    ours = lab.update(n=5, seed=0)[1]
    ref = gradient_statistics(MDP, LOGITS, "reward_to_go", 5, 800, np.random.default_rng(1))
    assert abs(ours.variance - ref.variance) < 4 * np.hypot(ours.variance_se, ref.variance_se)


def test_larger_n_lowers_the_variance(lab):
    v1, v20 = lab.update(1, 0)[0].variance, lab.update(20, 0)[0].variance
    assert v20 < v1 / 5


def test_render_draws_a_png_that_changes_with_n(lab):
    png1, table = lab.render(lab.update(1, 0))
    png2, _ = lab.render(lab.update(50, 0))
    assert png1[:8] == b"\x89PNG\r\n\x1a\n" and png1 != png2
    assert "reinforce" in table and "rtg" in table


def test_widget_builds_and_redraws(lab):
    box = lab.widget(n=5)
    n_slider = box.children[0].children[0]
    image = box.children[2]
    before = image.value
    n_slider.value = 20
    assert image.value != before and "N = 20" in box.children[3].value


def test_bad_lab_arguments():
    with pytest.raises(ValueError, match="^estimators:"):
        VarianceLab(MDP, LOGITS, ["nope"])
    with pytest.raises(ValueError, match="^pool:"):
        VarianceLab(MDP, LOGITS, ["reinforce"], pool=100)
    with pytest.raises(ValueError, match="^n:"):
        VarianceLab(MDP, LOGITS, ["reinforce"], pool=1000).update(n=600)
