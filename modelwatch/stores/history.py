"""What happened so far, read back from MLflow: batch runs, evaluations, retrains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelwatch.stores import registry, tracking

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
        tags.get("batch_id", ""),
        int(tags.get("batch_index", 0)),
        tags.get("validation_status", ""),
        tags.get("labels_evaluated") == "true",
        tags.get("champion_version"),
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
    key = f"performance.{metric}"
    evaluated = [b for b in runs if key in b.metrics and b.champion_version == champion_version]
    return evaluated[-1].metrics[key] if evaluated else None


def find_by_batch_id(client: Any, experiment_id: str, batch_id: str) -> BatchRun | None:
    """Returns the monitoring run of a batch id (the latest, if the id was processed twice)."""
    runs = tracking.find_runs(client, experiment_id, f"tags.batch_id = '{batch_id}'")
    found = sorted((_to_batch_run(r) for r in runs), key=lambda b: b.index)
    return found[-1] if found else None


def champion_age(client: Any, model_name: str, batch_index: int) -> int:
    """Returns how many batches have passed since the champion's training data ended."""
    champ = registry.get_alias(client, model_name, registry.CHAMPION)
    if champ is None:
        return 0
    return batch_index - int(champ.tags.get("trained_through_batch", "0"))
