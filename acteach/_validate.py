"""Argument checks shared by the library (every notebook): each raises ValueError naming the
argument and what was expected. Checks of an object the library defines (logits for an MDP,
a Batch) live beside it; the checks of plain numbers, flags and arrays live here."""
from __future__ import annotations

import numbers

import numpy as np


def check_shape(name: str, x: np.ndarray, shape: tuple, meaning: str) -> None:
    if np.shape(x) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)} {meaning}, got {np.shape(x)}")


def check_finite(name: str, x: np.ndarray) -> None:
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: expected finite numbers, got NaN or inf")


def check_positive_int(name: str, x: object) -> None:
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or x <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {x!r}")


def check_unit_interval(name: str, x: object) -> None:
    """x a real number in [0, 1] (not a bool): a discount, lam, a quantile."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not 0.0 <= x <= 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1], got {x!r}")


def check_gamma(gamma: object) -> None:
    check_unit_interval("gamma", gamma)


def check_probability_vectors(name: str, p: np.ndarray, what: str) -> None:
    """The last axis of p holds probability vectors."""
    check_finite(name, p)
    if np.any(p < 0):
        raise ValueError(f"{name}: {what} must be probabilities, got a negative entry ({p.min():g})")
    sums = p.sum(axis=-1)
    if not np.allclose(sums, 1.0, atol=1e-8):
        worst = np.abs(sums - 1).max()
        raise ValueError(f"{name}: {what} must sum to 1, off by up to {worst:.3g}")


def check_lam(lam: object) -> None:
    """lam of GAE: a number in [0, 1] (0 = the TD advantage, 1 = the bootstrapped return - V)."""
    check_unit_interval("lam", lam)


def check_real(name: str, x: object, bound: str = "any") -> None:
    """x a finite real number: bound "positive" (> 0), "nonnegative" (>= 0) or "any"."""
    ok = isinstance(x, numbers.Real) and not isinstance(x, bool) and np.isfinite(x)
    if not ok or (bound == "positive" and x <= 0) or (bound == "nonnegative" and x < 0):
        what = {"positive": "a positive number", "nonnegative": "a number >= 0",
                "any": "a finite number"}[bound]
        raise ValueError(f"{name}: expected {what}, got {x!r}")


def check_hidden(hidden: object) -> None:
    """hidden: a tuple (or list) of positive layer sizes."""
    if not isinstance(hidden, (tuple, list)):
        raise ValueError(f"hidden: expected a tuple of layer sizes, got {hidden!r}")
    for size in hidden:
        check_positive_int("hidden", size)


def check_integer(name: str, x: object) -> None:
    """x an integer (not a bool), e.g. a seed."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise ValueError(f"{name}: expected an integer, got {x!r}")


def check_seed(seed: object) -> None:
    """seed: an integer >= 0 (not a bool), as numpy's and torch's generators take."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")


def check_flag(name: str, x: object) -> None:
    """x a bool switch: True or False, never a truthy stand-in such as 1, "no" or np.bool_."""
    if not isinstance(x, bool):
        raise ValueError(f"{name}: expected True or False, got {x!r}")


def check_flags(name: str, flags: object, shape: tuple | None = None,
                meaning: str = "the shape of rew") -> np.ndarray:
    """An array of per-step flags (mask, terminated, truncated) as bool, or a ValueError naming
    it: the wrong shape (when `shape` is given; `meaning` says whose shape it is), or values
    that are not bool or 0/1."""
    flags = np.asarray(flags)
    if shape is not None and flags.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)} ({meaning}), got {flags.shape}")
    if flags.dtype != bool:
        if not np.issubdtype(flags.dtype, np.number) or not np.isin(flags, (0, 1)).all():
            raise ValueError(f"{name}: expected bool or 0/1 flags, got values other than 0 and 1")
        flags = flags.astype(bool)
    return flags


def check_discount_option(discount_option: object) -> int:
    """discount_option: 1 (practice: no gamma^t) or 2 (gamma^t: the discounted objective's
    gradient), as an int."""
    if isinstance(discount_option, bool) or discount_option not in (1, 2):
        raise ValueError(f"discount_option: expected 1 (practice: no gamma^t) or 2 (gamma^t, the "
                         f"discounted objective's gradient), got {discount_option!r}")
    return int(discount_option)
