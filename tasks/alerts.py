"""Turn a batch's findings into alerts: one per incident, routed to the log and to webhooks."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import names
from modelwatch.alerts import delivery, incidents
from modelwatch.errors import SchemaError
from modelwatch.stores import recovery, tracking
from modelwatch.stores.project import Project


@task(cache_policy=NO_CACHE)
def send_alerts(
    proj: Project,
    findings: incidents.Findings,
    batch_id: str,
    index: int,
    run_id: str | None = None,
) -> list[delivery.Delivery]:
    """Opens, escalates or resolves incidents (state in <home>/registry/<model>.incidents.json),
    routes the alerts that are due and records them (and every delivery) in the batch's run."""
    path = proj.paths.registry_dir / f"{proj.model_name}.incidents.json"
    with recovery.history_of(proj).lock():  # one writer of the incident state at a time
        state = delivery.load_state(path)
        due, state = incidents.track_incidents(
            state, findings, index, batch_id, proj.settings.alerts.repeat_after_batches
        )
        _queue(proj, due)  # the outbox first: a kill from here on repeats an alert, never loses it
        delivery.save_state(path, state)
    deliveries = deliver(proj, due)
    if run_id is not None and (due or deliveries):  # retries of earlier alerts are recorded too
        with tracking.resume(run_id):
            tracking.log_json(
                {
                    "alerts": [a.to_dict() for a in due],
                    "deliveries": [d.to_dict() for d in deliveries],
                },
                "alerts.json",
            )
            failed = [d for d in deliveries if d.status == "failed"]
            tracking.set_tags(
                {
                    names.ALERTS: ",".join(sorted({a.severity for a in due})),
                    names.ALERTS_FAILED: len(failed),
                }
            )
    return deliveries


def outbox_path(proj: Project) -> Path:
    return proj.paths.registry_dir / f"{proj.model_name}.alert-outbox.json"


def _read_outbox(path: Path, logger: object) -> list[delivery.Pending]:
    """The pending deliveries; an unreadable outbox is set aside (renamed *.broken-<time>, an
    error in the log) and treated as empty."""
    try:
        return delivery.load_outbox(path)
    except SchemaError as exc:
        aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%dT%H%M%S')}")
        path.rename(aside)
        logger.error("alert outbox set aside as %s: %s", aside.name, exc)
        return []


def _queue(proj: Project, due: Sequence[incidents.Alert]) -> None:
    """Writes the deliveries the due alerts need into the outbox before anything is posted."""
    path = outbox_path(proj)
    with delivery.outbox_lock(path) as locked:
        if not locked:
            return  # deliver() posts them directly; said there
        pending = _read_outbox(path, get_run_logger())
        fresh = delivery.queue_entries(due, proj.settings.alerts, pending)
        if fresh:
            delivery.save_outbox(path, [*pending, *fresh])


def deliver(proj: Project, due: Sequence[incidents.Alert]) -> list[delivery.Delivery]:
    """Logs the due alerts and posts every delivery waiting in the outbox
    (<home>/registry/<model>.alert-outbox.json): those of the due alerts, queued there first, and
    earlier ones a webhook did not accept; returns every delivery made. Never raises for the
    outbox: an unreadable one is set aside and delivery goes on without it."""
    logger = get_run_logger()
    path = outbox_path(proj)
    with delivery.outbox_lock(path) as locked:
        if not locked:
            logger.warning("%s is locked by another run: posting without the outbox", path.name)
            return delivery.deliver(due, proj.settings.alerts, (), logger)[0]
        pending = _read_outbox(path, logger)
        fresh = delivery.queue_entries(due, proj.settings.alerts, pending)
        if fresh:
            pending = [*pending, *fresh]
            delivery.save_outbox(path, pending)  # intent first
        delivery.log_alerts(due, proj.settings.alerts, logger)
        if not pending:
            return []
        deliveries, left = delivery.deliver((), proj.settings.alerts, pending, logger)
        delivery.save_outbox(path, left)
    return deliveries
