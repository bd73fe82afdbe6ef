"""One MLflow run per batch: metrics at the batch's step, reports as artifacts, lineage tags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import drift
from modelwatch.decide.policy import RetrainDecision
from modelwatch.stores import tracking, validation, versioning
from modelwatch.stores.project import Project
from tasks.intake import Intake

VIOLATED_TAG = "policy_violated"
ACCEPTED, REJECTED = "accepted", "rejected"
TIMELINE_RUN = "timeline_run_id"  # ledger meta

PREFECT_UI = "http://127.0.0.1:4200"  # where `make ui` / `modelwatch ui` serves the Prefect UI


def prefect_ui() -> str:
    """The Prefect UI the links point at: PREFECT_UI_URL if set, else the server of
    PREFECT_API_URL when one is set (`modelwatch serve`), else `make ui`'s default address (the
    demo's temporary server is gone once it ends; `make ui` shows its runs there)."""
    import os

    if os.environ.get("PREFECT_UI_URL"):
        return os.environ["PREFECT_UI_URL"].rstrip("/")
    api = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    return api.removesuffix("/api") if api else PREFECT_UI


def _flow_run_tags() -> dict[str, str]:
    """Links an MLflow run to the Prefect flow run that made it: id, name, the address in the
    Prefect UI, and a run description (rendered as markdown by MLflow) with a clickable link."""
    from prefect.runtime import flow_run

    if not flow_run.id:
        return {}
    url = f"{prefect_ui()}/runs/flow-run/{flow_run.id}"
    return {
        "prefect.flow_run_id": str(flow_run.id),
        "prefect.flow_run_name": str(flow_run.name),
        "prefect.flow_run_url": url,
        "mlflow.note.content": f"Made by Prefect flow run [{flow_run.name}]({url}).",
    }


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
    intake: Intake,
    batch_id: str,
    checked: validation.ValidationResult,
    batch: pd.DataFrame,
    report: drift.DriftReport,
    predictions: pd.DataFrame,
    decision: RetrainDecision,
    versions: dict[str, versioning.DataVersion],
    champion_version: str,
    reference_md5: str,
    drift_reference: str,
    multivariate_results: tuple = (),
    drift_html: str | None = None,
    estimated: dict[str, float] | None = None,
    shadow_version: str | None = None,
    probation_verdict: Any = None,
) -> str:
    """Logs the accepted batch's run; returns its run id."""
    index, file_md5 = intake.index, intake.file_md5
    batch_version = versions[f"data/batches/{batch_id}.csv"]
    pred_version = versions[f"data/predictions/{batch_id}.csv"]
    tags = {
        "batch_id": batch_id,
        "batch_index": str(index),
        "validation_status": ACCEPTED,
        "champion_version": champion_version,
        "data_md5": batch_version.md5,
        "predictions_md5": pred_version.md5,
        "reference_md5": reference_md5,
        "drift_reference": drift_reference,
        "file_md5": file_md5,
        "data_commit": batch_version.commit,
        "decision": _decision_word(decision),
        "decision_severity": decision.severity,
        "decision_rules": ",".join(decision.rules_fired),
        "decision_mode": decision.mode,
        VIOLATED_TAG: ",".join(decision.violated),
        "shadow_version": shadow_version or "",
        "dataset_drift": str(report.dataset_drift).lower(),
        "dataset_drift_rule": report.dataset_rule or "",
        **_flow_run_tags(),
    }
    pred = predictions[proj.settings.data.prediction]
    metrics = {
        "rows": len(batch),
        "drift_share": report.drift_share,
        "drifted_features": report.n_drifted,
        "retrain": float(decision.retrain),
        "validation.failed_expectations": checked.failed,
        "prediction.mean": float(pd.to_numeric(pred, errors="coerce").mean()),
    }
    metrics |= _drift_metrics(report)
    metrics |= {f"estimated.{k}": v for k, v in (estimated or {}).items()}
    for result in multivariate_results:
        metrics[f"multivariate.{result.method}"] = result.statistic
        metrics[f"multivariate.{result.method}.drifted"] = float(result.drifted)
    with tracking.run(proj.experiments.monitoring, batch_id, tags) as run_id:
        _open_batch_run(proj, intake, run_id)
        tracking.log_metrics(metrics, step=index)
        tracking.log_json(checked.to_dict(), "validation.json")
        tracking.log_json(report.to_dict(), "drift_report.json")
        if drift_html is not None:
            tracking.log_text(drift_html, "drift_report.html")
        tracking.log_json(
            {"results": [r.to_dict() for r in multivariate_results]}, "multivariate_drift.json"
        )
        tracking.log_json(
            decision.to_dict() | {"batch_id": batch_id, "batch_index": index}, "decision.json"
        )
        if probation_verdict is not None:
            tracking.log_json(probation_verdict.to_dict(), "probation.json")
        tracking.log_text(decision.summary(), "decision.md")
        tracking.log_dataset(
            batch, batch_id, f"data/batches/{batch_id}.csv", "monitoring", batch_version.md5
        )
    timeline = metrics | {"champion_version": _version_number(champion_version)}
    log_timeline(proj, timeline, index)
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


