"""`modelwatch serve-model` as a real process on a project with a real MLflow store and registry:
valid JSON and CSV, each kind of bad request, /ready and /metrics, the champion alias moved
while requests keep coming, a version that fails its integrity check, shadow scoring by the
challenger, and the prediction log written at SIGTERM in the agreed format.

One project and one service process for the module; the tests run in file order and each one
records the requests it sent, which the last test finds in the log."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from modelwatch.stores import integrity, registry
from tests.e2e.serving_setup import free_port, make_project, start_service, stop_service

pytestmark = pytest.mark.slow

SENT: dict[str, dict] = {}  # request id -> {"rows", "status", "shadow"}: what the log must hold


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    """The service started before the project has a champion (503 until one is promoted)."""
    folder = tmp_path_factory.mktemp("serving")
    project = make_project(
        folder,
        promote=False,
        flush_seconds=0.3,
        reload_seconds=0.3,
        shadow_share=1.0,
        max_rows=50,
    )
    port = free_port()
    proc = start_service(project.params, port, folder / "service.log", endpoint="/health")
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    state = {"project": project, "proc": proc, "http": client, "log": folder / "service.log"}
    yield state
    client.close()
    stop_service(proc)


def features(svc, n: int, start: int = 0) -> pd.DataFrame:
    p = svc["project"]
    return p.reference[[*p.proj.settings.data.features, "instant"]].iloc[start : start + n]


def post(svc, *, json=None, content=None, ctype=None, rid=None, shadow=False) -> httpx.Response:
    headers = {"X-Request-ID": rid} if rid else {}
    if ctype:
        headers["Content-Type"] = ctype
    r = svc["http"].post("/predict", json=json, content=content, headers=headers)
    rows = len(r.json().get("predictions", [])) if r.status_code == 200 else 0
    SENT[r.headers["X-Request-ID"]] = {"rows": rows, "status": r.status_code, "shadow": shadow}
    return r


def metric(svc, name: str, **labels: str) -> float:
    text = svc["http"].get("/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}{re.escape('{' + want + '}') if want else ''} (\S+)$"
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


def local_predictions(svc, version: str, frame: pd.DataFrame) -> np.ndarray:
    """Reference: the registered pipeline's own predict, loaded through the integrity checks."""
    p = svc["project"]
    model = integrity.load_verified(p.proj.client, p.proj.ledger, p.name, version)
    return model.predict(frame[p.proj.settings.data.features])


def test_not_ready_without_a_champion_then_ready_once_one_is_promoted(svc):
    p, http = svc["project"], svc["http"]
    assert http.get("/health").json() == {"status": "ok"}
    assert http.get("/ready").status_code == 503
    r = post(svc, json={"dataframe_records": features(svc, 1).to_dict("records")})
    assert r.status_code == 503 and "no champion model is loaded" in r.json()["error"]
    p.move(registry.CHAMPION, p.versions[0])
    deadline = time.monotonic() + 15
    while http.get("/ready").status_code != 200:
        assert time.monotonic() < deadline, "the champion was not loaded"
        time.sleep(0.2)


def test_ready_and_valid_json_and_csv_answers_equal_the_models_own(svc):
    p, http = svc["project"], svc["http"]
    ready = http.get("/ready")
    assert ready.status_code == 200 and ready.json()["model_version"] == p.versions[0]
    rows = features(svc, 5)
    want = local_predictions(svc, p.versions[0], rows)
    r = post(
        svc, json={"dataframe_records": rows.assign(extra=1).to_dict("records")}, rid="client-id-1"
    )
    assert r.status_code == 200 and r.headers["X-Request-ID"] == "client-id-1"
    body = r.json()
    assert body["request_id"] == "client-id-1" and body["model_version"] == p.versions[0]
    assert body["ignored_columns"] == ["extra"]
    np.testing.assert_allclose(body["predictions"], want, rtol=1e-9)
    split = {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}
    r = post(svc, json={"dataframe_split": split})
    np.testing.assert_allclose(r.json()["predictions"], want, rtol=1e-9)
    r = svc["http"].post(
        "/invocations",
        content=rows.drop(columns="instant").to_csv(index=False),
        headers={"Content-Type": "text/csv"},
    )
    SENT[r.headers["X-Request-ID"]] = {
        "rows": 5,
        "status": r.status_code,
        "shadow": False,
        "csv": True,
    }
    assert r.status_code == 200 and len(r.headers["X-Request-ID"]) == 32  # a uuid4 hex
    np.testing.assert_allclose(r.json()["predictions"], want, rtol=1e-9)


