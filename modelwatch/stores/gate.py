"""The promotion metric's value and change thresholds, judged by MLflow's model validation.

An adapter: mlflow is imported inside the functions, so importing this module stays cheap and
modelwatch.decide.promotion, which receives `threshold_gate` as an argument, never imports mlflow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelwatch.performance.metrics import format_number, format_percent, metric_direction
from modelwatch.settings import PromotionSettings

if TYPE_CHECKING:
    from mlflow.models import MetricThreshold


@dataclass(frozen=True)
class GateResult:
    """Whether the challenger met every configured threshold, one sentence per threshold."""

    passed: bool
    sentences: tuple[str, ...]


def metric_thresholds(
    settings: PromotionSettings, task: str, *, with_baseline: bool = True
) -> dict[str, MetricThreshold]:
    """Returns {settings.metric: MetricThreshold} from the configured thresholds, or {} when none.

    Without a baseline (no champion yet) only the value threshold applies: MLflow fails a change
    threshold whose baseline is missing.

    Raises:
        ConfigError: the metric is not one of the task's metrics.
    """
    from mlflow.models import MetricThreshold

    kwargs = {
        "threshold": _float(settings.threshold),
        "min_absolute_change": _float(settings.min_absolute_change) if with_baseline else None,
        "min_relative_change": _float(settings.min_relative_change) if with_baseline else None,
    }
    if all(v is None for v in kwargs.values()):
        return {}
    greater = metric_direction(settings.metric, task) == "max"
    return {settings.metric: MetricThreshold(**kwargs, greater_is_better=greater)}


def threshold_gate(
    candidate_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    settings: PromotionSettings,
    task: str,
) -> GateResult:
    """Returns MLflow's verdict on the challenger's metrics against the thresholds of settings.

    Each configured threshold (value, absolute change, relative change) is validated on its own
    with mlflow.validate_evaluation_results, so every sentence carries MLflow's verdict for it;
    the gate passes when all do, which is what one call with all of them decides. No threshold
    configured fails: nothing is promoted without one.

    Raises:
        ConfigError: the metric is not one of the task's metrics.
    """
    import mlflow
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    metric = settings.metric
    thresholds = metric_thresholds(settings, task, with_baseline=champion_metrics is not None)
    if not thresholds:
        return GateResult(False, (f"{metric}: {_none_configured(champion_metrics)} (fail)",))
    cand = candidate_metrics.get(metric)
    if cand is None:
        return GateResult(False, (f"{metric}: the challenger has no value (fail)",))
    candidate = EvaluationResult(metrics=dict(candidate_metrics), artifacts={})
    baseline = (
        None
        if champion_metrics is None
        else EvaluationResult(metrics=dict(champion_metrics), artifacts={})
    )
    sentences, verdicts = [], []
    for kind, single in _single_thresholds(thresholds[metric]):
        try:
            mlflow.validate_evaluation_results({metric: single}, candidate, baseline)
            passed = True
        except ModelValidationFailedException:
            passed = False
        verdicts.append(passed)
        base = None if champion_metrics is None else champion_metrics.get(metric)
        sentences.append(_sentence(kind, metric, cand, base, single, passed))
    return GateResult(all(verdicts), tuple(sentences))


def _float(value: float | None) -> float | None:
    # MetricThreshold accepts only built-in int/float (and a float min_relative_change)
    return None if value is None else float(value)


def _none_configured(champion_metrics: Mapping[str, float] | None) -> str:
    if champion_metrics is None:
        return "no champion to compare with and promotion.threshold is not set"
    return (
        "no threshold configured (promotion.threshold, min_relative_change, "
        "min_absolute_change), so no challenger is promoted"
    )


def _single_thresholds(combined: MetricThreshold) -> list[tuple[str, MetricThreshold]]:
    from mlflow.models import MetricThreshold

    greater = combined.greater_is_better
    return [
        (kind, MetricThreshold(**{kind: getattr(combined, kind)}, greater_is_better=greater))
        for kind in ("threshold", "min_absolute_change", "min_relative_change")
        if getattr(combined, kind) is not None
    ]


def _sentence(
    kind: str,
    metric: str,
    cand: float,
    base: float | None,
    single: MetricThreshold,
    passed: bool,
) -> str:
    verdict = "pass" if passed else "fail"
    greater = single.greater_is_better
    if kind == "threshold":
        bound = "at least" if greater else "at most"
        return (
            f"{metric}: challenger {format_number(cand)} must be {bound} "
            f"{format_number(single.threshold)} ({verdict})"
        )
    if base is None:
        return f"{metric}: the champion has no value to compare with ({verdict})"
    gain = cand - base if greater else base - cand
    compared = f"{metric}: challenger {format_number(cand)} vs champion {format_number(base)}"
    if kind == "min_absolute_change":
        return (
            f"{compared} is {_change(gain, format_number)}, needs at least "
            f"{format_number(single.min_absolute_change)} better ({verdict})"
        )
    if base == 0:
        # MLflow's fallback: a relative change from 0 has no scale, so strictly better suffices
        return f"{compared}: no relative change from 0, needs strictly better ({verdict})"
    return (
        f"{compared} is {_change(gain / abs(base), format_percent)}, needs at least "
        f"{format_percent(single.min_relative_change)} better ({verdict})"
    )


def _change(gain: float, fmt: Callable[[float], str]) -> str:
    if gain == 0:
        return "equal"
    return f"{fmt(abs(gain))} {'better' if gain > 0 else 'worse'}"
