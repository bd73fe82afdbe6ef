"""The promotion checks that compare the two models' metrics on the holdout (pure): value and
change thresholds (through a gate the caller passes in: modelwatch.stores.gate wraps MLflow's model
validation, so this module imports no mlflow), a cap on suspiciously large gains, guard metrics,
and the significance of the gain (modelwatch.performance.significance).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from modelwatch.errors import ConfigError
from modelwatch.performance.metrics import format_number, format_percent, label_key
from modelwatch.performance.significance import Predictions, gain, mcnemar_exact, paired_bootstrap
from modelwatch.settings import DataSettings, PromotionSettings

# Relative changes are float ratios; a challenger exactly at a limit must pass.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Check:
    """One promotion check: its verdict, a sentence with the numbers, and the numbers."""

    name: str
    passed: bool
    sentence: str
    details: dict = field(default_factory=dict)


class GateOutcome(Protocol):
    """What a threshold gate returns (modelwatch.stores.gate.GateResult)."""

    @property
    def passed(self) -> bool: ...

    @property
    def sentences(self) -> tuple[str, ...]: ...


# (challenger metrics, champion metrics or None, settings, task) -> verdict on the thresholds
Gate = Callable[
    [Mapping[str, float], Mapping[str, float] | None, PromotionSettings, str], GateOutcome
]


def verdict(passed: bool) -> str:
    """Returns "pass" or "fail", the word that ends a check's sentence."""
    return "pass" if passed else "fail"


def threshold_check(
    cand: Mapping[str, float],
    champ: Mapping[str, float],
    settings: PromotionSettings,
    task: str,
    gate: Gate,
) -> Check:
    """Returns the gate's verdict on the value and change thresholds; without any configured,
    a failed check (no challenger is ever promoted)."""
    details = {
        "threshold": settings.threshold,
        "min_relative_change": settings.min_relative_change,
        "min_absolute_change": settings.min_absolute_change,
    }
    if all(v is None for v in details.values()):
        return Check(
            "thresholds",
            False,
            "thresholds: none configured (promotion.threshold, min_relative_change, "
            "min_absolute_change), so no challenger is ever promoted (fail)",
            details,
        )
    outcome = gate(cand, champ, settings, task)
    return Check("thresholds", outcome.passed, "; ".join(outcome.sentences), details)


def cap_check(
    metric: str,
    cand: float,
    champ: float,
    cap: float | None,
    task: str,
    baseline: float | None = None,
) -> list[Check]:
    """Returns whether the relative gain stays within the cap (none without a cap).

    The gain is measured against the champion's holdout value, or against its baseline (what
    it achieved when it was promoted) when the holdout value is worse: a champion broken by a
    concept change makes any honest challenger look far better than it, while leakage makes a
    challenger better than any honest model has been.
    """
    if cap is None:
        return []
    details: dict = {"max_relative_change": cap, "relative_gain": None}
    reference, against = champ, ""
    if baseline is not None and np.isfinite(baseline) and gain(metric, baseline, champ, task) > 0:
        reference = baseline
        against = (
            f" over the champion's baseline {format_number(baseline)} (its holdout value "
            f"{format_number(champ)} is worse)"
        )
    if reference == 0:
        return [
            Check(
                "max_relative_change",
                True,
                f"max_relative_change: the champion's {metric} is 0, a relative gain is "
                "undefined: cap not applied",
                details,
            )
        ]
    relative = gain(metric, cand, reference, task) / abs(reference)
    passed = relative <= cap + TOLERANCE
    details["relative_gain"] = relative
    if passed:
        text = (
            f"{metric} gain {format_percent(relative)}{against} is within the "
            f"{format_percent(cap)} cap"
        )
    else:
        text = (
            f"{metric} gain {format_percent(relative)}{against} ({format_number(reference)} -> "
            f"{format_number(cand)}) exceeds the {format_percent(cap)} cap: suspiciously "
            "large, check for leakage"
        )
    sentence = f"max_relative_change: {text} ({verdict(passed)})"
    return [Check("max_relative_change", passed, sentence, details)]


