"""monitor-incoming: process every batch file waiting in incoming/batches, oldest name first."""

from __future__ import annotations

import shutil
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Failed

from flows.common import DEFAULT_PARAMS
from flows.monitor import monitor_batch
from modelwatch.settings import load_settings
from tasks.progress import flow_progress


def _run_name() -> str:
    """monitor-incoming-2026-11-23T06:00Z: the tick (scheduled start, UTC) the run serves."""
    from datetime import UTC

    from prefect.runtime import flow_run

    when = flow_run.scheduled_start_time
    if when is None:
        return "monitor-incoming"
    return f"monitor-incoming-{when.astimezone(UTC):%Y-%m-%dT%H:%MZ}"


@flow(name="monitor-incoming", flow_run_name=_run_name)
def monitor_incoming(
    params_path: Path = DEFAULT_PARAMS, max_batches: int | None = None
) -> list[dict]:
    """Runs monitor-batch on each CSV in incoming/batches in name order (name batches so that
    names sort in time order, e.g. batch-2026-11-23.csv), then moves each file to
    incoming/processed/. A file with content seen before ends Skipped; a bad one ends Rejected
    (its copy is in quarantine). A batch that failed otherwise (a store server down, a bug) stays
    in incoming/batches, released in the ledger, for the next run, and this run ends Failed
    naming it. Files arriving while nothing ran are all picked up by the next run: that is the
    catch-up policy for missed schedule ticks.

    Args:
        params_path: the project's params.yaml.
        max_batches: process at most this many files now (default: schedule.max_batches_per_run,
            null drains the folder).
    """
    loaded = load_settings(params_path)
    paths = loaded.paths
    limit = max_batches or loaded.settings.schedule.max_batches_per_run
    files = sorted(paths.incoming_batches.glob("*.csv"))[:limit]
    logger = get_run_logger()
    logger.info("%d batch file(s) waiting in %s", len(files), paths.incoming_batches)
    done = paths.incoming / "processed"
    done.mkdir(parents=True, exist_ok=True)
    rows, kept = [], []
    progress = flow_progress("monitor-incoming", len(files), artifact_key="incoming-progress")
    for path in files:
        state = monitor_batch(batch_path=path, params_path=params_path, return_state=True)
        if state.is_failed() and state.name != "Rejected":
            kept.append(path.name)  # not judged: tried again by the next run
        else:
            shutil.move(str(path), done / path.name)
        rows.append({"file": path.name, "state": state.name, "message": state.message or ""})
        progress.advance(detail=f"{path.name} {state.name} {state.message or ''}".strip())
    if rows:
        create_table_artifact(key="monitor-incoming", table=rows, description="batches processed")
    if kept:
        first = next(r for r in rows if r["file"] == kept[0])
        return Failed(
            message=f"{len(kept)} batch(es) failed and stay in {paths.incoming_batches} for the "
            f"next run: {', '.join(kept)} ({first['message']})",
            data=rows,
        )
    return rows
