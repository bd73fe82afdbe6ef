"""The prediction log read back (modelwatch.serving): closed windows, the monitor batch a window
becomes, its system health (percentiles checked against numpy.percentile), thresholds, the
files a window is turned into, and labels keyed by request id."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelwatch.alerts import incidents
from modelwatch.errors import ConfigError
from modelwatch.performance.labels import map_request_ids
from modelwatch.serving import logfiles, windows
from modelwatch.settings import DataSettings, SystemHealthSettings, load_settings
from tests.conftest import write_params
from tests.prediction_log import window_folder, write_requests

DATA = DataSettings(
    id="instant", target="cnt", timestamp="dteday", prediction="prediction",
    features=["hr", "temp"], categorical=[], segments=[],
)  # fmt: skip
H9 = datetime(2026, 12, 5, 9, tzinfo=UTC)


def _inputs(n: int, first_id: int = 1) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "instant": np.arange(first_id, first_id + n),
            "dteday": "2011-02-01",
            "hr": np.arange(n) % 24,
            "temp": np.linspace(0.1, 0.9, n),
        }
    )


def _log(tmp_path: Path, start: datetime = H9, n: int = 10, **kw) -> Path:
    log_dir = tmp_path / "predictions"
    latencies = kw.pop("latencies", np.arange(1.0, 100.0))
    write_requests(
        log_dir, start, _inputs(n), np.arange(n, dtype=float) * 2, id_column="instant",
        prediction="prediction", rows_per_request=kw.pop("per", 3), latencies_ms=latencies, **kw,
    )  # fmt: skip
    return log_dir


def test_closed_windows_wait_close_after_seconds_past_the_end(tmp_path):
    log_dir = _log(tmp_path, H9)
    _log(tmp_path, H9 + timedelta(hours=1))
    (log_dir / "window=garbage").mkdir()
    (log_dir / "batches").mkdir()
    end = H9 + timedelta(hours=1)
    assert windows.closed_windows(log_dir, "hourly", 60, end + timedelta(seconds=59)) == []
    (w,) = windows.closed_windows(log_dir, "hourly", 60, end + timedelta(seconds=60))
    assert (w.label, w.batch_name, w.seconds) == (
        "20261205T090000Z",
        "window-20261205T090000Z.csv",
        3600.0,
    )
    assert (len(w.rows_files), len(w.requests_files)) == (1, 1)
    both = windows.closed_windows(log_dir, "hourly", 0, H9 + timedelta(hours=2))
    assert [x.label for x in both] == ["20261205T090000Z", "20261205T100000Z"]
    assert windows.window_start(H9 + timedelta(minutes=59), "daily") == H9.replace(hour=0)
    assert windows.closed_windows(tmp_path / "absent", "hourly", 60, end) == []


def test_system_health_matches_numpy_percentile(tmp_path):
    """Reference: numpy.percentile (linear interpolation) over every request's latency_ms."""
    rng = np.random.default_rng(7)
    latency = rng.lognormal(3, 0.6, 40)
    log_dir = _log(tmp_path, n=90, latencies=latency[:30], failed=[(500, latency[30]),
                   (503, latency[31]), (422, latency[32]), (400, latency[33])])  # fmt: skip
    (w,) = windows.closed_windows(log_dir, "hourly", 60, H9 + timedelta(hours=2))
    requests, problems = windows.read_parts(w.requests_files, windows.REQUEST_COLUMNS)
    health = windows.system_health(requests, w)
    want = np.percentile(latency[:34], [50, 95, 99])
    got = [health.latency_p50_ms, health.latency_p95_ms, health.latency_p99_ms]
    assert got == pytest.approx(want, rel=1e-12) and problems == []
    assert (health.requests, health.rows) == (34, 90)
    assert health.throughput_rps == pytest.approx(34 / 3600)
    assert health.rows_per_second == pytest.approx(90 / 3600)
    assert health.error_rate == pytest.approx(2 / 34)
    assert health.client_error_rate == pytest.approx(2 / 34)
    assert health.to_metrics()["system.latency_p95_ms"] == pytest.approx(want[1])
    assert windows.SystemHealth.from_dict(health.to_dict()) == health
    empty = windows.system_health(None, w)
    assert (empty.requests, empty.latency_p95_ms, empty.error_rate) == (0, None, None)
    assert empty.summary() == "window 20261205T090000Z: no requests"