def guard_check(metric: str, cand: float, champ: float, tolerance: float, task: str) -> Check:
    """Returns whether the challenger is at most `tolerance` worse on a guard metric."""
    worse_by = -gain(metric, cand, champ, task)
    passed = worse_by <= tolerance + TOLERANCE
    if worse_by > 0:
        change = f"{format_number(worse_by)} worse"
    elif worse_by < 0:
        change = f"{format_number(-worse_by)} better"
    else:
        change = "equal"
    return Check(
        f"guard {metric}",
        passed,
        f"guard {metric}: challenger {format_number(cand)} vs champion {format_number(champ)} "
        f"is {change}, tolerance {format_number(tolerance)} ({verdict(passed)})",
        {"candidate": cand, "champion": champ, "tolerance": tolerance},
    )


def significance_check(
    truth: np.ndarray,
    cand: Predictions,
    champ: Predictions,
    settings: PromotionSettings,
    task: str,
    data: DataSettings,
    expected: tuple[float, float],
) -> Check:
    """Returns whether the gain is significant: paired bootstrap interval above 0, or McNemar's
    exact test for accuracy (settings.significance.method "auto"); `expected` holds both models'
    metric on the whole holdout.

    Raises:
        ConfigError: McNemar on a regression.
    """
    sig, metric = settings.significance, settings.metric
    method = sig.method
    if method == "auto":
        method = "mcnemar" if metric == "accuracy" else "bootstrap"
    if method == "none":
        return Check(
            "significance",
            True,
            "significance: not tested (promotion.significance.method is 'none')",
            {"method": "none"},
        )
    if method == "mcnemar":
        if task != "classification":
            raise ConfigError(
                "promotion.significance.method: 'mcnemar' compares correct predictions and "
                f"needs a classification task, this is a {task} (use 'bootstrap' or 'auto')"
            )
        return _mcnemar_check(truth, cand, champ, sig.confidence)
    res = paired_bootstrap(
        truth,
        cand,
        champ,
        metric,
        task,
        samples=sig.samples,
        confidence=sig.confidence,
        seed=sig.seed,
        positive_label=data.positive_label,
        expected=expected,
    )
    details = {
        "method": "bootstrap",
        "difference": res.difference,
        "low": _finite_or_none(res.low),
        "high": _finite_or_none(res.high),
        "confidence": res.confidence,
        "samples": res.samples,
        "undefined": res.undefined,
        "seed": sig.seed,
    }
    used = res.samples - res.undefined
    if used == 0:
        return Check(
            "significance",
            False,
            f"significance: {metric} is undefined on every bootstrap resample, so the gain "
            "cannot be shown (fail)",
            details,
        )
    passed = bool(res.low > 0)
    left_out = f" ({res.undefined} with an undefined {metric} left out)" if res.undefined else ""
    return Check(
        "significance",
        passed,
        f"significance: challenger {metric} gain {format_number(res.difference)}, "
        f"{format_percent(res.confidence)} paired bootstrap interval "
        f"[{format_number(res.low)}, {format_number(res.high)}] over {used} resamples"
        f"{left_out} {'lies' if passed else 'does not lie'} above 0 ({verdict(passed)})",
        details,
    )


def _mcnemar_check(
    truth: np.ndarray, cand: Predictions, champ: Predictions, confidence: float
) -> Check:
    true = _label_keys(truth)
    cand_ok, champ_ok = _label_keys(cand.labels) == true, _label_keys(champ.labels) == true
    wins, losses = int(np.sum(cand_ok & ~champ_ok)), int(np.sum(~cand_ok & champ_ok))
    p = mcnemar_exact(wins, losses)
    alpha = 1 - confidence
    passed = wins > losses and p < alpha
    return Check(
        "significance",
        passed,
        f"significance: McNemar exact test on {len(true)} rows: challenger right where the "
        f"champion is wrong on {wins}, the reverse on {losses}, p {p:.3g} "
        f"{'<' if p < alpha else '>='} {alpha:.3g} ({verdict(passed)})",
        {"method": "mcnemar", "wins": wins, "losses": losses, "p_value": p, "alpha": alpha},
    )


def _label_keys(values: np.ndarray) -> np.ndarray:
    return np.array([label_key(v) for v in values], dtype=object)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
