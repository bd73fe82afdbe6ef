"""modelwatch serve: the monitor (cron), retrain and rollback deployments, served by one process."""

from __future__ import annotations

from pathlib import Path

from flows.incoming import monitor_incoming
from flows.retrain import retrain
from flows.rollback import rollback
from modelwatch.settings import load_settings


def build_deployments(params_path: Path) -> list:
    """Returns the three deployments of a project:

    - `monitor-incoming/monitor`: on schedule.cron in schedule.timezone, processes every batch
      waiting in incoming/batches; runs never overlap (deployment concurrency limit 1);
    - `retrain/retrain`: by hand (Prefect UI "Custom run" or `prefect deployment run`), with a
      required reason, force and window_batches;
    - `rollback/rollback`: by hand, with a required reason.
    """
    from prefect.schedules import Cron

    settings = load_settings(params_path).settings
    model, schedule = settings.project.model_name, settings.schedule
    params = {"params_path": str(Path(params_path).resolve())}
    return [
        monitor_incoming.to_deployment(
            name="monitor",
            schedule=Cron(schedule.cron, timezone=schedule.timezone),
            parameters=params,
            concurrency_limit=1,
            tags=[model, "monitor"],
            description=f"Monitor {model}: every batch in incoming/batches, oldest first "
            f"(cron {schedule.cron!r}, {schedule.timezone})",
        ),
        retrain.to_deployment(
            name="retrain",
            parameters=params,
            tags=[model, "retrain"],
            description=f"Retrain {model} by hand: give a reason; promoted only if better",
        ),
        rollback.to_deployment(
            name="rollback",
            parameters=params,
            tags=[model, "rollback"],
            description=f"Make {model}'s previous_champion the champion again, with a reason",
        ),
    ]


def serve_deployments(params_path: Path) -> None:
    """Registers the deployments and runs their flow runs until interrupted."""
    from prefect import serve

    serve(*build_deployments(params_path))
