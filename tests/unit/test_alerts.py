"""Alerts: incident tracking (open, still open, escalate, resolve, repeat), the alerts each event
gives, the Slack payload, and the alerts section of params.yaml."""

import json
import subprocess
import sys

import pytest

from modelwatch.alerts import incidents
from modelwatch.alerts.incidents import (
    Alert,
    Findings,
    IncidentState,
    OpenIncident,
    track_incidents,
)
from modelwatch.decide import policy
from modelwatch.decide.probation import ProbationVerdict
from modelwatch.decide.promotion import PromotionDecision
from modelwatch.errors import ConfigError
from modelwatch.settings import AlertSettings, RetrainSettings, load_settings
from modelwatch.stores.validation import ValidationFailure, ValidationResult
from tests.conftest import write_params


def alert(key: str | None, severity: str = "warning", index: int = 5) -> Alert:
    return Alert(
        "rule_violated", severity, f"{key} {severity}", "why", f"b{index}", index, key, {"k": "v"}
    )


def opened(key: str, severity: str, at: int, last: int | None = None) -> OpenIncident:
    return OpenIncident(
        key, severity, f"{key} {severity}", at, f"b{at}", at if last is None else last
    )


RULES = frozenset({"drift", "performance", "staleness"})  # estimated: unknown for regression

# (open before, alerts of batch 5 as (key, severity), keys checked, repeat_after_batches,
#  sent as (kind, key, severity), open after as {key: (severity, opened, last sent)})
CASES = {
    "opens": (
        [],
        [("drift", "warning")],
        RULES,
        None,
        [("rule_violated", "drift", "warning")],
        {"drift": ("warning", 5, 5)},
    ),
    "still open, not sent again": (
        [opened("drift", "warning", 2)],
        [("drift", "warning")],
        RULES,
        None,
        [],
        {"drift": ("warning", 2, 2)},
    ),
    "escalates warning -> critical": (
        [opened("drift", "warning", 2)],
        [("drift", "critical")],
        RULES,
        None,
        [("rule_violated", "drift", "critical")],
        {"drift": ("critical", 2, 5)},
    ),
    "falls back critical -> warning, silently": (
        [opened("drift", "critical", 2)],
        [("drift", "warning")],
        RULES,
        None,
        [],
        {"drift": ("critical", 2, 2)},
    ),
    "resolves when checked and quiet": (
        [opened("drift", "warning", 2)],
        [],
        RULES,
        None,
        [("resolved", "drift", "info")],
        {},
    ),
    "stays open when not checked": (
        [opened("drift", "warning", 2)],
        [("validation", "critical")],
        frozenset({"validation"}),
        None,
        [("rule_violated", "validation", "critical")],
        {"drift": ("warning", 2, 2), "validation": ("critical", 5, 5)},
    ),
    "repeats after N batches": (
        [opened("drift", "warning", 1, last=3)],
        [("drift", "warning")],
        RULES,
        2,
        [("rule_violated", "drift", "warning")],
        {"drift": ("warning", 1, 5)},
    ),
    "does not repeat before N batches": (
        [opened("drift", "warning", 1, last=4)],
        [("drift", "warning")],
        RULES,
        2,
        [],
        {"drift": ("warning", 1, 4)},
    ),
    "never repeats without repeat_after_batches": (
        [opened("drift", "warning", 1, last=1)],
        [("drift", "warning")],
        RULES,
        None,
        [],
        {"drift": ("warning", 1, 1)},
    ),
    "an event is always sent and opens nothing": (
        [],
        [(None, "info"), (None, "info")],
        frozenset(),
        None,
        [("rule_violated", None, "info"), ("rule_violated", None, "info")],
        {},
    ),
    "one opens, one stays, one resolves": (
        [opened("drift", "warning", 2), opened("staleness", "info", 3)],
        [("drift", "warning"), ("performance", "critical")],
        RULES,
        None,
        [("rule_violated", "performance", "critical"), ("resolved", "staleness", "info")],
        {"drift": ("warning", 2, 2), "performance": ("critical", 5, 5)},
    ),
}


@pytest.mark.parametrize(
    ("before", "raised", "checked", "repeat", "want_sent", "want_open"),
    list(CASES.values()),
    ids=list(CASES),
)
def test_track_incidents(before, raised, checked, repeat, want_sent, want_open):
    state = IncidentState({i.key: i for i in before})
    findings = Findings(tuple(alert(k, s) for k, s in raised), checked)
    sent, after = track_incidents(state, findings, 5, "b5", repeat)
    assert [(a.kind, a.incident_key, a.severity) for a in sent] == want_sent
    got_open = {k: (i.severity, i.opened_index, i.last_sent_index) for k, i in after.open.items()}
    assert got_open == want_open


