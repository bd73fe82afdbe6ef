"""Score a batch with a model and join late labels back to the stored predictions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from modelwatch.performance.metrics import label_key
from modelwatch.performance.report import PerformanceReport, evaluate_frame
from modelwatch.settings import DataSettings, PerformanceSettings

SCORE = "prediction_score"  # binary: probability of the positive class
CLASS_SCORE_PREFIX = f"{SCORE}."  # multiclass: one probability column per class label


def class_score_column(label: object) -> str:
    """Returns the name of a class's probability column: "prediction_score.<label>"."""
    return CLASS_SCORE_PREFIX + label_key(label)


def class_score_columns(frame: pd.DataFrame) -> dict[str, str]:
    """Returns label -> column of every per-class probability column, in column order."""
    return {
        c[len(CLASS_SCORE_PREFIX) :]: c for c in frame.columns if c.startswith(CLASS_SCORE_PREFIX)
    }


def read_scores(scored: pd.DataFrame) -> tuple[np.ndarray | None, list[str] | None]:
    """Returns (y_score, classes) for compute_metrics from a scored frame: the
    positive-class probability (classes None), the per-class probabilities with their labels,
    or (None, None) without scores."""
    per_class = class_score_columns(scored)
    if per_class:
        return scored[list(per_class.values())].to_numpy(dtype=float), list(per_class)
    if SCORE in scored.columns:
        return scored[SCORE].to_numpy(dtype=float), None
    return None, None


def score_frame(model: Any, frame: pd.DataFrame, data: DataSettings, task: str) -> pd.DataFrame:
    """Returns id, prediction and, for a classifier with predict_proba, the positive-class
    probability (`prediction_score`, two classes) or one `prediction_score.<label>` column per
    class (more than two)."""
    from modelwatch.training.fit import positive_index

    x = frame[data.features]
    out = pd.DataFrame({data.id: frame[data.id].to_numpy(), data.prediction: model.predict(x)})
    if task == "classification" and hasattr(model, "predict_proba"):
        proba, classes = model.predict_proba(x), list(model.classes_)
        if len(classes) <= 2:
            out[SCORE] = proba[:, positive_index(classes, data.positive_label)]
        else:
            for j, label in enumerate(classes):
                out[class_score_column(label)] = proba[:, j]
    return out


def evaluate_predictions(
    predictions: pd.DataFrame,
    batch: pd.DataFrame,
    labels: pd.DataFrame,
    data: DataSettings,
    task: str,
    settings: PerformanceSettings,
    *,
    reference_target: pd.Series | None = None,
) -> tuple[float, PerformanceReport | None]:
    """Joins labels to a batch's predictions by id.

    Returns:
        The label coverage (share of predictions with a label) and, when the coverage reaches
        settings.min_label_coverage, the performance report on the labelled rows (with a
        constant model fitted on reference_target beside it, when given).
    """
    joined = predictions.merge(labels[[data.id, data.target]], on=data.id, how="left")
    coverage = float(joined[data.target].notna().mean()) if len(joined) else 0.0
    if coverage < settings.min_label_coverage:
        return coverage, None
    segments = [c for c in data.segments if c in batch.columns]
    joined = joined.merge(batch[[data.id, *segments]], on=data.id, how="left")
    per_class = class_score_columns(joined)
    report = evaluate_frame(
        joined,
        data,
        task,
        settings,
        score_column=SCORE if SCORE in joined.columns and not per_class else None,
        score_columns=per_class or None,
        reference_target=reference_target,
    )
    return coverage, report
