"""One MLflow run per batch: metrics at the batch's step, reports as artifacts, lineage tags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import names
from modelwatch.decide.outcome import RetrainOutcome
from modelwatch.decide.policy import RetrainDecision
from modelwatch.decide.probation import ProbationVerdict
from modelwatch.stores import history, project, tracking, validation
from modelwatch.stores.ledger import Intake
from modelwatch.stores.project import Project
from tasks import runtime
from tasks.results import Measured, Scored

ACCEPTED, REJECTED = names.ACCEPTED, names.REJECTED


@task(cache_policy=NO_CACHE)
def summarize_batches(proj: Project) -> list[dict]:
    """Returns one row per processed batch, read back from the monitoring experiment."""
    return history.batch_table(
        proj.client, proj.experiments.monitoring, proj.settings.retrain.performance_metric
    )


@task(cache_policy=NO_CACHE)
def open_timeline(proj: Project) -> str:
    """Makes sure the monitoring timeline run exists (before any monitor run could race to
    create it); returns its id."""
    return project.timeline_run(proj)


@task(cache_policy=NO_CACHE)
def advance_batch(proj: Project, intake: Intake, stage: str, **values: Any) -> None:
    """Records in the ledger that the batch reached a stage, with what the stage wrote."""
    proj.ledger.advance(proj.model_name, intake.file_md5, stage, **values)


@task(cache_policy=NO_CACHE)
def release_batch(proj: Project, intake: Intake, error: str) -> None:
    """Records why a batch failed and frees it: running the same file again (from any process)
    resumes it, instead of waiting for this process to end."""
    proj.ledger.release(proj.model_name, intake.file_md5, error)


def _open_batch_run(proj: Project, intake: Intake, run_id: str) -> None:
    """Records the MLflow run of this attempt in the ledger before anything is logged to it, and
    deletes the run an earlier, killed attempt of the same batch left (one run per batch)."""
    stale = proj.ledger.get_batch(proj.model_name, intake.file_md5)
    if stale is not None and stale.run_id and stale.run_id != run_id:
        from mlflow.exceptions import MlflowException

        try:
            proj.client.delete_run(stale.run_id)
            get_run_logger().warning(
                "deleted MLflow run %s of an interrupted attempt of %s",
                stale.run_id,
                intake.batch_id,
            )
        except MlflowException:
            pass  # already gone
    proj.ledger.advance(proj.model_name, intake.file_md5, "received", run_id=run_id)


@task(cache_policy=NO_CACHE)
def log_monitoring_run(
    proj: Project,
    *,
    intake: Intake,
    checked: validation.ValidationResult,
    batch: pd.DataFrame,
    scored: Scored,
    measured: Measured,
    estimated: dict[str, float],
    decision: RetrainDecision,
    verdict: ProbationVerdict | None,
) -> str:
    """Logs the accepted batch's run; returns its run id."""
    index, file_md5, batch_id = intake.index, intake.file_md5, intake.batch_id
    versions, predictions = scored.versions, scored.predictions
    champion_version, shadow_version = scored.champion_version, scored.shadow_version
    report, multivariate_results = measured.report, measured.multivariate
    batch_version = versions[f"data/batches/{batch_id}.csv"]
    pred_version = versions[f"data/predictions/{batch_id}.csv"]
    tags = {
        names.BATCH_ID: batch_id,
        names.BATCH_INDEX: str(index),
        names.VALIDATION_STATUS: ACCEPTED,
        names.CHAMPION_VERSION: champion_version,
        names.DATA_MD5: batch_version.md5,
        names.PREDICTIONS_MD5: pred_version.md5,
        names.REFERENCE_MD5: measured.reference.md5,
        names.DRIFT_REFERENCE: measured.reference.label,
        names.FILE_MD5: file_md5,
        names.DATA_COMMIT: batch_version.commit,
        names.DECISION: _decision_word(decision),
        names.DECISION_SEVERITY: decision.severity,
        names.DECISION_RULES: ",".join(decision.rules_fired),
        names.DECISION_MODE: decision.mode,
        names.POLICY_VIOLATED: ",".join(decision.violated),
        names.SHADOW_VERSION: shadow_version or "",
        names.DATASET_DRIFT: str(report.dataset_drift).lower(),
        names.DATASET_DRIFT_RULE: report.dataset_rule or "",
        **runtime.flow_run_tags(),
    }
    pred = predictions[proj.settings.data.prediction]
    metrics = {
        names.ROWS: len(batch),
        names.DRIFT_SHARE: report.drift_share,
        names.DRIFT_WEIGHTED_SHARE: report.weighted_drift_share,
        names.DRIFTED_FEATURES: report.n_drifted,
        names.RETRAIN: float(decision.retrain),
        names.FAILED_EXPECTATIONS: checked.failed,
        names.PREDICTION_MEAN: float(pd.to_numeric(pred, errors="coerce").mean()),
    }
    metrics |= tracking.drift_metrics(report)
    metrics |= {names.estimated(k): v for k, v in (estimated or {}).items()}
    labels_in = proj.ledger.label_counts(proj.model_name, step=index)
    if labels_in["files"]:
        metrics |= {
            names.LABELS_FILES_IN: labels_in["files"],
            names.LABELS_ROWS_IN: labels_in["rows"],
            names.LABELS_UNKNOWN_IDS: labels_in["unknown_ids"],
            names.LABELS_REJECTED_BATCH_ROWS: labels_in["rejected_batch_rows"],
        }
    for result in multivariate_results:
        metrics[names.multivariate(result.method)] = result.statistic
        metrics[names.multivariate(result.method, drifted=True)] = float(result.drifted)
    with tracking.run(proj.experiments.monitoring, batch_id, tags) as run_id:
        _open_batch_run(proj, intake, run_id)
        tracking.log_metrics(metrics, step=index)
        tracking.log_json(checked.to_dict(), "validation.json")
        tracking.log_json(report.to_dict() | _attribution_json(measured), "drift_report.json")
        _log_attribution(measured, index)
        if measured.html is not None:
            tracking.log_text(measured.html, "drift_report.html")
        tracking.log_json(
            {"results": [r.to_dict() for r in multivariate_results]}, "multivariate_drift.json"
        )
        tracking.log_json(
            decision.to_dict() | {"batch_id": batch_id, "batch_index": index}, "decision.json"
        )
        if verdict is not None:
            tracking.log_json(verdict.to_dict(), "probation.json")
        tracking.log_text(decision.summary(), "decision.md")
        tracking.log_dataset(
            batch, batch_id, f"data/batches/{batch_id}.csv", "monitoring", batch_version.md5
        )
    timeline = metrics | {names.CHAMPION_VERSION: _version_number(champion_version)}
    project.log_timeline(proj, timeline, index)
    proj.ledger.advance(
        proj.model_name,
        file_md5,
        "logged",
        champion_version=champion_version,
        shadow_version=shadow_version,
        violations=decision.violated,
        metrics={k: v for k, v in metrics.items() if not k.startswith("drift.")},
    )
    get_run_logger().info("MLflow run %s for %s (step %d)", run_id, batch_id, index)
    return run_id


