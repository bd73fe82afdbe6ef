"""Promotion: the decision on the challenger against the champion on a shared holdout, and
the holdout builders the check tests share (test_checks, test_group_checks).

Frames are crafted so that metrics are exact: integer targets and predictions off by a fixed
error (alternating sign) give mae = rmse = that error.
"""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from modelwatch.decide.promotion import PromotionDecision, compare_models, decide_first_model
from modelwatch.errors import ConfigError, InsufficientDataError, SchemaError
from modelwatch.performance.metrics import compute_metrics
from modelwatch.settings import DataSettings, PromotionSettings
from modelwatch.stores import gate

FEATURES = ["x", "region", "sex"]
REG = DataSettings(
    id="row", target="y", features=FEATURES, categorical=["region", "sex"], segments=["region"]
)
CLS = REG.model_copy(update={"target": "label", "positive_label": 1})


def settings(metric="mae", **overrides) -> PromotionSettings:
    """Only the named checks: significance is off unless a test turns it on."""
    raw = {"metric": metric, "first_model": "promote", "significance": {"method": "none"}}
    return PromotionSettings.model_validate(raw | overrides)


def regression(cand_errors, champ_errors, n=40, **columns):
    """Holdout with integer targets; each model off by its errors, sign alternating by row."""
    y = 100.0 + 7 * np.arange(n)
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    frame = pd.DataFrame({"row": np.arange(n), "x": 0.0, "region": "a", "sex": "F", "y": y})
    for name, values in columns.items():
        frame[name] = values
    cand = pd.DataFrame({"row": np.arange(n), "prediction": y + sign * cand_errors})
    champ = pd.DataFrame({"row": np.arange(n), "prediction": y + sign * champ_errors})
    return frame, cand, champ


def paired(both, wins, losses, neither, **columns):
    """Binary holdout: rows both models get right, only the challenger, only the champion,
    neither. Scores are 0.8 for a predicted 1 and 0.2 for a predicted 0."""
    n = both + wins + losses + neither
    label = np.arange(n) % 2
    cand_right = np.repeat([True, True, False, False], [both, wins, losses, neither])
    champ_right = np.repeat([True, False, True, False], [both, wins, losses, neither])
    frame = pd.DataFrame({"row": np.arange(n), "x": 0.0, "region": "a", "sex": "F"})
    frame["label"] = label
    for name, values in columns.items():
        frame[name] = values

    def scored(right):
        pred = np.where(right, label, 1 - label)
        return pd.DataFrame(
            {"row": np.arange(n), "prediction": pred, "prediction_score": 0.2 + 0.6 * pred}
        )

    return frame, scored(cand_right), scored(champ_right)


def compare(frame, cand, champ, s, data=REG, task="regression", **kwargs):
    return compare_models(
        frame,
        cand,
        champ,
        s,
        data,
        task,
        gate=gate.threshold_gate,
        candidate_version="5",
        champion_version=None if champ is None else "3",
        **kwargs,
    )


def check(decision, name):
    (found,) = [c for c in decision.checks if c.name == name]
    return found


def segmented(n_a=40, n_b=40, n_c=10):
    """Region a: challenger 70 vs 100; region b: 120 vs 100 (20% worse); c: 90 vs 100."""
    region = np.repeat(["a", "b", "c"], [n_a, n_b, n_c])
    errors = np.select([region == "a", region == "b"], [70.0, 120.0], 90.0)
    frame, cand, champ = regression(errors, 100, n=len(region), region=region)
    frame.index = frame.index + 1000  # positions, not labels, align the predictions
    return frame, cand, champ


@pytest.mark.parametrize(
    "policy, thresholds, promote, text",
    [
        ("promote", {}, True, "promoted (mae 90)"),
        ("promote", {"threshold": 50.0}, True, "promoted (mae 90)"),  # the policy is explicit
        ("never", {"min_relative_change": 0.02}, False, "not promoted (mae 90)"),
        (
            "check_threshold",
            {"threshold": 95.0},
            True,
            "mae: challenger 90 must be at most 95 (pass)",
        ),
        (
            "check_threshold",
            {"threshold": 80.0},
            False,
            "mae: challenger 90 must be at most 80 (fail)",
        ),
        # change thresholds need a champion: only the value threshold applies to a first model
        (
            "check_threshold",
            {"threshold": 95.0, "min_relative_change": 0.5},
            True,
            "mae: challenger 90 must be at most 95 (pass)",
        ),
        (
            "check_threshold",
            {"min_relative_change": 0.02},
            False,
            "promotion.threshold is not set: not promoted",
        ),
    ],
)
def test_first_model_policy(policy, thresholds, promote, text):
    frame, cand, _ = regression(90, 100)
    s = settings(first_model=policy, **thresholds)
    decision = compare(frame, cand, None, s)
    sentence = f"no champion yet, promotion.first_model is {policy!r}: {text}"
    assert (decision.promote, decision.reasons) == (promote, (sentence,))
    assert (decision.champion_version, decision.champion_score, decision.improvement) == (
        None,
        None,
        None,
    )
    assert decision.candidate_metrics == compute_metrics(
        frame["y"], cand["prediction"], "regression"
    )
    verdict = "promote candidate version 5" if promote else "reject candidate version 5"
    assert decision.summary() == (f"{verdict}{'' if promote else ' (no champion yet)'}: {sentence}")
    # the same policy on metrics alone (the bootstrap flow has cross-validated metrics only)
    alone = decide_first_model(
        {"mae": 90.0}, s, "regression", gate=gate.threshold_gate, candidate_version="5"
    )
    assert (alone.promote, alone.reasons) == (promote, (sentence,))


