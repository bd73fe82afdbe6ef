"""The retrain policy: drift, performance, estimated-performance, staleness and manual rules,
persistence, cooldown, budget, the expected gain learned from past challenges and run mode,
each decision a self-contained record (pure)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from itertools import pairwise
from typing import Any, Literal

from modelwatch.errors import ConfigError
from modelwatch.performance.metrics import (
    format_number,
    format_percent,
    metric_direction,
    worsening,
)
from modelwatch.settings import RetrainSettings, Severity

logger = logging.getLogger(__name__)

RunMode = Literal["enabled", "dry_run", "disabled"]
RULES = ("drift", "performance", "estimated", "staleness", "manual")
# the rules that must persist M of N batches
PERSISTENT_RULES = ("drift", "performance", "estimated")
DEFAULT_SEVERITY: dict[str, Severity] = {
    "drift": "warning",
    "performance": "critical",
    "estimated": "warning",
    "staleness": "info",
    "manual": "info",
}
_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}

# Shares and relative drops are ratios of floats: 0.2 / 0.8 is 0.24999999999999994, which must
# still count as reaching a 25 % limit.
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class BatchSignal:
    """The rules an earlier batch violated (before persistence), as its decision recorded them."""

    batch_index: int
    violated: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "violated", frozenset(self.violated))
        unknown = sorted(self.violated - set(RULES))
        if unknown:
            raise ValueError(f"batch {self.batch_index}: unknown rules {unknown} (known: {RULES})")

    def to_dict(self) -> dict[str, Any]:
        return {"batch_index": self.batch_index, "violated": sorted(self.violated)}


@dataclass(frozen=True)
class Challenge:
    """An earlier challenger compared with the champion it faced: its relative gain in the
    promotion metric on the shared holdout (positive: better) and whether it was promoted."""

    batch_index: int
    gain: float
    promoted: bool

    def to_dict(self) -> dict[str, Any]:
        return {"batch_index": self.batch_index, "gain": self.gain, "promoted": self.promoted}


@dataclass(frozen=True)
class Evaluated:
    """The realized metric of one of the champion's labelled batches, with its interval."""

    batch_index: int
    value: float
    interval: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.interval is not None:
            object.__setattr__(self, "interval", tuple(float(v) for v in self.interval))

    def to_dict(self) -> dict[str, Any]:
        interval = list(self.interval) if self.interval is not None else None
        return {"batch_index": self.batch_index, "value": self.value, "interval": interval}


