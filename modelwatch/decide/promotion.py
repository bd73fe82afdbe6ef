"""Whether a retrained challenger replaces the champion, judged on a holdout neither saw (pure).

Both models' predictions on the same labelled rows go through a list of checks: value and change
thresholds (a gate passed in by the caller: stores.gate wraps MLflow's model validation, so
this module imports no mlflow), a cap on suspiciously large gains, guard metrics, the
significance of the gain (paired bootstrap, or McNemar's exact test for accuracy), non-inferiority
in every segment, and a limit on the gap between the groups of each sensitive column. The checks
are in modelwatch.decide.checks and modelwatch.decide.group_checks, the statistics in
modelwatch.performance.significance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from modelwatch.decide.checks import (
    TOLERANCE,
    Check,
    Gate,
    cap_check,
    guard_check,
    significance_check,
    threshold_check,
    verdict,
)
from modelwatch.decide.group_checks import Groups, fairness_checks, segment_checks
from modelwatch.decide.probation import LiveShadow
from modelwatch.errors import InsufficientDataError, SchemaError
from modelwatch.performance.metrics import (
    compute_metrics,
    format_number,
    format_percent,
    metric_direction,
    worsening,
)
from modelwatch.performance.significance import Predictions
from modelwatch.settings import DataSettings, PromotionSettings
from modelwatch.training.scoring import SCORE

__all__ = [
    "Check",
    "Gate",
    "PromotionDecision",
    "compare_models",
    "decide_first_model",
    "live_shadow_check",
    "live_shadow_at_approval",
]


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
    checks: tuple[Check, ...] = ()
    candidate_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] | None = None
    decision_id: str = ""
    awaiting_approval: bool = False  # promote held until a person answers (promotion.approval)

    def summary(self) -> str:
        """Returns one line: the verdict followed by every check."""
        if self.promote and self.champion_version is None:
            verdict = f"promote candidate version {self.candidate_version}"
        elif self.promote:
            verdict = (
                f"promote candidate version {self.candidate_version} "
                f"over champion version {self.champion_version}"
            )
        elif self.champion_version is None:
            verdict = f"reject candidate version {self.candidate_version} (no champion yet)"
        else:
            verdict = (
                f"keep champion version {self.champion_version}, "
                f"reject candidate version {self.candidate_version}"
            )
        if self.awaiting_approval:
            verdict += " (awaiting approval)"
        return f"{verdict}: {'; '.join(self.reasons)}"

    def to_dict(self) -> dict:
        """Returns a JSON-compatible dict; from_dict reads it back."""
        out = asdict(self)
        out["reasons"] = list(self.reasons)
        out["checks"] = [asdict(c) for c in self.checks]
        return out

    @classmethod
    def from_dict(cls, raw: Mapping) -> PromotionDecision:
        """Returns the decision that to_dict wrote."""
        champ = raw.get("champion_metrics")
        return cls(
            promote=bool(raw["promote"]),
            candidate_version=str(raw["candidate_version"]),
            champion_version=raw["champion_version"],
            metric=raw["metric"],
            candidate_score=float(raw["candidate_score"]),
            champion_score=_opt_float(raw["champion_score"]),
            improvement=_opt_float(raw["improvement"]),
            reasons=tuple(raw["reasons"]),
            checks=tuple(Check(**c) for c in raw.get("checks", [])),
            candidate_metrics={k: float(v) for k, v in raw.get("candidate_metrics", {}).items()},
            champion_metrics=None if champ is None else {k: float(v) for k, v in champ.items()},
            decision_id=raw.get("decision_id", ""),
            awaiting_approval=bool(raw.get("awaiting_approval", False)),
        )


def compare_models(
    frame: pd.DataFrame,
    candidate: pd.DataFrame,
    champion: pd.DataFrame | None,
    settings: PromotionSettings,
    data: DataSettings,
    task: str,
    *,
    gate: Gate,
    candidate_version: str,
    champion_version: str | None,
    min_segment_rows: int = 30,
    decision_id: str = "",
    champion_baseline: float | None = None,
    live: LiveShadow | None = None,
) -> PromotionDecision:
    """Returns whether the challenger should become champion, both scored on the same holdout.

    `frame` holds the holdout rows (data.target, segment and sensitive columns); `candidate` and
    `champion` hold each model's data.prediction (and prediction_score for classification) for
    the same rows in the same order. Without a champion, settings.first_model decides. With one,
    the challenger is promoted only when every check passes; without any value or change
    threshold configured it never is. champion_baseline: the champion's own value of
    settings.metric when it was promoted (the cap on suspicious gains uses it when the
    champion has since become worse). live: the live shadow evidence (the scoring service's
    shadow against the champion on labelled production rows), judged by live_shadow_check when
    settings.live_shadow is set.

    Raises:
        InsufficientDataError: a metric needed for a check is missing or not finite.
        SchemaError: a needed column is absent, or a holdout row has no target.
        ConfigError: a metric is not one of the task's metrics, or McNemar on a regression.
        ValueError: predictions not aligned with frame; champion without champion_version.
    """
    if (champion is None) != (champion_version is None):
        raise ValueError("champion and champion_version must both be given or both be None")
    truth = _holdout_target(frame, settings, data)
    cand = _predictions(candidate, frame, data, task, "candidate", candidate_version)
    cand_metrics = _metrics(truth, cand, task, data)
    if champion is None:
        return decide_first_model(
            cand_metrics,
            settings,
            task,
            gate=gate,
            candidate_version=candidate_version,
            decision_id=decision_id,
        )
    champ = _predictions(champion, frame, data, task, "champion", champion_version)
    champ_metrics = _metrics(truth, champ, task, data)
    metric = settings.metric
    cand_score = _score(cand_metrics, metric, "candidate", candidate_version, task)
    champ_score = _score(champ_metrics, metric, "champion", champion_version, task)
    checks = [
        threshold_check(cand_metrics, champ_metrics, settings, task, gate),
        *cap_check(
            metric,
            cand_score,
            champ_score,
            settings.max_relative_change,
            task,
            champion_baseline,
        ),
    ]
    for guard, tolerance in settings.guard_metrics.items():
        g_cand = _score(cand_metrics, guard, "candidate", candidate_version, task)
        g_champ = _score(champ_metrics, guard, "champion", champion_version, task)
        checks.append(guard_check(guard, g_cand, g_champ, tolerance, task))
    scores = (cand_score, champ_score)
    checks.append(significance_check(truth, cand, champ, settings, task, data, scores))
    groups = Groups(frame, truth, cand, champ, task, data)
    checks += segment_checks(groups, settings, data, min_segment_rows)
    checks += fairness_checks(groups, settings)
    if settings.live_shadow is not None:
        checks.append(live_shadow_check(live, settings, task, candidate_version))
    return PromotionDecision(
        promote=all(c.passed for c in checks),
        candidate_version=candidate_version,
        champion_version=champion_version,
        metric=metric,
        candidate_score=cand_score,
        champion_score=champ_score,
        improvement=-worsening(metric, champ_score, cand_score, task),
        reasons=tuple(c.sentence for c in checks),
        checks=tuple(checks),
        candidate_metrics=cand_metrics,
        champion_metrics=champ_metrics,
        decision_id=decision_id,
    )


def decide_first_model(
    candidate_metrics: Mapping[str, float],
    settings: PromotionSettings,
    task: str,
    *,
    gate: Gate,
    candidate_version: str,
    decision_id: str = "",
) -> PromotionDecision:
    """Returns the decision on a first model (no champion), as settings.first_model says.

    "promote" promotes it, "never" does not, "check_threshold" promotes it only when it reaches
    settings.threshold (judged by `gate`); without a threshold it is not promoted.

    Raises:
        InsufficientDataError: settings.metric is missing or not finite.
        ConfigError: settings.metric is not one of the task's metrics.
    """
    metric, policy = settings.metric, settings.first_model
    score = _score(candidate_metrics, metric, "candidate", candidate_version, task)
    said = f"no champion yet, promotion.first_model is {policy!r}"
    if policy == "check_threshold" and settings.threshold is not None:
        verdict = gate(candidate_metrics, None, settings, task)
        passed, text = verdict.passed, "; ".join(verdict.sentences)
    elif policy == "check_threshold":
        passed, text = False, "promotion.threshold is not set: not promoted"
    else:
        passed = policy == "promote"
        text = f"{'promoted' if passed else 'not promoted'} ({metric} {format_number(score)})"
    details = {"policy": policy, "threshold": settings.threshold}
    check = Check("first_model", passed, f"{said}: {text}", details)
    return PromotionDecision(
        promote=check.passed,
        candidate_version=candidate_version,
        champion_version=None,
        metric=metric,
        candidate_score=score,
        champion_score=None,
        improvement=None,
        reasons=(check.sentence,),
        checks=(check,),
        candidate_metrics=dict(candidate_metrics),
        champion_metrics=None,
        decision_id=decision_id,
    )


def live_shadow_check(
    live: LiveShadow | None, settings: PromotionSettings, task: str, candidate_version: str
) -> Check:
    """Returns the check of the candidate's live shadow metric (settings.live_shadow must be
    set): on at least min_rows labelled production rows the service scored in shadow with this
    candidate, its settings.metric may be worse than the champion's on the same rows by at most
    max_worse (relative, as probation's tolerance). Without such evidence (none, another shadow
    version, another metric, fewer rows) the check passes as skipped and says why.

    Raises:
        ValueError: settings.live_shadow is not set.
        ConfigError: the metric is not one of the task's metrics.
    """
    rule = settings.live_shadow
    if rule is None:
        raise ValueError("live_shadow_check needs promotion.live_shadow to be set")
    limits = {"min_rows": rule.min_rows, "max_worse": rule.max_worse}
    said = "live shadow"

    def skipped(why: str, details: dict | None = None) -> Check:
        return Check(
            "live_shadow",
            True,
            f"{said}: skipped, {why}",
            {"skipped": True, "reason": why, **limits, **(details or {})},
        )

    elsewhere = live is None or live.shadow_version != candidate_version
    if settings.approval == "required" and elsewhere:
        return Check(  # not "skipped": the candidate is shadowed, and judged, while it waits
            "live_shadow",
            True,
            f"{said}: evaluated at approval: candidate version {candidate_version} has not been "
            "scored in shadow yet; while it waits for approval the service scores it in shadow, "
            "and the evidence when a person approves decides (promotion.approval is required)",
            {"skipped": False, "at_approval": True, **limits},
        )
    if live is None:
        return skipped("no labelled production rows were scored in shadow")
    numbers = {
        "shadow_version": live.shadow_version,
        "champion_version": live.champion_version,
        "metric": live.metric,
        "rows": live.rows,
        "batches": live.batches,
        "shadow_score": live.shadow_score,
        "champion_score": live.champion_score,
    }
    if live.shadow_version != candidate_version:
        return skipped(
            f"the service scored version {live.shadow_version} in shadow, "
            f"not candidate version {candidate_version}",
            numbers,
        )
    if live.metric != settings.metric:
        return skipped(f"the shadow was measured in {live.metric}, not {settings.metric}", numbers)
    if live.rows < rule.min_rows:
        return skipped(
            f"only {live.rows} labelled production rows were scored in shadow "
            f"(< promotion.live_shadow.min_rows {rule.min_rows})",
            numbers,
        )
    worse = worsening(live.metric, live.champion_score, live.shadow_score, task)
    passed = worse <= rule.max_worse + TOLERANCE
    relation = f"{format_percent(worse)} worse" if worse > 0 else f"{format_percent(-worse)} better"
    sentence = (
        f"{said}: candidate version {candidate_version} {live.metric} "
        f"{format_number(live.shadow_score)} vs {format_number(live.champion_score)} for "
        f"champion version {live.champion_version} on the same {live.rows} labelled production "
        f"rows of {live.batches} batch(es): {relation} "
        f"({'<=' if passed else '>'} {format_percent(rule.max_worse)} allowed, "
        f"promotion.live_shadow.max_worse): {verdict(passed)}"
    )
    return Check("live_shadow", passed, sentence, {"skipped": False, "worse": worse, **limits,
                                                   **numbers})  # fmt: skip


def live_shadow_at_approval(
    live: LiveShadow | None,
    settings: PromotionSettings,
    task: str,
    candidate_version: str,
    error: str = "",
) -> Check:
    """Returns the live shadow evidence on a candidate that waits for approval, judged as the
    retrain's live_shadow_check judges it once settings.live_shadow.min_rows rows are there.
    Fewer rows (or none, or a metric undefined on them: `error`) pass as "not enough rows yet:
    n of min_rows"; without settings.live_shadow the evidence is shown, never judged."""
    rule = settings.live_shadow
    rows = live.rows if live is not None else 0
    so_far = ""
    if live is not None:
        so_far = (
            f"; so far {live.metric} {format_number(live.shadow_score)} vs "
            f"{format_number(live.champion_score)} for champion version {live.champion_version}"
        )
    details = {"rows": rows, "at_approval": True, **(live.to_dict() if live else {})}
    if rule is None:
        text = (
            f"{rows} labelled production rows scored in shadow{so_far}"
            if live
            else ("no labelled production rows scored in shadow yet")
        )
        return Check("live_shadow", True, f"live shadow (not judged: promotion.live_shadow is "
                     f"not set): {text}", {"skipped": True, **details})  # fmt: skip
    if live is None or live.rows < rule.min_rows or error:
        why = f" ({error})" if error else ""
        sentence = (
            f"live shadow: not enough rows yet: {rows} of {rule.min_rows} "
            f"(promotion.live_shadow.min_rows){so_far}{why}"
        )
        limits = {"min_rows": rule.min_rows, "max_worse": rule.max_worse}
        return Check("live_shadow", True, sentence, {"skipped": True, **limits, **details})
    return live_shadow_check(live, settings, task, candidate_version)


