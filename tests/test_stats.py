"""acteach.stats: the t quantile, the mean's interval and Welch's interval, against scipy.stats
values (scipy is not installed by the course: the numbers are written here)."""
import numpy as np
import pytest

from acteach.stats import mean_ci, mean_se, t_quantile, welch_interval


@pytest.mark.parametrize("p, df, expected", [(0.975, 1, 12.706204736174696),
                                             (0.975, 2, 4.302652729749464),
                                             (0.975, 3, 3.182446305284263),
                                             (0.975, 11, 2.200985160091639),
                                             (0.975, 20, 2.085963447265864),
                                             (0.95, 8, 1.8595480375308973)])
def test_t_quantile_matches_scipy(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=5e-3 if df == 3 else 1e-4)


def test_mean_ci_is_students_t_interval():
    mean, half = mean_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and half == pytest.approx(3.1824 * np.std([1, 2, 3, 4], ddof=1) / 2,
                                                 rel=2e-3)
    means, halves = mean_ci(np.array([[0.0, 1.0], [2.0, 1.0]]), axis=0)    # 2 runs: t = 12.706
    np.testing.assert_allclose(means, [1.0, 1.0])
    np.testing.assert_allclose(halves, [12.7062, 0.0], rtol=1e-4)
    assert np.isnan(mean_ci([3.0])[1])                                   # one run: no interval


def test_welch_interval_matches_scipy():
    diff, low, high = welch_interval([1, 2, 3, 4], [2, 4, 6, 8, 10])
    assert diff == pytest.approx(-3.5)
    assert (low, high) == pytest.approx((-7.385368080514045, 0.3853680805140449), abs=1e-3)


@pytest.mark.parametrize("call, argument", [
    (lambda: welch_interval([1, 2], [1, 2, 3]), "a"),
    (lambda: mean_ci([]), "values"),
    (lambda: mean_ci([1.0, 2.0], level=1.5), "level"),
    (lambda: t_quantile(0.3, 5), "p"),
    (lambda: t_quantile(0.975, 0.5), "df"),
])
def test_bad_input_is_refused_by_name(call, argument):
    with pytest.raises(ValueError, match=f"^{argument}:"):
        call()


def test_mean_se_is_the_sd_over_root_k():
    mean, se = mean_se([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and se == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    with pytest.raises(ValueError, match="^values:"):
        mean_se([1.0])
