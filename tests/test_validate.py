"""The argument checks of `acteach._validate`: each accepts what it promises and names the
argument in its ValueError."""
import numpy as np
import pytest

from acteach._validate import (
    check_discount_option,
    check_flag,
    check_flags,
    check_gamma,
    check_lam,
    check_seed,
    check_unit_interval,
)


def test_check_flag_takes_only_true_or_false():
    check_flag("shared", True)
    check_flag("shared", False)
    for bad in (1, 0, "yes", None, np.bool_(True), 1.0):
        with pytest.raises(ValueError, match="^shared: expected True or False"):
            check_flag("shared", bad)


def test_check_flags_returns_bool_arrays_and_names_the_argument():
    np.testing.assert_array_equal(check_flags("mask", [1, 0, 1]), [True, False, True])
    assert check_flags("mask", np.array([1.0, 0.0])).dtype == bool
    flags = np.array([[True, False]])
    assert check_flags("terminated", flags, (1, 2)) is flags
    with pytest.raises(ValueError, match=r"^terminated: expected shape \(2, 1\) \(the shape of rew\)"):
        check_flags("terminated", flags, (2, 1))
    with pytest.raises(ValueError, match=r"^done: expected shape \(3,\) \(one per row of obs\)"):
        check_flags("done", flags, (3,), "one per row of obs")
    for bad in ([0.5, 1.0], [2, 0], ["a", "b"]):
        with pytest.raises(ValueError, match="^mask: expected bool or 0/1 flags"):
            check_flags("mask", bad)


def test_check_seed_and_check_discount_option():
    for seed in (0, 7, np.int64(3)):
        check_seed(seed)
    for bad in (-1, 1.5, True, "0", None):
        with pytest.raises(ValueError, match="^seed: expected an integer >= 0"):
            check_seed(bad)
    assert check_discount_option(1) == 1 and check_discount_option(np.int64(2)) == 2
    for bad in (0, 3, True, "1", None, 1.5):
        with pytest.raises(ValueError, match="^discount_option:"):
            check_discount_option(bad)


def test_check_unit_interval_and_its_named_uses():
    for x in (0, 0.0, 0.5, 1, np.float64(1.0)):
        check_unit_interval("quantile", x)
        check_gamma(x)
        check_lam(x)
    for bad in (-0.1, 1.5, np.nan, True, "0.5", None):
        for name, call in (("quantile", lambda x: check_unit_interval("quantile", x)),
                           ("gamma", check_gamma), ("lam", check_lam)):
            with pytest.raises(ValueError, match=f"^{name}: expected a number in \\[0, 1\\]"):
                call(bad)
