"""The n-step / GAE lab (notebook 09): its update function against the estimators it mixes, the
exact bias it plots against sampling, and the bias-variance claims the notebook will make."""
import numpy as np
import pytest

from acteach.estimators import estimates_from_batch, gradient_statistics, summarize
from acteach.tabular import chain_mdp
from acteach.widgets import LambdaLab

MDP = chain_mdp()                                   # episodic, gamma = 1, no horizon
LOGITS = np.tile([0.0, 1.0], (MDP.n_states, 1))     # prefers right
V_WRONG = np.zeros(MDP.n_states)                    # a critic that has learned nothing


@pytest.fixture(scope="module")
def lab():
    return LambdaLab(MDP, LOGITS, V_WRONG, pool=3000)


@pytest.mark.parametrize("alpha, lam, n, n_traj", [(0.0, 0.9, 5, 10), (1.0, 0.0, 1, 3),
                                                   (0.3, 0.97, 20, 30), (0.7, 0.5, "inf", 1)])
def test_update_is_estimates_from_batch_on_the_same_pool(lab, alpha, lam, n, n_traj):
    # The lab mixes cached per-trajectory gradients of V^pi and V_wrong; the library computes the
    # same estimates directly with V_alpha. n = inf is n_step with n >= the longest trajectory.
    stats, batch, value = lab.update(alpha, lam, n, n_traj), lab.batch(0), lab.blend(alpha)
    gae, _ = estimates_from_batch(MDP, LOGITS, batch, "gae", n_traj, value=value, lam=lam)
    steps = batch.mask.shape[0] if n == "inf" else n
    nstep, _ = estimates_from_batch(MDP, LOGITS, batch, "n_step", n_traj, value=value, n=steps)
    for ours, theirs in ((stats.gae, gae), (stats.n_step, nstep)):
        np.testing.assert_allclose(ours.estimates, theirs, rtol=1e-9, atol=1e-9)
        ref = summarize("x", theirs, lab.exact, n_traj)
        assert ours.n_repeats == 3000 // n_traj
        assert np.isclose(ours.variance, ref.variance) and np.isclose(ours.mse, ref.mse)
    assert stats.n == (None if n == "inf" else n) and stats.lam == lam


def test_update_agrees_with_gradient_statistics_on_fresh_samples(lab):
    # Same estimator, independent trajectories (seeds 0 and 1): within 4 standard errors.
    ours = lab.update(1.0, 0.8, 3, 10)
    for method, options, mine in (("gae", {"lam": 0.8}, ours.gae), ("n_step", {"n": 3},
                                                                    ours.n_step)):
        ref = gradient_statistics(MDP, LOGITS, method, 10, 300, np.random.default_rng(1),
                                  value=V_WRONG, **options)
        assert abs(mine.variance - ref.variance) < 4 * np.hypot(mine.variance_se,
                                                                 ref.variance_se)
        assert abs(mine.mse - ref.mse) < 4 * np.hypot(mine.mse_se, ref.mse_se)


def test_exact_expectation_is_grad_j_with_v_pi_and_matches_sampling_with_v_wrong(lab):
    for setting in lab.settings:
        np.testing.assert_allclose(lab.expected_gradient(setting, 0.0), lab.exact, atol=1e-10)
        assert lab.bias2(setting, 0.0) < 1e-20
    per_trajectory = lab.curves(1.0, 1)            # one trajectory per estimate: 3000 of them
    measured = {("gae", lam): lab.update(1.0, lam, 1, 1).gae for lam in lab.lams}
    measured.update({("n_step", n): lab.update(1.0, 0.0, n, 1).n_step for n in lab.n_values})
    assert set(measured) == set(lab.settings)
    for setting, s in measured.items():
        expected = lab.expected_gradient(setting, 1.0)
        seen = s.bias_se > 0                       # the goal is never left: no score there
        z = np.abs(s.mean - expected)[seen] / s.bias_se[seen]
        assert z.max() < 4.5, (setting, z.max())
    assert np.allclose(per_trajectory["gae"]["bias2"],
                       [lab.bias2(("gae", lam), 1.0) for lam in lab.lams])


def test_exact_v_is_unbiased_at_every_lam_and_n(lab):
    for lam in lab.lams:
        assert lab.update(0.0, lam, 1, 10).gae.max_bias_z < 4, lam
    for n in lab.n_values:
        assert lab.update(0.0, 0.0, n, 10).n_step.max_bias_z < 4, n


