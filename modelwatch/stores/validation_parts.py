"""The project's Great Expectations suite on a batch too large for memory: run on each piece
(a partition of whole Parquet row groups) and combined into one ValidationResult with exact
counts, as validate_frame would give on the whole batch, plus where each problem was found.

Combining is exact because each expectation's verdict is a function of counts that add up over
pieces: element, unexpected and missing counts (value checks, nulls with `mostly`), the row
count, and the first unexpected values and rows (pieces in batch order). Uniqueness of the id
is not: it runs on the whole id column (one column of the batch in memory) instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from modelwatch.settings import DataSettings, ValidationSettings
from modelwatch.stores.validation import (
    MATCH_SET,
    NOT_NULL,
    RESULT_FORMAT,
    ROW_COUNT,
    TO_EXIST,
    TYPE_CHECKS,
    UNIQUE,
    ValidationFailure,
    ValidationResult,
    build_suite,
    describe_failures,
    expected_columns,
    run_gx,
)

if TYPE_CHECKING:
    import great_expectations as gx

# result fields that add up over pieces, and those kept from the pieces in order
SUMMED = ("element_count", "unexpected_count", "missing_count")
LISTED = ("partial_unexpected_list", "partial_unexpected_index_list")
PARTIAL = RESULT_FORMAT["partial_unexpected_count"]
SHOWN_PIECES = 3
# schema problems are the same in every file (open_parquet checks that): no location
SCHEMA = (TO_EXIST, MATCH_SET, ROW_COUNT, *TYPE_CHECKS)


@dataclass(frozen=True)
class PieceOutcome:
    """The suite's outcome on one piece as plain values: one dict per expectation with its
    success, result fields and exception info."""

    label: str
    rows: int
    results: tuple[dict[str, Any], ...]


def split_suite(
    reference: pd.DataFrame, data: DataSettings, settings: ValidationSettings
) -> tuple[gx.ExpectationSuite, gx.ExpectationSuite]:
    """Returns the project's suite (build_suite) split in two: what runs on each piece, and
    what needs the whole id column (uniqueness).

    Raises:
        ConfigError, SchemaError, InsufficientDataError: see build_suite.
    """
    import great_expectations as gx

    suite = build_suite(reference, data, settings)
    whole = [e for e in suite.expectations if e.expectation_type == UNIQUE]
    piece = [e for e in suite.expectations if e.expectation_type != UNIQUE]
    return (
        gx.ExpectationSuite(name="modelwatch-piece", expectations=piece),
        gx.ExpectationSuite(name="modelwatch-whole", expectations=whole),
    )


def run_suite(frame: pd.DataFrame, suite: gx.ExpectationSuite, label: str) -> PieceOutcome:
    """Returns the outcome of `suite` on one piece (a worker calls this; the values pickle)."""
    outcome = run_gx(frame, suite, "piece")
    results = tuple(
        {
            "key": expectation_key(r.expectation_config),
            "success": bool(r.success),
            "result": _plain(dict(r.result)),
            "exception_info": _plain(dict(r.exception_info or {})),
        }
        for r in outcome.results
    )
    by_key = {r["key"]: r for r in results}
    # GX does not return results in the suite's order: put them back in it
    ordered = tuple(by_key[expectation_key(e.configuration)] for e in suite.expectations)
    return PieceOutcome(label, len(frame), ordered)


def expectation_key(config: Any) -> str:
    """Returns an expectation's identity within the project's suite: its type and column (GX
    adds default arguments to the configurations it returns; build_suite puts at most one
    expectation of a type on a column)."""
    return f"{config.type}:{config.kwargs.get('column')}"


def combine(
    piece_suite: gx.ExpectationSuite,
    pieces: Sequence[PieceOutcome],
    whole_suite: gx.ExpectationSuite,
    whole: PieceOutcome,
    schema: pd.DataFrame,
    data: DataSettings,
    batch_name: str,
    window: ValidationFailure | None = None,
    windowed: bool = False,
) -> ValidationResult:
    """Returns the batch's ValidationResult from the pieces' outcomes (in batch order) and the
    whole-column outcome, with the window check's failure (time_window_failure) when it ran.
    `schema` is a frame with the batch's columns and dtypes (no rows needed)."""
    from great_expectations.core import ExpectationValidationResult

    results, where = [], {}
    for i, expectation in enumerate(piece_suite.expectations):
        config = expectation.configuration
        combined = _combine_one(config, [p.results[i] for p in pieces])
        results.append(ExpectationValidationResult(expectation_config=config, **combined))
        failed_in = [p.label for p in pieces if not p.results[i]["success"]]
        if not combined["success"] and failed_in and config.type not in SCHEMA:
            where[(config.type, config.kwargs.get("column"))] = _where(failed_in)
    for expectation, outcome in zip(whole_suite.expectations, whole.results, strict=True):
        config = expectation.configuration
        values = {k: outcome[k] for k in ("success", "result", "exception_info")}
        results.append(ExpectationValidationResult(expectation_config=config, **values))
    failures = describe_failures(results, schema, expected_columns(data))
    failures = tuple(_located(f, where) for f in failures)
    if window is not None:
        failures = (*failures, window)
    success = all(r.success for r in results)
    if not success and not failures:  # cannot happen unless GX adds a failure kind
        failures = (ValidationFailure("unknown", None, "great_expectations reported a failure"),)
    n_failed = sum(not r.success for r in results)
    return ValidationResult(
        batch_name=batch_name,
        success=success and window is None,
        n_rows=sum(p.rows for p in pieces),
        evaluated=len(results) + windowed,
        failed=n_failed + (window is not None),
        failures=failures,
    )


