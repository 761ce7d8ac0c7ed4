"""The labs (acteach.labs): one protocol test over every lab, then what each lab's numbers must
show. The exact maths a lab plots is tested with its topic module (mean_weight in
test_decomposition, GradientPool in test_estimators)."""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from acteach.actor_critic import A2CHistory
from acteach.critic import residual_fixed_point, value_error
from acteach.discount import expected_gradient, undiscounted_gradient, with_gamma
from acteach.estimators import estimates_from_batch, gradient_statistics, summarize
from acteach.labs import (CriticBiasLab, CriticLab, DiscountLab, LambdaLab, ParallelLab, QLab,
                          VarianceLab)
from acteach.labs.batch_ac import CriticFitLab
from acteach.labs.off_policy import BUFFERS, OffPolicyLab
from acteach.off_policy import learning_path, off_policy_report
from acteach.parallel import grid_run, grid_steps
from acteach.tabular import (chain_mdp, exact_values, gridworld_mdp, random_mdp,
                             sample_trajectories)

CHAIN = chain_mdp()                                   # 5 states, slip 0.1, episodic, gamma = 1
LOGITS = np.tile([0.0, 1.0], (CHAIN.n_states, 1))    # prefers right
V_WRONG = np.zeros(CHAIN.n_states)                    # a critic that has learned nothing
PNG = b"\x89PNG\r\n\x1a\n"
RANDOM = random_mdp(np.random.default_rng(11), n_states=5, n_actions=3, gamma=0.9)
OFF_POLICY_PATH = learning_path(RANDOM, np.random.default_rng(0).normal(size=(5, 3)), 5, 0.3)


