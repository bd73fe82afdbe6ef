"""Build a Great Expectations suite from the reference data, run it on a batch, explain failures.

great_expectations is imported inside the functions that use it (it takes seconds to import), so
ValidationResult can be used by code that never validates anything.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from modelwatch.errors import ConfigError, InsufficientDataError, SchemaError
from modelwatch.io import atomic_target, file_md5, safe_stem, write_text
from modelwatch.settings import ColumnRule, DataSettings, ValidationSettings

if TYPE_CHECKING:
    import great_expectations as gx
    from great_expectations.core import ExpectationValidationResult

logger = logging.getLogger(__name__)

# "Int64"/"Float64" do not match pandas' nullable dtypes in GX's type check; the class names do.
NUMERIC_DTYPES = [
    "int64",
    "float64",
    "Int64",
    "Float64",
    "int32",
    "float32",
    "Int64Dtype",
    "Float64Dtype",
]
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 5}
MAX_SET_SHOWN = 10

TO_EXIST = "expect_column_to_exist"
MATCH_SET = "expect_table_columns_to_match_set"
ROW_COUNT = "expect_table_row_count_to_be_between"
IN_TYPES = "expect_column_values_to_be_in_type_list"
OF_TYPE = "expect_column_values_to_be_of_type"
TYPE_CHECKS = (IN_TYPES, OF_TYPE)
NOT_NULL = "expect_column_values_to_not_be_null"
BETWEEN = "expect_column_values_to_be_between"
IN_SET = "expect_column_values_to_be_in_set"
UNIQUE = "expect_column_values_to_be_unique"
PARSEABLE = "expect_column_values_to_be_dateutil_parseable"
LENGTHS = "expect_column_value_lengths_to_be_between"
TIME_WINDOW = "timestamps_within_window"  # checked here on the parsed column, after GX
_RANK = {TO_EXIST: 0, MATCH_SET: 1, ROW_COUNT: 2}


@dataclass(frozen=True)
class ValidationFailure:
    """One problem found in a batch, said in words; `expected` is what would have been accepted."""

    expectation: str
    column: str | None
    message: str
    unexpected_count: int | None = None
    examples: tuple = ()
    expected: str = ""
    # a batch validated in pieces (modelwatch.scale): the pieces the problem was found in
    where: str = ""


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of validating one batch file.

    `evaluated` and `failed` count Great Expectations expectations; `failures` lists the problems
    once each (a missing column fails every expectation on it but is reported once).
    """

    batch_name: str
    success: bool
    n_rows: int
    evaluated: int
    failed: int
    failures: tuple[ValidationFailure, ...] = ()

    def summary(self) -> str:
        """Returns one line: the file, then passed or each problem."""
        if self.success:
            return f"{self.batch_name}: passed {self.evaluated} expectations"
        return f"{self.batch_name}: rejected: {self.problems()}"

    def problems(self) -> str:
        """Returns each problem, in one line ("" when it passed)."""
        return "; ".join(f.message for f in self.failures)

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-able dict of every field plus the summary line."""
        out = asdict(self)
        out["failures"] = [
            {**{k: v for k, v in f.items() if k != "where" or v}, "examples": list(f["examples"])}
            for f in out["failures"]
        ]  # "where" only for batches validated in pieces: the CSV path's reports stay as they were
        out["summary"] = self.summary()
        return out

    def to_markdown(self) -> str:
        """Returns a readable report: a table of the problems, then the counts."""
        verdict = "passed" if self.success else "rejected"
        lines = [f"# Validation report: {self.batch_name}", "", f"**Result: {verdict}**", ""]
        if self.failures:
            lines += [
                "| column | problem | expected | unexpected | examples |",
                "|---|---|---|---|---|",
            ]
            for f in self.failures:
                count = "" if f.unexpected_count is None else str(f.unexpected_count)
                cells = [f.column or "(table)", f.message, f.expected, count, _join(f.examples)]
                lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
            lines.append("")
        lines += [
            f"- rows: {self.n_rows}",
            f"- expectations evaluated: {self.evaluated}",
            f"- expectations failed: {self.failed}",
            f"- problems: {len(self.failures)}",
        ]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_error(cls, batch_name: str, message: str) -> ValidationResult:
        """Returns a rejected result for a file that could not even be read."""
        head, sep, rest = message.partition(": ")
        if sep and Path(head).name == batch_name:
            message = rest  # the summary already names the file
        failure = ValidationFailure(
            "read_file",
            None,
            " ".join(message.split()),
            expected="a CSV file with a header and at least one row",
        )
        return cls(batch_name, False, 0, 0, 1, (failure,))


def expected_columns(data: DataSettings) -> list[str]:
    """Returns the columns of a production batch: id, timestamp (if set), then the features."""
    return [data.id, *([data.timestamp] if data.timestamp else []), *data.features]


def build_suite(
    reference: pd.DataFrame, data: DataSettings, settings: ValidationSettings
) -> gx.ExpectationSuite:
    """Returns an in-memory suite: the batch schema, row count, ids, and per-column dtype, nulls,
    range and categories (from validation.rules, else inferred from the reference).

    Raises:
        ConfigError: a rule names a column that is not a batch column, or has min > max.
        SchemaError: the reference lacks one of the batch columns.
        InsufficientDataError: the reference has no rows.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    columns = expected_columns(data)
    _check_settings(settings, columns)
    absent = [c for c in columns if c not in reference.columns]
    if absent:
        raise SchemaError(f"reference data: columns {absent} are missing (expected {columns})")
    if len(reference) == 0:
        raise InsufficientDataError("reference data has no rows to build the validation suite from")

    expectations: list = [
        gxe.ExpectTableColumnsToMatchSet(column_set=columns, exact_match=True),
        gxe.ExpectTableRowCountToBeBetween(
            min_value=settings.min_rows, max_value=settings.max_rows
        ),
        *[gxe.ExpectColumnToExist(column=column) for column in columns],
        gxe.ExpectColumnValuesToBeUnique(column=data.id),
        gxe.ExpectColumnValuesToNotBeNull(column=data.id),
    ]
    for column in columns[1:]:
        share = settings.rules.get(column, ColumnRule()).max_missing_share
        share = settings.max_missing_share if share is None else share
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=column, mostly=1 - share))
    typed = [data.id, *data.features]  # the id too: "1,001" as text must not meet int ids
    expectations += [_type_expectation(column, reference[column]) for column in typed]
    texts = [c for c in columns if _is_text(reference[c])]
    expectations += [
        gxe.ExpectColumnValueLengthsToBeBetween(column=c, max_value=settings.max_cell_length)
        for c in texts
    ]
    if data.timestamp and data.timestamp in texts:
        expectations.append(gxe.ExpectColumnValuesToBeDateutilParseable(column=data.timestamp))
    for column in columns:
        expectations += _value_expectations(column, reference[column], data, settings)
    # Passed to the constructor: add_expectation() would need an active GX context.
    return gx.ExpectationSuite(name="modelwatch-batch", expectations=expectations)