@dataclass(frozen=True)
class PolicyInputs:
    """What the policy looks at for one batch; None means "not known yet".

    recent: earlier batches' violations, oldest first (only those in the persistence window
    matter). retrain_batches: batch indices of earlier retrains, manual ones included.
    weighted_drift_share: the champion's importance of the drifted features (sum 1 over the
    tested ones), with its first-batch value beside it. current_interval: the bootstrap interval
    (low, high) of current_metric. estimated_metric: the CBPE estimate on this batch, before
    labels. challenges: the earlier challenges, oldest first (the last few matter).
    evaluated: the champion's labelled batches, oldest first, the newest being current_metric's
    (how long performance has been below its limit). holdout_batches: training's holdout.
    """

    batch_index: int
    drift_share: float | None
    metric: str
    current_metric: float | None
    baseline_metric: float | None
    baseline_drift_share: float | None
    batches_since_champion: int
    recent: tuple[BatchSignal, ...] = ()
    retrain_batches: tuple[int, ...] = ()
    force: bool = False
    force_reason: str | None = None
    on_probation: bool = False  # the champion is on probation, not judged yet
    weighted_drift_share: float | None = None
    baseline_weighted_drift_share: float | None = None
    prediction_drifted: bool | None = None
    current_interval: tuple[float, float] | None = None
    estimated_metric: float | None = None
    challenges: tuple[Challenge, ...] = ()
    evaluated: tuple[Evaluated, ...] = ()
    holdout_batches: int = 1

    def __post_init__(self) -> None:
        recent = tuple(s if isinstance(s, BatchSignal) else BatchSignal(**s) for s in self.recent)
        object.__setattr__(self, "recent", recent)
        object.__setattr__(self, "retrain_batches", tuple(self.retrain_batches))
        challenges = tuple(
            c if isinstance(c, Challenge) else Challenge(**c) for c in self.challenges
        )
        object.__setattr__(self, "challenges", challenges)
        evaluated = tuple(e if isinstance(e, Evaluated) else Evaluated(**e) for e in self.evaluated)
        object.__setattr__(self, "evaluated", evaluated)
        if self.current_interval is not None:
            low, high = (float(v) for v in self.current_interval)
            if not low <= high:
                raise ValueError(f"current_interval must be (low, high): {self.current_interval}")
            object.__setattr__(self, "current_interval", (low, high))
        for name in (
            "drift_share",
            "baseline_drift_share",
            "weighted_drift_share",
            "baseline_weighted_drift_share",
        ):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.batches_since_champion < 0:
            raise ValueError(
                f"batches_since_champion must be >= 0, got {self.batches_since_champion}"
            )
        indices = [s.batch_index for s in recent]
        if any(a >= b for a, b in pairwise([*indices, self.batch_index])):
            raise ValueError(
                f"recent must be earlier batches, oldest first, without repeats: got indices "
                f"{indices} for batch {self.batch_index}"
            )
        later = [i for i in self.retrain_batches if i > self.batch_index]
        if later:
            raise ValueError(f"retrain_batches {later} are after batch {self.batch_index}")

    @property
    def batches_since_retrain(self) -> int | None:
        """Batches since the last retrain (0: this very batch), None if there was none."""
        return self.batch_index - max(self.retrain_batches) if self.retrain_batches else None

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-compatible dict."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return out | {
            "recent": [s.to_dict() for s in self.recent],
            "retrain_batches": list(self.retrain_batches),
            "current_interval": (
                list(self.current_interval) if self.current_interval is not None else None
            ),
            "challenges": [c.to_dict() for c in self.challenges],
            "evaluated": [e.to_dict() for e in self.evaluated],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyInputs:
        """Reads back to_dict() or RetrainDecision.inputs (whose extra "task" is ignored)."""
        return cls(**{k: v for k, v in data.items() if k != "task"})