def _history(n_envs: int, n_steps: int) -> A2CHistory:
    """A made-up training run (no training needed to test the lab that shows it)."""
    rng = np.random.default_rng(10 * n_envs + n_steps)
    episodes = 8 + n_envs
    steps = np.cumsum(rng.integers(10, 30, size=episodes))
    return A2CHistory(env_steps=int(steps[-1]), episode_returns=list(rng.uniform(10, 60, episodes)),
                      episode_steps=steps.tolist(), episode_seconds=list(steps / 500.0),
                      losses={"actor_loss": [0.0] * int(steps[-1] // (n_envs * n_steps))},
                      seconds=float(steps[-1] / 500.0))


GRID_STEPS = grid_steps(400, 8)


def _grid_runs(keys, seeds=(0, 1)) -> list:
    """Made-up runs of the N x T grid (ParallelLab), two seeds per cell."""
    return [grid_run(_history(n, t + 10 * seed), n, t, seed, GRID_STEPS, window=2)
            for n, t in keys for seed in seeds]


BUILD: dict[str, Callable[[], object]] = {
    "variance": lambda: VarianceLab(CHAIN, LOGITS, ["reinforce", ("rtg", "reward_to_go")],
                                    pool=4000),
    "q": lambda: QLab(CHAIN, LOGITS, k_values=(1, 4, 16), n_trajectories_values=(1, 5, 20),
                      pool=1000),
    "critic": lambda: CriticLab(CHAIN, LOGITS, n_trajectories=100),
    "critic_bias": lambda: CriticBiasLab(CHAIN, LOGITS, residual_fixed_point(CHAIN, LOGITS),
                                         n_trajectories_values=(1, 10), pool=2000),
    "discount": lambda: DiscountLab(CHAIN, LOGITS, gammas=(0.5, 0.9, 1.0),
                                    n_trajectories_values=(1, 10), pool=2000),
    "parallel": lambda: ParallelLab(_grid_runs(((1, 1), (1, 4), (4, 1), (4, 4))), GRID_STEPS),
    "gae": lambda: LambdaLab(CHAIN, LOGITS, V_WRONG, pool=3000),
    "critic_fit": lambda: CriticFitLab(CHAIN, LOGITS, sweeps=(0, 2, 8, 32),
                                       n_trajectories_values=(1, 10), pool=2000),
    "off_policy": lambda: OffPolicyLab(RANDOM, OFF_POLICY_PATH, ages=(0, 2, 5)),
}


@functools.cache
def lab(name: str):
    """Each lab is built once per test process and shared by the tests below."""
    return BUILD[name]()


# ---------------------------------------------------------------------------------------------
# The protocol, for every lab: update -> numbers, readout -> text, render -> (PNG, text),
# widget -> ipywidgets whose controls redraw, and bad settings name the argument
# ---------------------------------------------------------------------------------------------

@dataclass
class Case:
    settings: tuple              # update / readout / render(*settings)
    other: tuple                 # settings whose picture differs
    text: tuple[str, ...]        # in the readout of `settings`
    widget: dict                 # widget(**widget)
    moves: list[tuple[tuple[int, int], object, str]]   # (row, column) of a control, a value,
    #                                                    and a text the readout then shows
    bad: list[tuple[tuple, str]]  # settings -> the argument the ValueError names


CASES = {
    "variance": Case((5, 0), (20, 0), ("reinforce", "rtg", "N = 5"), {"n_trajectories": 5},
                     [((0, 0), 20, "N = 20")],
                     [((3000,), "n_trajectories"), ((0,), "n_trajectories")]),
    "q": Case((1, 5), (16, 5), ("q_mc k=1", "equal budget", "variance x steps"),
              {"k": 4, "n_trajectories": 5}, [((0, 0), 16, "k = 16"), ((0, 1), 20, "N = 20")],
              [((3, 5), "k"), ((4, 7), "n_trajectories")]),
    "critic": Case(("bootstrapped", 100, 16, 0.1), ("bootstrapped", 1000, 16, 0.1),
                   ("V^pi (exact)", "bootstrapped y_hat"),
                   {"steps": 100}, [((1, 0), 1000, "1000 updates"),
                                    ((0, 0), "monte_carlo", "Monte Carlo")],
                   [(("td", 10, 16, 0.1), "target"), (("bootstrapped", 11, 16, 0.1), "steps"),
                    (("bootstrapped", 10, 7, 0.1), "batch_size"),
                    (("bootstrapped", 10, 16, 0.2), "lr")]),
    "critic_bias": Case((0.5, 10), (0.0, 10), ("reward-to-go", "alpha = 0.5"),
                        {"alpha": 0.0, "n_trajectories": 10}, [((0, 0), 0.5, "alpha = 0.5")],
                        [((1.5, 10), "alpha"), ((True, 10), "alpha"),
                         ((0.5, 3), "n_trajectories")]),
    "discount": Case((0.5, 10), (0.9, 10), ("option 1", "gamma = 0.5"),
                     {"gamma": 0.9, "n_trajectories": 10}, [((0, 0), 0.5, "gamma = 0.5")],
                     [((0.8, 10), "gamma"), ((0.9, 5), "n_trajectories")]),
    "parallel": Case((4, 1), (1, 4), ("N = 4 envs x T = 1 steps", "Online (N = T = 1)"),
                     {"n_envs": 1, "n_steps": 4}, [((0, 0), 4, "N = 4 envs x T = 4")],
                     [((2, 2), "n_envs, n_steps")]),
    "gae": Case((1.0, 0.9, 5, 10), (1.0, 0.5, 5, 10),
                ("GAE lam = 0.9", "n-step n = 5", "lowest scale-optimal MSE"),
                {"alpha": 1.0, "lam": 0.9, "n": "inf", "n_trajectories": 10},
                [((1, 0), 0.5, "GAE lam = 0.5"), ((1, 1), 3, "n-step n = 3"),
                 ((0, 0), 0.0, "(1 - 0) V^pi")],
                [((1.5, 0.9, 5, 10), "alpha"), (("x", 0.9, 5, 10), "alpha"),
                 ((True, 0.9, 5, 10), "alpha"), ((0.5, 0.33, 5, 10), "lam"),
                 ((0.5, None, 5, 10), "lam"), ((0.5, 0.9, 4, 10), "n"),
                 ((0.5, 0.9, "5", 10), "n"), ((0.5, 0.9, True, 10), "n"),
                 ((0.5, 0.9, 0, 10), "n"), ((0.5, 0.9, 5, 7), "n_trajectories"),
                 ((0.5, 0.9, 5, 0), "n_trajectories"), ((0.5, 0.9, 5, 10, -1), "seed"),
                 ((0.5, 0.9, 5, 10, 1.5), "seed")]),
    "critic_fit": Case((2, 10), (8, 10), ("k = 2 sweeps", "TD advantage", "reward-to-go"),
                       {"sweeps": 2, "n_trajectories": 10},
                       [((0, 0), 8, "k = 8"), ((0, 1), 1, "N = 1")],
                       [((3, 10), "sweeps"), ((2, 3), "n_trajectories"), ((2, 10, -1), "seed")]),
    "off_policy": Case((2,), (5, BUFFERS[1], "uniform"),
                       ("age k = 2", "naive", "corrected", "error at the best scale"),
                       {"age": 2}, [((0, 0), 5, "age k = 5"), ((0, 1), BUFFERS[1], BUFFERS[1]),
                                    ((1, 0), "uniform", "states weighted: uniform")],
                       [((3,), "age"), ((2, "fifo"), "buffer"),
                        ((2, BUFFERS[0], "gamma"), "weighting")]),
}


def test_every_lab_has_a_case():
    assert set(CASES) == set(BUILD)


def _plain(result) -> bool:
    """Numbers in dataclasses (or a list of them), as update promises."""
    rows = result if isinstance(result, list) else [result]
    return bool(rows) and all(dataclasses.is_dataclass(r) for r in rows)


@pytest.mark.parametrize("name", CASES)
def test_update_readout_render(name):
    the_lab, case = lab(name), CASES[name]
    assert _plain(the_lab.update(*case.settings))
    text = the_lab.readout(*case.settings)
    assert all(fragment in text for fragment in case.text), text
    png, shown = the_lab.render(*case.settings)
    assert png[:8] == PNG and shown == text
    other, _ = the_lab.render(*case.other)
    assert other[:8] == PNG and other != png
    assert the_lab.render(*case.settings)[0] == png          # a redraw draws the same picture


@pytest.mark.parametrize("name", CASES)
def test_widget_builds_and_every_move_redraws(name):
    case = CASES[name]
    box = lab(name).widget(**case.widget)
    image, readout = box.children[-2], box.children[-1]
    for (row, column), value, text in case.moves:
        holder = box.children[row]
        control = holder.children[column] if hasattr(holder, "children") else holder
        before = image.value
        control.value = value
        assert image.value != before and text in readout.value, (value, readout.value)


@pytest.mark.parametrize("name, settings, argument",
                         [(name, s, a) for name, case in CASES.items() for s, a in case.bad])
def test_bad_settings_name_the_argument(name, settings, argument):
    for method in ("update", "readout", "render"):
        with pytest.raises(ValueError, match=f"^{argument}:"):
            getattr(lab(name), method)(*settings)


@pytest.mark.parametrize("build, argument", [
    (lambda: VarianceLab(CHAIN, LOGITS, ["nope"]), "estimators"),
    (lambda: VarianceLab(CHAIN, LOGITS, []), "estimators"),
    (lambda: VarianceLab(CHAIN, LOGITS, ["reinforce"], pool=100), "pool"),
    (lambda: QLab(CHAIN, LOGITS, pool=50), "pool"),
    (lambda: QLab(CHAIN, LOGITS, k_values=(0, 1)), "k_values"),
    (lambda: QLab(CHAIN, np.zeros((2, 2))), "logits"),
    (lambda: CriticLab(gridworld_mdp(), np.zeros((gridworld_mdp().n_states, 4))), "mdp"),
    (lambda: CriticLab(CHAIN, LOGITS, n_trajectories=0), "n_trajectories"),
    (lambda: CriticBiasLab(CHAIN, LOGITS, np.zeros(3)), "v_poor"),
    (lambda: CriticBiasLab(CHAIN, LOGITS, np.zeros(6), pool=100), "pool"),
    (lambda: DiscountLab(CHAIN, LOGITS, gammas=(0.5, 1.5), pool=200,
                         n_trajectories_values=(1,)), "gamma"),
    (lambda: DiscountLab(CHAIN, LOGITS, gammas=(0.9, 0.5), pool=200,
                         n_trajectories_values=(1,)), "gammas"),
    (lambda: DiscountLab(CHAIN, LOGITS, pool=100), "pool"),
    (lambda: DiscountLab(random_mdp(np.random.default_rng(3), n_states=5, n_actions=2,
                                    gamma=0.9), np.zeros((5, 2)), pool=200,
                         n_trajectories_values=(1,)), "mdp"),
    (lambda: ParallelLab([], GRID_STEPS), "runs"),
    (lambda: ParallelLab(_grid_runs([(1, 1)]), GRID_STEPS[:3]), "at_steps"),
    (lambda: LambdaLab(CHAIN, LOGITS, np.zeros(3)), "v_wrong"),
    (lambda: LambdaLab(CHAIN, LOGITS, np.full(CHAIN.n_states, np.nan)), "v_wrong"),
    (lambda: LambdaLab(CHAIN, LOGITS, lams=(0.0, 1.5)), "lams"),
    (lambda: LambdaLab(CHAIN, LOGITS, lams=(0.9, 0.5)), "lams"),
    (lambda: LambdaLab(CHAIN, LOGITS, n_values=(1, 0)), "n_values"),
    (lambda: LambdaLab(CHAIN, LOGITS, n_values=(1, None, "inf")), "n_values"),
    (lambda: LambdaLab(CHAIN, LOGITS, pool=100), "pool"),
    (lambda: LambdaLab(chain_mdp(horizon=10), LOGITS), "mdp"),
    (lambda: CriticFitLab(chain_mdp(horizon=10), LOGITS), "mdp"),
    (lambda: CriticFitLab(CHAIN, LOGITS, sweeps=(-1, 2)), "sweeps"),
    (lambda: CriticFitLab(CHAIN, LOGITS, pool=10), "pool"),
    (lambda: OffPolicyLab(RANDOM, OFF_POLICY_PATH, ages=(0, 6)), "ages"),
    (lambda: OffPolicyLab(RANDOM, OFF_POLICY_PATH, ages=(2, 1)), "ages"),
    (lambda: OffPolicyLab(RANDOM, []), "path"),
    (lambda: OffPolicyLab(gridworld_mdp(), [np.zeros((gridworld_mdp().n_states, 4))]), "mdp"),
])
def test_bad_construction_names_the_argument(build, argument):
    with pytest.raises(ValueError, match=f"^{argument}:"):
        build()


# ---------------------------------------------------------------------------------------------
# VarianceLab (notebooks 01, 03)
# ---------------------------------------------------------------------------------------------

def test_variance_lab_gives_one_row_per_estimator():
    stats = lab("variance").update(n_trajectories=10, seed=0)
    assert [s.method for s in stats] == ["reinforce", "rtg"]
    assert all(s.n_repeats == 400 and s.n_trajectories == 10 for s in stats)
    assert [s.method for s in lab("variance").update(10, 0, labels=["rtg"])] == ["rtg"]


def test_variance_lab_agrees_with_gradient_statistics():
    # Same estimator, independent samples: variances within 4 standard errors (seeds 0 and 1).
    ours = lab("variance").update(n_trajectories=5, seed=0)[1]
    ref = gradient_statistics(CHAIN, LOGITS, "reward_to_go", 5, 800, np.random.default_rng(1))
    assert abs(ours.variance - ref.variance) < 4 * np.hypot(ours.variance_se, ref.variance_se)


def test_variance_lab_larger_n_lowers_the_variance():
    v1, v20 = (lab("variance").update(n, 0)[0].variance for n in (1, 20))
    assert v20 < v1 / 5


def test_estimate_plot_marks_each_mean_and_keeps_title_and_legend_off_the_panels():
    # Issue 16: a mean marker per histogram (a skewed histogram is not a bias); the title and
    # the legend sit above both panels, so neither covers the scatter or the other.
    from acteach.labs.variance import EstimatePlot
    stats = lab("variance").update(10, 0)
    plot = EstimatePlot([s.method for s in stats], stats)
    plot.draw(stats, "a title")
    for s in stats:
        projected = s.estimates.reshape(s.n_repeats, -1) @ plot.unit
        assert plot.means[s.method].get_xdata()[0] == pytest.approx(projected.mean())
    renderer = plot.canvas.get_renderer()
    top = max(ax.get_window_extent(renderer).y1 for ax in plot.axes)
    legend = plot.fig.legends[0].get_window_extent(renderer)
    title = plot.title.get_window_extent(renderer)
    assert top <= legend.y0 and legend.y1 <= title.y0


def test_variance_lab_batch_dependent_estimators_use_the_pool():
    # baseline_mean uses the whole batch: recomputed on the seed's pool for each N.
    small = VarianceLab(CHAIN, LOGITS, ["reward_to_go", "baseline_mean"], pool=400,
                        n_trajectories_values=(2, 10))
    rows = small.update(10, seed=0)
    assert [r.n_repeats for r in rows] == [40, 40]
    assert rows[1].steps_per_estimate == pytest.approx(rows[0].steps_per_estimate)


# ---------------------------------------------------------------------------------------------
# QLab (notebook 02)
# ---------------------------------------------------------------------------------------------

def test_q_lab_update_gives_reward_to_go_q_mc_and_q_exact():
    q = lab("q")
    stats = q.update(k=4, n_trajectories=5, seed=0)
    assert [s.method for s in stats] == ["reward_to_go", "q_mc k=4", "q_exact"]
    assert all(s.n_trajectories == 5 and s.n_repeats == 200 for s in stats)
    rtg, mc, exact = stats
    assert rtg.steps_per_estimate == exact.steps_per_estimate < mc.steps_per_estimate
    assert q.update(4, 20)[1].steps_per_estimate == pytest.approx(4 * mc.steps_per_estimate)
    assert q.update(4, 5, seed=0)[1] is mc                              # cached
    assert q.update(4, 5, seed=1)[1].variance != mc.variance


def test_q_lab_variance_falls_with_k():
    q = lab("q")
    v = {k: q.update(k, 1)[1].variance for k in q.k_values}
    assert v[1] > v[4] > v[16] > q.update(1, 1)[2].variance


def test_q_lab_agrees_with_gradient_statistics():
    # Same estimator, independent samples: variances within 4 standard errors (seeds 0 and 9).
    ours = lab("q").update(4, 5, seed=0)[1]
    ref = gradient_statistics(CHAIN, LOGITS, "q_mc", 5, 400, np.random.default_rng(9), k=4)
    assert abs(ours.variance - ref.variance) < 4 * np.hypot(ours.variance_se, ref.variance_se)
    assert ours.steps_per_estimate == pytest.approx(ref.steps_per_estimate, rel=0.1)


def test_q_lab_curves_run_through_the_n_values():
    curves = lab("q").curves(0)
    assert list(curves) == ["reward_to_go", "q_mc k=1", "q_mc k=4", "q_mc k=16", "q_exact"]
    steps, var = curves["q_mc k=4"]
    assert steps.shape == var.shape == (3,)
    assert np.all(np.diff(steps) > 0) and var[0] == lab("q").update(4, 1)[1].variance


# ---------------------------------------------------------------------------------------------
# CriticLab and CriticBiasLab (notebook 04)
# ---------------------------------------------------------------------------------------------

def test_critic_lab_starts_at_zero_and_learns():
    start = lab("critic").update("bootstrapped", 0, 16, 0.1)
    np.testing.assert_array_equal(start.value, np.zeros(CHAIN.n_states))
    late = lab("critic").update("bootstrapped", 2000, 16, 0.1)
    assert late.error < start.error / 3
    assert late.curve.shape == (lab("critic").max_steps + 1,) and late.curve[0] == start.error
    np.testing.assert_allclose(late.exact, exact_values(CHAIN, LOGITS).V)


def test_critic_lab_full_gradient_heads_for_its_fixed_point():
    fit = lab("critic").update("full_gradient", 2000, 256, 1.0)
    assert value_error(fit.value, fit.fixed_point, lab("critic").weights) < 0.2 * fit.error
    assert fit.fixed_error > 3 * lab("critic").update("bootstrapped", 2000, 256, 1.0).fixed_error


def test_critic_lab_steps_only_look_up():
    first = lab("critic").history("monte_carlo", 64, 0.1)
    lab("critic").update("monte_carlo", 10, 64, 0.1)
    assert lab("critic").history("monte_carlo", 64, 0.1) is first


def test_critic_lab_reports_divergence():
    fit = lab("critic").update("bootstrapped", 2000, 1, 1.0)
    assert not np.isfinite(fit.error) or fit.error > 1e3
    assert "diverged" in lab("critic").readout("bootstrapped", 2000, 1, 1.0)


def test_critic_bias_lab_mixes_exactly_what_advantage_td_computes():
    # Same pool (seed 0): the lab's estimates at alpha equal the library's estimator with the
    # table V_alpha, to rounding.
    bias_lab = lab("critic_bias")
    batch = sample_trajectories(CHAIN, LOGITS, 2000, np.random.default_rng(0))
    direct, _ = estimates_from_batch(CHAIN, LOGITS, batch, "advantage_td", 10,
                                     value=bias_lab.blend(0.3))
    np.testing.assert_allclose(bias_lab.update(0.3, 10).advantage_td.estimates, direct,
                               atol=1e-10)


def test_critic_bias_lab_bias_grows_with_alpha():
    bias_lab = lab("critic_bias")
    exact, half, poor = (bias_lab.update(a, 10) for a in (0.0, 0.5, 1.0))
    assert exact.advantage_td.max_bias_z < 4
    assert poor.advantage_td.max_bias_z > 4
    assert half.advantage_td.bias_norm == pytest.approx(poor.advantage_td.bias_norm / 2,
                                                        rel=0.1)
    assert exact.advantage_td.variance < exact.reward_to_go.variance
    curves = bias_lab.curves(10)
    assert curves["scale_optimal_mse"].shape == (len(bias_lab.ALPHAS),)
    assert curves["rtg_scale_optimal_mse"] < curves["zero_mse"] == pytest.approx(
        np.sum(bias_lab.exact ** 2))


# ---------------------------------------------------------------------------------------------
# DiscountLab (notebook 05)
# ---------------------------------------------------------------------------------------------

def test_discount_lab_gives_both_options_with_exact_bias():
    rows = lab("discount").update(0.9, 10)
    assert [r.option for r in rows] == [1, 2] and all(r.n_repeats == 200 for r in rows)
    reference = undiscounted_gradient(CHAIN, LOGITS)
    for r in rows:
        mean = expected_gradient(with_gamma(CHAIN, 0.9), LOGITS, r.option)
        assert r.bias == pytest.approx(np.linalg.norm(mean - reference))
        assert r.mse == pytest.approx(r.bias ** 2 + r.variance)
        assert r.max_z < 4.5                        # the samples agree with the exact mean
    assert rows[1].bias_discounted == pytest.approx(0.0, abs=1e-12)
    at_one = lab("discount").update(1.0, 10)
    assert all(r.bias == pytest.approx(0.0, abs=1e-10) for r in at_one)
    assert at_one[0].variance == pytest.approx(at_one[1].variance)


def test_discount_lab_variance_falls_with_gamma_and_n():
    d = lab("discount")
    assert d.update(0.5, 10)[0].variance < d.update(1.0, 10)[0].variance / 2
    assert d.update(0.9, 10)[0].variance == pytest.approx(d.update(0.9, 1)[0].variance / 10)
    curves = d.curves(10)
    assert set(curves) == {1, 2} and curves[1]["bias"].shape == (3,)


# ---------------------------------------------------------------------------------------------
# ParallelLab (notebook 07)
# ---------------------------------------------------------------------------------------------

def test_parallel_lab_summarises_each_cell_over_its_seeds():
    p = lab("parallel")
    runs = p.cells[4, 1]
    summary = p.update(4, 1)
    finals = [np.mean(_history(4, 1 + 10 * seed).episode_returns[-2:]) for seed in (0, 1)]
    assert summary.seeds == 2 and summary.final_return[0] == pytest.approx(np.mean(finals))
    assert summary.final_return[1] == pytest.approx(12.7062 * np.std(finals, ddof=1) / np.sqrt(2), rel=1e-5)
    assert summary.updates == np.mean([r.updates for r in runs])
    rows, columns = p.table()
    assert len(rows) == 4 and len(columns) == len(rows[0])


# ---------------------------------------------------------------------------------------------
# LambdaLab (notebook 09)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("alpha, lam, n, n_traj", [(0.0, 0.9, 5, 10), (1.0, 0.0, 1, 3),
                                                   (0.3, 0.97, 20, 30), (0.7, 0.5, "inf", 1)])
