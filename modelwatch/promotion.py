"""Whether a retrained candidate replaces the champion: primary metric plus guard metrics (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from modelwatch.errors import InsufficientDataError
from modelwatch.performance import format_number, format_percent, metric_direction, worsening
from modelwatch.settings import PromotionSettings

# Relative improvements are float ratios; a candidate exactly at the limit must pass.
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class PromotionDecision:
    """Whether to promote the candidate, on which numbers, and every check as a sentence."""

    promote: bool
    candidate_version: str
    champion_version: str | None
    metric: str
    candidate_score: float
    champion_score: float | None
    improvement: float | None
    reasons: tuple[str, ...]

    def summary(self) -> str:
        """Returns one line: the verdict followed by every check."""
        if self.promote and self.champion_version is None:
            verdict = f"promote candidate version {self.candidate_version}"
        elif self.promote:
            verdict = (
                f"promote candidate version {self.candidate_version} "
                f"over champion version {self.champion_version}"
            )
        else:
            verdict = (
                f"keep champion version {self.champion_version}, "
                f"reject candidate version {self.candidate_version}"
            )
        return f"{verdict}: {'; '.join(self.reasons)}"

    def to_dict(self) -> dict:
        """Returns a JSON-compatible dict."""
        out = asdict(self)
        out["reasons"] = list(self.reasons)
        return out


def compare_models(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    settings: PromotionSettings,
    task: str,
    *,
    candidate_version: str,
    champion_version: str | None,
) -> PromotionDecision:
    """Returns whether the candidate should become champion, scored on the same holdout.

    The candidate must improve settings.metric by at least settings.min_improvement (relative,
    direction-aware; absolute if the champion scores 0) and must not be worse than the champion by
    more than the tolerance (absolute) on any guard metric. Without a champion it is promoted.

    Raises:
        InsufficientDataError: a metric needed for a check is missing or not finite.
        ConfigError: a metric is not one of the task's metrics.
    """
    if (champion is None) != (champion_version is None):
        raise ValueError("champion and champion_version must both be given or both be None")
    metric = settings.metric
    cand_score = _score(candidate, metric, "candidate", candidate_version, task)
    if champion is None:
        return PromotionDecision(
            True,
            candidate_version,
            None,
            metric,
            cand_score,
            None,
            None,
            ("no champion yet: first model is promoted",),
        )
    champ_score = _score(champion, metric, "champion", champion_version, task)
    improvement = -worsening(metric, champ_score, cand_score, task)
    ok, sentence = _primary_check(
        metric, cand_score, champ_score, improvement, settings.min_improvement
    )
    checks = [(ok, sentence)]
    for guard, tolerance in settings.guard_metrics.items():
        cand = _score(candidate, guard, "candidate", candidate_version, task)
        champ = _score(champion, guard, "champion", champion_version, task)
        checks.append(_guard_check(guard, cand, champ, tolerance, task))
    return PromotionDecision(
        promote=all(passed for passed, _ in checks),
        candidate_version=candidate_version,
        champion_version=champion_version,
        metric=metric,
        candidate_score=cand_score,
        champion_score=champ_score,
        improvement=improvement,
        reasons=tuple(sentence for _, sentence in checks),
    )


def _score(
    metrics: Mapping[str, float], name: str, role: str, version: str | None, task: str
) -> float:
    metric_direction(name, task)  # a metric of the wrong task is a config error, not missing data
    value = metrics.get(name)
    if value is None or not math.isfinite(value):
        has = ", ".join(sorted(metrics)) or "none"
        raise InsufficientDataError(
            f"{role} version {version}: metric {name!r} is missing or "
            f"not a finite number (got {value!r}; metrics: {has})"
        )
    return float(value)


def _primary_check(
    metric: str, cand: float, champ: float, improvement: float, needed: float
) -> tuple[bool, str]:
    passed = improvement >= needed - _TOLERANCE
    # a zero champion score has no scale: the improvement is then an absolute difference
    fmt = format_number if champ == 0 else format_percent
    side = "better" if improvement >= 0 else "worse"
    return passed, (
        f"{metric}: candidate {format_number(cand)} vs champion "
        f"{format_number(champ)} is {fmt(abs(improvement))} {side}, "
        f"needs at least {fmt(needed)} better ({'pass' if passed else 'fail'})"
    )


def _guard_check(
    metric: str, cand: float, champ: float, tolerance: float, task: str
) -> tuple[bool, str]:
    worse_by = cand - champ if metric_direction(metric, task) == "min" else champ - cand
    passed = worse_by <= tolerance + _TOLERANCE
    change = (
        f"{format_number(worse_by)} worse"
        if worse_by > 0
        else f"{format_number(-worse_by)} better"
        if worse_by < 0
        else "equal"
    )
    return passed, (
        f"guard {metric}: candidate {format_number(cand)} vs champion "
        f"{format_number(champ)} is {change}, tolerance {format_number(tolerance)} "
        f"({'pass' if passed else 'fail'})"
    )
