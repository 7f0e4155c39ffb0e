"""Statistics of a method over seeds, and its paired comparison with the baseline on the same seeds."""
import math

import numpy as np
from scipy import stats as scipy_stats

__all__ = ['describe', 'paired_comparison', 'mean_interval', 'half_width_factor', 'CONFIDENCE']

CONFIDENCE = 0.95


def describe(values):
    """``{'n', 'mean', 'std'}`` of ``values``; ``std`` is the sample standard deviation (ddof = 1), NaN for n < 2."""
    values = np.asarray(list(values), dtype=float)
    if values.size == 0:
        return {'n': 0, 'mean': math.nan, 'std': math.nan}
    std = float(values.std(ddof=1)) if values.size > 1 else math.nan
    return {'n': int(values.size), 'mean': float(values.mean()), 'std': std}


def mean_interval(values, confidence=CONFIDENCE):
    """``(low, high)``: the Student-t confidence interval of the mean of ``values``, mean -+ t * std / sqrt(n)
    with t the ``(1 + confidence) / 2`` quantile at n - 1 degrees of freedom; NaNs for n < 2. Constant values
    give a zero-width interval."""
    summary = describe(values)
    if summary['n'] < 2:
        return math.nan, math.nan
    half = half_width_factor(summary['n'], confidence) * summary['std']
    return summary['mean'] - half, summary['mean'] + half


def half_width_factor(n, confidence=CONFIDENCE):
    """t / sqrt(n): the interval's half-width per unit of sample std for ``n`` values (NaN for n < 2)."""
    return scipy_stats.t.ppf((1 + confidence) / 2, n - 1) / math.sqrt(n) if n > 1 else math.nan


def paired_comparison(method_by_seed, baseline_by_seed):
    """The paired difference ``method - baseline`` over the seeds both have, its 95 % t-interval and the paired
    t-test's p-value.

    Runs with the same seed share the split, the initialisation seed and the teacher, so the per-seed
    difference removes what the seed alone explains. Returns ``{'n', 'mean_diff', 'std_diff', 'ci_low',
    'ci_high', 't', 'p_value'}`` (``scipy.stats.ttest_rel``, two-sided; the interval is
    :func:`mean_interval` of the differences); t and p are NaN for fewer than 2 pairs or when every difference
    is the same.
    """
    seeds = sorted(set(method_by_seed) & set(baseline_by_seed))
    method = np.array([method_by_seed[seed] for seed in seeds], dtype=float)
    baseline = np.array([baseline_by_seed[seed] for seed in seeds], dtype=float)
    summary = describe(method - baseline)
    t_statistic, p_value = math.nan, math.nan
    if len(seeds) > 1 and not np.all(method - baseline == (method - baseline)[0]):
        result = scipy_stats.ttest_rel(method, baseline)
        t_statistic, p_value = float(result.statistic), float(result.pvalue)
    low, high = mean_interval(method - baseline)
    return {'n': len(seeds), 'mean_diff': summary['mean'], 'std_diff': summary['std'], 'ci_low': low,
            'ci_high': high, 't': t_statistic, 'p_value': p_value}
