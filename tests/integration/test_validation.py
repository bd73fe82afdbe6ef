"""The Great Expectations suite, run for real on the bike-sharing batches in tests/data."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelwatch.errors import ConfigError, SchemaError
from modelwatch.io import read_csv_file
from modelwatch.settings import ColumnRule, DataSettings, ValidationSettings, load_settings
from modelwatch.stores.validation import (
    ValidationResult,
    build_suite,
    expected_columns,
    quarantine_batch,
    validate_frame,
)

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data"
SOURCE = ROOT / "data" / "demo" / "bike_sharing" / "hour.csv"
SCHEMA = (
    "[instant, dteday, season, mnth, hr, holiday, weekday, workingday, weathersit, "
    "temp, atemp, hum, windspeed]"
)


@pytest.fixture(scope="module")
def settings():
    return load_settings(ROOT / "params.yaml").settings


@pytest.fixture(scope="module")
def reference(settings):
    """The champion's training data: the first 600 rows, batch columns plus the target."""
    return pd.read_csv(SOURCE).head(600)[[*expected_columns(settings.data), settings.data.target]]


@pytest.fixture(scope="module")
def ok_batch():
    return read_csv_file(DATA / "bike_ok.csv")


def validate_file(name, reference, settings, validation=None):
    batch = read_csv_file(DATA / name)
    return validate_frame(batch, reference, settings.data, validation or settings.validation, name)


def assert_quarantined(tmp_path, name, result, *words):
    """The file is copied byte-identically next to both reports, and the original stays."""
    source = DATA / name
    before = source.read_bytes()
    folder = quarantine_batch(source, result, tmp_path / "quarantine")
    assert folder == tmp_path / "quarantine" / source.stem
    assert (folder / name).read_bytes() == before
    assert source.read_bytes() == before
    report = json.loads((folder / "report.json").read_text())
    assert report["summary"] == result.summary()
    assert report["success"] is False
    assert report["quarantined_file"] == name
    markdown = (folder / "report.md").read_text()
    assert markdown.startswith(f"# Validation report: {name}\n")
    for word in words:
        assert word in markdown
    return folder


def test_suite_has_one_expectation_per_check(reference, settings):
    suite = build_suite(reference, settings.data, settings.validation)
    kinds = pd.Series([e.expectation_type for e in suite.expectations]).value_counts().to_dict()
    assert kinds == {
        "expect_column_to_exist": 13,  # id, timestamp, 11 features
        "expect_column_values_to_not_be_null": 13,
        "expect_column_values_to_be_in_type_list": 12,  # the id and 11 features
        "expect_column_value_lengths_to_be_between": 1,  # text columns: the timestamp
        "expect_column_values_to_be_dateutil_parseable": 1,  # the timestamp
        "expect_column_values_to_be_between": 7,  # rules with min/max
        "expect_column_values_to_be_in_set": 4,  # rules with values
        "expect_table_columns_to_match_set": 1,
        "expect_table_row_count_to_be_between": 1,
        "expect_column_values_to_be_unique": 1,
    }
    hum = next(
        e
        for e in suite.expectations
        if e.expectation_type == "expect_column_values_to_be_between" and e.column == "hum"
    )
    assert (hum.min_value, hum.max_value) == (0, 1)


def test_good_batch_passes(reference, settings, ok_batch):
    unchanged = ok_batch.copy()
    result = validate_frame(ok_batch, reference, settings.data, settings.validation, "bike_ok.csv")
    assert result.success is True
    assert (result.n_rows, result.evaluated, result.failed, result.failures) == (60, 54, 0, ())
    assert result.summary() == "bike_ok.csv: passed 54 expectations"
    pd.testing.assert_frame_equal(ok_batch, unchanged)  # the input frame is not modified


