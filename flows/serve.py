"""modelwatch serve: the monitor (cron), retrain and rollback deployments, served by one process."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flows.incoming import monitor_incoming
from flows.predictions import collect_predictions
from flows.retrain import retrain
from flows.rollback import rollback
from modelwatch.serving import windows
from modelwatch.settings import load_settings

log = logging.getLogger("modelwatch.serve")


def build_deployments(params_path: Path) -> list:
    """Returns the four deployments of a project:

    - `monitor-incoming/monitor`: on schedule.cron in schedule.timezone, processes every batch
      waiting in incoming/batches; runs never overlap (deployment concurrency limit 1);
    - `retrain/retrain`: by hand (Prefect UI "Custom run" or `prefect deployment run`), with a
      required reason, force and window_batches;
    - `rollback/rollback`: by hand, with a required reason;
    - `collect-predictions/collect`: every hour (serving.window hourly) or day (daily), at
      serving.close_after_seconds past the window's end (rounded up to a minute), turns the
      prediction log's closed windows into monitored batches; runs never overlap.
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
        collect_predictions.to_deployment(
            name="collect",
            schedule=Cron(windows.collect_cron(settings.serving), timezone="UTC"),
            parameters=params,
            concurrency_limit=1,
            tags=[model, "collect"],
            description=f"Collect {model}'s prediction log: each closed "
            f"{settings.serving.window} window becomes a monitored batch",
        ),
    ]


MONITOR = "monitor-incoming/monitor"


def catch_up(client: Any, now: datetime | None = None) -> list[str]:
    """The catch-up policy for ticks missed while nothing served the deployments: they are not
    run one by one (each would find the folder already drained). Every monitor run still waiting
    from before (scheduled in the past, or left pending/running by a serve process that stopped)
    is cancelled with a message saying so, and one run starts now, tagged `catch-up`, which
    processes everything waiting. Returns the names of the runs cancelled. One `modelwatch serve`
    per project is assumed (a second one's pending runs would be cancelled too)."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Cancelled

    try:
        deployment = client.read_deployment_by_name(MONITOR)
    except ObjectNotFound:
        return []  # never served before: nothing was missed
    now = now or datetime.now(UTC)
    waiting = client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(
                type=FlowRunFilterStateType(
                    any_=[StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING]
                )
            )
        ),
    )
    missed = [
        r
        for r in waiting
        if r.state_type != StateType.SCHEDULED
        or (r.expected_start_time is not None and r.expected_start_time < now)
    ]
    for run in missed:
        client.set_flow_run_state(
            run.id,
            Cancelled(
                message="missed while `modelwatch serve` was not running; a catch-up run "
                "processes everything waiting"
            ),
            force=True,
        )
    if missed:
        client.create_flow_run_from_deployment(deployment.id, tags=["catch-up"])
    return [r.name for r in missed]


def serve_deployments(params_path: Path) -> None:
    """Applies the catch-up policy (`catch_up`), registers the deployments and runs their flow
    runs until interrupted."""
    from prefect import get_client, serve

    with get_client(sync_client=True) as client:
        missed = catch_up(client)
    if missed:
        log.info(
            "catch-up: %d missed monitor run(s) cancelled (%s); one run now processes the folder",
            len(missed),
            ", ".join(missed[:5]) + (", ..." if len(missed) > 5 else ""),
        )
    serve(*build_deployments(params_path))