def check_reference(
    reference: pd.DataFrame, data: DataSettings, settings: ValidationSettings, task: str
) -> list[str]:
    """Returns what in a reference would reject good batches or break training, one line each
    (empty: nothing found). Bootstrap logs these as warnings; `modelwatch check-params` prints
    them before anything is trained.

    Found: missing columns; ids missing or repeated; a numeric column constant in the
    reference (its inferred range has zero width: any other value rejects a batch); a column
    with more missing values than validation allows (its batches will be rejected the same
    way); a timestamp that does not parse; for classification, a positive_label that is not one
    of the reference's classes, or a single class.
    """
    columns = [*expected_columns(data), data.target]
    absent = [c for c in columns if c not in reference.columns]
    if absent:
        return [f"column {c!r} is missing from the reference" for c in absent]
    found = []
    ids = reference[data.id]
    if ids.isna().any() or ids.duplicated().any():
        found.append(
            f"column {data.id!r}: {int(ids.isna().sum())} missing and "
            f"{int(ids.duplicated().sum())} repeated ids (every batch needs unique ids)"
        )
    for column in expected_columns(data)[1:]:
        values = reference[column]
        rule = settings.rules.get(column, ColumnRule())
        limit = (
            settings.max_missing_share if rule.max_missing_share is None else rule.max_missing_share
        )
        share = float(values.isna().mean())
        if share > limit:
            found.append(
                f"column {column!r}: {share:.1%} missing in the reference, above the "
                f"{limit:.1%} validation allows: batches like it will be rejected "
                f"(validation.max_missing_share or validation.rules.{column}.max_missing_share)"
            )
        inferred = rule.min is None and rule.max is None and settings.infer_ranges
        if inferred and column in data.numeric and _is_number(values) and values.nunique() == 1:
            only = _plain(values.dropna().iloc[0])
            found.append(
                f"column {column!r} is constant in the reference ({only!r}):"
                " its inferred range has zero width, so any other value rejects a batch "
                f"(set validation.rules.{column}.min/max, or drop it from data.features)"
            )
    if data.timestamp and _is_text(reference[data.timestamp]):
        parsed = pd.to_datetime(reference[data.timestamp], errors="coerce", format="mixed")
        bad = reference[data.timestamp][parsed.isna() & reference[data.timestamp].notna()]
        if len(bad):
            shown = _eg(_examples(bad.tolist()))
            found.append(f"column {data.timestamp!r}: {len(bad)} value(s) are not dates{shown}")
    if task == "classification":
        classes = sorted(reference[data.target].dropna().unique().tolist(), key=str)
        if len(classes) < 2:
            found.append(f"column {data.target!r}: one class only ({classes}): nothing to learn")
        if data.positive_label is not None and data.positive_label not in classes:
            found.append(
                f"data.positive_label {data.positive_label!r} is not a class of "
                f"{data.target!r} in the reference (classes: {', '.join(map(repr, classes))})"
            )
    return found


