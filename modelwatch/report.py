"""The end-of-replay table: one row per batch, read back from the MLflow store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from modelwatch import history, registry, tracking
from modelwatch.settings import load_settings

COLUMNS = ["batch", "rows", "validation", "drift_share", "error", "decision", "champion"]


def batch_table(params_path: Path | str) -> list[dict]:
    """Returns one row per processed batch: id, rows, validation, drift share, realized error
    (blank until labels arrive), decision and the champion version that scored it."""
    loaded = load_settings(params_path)
    client = tracking.configure(loaded.paths)
    exps = tracking.ensure_experiments(
        client, loaded.settings.tracking.experiment, loaded.paths.artifact_root
    )
    metric = loaded.settings.retrain.performance_metric
    rows = []
    for b in history.batch_runs(client, exps.monitoring):
        value = b.metrics.get(f"performance.{metric}")
        decision = b.tags.get("decision", "")
        if b.tags.get("retrain_outcome"):
            decision = f"retrain -> {b.tags['retrain_outcome']}"
        if b.status == history.REJECTED:
            decision = "quarantined"
        rows.append(
            {
                "batch": b.batch_id,
                "rows": int(b.metrics.get("rows", 0)),
                "validation": b.status,
                "drift_share": ""
                if "drift_share" not in b.metrics
                else f"{b.metrics['drift_share']:.2f}",
                "error": "" if value is None else f"{metric} {value:.3g}",
                "decision": decision,
                "champion": f"v{b.champion_version}" if b.champion_version else "",
            }
        )
    return rows


def render_table(rows: list[dict]) -> str:
    """Returns the rows as an aligned plain-text table."""
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in COLUMNS}
    lines = [
        "  ".join(c.ljust(widths[c]) for c in COLUMNS),
        "  ".join("-" * widths[c] for c in COLUMNS),
    ]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in COLUMNS) for r in rows]
    return "\n".join(lines)


def champion_summary(params_path: Path | str) -> str:
    """Returns a line naming the registered model and its aliases."""
    loaded = load_settings(params_path)
    client = tracking.configure(loaded.paths)
    name = loaded.settings.project.model_name
    found = registry.aliases(client, name)
    return f"model {name}: " + ", ".join(f"{k}=v{v}" for k, v in sorted(found.items()))


def alias_history(params_path: Path | str, at: datetime | None = None) -> str:
    """Returns the alias history as lines (time, action, alias from -> to, who, why), or, with
    `at`, which version was champion at that time."""
    from modelwatch import alias_history as ah

    loaded = load_settings(params_path)
    name = loaded.settings.project.model_name
    hist = ah.AliasHistory(loaded.paths.registry_dir, name)
    if at is not None:
        version = hist.champion_at(at)
        when = at.isoformat()
        return (
            f"{name}: no champion at {when}"
            if version is None
            else f"{name}: champion at {when} was version {version}"
        )
    lines = []
    for r in hist.records():
        lines.append(
            f"{r.time}  {r.state:9}  {r.action:8}  {r.alias}: "
            f"{r.from_version or '-'} -> {r.to_version or '-'}  by {r.actor}"
            + (f" via {r.via}" if r.via else "")
            + (f"  decision {r.decision_id}" if r.decision_id else "")
            + (f"  ({r.reason})" if r.reason else "")
        )
    return "\n".join(lines) or f"{name}: no alias moves recorded yet"


def decision_record(params_path: Path | str, batch_id: str) -> str:
    """Returns the retrain decision record of a batch (JSON), found by its batch id.

    Raises:
        ModelwatchError: no monitoring run has this batch id.
    """
    import json

    import mlflow.artifacts

    from modelwatch.errors import ModelwatchError

    loaded = load_settings(params_path)
    client = tracking.configure(loaded.paths)
    exps = tracking.ensure_experiments(
        client, loaded.settings.tracking.experiment, loaded.paths.artifact_root
    )
    run = history.find_by_batch_id(client, exps.monitoring, batch_id)
    if run is None:
        raise ModelwatchError(f"no monitoring run for batch id {batch_id!r}")
    if run.status == history.REJECTED:
        return json.dumps(
            {
                "batch_id": batch_id,
                "decision": "rejected",
                "quarantine": run.tags.get("quarantine"),
            },
            indent=2,
        )
    record = mlflow.artifacts.load_dict(f"runs:/{run.run_id}/decision.json")
    record["mlflow_run_id"] = run.run_id
    if run.tags.get("retrain_outcome"):
        record["retrain_outcome"] = run.tags["retrain_outcome"]
    return json.dumps(record, indent=2, sort_keys=True)
