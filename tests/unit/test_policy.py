"""The retrain policy: every rule on and off, persistence, cooldown, budget, run mode, severity,
the sentences that explain a decision and the record that stores it."""

import json
import subprocess
import sys

import pytest

from modelwatch.decide.policy import BatchSignal, PolicyInputs, RetrainDecision, decide_retraining
from modelwatch.errors import ConfigError
from modelwatch.performance.metrics import METRIC_DIRECTIONS
from modelwatch.settings import RetrainSettings

BASE_SETTINGS = dict(
    max_drift_share=0.5,
    max_drift_share_increase=None,
    performance_metric="mae",
    max_performance_drop=0.25,
    max_performance_drop_abs=None,
    performance_limit=None,
    max_model_age_batches=13,
    cooldown_batches=2,
)
SETTINGS = RetrainSettings(**BASE_SETTINGS)


def settings(**changes) -> RetrainSettings:
    """The base settings with some keys changed (validated like params.yaml)."""
    return RetrainSettings(**{**BASE_SETTINGS, **changes})


def inputs(**changes) -> PolicyInputs:
    """A calm batch 20: little drift, performance near baseline, young champion, no retrain yet."""
    base = dict(
        batch_index=20,
        drift_share=0.18,
        metric="mae",
        current_metric=70.0,
        baseline_metric=67.2,
        baseline_drift_share=0.1,
        batches_since_champion=3,
    )
    return PolicyInputs(**{**base, **changes})


def signals(*pairs: tuple[int, str]) -> tuple[BatchSignal, ...]:
    """Earlier batches, each violating one rule: signals((18, "drift"), (19, "performance"))."""
    return tuple(BatchSignal(index, frozenset({rule})) for index, rule in pairs)


DRIFT = {"drift_share": 0.64}
WORSE = {"current_metric": 88.1}  # 31.1 % (20.9) worse than 67.2
FORCE = {"force": True, "force_reason": "audit"}
REL_DRIFT = {"max_drift_share": None, "max_drift_share_increase": 0.3}
ABS_MAE = {"max_performance_drop": None, "max_performance_drop_abs": 10.0}
LIMIT_MAE = {"max_performance_drop": None, "performance_limit": 80.0}
ROC = {"metric": "roc_auc", "current_metric": 0.8, "baseline_metric": 0.8}
ROC_SETTINGS = {"performance_metric": "roc_auc", "max_performance_drop": None}
REL_ROC = {**ROC_SETTINGS, "max_performance_drop": 0.1}
ABS_ROC = {**ROC_SETTINGS, "max_performance_drop_abs": 0.05}
LIMIT_ROC = {**ROC_SETTINGS, "performance_limit": 0.7}
PERSIST_2_OF_3 = {"persistence": {"violations": 2, "window": 3}}  # batch 20: 18-20
PERSIST_3_OF_3 = {"persistence": {"violations": 3, "window": 3}}
BUDGET_2_PER_10 = {"budget": {"max_retrains": 2, "per_batches": 10}}  # batch 20: 11-20
NO = (False, "", None, "info")  # nothing violated, nothing fired, nothing to block