def _combine_one(config: Any, outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Returns success, result and exception_info of one expectation over all pieces."""
    kind, kwargs = config.type, config.kwargs
    raised = next((o for o in outcomes if o["exception_info"].get("raised_exception")), None)
    if raised is None:  # per-metric errors are nested one level down
        raised = next((o for o in outcomes if _nested_error(o["exception_info"])), None)
    first_failed = next((o for o in outcomes if not o["success"]), outcomes[0])
    result = dict(first_failed["result"])
    for key in SUMMED:
        if any(key in o["result"] for o in outcomes):
            result[key] = sum(int(o["result"].get(key) or 0) for o in outcomes)
    for key in LISTED:
        if any(key in o["result"] for o in outcomes):
            result[key] = [v for o in outcomes for v in o["result"].get(key) or []][:PARTIAL]
    success = all(o["success"] for o in outcomes)
    if kind == ROW_COUNT:
        rows = sum(int(o["result"].get("observed_value") or 0) for o in outcomes)
        result["observed_value"] = rows
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        success = (low is None or rows >= low) and (high is None or rows <= high)
    elif "unexpected_count" in result and raised is None:
        elements = result.get("element_count", 0)
        nonmissing = elements - (result.get("missing_count", 0) if kind != NOT_NULL else 0)
        share = result["unexpected_count"] / nonmissing if nonmissing else 0.0
        result["unexpected_percent"] = 100 * share
        success = 1 - share >= (kwargs.get("mostly") or 1.0) if nonmissing else True
    info = raised["exception_info"] if raised is not None else first_failed["exception_info"]
    return {"success": bool(success) and raised is None, "result": result, "exception_info": info}


def _nested_error(info: dict[str, Any]) -> bool:
    return any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())


def _where(labels: list[str]) -> str:
    shown = ", ".join(labels[:SHOWN_PIECES])
    more = f" and {len(labels) - SHOWN_PIECES} more pieces" if len(labels) > SHOWN_PIECES else ""
    return shown + more


def _located(
    failure: ValidationFailure, where: dict[tuple[str, str | None], str]
) -> ValidationFailure:
    found = where.get((failure.expectation, failure.column))
    if not found:
        return failure
    return replace(failure, message=f"{failure.message} [in {found}]", where=found)


def _plain(value: Any) -> Any:
    """Returns value with numpy scalars as Python ones and NaN kept (it pickles either way;
    this keeps results comparable with the in-memory ones)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") and not isinstance(value, str) else value
