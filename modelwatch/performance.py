"""Regression and classification metrics of a labelled batch, overall and per segment (pure)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from modelwatch.errors import ConfigError, InsufficientDataError, SchemaError
from modelwatch.settings import DataSettings, PerformanceSettings

logger = logging.getLogger(__name__)

Direction = Literal["min", "max"]
SegmentValue = str | int | float | bool | None

METRIC_DIRECTIONS: dict[str, dict[str, Direction]] = {
    "regression": {"mae": "min", "rmse": "min", "mape": "min", "r2": "max"},
    "classification": {
        "accuracy": "max",
        "precision": "max",
        "recall": "max",
        "f1": "max",
        "roc_auc": "max",
    },
}


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


def compute_metrics(
    y_true: Sequence | np.ndarray | pd.Series,
    y_pred: Sequence | np.ndarray | pd.Series,
    task: str,
    *,
    y_score: Sequence | np.ndarray | pd.Series | None = None,
    positive_label: str | int | None = None,
) -> dict[str, float]:
    """Returns the metrics of METRIC_DIRECTIONS[task] that are defined for these labels.

    Regression: mae, rmse, mape, r2 (sklearn.metrics); r2 is left out when y_true is constant and
    mape when y_true contains a zero (both undefined). Classification: accuracy, and precision,
    recall, f1 for positive_label when at most two labels occur, macro-averaged otherwise;
    roc_auc from y_score (probability of positive_label) when both classes occur in y_true.
    Labels compare by value, so 2, 2.0 and "2" are the same label.

    Raises:
        InsufficientDataError: fewer than two rows.
        SchemaError: missing values, or non-numeric values in a regression.
        ConfigError: unknown task, or binary labels without a usable positive_label.
    """
    _directions(task)
    true, pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    score = None if y_score is None else np.asarray(y_score, dtype=object)
    for name, arr in [("y_pred", pred), ("y_score", score)]:
        if arr is not None and arr.shape != true.shape:
            raise ValueError(f"{name} has shape {arr.shape}, y_true has {true.shape}")
    if true.size < 2:
        raise InsufficientDataError(f"{true.size} labelled row(s): metrics need at least 2")
    for name, arr in [("y_true", true), ("y_pred", pred), ("y_score", score)]:
        if arr is not None and (n := int(pd.isna(arr).sum())):
            raise SchemaError(f"{name}: {n} missing value(s) of {arr.size}")
    if task == "regression":
        return _regression_metrics(_as_float(true, "y_true"), _as_float(pred, "y_pred"))
    proba = None if score is None else _as_float(score, "y_score")
    return _classification_metrics(true, pred, proba, positive_label)


def _directions(task: str) -> dict[str, Direction]:
    if task not in METRIC_DIRECTIONS:
        raise ConfigError(f"unknown task {task!r} (accepted: {', '.join(METRIC_DIRECTIONS)})")
    return METRIC_DIRECTIONS[task]


def _as_float(values: np.ndarray, name: str) -> np.ndarray:
    try:
        return values.astype(float)
    except (TypeError, ValueError):
        raise SchemaError(f"{name}: expected numbers, got e.g. {values[0]!r}") from None


def _regression_metrics(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    out = {
        "mae": float(skm.mean_absolute_error(true, pred)),
        "rmse": float(skm.root_mean_squared_error(true, pred)),
    }
    # sklearn divides by max(|y|, eps) and returns ~1e15 for a zero target; that is not a score.
    if not np.any(true == 0):
        out["mape"] = float(skm.mean_absolute_percentage_error(true, pred))
    # sklearn reports a constant target as r2 0.0 or 1.0 by convention; the ratio is undefined.
    if np.ptp(true) > 0:
        out["r2"] = float(skm.r2_score(true, pred))
    return out


def _label_key(value: object) -> str:
    """Returns a label as text so that labels read as int, float or str compare equal."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value).strip()