def test_all_checks_in_order_and_the_decision_round_trips_through_json():
    frame, cand, champ = segmented()
    frame["sex"] = np.where(np.arange(len(frame)) % 2 == 0, "F", "M")
    s = settings(
        min_relative_change=0.02,
        max_relative_change=0.6,
        guard_metrics={"rmse": 5.0},
        significance={"method": "bootstrap", "samples": 200},
        segment_margin=0.25,
        fairness={"columns": ["sex"], "max_gap": 10.0},
    )
    decision = compare(frame, cand, champ, s, decision_id="promotion-demo-v5")
    assert [c.name for c in decision.checks] == [
        "thresholds",
        "max_relative_change",
        "guard rmse",
        "significance",
        "segments region",
        "fairness sex",
    ]
    assert decision.reasons == tuple(c.sentence for c in decision.checks)
    assert decision.promote is all(c.passed for c in decision.checks)
    raw = json.loads(json.dumps(decision.to_dict()))
    assert raw["decision_id"] == "promotion-demo-v5" and raw["checks"][0]["name"] == "thresholds"
    assert PromotionDecision.from_dict(raw) == decision
    assert decision.summary().startswith(
        f"{'promote candidate version 5 over' if decision.promote else 'keep'} champion version 3"
    )


def test_rejected_summary_names_both_versions():
    frame, cand, champ = regression(99, 100)
    decision = compare(frame, cand, champ, settings(min_relative_change=0.02))
    assert decision.summary() == (
        "keep champion version 3, reject candidate version 5: mae: challenger 99 vs champion "
        "100 is 1% better, needs at least 2% better (fail); "
        "significance: not tested (promotion.significance.method is 'none')"
    )


def test_missing_metric_is_named():
    frame, cand, champ = regression(90, 100)
    frame["y"] = 100.0  # constant target: r2 is undefined
    cand["prediction"], champ["prediction"] = 190.0, 200.0
    s = settings(min_relative_change=0.02, guard_metrics={"r2": 0.05})
    with pytest.raises(InsufficientDataError, match=r"candidate version 5: metric 'r2' is missing"):
        compare(frame, cand, champ, s)


def test_metric_of_other_task_is_a_config_error():
    frame, cand, champ = paired(80, 10, 0, 10)
    with pytest.raises(ConfigError, match=r"'mae' is not a classification metric"):
        compare(frame, cand, champ, settings(min_relative_change=0.02), CLS, "classification")


@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda f, c: (f, c.iloc[1:]), ValueError, r"candidate version 5: 39 predictions for 40"),
        (
            lambda f, c: (f, c.assign(row=c["row"].to_numpy()[::-1])),
            ValueError,
            r"candidate version 5: 40 rows have another 'row' than the holdout row",
        ),
        (
            lambda f, c: (f, c.drop(columns="prediction")),
            SchemaError,
            r"candidate version 5: column 'prediction' is missing",
        ),
        (
            lambda f, c: (f.assign(y=f["y"].where(f.index != 3)), c),
            SchemaError,
            r"holdout: 1 of 40 rows have no target 'y'",
        ),
        (
            lambda f, c: (f.drop(columns="region"), c),
            SchemaError,
            r"holdout: columns \['region'\] are missing",
        ),
    ],
)
def test_bad_inputs_are_named(change, error, message):
    frame, cand, champ = regression(90, 100)
    frame, cand = change(frame, cand)
    with pytest.raises(error, match=message):
        compare(frame, cand, champ, settings(min_relative_change=0.02, segment_margin=0.1))


def test_champion_predictions_without_version_is_a_bug():
    frame, cand, champ = regression(90, 100)
    with pytest.raises(ValueError, match="champion and champion_version"):
        compare_models(
            frame,
            cand,
            champ,
            settings(),
            REG,
            "regression",
            gate=gate.threshold_gate,
            candidate_version="5",
            champion_version=None,
        )


def test_promotion_imports_no_mlflow():
    code = "import sys, modelwatch.decide.promotion; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
