"""Whether a challenger's gain over the champion is more than chance, both models scored on the
same holdout rows (pure): a paired bootstrap of the metric difference, and McNemar's exact test
of the rows only one of them gets right.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import scipy.stats

from modelwatch.errors import ConfigError, InsufficientDataError
from modelwatch.performance.metrics import (
    compute_metrics,
    defined_metrics,
    metric_direction,
    prepare_inputs,
)
from modelwatch.performance.resampling import bootstrap_chunks, resample

Value = TypeVar("Value", float, np.ndarray)

# A metric on resamples: row indices (k, n) -> its value on each of the k resamples
ResampledMetric = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Predictions:
    """One model's predictions on the holdout rows; scores = positive-class probabilities."""

    labels: np.ndarray
    scores: np.ndarray | None = None


@dataclass(frozen=True)
class BootstrapResult:
    """Paired bootstrap of the metric gain (positive = challenger better, metric units)."""

    difference: float  # on the whole holdout
    low: float
    high: float
    confidence: float
    samples: int
    undefined: int  # resamples on which the metric is undefined for either model, left out
    differences: np.ndarray  # per resample, NaN where undefined


def gain(metric: str, cand: Value, champ: Value, task: str) -> Value:
    """Returns cand - champ in the metric's better direction (positive = challenger better).

    Raises:
        ConfigError: the task or the metric is unknown.
    """
    return cand - champ if metric_direction(metric, task) == "max" else champ - cand


def mcnemar_exact(wins: int, losses: int) -> float:
    """Returns the two-sided exact McNemar p-value of the discordant pairs.

    wins: rows the challenger gets right and the champion wrong; losses: the reverse. Under the
    null each discordant row is a win with probability 1/2, so p = min(1, 2 P(X <= min)) with
    X ~ Binomial(wins + losses, 1/2) (scipy.stats.binom; equals scipy.stats.binomtest).
    """
    n = wins + losses
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * float(scipy.stats.binom.cdf(min(wins, losses), n, 0.5)))


def paired_differences(
    y_true: np.ndarray,
    candidate: Predictions,
    champion: Predictions,
    metric: str,
    task: str,
    indices: np.ndarray,
    *,
    positive_label: str | int | None = None,
) -> np.ndarray:
    """Returns the challenger's gain (metric units, positive = better) on each resample, both
    models scored on the same rows: one resample per row of `indices`; NaN where undefined.

    Raises:
        ConfigError, SchemaError, InsufficientDataError: see metrics.compute_metrics.
    """
    cand = resampled_metric(y_true, candidate, metric, task, positive_label=positive_label)
    champ = resampled_metric(y_true, champion, metric, task, positive_label=positive_label)
    return gain(metric, cand(indices), champ(indices), task)


def paired_bootstrap(
    y_true: np.ndarray,
    candidate: Predictions,
    champion: Predictions,
    metric: str,
    task: str,
    *,
    samples: int,
    confidence: float,
    seed: int,
    positive_label: str | int | None = None,
    expected: tuple[float, float] | None = None,
) -> BootstrapResult:
    """Returns the percentile confidence interval of the challenger's gain over the champion.

    Each resample draws the rows with replacement (resampling.bootstrap_chunks) and scores both
    models on those same rows (paired). Reference: the percentile interval of Efron & Tibshirani
    (1993), numpy.quantile with linear interpolation at (1 - confidence) / 2 and its complement.
    `expected`: both models' metric on the whole holdout, when the caller already has them.

    Raises:
        ConfigError, SchemaError, InsufficientDataError: see metrics.compute_metrics.
    """
    n = len(y_true)
    known = (None, None) if expected is None else expected
    cand, champ = (
        resampled_metric(y_true, p, metric, task, positive_label=positive_label, expected=e)
        for p, e in zip((candidate, champion), known, strict=True)
    )
    whole = np.arange(n)[None, :]
    difference = float(gain(metric, cand(whole), champ(whole), task)[0])
    parts = [
        gain(metric, cand(idx), champ(idx), task) for idx in bootstrap_chunks(n, samples, seed)
    ]
    diffs = np.concatenate(parts) if parts else np.empty(0)
    valid = diffs[np.isfinite(diffs)]
    alpha = 1 - confidence
    low, high = np.quantile(valid, [alpha / 2, 1 - alpha / 2]) if valid.size else (np.nan, np.nan)
    return BootstrapResult(
        difference=difference,
        low=float(low),
        high=float(high),
        confidence=confidence,
        samples=len(diffs),
        undefined=int(len(diffs) - valid.size),
        differences=diffs,
    )


def resampled_metric(
    y_true: np.ndarray,
    preds: Predictions,
    metric: str,
    task: str,
    *,
    positive_label: str | int | None = None,
    expected: float | None = None,
) -> ResampledMetric:
    """Returns a function that scores the metric on resamples of the rows (NaN where undefined).

    The vectorised form (resampling.resample) is used when the metric is defined on the whole
    holdout and reproduces metrics.compute_metrics there (`expected`, when the caller already
    has it); otherwise each resample goes through compute_metrics, one after the other.

    Raises:
        ConfigError, SchemaError, InsufficientDataError: see metrics.compute_metrics.
    """
    y_true = np.asarray(y_true)
    full = expected
    if full is None:
        full = compute_metrics(
            y_true, preds.labels, task, y_score=preds.scores, positive_label=positive_label
        ).get(metric)
    fast = _fast_metric(y_true, preds, metric, task, positive_label)
    if fast is not None and full is not None:
        whole = float(fast(np.arange(len(y_true))[None, :])[0])
        if math.isclose(whole, full, rel_tol=1e-9, abs_tol=1e-12):
            return fast

    def loop(indices: np.ndarray) -> np.ndarray:
        out = np.full(len(indices), np.nan)
        for i, rows in enumerate(indices):
            try:
                value = compute_metrics(
                    y_true[rows],
                    preds.labels[rows],
                    task,
                    y_score=None if preds.scores is None else preds.scores[rows],
                    positive_label=positive_label,
                ).get(metric)
            except (InsufficientDataError, ConfigError):
                continue  # undefined on this resample (e.g. a single label); counted by the caller
            out[i] = np.nan if value is None else value
        return out

    return loop


def _fast_metric(
    y_true: np.ndarray,
    preds: Predictions,
    metric: str,
    task: str,
    positive_label: str | int | None,
) -> ResampledMetric | None:
    """Returns the metric vectorised over resamples, or None where compute_metrics does not
    define it on all rows."""
    inputs = prepare_inputs(
        y_true, preds.labels, task, y_score=preds.scores, positive_label=positive_label
    )
    if metric not in defined_metrics(inputs):
        return None
    return lambda indices: resample(inputs, indices, (metric,))[metric]
