"""Promotion checks on the two models' metrics (modelwatch.decide.checks): thresholds,
the gain cap, guard metrics and significance, each through compare_models on a crafted holdout
(builders in test_promotion)."""

import numpy as np
import pytest
import scipy.stats
from sklearn import metrics as skm

from modelwatch.errors import ConfigError
from tests.unit.test_promotion import CLS, check, compare, paired, regression, settings


@pytest.mark.parametrize(
    "cand_err, champ_err, thresholds, passed, sentence",
    [
        (90, 100, {"min_relative_change": 0.05}, True, " is 10% better, needs at least 5% better"),
        (98, 100, {"min_relative_change": 0.02}, True, " is 2% better, needs at least 2% better"),
        (99, 100, {"min_relative_change": 0.02}, False, " is 1% better, needs at least 2% better"),
        (110, 100, {"min_relative_change": 0.02}, False, " is 10% worse, needs at least 2% better"),
        (90, 100, {"min_absolute_change": 10}, True, " is 10 better, needs at least 10 better"),
        (95, 100, {"min_absolute_change": 10}, False, " is 5 better, needs at least 10 better"),
        # a perfect champion: MLflow falls back to "strictly better" and so does the gate
        (
            5,
            0,
            {"min_relative_change": 0.02},
            False,
            ": no relative change from 0, needs strictly better",
        ),
    ],
)
def test_change_thresholds_lower_is_better(cand_err, champ_err, thresholds, passed, sentence):
    frame, cand, champ = regression(cand_err, champ_err)
    decision = compare(frame, cand, champ, settings(**thresholds))
    assert decision.promote is passed
    assert check(decision, "thresholds").passed is passed
    verdict = "pass" if passed else "fail"
    assert decision.reasons[0] == (
        f"mae: challenger {cand_err} vs champion {champ_err}{sentence} ({verdict})"
    )
    assert (decision.candidate_score, decision.champion_score) == (cand_err, champ_err)
    relative = (champ_err - cand_err) / champ_err if champ_err else champ_err - cand_err
    assert decision.improvement == pytest.approx(relative)


@pytest.mark.parametrize(
    "threshold, passed, sentence",
    [
        (95.0, True, "mae: challenger 90 must be at most 95 (pass)"),
        (90.0, True, "mae: challenger 90 must be at most 90 (pass)"),
        (85.0, False, "mae: challenger 90 must be at most 85 (fail)"),
    ],
)
def test_value_threshold_lower_is_better(threshold, passed, sentence):
    frame, cand, champ = regression(90, 100)
    decision = compare(frame, cand, champ, settings(threshold=threshold))
    assert (decision.promote, decision.reasons[0]) == (passed, sentence)


@pytest.mark.parametrize(
    "counts, thresholds, passed, sentence",
    [
        (
            (80, 10, 0, 10),
            {"min_relative_change": 0.1},
            True,
            "is 12.5% better, needs at least 10%",
        ),
        (
            (80, 10, 0, 10),
            {"min_relative_change": 0.2},
            False,
            "is 12.5% better, needs at least 20%",
        ),
        (
            (80, 10, 0, 10),
            {"min_absolute_change": 0.05},
            True,
            "is 0.1 better, needs at least 0.05",
        ),
        ((80, 10, 0, 10), {"min_absolute_change": 0.2}, False, "is 0.1 better, needs at least 0.2"),
        (
            (80, 0, 10, 10),
            {"min_relative_change": 0.01},
            False,
            "is 11.1% worse, needs at least 1%",
        ),
        ((0, 10, 0, 90), {"min_relative_change": 0.5}, True, ": no relative change from 0, needs"),
    ],
)
def test_change_thresholds_higher_is_better(counts, thresholds, passed, sentence):
    frame, cand, champ = paired(*counts)
    decision = compare(
        frame, cand, champ, settings("accuracy", **thresholds), CLS, "classification"
    )
    assert decision.promote is passed
    assert sentence in decision.reasons[0]
    assert decision.reasons[0].endswith(f"({'pass' if passed else 'fail'})")
    both, wins, losses, _ = counts
    assert decision.candidate_score == pytest.approx((both + wins) / sum(counts))
    assert decision.champion_score == pytest.approx((both + losses) / sum(counts))


@pytest.mark.parametrize("threshold, passed", [(0.85, True), (0.9, True), (0.95, False)])
def test_value_threshold_higher_is_better(threshold, passed):
    frame, cand, champ = paired(80, 10, 0, 10)
    s = settings("accuracy", threshold=threshold)
    decision = compare(frame, cand, champ, s, CLS, "classification")
    verdict = "pass" if passed else "fail"
    assert decision.reasons[0] == (
        f"accuracy: challenger 0.9 must be at least {threshold:g} ({verdict})"
    )
    assert decision.promote is passed


