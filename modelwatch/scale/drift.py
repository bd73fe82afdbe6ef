"""Drift of a Parquet batch, one column at a time on the Dask cluster, with the project's own
tests (modelwatch.drift) on every value of the column: the report equals compute_drift's on
the same data in memory.

A column is read whole from Parquet by the worker that tests it (10M float64 values are 80 MB),
so memory is bounded by one column pair per worker, whatever the number of columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from modelwatch.drift import report
from modelwatch.drift.stattests import FeatureDrift
from modelwatch.scale.parquet import ParquetBatch
from modelwatch.settings import DataSettings, DriftSettings

# a reference in memory (the project's) or as Parquet (a large one)
Source = pd.DataFrame | ParquetBatch


def column_frame(source: Source, column: str) -> pd.DataFrame:
    """Returns one column of a source as a frame with all of its rows (no columns when the
    source lacks it: feature_drift reports it as missing, and counts the rows)."""
    if isinstance(source, ParquetBatch):
        if column in source.columns:
            return source.read_column(column).to_frame()
        return pd.DataFrame(index=pd.RangeIndex(source.n_rows))
    return source[[column]] if column in source.columns else source[[]]


def column_drift(
    reference: Source, batch: Source, column: str, data: DataSettings, settings: DriftSettings
) -> FeatureDrift:
    """Returns the drift of one feature (report.feature_drift on that column's values)."""
    return report.feature_drift(
        column_frame(reference, column), column_frame(batch, column), column, data, settings
    )


def series_drift(
    name: str, reference: pd.Series | None, current: Source | None, settings: DriftSettings
) -> FeatureDrift | None:
    """Returns the drift of the prediction (or target) column of a Parquet source against a
    reference series (report.task_drift)."""
    values = None
    if current is not None:
        values = column_frame(current, name)
        values = values[name] if name in values.columns else None
    return report.task_drift(name, reference, values, settings)


def compute_drift(
    reference: Source,
    batch: ParquetBatch,
    data: DataSettings,
    settings: DriftSettings,
    client: Any,
    *,
    prediction_reference: pd.Series | None = None,
    predictions: ParquetBatch | None = None,
    importance: Mapping[str, float] | None = None,
) -> report.DriftReport:
    """Returns the DriftReport of the batch: each feature tested on a worker, the prediction
    too when `predictions` (the scored batch) is given; assembled as compute_drift does.

    Raises:
        ConfigError: drift.columns names an unknown column or a test that does not accept it.
    """
    report.check_column_overrides(settings, data)
    # one task per column, its reference values inside the task (not scattered): a worker
    # that is restarted (memory) loses nothing the scheduler cannot send again
    futures = [
        client.submit(
            column_drift, _one_column(reference, c), batch, c, data=data, settings=settings
        )
        for c in data.features
    ]
    prediction = client.submit(
        series_drift, data.prediction, prediction_reference, predictions, settings
    )
    return report.combine_drift(
        client.gather(futures), data, settings, prediction.result(), None, importance
    )


def _one_column(reference: Source, column: str) -> Source:
    """What a worker needs of the reference: the column alone (not the whole frame)."""
    return reference if isinstance(reference, ParquetBatch) else column_frame(reference, column)
