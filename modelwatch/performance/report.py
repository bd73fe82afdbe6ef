"""Metrics of a labelled batch, overall and per segment, with percentile-bootstrap intervals and
a constant model's metrics beside them (pure).

The metrics are defined in performance.metrics and resampled in performance.resampling.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from modelwatch.errors import InsufficientDataError, SchemaError
from modelwatch.performance.metrics import (
    compute_metrics,
    format_number,
)
from modelwatch.performance.resampling import baseline_metrics, bootstrap_intervals
from modelwatch.settings import DataSettings, PerformanceSettings

logger = logging.getLogger(__name__)

SegmentValue = str | int | float | bool | None


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