def log_timeline(proj: Project, metrics: dict[str, float | None], index: int) -> None:
    """Adds a batch's metrics to the monitoring timeline run (lines over batches in MLflow);
    the run's id is kept in the ledger, so finding it costs the same at every batch."""
    run_id = proj.ledger.get_meta(proj.model_name, TIMELINE_RUN)
    if run_id is None:
        run_id = tracking.timeline_run(proj.client, proj.experiments.monitoring, proj.model_name)
        proj.ledger.set_meta(proj.model_name, TIMELINE_RUN, run_id)
    tracking.log_timeline(proj.client, run_id, metrics, index)


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
        "batch_id": batch_path.stem,
        "batch_index": str(index),
        "validation_status": REJECTED,
        "quarantine": str(quarantine),
        "file_md5": intake.file_md5,
        "champion_version": champion_version or "",
        "decision": "rejected",
        **_flow_run_tags(),
    }
    counts = {"validation.failed_expectations": checked.failed, "rows": checked.n_rows}
    with tracking.run(proj.experiments.monitoring, batch_path.stem, tags) as run_id:
        _open_batch_run(proj, intake, run_id)
        tracking.log_metrics(counts, step=index)
        tracking.log_json(checked.to_dict(), "validation.json")
        tracking.log_text(checked.to_markdown(), "validation.md")
    log_timeline(proj, counts, index)
    return run_id


def _decision_word(decision: RetrainDecision) -> str:
    if decision.retrain:
        return "retrain"
    return f"keep ({decision.blocked_by})" if decision.blocked_by else "keep"


def _drift_metrics(report: drift.DriftReport) -> dict[str, float]:
    out: dict[str, float] = {}
    entries = list(report.features) + [e for e in (report.prediction, report.target) if e]
    for entry in entries:
        if entry.status != "ok":
            continue
        name = entry.column
        if entry.p_value is not None:
            out[f"drift.p_value.{name}"] = entry.p_value
        if entry.statistic is not None:
            out[f"drift.statistic.{name}"] = entry.statistic
        if entry.p_value_adjusted is not None:
            out[f"drift.p_value_adjusted.{name}"] = entry.p_value_adjusted
        if entry.effect_size is not None:
            out[f"drift.effect_size.{name}"] = entry.effect_size
        if entry.weighted_score is not None:
            out[f"drift.weighted_score.{name}"] = entry.weighted_score
    return out


@task(cache_policy=NO_CACHE)
def record_outcome(run_id: str, outcome: str) -> None:
    """Tags a monitoring run with what its retrain ended in (promoted vN / kept vM)."""
    with tracking.resume(run_id):
        tracking.set_tags({"retrain_outcome": outcome})


def describe_retrain(state: Any, outcome: Any) -> str:
    """Returns what a retrain subflow ended in: promoted vN, kept vM, or why it did not run."""
    if outcome is not None:
        return (
            f"promoted v{outcome.candidate_version}"
            if outcome.promote
            else f"kept v{outcome.champion_version}"
        )
    message = state.message or state.name
    if state.name == "Skipped":
        return f"skipped ({message})"
    if "InsufficientDataError" in message:
        return "deferred (too little labelled data to compare models)"
    return f"failed: {message}"
