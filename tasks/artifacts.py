"""Prefect artifacts of a monitor run: a markdown summary and the drift table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from modelwatch import drift
from modelwatch.decide import policy
from modelwatch.decide.outcome import RetrainOutcome
from modelwatch.performance.metrics import format_number
from modelwatch.stores import validation
from modelwatch.stores.ledger import Intake
from modelwatch.stores.project import Project


def mlflow_run_url(proj: Project, run_id: str, base: str = "http://127.0.0.1:5000") -> str:
    """Returns the MLflow UI address of a run (the UI `make ui` starts)."""
    return f"{base}/#/experiments/{proj.experiments.monitoring}/runs/{run_id}"


@task(cache_policy=NO_CACHE)
def publish_monitor_artifacts(
    proj: Project,
    *,
    intake: Intake,
    checked: validation.ValidationResult,
    report: drift.DriftReport,
    evaluations: Sequence[Any],
    estimated: dict[str, float],
    decision: policy.RetrainDecision,
    outcome: RetrainOutcome | None,
    run_id: str,
) -> None:
    """Publishes `monitor-<batch>` (markdown: validation, top drifted features, metrics,
    decision and reasons, link to the MLflow run) and `drift-<batch>` (one row per column)."""
    batch_id, index = intake.batch_id, intake.index
    key = artifact_key(batch_id)
    lines = [
        f"# {batch_id} (step {index})",
        "",
        f"**Validation**: {checked.summary()}",
        "",
        f"**Drift**: {report.summary()}",
        "",
    ]
    top = [f for f in report.ranked() if f.drifted][:5]
    if top:
        lines += [
            "| feature | test | statistic | p-value | threshold | importance |",
            "|---|---|---|---|---|---|",
        ]
        lines += [  # threshold: the one that judged (a distance's bootstrap null if larger)
            f"| {f.column} | {f.test} | {_num(f.statistic)} | {_num(f.p_value)} "
            f"| {_num(f.threshold)} | {_num(f.importance)} |"
            for f in top
        ]
        lines.append("")
    for ev in evaluations:
        lines.append(f"**Labels arrived for {ev.batch_id}**: {ev.report.summary()}")
        lines.append("")
    if estimated:
        values = ", ".join(f"{k} {format_number(v)}" for k, v in estimated.items())
        lines += [f"**Estimated before labels (CBPE)**: {values}", ""]
    said = f"**Decision** ({decision.severity}): {decision.summary()}"
    lines.append(f"{said}; retrain: {outcome.text}" if outcome else said)
    lines += ["", f"[MLflow run]({mlflow_run_url(proj, run_id)})"]
    create_markdown_artifact(
        key=f"monitor-{key}", markdown="\n".join(lines), description=f"monitor {batch_id}"
    )
    create_table_artifact(
        key=f"drift-{key}", table=report.to_rows(), description=f"drift of {batch_id}"
    )


def artifact_key(batch_id: str) -> str:
    """Prefect artifact keys take lowercase ASCII letters, digits and dashes only; a batch id
    that had other characters gets a short hash of itself, so two ids never share a key."""
    import hashlib

    key = "".join(c if c.isascii() and c.isalnum() else "-" for c in batch_id.lower())
    key = "-".join(filter(None, key.split("-")))[:50]
    if key == batch_id:
        return key
    return f"{key}-{hashlib.sha256(batch_id.encode()).hexdigest()[:8]}".lstrip("-")


def _num(value: float | None) -> str:
    return "" if value is None else format_number(value)
