"""Model card (training.model_card): the window profile, the card as JSON and markdown, for a
challenger against a champion (decisions from compare_models on the crafted holdouts of
test_promotion) and for a first model without a holdout."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from modelwatch.decide.promotion import decide_first_model
from modelwatch.settings import TrainingSettings
from modelwatch.stores import gate
from modelwatch.training import model_card
from tests.unit.test_promotion import REG, compare, regression, segmented, settings

DATA = REG.model_copy(update={"timestamp": "ts"})
TRAINING = TrainingSettings(model="random_forest", seed=7, hyperparameters={"n_estimators": 50})
CV = {"mae": 41.23456, "rmse": 12345.6, "r2": float("nan")}
IMPORTANCE = {"region": 0.25, "x": 0.7, "sex": 0.05}


def window_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": [1, 2, 3, 4],
            "ts": ["2011-01-01", "2011-01-09", "2011-01-03", "2011-02-11"],
            "x": [0.5, np.nan, 3.0, 1.25],
            "region": ["a", "b", "a", "c"],
            "sex": ["F", "M", "F", "M"],
            "y": [10.0, 20.0, 30.0, 40.0],
        }
    )


def profile(frame=None, data=DATA) -> model_card.WindowProfile:
    frame = window_frame() if frame is None else frame
    return model_card.profile_window(frame, data, tag="window-004", md5="abc123", commit="f00d")


def card(decision, window="default", on_holdout=True, outcome="promoted", **kw):
    inputs = dict(
        name="bikes",
        task="regression",
        data=DATA,
        training=TRAINING,
        window=profile() if window == "default" else window,
        cv_metrics=CV,
        decision=decision,
        importance=IMPORTANCE,
        on_holdout=on_holdout,
        outcome=outcome,
    )
    inputs |= kw
    return model_card.card_dict(**inputs), model_card.render_model_card(**inputs)


def challenger_over_champion():
    """Holdout regions a (40 rows, 70 vs 100), b (40, 120 vs 100), c (10, 90 vs 100): the
    challenger's mae is 8500 / 90 = 94.4 against 100."""
    frame, cand, champ = segmented()
    s = settings(min_relative_change=0.02, segment_margin=0.25)
    return compare(frame, cand, champ, s, min_segment_rows=30, decision_id="p-5")


def test_profile_window_has_rows_span_and_numeric_ranges():
    got = profile()
    assert (got.tag, got.md5, got.commit, got.rows) == ("window-004", "abc123", "f00d", 4)
    assert (got.start, got.end) == ("2011-01-01", "2011-02-11")
    assert got.ranges == {"x": (0.5, 3.0)}  # region and sex are categorical; NaN left out
    assert model_card.WindowProfile.from_dict(json.loads(json.dumps(got.to_dict()))) == got


def test_profile_window_keeps_times_and_works_without_a_timestamp():
    frame = window_frame().assign(ts=["2011-01-01 06:30", "2011-01-01 08:00", None, "x"])
    timed = model_card.profile_window(frame, DATA, tag="t", md5="m", commit="c")
    assert (timed.start, timed.end) == ("2011-01-01T06:30:00", "2011-01-01T08:00:00")
    untimed = profile(data=REG)
    assert (untimed.start, untimed.end, untimed.rows) == (None, None, 4)


def test_card_of_a_challenger_compares_both_models_per_segment():
    decision = challenger_over_champion()
    assert decision.promote, decision.summary()
    got, md = card(decision)
    assert got["model"] == {"name": "bikes", "version": "5", "task": "regression"}
    assert got["training"]["hyperparameters"] == {"n_estimators": 50}
    assert got["metrics"]["holdout"]["challenger"]["mae"] == pytest.approx(8500 / 90)
    assert got["metrics"]["holdout"]["champion"]["mae"] == 100.0
    assert got["metrics"]["cross_validated"] == {"mae": 41.23456, "rmse": 12345.6}  # NaN out
    assert [(s["value"], s["rows"], s["challenger"], s["status"]) for s in got["segments"]] == [
        ("a", 40, 70.0, "pass"),
        ("b", 40, 120.0, "pass"),
        ("c", 10, None, "too_small"),
    ]
    assert list(got["feature_importance"]) == ["x", "region", "sex"]
    json.dumps(got, allow_nan=False)  # strict JSON: raises on NaN or non-serialisable values
    assert "# Model card: bikes version 5" in md
    assert "- Estimator: random_forest (seed 7)\n- Hyperparameters: n_estimators=50" in md
    assert "- Target `y`; id `row`; timestamp `ts`" in md
    assert "- Categorical: region, sex" in md
    assert "- `window-004`: 4 rows, 2011-01-01 to 2011-02-11" in md
    assert "- DVC md5 `abc123`, data commit `f00d`" in md
    assert "| mae | 41.2 |\n| rmse | 12346 |" in md
    assert "| metric | challenger | champion v3 |" in md
    assert "| mae | 94.4 | 100 |" in md
    assert "| region=b | 40 | mae | 120 | 100 | pass |" in md
    assert "| region=c | 10 | mae | n/a | n/a | too_small |" in md
    assert "| x | 0.7 |\n| region | 0.25 |\n| sex | 0.05 |" in md
    verdict = "**promote candidate version 5 over champion version 3**, promoted (decision p-5)"
    assert verdict in md
    for check in decision.checks:
        assert f"- {check.sentence}\n" in md


def test_card_lists_the_feature_ranges_and_intended_use():
    got, md = card(challenger_over_champion())
    ranges = "Not to be used outside the feature ranges of its training window: x 0.5 to 3."
    assert got["limitations"][0] == ranges
    assert f"- {ranges}\n" in md
    assert "Trained on data from 2011-01-01 to 2011-02-11" in got["limitations"][1]
    assert got["intended_use"].startswith("Predicts 'y' (regression) for one row of the 3 features")
    assert "retrain and promotion policy" in md and "'champion' points to" in md


def test_card_of_a_first_model_without_holdout_or_champion():
    decision = decide_first_model(
        {"mae": 41.2}, settings(), "regression", gate=gate.threshold_gate, candidate_version="1"
    )
    got, md = card(decision, window=None, on_holdout=False, importance={})
    assert got["metrics"]["holdout"] is None and got["segments"] == []
    assert got["training_window"] is None
    assert got["limitations"] == [
        "Judged on cross-validated metrics only: there was no holdout to compare on."
    ]
    assert "No holdout: a first model is judged on its cross-validated metrics." in md
    assert "## Training window\n\nNot recorded." in md
    assert "Not compared (no segment check ran)." in md
    assert "**promote candidate version 1**, promoted" in md
    assert "champion v" not in md
    assert "## Feature importance (permutation, on the training window)\n\nNot recorded." in md


def test_card_of_a_first_model_judged_on_a_holdout_has_no_champion_column():
    frame, cand, _ = regression(90, 100)
    decision = compare(frame, cand, None, settings())
    got, md = card(decision, outcome=None)
    assert got["metrics"]["holdout"]["champion"] is None
    assert "| metric | challenger |\n|---|---|\n| mae | 90 |" in md
    assert "**promote candidate version 5**\n" in md  # neither outcome nor decision id given


def test_model_card_imports_neither_prefect_nor_mlflow():
    code = (
        "import sys, modelwatch.training.model_card; "
        "print([m for m in ('prefect', 'mlflow') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
