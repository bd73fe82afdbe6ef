"""Regression and classification metrics of a labelled batch, overall and per segment, with
percentile-bootstrap intervals and a constant model's metrics beside them (pure)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.dummy import DummyClassifier, DummyRegressor

from modelwatch.errors import ConfigError, InsufficientDataError, SchemaError
from modelwatch.settings import BootstrapSettings, DataSettings, PerformanceSettings

logger = logging.getLogger(__name__)

Direction = Literal["min", "max"]
SegmentValue = str | int | float | bool | None
ArrayLike = Sequence | np.ndarray | pd.Series
ScoreLike = Sequence | np.ndarray | pd.Series | pd.DataFrame

METRIC_DIRECTIONS: dict[str, dict[str, Direction]] = {
    "regression": {"mae": "min", "rmse": "min", "mape": "min", "r2": "max"},
    "classification": {
        "accuracy": "max",
        "precision": "max",
        "recall": "max",
        "f1": "max",
        "roc_auc": "max",
        "pr_auc": "max",
        "log_loss": "min",
    },
}

# Work arrays of the bootstrap hold at most this many (resample, row) cells at a time.
_BOOTSTRAP_CELLS = 2_000_000


def metric_direction(metric: str, task: str) -> Direction:
    """Returns "min" if lower is better for this metric, "max" if higher is better.

    Raises:
        ConfigError: the task or the metric is unknown.
    """
    directions = _directions(task)
    if metric not in directions:
        raise ConfigError(
            f"{metric!r} is not a {task} metric (accepted: {', '.join(sorted(directions))})"
        )
    return directions[metric]


def worsening(metric: str, baseline: float, current: float, task: str) -> float:
    """Returns how much worse current is than baseline, relative to |baseline| (negative = better).

    A zero baseline has no scale, so the absolute difference is returned instead.

    Raises:
        ConfigError: the task or the metric is unknown.
    """
    diff = current - baseline if metric_direction(metric, task) == "min" else baseline - current
    return diff if baseline == 0 else diff / abs(baseline)


def format_number(value: float) -> str:
    """Returns a metric value with three significant digits, without exponent below 1000."""
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def format_percent(fraction: float) -> str:
    """Returns a fraction as a percentage with at most one decimal: 0.311 -> "31.1%"."""
    return f"{fraction * 100:.1f}".rstrip("0").rstrip(".") + "%"


def label_key(value: object) -> str:
    """Returns a label as text so that labels read as int, float or str compare equal."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value).strip()


_label_key = label_key  # the earlier private name


def compute_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    task: str,
    *,
    y_score: ScoreLike | None = None,
    classes: Sequence | None = None,
    positive_label: str | int | None = None,
) -> dict[str, float]:
    """Returns the metrics of METRIC_DIRECTIONS[task] that are defined for these labels.

    Regression: mae, rmse, mape, r2 (sklearn.metrics); r2 is left out when y_true is constant and
    mape when y_true contains a zero (both undefined). Classification: accuracy, and precision,
    recall, f1 for positive_label when the task is binary, macro-averaged when more than two
    labels occur or `classes` has more than two. Labels compare by value (label_key), so 2, 2.0
    and "2" are the same label.

    Scores: y_score is either the probability of positive_label (1-D, binary), or one
    probability column per label of `classes` (2-D; rows sum to 1). roc_auc (one-vs-rest macro
    for multiclass, sklearn roc_auc_score) and pr_auc (average_precision_score, macro over
    one-vs-rest) need every class to occur in y_true; log_loss (sklearn log_loss) needs scores
    in [0, 1]. A label in y_true without a score column leaves all three out (logged).

    Raises:
        InsufficientDataError: fewer than two rows.
        SchemaError: missing values, non-numeric values in a regression, or 2-D scores that are
            not probabilities.
        ConfigError: unknown task, or binary labels without a usable positive_label.
        ValueError: arrays of different lengths, or 2-D scores without one class per column.
    """
    prepared = _prepare(y_true, y_pred, task, y_score, classes, positive_label)
    if isinstance(prepared, _Classes):
        return _classification_metrics(prepared)
    return _regression_metrics(*prepared)


