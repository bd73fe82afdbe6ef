"""Human approval of a promotion: ask (a ledger event), wait in a paused Prefect flow run with a
typed form, and carry out the answer exactly once.

The approval is an `approval` event in the ledger; its detail holds the decision, the deadline,
the flow runs that waited for it and, once given, the answer. The waiting happens in a flow run
of its own (flows/approval.py, a process started by `start_waiter`), never in the run that
retrained, so monitoring goes on while a person thinks it over.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Literal

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.input import RunInput
from pydantic import Field

from modelwatch import names
from modelwatch.alerts import incidents
from modelwatch.decide import approval, promotion
from modelwatch.decide.promotion import Check, PromotionDecision
from modelwatch.stores import ledger as ledger_mod
from modelwatch.stores import recovery, registry
from modelwatch.stores.project import Project

ROOT = Path(__file__).resolve().parent.parent  # the checkout the waiter process runs from
POLL_SECONDS = 2  # how often a waiting flow run asks Prefect whether it was resumed


class ApprovalForm(RunInput):
    """The form the Prefect UI shows on "Resume" (and `modelwatch approve|reject` fills in)."""

    decision: Literal["approve", "reject"] = Field(description="approve: promote; reject: keep")
    reason: str = Field(min_length=1, description="why (recorded with the model version)")
    by: str = Field(min_length=1, description="who decides (your name)")


def pause_key(event_id: int) -> str:
    return f"approval-{event_id}"


def response_key(event_id: int) -> str:
    """The flow run input key Prefect stores the form's answer under (Paused state keyset)."""
    from prefect.input.run_input import keyset_from_base_key

    return keyset_from_base_key(f"paused-{pause_key(event_id)}")["response"]


def pending(proj: Project) -> list[ledger_mod.Event]:
    """Returns the open approval events of the project's model, oldest first."""
    return proj.ledger.open_events(proj.model_name, "approval")


def find_pending(proj: Project, version: str) -> ledger_mod.Event:
    """Returns the pending approval of a candidate version.

    Raises:
        ModelwatchError: no approval of that version is pending (the message lists those that are).
    """
    from modelwatch.errors import ModelwatchError

    events = pending(proj)
    for event in events:
        if str(event.detail.get("candidate")) == str(version).lstrip("v"):
            return event
    waiting = ", ".join(f"v{e.detail.get('candidate')}" for e in events) or "none"
    raise ModelwatchError(
        f"no pending approval for version {version} of {proj.model_name} (pending: {waiting})"
    )


@task(cache_policy=NO_CACHE)
def request_approval(
    proj: Project,
    decision: PromotionDecision,
    candidate_run_id: str,
    reason: str,
    step: int | None,
    batch_id: str | None,
) -> ledger_mod.Event:
    """Records that the candidate waits for a person (a newer request supersedes older ones),
    tags the version `approval=pending` and starts the process that waits; returns the event."""
    version = decision.candidate_version
    for older in pending(proj):
        supersede(proj, older, version)
    timeout = proj.settings.promotion.approval_timeout
    event = proj.ledger.start_event(
        proj.model_name,
        "approval",
        reason,
        step=step,
        detail={
            "candidate": version,
            "champion": decision.champion_version,
            "decision_id": decision.decision_id,
            "decision": decision.to_dict(),
            "run_id": candidate_run_id,
            "batch_id": batch_id,
            "timeout": timeout,
            "deadline": time.time() + timeout,
            "probation": bool(
                decision.champion_version and proj.settings.promotion.probation.batches
            ),
            "flow_runs": [],
        },
    )
    registry.tag_version(proj.client, proj.model_name, version, {names.APPROVAL: "pending"})
    pid = start_waiter(proj.paths.params_file, event.id, proj.paths.home)
    proj.ledger.claim_event(event.id, owner=ledger_mod.owner_token(pid))  # the waiter owns it
    get_run_logger().warning(
        "version %s passed every check and waits for approval (event %d, waiter pid %d, "
        "timeout %s): approve in the Prefect UI or with `modelwatch approve %s --reason ...`",
        version,
        event.id,
        pid,
        approval.format_duration(timeout),
        version,
    )
    return event


