"""Alerts: what happened to a batch, as alerts with a severity, sent once per incident (pure).

Builders turn the monitor flow's results into `Findings`: the alerts of one batch plus the
incident keys the batch assessed. `track_incidents` compares them with the incidents left open
by earlier batches and returns the alerts to send now and the new state:

- an alert whose incident is not open opens it and is sent;
- an alert of an open incident is not sent again, unless its severity rises above the highest
  sent so far, or `repeat_after_batches` have passed since it was last sent;
- an open incident that this batch assessed and found quiet is resolved: one "resolved" alert;
- an open incident this batch did not assess (e.g. drift, when the batch was rejected before
  drift was measured) stays open as it is;
- an alert without an incident key (a promotion, a rollback) is always sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from modelwatch.settings import Severity

if TYPE_CHECKING:  # type hints only: importing these would pull pandas and scikit-learn
    from modelwatch.decide.policy import RetrainDecision
    from modelwatch.decide.probation import ProbationVerdict
    from modelwatch.decide.promotion import PromotionDecision
    from modelwatch.stores.validation import ValidationResult

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
# policy.RULES without the manual one
RULE_INCIDENTS = ("drift", "performance", "estimated", "staleness")
VALIDATION_INCIDENT = "validation"
RETRAIN_INCIDENT = "retrain_failed"
SYSTEM_HEALTH_INCIDENT = "system_health"
STATE_VERSION = 1

AlertKind = Literal[
    "batch_rejected",
    "labels_rejected",
    "labels_of_rejected_batch",
    "evaluation_failed",
    "model_refused",
    "rule_violated",
    "manual_retrain",
    "retrain_failed",
    "promotion",
    "probation_passed",
    "probation_failed",
    "rollback",
    "system_health",
    "resolved",
]


@dataclass(frozen=True)
class Alert:
    """One thing to tell people about. incident_key None: a one-off event, always sent.

    resolved_severity: on a "resolved" alert, the highest severity the incident reached, so the
    resolution goes where the incident's alerts went."""

    kind: AlertKind
    severity: Severity
    title: str
    text: str
    batch_id: str
    batch_index: int
    incident_key: str | None = None
    fields: dict[str, str] = field(default_factory=dict, hash=False)
    link: str | None = None
    resolved_severity: Severity | None = None

    @property
    def routing_severity(self) -> Severity:
        """The severity destinations compare with their min_severity."""
        return self.resolved_severity or self.severity

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-compatible dict."""
        return asdict(self)


@dataclass(frozen=True)
class Findings:
    """The alerts of one batch and the incident keys it assessed (raised or found quiet)."""

    alerts: tuple[Alert, ...] = ()
    checked: frozenset[str] = frozenset()

    def __add__(self, other: Findings) -> Findings:
        return Findings(self.alerts + other.alerts, self.checked | other.checked)


@dataclass(frozen=True)
class OpenIncident:
    """An incident still open after a batch: what it is, since when, when it was last sent."""

    key: str
    severity: Severity  # the highest severity sent so far
    title: str
    opened_index: int
    opened_batch_id: str
    last_sent_index: int


@dataclass(frozen=True)
class IncidentState:
    """The incidents open after the last batch, keyed by incident key (JSON via to_dict)."""

    open: dict[str, OpenIncident] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """Returns {"version": 1, "open": {key: {severity, title, opened_index, ...}}}."""
        return {
            "version": STATE_VERSION,
            "open": {
                k: {f: v for f, v in asdict(i).items() if f != "key"} for k, i in self.open.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IncidentState:
        """Reads to_dict() back.

        Raises:
            ValueError: another version, or an incident record with missing or unknown fields.
        """
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"incident state version {data.get('version')!r}, expected 1")
        records = data.get("open", {})
        if not isinstance(records, dict) or not all(isinstance(v, dict) for v in records.values()):
            raise ValueError("incident state: 'open' must map incident keys to records")
        try:
            incidents = {k: OpenIncident(key=k, **v) for k, v in records.items()}
        except TypeError as exc:
            raise ValueError(f"incident state: {exc}") from None
        bad = sorted(
            k
            for k, i in incidents.items()
            if i.severity not in SEVERITY_RANK
            or not all(isinstance(n, int) for n in (i.opened_index, i.last_sent_index))
        )
        if bad:
            raise ValueError(f"incident state: bad severity or batch index for {bad}")
        return cls(incidents)


def track_incidents(
    state: IncidentState,
    findings: Findings,
    batch_index: int,
    batch_id: str,
    repeat_after_batches: int | None = None,
) -> tuple[list[Alert], IncidentState]:
    """Returns the alerts to send for this batch (in the findings' order, resolutions last) and
    the incidents open after it."""
    still_open = dict(state.open)
    send: list[Alert] = []
    raised: set[str] = set()
    for alert in findings.alerts:
        key = alert.incident_key
        if key is None:
            send.append(alert)
            continue
        raised.add(key)
        known = still_open.get(key)
        if known is None:
            still_open[key] = OpenIncident(
                key, alert.severity, alert.title, batch_index, batch_id, batch_index
            )
            send.append(alert)
        elif _rank(alert.severity) > _rank(known.severity):
            still_open[key] = replace(
                known, severity=alert.severity, title=alert.title, last_sent_index=batch_index
            )
            fields = {"escalated from": known.severity, **_since(known)}
            send.append(replace(alert, fields={**alert.fields, **fields}))
        elif _due(known, batch_index, repeat_after_batches):
            still_open[key] = replace(known, last_sent_index=batch_index)
            send.append(
                replace(alert, fields={**alert.fields, "still open": _since(known)["open since"]})
            )
    for key in sorted((findings.checked & set(still_open)) - raised):
        send.append(_resolved(still_open.pop(key), batch_index, batch_id))
    return send, IncidentState(still_open)


def validation_alerts(
    result: ValidationResult,
    batch_id: str,
    batch_index: int,
    quarantine: str | None = None,
    link: str | None = None,
) -> Findings:
    """Returns a critical alert when the batch was rejected; an accepted batch resolves it."""
    checked = frozenset({VALIDATION_INCIDENT})
    if result.success:
        return Findings((), checked)
    problems = [f.message for f in result.failures] or [result.summary()]
    fields = {"rows": str(result.n_rows), "problems": str(len(result.failures))}
    if quarantine:
        fields["quarantine"] = quarantine
    alert = Alert(
        "batch_rejected",
        "critical",
        f"Batch {result.batch_name} rejected",
        "\n".join(f"- {p}" for p in problems),
        batch_id,
        batch_index,
        VALIDATION_INCIDENT,
        fields,
        link,
    )
    return Findings((alert,), checked)


def labels_alerts(refused: Sequence[Any], batch_id: str, batch_index: int) -> Findings:
    """Returns one warning per labels file refused at intake (each is its own event: the file
    is kept aside, its labels never reach an evaluation)."""
    alerts = tuple(
        Alert(
            "labels_rejected",
            "warning",
            f"Labels file {bad.name} refused",
            "\n".join(f"- {p}" for p in bad.problems),
            batch_id,
            batch_index,
            None,
            {"quarantine": str(bad.folder)},
        )
        for bad in refused
    )
    return Findings(alerts)


def labels_apart_alerts(counts: dict[str, int], batch_id: str, batch_index: int) -> Findings:
    """Returns a warning when labels taken in with this batch held rows of rejected batches
    (kept apart in the labels quarantine, never evaluated)."""
    rows = counts.get("rejected_batch_rows", 0)
    if not rows:
        return Findings(())
    body = (
        f"- {rows} labelled row(s) belong to batches that were rejected: kept apart in the "
        "labels quarantine (rows_of_rejected_batches.csv), never evaluated or trained on\n"
        f"- {counts.get('unknown_ids', 0)} id(s) matched no batch yet"
    )
    alert = Alert(
        "labels_of_rejected_batch",
        "warning",
        f"Labels of rejected batches kept apart ({rows} rows)",
        body,
        batch_id,
        batch_index,
        None,
        {},
    )
    return Findings((alert,))


def model_refused_alert(error: str, batch_id: str, batch_index: int) -> Findings:
    """A critical alert: a registered model failed verification and was not loaded (its
    files changed, pickle, a type outside the allow-list); the batch failed and waits."""
    alert = Alert(
        "model_refused",
        "critical",
        "Model refused: it failed verification",
        f"- {error}\n- batch {batch_id} was not processed; it runs again once the model's "
        "files are restored (or another version is promoted)",
        batch_id,
        batch_index,
        None,
        {},
    )
    return Findings((alert,))


def evaluation_alerts(failed: Sequence[Any], batch_id: str, batch_index: int) -> Findings:
    """Returns one warning per earlier batch whose evaluation raised in this run (this batch
    went on; that one is evaluated again next run, and alerted again while it fails)."""
    alerts = tuple(
        Alert(
            "evaluation_failed",
            "warning",
            f"Evaluation of {bad.batch_id} failed",
            f"- {bad.error}\n- batch {batch_id} went on; {bad.batch_id} is evaluated again "
            "on the next run",
            batch_id,
            batch_index,
            None,
            {"evaluated_batch": bad.batch_id},
        )
        for bad in failed
    )
    return Findings(alerts)


def decision_alerts(
    decision: RetrainDecision, batch_id: str, batch_index: int, link: str | None = None
) -> Findings:
    """Returns one alert per rule the batch violated (drift, performance, staleness: one
    incident each; manual: an event), with the rule's severity from retrain.severity."""
    by_rule = decision.thresholds.get("severity", {})
    verdict = decision.summary().partition(":")[0]
    out = []
    for rule in decision.violated:
        severity = by_rule.get(rule, decision.severity)
        lines = [r for r in decision.reasons if r.startswith(f"{rule}:")]
        lines += [r for r in decision.reasons if r.startswith(f"persistence: {rule} ")]
        fields = {
            "decision": verdict,
            "rule counts": "yes" if rule in decision.rules_fired else "not yet (persistence)",
        }
        if decision.mode != "enabled":
            fields["run mode"] = decision.mode
        manual = rule == "manual"
        out.append(
            Alert(
                "manual_retrain" if manual else "rule_violated",
                severity,
                "Manual retrain requested" if manual else f"{rule.capitalize()} rule violated",
                "\n".join(lines) or decision.summary(),
                batch_id,
                batch_index,
                None if manual else rule,
                fields,
                link,
            )
        )
    return Findings(tuple(out), _assessed_rules(decision))


def retrain_alerts(
    batch_id: str, batch_index: int, error: str | None, link: str | None = None
) -> Findings:
    """Returns a warning when a retrain that was due failed; one that ran resolves it."""
    checked = frozenset({RETRAIN_INCIDENT})
    if error is None:
        return Findings((), checked)
    alert = Alert(
        "retrain_failed",
        "warning",
        "Retrain failed",
        error,
        batch_id,
        batch_index,
        RETRAIN_INCIDENT,
        {},
        link,
    )
    return Findings((alert,), checked)


def promotion_alerts(
    decision: PromotionDecision,
    batch_id: str,
    batch_index: int,
    dry_run: bool = False,
    link: str | None = None,
) -> Findings:
    """Returns an info alert: the challenger became champion, or the champion was kept."""
    old = decision.champion_version
    if decision.promote:
        head = "would become" if dry_run else "is now"
        title = f"Version {decision.candidate_version} {head} champion"
        title += f" (was {old})" if old else " (first model)"
    elif old:
        title = f"Champion {old} kept, challenger {decision.candidate_version} rejected"
    else:
        title = f"Challenger {decision.candidate_version} rejected (no champion yet)"
    fields = {"metric": decision.metric, "challenger": _num(decision.candidate_score)}
    if decision.champion_score is not None:
        fields["champion"] = _num(decision.champion_score)
    if dry_run:
        fields["run mode"] = "dry_run (no alias moved)"
    text = "\n".join(f"- {r}" for r in decision.reasons) or decision.summary()
    alert = Alert("promotion", "info", title, text, batch_id, batch_index, None, fields, link)
    return Findings((alert,))


def probation_alerts(
    verdict: ProbationVerdict,
    batch_id: str,
    batch_index: int,
    rolled_back: bool,
    link: str | None = None,
) -> Findings:
    """Returns critical when the new champion failed probation (rolled back or not, as said),
    info when it passed, nothing while it is pending."""
    if verdict.status == "pending":
        return Findings()
    new, old = verdict.champion_version, verdict.previous_version
    fields = {"metric": verdict.metric}
    if verdict.champion_score is not None and verdict.previous_score is not None:
        fields[f"version {new}"] = _num(verdict.champion_score)
        fields[f"version {old} (shadow)"] = _num(verdict.previous_score)
    if verdict.status == "passed":
        kind, severity, title = "probation_passed", "info", f"Version {new} passed probation"
    elif rolled_back:
        kind, severity = "rollback", "critical"
        title = f"Automatic rollback: champion {new} -> {old}"
    else:
        kind, severity = "probation_failed", "critical"
        title = f"Version {new} failed probation, not rolled back"
    alert = Alert(kind, severity, title, verdict.reason, batch_id, batch_index, None, fields, link)
    return Findings((alert,))


def rollback_alerts(
    from_version: str, to_version: str, reason: str, batch_id: str = "", batch_index: int = -1
) -> Findings:
    """Returns a warning for a rollback someone asked for (modelwatch rollback)."""
    title = f"Rollback: champion {from_version} -> {to_version}"
    alert = Alert("rollback", "warning", title, reason, batch_id, batch_index, None, {})
    return Findings((alert,))


def system_health_alerts(
    problems: Sequence[str],
    summary: str,
    severity: Severity,
    batch_id: str,
    batch_index: int,
) -> Findings:
    """Returns one alert of `severity` when a prediction-log window crossed a system_health
    threshold (problems: one sentence each); a window within them resolves the incident."""
    checked = frozenset({SYSTEM_HEALTH_INCIDENT})
    if not problems:
        return Findings((), checked)
    alert = Alert(
        "system_health",
        severity,
        f"Scoring service unhealthy in {batch_id}",
        "\n".join([*(f"- {p}" for p in problems), f"- {summary}"]),
        batch_id,
        batch_index,
        SYSTEM_HEALTH_INCIDENT,
        {"problems": str(len(problems))},
    )
    return Findings((alert,), checked)


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Returns the alert as a Slack incoming-webhook message: `text` (the notification and the
    fallback) and Block Kit `blocks` (header, text, fields, link, context), within Slack's
    length limits and with mrkdwn's &, < and > escaped."""
    icon = ":white_check_mark:" if alert.kind == "resolved" else _ICONS[alert.severity]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _cut(f"{icon} {alert.title}", 150),
                "emoji": True,
            },
        },
        {"type": "section", "text": _mrkdwn(_escape(alert.text or alert.title), 3000)},
    ]
    if alert.fields:
        items = list(alert.fields.items())[:_MAX_FIELDS]
        fields = [_mrkdwn(f"*{_escape(k)}*\n{_escape(v)}", 2000) for k, v in items]
        blocks.append({"type": "section", "fields": fields})
    if alert.link:
        blocks.append({"type": "section", "text": _mrkdwn(f"<{_link(alert.link)}|Details>", 3000)})
    blocks.append({"type": "context", "elements": [_mrkdwn(_escape(_context(alert)), 2000)]})
    text = f"[{alert.severity}] {alert.title}"
    return {"text": _cut(_escape(text), 3000), "blocks": blocks}


