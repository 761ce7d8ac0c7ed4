"""Confidence intervals over independent runs (seeds): the learning experiments of notebooks
06, 07 and 09 and their sweeps in assets/ state every conclusion with one of these.

    t_quantile      Student's t quantile, without scipy
    mean_se         a mean over runs and its standard error
    mean_ci         a mean over runs and the half-width of its t-interval
    welch_interval  a difference of two means and its Welch t-interval (unequal variances)
"""
from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from acteach._validate import check_unit_interval


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with df degrees of freedom, 0.5 <= p < 1, df >= 1.

    df = 1 and 2 are exact (closed forms); from df = 3 on, the Cornish-Fisher expansion in
    1/df around the normal quantile (Abramowitz & Stegun 26.7.5): at p = 0.975 its error is
    4e-3 at df = 3, 3e-4 at df = 5 and below 1e-5 from df = 11. A fractional df below 3 (a
    Welch interval of tiny samples) is rounded down, which widens the interval."""
    if not 0.5 <= p < 1:
        raise ValueError(f"p: expected a probability in [0.5, 1), got {p!r}")
    if not df >= 1:
        raise ValueError(f"df: expected degrees of freedom >= 1, got {df!r}")
    if df < 3:
        if math.floor(df) == 1:
            return math.tan(math.pi * (p - 0.5))
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    z = NormalDist().inv_cdf(p)
    terms = [z, (z**3 + z) / 4, (5 * z**5 + 16 * z**3 + 3 * z) / 96,
             (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
             (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160]
    return float(sum(term / df**k for k, term in enumerate(terms)))


def mean_se(values) -> tuple[float, float]:
    """(mean, standard error of the mean) of independent runs: sd (ddof 1) / sqrt(K), K >= 2."""
    values = np.asarray(values, dtype=float).ravel()
    if len(values) < 2:
        raise ValueError(f"values: a standard error needs at least 2 runs, got {len(values)}")
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def mean_ci(values, axis: int = 0, level: float = 0.95):
    """(mean, half-width) of the `level` confidence interval of the mean along `axis`:
    Student's t with K - 1 degrees of freedom over K independent runs. One run has no interval:
    its half-width is NaN. Floats for 1-D values, arrays otherwise."""
    check_unit_interval("level", level)
    values = np.asarray(values, dtype=float)
    k = values.shape[axis] if values.ndim else 0
    if k == 0:
        raise ValueError(f"values: expected at least one run along axis {axis}, got none")
    mean = values.mean(axis=axis)
    if k == 1:
        half = np.full_like(mean, np.nan)
    else:
        half = t_quantile(0.5 + level / 2, k - 1) * values.std(axis=axis, ddof=1) / np.sqrt(k)
    if np.ndim(mean) == 0:
        return float(mean), float(half)
    return mean, half


def welch_interval(a, b, level: float = 0.95) -> tuple[float, float, float]:
    """mean(a) - mean(b) and its Welch t-interval (unequal variances, Welch-Satterthwaite
    degrees of freedom): -> (difference, low, high). a, b: at least 3 numbers each."""
    check_unit_interval("level", level)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 3 or len(b) < 3:
        raise ValueError(f"a: expected at least 3 values in a and in b, got {len(a)} and {len(b)}")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else math.inf
    half = t_quantile(0.5 + level / 2, df) * se if se > 0 else 0.0
    diff = float(a.mean() - b.mean())
    return diff, diff - half, diff + half