def test_escalation_and_repeat_say_so():
    state = IncidentState({"drift": opened("drift", "warning", 2)})
    (sent,), _ = track_incidents(state, Findings((alert("drift", "critical"),)), 5, "b5")
    assert sent.fields == {"k": "v", "escalated from": "warning", "open since": "batch b2 (#2)"}
    (sent,), _ = track_incidents(state, Findings((alert("drift"),)), 5, "b5", 3)
    assert sent.fields == {"k": "v", "still open": "batch b2 (#2)"}


def test_resolved_alert_goes_where_the_incident_went():
    state = IncidentState({"performance": opened("performance", "critical", 2)})
    (sent,), after = track_incidents(state, Findings((), RULES), 6, "b6")
    assert sent == Alert(
        "resolved",
        "info",
        "Resolved: performance critical",
        "performance is back to normal after 4 batches.",
        "b6",
        6,
        "performance",
        {"was": "critical", "open since": "batch b2 (#2)"},
        resolved_severity="critical",
    )
    assert (sent.routing_severity, after.open) == ("critical", {})


def test_state_round_trips_through_json():
    state = IncidentState(
        {
            "drift": opened("drift", "warning", 2, 4),
            "validation": opened("validation", "critical", 3),
        }
    )
    raw = json.loads(json.dumps(state.to_dict()))
    assert raw == {
        "version": 1,
        "open": {
            "drift": {
                "severity": "warning",
                "title": "drift warning",
                "opened_index": 2,
                "opened_batch_id": "b2",
                "last_sent_index": 4,
            },
            "validation": {
                "severity": "critical",
                "title": "validation critical",
                "opened_index": 3,
                "opened_batch_id": "b3",
                "last_sent_index": 3,
            },
        },
    }
    assert IncidentState.from_dict(raw) == state


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"version": 2, "open": {}}, "version 2, expected 1"),
        ({"version": 1, "open": []}, "'open' must map"),
        ({"version": 1, "open": {"drift": {"severity": "warning"}}}, "missing 4 required"),
        (
            {"version": 1, "open": {"drift": {"colour": "red"}}},
            "unexpected keyword argument 'colour'",
        ),
        (
            {
                "version": 1,
                "open": {
                    "drift": {
                        "severity": "loud",
                        "title": "t",
                        "opened_index": 1,
                        "opened_batch_id": "b1",
                        "last_sent_index": 1,
                    }
                },
            },
            r"bad severity or batch index for \['drift'\]",
        ),
    ],
)
def test_bad_state_is_refused(raw, message):
    with pytest.raises(ValueError, match=message):
        IncidentState.from_dict(raw)


def decide(**inputs) -> policy.RetrainDecision:
    base = dict(
        batch_index=7,
        drift_share=0.6,
        metric="mae",
        current_metric=30.0,
        baseline_metric=20.0,
        baseline_drift_share=None,
        batches_since_champion=2,
    )
    return policy.decide_retraining(
        policy.PolicyInputs(**(base | inputs)), RetrainSettings(), "regression"
    )


def test_decision_gives_one_alert_per_violated_rule_with_the_rules_severity():
    decision = decide()
    assert decision.violated == ("drift", "performance")
    found = incidents.decision_alerts(decision, "b7", 7, link="http://mlflow/run/1")
    assert [(a.kind, a.incident_key, a.severity, a.title) for a in found.alerts] == [
        ("rule_violated", "drift", "warning", "Drift rule violated"),
        ("rule_violated", "performance", "critical", "Performance rule violated"),
    ]
    drift, perf = found.alerts
    assert drift.text == "drift: share of drifted features 0.60 >= 0.50"
    assert perf.text.startswith("performance: mae 30 is 50") and "\n" not in perf.text
    assert drift.fields == {"decision": "retrain", "rule counts": "yes"}
    assert (drift.batch_id, drift.batch_index, drift.link) == ("b7", 7, "http://mlflow/run/1")
    assert found.checked == RULES


def test_decision_without_labels_neither_opens_nor_resolves_performance():
    found = incidents.decision_alerts(decide(current_metric=None, drift_share=0.1), "b7", 7)
    assert (found.alerts, found.checked) == ((), frozenset({"drift", "staleness"}))