def run_gx(frame: pd.DataFrame, suite: Any, asset: str) -> Any:
    """Validates `frame` with `suite` in an ephemeral Great Expectations context (no files, no
    progress bars); returns GX's validation result."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # TQDM_DISABLE does not work: GX passes disable= explicitly.
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    definition = (
        context.data_sources.add_pandas("modelwatch")
        .add_dataframe_asset(asset)
        .add_batch_definition_whole_dataframe("whole")
    )
    return definition.get_batch(batch_parameters={"dataframe": frame}).validate(
        suite, result_format=RESULT_FORMAT
    )


def validate_frame(
    batch: pd.DataFrame,
    reference: pd.DataFrame,
    data: DataSettings,
    settings: ValidationSettings,
    batch_name: str,
    known_times: tuple[pd.Timestamp, pd.Timestamp] | None = None,
) -> ValidationResult:
    """Returns the result of running the suite built from `reference` on `batch` with GX, and,
    when the timestamps parse, the window check against `known_times`, the oldest and newest
    timestamps known so far (time_window_failure).

    An ephemeral GX context is created per call: it costs ~0.03 s, well below the validation.

    Raises:
        ConfigError, SchemaError, InsufficientDataError: see build_suite.
    """
    suite = build_suite(reference, data, settings)
    outcome = run_gx(batch, suite, "batch")
    failures = describe_failures(outcome.results, batch, expected_columns(data))
    stats = outcome.statistics
    window = None
    windowed = bool(data.timestamp and known_times is not None and settings.max_time_gap)
    if windowed and not any(f.column == data.timestamp for f in failures):
        window = time_window_failure(batch, data.timestamp, known_times, settings.max_time_gap)
    if window is not None:
        failures = (*failures, window)
    if not outcome.success and not failures:  # cannot happen unless GX adds a failure kind
        failures = (ValidationFailure("unknown", None, "great_expectations reported a failure"),)
    result = ValidationResult(
        batch_name=batch_name,
        success=bool(outcome.success) and window is None,
        n_rows=len(batch),
        evaluated=int(stats["evaluated_expectations"]) + windowed,
        failed=int(stats["unsuccessful_expectations"]) + (window is not None),
        failures=failures,
    )
    logger.debug("%s", result.summary())
    return result


def parse_times(series: pd.Series) -> pd.Series:
    """The timestamp column as datetimes (NaT where a value does not parse)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return series
    return pd.to_datetime(series, errors="coerce", format="mixed")


