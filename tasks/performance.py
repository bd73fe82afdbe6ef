"""Ground-truth performance of every batch whose labels have arrived (and CBPE estimates before)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import drift, io, names
from modelwatch.decide import probation
from modelwatch.performance.report import PerformanceReport
from modelwatch.settings import BootstrapSettings
from modelwatch.stores import project, tracking
from modelwatch.stores.project import Project
from modelwatch.training import scoring


@dataclass(frozen=True)
class Evaluation:
    batch_id: str
    index: int
    label_coverage: float
    report: PerformanceReport
    shadow: PerformanceReport | None = None


@dataclass(frozen=True)
class EvaluationFailure:
    """An earlier batch whose evaluation raised: this batch goes on, that one waits for the
    next run (its labels stay, it is not marked evaluated)."""

    batch_id: str
    index: int
    error: str


@task(cache_policy=NO_CACHE)
def evaluate_labelled_batches(
    proj: Project, reference: pd.DataFrame, index: int
) -> tuple[list[Evaluation], list[EvaluationFailure]]:
    """Joins arrived labels to stored predictions and logs, at each batch's own step: label
    coverage and latency, the realized metrics with bootstrap intervals, a dummy model's metrics
    beside them, the error of the earlier CBPE estimate, the shadow model's metrics, and the
    drift of the labels against the reference target.

    An evaluation that raises is that earlier batch's failure, returned (and alerted by the
    flow), never this batch's: a labels or stored-file problem cannot stop the next batch."""
    logger = get_run_logger()
    waiting = [
        run
        for run in proj.ledger.unevaluated(proj.model_name)
        if run.step < index and run.run_id is not None
    ]
    done: list[Evaluation] = []
    failed: list[EvaluationFailure] = []
    if not waiting:
        return done, failed
    try:
        labels = project.all_labels(proj, since_step=waiting[0].step)
    except Exception as exc:  # an unreadable labels file in the repo: no evaluation this time
        error = f"labels cannot be read: {type(exc).__name__}: {exc}"
        logger.error("%s", error)
        return done, [EvaluationFailure(run.batch_id, run.step, error) for run in waiting[:1]]
    # only the batches still waiting for labels: the cost does not grow with history
    for run in waiting:
        try:
            evaluation = _evaluate_one(proj, reference, run, labels, index)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            logger.error("evaluation of %s failed (this batch goes on): %s", run.batch_id, error)
            failed.append(EvaluationFailure(run.batch_id, run.step, error))
            continue
        if evaluation is not None:
            logger.info("labels arrived for %s: %s", run.batch_id, evaluation.report.summary())
            done.append(evaluation)
    return done, failed


def _evaluate_one(
    proj: Project, reference: pd.DataFrame, run: Any, labels: pd.DataFrame, index: int
) -> Evaluation | None:
    """Evaluates one earlier batch with the labels arrived so far; None when they do not yet
    cover it (its label coverage is logged)."""
    data, task_kind = proj.settings.data, proj.settings.project.task
    preds = io.read_csv_file(proj.repo_path("data/predictions") / f"{run.batch_id}.csv")
    batch = io.read_csv_file(proj.repo_path("data/batches") / f"{run.batch_id}.csv")
    own = preds[[c for c in preds.columns if not c.startswith(probation.SHADOW_PREFIX)]]
    coverage, report = scoring.evaluate_predictions(
        own,
        batch,
        labels,
        data,
        task_kind,
        proj.settings.performance,
        reference_target=reference[data.target],
    )
    if report is None:
        if coverage > 0 and coverage != run.metrics.get(names.LABEL_COVERAGE):
            with tracking.resume(run.run_id):
                tracking.log_metrics({names.LABEL_COVERAGE: coverage}, step=run.step)
            project.log_timeline(proj, {names.LABEL_COVERAGE: coverage}, run.step)
            proj.ledger.update_batch(
                proj.model_name, run.step, metrics={names.LABEL_COVERAGE: coverage}
            )
        return None
    metrics = _report_metrics(report, "performance")
    metrics |= {f"baseline.dummy.{k}": v for k, v in report.baseline.items()}
    metrics |= {
        f"estimation_error.{k}": report.metrics[k] - run.metrics[names.estimated(k)]
        for k in report.metrics
        if names.estimated(k) in run.metrics
    }
    shadow = _shadow_report(proj, preds, batch, labels)
    if shadow is not None:
        metrics |= _report_metrics(shadow, "shadow.performance")
    target = _target_drift(proj, reference, preds, labels)
    metrics |= {
        names.drift("p_value", target.column): target.p_value,
        names.drift("statistic", target.column): target.statistic,
        names.TARGET_DRIFT: float(target.drifted),
        names.LABEL_COVERAGE: coverage,
        names.LABEL_LATENCY_BATCHES: float(index - run.step),
        names.LABEL_LATENCY_SECONDS: time.time() - run.created_at,
    }
    with tracking.resume(run.run_id):
        tracking.log_metrics({k: v for k, v in metrics.items() if v is not None}, step=run.step)
        tracking.log_json(target.to_dict(), "target_drift.json")
        tracking.log_json(report.to_dict(), "performance.json")
        if shadow is not None:
            tracking.log_json(shadow.to_dict(), "shadow_performance.json")
        tracking.set_tags({names.LABELS_EVALUATED: "true", names.LABELS_EVALUATED_AT: index})
    project.log_timeline(proj, metrics, run.step)
    proj.ledger.update_batch(
        proj.model_name,
        run.step,
        evaluated=True,
        metrics={k: v for k, v in metrics.items() if v is not None and "." not in k}
        | {k: v for k, v in metrics.items() if k.count(".") == 1 and v is not None}
        | {  # the intervals the retrain policy judges performance on
            k: v
            for k, v in metrics.items()
            if k.startswith("performance.")
            and k.endswith((".ci_low", ".ci_high"))
            and k.count(".") == 2
            and v is not None
        },
    )
    return Evaluation(run.batch_id, run.step, coverage, report, shadow)