# fmt: off
ROWS = [
    # id, settings changes, input changes, (retrain, rules fired, blocked by, severity)
    ("calm", {}, {}, NO),
    # drift, absolute
    ("drift-abs", {}, DRIFT, (True, "drift", None, "warning")),
    ("drift-abs-at-limit", {}, {"drift_share": 0.5}, (True, "drift", None, "warning")),
    ("drift-abs-below", {}, {"drift_share": 0.49}, NO),
    ("drift-unknown", {}, {"drift_share": None}, NO),
    ("drift-abs-off", {"max_drift_share": None}, {"drift_share": 0.9}, NO),
    # drift, relative to the champion's first batch (0.1 here; 0.7 - 0.4 is 0.29999999999999993)
    ("drift-rel", REL_DRIFT, {"drift_share": 0.45}, (True, "drift", None, "warning")),
    ("drift-rel-at-limit", REL_DRIFT, {"drift_share": 0.7, "baseline_drift_share": 0.4},
     (True, "drift", None, "warning")),
    ("drift-rel-below", REL_DRIFT, {"drift_share": 0.39}, NO),
    ("drift-rel-no-baseline", REL_DRIFT, {"drift_share": 0.9, "baseline_drift_share": None}, NO),
    ("drift-rel-beside-abs", {"max_drift_share_increase": 0.3}, {"drift_share": 0.45},
     (True, "drift", None, "warning")),
    ("drift-rel-off", {"max_drift_share": None}, {"drift_share": 0.45}, NO),
    # performance, relative (mae: lower is better; 0.2 / 0.8 is 0.24999999999999994)
    ("perf-rel", {}, WORSE, (True, "performance", None, "critical")),
    ("perf-rel-at-limit", {}, {"current_metric": 100.0, "baseline_metric": 80.0},
     (True, "performance", None, "critical")),
    ("perf-rel-at-limit-float", {}, {"current_metric": 1.0, "baseline_metric": 0.8},
     (True, "performance", None, "critical")),
    ("perf-rel-below", {}, {"current_metric": 99.0, "baseline_metric": 80.0}, NO),
    ("perf-rel-better", {}, {"current_metric": 40.0}, NO),
    ("perf-current-unknown", {}, {"current_metric": None}, NO),
    ("perf-baseline-unknown", {}, {"baseline_metric": None}, NO),
    ("perf-off", {"max_performance_drop": None}, {"current_metric": 500.0}, NO),
    ("perf-rel-r2", {}, {"metric": "r2", "current_metric": 0.5, "baseline_metric": 0.7},
     (True, "performance", None, "critical")),
    ("perf-rel-r2-better", {}, {"metric": "r2", "current_metric": 0.9, "baseline_metric": 0.7},
     NO),
    # performance, relative vs absolute: mae 0.3 vs 0.2 is 50 % worse, but only 0.1
    ("perf-rel-small-mae", {}, {"current_metric": 0.3, "baseline_metric": 0.2},
     (True, "performance", None, "critical")),
    ("perf-abs-small-mae", ABS_MAE, {"current_metric": 0.3, "baseline_metric": 0.2}, NO),
    ("perf-abs-mae", ABS_MAE, WORSE, (True, "performance", None, "critical")),
    ("perf-abs-mae-at-limit", ABS_MAE, {"current_metric": 77.2},
     (True, "performance", None, "critical")),
    ("perf-abs-mae-below", ABS_MAE, {"current_metric": 77.1}, NO),
    ("perf-abs-mae-better", ABS_MAE, {"current_metric": 50.0}, NO),
    ("perf-abs-beside-rel", {"max_performance_drop_abs": 30.0}, WORSE,
     (True, "performance", None, "critical")),
    # performance on roc_auc (higher is better): (0.8 - 0.72) / 0.8 is 0.09999999999999995
    ("perf-rel-roc", REL_ROC, {**ROC, "current_metric": 0.72},
     (True, "performance", None, "critical")),
    ("perf-rel-roc-below", REL_ROC, {**ROC, "current_metric": 0.73}, NO),
    ("perf-rel-roc-better", REL_ROC, {**ROC, "current_metric": 0.95}, NO),
    ("perf-abs-roc-at-limit", ABS_ROC, {**ROC, "current_metric": 0.75},
     (True, "performance", None, "critical")),
    ("perf-abs-roc-below", ABS_ROC, {**ROC, "current_metric": 0.76}, NO),
    ("perf-abs-roc-better", ABS_ROC, {**ROC, "current_metric": 0.9}, NO),
    # performance, a bound on the value itself (mae above it, roc_auc below it; the limit fires)
    ("perf-limit-mae", LIMIT_MAE, {"current_metric": 85.0},
     (True, "performance", None, "critical")),
    ("perf-limit-mae-at-limit", LIMIT_MAE, {"current_metric": 80.0},
     (True, "performance", None, "critical")),
    ("perf-limit-mae-within", LIMIT_MAE, {"current_metric": 79.9}, NO),
    ("perf-limit-no-baseline", LIMIT_MAE, {"current_metric": 85.0, "baseline_metric": None},
     (True, "performance", None, "critical")),
    ("perf-limit-roc", LIMIT_ROC, {**ROC, "current_metric": 0.65},
     (True, "performance", None, "critical")),
    ("perf-limit-roc-at-limit", LIMIT_ROC, {**ROC, "current_metric": 0.7},
     (True, "performance", None, "critical")),
    ("perf-limit-roc-within", LIMIT_ROC, {**ROC, "current_metric": 0.71}, NO),
    # staleness and manual
    ("stale", {}, {"batches_since_champion": 13}, (True, "staleness", None, "info")),
    ("stale-below", {}, {"batches_since_champion": 12}, NO),
    ("stale-off", {"max_model_age_batches": None}, {"batches_since_champion": 100}, NO),
    ("manual", {}, FORCE, (True, "manual", None, "info")),
    ("all", {}, {**DRIFT, **WORSE, "batches_since_champion": 20},
     (True, "drift performance staleness", None, "critical")),
    # severity: the highest of the violated rules; keys left out keep their defaults
    ("sev-drift-stale", {}, {**DRIFT, "batches_since_champion": 13},
     (True, "drift staleness", None, "warning")),
    ("sev-stale-manual", {}, {**FORCE, "batches_since_champion": 13},
     (True, "staleness manual", None, "info")),
    ("sev-configured", {"severity": {"staleness": "critical"}},
     {**DRIFT, "batches_since_champion": 13}, (True, "drift staleness", None, "critical")),
    ("sev-lowered", {"severity": {"drift": "info"}}, DRIFT, (True, "drift", None, "info")),
    # persistence 2 of 3: this batch and one of batches 18, 19
    ("persist-first", PERSIST_2_OF_3, DRIFT, (False, "", "persistence", "warning")),
    ("persist-previous", PERSIST_2_OF_3, {**DRIFT, "recent": signals((19, "drift"))},
     (True, "drift", None, "warning")),
    ("persist-window-start", PERSIST_2_OF_3, {**DRIFT, "recent": signals((18, "drift"))},
     (True, "drift", None, "warning")),
    ("persist-outside-window", PERSIST_2_OF_3, {**DRIFT, "recent": signals((17, "drift"))},
     (False, "", "persistence", "warning")),
    ("persist-other-rule", PERSIST_2_OF_3, {**DRIFT, "recent": signals((19, "performance"))},
     (False, "", "persistence", "warning")),
    ("persist-latest-must-violate", PERSIST_2_OF_3,
     {"recent": signals((18, "drift"), (19, "drift"))}, NO),
    ("persist-3-of-3", PERSIST_3_OF_3, {**DRIFT, "recent": signals((18, "drift"), (19, "drift"))},
     (True, "drift", None, "warning")),
    ("persist-3-of-3-short", PERSIST_3_OF_3, {**DRIFT, "recent": signals((19, "drift"))},
     (False, "", "persistence", "warning")),
    ("persist-perf", PERSIST_2_OF_3, {**WORSE, "recent": signals((18, "performance"))},
     (True, "performance", None, "critical")),
    ("persist-one-of-two", PERSIST_2_OF_3, {**DRIFT, **WORSE, "recent": signals((19, "drift"))},
     (True, "drift", None, "critical")),
    ("persist-not-staleness", PERSIST_2_OF_3, {"batches_since_champion": 13},
     (True, "staleness", None, "info")),
    ("persist-not-manual", PERSIST_2_OF_3, {**DRIFT, **FORCE}, (True, "manual", None, "warning")),
    # cooldown of 2 batches: automatic rules are reported but wait, a manual retrain does not
    ("cooldown-1", {}, {**DRIFT, "retrain_batches": (19,)},
     (False, "drift", "cooldown", "warning")),
    ("cooldown-0", {}, {**DRIFT, "retrain_batches": (20,)},
     (False, "drift", "cooldown", "warning")),
    ("cooldown-over", {}, {**DRIFT, "retrain_batches": (18,)}, (True, "drift", None, "warning")),
    ("cooldown-nothing-to-block", {}, {"retrain_batches": (19,)}, NO),
    ("cooldown-off", {"cooldown_batches": 0}, {**DRIFT, "retrain_batches": (20,)},
     (True, "drift", None, "warning")),
    ("cooldown-manual", {}, {**DRIFT, **FORCE, "retrain_batches": (20,)},
     (True, "drift manual", None, "warning")),
    # budget of 2 retrains in any 10 batches: for batch 20, retrains in batches 11-20 count
    ("budget-used", BUDGET_2_PER_10, {**DRIFT, "retrain_batches": (11, 15)},
     (False, "drift", "budget", "warning")),
    ("budget-window-edge", BUDGET_2_PER_10, {**DRIFT, "retrain_batches": (10, 15)},
     (True, "drift", None, "warning")),
    ("budget-one-left", BUDGET_2_PER_10, {**DRIFT, "retrain_batches": (3, 6, 15)},
     (True, "drift", None, "warning")),
    ("budget-manual", BUDGET_2_PER_10, {**FORCE, "retrain_batches": (11, 15)},
     (True, "manual", None, "info")),
    ("budget-off", {}, {**DRIFT, "retrain_batches": (3, 6, 9, 12, 15)},
     (True, "drift", None, "warning")),
    ("budget-and-cooldown", BUDGET_2_PER_10, {**DRIFT, "retrain_batches": (15, 19)},
     (False, "drift", "cooldown", "warning")),
    # run mode
    ("disabled", {"run_mode": "disabled"}, DRIFT,
     (False, "drift", "run_mode disabled", "warning")),
    ("disabled-manual", {"run_mode": "disabled"}, FORCE,
     (False, "manual", "run_mode disabled", "info")),
    ("disabled-calm", {"run_mode": "disabled"}, {}, NO),
    ("dry-run", {"run_mode": "dry_run"}, DRIFT, (True, "drift", None, "warning")),
    ("dry-run-cooldown", {"run_mode": "dry_run"}, {**DRIFT, "retrain_batches": (19,)},
     (False, "drift", "cooldown", "warning")),
    ("enabled", {"run_mode": "enabled"}, DRIFT, (True, "drift", None, "warning")),
]
# fmt: on


