"""The policy rules that use what the project measures: importance-weighted drift, prediction
drift, the CBPE estimate, realized performance judged on its bootstrap interval, the expected
gain learned from past challenges, and the window after a performance drop."""

import dataclasses

from modelwatch.decide.policy import (
    Challenge,
    Evaluated,
    PolicyInputs,
    RetrainDecision,
    decide_retraining,
)
from modelwatch.settings import RetrainSettings

BASE = dict(
    max_drift_share=None,
    max_drift_share_increase=0.3,
    performance_metric="mae",
    max_performance_drop=0.15,
    max_model_age_batches=None,
    cooldown_batches=3,
)


def settings(**changes) -> RetrainSettings:
    return RetrainSettings(**{**BASE, **changes})


def inputs(**changes) -> PolicyInputs:
    """A calm batch 20 of a regression champion with baseline mae 1.0."""
    base = dict(
        batch_index=20,
        drift_share=0.1,
        baseline_drift_share=0.1,
        weighted_drift_share=0.05,
        baseline_weighted_drift_share=0.05,
        metric="mae",
        current_metric=1.05,
        current_interval=(0.95, 1.15),
        baseline_metric=1.0,
        batches_since_champion=5,
    )
    return PolicyInputs(**{**base, **changes})


def change(i: PolicyInputs, changes: dict) -> PolicyInputs:
    return dataclasses.replace(i, **changes)


def decide(s: RetrainSettings, i: PolicyInputs, task: str = "regression") -> RetrainDecision:
    return decide_retraining(i, s, task)


# --- drift weighted by the champion's importance --------------------------------------------


def test_drift_in_features_the_model_does_not_use_does_not_fire():
    # 3 of 5 features drifted (share up 0.5), but they hold 10 % of the importance
    calendar = inputs(drift_share=0.6, weighted_drift_share=0.1)
    assert decide(settings(), calendar).violated == ()
    equal = decide(settings(drift_weighting="equal"), calendar)
    assert equal.violated == ("drift",) and equal.retrain


def test_drift_in_the_important_feature_fires_and_says_so():
    decision = decide(settings(), inputs(drift_share=0.2, weighted_drift_share=0.7))
    assert decision.rules_fired == ("drift",)
    assert "importance of drifted features 0.70 is 0.65 above" in decision.summary()


def test_weighting_falls_back_to_the_share_without_importances():
    decision = decide(settings(), inputs(drift_share=0.6, weighted_drift_share=None))
    assert decision.rules_fired == ("drift",)
    assert "share of drifted features 0.60" in decision.summary()


def test_prediction_drift_is_a_drift_rule_when_asked():
    moved = inputs(prediction_drifted=True)
    assert decide(settings(), moved).violated == ()
    decision = decide(settings(prediction_drift=True), moved)
    assert decision.rules_fired == ("drift",) and "the prediction drifted" in decision.summary()
    assert decide(settings(prediction_drift=True), inputs(prediction_drifted=False)).violated == ()


# --- realized performance on its interval ---------------------------------------------------


def test_a_point_past_the_limit_with_an_interval_reaching_back_does_not_fire():
    # mae 1.2 is 20 % worse (limit 15 %), but the interval's better end 1.1 is only 10 % worse
    noisy = inputs(current_metric=1.2, current_interval=(1.1, 1.3))
    assert decide(settings(), noisy).violated == ()
    assert decide(settings(performance_evidence="point"), noisy).violated == ("performance",)


def test_an_interval_wholly_past_the_limit_fires_and_names_its_better_end():
    decision = decide(settings(), inputs(current_metric=1.4, current_interval=(1.2, 1.6)))
    assert decision.rules_fired == ("performance",)
    assert "mae 1.4 (interval 1.2 to 1.6), at its better end 1.2, is 20% worse" in (
        decision.summary()
    )


def test_interval_of_a_metric_to_maximise_uses_its_upper_end():
    s = settings(performance_metric="roc_auc", max_performance_drop=0.1)
    i = inputs(metric="roc_auc", baseline_metric=0.8, current_metric=0.68)
    cls = "classification"
    assert decide(s, change(i, {"current_interval": (0.6, 0.75)}), cls).violated == ()  # 6 % worse
    assert decide(s, change(i, {"current_interval": (0.6, 0.71)}), cls).violated == ("performance",)


def test_without_an_interval_the_point_decides():
    assert decide(settings(), inputs(current_metric=1.2, current_interval=None)).retrain


# --- the CBPE estimate (classification) -----------------------------------------------------


