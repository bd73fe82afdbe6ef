"""Promotion checks on groups of the holdout (modelwatch.decide.group_checks): segment
non-inferiority and the fairness gap, through compare_models on a crafted holdout (builders in
test_promotion)."""

import numpy as np
import pytest

from tests.unit.test_promotion import (
    CLS,
    REG,
    check,
    compare,
    paired,
    regression,
    segmented,
    settings,
)


@pytest.mark.parametrize(
    "margin, min_rows, passed, sentence",
    [
        (
            0.1,
            30,
            False,
            "segments region: challenger mae worse than the champion by more than 10% in 1 of "
            "2 segments: region=b (20% worse, 120 vs 100); left out: 1 segment under 30 rows "
            "(fail)",
        ),
        (
            0.25,
            30,
            True,
            "segments region: challenger mae within 25% of the champion in 2 segments "
            "(weakest region=b: 20% worse, 120 vs 100); left out: 1 segment under 30 rows (pass)",
        ),
        (
            0.25,
            5,
            True,
            "segments region: challenger mae within 25% of the champion in 3 segments "
            "(weakest region=b: 20% worse, 120 vs 100) (pass)",
        ),
    ],
)
def test_segment_non_inferiority(margin, min_rows, passed, sentence):
    frame, cand, champ = segmented()
    s = settings(min_relative_change=0.02, segment_margin=margin)
    decision = compare(frame, cand, champ, s, min_segment_rows=min_rows)
    seg = check(decision, "segments region")
    assert (seg.passed, seg.sentence) == (passed, sentence)
    assert [(e["value"], e["rows"], e["status"]) for e in seg.details["segments"]] == [
        ("a", 40, "pass"),
        ("b", 40, "pass" if margin > 0.2 else "fail"),
        ("c", 10, "too_small" if min_rows > 10 else "pass"),
    ]
    assert seg.details["segments"][1]["worsening"] == pytest.approx(0.2)
    assert decision.promote is passed


def test_segments_without_segment_columns_are_reported():
    frame, cand, champ = regression(90, 100)
    data = REG.model_copy(update={"segments": []})
    decision = compare(
        frame, cand, champ, settings(min_relative_change=0.02, segment_margin=0.1), data
    )
    assert check(decision, "segments").sentence == (
        "segments: promotion.segment_margin is set but data.segments is empty: not checked"
    )


def test_segment_with_an_undefined_metric_is_left_out():
    frame, cand, champ = paired(60, 20, 0, 20, region=np.repeat(["a", "b"], [96, 4]))
    frame.loc[96:, "label"] = 1  # region b holds one class only: roc_auc undefined there
    s = settings("roc_auc", min_relative_change=0.01, segment_margin=0.1)
    decision = compare(frame, cand, champ, s, CLS, "classification", min_segment_rows=2)
    assert check(decision, "segments region").sentence.endswith(
        "; left out: 1 segment with an undefined roc_auc (pass)"
    )


def sensitive():
    """sex F: challenger 80 vs champion 90; M: 100 vs 120; X (5 rows): 10 vs 10."""
    sex = np.repeat(["F", "M", "X"], [40, 40, 5])
    cand = np.select([sex == "F", sex == "M"], [80.0, 100.0], 10.0)
    champ = np.select([sex == "F", sex == "M"], [90.0, 120.0], 10.0)
    return regression(cand, champ, n=len(sex), sex=sex)


@pytest.mark.parametrize("max_gap, passed", [(25.0, True), (20.0, True), (15.0, False)])
def test_fairness_gap_between_groups(max_gap, passed):
    frame, cand, champ = sensitive()
    s = settings(min_relative_change=0.02, fairness={"columns": ["sex"], "max_gap": max_gap})
    decision = compare(frame, cand, champ, s)
    fair = check(decision, "fairness sex")
    assert fair.sentence == (
        f"fairness sex: challenger mae gap 20 between groups (lowest sex=F 80, highest sex=M "
        f"100), limit {max_gap:g}, champion gap 30; left out: 1 group under 30 rows "
        f"({'pass' if passed else 'fail'})"
    )
    assert (fair.details["gap"], fair.details["champion_gap"]) == (20.0, 30.0)
    assert decision.promote is passed


def test_fairness_uses_its_own_metric_and_needs_two_groups():
    frame, cand, champ = sensitive()
    s = settings(
        min_relative_change=0.02,
        fairness={"columns": ["sex"], "max_gap": 1.0, "metric": "rmse", "min_group_rows": 41},
    )
    fair = check(compare(frame, cand, champ, s), "fairness sex")
    assert (fair.passed, fair.sentence) == (
        True,
        "fairness sex: fewer than 2 groups with a rmse; left out: 3 groups under 41 rows: "
        "not checked",
    )
    s = settings(
        min_relative_change=0.02, fairness={"columns": ["sex"], "max_gap": 1.0, "metric": "rmse"}
    )
    fair = check(compare(frame, cand, champ, s), "fairness sex")
    assert fair.sentence.startswith("fairness sex: challenger rmse gap 20 ") and not fair.passed
