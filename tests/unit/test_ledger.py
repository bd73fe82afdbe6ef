"""The ledger on a real SQLite database: claims, steps, resume, events, meta."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from modelwatch.stores import ledger as ledger_mod
from modelwatch.stores.ledger import Ledger, LedgerBusy


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield led
    led.close()


def test_new_batches_get_consecutive_steps_and_a_done_batch_is_reported_done(ledger):
    a = ledger.claim_batch("m", "md5-a", "batch-a")
    b = ledger.claim_batch("m", "md5-b", "batch-b")
    assert (a.kind, a.record.step, b.kind, b.record.step) == ("new", 1, "new", 2)
    ledger.advance("m", "md5-a", "done", status="accepted")
    again = ledger.claim_batch("m", "md5-a", "batch-a-copy")
    assert again.kind == "done" and again.record.step == 1 and again.record.status == "accepted"


def test_each_model_has_its_own_step_counter(ledger):
    assert ledger.claim_batch("m1", "x", "b").record.step == 1
    assert ledger.claim_batch("m2", "x", "b").record.step == 1


def test_a_batch_of_a_dead_owner_is_resumed_at_its_step_and_stage(ledger):
    ledger.claim_batch("m", "md5", "batch")
    ledger.advance("m", "md5", "versioned", data_commit="abc", metrics={"drift_share": 0.5})
    dead = subprocess.run([sys.executable, "-c", "pass"])  # a pid that has exited
    assert dead.returncode == 0
    with ledger.engine.begin() as conn:  # the owner of the unfinished batch died
        conn.execute(ledger_mod.batches.update().values(owner="999999999:1.000"))
    claim = ledger.claim_batch("m", "md5", "batch")
    assert claim.kind == "resumed"
    assert (claim.record.step, claim.record.stage, claim.record.data_commit) == (
        1,
        "versioned",
        "abc",
    )
    assert claim.record.attempts == 2 and claim.record.metrics == {"drift_share": 0.5}
    # a stage is never moved back, and metrics merge
    rec = ledger.advance("m", "md5", "scored", metrics={"estimated.mae": 3.0})
    assert rec.stage == "versioned" and rec.metrics == {"drift_share": 0.5, "estimated.mae": 3.0}


def test_a_batch_held_by_a_live_process_is_refused_with_its_pid(ledger):
    ledger.claim_batch("m", "md5", "batch")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        token = ledger_mod.owner_token(sleeper.pid)
        with ledger.engine.begin() as conn:
            conn.execute(ledger_mod.batches.update().values(owner=token))
        with pytest.raises(LedgerBusy, match=rf"being processed by process {sleeper.pid} \(step 1"):
            ledger.claim_batch("m", "md5", "batch")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert ledger.claim_batch("m", "md5", "batch").kind == "resumed"


def test_owner_tokens_tell_a_reused_pid_apart():
    me = ledger_mod.owner_token()
    pid, _, start = me.partition(":")
    assert ledger_mod.owner_alive(me)
    assert not ledger_mod.owner_alive(f"{pid}:{float(start) - 100:.3f}")
    assert not ledger_mod.owner_alive(None)


def _claim_many(args):
    url, worker, count = args
    led = Ledger(url)
    steps = [led.claim_batch("m", f"w{worker}-{i}", f"b{i}").record.step for i in range(count)]
    led.close()
    return steps


def test_steps_claimed_by_concurrent_processes_are_distinct(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger(url).close()
    with ProcessPoolExecutor(3) as pool:
        results = list(pool.map(_claim_many, [(url, w, 15) for w in range(3)]))
    steps = sorted(s for r in results for s in r)
    assert steps == list(range(1, 46))


def test_only_finished_retrains_count(ledger):
    done = ledger.start_event("m", "retrain", "drift", step=4)
    ledger.finish_event(done.id, "promoted")
    broken = ledger.start_event("m", "retrain", "manual", step=6, manual=True)
    ledger.finish_event(broken.id, "interrupted: process died", state="interrupted")
    ledger.start_event("m", "retrain", "still running", step=7)
    assert ledger.retrain_steps("m", since_step=0) == (4,)
    assert ledger.retrain_steps("m", since_step=5) == ()
    assert [e.step for e in ledger.open_events("m", "retrain")] == [7]


def test_event_detail_merges(ledger):
    ev = ledger.start_event("m", "promotion", "v2 beats v1", detail={"candidate": "2"})
    ledger.update_event(ev.id, {"alias_moved": True})
    assert ledger.open_events("m", "promotion")[0].detail == {"candidate": "2", "alias_moved": True}


def test_recent_and_unevaluated_queries_read_only_what_they_need(ledger):
    for i in range(1, 8):
        ledger.claim_batch("m", f"md5-{i}", f"b{i}")
        status = "rejected" if i == 3 else "accepted"
        ledger.advance(
            "m", f"md5-{i}", "done", status=status, champion_version="1" if i < 5 else "2"
        )
    ledger.update_batch("m", 2, evaluated=True, metrics={"performance.mae": 2.0})
    ledger.update_batch("m", 4, evaluated=True, metrics={"performance.mae": 4.0})
    assert [b.step for b in ledger.recent_accepted("m", 3)] == [5, 6, 7]
    assert [b.step for b in ledger.recent_accepted("m", 2, before_step=5)] == [2, 4]
    assert [b.step for b in ledger.unevaluated("m")] == [1, 5, 6, 7]
    assert ledger.latest_evaluated("m", "1", before_step=10).metrics == {"performance.mae": 4.0}
    assert ledger.latest_evaluated("m", "2", before_step=10) is None
    assert ledger.first_scored_by("m", "2").step == 5
    assert ledger.batch_by_id("m", "b6").step == 6


def test_meta_values_are_set_and_replaced(ledger):
    assert ledger.get_meta("m", "reference_for_version") is None
    ledger.set_meta("m", "reference_for_version", "3")
    ledger.set_meta("m", "reference_for_version", "4")
    ledger.set_meta("other", "reference_for_version", "1")
    assert ledger.get_meta("m", "reference_for_version") == "4"


def test_a_released_batch_is_resumed_by_another_process_while_its_owner_lives(ledger):
    """A flow that raised (not killed) frees its batch: `serve` lives on, the CLI may rerun."""
    ledger.claim_batch("m", "md5", "batch")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with ledger.engine.begin() as conn:
            conn.execute(
                ledger_mod.batches.update().values(owner=ledger_mod.owner_token(sleeper.pid))
            )
        ledger.release("m", "md5", "ValueError: boom")
        claim = ledger.claim_batch("m", "md5", "batch")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert claim.kind == "resumed" and claim.record.error == "ValueError: boom"


def test_released_events_of_this_process_look_dead_to_recovery(ledger):
    ev = ledger.start_event("m", "promotion", "v2 beats v1", detail={"candidate": "2"})
    assert ledger_mod.owner_alive(ledger.open_events("m")[0].owner)
    assert ledger.release_events("m") == 1
    (still,) = ledger.open_events("m")
    assert still.id == ev.id and not ledger_mod.owner_alive(still.owner)


def _append_alerts(url: str, who: str, n: int) -> None:
    led = Ledger(url)
    for i in range(n):
        led.update_alerts(
            "m", lambda state, outbox, i=i: (state, [*outbox, {"who": who, "i": i}], None)
        )
    led.close()


def test_incidents_and_outbox_change_in_one_serialised_transaction(tmp_path):
    """Three processes append to the outbox at once: no update is lost (each read-modify-write
    holds the write lock from its read on)."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger(url).close()
    with ProcessPoolExecutor(3) as pool:
        list(pool.map(_append_alerts, [url] * 3, ["a", "b", "c"], [20] * 3))
    state, outbox = Ledger(url).alerts("m")
    assert state == {}
    assert sorted((e["who"], e["i"]) for e in outbox) == [(w, i) for w in "abc" for i in range(20)]


