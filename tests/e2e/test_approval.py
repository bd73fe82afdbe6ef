"""Human approval of a promotion (promotion.approval: required), through real flows: the retrain
returns at once, a separate await-approval flow run (its own process, as in production) pauses
with Prefect's typed form; the test answers through Prefect's REST API as the UI does (POST
/flow_runs/{id}/resume with run_input), lets one approval time out, supersedes one, and SIGKILLs
the waiting process both while it waits and right after the answer moved the alias.

Then (fixture `shadowed`, the same project): a deliberately bad challenger (max_iter 1, let
through by a lax holdout threshold) waits for approval while a real `modelwatch serve-model`
scores it in shadow on live traffic; the window is collected, labels arrive by request id,
`modelwatch approvals` shows the live evidence, and the approval is refused because the
challenger is worse live (promotion.live_shadow), with its waiter SIGKILLed between judging
the evidence and acting, and the rerun finishing it once.

One project for the module (Prefect test server, MLflow SQLite, git+DVC): the scenario runs once
in the fixture, the tests check what it recorded.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from sklearn.metrics import mean_absolute_error

from modelwatch import names
from modelwatch.app import approvals, prefect_rest
from modelwatch.app.status import status
from modelwatch.errors import ModelwatchError
from modelwatch.performance.metrics import format_number as fmt
from modelwatch.stores import ledger as ledger_mod
from modelwatch.stores import recovery, registry
from modelwatch.stores.project import open_project
from tests.e2e.serving_setup import free_port, launch_service, stop_service, wait_ready
from tests.e2e.test_lifecycle import Life

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
KILL_AFTER_MOVE = "modelwatch.stores.registry:promote:after"
KILL_AFTER_JUDGING = "tasks.approval:judge_live:after"  # evidence kept, nothing moved yet


def set_section(life: Life, section: str, **values: object) -> None:
    raw = yaml.safe_load(life.params.read_text())
    raw[section].update(values)
    life.params.write_text(yaml.safe_dump(raw, sort_keys=False))


def set_promotion(life: Life, **values: object) -> None:
    set_section(life, "promotion", **values)


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


# ------------------------------------------------ live shadow evidence at approval (issue 16)

LIVE_ROWS = 32  # served rows: 8 requests of 4 (validation.min_rows is 24)
MIN_ROWS = 20  # promotion.live_shadow.min_rows


def _form_description(event: ledger_mod.Event) -> str:
    """The text the Prefect UI shows above the paused run's Resume form."""
    from prefect.input.actions import read_flow_run_input
    from prefect.input.run_input import keyset_from_base_key

    from tasks.approval import pause_key

    key = keyset_from_base_key(f"paused-{pause_key(event.id)}")["description"]
    return read_flow_run_input(key, flow_run_id=event.detail["flow_runs"][-1])