def task_of(metric: str) -> str:
    return next(task for task, metrics in METRIC_DIRECTIONS.items() if metric in metrics)


@pytest.mark.parametrize(
    "setting_changes, input_changes, expected", [pytest.param(*r[1:], id=r[0]) for r in ROWS]
)
def test_decide_retraining(setting_changes, input_changes, expected):
    config, batch = settings(**setting_changes), inputs(**input_changes)
    decision = decide_retraining(batch, config, task_of(batch.metric))
    retrain, fired, blocked_by, severity = expected
    assert (decision.retrain, decision.rules_fired, decision.blocked_by, decision.severity) == (
        retrain,
        tuple(fired.split()),
        blocked_by,
        severity,
    )
    assert decision.mode == config.run_mode
    # whatever fired was violated by this batch, and every violated rule is explained
    assert set(decision.rules_fired) <= set(decision.violated)
    assert {r.split(":")[0] for r in decision.reasons} >= set(decision.violated)


@pytest.mark.parametrize(
    "setting_changes, input_changes, task, reasons",
    [
        ({}, DRIFT, "regression", ["drift: share of drifted features 0.64 >= 0.50"]),
        (
            {"max_drift_share": None, "max_drift_share_increase": 0.3},
            {"drift_share": 0.45},
            "regression",
            [
                "drift: share of drifted features 0.45 is 0.35 above the champion's first-batch "
                "share 0.10 (limit 0.30)"
            ],
        ),
        (
            {},
            WORSE,
            "regression",
            ["performance: mae 88.1 is 31.1% worse than the champion's baseline 67.2 (limit 25%)"],
        ),
        (
            {},
            {"current_metric": 3.0, "baseline_metric": 0.0},
            "regression",
            ["performance: mae 3 is 3 worse than the champion's baseline 0 (limit 25%)"],
        ),
        (
            {"max_performance_drop_abs": 10.0, "performance_limit": 80.0},
            WORSE,
            "regression",
            [
                "performance: mae 88.1 is 31.1% worse than the champion's baseline 67.2 "
                "(limit 25%)",
                "performance: mae 88.1 is 20.9 worse than the champion's baseline 67.2 (limit 10)",
                "performance: mae 88.1 is at or above the limit 80",
            ],
        ),
        (
            {**ROC_SETTINGS, "max_performance_drop_abs": 0.05, "performance_limit": 0.7},
            {**ROC, "current_metric": 0.62},
            "classification",
            [
                "performance: roc_auc 0.62 is 0.18 worse than the champion's baseline 0.8 "
                "(limit 0.05)",
                "performance: roc_auc 0.62 is at or below the limit 0.7",
            ],
        ),
        (
            {"max_drift_share": None, "max_performance_drop": None},
            {"batches_since_champion": 13},
            "regression",
            ["staleness: champion is 13 batches old (limit 13)"],
        ),
        (
            {},
            {"force": True, "force_reason": "  label fix in March  "},
            "regression",
            ["manual: label fix in March"],
        ),
        (
            PERSIST_2_OF_3,
            {**DRIFT, "recent": signals((17, "drift"))},
            "regression",
            [
                "drift: share of drifted features 0.64 >= 0.50",
                "persistence: drift violated in 1 of the last 3 batches (needs 2 of 3), "
                "so it waits",
            ],
        ),
        (
            PERSIST_2_OF_3,
            {**DRIFT, "recent": signals((18, "drift"))},
            "regression",
            [
                "drift: share of drifted features 0.64 >= 0.50",
                "persistence: drift violated in 2 of the last 3 batches (needs 2 of 3)",
            ],
        ),
        (
            BUDGET_2_PER_10,
            {**DRIFT, "retrain_batches": (11, 15)},
            "regression",
            [
                "drift: share of drifted features 0.64 >= 0.50",
                "budget: 2 retrains already in the 10 batches ending with this one "
                "(at most 2), so automatic retraining waits",
            ],
        ),
        (
            {"budget": {"max_retrains": 1, "per_batches": 10}},
            {**FORCE, "retrain_batches": (15,)},
            "regression",
            [
                "manual: audit",
                "budget: 1 retrain already in the 10 batches ending with this one "
                "(at most 1), this manual retrain exceeds it",
            ],
        ),
        (
            {"run_mode": "disabled"},
            DRIFT,
            "regression",
            [
                "drift: share of drifted features 0.64 >= 0.50",
                "run_mode: disabled in params.yaml, so nothing is retrained",
            ],
        ),
        (
            {"run_mode": "dry_run"},
            DRIFT,
            "regression",
            [
                "drift: share of drifted features 0.64 >= 0.50",
                "dry run: the retrain is recorded, no alias is moved",
            ],
        ),
    ],
    ids=[
        "drift-abs",
        "drift-rel",
        "perf-rel",
        "perf-rel-zero-baseline",
        "perf-all-three-mae",
        "perf-abs-and-limit-roc",
        "staleness",
        "manual-stripped",
        "persistence-waits",
        "persistence-met",
        "budget-blocks",
        "budget-manual-exceeds",
        "disabled",
        "dry-run",
    ],
)
def test_reason_sentences(setting_changes, input_changes, task, reasons):
    decision = decide_retraining(inputs(**input_changes), settings(**setting_changes), task)
    assert list(decision.reasons) == reasons


