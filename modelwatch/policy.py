"""The retrain policy: drift, performance, staleness and manual rules, with a cooldown (pure)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from modelwatch.errors import ConfigError
from modelwatch.performance import format_number, format_percent, worsening
from modelwatch.settings import RetrainSettings

logger = logging.getLogger(__name__)

# Shares and relative drops are ratios of floats: 0.2 / 0.8 is 0.24999999999999994, which must
# still count as reaching a 25 % limit.
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class PolicyInputs:
    """What the policy looks at for one batch; None means "not known yet"."""

    batch_index: int
    drift_share: float | None
    metric: str
    current_metric: float | None
    baseline_metric: float | None
    batches_since_champion: int
    batches_since_retrain: int | None
    force: bool = False
    force_reason: str | None = None

    def __post_init__(self) -> None:
        if self.drift_share is not None and not 0 <= self.drift_share <= 1:
            raise ValueError(f"drift_share must be in [0, 1], got {self.drift_share}")
        if self.batches_since_champion < 0:
            raise ValueError(
                f"batches_since_champion must be >= 0, got {self.batches_since_champion}"
            )
        if self.batches_since_retrain is not None and self.batches_since_retrain < 0:
            raise ValueError(
                f"batches_since_retrain must be >= 0, got {self.batches_since_retrain}"
            )


@dataclass(frozen=True)
class RetrainDecision:
    """Whether to retrain, which rules fired, and why, as sentences."""

    retrain: bool
    rules_fired: tuple[str, ...]
    reasons: tuple[str, ...]
    blocked_by: str | None

    def summary(self) -> str:
        """Returns one line: the verdict followed by every reason."""
        if self.retrain:
            verdict = "retrain"
        elif self.blocked_by:
            verdict = f"no retrain (blocked by {self.blocked_by})"
        else:
            verdict = "no retrain"
        return f"{verdict}: {'; '.join(self.reasons)}"

    def to_dict(self) -> dict:
        """Returns a JSON-compatible dict."""
        return {
            "retrain": self.retrain,
            "rules_fired": list(self.rules_fired),
            "reasons": list(self.reasons),
            "blocked_by": self.blocked_by,
        }


def decide_retraining(
    inputs: PolicyInputs, settings: RetrainSettings, task: str
) -> RetrainDecision:
    """Returns the retrain decision for one batch.

    Any rule that fires asks for a retrain. During the cooldown (fewer than
    settings.cooldown_batches batches since the last retrain) the automatic rules are still
    reported but do not retrain; a manual retrain is never blocked.

    Raises:
        ConfigError: force without a reason, or a metric unknown for the task.
    """
    fired: list[str] = []
    reasons: list[str] = []
    quiet: list[str] = []
    for rule, check in [
        ("drift", _drift),
        ("performance", _performance),
        ("staleness", _staleness),
    ]:
        hit, sentence = check(inputs, settings, task)
        if hit:
            fired.append(rule)
            reasons.append(f"{rule}: {sentence}")
        else:
            quiet.append(sentence)
    if inputs.force:
        reason = (inputs.force_reason or "").strip()
        if not reason:
            raise ConfigError("manual retrain needs a reason")
        fired.append("manual")
        reasons.append(f"manual: {reason}")
    decision = _apply_cooldown(inputs, settings, fired, reasons, quiet)
    logger.info("batch %d: %s", inputs.batch_index, decision.summary())
    return decision


def _apply_cooldown(
    inputs: PolicyInputs,
    settings: RetrainSettings,
    fired: list[str],
    reasons: list[str],
    quiet: list[str],
) -> RetrainDecision:
    since = inputs.batches_since_retrain
    cooling = since is not None and since < settings.cooldown_batches
    if not fired:
        return RetrainDecision(False, (), (f"no rule fired: {', '.join(quiet)}",), None)
    if not cooling:
        return RetrainDecision(True, tuple(fired), tuple(reasons), None)
    cooldown = (
        f"cooldown: last retrain was {_batches(since)} ago "
        f"(cooldown {_batches(settings.cooldown_batches)})"
    )
    if inputs.force:
        return RetrainDecision(
            True, tuple(fired), (*reasons, f"{cooldown}, ignored for a manual retrain"), None
        )
    return RetrainDecision(
        False, tuple(fired), (*reasons, f"{cooldown}, so automatic retraining waits"), "cooldown"
    )


def _reached(value: float, limit: float) -> bool:
    return value >= limit - _TOLERANCE


def _drift(inputs: PolicyInputs, settings: RetrainSettings, task: str) -> tuple[bool, str]:
    limit = f"{settings.max_drift_share:.2f}"
    if inputs.drift_share is None:
        return False, "drift share unknown"
    share = f"{inputs.drift_share:.2f}"
    if _reached(inputs.drift_share, settings.max_drift_share):
        return True, f"share of drifted features {share} >= {limit}"
    return False, f"drift share {share} < {limit}"


def _performance(inputs: PolicyInputs, settings: RetrainSettings, task: str) -> tuple[bool, str]:
    m, cur, base = inputs.metric, inputs.current_metric, inputs.baseline_metric
    if cur is None or base is None:
        missing = "current value" if cur is None else "champion's baseline"
        worsening(m, 0.0, 0.0, task)  # still reject a metric that does not belong to the task
        return False, f"{m} {missing} unknown"
    drop = worsening(m, base, cur, task)
    limit = format_percent(settings.max_performance_drop)
    # a zero baseline has no scale: worsening() is then an absolute difference
    amount = format_number(abs(drop)) if base == 0 else format_percent(abs(drop))
    side = "worse" if drop >= 0 else "better"
    sentence = (
        f"{m} {format_number(cur)} is {amount} {side} than the champion's baseline "
        f"{format_number(base)} (limit {limit})"
    )
    return _reached(drop, settings.max_performance_drop), sentence


def _staleness(inputs: PolicyInputs, settings: RetrainSettings, task: str) -> tuple[bool, str]:
    age, limit = inputs.batches_since_champion, settings.max_model_age_batches
    return age >= limit, f"champion is {_batches(age)} old (limit {limit})"


def _batches(n: int | None) -> str:
    return f"{n} batch" if n == 1 else f"{n} batches"