def time_span(frame: pd.DataFrame, column: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The oldest and newest timestamps in a frame's column, or None when none parses."""
    times = parse_times(frame[column]).dropna() if column in frame.columns else pd.Series([])
    if times.empty:
        return None
    return pd.Timestamp(times.min()), pd.Timestamp(times.max())


def time_window_failure(
    batch: pd.DataFrame,
    column: str,
    known: tuple[pd.Timestamp, pd.Timestamp] | None,
    max_gap: str | None,
) -> ValidationFailure | None:
    """A failure when a batch's timestamps lie more than max_gap before the oldest known
    timestamp (the reference's) or after the newest accepted so far: a year typed as 2102, a
    clock reset to 1970. A backfill inside the known span passes. None when they fit, or with
    nothing to compare with."""
    if known is None or max_gap is None or column not in batch.columns:
        return None
    times = parse_times(batch[column]).dropna()
    if times.empty:
        return None
    gap = pd.Timedelta(max_gap)
    low, high = known[0] - gap, known[1] + gap
    outside = times[(times < low) | (times > high)]
    if outside.empty:
        return None
    shown = tuple(str(t.date() if t == t.normalize() else t) for t in outside.head(5))
    return ValidationFailure(
        TIME_WINDOW,
        column,
        f"column {column!r}: {len(outside)} timestamp(s) more than {max_gap} outside the "
        f"known span {_day(known[0])} .. {_day(known[1])}, e.g. {_join(shown)} "
        "(validation.max_time_gap)",
        unexpected_count=int(len(outside)),
        examples=shown,
        expected=f"between {_day(low)} and {_day(high)}",
    )


def _day(t: pd.Timestamp) -> str:
    return str(t.date() if t == t.normalize() else t)


def quarantine_batch(
    batch_path: Path, result: ValidationResult, quarantine_dir: Path, name: str | None = None
) -> Path:
    """Returns `quarantine_dir/<name>/` (default: the file's stem made safe, io.safe_stem)
    holding a byte-identical copy of the batch file and report.md / report.json. The original
    is left where it is.

    A second batch with the same name but other bytes is kept beside the first one
    (`<stem>.<md5 prefix><suffix>`); the reports describe the latest.
    """
    batch_path = Path(batch_path)
    if name is None:
        digest = file_md5(batch_path) if batch_path.is_file() else "0" * 8
        name = safe_stem(batch_path.name, digest)
    folder = Path(quarantine_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    kept = _keep_copy(batch_path, folder) if batch_path.is_file() else None
    report = {
        **result.to_dict(),
        "source": str(batch_path),
        "quarantined_file": kept.name if kept else None,
        "md5": file_md5(kept) if kept else None,
    }
    write_text(json.dumps(report, indent=2, default=str) + "\n", folder / "report.json")
    where = (
        f"- original: `{batch_path}`\n- quarantined copy: `{kept.name}` (md5 {report['md5']})"
        if kept
        else f"- original: `{batch_path}` (no file to copy)"
    )
    write_text(result.to_markdown() + where + "\n", folder / "report.md")
    logger.info("quarantined %s in %s: %s", batch_path.name, folder, result.summary())
    return folder


def describe_failures(
    results: list[ExpectationValidationResult], batch: pd.DataFrame, columns: list[str]
) -> tuple[ValidationFailure, ...]:
    """Returns one readable failure per problem, schema problems first, then by column order.

    Expectations on a missing column error inside GX, and range / set checks on a column of the
    wrong dtype error or fail on every value: both are folded into the one root failure.
    """
    failed = [r for r in results if not r.success]
    missing = {c for c in columns if c not in batch.columns}
    missing |= {_column(r) for r in failed if r.expectation_config.type == TO_EXIST}
    wrong_dtype = {
        _column(r)
        for r in failed
        if r.expectation_config.type in TYPE_CHECKS
        and _exception_message(r.exception_info or {}) is None
    } - missing
    out: list[ValidationFailure] = []
    for r in failed:
        kind, column = r.expectation_config.type, _column(r)
        if kind != TO_EXIST and column in missing:
            continue
        if kind not in (*TYPE_CHECKS, NOT_NULL) and column in wrong_dtype:
            continue
        out.extend(_describe(r, batch, columns))

    def order(f: ValidationFailure) -> tuple[int, int]:
        position = columns.index(f.column) if f.column in columns else len(columns)
        return _RANK.get(f.expectation, 3), position

    return tuple(sorted(out, key=order))


# --- suite building helpers ------------------------------------------------------------------


def _check_settings(settings: ValidationSettings, columns: list[str]) -> None:
    if settings.min_rows > settings.max_rows:
        raise ConfigError(
            f"validation.min_rows ({settings.min_rows}) is greater than "
            f"validation.max_rows ({settings.max_rows})"
        )
    for column, rule in settings.rules.items():
        if column not in columns:
            raise ConfigError(
                f"validation.rules.{column}: {column!r} is not a batch column "
                f"(accepted: {', '.join(columns)})"
            )
        if rule.min is not None and rule.max is not None and rule.min > rule.max:
            raise ConfigError(
                f"validation.rules.{column}: min {rule.min} is greater than max {rule.max}"
            )


def _is_text(series: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)


def _is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _type_expectation(column: str, reference: pd.Series) -> Any:
    import great_expectations.expectations as gxe

    own = str(reference.dtype)
    if own == "str":  # pandas 3 strings: only this check with "str" matches them in GX
        return gxe.ExpectColumnValuesToBeOfType(column=column, type_="str")
    if _is_number(reference):  # an int column with a missing value is read back as float
        accepted = NUMERIC_DTYPES + ([own] if own not in NUMERIC_DTYPES else [])
        return gxe.ExpectColumnValuesToBeInTypeList(column=column, type_list=accepted)
    return gxe.ExpectColumnValuesToBeInTypeList(column=column, type_list=[own])


def _value_expectations(
    column: str, reference: pd.Series, data: DataSettings, settings: ValidationSettings
) -> list:
    import great_expectations.expectations as gxe

    rule = settings.rules.get(column, ColumnRule())
    known = reference.dropna()
    out = []
    if rule.min is not None or rule.max is not None:
        out.append(
            gxe.ExpectColumnValuesToBeBetween(column=column, min_value=rule.min, max_value=rule.max)
        )
    elif settings.infer_ranges and column in data.numeric and _is_number(reference) and len(known):
        low, high = float(known.min()), float(known.max())
        margin = settings.range_margin * (high - low)
        out.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=column, min_value=low - margin, max_value=high + margin
            )
        )
    if rule.values is not None:
        out.append(gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(rule.values)))
    elif settings.infer_categories and column in data.categorical and len(known):
        out.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=column, value_set=_sorted(known.unique().tolist())
            )
        )
    return out