def test_nothing_fired_explains_every_rule():
    decision = decide_retraining(
        inputs(),
        settings(max_drift_share_increase=0.3, max_performance_drop_abs=10.0, performance_limit=80),
        "regression",
    )
    assert decision.reasons == (
        "no rule fired: drift share 0.18 < 0.50, drift share 0.18 is 0.08 above the champion's "
        "first-batch share 0.10 (limit 0.30), mae 70 is 4.2% worse than the champion's baseline "
        "67.2 (limit 25%), mae 70 is 2.8 worse than the champion's baseline 67.2 (limit 10), "
        "mae 70 is below the limit 80, champion is 3 batches old (limit 13)",
    )
    assert decision.summary() == f"no retrain: {decision.reasons[0]}"


def test_rules_that_are_off_are_not_mentioned():
    config = settings(max_drift_share=None, max_performance_drop=None, max_model_age_batches=None)
    decision = decide_retraining(inputs(drift_share=1.0), config, "regression")
    assert decision.reasons == ("no rule fired: every rule is off",)


def test_unknown_inputs_are_said_so():
    config = settings(max_drift_share_increase=0.3, performance_limit=80)
    decision = decide_retraining(
        inputs(baseline_drift_share=None, baseline_metric=None), config, "regression"
    )
    assert decision.reasons == (
        "no rule fired: drift share 0.18 < 0.50, champion's first-batch drift share unknown, "
        "mae champion's baseline unknown, mae 70 is below the limit 80, "
        "champion is 3 batches old (limit 13)",
    )
    decision = decide_retraining(
        inputs(drift_share=None, current_metric=None), config, "regression"
    )
    assert decision.reasons[0].startswith(
        "no rule fired: drift share unknown, mae current value unknown, champion is 3 batches"
    )


