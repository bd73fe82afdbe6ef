"""Issue 16's chain end to end, writer and reader together: `modelwatch serve-model` (a real
process) on a bootstrapped project answers valid JSON and CSV requests and refuses bad ones,
/metrics counts them, SIGTERM writes the prediction log, `modelwatch collect --now` (the real CLI)
turns the window into a batch and runs the monitor flow on it (system health in the MLflow run,
the `system_health` alert through the routing, the predictions the service returned), and a
labels file keyed by the `X-Request-ID`s the service returned gives the window's performance at
the next monitor run.

One project, one service process; the tests run in file order and share what was sent. Latency
crosses its threshold for real: system_health.max_latency_p95_ms is 1 ms, below what any real
request takes (a Python call into a fitted pipeline)."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error

from modelwatch import io
from modelwatch.stores import history
from tests.conftest import cli_env, run_modelwatch
from tests.e2e.serving_setup import free_port, start_service, stop_service
from tests.e2e.test_lifecycle import Life

pytestmark = pytest.mark.slow

PER = 4  # rows per JSON request
JSON_REQUESTS = 6  # + one CSV request of 8 rows: 32 rows (validation.min_rows is 24)
CLOSE = 1  # serving.close_after_seconds


@pytest.fixture(scope="module")
def hook():
    """A local incoming webhook (the alert routing's target): every POSTed JSON body, in order."""
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # the name http.server calls
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_address[1]}/hook", bodies=got)
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def loop(tmp_path_factory, hook):
    folder = tmp_path_factory.mktemp("loop")
    life = Life(
        folder,
        serving={"flush_seconds": 0.3, "reload_seconds": 0.5, "close_after_seconds": CLOSE},
        system_health={"max_latency_p95_ms": 1, "max_error_rate": 0.01, "severity": "warning"},
        alerts={"webhooks": [{"name": "ops", "url": hook.url, "min_severity": "warning"}]},
    )
    life.bootstrap()
    port = free_port()
    proc = start_service(life.params, port, folder / "service.log")
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    state = SimpleNamespace(
        life=life,
        proc=proc,
        http=http,
        log=folder / "service.log",
        hook=hook,
        answers=[],  # one frame per successful request: request_id, row, instant, prediction
        statuses=[],  # every request's status, in order
    )
    yield state
    http.close()
    stop_service(proc)


def inputs(loop) -> pd.DataFrame:
    """The first rows of demo batch 1 as a client sends them: the id, the rows' own time
    (data.timestamp) and the features."""
    data = loop.life.loaded.settings.data
    frame = pd.read_csv(loop.life.batches[0].inputs)
    return frame[[data.id, data.timestamp, *data.features]].iloc[: JSON_REQUESTS * PER + 8]


