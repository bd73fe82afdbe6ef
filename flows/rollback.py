"""rollback: restore previous_champion as champion, with a reason, and its drift reference."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.common import DEFAULT_PARAMS, one_at_a_time, tag_run
from modelwatch.alerts import incidents
from modelwatch.errors import ConfigError
from tasks.alerts import deliver
from tasks.events import finish_event, others_alive, start_event
from tasks.project import open_project
from tasks.registry import rollback_champion


@flow(name="rollback", flow_run_name="rollback")
def rollback(reason: str, params_path: Path = DEFAULT_PARAMS) -> tuple[str, str]:
    """Makes previous_champion the champion again; returns (from version, to version).

    The alias history records who asked, when and why; the restored champion's training data
    becomes the drift reference again (read back from DVC at its window tag).

    Args:
        reason: who asks for the rollback, and why (recorded in the alias history).
        params_path: the project's params.yaml.
    """
    if not reason or not reason.strip():
        raise ConfigError("rollback needs a reason: who asked for it, and why")
    proj = open_project(params_path)
    tag_run(proj.model_name, "rollback")
    event = start_event(proj, "rollback", reason, manual=True)
    with one_at_a_time(proj.model_name, others_alive(proj, event)):
        before, after = rollback_champion(proj, reason)
    deliver(proj, incidents.rollback_alerts(before, after, reason).alerts)
    finish_event(proj, event, f"rolled back v{before} -> v{after}")
    return before, after