def test_each_bad_request_is_a_4xx_naming_the_problem_and_metrics_count_them(svc):
    before = {
        s: metric(svc, "modelwatch_serving_errors_total", status=s)
        for s in ("400", "413", "415", "422")
    }
    rows_before = metric(svc, "modelwatch_serving_rows_scored_total")
    good = features(svc, 2).to_dict("records")
    cases = [
        ({"content": b"", "ctype": "application/json"}, 400, None, "empty request body"),
        ({"content": b"{oops", "ctype": "application/json"}, 400, None, "malformed JSON"),
        ({"content": b"hr,temp\n1\n", "ctype": "text/csv"}, 400, None, "malformed CSV"),
        ({"content": b"<x/>", "ctype": "application/xml"}, 415, None, "unsupported content"),
        ({"json": {"dataframe_records": good * 30}}, 413, None, "60 rows in one request"),
        (
            {"json": {"dataframe_records": [{k: v for k, v in good[0].items() if k != "hr"}]}},
            422,
            "hr",
            "missing column 'hr'",
        ),
        (
            {"json": {"dataframe_records": [good[0], {**good[1], "temp": "warm"}]}},
            422,
            "temp",
            "column 'temp': 1 value(s) are not a number (double); first at row 1: 'warm'",
        ),
        (
            {"json": {"dataframe_records": good}, "rid": "bad id with spaces"},
            400,
            None,
            "header X-Request-ID",
        ),
    ]
    for kwargs, status, column, message in cases:
        r = post(svc, **kwargs)
        assert r.status_code == status, (kwargs, r.text)
        assert r.json()["column"] == column and message in r.json()["error"], r.json()
    for s, n in (("400", 4), ("413", 1), ("415", 1), ("422", 2)):
        assert metric(svc, "modelwatch_serving_errors_total", status=s) == before[s] + n
    assert metric(svc, "modelwatch_serving_rows_scored_total") == rows_before  # none scored
    assert metric(svc, "modelwatch_serving_requests_total", status="200") == 3
    assert metric(svc, "modelwatch_serving_rows_scored_total") == 15
    count = metric(svc, "modelwatch_serving_request_latency_seconds_count", endpoint="/predict")
    assert count == 3 + len(cases)  # and the 503 before the champion
    assert (
        metric(
            svc,
            "modelwatch_serving_model_version_info",
            alias="champion",
            version=svc["project"].versions[0],
        )
        == 1
    )


def test_moving_the_champion_under_load_fails_no_request(svc):
    p = svc["project"]
    v1, v2 = p.versions
    seen, failures, stop = [], [], threading.Event()

    def load() -> None:
        i = 0
        while not stop.is_set():
            rows = features(svc, 1 + (i % 3) * 10, start=i % 50)
            try:
                r = post(svc, json={"dataframe_records": rows.to_dict("records")})
                (seen if r.status_code == 200 else failures).append(
                    r.json().get("model_version") if r.status_code == 200 else r.text
                )
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
            i += 1

    thread = threading.Thread(target=load)
    thread.start()
    answered_by = []  # the version of the first answer after each move had been loaded
    try:
        for version in (v2, v1, v2):
            time.sleep(0.5)
            p.move(registry.CHAMPION, version)
            deadline = time.monotonic() + 20
            while not (seen and seen[-1] == version) and time.monotonic() < deadline:
                time.sleep(0.05)
            answered_by.append(seen[-1] if seen else None)
    finally:
        stop.set()
        thread.join()
    assert failures == []
    assert answered_by == [v2, v1, v2], (answered_by, seen)  # each move hot-reloaded
    assert metric(svc, "modelwatch_serving_reloads_total", alias="champion") >= 4
    assert metric(svc, "modelwatch_serving_model_version_info", alias="champion", version=v2) == 1