def test_lambda_lab_update_is_estimates_from_batch_on_the_same_pool(alpha, lam, n, n_traj):
    # The lab mixes cached per-trajectory gradients of V^pi and V_wrong; the library computes the
    # same estimates directly with V_alpha. n = inf is n_step with n >= the longest trajectory.
    g = lab("gae")
    stats, batch, value = g.update(alpha, lam, n, n_traj), g.batch(0), g.blend(alpha)
    gae, _ = estimates_from_batch(CHAIN, LOGITS, batch, "gae", n_traj, value=value, lam=lam)
    steps = batch.mask.shape[0] if n == "inf" else n
    nstep, _ = estimates_from_batch(CHAIN, LOGITS, batch, "n_step", n_traj, value=value, n=steps)
    for ours, theirs in ((stats.gae, gae), (stats.n_step, nstep)):
        np.testing.assert_allclose(ours.estimates, theirs, rtol=1e-9, atol=1e-9)
        ref = summarize("x", theirs, g.exact, n_traj)
        assert ours.n_repeats == 3000 // n_traj
        assert np.isclose(ours.variance, ref.variance) and np.isclose(ours.mse, ref.mse)
    assert stats.n == (None if n == "inf" else n) and stats.lam == lam


def test_lambda_lab_agrees_with_gradient_statistics_on_fresh_samples():
    # Same estimator, independent trajectories (seeds 0 and 1): within 4 standard errors.
    ours = lab("gae").update(1.0, 0.8, 3, 10)
    for method, options, mine in (("gae", {"lam": 0.8}, ours.gae), ("n_step", {"n": 3},
                                                                    ours.n_step)):
        ref = gradient_statistics(CHAIN, LOGITS, method, 10, 300, np.random.default_rng(1),
                                  value=V_WRONG, **options)
        assert abs(mine.variance - ref.variance) < 4 * np.hypot(mine.variance_se,
                                                                 ref.variance_se)
        assert abs(mine.mse - ref.mse) < 4 * np.hypot(mine.mse_se, ref.mse_se)


