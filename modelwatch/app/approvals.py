"""`modelwatch approvals | approve | reject`: pending promotion approvals from the shell.

An answer from the shell goes through the same Prefect input as the UI's "Resume" form (POST
/flow_runs/{id}/resume with run_input, Prefect validating it against the form's schema), so
the waiting flow run carries it out whichever way it came. When no live process waits (it was
killed), the answer is carried out here, in a flow run of this process.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

ANSWER_WAIT_SECONDS = 180  # how long the CLI waits for the waiting flow run to carry out


def list_pending(params: Path) -> str:
    """Returns two lines per pending approval: what waits, and its live shadow evidence against
    the champion as of now, judged as the approval will be. One whose waiting process died is
    carried on: an answer it got is carried out here (the outcome is printed), else a new
    waiter starts."""
    from modelwatch.stores import ledger as ledger_mod
    from modelwatch.stores.project import open_project
    from tasks import approval

    proj = open_project(params)
    lines = []
    for event in approval.pending(proj):
        if ledger_mod.owner_alive(event.owner):
            continue
        if approval.answer_given(proj, event) is not None:
            lines.append(f"v{event.detail.get('candidate')}: {wait(params, event.id)}")
        else:
            approval.start_waiter(proj.paths.params_file, event.id, proj.paths.home)
            lines.append(f"v{event.detail.get('candidate')}: restarted its waiting flow run")
    for event in approval.pending(proj):  # each with its live evidence as of now
        lines += [describe(event), f"  {approval.live_evidence(proj, event).sentence}"]
    return "\n".join(lines) or f"{proj.model_name}: no pending approvals"


def describe(event: Any, now: float | None = None) -> str:
    """Returns one line about a pending approval, for `modelwatch approvals` and status."""
    from modelwatch.decide import approval
    from modelwatch.stores import ledger as ledger_mod

    left = approval.remaining(float(event.detail.get("deadline", 0)), now or time.time())
    who = "waiting" if ledger_mod.owner_alive(event.owner) else "no waiter (restarted on demand)"
    runs = event.detail.get("flow_runs") or ["-"]
    return (
        f"pending approval: v{event.detail.get('candidate')} (champion "
        f"v{event.detail.get('champion')}), {approval.format_duration(round(left))} left, "
        f"{who}, flow run {runs[-1]}; reason: {event.reason}"
    )


def wait(params: Path, event_id: int) -> str:
    """Runs the await-approval flow for one approval (the process start_waiter starts)."""
    from flows.approval import await_approval

    return await_approval(event_id=event_id, params_path=params)


def answer(params: Path, version: str, choice: str, reason: str, by: str) -> str:
    """Approves or rejects the pending approval of a version; returns its outcome (or that the
    waiting flow run got the answer and is carrying it out).

    Raises:
        ModelwatchError: nothing of that version is pending, or Prefect refused the input.
    """
    from modelwatch.decide import approval as core
    from modelwatch.errors import ModelwatchError
    from modelwatch.stores import ledger as ledger_mod
    from modelwatch.stores.project import open_project
    from tasks import approval

    proj = open_project(params)
    event = approval.find_pending(proj, version)
    given = core.from_form(choice, reason, by)
    earlier = approval.answer_given(proj, event)
    if earlier is not None:
        raise ModelwatchError(
            f"version {version} was answered already ({earlier.outcome()}); "
            "`modelwatch approvals` finishes carrying it out"
        )
    approval.answer_through_prefect(proj, event, given, choice)
    end = time.monotonic() + ANSWER_WAIT_SECONDS
    while time.monotonic() < end:
        event = proj.ledger.get_event(event.id)
        if event.state != "started":
            return f"v{event.detail.get('candidate')}: {event.outcome}"
        if not ledger_mod.owner_alive(event.owner):
            return f"v{event.detail.get('candidate')}: {wait(params, event.id)}"
        time.sleep(0.5)
    return (
        f"v{event.detail.get('candidate')}: answer given; the waiting flow run carries it out "
        "(see `modelwatch status`)"
    )