@dataclass(frozen=True)
class RetrainDecision:
    """Whether to retrain, which rules fired, why (as sentences), and everything it was based on.

    violated: the rules this batch broke before persistence (store it for later batches);
    rules_fired: those that count (persistent where required), even when a gate blocked them.
    """

    retrain: bool
    rules_fired: tuple[str, ...]
    reasons: tuple[str, ...]
    blocked_by: str | None
    violated: tuple[str, ...] = ()
    severity: Severity = "info"
    mode: RunMode = "enabled"
    inputs: dict[str, Any] = field(default_factory=dict, hash=False)
    thresholds: dict[str, Any] = field(default_factory=dict, hash=False)
    window_batches: int | None = None  # train the challenger on this many batches (None: as set)

    def summary(self) -> str:
        """Returns one line: the verdict followed by every reason."""
        if self.retrain:
            verdict = "retrain (dry run)" if self.mode == "dry_run" else "retrain"
        elif self.blocked_by:
            verdict = f"no retrain (blocked by {self.blocked_by})"
        else:
            verdict = "no retrain"
        return f"{verdict}: {'; '.join(self.reasons)}"

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-compatible dict; from_dict() reads it back."""
        return {
            "retrain": self.retrain,
            "rules_fired": list(self.rules_fired),
            "reasons": list(self.reasons),
            "blocked_by": self.blocked_by,
            "violated": list(self.violated),
            "severity": self.severity,
            "mode": self.mode,
            "inputs": self.inputs,
            "thresholds": self.thresholds,
            "window_batches": self.window_batches,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetrainDecision:
        """Reads a stored record back; records older than the new fields get their defaults."""
        return cls(
            retrain=data["retrain"],
            rules_fired=tuple(data["rules_fired"]),
            reasons=tuple(data["reasons"]),
            blocked_by=data["blocked_by"],
            violated=tuple(data.get("violated", ())),
            severity=data.get("severity", "info"),
            mode=data.get("mode", "enabled"),
            inputs=dict(data.get("inputs", {})),
            thresholds=dict(data.get("thresholds", {})),
            window_batches=data.get("window_batches"),
        )


@dataclass(frozen=True)
class _Finding:
    hit: bool
    sentence: str


def decide_retraining(
    inputs: PolicyInputs, settings: RetrainSettings, task: str
) -> RetrainDecision:
    """Returns the retrain decision for one batch.

    Every rule whose threshold is set is checked; reaching a limit violates it. Drift and
    performance count only when this batch violates them and at least
    settings.persistence.violations of the last settings.persistence.window batches (this one
    included) did. Any rule that counts asks for a retrain, which run_mode "disabled" always
    blocks and the cooldown and the budget block unless it is manual.

    Raises:
        ConfigError: force without a reason, or a metric unknown for the task.
    """
    metric_direction(inputs.metric, task)  # a metric of another task is an error, known or not
    violated, fired, reasons = _evaluate(inputs, settings, task)
    blocked_by, gate_reasons = _gates(inputs, settings, fired)
    window, why = _after_drop(inputs, settings, task, fired)
    if why and window is None and blocked_by is None and not inputs.force:
        blocked_by = "drop window"
    gate_reasons += [why] if why else []
    retrain = bool(fired) and blocked_by is None
    if not fired and violated:
        blocked_by = "persistence"
    if retrain and settings.run_mode == "dry_run":
        gate_reasons.append("dry run: the retrain is recorded, no alias is moved")
    decision = RetrainDecision(
        retrain=retrain,
        rules_fired=tuple(fired),
        reasons=(*reasons, *gate_reasons),
        blocked_by=blocked_by,
        violated=tuple(violated),
        severity=max(
            (_severity(settings, r) for r in violated), key=_SEVERITY_RANK.get, default="info"
        ),
        mode=settings.run_mode,
        inputs={"task": task, **inputs.to_dict()},
        thresholds=_thresholds(settings),
        window_batches=window if retrain else None,
    )
    logger.info("batch %d: %s", inputs.batch_index, decision.summary())
    return decision


def _evaluate(
    inputs: PolicyInputs, settings: RetrainSettings, task: str
) -> tuple[list[str], list[str], list[str]]:
    """Returns the rules this batch violated, those that count after persistence, and why."""
    findings = {
        "drift": _drift(inputs, settings),
        "performance": _performance(inputs, settings, task),
        "estimated": _estimated(inputs, settings, task),
        "staleness": _staleness(inputs, settings),
    }
    violated: list[str] = []
    fired: list[str] = []
    reasons: list[str] = []
    quiet: list[str] = []
    for rule, checks in findings.items():
        hits = [c.sentence for c in checks if c.hit]
        if not hits:
            quiet += [c.sentence for c in checks]
            continue
        violated.append(rule)
        reasons += [f"{rule}: {s}" for s in hits]
        persists, sentence = _persistence(inputs, settings, rule)
        reasons += [sentence] if sentence else []
        fired += [rule] if persists else []
    if inputs.force:
        reason = (inputs.force_reason or "").strip()
        if not reason:
            raise ConfigError("manual retrain needs a reason")
        violated.append("manual")
        fired.append("manual")
        reasons.append(f"manual: {reason}")
    if not violated:
        reasons.append(f"no rule fired: {', '.join(quiet) or 'every rule is off'}")
    return violated, fired, reasons


def _severity(settings: RetrainSettings, rule: str) -> Severity:
    return settings.severity.get(rule, DEFAULT_SEVERITY[rule])


def _thresholds(settings: RetrainSettings) -> dict[str, Any]:
    dump = settings.model_dump(mode="json")
    return dump | {"severity": {r: _severity(settings, r) for r in RULES}}


def _persistence(inputs: PolicyInputs, settings: RetrainSettings, rule: str) -> tuple[bool, str]:
    """Whether a rule this batch violated has persisted; a sentence when M of N is not 1 of N."""
    need, window = settings.persistence.violations, settings.persistence.window
    if rule not in PERSISTENT_RULES or need == 1:
        return True, ""
    first = inputs.batch_index - window + 1
    count = 1 + sum(1 for s in inputs.recent if s.batch_index >= first and rule in s.violated)
    sentence = (
        f"persistence: {rule} violated in {count} of the last {_batches(window)} "
        f"(needs {need} of {window})"
    )
    return count >= need, sentence if count >= need else f"{sentence}, so it waits"


def _gates(
    inputs: PolicyInputs, settings: RetrainSettings, fired: list[str]
) -> tuple[str | None, list[str]]:
    """Returns what blocks the retrain (None: nothing) and a sentence per gate that applies."""
    if not fired:
        return None, []
    blocked: list[str] = []
    reasons: list[str] = []
    if settings.run_mode == "disabled":
        blocked.append("run_mode disabled")
        reasons.append("run_mode: disabled in params.yaml, so nothing is retrained")
    suffix = "ignored for a manual retrain" if inputs.force else "so automatic retraining waits"
    since = inputs.batches_since_retrain
    if since is not None and since < settings.cooldown_batches:
        blocked += [] if inputs.force else ["cooldown"]
        reasons.append(
            f"cooldown: last retrain was {_batches(since)} ago "
            f"(cooldown {_batches(settings.cooldown_batches)}), {suffix}"
        )
    wait, why = _expected_gain(inputs, settings)
    if wait is not None and since is not None and since < wait:
        blocked += [] if inputs.force else ["expected gain"]
        reasons.append(f"expected gain: {why}, {suffix}")
    if inputs.on_probation:
        blocked += [] if inputs.force else ["probation"]
        reasons.append(
            "probation: the champion is on probation and not judged yet, "
            + (
                "a manual retrain goes ahead (its promotion would end that probation as superseded)"
                if inputs.force
                else "so automatic retraining waits for its verdict"
            )
        )
    budget = settings.budget
    if budget.max_retrains is not None:
        first = inputs.batch_index - budget.per_batches + 1
        used = sum(1 for i in inputs.retrain_batches if i >= first)
        if used >= budget.max_retrains:
            blocked += [] if inputs.force else ["budget"]
            over = "this manual retrain exceeds it" if inputs.force else suffix
            reasons.append(
                f"budget: {used} retrain{'' if used == 1 else 's'} already in the "
                f"{_batches(budget.per_batches)} ending with this one "
                f"(at most {budget.max_retrains}), {over}"
            )
    return (blocked[0] if blocked else None), reasons


def _reached(value: float, limit: float) -> bool:
    return value >= limit - _TOLERANCE * max(1.0, abs(limit))


def _drift(inputs: PolicyInputs, settings: RetrainSettings) -> list[_Finding]:
    absolute, relative = settings.max_drift_share, settings.max_drift_share_increase
    out = _prediction_drift(inputs, settings)
    if absolute is None and relative is None:
        return out
    share, base = inputs.drift_share, inputs.baseline_drift_share
    what = "share of drifted features"
    if settings.drift_weighting == "importance" and inputs.weighted_drift_share is not None:
        share, base = inputs.weighted_drift_share, inputs.baseline_weighted_drift_share
        what = "importance of drifted features"
    if share is None:
        return [*out, _Finding(False, "drift share unknown")]
    if absolute is not None:
        hit = _reached(share, absolute)
        text = what if hit else "drift share"
        out.append(_Finding(hit, f"{text} {share:.2f} {'>=' if hit else '<'} {absolute:.2f}"))
    if relative is not None and base is None:
        out.append(_Finding(False, "champion's first-batch drift share unknown"))
    elif relative is not None:
        rise = share - base
        hit = _reached(rise, relative)
        text = what if hit else "drift share"
        out.append(
            _Finding(
                hit,
                f"{text} {share:.2f} is {abs(rise):.2f} {'above' if rise >= 0 else 'below'} "
                f"the champion's first-batch share {base:.2f} (limit {relative:.2f})",
            )
        )
    return out


def _prediction_drift(inputs: PolicyInputs, settings: RetrainSettings) -> list[_Finding]:
    if not settings.prediction_drift:
        return []
    if inputs.prediction_drifted is None:
        return [_Finding(False, "prediction drift unknown")]
    drifted = inputs.prediction_drifted
    return [_Finding(drifted, "the prediction drifted" if drifted else "prediction stable")]


def _performance(inputs: PolicyInputs, settings: RetrainSettings, task: str) -> list[_Finding]:
    m, cur, base = inputs.metric, inputs.current_metric, inputs.baseline_metric
    relative, absolute = settings.max_performance_drop, settings.max_performance_drop_abs
    limit = settings.performance_limit
    if relative is None and absolute is None and limit is None:
        return []
    if cur is None:
        return [_Finding(False, f"{m} current value unknown")]
    interval = inputs.current_interval if settings.performance_evidence == "interval" else None
    if interval is not None:  # judged on the interval's better end: all of it must be past
        better = min(interval) if metric_direction(m, task) == "min" else max(interval)
        low, high = (format_number(v) for v in interval)
        label = (
            f"{m} {format_number(cur)} (interval {low} to {high}), at its better end "
            f"{format_number(better)},"
        )
        return _judge_value(m, better, base, relative, absolute, limit, task, label)
    return _judge_value(m, cur, base, relative, absolute, limit, task)


def _judge_value(
    m: str,
    cur: float,
    base: float | None,
    relative: float | None,
    absolute: float | None,
    limit: float | None,
    task: str,
    label: str | None = None,
) -> list[_Finding]:
    """The performance limits on one value of the metric, named `label` in the sentences."""
    label = label or f"{m} {format_number(cur)}"
    out = []
    if (relative is not None or absolute is not None) and base is None:
        out.append(_Finding(False, f"{m} champion's baseline unknown"))
    elif relative is not None or absolute is not None:
        out += _versus_baseline(m, cur, base, relative, absolute, task, label)
    if limit is not None:
        hit = _reached(_past(m, cur, limit, task), 0.0)
        bad, good = ("above", "below") if metric_direction(m, task) == "min" else ("below", "above")
        where = f"at or {bad}" if hit else good
        sentence = f"{label} is {where} the limit {format_number(limit)}"
        out.append(_Finding(hit, sentence))
    return out


def _versus_baseline(
    m: str,
    cur: float,
    base: float,
    relative: float | None,
    absolute: float | None,
    task: str,
    label: str,
) -> list[_Finding]:
    """The relative and the absolute worsening against the champion's baseline."""
    out = []
    versus = f"the champion's baseline {format_number(base)}"
    if relative is not None:
        drop = worsening(m, base, cur, task)
        # a zero baseline has no scale: worsening() is then an absolute difference
        amount = format_number(abs(drop)) if base == 0 else format_percent(abs(drop))
        side = "worse" if drop >= 0 else "better"
        sentence = f"{label} is {amount} {side} than {versus}"
        limit = format_percent(relative)
        out.append(_Finding(_reached(drop, relative), f"{sentence} (limit {limit})"))
    if absolute is not None:
        diff = _past(m, cur, base, task)
        side = "worse" if diff >= 0 else "better"
        sentence = f"{label} is {format_number(abs(diff))} {side} than {versus}"
        limit = format_number(absolute)
        out.append(_Finding(_reached(diff, absolute), f"{sentence} (limit {limit})"))
    return out