def test_lambda_lab_exact_expectation_is_grad_j_with_v_pi_and_matches_sampling_with_v_wrong():
    g = lab("gae")
    for setting in g.settings:
        np.testing.assert_allclose(g.expected_gradient(setting, 0.0), g.exact, atol=1e-10)
        assert g.bias2(setting, 0.0) < 1e-20
    per_trajectory = g.curves(1.0, 1)              # one trajectory per estimate: 3000 of them
    measured = {("gae", lam): g.update(1.0, lam, 1, 1).gae for lam in g.lams}
    measured.update({("n_step", n): g.update(1.0, 0.0, n, 1).n_step for n in g.n_values})
    assert set(measured) == set(g.settings)
    for setting, s in measured.items():
        expected = g.expected_gradient(setting, 1.0)
        seen = s.bias_se > 0                       # the goal is never left: no score there
        z = np.abs(s.mean - expected)[seen] / s.bias_se[seen]
        assert z.max() < 4.5, (setting, z.max())
    assert np.allclose(per_trajectory["gae"]["bias2"],
                       [g.bias2(("gae", lam), 1.0) for lam in g.lams])


def test_lambda_lab_exact_v_is_unbiased_at_every_lam_and_n():
    g = lab("gae")
    for lam in g.lams:
        assert g.update(0.0, lam, 1, 10).gae.max_bias_z < 4, lam
    for n in g.n_values:
        assert g.update(0.0, 0.0, n, 10).n_step.max_bias_z < 4, n


