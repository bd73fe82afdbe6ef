"""Alert delivery: to the log, to webhooks and to any service apprise knows; the incident state.

Two kinds of target, told apart by the URL's scheme:
- `http://` / `https://`: an incoming webhook that takes Slack-compatible JSON (Slack,
  Mattermost, Rocket.Chat), posted with urllib.request (proxies from the usual *_proxy
  variables) so that the Block Kit message of `incidents.slack_payload` arrives as built;
- any other scheme (`mailto://`, `msteams://`, `discord://`, `tgram://`, `ntfys://`,
  `pagerduty://`, `json://`, ... the 100+ services of apprise, already in the stack through
  Prefect): a markdown message through apprise, its title and severity mapped to apprise's.

A webhook that
fails never raises: the failure is logged and returned, so the caller can record it, and the
alert waits in an outbox (`deliver`) to be tried again with the next alerts, up to
alerts.max_attempts times, so an incident's one alert is not lost to a webhook that was down.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from modelwatch.alerts.incidents import Alert, IncidentState, at_least, slack_payload
from modelwatch.errors import SchemaError
from modelwatch.io import write_text
from modelwatch.settings import AlertSettings, WebhookSettings

logger = logging.getLogger(__name__)

LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
_BODY_SHOWN = 200  # characters of an error response kept in the reason
_NOT_TRIED = "not tried:"

Logger = logging.Logger | logging.LoggerAdapter


@dataclass(frozen=True)
class Delivery:
    """What became of one alert at one webhook. reason: why it failed ("" when delivered)."""

    webhook: str
    alert: str
    incident_key: str | None
    status: Literal["delivered", "failed"]
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-compatible dict."""
        return asdict(self)


class _Unreachable(Exception):
    """No HTTP answer at all (refused, unresolvable, timed out): later alerts are not tried."""


class _Refused(Exception):
    """The webhook answered with an HTTP error status."""


def route(
    alerts: Sequence[Alert], settings: AlertSettings, log: Logger | None = None
) -> list[Delivery]:
    """Logs each alert at the level of its severity (from settings.min_severity up) and posts it
    to every webhook whose min_severity it meets; returns one Delivery per webhook and alert.

    A webhook that cannot be reached is not tried again for the later alerts of this call (each
    would wait for its timeout); those are returned as failed too."""
    return deliver(alerts, settings, (), log)[0]


@dataclass(frozen=True)
class Pending:
    """An alert a webhook has not accepted yet; `attempts` real tries so far."""

    webhook: str
    alert: Alert
    attempts: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "webhook": self.webhook,
            "alert": self.alert.to_dict(),
            "attempts": self.attempts,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Pending:
        """Reads an entry; keys an older or newer Alert does not have are left out."""
        known = {f.name for f in fields(Alert)}
        alert = Alert(**{k: v for k, v in raw["alert"].items() if k in known})
        return cls(raw["webhook"], alert, int(raw["attempts"]), raw["reason"])


def queue_entries(
    alerts: Sequence[Alert], settings: AlertSettings, pending: Sequence[Pending] = ()
) -> list[Pending]:
    """Returns the deliveries the alerts need (one per webhook whose min_severity they meet)
    that are not already pending: what goes into the outbox *before* anything is posted, so a
    process killed mid-post loses no alert (it may send one twice: at least once)."""
    have = {(p.webhook, p.alert.title, p.alert.batch_index, p.alert.incident_key) for p in pending}
    out = []
    for alert in alerts:
        for hook in settings.webhooks:
            key = (hook.label, alert.title, alert.batch_index, alert.incident_key)
            if at_least(alert.routing_severity, hook.min_severity) and key not in have:
                out.append(Pending(hook.label, alert, 0, "queued"))
                have.add(key)
    return out


def log_alerts(alerts: Sequence[Alert], settings: AlertSettings, log: Logger | None = None) -> None:
    """Logs each alert at its severity's level, from settings.min_severity up."""
    log = log or logger
    for alert in alerts:
        if at_least(alert.routing_severity, settings.min_severity):
            log.log(LOG_LEVELS[alert.severity], "alert: %s", describe(alert))


