"""Alerts from real monitor-batch runs reach a local webhook receiver, once per incident."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelwatch.stores.ledger import open_ledger
from tests.e2e.test_lifecycle import Life
from tests.integration.test_delivery import receiver  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[1] / "data"


def test_bad_batches_open_one_incident_and_a_good_batch_resolves_it(tmp_path, receiver):  # noqa: F811
    from flows.monitor import monitor_batch

    hook = {"name": "ops", "url": f"{receiver.base}/hook", "min_severity": "info"}
    life = Life(tmp_path, alerts={"webhooks": [hook]})
    life.bootstrap()
    states = []
    for bad in ("bike_out_of_range.csv", "bike_wrong_dtype.csv"):
        target = life.loaded.paths.incoming_batches / bad
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / bad, target)
        states.append(monitor_batch(batch_path=target, params_path=life.params, return_state=True))
    assert [s.name for s in states] == ["Rejected", "Rejected"]
    after_bad = list(receiver.bodies("/hook"))
    life.monitor(1)
    sent = receiver.bodies("/hook")
    # the first rejection opens the incident (critical); the second, while it lasts, sends nothing
    assert len(after_bad) == 1
    assert "critical" in after_bad[0]["text"].lower() or "rejected" in after_bad[0]["text"].lower()
    assert all(set(body) >= {"text", "blocks"} for body in sent)
    # the next good batch resolves it (one "resolved" alert)
    resolved = [b for b in sent[1:] if "resolved" in b["text"].lower()]
    assert len(resolved) == 1
    run = life.run_of(1)
    assert run.tags["alerts_failed"] == "0"


def test_an_alert_the_webhook_refused_is_delivered_with_the_next_batch(tmp_path, receiver):  # noqa: F811
    import yaml

    from flows.monitor import monitor_batch

    hook = {"name": "ops", "url": f"{receiver.base}/fail", "min_severity": "info"}
    life = Life(tmp_path, alerts={"webhooks": [hook]})
    life.bootstrap()
    target = life.loaded.paths.incoming_batches / "bike_out_of_range.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / "bike_out_of_range.csv", target)
    assert monitor_batch(batch_path=target, params_path=life.params, return_state=True).name == (
        "Rejected"
    )
    ledger = open_ledger(life.loaded.paths.ledger_url)
    (waiting,) = ledger.alerts(life.name)[1]
    assert (waiting["webhook"], waiting["attempts"]) == ("ops", 1)
    assert waiting["reason"] == "HTTP 500 Internal Server Error: boom"
    # the webhook is fixed (same name, working address); the next batch delivers what waited
    raw = yaml.safe_load(life.params.read_text())
    raw["alerts"]["webhooks"][0]["url"] = f"{receiver.base}/hook"
    life.params.write_text(yaml.safe_dump(raw, sort_keys=False))
    life.monitor(1)
    texts = receiver.titles("/hook")
    assert texts[0] == waiting["alert"]["severity"].join(["[", "] "]) + waiting["alert"]["title"]
    assert any("resolved" in t.lower() for t in texts[1:])
    assert ledger.alerts(life.name)[1] == []
    run = life.run_of(1)
    assert run.tags["alerts_failed"] == "0"


def test_alert_files_of_an_earlier_version_are_taken_over_by_the_ledger(tmp_path, receiver):  # noqa: F811
    """Projects from before the ledger kept incidents and the outbox in JSON files: the first
    alert of the new version takes both over (an open incident stays open, a waiting alert is
    delivered) and renames the files *.imported."""
    from modelwatch.alerts import delivery, incidents

    hook = {"name": "ops", "url": f"{receiver.base}/hook", "min_severity": "info"}
    life = Life(tmp_path, alerts={"webhooks": [hook]})
    life.bootstrap()
    folder = life.loaded.paths.registry_dir
    waiting = incidents.Alert("batch_rejected", "warning", "an old alert", "- waited", "w0", 0)
    delivery.save_outbox(
        folder / f"{life.name}.alert-outbox.json", [delivery.Pending("ops", waiting, 1, "down")]
    )
    record = {"severity": "critical", "title": "bad data", "opened_index": 0,
              "opened_batch_id": "w0", "last_sent_index": 0}  # fmt: skip
    old = incidents.IncidentState.from_dict(
        {"version": 1, "open": {incidents.VALIDATION_INCIDENT: record}}
    )
    delivery.save_state(folder / f"{life.name}.incidents.json", old)
    life.monitor(1)
    assert receiver.titles("/hook")[0] == "[warning] an old alert"
    assert any("resolved" in t.lower() for t in receiver.titles("/hook")[1:])
    assert sorted(p.name for p in folder.glob("*.imported")) == [
        f"{life.name}.alert-outbox.json.imported",
        f"{life.name}.incidents.json.imported",
    ]
    assert open_ledger(life.loaded.paths.ledger_url).alerts(life.name)[1] == []