@pytest.mark.parametrize(
    ("name", "column", "message"),
    [
        ("bike_missing_column.csv", "hum", "column 'hum' is missing"),
        (
            "bike_extra_column.csv",
            "foo",
            f"column 'foo' is not in the expected schema {SCHEMA}",
        ),
        (
            "bike_wrong_dtype.csv",
            "temp",
            "column 'temp' has dtype str, expected numeric (2 non-numeric values, e.g. 'warm')",
        ),
        (
            "bike_out_of_range.csv",
            "hum",
            "column 'hum': 60 values outside [0, 1] (e.g. 81.0, 80.0, 75.0)",
        ),
        ("bike_missing_id.csv", "instant", "column 'instant': 2 missing values (e.g. rows 4, 9)"),
        ("bike_duplicate_ids.csv", "instant", "column 'instant': 5 duplicate ids (e.g. 5, 8)"),
    ],
)
def test_bad_batch_is_rejected_with_one_readable_failure(
    tmp_path, reference, settings, name, column, message
):
    result = validate_file(name, reference, settings)
    assert result.success is False
    assert [(f.column, f.message) for f in result.failures] == [(column, message)]
    assert result.summary() == f"{name}: rejected: {message}"
    assert_quarantined(tmp_path, name, result, f"| {column} | {message}")


def test_counts_in_messages_match_pandas(reference, settings):
    """Reference: the same counts computed with pandas on the file."""
    frame = read_csv_file(DATA / "bike_out_of_range.csv")
    result = validate_file("bike_out_of_range.csv", reference, settings)
    assert result.failures[0].unexpected_count == int((~frame["hum"].between(0, 1)).sum())

    frame = read_csv_file(DATA / "bike_duplicate_ids.csv")
    result = validate_file("bike_duplicate_ids.csv", reference, settings)
    assert result.failures[0].unexpected_count == int(frame["instant"].duplicated(keep=False).sum())


def test_missing_column_is_reported_once_although_several_expectations_fail(reference, settings):
    result = validate_file("bike_missing_column.csv", reference, settings)
    # hum: exist, not-null, dtype, range (GX errors on the last three) and the column set
    assert result.failed == 5
    assert len(result.failures) == 1


def test_wrong_dtype_folds_range_errors_without_rules(reference, settings):
    """Without a rule the range is inferred; GX raises on text vs numbers, folded into dtype."""
    inferred = ValidationSettings(min_rows=24, max_rows=100_000)
    result = validate_file("bike_wrong_dtype.csv", reference, settings, inferred)
    assert [f.expectation for f in result.failures] == ["expect_column_values_to_be_in_type_list"]
    assert result.failures[0].examples == ("warm",)
    assert result.failed == 2


@pytest.mark.parametrize("name", ["bike_empty.csv", "bike_header_only.csv", "bike_unparsable.csv"])
def test_unreadable_file_is_quarantined_with_its_reason(tmp_path, name):
    with pytest.raises(SchemaError) as info:
        read_csv_file(DATA / name)
    result = ValidationResult.from_error(name, str(info.value))
    reason = str(info.value).removeprefix(f"{DATA / name}: ")
    assert result.summary() == f"{name}: rejected: {reason}"
    assert (result.success, result.n_rows, result.evaluated) == (False, 0, 0)
    assert_quarantined(tmp_path, name, result, reason)


def test_several_problems_are_all_named_schema_first(reference, settings, ok_batch):
    batch = ok_batch.drop(columns=["atemp"]).assign(foo=1.0, hum=ok_batch["hum"] * 100)
    batch.loc[[2, 3, 4], "season"] = 7
    result = validate_frame(batch, reference, settings.data, settings.validation, "b.csv")
    assert [f.column for f in result.failures] == ["atemp", "foo", "season", "hum"]
    assert result.summary() == (
        "b.csv: rejected: column 'atemp' is missing; "
        f"column 'foo' is not in the expected schema {SCHEMA}; "
        "column 'season': 3 values not in {1, 2, 3, 4} (e.g. 7); "
        "column 'hum': 60 values outside [0, 1] (e.g. 81.0, 80.0, 75.0)"
    )


