"""promotion.live_shadow: the challenger's metric on live traffic scored in shadow as a promotion
check (pure). The numbers are chosen so that the relative change is exact by hand:
mae 42 vs 40 is (42 - 40) / 40 = 5 % worse; accuracy 0.76 vs 0.80 is 5 % worse too."""

import pytest
from pydantic import ValidationError

from modelwatch.decide.probation import LiveShadow
from modelwatch.decide.promotion import live_shadow_check
from tests.unit.test_promotion import check, compare, regression, settings


def live(shadow, champion, rows=250, version="5", metric="mae", batches=2) -> LiveShadow:
    return LiveShadow(version, "3", metric, rows, batches, champion, shadow)


RULE = {"live_shadow": {"min_rows": 200, "max_worse": 0.05}}


@pytest.mark.parametrize(
    "shadow, champion, passed, text",
    [
        (
            43.0,
            40.0,
            False,
            "live shadow: candidate version 5 mae 43 vs 40 for champion version 3 on the same 250 "
            "labelled production rows of 2 batch(es): 7.5% worse (> 5% allowed, "
            "promotion.live_shadow.max_worse): fail",
        ),
        (42.0, 40.0, True, "5% worse (<= 5% allowed, promotion.live_shadow.max_worse): pass"),
        (30.0, 40.0, True, "mae 30 vs 40 for champion version 3 on the same 250 labelled"),
    ],
)
def test_worse_than_the_champion_on_the_same_live_rows_by_more_than_max_worse_fails(
    shadow, champion, passed, text
):
    found = live_shadow_check(live(shadow, champion), settings(**RULE), "regression", "5")
    assert found.name == "live_shadow" and found.passed is passed
    assert text in found.sentence, found.sentence
    assert found.details["rows"] == 250 and found.details["skipped"] is False
    assert found.details["worse"] == pytest.approx((shadow - champion) / champion)


def test_a_higher_is_better_metric_is_worse_when_lower():
    s = settings(metric="accuracy", **RULE)
    found = live_shadow_check(live(0.74, 0.80, metric="accuracy"), s, "classification", "5")
    assert not found.passed and "7.5% worse" in found.sentence  # (0.80 - 0.74) / 0.80
    ok = live_shadow_check(live(0.76, 0.80, metric="accuracy"), s, "classification", "5")
    assert ok.passed


@pytest.mark.parametrize(
    "evidence, why",
    [
        (None, "no labelled production rows were scored in shadow"),
        (
            live(90.0, 40.0, rows=199),
            "only 199 labelled production rows were scored in shadow "
            "(< promotion.live_shadow.min_rows 200)",
        ),
        (
            live(90.0, 40.0, version="4"),
            "the service scored version 4 in shadow, not candidate version 5",
        ),
        (live(90.0, 40.0, metric="rmse"), "the shadow was measured in rmse, not mae"),
    ],
)
def test_without_enough_evidence_about_this_candidate_the_check_is_skipped_and_says_why(
    evidence, why
):
    found = live_shadow_check(evidence, settings(**RULE), "regression", "5")
    assert found.passed and found.details["skipped"] is True
    assert found.sentence == f"live shadow: skipped, {why}"


def test_compare_models_judges_the_live_shadow_only_when_configured():
    frame, cand, champ = regression(10.0, 20.0)  # holdout: the candidate is 50 % better
    lax = {"min_absolute_change": 1.0}
    assert "live_shadow" not in [
        c.name for c in compare(frame, cand, champ, settings(**lax), live=live(90.0, 40.0)).checks
    ]
    decision = compare(frame, cand, champ, settings(**lax, **RULE), live=live(90.0, 40.0))
    assert not decision.promote  # better on the holdout, much worse on live traffic
    assert "mae 90 vs 40" in check(decision, "live_shadow").sentence
    assert any("live shadow" in r for r in decision.reasons)
    kept = compare(frame, cand, champ, settings(**lax, **RULE), live=live(90.0, 40.0, rows=20))
    assert kept.promote and "only 20 labelled production rows" in kept.reasons[-1]


@pytest.mark.parametrize(
    "raw, where",
    [
        ({"min_rows": 0, "max_worse": 0.05}, "min_rows"),
        ({"min_rows": 200, "max_worse": -0.1}, "max_worse"),
        ({"min_rows": "many", "max_worse": 0.05}, "min_rows"),
        ({"min_rows": 200, "max_worse": 0.05, "rows": 3}, "rows"),
    ],
)
def test_a_bad_live_shadow_setting_is_refused_naming_the_key(raw, where):
    with pytest.raises(ValidationError, match=rf"live_shadow\.{where}"):
        settings(live_shadow=raw)
    assert settings().live_shadow is None  # off by default


def test_a_section_given_twice_in_a_params_file_is_refused_naming_the_key_and_lines(tmp_path):
    """PyYAML keeps the last of two equal keys silently: a merge left two `serving:` sections
    in params.yaml and the first one's close_after_seconds was lost without a word."""
    from modelwatch.errors import ConfigError
    from modelwatch.settings import load_settings
    from tests.conftest import ROOT

    text = (ROOT / "params.yaml").read_text()
    first = text.splitlines().index(next(x for x in text.splitlines() if x.startswith("serving:")))
    bad = tmp_path / "params.yaml"
    bad.write_text(text + "\nserving:\n  port: 1\n")
    with pytest.raises(ConfigError, match=rf"key 'serving' is given twice \(first on line "
                       rf"{first + 1}\)") as info:  # fmt: skip
        load_settings(bad)
    assert str(bad) in str(info.value)
    for shipped in ("params.yaml", "params.bank.yaml"):  # one serving section, every key read
        assert load_settings(ROOT / shipped).settings.serving.close_after_seconds == 60
