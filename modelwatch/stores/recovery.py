"""Finishing what a killed process left half done, from the ledger's records.

Every function here is idempotent and safe to call at the start of every flow run: it reads a
few indexed rows and acts only where an owner died.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from modelwatch import names
from modelwatch.stores import ledger as ledger_mod
from modelwatch.stores import project, registry, versioning
from modelwatch.stores.alias_history import AliasHistory
from modelwatch.stores.project import Project

log = logging.getLogger(__name__)

REFERENCE_FOR = "reference_for_version"  # ledger meta: which champion the reference belongs to


@dataclass(frozen=True)
class Repair:
    """One thing found and what was done about it, in words for a person."""

    what: str
    action: str

    def line(self) -> str:
        return f"{self.what}: {self.action}"


def history_of(proj: Project) -> AliasHistory:
    return AliasHistory(proj.paths.registry_dir, proj.model_name)


def probation_of(proj: Project, version: registry.ModelVersionInfo) -> str | None:
    """Returns a champion version's probation status (active, passed, failed, rolled_back) from
    the ledger, which the flows decide from; a version promoted before the ledger held it is
    read from its MLflow version tag once."""
    status = proj.ledger.get_meta(proj.model_name, f"probation:{version.version}")
    return status if status is not None else version.tags.get(names.PROBATION)


def set_probation(
    proj: Project, version: str, status: str, tags: dict[str, str] | None = None
) -> None:
    """Records a probation status in the ledger, then (the record people look at) as MLflow
    version tags, with any other tags given."""
    proj.ledger.set_meta(proj.model_name, f"probation:{version}", status)
    registry.tag_version(
        proj.client, proj.model_name, version, {names.PROBATION: status, **(tags or {})}
    )


def reconcile_reference(proj: Project) -> Repair | None:
    """Makes the drift/validation reference the champion's training window when it is not
    (a promotion or rollback killed between the alias move and the reference move)."""
    champion = registry.get_alias(proj.client, proj.model_name, registry.CHAMPION)
    if champion is None:
        return None
    if proj.ledger.get_meta(proj.model_name, REFERENCE_FOR) == champion.version:
        return None
    tag = champion.tags.get(names.WINDOW_TAG)
    if not tag:
        return None
    raw = versioning.read_version(proj.paths.data_repo, project.WINDOW, tag)
    path = proj.repo_path(project.REFERENCE)
    changed = not path.exists() or path.read_bytes() != raw
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        versioning.track(
            proj.paths.data_repo, [path], f"reference for champion {champion.version} ({tag})"
        )
    proj.ledger.set_meta(proj.model_name, REFERENCE_FOR, champion.version)
    if not changed:
        return None
    return Repair(
        f"the drift reference was not champion {champion.version}'s training data",
        f"replaced by its window {tag} and versioned",
    )


OnPromoted = Callable[[str, "str | None", str, int | None], None]


def finish_promotions(proj: Project, on_promoted: OnPromoted | None = None) -> list[Repair]:
    """Finishes promotions whose process died: the alias moves (if it had not), the reference
    follows, `on_promoted(candidate, previous, reason, step)` tells people (the promotion alert),
    and only then is the event closed (a kill before that repeats the alert, never loses it)."""
    done = []
    led, name = proj.ledger, proj.model_name
    for event in led.open_events(name, "promotion"):
        if ledger_mod.owner_alive(event.owner):
            continue
        candidate = str(event.detail["candidate"])
        previous = event.detail.get("champion")
        registry.recover(proj.client, name, history_of(proj))  # a half-done alias move first
        champion = registry.get_alias(proj.client, name, registry.CHAMPION)
        if champion is None or champion.version != candidate:
            registry.promote(
                proj.client,
                name,
                candidate,
                history=history_of(proj),
                via="recovery of an interrupted promotion",
                reason=event.reason,
                decision_id=str(event.detail.get("decision_id", "")),
            )
            if previous and event.detail.get("probation"):
                set_probation(proj, candidate, "active")
        reconcile_reference(proj)
        if on_promoted is not None:
            on_promoted(candidate, previous, event.reason, event.step)
        outcome = f"promoted v{candidate} (finished after an interruption)"
        led.finish_event(event.id, outcome)
        for parent in led.open_events(name, "retrain"):  # the retrain it concluded is done too
            if parent.step == event.step and not ledger_mod.owner_alive(parent.owner):
                led.finish_event(parent.id, outcome)
        done.append(
            Repair(
                f"promotion of v{candidate} interrupted (process {_pid(event.owner)} died)",
                f"finished: champion v{candidate}, reference moved, alert sent",
            )
        )
    return done


def close_dead_events(proj: Project) -> list[Repair]:
    """Marks retrains and rollbacks whose process died as interrupted: they count toward
    neither cooldown nor budget; a candidate version they registered is tagged as such."""
    done = []
    for event in proj.ledger.open_events(proj.model_name):
        if event.kind in ("promotion", "approval") or ledger_mod.owner_alive(event.owner):
            continue  # approvals wait for a person without a process: tasks/approval.py
        candidate = event.detail.get("candidate")
        if candidate:
            registry.tag_version(
                proj.client, proj.model_name, str(candidate), {names.INTERRUPTED: "true"}
            )
        proj.ledger.finish_event(
            event.id, f"interrupted: process {_pid(event.owner)} died", state="interrupted"
        )
        done.append(
            Repair(
                f"{event.kind} started for step {event.step} interrupted "
                f"(process {_pid(event.owner)} died)",
                "recorded as interrupted; it does not count as done",
            )
        )
    return done


def recover(proj: Project, on_promoted: OnPromoted | None = None) -> list[Repair]:
    """Everything a killed process can leave in the ledger's care, finished or closed."""
    repairs = finish_promotions(proj, on_promoted) + close_dead_events(proj)
    fixed = reconcile_reference(proj)
    if fixed is not None:
        repairs.append(fixed)
    for repair in repairs:
        log.warning("recovered: %s", repair.line())
    return repairs


def others_alive(proj: Project, own_event_id: int) -> bool:
    """Whether another live process has an open retrain, promotion or rollback of the model."""
    return any(
        e.id != own_event_id and ledger_mod.owner_alive(e.owner)
        for e in proj.ledger.open_events(proj.model_name)
    )


def _pid(owner: str | None) -> str:
    return (owner or "?").split(":")[0]