def test_too_few_rows(reference, settings, ok_batch):
    result = validate_frame(
        ok_batch.head(10), reference, settings.data, settings.validation, "tiny.csv"
    )
    assert result.summary() == "tiny.csv: rejected: 10 rows, expected 24 to 100000 rows"
    assert result.failures[0].column is None


def test_inferred_range_and_categories_come_from_the_reference(reference, settings, ok_batch):
    """No rules: temp must lie in the reference range widened by range_margin * span."""
    inferred = ValidationSettings(min_rows=24, max_rows=100_000, range_margin=0.1)
    low, high = float(reference["temp"].min()), float(reference["temp"].max())
    top = high + 0.1 * (high - low)
    seen = sorted(reference["weathersit"].unique().tolist())
    unseen = next(v for v in range(1, 10) if v not in seen)
    result = validate_frame(ok_batch, reference, settings.data, inferred, "ok.csv")
    assert result.success is True

    batch = ok_batch.copy()
    batch.loc[[0, 1], "temp"] = [top + 0.01, top - 0.001]
    batch.loc[5, "weathersit"] = unseen
    result = validate_frame(batch, reference, settings.data, inferred, "b.csv")
    assert [f.message for f in result.failures] == [
        f"column 'weathersit': 1 value not in {{{', '.join(map(str, seen))}}} (e.g. {unseen})",
        f"column 'temp': 1 value outside [{low - 0.1 * (high - low):g}, {top:g}] "
        f"(e.g. {top + 0.01!r})",
    ]


def test_missing_share_within_and_beyond_the_allowed_share(reference, settings, ok_batch):
    rules = {**settings.validation.rules, "hum": ColumnRule(min=0, max=1, max_missing_share=0.05)}
    lenient = settings.validation.model_copy(update={"rules": rules})
    few = ok_batch.copy()
    few.loc[[7, 8], "hum"] = np.nan  # 3.3 %
    assert validate_frame(few, reference, settings.data, lenient, "few.csv").success is True
    many = ok_batch.copy()
    many.loc[range(6), "hum"] = np.nan  # 10 %
    result = validate_frame(many, reference, settings.data, lenient, "many.csv")
    assert result.summary() == (
        "many.csv: rejected: column 'hum': 6 missing values (10%, at most 5% missing)"
    )
    strict = validate_frame(few, reference, settings.data, settings.validation, "few.csv")
    assert strict.summary() == "few.csv: rejected: column 'hum': 2 missing values (e.g. rows 7, 8)"


def test_one_sided_rule(reference, settings):
    rules = {**settings.validation.rules, "hum": ColumnRule(max=1)}
    one_sided = settings.validation.model_copy(update={"rules": rules})
    result = validate_file("bike_out_of_range.csv", reference, settings, one_sided)
    assert [(f.message, f.expected) for f in result.failures] == [
        ("column 'hum': 60 values above 1 (e.g. 81.0, 80.0, 75.0)", "values <= 1")
    ]


def test_nullable_dtypes_count_as_numeric(reference, settings, ok_batch):
    batch = ok_batch.astype({"mnth": "Int64", "temp": "Float64"})
    assert validate_frame(batch, reference, settings.data, settings.validation, "n.csv").success
    batch.loc[3, "mnth"] = pd.NA
    result = validate_frame(batch, reference, settings.data, settings.validation, "n.csv")
    assert result.summary() == "n.csv: rejected: column 'mnth': 1 missing value (row 3)"


