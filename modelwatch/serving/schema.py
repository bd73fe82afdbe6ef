"""A scoring request read and checked against the model's MLflow signature (pure).

Accepted bodies are MLflow's own (`mlflow models serve`): `application/json` with
`{"dataframe_records": [{...}, ...]}` or `{"dataframe_split": {"columns": [...], "data": [[...]]}}`,
and `text/csv` with a header line. Every problem is a RequestError carrying its HTTP status and
naming the column and the row (0-based, as `row` in the prediction log).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import yaml

from modelwatch.errors import ModelIntegrityError, ModelwatchError

Format = Literal["json", "csv"]
INTEGER_TYPES = ("long", "integer")
FLOAT_TYPES = ("double", "float")
MAX_PROBLEMS = 10  # problems listed in one answer; the count says how many there were


@dataclass(frozen=True)
class Column:
    """One input column of a model signature: its name and MLflow type."""

    name: str
    type: str
    required: bool = True


@dataclass(frozen=True)
class Problem:
    """One bad value (or column) of a request: where, how many alike, and what is accepted."""

    column: str | None
    row: int | None
    message: str

    def to_dict(self) -> dict:
        return {"column": self.column, "row": self.row, "message": self.message}


class RequestError(ModelwatchError):
    """A request the service refuses: its HTTP status and the problems found."""

    def __init__(self, status: int, problems: list[Problem], rows: int = 0) -> None:
        self.status, self.problems, self.rows = status, problems, rows
        more = len(problems) - 1
        super().__init__(problems[0].message + (f" (and {more} more problem(s))" if more else ""))

    @property
    def column(self) -> str | None:
        return self.problems[0].column

    def to_dict(self) -> dict:
        """The JSON body of the refusal."""
        return {
            "error": str(self),
            "column": self.column,
            "row": self.problems[0].row,
            "problems": [p.to_dict() for p in self.problems[:MAX_PROBLEMS]],
        }


def refuse(status: int, message: str, column: str | None = None, row: int | None = None):
    return RequestError(status, [Problem(column, row, message)])


@dataclass(frozen=True)
class Request:
    """A request body read into columns: names in order, one list of values per column."""

    format: Format
    columns: list[str]
    values: dict[str, list[Any]]
    rows: int


@dataclass(frozen=True)
class Conformed:
    """A request checked against the signature: the model's input frame (signature order and
    types), the client's ids (None when it sent none), the columns it sent that the model
    does not use, and its values of the project's timestamp column as text (None when it sent
    none: the prediction log keeps them, so a batch built from the log has the rows' own time)."""

    frame: pd.DataFrame
    ids: list[str | None] | None
    ignored: list[str] = field(default_factory=list)
    timestamps: list[str | None] | None = None


def signature_columns(mlmodel: bytes, label: str) -> list[Column]:
    """Returns the input columns of a model's MLmodel file (its `signature.inputs`).

    Raises:
        ModelIntegrityError: the MLmodel has no column-based input signature.
    """
    try:
        inputs = json.loads(yaml.safe_load(mlmodel.decode())["signature"]["inputs"])
        columns = [
            Column(str(c["name"]), str(c["type"]), bool(c.get("required", True))) for c in inputs
        ]
    except (KeyError, TypeError, ValueError, AttributeError, yaml.YAMLError):
        raise ModelIntegrityError(
            f"{label}: its MLmodel has no column-based input signature; the service validates "
            "requests against it"
        ) from None
    if not columns:
        raise ModelIntegrityError(f"{label}: its MLmodel signature lists no input columns")
    return columns


def media_type(content_type: str | None) -> Format:
    """Returns the format of a Content-Type header.

    Raises:
        RequestError: 415, neither JSON nor CSV.
    """
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/json":
        return "json"
    if kind == "text/csv":
        return "csv"
    raise refuse(
        415,
        f"unsupported content type {content_type or '(none)'!r}: send application/json "
        "(dataframe_records or dataframe_split) or text/csv",
    )


def read_request(body: bytes, fmt: Format, max_rows: int) -> Request:
    """Returns the body read into columns.

    Raises:
        RequestError: 400 empty, malformed or no rows; 413 more rows than max_rows.
    """
    if not body.strip():
        raise refuse(400, "empty request body: send at least one row")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(400, f"the body is not UTF-8 text (byte {exc.start})") from None
    request = _read_json(text) if fmt == "json" else _read_csv(text)
    if request.rows == 0:
        raise refuse(400, "the request holds no rows to score")
    if request.rows > max_rows:
        raise RequestError(
            413,
            [
                Problem(
                    None,
                    None,
                    f"{request.rows} rows in one request; at most {max_rows} "
                    "(serving.max_rows): split the request",
                )
            ],
            rows=request.rows,
        )
    return request


