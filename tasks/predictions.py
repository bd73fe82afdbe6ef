"""The prediction log as monitor batches: find closed windows, turn one into files, use what the
model answered, log a window's system health, and mark a window collected (ledger meta)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import names
from modelwatch.alerts import incidents
from modelwatch.serving import logfiles, windows
from modelwatch.stores import project, tracking
from modelwatch.stores.project import Project

COLLECTED = "prediction_window_collected:"  # ledger meta + window START: done
HEALTH_RUN = "prediction_window_health_run:"  # ledger meta + START: a row-less window's run


def log_dir(proj: Project) -> Path:
    """<project.home>/<serving.log_dir>."""
    return proj.paths.home / proj.settings.serving.log_dir


@task(cache_policy=NO_CACHE)
def find_closed_windows(proj: Project, now: datetime) -> list[windows.LogWindow]:
    """Returns the closed windows of the log; one already collected (a kill came after its
    record) is moved to collected/ now and left out."""
    serving, folder = proj.settings.serving, log_dir(proj)
    found = windows.closed_windows(folder, serving.window, serving.close_after_seconds, now)
    logger, todo = get_run_logger(), []
    for window in found:
        if proj.ledger.get_meta(proj.model_name, COLLECTED + window.label) is None:
            todo.append(window)
            continue
        late = logfiles.late_parts(window)
        if late:
            logger.warning(
                "%s: %d part file(s) arrived after the window was collected; not monitored, "
                "kept in %s",
                window.folder.name,
                len(late),
                logfiles.collected_dir(folder),
            )
        logfiles.retire_window(folder, window)
    logger.info("%d closed window(s) to collect in %s", len(todo), folder)
    return todo


@task(cache_policy=NO_CACHE)
def collect_window(proj: Project, window: windows.LogWindow) -> logfiles.WindowFiles:
    """Writes the window's batch, served answers and health (logfiles.materialize_window)."""
    files = logfiles.materialize_window(log_dir(proj), window, proj.settings.data)
    logger = get_run_logger()
    for line in files.set_aside:
        logger.warning("quarantined part file: %s", line)
    logger.info("%s", files.health.summary())
    return files


@task(cache_policy=NO_CACHE)
def served_predictions(proj: Project, served_path: Path, batch: pd.DataFrame) -> Served:
    """Returns what the model answered for each batch row (id, prediction, score columns), the
    model version that answered (the most frequent one when the alias moved mid-window), and
    the challenger's shadow answers when the service scored some rows in shadow.

    Raises:
        ValueError: the served file does not hold the batch's rows in the batch's order.
    """
    data = proj.settings.data
    served = logfiles.read_served(served_path)
    if served[data.id].astype(str).tolist() != batch[data.id].astype(str).tolist():
        raise ValueError(f"{served_path}: its ids are not the rows of the batch, in order")
    scores = [c for c in served.columns if c.startswith("prediction_score")]
    columns = [data.id, data.prediction, *scores]
    versions = served[windows.MODEL_VERSION].dropna().astype(str)
    counts = versions.value_counts()
    version = str(counts.index[0]) if len(counts) else ""
    if len(counts) > 1:
        get_run_logger().warning(
            "%s: answered by model versions %s; recorded as %s",
            served_path.name,
            dict(counts),
            version,
        )
    predictions = served[columns].copy()
    predictions[data.id] = batch[data.id].to_numpy()
    predictions = predictions.reset_index(drop=True)
    shadow_cols = [c for c in served.columns if c.startswith(windows.SHADOW_PREFIX)]
    shadow_versions = served.get(windows.SHADOW_VERSION, pd.Series(dtype=object)).dropna()
    if not shadow_cols or shadow_versions.empty:
        return Served(predictions, predictions, version, None)
    shadow = served[shadow_cols].reset_index(drop=True)
    stored = pd.concat([predictions, shadow], axis=1)
    return Served(predictions, stored, version, str(shadow_versions.astype(str).mode()[0]))


@dataclass(frozen=True)
class Served:
    """A window's answers: the champion's columns, the same with the shadow columns (what is
    stored), the version that answered and the shadow's version (None: no row in shadow)."""

    predictions: pd.DataFrame
    stored: pd.DataFrame
    version: str
    shadow_version: str | None


@task(cache_policy=NO_CACHE)
def log_system_health(
    proj: Project, health_path: Path, run_id: str, batch_id: str, index: int
) -> incidents.Findings:
    """Logs the window's system.* metrics in the batch's run and on the timeline (at the
    batch's step) and returns the system_health alert when a threshold was crossed."""
    health = logfiles.read_health(health_path)
    metrics = health.to_metrics()
    with tracking.resume(run_id):
        tracking.log_metrics(metrics, step=index)
        tracking.set_tags({names.PREDICTION_WINDOW: health.window})
        tracking.log_json(health.to_dict(), "system_health.json")
    project.log_timeline(proj, metrics, index)
    return _judge(proj, health, batch_id, index)


def _judge(
    proj: Project, health: windows.SystemHealth, batch_id: str, index: int
) -> incidents.Findings:
    settings = proj.settings.system_health
    problems = windows.health_problems(health, settings)
    if problems:
        get_run_logger().warning("system health: %s", "; ".join(problems))
    return incidents.system_health_alerts(
        problems, health.summary(), settings.severity, batch_id, index
    )


@task(cache_policy=NO_CACHE)
def log_window_health(proj: Project, files: logfiles.WindowFiles) -> tuple[str, int]:
    """A window without a single usable row (only failed requests, or none): its system health
    in a run of its own (tag prediction_window; no batch), at the newest batch's step. Not on
    the timeline, whose steps are batches: a point there would sit on that batch's own point.
    A killed attempt's run is deleted first (one run per window). Returns the run id and the
    step (the alerts are judged at it)."""
    window, health = files.window, files.health
    key = HEALTH_RUN + window.label
    stale = proj.ledger.get_meta(proj.model_name, key)
    if stale:
        from mlflow.exceptions import MlflowException

        try:
            proj.client.delete_run(stale)
        except MlflowException:
            pass  # already gone
    last = proj.ledger.last_batch(proj.model_name, done_only=False)
    step = last.step if last is not None else 0
    tags = {names.PREDICTION_WINDOW: window.label, names.NOTE: health.summary()}
    with tracking.run(proj.experiments.monitoring, f"window-{window.label}", tags) as run_id:
        proj.ledger.set_meta(proj.model_name, key, run_id)
        tracking.log_metrics(health.to_metrics(), step=step)
        tracking.log_json(health.to_dict(), "system_health.json")
    return run_id, step


@task(cache_policy=NO_CACHE)
def judge_window_health(
    proj: Project, files: logfiles.WindowFiles, step: int
) -> incidents.Findings:
    """The system_health alert of a row-less window (see log_window_health)."""
    return _judge(proj, files.health, f"window-{files.window.label}", step)


@task(cache_policy=NO_CACHE)
def finish_window(proj: Project, window: windows.LogWindow) -> None:
    """Records the window as collected, then moves its folder to collected/ (a kill between
    the two: the next run sees the record and only moves it)."""
    proj.ledger.set_meta(proj.model_name, COLLECTED + window.label, "done")
    logfiles.retire_window(log_dir(proj), window)
