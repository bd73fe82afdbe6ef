"""Operating modelwatch: the served deployments, the incoming folder, manual retrains and the
one-at-a-time limit, through real flows on a temporary Prefect server."""

from __future__ import annotations

import shutil

import pytest

from tests.e2e.test_lifecycle import Life

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ops(tmp_path_factory):
    life = Life(tmp_path_factory.mktemp("ops"))
    life.bootstrap()
    return life


def test_deployments_schedule_and_typed_parameters(ops):
    from flows.serve import build_deployments

    monitor, retrain, rollback, collect = build_deployments(ops.params)
    assert (monitor.name, retrain.name, rollback.name) == ("monitor", "retrain", "rollback")
    # the prediction log's windows: hourly, one minute (serving.close_after_seconds) past the hour
    (collected,) = collect.schedules
    assert (collected.schedule.cron, collect.concurrency_limit) == ("1 * * * *", 1)
    (schedule,) = monitor.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 6 * * 1", "Europe/Berlin")
    assert monitor.concurrency_limit == 1
    schema = retrain._parameter_openapi_schema.model_dump()
    assert schema["required"] == ["reason"]
    props = schema["properties"]
    assert props["reason"]["type"] == "string"
    assert props["force"]["type"] == "boolean"
    assert "who or what asks for the retrain" in props["reason"]["description"]
    assert "labelled batches" in props["window_batches"]["description"]
    assert rollback._parameter_openapi_schema.model_dump()["required"] == ["reason"]


def test_monitor_incoming_processes_the_folder_in_name_order(ops):
    from flows.incoming import monitor_incoming

    inbox = ops.loaded.paths.incoming_batches
    inbox.mkdir(parents=True, exist_ok=True)
    for k in (2, 1):  # arrival order differs from name order
        shutil.copy(ops.batches[k - 1].inputs, inbox / ops.batches[k - 1].inputs.name)
    shutil.copy(ops.batches[0].inputs, inbox / "zz-resent-batch-001.csv")  # same content again
    rows = monitor_incoming(params_path=ops.params)
    assert [r["file"] for r in rows] == [
        ops.batches[0].inputs.name,
        ops.batches[1].inputs.name,
        "zz-resent-batch-001.csv",
    ]
    assert [r["state"] for r in rows] == ["Completed", "Completed", "Skipped"]
    assert "already processed" in rows[2]["message"]
    assert list(inbox.glob("*.csv")) == []
    assert len(list((ops.loaded.paths.incoming / "processed").glob("*.csv"))) == 3
    assert monitor_incoming(params_path=ops.params) == []  # nothing waiting: a no-op
    # the run kept a progress bar (Prefect progress artifact) and its monitor runs carry tags
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter

    with get_client(sync_client=True) as client:
        (bar,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["incoming-progress"]))
        )
        assert (bar.type, bar.data) == ("progress", 100.0)
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name={"like_": "monitor-"}))
    # (the session's Prefect server also holds other modules' runs of the same batch names)
    tags = {}
    for r in runs:
        tags.setdefault(r.name, []).append(set(r.tags))
    first = tags[f"monitor-{ops.batches[0].batch_id}"]
    assert any({ops.name, "monitor", "accepted"} <= t for t in first), first
    assert any({ops.name, "monitor", "duplicate"} <= t for t in tags["monitor-zz-resent-batch-001"])


def test_manual_retrain_without_new_data_is_skipped_unless_forced(ops):
    from flows.retrain import retrain

    ops.labels(1)
    ops.labels(2)
    ops.monitor(3)  # ingests the labels: batches 1 and 2 are labelled
    first = retrain(reason="ops: first", params_path=ops.params, return_state=True)
    assert first.is_completed() and first.name == "Completed"
    again = retrain(reason="ops: again", params_path=ops.params, return_state=True)
    assert again.name == "Skipped" and "force=True" in again.message
    forced = retrain(
        reason="ops: forced",
        params_path=ops.params,
        force=True,
        window_batches=1,
        return_state=True,
    )
    assert forced.name == "Completed"


def test_one_retrain_or_rollback_per_model_at_a_time(ops):
    from prefect import get_client

    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name("promotion-bike-demand")
    assert limit.limit == 1
    assert limit.active_slots == 0  # released after every retrain above


def test_retrain_rejects_a_blank_reason_and_a_bad_window(ops):
    from flows.retrain import retrain

    blank = retrain(reason="  ", params_path=ops.params, return_state=True)
    assert blank.is_failed() and "needs a reason" in blank.message
    bad = retrain(reason="x", params_path=ops.params, window_batches=0, return_state=True)
    assert bad.is_failed() and "window_batches must be at least 1" in bad.message


def test_catch_up_cancels_missed_ticks_and_starts_one_run_that_drains_the_folder(ops):
    from datetime import UTC, datetime, timedelta

    from prefect import get_client
    from prefect.states import Pending, Scheduled

    from flows.serve import build_deployments, catch_up

    with get_client(sync_client=True) as client:
        assert catch_up(client) == []  # never served: no deployment, nothing missed
        deployment_id = build_deployments(ops.params)[0].apply()
        now = datetime.now(UTC)
        make = client.create_flow_run_from_deployment
        missed = make(deployment_id, state=Scheduled(scheduled_time=now - timedelta(days=7)))
        stuck = make(deployment_id, state=Pending())  # left by a serve process that stopped
        future = make(deployment_id, state=Scheduled(scheduled_time=now + timedelta(days=7)))
        cancelled = catch_up(client, now=now)
        assert set(cancelled) >= {missed.name, stuck.name}
        assert future.name not in cancelled
        for run in (missed, stuck):
            state = client.read_flow_run(run.id).state
            assert state.type.value == "CANCELLED"
            assert "missed while `modelwatch serve` was not running" in state.message
        assert client.read_flow_run(future.id).state.type.value == "SCHEDULED"
        runs = client.read_flow_runs()
        (extra,) = [r for r in runs if "catch-up" in r.tags]
        assert extra.deployment_id == deployment_id
        assert extra.state.type.value == "SCHEDULED"
        assert extra.expected_start_time <= datetime.now(UTC) + timedelta(seconds=5)  # runs now