def test_health_problems_name_each_threshold_crossed():
    h = windows.SystemHealth("w", 3600, 10, 30, 50.0, 300.0, 900.0, 0.01, 0.02, 0.1, 0.0)
    quiet = SystemHealthSettings()
    assert windows.health_problems(h, quiet) == []
    strict = SystemHealthSettings(max_latency_p95_ms=250, max_latency_p99_ms=1000,
                                  max_error_rate=0.05, min_requests=20)  # fmt: skip
    assert windows.health_problems(h, strict) == [
        "latency p95 300.0 ms > 250 ms (system_health.max_latency_p95_ms)",
        "server error rate 10.0% > 5.0% (system_health.max_error_rate)",
        "10 requests < 20 (system_health.min_requests)",
    ]
    found = incidents.system_health_alerts(["x"], "summary", "critical", "window-w", 3)
    (alert,) = found.alerts
    assert (alert.kind, alert.severity, alert.incident_key) == ("system_health", "critical",
                                                                "system_health")  # fmt: skip
    assert incidents.system_health_alerts([], "s", "warning", "w", 4).checked == {"system_health"}


def test_build_batch_keeps_the_batch_columns_in_receipt_order_and_fills_the_timestamp(tmp_path):
    log_dir = _log(tmp_path, n=6, per=2)
    (w,) = windows.closed_windows(log_dir, "hourly", 60, H9 + timedelta(hours=2))
    rows, _ = windows.read_parts(w.rows_files, windows.row_columns(DATA))
    rows = rows.iloc[::-1].reset_index(drop=True)  # part files in another order: same batch
    rows.loc[rows["instant"] == 6, "dteday"] = None  # the client sent no timestamp here
    batch, served = windows.build_batch(rows, DATA)
    assert list(batch.columns) == ["instant", "dteday", "hr", "temp"]
    assert batch["instant"].tolist() == [1, 2, 3, 4, 5, 6]
    assert batch["dteday"].tolist() == ["2011-02-01"] * 5 + ["2026-12-05T09:00:03"]
    assert served["prediction"].tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert {"model_version", "request_id", "row", "shadow_version", "shadow.prediction"} <= set(
        served.columns
    )


def test_a_corrupt_part_file_is_quarantined_and_the_rest_used_the_same_way_twice(tmp_path):
    log_dir = _log(tmp_path, n=6, per=3)
    folder = window_folder(log_dir, H9)
    write_requests(log_dir, H9, _inputs(3, first_id=7), np.zeros(3), id_column="instant",
                   prediction="prediction", rows_per_request=3, latencies_ms=[5.0],
                   request_prefix="late")  # fmt: skip
    bad = folder / "rows-1-1.parquet"
    bad.write_bytes(b"PAR1 not really parquet")
    no_latency = folder / "requests-2-2.parquet"
    pd.DataFrame({"request_id": ["x"]}).to_parquet(no_latency)
    (w,) = windows.closed_windows(log_dir, "hourly", 60, H9 + timedelta(hours=2))
    files = logfiles.materialize_window(log_dir, w, DATA)
    assert not bad.exists() and not no_latency.exists()
    kept = logfiles.quarantine_dir(log_dir, w)
    assert (kept / bad.name).read_bytes() == b"PAR1 not really parquet"
    assert len(files.set_aside) == 2
    assert re.search(r"rows-1-1\.parquet: not a readable Parquet file", files.set_aside[1])
    assert "requests-2-2.parquet: columns ['received_at', 'status', 'latency_ms', 'rows']" \
        in files.set_aside[0]  # fmt: skip
    # ordered by received_at, then request id: "late-..." and "req-..." came at the same second
    assert pd.read_csv(files.batch_path)["instant"].tolist() == [7, 8, 9, 1, 2, 3, 4, 5, 6]
    assert files.health.requests == 3 and files.health.unreadable_files == files.set_aside
    first = files.batch_path.read_bytes()
    (again,) = windows.closed_windows(log_dir, "hourly", 60, H9 + timedelta(hours=2))
    rerun = logfiles.materialize_window(log_dir, again, DATA)  # after a kill: the same batch
    assert rerun.batch_path.read_bytes() == first and rerun.set_aside == files.set_aside
    assert logfiles.read_health(rerun.health_path) == files.health
    dest = logfiles.retire_window(log_dir, again)
    assert not folder.exists() and len(list(dest.glob("*.parquet"))) == 4  # 2 rows, 2 requests


def test_a_window_of_failed_requests_has_health_and_no_batch(tmp_path):
    log_dir = tmp_path / "predictions"
    write_requests(log_dir, H9, _inputs(0), np.zeros(0), id_column="instant",
                   prediction="prediction", rows_per_request=1, latencies_ms=[],
                   failed=[(500, 12.0), (400, 3.0)])  # fmt: skip
    (w,) = windows.closed_windows(log_dir, "hourly", 60, H9 + timedelta(hours=2))
    files = logfiles.materialize_window(log_dir, w, DATA)
    assert files.batch_path is None and files.served_path is None
    assert (files.health.requests, files.health.error_rate) == (2, 0.5)
    assert files.health.latency_p50_ms == pytest.approx(np.percentile([12.0, 3.0], 50))


