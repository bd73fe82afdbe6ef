"""The live shadow evidence on a challenger that waits for approval, and the gate it is at the
moment of approval (pure: no Prefect, no MLflow). The evidence is probation.live_shadow, the
same computation the retrain's live_shadow check uses; its metrics are checked against
scikit-learn's (sklearn.metrics.mean_absolute_error, roc_auc_score) on the same rows."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, roc_auc_score

from modelwatch import names
from modelwatch.decide import approval
from modelwatch.decide.probation import LiveShadow, live_shadow
from modelwatch.decide.promotion import live_shadow_at_approval, live_shadow_check
from tests.unit.test_promotion import CLS, REG, settings

RULE = {"live_shadow": {"min_rows": 6, "max_worse": 0.05}}
AT = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)


def served(shadow_offset: float, n: int = 10) -> pd.DataFrame:
    """Served rows as the prediction log keeps them once labelled: the champion off by 2 on
    every row, the challenger by shadow_offset on the even rows it scored in shadow."""
    y = 100.0 + 5 * np.arange(n)
    shadow = np.where(np.arange(n) % 2 == 0, y + shadow_offset, np.nan)
    return pd.DataFrame({"y": y, "prediction": y + 2.0, "shadow.prediction": shadow})


def evidence(rows: pd.DataFrame, data=REG, task="regression", metric="mae", **kw) -> LiveShadow:
    return live_shadow(rows, 1, data, task, metric, champion_version="3", shadow_version="5", **kw)


def test_the_evidence_is_both_models_metric_on_the_rows_scored_in_shadow_as_sklearn_says():
    """Reference: sklearn.metrics.mean_absolute_error on the shadow-scored rows only."""
    rows = served(shadow_offset=9.0)
    live = evidence(rows)
    scored = rows[rows["shadow.prediction"].notna()]
    assert live.rows == 5 == len(scored)
    assert live.champion_score == pytest.approx(
        mean_absolute_error(scored["y"], scored["prediction"]), rel=1e-12
    )
    assert live.shadow_score == pytest.approx(
        mean_absolute_error(scored["y"], scored["shadow.prediction"]), rel=1e-12
    )


def test_a_classifier_is_judged_on_its_shadow_scores_as_sklearn_says():
    """Reference: sklearn.metrics.roc_auc_score of each model's positive-class score."""
    rng = np.random.default_rng(16)
    label = np.tile([0, 1], 20)
    good = np.clip(label * 0.6 + rng.uniform(0, 0.4, 40), 0, 1)  # the champion separates
    bad = rng.uniform(0, 1, 40)  # the challenger guesses
    rows = pd.DataFrame(
        {
            "label": label,
            "prediction": (good > 0.5).astype(int),
            "prediction_score": good,
            "shadow.prediction": (bad > 0.5).astype(int),
            "shadow.prediction_score": bad,
        }
    )
    live = evidence(rows, CLS, "classification", "roc_auc", score_column="prediction_score")
    assert live.champion_score == pytest.approx(roc_auc_score(label, good), rel=1e-12)
    assert live.shadow_score == pytest.approx(roc_auc_score(label, bad), rel=1e-12)
    s = settings(metric="roc_auc", live_shadow={"min_rows": 30, "max_worse": 0.05})
    found = live_shadow_at_approval(live, s, "classification", "5")
    assert not found.passed and found.details["skipped"] is False


def test_worse_live_than_allowed_with_enough_rows_fails_as_the_retrain_check_would():
    live = evidence(pd.concat([served(9.0)] * 2, ignore_index=True))  # 10 rows >= 6
    found = live_shadow_at_approval(live, settings(**RULE), "regression", "5")
    assert not found.passed
    assert found.sentence == (
        "live shadow: candidate version 5 mae 9 vs 2 for champion version 3 on the same 10 "
        "labelled production rows of 1 batch(es): 350% worse (> 5% allowed, "
        "promotion.live_shadow.max_worse): fail"
    )
    assert found == live_shadow_check(live, settings(**RULE), "regression", "5")  # one rule
    better = evidence(pd.concat([served(1.0)] * 2, ignore_index=True))
    assert live_shadow_at_approval(better, settings(**RULE), "regression", "5").passed