def test_string_features_are_checked_as_str_and_categories():
    data = DataSettings(id="id", target="y", features=["color", "x"], categorical=["color"])
    rules = ValidationSettings(min_rows=1, max_rows=100)
    reference = pd.DataFrame(
        {"id": [1, 2, 3], "color": ["red", "blue", "red"], "x": [0.0, 1.0, 2.0], "y": [1, 0, 1]}
    )
    assert str(reference["color"].dtype) == "str"
    good = pd.DataFrame({"id": [7, 8], "color": ["blue", "red"], "x": [0.5, 1.5]})
    assert validate_frame(good, reference, data, rules, "good.csv").success is True

    unseen = good.assign(color=["blue", "purple"])
    result = validate_frame(unseen, reference, data, rules, "unseen.csv")
    assert result.summary() == (
        "unseen.csv: rejected: column 'color': 1 value not in {'blue', 'red'} (e.g. 'purple')"
    )

    numbers = good.assign(color=[1, 2])  # the in-set failure folds into the dtype
    result = validate_frame(numbers, reference, data, rules, "numbers.csv")
    assert result.summary() == "numbers.csv: rejected: column 'color' has dtype int64, expected str"


def test_rule_for_an_unknown_column_is_a_config_error(reference, settings):
    bad = settings.validation.model_copy(update={"rules": {"humidity": ColumnRule(min=0)}})
    with pytest.raises(
        ConfigError,
        match=r"validation\.rules\.humidity: 'humidity' is not a "
        r"batch column \(accepted: instant, dteday, season",
    ):
        build_suite(reference, settings.data, bad)


def test_rule_with_min_above_max_is_a_config_error(reference, settings):
    bad = settings.validation.model_copy(update={"rules": {"hum": ColumnRule(min=1, max=0)}})
    with pytest.raises(ConfigError, match=r"validation\.rules\.hum: min 1\.0 is greater than max"):
        build_suite(reference, settings.data, bad)


def test_reference_without_a_batch_column_is_a_schema_error(reference, settings):
    with pytest.raises(SchemaError, match=r"reference data: columns \['windspeed'\] are missing"):
        build_suite(reference.drop(columns=["windspeed"]), settings.data, settings.validation)


def test_result_serialises_to_json_and_markdown(reference, settings):
    result = validate_file("bike_out_of_range.csv", reference, settings)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["failures"] == [
        {
            "expectation": "expect_column_values_to_be_between",
            "column": "hum",
            "message": "column 'hum': 60 values outside [0, 1] (e.g. 81.0, 80.0, 75.0)",
            "unexpected_count": 60,
            "examples": [81.0, 80.0, 75.0],
            "expected": "values in [0, 1]",
        }
    ]
    assert (data["n_rows"], data["evaluated"], data["failed"]) == (60, 54, 1)
    markdown = result.to_markdown()
    assert (
        "| hum | column 'hum': 60 values outside [0, 1] (e.g. 81.0, 80.0, 75.0) "
        "| values in [0, 1] | 60 | 81.0, 80.0, 75.0 |"
    ) in markdown
    assert "- expectations evaluated: 54\n- expectations failed: 1\n" in markdown


def test_from_error_keeps_a_message_that_does_not_start_with_the_file():
    result = ValidationResult.from_error("b.csv", "permission denied")
    assert result.summary() == "b.csv: rejected: permission denied"


def test_requarantine_overwrites_the_report_and_keeps_every_file(tmp_path, reference, settings):
    source = tmp_path / "incoming" / "batch_2011-05-07.csv"
    source.parent.mkdir()
    source.write_bytes((DATA / "bike_out_of_range.csv").read_bytes())
    first = validate_frame(
        read_csv_file(source), reference, settings.data, settings.validation, source.name
    )
    folder = quarantine_batch(source, first, tmp_path / "q")
    second = ValidationResult.from_error(source.name, "second look")
    assert quarantine_batch(source, second, tmp_path / "q") == folder
    assert (folder / source.name).read_bytes() == source.read_bytes()
    assert json.loads((folder / "report.json").read_text())["summary"] == second.summary()

    source.write_bytes((DATA / "bike_missing_column.csv").read_bytes())  # same name, new bytes
    quarantine_batch(source, second, tmp_path / "q")
    assert (folder / source.name).read_bytes() == (DATA / "bike_out_of_range.csv").read_bytes()
    copies = sorted(p.name for p in folder.glob("batch_2011-05-07*.csv"))
    assert len(copies) == 2
    newest = next(folder / c for c in copies if c != source.name)
    assert newest.read_bytes() == source.read_bytes()
    assert json.loads((folder / "report.json").read_text())["quarantined_file"] == newest.name