def test_labels_keyed_by_request_id_get_numeric_ids_back_from_the_logs_text():
    """The service logs ids as text ("7"); with a numeric id column the labels file keyed by
    id has numbers, as it has when read back from CSV (found by tests/e2e/test_serving_loop)."""
    frame = pd.DataFrame({"request_id": ["a", "a"], "row": [0, 1], "cnt": [1, 2]})
    out, _ = map_request_ids(frame, DATA, {("a", 0): "17", ("a", 1): "18"})
    assert out["instant"].tolist() == [17, 18] and str(out["instant"].dtype) == "int64"
    mixed, _ = map_request_ids(frame, DATA, {("a", 0): "17"})
    assert mixed["instant"].tolist() == ["17", "a:1"]  # a text id stays text: all as sent


def test_labels_keyed_by_request_id_take_the_row_id_of_the_log():
    frame = pd.DataFrame({"request_id": ["a", "a", "b"], "row": [0, 1, 0], "cnt": [1, 2, 3]})
    out, problems = map_request_ids(frame, DATA, {("a", 0): 17, ("a", 1): 18})
    assert problems == [] and list(out.columns) == ["instant", "cnt"]
    assert out["instant"].tolist() == [17, 18, "b:0"]  # unknown: the log's rule
    no_row = pd.DataFrame({"request_id": ["c"], "cnt": [4]})
    assert map_request_ids(no_row, DATA, {})[0]["instant"].tolist() == ["c:0"]
    with_id = pd.DataFrame({"instant": [1], "cnt": [2]})
    assert map_request_ids(with_id, DATA, {})[0] is with_id
    bad = pd.DataFrame({"request_id": ["a", None], "row": [-1, 0.5], "cnt": [1, 2]})
    assert map_request_ids(bad, DATA, {})[1] == [
        "column 'request_id': 1 missing request id(s)",
        "column 'row': 2 value(s) are not row positions (0, 1, 2, ...) (e.g. -1.0, 0.5)",
    ]


def test_served_ids_reads_the_ids_clients_sent(tmp_path):
    served = logfiles.served_dir(tmp_path)
    served.mkdir()
    pd.DataFrame({"instant": [5, 6], "request_id": ["a", "b"], "row": [0, 0]}).to_parquet(
        served / "window-1.parquet"
    )
    assert logfiles.served_ids(tmp_path, DATA, ["b", "zz"]) == {("b", 0): 6}


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("serving", {"window": "weekly"}, r"serving\.window: Input should be 'hourly' or 'daily'"),
        ("serving", {"log_dir": "../elsewhere"}, r"serving\.log_dir: '\.\./elsewhere' must name"),
        ("system_health", {"max_error_rate": 2}, r"system_health\.max_error_rate: Input should"),
        ("system_health", {"severity": "loud"}, r"system_health\.severity: Input should be"),
        ("system_health", {"max_p95": 3}, r"system_health\.max_p95: unknown key"),
    ],
)
def test_bad_serving_and_system_health_settings_are_named(tmp_path, section, values, message):
    path = write_params("params.yaml", tmp_path, **{section: values})
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_collect_schedule_follows_the_window():
    from modelwatch.settings import ServingSettings

    assert windows.collect_cron(ServingSettings()) == "1 * * * *"
    daily = ServingSettings(window="daily", close_after_seconds=600)
    assert windows.collect_cron(daily) == "10 0 * * *"


def test_live_shadow_scores_both_models_on_the_rows_the_shadow_scored():
    """Reference: sklearn.metrics.mean_absolute_error on the shadow-scored rows only."""
    from sklearn.metrics import mean_absolute_error

    from modelwatch.decide.probation import live_shadow

    rows = pd.DataFrame(
        {
            "cnt": [10.0, 20.0, 30.0, 40.0],
            "prediction": [12.0, 18.0, 33.0, 40.0],
            "shadow.prediction": [10.0, np.nan, 31.0, np.nan],
        }
    )
    live = live_shadow(rows, 2, DATA, "regression", "mae", champion_version="1",
                       shadow_version="2")  # fmt: skip
    assert live.rows == 2 and live.batches == 2
    assert live.champion_score == pytest.approx(mean_absolute_error([10, 30], [12, 33]))
    assert live.shadow_score == pytest.approx(mean_absolute_error([10, 30], [10, 31]))
    assert live.sentence() == (
        "in shadow: version 2 mae 0.5 vs 2.5 for champion 1 on the same 2 labelled production "
        "rows of 2 batch(es)"
    )
    none = rows.assign(**{"shadow.prediction": np.nan})
    assert live_shadow(none, 1, DATA, "regression", "mae", champion_version="1",
                       shadow_version="2") is None  # fmt: skip
