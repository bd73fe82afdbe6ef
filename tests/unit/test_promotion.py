"""Promotion: every check of the challenger against the champion on a shared holdout.

Frames are crafted so that metrics are exact: integer targets and predictions off by a fixed
error (alternating sign) give mae = rmse = that error.
"""

import json
import subprocess
import sys
from functools import partial

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from sklearn import metrics as skm

from modelwatch import gate, promotion
from modelwatch.errors import ConfigError, InsufficientDataError, SchemaError
from modelwatch.performance import compute_metrics
from modelwatch.promotion import (
    Predictions,
    PromotionDecision,
    bootstrap_indices,
    compare_models,
    decide_first_model,
    mcnemar_exact,
    paired_bootstrap,
    paired_differences,
)
from modelwatch.settings import DataSettings, PromotionSettings

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


def test_bootstrap_interval_is_the_percentile_of_paired_resamples(rng):
    """Reference: numpy.quantile of the per-resample differences, drawn as documented."""
    n = 300
    y = rng.gamma(4, 50, n)
    cand, champ = Predictions(y + rng.normal(0, 20, n)), Predictions(y + rng.normal(0, 22, n))
    res = paired_bootstrap(
        y, cand, champ, "rmse", "regression", samples=400, confidence=0.9, seed=5
    )
    diffs = np.concatenate(
        [
            paired_differences(y, cand, champ, "rmse", "regression", i)
            for i in bootstrap_indices(n, 400, 5)
        ]
    )
    np.testing.assert_allclose(res.differences, diffs, rtol=1e-12)
    assert (res.low, res.high) == pytest.approx(tuple(np.quantile(diffs, [0.05, 0.95])), rel=1e-12)
    want = skm.root_mean_squared_error(y, champ.labels) - skm.root_mean_squared_error(
        y, cand.labels
    )
    assert res.difference == pytest.approx(want, rel=1e-9)
    assert (res.samples, res.undefined) == (400, 0)


def _binary(rng, n):
    y = rng.integers(0, 2, n)
    scores = [np.clip(0.35 * y + rng.uniform(0, 0.65, n), 0, 1) for _ in range(2)]
    scores[1] = np.round(scores[1], 1)  # ties in the champion's scores
    return y, *(Predictions((s > 0.5).astype(int), s) for s in scores)


def _multiclass(rng, n):
    y = rng.choice(["a", "b", "c"], n)
    return y, *(
        Predictions(np.where(rng.random(n) < right, y, rng.choice(["a", "b", "c"], n)))
        for right in (0.7, 0.5)
    )


def _regression(rng, n):
    y = rng.gamma(4, 50, n)
    return y, Predictions(y + rng.normal(0, 20, n)), Predictions(y + rng.normal(5, 25, n))


def _macro(score):
    return partial(score, average="macro", zero_division=0)


METRIC_CASES = [
    # data, metric, sklearn reference, on scores, higher is better
    (_regression, "mae", skm.mean_absolute_error, False, False),
    (_regression, "rmse", skm.root_mean_squared_error, False, False),
    (_regression, "mape", skm.mean_absolute_percentage_error, False, False),
    (_regression, "r2", skm.r2_score, False, True),
    (_binary, "accuracy", skm.accuracy_score, False, True),
    (_binary, "precision", partial(skm.precision_score, zero_division=0), False, True),
    (_binary, "recall", partial(skm.recall_score, zero_division=0), False, True),
    (_binary, "f1", partial(skm.f1_score, zero_division=0), False, True),
    (_binary, "roc_auc", skm.roc_auc_score, True, True),
    (_binary, "pr_auc", skm.average_precision_score, True, True),
    (_binary, "log_loss", partial(skm.log_loss, labels=[0, 1]), True, False),
    (_multiclass, "accuracy", skm.accuracy_score, False, True),
    (_multiclass, "precision", _macro(skm.precision_score), False, True),
    (_multiclass, "recall", _macro(skm.recall_score), False, True),
    (_multiclass, "f1", _macro(skm.f1_score), False, True),
]


