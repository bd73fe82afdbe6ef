"""MLflow adapter on a real SQLite tracking store: run searches page through every result, and
the monitoring timeline run is found once and keeps metric histories by step."""

from __future__ import annotations

import pytest

from modelwatch.stores import history, tracking


@pytest.fixture
def store(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("t", artifact_location=(tmp_path / "art").as_uri())
    return client, exp


def test_find_runs_pages_through_more_runs_than_one_search_answers(store):
    client, exp = store
    for k in range(1, 21):
        client.create_run(exp, tags={"batch_id": f"b{k:02d}", "batch_index": str(k)})
    client.create_run(exp, tags={"other": "x"})
    found = tracking.find_runs(client, exp, "tags.batch_id != ''", page_size=7)
    assert len(found) == 20
    assert len({r.info.run_id for r in found}) == 20
    assert [b.index for b in history.batch_runs(client, exp)] == list(range(1, 21))


def test_timeline_run_is_created_once_and_holds_points_by_step(store):
    client, exp = store
    timeline = tracking.timeline_run(client, exp, "m")
    assert tracking.timeline_run(client, exp, "m") == timeline  # created once
    for step, share in [(1, 0.2), (2, 0.5), (3, 0.4)]:
        tracking.log_timeline(
            client,
            timeline,
            {"drift_share": share, "drift.p_value.x": 0.01, "performance.mae.season.1": 3.0},
            step,
        )
    tracking.log_timeline(client, timeline, {"label_coverage": 1.0, "rows": None}, 2)
    (run,) = tracking.find_runs(client, exp, "tags.`modelwatch.timeline` = 'true'")
    assert run.info.run_name == "m-timeline"
    assert run.info.status == "FINISHED"
    points = client.get_metric_history(run.info.run_id, "drift_share")
    assert sorted((m.step, m.value) for m in points) == [(1, 0.2), (2, 0.5), (3, 0.4)]
    assert set(run.data.metrics) == {"drift_share", "label_coverage"}  # no per-column detail
    assert history.batch_runs(client, exp) == []  # never taken for a batch


def test_batch_ids_with_quotes_are_found_exactly(store):
    """MLflow's filter grammar has no escape inside a literal: ids with ' or " or both (and
    ids the LIKE fallback would also match) each find their own run."""
    client, exp = store
    ids = ["it's", 'say "hi"', "both ' and \"", "both _ and _", "plain"]
    for index, batch_id in enumerate(ids, start=1):
        client.create_run(exp, tags={"batch_id": batch_id, "batch_index": str(index)})
    for index, batch_id in enumerate(ids, start=1):
        found = history.find_by_batch_id(client, exp, batch_id)
        assert found is not None and (found.batch_id, found.index) == (batch_id, index)
    assert history.find_by_batch_id(client, exp, "it''s") is None
