"""The end-of-replay table: one row per batch, read back from the MLflow store."""

from __future__ import annotations

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
