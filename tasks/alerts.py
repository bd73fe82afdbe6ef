"""Turn a batch's findings into alerts: one per incident, routed to the log and to webhooks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import names
from modelwatch.alerts import delivery, incidents
from modelwatch.errors import SchemaError
from modelwatch.stores import tracking
from modelwatch.stores.project import Project


@task(cache_policy=NO_CACHE)
def send_alerts(
    proj: Project,
    findings: incidents.Findings,
    batch_id: str,
    index: int,
    run_id: str | None = None,
) -> list[delivery.Delivery]:
    """Opens, escalates or resolves incidents and queues the deliveries of the due alerts in
    the outbox, both in one ledger transaction (intent first: a kill from here on repeats an
    alert, never loses it); then posts what waits in the outbox and records the alerts and every
    delivery in the batch's run."""
    settings = proj.settings.alerts

    taken_over: list[Path] = []

    def track(raw_state: dict, raw_outbox: list) -> tuple[dict, list, list[incidents.Alert]]:
        state, pending = _imported(proj, raw_state, raw_outbox, taken_over)
        due, state = incidents.track_incidents(
            state, findings, index, batch_id, settings.repeat_after_batches
        )
        fresh = delivery.queue_entries(due, settings, pending)
        return state.to_dict(), [p.to_dict() for p in [*pending, *fresh]], due

    due = proj.ledger.update_alerts(proj.model_name, track)
    for path in taken_over:  # only once the ledger holds what they held
        path.rename(path.with_name(f"{path.name}.imported"))
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


def _imported(
    proj: Project, raw_state: dict, raw_outbox: list, taken_over: list[Path]
) -> tuple[incidents.IncidentState, list[delivery.Pending]]:
    """The ledger's incident state and outbox; the first time, those an earlier modelwatch kept
    in <home>/registry/<model>.incidents.json and .alert-outbox.json are taken over (the files
    are renamed *.imported)."""
    state = incidents.IncidentState.from_dict(raw_state) if raw_state else None
    pending = [delivery.Pending.from_dict(p) for p in raw_outbox]
    if state is None:
        folder = proj.paths.registry_dir
        old_state = folder / f"{proj.model_name}.incidents.json"
        old_outbox = folder / f"{proj.model_name}.alert-outbox.json"
        try:
            state = delivery.load_state(old_state)
            pending = [*delivery.load_outbox(old_outbox), *pending]
        except SchemaError as exc:
            get_run_logger().error("earlier alert state not taken over: %s", exc)
            state = incidents.IncidentState()
        taken_over[:] = [p for p in (old_state, old_outbox) if p.exists()]
    return state, pending


def _key(entry: dict) -> str:
    return json.dumps(entry, sort_keys=True)


def deliver(proj: Project, due: Sequence[incidents.Alert]) -> list[delivery.Delivery]:
    """Logs the due alerts and posts every delivery waiting in the ledger's outbox: those of
    the due alerts, queued there first, and earlier ones a target did not accept; returns every
    delivery made. One process posts at a time (a filelock beside the ledger, released by the
    kernel when its holder dies); entries other runs queue meanwhile stay for the next."""
    logger = get_run_logger()
    settings = proj.settings.alerts
    delivery.log_alerts(due, settings, logger)
    lock = proj.paths.registry_dir / f"{proj.model_name}.alert-delivery"
    with delivery.outbox_lock(lock) as locked:
        if not locked:
            logger.warning("another run is posting alerts: these wait in the outbox for the next")
            return []
        _, raw = proj.ledger.alerts(proj.model_name)
        if not raw:
            return []
        pending = [delivery.Pending.from_dict(p) for p in raw]
        deliveries, left = delivery.deliver((), settings, pending, logger)
        tried = {_key(p) for p in raw}

        def settle(state: dict, outbox: list) -> tuple[dict, list, None]:
            queued_meanwhile = [p for p in outbox if _key(p) not in tried]
            return state, [p.to_dict() for p in left] + queued_meanwhile, None

        proj.ledger.update_alerts(proj.model_name, settle)
    return deliveries