@pytest.mark.parametrize("path", ["vectorised", "loop over compute_metrics"])
@pytest.mark.parametrize("make, metric, reference, on_scores, higher_is_better", METRIC_CASES)
def test_paired_difference_on_fixed_resamples_matches_sklearn(
    rng, monkeypatch, path, make, metric, reference, on_scores, higher_is_better
):
    """Reference: sklearn.metrics computed by hand on the resampled rows of both models."""
    if path != "vectorised":  # the fallback for metrics without a vectorised form
        monkeypatch.setattr(promotion, "_fast_metric", lambda *args: None)
    n = 300
    y, cand, champ = make(rng, n)
    task = "regression" if make is _regression else "classification"
    indices = next(bootstrap_indices(n, 3, seed=11))
    got = paired_differences(y, cand, champ, metric, task, indices, positive_label=1)
    for rows, value in zip(indices, got, strict=True):

        def score(p, rows=rows):
            return reference(y[rows], (p.scores if on_scores else p.labels)[rows])

        want = score(cand) - score(champ) if higher_is_better else score(champ) - score(cand)
        assert value == pytest.approx(want, rel=1e-9, abs=1e-12)
    res = paired_bootstrap(
        y, cand, champ, metric, task, samples=3, confidence=0.9, seed=11, positive_label=1
    )
    np.testing.assert_allclose(res.differences, got, rtol=1e-12)


@pytest.mark.parametrize("make, metric", [(c[0], c[1]) for c in METRIC_CASES])
def test_vectorised_metrics_score_all_resamples_at_once(rng, monkeypatch, make, metric):
    """compute_metrics runs once per model (to check the vectorised form), not per resample."""
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return compute_metrics(*args, **kwargs)

    monkeypatch.setattr(promotion, "compute_metrics", counted)
    y, cand, champ = make(rng, 200)
    task = "regression" if make is _regression else "classification"
    paired_bootstrap(
        y, cand, champ, metric, task, samples=300, confidence=0.9, seed=0, positive_label=1
    )
    assert len(calls) == 2


def test_resamples_with_an_undefined_metric_are_left_out_and_counted():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0])  # one positive: many resamples lack it
    scores = np.linspace(0.9, 0.1, 8)
    cand, champ = (
        Predictions((scores > 0.5).astype(int), scores),
        Predictions(np.zeros(8), 1 - scores),
    )
    res = paired_bootstrap(
        y,
        cand,
        champ,
        "roc_auc",
        "classification",
        samples=200,
        confidence=0.9,
        seed=2,
        positive_label=1,
    )
    no_positive = sum(int((idx != 0).all(axis=1).sum()) for idx in bootstrap_indices(8, 200, 2))
    assert res.undefined == no_positive > 0
    assert np.isnan(res.differences).sum() == no_positive


@pytest.mark.parametrize(
    "wins, losses", [(30, 10), (10, 30), (12, 10), (5, 5), (1, 0), (0, 7), (200, 170), (3, 40)]
)
def test_mcnemar_exact_matches_binomtest(wins, losses):
    # reference: scipy.stats.binomtest (two-sided exact test of wins among discordant pairs, p=1/2)
    want = scipy.stats.binomtest(wins, wins + losses, 0.5).pvalue
    assert mcnemar_exact(wins, losses) == pytest.approx(want, rel=1e-12)


def test_mcnemar_without_discordant_rows_is_not_significant():
    assert mcnemar_exact(0, 0) == 1.0


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


def segmented(n_a=40, n_b=40, n_c=10):
    """Region a: challenger 70 vs 100; region b: 120 vs 100 (20% worse); c: 90 vs 100."""
    region = np.repeat(["a", "b", "c"], [n_a, n_b, n_c])
    errors = np.select([region == "a", region == "b"], [70.0, 120.0], 90.0)
    frame, cand, champ = regression(errors, 100, n=len(region), region=region)
    frame.index = frame.index + 1000  # positions, not labels, align the predictions
    return frame, cand, champ


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
    code = "import sys, modelwatch.promotion; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
