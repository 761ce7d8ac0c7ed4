"""The labs of notebooks 04 and 05 judge estimators by what a step uses: the scale-optimal MSE
and the cosine, against the zero estimator's |grad J|^2, never by the raw MSE."""
import numpy as np
import pytest

from acteach.critic import residual_fixed_point
from acteach.estimators import GradientPool, scale_optimal_mse
from acteach.labs import CriticBiasLab, DiscountLab
from acteach.discount import undiscounted, with_gamma
from acteach.tabular import chain_mdp, sample_trajectories

CHAIN = chain_mdp()                                   # 5 states, slip 0.1, episodic, gamma = 1
LOGITS = np.tile([0.0, 1.0], (CHAIN.n_states, 1))


@pytest.fixture(scope="module")
def discount_lab():
    return DiscountLab(CHAIN, LOGITS, gammas=(0.0, 0.5, 0.9, 1.0), n_trajectories_values=(1, 10),
                       pool=400)


def test_discount_lab_scale_optimal_mse_is_the_estimators_statistic(discount_lab):
    # The lab's pool is seed 0's sample of the undiscounted MDP; the same pool, reweighted at
    # gamma = 0.9, gives the same estimates and so the same statistic, to rounding.
    batch = sample_trajectories(undiscounted(CHAIN), LOGITS, 400, np.random.default_rng(0))
    pool = GradientPool(with_gamma(CHAIN, 0.9), LOGITS, batch)
    pool.add("o1", "reward_to_go", discount_option=1)
    expected = scale_optimal_mse(pool.estimates("o1", 10), discount_lab.reference)
    got = discount_lab.update(0.9, 10)[0]
    assert (got.scale_optimal_mse, got.scale_optimal_mse_se) == pytest.approx(expected)
    assert got.zero_mse == pytest.approx(np.sum(discount_lab.reference ** 2))
    assert got.scale_optimal_mse < got.zero_mse


def test_best_gamma_never_judges_by_the_raw_mse(discount_lab):
    curve = discount_lab.curves(10)[1]["scale_optimal_mse"]
    assert discount_lab.best_gamma(10) == discount_lab.gammas[int(np.argmin(curve))]
    with pytest.raises(ValueError, match="^by:"):
        discount_lab.best_gamma(10, 1, "mse")
    assert "zero estimator" in discount_lab.readout(0.9, 10)


def test_critic_bias_lab_curves_are_its_statistics_and_the_zero_line():
    lab = CriticBiasLab(CHAIN, LOGITS, residual_fixed_point(CHAIN, LOGITS),
                        n_trajectories_values=(1, 10), pool=600)
    curves = lab.curves(10)
    i = lab.ALPHAS.index(0.5)
    half = lab.update(0.5, 10)
    assert curves["scale_optimal_mse"][i] == pytest.approx(half.advantage_td.scale_optimal_mse)
    assert curves["rtg_scale_optimal_mse"] == pytest.approx(half.reward_to_go.scale_optimal_mse)
    assert curves["zero_mse"] == pytest.approx(np.sum(lab.exact ** 2))
    # shrinking never helps: every estimator's scale-optimal MSE is at most the zero line
    assert np.all(curves["scale_optimal_mse"] <= curves["zero_mse"])
    assert "zero estimator" in lab.readout(0.5, 10)
