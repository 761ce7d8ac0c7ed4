"""Argument checks shared by the library: each raises ValueError naming the argument."""
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


def check_gamma(gamma: object) -> None:
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma: expected a number in [0, 1], got {gamma!r}")


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
    if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam: expected a number in [0, 1], got {lam!r}")


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
