"""Drift of features, predictions and target against the champion's reference."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from modelwatch import drift
from modelwatch.drift import multivariate
from modelwatch.drift.importance import feature_importance
from modelwatch.drift.reference import DriftReference
from modelwatch.settings import DataSettings, DriftSettings, MultivariateSettings
from tasks.results import Explained, Measured


def compute_drift(
    reference: pd.DataFrame,
    batch: pd.DataFrame,
    data: DataSettings,
    settings: DriftSettings,
    prediction_reference: pd.Series,
    prediction_current: pd.Series,
    model: object | None = None,
    importance: dict[str, float] | None = None,
) -> drift.DriftReport:
    """Per-column drift with a one-line log and a table in the UI, ranked by the champion's
    feature importances when `model` (the fitted pipeline) exposes them."""
    if importance is None and model is not None:
        importance = feature_importance(model, data.features)
    logger = get_run_logger()
    report = drift.compute_drift(
        reference,
        batch,
        data,
        settings,
        prediction_reference=prediction_reference,
        prediction_current=prediction_current,
        importance=importance,
        on_progress=logger.info,
    )
    logger.info("%s", report.summary())
    create_table_artifact(
        key="drift-by-feature", table=report.to_rows(), description=report.summary()[:500]
    )
    return report


def compute_multivariate_drift(
    reference: pd.DataFrame, batch: pd.DataFrame, data: DataSettings, settings: MultivariateSettings
) -> tuple[multivariate.MultivariateDrift, ...]:
    """Domain-classifier AUC and PCA reconstruction error of the batch against the reference."""
    out = []
    if "domain_classifier" in settings.methods:
        out.append(
            multivariate.domain_classifier_drift(
                reference,
                batch,
                data.features,
                data.categorical,
                threshold=settings.classifier_auc_threshold,
            )
        )
    if "pca_reconstruction" in settings.methods:
        out.append(
            multivariate.pca_reconstruction_drift(
                reference,
                batch,
                data.features,
                data.categorical,
                n_components=settings.pca_variance,
            )
        )
    for result in out:
        get_run_logger().info("multivariate: %s", result.message)
    return tuple(out)


def render_drift_report(
    report: drift.DriftReport,
    reference: pd.DataFrame,
    batch: pd.DataFrame,
    predictions: tuple[pd.Series, pd.Series],
    title: str,
    settings: DriftSettings,
    multivariate_results: tuple = (),
    explained: Explained | None = None,
) -> str | None:
    """Returns the self-contained HTML report (plots per feature, ranked), if enabled."""
    if not settings.html_report:
        return None
    from modelwatch.drift.html import render_drift_html

    sections: tuple[str, ...] = ()
    if explained is not None and explained.drift is not None:
        from modelwatch.explain.html import attribution_section

        sections = (attribution_section(explained.drift),)
    return render_drift_html(
        report,
        reference,
        batch,
        title=title,
        prediction=predictions,
        max_plots=settings.html_max_plots,
        multivariate=multivariate_results,
        sections=sections,
    )


@task(cache_policy=NO_CACHE)
def measure_batch(
    *,
    batch: pd.DataFrame,
    predictions: pd.Series,
    reference: DriftReference,
    model: object,
    importance: dict[str, float] | None,
    data: DataSettings,
    settings: DriftSettings,
    multivariate_settings: MultivariateSettings,
    title: str,
    explained: Explained | None = None,
) -> Measured:
    """Drift of the features, the predictions and the whole dataset against the reference
    (and, when given, the champion's attribution drift in the HTML report)."""
    report = compute_drift(
        reference.frame,
        batch,
        data,
        settings,
        reference.predictions,
        predictions,
        model,
        importance,
    )
    overall = compute_multivariate_drift(reference.frame, batch, data, multivariate_settings)
    html = render_drift_report(
        report,
        reference.frame,
        batch,
        (reference.predictions, predictions),
        f"{title} vs {reference.label}",
        settings,
        overall,
        explained,
    )
    return Measured(report, overall, html, reference, explained)
