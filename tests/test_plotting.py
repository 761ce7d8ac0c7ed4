"""acteach.plotting's tables: `variance_ratio` (paired and unpaired standard errors) and
`show_stats` (one row per estimator, value ± SE)."""
import numpy as np

from acteach.estimators import summarize
from acteach.plotting import show_stats, variance_ratio


def _stats(name, estimates):
    return summarize(name, estimates, np.zeros(estimates.shape[1:]), 10)


def test_a_ratio_of_paired_estimates_has_no_noise_when_one_is_the_other_scaled():
    b = np.random.default_rng(0).normal(size=(500, 3))
    ratio, se = variance_ratio(_stats("a", 2 * b), _stats("b", b))
    assert abs(ratio - 4.0) < 1e-12 and se < 1e-12


def test_a_ratio_of_independent_estimates_is_within_its_se_of_the_truth():
    # Var 4 against Var 1 per component, 3 components: ratio 4. 2,000 independent estimates each,
    # 200 repetitions (seed 1): the ratio falls within 2 SE of 4 about 95% of the time, and the
    # paired SE agrees with the independent delta method's within 20%.
    rng = np.random.default_rng(1)
    inside, se_ratios = 0, []
    for _ in range(200):
        a, b = _stats("a", 2 * rng.normal(size=(2000, 3))), _stats("b", rng.normal(size=(2000, 3)))
        ratio, se = variance_ratio(a, b)
        inside += abs(ratio - 4.0) < 2 * se
        short = _stats("b", b.estimates[:1999])       # unequal R: the independent formula
        se_ratios.append(se / variance_ratio(a, short)[1])
    assert 0.9 <= inside / 200 <= 0.99
    assert 0.8 < np.median(se_ratios) < 1.2


def test_show_stats_prints_one_row_per_estimator_with_value_pm_se(capsys):
    rng = np.random.default_rng(2)
    stats = [_stats("wide", 3 * rng.normal(size=(400, 2))), _stats("narrow", rng.normal(size=(400, 2)))]
    stats = [summarize(s.method, s.estimates, np.ones(2), 10) for s in stats]
    show_stats(stats, "a title")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "a title" and len(lines) == 5
    assert lines[3].startswith("wide") and " ± " in lines[3]
    assert lines[4].startswith("narrow") and lines[4].count(" ± ") == 3     # variance, ratio, cosine