def test_cooldown_reason_and_summary():
    decision = decide_retraining(inputs(**DRIFT, retrain_batches=(19,)), SETTINGS, "regression")
    assert decision.reasons == (
        "drift: share of drifted features 0.64 >= 0.50",
        "cooldown: last retrain was 1 batch ago (cooldown 2 batches), "
        "so automatic retraining waits",
    )
    assert decision.summary().startswith("no retrain (blocked by cooldown): drift: share")


def test_manual_during_cooldown_says_cooldown_was_ignored():
    decision = decide_retraining(inputs(**FORCE, retrain_batches=(20,)), SETTINGS, "regression")
    assert decision.reasons == (
        "manual: audit",
        "cooldown: last retrain was 0 batches ago (cooldown 2 batches), "
        "ignored for a manual retrain",
    )


def test_dry_run_summary_says_so():
    decision = decide_retraining(inputs(**DRIFT), settings(run_mode="dry_run"), "regression")
    assert (decision.mode, decision.summary()) == (
        "dry_run",
        "retrain (dry run): drift: share of drifted features 0.64 >= 0.50; "
        "dry run: the retrain is recorded, no alias is moved",
    )


def test_violated_is_recorded_before_persistence():
    decision = decide_retraining(inputs(**DRIFT, **WORSE), settings(**PERSIST_2_OF_3), "regression")
    assert (decision.violated, decision.rules_fired, decision.retrain) == (
        ("drift", "performance"),
        (),
        False,
    )