def test_a_failed_alert_update_changes_nothing(ledger):
    ledger.update_alerts("m", lambda s, o: ({"version": 1, "open": {}}, [{"x": 1}], None))

    def broken(state, outbox):
        raise RuntimeError("killed mid-way")

    with pytest.raises(RuntimeError):
        ledger.update_alerts("m", broken)
    assert ledger.alerts("m") == ({"version": 1, "open": {}}, [{"x": 1}])
    assert ledger.alerts("other") == ({}, [])


def test_a_batch_resent_under_another_name_resumes_under_its_first_name(ledger):
    """Its files are versioned under the first name: the resumed attempt must find them."""
    ledger.claim_batch("m", "md5", "batch-001")
    ledger.advance("m", "md5", "versioned", data_commit="abc")
    ledger.release("m", "md5", "KeyError: x")
    claim = ledger.claim_batch("m", "md5", "zz-resent-batch-001")
    assert (claim.kind, claim.record.batch_id, claim.record.step) == ("resumed", "batch-001", 1)


def test_staleness_inputs_count_accepted_batches_and_the_last_challenge(ledger):
    for step, status in enumerate(["accepted", "rejected", "accepted", "accepted"], start=1):
        ledger.claim_batch("m", f"md5-{step}", f"b{step}")
        ledger.advance("m", f"md5-{step}", "done", status=status)
    assert ledger.count_accepted("m", after_step=0, before_step=5) == 3  # the rejected one not
    assert ledger.count_accepted("m", after_step=1, before_step=4) == 1
    assert ledger.last_challenge_step("m", before_step=5) is None
    kept = ledger.start_event("m", "retrain", "drift", step=2)
    ledger.finish_event(kept.id, "kept v1", detail={"outcome_kind": "kept"})
    skipped = ledger.start_event("m", "retrain", "drift", step=3)
    ledger.finish_event(skipped.id, "skipped (no new labels)", detail={"outcome_kind": "skipped"})
    assert ledger.last_challenge_step("m", before_step=5) == 2  # skipped is no challenge
    assert ledger.last_challenge_step("m", before_step=2) is None


