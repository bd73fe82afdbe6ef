"""Scoring requests checked against a model signature (modelwatch.serving.schema), without a
server: each bad input gets its status and a message naming the column and the row."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pandas as pd
import pyarrow.parquet as pq
import pytest

from modelwatch.errors import ConfigError, ModelIntegrityError
from modelwatch.serving import predlog, schema
from modelwatch.settings import load_settings
from tests.conftest import write_params

COLUMNS = [
    schema.Column("hr", "long"),
    schema.Column("temp", "double"),
    schema.Column("city", "string"),
]
MLMODEL = b"""flavors: {}
signature:
  inputs: '[{"type": "long", "name": "hr", "required": true}, {"type": "double", "name": "temp",
    "required": true}, {"type": "string", "name": "city", "required": true}]'
  outputs: '[{"type": "double", "required": true}]'
"""


def read(body, fmt="json", max_rows=100):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return schema.conform(schema.read_request(raw, fmt, max_rows), COLUMNS, "id")


def refused(body, fmt="json", max_rows=100) -> schema.RequestError:
    with pytest.raises(schema.RequestError) as info:
        read(body, fmt, max_rows)
    return info.value


def test_signature_is_read_from_the_mlmodel_and_a_model_without_one_is_refused():
    assert schema.signature_columns(MLMODEL, "m") == COLUMNS
    with pytest.raises(ModelIntegrityError, match="m: its MLmodel has no column-based input"):
        schema.signature_columns(b"flavors: {}\n", "m")


def test_records_split_and_csv_give_the_same_frame_in_signature_order_and_types():
    records = {
        "dataframe_records": [
            {"city": "a", "temp": 1, "hr": 3, "id": 7.0, "x": 1},
            {"city": "b", "temp": 2.5, "hr": 4.0, "id": "k", "x": 2},
        ]
    }
    split = {
        "dataframe_split": {
            "columns": ["hr", "temp", "city", "id", "x"],
            "data": [[3, 1, "a", 7, 1], [4, 2.5, "b", "k", 2]],
        }
    }
    csv = b"hr,temp,city,id,x\n3,1,a,7,1\n4.0,2.5,b,k,2\n"
    want = pd.DataFrame({"hr": [3, 4], "temp": [1.0, 2.5], "city": ["a", "b"]})
    for body, fmt in ((records, "json"), (split, "json"), (csv, "csv")):
        got = read(body, fmt)
        pd.testing.assert_frame_equal(got.frame, want, check_dtype=False)
        assert [str(t) for t in got.frame.dtypes[:2]] == ["int64", "float64"]
        assert got.ids == ["7", "k"]  # 7, 7.0 and "7" are one id, as in the ledger
        assert got.ignored == ["x"]


def test_the_timestamp_column_is_kept_as_sent_and_not_reported_as_ignored():
    """The log keeps the rows' own time (data.timestamp): a batch built from the log has it,
    not the time of the request (found by tests/e2e/test_serving_loop.py)."""
    body = {"dataframe_records": [{"city": "a", "temp": 1, "hr": 3, "day": "2011-01-29"},
                                  {"city": "b", "temp": 2, "hr": 4, "day": None}]}  # fmt: skip
    raw = schema.read_request(json.dumps(body).encode(), "json", 10)
    got = schema.conform(raw, COLUMNS, "id", "day")
    assert got.timestamps == ["2011-01-29", None] and got.ignored == []
    assert schema.conform(raw, COLUMNS, "id").ignored == ["day"]  # no timestamp column set
    csv = schema.read_request(b"hr,temp,city\n3,1,a\n", "csv", 10)
    assert schema.conform(csv, COLUMNS, "id", "day").timestamps is None


@pytest.mark.parametrize(
    ("body", "fmt", "status", "column", "message"),
    [
        (b"", "json", 400, None, "empty request body"),
        (b"{not json", "json", 400, None, "malformed JSON at line 1 column 2"),
        ([1, 2], "json", 400, None, 'expected a JSON object with "dataframe_records"'),
        ({"dataframe_records": [1]}, "json", 400, None, "row 0 is not an object"),
        ({"dataframe_records": []}, "json", 400, None, "holds no rows"),
        (
            {"dataframe_split": {"columns": ["hr"], "data": [[1, 2]]}},
            "json",
            400,
            None,
            "row 0 has 2 values, 1 columns",
        ),
        (b'hr,temp,city\n1,2,"a\n', "csv", 400, None, "malformed CSV"),
        (b"hr,temp,city\n1,2\n", "csv", 400, None, "row 0 (line 2) has 2 fields, the header 3"),
        (b"hr,temp,city\n", "csv", 400, None, "holds no rows"),
        (b"\xff\xfe", "csv", 400, None, "not UTF-8"),
        (
            {"dataframe_records": [{"hr": 1, "temp": 2.0}]},
            "json",
            422,
            "city",
            "missing column 'city' (the model needs hr, temp, city)",
        ),
        (
            {
                "dataframe_records": [
                    {"hr": 1, "temp": 2, "city": "a"},
                    {"hr": "x", "temp": 2, "city": "a"},
                ]
            },
            "json",
            422,
            "hr",
            "column 'hr': 1 value(s) are not an integer (long); first at row 1: 'x'",
        ),
        (
            b"hr,temp,city\n1,2,a\n2,warm,b\n3,,c\n",
            "csv",
            422,
            "temp",
            "column 'temp': 2 value(s) are not a number (double); first at row 1: 'warm'",
        ),
        (
            {"dataframe_records": [{"hr": 1.5, "temp": 2, "city": "a"}]},
            "json",
            422,
            "hr",
            "first at row 0: 1.5",
        ),
        (
            {"dataframe_records": [{"hr": 1, "temp": None, "city": "a"}]},
            "json",
            422,
            "temp",
            "first at row 0: a missing value",
        ),
        (
            {"dataframe_records": [{"hr": True, "temp": 1, "city": "a"}]},
            "json",
            422,
            "hr",
            "first at row 0: True",
        ),
    ],
)
def test_each_bad_request_gets_its_status_and_names_what_is_wrong(
    body, fmt, status, column, message
):
    err = refused(body, fmt)
    assert err.status == status
    assert err.column == column
    assert message in str(err), str(err)
    assert err.to_dict()["error"] == str(err)


def test_too_many_rows_is_413_and_problems_of_several_columns_are_all_listed():
    err = refused({"dataframe_records": [{"hr": 1, "temp": 1, "city": "a"}] * 5}, max_rows=4)
    assert (err.status, err.rows) == (413, 5)
    assert "5 rows in one request; at most 4 (serving.max_rows)" in str(err)
    err = refused(b"hr,temp,city\nx,y,a\n", "csv")
    assert [p["column"] for p in err.to_dict()["problems"]] == ["hr", "temp"]
    assert str(err).endswith("(and 1 more problem(s))")


@pytest.mark.parametrize(
    ("header", "want"),
    [
        ("application/json", "json"),
        ("application/json; charset=utf-8", "json"),
        ("text/csv", "csv"),
        ("TEXT/CSV; header=present", "csv"),
    ],
)
def test_content_types(header, want):
    assert schema.media_type(header) == want


@pytest.mark.parametrize("header", [None, "text/plain", "application/xml"])
def test_an_unsupported_content_type_is_415(header):
    with pytest.raises(schema.RequestError, match="unsupported content type") as info:
        schema.media_type(header)
    assert info.value.status == 415


def test_serving_settings_defaults_and_a_bad_value_named(tmp_path):
    s = load_settings(write_params("params.yaml", tmp_path)).settings.serving
    assert (s.window, s.flush_seconds, s.shadow_share, s.max_rows, s.port) == (
        "hourly",
        2.0,
        0.0,
        10000,
        8300,
    )
    bad = write_params("params.yaml", tmp_path / "bad", serving={"shadow_share": 1.5})
    with pytest.raises(ConfigError, match=r"serving\.shadow_share: .*less than or equal to 1"):
        load_settings(bad)
    bad = write_params("params.yaml", tmp_path / "bad2", serving={"window": "weekly"})
    with pytest.raises(ConfigError, match=r"serving\.window: .*'hourly' or 'daily'"):
        load_settings(bad)
    bad = write_params("params.yaml", tmp_path / "bad3", serving={"log_dir": "../elsewhere"})
    with pytest.raises(ConfigError, match=r"serving\.log_dir: '\.\./elsewhere' must name a folder"):
        load_settings(bad)


def test_the_log_writes_one_file_per_kind_and_window_atomically(tmp_path):
    """Hourly windows: 21:59 and 22:00 fall in two folders; nothing named .partial remains."""
    plog = predlog.PredictionLog(tmp_path, "hourly", 60)
    times = [
        datetime(2026, 12, 5, 21, 59, 59, tzinfo=UTC),
        datetime(2026, 12, 5, 22, 0, tzinfo=UTC),
    ]
    for i, when in enumerate(times):
        plog.add(
            predlog.RequestRecord(f"r{i}", when, 200, 1.5, 1, "3", False, None, "json"),
            pd.DataFrame({"request_id": [f"r{i}"], "row": [0], "received_at": [when]}),
        )
    plog.add(predlog.RequestRecord("r9", times[1], 415, 0.2, 0, None, False, "no", None))
    written = plog.flush()
    assert sorted(p.parent.name for p in written) == [
        "window=20261205T210000Z",
        "window=20261205T210000Z",
        "window=20261205T220000Z",
        "window=20261205T220000Z",
    ]
    assert plog.flush() == []  # nothing buffered: nothing written
    assert not list(tmp_path.rglob("*.partial"))
    late = pq.read_table(next(tmp_path.glob("window=20261205T220000Z/requests-*.parquet")))
    assert late.column("request_id").to_pylist() == ["r1", "r9"]
    assert str(late.schema.field("model_version").type) == "string"
    assert late.column("status").to_pylist() == [200, 415]
    day = predlog.window_start(times[1], "daily")
    assert predlog.window_folder(tmp_path, day).name == "window=20261205T000000Z"


def test_a_failed_write_keeps_the_records_for_the_next_flush(tmp_path):
    failures = []
    blocker = tmp_path / "log"
    blocker.write_text("a file where the folder should be")
    plog = predlog.PredictionLog(blocker, "daily", 60, on_failure=failures.append)
    when = datetime(2026, 12, 5, 21, tzinfo=UTC)
    plog.add(predlog.RequestRecord("r0", when, 200, 1.0, 0, "1", False, None, "csv"))
    assert plog.flush() == [] and len(failures) == 1
    blocker.unlink()
    (written,) = plog.flush()
    assert pq.read_table(written).column("request_id").to_pylist() == ["r0"]


def test_temporary_files_of_a_killed_writer_are_removed_and_a_live_ones_kept(tmp_path):
    folder = tmp_path / "window=20261205T210000Z"
    folder.mkdir()
    dead = folder / ".rows-1796500000000000000-999999999.parquet.partial"  # above any pid_max
    alive = folder / f".rows-1796500000000000000-{os.getpid()}.parquet.partial"
    for path in (dead, alive):
        path.write_bytes(b"half a file")
    assert predlog.remove_orphaned_partials(tmp_path) == [dead]
    assert alive.exists() and not dead.exists()