def test_every_configured_threshold_is_a_sentence():
    frame, cand, champ = regression(90, 100)
    s = settings(threshold=95.0, min_absolute_change=5.0, min_relative_change=0.2)
    decision = compare(frame, cand, champ, s)
    assert decision.reasons[0] == (
        "mae: challenger 90 must be at most 95 (pass); "
        "mae: challenger 90 vs champion 100 is 10 better, needs at least 5 better (pass); "
        "mae: challenger 90 vs champion 100 is 10% better, needs at least 20% better (fail)"
    )
    assert check(decision, "thresholds").details == {
        "threshold": 95.0,
        "min_relative_change": 0.2,
        "min_absolute_change": 5.0,
    }
    assert decision.promote is False


def test_no_thresholds_never_promotes():
    frame, cand, champ = regression(10, 100)
    decision = compare(frame, cand, champ, settings(guard_metrics={"rmse": 1.0}))
    assert decision.promote is False
    assert [(c.name, c.passed) for c in decision.checks] == [
        ("thresholds", False),
        ("guard rmse", True),
        ("significance", True),
    ]
    assert decision.reasons[0] == (
        "thresholds: none configured (promotion.threshold, min_relative_change, "
        "min_absolute_change), so no challenger is ever promoted (fail)"
    )


@pytest.mark.parametrize(
    "cand_err, passed, sentence",
    [
        (50, True, "max_relative_change: mae gain 50% is within the 60% cap (pass)"),
        (40, True, "max_relative_change: mae gain 60% is within the 60% cap (pass)"),
        (
            30,
            False,
            "max_relative_change: mae gain 70% (100 -> 30) exceeds the 60% cap: "
            "suspiciously large, check for leakage (fail)",
        ),
    ],
)
def test_suspiciously_large_gain_is_rejected(cand_err, passed, sentence):
    frame, cand, champ = regression(cand_err, 100)
    s = settings(min_relative_change=0.02, max_relative_change=0.6)
    decision = compare(frame, cand, champ, s)
    assert check(decision, "thresholds").passed
    assert check(decision, "max_relative_change").sentence == sentence
    assert decision.promote is passed


@pytest.mark.parametrize(
    "cand_err, baseline, passed, sentence",
    [
        # a champion broken by a concept change (mae 100, was 40 when promoted): the honest
        # challenger's 70 % gain is measured against the baseline (25 % better than 40)
        (
            30,
            40.0,
            True,
            "max_relative_change: mae gain 25% over the champion's baseline 40 (its holdout "
            "value 100 is worse) is within the 60% cap (pass)",
        ),
        # better than the champion ever was by more than the cap: leakage, as before
        (
            10,
            40.0,
            False,
            "max_relative_change: mae gain 75% over the champion's baseline 40 (its holdout "
            "value 100 is worse) (40 -> 10) exceeds the 60% cap: suspiciously large, check "
            "for leakage (fail)",
        ),
        # a champion as good as its baseline or better: the holdout value is the reference
        (
            30,
            120.0,
            False,
            "max_relative_change: mae gain 70% (100 -> 30) exceeds the 60% cap: suspiciously "
            "large, check for leakage (fail)",
        ),
    ],
)
def test_gain_cap_is_judged_against_the_champions_baseline_once_it_has_degraded(
    cand_err, baseline, passed, sentence
):
    frame, cand, champ = regression(cand_err, 100)
    s = settings(min_relative_change=0.02, max_relative_change=0.6)
    decision = compare(frame, cand, champ, s, champion_baseline=baseline)
    assert check(decision, "max_relative_change").sentence == sentence
    assert decision.promote is passed


def test_gain_cap_does_not_apply_to_a_zero_champion():
    frame, cand, champ = paired(0, 10, 0, 90)  # champion accuracy 0
    s = settings("accuracy", min_relative_change=0.02, max_relative_change=0.6)
    decision = compare(frame, cand, champ, s, CLS, "classification")
    cap = check(decision, "max_relative_change")
    assert (cap.passed, cap.details["relative_gain"]) == (True, None)
    assert cap.sentence == (
        "max_relative_change: the champion's accuracy is 0, a relative gain is undefined: "
        "cap not applied"
    )
    assert decision.promote is True


def alternating(errors, n=40):
    """Per-row errors repeating the given pattern."""
    return np.resize(np.asarray(errors, dtype=float), n)


@pytest.mark.parametrize(
    "cand_errors, guards, passed, sentence",
    [
        ([95], {"rmse": 1.0}, True, "guard rmse: challenger 95 vs champion 100 is 5 better"),
        # mae 90 (better) but rmse sqrt(180^2 / 2) = 127.3 (worse by 27.3)
        ([0, 0, 180, 180], {"rmse": 30.0}, True, "is 27.3 worse, tolerance 30 (pass)"),
        ([0, 0, 180, 180], {"rmse": 20.0}, False, "is 27.3 worse, tolerance 20 (fail)"),
    ],
)
def test_guard_metric_lower_is_better(cand_errors, guards, passed, sentence):
    frame, cand, champ = regression(alternating(cand_errors), 100)
    s = settings(min_relative_change=0.02, guard_metrics=guards)
    decision = compare(frame, cand, champ, s)
    guard = check(decision, f"guard {next(iter(guards))}")
    assert (guard.passed, decision.promote) == (passed, passed)
    assert sentence in guard.sentence