def at_least(severity: Severity, minimum: Severity) -> bool:
    """Whether severity is minimum or above."""
    return _rank(severity) >= _rank(minimum)


def _assessed_rules(decision: RetrainDecision) -> frozenset[str]:
    """The rule incidents this decision could judge: a rule whose input is unknown (no realized
    performance yet) can neither open nor resolve its incident."""
    unknown = {
        rule
        for rule, key in (
            ("drift", "drift_share"),
            ("performance", "current_metric"),
            ("estimated", "estimated_metric"),
        )
        if key in decision.inputs and decision.inputs[key] is None
    }
    return frozenset(RULE_INCIDENTS) - unknown


_ICONS = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}
_MAX_FIELDS = 10  # Slack's limit per section


def _context(alert: Alert) -> str:
    parts = [f"severity {alert.severity}"]
    if alert.batch_id:
        where = f" (#{alert.batch_index})" if alert.batch_index >= 0 else ""
        parts.append(f"batch {alert.batch_id}{where}")
    if alert.incident_key:
        parts.append(f"incident {alert.incident_key}")
    return " | ".join(parts)


def _mrkdwn(text: str, limit: int) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _cut(text, limit)}


def _escape(text: str) -> str:
    """Slack's mrkdwn reserves exactly these three characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str) -> str:
    """The URL with the characters that would end a Slack <url|label> link percent-encoded and
    & escaped (Slack decodes &amp; in the whole message, links included)."""
    for char, code in (("|", "%7C"), ("<", "%3C"), (">", "%3E"), (" ", "%20")):
        url = url.replace(char, code)
    return url.replace("&", "&amp;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _rank(severity: str) -> int:
    return SEVERITY_RANK[severity]


def _due(known: OpenIncident, batch_index: int, repeat_after: int | None) -> bool:
    return repeat_after is not None and batch_index - known.last_sent_index >= repeat_after


def _since(known: OpenIncident) -> dict[str, str]:
    return {"open since": f"batch {known.opened_batch_id} (#{known.opened_index})"}


def _resolved(known: OpenIncident, batch_index: int, batch_id: str) -> Alert:
    lasted = batch_index - known.opened_index
    return Alert(
        "resolved",
        "info",
        f"Resolved: {known.title}",
        f"{known.key} is back to normal after {lasted} batch{'' if lasted == 1 else 'es'}.",
        batch_id,
        batch_index,
        known.key,
        {"was": known.severity, **_since(known)},
        resolved_severity=known.severity,
    )


def _num(x: float) -> str:
    return f"{x:.4g}"
