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
