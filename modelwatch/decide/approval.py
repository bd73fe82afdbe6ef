"""Human approval of a promotion (promotion.approval: required): the answer as a value.

A challenger that passed every check waits for a person; the answer is one of approved,
rejected (by a person), timeout (nobody answered within promotion.approval_timeout) or
superseded (a newer challenger took its place). Only "approved" promotes. Pure: no Prefect,
no MLflow; tasks/approval.py records the answer in the ledger, the alias history, the model
version and the MLflow run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from modelwatch import names
from modelwatch.errors import ConfigError

Verdict = Literal["approved", "rejected", "timeout", "superseded"]
Choice = Literal["approve", "reject"]
SYSTEM = "modelwatch"  # who "answers" a timeout or a supersession


def format_duration(seconds: float) -> str:
    """Returns a duration as the largest whole unit that fits: 86400 -> "24h", 5 -> "5s"."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0 and not (unit == "d" and seconds == 86400):
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Answer:
    """How a pending approval ended: the verdict, who gave it, why, and when (ISO 8601 UTC)."""

    verdict: Verdict
    by: str
    reason: str
    at: str
    # the live shadow evidence when the approval was given (None: not judged yet; "": nothing
    # to record, promotion.live_shadow is not set) and whether it stops the promotion
    live_shadow: str | None = None
    live_shadow_blocks: bool = False

    @property
    def promotes(self) -> bool:
        return self.verdict == "approved" and not self.live_shadow_blocks

    def outcome(self) -> str:
        """Returns the sentence recorded as the approval's outcome."""
        if self.verdict == "approved" and self.live_shadow_blocks:
            return (
                f"approved by {self.by}: {self.reason}; not promoted because of the live shadow "
                f"evidence: {self.live_shadow}"
            )
        if self.verdict == "approved" and self.live_shadow:
            return f"approved by {self.by}: {self.reason}; {self.live_shadow}"
        if self.verdict == "approved":
            return f"approved by {self.by}: {self.reason}"
        if self.verdict == "rejected":
            return f"rejected by {self.by}: {self.reason}"
        return f"rejected: {self.reason}"

    def tags(self) -> dict[str, str]:
        """Returns the MLflow tags (model version and decision run) that record the answer."""
        tags = {
            names.APPROVAL: self.verdict,
            names.APPROVAL_BY: self.by,
            names.APPROVAL_REASON: self.reason,
            names.APPROVAL_AT: self.at,
        }
        if self.live_shadow:
            tags[names.APPROVAL_LIVE_SHADOW] = self.live_shadow
        if self.live_shadow_blocks:
            tags[names.PROMOTION] = "not_promoted_live_shadow"
        return tags

    def markdown(self, candidate: str) -> str:
        """Returns a paragraph for the model version's description."""
        head = f"**Approval of version {candidate}: {self.verdict}**"
        text = f"{head} by {self.by} at {self.at}: {self.reason}"
        if self.live_shadow_blocks:
            said = "**Not promoted because of the live shadow evidence**"
            return f"{text}. {said}: {self.live_shadow}"
        return f"{text}. {self.live_shadow}" if self.live_shadow else text

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Answer:
        return cls(
            verdict=raw["verdict"],
            by=str(raw["by"]),
            reason=str(raw["reason"]),
            at=str(raw["at"]),
            live_shadow=raw.get("live_shadow"),
            live_shadow_blocks=bool(raw.get("live_shadow_blocks", False)),
        )


def _now(at: datetime | None) -> str:
    return (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")


def from_form(decision: str, reason: str, by: str, at: datetime | None = None) -> Answer:
    """Returns the answer a person gave in the Prefect form or on the command line.

    Raises:
        ConfigError: the decision is not approve or reject, or the reason or the person is blank.
    """
    if decision not in ("approve", "reject"):
        raise ConfigError(f"approval decision: expected approve or reject, got {decision!r}")
    if not reason or not reason.strip():
        raise ConfigError("approval reason: must not be blank (say why)")
    if not by or not by.strip():
        raise ConfigError("approval by: must not be blank (who decides)")
    verdict: Verdict = "approved" if decision == "approve" else "rejected"
    return Answer(verdict, by.strip(), reason.strip(), _now(at))


def timed_out(timeout_seconds: float, at: datetime | None = None) -> Answer:
    """Returns the answer of an approval nobody gave within the configured time."""
    said = f"timeout: no answer within {format_duration(timeout_seconds)}"
    return Answer("timeout", SYSTEM, f"{said} (promotion.approval_timeout)", _now(at))


def superseded(newer_version: str, at: datetime | None = None) -> Answer:
    """Returns the answer of a pending approval that a newer challenger replaces."""
    return Answer("superseded", SYSTEM, f"superseded by v{newer_version}", _now(at))


def remaining(deadline: float, now: float) -> float:
    """Returns the seconds left before the deadline (0 when it has passed)."""
    return max(0.0, deadline - now)