# ---------------------------------------------------------------- inputs and metrics


def _holdout_target(
    frame: pd.DataFrame, settings: PromotionSettings, data: DataSettings
) -> np.ndarray:
    needed = [data.target]
    if settings.segment_margin is not None:
        needed += data.segments
    needed += settings.fairness.columns
    absent = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if absent:
        raise SchemaError(
            f"holdout: columns {absent} are missing (frame has {list(frame.columns)})"
        )
    truth = frame[data.target].to_numpy()
    if n := int(pd.isna(truth).sum()):
        raise SchemaError(
            f"holdout: {n} of {len(truth)} rows have no target {data.target!r}; "
            "the comparison needs labelled rows"
        )
    return truth


def _predictions(
    scored: pd.DataFrame,
    frame: pd.DataFrame,
    data: DataSettings,
    task: str,
    role: str,
    version: str | None,
) -> Predictions:
    if len(scored) != len(frame):
        raise ValueError(
            f"{role} version {version}: {len(scored)} predictions for {len(frame)} holdout rows "
            "(they must be aligned row for row)"
        )
    if data.prediction not in scored.columns:
        raise SchemaError(
            f"{role} version {version}: column {data.prediction!r} is missing "
            f"(has {list(scored.columns)})"
        )
    if data.id in scored.columns and data.id in frame.columns:
        mismatch = scored[data.id].to_numpy() != frame[data.id].to_numpy()
        if mismatch.any():
            raise ValueError(
                f"{role} version {version}: {int(mismatch.sum())} rows have another "
                f"{data.id!r} than the holdout row in the same position"
            )
    scores = None
    if task == "classification" and SCORE in scored.columns:
        scores = scored[SCORE].to_numpy()
    return Predictions(scored[data.prediction].to_numpy(), scores)


def _metrics(
    truth: np.ndarray, preds: Predictions, task: str, data: DataSettings
) -> dict[str, float]:
    return compute_metrics(
        truth, preds.labels, task, y_score=preds.scores, positive_label=data.positive_label
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


def _opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)
