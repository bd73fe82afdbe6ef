"""The ledger on a real PostgreSQL server (the machine's, 127.0.0.1:5432, user postgres; another
server through MODELWATCH_TEST_PG_URL): the same code as on SQLite, in a database made for the
test and dropped after it."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ProcessPoolExecutor

import pytest
import sqlalchemy as sa

from modelwatch.stores.ledger import Ledger
from tests.unit.test_ledger import _append_alerts, _claim_many

SERVER = os.environ.get(
    "MODELWATCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def pg_url():
    name = f"modelwatch_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(SERVER, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {SERVER} is not reachable (set MODELWATCH_TEST_PG_URL): {exc}")
    url = sa.engine.make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_steps_claimed_by_concurrent_processes_are_distinct_on_postgresql(pg_url):
    Ledger(pg_url).close()
    with ProcessPoolExecutor(3) as pool:
        results = list(pool.map(_claim_many, [(pg_url, w, 15) for w in range(3)]))
    assert sorted(s for r in results for s in r) == list(range(1, 46))


def test_the_first_claims_of_a_model_race_for_its_counter_row(pg_url):
    """No counter row yet: concurrent first claims must still get 1, 2, 3 (not an error)."""
    Ledger(pg_url).close()
    with ProcessPoolExecutor(3) as pool:
        results = list(pool.map(_claim_many, [(pg_url, w, 1) for w in range(3)]))
    assert sorted(s for r in results for s in r) == [1, 2, 3]


def test_alert_updates_from_concurrent_processes_are_all_kept_on_postgresql(pg_url):
    Ledger(pg_url).close()
    with ProcessPoolExecutor(3) as pool:
        list(pool.map(_append_alerts, [pg_url] * 3, ["a", "b", "c"], [15] * 3))
    led = Ledger(pg_url)
    assert sorted((e["who"], e["i"]) for e in led.alerts("m")[1]) == [
        (w, i) for w in "abc" for i in range(15)
    ]
    led.close()


def test_batches_events_and_meta_round_trip_on_postgresql(pg_url):
    led = Ledger(pg_url)
    claim = led.claim_batch("m", "md5-a", "batch-a")
    led.advance("m", "md5-a", "versioned", data_commit="abc", metrics={"drift_share": 0.5})
    led.advance("m", "md5-a", "done", status="accepted")
    assert led.claim_batch("m", "md5-a", "again").kind == "done"
    assert claim.record.step == 1
    event = led.start_event("m", "retrain", "drift", step=1)
    led.finish_event(event.id, "promoted v2", detail={"outcome_kind": "promoted"})
    assert led.finished_at("m", "retrain", 1).detail["outcome_kind"] == "promoted"
    led.set_meta("m", "k", "v1")
    led.set_meta("m", "k", "v2")
    assert led.get_meta("m", "k") == "v2"
    led.close()