def test_lambda_lab_wrong_v_biases_short_sums_and_not_the_monte_carlo_end():
    g = lab("gae")
    td, mc = g.update(1.0, 0.0, 1, 10), g.update(1.0, 1.0, "inf", 10)
    assert td.gae.bias_norm > 5 * mc.gae.bias_norm and td.gae_bias2 > 1.0
    assert td.n_step.bias_norm > 5 * mc.n_step.bias_norm and td.n_step_bias2 > 1.0
    assert mc.gae.max_bias_z < 4 and mc.n_step.max_bias_z < 4
    assert mc.gae_bias2 < 1e-20 and mc.n_step_bias2 < 1e-20
    bias2 = g.curves(1.0, 10)["gae"]["bias2"]
    assert np.all(np.diff(bias2) <= 1e-12)         # the exact bias falls as lam grows


def test_lambda_lab_variance_grows_towards_monte_carlo_and_the_best_lam_moves():
    g = lab("gae")
    exact_v = g.curves(0.0, 10)
    assert exact_v["gae"]["variance"][-1] > 3 * exact_v["gae"]["variance"][0]
    assert exact_v["n_step"]["variance"][-1] > 3 * exact_v["n_step"]["variance"][0]
    # with the exact V a short sum wins; with the wrong V and N = 100, a long one
    assert g.best(0.0, 10)[0] <= 0.5 and g.best(1.0, 100)[0] >= 0.8