def test_challenges_are_the_newest_compared_retrains_with_their_gains_oldest_first(ledger):
    for step, kind, gain in [
        (2, "kept", -0.05),
        (4, "promoted", 0.2),
        (5, "skipped", None),
        (6, "kept", 0.01),
        (8, "kept", -0.02),
    ]:
        event = ledger.start_event("m", "retrain", "drift", step=step)
        detail = {"outcome_kind": kind} | ({"gain": gain} if gain is not None else {})
        ledger.finish_event(event.id, kind, detail=detail)
    old = ledger.start_event("m", "retrain", "drift", step=1)  # recorded before gains were kept
    ledger.finish_event(old.id, "kept v1", detail={"outcome_kind": "kept"})
    assert ledger.challenges("m", before_step=9, limit=3) == [
        (4, 0.2, True),
        (6, 0.01, False),
        (8, -0.02, False),
    ]
    assert ledger.challenges("m", before_step=6, limit=10) == [(2, -0.05, False), (4, 0.2, True)]
    assert ledger.challenges("other", before_step=9, limit=3) == []


def test_evaluated_by_gives_a_champions_newest_labelled_batches_oldest_first(ledger):
    for step, champion in enumerate(["1", "1", "2", "2", "2", "2"], start=1):
        md5 = f"md5-{step}"
        ledger.claim_batch("m", md5, f"b{step}")
        ledger.advance("m", md5, "done", status="accepted", champion_version=champion)
        if step != 5:  # batch 5's labels have not arrived
            ledger.update_batch("m", step, evaluated=True, metrics={"performance.mae": step})
    found = ledger.evaluated_by("m", "2", before_step=7, limit=2)
    assert [(b.step, b.metrics["performance.mae"]) for b in found] == [(4, 4), (6, 6)]
    assert [b.step for b in ledger.evaluated_by("m", "2", before_step=6, limit=5)] == [3, 4]