def test_wrong_v_biases_short_sums_and_not_the_monte_carlo_end(lab):
    td, mc = lab.update(1.0, 0.0, 1, 10), lab.update(1.0, 1.0, "inf", 10)
    assert td.gae.bias_norm > 5 * mc.gae.bias_norm and td.gae_bias2 > 1.0
    assert td.n_step.bias_norm > 5 * mc.n_step.bias_norm and td.n_step_bias2 > 1.0
    assert mc.gae.max_bias_z < 4 and mc.n_step.max_bias_z < 4
    assert mc.gae_bias2 < 1e-20 and mc.n_step_bias2 < 1e-20
    bias2 = lab.curves(1.0, 10)["gae"]["bias2"]
    assert np.all(np.diff(bias2) <= 1e-12)         # the exact bias falls as lam grows


def test_variance_grows_towards_monte_carlo_and_the_best_lam_moves(lab):
    exact_v = lab.curves(0.0, 10)
    assert exact_v["gae"]["variance"][-1] > 3 * exact_v["gae"]["variance"][0]
    assert exact_v["n_step"]["variance"][-1] > 3 * exact_v["n_step"]["variance"][0]
    # with the exact V a short sum wins; with the wrong V and N = 100, a long one
    assert lab.best(0.0, 10)[0] <= 0.5 and lab.best(1.0, 100)[0] >= 0.8


def test_render_draws_a_png_that_changes_with_the_sliders(lab):
    png1, text = lab.render(1.0, 0.9, 5, 10)
    png2, _ = lab.render(1.0, 0.5, 5, 10)
    png3, _ = lab.render(0.0, 0.5, 5, 10)
    assert png1[:8] == b"\x89PNG\r\n\x1a\n" and len({png1, png2, png3}) == 3
    assert "GAE lam = 0.9" in text and "n-step n = 5" in text and "lowest MSE" in text


def test_widget_builds_and_redraws(lab):
    box = lab.widget(alpha=1.0, lam=0.9, n="inf", n_trajectories=10)
    (alpha_w, _), (lam_w, n_w) = box.children[0].children, box.children[1].children
    image, readout = box.children[2], box.children[3]
    before = image.value
    lam_w.value = 0.5
    assert image.value != before and "GAE lam = 0.5" in readout.value
    n_w.value = 3
    assert "n-step n = 3" in readout.value
    alpha_w.value = 0.0
    assert "(1 - 0) V^pi" in readout.value


@pytest.mark.parametrize("args, name", [
    ((1.5, 0.9, 5, 10), "alpha"), (("x", 0.9, 5, 10), "alpha"), ((True, 0.9, 5, 10), "alpha"),
    ((0.5, 0.33, 5, 10), "lam"), ((0.5, None, 5, 10), "lam"), ((0.5, 0.9, 4, 10), "n"),
    ((0.5, 0.9, "5", 10), "n"), ((0.5, 0.9, True, 10), "n"), ((0.5, 0.9, 0, 10), "n"),
    ((0.5, 0.9, 5, 7), "n_trajectories"), ((0.5, 0.9, 5, 0), "n_trajectories"),
    ((0.5, 0.9, 5, 10, -1), "seed"), ((0.5, 0.9, 5, 10, 1.5), "seed")])
def test_bad_slider_values_name_the_argument(lab, args, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        lab.update(*args)
    with pytest.raises(ValueError, match=f"^{name}:"):
        lab.render(*args)


def test_bad_construction_names_the_argument():
    with pytest.raises(ValueError, match="^v_wrong:"):
        LambdaLab(MDP, LOGITS, np.zeros(3))
    with pytest.raises(ValueError, match="^v_wrong:"):
        LambdaLab(MDP, LOGITS, np.full(MDP.n_states, np.nan))
    with pytest.raises(ValueError, match="^lams:"):
        LambdaLab(MDP, LOGITS, lams=(0.0, 1.5))
    with pytest.raises(ValueError, match="^lams:"):
        LambdaLab(MDP, LOGITS, lams=(0.9, 0.5))
    with pytest.raises(ValueError, match="^n_values:"):
        LambdaLab(MDP, LOGITS, n_values=(1, 0))
    with pytest.raises(ValueError, match="^n_values:"):
        LambdaLab(MDP, LOGITS, n_values=(1, None, "inf"))
    with pytest.raises(ValueError, match="^pool:"):
        LambdaLab(MDP, LOGITS, pool=100)
    with pytest.raises(ValueError, match="^mdp:"):
        LambdaLab(chain_mdp(horizon=10), LOGITS)