def resume(api: str, run_id: str, form: dict) -> dict:
    """POST /flow_runs/{id}/resume as the UI does, again after a 503: the test server's SQLite
    answers "database is locked" under load (seen once on a loaded 2-core machine), a refused
    state change that changed nothing; Prefect's own client retries 503 the same way."""
    import urllib.error

    for attempt in range(5):
        try:
            return prefect_rest.call(api, f"/flow_runs/{run_id}/resume", {"run_input": form})
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or attempt == 4:
                raise
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def shadowed(scenario, tmp_path_factory):
    """After the scenario (champion v4): v5, a deliberately bad model, waits for approval with
    promotion.live_shadow {min_rows: 20, max_worse: 0.05}; the service scores it in shadow on
    every request of 32 rows of demo batch 4; the window is collected, labels keyed by the
    returned request ids are taken in by the next monitor run; ana approves; the waiter is
    SIGKILLed right after it judged the evidence; `modelwatch approvals` finishes it."""
    from prefect.settings import PREFECT_API_URL

    from flows.predictions import collect_predictions

    life, _ = scenario
    folder = tmp_path_factory.mktemp("shadowed")
    set_promotion(
        life,
        approval_timeout="10m",
        min_absolute_change=None,  # a value threshold only: the bad model passes the holdout
        threshold=1e6,
        live_shadow={"min_rows": MIN_ROWS, "max_worse": 0.05},
    )
    hyper = {"max_iter": 1, "learning_rate": 0.01, "min_samples_leaf": 10}  # nearly a constant
    set_section(life, "training", hyperparameters=hyper)
    serving = {"shadow_share": 1.0, "flush_seconds": 0.3, "reload_seconds": 0.5}
    set_section(life, "serving", close_after_seconds=1, **serving)
    seen: dict = {}
    port, log = free_port(), folder / "service.log"
    proc = launch_service(life.params, port, log)  # it loads while v5 trains
    try:
        os.environ["MODELWATCH_TEST_KILL"] = KILL_AFTER_JUDGING  # for v5's waiter only
        seen["v5"] = retrain(life, "ticket 14: a model nobody should ship")
        del os.environ["MODELWATCH_TEST_KILL"]
        shadowing = lambda r: r.json().get("challenger_version") == "5"  # noqa: E731
        seen["ready"] = wait_ready(proc, port, log, until=shadowing).json()  # hot-reloaded
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        seen["approvals_before"] = approvals.list_pending(life.params)  # no rows yet
        data = life.loaded.settings.data
        sent = pd.read_csv(life.batches[3].inputs)[[data.id, data.timestamp, *data.features]]
        answers = []
        for k in range(0, LIVE_ROWS, 4):
            part = sent.iloc[k : k + 4]
            r = http.post("/predict", json={"dataframe_records": part.to_dict("records")})
            assert r.status_code == 200, r.text
            answers.append(
                pd.DataFrame(
                    {
                        "request_id": r.json()["request_id"],
                        "row": range(len(part)),
                        data.id: part[data.id].to_numpy(),
                    }
                )  # fmt: skip
            )
        http.close()
        assert stop_service(proc) == 0  # graceful: shadow scoring and the log are finished
        log_dir = life.loaded.paths.home / life.loaded.settings.serving.log_dir
        start = max(
            datetime.strptime(p.name.removeprefix("window="), "%Y%m%dT%H%M%SZ")
            for p in log_dir.glob("window=*")
        ).replace(tzinfo=UTC)
        collect_predictions(params_path=life.params, now=start + timedelta(hours=1, seconds=2))
        answered = pd.concat(answers, ignore_index=True)
        truth = pd.read_csv(life.batches[3].labels).set_index(data.id)[data.target]
        labels = answered[["request_id", "row"]].assign(
            **{data.target: truth.loc[answered[data.id]].to_numpy()}
        )
        labels.to_csv(life.loaded.paths.incoming_labels / "served-labels.csv", index=False)
        life.monitor(5)  # takes the labels in: the window's rows are labelled now
        seen["rows"] = pd.concat(
            pd.read_parquet(p) for p in (log_dir / "collected").rglob("rows-*.parquet")
        ).merge(labels, on=["request_id", "row"])
        seen["approvals_with_evidence"] = approvals.list_pending(life.params)
        run_id = wait_until("v5 to pause", lambda: paused_run(life, "5"))  # long since, usually
        seen["description"] = _form_description(approval_of(life, "5"))
        form = {"decision": "approve", "reason": "looks fine to me", "by": "ana"}
        api = str(PREFECT_API_URL.value())
        seen["resume"] = resume(api, run_id, form)
        v5 = approval_of(life, "5")
        wait_until("v5's waiter to be killed", lambda: not ledger_mod.owner_alive(v5.owner))
        seen["answer_after_kill"] = approval_of(life, "5").detail.get("answer")
        seen["state_after_kill"] = approval_of(life, "5").state
        seen["rerun"] = approvals.list_pending(life.params)  # `modelwatch approvals`
        seen["rerun_again"] = approvals.list_pending(life.params)
        yield life, seen
    finally:
        os.environ.pop("MODELWATCH_TEST_KILL", None)
        if proc is not None:
            stop_service(proc)