def test_a_version_that_fails_its_integrity_check_is_counted_and_the_old_one_serves(svc):
    p = svc["project"]
    broken = p.register(10)
    folder = integrity.model_folder(p.proj.client, p.name, broken)
    (folder / "model.skops").write_bytes(b"changed after registration")
    before = metric(svc, "modelwatch_serving_reload_failures_total", alias="champion")
    p.move(registry.CHAMPION, broken)
    deadline = time.monotonic() + 15
    while (
        time.monotonic() < deadline
        and metric(svc, "modelwatch_serving_reload_failures_total", alias="champion") == before
    ):
        time.sleep(0.2)
    assert metric(svc, "modelwatch_serving_reload_failures_total", alias="champion") > before
    r = post(svc, json={"dataframe_records": features(svc, 2).to_dict("records")})
    assert r.status_code == 200 and r.json()["model_version"] == p.versions[1]
    assert svc["http"].get("/ready").json()["model_version"] == p.versions[1]
    assert f"version {broken} not loaded" in svc["log"].read_text()
    p.move(registry.CHAMPION, p.versions[1])  # the good version back for the next test


def test_the_challenger_scores_in_shadow_and_is_never_returned(svc):
    p, http = svc["project"], svc["http"]
    p.move(registry.CHALLENGER, p.versions[0])
    deadline = time.monotonic() + 15
    while http.get("/ready").json().get("challenger_version") != p.versions[0]:
        assert time.monotonic() < deadline, "the challenger was not loaded"
        time.sleep(0.2)
    rows = features(svc, 4, start=10)
    r = post(
        svc, json={"dataframe_records": rows.to_dict("records")}, rid="shadowed-1", shadow=True
    )
    assert r.status_code == 200 and r.json()["model_version"] == p.versions[1]
    assert set(r.json()) == {"request_id", "model_version", "predictions"}
    np.testing.assert_allclose(
        r.json()["predictions"], local_predictions(svc, p.versions[1], rows), rtol=1e-9
    )
    deadline = time.monotonic() + 10
    while metric(svc, "modelwatch_serving_shadow_rows_scored_total") < 4:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    SENT["shadowed-1"]["want_shadow"] = local_predictions(svc, p.versions[0], rows)