def _sorted(values: list) -> list:
    try:
        return sorted(values)
    except TypeError:  # mixed types
        return sorted(values, key=str)


# --- failure description helpers -------------------------------------------------------------


def _column(r: ExpectationValidationResult) -> str | None:
    return r.expectation_config.kwargs.get("column")


def _exception_message(info: dict) -> str | None:
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():  # per-metric errors: {metric id: {raised_exception, ...}}
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def _describe(
    r: ExpectationValidationResult, batch: pd.DataFrame, columns: list[str]
) -> list[ValidationFailure]:
    kind, kw, res = r.expectation_config.type, r.expectation_config.kwargs, dict(r.result)
    column, count = kw.get("column"), res.get("unexpected_count")
    examples = _examples(res.get("partial_unexpected_list") or [])
    where = f"column {column!r}: "

    def fail(message: str, expected: str = "") -> list[ValidationFailure]:
        return [ValidationFailure(kind, column, message, count, examples, expected)]

    error = _exception_message(r.exception_info or {})
    if error is not None:
        prefix = where if column else ""
        return fail(f"{prefix}{kind} could not be evaluated: {' '.join(error.split())}")
    if kind == TO_EXIST:
        return fail(f"column {column!r} is missing", f"column {column!r}")
    if kind == MATCH_SET:
        extra = res.get("details", {}).get("mismatched", {}).get("unexpected", [])
        schema = f"[{', '.join(columns)}]"
        message = "column {!r} is not in the expected schema " + schema
        return [ValidationFailure(kind, c, message.format(c), expected=schema) for c in extra]
    if kind == ROW_COUNT:
        bounds = f"{kw.get('min_value')} to {kw.get('max_value')} rows"
        return fail(f"{_n(res.get('observed_value'), 'row')}, expected {bounds}", bounds)
    if kind in TYPE_CHECKS:
        accepted = kw.get("type_list") or [kw.get("type_")]
        return [_dtype_failure(kind, column, accepted, batch)]
    if kind == BETWEEN:
        problem, accepted = _interval(kw.get("min_value"), kw.get("max_value"))
        return fail(f"{where}{_n(count, 'value')} {problem}{_eg(examples)}", accepted)
    if kind == IN_SET:
        shown = _shown_set(kw.get("value_set") or [])
        return fail(f"{where}{_n(count, 'value')} not in {shown}{_eg(examples)}", f"one of {shown}")
    if kind == UNIQUE:
        return fail(f"{where}{_n(count, 'duplicate id')}{_eg(examples)}", "unique ids")
    if kind == NOT_NULL:
        return [_null_failure(column, kw.get("mostly", 1.0), res)]
    if kind == PARSEABLE:
        return fail(f"{where}{_n(count, 'value')} not a date or time{_eg(examples)}", "dates")
    if kind == LENGTHS:
        limit = kw.get("max_value")
        shown = tuple(_cut(str(e), 40) for e in examples)
        return fail(
            f"{where}{_n(count, 'value')} longer than {limit} characters{_eg(shown)} "
            "(validation.max_cell_length)",
            f"at most {limit} characters",
        )
    return fail(f"{where}{kind} failed" + (f" for {_n(count, 'value')}" if count else ""))