def test_manual_retrain_is_an_event():
    decision = decide(drift_share=0.1, current_metric=20.0, force=True, force_reason="new prices")
    (manual,) = incidents.decision_alerts(decision, "b7", 7).alerts
    assert (manual.kind, manual.severity, manual.incident_key, manual.text) == (
        "manual_retrain",
        "info",
        None,
        "manual: new prices",
    )


def test_rejected_batch_is_critical_and_an_accepted_one_resolves_it():
    failure = ValidationFailure("expect_between", "hum", "column 'hum': 12 values above 1")
    rejected = ValidationResult("w21.csv", False, 168, 40, 1, (failure,))
    found = incidents.validation_alerts(rejected, "w21", 21, quarantine="data/quarantine/w21")
    assert found == Findings(
        (
            Alert(
                "batch_rejected",
                "critical",
                "Batch w21.csv rejected",
                "- column 'hum': 12 values above 1",
                "w21",
                21,
                "validation",
                {"rows": "168", "problems": "1", "quarantine": "data/quarantine/w21"},
            ),
        ),
        frozenset({"validation"}),
    )
    accepted = ValidationResult("w22.csv", True, 168, 40, 0)
    assert incidents.validation_alerts(accepted, "w22", 22) == Findings(
        (), frozenset({"validation"})
    )


def verdict(status: str) -> ProbationVerdict:
    return ProbationVerdict(status, "5", "4", 3, 3, "mae", 30.0, 20.0, 0.5, "v5 vs v4: 50 % worse")


@pytest.mark.parametrize(
    ("status", "rolled_back", "want"),
    [
        ("failed", True, ("rollback", "critical", "Automatic rollback: champion 5 -> 4")),
        (
            "failed",
            False,
            ("probation_failed", "critical", "Version 5 failed probation, not rolled back"),
        ),
        ("passed", False, ("probation_passed", "info", "Version 5 passed probation")),
    ],
)
def test_probation_alerts(status, rolled_back, want):
    (got,) = incidents.probation_alerts(verdict(status), "b9", 9, rolled_back).alerts
    assert (got.kind, got.severity, got.title) == want
    assert (got.text, got.incident_key) == ("v5 vs v4: 50 % worse", None)
    assert got.fields == {"metric": "mae", "version 5": "30", "version 4 (shadow)": "20"}


def test_pending_probation_says_nothing():
    assert incidents.probation_alerts(verdict("pending"), "b9", 9, False) == Findings()


@pytest.mark.parametrize(
    ("promote", "old", "dry_run", "title", "severity"),
    [
        (True, "2", False, "Version 3 is now champion (was 2)", "info"),
        (True, None, False, "Version 3 is now champion (first model)", "info"),
        (True, "2", True, "Version 3 would become champion (was 2)", "info"),
        (False, "2", False, "Champion 2 kept, challenger 3 rejected", "info"),
        (False, None, False, "Challenger 3 rejected (no champion yet)", "info"),
    ],
)
def test_promotion_alerts(promote, old, dry_run, title, severity):
    decision = PromotionDecision(
        promote, "3", old, "mae", 10.0, 12.0 if old else None, 0.17, ("mae 10 < 12",)
    )
    (got,) = incidents.promotion_alerts(decision, "b8", 8, dry_run=dry_run).alerts
    assert (got.kind, got.severity, got.title, got.text) == (
        "promotion",
        severity,
        title,
        "- mae 10 < 12",
    )
    assert got.fields.get("champion") == ("12" if old else None)


def test_manual_rollback_is_a_warning_event():
    (got,) = incidents.rollback_alerts("5", "4", "bad prices in v5").alerts
    assert (got.kind, got.severity, got.title, got.text, got.incident_key) == (
        "rollback",
        "warning",
        "Rollback: champion 5 -> 4",
        "bad prices in v5",
        None,
    )
    context = incidents.slack_payload(got)["blocks"][-1]["elements"][0]["text"]
    assert context == "severity warning"


def test_retrain_failure_is_an_incident_a_successful_retrain_resolves():
    failed = incidents.retrain_alerts("b8", 8, "InsufficientDataError: no unseen labelled batch")
    assert [(a.kind, a.severity, a.incident_key) for a in failed.alerts] == [
        ("retrain_failed", "warning", "retrain_failed")
    ]
    state = IncidentState({"retrain_failed": opened("retrain_failed", "warning", 8)})
    sent, after = track_incidents(state, incidents.retrain_alerts("b9", 9, None), 9, "b9")
    assert ([a.kind for a in sent], after.open) == (["resolved"], {})