def test_sigterm_stops_gracefully_and_the_log_has_every_request_in_the_format(svc):
    p = svc["project"]
    data = p.proj.settings.data
    assert stop_service(svc["proc"]) == 0
    folder = p.proj.paths.home / "predictions"
    windows = sorted(folder.iterdir())
    assert windows and all(re.fullmatch(r"window=\d{8}T\d{2}0000Z", w.name) for w in windows)
    assert not list(folder.rglob("*.partial"))
    requests = pd.concat([pq.read_table(f).to_pandas() for f in folder.rglob("requests-*.parquet")])
    rows = pd.concat([pq.read_table(f).to_pandas() for f in folder.rglob("rows-*.parquet")])
    assert list(requests.columns) == [
        "request_id",
        "received_at",
        "status",
        "latency_ms",
        "rows",
        "model_version",
        "shadow",
        "error",
        "format",
    ]
    assert [str(requests[c].dtype) for c in ("status", "latency_ms", "rows", "shadow")] == [
        "int64",
        "float64",
        "int64",
        "bool",
    ]
    assert str(requests["received_at"].dtype).endswith("UTC]")
    # one record per request, failed ones included; one rows record per scored row
    assert sorted(requests["request_id"]) == sorted(SENT)
    by_id = requests.set_index("request_id")
    for rid, sent in SENT.items():
        assert by_id.loc[rid, "status"] == sent["status"], rid
        assert by_id.loc[rid, "rows"] == (sent["rows"] or by_id.loc[rid, "rows"])
        assert by_id.loc[rid, "shadow"] == sent["shadow"]
        assert pd.isna(by_id.loc[rid, "error"]) == (sent["status"] == 200)
    assert by_id.loc[next(k for k, v in SENT.items() if v["status"] == 413), "rows"] == 60
    assert set(requests["format"].dropna()) == {"json", "csv"}
    refused = by_id.loc[next(k for k, v in SENT.items() if v["status"] == 503)]
    assert pd.isna(refused["model_version"]) and refused["rows"] == 0
    scored = requests[requests["status"] == 200]
    assert len(rows) == scored["rows"].sum()
    counts = rows.groupby("request_id").size()
    assert (counts == scored.set_index("request_id")["rows"].reindex(counts.index)).all()
    want = [
        "request_id",
        "row",
        data.id,
        "received_at",
        "model_version",
        *data.features,
        data.prediction,
        "shadow_version",
        f"shadow.{data.prediction}",
    ]
    assert list(rows.columns) == want
    assert str(rows["row"].dtype) == "int64" and str(rows["received_at"].dtype).endswith("UTC]")
    first = rows[rows["request_id"] == "client-id-1"].sort_values("row")
    assert first["row"].tolist() == [0, 1, 2, 3, 4]
    assert first[data.id].tolist() == [str(i) for i in features(svc, 5)["instant"]]
    csv_id = next(k for k, v in SENT.items() if v.get("csv"))  # sent no id column
    assert rows[rows["request_id"] == csv_id][data.id].tolist() == [
        f"{csv_id}:{i}" for i in range(5)
    ]
    shadowed = rows[rows["request_id"] == "shadowed-1"].sort_values("row")
    assert (shadowed["shadow_version"] == p.versions[0]).all()
    np.testing.assert_allclose(
        shadowed[f"shadow.{data.prediction}"], SENT["shadowed-1"]["want_shadow"], rtol=1e-9
    )
    unshadowed = rows[rows["request_id"] == "client-id-1"]
    assert unshadowed["shadow_version"].isna().all()
    assert unshadowed[f"shadow.{data.prediction}"].isna().all()
    assert "Application shutdown complete" in Path(svc["log"]).read_text()


def test_a_kill_9_loses_at_most_the_last_flush_interval_and_leaves_whole_files(svc):
    """After SIGKILL, every record older than flush_seconds (0.3 s) is in the log, in files that
    read whole; a restart removes what a killed flush left (unit test of the cleanup)."""
    p = svc["project"]
    folder = p.proj.paths.home / "predictions"
    before = set(folder.rglob("*.parquet"))
    port = free_port()
    proc = start_service(p.params, port, svc["log"].with_name("service-2.log"))
    try:
        url = f"http://127.0.0.1:{port}/predict"
        body = {"dataframe_records": features(svc, 3).to_dict("records")}
        sent = [
            httpx.post(url, json=body, headers={"X-Request-ID": f"before-kill-{i}"})
            for i in range(3)
        ]
        assert [r.status_code for r in sent] == [200, 200, 200]
        time.sleep(1.5)  # several flush intervals
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    new = set(folder.rglob("*.parquet")) - before
    requests = pd.concat(
        [pq.read_table(f).to_pandas() for f in new if f.name.startswith("requests-")]
    )
    assert sorted(requests["request_id"]) == [f"before-kill-{i}" for i in range(3)]
    rows = pd.concat([pq.read_table(f).to_pandas() for f in new if f.name.startswith("rows-")])
    assert len(rows) == 9