def deliver(
    alerts: Sequence[Alert],
    settings: AlertSettings,
    pending: Sequence[Pending] = (),
    log: Logger | None = None,
) -> tuple[list[Delivery], list[Pending]]:
    """Tries the pending deliveries again (oldest first), then routes the new alerts (see
    `route`). Returns every delivery made now and what is still pending: failed deliveries with
    fewer than settings.max_attempts real tries. A delivery that reaches max_attempts is given
    up with an error in the log; one whose webhook left the configuration is dropped with a
    warning. A webhook found unreachable is not tried again in the same call; its other alerts
    count that call as a failed try too, so the outbox never outgrows max_attempts calls."""
    log = log or logger
    hooks = {h.label: h for h in settings.webhooks}
    unreachable: dict[str, str] = {}
    out: list[Delivery] = []
    left: list[Pending] = []

    def attempt(alert: Alert, hook: WebhookSettings, tries: int) -> None:
        done = _deliver(alert, hook, unreachable, log)
        out.append(done)
        if done.status == "delivered":
            return
        tries += 1  # a webhook found unreachable earlier in this call failed this alert too
        if tries >= settings.max_attempts:
            log.error(
                "alert webhook %s: gave up on %r after %d attempts (last: %s)",
                hook.label,
                alert.title,
                tries,
                done.reason,
            )
        else:
            left.append(Pending(hook.label, alert, tries, done.reason))

    for waiting in pending:
        hook = hooks.get(waiting.webhook)
        if hook is None:
            log.warning(
                "alert webhook %s is no longer configured: dropped %r",
                waiting.webhook,
                waiting.alert.title,
            )
            continue
        attempt(waiting.alert, hook, waiting.attempts)
    log_alerts(alerts, settings, log)
    for alert in alerts:
        for hook in settings.webhooks:
            if at_least(alert.routing_severity, hook.min_severity):
                attempt(alert, hook, 0)
    return out, left


@contextmanager
def outbox_lock(path: Path, timeout: float = 120.0) -> Iterator[bool]:
    """Holds an exclusive lock on `<path>.lock` (filelock) while alerts are posted and the outbox
    rewritten (a lock of its own: slow webhooks never hold up promotions). Yields False when
    another process kept it for `timeout` seconds."""
    from filelock import FileLock, Timeout

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{path}.lock", thread_local=False)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def load_outbox(path: Path) -> list[Pending]:
    """Returns the pending deliveries stored at path (none when there is no file).

    Raises:
        SchemaError: the file is not an outbox.
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: not valid JSON ({exc}); delete it to drop them") from None
    try:
        if not isinstance(raw, dict) or raw.get("version") != 1:
            raise ValueError("expected an object with version 1")
        return [Pending.from_dict(item) for item in raw["pending"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise SchemaError(f"{path}: not an alert outbox ({exc}); delete it to drop them") from None


def save_outbox(path: Path, pending: Sequence[Pending]) -> Path:
    """Writes the pending deliveries atomically as JSON."""
    payload = {"version": 1, "pending": [p.to_dict() for p in pending]}
    return write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", Path(path))


def describe(alert: Alert) -> str:
    """Returns the alert as one log line: severity, title, text, batch and incident."""
    where = f"batch {alert.batch_id}" if alert.batch_id else "no batch"
    incident = f", incident {alert.incident_key}" if alert.incident_key else ""
    text = "; ".join(line.removeprefix("- ") for line in alert.text.splitlines() if line.strip())
    return f"[{alert.severity}] {alert.title}: {text} ({where}{incident})"


def _post_json(url: str, payload: dict[str, Any], timeout: float) -> None:
    """POSTs payload as JSON and reads the answer.

    Raises:
        _Refused: the answer had an HTTP error status.
        _Unreachable: no answer (connection refused, name unknown, timeout, broken connection).
    """
    body = json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.build_opener().open(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        shown = exc.read(_BODY_SHOWN).decode("utf-8", "replace").strip()
        shown = " ".join(shown.split())  # one line, whatever the server sent
        raise _Refused(f"HTTP {exc.code} {exc.reason}" + (f": {shown}" if shown else "")) from None
    except TimeoutError:
        raise _Unreachable(f"no answer within {timeout:g} s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise _Unreachable(f"no answer within {timeout:g} s") from None
        raise _Unreachable(f"cannot connect: {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Unreachable(f"connection failed: {type(exc).__name__}: {exc}") from None


def load_state(path: Path) -> IncidentState:
    """Returns the incident state stored at path; none yet (no file) is no open incident.

    Raises:
        SchemaError: the file is not an incident state.
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return IncidentState()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: not valid JSON ({exc}); delete it to reset alerts") from None
    try:
        if not isinstance(raw, dict):
            raise ValueError(f"expected an object, got {type(raw).__name__}")
        return IncidentState.from_dict(raw)
    except ValueError as exc:
        raise SchemaError(f"{path}: {exc}; delete it to reset alerts") from None