@pytest.mark.parametrize("tolerance", [0.001, 0.05])
def test_guard_metric_higher_is_better(tolerance):
    """Reference: sklearn.metrics.r2_score on the same predictions."""
    frame, cand, champ = regression(alternating([0, 0, 180, 180]), 100)
    s = settings(min_relative_change=0.02, guard_metrics={"r2": tolerance})
    decision = compare(frame, cand, champ, s)
    r2_cand = skm.r2_score(frame["y"], cand["prediction"])
    r2_champ = skm.r2_score(frame["y"], champ["prediction"])
    guard = check(decision, "guard r2")
    assert guard.details == pytest.approx(
        {"candidate": r2_cand, "champion": r2_champ, "tolerance": tolerance}
    )
    assert guard.passed is (r2_champ - r2_cand <= tolerance)
    assert r2_champ > r2_cand  # the case is a worse challenger


def test_bootstrap_significance_passes_a_consistent_gain():
    frame, cand, champ = regression(90, 100)  # 10 better on every row
    s = settings(min_relative_change=0.02, significance={"method": "auto", "samples": 500})
    sig = check(compare(frame, cand, champ, s), "significance")
    assert sig.sentence == (
        "significance: challenger mae gain 10, 95% paired bootstrap interval [10, 10] "
        "over 500 resamples lies above 0 (pass)"
    )
    assert sig.details["method"] == "bootstrap" and sig.passed


def test_bootstrap_significance_fails_without_a_gain(rng):
    n = 200
    noise = rng.normal(0, 30, n)
    frame, cand, champ = regression(np.abs(noise), np.abs(noise[::-1]), n=n)
    s = settings(min_relative_change=0.0, significance={"method": "bootstrap", "seed": 3})
    decision = compare(frame, cand, champ, s)
    sig = check(decision, "significance")
    assert sig.details["low"] < 0 < sig.details["high"]
    assert sig.sentence.endswith("does not lie above 0 (fail)")
    assert decision.promote is False


@pytest.mark.parametrize(
    "counts, passed",
    [
        ((50, 30, 10, 10), True),
        ((50, 12, 10, 28), False),  # more wins, not significant
        ((50, 10, 30, 10), False),  # significant, but the champion wins
    ],
)
def test_accuracy_gain_is_tested_with_mcnemar(counts, passed):
    frame, cand, champ = paired(*counts)
    s = settings("accuracy", min_absolute_change=0.001, significance={"method": "auto"})
    sig = check(compare(frame, cand, champ, s, CLS, "classification"), "significance")
    _, wins, losses, _ = counts
    # reference: scipy.stats.binomtest
    p = scipy.stats.binomtest(wins, wins + losses, 0.5).pvalue
    assert sig.details == pytest.approx(
        {"method": "mcnemar", "wins": wins, "losses": losses, "p_value": p, "alpha": 0.05}
    )
    assert sig.sentence == (
        f"significance: McNemar exact test on 100 rows: challenger right where the champion "
        f"is wrong on {wins}, the reverse on {losses}, p {p:.3g} {'<' if p < 0.05 else '>='} "
        f"0.05 ({'pass' if passed else 'fail'})"
    )
    assert sig.passed is passed


def test_mcnemar_compares_labels_by_value():
    frame, cand, champ = paired(50, 30, 10, 10)
    frame["label"] = frame["label"].astype(float)  # 1.0 / 0.0
    cand["prediction"] = cand["prediction"].astype(str)  # "1" / "0"
    s = settings("accuracy", min_absolute_change=0.001, significance={"method": "mcnemar"})
    decision = compare(frame, cand, champ, s, CLS, "classification")
    sig = check(decision, "significance")
    assert (sig.details["wins"], sig.details["losses"]) == (30, 10)
    assert decision.candidate_metrics["accuracy"] == pytest.approx(0.8)


def test_mcnemar_on_a_regression_is_a_config_error():
    frame, cand, champ = regression(90, 100)
    s = settings(min_relative_change=0.02, significance={"method": "mcnemar"})
    with pytest.raises(ConfigError, match="'mcnemar' compares correct predictions and needs a"):
        compare(frame, cand, champ, s)


def test_significance_off_is_reported():
    frame, cand, champ = regression(90, 100)
    sig = check(compare(frame, cand, champ, settings(min_relative_change=0.02)), "significance")
    assert (sig.passed, sig.sentence) == (
        True,
        "significance: not tested (promotion.significance.method is 'none')",
    )
