"""Promotion: primary-metric improvement, guard metrics, and the reasons for either verdict."""

import json

import pytest

from modelwatch.errors import ConfigError, InsufficientDataError
from modelwatch.promotion import compare_models
from modelwatch.settings import PromotionSettings

REGRESSION = PromotionSettings(metric="mae", min_improvement=0.02, guard_metrics={"r2": 0.05})
CLASSIFICATION = PromotionSettings(
    metric="roc_auc", min_improvement=0.01, guard_metrics={"recall": 0.03}
)


def compare(candidate, champion, settings=REGRESSION, task="regression"):
    return compare_models(
        candidate,
        champion,
        settings,
        task,
        candidate_version="5",
        champion_version=None if champion is None else "3",
    )


@pytest.mark.parametrize(
    "candidate, champion, promote, improvement",
    [
        ({"mae": 60.0, "r2": 0.70}, {"mae": 67.2, "r2": 0.71}, True, 7.2 / 67.2),
        ({"mae": 98.0, "r2": 0.71}, {"mae": 100.0, "r2": 0.71}, True, 0.02),  # exactly the limit
        ({"mae": 99.0, "r2": 0.71}, {"mae": 100.0, "r2": 0.71}, False, 0.01),  # too small a gain
        ({"mae": 110.0, "r2": 0.80}, {"mae": 100.0, "r2": 0.71}, False, -0.1),  # worse
        ({"mae": 60.0, "r2": 0.60}, {"mae": 67.2, "r2": 0.71}, False, 7.2 / 67.2),  # guard fails
        ({"mae": 60.0, "r2": 0.66}, {"mae": 67.2, "r2": 0.71}, True, 7.2 / 67.2),  # guard at limit
        ({"mae": 0.5, "r2": 0.9}, {"mae": 0.0, "r2": 0.9}, False, -0.5),  # zero champion
    ],
)
def test_regression_comparison(candidate, champion, promote, improvement):
    decision = compare(candidate, champion)
    assert decision.promote is promote
    assert decision.improvement == pytest.approx(improvement)
    assert (decision.candidate_score, decision.champion_score) == (
        candidate["mae"],
        champion["mae"],
    )
    assert len(decision.reasons) == 2  # primary metric and one guard, pass or fail


@pytest.mark.parametrize(
    "candidate, champion, promote",
    [
        ({"roc_auc": 0.85, "recall": 0.60}, {"roc_auc": 0.80, "recall": 0.62}, True),
        ({"roc_auc": 0.85, "recall": 0.55}, {"roc_auc": 0.80, "recall": 0.62}, False),
        ({"roc_auc": 0.80, "recall": 0.70}, {"roc_auc": 0.80, "recall": 0.62}, False),
    ],
)
def test_classification_comparison_higher_is_better(candidate, champion, promote):
    decision = compare(candidate, champion, CLASSIFICATION, "classification")
    assert decision.promote is promote
    want = (candidate["roc_auc"] - champion["roc_auc"]) / champion["roc_auc"]
    assert decision.improvement == pytest.approx(want)


def test_no_champion_promotes_the_first_model():
    decision = compare({"mae": 70.0}, None)
    assert (decision.promote, decision.champion_version, decision.improvement) == (True, None, None)
    assert decision.reasons == ("no champion yet: first model is promoted",)
    assert decision.summary() == (
        "promote candidate version 5: no champion yet: first model is promoted"
    )


def test_reasons_state_every_check_with_numbers():
    decision = compare({"mae": 60.1, "r2": 0.60}, {"mae": 67.2, "r2": 0.71})
    assert decision.reasons == (
        "mae: candidate 60.1 vs champion 67.2 is 10.6% better, needs at least 2% better (pass)",
        "guard r2: candidate 0.6 vs champion 0.71 is 0.11 worse, tolerance 0.05 (fail)",
    )
    assert decision.summary().startswith(
        "keep champion version 3, reject candidate version 5: mae: candidate 60.1"
    )


def test_promoted_summary_and_dict():
    decision = compare({"mae": 60.1, "r2": 0.75}, {"mae": 67.2, "r2": 0.71})
    assert decision.reasons[1] == (
        "guard r2: candidate 0.75 vs champion 0.71 is 0.04 better, tolerance 0.05 (pass)"
    )
    assert decision.summary().startswith("promote candidate version 5 over champion version 3: ")
    raw = json.loads(json.dumps(decision.to_dict()))
    assert raw["promote"] is True and raw["metric"] == "mae"
    assert raw["reasons"] == list(decision.reasons)
    assert raw["improvement"] == pytest.approx(7.1 / 67.2)


@pytest.mark.parametrize(
    "candidate, champion, message",
    [
        ({"r2": 0.7}, {"mae": 60.0, "r2": 0.7}, r"candidate version 5: metric 'mae' is missing"),
        ({"mae": 60.0, "r2": 0.7}, {"r2": 0.7}, r"champion version 3: metric 'mae' is missing"),
        ({"mae": 60.0}, {"mae": 70.0, "r2": 0.7}, r"candidate version 5: metric 'r2' is missing"),
        ({"mae": 60.0, "r2": 0.7}, {"mae": 70.0}, r"champion version 3: metric 'r2' is missing"),
        ({"mae": float("nan"), "r2": 0.7}, {"mae": 70.0, "r2": 0.7}, r"'mae' is .*not a finite"),
        ({"rmse": 1.0}, None, r"metric 'mae' is missing .*metrics: rmse\)"),
    ],
)
def test_missing_metric_is_named(candidate, champion, message):
    with pytest.raises(InsufficientDataError, match=message):
        compare(candidate, champion)


def test_metric_of_other_task_is_a_config_error():
    with pytest.raises(ConfigError, match=r"'mae' is not a classification metric"):
        compare({"mae": 1.0}, None, REGRESSION, "classification")


def test_champion_metrics_without_version_is_a_bug():
    with pytest.raises(ValueError, match="champion and champion_version"):
        compare_models(
            {"mae": 1.0},
            {"mae": 2.0},
            REGRESSION,
            "regression",
            candidate_version="2",
            champion_version=None,
        )