def start_waiter(params_file: Path, event_id: int, home: Path) -> int:
    """Starts the process whose flow run waits for the answer (`modelwatch approvals --wait`),
    in its own session so it outlives the run that asked; returns its pid. Its log goes to
    <home>/approvals/approval-<event>.log."""
    logs = home / "approvals"
    logs.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "modelwatch.app.cli", "--params", str(params_file)]
    with open(logs / f"approval-{event_id}.log", "ab") as log_file:
        proc = subprocess.Popen(  # noqa: S603 - our own command line
            [*cmd, "approvals", "--wait", str(event_id)],
            cwd=ROOT,
            env=_waiter_env(),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc.pid


def _waiter_env() -> dict[str, str]:
    """This environment, on the same Prefect API when it is a server that outlives this process
    (PREFECT_API_URL set); without one the waiter starts its own temporary server on the same
    database (PREFECT_HOME), like every embedded run."""
    return dict(os.environ)


@task(cache_policy=NO_CACHE)
def resume_approvals(proj: Project) -> list[int]:
    """Starts a waiter for every pending approval no live process waits for (its process was
    killed); returns the event ids. A waiter finds an answer given meanwhile (ledger or Prefect)
    before it waits again."""
    started = resume_waiters(proj)
    if started:
        get_run_logger().warning("restarted the waiter of pending approval(s) %s", started)
    return started


def resume_waiters(proj: Project) -> list[int]:
    """resume_approvals outside a flow run (the CLI)."""
    started = []
    for event in pending(proj):
        if not ledger_mod.owner_alive(event.owner):
            start_waiter(proj.paths.params_file, event.id, proj.paths.home)
            started.append(event.id)
    return started


def answer_given(proj: Project, event: ledger_mod.Event) -> approval.Answer | None:
    """Returns the answer already given to an approval: in the ledger, else as the form input
    of a flow run that waited for it (answered after its process died)."""
    from prefect.input.actions import read_flow_run_input

    if event.detail.get("answer"):
        return approval.Answer.from_dict(event.detail["answer"])
    for run_id in reversed(event.detail.get("flow_runs", [])):
        raw = read_flow_run_input(response_key(event.id), flow_run_id=run_id)
        if raw:
            return approval.from_form(raw["decision"], raw["reason"], raw["by"])
    return None


def wait_for_answer(proj: Project, event: ledger_mod.Event) -> approval.Answer:
    """Pauses this flow run until a person answers through its form, or the deadline passes
    (Prefect's pause_flow_run with wait_for_input)."""
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    left = approval.remaining(float(event.detail["deadline"]), time.time())
    timeout = float(event.detail["timeout"])
    if left <= 0:
        return approval.timed_out(timeout)
    decision = PromotionDecision.from_dict(event.detail["decision"])
    form = ApprovalForm.with_initial_data(
        description=f"**Promote version {decision.candidate_version} of {proj.model_name}?**\n\n"
        f"{decision.summary()}\n\n{describe_live(proj, event)}\n\n"
        f"No answer within {approval.format_duration(timeout)}: rejected.",
        decision="approve",
    )
    try:
        got = pause_flow_run(
            wait_for_input=form,
            timeout=max(1, int(left + 0.999)),
            poll_interval=POLL_SECONDS,
            key=pause_key(event.id),
        )
    except FlowPauseTimeout:
        return approval.timed_out(timeout)
    return approval.from_form(got.decision, got.reason, got.by)


def live_evidence(proj: Project, event: ledger_mod.Event) -> Check:
    """Returns the live shadow evidence on a pending approval's candidate now: its metric and
    the champion's on the labelled production rows the service scored it on in shadow, judged
    against promotion.live_shadow (the retrain's computation, modelwatch.stores.live_shadow)."""
    from modelwatch.errors import InsufficientDataError
    from modelwatch.stores import live_shadow

    version, champion = str(event.detail["candidate"]), event.detail.get("champion")
    settings = proj.settings.promotion
    live, error = None, ""
    if champion is not None:
        try:
            live = live_shadow.gather(proj, str(champion), version)
        except InsufficientDataError as exc:
            error = str(exc)
    return promotion.live_shadow_at_approval(
        live, settings, proj.settings.project.task, version, error
    )


def judge_live(proj: Project, event: ledger_mod.Event, answer: approval.Answer) -> approval.Answer:
    """Returns the answer with the live shadow evidence at the moment of approval, kept in the
    ledger before anything acts on it (a rerun after a kill reuses it, never re-judges): with
    promotion.live_shadow set and min_rows labelled rows, a candidate worse live than the
    champion by more than max_worse is not promoted. A rejection or timeout is not judged."""
    if answer.verdict != "approved" or answer.live_shadow is not None:
        return answer
    check = live_evidence(proj, event)
    judged = proj.settings.promotion.live_shadow is not None
    answer = replace(
        answer,
        live_shadow=check.sentence if judged else "",
        live_shadow_blocks=judged and not check.passed,
    )
    proj.ledger.update_event(event.id, {"answer": answer.to_dict()})
    get_run_logger().info("approval of version %s: %s", event.detail["candidate"], check.sentence)
    return answer


def describe_live(proj: Project, event: ledger_mod.Event) -> str:
    """Returns the live shadow evidence as the paused run's form shows it (markdown)."""
    from datetime import UTC, datetime

    now = datetime.now(UTC).isoformat(timespec="seconds")
    rule = proj.settings.promotion.live_shadow
    gate = (
        "When you approve it is evaluated again on the evidence at that moment: with at least "
        f"{rule.min_rows} rows, a candidate worse than the champion by more than "
        f"{rule.max_worse:.0%} is not promoted (promotion.live_shadow)."
        if rule
        else "promotion.live_shadow is not set: shown, not judged."
    )
    return (
        f"**Live evidence** (as of {now}; `modelwatch approvals` shows it now): "
        f"{live_evidence(proj, event).sentence}\n\n{gate}"
    )


def supersede(proj: Project, event: ledger_mod.Event, newer: str) -> None:
    """Ends a pending approval as rejected (superseded by a newer challenger) and wakes its
    waiting flow run, which then finds it done."""
    answer = approval.superseded(newer)
    proj.ledger.update_event(event.id, {"answer": answer.to_dict()})
    record_answer(proj, event, answer)
    proj.ledger.finish_event(event.id, answer.outcome(), detail={"verdict": answer.verdict})
    _wake(event, answer)


def _wake(event: ledger_mod.Event, answer: approval.Answer) -> None:
    """Resumes a still-paused waiting flow run with the answer as its form input, and marks a
    run whose process is gone as cancelled (nobody runs it any more)."""
    from prefect import get_client
    from prefect.states import Cancelled

    runs = event.detail.get("flow_runs", [])
    if not runs:
        return
    with get_client(sync_client=True) as client:
        for run_id in runs:
            run = client.read_flow_run(run_id)
            if run.state is not None and run.state.is_paused():
                client.resume_flow_run(
                    run_id,
                    run_input={"decision": "reject", "reason": answer.reason, "by": answer.by},
                )
            if not ledger_mod.owner_alive(event.owner) and run.state and not run.state.is_final():
                client.set_flow_run_state(
                    run_id, Cancelled(message=f"approval ended: {answer.outcome()}"), force=True
                )


def record_answer(proj: Project, event: ledger_mod.Event, answer: approval.Answer) -> None:
    """Writes an answer that does not promote where people look: an aborted move in the alias
    history (once), the model version's tags and description, the decision run's tags."""
    history = recovery.history_of(proj)
    decision_id = str(event.detail.get("decision_id", ""))
    if not any(r.decision_id == decision_id and r.approval for r in history.records()):
        history.append(
            action="promote",
            alias=registry.CHAMPION,
            from_version=event.detail.get("champion"),
            to_version=str(event.detail["candidate"]),
            state="aborted",
            decision_id=decision_id,
            reason=event.reason,
            actor=answer.by,
            via="promotion.approval",
            note=answer.outcome(),
            **_approval_fields(answer),
        )
    tag_answer(proj, event, answer)


def tag_answer(proj: Project, event: ledger_mod.Event, answer: approval.Answer) -> None:
    """The answer as tags on the model version and its decision (training) run, and a
    paragraph in the version's description."""
    name, version = proj.model_name, str(event.detail["candidate"])
    registry.tag_version(proj.client, name, version, answer.tags())
    for key, value in answer.tags().items():
        proj.client.set_tag(event.detail["run_id"], key, value)
    text = proj.client.get_model_version(name, version).description or ""
    para = answer.markdown(version)
    if para not in text:
        proj.client.update_model_version(name, version, description=f"{text}\n\n{para}".strip())


def _approval_fields(answer: approval.Answer) -> dict[str, str]:
    return {
        "approval": answer.verdict,
        "approval_by": answer.by,
        "approval_reason": answer.reason,
    }


@task(cache_policy=NO_CACHE)
def carry_out(
    proj: Project, event: ledger_mod.Event, answer: approval.Answer, via: str
) -> incidents.Findings:
    """Acts on the answer exactly once; returns the alert to send (none when a killed process
    already moved the aliases: its promotion's recovery alerted). `close` then ends it.

    Approved: the promotion runs as an automatic one does (a `promotion` event first, then the
    alias move with the approval in the alias history, probation, drift reference); one of
    this approval that a killed process began was finished by the recovery, never repeated.
    Otherwise: recorded as rejected (alias history, tags) and a "champion kept" alert."""
    proj.ledger.update_event(event.id, {"answer": answer.to_dict()})  # the answer is kept first
    decision = PromotionDecision.from_dict(event.detail["decision"])
    step, subject = event.step or 0, subject_of(event)
    if not answer.promotes:
        record_answer(proj, event, answer)
        kept = replace(decision, promote=False, reasons=(*decision.reasons, answer.outcome()))
        return incidents.promotion_alerts(kept, subject, step)
    led, name, version = proj.ledger, proj.model_name, decision.candidate_version
    began = [e for e in _promotions_since(proj, event.id) if e.detail.get("approval") == event.id]
    registry.tag_version(proj.client, name, version, {names.PROMOTION: "promoted"})
    tag_answer(proj, event, answer)
    if began:
        return incidents.Findings()
    led.start_event(
        name,
        "promotion",
        event.reason,
        step=event.step,
        detail={
            "candidate": version,
            "champion": decision.champion_version,
            "decision_id": decision.decision_id,
            "probation": bool(event.detail.get("probation")),
            "approval": event.id,
        },
    )
    if event.detail.get("probation"):  # before the move, as apply_promotion: a kill after the
        recovery.set_probation(proj, version, "active")  # move must not leave it unjudged
    old = registry.promote(
        proj.client,
        name,
        version,
        history=recovery.history_of(proj),
        via=via,
        reason=event.reason,
        decision_id=decision.decision_id,
        approval=_approval_fields(answer),
    )
    if old and old != version and led.get_meta(name, f"probation:{old}") == "active":
        said = f"superseded by version {version} before it was judged (an approved promotion)"
        recovery.set_probation(proj, old, "superseded", {names.PROBATION_REASON: said})
    recovery.reconcile_reference(proj)
    return incidents.promotion_alerts(decision, subject, step)


@task(cache_policy=NO_CACHE)
def close(proj: Project, event: ledger_mod.Event, answer: approval.Answer) -> str:
    """Ends the approval (and the promotion it began) once its alert is queued; returns the
    outcome."""
    version = str(event.detail["candidate"])
    outcome = answer.outcome()
    for promo in _promotions_since(proj, event.id):
        if promo.detail.get("approval") == event.id and promo.state == "started":
            proj.ledger.finish_event(promo.id, f"promoted v{version} (approved by {answer.by})")
    if answer.promotes:
        outcome += f"; promoted v{version}"
    proj.ledger.finish_event(event.id, outcome, detail={"verdict": answer.verdict})
    get_run_logger().info("approval of version %s: %s", version, outcome)
    return outcome


def subject_of(event: ledger_mod.Event) -> str:
    """The batch an approval's alerts name (the one whose retrain asked for it)."""
    return event.detail.get("batch_id") or f"manual-retrain-after-step-{event.step or 0}"


def _promotions_since(proj: Project, event_id: int) -> list[ledger_mod.Event]:
    return proj.ledger.events_after(proj.model_name, "promotion", event_id)


def approval_via() -> str:
    from prefect.runtime import flow_run

    return f"prefect flow run {flow_run.name} ({flow_run.id}) after approval"


def claim(proj: Project, event_id: int) -> ledger_mod.Event | None:
    """Claims a pending approval for this process and records this flow run as one that waits
    for it; returns it (None: finished, or a live process waits for it already)."""
    from prefect.runtime import flow_run

    if not proj.ledger.claim_event(event_id):
        return None
    event = proj.ledger.get_event(event_id)
    runs = [*event.detail.get("flow_runs", []), str(flow_run.id)]
    proj.ledger.update_event(event_id, {"flow_runs": runs})
    registry.tag_version(
        proj.client,
        proj.model_name,
        str(event.detail["candidate"]),
        {names.APPROVAL_FLOW_RUN: str(flow_run.id)},
    )
    return proj.ledger.get_event(event_id)


def answer_through_prefect(
    proj: Project, event: ledger_mod.Event, answer: approval.Answer, choice: str
) -> bool:
    """Gives the answer the way the Prefect UI does: POST /flow_runs/{id}/resume with the form
    as run_input, on the flow run that waits (paused); returns True. A live waiter that has not
    paused yet is given a few seconds to; without one (its process died before pausing) the
    answer goes straight into the ledger, where the next waiter finds it; returns False.

    Raises:
        ModelwatchError: Prefect refused the input (the message says why).
    """
    from prefect import get_client

    from modelwatch.errors import ModelwatchError

    end = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        while True:
            for run_id in reversed(event.detail.get("flow_runs", [])):
                run = client.read_flow_run(run_id)
                if run.state is None or not run.state.is_paused():
                    continue
                result = client.resume_flow_run(
                    run_id,
                    run_input={"decision": choice, "reason": answer.reason, "by": answer.by},
                )
                if result.status.value != "ACCEPT":
                    raise ModelwatchError(
                        f"Prefect refused the answer for flow run {run_id}: "
                        f"{getattr(result.details, 'reason', result.details)}"
                    )
                return True
            if not ledger_mod.owner_alive(event.owner) or time.monotonic() > end:
                break
            time.sleep(0.5)
            event = proj.ledger.get_event(event.id)
    proj.ledger.update_event(event.id, {"answer": answer.to_dict()})
    return False
