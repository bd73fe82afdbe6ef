"""The retrain policy: which rules fire, the cooldown, and the sentences that explain it."""

import pytest

from modelwatch.errors import ConfigError
from modelwatch.policy import PolicyInputs, RetrainDecision, decide_retraining
from modelwatch.settings import RetrainSettings

SETTINGS = RetrainSettings(
    max_drift_share=0.5,
    max_performance_drop=0.25,
    performance_metric="mae",
    max_model_age_batches=13,
    cooldown_batches=2,
)


def inputs(**changes) -> PolicyInputs:
    """A calm batch: little drift, performance at baseline, young champion, no recent retrain."""
    base = dict(
        batch_index=7,
        drift_share=0.18,
        metric="mae",
        current_metric=70.0,
        baseline_metric=67.2,
        batches_since_champion=3,
        batches_since_retrain=None,
    )
    return PolicyInputs(**{**base, **changes})


@pytest.mark.parametrize(
    "changes, retrain, fired, blocked_by",
    [
        ({}, False, (), None),
        ({"drift_share": 0.64}, True, ("drift",), None),
        ({"drift_share": 0.5}, True, ("drift",), None),  # the limit itself fires
        ({"drift_share": 0.49}, False, (), None),
        ({"drift_share": None}, False, (), None),
        ({"current_metric": 88.1}, True, ("performance",), None),
        ({"current_metric": 100.0, "baseline_metric": 80.0}, True, ("performance",), None),  # 25 %
        ({"current_metric": 1.0, "baseline_metric": 0.8}, True, ("performance",), None),  # 0.2/0.8
        ({"current_metric": 99.0, "baseline_metric": 80.0}, False, (), None),
        ({"current_metric": None}, False, (), None),
        ({"baseline_metric": None}, False, (), None),
        (
            {"metric": "r2", "current_metric": 0.5, "baseline_metric": 0.7},
            True,
            ("performance",),
            None,
        ),
        ({"metric": "r2", "current_metric": 0.9, "baseline_metric": 0.7}, False, (), None),
        ({"batches_since_champion": 13}, True, ("staleness",), None),
        ({"batches_since_champion": 12}, False, (), None),
        (
            {"drift_share": 0.9, "current_metric": 90.0, "batches_since_champion": 20},
            True,
            ("drift", "performance", "staleness"),
            None,
        ),
        ({"force": True, "force_reason": "new feature pipeline"}, True, ("manual",), None),
        # cooldown: automatic rules are recorded but blocked
        ({"drift_share": 0.64, "batches_since_retrain": 1}, False, ("drift",), "cooldown"),
        ({"drift_share": 0.64, "batches_since_retrain": 0}, False, ("drift",), "cooldown"),
        ({"drift_share": 0.64, "batches_since_retrain": 2}, True, ("drift",), None),
        ({"batches_since_retrain": 1}, False, (), None),  # nothing to block
        # manual force is never blocked
        (
            {
                "drift_share": 0.64,
                "batches_since_retrain": 0,
                "force": True,
                "force_reason": "audit",
            },
            True,
            ("drift", "manual"),
            None,
        ),
    ],
)
def test_decide_retraining(changes, retrain, fired, blocked_by):
    decision = decide_retraining(inputs(**changes), SETTINGS, "regression")
    assert (decision.retrain, decision.rules_fired, decision.blocked_by) == (
        retrain,
        fired,
        blocked_by,
    )
    # every fired rule is explained by a reason that starts with its name
    assert [r.split(":")[0] for r in decision.reasons][: len(fired)] == list(fired)


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"drift_share": 0.64}, "drift: share of drifted features 0.64 >= 0.50"),
        (
            {"current_metric": 88.1},
            "performance: mae 88.1 is 31.1% worse than the champion's baseline 67.2 (limit 25%)",
        ),
        ({"batches_since_champion": 13}, "staleness: champion is 13 batches old (limit 13)"),
        ({"force": True, "force_reason": "  label fix in March  "}, "manual: label fix in March"),
        (
            {"current_metric": 3.0, "baseline_metric": 0.0},
            "performance: mae 3 is 3 worse than the champion's baseline 0 (limit 25%)",
        ),
    ],
)
def test_reason_sentences(changes, reason):
    assert decide_retraining(inputs(**changes), SETTINGS, "regression").reasons[0] == reason


def test_nothing_fired_explains_every_rule():
    decision = decide_retraining(inputs(), SETTINGS, "regression")
    assert decision.reasons == (
        "no rule fired: drift share 0.18 < 0.50, mae 70 is 4.2% worse than the champion's "
        "baseline 67.2 (limit 25%), champion is 3 batches old (limit 13)",
    )
    assert decision.summary() == f"no retrain: {decision.reasons[0]}"


def test_unknown_inputs_are_said_so():
    decision = decide_retraining(
        inputs(drift_share=None, current_metric=None), SETTINGS, "regression"
    )
    assert decision.reasons[0].startswith(
        "no rule fired: drift share unknown, mae current value unknown, champion is 3 batches"
    )


def test_cooldown_reason_and_summary():
    decision = decide_retraining(
        inputs(drift_share=0.64, batches_since_retrain=1), SETTINGS, "regression"
    )
    assert decision.reasons == (
        "drift: share of drifted features 0.64 >= 0.50",
        "cooldown: last retrain was 1 batch ago (cooldown 2 batches), "
        "so automatic retraining waits",
    )
    assert decision.summary().startswith("no retrain (blocked by cooldown): drift: share")


def test_manual_during_cooldown_says_cooldown_was_ignored():
    decision = decide_retraining(
        inputs(batches_since_retrain=0, force=True, force_reason="audit"), SETTINGS, "regression"
    )
    assert decision.reasons == (
        "manual: audit",
        "cooldown: last retrain was 0 batches ago (cooldown 2 batches), "
        "ignored for a manual retrain",
    )


def test_classification_performance_uses_max_direction():
    decision = decide_retraining(
        inputs(metric="f1", current_metric=0.45, baseline_metric=0.62), SETTINGS, "classification"
    )
    assert decision.rules_fired == ("performance",)
    assert decision.reasons[0] == (
        "performance: f1 0.45 is 27.4% worse than the champion's baseline 0.62 (limit 25%)"
    )


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_force_without_reason_is_a_config_error(reason):
    with pytest.raises(ConfigError, match="manual retrain needs a reason"):
        decide_retraining(inputs(force=True, force_reason=reason), SETTINGS, "regression")


def test_metric_of_other_task_is_a_config_error():
    with pytest.raises(ConfigError, match=r"'mae' is not a classification metric"):
        decide_retraining(inputs(current_metric=None), SETTINGS, "classification")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"drift_share": 1.5}, r"drift_share must be in \[0, 1\]"),
        ({"batches_since_champion": -1}, r"batches_since_champion must be >= 0"),
        ({"batches_since_retrain": -2}, r"batches_since_retrain must be >= 0"),
    ],
)
def test_inputs_out_of_range(changes, message):
    with pytest.raises(ValueError, match=message):
        inputs(**changes)


def test_to_dict():
    decision = RetrainDecision(True, ("drift",), ("drift: share 0.6 >= 0.5",), None)
    assert decision.to_dict() == {
        "retrain": True,
        "rules_fired": ["drift"],
        "reasons": ["drift: share 0.6 >= 0.5"],
        "blocked_by": None,
    }