@pytest.mark.parametrize(
    "live, error, sentence",
    [
        (None, "", "live shadow: not enough rows yet: 0 of 6 (promotion.live_shadow.min_rows)"),
        (
            "five rows",
            "",
            "live shadow: not enough rows yet: 5 of 6 (promotion.live_shadow.min_rows); so far "
            "mae 9 vs 2 for champion version 3",
        ),
        (
            None,
            "live shadow: roc_auc is undefined on these 3 rows",
            "live shadow: not enough rows yet: 0 of 6 (promotion.live_shadow.min_rows) "
            "(live shadow: roc_auc is undefined on these 3 rows)",
        ),
    ],
)
def test_below_min_rows_the_approval_proceeds_and_says_how_many_rows_of_how_many(
    live, error, sentence
):
    given = evidence(served(9.0)) if live == "five rows" else None
    found = live_shadow_at_approval(given, settings(**RULE), "regression", "5", error)
    assert found.passed and found.details["skipped"] is True
    assert found.sentence == sentence


def test_without_a_live_shadow_rule_the_evidence_is_shown_never_judged():
    found = live_shadow_at_approval(evidence(served(90.0)), settings(), "regression", "5")
    assert found.passed and found.sentence == (
        "live shadow (not judged: promotion.live_shadow is not set): 5 labelled production rows "
        "scored in shadow; so far mae 90 vs 2 for champion version 3"
    )
    none = live_shadow_at_approval(None, settings(), "regression", "5")
    assert none.sentence.endswith("no labelled production rows scored in shadow yet")


def test_at_retrain_time_with_approval_required_the_check_says_evaluated_at_approval():
    s = settings(approval="required", **RULE)
    other = evidence(served(9.0))  # the service shadowed version 5, the candidate is 7
    for live in (None, other):
        found = live_shadow_check(live, s, "regression", "7")
        assert found.passed and "skipped" not in found.sentence
        assert found.sentence.startswith("live shadow: evaluated at approval: candidate version 7")
        assert found.details["at_approval"] is True
    off = live_shadow_check(None, settings(**RULE), "regression", "7")  # no approval: as before
    assert off.sentence == "live shadow: skipped, no labelled production rows were scored in shadow"


def test_an_approval_the_live_evidence_blocks_is_recorded_as_not_promoted_with_who_and_why():
    given = approval.from_form("approve", "card checked", "ana", at=AT)
    assert given.promotes and given.live_shadow is None  # not judged yet
    said = "live shadow: candidate version 5 mae 9 vs 2 ...: fail"
    blocked = approval.Answer(
        **{**given.to_dict(), "live_shadow": said, "live_shadow_blocks": True}
    )
    assert not blocked.promotes and blocked.verdict == "approved"
    assert blocked.outcome() == (
        "approved by ana: card checked; not promoted because of the live shadow evidence: " + said
    )
    tags = blocked.tags()
    assert tags[names.APPROVAL] == "approved" and tags[names.APPROVAL_BY] == "ana"
    assert tags[names.APPROVAL_LIVE_SHADOW] == said
    assert tags[names.PROMOTION] == "not_promoted_live_shadow"
    assert "Not promoted because of the live shadow evidence" in blocked.markdown("5")
    assert approval.Answer.from_dict(blocked.to_dict()) == blocked  # the ledger round trip
    few = "live shadow: not enough rows yet: 2 of 6 (promotion.live_shadow.min_rows)"
    proceeds = approval.Answer(**{**given.to_dict(), "live_shadow": few})
    assert proceeds.promotes and proceeds.outcome() == f"approved by ana: card checked; {few}"
    assert names.PROMOTION not in proceeds.tags()
    old = {k: v for k, v in given.to_dict().items() if not k.startswith("live")}
    assert approval.Answer.from_dict(old) == given  # answers recorded before this change


def test_a_rejection_is_unchanged_by_live_evidence():
    no = approval.from_form("reject", "segment north worse", "bo", at=AT)
    assert no.outcome() == "rejected by bo: segment north worse" and not no.promotes
    assert names.APPROVAL_LIVE_SHADOW not in no.tags()
