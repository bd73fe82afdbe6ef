"""Ground-truth performance of every batch whose labels have arrived."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import history, io, performance, project, scoring, tracking
from modelwatch.project import Project


@dataclass(frozen=True)
class Evaluation:
    batch_id: str
    index: int
    label_coverage: float
    report: performance.PerformanceReport


@task(cache_policy=NO_CACHE)
def evaluate_labelled_batches(proj: Project) -> list[Evaluation]:
    """Joins arrived labels to stored predictions and logs realized metrics at each batch's step."""
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
            tracking.log_metrics(metrics | {"label_coverage": coverage}, step=run.index)
            tracking.log_json(report.to_dict(), "performance.json")
            tracking.set_tags({"labels_evaluated": "true"})
        logger.info("labels arrived for %s: %s", run.batch_id, report.summary())
        done.append(Evaluation(run.batch_id, run.index, coverage, report))
    return done