def _directions(task: str) -> dict[str, Direction]:
    if task not in METRIC_DIRECTIONS:
        raise ConfigError(f"unknown task {task!r} (accepted: {', '.join(METRIC_DIRECTIONS)})")
    return METRIC_DIRECTIONS[task]


@dataclass(frozen=True)
class _Classes:
    """Classification inputs as label keys, with the scores the probabilistic metrics read."""

    true: np.ndarray  # label keys (str objects)
    pred: np.ndarray
    pos: str | None  # binary: the positive label key; None: macro averages
    score: np.ndarray | None  # binary: P(pos), 1-D; multiclass: one column per `classes` key
    classes: list[str]  # multiclass: sorted keys of the score columns


def _prepare(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    task: str,
    y_score: ScoreLike | None,
    classes: Sequence | None,
    positive_label: str | int | None,
) -> _Classes | tuple[np.ndarray, np.ndarray]:
    """Returns validated inputs: float arrays for a regression, label keys for a classification."""
    _directions(task)
    true, pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    score = None if y_score is None else np.asarray(y_score, dtype=object)
    if pred.shape != true.shape:
        raise ValueError(f"y_pred has shape {pred.shape}, y_true has {true.shape}")
    if score is not None and (score.ndim not in (1, 2) or score.shape[0] != true.shape[0]):
        raise ValueError(f"y_score has shape {score.shape}, y_true has {true.shape}")
    if (
        score is not None
        and score.ndim == 2
        and (classes is None or len(classes) != score.shape[1])
    ):
        raise ValueError(f"y_score has {score.shape[1]} columns: classes must name each of them")
    if true.size < 2:
        raise InsufficientDataError(f"{true.size} labelled row(s): metrics need at least 2")
    for name, arr in [("y_true", true), ("y_pred", pred), ("y_score", score)]:
        if arr is not None and (n := int(pd.isna(arr).sum())):
            raise SchemaError(f"{name}: {n} missing value(s) of {arr.size}")
    if task == "regression":
        return _as_float(true, "y_true"), _as_float(pred, "y_pred")
    return _classes(true, pred, score, classes, positive_label)


def _as_float(values: np.ndarray, name: str) -> np.ndarray:
    try:
        return values.astype(float)
    except (TypeError, ValueError):
        raise SchemaError(f"{name}: expected numbers, got e.g. {values.flat[0]!r}") from None


def _classes(
    true: np.ndarray,
    pred: np.ndarray,
    score: np.ndarray | None,
    classes: Sequence | None,
    positive_label: str | int | None,
) -> _Classes:
    true = np.array([label_key(v) for v in true], dtype=object)
    pred = np.array([label_key(v) for v in pred], dtype=object)
    labels = sorted(set(true) | set(pred))
    keys = None if classes is None else [label_key(c) for c in classes]
    if keys is not None and len(set(keys)) != len(keys):
        raise ValueError(f"classes {keys} name a label twice")
    multiclass = len(labels) > 2 or (keys is not None and len(keys) > 2)
    pos = None if multiclass else _positive_key(positive_label, labels)
    if score is None:
        return _Classes(true, pred, pos, None, [])
    proba = _as_float(score, "y_score")
    if proba.ndim == 1:  # P(positive): binary only, as before
        return _Classes(true, pred, pos, proba if pos is not None else None, [])
    assert keys is not None
    _check_probabilities(proba)
    order = np.argsort(np.array(keys, dtype=object), kind="stable")
    keys, proba = [keys[i] for i in order], proba[:, order]
    unknown = sorted(set(true) - set(keys))
    if unknown:
        logger.warning(
            "labels %s have no score column (classes: %s): roc_auc, pr_auc and log_loss "
            "are left out",
            unknown,
            ", ".join(keys),
        )
        return _Classes(true, pred, pos, None, [])
    if pos is None:
        return _Classes(true, pred, None, proba, keys)
    return _Classes(true, pred, pos, proba[:, keys.index(pos)] if pos in keys else None, [])


