"""Large Parquet batches on Dask: per-piece validation and scoring, per-column drift.

In the monitor-large-batch flow these run on its DaskTaskRunner: `.map` over the pieces or
the columns puts each one on a Dask worker; the combining tasks run in the flow's process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from modelwatch import io
from modelwatch.drift import report
from modelwatch.drift.stattests import FeatureDrift
from modelwatch.errors import SchemaError
from modelwatch.scale import drift as scale_drift
from modelwatch.scale import parquet
from modelwatch.scale import scoring as scale_scoring
from modelwatch.scale import validation as scale_validation
from modelwatch.settings import DataSettings, DriftSettings, ScaleSettings, ValidationSettings
from modelwatch.stores import validation, validation_parts

PARQUET_EXPECTED = "a Parquet file, or a folder of Parquet files with the same columns"


@task(cache_policy=NO_CACHE)
def open_parquet_batch(
    batch_path: str, settings: ScaleSettings
) -> tuple[parquet.ParquetBatch | None, validation.ValidationResult | None]:
    """Returns the batch (footers read) or, when it cannot be read, a failed result saying
    which file and why."""
    try:
        batch = parquet.open_parquet(batch_path, settings.storage_options, settings.partition_rows)
    except SchemaError as exc:
        name = batch_path.rstrip("/").rsplit("/", 1)[-1]
        result = validation.ValidationResult.from_error(name, str(exc))
        failure = dataclasses.replace(result.failures[0], expected=PARQUET_EXPECTED)
        return None, dataclasses.replace(result, failures=(failure,))
    get_run_logger().info(
        "%s: %d rows in %d files, %d pieces",
        batch.path,
        batch.n_rows,
        len(batch.files),
        len(batch.pieces),
    )
    return batch, None


@task(cache_policy=NO_CACHE)
def split_suite(reference: pd.DataFrame, data: DataSettings, settings: ValidationSettings):
    """The project's suite built from the reference: the piece part and the whole-id part."""
    return validation_parts.split_suite(reference, data, settings)


@task(cache_policy=NO_CACHE)
def check_piece(batch: parquet.ParquetBatch, piece: parquet.Piece, suite: Any):
    """The suite on one piece (on a Dask worker)."""
    return scale_validation.check_piece(batch, piece, suite)


@task(cache_policy=NO_CACHE)
def check_whole(batch: parquet.ParquetBatch, suite: Any, id_column: str):
    """Uniqueness of the ids over the whole batch (on a Dask worker)."""
    return scale_validation.check_whole(batch, suite, id_column)


@task(cache_policy=NO_CACHE)
def combine_validation(
    batch: parquet.ParquetBatch,
    suites: tuple[Any, Any],
    pieces: list[Any],
    whole: Any,
    data: DataSettings,
    settings: ValidationSettings,
    known_times: tuple[pd.Timestamp, pd.Timestamp] | None,
) -> validation.ValidationResult:
    """One verdict from the pieces' outcomes, with the timestamp window check."""
    result = validation_parts.combine(
        suites[0], pieces, suites[1], whole, batch.empty_frame(), data, batch.name
    )
    result = scale_validation.window_failure(batch, result, data, settings, known_times)
    get_run_logger().info("validation: %s", result.summary()[:2000])
    return result


@task(cache_policy=NO_CACHE)
def score_piece(
    batch: parquet.ParquetBatch,
    piece: parquet.Piece,
    index: int,
    model: Any,
    data: DataSettings,
    task_kind: str,
    out_dir: str,
) -> int:
    """Scores one piece into its predictions file (on a Dask worker)."""
    return scale_scoring.score_piece(batch, piece, index, model, data, task_kind, out_dir)


@task(cache_policy=NO_CACHE)
def open_predictions(out_dir: str) -> parquet.ParquetBatch:
    """The predictions folder written by score_piece, as a Parquet batch."""
    return parquet.open_parquet(out_dir)


@task(cache_policy=NO_CACHE)
def column_drift(
    reference: pd.DataFrame,
    batch: parquet.ParquetBatch,
    column: str,
    data: DataSettings,
    settings: DriftSettings,
) -> FeatureDrift:
    """Drift of one feature on its exact values (on a Dask worker)."""
    return scale_drift.column_drift(reference, batch, column, data, settings)


@task(cache_policy=NO_CACHE)
def prediction_drift(
    name: str,
    reference: pd.Series,
    predictions: parquet.ParquetBatch,
    settings: DriftSettings,
) -> FeatureDrift | None:
    """Drift of the predictions against the champion's predictions on the reference."""
    return scale_drift.series_drift(name, reference, predictions, settings)


