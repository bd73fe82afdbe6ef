"""The prediction log becomes monitor batches (collect-predictions), through real flow runs on the
session's Prefect server, a real MLflow store, git+DVC data repo and the ledger.

Windows of the log are written with tests/prediction_log.py in the agreed format (the scoring
service writes them in production). Checked: one batch per closed window, monitored with the
answers the service gave (not rescored), system health in MLflow and on the timeline
(percentiles against numpy.percentile), an alert when p95 crosses its threshold, a window of
failed requests only, a corrupt part file quarantined, labels joined by request id giving
performance (against sklearn.metrics.mean_absolute_error) and the shadow's metric beside it, and
exactly once after `modelwatch collect` is SIGKILLed mid-way and run again."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error

from modelwatch.stores import history
from tests.conftest import cli_env, run_modelwatch
from tests.e2e.test_lifecycle import Life
from tests.prediction_log import window_folder, write_requests

pytestmark = pytest.mark.slow

H9 = datetime(2026, 12, 5, 9, tzinfo=UTC)
ROWS = 40  # rows per window (validation.min_rows is 24)
PER = 4  # rows per request


class Served:
    """A bootstrapped project whose scoring service 'wrote' the prediction log."""

    def __init__(self, folder) -> None:
        self.life = Life(
            folder,
            system_health={"max_latency_p95_ms": 250, "max_error_rate": 0.2},
            promotion={"live_shadow": {"min_rows": 10, "max_worse": 0.05}},
        )
        self.life.bootstrap()
        self.log_dir = self.life.loaded.paths.home / "predictions"
        self.latencies: dict[datetime, list[float]] = {}
        self.answers: dict[datetime, pd.DataFrame] = {}

    def window(self, start, k, offset, latencies, failed=(), shadow_offset=None, rows=ROWS):
        """Writes a window of the first `rows` rows of demo batch k, answered with the true
        count + offset (so the realized MAE is known), served by champion version 1."""
        inputs = pd.read_csv(self.life.batches[k - 1].inputs).iloc[-rows:] if rows < ROWS \
            else pd.read_csv(self.life.batches[k - 1].inputs).iloc[:ROWS]  # fmt: skip
        labels = pd.read_csv(self.life.batches[k - 1].labels).set_index("instant")["cnt"]
        truth = labels.loc[inputs["instant"]].to_numpy(float)
        shadow = None
        if shadow_offset is not None:  # every other row scored in shadow
            shadow = np.where(np.arange(ROWS) % 2 == 0, truth + shadow_offset, np.nan)
        write_requests(
            self.log_dir, start, inputs, truth + offset, id_column="instant",
            prediction="prediction", rows_per_request=PER, latencies_ms=latencies,
            failed=list(failed), shadow=shadow,
        )  # fmt: skip
        self.latencies[start] = [*latencies, *(lat for _, lat in failed)]
        self.answers[start] = pd.DataFrame(
            {"instant": inputs["instant"], "truth": truth, "shadow": shadow}
        )

    def run_of(self, start):
        batch_id = f"window-{start:%Y%m%dT%H%M%SZ}"
        return history.find_by_batch_id(self.life.client, self.life.exps.monitoring, batch_id)

    def collect(self, now):
        from flows.predictions import collect_predictions

        return collect_predictions(params_path=self.life.params, now=now)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    return Served(tmp_path_factory.mktemp("predlog"))


def test_each_closed_window_becomes_one_monitored_batch_with_its_system_health(served):
    rng = np.random.default_rng(16)
    h8, h10, h11, h12 = (H9 + timedelta(hours=h) for h in (-1, 1, 2, 3))
    served.window(h8, 1, 0.0, np.full(2, 900.0), rows=8)  # too few rows: validation rejects it
    served.window(H9, 1, 10.0, rng.uniform(20, 80, ROWS // PER), failed=[(400, 2.0)],
                  shadow_offset=-4.0)  # fmt: skip
    served.window(h10, 2, -5.0, rng.uniform(300, 500, ROWS // PER))  # slow: p95 > 250 ms
    write_requests(served.log_dir, h11, pd.DataFrame(), np.zeros(0), id_column="instant",
                   prediction="prediction", rows_per_request=PER, latencies_ms=[],
                   failed=[(500, 30.0), (503, 41.0)])  # fmt: skip
    served.window(h12, 3, 0.0, rng.uniform(20, 80, ROWS // PER))  # still open at 12:30
    corrupt = window_folder(served.log_dir, H9) / "rows-9-9.parquet"
    corrupt.write_bytes(b"not parquet")

    rows = served.collect(now=h12 + timedelta(minutes=30))  # 11:00 closed, 12:00 open

    assert [(r["window"], r["state"]) for r in rows] == [
        ("20261205T080000Z", "Rejected"),
        ("20261205T090000Z", "Completed"),
        ("20261205T100000Z", "Completed"),
        ("20261205T110000Z", "NoRows"),
    ]
    # the rejected window is collected too, and its health was logged and judged
    rejected = served.run_of(h8)
    assert rejected.status == "rejected" and rejected.metrics["system.latency_p95_ms"] == 900.0
    first, second = served.run_of(H9), served.run_of(h10)
    assert second.index == first.index + 1 and first.status == "accepted"
    for start, run in ((H9, first), (h10, second)):
        want = np.percentile(served.latencies[start], [50, 95, 99])  # reference: numpy
        got = [run.metrics[f"system.latency_p{p}_ms"] for p in (50, 95, 99)]
        assert got == pytest.approx(want, rel=1e-9)
        # monitored as served (true count + offset), not rescored by the champion
        offset = 10.0 if start == H9 else -5.0
        assert run.metrics["prediction.mean"] == pytest.approx(
            served.answers[start]["truth"].mean() + offset
        )
        assert run.champion_version == "1"
    assert first.metrics["system.requests"] == 11 and first.metrics["system.rows"] == ROWS
    assert first.metrics["system.client_error_rate"] == pytest.approx(1 / 11)
    assert first.metrics["system.error_rate"] == 0.0
    assert first.metrics["system.throughput_rps"] == pytest.approx(11 / 3600)
    # the slow window opened a system_health incident (warning), routed like every alert
    state, _ = served.life.proj.ledger.alerts(served.life.name)
    incident = state["open"]["system_health"]
    # opened by the rejected 8:00 window (p95 900 ms), resolved by 9:00, opened again by 10:00
    assert (incident["severity"], incident["opened_batch_id"]) == ("warning", second.batch_id)
    assert rejected.tags["alerts"] == "critical,warning"  # validation + system health
    assert "Scoring service unhealthy" in incident["title"]
    # the window of failed requests only: its health in a run of its own
    client, exp = served.life.client, served.life.exps.monitoring
    (alone,) = client.search_runs([exp], "tags.prediction_window = '20261205T110000Z'")
    assert alone.data.metrics["system.requests"] == 2
    assert alone.data.metrics["system.error_rate"] == 1.0
    # the timeline draws system health over batches (the row-less window has no batch step)
    timeline = served.life.proj.ledger.get_meta(served.life.name, "timeline_run_id")
    points = client.get_metric_history(timeline, "system.latency_p95_ms")
    line = {p.step: p.value for p in points}
    assert [line[r.index] for r in (rejected, first, second)] == pytest.approx(
        [r.metrics["system.latency_p95_ms"] for r in (rejected, first, second)]
    )
    # the corrupt part file is kept aside with its reason; the window's other rows were used
    kept = served.log_dir / "quarantine" / "window=20261205T090000Z"
    assert (kept / corrupt.name).read_bytes() == b"not parquet"
    assert "not a readable Parquet file" in (kept / f"{corrupt.name}.reason.txt").read_text()
    # collected windows moved aside; the open one waits; a second run does nothing
    assert sorted(p.name for p in served.log_dir.glob("window=*")) == ["window=20261205T120000Z"]
    assert served.collect(now=h12 + timedelta(minutes=30)) == []


def test_labels_by_request_id_give_the_served_windows_performance(served):
    h12 = H9 + timedelta(hours=3)
    answers = served.answers[H9]
    labels = pd.DataFrame(
        {
            "request_id": [f"req-0900-{i // PER:04d}" for i in range(ROWS)],
            "row": [i % PER for i in range(ROWS)],
            "cnt": answers["truth"],
        }
    )
    inbox = served.life.loaded.paths.incoming_labels
    inbox.mkdir(parents=True, exist_ok=True)
    labels.to_csv(inbox / "served-0900.csv", index=False)
    bad = pd.DataFrame({"request_id": ["req-0900-0000"], "row": ["first"], "cnt": [3]})
    bad.to_csv(inbox / "bad-rows.csv", index=False)

    rows = served.collect(now=h12 + timedelta(hours=1, seconds=60))  # window 12:00 closes

    assert [(r["window"], r["state"]) for r in rows] == [("20261205T120000Z", "Completed")]
    run = served.run_of(H9)
    want = mean_absolute_error(answers["truth"], answers["truth"] + 10.0)  # reference: sklearn
    assert run.metrics["performance.mae"] == pytest.approx(want) and want == 10.0
    # the challenger scored every other row in shadow: its metric on those rows, beside
    shadow = answers.dropna(subset=["shadow"])
    assert run.metrics["shadow.performance.mae"] == pytest.approx(
        mean_absolute_error(shadow["truth"], shadow["shadow"])
    )
    assert run.tags["shadow_version"] == "2"
    # a labels file keyed by request id with a bad row position is refused, kept, and said why
    kept = served.life.loaded.paths.quarantine / "labels" / "bad-rows"
    report = (kept / "report.md").read_text()
    assert "column 'row': 1 value(s) are not row positions (0, 1, 2, ...) (e.g. 'first')" in report
    assert pd.read_csv(kept / "bad-rows.csv")["row"].tolist() == ["first"]


def test_the_retrain_comparison_records_the_shadow_on_live_traffic(served):
    from flows.retrain import retrain

    decision = retrain(reason="predlog test: compare", params_path=served.life.params, force=True)

    run = served.life.client.get_run(
        served.life.client.get_model_version(served.life.name, decision.candidate_version).run_id
    )
    shadow = served.answers[H9].dropna(subset=["shadow"])  # reference: sklearn, shadow rows
    assert run.data.metrics["live.shadow.mae"] == pytest.approx(
        mean_absolute_error(shadow["truth"], shadow["shadow"])
    )
    assert run.data.metrics["live.champion.mae"] == pytest.approx(10.0)
    assert (
        run.data.metrics["live.rows"] == len(shadow) and run.data.tags["live_shadow_version"] == "2"
    )
    # promotion.live_shadow judged it: the decision record names both numbers and the rows
    (check,) = [c for c in decision.checks if c.name == "live_shadow"]
    assert decision.candidate_version == "2" and check.passed
    assert check.sentence == (
        "live shadow: candidate version 2 mae 4 vs 10 for champion version 1 on the same 20 "
        "labelled production rows of 1 batch(es): 60% better (<= 5% allowed, "
        "promotion.live_shadow.max_worse): pass"
    )
    assert check.sentence in decision.reasons


def test_a_killed_collect_run_finishes_exactly_once_when_run_again(served):
    h14, h15 = H9 + timedelta(hours=5), H9 + timedelta(hours=6)
    served.window(h14, 4, 1.0, np.full(ROWS // PER, 30.0))
    served.window(h15, 5, 1.0, np.full(ROWS // PER, 30.0))
    now = H9 + timedelta(hours=7, minutes=1)
    # `modelwatch collect` killed right after the first window's batch was committed to the
    # data repository (its MLflow run not yet written, the window not yet recorded)
    args, point = ["collect", "--now", now.isoformat()], "modelwatch.stores.versioning:commit:after"
    code, out = run_modelwatch(served.life.params, args, cli_env(), kill=point)
    assert code == -9 and "SIGKILL at modelwatch.stores.versioning:commit" in out, out
    assert served.run_of(h15) is None

    rows = served.collect(now=now)  # run again (in this process: the same flow the CLI runs)

    assert [(r["window"], r["state"]) for r in rows] == [
        ("20261205T140000Z", "Completed"),
        ("20261205T150000Z", "Completed"),
    ]
    client, exp = served.life.client, served.life.exps.monitoring
    for start in (h14, h15):
        batch_id = f"window-{start:%Y%m%dT%H%M%SZ}"
        found = [
            r
            for r in client.search_runs([exp], f"tags.batch_id = '{batch_id}'")
            if r.info.lifecycle_stage == "active"
        ]
        assert [r.info.status for r in found] == ["FINISHED"], batch_id
        assert found[0].data.metrics["system.latency_p95_ms"] == 30.0
        record = served.life.proj.ledger.batch_by_id(served.life.name, batch_id)
        assert record.done and record.status == "accepted"
    assert served.run_of(h15).index == served.run_of(h14).index + 1
    repo = served.life.proj.paths.data_repo
    log = subprocess.run(["git", "log", "--format=%s"], cwd=repo, capture_output=True, text=True)
    assert log.stdout.count("accept window-20261205T140000Z") == 1
    assert log.stdout.count("accept window-20261205T150000Z") == 1