def test_a_stream_of_batches_feeds_its_own_history():
    """Each decision's `violated` becomes a BatchSignal of the next batches, as the caller does."""
    config = settings(**PERSIST_2_OF_3, cooldown_batches=3)
    shares = {1: 0.6, 2: 0.1, 3: 0.1, 4: 0.6, 5: 0.1, 6: 0.6, 7: 0.6, 8: 0.6, 9: 0.1, 10: 0.6}
    recent: list[BatchSignal] = []
    retrains: list[int] = []
    for index, share in shares.items():
        decision = decide_retraining(
            inputs(
                batch_index=index,
                drift_share=share,
                recent=tuple(recent),
                retrain_batches=tuple(retrains),
            ),
            config,
            "regression",
        )
        recent.append(BatchSignal(index, frozenset(decision.violated)))
        retrains += [index] if decision.retrain else []
    # 1 and 4 are alone in their windows; 6 is the second of 4-6; 7-8 cool down; 9 is calm;
    # 10 is the second of 8-10
    assert retrains == [6, 10]


def test_record_round_trip():
    config = settings(**PERSIST_2_OF_3, **BUDGET_2_PER_10, max_performance_drop_abs=10.0)
    decision = decide_retraining(
        inputs(**DRIFT, **WORSE, recent=signals((19, "drift")), retrain_batches=(11,)),
        config,
        "regression",
    )
    assert RetrainDecision.from_dict(decision.to_dict()) == decision
    stored = json.loads(json.dumps(decision.to_dict()))
    assert RetrainDecision.from_dict(stored) == decision


def test_record_replays_to_the_same_decision():
    config = settings(**PERSIST_2_OF_3, severity={"drift": "critical"}, run_mode="dry_run")
    decision = decide_retraining(
        inputs(**DRIFT, recent=signals((18, "drift"))), config, "regression"
    )
    record = RetrainDecision.from_dict(json.loads(json.dumps(decision.to_dict())))
    replayed = decide_retraining(
        PolicyInputs.from_dict(record.inputs),
        RetrainSettings.model_validate(record.thresholds),
        record.inputs["task"],
    )
    assert replayed == decision


def test_record_holds_every_input_and_threshold():
    config = settings(severity={"drift": "critical"})
    decision = decide_retraining(inputs(recent=signals((19, "drift"))), config, "regression")
    assert decision.inputs == {
        "task": "regression",
        "batch_index": 20,
        "drift_share": 0.18,
        "metric": "mae",
        "current_metric": 70.0,
        "baseline_metric": 67.2,
        "baseline_drift_share": 0.1,
        "batches_since_champion": 3,
        "recent": [{"batch_index": 19, "violated": ["drift"]}],
        "retrain_batches": [],
        "force": False,
        "force_reason": None,
        "on_probation": False,
        "weighted_drift_share": None,
        "baseline_weighted_drift_share": None,
        "prediction_drifted": None,
        "current_interval": None,
        "estimated_metric": None,
        "challenges": [],
        "evaluated": [],
        "holdout_batches": 1,
    }
    assert decision.thresholds == {
        "run_mode": "enabled",
        "max_drift_share": 0.5,
        "max_drift_share_increase": None,
        "drift_weighting": "importance",
        "prediction_drift": False,
        "max_estimated_drop": None,
        "performance_evidence": "interval",
        "window_after_drop": True,
        "performance_metric": "mae",
        "max_performance_drop": 0.25,
        "max_performance_drop_abs": None,
        "performance_limit": None,
        "max_model_age_batches": 13,
        "persistence": {"violations": 1, "window": 1},
        "cooldown_batches": 2,
        "budget": {"max_retrains": None, "per_batches": 13},
        "gain": {"lookback": 3, "min_expected": 0.0, "backoff": 2.0, "max_wait_batches": 26},
        # the configured severity, completed with the defaults
        "severity": {
            "drift": "critical",
            "performance": "critical",
            "estimated": "warning",
            "staleness": "info",
            "manual": "info",
        },
    }


