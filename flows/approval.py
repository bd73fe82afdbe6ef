"""await-approval: one flow run per pending promotion approval, paused until a person answers."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.common import DEFAULT_PARAMS, one_at_a_time, tag_run
from tasks import approval
from tasks.alerts import send_alerts
from tasks.events import others_alive
from tasks.intake import recover_state
from tasks.project import open_project


@flow(name="await-approval", flow_run_name="await-approval-{event_id}")
def await_approval(event_id: int, params_path: Path = DEFAULT_PARAMS) -> str:
    """Waits for a person to approve or reject a challenger that passed every check (the
    Prefect UI's "Resume" form, or `modelwatch approve|reject`), then promotes it exactly as an
    automatic promotion does unless the live shadow evidence at that moment
    stops it (promotion.live_shadow), or records the rejection; no answer before the deadline
    (promotion.approval_timeout) rejects it. Started in a process of its own by the retrain that
    asked, so monitoring never waits for it. Rerun after a kill: an answer already given (in
    the ledger or to the killed run's form) is carried out, a half-done promotion finished.

    Returns:
        The approval's outcome, e.g. "approved by ana: fine; promoted v4".
    """
    proj = open_project(params_path)
    done = proj.ledger.get_event(event_id)
    if done is None or done.kind != "approval":
        from modelwatch.errors import ConfigError

        raise ConfigError(f"no approval event {event_id} for {proj.model_name}")
    if done.state != "started":
        return done.outcome or done.state
    event = approval.claim(proj, event_id)
    if event is None:  # started twice (a rerun raced the first waiter): that one carries on
        return f"approval {event_id}: another live process waits for it"
    tag_run(proj.model_name, "approval")
    answer = approval.answer_given(proj, event) or approval.wait_for_answer(proj, event)
    event = proj.ledger.get_event(event_id)
    if answer.verdict == "timeout":  # an answer written to the ledger while this run waited
        answer = approval.answer_given(proj, event) or answer
    if event.state != "started":  # superseded while this run waited
        tag_run("rejected")
        return event.outcome or event.state
    recover_state(proj)  # a promotion a killed process began is finished first
    with one_at_a_time(proj.model_name, others_alive(proj, event)):
        event = proj.ledger.get_event(event_id)
        if event.state != "started":  # superseded while this run waited for the slot
            return event.outcome or event.state
        answer = approval.judge_live(proj, event, answer)  # the live evidence, kept first
        alerts = approval.carry_out(proj, event, answer, approval.approval_via())
        step = event.step or 0
        send_alerts(proj, alerts, approval.subject_of(event), step)
        outcome = approval.close(proj, event, answer)
    tag_run("promoted" if answer.promotes else "rejected")  # rejected: also by live evidence
    return outcome
