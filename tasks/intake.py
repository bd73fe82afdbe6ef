"""Intake: claim a batch in the ledger (exactly once), finish what a killed run left."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import io
from modelwatch.alerts import incidents
from modelwatch.errors import ConfigError
from modelwatch.stores import recovery
from modelwatch.stores.ledger import Intake
from modelwatch.stores.project import Project


@task(cache_policy=NO_CACHE)
def recover_state(proj: Project) -> incidents.Findings:
    """Finishes promotions and closes retrains whose process died, and puts the reference back
    on the champion's data (each repair in the log); returns the promotion alerts that the
    interrupted runs never sent."""
    alerts = []

    def tell(candidate: str, previous: str | None, reason: str, step: int | None) -> None:
        alerts.append(
            incidents.Alert(
                kind="promotion",
                severity="info",
                title=f"Version {candidate} is now champion (was {previous})",
                text=f"- the promotion was finished after an interruption\n- {reason}",
                batch_id=f"step-{step}" if step is not None else "manual",
                batch_index=step or 0,
            )
        )

    repairs = recovery.recover(proj, on_promoted=tell)
    logger = get_run_logger()
    for repair in repairs:
        logger.warning("recovered: %s", repair.line())
    return incidents.Findings(tuple(alerts))


@task(cache_policy=NO_CACHE)
def claim_batch(proj: Project, batch_path: Path) -> Intake:
    """Claims the file's content in the ledger: a new step, the same step again when an earlier
    run of it died mid-way, or "done" when it was processed to the end.

    Raises:
        ConfigError: the file does not exist or is not a regular file.
        LedgerBusy: another live run is processing the same content now.
    """
    from prefect.runtime import flow_run

    if batch_path.is_symlink() or not batch_path.is_file():
        raise ConfigError(f"{batch_path}: no such batch file (or not a regular file)")
    md5 = io.file_md5(batch_path)
    run_id = str(flow_run.id) if flow_run.id else None
    batch_id = io.safe_stem(batch_path.name, md5)
    claim = proj.ledger.claim_batch(proj.model_name, md5, batch_id, flow_run_id=run_id)
    rec = claim.record
    if claim.kind == "resumed":
        get_run_logger().warning(
            "%s: resuming %s (step %d) after an interrupted attempt (it had reached '%s'; "
            "attempt %d)",
            batch_path.name,
            rec.batch_id,
            rec.step,
            rec.stage,
            rec.attempts,
        )
    return Intake(rec.batch_id, md5, rec.step, claim.kind, rec)
