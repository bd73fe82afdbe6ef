"""Validate a batch with Great Expectations; quarantine it when it fails."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from modelwatch import io
from modelwatch.errors import SchemaError
from modelwatch.stores import validation
from modelwatch.stores.project import Project


@task(cache_policy=NO_CACHE)
def validate_batch(
    batch_path: Path, reference: pd.DataFrame, project: Project
) -> tuple[pd.DataFrame | None, validation.ValidationResult]:
    """Reads the batch file and runs the suite; an unreadable file is a failed result."""
    try:
        batch = io.read_csv_file(batch_path)
    except SchemaError as exc:
        return None, validation.ValidationResult.from_error(batch_path.name, str(exc))
    result = validation.validate_frame(
        batch,
        reference,
        project.settings.data,
        project.settings.validation,
        batch_path.name,
        known_times=_known_times(project, reference),
    )
    get_run_logger().info("validation: %s", result.summary())
    return batch, result


DATA_TIME_END = "data_time_end"  # ledger meta: the newest timestamp of any accepted batch


def _known_times(
    project: Project, reference: pd.DataFrame
) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The oldest timestamp of the reference and the newest accepted so far (the ledger's
    record, or the reference's before the first batch)."""
    column = project.settings.data.timestamp
    span = validation.time_span(reference, column) if column else None
    if span is None:
        return None
    stored = project.ledger.get_meta(project.model_name, DATA_TIME_END)
    return span[0], max(span[1], pd.Timestamp(stored)) if stored else span[1]


@task(cache_policy=NO_CACHE)
def note_batch_time(project: Project, batch: pd.DataFrame) -> None:
    """Moves the ledger's newest accepted timestamp forward to this accepted batch's newest (a
    maximum, so a rerun after a crash writes the same value)."""
    column = project.settings.data.timestamp
    span = validation.time_span(batch, column) if column else None
    if span is None:
        return
    newest = span[1]
    stored = project.ledger.get_meta(project.model_name, DATA_TIME_END)
    if stored is None or newest > pd.Timestamp(stored):
        project.ledger.set_meta(project.model_name, DATA_TIME_END, newest.isoformat())


@task(cache_policy=NO_CACHE)
def check_reference_data(reference: pd.DataFrame, project: Project) -> list[str]:
    """Logs a warning for each thing in the reference that would reject good batches or break
    training (validation.check_reference); returns them."""
    settings = project.settings
    found = validation.check_reference(
        reference, settings.data, settings.validation, settings.project.task
    )
    for line in found:
        get_run_logger().warning("reference: %s", line)
    return found


@task(cache_policy=NO_CACHE)
def quarantine_batch(
    batch_path: Path, result: validation.ValidationResult, project: Project, batch_id: str
) -> Path:
    """Keeps the file and a readable report in the data repository's quarantine, in a folder
    named by the batch id (the file's stem made safe as a path component)."""
    folder = validation.quarantine_batch(batch_path, result, project.paths.quarantine, batch_id)
    create_markdown_artifact(
        markdown=result.to_markdown(), key="quarantine-report", description=result.summary()[:500]
    )
    get_run_logger().warning("quarantined %s in %s", batch_path.name, folder)
    return folder


@task(cache_policy=NO_CACHE)
def note_rejected_ids(project: Project, batch: pd.DataFrame | None, index: int) -> None:
    """Records the row ids a rejected batch delivered (when its id column can be read), so
    labels that arrive for them later are kept apart instead of silently dropped."""
    from modelwatch.performance.labels import id_keys

    column = project.settings.data.id
    if batch is None or column not in batch.columns:
        return
    project.ledger.add_row_ids(project.model_name, id_keys(batch[column]), index, False)
