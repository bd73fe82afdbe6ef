"""stores.gate against mlflow.validate_evaluation_results called directly (the reference)."""

import mlflow
import pytest
from mlflow.models import MetricThreshold
from mlflow.models.evaluation import EvaluationResult
from mlflow.models.evaluation.validation import ModelValidationFailedException

from modelwatch.settings import PromotionSettings
from modelwatch.stores import gate


def settings(metric: str, **thresholds) -> PromotionSettings:
    return PromotionSettings(metric=metric, first_model="check_threshold", **thresholds)


def mlflow_verdict(metric, greater, thresholds, candidate, baseline) -> bool:
    """Reference: one mlflow.validate_evaluation_results call with every threshold at once."""
    kwargs = {k: float(v) for k, v in thresholds.items()}
    if baseline is None:  # no champion: the gate applies the value threshold only
        kwargs = {k: v for k, v in kwargs.items() if k == "threshold"}
    try:
        mlflow.validate_evaluation_results(
            {metric: MetricThreshold(**kwargs, greater_is_better=greater)},
            EvaluationResult(metrics={metric: candidate}, artifacts={}),
            None
            if baseline is None
            else EvaluationResult(metrics={metric: baseline}, artifacts={}),
        )
    except ModelValidationFailedException:
        return False
    return True


CASES = [
    # metric, task, greater is better, candidate, baseline, thresholds, expected verdict
    ("mae", "regression", False, 90.0, 100.0, {"min_relative_change": 0.1}, True),
    ("mae", "regression", False, 90.5, 100.0, {"min_relative_change": 0.1}, False),
    ("mae", "regression", False, 98.0, 100.0, {"min_relative_change": 0.02}, True),  # at limit
    ("mae", "regression", False, 100.0, 100.0, {"min_relative_change": 0}, True),
    ("mae", "regression", False, 90.0, 100.0, {"min_absolute_change": 10}, True),
    ("mae", "regression", False, 91.0, 100.0, {"min_absolute_change": 10}, False),
    ("mae", "regression", False, 110.0, 100.0, {"min_absolute_change": 1}, False),
    ("mae", "regression", False, 90.0, 100.0, {"threshold": 90}, True),
    ("mae", "regression", False, 90.1, 100.0, {"threshold": 90}, False),
    ("mae", "regression", False, 90.0, None, {"threshold": 95}, True),  # first model
    ("mae", "regression", False, 96.0, None, {"threshold": 95, "min_relative_change": 0.1}, False),
    ("mae", "regression", False, 90.0, None, {"threshold": 95, "min_relative_change": 0.5}, True),
    # zero baseline: MLflow only checks that the candidate is strictly better
    ("mae", "regression", False, 0.0, 0.0, {"min_relative_change": 0.5}, False),
    ("mae", "regression", False, 1.0, 0.0, {"min_relative_change": 0.5}, False),
    ("r2", "regression", True, 0.1, 0.0, {"min_relative_change": 0.5}, True),
    ("r2", "regression", True, 0.0, 0.0, {"min_relative_change": 0.5}, False),
    ("r2", "regression", True, -0.1, 0.0, {"min_relative_change": 0.5}, False),
    # a negative baseline: the change is relative to its magnitude
    ("r2", "regression", True, -0.5, -1.0, {"min_relative_change": 0.4}, True),
    ("r2", "regression", True, -0.5, -1.0, {"min_relative_change": 0.6}, False),
    ("accuracy", "classification", True, 0.9, 0.8, {"min_relative_change": 0.1}, True),
    ("accuracy", "classification", True, 0.9, 0.8, {"min_relative_change": 0.2}, False),
    ("accuracy", "classification", True, 0.7, 0.8, {"min_relative_change": 0.01}, False),
    (
        "accuracy",
        "classification",
        True,
        0.9,
        0.8,
        {"threshold": 0.85, "min_absolute_change": 0.05, "min_relative_change": 0.1},
        True,
    ),
    (
        "accuracy",
        "classification",
        True,
        0.9,
        0.8,
        {"threshold": 0.95, "min_absolute_change": 0.05, "min_relative_change": 0.1},
        False,
    ),
    ("roc_auc", "classification", True, 0.83, 0.81, {"min_absolute_change": 0.01}, True),
    # binary floats: 0.81 + 0.01 is just above 0.82, so MLflow (and the gate) reject it
    ("roc_auc", "classification", True, 0.82, 0.81, {"min_absolute_change": 0.01}, False),
    ("roc_auc", "classification", True, 0.8, None, {"threshold": 0.8}, True),
    ("roc_auc", "classification", True, 0.79, None, {"threshold": 0.8}, False),
]


@pytest.mark.parametrize("metric, task, greater, candidate, baseline, thresholds, want", CASES)
def test_gate_agrees_with_mlflow(metric, task, greater, candidate, baseline, thresholds, want):
    result = gate.threshold_gate(
        {metric: candidate, "other": 1.0},
        None if baseline is None else {metric: baseline, "other": 2.0},
        settings(metric, **thresholds),
        task,
    )
    assert result.passed is mlflow_verdict(metric, greater, thresholds, candidate, baseline)
    assert result.passed is want
    verdicts = [s.rsplit("(", 1)[1] for s in result.sentences]
    assert all(v in ("pass)", "fail)") for v in verdicts)
    assert ("fail)" not in verdicts) is want


def test_sentences_state_the_numbers():
    result = gate.threshold_gate(
        {"mae": 60.1},
        {"mae": 67.2},
        settings("mae", threshold=70.0, min_absolute_change=10.0, min_relative_change=0.02),
        "regression",
    )
    assert result == gate.GateResult(
        False,
        (
            "mae: challenger 60.1 must be at most 70 (pass)",
            "mae: challenger 60.1 vs champion 67.2 is 7.1 better, needs at least 10 better (fail)",
            "mae: challenger 60.1 vs champion 67.2 is 10.6% better, needs at least 2% better "
            "(pass)",
        ),
    )


def test_no_threshold_fails_and_says_why():
    none = gate.threshold_gate({"mae": 1.0}, {"mae": 2.0}, settings("mae"), "regression")
    assert none == gate.GateResult(
        False,
        (
            "mae: no threshold configured (promotion.threshold, min_relative_change, "
            "min_absolute_change), so no challenger is promoted (fail)",
        ),
    )
    first = gate.threshold_gate(
        {"mae": 1.0}, None, settings("mae", min_relative_change=0.1), "regression"
    )
    assert first == gate.GateResult(
        False,
        ("mae: no champion to compare with and promotion.threshold is not set (fail)",),
    )


@pytest.mark.parametrize(
    "metric, task, thresholds, with_baseline, want",
    [
        ("mae", "regression", {}, True, None),
        ("mae", "regression", {"min_relative_change": 0.1}, False, None),
        (
            "mae",
            "regression",
            {"threshold": 5, "min_relative_change": 0.1, "min_absolute_change": 2},
            True,
            (5.0, 0.1, 2.0, False),
        ),
        (
            "roc_auc",
            "classification",
            {"threshold": 0.7, "min_relative_change": 0.1},
            False,
            (0.7, None, None, True),
        ),
    ],
)
def test_metric_thresholds(metric, task, thresholds, with_baseline, want):
    got = gate.metric_thresholds(settings(metric, **thresholds), task, with_baseline=with_baseline)
    if want is None:
        assert got == {}
        return
    (t,) = got.values()
    assert list(got) == [metric]
    assert (t.threshold, t.min_relative_change, t.min_absolute_change, t.greater_is_better) == want
