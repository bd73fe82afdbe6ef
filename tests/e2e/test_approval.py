"""Human approval of a promotion (promotion.approval: required), through real flows: the retrain
returns at once, a separate await-approval flow run (its own process, as in production) pauses
with Prefect's typed form; the test answers through Prefect's REST API as the UI does (POST
/flow_runs/{id}/resume with run_input), lets one approval time out, supersedes one, and SIGKILLs
the waiting process both while it waits and right after the answer moved the alias.

One project for the module (Prefect test server, MLflow SQLite, git+DVC): the scenario runs once
in the fixture, the tests check what it recorded.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from modelwatch import names
from modelwatch.app import approvals, prefect_rest
from modelwatch.app.status import status
from modelwatch.errors import ModelwatchError
from modelwatch.stores import ledger as ledger_mod
from modelwatch.stores import recovery, registry
from modelwatch.stores.project import open_project
from tests.e2e.test_lifecycle import Life

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
KILL_AFTER_MOVE = "modelwatch.stores.registry:promote:after"


def set_promotion(life: Life, **values: str) -> None:
    raw = yaml.safe_load(life.params.read_text())
    raw["promotion"].update(values)
    life.params.write_text(yaml.safe_dump(raw, sort_keys=False))


def approval_of(life: Life, version: str) -> ledger_mod.Event:
    proj = open_project(life.params)
    found = [
        e
        for e in proj.ledger.events_after(life.name, "approval", 0)
        if str(e.detail["candidate"]) == version
    ]
    assert len(found) == 1, found
    return found[0]


def wait_until(what, check, timeout: float = 150.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def paused_run(life: Life, version: str) -> str | None:
    """The id of the waiting flow run of a version's approval once it is Paused."""
    from prefect import get_client

    runs = approval_of(life, version).detail.get("flow_runs", [])
    if not runs:
        return None
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(runs[-1])
    return runs[-1] if run.state is not None and run.state.is_paused() else None


def kill_waiter(event: ledger_mod.Event) -> int:
    pid = int(event.owner.split(":")[0])
    os.killpg(pid, signal.SIGKILL)  # the waiter leads its own session
    wait_until("the waiter to die", lambda: not ledger_mod.owner_alive(event.owner), 30)
    return pid


def retrain(life: Life, reason: str):
    from flows.retrain import retrain as retrain_flow

    return retrain_flow(reason=reason, params_path=life.params, force=True)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """v1 champion; v2 times out (5 s); v3 waits, its waiter is SIGKILLed, v4 supersedes it;
    v4 is approved through the REST API, its waiter SIGKILLed right after the alias move;
    `modelwatch approvals` (the rerun) finishes it."""
    from prefect.settings import PREFECT_API_URL

    saved = dict(os.environ)
    os.environ["PREFECT_API_URL"] = str(PREFECT_API_URL.value())  # the waiters' server
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1"
    life = Life(tmp_path_factory.mktemp("approval"))  # LAX_PROMOTION: a better model passes
    set_promotion(life, approval="required", approval_timeout="5s")
    seen: dict = {}
    try:
        life.bootstrap()
        for k in (1, 2):
            life.monitor(k)
            life.labels(k)
        life.monitor(3)  # takes in the labels: a window with a batch v1 never saw
        seen["v2"] = retrain(life, "ticket 11: new data")
        seen["v2_state_on_return"] = approval_of(life, "2").state
        wait_until("v2 to time out", lambda: approval_of(life, "2").state == "finished")
        set_promotion(life, approval_timeout="10m")
        seen["v3"] = retrain(life, "ticket 12: again")
        seen["v3_run"] = wait_until("v3 to pause", lambda: paused_run(life, "3"))
        seen["champion_while_waiting"] = life.aliases()["champion"]
        seen["status_while_waiting"] = status(life.params)
        seen["killed_while_waiting"] = kill_waiter(approval_of(life, "3"))
        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests" / "faults"), str(ROOT)])
        os.environ["MODELWATCH_TEST_KILL"] = KILL_AFTER_MOVE  # for v4's waiter
        seen["v4"] = retrain(life, "ticket 13: newer")
        del os.environ["MODELWATCH_TEST_KILL"]
        run_id = wait_until("v4 to pause", lambda: paused_run(life, "4"))
        seen["v3_run_state"] = _state(seen["v3_run"])
        api = str(PREFECT_API_URL.value())
        form = {"decision": "approve", "reason": "card checked, segments fine", "by": "ana"}
        seen["resume"] = prefect_rest.call(api, f"/flow_runs/{run_id}/resume", {"run_input": form})
        v4 = approval_of(life, "4")
        wait_until("v4's waiter to be killed", lambda: not ledger_mod.owner_alive(v4.owner))
        seen["champion_after_kill"] = life.aliases()["champion"]
        seen["open_after_kill"] = approval_of(life, "4").state
        seen["rerun"] = approvals.list_pending(life.params)  # `modelwatch approvals`
        seen["rerun_again"] = approvals.list_pending(life.params)
        yield life, seen
    finally:
        proj = open_project(life.params)
        for event in proj.ledger.open_events(life.name, "approval"):
            if ledger_mod.owner_alive(event.owner):
                os.killpg(int(event.owner.split(":")[0]), signal.SIGKILL)
        os.environ.clear()
        os.environ.update(saved)