def test_at_retrain_the_live_check_says_it_is_evaluated_at_approval(shadowed):
    _, seen = shadowed
    assert seen["v5"].promote and seen["v5"].awaiting_approval  # the lax holdout let it through
    (check,) = [c for c in seen["v5"].checks if c.name == "live_shadow"]
    assert check.sentence.startswith("live shadow: evaluated at approval: candidate version 5")
    assert "skipped" not in check.sentence


def test_the_waiting_challenger_is_shadowed_and_its_evidence_shown_in_the_form_and_cli(shadowed):
    _, seen = shadowed
    assert (seen["ready"]["model_version"], seen["ready"]["challenger_version"]) == ("4", "5")
    assert f"live shadow: not enough rows yet: 0 of {MIN_ROWS}" in seen["approvals_before"]
    # what the Prefect UI shows on Resume: the evidence as of the pause (it paused while the
    # traffic was served and collected, so before or after the labels came)
    description = seen["description"]
    assert "**Live evidence** (as of " in description and "evaluated again" in description
    lines = seen["approvals_with_evidence"].splitlines()
    assert f"not enough rows yet: 0 of {MIN_ROWS}" in description or lines[1].strip() in (
        description
    ), description
    rows = seen["rows"]  # every served row, scored in shadow by v5, labelled by request id
    assert len(rows) == LIVE_ROWS and set(rows["shadow_version"]) == {"5"}
    # reference: sklearn's MAE of each model's logged answers on the same labelled rows
    champion = mean_absolute_error(rows["cnt"], rows["prediction"])
    challenger = mean_absolute_error(rows["cnt"], rows["shadow.prediction"])
    assert challenger > 1.05 * champion  # the planted bad model is worse live
    assert lines[0].startswith("pending approval: v5 (champion v4)")
    assert lines[1].startswith(
        f"  live shadow: candidate version 5 mae {fmt(challenger)} vs {fmt(champion)} for champion "
        f"version 4 on the same {LIVE_ROWS} labelled production rows of 1 batch(es)"
    ), lines
    assert lines[1].endswith("(> 5% allowed, promotion.live_shadow.max_worse): fail")


def test_an_approval_against_the_live_evidence_is_not_promoted_exactly_once_after_a_kill(
    shadowed,
):
    life, seen = shadowed
    assert seen["resume"]["status"] == "ACCEPT"
    # killed after judging: the judged answer is kept, nothing acted on yet
    kept = seen["answer_after_kill"]
    assert seen["state_after_kill"] == "started" and kept["live_shadow_blocks"] is True
    said = kept["live_shadow"]
    outcome = (
        "approved by ana: looks fine to me; not promoted because of the live shadow evidence: "
        + said
    )
    assert seen["rerun"] == f"v5: {outcome}"
    assert seen["rerun_again"] == f"{life.name}: no pending approvals"
    assert approval_of(life, "5").outcome == outcome
    assert life.aliases()["champion"] == "4"
    records = [r for r in life.history().records() if r.to_version == "5"]
    champion = [r for r in records if r.alias == "champion"]
    assert [(r.state, r.approval, r.approval_by, r.approval_reason) for r in champion] == [
        ("aborted", "approved", "ana", "looks fine to me")
    ]
    assert "live shadow evidence" in champion[0].note
    tags = version_tags(life, "5")
    assert tags[names.APPROVAL] == "approved" and tags[names.APPROVAL_BY] == "ana"
    assert tags[names.PROMOTION] == "not_promoted_live_shadow"
    assert tags[names.APPROVAL_LIVE_SHADOW] == said and said.endswith("fail")
    description = life.client.get_model_version(life.name, "5").description
    assert description.count("Not promoted because of the live shadow evidence") == 1
    run = life.client.get_run(tags[names.TRAINING_RUN_ID])  # the decision's run
    assert run.data.tags[names.PROMOTION] == "not_promoted_live_shadow"
    assert run.data.tags[names.APPROVAL_LIVE_SHADOW] == said
    proj = open_project(life.params)
    assert not [
        e
        for e in proj.ledger.events_after(life.name, "promotion", 0)
        if str(e.detail["candidate"]) == "5"
    ]
