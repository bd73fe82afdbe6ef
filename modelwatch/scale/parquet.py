"""A Parquet batch read lazily: its files, schema and row count from the footers, its pieces
(whole row groups, one Dask partition each) and single columns read on demand.

Only footers are read to open a batch; a piece or a column is read when a worker needs it, so
memory is bounded by one piece (validation, scoring) or one column (drift) per worker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dask.dataframe as dd
import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from modelwatch.errors import SchemaError

SUFFIXES = (".parquet", ".parq", ".pq")


@dataclass(frozen=True)
class Piece:
    """Row groups of one file, read together as one partition; `start` is the batch row number
    of its first row (so row numbers in messages are the batch's, as in the in-memory path)."""

    file: str
    row_groups: tuple[int, ...]
    start: int
    rows: int
    name: str = ""  # the file's path inside the batch folder (its name for a single file)

    def label(self) -> str:
        """Returns e.g. "part-3.parquet rows 500000-999999" (the file and the batch rows)."""
        name = self.name or self.file.rstrip("/").rsplit("/", 1)[-1]
        return f"{name} rows {self.start}-{self.start + self.rows - 1}"


@dataclass(frozen=True)
class ParquetBatch:
    """A Parquet batch: where it is, its data files (sorted), schema, row count and pieces."""

    path: str
    files: tuple[str, ...]
    schema: pa.Schema
    n_rows: int
    pieces: tuple[Piece, ...]
    storage_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def columns(self) -> list[str]:
        return [c for c in self.schema.names if not c.startswith("__index_level_")]

    def fingerprint(self) -> str:
        """Returns an md5 over the batch's files: each one's path inside the batch and its
        filesystem checksum (fsspec: size and modification time for local files, the store's
        own tag for object stores). Cheap at any size: no data is read. A file replaced by
        another changes it; the same bytes copied elsewhere do not keep it."""
        fs, _ = fsspec.core.url_to_fs(self.path, **dict(self.storage_options))
        inside = {piece.file: piece.name for piece in self.pieces}
        digest = hashlib.md5()
        for file in self.files:
            digest.update(f"{inside.get(file, file)}\0{fs.checksum(file)}\n".encode())
        return digest.hexdigest()

    def empty_frame(self) -> pd.DataFrame:
        """Returns a frame with no rows and the batch's columns and pandas dtypes."""
        return self.schema.empty_table().to_pandas()[self.columns]

    def read_piece(self, piece: Piece, columns: list[str] | None = None) -> pd.DataFrame:
        """Returns the rows of one piece (all columns, or `columns`), indexed by batch row.

        Raises:
            SchemaError: the file cannot be read (it names the file).
        """
        wanted = self.columns if columns is None else columns
        try:
            with _open(piece.file, self.storage_options) as handle:
                table = pq.ParquetFile(handle).read_row_groups(list(piece.row_groups), wanted)
        except (OSError, pa.ArrowException) as exc:
            raise SchemaError(f"{piece.file}: not a readable Parquet file: {_why(exc)}") from exc
        frame = table.to_pandas()
        frame.index = pd.RangeIndex(piece.start, piece.start + len(frame))
        return frame

    def head(self, rows: int = 8) -> pd.DataFrame:
        """Returns the first rows of the first file (e.g. to infer the dtypes of a result)."""
        with _open(self.files[0], self.storage_options) as handle:
            first = next(pq.ParquetFile(handle).iter_batches(batch_size=rows, columns=self.columns))
        return first.to_pandas()

    def to_dask(self, columns: list[str] | None = None) -> dd.DataFrame:
        """Returns the batch as a lazy dask DataFrame, one partition per piece."""
        wanted = self.columns if columns is None else columns
        meta = self.empty_frame()[wanted]
        return dd.from_map(self.read_piece, list(self.pieces), columns=wanted, meta=meta)

    def read_column(self, column: str) -> pd.Series:
        """Returns one whole column of the batch (every file, in order), named `column`.

        Raises:
            SchemaError: the column is not in the batch, or a file cannot be read.
        """
        if column not in self.columns:
            raise SchemaError(
                f"{self.path}: no column {column!r} (columns: {', '.join(self.columns)})"
            )
        parts = []
        for file in self.files:
            try:
                with _open(file, self.storage_options) as handle:
                    parts.append(pq.read_table(handle, columns=[column]))
            except (OSError, pa.ArrowException) as exc:
                raise SchemaError(f"{file}: not a readable Parquet file: {_why(exc)}") from exc
        return pa.concat_tables(parts).column(column).to_pandas().rename(column)


def open_parquet(
    path: str, storage_options: Mapping[str, Any] | None = None, partition_rows: int = 500_000
) -> ParquetBatch:
    """Returns the batch at `path`: one Parquet file, or a folder whose Parquet files (any depth,
    sorted by path; names starting with "_" or "." are skipped, as Dask and Spark write them)
    are the partitions. Reads only the footers.

    Raises:
        SchemaError: nothing at the path, no Parquet file in the folder, a file that is not
            Parquet, or files whose columns or types differ (naming the file and the column).
    """
    options = dict(storage_options or {})
    fs, root = fsspec.core.url_to_fs(str(path), **options)
    if not fs.exists(root):
        raise SchemaError(f"{path}: not found (expected a Parquet file or a folder of them)")
    files = _data_files(fs, root) if fs.isdir(root) else [root]
    if not files:
        raise SchemaError(f"{path}: no Parquet files in the folder (expected *{SUFFIXES[0]})")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    urls = [f if protocol in ("file", "local") else f"{protocol}://{f}" for f in files]
    schema, pieces, n_rows = None, [], 0
    for url, file in zip(urls, files, strict=True):
        name = file[len(root) :].strip("/") or file.rstrip("/").rsplit("/", 1)[-1]
        meta = _footer(url, options)
        file_schema = meta.schema.to_arrow_schema().remove_metadata()
        if schema is None:
            schema = file_schema
        elif not file_schema.equals(schema):
            raise SchemaError(f"{url}: {_schema_difference(schema, file_schema, urls[0])}")
        for groups, rows in _group_rows(meta, partition_rows):
            pieces.append(Piece(url, groups, n_rows, rows, name))
            n_rows += rows
    if n_rows == 0:
        raise SchemaError(f"{path}: no rows (the Parquet files hold a schema only)")
    return ParquetBatch(str(path), tuple(urls), schema, n_rows, tuple(pieces), options)


def _open(url: str, options: Mapping[str, Any]):
    return fsspec.open(url, "rb", **options).open()


def _footer(url: str, options: Mapping[str, Any]) -> pq.FileMetaData:
    try:
        with _open(url, options) as handle:
            return pq.ParquetFile(handle).metadata
    except (OSError, pa.ArrowException) as exc:
        raise SchemaError(f"{url}: not a readable Parquet file: {_why(exc)}") from exc


def _data_files(fs: Any, root: str) -> list[str]:
    found = []
    for f in sorted(fs.find(root)):
        parts = f[len(root) :].strip("/").split("/")
        if any(p.startswith(("_", ".")) for p in parts):
            continue
        found.append(f)
    return found


def _group_rows(meta: pq.FileMetaData, target: int) -> list[tuple[tuple[int, ...], int]]:
    """Returns consecutive row groups gathered into pieces of about `target` rows."""
    out, groups, rows = [], [], 0
    for i in range(meta.num_row_groups):
        groups.append(i)
        rows += meta.row_group(i).num_rows
        if rows >= target:
            out.append((tuple(groups), rows))
            groups, rows = [], 0
    if groups:
        out.append((tuple(groups), rows))
    return [(g, r) for g, r in out if r > 0]


def _schema_difference(first: pa.Schema, other: pa.Schema, first_file: str) -> str:
    """Returns what differs between a file's schema and the first file's, naming the column."""
    for name in first.names:
        if name not in other.names:
            return f"column {name!r} is missing (it is in {first_file})"
        if not first.field(name).type.equals(other.field(name).type):
            return (
                f"column {name!r} has type {other.field(name).type}, "
                f"but {first.field(name).type} in {first_file}"
            )
    extra = [n for n in other.names if n not in first.names]
    if extra:
        return f"columns {extra} are not in {first_file}"
    return f"the columns are in another order than in {first_file}"


def _why(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