def test_quarantine_of_a_vanished_file_still_writes_the_report(tmp_path):
    result = ValidationResult.from_error("gone.csv", f"{tmp_path / 'gone.csv'}: file not found")
    folder = quarantine_batch(tmp_path / "gone.csv", result, tmp_path / "q")
    assert sorted(p.name for p in folder.iterdir()) == ["report.json", "report.md"]
    assert json.loads((folder / "report.json").read_text())["summary"] == (
        "gone.csv: rejected: file not found"
    )


def test_importing_validation_does_not_import_great_expectations():
    code = "import sys, modelwatch.stores.validation; print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_timestamps_far_from_the_newest_accepted_are_rejected_after_gx(reference, settings):
    """A year typed as 2102 and a clock reset to 1970 parse as dates (GX's dateutil check passes)
    but lie years outside the known span (the reference's oldest .. the newest accepted): one
    line names the column, the count, examples and the setting. A backfill inside passes."""
    ok = read_csv_file(DATA / "bike_ok.csv")
    end = (pd.Timestamp("2010-06-01"), pd.Timestamp("2011-01-07"))
    assert validate_frame(ok, reference, settings.data, settings.validation, "ok.csv", end).success

    bad = ok.copy()
    bad.loc[[0, 1], "dteday"] = ["2102-01-01", "1970-01-01"]
    result = validate_frame(bad, reference, settings.data, settings.validation, "b.csv", end)
    assert result.success is False
    (failure,) = result.failures
    assert failure.expectation == "timestamps_within_window"
    assert failure.unexpected_count == 2
    assert failure.examples == ("2102-01-01", "1970-01-01")
    assert (
        "column 'dteday': 2 timestamp(s) more than 366D outside the known span "
        "2010-06-01 .. 2011-01-07, e.g. '2102-01-01', '1970-01-01'"
    ) in failure.message
    assert "(validation.max_time_gap)" in failure.message
    assert (
        result.failed == 1
        and result.evaluated
        == len(build_suite(reference, settings.data, settings.validation).expectations) + 1
    )

    off = settings.validation.model_copy(update={"max_time_gap": None})
    assert validate_frame(bad, reference, settings.data, off, "b.csv", end).success is True
    backfill = ok.copy()
    backfill["dteday"] = "2010-07-15"  # older than the newest, inside the known span
    assert validate_frame(backfill, reference, settings.data, settings.validation, "old.csv",
                          end).success is True  # fmt: skip


def test_a_batch_with_unparsable_timestamps_gets_the_parse_failure_only(reference, settings):
    bad = read_csv_file(DATA / "bike_ok.csv")
    bad["dteday"] = bad["dteday"].astype(object)
    bad.loc[0, "dteday"] = "not-a-date"
    end = (pd.Timestamp("2011-01-01"), pd.Timestamp("2011-01-07"))
    result = validate_frame(bad, reference, settings.data, settings.validation, "b.csv", end)
    assert [f.expectation for f in result.failures] == [
        "expect_column_values_to_be_dateutil_parseable"
    ]


def test_max_time_gap_must_be_a_positive_duration():
    assert ValidationSettings(max_time_gap="12h").max_time_gap == "12h"
    for wrong in ("a year", "-3D", "0D"):
        with pytest.raises(ValueError, match="max_time_gap"):
            ValidationSettings(max_time_gap=wrong)
    with pytest.raises(ValueError):
        ValidationSettings(max_time_gap=365)  # strict: a number is not a duration