def test_old_record_reads_back_with_defaults():
    old = {"retrain": True, "rules_fired": ["drift"], "reasons": ["drift: x"], "blocked_by": None}
    assert RetrainDecision.from_dict(old) == RetrainDecision(True, ("drift",), ("drift: x",), None)


def test_to_dict():
    decision = RetrainDecision(
        True, ("drift",), ("drift: share 0.6 >= 0.5",), None, ("drift",), "warning", "enabled"
    )
    assert decision.to_dict() == {
        "retrain": True,
        "rules_fired": ["drift"],
        "reasons": ["drift: share 0.6 >= 0.5"],
        "blocked_by": None,
        "violated": ["drift"],
        "severity": "warning",
        "mode": "enabled",
        "inputs": {},
        "thresholds": {},
        "window_batches": None,
    }


@pytest.mark.parametrize(
    "retrain_batches, since", [((), None), ((4, 17), 3), ((17, 4), 3), ((20,), 0)]
)
def test_batches_since_retrain(retrain_batches, since):
    assert inputs(retrain_batches=retrain_batches).batches_since_retrain == since


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
        ({"drift_share": 1.5}, r"drift_share must be in \[0, 1\], got 1.5"),
        ({"baseline_drift_share": -0.1}, r"baseline_drift_share must be in \[0, 1\], got -0.1"),
        ({"batches_since_champion": -1}, r"batches_since_champion must be >= 0"),
        ({"retrain_batches": (3, 21)}, r"retrain_batches \[21\] are after batch 20"),
        (
            {"recent": signals((19, "drift"), (18, "drift"))},
            r"recent must be earlier batches, oldest first, without repeats: got indices "
            r"\[19, 18\] for batch 20",
        ),
        ({"recent": signals((20, "drift"))}, r"got indices \[20\] for batch 20"),
        ({"recent": signals((19, "drift"), (19, "drift"))}, r"got indices \[19, 19\]"),
    ],
)
def test_inputs_out_of_range(changes, message):
    with pytest.raises(ValueError, match=message):
        inputs(**changes)


def test_signal_with_unknown_rule():
    with pytest.raises(ValueError, match=r"batch 3: unknown rules \['drfit'\]"):
        BatchSignal(3, frozenset({"drfit"}))


def test_policy_imports_no_backend():
    code = (
        "import sys, modelwatch.decide.policy; "
        "print(sorted(m for m in ('mlflow', 'prefect', 'great_expectations', 'dvc') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_automatic_retraining_waits_for_a_probation_verdict_a_manual_one_does_not():
    """A promotion must not drop the probation of the champion it replaces unseen: automatic
    rules wait for the verdict; a manual retrain goes ahead and says what it will end."""
    waiting = decide_retraining(inputs(**DRIFT, on_probation=True), SETTINGS, "regression")
    assert (waiting.retrain, waiting.blocked_by) == (False, "probation")
    assert waiting.reasons[-1] == (
        "probation: the champion is on probation and not judged yet, "
        "so automatic retraining waits for its verdict"
    )
    manual = decide_retraining(inputs(**FORCE, on_probation=True), SETTINGS, "regression")
    assert manual.retrain and manual.blocked_by is None
    assert manual.reasons[-1].endswith(
        "a manual retrain goes ahead (its promotion would end that probation as superseded)"
    )
    calm = decide_retraining(inputs(on_probation=True), SETTINGS, "regression")
    assert calm.blocked_by is None and not calm.retrain  # nothing fired: nothing to block