def _past(metric: str, value: float, bound: float, task: str) -> float:
    """How far value is on the bad side of bound, in the metric's units (negative: good side)."""
    return value - bound if metric_direction(metric, task) == "min" else bound - value


def _estimated(inputs: PolicyInputs, settings: RetrainSettings, task: str) -> list[_Finding]:
    m, est, base = inputs.metric, inputs.estimated_metric, inputs.baseline_metric
    limit = settings.max_estimated_drop
    if limit is None or task != "classification":
        return []
    if est is None or base is None:
        return [_Finding(False, f"{m} estimate unknown" if est is None else "baseline unknown")]
    drop = worsening(m, base, est, task)
    side = "worse" if drop >= 0 else "better"
    sentence = (
        f"{m} estimated before labels {format_number(est)} is {format_percent(abs(drop))} "
        f"{side} than the champion's baseline {format_number(base)} "
        f"(limit {format_percent(limit)})"
    )
    return [_Finding(_reached(drop, limit), sentence)]


def _after_drop(
    inputs: PolicyInputs, settings: RetrainSettings, task: str, fired: list[str]
) -> tuple[int | None, str]:
    """With window_after_drop, when performance fired: the window the challenger trains on (the
    labelled batches since performance first fell below its limit, without the holdout) and,
    when there is none yet, why the retrain waits for one."""
    if not settings.window_after_drop or "performance" not in fired or not inputs.evaluated:
        return None, ""
    run: list[Evaluated] = []
    for e in reversed(inputs.evaluated):
        probe = dataclasses.replace(inputs, current_metric=e.value, current_interval=e.interval)
        if not any(f.hit for f in _performance(probe, settings, task)):
            break
        run.insert(0, e)
    if not run:
        return None, ""
    first, after = run[0].batch_index, len(run) - inputs.holdout_batches
    if after >= 1:
        return after, (
            f"window: performance has been below its limit since batch {first}, so the "
            f"challenger trains on the {_batches(after)} since then that the holdout leaves"
        )
    if inputs.force:
        return None, ""
    return None, (
        f"drop window: performance fell below its limit at batch {first}; a challenger "
        f"trained now would learn only from before the drop, so the retrain waits for "
        f"{_batches(inputs.holdout_batches + 1)} labelled since then (one to learn from, "
        f"{_batches(inputs.holdout_batches)} to compare on)"
    )