def _check_probabilities(proba: np.ndarray) -> None:
    bad = (proba.min(axis=1) < 0) | (proba.max(axis=1) > 1)
    bad |= ~np.isclose(proba.sum(axis=1), 1.0)  # the tolerance of sklearn roc_auc_score
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SchemaError(
            f"y_score: {int(bad.sum())} row(s) are not class probabilities in [0, 1] summing "
            f"to 1 (e.g. row {i}: {proba[i].round(4).tolist()})"
        )


def _positive_key(positive_label: str | int | None, labels: list[str]) -> str:
    if positive_label is None:
        raise ConfigError(
            "data.positive_label is required for binary classification "
            f"(labels seen: {', '.join(labels)})"
        )
    pos = label_key(positive_label)
    if len(labels) == 2 and pos not in labels:
        raise ConfigError(
            f"data.positive_label {positive_label!r} is not one of the labels seen "
            f"({', '.join(labels)})"
        )
    return pos


def _regression_metrics(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    metrics = {
        "mae": skm.mean_absolute_error,
        "rmse": skm.root_mean_squared_error,
        "mape": skm.mean_absolute_percentage_error,
        "r2": skm.r2_score,
    }
    return {k: float(metrics[k](true, pred)) for k in _defined_regression_metrics(true)}


def _classification_metrics(c: _Classes) -> dict[str, float]:
    out = {"accuracy": float(skm.accuracy_score(c.true, c.pred))}
    if c.pos is None:
        kwargs: dict = {"average": "macro", "zero_division": 0}
    else:
        kwargs = {"average": "binary", "pos_label": c.pos, "zero_division": 0}
    out["precision"] = float(skm.precision_score(c.true, c.pred, **kwargs))
    out["recall"] = float(skm.recall_score(c.true, c.pred, **kwargs))
    out["f1"] = float(skm.f1_score(c.true, c.pred, **kwargs))
    defined = _defined_score_metrics(c)
    if c.score is None or not defined:
        return out
    if c.pos is not None:
        is_pos = (c.true == c.pos).astype(int)
        if "roc_auc" in defined:
            out["roc_auc"] = float(skm.roc_auc_score(is_pos, c.score))
            out["pr_auc"] = float(skm.average_precision_score(is_pos, c.score))
        if "log_loss" in defined:
            out["log_loss"] = float(skm.log_loss(is_pos, y_proba=c.score, labels=[0, 1]))
        return out
    if "roc_auc" in defined:
        out["roc_auc"] = float(
            skm.roc_auc_score(c.true, c.score, multi_class="ovr", average="macro", labels=c.classes)
        )
        onehot = (c.true[:, None] == np.array(c.classes, dtype=object)[None, :]).astype(int)
        out["pr_auc"] = float(skm.average_precision_score(onehot, c.score, average="macro"))
    out["log_loss"] = float(skm.log_loss(c.true, y_proba=c.score, labels=c.classes))
    return out


def _defined_regression_metrics(true: np.ndarray) -> list[str]:
    # sklearn divides by max(|y|, eps) and returns ~1e15 for a zero target; that is not a score.
    # sklearn reports a constant target as r2 0.0 or 1.0 by convention; the ratio is undefined.
    return (
        ["mae", "rmse"]
        + (["mape"] if not np.any(true == 0) else [])
        + (["r2"] if np.ptp(true) > 0 else [])
    )


def _defined_score_metrics(c: _Classes) -> list[str]:
    """Returns the score-based metrics that these labels and scores define."""
    if c.score is None:
        return []
    if c.pos is None:  # every one-vs-rest curve needs its class to occur
        return (["roc_auc", "pr_auc"] if set(c.true) == set(c.classes) else []) + ["log_loss"]
    n_pos = int(np.sum(c.true == c.pos))
    names = ["roc_auc", "pr_auc"] if 0 < n_pos < c.true.size else []
    # log loss needs probabilities; a decision function still has a roc_auc
    return names + (["log_loss"] if c.score.min() >= 0 and c.score.max() <= 1 else [])


def ranking_areas(
    score: np.ndarray, positive_weight: np.ndarray, negative_weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Returns the ROC AUC and the average precision of `score` for each row of the weights.

    Row r gives every item i the weight positive_weight[r, i] as a positive and
    negative_weight[r, i] as a negative: bootstrap counts times the true class, or a calibrated
    probability and its complement (CBPE). Thresholds are the distinct scores, ties count half
    (the trapezoid of sklearn.metrics.roc_auc_score; average precision as
    sklearn.metrics.average_precision_score: sum of recall gains times precision). A row with
    no positive or no negative weight gets NaN for both.
    """
    score = np.asarray(score, dtype=float)
    pos_w, neg_w = np.atleast_2d(positive_weight), np.atleast_2d(negative_weight)
    order = np.argsort(-score, kind="stable")
    # one threshold per distinct score: the cumulative sums at the last item of each tie group
    ends = np.r_[np.flatnonzero(np.diff(score[order])), score.size - 1]
    tps = np.cumsum(pos_w[:, order], axis=1)[:, ends]
    fps = np.cumsum(neg_w[:, order], axis=1)[:, ends]
    zero = np.zeros((tps.shape[0], 1))
    tps0, fps0 = np.hstack([zero, tps]), np.hstack([zero, fps])
    n_pos, n_neg = tps[:, -1], fps[:, -1]
    defined = (n_pos > 0) & (n_neg > 0)
    area = np.sum(np.diff(fps0, axis=1) * (tps0[:, 1:] + tps0[:, :-1]), axis=1) / 2
    kept = tps + fps
    precision = np.divide(tps, kept, out=np.zeros_like(tps), where=kept > 0)
    gain = np.sum(np.diff(tps0, axis=1) * precision, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        roc = np.where(defined, area / (n_pos * n_neg), np.nan)
        ap = np.where(defined, gain / n_pos, np.nan)
    return roc, ap


def bootstrap_indices(n_rows: int, settings: BootstrapSettings) -> np.ndarray:
    """Returns the row indices of every resample (settings.samples x n_rows), drawn with
    numpy.random.Generator(settings.seed), the same that bootstrap_intervals uses."""
    chunks = list(_index_chunks(n_rows, settings))
    return np.vstack(chunks) if chunks else np.empty((0, n_rows), dtype=np.int64)


def _index_chunks(n_rows: int, settings: BootstrapSettings) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(settings.seed)
    step = max(1, _BOOTSTRAP_CELLS // max(n_rows, 1))
    for start in range(0, settings.samples, step):
        yield rng.integers(0, n_rows, size=(min(step, settings.samples - start), n_rows))


def resampled_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    task: str,
    indices: np.ndarray,
    *,
    y_score: ScoreLike | None = None,
    classes: Sequence | None = None,
    positive_label: str | int | None = None,
) -> dict[str, np.ndarray]:
    """Returns each metric of compute_metrics on each resample (one row of indices), vectorised;
    NaN where a metric is undefined on that resample.

    Only metrics that compute_metrics defines on all rows are returned; the averaging (binary or
    macro) is the one of all rows.

    Raises:
        see compute_metrics.
    """
    prepared = _prepare(y_true, y_pred, task, y_score, classes, positive_label)
    return _resampled(prepared, np.atleast_2d(np.asarray(indices, dtype=np.int64)))


def _resampled(
    prepared: _Classes | tuple[np.ndarray, np.ndarray], indices: np.ndarray
) -> dict[str, np.ndarray]:
    if isinstance(prepared, _Classes):
        wanted = ["accuracy", "precision", "recall", "f1", *_defined_score_metrics(prepared)]
        got = _resampled_classification(prepared, _counts(indices, prepared.true.size))
    else:
        wanted = _defined_regression_metrics(prepared[0])
        got = _resampled_regression(*prepared, indices)
    return {k: got[k] for k in wanted}


def _counts(indices: np.ndarray, n_rows: int) -> np.ndarray:
    """Returns how often each row occurs in each resample (resamples x rows)."""
    offsets = indices + n_rows * np.arange(indices.shape[0])[:, None]
    flat = np.bincount(offsets.ravel(), minlength=indices.shape[0] * n_rows)
    return flat.reshape(indices.shape[0], n_rows).astype(float)


def _resampled_regression(
    true: np.ndarray, pred: np.ndarray, indices: np.ndarray
) -> dict[str, np.ndarray]:
    t, err = true[indices], pred[indices] - true[indices]
    out = {"mae": np.mean(np.abs(err), axis=1), "rmse": np.sqrt(np.mean(err**2, axis=1))}
    with np.errstate(divide="ignore", invalid="ignore"):
        out["mape"] = np.mean(np.abs(err) / np.abs(t), axis=1)
        ss_tot = np.sum((t - t.mean(axis=1, keepdims=True)) ** 2, axis=1)
        r2 = 1 - np.sum(err**2, axis=1) / ss_tot
    out["r2"] = np.where(np.ptp(t, axis=1) > 0, r2, np.nan)
    return out


def _resampled_classification(c: _Classes, counts: np.ndarray) -> dict[str, np.ndarray]:
    n = c.true.size
    out = {"accuracy": counts @ (c.true == c.pred).astype(float) / n}
    labels = sorted(set(c.true) | set(c.pred)) if c.pos is None else [c.pos]
    tp = _weighted_counts(counts, [(c.true == k) & (c.pred == k) for k in labels])
    pp = _weighted_counts(counts, [c.pred == k for k in labels])
    ap = _weighted_counts(counts, [c.true == k for k in labels])
    per_label = {
        "precision": _ratio(tp, pp),
        "recall": _ratio(tp, ap),
        "f1": _ratio(2 * tp, pp + ap),
    }
    present = (pp + ap) > 0  # sklearn's macro average runs over the labels that occur
    for name, values in per_label.items():
        if c.pos is not None:
            out[name] = values[:, 0]
        else:
            out[name] = np.sum(values * present, axis=1) / np.sum(present, axis=1)
    if _defined_score_metrics(c):
        out |= _resampled_scores(c, counts)
    return out


def _weighted_counts(counts: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """Returns, per resample (row of counts), how many resampled rows each mask selects."""
    return counts @ np.column_stack(masks).astype(float)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (sklearn's zero_division=0)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


def _resampled_scores(c: _Classes, counts: np.ndarray) -> dict[str, np.ndarray]:
    assert c.score is not None
    eps = np.finfo(float).eps  # sklearn.metrics.log_loss clips probabilities to [eps, 1 - eps]
    if c.pos is not None:
        is_pos = c.true == c.pos
        roc, ap = ranking_areas(c.score, counts * is_pos, counts * ~is_pos)
        p_true = np.where(is_pos, c.score, 1 - c.score)
    else:
        curves = [
            ranking_areas(c.score[:, j], counts * (c.true == k), counts * (c.true != k))
            for j, k in enumerate(c.classes)
        ]
        roc = np.mean([r for r, _ in curves], axis=0)
        ap = np.mean([a for _, a in curves], axis=0)
        column = np.searchsorted(np.array(c.classes, dtype=object), c.true)
        p_true = c.score[np.arange(c.true.size), column]
    loss = -np.log(np.clip(p_true, eps, 1 - eps))
    return {"roc_auc": roc, "pr_auc": ap, "log_loss": counts @ loss / c.true.size}


def bootstrap_intervals(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    task: str,
    *,
    y_score: ScoreLike | None = None,
    classes: Sequence | None = None,
    positive_label: str | int | None = None,
    settings: BootstrapSettings,
) -> dict[str, tuple[float, float]]:
    """Returns a percentile-bootstrap confidence interval of each metric of compute_metrics.

    settings.samples resamples of the rows (with replacement, bootstrap_indices); a metric's
    interval is the (1 - confidence) / 2 and (1 + confidence) / 2 quantiles (numpy.percentile,
    linear) of its values on the resamples where it is defined. Empty with 0 samples.

    Raises:
        see compute_metrics.
    """
    if settings.samples == 0:
        return {}
    prepared = _prepare(y_true, y_pred, task, y_score, classes, positive_label)
    n_rows = prepared.true.size if isinstance(prepared, _Classes) else prepared[0].size
    values: dict[str, list[np.ndarray]] = {}
    for indices in _index_chunks(n_rows, settings):
        for name, v in _resampled(prepared, indices).items():
            values.setdefault(name, []).append(v)
    tail = (1 - settings.confidence) / 2 * 100
    out = {}
    for name, parts in values.items():
        v = np.concatenate(parts)
        v = v[np.isfinite(v)]
        if v.size:
            low, high = np.percentile(v, [tail, 100 - tail])
            out[name] = (float(low), float(high))
    return out


def baseline_metrics(
    reference_target: ArrayLike,
    y_true: ArrayLike,
    task: str,
    *,
    positive_label: str | int | None = None,
) -> dict[str, float]:
    """Returns the metrics of a constant model fitted on the reference target, scored on y_true:
    sklearn.dummy.DummyRegressor(strategy="mean") or DummyClassifier(strategy="prior") (its
    majority class as prediction, the reference class shares as scores).

    Raises:
        InsufficientDataError: the reference target has no values.
        see compute_metrics.
    """
    _directions(task)
    ref = np.asarray(reference_target, dtype=object)
    ref = ref[~pd.isna(ref)]
    if ref.size == 0:
        raise InsufficientDataError("reference target has no values: no constant model to fit")
    fit_x, x = np.zeros((ref.size, 1)), np.zeros((len(y_true), 1))
    if task == "regression":
        regressor = DummyRegressor(strategy="mean").fit(fit_x, _as_float(ref, "reference target"))
        return compute_metrics(y_true, regressor.predict(x), task)
    keys = np.array([label_key(v) for v in ref], dtype=object)
    classifier = DummyClassifier(strategy="prior").fit(fit_x, keys)
    return compute_metrics(
        y_true,
        classifier.predict(x),
        task,
        y_score=classifier.predict_proba(x),
        classes=list(classifier.classes_),
        positive_label=positive_label,
    )


@dataclass(frozen=True)
class SegmentPerformance:
    """Metrics of the rows where `column == value`; empty when the segment is too small."""

    column: str
    value: SegmentValue
    n_rows: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class PerformanceReport:
    """Metrics of one labelled batch, overall and per segment value, with a bootstrap interval
    of each overall metric and a constant model's metrics on the same rows."""

    task: str
    n_rows: int
    metrics: dict[str, float]
    segments: tuple[SegmentPerformance, ...] = ()
    n_missing_target: int = 0
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """Returns one sentence: "mae 41.2 (CI 38.1 to 44.9; constant model 80.3), rmse 60.3,
        r2 0.71 on 168 rows"; the interval and the constant model are those of the first metric."""
        parts = [f"{k} {format_number(v)}" for k, v in self.metrics.items()]
        if parts:
            first = next(iter(self.metrics))
            extra = []
            if first in self.intervals:
                low, high = self.intervals[first]
                extra.append(f"CI {format_number(low)} to {format_number(high)}")
            if first in self.baseline:
                extra.append(f"constant model {format_number(self.baseline[first])}")
            if extra:
                parts[0] += f" ({'; '.join(extra)})"
        text = f"{', '.join(parts) or 'no metrics'} on {self.n_rows} rows"
        if self.n_missing_target:
            text += f" ({self.n_missing_target} rows without a target left out)"
        return text

    def to_dict(self) -> dict:
        """Returns a JSON-compatible dict; from_dict reads it back."""
        return {
            "task": self.task,
            "n_rows": self.n_rows,
            "n_missing_target": self.n_missing_target,
            "metrics": dict(self.metrics),
            "intervals": {k: [low, high] for k, (low, high) in self.intervals.items()},
            "baseline": dict(self.baseline),
            "segments": [
                {
                    "column": s.column,
                    "value": s.value,
                    "n_rows": s.n_rows,
                    "metrics": dict(s.metrics),
                }
                for s in self.segments
            ],
        }

    @classmethod
    def from_dict(cls, raw: Mapping) -> PerformanceReport:
        """Returns the report that to_dict wrote (reports written before intervals and baseline
        existed read back with both empty)."""
        segments = tuple(
            SegmentPerformance(
                s["column"],
                s["value"],
                int(s["n_rows"]),
                {k: float(v) for k, v in s["metrics"].items()},
            )
            for s in raw.get("segments", [])
        )
        return cls(
            task=raw["task"],
            n_rows=int(raw["n_rows"]),
            metrics={k: float(v) for k, v in raw["metrics"].items()},
            segments=segments,
            n_missing_target=int(raw.get("n_missing_target", 0)),
            intervals={
                k: (float(low), float(high)) for k, (low, high) in raw.get("intervals", {}).items()
            },
            baseline={k: float(v) for k, v in raw.get("baseline", {}).items()},
        )


def evaluate_frame(
    frame: pd.DataFrame,
    data: DataSettings,
    task: str,
    settings: PerformanceSettings,
    *,
    score_column: str | None = None,
    score_columns: Mapping[str | int, str] | None = None,
    reference_target: pd.Series | None = None,
) -> PerformanceReport:
    """Returns the metrics of a frame of targets and predictions, overall and per segment value.

    Rows without a target are left out and counted in `n_missing_target`. Segment values with
    fewer than settings.min_segment_rows rows are listed with their row count and no metrics.
    Scores: score_column holds the positive-class probability (binary); score_columns maps each
    class to its probability column (multiclass). The overall metrics get bootstrap intervals
    (settings.bootstrap) and, with a reference_target, the metrics of a constant model fitted on
    it (baseline_metrics).

    Raises:
        SchemaError: a needed column is absent, or predictions/scores are missing.
        InsufficientDataError: fewer than two rows have a target, or the reference target is
            empty.
        ConfigError: see compute_metrics.
        ValueError: both score_column and score_columns are given.
    """
    if score_column and score_columns:
        raise ValueError("give score_column (binary) or score_columns (multiclass), not both")
    scores = [score_column] if score_column else list((score_columns or {}).values())
    needed = [data.target, data.prediction, *scores, *data.segments]
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise SchemaError(f"columns {absent} are missing (frame has {list(frame.columns)})")
    labelled = frame.loc[frame[data.target].notna()]
    n_missing = len(frame) - len(labelled)
    if n_missing:
        logger.info(
            "performance: %d of %d rows have no %r and are left out",
            n_missing,
            len(frame),
            data.target,
        )
    for col in [data.prediction, *scores]:
        if n := int(labelled[col].isna().sum()):
            raise SchemaError(
                f"column {col!r}: {n} missing value(s) in {len(labelled)} labelled rows"
            )
    if len(labelled) < 2:
        raise InsufficientDataError(
            f"{len(labelled)} of {len(frame)} rows have a target "
            f"{data.target!r}: metrics need at least 2"
        )
    classes = list(score_columns) if score_columns else None

    def inputs(rows: pd.DataFrame) -> dict:
        y_score = None
        if score_column:
            y_score = rows[score_column].to_numpy()
        elif score_columns:
            y_score = rows[scores].to_numpy(dtype=float)
        return {"y_score": y_score, "classes": classes, "positive_label": data.positive_label}

    def score(rows: pd.DataFrame) -> dict[str, float]:
        return compute_metrics(rows[data.target], rows[data.prediction], task, **inputs(rows))

    segments = tuple(_segments(labelled, data.segments, settings.min_segment_rows, score))
    intervals = bootstrap_intervals(
        labelled[data.target].to_numpy(),
        labelled[data.prediction].to_numpy(),
        task,
        settings=settings.bootstrap,
        **inputs(labelled),
    )
    baseline = {}
    if reference_target is not None:
        baseline = baseline_metrics(
            reference_target, labelled[data.target], task, positive_label=data.positive_label
        )
    return PerformanceReport(
        task=task,
        n_rows=len(labelled),
        metrics=score(labelled),
        segments=segments,
        n_missing_target=n_missing,
        intervals=intervals,
        baseline=baseline,
    )


def _segments(
    frame: pd.DataFrame,
    columns: list[str],
    min_rows: int,
    score: Callable[[pd.DataFrame], dict[str, float]],
) -> list[SegmentPerformance]:
    out = []
    for col in columns:
        for value, rows in frame.groupby(col, dropna=False, sort=True, observed=True):
            value = _plain(value[0] if isinstance(value, tuple) else value)
            # compute_metrics needs two rows even when min_segment_rows allows one
            metrics = score(rows) if len(rows) >= max(min_rows, 2) else {}
            out.append(SegmentPerformance(col, value, len(rows), metrics))
    return out


def _plain(value: object) -> SegmentValue:
    """Returns a JSON-friendly Python scalar (numpy scalars unwrapped, NaN as None)."""
    if pd.isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value  # type: ignore[return-value]