def _attribution_json(measured: Measured) -> dict:
    """The attribution drift's entry in the monitoring JSON report (drift_report.json)."""
    explained = measured.explained
    if explained is None:
        return {}
    drift = explained.drift
    return {"attribution": drift.to_dict() if drift else {"error": explained.error}}


def _log_attribution(measured: Measured, index: int) -> None:
    """Logs attribution.<feature> and attribution_drift.<feature> at the batch's step and the
    ranked table (attribution_drift.json); or the reason there are none (tag explain.error)."""
    explained = measured.explained
    if explained is None:
        return
    if explained.drift is None:
        tracking.set_tags({names.EXPLAIN_ERROR: explained.error})
        return
    tracking.log_metrics(explained.drift.metrics(), step=index)
    tracking.set_tags({names.EXPLAIN_METHOD: explained.drift.method})
    tracking.log_json({"rows": explained.drift.to_rows()}, "attribution_drift.json")


def _version_number(version: str | None) -> float | None:
    return float(version) if version and version.isdigit() else None


@task(cache_policy=NO_CACHE)
def log_rejection(
    proj: Project,
    intake: Intake,
    batch_path: Path,
    checked: validation.ValidationResult,
    quarantine: Path,
    champion_version: str | None,
) -> str:
    """Logs a rejected batch's run (status, failures, where the file was kept)."""
    index = intake.index
    tags = {
        names.BATCH_ID: intake.batch_id,
        names.BATCH_INDEX: str(index),
        names.VALIDATION_STATUS: REJECTED,
        names.QUARANTINE: str(quarantine),
        names.FILE_MD5: intake.file_md5,
        names.CHAMPION_VERSION: champion_version or "",
        names.DECISION: "rejected",
        **runtime.flow_run_tags(),
    }
    counts = {names.FAILED_EXPECTATIONS: checked.failed, names.ROWS: checked.n_rows}
    with tracking.run(proj.experiments.monitoring, intake.batch_id, tags) as run_id:
        _open_batch_run(proj, intake, run_id)
        tracking.log_metrics(counts, step=index)
        tracking.log_json(checked.to_dict(), "validation.json")
        tracking.log_text(checked.to_markdown(), "validation.md")
    project.log_timeline(proj, counts, index)
    return run_id


def _decision_word(decision: RetrainDecision) -> str:
    if decision.retrain:
        return "retrain"
    return f"keep ({decision.blocked_by})" if decision.blocked_by else "keep"


@task(cache_policy=NO_CACHE)
def record_outcome(run_id: str, outcome: RetrainOutcome) -> None:
    """Tags a monitoring run with what its retrain ended in (promoted vN / kept vM / ...)."""
    with tracking.resume(run_id):
        tracking.set_tags({names.RETRAIN_OUTCOME: outcome.text})