def _expected_gain(inputs: PolicyInputs, settings: RetrainSettings) -> tuple[int | None, str]:
    """The wait after a retrain that the past challenges ask for (None: no longer than the
    cooldown) and why: the mean gain of the last challengers, and how many lost in a row."""
    gain = settings.gain
    last = inputs.challenges[-gain.lookback :]
    if gain.backoff <= 1 or not last:
        return None, ""
    expected = float(sum(c.gain for c in last) / len(last))
    losses = 0
    for c in reversed(inputs.challenges):
        if c.promoted:
            break
        losses += 1
    if expected >= gain.min_expected or losses == 0:
        return None, ""
    wait = min(
        int(round(max(settings.cooldown_batches, 1) * gain.backoff**losses)),
        gain.max_wait_batches,
    )
    since = inputs.batches_since_retrain
    return wait, (
        f"the last {len(last)} challenger(s) gained {format_percent(expected)} on average "
        f"(needs {format_percent(gain.min_expected)}) and {losses} lost in a row, so retrains "
        f"wait {_batches(wait)} (last was {_batches(since)} ago)"
    )


def _staleness(inputs: PolicyInputs, settings: RetrainSettings) -> list[_Finding]:
    age, limit = inputs.batches_since_champion, settings.max_model_age_batches
    if limit is None:
        return []
    # age: accepted batches since the champion's data ended or its last challenge (tasks/policy)
    return [_Finding(age >= limit, f"champion is {_batches(age)} old (limit {limit})")]


def _batches(n: int | None) -> str:
    return f"{n} batch" if n == 1 else f"{n} batches"
