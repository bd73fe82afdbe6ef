"""Alert delivery against a real HTTP receiver on 127.0.0.1: the JSON a webhook gets, routing by
severity, one alert per incident over a run of batches, and webhooks that fail."""

from __future__ import annotations

import json
import logging
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelwatch.alerts import delivery, incidents
from modelwatch.alerts.incidents import Alert, Findings, IncidentState
from modelwatch.errors import SchemaError
from modelwatch.settings import AlertSettings, WebhookSettings


@dataclass
class Receiver:
    """What the local server got: (path, content type, JSON body) per POST."""

    base: str
    posts: list[tuple[str, str, dict]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def bodies(self, path: str) -> list[dict]:
        return [body for p, _, body in self.posts if p == path]

    def titles(self, path: str) -> list[str]:
        return [body["text"] for body in self.bodies(path)]


@pytest.fixture
def receiver(monkeypatch):
    """A ThreadingHTTPServer on a free port: /fail answers 500, /slow never answers, any other
    path 200 "ok"."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a proxy from the environment must not see it
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    got = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # the name http.server calls
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.posts.append((self.path, self.headers["Content-Type"], json.loads(body)))
            if self.path == "/slow":
                got.release.wait(5)
                return  # the client gave up long ago: nothing to answer
            status, answer = (500, b"boom") if self.path == "/fail" else (200, b"ok")
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    got.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield got
    got.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def hook(receiver: Receiver, path: str, minimum: str = "warning", **kw) -> WebhookSettings:
    return WebhookSettings(
        url=receiver.base + path, name=path.strip("/"), min_severity=minimum, **kw
    )


def make(severity: str, key: str | None = "drift", title: str | None = None) -> Alert:
    return Alert(
        "rule_violated",
        severity,
        title or f"{severity} alert",
        "drift: share 0.60 >= 0.50",
        "w3",
        3,
        key,
        {"decision": "retrain"},
        "http://127.0.0.1:5000/#/runs/abc",
    )


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def test_webhook_receives_the_slack_payload_as_json(receiver):
    a = make("critical")
    got = delivery.route([a], AlertSettings(webhooks=[hook(receiver, "/ops")]))
    assert got == [delivery.Delivery("ops", "critical alert", "drift", "delivered")]
    assert receiver.posts == [("/ops", "application/json", incidents.slack_payload(a))]


def test_routing_by_severity(receiver, caplog):
    settings = AlertSettings(
        min_severity="warning",
        webhooks=[
            hook(receiver, "/all", "info"),
            hook(receiver, "/ops", "warning"),
            hook(receiver, "/pager", "critical"),
        ],
    )
    log = logging.getLogger("test_delivery")
    with caplog.at_level(logging.INFO, logger="test_delivery"):
        got = delivery.route([make("info"), make("warning"), make("critical")], settings, log)
    assert receiver.titles("/all") == [
        "[info] info alert",
        "[warning] warning alert",
        "[critical] critical alert",
    ]
    assert receiver.titles("/ops") == ["[warning] warning alert", "[critical] critical alert"]
    assert receiver.titles("/pager") == ["[critical] critical alert"]
    assert [(d.webhook, d.alert) for d in got] == [
        ("all", "info alert"),
        ("all", "warning alert"),
        ("ops", "warning alert"),
        ("all", "critical alert"),
        ("ops", "critical alert"),
        ("pager", "critical alert"),
    ]
    assert {d.status for d in got} == {"delivered"}
    # the log starts at warning, each alert at its own level
    rest = "drift: share 0.60 >= 0.50 (batch w3, incident drift)"
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, f"alert: [warning] warning alert: {rest}"),
        (logging.CRITICAL, f"alert: [critical] critical alert: {rest}"),
    ]


def test_one_alert_per_incident_over_a_run_of_batches(receiver, tmp_path):
    """Drift for batches 1-3, performance from 2 to 4, batch 4 rejected (drift not measured),
    all quiet at 5; the incident state goes through its JSON file between batches."""
    settings = AlertSettings(webhooks=[hook(receiver, "/ops")], repeat_after_batches=None)
    state_file = tmp_path / "alerts" / "model.incidents.json"
    rules = frozenset(incidents.RULE_INCIDENTS)
    batches = [
        Findings((make("warning", "drift", "drift"),), rules),
        Findings(
            (make("warning", "drift", "drift"), make("critical", "performance", "perf")), rules
        ),
        Findings(
            (make("warning", "drift", "drift"), make("critical", "performance", "perf")), rules
        ),
        Findings((make("critical", "validation", "rejected"),), frozenset({"validation"})),
        Findings((), rules | {"validation"}),
    ]
    sent_per_batch = []
    for index, findings in enumerate(batches, start=1):
        state = delivery.load_state(state_file)
        sent, state = incidents.track_incidents(state, findings, index, f"w{index}")
        delivery.save_state(state_file, state)
        got = delivery.route(sent, settings)
        sent_per_batch.append([d.alert for d in got])
    assert sent_per_batch == [
        ["drift"],
        ["perf"],
        [],
        ["rejected"],
        ["Resolved: drift", "Resolved: perf", "Resolved: rejected"],
    ]
    assert receiver.titles("/ops") == [
        "[warning] drift",
        "[critical] perf",
        "[critical] rejected",
        "[info] Resolved: drift",
        "[info] Resolved: perf",
        "[info] Resolved: rejected",
    ]
    assert delivery.load_state(state_file) == IncidentState()


def test_failing_webhooks_are_reported_not_raised(receiver, caplog):
    settings = AlertSettings(
        webhooks=[
            hook(receiver, "/fail"),
            WebhookSettings(url=closed_port_url(), name="gone"),
            hook(receiver, "/ok"),
        ]
    )
    with caplog.at_level(logging.WARNING, logger="modelwatch.alerts.delivery"):
        got = delivery.route(
            [make("warning", title="first"), make("critical", title="second")], settings
        )
    results = [(d.webhook, d.alert, d.status, d.reason) for d in got]
    assert results[0] == ("fail", "first", "failed", "HTTP 500 Internal Server Error: boom")
    assert results[1][:3] == ("gone", "first", "failed")
    assert results[1][3].startswith("cannot connect: ") and "refused" in results[1][3]
    assert results[2] == ("ok", "first", "delivered", "")
    assert results[3] == ("fail", "second", "failed", "HTTP 500 Internal Server Error: boom")
    assert results[4] == (
        "gone",
        "second",
        "failed",
        f"not tried: unreachable earlier in this batch ({results[1][3]})",
    )
    assert results[5] == ("ok", "second", "delivered", "")
    assert receiver.titles("/ok") == ["[warning] first", "[critical] second"]
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith("alert webh")]
    assert [w.partition(": ")[0] for w in warnings] == [
        "alert webhook fail failed",
        "alert webhook gone failed",
        "alert webhook fail failed",
    ]
    assert warnings[0].endswith(": HTTP 500 Internal Server Error: boom (alert: first)")
    assert {r.levelno for r in caplog.records if r.getMessage() in warnings} == {logging.WARNING}
    assert all(receiver.base not in w for w in warnings)  # the URL (often a secret) is not logged


def test_a_webhook_that_does_not_answer_times_out(receiver):
    settings = AlertSettings(webhooks=[hook(receiver, "/slow", timeout_seconds=0.2)])
    (got,) = delivery.route([make("critical")], settings)
    assert (got.status, got.reason) == ("failed", "no answer within 0.2 s")


def test_a_broken_state_file_is_refused(tmp_path):
    path = tmp_path / "incidents.json"
    path.write_text('{"version": 1, "open": [')
    with pytest.raises(SchemaError, match="incidents.json: not valid JSON .*delete it to reset"):
        delivery.load_state(path)
    path.write_text('{"version": 7}')
    with pytest.raises(SchemaError, match="incidents.json: incident state version 7, expected 1"):
        delivery.load_state(path)
    assert path.read_text() == '{"version": 7}'  # left as it was, for whoever looks


def test_a_failed_alert_waits_in_the_outbox_and_is_delivered_once_the_webhook_answers(
    receiver, tmp_path
):
    down = AlertSettings(webhooks=[hook(receiver, "/fail")])
    got, left = delivery.deliver([make("critical", title="drift opened")], down)
    assert [d.status for d in got] == ["failed"]
    assert [(p.webhook, p.alert.title, p.attempts) for p in left] == [("fail", "drift opened", 1)]
    outbox = tmp_path / "outbox.json"
    delivery.save_outbox(outbox, left)
    assert delivery.load_outbox(outbox) == left  # the alert survives the process

    # the same webhook (same name) answers again: the waiting alert goes first, then the new one
    up = AlertSettings(webhooks=[WebhookSettings(url=receiver.base + "/ok", name="fail")])
    got, left = delivery.deliver(
        [make("warning", key=None, title="retrain")], up, delivery.load_outbox(outbox)
    )
    assert [(d.alert, d.status) for d in got] == [
        ("drift opened", "delivered"),
        ("retrain", "delivered"),
    ]
    assert left == []
    assert receiver.titles("/ok") == ["[critical] drift opened", "[warning] retrain"]


def test_the_outbox_gives_up_after_max_attempts(receiver, caplog):
    settings = AlertSettings(webhooks=[hook(receiver, "/fail")], max_attempts=2)
    _, left = delivery.deliver([make("critical")], settings)
    with caplog.at_level(logging.ERROR, logger="modelwatch.alerts.delivery"):
        got, left = delivery.deliver([], settings, left)
    assert [d.status for d in got] == ["failed"] and left == []
    (gave_up,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert gave_up == (
        "alert webhook fail: gave up on 'critical alert' after 2 attempts "
        "(last: HTTP 500 Internal Server Error: boom)"
    )
    assert len(receiver.bodies("/fail")) == 2


def test_an_unreachable_webhook_costs_every_alert_a_try_and_a_removed_one_drops_them(caplog):
    settings = AlertSettings(
        webhooks=[WebhookSettings(url=closed_port_url(), name="gone")], max_attempts=2
    )
    _, left = delivery.deliver([make("critical", title="a"), make("critical", title="b")], settings)
    assert [(p.alert.title, p.attempts) for p in left] == [("a", 1), ("b", 1)]
    # batch after batch while it stays down, the outbox never outgrows max_attempts batches
    _, again = delivery.deliver([make("critical", title="c")], settings, left)
    assert [(p.alert.title, p.attempts) for p in again] == [("c", 1)]
    left = again + [delivery.Pending("gone", make("critical", title="b"), 0, "")]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="modelwatch.alerts.delivery"):
        got, still = delivery.deliver([], AlertSettings(), left)
    assert got == [] and still == []
    assert [r.getMessage() for r in caplog.records] == [
        "alert webhook gone is no longer configured: dropped 'c'",
        "alert webhook gone is no longer configured: dropped 'b'",
    ]


def test_a_broken_outbox_is_refused(tmp_path):
    path = tmp_path / "outbox.json"
    path.write_text("[1, 2")
    with pytest.raises(SchemaError, match="outbox.json: not valid JSON .*delete it to drop them"):
        delivery.load_outbox(path)
    path.write_text('{"version": 1, "pending": [{"webhook": "x"}]}')
    with pytest.raises(SchemaError, match="outbox.json: not an alert outbox"):
        delivery.load_outbox(path)
    # an entry written by a version whose Alert had another field still reads
    entry = delivery.Pending("ops", make("critical"), 2, "HTTP 500").to_dict()
    entry["alert"]["added_later"] = "x"
    path.write_text(json.dumps({"version": 1, "pending": [entry]}))
    (back,) = delivery.load_outbox(path)
    assert (back.webhook, back.alert, back.attempts) == ("ops", make("critical"), 2)
    assert delivery.load_outbox(tmp_path / "missing.json") == []


# ---------------------------------------------------------------- apprise channels


def test_an_apprise_url_is_delivered_through_apprise(receiver):
    """Reference: apprise's own json:// service (its payload: version, title, message, type),
    received by the same local server; the severity maps to apprise's notification type."""
    port = receiver.base.rsplit(":", 1)[1]
    target = WebhookSettings(url=f"json://127.0.0.1:{port}/apprise", min_severity="info")
    assert not target.is_webhook and target.label.startswith("json-")
    a = make("critical", title="drift on temp")
    (got,) = delivery.route([a], AlertSettings(webhooks=[target]))
    assert (got.webhook, got.status) == (target.label, "delivered")
    ((path, ctype, body),) = receiver.posts
    assert (path, ctype) == ("/apprise", "application/json")
    assert body["title"] == "[critical] drift on temp"
    assert body["type"] == "failure"
    assert "drift: share 0.60 >= 0.50" in body["message"]
    assert "**decision**: retrain" in body["message"]
    assert "http://127.0.0.1:5000/#/runs/abc" in body["message"]


def test_an_apprise_target_that_fails_waits_in_the_outbox(receiver, caplog):
    port = receiver.base.rsplit(":", 1)[1]
    broken = WebhookSettings(url=f"json://127.0.0.1:{port}/fail", name="ops-json")
    settings = AlertSettings(webhooks=[broken], max_attempts=3)
    with caplog.at_level(logging.WARNING, logger="modelwatch.alerts.delivery"):
        got, left = delivery.deliver([make("warning")], settings)
    assert [(d.webhook, d.status) for d in got] == [("ops-json", "failed")]
    assert got[0].reason.startswith("apprise: ") and "500" in got[0].reason
    assert [(p.webhook, p.attempts) for p in left] == [("ops-json", 1)]
    assert str(port) not in " ".join(r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("mailto://user:secret@example.com", True),
        ("json://127.0.0.1:9/hook", True),
        ("ntfys://ntfy.example.com/modelwatch", True),
        ("bogus://nowhere", False),
        ("no scheme at all", False),
        ("https://", False),
    ],
)
def test_webhook_urls_are_http_or_known_to_apprise(url, ok):
    from pydantic import ValidationError

    if ok:
        target = WebhookSettings(url=url)
        assert "secret" not in target.label
    else:
        with pytest.raises(ValidationError, match="http:// or https:// "):
            WebhookSettings(url=url)