def test_lambda_lab_judges_by_scale_optimal_mse_against_the_zero_estimator():
    # Raw MSE rewards shrinking toward 0: with V = 0 and N = 1 its best lam (0.25) has an MSE
    # above the zero estimator's |grad J|^2; the scale-optimal MSE, which `best` uses, never is.
    g = lab("gae")
    assert np.isclose(g.zero_mse, np.sum(g.exact ** 2))
    c = g.curves(1.0, 1)["gae"]
    assert np.all(c["scale_optimal_mse"] <= g.zero_mse) and np.all(c["cosine"] > 0)
    assert g.best(1.0, 1)[0] == g.lams[int(np.argmin(c["scale_optimal_mse"]))]
    raw_best = int(np.argmin(c["mse"]))
    assert c["mse"][raw_best] > g.zero_mse and g.best(1.0, 1)[0] > g.lams[raw_best]


def test_a_redraw_error_shows_in_the_lab_and_the_slider_goes_back():
    """An error while redrawing lands in the lab's own readout (not JupyterLab's log console),
    and the slider returns to the value the (unchanged) plot shows."""
    from acteach.labs._base import lab_box, slider

    def render(n):
        if n == 3:
            raise ValueError("n: three is not allowed here")
        return PNG + bytes([n]), f"n = {n}"

    box = lab_box([[slider((1, 2, 3), 1, "n")]], render)
    control, image, readout = box.children[0], box.children[-2], box.children[-1]
    control.value = 2
    assert image.value == PNG + b"\x02" and "n = 2" in readout.value
    control.value = 3
    assert control.value == 2 and image.value == PNG + b"\x02"
    assert "Could not redraw: ValueError: n: three is not allowed here" in readout.value
    assert "n went back to the setting the plot shows" in readout.value
    control.value = 1                                    # the lab still works afterwards
    assert image.value == PNG + b"\x01" and "n = 1" in readout.value


