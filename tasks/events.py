"""Retrain, promotion and rollback events in the ledger: started, then finished or interrupted."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from modelwatch.stores import ledger, recovery
from modelwatch.stores.project import Project


@task(cache_policy=NO_CACHE)
def start_event(
    proj: Project,
    kind: ledger.EventKind,
    reason: str,
    step: int | None = None,
    manual: bool = False,
    detail: dict[str, Any] | None = None,
) -> ledger.Event:
    """Records that this process began a retrain, promotion or rollback. A manual one without
    a batch is placed at the newest step, so it counts toward cooldown and budget there."""
    from prefect.runtime import flow_run

    if step is None:
        last = proj.ledger.last_batch(proj.model_name, done_only=False)
        step = last.step if last is not None else 0
    return proj.ledger.start_event(
        proj.model_name,
        kind,
        reason,
        step=step,
        manual=manual,
        detail=detail,
        flow_run_id=str(flow_run.id) if flow_run.id else None,
    )


@task(cache_policy=NO_CACHE)
def finish_event(
    proj: Project,
    event: ledger.Event,
    outcome: str,
    kind: str | None = None,
    gain: float | None = None,
) -> None:
    """Records how an event ended (it then counts as done); kind is the outcome's kind
    (modelwatch.decide.outcome.RetrainKind) for a retrain, gain the challenger's relative gain
    over the champion when one was compared (the policy learns from it)."""
    detail = {"outcome_kind": kind} if kind else {}
    if gain is not None:
        detail["gain"] = gain
    proj.ledger.finish_event(event.id, outcome, detail=detail or None)


@task(cache_policy=NO_CACHE)
def release_events(proj: Project) -> None:
    """Frees this process's open events after an exception (a half-done promotion is then
    finished by the next run, as after a kill)."""
    proj.ledger.release_events(proj.model_name)


@task(cache_policy=NO_CACHE)
def note_event(proj: Project, event: ledger.Event, detail: dict[str, Any]) -> None:
    """Adds what an event has done so far (e.g. the candidate version it registered)."""
    proj.ledger.update_event(event.id, detail)


@task(cache_policy=NO_CACHE)
def others_alive(proj: Project, event: ledger.Event) -> bool:
    """Whether another live process retrains, promotes or rolls back this model now."""
    return recovery.others_alive(proj, event.id)


@task(cache_policy=NO_CACHE)
def mark_reference(proj: Project, version: str) -> None:
    """Records that the drift reference now is this champion version's training data."""
    proj.ledger.set_meta(proj.model_name, recovery.REFERENCE_FOR, version)


@task(cache_policy=NO_CACHE)
def retrain_done_at(proj: Project, step: int) -> ledger.Event | None:
    """Returns the retrain an earlier attempt of this batch finished (it is not run twice)."""
    return proj.ledger.finished_at(proj.model_name, "retrain", step)