def _report_metrics(report: PerformanceReport, prefix: str) -> dict[str, float]:
    metrics = {f"{prefix}.{k}": v for k, v in report.metrics.items()}
    for k, (low, high) in report.intervals.items():
        metrics[f"{prefix}.{k}.ci_low"] = low
        metrics[f"{prefix}.{k}.ci_high"] = high
    for seg in report.segments:
        metrics |= {f"{prefix}.{k}.{seg.column}.{seg.value}": v for k, v in seg.metrics.items()}
    return metrics


def _shadow_report(
    proj: Project, preds: pd.DataFrame, batch: pd.DataFrame, labels: pd.DataFrame
) -> PerformanceReport | None:
    """Returns the shadow model's report on the same rows, if it scored: the previous champion
    (probation), or the challenger the scoring service ran in shadow (on the rows it scored)."""
    data = proj.settings.data
    shadow = [c for c in preds.columns if c.startswith(probation.SHADOW_PREFIX)]
    if not shadow:
        return None
    renamed = preds[[data.id, *shadow]].rename(
        columns={c: c[len(probation.SHADOW_PREFIX) :] for c in shadow}
    )
    # the scoring service scores a share of its rows in shadow (serving.shadow_share): the
    # shadow is judged on those rows only
    renamed = renamed[renamed[data.prediction].notna()]
    if renamed.empty:
        return None
    _, report = scoring.evaluate_predictions(
        renamed,
        batch,
        labels,
        data,
        proj.settings.project.task,
        proj.settings.performance.model_copy(update={"bootstrap": BootstrapSettings(samples=0)}),
    )
    return report


def _target_drift(
    proj: Project, reference: pd.DataFrame, preds: pd.DataFrame, labels: pd.DataFrame
) -> drift.FeatureDrift:
    data = proj.settings.data
    realized = preds[[data.id]].merge(labels, on=data.id)[data.target]
    return drift.compute_series_drift(
        data.target, reference[data.target], realized, proj.settings.drift
    )


@task(cache_policy=NO_CACHE)
def estimate_performance(
    proj: Project, predictions: pd.DataFrame, calibrator: object | None
) -> dict[str, float]:
    """Returns CBPE-estimated metrics of a batch from the champion's calibrated scores
    (classification with performance.estimate; {} otherwise)."""
    from modelwatch.performance import estimation

    if calibrator is None or not proj.settings.performance.estimate:
        return {}
    estimated = estimation.estimate_batch(predictions, calibrator, proj.settings.data)
    get_run_logger().info(
        "estimated before labels: %s", ", ".join(f"{k} {v:.3f}" for k, v in estimated.items())
    )
    return estimated
