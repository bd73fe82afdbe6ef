"""Scoring of a Parquet batch: the model on each piece, on the Dask cluster, written as a
Parquet folder of predictions (one file per piece, in batch order)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from modelwatch.scale.parquet import ParquetBatch, Piece, open_parquet
from modelwatch.settings import DataSettings
from modelwatch.training.scoring import score_frame


def score_parquet(
    batch: ParquetBatch, model: Any, data: DataSettings, task: str, out_dir: str | Path, client: Any
) -> ParquetBatch:
    """Returns the predictions of every row of the batch (score_frame: id, prediction, scores),
    scored piece by piece on the cluster (dask.dataframe map_partitions) and written to
    out_dir as part-00000.parquet, ... in batch order.

    Raises:
        SchemaError: a piece cannot be read.
    """
    columns = [data.id, *data.features]
    meta = score_frame(model, batch.head()[columns], data, task).iloc[:0]
    scored = batch.to_dask(columns).map_partitions(_score, model, data, task, meta=meta)
    written = scored.to_parquet(
        str(out_dir), write_index=False, name_function=_file_name, compute=False
    )
    client.compute(written).result()
    return open_parquet(str(out_dir))


def score_piece(
    batch: ParquetBatch,
    piece: Piece,
    index: int,
    model: Any,
    data: DataSettings,
    task: str,
    out_dir: str | Path,
) -> int:
    """Scores one piece into out_dir/part-<index>.parquet (the file score_parquet would write
    for it); returns its row count. The monitor-large-batch flow maps this over the pieces."""
    scored = score_frame(model, batch.read_piece(piece, [data.id, *data.features]), data, task)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    scored.to_parquet(Path(out_dir) / _file_name(index), index=False)
    return len(scored)


def _score(frame: pd.DataFrame, model: Any, data: DataSettings, task: str) -> pd.DataFrame:
    return score_frame(model, frame, data, task)


def _file_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def read_predictions(scored: ParquetBatch, data: DataSettings) -> pd.Series:
    """Returns the prediction column of a scored batch."""
    return scored.read_column(data.prediction)