@task(cache_policy=NO_CACHE)
def combine_drift(
    features: list[FeatureDrift],
    prediction: FeatureDrift | None,
    data: DataSettings,
    settings: DriftSettings,
    importance: dict[str, float] | None,
) -> report.DriftReport:
    """The drift report from the per-column results; a table in the UI."""
    result = report.combine_drift(features, data, settings, prediction, None, importance)
    get_run_logger().info("%s", result.summary())
    create_table_artifact(
        key="drift-by-feature", table=result.to_rows(), description=result.summary()[:500]
    )
    return result


@task(cache_policy=NO_CACHE)
def publish_rejection(result: validation.ValidationResult) -> None:
    """The validation report of a rejected batch as a markdown artifact."""
    create_markdown_artifact(
        markdown=result.to_markdown(), key="quarantine-report", description=result.summary()[:500]
    )


@task(cache_policy=NO_CACHE)
def predictions_dir(home: Path, batch_name: str) -> str:
    """Returns the empty folder the predictions of a large batch are written to (under the
    project home; a rerun's older files are removed, so they cannot mix with the new ones)."""
    folder = home / "scale" / "predictions" / batch_name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return str(folder)


@task(cache_policy=NO_CACHE)
def batch_id(batch_path: str) -> str:
    """Returns the batch's id: its file or folder name made safe as one path component."""
    name = batch_path.rstrip("/").rsplit("/", 1)[-1]
    return io.safe_stem(name, hashlib.md5(batch_path.encode()).hexdigest())


@task(cache_policy=NO_CACHE)
def logged_run(proj: Any, name: str, fingerprint: str) -> str | None:
    """Returns the id of the FINISHED monitoring run of this large batch (same id and
    fingerprint), else None. Only a finished run counts: a run left RUNNING by a killed flow is
    marked KILLED here and the batch is done again, so a rerun never skips unfinished work."""
    from modelwatch import names
    from modelwatch.stores import tracking

    query = (
        f"tags.`{names.BATCH_KIND}` = 'large' and tags.`{names.BATCH_ID}` = "
        f"{tracking.quoted(name)} and tags.`{names.BATCH_FINGERPRINT}` = '{fingerprint}'"
    )
    found = tracking.find_runs(proj.client, proj.experiments.monitoring, query)
    done = [r for r in found if r.info.status == "FINISHED"]
    for stale in (r for r in found if r.info.status == "RUNNING"):
        proj.client.set_terminated(stale.info.run_id, "KILLED")
        get_run_logger().warning(
            "large batch %s: run %s was left unfinished (a crash?); doing the batch again",
            name,
            stale.info.run_id,
        )
    return done[0].info.run_id if done else None


@task(cache_policy=NO_CACHE)
def log_large_batch(
    proj: Any,
    *,
    name: str,
    source: str,
    fingerprint: str,
    checked: validation.ValidationResult,
    drift_report: Any | None = None,
    predictions: str | None = None,
    champion_version: str | None = None,
    quarantine: Path | None = None,
) -> str:
    """Logs a large batch's MLflow run in the monitoring experiment: where it was read, its
    validation (and, accepted, its drift: shares, per-column statistics and the report);
    returns the run id. The run ends FINISHED last, which is what logged_run looks for."""
    from modelwatch import names
    from modelwatch.stores import tracking
    from tasks import runtime

    accepted = checked.success
    tags = {
        names.BATCH_ID: name,
        names.BATCH_KIND: "large",
        names.BATCH_SOURCE: source,
        names.BATCH_FINGERPRINT: fingerprint,
        names.VALIDATION_STATUS: names.ACCEPTED if accepted else names.REJECTED,
        names.CHAMPION_VERSION: champion_version or "",
        **({names.QUARANTINE: str(quarantine)} if quarantine else {}),
        **runtime.flow_run_tags(),
    }
    metrics: dict[str, float] = {
        names.ROWS: checked.n_rows,
        names.FAILED_EXPECTATIONS: checked.failed,
    }
    if drift_report is not None:
        tags[names.DATASET_DRIFT] = str(drift_report.dataset_drift).lower()
        tags[names.DATASET_DRIFT_RULE] = drift_report.dataset_rule or ""
        metrics |= {
            names.DRIFT_SHARE: drift_report.drift_share,
            names.DRIFT_WEIGHTED_SHARE: drift_report.weighted_drift_share,
            names.DRIFTED_FEATURES: drift_report.n_drifted,
        }
        metrics |= tracking.drift_metrics(drift_report)
    with tracking.run(proj.experiments.monitoring, name, tags) as run_id:
        tracking.log_metrics(metrics, step=0)
        tracking.log_json(checked.to_dict(), "validation.json")
        if not accepted:
            tracking.log_text(checked.to_markdown(), "validation.md")
        if drift_report is not None:
            tracking.log_json(drift_report.to_dict(), "drift_report.json")
        if predictions is not None:
            tracking.set_tags({"predictions": predictions})
    get_run_logger().info("MLflow run %s for large batch %s", run_id, name)
    return run_id
