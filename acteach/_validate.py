"""Argument checks shared by the library (every notebook): each raises ValueError naming the
argument and what was expected. Checks of an object the library defines (logits for an MDP,
a Batch) live beside it; the checks of plain numbers, flags and arrays live here."""
from __future__ import annotations

import dataclasses
import difflib
import numbers
from typing import Any

import numpy as np

#: The most memory one array may take before it is refused (by name) instead of letting numpy
#: raise a bare MemoryError, or the machine swap: 4 GiB.
MAX_BYTES = 4 * 2**30


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
        what = {"positive": "a finite number > 0", "nonnegative": "a finite number >= 0",
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


def check_seed(seed: object, name: str = "seed") -> None:
    """seed: an integer >= 0 (not a bool), as numpy's and torch's generators take."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{name}: expected an integer >= 0, got {seed!r}")


def as_rng(rng: object, name: str = "rng") -> np.random.Generator:
    """A numpy Generator from `rng`: a Generator (returned as it is, so draws continue from its
    state) or an integer seed >= 0 (a fresh `np.random.default_rng(seed)`). Anything else, None
    included (a run must be reproducible), is a ValueError naming the argument."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, bool) or not isinstance(rng, numbers.Integral) or rng < 0:
        raise ValueError(f"{name}: expected a numpy Generator (np.random.default_rng(seed)) or "
                         f"an integer seed >= 0, got {rng!r}")
    return np.random.default_rng(int(rng))


def check_size(name: str, n_elements: float, itemsize: int = 8, what: str = "") -> None:
    """Refuse, before allocating, an array of n_elements items of itemsize bytes that would take
    more than MAX_BYTES; the message names the argument and the size asked for."""
    need = float(n_elements) * itemsize
    if need > MAX_BYTES:
        raise ValueError(f"{name}: {what + ' ' if what else ''}would need {need / 2**30:,.1f} GiB "
                         f"({n_elements:,.0f} numbers), more than the {MAX_BYTES // 2**30} GiB "
                         "allowed; use a smaller size")


def check_array(name: str, x: object, ndim: int | None = None, meaning: str = "") -> np.ndarray:
    """x as a float64 array of finite numbers (NaN/inf, strings, objects and bools refused);
    ndim: the number of axes expected (meaning: the shape in words, e.g. "(T, N)")."""
    if hasattr(x, "detach") and hasattr(x, "numpy"):         # a torch tensor, maybe with grad
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.number)):
        raise ValueError(f"{name}: expected an array of numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} axes {meaning}, got shape {arr.shape}")
    check_finite(name, arr)
    return arr


class StrictConfig:
    """A config dataclass that refuses unknown attribute names, also after construction
    (`config.lr_actr = 1e-2` is a TypeError naming lr_actr, with the closest field), and checks
    every field again when one is set (`validate()`; a bad value is refused and the old kept).
    A subclass defines `validate()`; `__post_init__` calls it."""

    def __post_init__(self) -> None:
        self.validate()
        object.__setattr__(self, "_ready", True)

    def validate(self) -> None:          # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __setattr__(self, name: str, value: Any) -> None:
        fields = [f.name for f in dataclasses.fields(self)]  # type: ignore[arg-type]
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise TypeError(f"{name}: {type(self).__name__} has no field {name!r}{hint} "
                            f"(fields: {', '.join(fields)})")
        if not self.__dict__.get("_ready", False):
            object.__setattr__(self, name, value)
            return
        old = getattr(self, name)
        object.__setattr__(self, name, value)
        try:
            self.validate()
        except Exception:
            object.__setattr__(self, name, old)
            raise


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