def test_estimated_drop_fires_before_labels_for_classification_only():
    s = settings(performance_metric="roc_auc", max_performance_drop=None, max_estimated_drop=0.1)
    i = inputs(metric="roc_auc", baseline_metric=0.8, current_metric=None, current_interval=None)
    decision = decide(s, change(i, {"estimated_metric": 0.7}), "classification")
    assert decision.rules_fired == ("estimated",) and decision.severity == "warning"
    assert "roc_auc estimated before labels 0.7 is 12.5% worse" in decision.summary()
    assert decide(s, change(i, {"estimated_metric": 0.75}), "classification").violated == ()
    assert decide(s, change(i, {"estimated_metric": None}), "classification").violated == ()


# --- expected gain from past challenges -----------------------------------------------------


def lost(*batches: int, gain: float = -0.01) -> tuple[Challenge, ...]:
    return tuple(Challenge(b, gain, False) for b in batches)


def test_challengers_that_keep_losing_make_retrains_wait_longer():
    s = settings()
    fired = {"drift_share": 0.2, "weighted_drift_share": 0.7}
    # one loss: waits max(cooldown 3, 1) x 2 = 6 batches after the last retrain
    one = inputs(**fired, retrain_batches=(16,), challenges=lost(16))
    decision = decide(s, one)
    assert not decision.retrain and decision.blocked_by == "expected gain"
    assert "1 lost in a row, so retrains wait 6 batches (last was 4 batches ago)" in (
        decision.summary()
    )
    assert decide(s, change(one, {"retrain_batches": (14,)})).retrain  # 6 batches ago: goes ahead
    # three losses: 3 x 8 = 24 batches, capped by max_wait_batches
    three = inputs(**fired, retrain_batches=(4, 8, 12), challenges=lost(4, 8, 12))
    assert decide(s, three).blocked_by == "expected gain"
    assert decide(settings(gain={"max_wait_batches": 8}), three).retrain


def test_a_promotion_ends_the_backoff_and_gains_above_the_bar_never_start_it():
    fired = {"drift_share": 0.2, "weighted_drift_share": 0.7, "retrain_batches": (16,)}
    won = (*lost(8, 12), Challenge(16, 0.2, True))
    assert decide(settings(cooldown_batches=0), inputs(**fired, challenges=won)).retrain
    near = lost(16, gain=0.01)  # lost, but gains 1 % on average: above min_expected 0
    assert decide(settings(cooldown_batches=0), inputs(**fired, challenges=near)).retrain


def test_backoff_one_turns_the_rule_off_and_manual_retrains_ignore_it():
    fired = {"drift_share": 0.2, "weighted_drift_share": 0.7, "retrain_batches": (16,)}
    i = inputs(**fired, challenges=lost(16))
    assert decide(settings(cooldown_batches=0, gain={"backoff": 1.0}), i).retrain
    manual = decide(settings(), change(i, {"force": True, "force_reason": "audit"}))
    assert manual.retrain and "expected gain" in manual.summary()


# --- the window after a performance drop ----------------------------------------------------


def evaluated(*pairs: tuple[int, float]) -> tuple[Evaluated, ...]:
    return tuple(Evaluated(i, v, (v - 0.05, v + 0.05)) for i, v in pairs)


def test_first_batch_after_a_drop_waits_for_one_to_learn_from():
    # batch 15 is the first below the limit: training on anything older learns the old relation
    i = inputs(current_metric=2.5, current_interval=(2.3, 2.7))
    i = change(i, {"evaluated": evaluated((13, 1.0), (14, 1.02), (15, 2.5))})
    decision = decide(settings(), i)
    assert decision.violated == ("performance",) and not decision.retrain
    assert decision.blocked_by == "drop window" and decision.window_batches is None
    assert "fell below its limit at batch 15" in decision.summary()


def test_second_batch_after_a_drop_retrains_on_the_batches_since_it():
    i = inputs(current_metric=2.5, current_interval=(2.3, 2.7))
    i = change(i, {"evaluated": evaluated((13, 1.0), (14, 2.4), (15, 2.6), (16, 2.5))})
    decision = decide(settings(), i)
    assert decision.retrain and decision.window_batches == 2  # 14, 15; 16 is the holdout
    assert RetrainDecision.from_dict(decision.to_dict()) == decision
    off = decide(settings(window_after_drop=False), change(i, {"evaluated": evaluated((15, 2.5))}))
    assert off.retrain and off.window_batches is None


def test_a_drop_window_never_blocks_a_manual_retrain_nor_a_drift_only_one():
    i = inputs(current_metric=2.5, current_interval=(2.3, 2.7), evaluated=evaluated((15, 2.5)))
    assert decide(settings(), change(i, {"force": True, "force_reason": "audit"})).retrain
    drift_only = inputs(drift_share=0.2, weighted_drift_share=0.7, evaluated=evaluated((15, 1.0)))
    assert decide(settings(), drift_only).retrain