def _classification_metrics(
    true: np.ndarray, pred: np.ndarray, score: np.ndarray | None, positive_label: str | int | None
) -> dict[str, float]:
    true = np.array([_label_key(v) for v in true], dtype=object)
    pred = np.array([_label_key(v) for v in pred], dtype=object)
    labels = sorted(set(true) | set(pred))
    out = {"accuracy": float(skm.accuracy_score(true, pred))}
    if len(labels) > 2:
        kwargs: dict = {"average": "macro", "zero_division": 0}
    else:
        pos = _positive_key(positive_label, labels)
        kwargs = {"average": "binary", "pos_label": pos, "zero_division": 0}
    out["precision"] = float(skm.precision_score(true, pred, **kwargs))
    out["recall"] = float(skm.recall_score(true, pred, **kwargs))
    out["f1"] = float(skm.f1_score(true, pred, **kwargs))
    if score is not None and len(labels) <= 2:
        is_pos = true == kwargs["pos_label"]
        if is_pos.any() and not is_pos.all():
            out["roc_auc"] = float(skm.roc_auc_score(is_pos, score))
    return out


def _positive_key(positive_label: str | int | None, labels: list[str]) -> str:
    if positive_label is None:
        raise ConfigError(
            "data.positive_label is required for binary classification "
            f"(labels seen: {', '.join(labels)})"
        )
    pos = _label_key(positive_label)
    if len(labels) == 2 and pos not in labels:
        raise ConfigError(
            f"data.positive_label {positive_label!r} is not one of the labels seen "
            f"({', '.join(labels)})"
        )
    return pos


@dataclass(frozen=True)
class SegmentPerformance:
    """Metrics of the rows where `column == value`; empty when the segment is too small."""

    column: str
    value: SegmentValue
    n_rows: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class PerformanceReport:
    """Metrics of one labelled batch, overall and per segment value."""

    task: str
    n_rows: int
    metrics: dict[str, float]
    segments: tuple[SegmentPerformance, ...] = ()
    n_missing_target: int = 0

    def summary(self) -> str:
        """Returns one sentence: "mae 41.2, rmse 60.3, r2 0.71 on 168 rows"."""
        values = ", ".join(f"{k} {format_number(v)}" for k, v in self.metrics.items())
        text = f"{values or 'no metrics'} on {self.n_rows} rows"
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
        """Returns the report that to_dict wrote."""
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
        )


def evaluate_frame(
    frame: pd.DataFrame,
    data: DataSettings,
    task: str,
    settings: PerformanceSettings,
    *,
    score_column: str | None = None,
) -> PerformanceReport:
    """Returns the metrics of a frame of targets and predictions, overall and per segment value.

    Rows without a target are left out and counted in `n_missing_target`. Segment values with
    fewer than settings.min_segment_rows rows are listed with their row count and no metrics.

    Raises:
        SchemaError: a needed column is absent, or predictions/scores are missing.
        InsufficientDataError: fewer than two rows have a target.
        ConfigError: see compute_metrics.
    """
    needed = [
        data.target,
        data.prediction,
        *([score_column] if score_column else []),
        *data.segments,
    ]
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
    for col in [data.prediction, *([score_column] if score_column else [])]:
        if n := int(labelled[col].isna().sum()):
            raise SchemaError(
                f"column {col!r}: {n} missing value(s) in {len(labelled)} labelled rows"
            )
    if len(labelled) < 2:
        raise InsufficientDataError(
            f"{len(labelled)} of {len(frame)} rows have a target "
            f"{data.target!r}: metrics need at least 2"
        )

    def score(rows: pd.DataFrame) -> dict[str, float]:
        return compute_metrics(
            rows[data.target],
            rows[data.prediction],
            task,
            y_score=rows[score_column] if score_column else None,
            positive_label=data.positive_label,
        )

    segments = tuple(_segments(labelled, data.segments, settings.min_segment_rows, score))
    return PerformanceReport(
        task=task,
        n_rows=len(labelled),
        metrics=score(labelled),
        segments=segments,
        n_missing_target=n_missing,
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
