"""What happened so far, read back from MLflow: batch runs, evaluations, retrains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelwatch import names
from modelwatch.stores import tracking

ACCEPTED = "accepted"
REJECTED = "rejected"


@dataclass(frozen=True)
class BatchRun:
    run_id: str
    batch_id: str
    index: int
    status: str
    evaluated: bool
    champion_version: str | None
    metrics: dict[str, float]
    tags: dict[str, str]
    start_time: int = 0  # ms since the epoch, as MLflow stores it


def _to_batch_run(run: Any) -> BatchRun:
    tags = run.data.tags
    return BatchRun(
        run.info.run_id,
        tags.get(names.BATCH_ID, ""),
        int(tags.get(names.BATCH_INDEX, 0)),
        tags.get(names.VALIDATION_STATUS, ""),
        tags.get(names.LABELS_EVALUATED) == "true",
        tags.get(names.CHAMPION_VERSION),
        dict(run.data.metrics),
        dict(tags),
        int(run.info.start_time or 0),
    )


def batch_runs(client: Any, experiment_id: str) -> list[BatchRun]:
    """Returns every monitoring run, oldest batch first."""
    runs = tracking.find_runs(client, experiment_id, "tags.batch_id != ''")
    return sorted((_to_batch_run(r) for r in runs), key=lambda b: b.index)


def latest_realized(runs: list[BatchRun], metric: str, champion_version: str) -> float | None:
    """Returns the most recent realized value of a performance metric on a batch that the
    given champion version scored (older batches say nothing about this model)."""
    key = names.performance(metric)
    evaluated = [b for b in runs if key in b.metrics and b.champion_version == champion_version]
    return evaluated[-1].metrics[key] if evaluated else None


def find_by_batch_id(client: Any, experiment_id: str, batch_id: str) -> BatchRun | None:
    """Returns the monitoring run of a batch id (the latest, if the id was processed twice)."""
    condition = tracking.filter_condition(f"tags.{names.BATCH_ID}", batch_id)
    runs = [
        r
        for r in tracking.find_runs(client, experiment_id, condition)
        if r.data.tags.get(names.BATCH_ID) == batch_id
    ]
    found = sorted((_to_batch_run(r) for r in runs), key=lambda b: b.index)
    return found[-1] if found else None


def batch_table(client: Any, experiment_id: str, metric: str) -> list[dict]:
    """Returns one row per processed batch: id, rows, validation, drift share, realized error
    (blank until labels arrive), decision and the champion version that scored it."""
    rows = []
    for b in batch_runs(client, experiment_id):
        value = b.metrics.get(names.performance(metric))
        decision = b.tags.get(names.DECISION, "")
        if b.tags.get(names.RETRAIN_OUTCOME):
            decision = f"retrain -> {b.tags['retrain_outcome']}"
        if b.status == REJECTED:
            decision = "quarantined"
        rows.append(
            {
                "batch": b.batch_id,
                "rows": int(b.metrics.get(names.ROWS, 0)),
                "validation": b.status,
                names.DRIFT_SHARE: ""
                if "drift_share" not in b.metrics
                else f"{b.metrics['drift_share']:.2f}",
                "error": "" if value is None else f"{metric} {value:.3g}",
                "decision": decision,
                "champion": f"v{b.champion_version}" if b.champion_version else "",
            }
        )
    return rows