def metric(loop, name: str, **labels: str) -> float:
    text = loop.http.get("/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}{re.escape('{' + want + '}') if want else ''} (\S+)$"
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


def remember(loop, r: httpx.Response, sent: pd.DataFrame | None) -> None:
    loop.statuses.append(r.status_code)
    if r.status_code == 200:
        loop.answers.append(
            pd.DataFrame(
                {
                    "request_id": r.headers["X-Request-ID"],
                    "row": np.arange(len(sent)),
                    "instant": sent["instant"].to_numpy(),
                    "prediction": r.json()["predictions"],
                }
            )
        )


def test_the_service_answers_json_and_csv_refuses_bad_requests_and_counts_them(loop):
    rows = inputs(loop)
    for k in range(JSON_REQUESTS):
        part = rows.iloc[k * PER : (k + 1) * PER]
        r = loop.http.post("/predict", json={"dataframe_records": part.to_dict("records")})
        assert r.status_code == 200, r.text
        remember(loop, r, part)
    part = rows.iloc[JSON_REQUESTS * PER :]
    r = loop.http.post(
        "/predict", content=part.to_csv(index=False), headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 200 and len(r.json()["predictions"]) == 8, r.text
    assert "ignored_columns" not in r.json()  # the id and the timestamp are the project's
    remember(loop, r, part)
    good = rows.iloc[:2].to_dict("records")
    bad = [
        ({"json": {"dataframe_records": [{k: v for k, v in good[0].items() if k != "hr"}]}},
         422, "hr", "missing column 'hr'"),
        ({"json": {"dataframe_records": [good[0], {**good[1], "temp": "warm"}]}}, 422, "temp",
         "column 'temp': 1 value(s) are not a number (double); first at row 1: 'warm'"),
        ({"content": rows.drop(columns="windspeed").head(2).to_csv(index=False),
          "headers": {"Content-Type": "text/csv"}}, 422, "windspeed", "windspeed"),
        ({"content": b"{oops", "headers": {"Content-Type": "application/json"}}, 400, None,
         "malformed JSON"),
    ]  # fmt: skip
    for kwargs, status, column, message in bad:
        r = loop.http.post("/predict", **kwargs)
        remember(loop, r, None)
        assert r.status_code == status, (kwargs, r.text)
        assert r.json()["column"] == column and message in r.json()["error"], r.json()
    assert metric(loop, "modelwatch_serving_requests_total", status="200") == JSON_REQUESTS + 1
    assert metric(loop, "modelwatch_serving_errors_total", status="422") == 3
    assert metric(loop, "modelwatch_serving_errors_total", status="400") == 1
    assert metric(loop, "modelwatch_serving_rows_scored_total") == len(rows)
    count = metric(loop, "modelwatch_serving_request_latency_seconds_count", endpoint="/predict")
    assert count == len(loop.statuses)
    assert metric(loop, "modelwatch_serving_model_version_info", alias="champion", version="1")


def test_sigterm_then_collect_monitors_the_window_with_its_health_alert_and_answers(loop):
    life = loop.life
    assert stop_service(loop.proc) == 0  # graceful: the buffered log is written
    log_dir = life.loaded.paths.home / life.loaded.settings.serving.log_dir
    starts = sorted(
        datetime.strptime(p.name.removeprefix("window="), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        for p in log_dir.glob("window=*")
    )
    assert starts, "the service wrote no prediction log"
    # the window of the requests is the current hour: put "now" after its close, not wait
    now = starts[-1] + timedelta(hours=1, seconds=CLOSE + 1)
    code, out = run_modelwatch(life.params, ["collect", "--now", now.isoformat()], cli_env())
    assert code == 0, out
    labels = [f"{s:%Y%m%dT%H%M%SZ}" for s in starts]
    for label in labels:
        assert f"window {label}: Completed" in out, out
    loop.batch_ids = [f"window-{label}" for label in labels]
    runs = [history.find_by_batch_id(life.client, life.exps.monitoring, b) for b in loop.batch_ids]
    assert all(r.status == "accepted" and r.champion_version == "1" for r in runs)

    # system health: the requests the service logged, against numpy.percentile (reference)
    requests = pd.concat(
        pd.read_parquet(p) for p in (log_dir / "collected").rglob("requests-*.parquet")
    )
    assert sorted(requests["status"]) == sorted(loop.statuses)
    if len(runs) == 1:  # the usual case: every request in one hourly window
        (run,) = runs
        want = np.percentile(requests["latency_ms"].to_numpy(float), [50, 95, 99])
        got = [run.metrics[f"system.latency_p{p}_ms"] for p in (50, 95, 99)]
        assert got == pytest.approx(want, rel=1e-9)
        assert run.metrics["system.requests"] == len(loop.statuses)
        assert run.metrics["system.client_error_rate"] == pytest.approx(4 / len(loop.statuses))
        assert run.metrics["system.error_rate"] == 0.0
    assert all(r.metrics["system.latency_p95_ms"] > 1.0 for r in runs)  # real latencies

    # the latency crossed system_health.max_latency_p95_ms: the incident, routed as every alert
    state, _ = life.proj.ledger.alerts(life.name)
    incident = state["open"]["system_health"]
    assert incident["severity"] == "warning" and "Scoring service unhealthy" in incident["title"]
    assert incident["opened_batch_id"] == loop.batch_ids[0]
    assert "warning" in runs[0].tags["alerts"].split(",")
    posted = [json.dumps(b) for b in loop.hook.bodies if "Scoring service unhealthy" in b["text"]]
    assert len(posted) == 1 and "system_health.max_latency_p95_ms" in posted[0], posted  # blocks

    # the batch's stored predictions are the ones the service returned (not rescored)
    answered = pd.concat(loop.answers, ignore_index=True)
    stored = pd.concat(
        io.read_csv_file(life.proj.repo_path("data/predictions") / f"{b}.csv")
        for b in loop.batch_ids
    )
    merged = answered.merge(stored, on="instant", suffixes=("_returned", "_stored"))
    assert len(merged) == len(answered) == len(stored)
    np.testing.assert_allclose(merged["prediction_stored"], merged["prediction_returned"], 1e-9)
    # the batch carries the rows' own time as the client sent it, not the time of the request
    batch = pd.concat(
        io.read_csv_file(log_dir / "batches" / f"{b}.csv") for b in loop.batch_ids
    ).set_index("instant")
    sent = inputs(loop).set_index("instant")
    assert batch.loc[sent.index, "dteday"].astype(str).tolist() == sent["dteday"].tolist()


def test_labels_keyed_by_the_returned_request_ids_give_the_windows_performance(loop):
    life = loop.life
    answered = pd.concat(loop.answers, ignore_index=True)
    truth = pd.read_csv(life.batches[0].labels).set_index("instant")["cnt"]
    labels = answered[["request_id", "row"]].assign(cnt=truth.loc[answered["instant"]].to_numpy())
    inbox = life.loaded.paths.incoming_labels
    inbox.mkdir(parents=True, exist_ok=True)
    labels.to_csv(inbox / "served-labels.csv", index=False)

    life.monitor(2)  # the next monitor run takes the labels in and evaluates the window

    runs = [history.find_by_batch_id(life.client, life.exps.monitoring, b) for b in loop.batch_ids]
    assert all(r.evaluated for r in runs)
    for run, batch_id in zip(runs, loop.batch_ids, strict=True):
        mine = answered[answered["request_id"].isin(_request_ids(life, batch_id))]
        # reference: sklearn's MAE on the same rows (labels joined by hand on the returned ids)
        want = mean_absolute_error(truth.loc[mine["instant"]], mine["prediction"])
        assert run.metrics["performance.mae"] == pytest.approx(want, rel=1e-9)


def _request_ids(life, batch_id: str) -> set[str]:
    served = life.loaded.paths.home / life.loaded.settings.serving.log_dir / "served"
    return set(pd.read_parquet(served / f"{batch_id}.parquet")["request_id"])
