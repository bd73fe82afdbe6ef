"""Regression and classification metrics of labels and scores, as scikit-learn defines them
(pure): the one definition of every metric modelwatch reports, its direction and its format.

prepare_inputs and defined_metrics let modelwatch.performance.resampling score the same metrics on
resamples of the rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from modelwatch.errors import ConfigError, InsufficientDataError, SchemaError

# the metric names and directions are a literal of the base (settings validates params with it)
from modelwatch.settings import METRIC_DIRECTIONS, Direction

logger = logging.getLogger(__name__)

ArrayLike = Sequence | np.ndarray | pd.Series
ScoreLike = Sequence | np.ndarray | pd.Series | pd.DataFrame


def metric_directions(task: str) -> dict[str, Direction]:
    """Returns the task's metrics with their directions (METRIC_DIRECTIONS[task]).

    Raises:
        ConfigError: the task is unknown.
    """
    if task not in METRIC_DIRECTIONS:
        raise ConfigError(f"unknown task {task!r} (accepted: {', '.join(METRIC_DIRECTIONS)})")
    return METRIC_DIRECTIONS[task]


def metric_direction(metric: str, task: str) -> Direction:
    """Returns "min" if lower is better for this metric, "max" if higher is better.

    Raises:
        ConfigError: the task or the metric is unknown.
    """
    directions = metric_directions(task)
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
    inputs = prepare_inputs(
        y_true, y_pred, task, y_score=y_score, classes=classes, positive_label=positive_label
    )
    if isinstance(inputs, ClassInputs):
        return _classification_metrics(inputs)
    return _regression_metrics(*inputs)


@dataclass(frozen=True)
class ClassInputs:
    """Classification inputs as label keys, with the scores the probabilistic metrics read."""

    true: np.ndarray  # label keys (str objects)
    pred: np.ndarray
    pos: str | None  # binary: the positive label key; None: macro averages
    score: np.ndarray | None  # binary: P(pos), 1-D; multiclass: one column per `classes` key
    classes: list[str]  # multiclass: sorted keys of the score columns


# Validated inputs: label keys for a classification, (y_true, y_pred) floats for a regression.
Inputs = ClassInputs | tuple[np.ndarray, np.ndarray]


def prepare_inputs(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    task: str,
    *,
    y_score: ScoreLike | None = None,
    classes: Sequence | None = None,
    positive_label: str | int | None = None,
) -> Inputs:
    """Returns the validated inputs of compute_metrics: float arrays for a regression, label
    keys and the scores its probabilistic metrics read for a classification.

    Raises:
        see compute_metrics.
    """
    metric_directions(task)
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
        return as_float(true, "y_true"), as_float(pred, "y_pred")
    return _classes(true, pred, score, classes, positive_label)


def defined_metrics(inputs: Inputs) -> list[str]:
    """Returns the names of the metrics compute_metrics defines on these inputs, in its order."""
    if isinstance(inputs, ClassInputs):
        return ["accuracy", "precision", "recall", "f1", *_defined_score_metrics(inputs)]
    true = inputs[0]
    # sklearn divides by max(|y|, eps) and returns ~1e15 for a zero target; that is not a score.
    # sklearn reports a constant target as r2 0.0 or 1.0 by convention; the ratio is undefined.
    return (
        ["mae", "rmse"]
        + (["mape"] if not np.any(true == 0) else [])
        + (["r2"] if np.ptp(true) > 0 else [])
    )


def as_float(values: np.ndarray, name: str) -> np.ndarray:
    """Returns the values as floats.

    Raises:
        SchemaError: a value is not a number.
    """
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
) -> ClassInputs:
    true = np.array([label_key(v) for v in true], dtype=object)
    pred = np.array([label_key(v) for v in pred], dtype=object)
    labels = sorted(set(true) | set(pred))
    keys = None if classes is None else [label_key(c) for c in classes]
    if keys is not None and len(set(keys)) != len(keys):
        raise ValueError(f"classes {keys} name a label twice")
    multiclass = len(labels) > 2 or (keys is not None and len(keys) > 2)
    pos = None if multiclass else _positive_key(positive_label, labels)
    if score is None:
        return ClassInputs(true, pred, pos, None, [])
    proba = as_float(score, "y_score")
    if proba.ndim == 1:  # P(positive): binary only, as before
        return ClassInputs(true, pred, pos, proba if pos is not None else None, [])
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
        return ClassInputs(true, pred, pos, None, [])
    if pos is None:
        return ClassInputs(true, pred, None, proba, keys)
    return ClassInputs(true, pred, pos, proba[:, keys.index(pos)] if pos in keys else None, [])


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
    return {k: float(metrics[k](true, pred)) for k in defined_metrics((true, pred))}


def _classification_metrics(c: ClassInputs) -> dict[str, float]:
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


def _defined_score_metrics(c: ClassInputs) -> list[str]:
    """Returns the score-based metrics that these labels and scores define."""
    if c.score is None:
        return []
    if c.pos is None:  # every one-vs-rest curve needs its class to occur
        return (["roc_auc", "pr_auc"] if set(c.true) == set(c.classes) else []) + ["log_loss"]
    n_pos = int(np.sum(c.true == c.pos))
    names = ["roc_auc", "pr_auc"] if 0 < n_pos < c.true.size else []
    # log loss needs probabilities; a decision function still has a roc_auc
    return names + (["log_loss"] if c.score.min() >= 0 and c.score.max() <= 1 else [])