def test_slack_payload_shape():
    a = Alert(
        "rule_violated",
        "warning",
        "Drift rule violated",
        "drift: share 0.60 >= 0.50 & rising",
        "w12",
        12,
        "drift",
        {"decision": "retrain", "a<b>": "x&y"},
        "https://mlflow.example/#/runs/1?a=1&b=2",
    )
    assert incidents.slack_payload(a) == {
        "text": "[warning] Drift rule violated",
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": ":warning: Drift rule violated",
                    "emoji": True,
                },
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "drift: share 0.60 &gt;= 0.50 &amp; rising"},
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*decision*\nretrain"},
                    {"type": "mrkdwn", "text": "*a&lt;b&gt;*\nx&amp;y"},
                ],
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "<https://mlflow.example/#/runs/1?a=1&amp;b=2|Details>",
                },
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "severity warning | batch w12 (#12) | incident drift",
                    }
                ],
            },
        ],
    }


def test_slack_payload_keeps_within_slack_limits():
    a = Alert("resolved", "info", "T" * 300, "", "", -1, None, {f"f{i}": "v" for i in range(12)})
    payload = incidents.slack_payload(a)
    header, section, fields, context = payload["blocks"]
    assert header["text"]["text"] == ":white_check_mark: " + "T" * 130 + "\u2026"
    assert len(header["text"]["text"]) == 150
    assert section["text"]["text"] == "T" * 300  # the title stands in for an empty text
    assert [f["text"] for f in fields["fields"]] == [f"*f{i}*\nv" for i in range(10)]
    assert context["elements"][0]["text"] == "severity info"


def test_alerts_module_is_pure():
    code = (
        "import sys, modelwatch.alerts.incidents; print(sorted(m for m in ('prefect', 'mlflow', "
        "'pandas', 'urllib.request', 'modelwatch.alerts.delivery') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_rule_incidents_follow_the_policy():
    assert set(incidents.RULE_INCIDENTS) == set(policy.RULES) - {"manual"}


def params_with(tmp_path, alerts_section: dict):
    return write_params("params.yaml", tmp_path, alerts=alerts_section)


def test_alerts_section_loads(tmp_path):
    path = params_with(
        tmp_path,
        {
            "min_severity": "warning",
            "repeat_after_batches": 4,
            "webhooks": [
                {"url": "https://hooks.example.com/services/T0/B0/secret", "name": "ops"},
                {
                    "url": "http://127.0.0.1:8080/hook",
                    "min_severity": "critical",
                    "timeout_seconds": 2,
                },
            ],
        },
    )
    got = load_settings(path).settings.alerts
    assert (got.min_severity, got.repeat_after_batches) == ("warning", 4)
    assert [(w.label, w.min_severity, w.timeout_seconds) for w in got.webhooks] == [
        ("ops", "warning", 5),
        ("127.0.0.1:8080", "critical", 2),
    ]


def test_alerts_default_to_the_log_only():
    assert AlertSettings().model_dump() == {
        "min_severity": "info",
        "webhooks": [],
        "repeat_after_batches": None,
        "max_attempts": 5,
    }


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"webhook": []}, r"alerts\.webhook: unknown key"),
        (
            {"webhooks": [{"url": "https://x.example", "colour": "red"}]},
            r"alerts\.webhooks\.0\.colour: unknown key",
        ),
        (
            {"webhooks": [{"url": "ftp://x.example/hook"}]},
            r"alerts\.webhooks\.0\.url: .*http:// or https://",
        ),
        ({"webhooks": [{"url": "https:///no-host"}]}, r"alerts\.webhooks\.0\.url: .*with a host"),
        (
            {"webhooks": [{"url": "https://x.example", "min_severity": "loud"}]},
            r"alerts\.webhooks\.0\.min_severity",
        ),
        (
            {"webhooks": [{"url": "https://x.example", "timeout_seconds": 0}]},
            r"alerts\.webhooks\.0\.timeout_seconds",
        ),
        ({"repeat_after_batches": 0}, r"alerts\.repeat_after_batches"),
        ({"min_severity": "debug"}, r"alerts\.min_severity"),
        (
            {"webhooks": [{"url": "https://x.example/a"}, {"url": "https://x.example/b"}]},
            r"alerts\.webhooks: \['x\.example'\] appear more than once; give each webhook a name",
        ),
    ],
)
def test_bad_alerts_section_names_the_key(tmp_path, section, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(params_with(tmp_path, section))
