"""collect-predictions: every closed window of the prediction log becomes one monitor batch."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Failed

from flows.common import DEFAULT_PARAMS, tag_run
from flows.monitor import monitor_batch
from tasks.alerts import send_alerts
from tasks.predictions import (
    collect_window,
    find_closed_windows,
    finish_window,
    judge_window_health,
    log_window_health,
)
from tasks.project import open_project


@flow(name="collect-predictions")
def collect_predictions(params_path: Path = DEFAULT_PARAMS, now: datetime | None = None) -> list:
    """Turns each window of the prediction log that closed (its end + serving.close_after_seconds
    <= now) into a monitor batch, oldest first, and runs monitor-batch on it with the answers the
    model gave and the window's system health. A window without usable rows logs its system
    health alone. Exactly once: a window is recorded as collected only after its batch was
    processed (ledger), and its batch is the same file whenever it is rebuilt, so a rerun after a
    kill resumes or skips it in the ledger. A batch that failed otherwise than Rejected stays
    uncollected for the next run, and this run ends Failed naming it."""
    proj = open_project(params_path)
    tag_run(proj.model_name, "collect")
    windows = find_closed_windows(proj, now or datetime.now(UTC))
    rows, kept = [], []
    for window in windows:
        files = collect_window(proj, window)
        if files.batch_path is None:
            run_id, step = log_window_health(proj, files)
            found = judge_window_health(proj, files, step)
            send_alerts(proj, found, f"window-{window.label}", step, run_id)
            state_name, message = "NoRows", files.health.summary()
        else:
            state = monitor_batch(
                batch_path=files.batch_path,
                params_path=params_path,
                served_path=files.served_path,
                health_path=files.health_path,
                return_state=True,
            )
            state_name, message = state.name, state.message or ""
            if state.is_failed() and state.name != "Rejected":
                kept.append(window.label)  # not judged: collected again by the next run
                rows.append({"window": window.label, "state": state_name, "message": message})
                continue
        finish_window(proj, window)
        rows.append({"window": window.label, "state": state_name, "message": message})
    done = len(rows) - len(kept)
    get_run_logger().info("%d window(s) collected, %d left for the next run", done, len(kept))
    if rows:
        create_table_artifact(key="collect-predictions", table=rows, description="windows")
    if kept:
        return Failed(
            message=f"{len(kept)} window(s) failed and stay for the next run: {', '.join(kept)}",
            data=rows,
        )
    return rows