def save_state(path: Path, state: IncidentState) -> Path:
    """Writes the incident state atomically as JSON."""
    return write_text(json.dumps(state.to_dict(), indent=2, sort_keys=True) + "\n", Path(path))


_APPRISE_TYPES = {"info": "info", "warning": "warning", "critical": "failure"}


def _notify_apprise(url: str, alert: Alert, timeout: float) -> None:
    """Sends the alert through apprise (title, markdown body, its notification type).

    Raises:
        _Refused: apprise does not know the URL, or the service did not take the message (the
            reason is apprise's own log line, with any secret of the URL left out).
    """
    import apprise

    sep = "&" if "?" in url else "?"
    timeouts = "" if ("cto=" in url or "rto=" in url) else f"{sep}cto={timeout:g}&rto={timeout:g}"
    app = apprise.Apprise()
    if not app.add(url + timeouts):
        raise _Refused("apprise does not recognise this URL")
    kind = "success" if alert.kind == "resolved" else _APPRISE_TYPES[alert.severity]
    with apprise.LogCapture(level=logging.WARNING) as captured:
        sent = app.notify(
            title=f"[{alert.severity}] {alert.title}",
            body=_apprise_body(alert),
            notify_type=kind,
            body_format=apprise.NotifyFormat.MARKDOWN,
        )
        said = " ".join(captured.getvalue().split())
    if not sent:
        raise _Refused(f"apprise: {said[-_BODY_SHOWN:] or 'not delivered'}")


def _apprise_body(alert: Alert) -> str:
    lines = [alert.text or alert.title]
    lines += [f"- **{k}**: {v}" for k, v in alert.fields.items()]
    if alert.link:
        lines.append(f"[Details]({alert.link})")
    lines.append(f"_{describe(alert)}_")
    return "\n".join(lines)


def _deliver(
    alert: Alert, hook: WebhookSettings, unreachable: dict[str, str], log: Logger
) -> Delivery:
    label = hook.label
    if label in unreachable:
        reason = f"{_NOT_TRIED} unreachable earlier in this batch ({unreachable[label]})"
        return Delivery(label, alert.title, alert.incident_key, "failed", reason)
    try:
        if hook.is_webhook:
            _post_json(hook.url, slack_payload(alert), hook.timeout_seconds)
        else:
            _notify_apprise(hook.url, alert, hook.timeout_seconds)
    except (_Refused, _Unreachable) as exc:
        if isinstance(exc, _Unreachable):
            unreachable[label] = str(exc)
        log.warning("alert webhook %s failed: %s (alert: %s)", label, exc, alert.title)
        return Delivery(label, alert.title, alert.incident_key, "failed", str(exc))
    return Delivery(label, alert.title, alert.incident_key, "delivered")
