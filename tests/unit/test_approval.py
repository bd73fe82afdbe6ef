"""promotion.approval settings and the approval's decision records (pure: no Prefect, no MLflow)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from modelwatch import names
from modelwatch.decide import approval
from modelwatch.decide.outcome import RetrainOutcome
from modelwatch.decide.promotion import PromotionDecision
from modelwatch.errors import ConfigError
from modelwatch.settings import load_settings, parse_duration
from modelwatch.stores.alias_history import AliasHistory

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 12, 5, 22, 0, tzinfo=UTC)


def params_with(tmp_path: Path, **promotion: object) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["promotion"].update(promotion)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_shipped_defaults_need_no_approval_and_wait_24h():
    for name in ("params.yaml", "params.bank.yaml"):
        promotion = load_settings(ROOT / name).settings.promotion
        assert (promotion.approval, promotion.approval_timeout) == ("none", 86400.0)


@pytest.mark.parametrize(
    ("given", "seconds"),
    [("24h", 86400), ("30m", 1800), ("90s", 90), ("2d", 172800), ("1.5h", 5400), (5, 5)],
)
def test_approval_timeout_takes_durations_and_seconds(tmp_path, given, seconds):
    path = params_with(tmp_path, approval="required", approval_timeout=given)
    promotion = load_settings(path).settings.promotion
    assert (promotion.approval, promotion.approval_timeout) == ("required", seconds)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("approval_timeout", "soon", "expected a duration such as 24h, 30m, 90s, 2d"),
        ("approval_timeout", "24 hours", "expected a duration such as 24h"),
        ("approval_timeout", 0, "expected a positive duration, got 0"),
        ("approval_timeout", -5, "expected a positive duration, got -5"),
        ("approval_timeout", True, "expected a duration such as 24h"),
        ("approval", "maybe", "Input should be 'none' or 'required'"),
    ],
)
def test_bad_approval_settings_name_file_key_and_value(tmp_path, key, value, expected):
    path = params_with(tmp_path, **{key: value})
    before = path.read_bytes()
    where = f"{path}: promotion.{key}: "
    with pytest.raises(ConfigError, match=re.escape(where) + ".*" + re.escape(expected)):
        load_settings(path)
    assert path.read_bytes() == before


def test_parse_duration_is_the_settings_parser():
    assert parse_duration(" 2H ") == 7200.0
    with pytest.raises(ValueError, match="got 'h'"):
        parse_duration("h")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(86400, "24h"), (172800, "2d"), (1800, "30m"), (3600, "1h"), (90, "90s"), (5, "5s")],
)
def test_format_duration(seconds, text):
    assert approval.format_duration(seconds) == text


def test_a_person_s_answer_is_recorded_with_who_and_why():
    got = approval.from_form("approve", " card checked ", " ana ", at=AT)
    assert got == approval.Answer("approved", "ana", "card checked", "2026-12-05T22:00:00+00:00")
    assert got.promotes and got.outcome() == "approved by ana: card checked"
    assert got.tags() == {
        names.APPROVAL: "approved",
        names.APPROVAL_BY: "ana",
        names.APPROVAL_REASON: "card checked",
        names.APPROVAL_AT: "2026-12-05T22:00:00+00:00",
    }
    assert approval.Answer.from_dict(got.to_dict()) == got
    no = approval.from_form("reject", "segment north worse", "bob", at=AT)
    assert not no.promotes and no.outcome() == "rejected by bob: segment north worse"
    assert no.markdown("7") == (
        "**Approval of version 7: rejected** by bob at 2026-12-05T22:00:00+00:00: "
        "segment north worse"
    )


@pytest.mark.parametrize(
    ("decision", "reason", "by", "expected"),
    [
        ("maybe", "r", "ana", "approval decision: expected approve or reject, got 'maybe'"),
        ("approve", "  ", "ana", "approval reason: must not be blank"),
        ("reject", "r", "", "approval by: must not be blank"),
    ],
)
def test_a_bad_answer_is_refused_naming_the_field(decision, reason, by, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        approval.from_form(decision, reason, by)


def test_timeout_and_supersession_are_rejections_that_say_why():
    late = approval.timed_out(5, at=AT)
    assert (late.verdict, late.by, late.promotes) == ("timeout", "modelwatch", False)
    assert late.outcome() == "rejected: timeout: no answer within 5s (promotion.approval_timeout)"
    newer = approval.superseded("9", at=AT)
    assert newer.outcome() == "rejected: superseded by v9" and not newer.promotes
    assert approval.remaining(100.0, 40.0) == 60.0 and approval.remaining(100.0, 140.0) == 0.0


def decision(**changes) -> PromotionDecision:
    base = PromotionDecision(
        promote=True,
        candidate_version="4",
        champion_version="1",
        metric="mae",
        candidate_score=9.0,
        champion_score=10.0,
        improvement=0.1,
        reasons=("mae: better",),
        decision_id="promotion-m-v4",
    )
    return PromotionDecision(**{**base.__dict__, **changes})


def test_a_held_promotion_keeps_the_champion_in_the_retrain_outcome():
    held = decision(awaiting_approval=True)
    assert PromotionDecision.from_dict(held.to_dict()) == held
    assert PromotionDecision.from_dict(decision().to_dict()).awaiting_approval is False
    assert held.summary().startswith("promote candidate version 4 over champion version 1 (awa")
    out = RetrainOutcome.from_decision(held)
    assert (out.kind, out.text) == ("kept", "kept v1: v4 awaits approval")
    assert RetrainOutcome.from_decision(decision()).text == "promoted v4"


def test_alias_history_keeps_the_approval_and_reads_older_records(tmp_path):
    hist = AliasHistory(tmp_path, "m", clock=lambda: AT)
    hist.append(
        action="promote", alias="champion", from_version=None, to_version="1", state="committed"
    )
    hist.append(
        action="promote",
        alias="champion",
        from_version="1",
        to_version="4",
        state="aborted",
        approval="rejected",
        approval_by="bob",
        approval_reason="segment north worse",
    )
    first, second = AliasHistory(tmp_path, "m").records()
    assert (first.approval, first.approval_by) == ("", "")
    assert (second.approval, second.approval_by, second.approval_reason) == (
        "rejected",
        "bob",
        "segment north worse",
    )
    assert hist.champion_at(AT) == "1"  # a rejection moves nothing
    raw = json.loads(first.to_line())
    for key in ("approval", "approval_by", "approval_reason"):
        del raw[key]  # as written before approvals existed
    hist.path.write_text(json.dumps(raw) + "\n" + second.to_line())
    assert [r.approval for r in AliasHistory(tmp_path, "m").records()] == ["", "rejected"]


def test_cli_parses_approve_and_reject():
    from modelwatch.app.cli import build_parser

    args = build_parser().parse_args(["approve", "v7", "--reason", "card checked", "--by", "ana"])
    assert (args.command, args.version, args.reason, args.by) == (
        "approve",
        "7",
        "card checked",
        "ana",
    )
    assert build_parser().parse_args(["reject", "7", "--reason", "no"]).by is None
    assert build_parser().parse_args(["approvals"]).wait is None


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["approve", "seven", "--reason", "x"], "expected a model version such as 7 or v7"),
        (["reject", "7", "--reason", "  "], "the reason must not be blank"),
        (["approve", "7"], "the following arguments are required: --reason"),
    ],
)
def test_cli_refuses_a_bad_answer_naming_it(capsys, argv, expected):
    from modelwatch.app.cli import build_parser

    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2 and expected in capsys.readouterr().err


def test_an_approval_event_is_claimed_by_one_live_process(tmp_path):
    """The waiter's claim: a live owner keeps it, a dead or absent one gives it up."""
    import subprocess
    import sys

    from modelwatch.stores import ledger

    led = ledger.Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    event = led.start_event("m", "approval", "ticket 1", step=3, detail={"candidate": "4"})
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert led.claim_event(event.id, owner=ledger.owner_token(other.pid))
        assert not led.claim_event(event.id)  # a live process waits for it
    finally:
        other.kill()
        other.wait()
    assert led.claim_event(event.id)  # its owner died: this process carries on
    assert led.get_event(event.id).owner == ledger.owner_token()
    promo = led.start_event("m", "promotion", "ticket 1", detail={"approval": event.id})
    assert [e.id for e in led.events_after("m", "promotion", event.id)] == [promo.id]
    assert led.events_after("m", "promotion", promo.id) == []
    led.finish_event(event.id, "rejected: superseded by v5")
    assert not led.claim_event(event.id)  # finished: nothing to wait for


def test_a_pending_approval_is_described_for_people():
    from modelwatch.app.approvals import describe
    from modelwatch.stores.ledger import Event

    event = Event(
        id=1,
        model="m",
        kind="approval",
        state="started",
        step=3,
        manual=False,
        reason="ticket 1",
        owner=None,
        detail={"candidate": "4", "champion": "1", "deadline": 5000.0, "flow_runs": ["abc"]},
    )
    assert describe(event, now=5000.0 - 1800) == (
        "pending approval: v4 (champion v1), 30m left, no waiter (restarted on demand), "
        "flow run abc; reason: ticket 1"
    )