def test_a_run_that_finished_no_episode_still_draws():
    lab = ParallelLab([grid_run(A2CHistory(env_steps=10), 1, 1, 0, GRID_STEPS),
                       *_grid_runs([(2, 1)])], GRID_STEPS)
    png, text = lab.render(1, 1)
    assert png[:8] == PNG and isinstance(text, str)


# ---------------------------------------------------------------------------------------------
# CriticFitLab (notebook 06)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["baseline_v", "advantage_td"])
def test_critic_fit_lab_contracts_to_what_estimates_from_batch_computes(method):
    g = lab("critic_fit")
    fit = g.update(2, 10)
    batch = sample_trajectories(CHAIN, LOGITS, g.pool, np.random.default_rng(0))
    direct, _ = estimates_from_batch(CHAIN, LOGITS, batch, method, 10, value=g.values[2])
    np.testing.assert_allclose(fit.stats[method].estimates, direct, atol=1e-9)


def test_critic_fit_lab_critic_reaches_v_pi_and_the_td_bias_vanishes_there():
    g = lab("critic_fit")
    exact_v = exact_values(CHAIN, LOGITS).V
    np.testing.assert_allclose(g.td_expectation(exact_v), g.exact, atol=1e-10)
    errors = [g.update(k, 10).value_error for k in g.sweeps]
    biases = [g.update(k, 10).bias["advantage_td"] for k in g.sweeps]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.1 * errors[0]
    assert biases[-1] < 0.05 * biases[0]