def _dtype_failure(
    kind: str, column: str, accepted: list[str], batch: pd.DataFrame
) -> ValidationFailure:
    numeric = set(NUMERIC_DTYPES) <= set(accepted)
    wanted = "numeric" if numeric else " or ".join(accepted)
    # The frame's dtype, not GX's observed_value: GX reports Int64 as "int64".
    text = f"column {column!r} has dtype {batch[column].dtype}, expected {wanted}"
    count, examples = None, ()
    if numeric:
        values = batch[column].dropna()
        bad = values[pd.to_numeric(values, errors="coerce").isna()]
        if len(bad):
            count, examples = len(bad), _examples(bad.head(20).tolist())
            text += f" ({_n(count, 'non-numeric value')}, e.g. {_join(examples)})"
    return ValidationFailure(kind, column, text, count, examples, expected=f"{wanted} dtype")


def _null_failure(column: str, mostly: float, res: dict) -> ValidationFailure:
    count = res.get("unexpected_count")
    text = f"column {column!r}: {_n(count, 'missing value')}"
    if mostly >= 1:
        rows = ", ".join(map(str, res.get("partial_unexpected_index_list") or []))
        where = f" ({'row' if count == 1 else 'e.g. rows'} {rows})" if rows else ""
        return ValidationFailure(
            NOT_NULL, column, text + where, count, expected="no missing values"
        )
    allowed = f"at most {_num(100 * (1 - mostly))}% missing"
    share = f"{_num(round(res.get('unexpected_percent') or 0.0, 1))}%"
    return ValidationFailure(
        NOT_NULL, column, f"{text} ({share}, {allowed})", count, expected=allowed
    )


def _interval(low: float | None, high: float | None) -> tuple[str, str]:
    """Returns what is wrong and what is accepted, e.g. ("outside [0, 1]", "values in [0, 1]")."""
    if low is None:
        return f"above {_num(high)}", f"values <= {_num(high)}"
    if high is None:
        return f"below {_num(low)}", f"values >= {_num(low)}"
    return f"outside [{_num(low)}, {_num(high)}]", f"values in [{_num(low)}, {_num(high)}]"


def _n(count: Any, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def _examples(values: list) -> tuple:
    return tuple(dict.fromkeys(_plain(v) for v in values))[:5]  # distinct, in order


def _join(examples: tuple) -> str:
    return ", ".join(repr(v) for v in examples)


def _eg(examples: tuple) -> str:
    return f" (e.g. {_join(examples)})" if examples else ""


def _shown_set(values: list) -> str:
    shown = ", ".join(repr(v) for v in values[:MAX_SET_SHOWN])
    more = f", ... ({len(values)} values)" if len(values) > MAX_SET_SHOWN else ""
    return "{" + shown + more + "}"


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _keep_copy(source: Path, folder: Path) -> Path:
    """Returns the quarantined copy of `source` in `folder`, copying it there if needed."""
    own = source.name if not source.name.startswith(".") else f"{folder.name}{source.suffix}"
    target = folder / own
    digest = file_md5(source)
    if target.exists() and file_md5(target) != digest:
        target = folder / f"{source.stem}.{digest[:8]}{source.suffix}"
    if not target.exists():
        with atomic_target(target) as tmp:
            shutil.copyfile(source, tmp)
    return target
