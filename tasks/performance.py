"""Ground-truth performance of every batch whose labels have arrived."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import drift, history, io, performance, project, scoring, tracking
from modelwatch.project import Project


@dataclass(frozen=True)
class Evaluation:
    batch_id: str
    index: int
    label_coverage: float
    report: performance.PerformanceReport


@task(cache_policy=NO_CACHE)
def evaluate_labelled_batches(proj: Project, reference: pd.DataFrame) -> list[Evaluation]:
    """Joins arrived labels to stored predictions and logs, at each batch's step, the realized
    metrics and the drift of the labels against the reference target."""
    logger = get_run_logger()
    labels = project.all_labels(proj)
    done = []
    for run in history.batch_runs(proj.client, proj.experiments.monitoring):
        if run.status != history.ACCEPTED or run.evaluated:
            continue
        preds = io.read_csv_file(proj.repo_path("data/predictions") / f"{run.batch_id}.csv")
        batch = io.read_csv_file(proj.repo_path("data/batches") / f"{run.batch_id}.csv")
        coverage, report = scoring.evaluate_predictions(
            preds,
            batch,
            labels,
            proj.settings.data,
            proj.settings.project.task,
            proj.settings.performance,
        )
        if report is None:
            continue
        with tracking.resume(run.run_id):
            metrics = {f"performance.{k}": v for k, v in report.metrics.items()}
            for seg in report.segments:
                metrics |= {
                    f"performance.{k}.{seg.column}.{seg.value}": v for k, v in seg.metrics.items()
                }
            target = _target_drift(proj, reference, preds, labels)
            metrics |= {
                f"drift.p_value.{target.column}": target.p_value,
                f"drift.statistic.{target.column}": target.statistic,
                "target_drift": float(target.drifted),
            }
            tracking.log_metrics(metrics | {"label_coverage": coverage}, step=run.index)
            tracking.log_json(target.to_dict(), "target_drift.json")
            tracking.log_json(report.to_dict(), "performance.json")
            tracking.set_tags({"labels_evaluated": "true"})
        logger.info("labels arrived for %s: %s", run.batch_id, report.summary())
        done.append(Evaluation(run.batch_id, run.index, coverage, report))
    return done


def _target_drift(
    proj: Project, reference: pd.DataFrame, preds: pd.DataFrame, labels: pd.DataFrame
) -> drift.FeatureDrift:
    data = proj.settings.data
    realized = preds[[data.id]].merge(labels, on=data.id)[data.target]
    return drift.compute_series_drift(
        data.target, reference[data.target], realized, proj.settings.drift
    )
