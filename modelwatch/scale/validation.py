"""Validation of a Parquet batch: the project's Great Expectations suite on each piece, on the
Dask cluster, combined into one exact verdict (modelwatch.stores.validation_parts)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from modelwatch.scale.parquet import ParquetBatch, Piece
from modelwatch.settings import DataSettings, ValidationSettings
from modelwatch.stores import validation, validation_parts


def check_piece(batch: ParquetBatch, piece: Piece, suite: Any):
    """Returns the piece suite's outcome on one piece (runs on a worker)."""
    return validation_parts.run_suite(batch.read_piece(piece), suite, piece.label())


def check_whole(batch: ParquetBatch, suite: Any, id_column: str):
    """Returns the whole-column suite's outcome (uniqueness) on the id column alone."""
    if id_column in batch.columns:
        frame = batch.read_column(id_column).to_frame()
    else:  # GX reports the missing column; describe_failures folds it into "missing"
        frame = batch.empty_frame()
    return validation_parts.run_suite(frame, suite, batch.name)


def window_failure(
    batch: ParquetBatch,
    result: validation.ValidationResult,
    data: DataSettings,
    settings: ValidationSettings,
    known_times: tuple[pd.Timestamp, pd.Timestamp] | None,
) -> validation.ValidationResult:
    """Returns the result with the timestamp window check added, as validate_frame adds it
    (it reads the timestamp column alone)."""
    windowed = bool(data.timestamp and known_times is not None and settings.max_time_gap)
    if not windowed:
        return result
    result = dataclasses.replace(result, evaluated=result.evaluated + 1)
    if data.timestamp not in batch.columns or any(
        f.column == data.timestamp for f in result.failures
    ):
        return result
    times = batch.read_column(data.timestamp).to_frame()
    found = validation.time_window_failure(
        times, data.timestamp, known_times, settings.max_time_gap
    )
    if found is None:
        return result
    return dataclasses.replace(
        result, success=False, failed=result.failed + 1, failures=(*result.failures, found)
    )


def validate_parquet(
    batch: ParquetBatch,
    reference: pd.DataFrame,
    data: DataSettings,
    settings: ValidationSettings,
    client: Any,
    known_times: tuple[pd.Timestamp, pd.Timestamp] | None = None,
) -> validation.ValidationResult:
    """Returns the batch's ValidationResult: the failures, counts and verdict validate_frame
    gives on the whole batch in memory, each failure located in its pieces (files, rows).

    Raises:
        ConfigError, SchemaError, InsufficientDataError: see stores.validation.build_suite.
    """
    piece_suite, whole_suite = validation_parts.split_suite(reference, data, settings)
    outcomes = client.map(check_piece, [batch] * len(batch.pieces), batch.pieces, suite=piece_suite)
    whole = client.submit(check_whole, batch, whole_suite, data.id)
    result = validation_parts.combine(
        piece_suite,
        client.gather(outcomes),
        whole_suite,
        whole.result(),
        batch.empty_frame(),
        data,
        batch.name,
    )
    return window_failure(batch, result, data, settings, known_times)
