"""Intake: claim a batch in the ledger (exactly once), finish what a killed run left."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import io
from modelwatch.alerts import incidents
from modelwatch.errors import ConfigError
from modelwatch.stores import ledger, recovery
from modelwatch.stores.project import Project


@dataclass(frozen=True)
class Intake:
    """A batch claimed for processing: its step and how far an earlier attempt got."""

    batch_id: str
    file_md5: str
    index: int
    kind: str  # new, resumed or done
    record: ledger.BatchRecord

    @property
    def done(self) -> bool:
        return self.kind == "done"

    def skipped_message(self, name: str) -> str:
        rec = self.record
        return (
            f"{name}: same content as {rec.batch_id} (step {rec.step}, {rec.status}); "
            "already processed, nothing done"
        )


@task(cache_policy=NO_CACHE)
def recover_state(proj: Project) -> list[str]:
    """Finishes promotions and closes retrains whose process died, and puts the reference back
    on the champion's data; returns what it did (also in the log)."""
    from tasks.alerts import send_alerts

    def tell(candidate: str, previous: str | None, reason: str, step: int | None) -> None:
        alert = incidents.Alert(
            kind="promotion",
            severity="info",
            title=f"Version {candidate} is now champion (was {previous})",
            text=f"- the promotion was finished after an interruption\n- {reason}",
            batch_id=f"step-{step}" if step is not None else "manual",
            batch_index=step or 0,
        )
        send_alerts(proj, incidents.Findings((alert,)), alert.batch_id, alert.batch_index)

    repairs = recovery.recover(proj, on_promoted=tell)
    logger = get_run_logger()
    for repair in repairs:
        logger.warning("recovered: %s", repair.line())
    return [r.line() for r in repairs]


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
    claim = proj.ledger.claim_batch(proj.model_name, md5, batch_path.stem, flow_run_id=run_id)
    rec = claim.record
    if claim.kind == "resumed":
        get_run_logger().warning(
            "%s: resuming step %d after an interrupted attempt (it had reached '%s'; attempt %d)",
            batch_path.name,
            rec.step,
            rec.stage,
            rec.attempts,
        )
    return Intake(batch_path.stem, md5, rec.step, claim.kind, rec)