def _read_json(text: str) -> Request:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise refuse(
            400, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(payload, dict) or not (
        {"dataframe_records", "dataframe_split"} & payload.keys()
    ):
        raise refuse(
            400,
            'expected a JSON object with "dataframe_records" (a list of row objects) or '
            '"dataframe_split" ({"columns": [...], "data": [[...], ...]})',
        )
    if "dataframe_records" in payload:
        return _records(payload["dataframe_records"])
    return _split(payload["dataframe_split"])


def _records(records: Any) -> Request:
    if not isinstance(records, list):
        raise refuse(400, '"dataframe_records" must be a list of objects (one per row)')
    columns: dict[str, None] = {}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise refuse(400, f'"dataframe_records": row {i} is not an object', row=i)
        columns.update(dict.fromkeys(record))
    values = {c: [r.get(c) for r in records] for c in columns}
    # a column absent from some records: those rows are missing it, reported as missing values
    return Request("json", list(columns), values, len(records))


def _split(split: Any) -> Request:
    if not isinstance(split, dict) or not isinstance(split.get("columns"), list):
        raise refuse(400, '"dataframe_split" must be an object with "columns" and "data" lists')
    columns, data = [str(c) for c in split["columns"]], split.get("data")
    if not isinstance(data, list):
        raise refuse(400, '"dataframe_split": "data" must be a list of rows')
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise refuse(
                400, f'"dataframe_split": row {i} has {got} values, {len(columns)} columns', row=i
            )
    return Request(
        "json", columns, {c: [r[j] for r in data] for j, c in enumerate(columns)}, len(data)
    )


def _read_csv(text: str) -> Request:
    try:
        lines = list(csv.reader(io.StringIO(text), strict=True))
    except csv.Error as exc:
        raise refuse(400, f"malformed CSV: {exc}") from None
    lines = [line for line in lines if line]  # blank lines
    header, data = [h.strip() for h in lines[0]], lines[1:]
    if not any(header):
        raise refuse(400, "malformed CSV: the first line must name the columns")
    for i, line in enumerate(data):
        if len(line) != len(header):
            raise refuse(
                400,
                f"malformed CSV: row {i} (line {i + 2}) has {len(line)} fields, the header "
                f"{len(header)}",
                row=i,
            )
    values = {
        c: [line[j] if line[j] != "" else None for line in data] for j, c in enumerate(header)
    }
    return Request("csv", header, values, len(data))


def conform(
    request: Request, columns: list[Column], id_column: str, timestamp_column: str | None = None
) -> Conformed:
    """Returns the model's input frame built from a request, in signature order and types, and
    the client's id and timestamp column values (as text) when it sent them.

    Raises:
        RequestError: 422, a required column is missing, or values are missing or of the wrong
            type (each column named with its first bad row and the count).
    """
    missing = [c.name for c in columns if c.name not in request.values and c.required]
    if missing:
        raise RequestError(
            422,
            [
                Problem(
                    m,
                    None,
                    f"missing column {m!r} (the model needs {', '.join(c.name for c in columns)})",
                )
                for m in missing
            ],
            rows=request.rows,
        )
    problems, frame = [], {}
    for col in columns:
        raw = request.values.get(col.name, [None] * request.rows)
        converted, bad = _convert(raw, col, request.format)
        if bad:
            problems.append(bad)
        frame[col.name] = converted
    if problems:
        raise RequestError(422, problems, rows=request.rows)
    known = {c.name for c in columns} | {id_column} | ({timestamp_column} - {None})
    ids = None
    if id_column in request.values:
        ids = [_id_key(v) for v in request.values[id_column]]
    stamps = None
    if timestamp_column is not None and timestamp_column in request.values:
        stamps = [_id_key(v) for v in request.values[timestamp_column]]
    return Conformed(
        pd.DataFrame({c.name: _series(frame[c.name], c) for c in columns}),
        ids,
        [c for c in request.columns if c not in known],
        stamps,
    )


def _id_key(value: Any) -> str | None:
    """An id as text, the way the ledger matches ids (7, 7.0 and "7" are one id)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip() or None


_EXPECTED = {
    "long": "an integer",
    "integer": "an integer",
    "double": "a number",
    "float": "a number",
    "string": "text",
    "boolean": "true or false",
}


def _convert(values: list[Any], col: Column, fmt: Format) -> tuple[list[Any], Problem | None]:
    """Returns the values in the column's type and the problem of the bad ones (None: all good)."""
    out, bad = [], []
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if col.required:
                bad.append((i, "missing"))
            out.append(None)
            continue
        try:
            out.append(_as_type(value, col.type, fmt))
        except (ValueError, TypeError, OverflowError):
            bad.append((i, value))
    if not bad:
        return out, None
    row, value = bad[0]
    expected = _EXPECTED.get(col.type, col.type)
    first = "a missing value" if value == "missing" else repr(value)
    message = (
        f"column {col.name!r}: {len(bad)} value(s) are not {expected} ({col.type}); "
        f"first at row {row}: {first}"
    )
    return out, Problem(col.name, row, message)


def _as_type(value: Any, kind: str, fmt: Format) -> Any:
    if kind in INTEGER_TYPES:
        if isinstance(value, bool):
            raise TypeError
        number = float(value) if isinstance(value, str) and fmt == "csv" else value
        if isinstance(number, float):
            if not number.is_integer():
                raise ValueError
            return int(number)
        if isinstance(number, int):
            return number
        raise TypeError
    if kind in FLOAT_TYPES:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, str) and fmt == "csv":
            number = float(value)
        elif isinstance(value, int | float):
            number = float(value)
        else:
            raise TypeError
        if not math.isfinite(number):
            raise ValueError
        return number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if fmt == "csv" and str(value).strip().lower() in ("true", "false", "1", "0"):
            return str(value).strip().lower() in ("true", "1")
        raise TypeError
    if kind == "string":
        if isinstance(value, str):
            return value
        if fmt == "json" and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise TypeError
    return value  # a type modelwatch's models do not use (datetime, binary): passed as sent


def _series(values: list[Any], col: Column) -> pd.Series:
    dtype = {
        "long": "int64",
        "integer": "int32",
        "double": "float64",
        "float": "float32",
        "boolean": "bool",
    }.get(col.type)
    if any(v is None for v in values):  # an optional column left out: missing values
        dtype = "float64" if dtype and dtype != "bool" else None
    return pd.Series(values, name=col.name, dtype=dtype)