def _state(run_id: str) -> str:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).state.type.value


def version_tags(life: Life, version: str) -> dict[str, str]:
    return life.client.get_model_version(life.name, version).tags


def test_timeout_rejects_and_keeps_the_champion(scenario):
    life, seen = scenario
    assert seen["v2"].promote and seen["v2"].awaiting_approval
    event = approval_of(life, "2")
    assert event.outcome == ("rejected: timeout: no answer within 5s (promotion.approval_timeout)")
    tags = version_tags(life, "2")
    assert tags[names.APPROVAL] == "timeout" and tags[names.APPROVAL_BY] == "modelwatch"
    assert tags[names.PROMOTION] == "awaiting_approval"  # never promoted
    rec = [r for r in life.history().records() if r.to_version == "2" and r.alias == "champion"]
    assert [(r.state, r.approval) for r in rec] == [("aborted", "timeout")]
    assert "5s" in rec[0].approval_reason
    run = life.client.get_run(tags[names.TRAINING_RUN_ID])  # the run the decision is logged in
    assert run.data.tags[names.APPROVAL] == "timeout"


def test_waiting_leaves_the_old_champion_and_monitoring_free(scenario):
    life, seen = scenario
    # the retrain returned while its approval was pending: the pause lives in its own flow run
    assert seen["v2_state_on_return"] == "started"
    assert approval_of(life, "2").finished_at > approval_of(life, "2").started_at + 4
    assert seen["champion_while_waiting"] == "1"
    assert "pending approval: v3 (champion v1)" in seen["status_while_waiting"]


def test_newer_challenger_supersedes_a_pending_one(scenario):
    life, seen = scenario
    event = approval_of(life, "3")
    assert event.state == "finished" and event.outcome == "rejected: superseded by v4"
    assert version_tags(life, "3")[names.APPROVAL] == "superseded"
    assert seen["v3_run_state"] == "CANCELLED"  # its killed waiter's run is not left paused


def test_approved_through_the_ui_api_promotes_exactly_once_after_a_kill(scenario):
    life, seen = scenario
    assert seen["resume"]["status"] == "ACCEPT"
    assert seen["champion_after_kill"] == "4" and seen["open_after_kill"] == "started"
    assert seen["rerun"] == "v4: approved by ana: card checked, segments fine; promoted v4"
    assert seen["rerun_again"] == f"{life.name}: no pending approvals"
    aliases = life.aliases()
    assert (aliases["champion"], aliases["previous_champion"]) == ("4", "1")
    committed = [
        r
        for r in life.history().records()
        if r.state == "committed" and r.alias == "champion" and r.to_version == "4"
    ]
    assert len(committed) == 1
    rec = committed[0]
    assert (rec.approval, rec.approval_by, rec.approval_reason) == (
        "approved",
        "ana",
        "card checked, segments fine",
    )
    tags = version_tags(life, "4")
    assert tags[names.APPROVAL] == "approved" and tags[names.APPROVAL_BY] == "ana"
    assert tags[names.APPROVAL_REASON] == "card checked, segments fine"
    assert tags[names.PROMOTION] == "promoted"
    assert "Approval of version 4: approved" in (
        life.client.get_model_version(life.name, "4").description
    )
    proj = open_project(life.params)
    promotions = [
        e
        for e in proj.ledger.events_after(life.name, "promotion", 0)
        if str(e.detail["candidate"]) == "4"
    ]
    assert [e.state for e in promotions] == ["finished"]
    assert proj.ledger.get_meta(life.name, recovery.REFERENCE_FOR) == "4"
    assert recovery.probation_of(proj, registry.get_alias(life.client, life.name, "champion")) == (
        "active"
    )
    assert approval_of(life, "4").outcome.endswith("promoted v4")


def test_an_answer_for_nothing_pending_names_the_version(scenario):
    life, _ = scenario
    with pytest.raises(ModelwatchError, match=r"no pending approval for version 9 of bike-demand"):
        approvals.answer(life.params, "9", "approve", "x", "ana")