def test_critic_fit_lab_exact_td_expectation_matches_the_pool_mean():
    fit = lab("critic_fit").update(2, 1)
    stats = fit.stats["advantage_td"]
    expected = lab("critic_fit").td_expectation(fit.value)
    assert np.all(np.abs(stats.mean - expected) <= 5 * stats.bias_se + 1e-12)
    assert fit.bias["advantage_td"] > 5 * stats.noise_floor       # a biased critic at k = 2


# ---------------------------------------------------------------------------------------------
# OffPolicyLab (notebook 08)
# ---------------------------------------------------------------------------------------------

def test_off_policy_lab_reports_are_off_policy_report_of_the_path():
    """update(k, buffer, weighting) is off_policy_report with the policy k updates old (or the
    last k + 1 stacked) as the behaviour, the path's end as pi."""
    the_lab = lab("off_policy")
    expected = off_policy_report(RANDOM, OFF_POLICY_PATH[-1], OFF_POLICY_PATH[-3])
    assert the_lab.update(2) == expected
    mixed = off_policy_report(RANDOM, OFF_POLICY_PATH[-1], np.stack(OFF_POLICY_PATH[-3:]),
                              "uniform")
    assert the_lab.update(2, BUFFERS[1], "uniform") == mixed


def test_off_policy_lab_fresh_data_is_exact_only_with_discounted_states_and_age_hurts_naive_more():
    """Age 0, discounted: both gradients exact (error < 1e-9). Age 0, uniform: both equal and
    off (asserted > 0.01). At ages 2 and 5, one old policy, discounted: the naive error exceeds
    the corrected one and grows with the age."""
    the_lab = lab("off_policy")
    fresh = the_lab.update(0)
    assert fresh.naive_scale_optimal_error < 1e-9 and fresh.corrected_scale_optimal_error < 1e-9
    uniform = the_lab.update(0, BUFFERS[0], "uniform")
    assert uniform.corrected_scale_optimal_error > 0.01
    assert uniform.naive_scale_optimal_error == pytest.approx(
        uniform.corrected_scale_optimal_error, abs=1e-9)
    old = [the_lab.update(k) for k in (2, 5)]
    assert all(r.naive_scale_optimal_error > r.corrected_scale_optimal_error for r in old)
    assert old[1].naive_scale_optimal_error > old[0].naive_scale_optimal_error
