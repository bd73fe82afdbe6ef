"""Score a batch with a model and join late labels back to the stored predictions."""

from __future__ import annotations

from typing import Any

import pandas as pd

from modelwatch import performance
from modelwatch.settings import DataSettings, PerformanceSettings

SCORE = "prediction_score"


def score_frame(model: Any, frame: pd.DataFrame, data: DataSettings, task: str) -> pd.DataFrame:
    """Returns id, prediction (and the positive-class probability for classification)."""
    from modelwatch.training import positive_scores

    x = frame[data.features]
    out = pd.DataFrame({data.id: frame[data.id].to_numpy(), data.prediction: model.predict(x)})
    if task == "classification" and hasattr(model, "predict_proba"):
        out[SCORE] = positive_scores(model, x, data.positive_label)
    return out


def evaluate_predictions(
    predictions: pd.DataFrame,
    batch: pd.DataFrame,
    labels: pd.DataFrame,
    data: DataSettings,
    task: str,
    settings: PerformanceSettings,
) -> tuple[float, performance.PerformanceReport | None]:
    """Joins labels to a batch's predictions by id.

    Returns:
        The label coverage (share of predictions with a label) and, when the coverage reaches
        settings.min_label_coverage, the performance report on the labelled rows.
    """
    joined = predictions.merge(labels[[data.id, data.target]], on=data.id, how="left")
    coverage = float(joined[data.target].notna().mean()) if len(joined) else 0.0
    if coverage < settings.min_label_coverage:
        return coverage, None
    segments = [c for c in data.segments if c in batch.columns]
    joined = joined.merge(batch[[data.id, *segments]], on=data.id, how="left")
    score_col = SCORE if SCORE in joined.columns else None
    report = performance.evaluate_frame(joined, data, task, settings, score_column=score_col)
    return coverage, report
