"""Metrics of modelwatch.performance against scikit-learn, overall and per segment."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from modelwatch import performance
from modelwatch.errors import ConfigError, InsufficientDataError, SchemaError
from modelwatch.settings import DataSettings, PerformanceSettings

REGRESSION_DATA = DataSettings(
    id="row",
    target="y",
    prediction="prediction",
    features=["x", "region"],
    categorical=["region"],
    segments=["region"],
)
BANK_DATA = DataSettings(
    id="row",
    target="Class",
    prediction="prediction",
    features=["V1", "V2"],
    categorical=["V2"],
    positive_label=2,
    segments=["V2"],
)


def regression_frame(seed: int, n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.gamma(4.0, 50.0, n)
    return pd.DataFrame(
        {
            "row": np.arange(n),
            "x": rng.normal(size=n),
            "region": rng.choice(["north", "south", "east"], n, p=[0.5, 0.4, 0.1]),
            "y": y,
            "prediction": y + rng.normal(0, 20, n),
        }
    )


def test_regression_metrics_match_sklearn():
    """Reference: sklearn.metrics.mean_absolute_error, root_mean_squared_error,
    mean_absolute_percentage_error, r2_score."""
    rng = np.random.default_rng(1)
    y = rng.gamma(3.0, 40.0, 300)
    pred = y + rng.normal(5, 25, 300)
    got = performance.compute_metrics(y, pred, "regression")
    assert got == pytest.approx(
        {
            "mae": skm.mean_absolute_error(y, pred),
            "rmse": skm.root_mean_squared_error(y, pred),
            "mape": skm.mean_absolute_percentage_error(y, pred),
            "r2": skm.r2_score(y, pred),
        },
        rel=1e-12,
    )


def test_regression_constant_target_omits_r2():
    """Reference: sklearn.metrics.mean_absolute_error (r2 of a constant target is undefined)."""
    y, pred = np.full(5, 10.0), np.array([9.0, 10.0, 11.0, 12.0, 10.0])
    got = performance.compute_metrics(y, pred, "regression")
    assert "r2" not in got
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))


def test_regression_zero_target_omits_mape():
    """Reference: sklearn.metrics.root_mean_squared_error (mape divides by the target)."""
    y, pred = np.array([0.0, 2.0, 4.0, 8.0]), np.array([1.0, 2.0, 3.0, 9.0])
    got = performance.compute_metrics(y, pred, "regression")
    assert set(got) == {"mae", "rmse", "r2"}
    assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred))


def test_binary_labels_1_2_with_positive_label_2_match_sklearn():
    """Reference: sklearn.metrics.accuracy_score, precision_score, recall_score, f1_score
    (pos_label=2, average="binary"), roc_auc_score."""
    rng = np.random.default_rng(2)
    y = rng.choice([1, 2], 400, p=[0.8, 0.2])
    score = np.clip((y == 2) * 0.35 + rng.uniform(0, 0.65, 400), 0, 1)
    pred = np.where(score > 0.5, 2, 1)
    got = performance.compute_metrics(y, pred, "classification", y_score=score, positive_label=2)
    assert got == pytest.approx(
        {
            "accuracy": skm.accuracy_score(y, pred),
            "precision": skm.precision_score(y, pred, pos_label=2),
            "recall": skm.recall_score(y, pred, pos_label=2),
            "f1": skm.f1_score(y, pred, pos_label=2),
            "roc_auc": skm.roc_auc_score(y == 2, score),
        },
        rel=1e-12,
    )
    # the positive class matters: with pos_label 1 the scores differ
    assert got["recall"] != pytest.approx(skm.recall_score(y, pred, pos_label=1))


@pytest.mark.parametrize(
    "y_true, y_pred, positive_label",
    [
        (
            np.array([1.0, 2.0, 2.0, 1.0, 2.0]),
            np.array([1, 2, 1, 1, 2]),
            "2",
        ),  # float labels from CSV
        (np.array(["1", "2", "2", "1", "2"]), np.array([1, 2, 1, 1, 2]), 2),  # str vs int
        (np.array([1, 2, 2, 1, 2]), np.array([1, 2, 1, 1, 2]), " 2 "),
    ],
)
def test_positive_label_compares_by_value(y_true, y_pred, positive_label):
    """Reference: sklearn.metrics.recall_score(pos_label=2) on int labels."""
    got = performance.compute_metrics(
        y_true, y_pred, "classification", positive_label=positive_label
    )
    want = np.array([1, 2, 2, 1, 2]), np.array([1, 2, 1, 1, 2])
    assert got["recall"] == pytest.approx(skm.recall_score(*want, pos_label=2)) == 2 / 3
    assert got["precision"] == pytest.approx(skm.precision_score(*want, pos_label=2)) == 1.0


def test_multiclass_uses_macro_average():
    """Reference: sklearn.metrics.precision_score, recall_score, f1_score (average="macro")."""
    rng = np.random.default_rng(3)
    y = rng.choice(["a", "b", "c"], 250)
    pred = np.where(rng.uniform(size=250) < 0.7, y, rng.choice(["a", "b", "c"], 250))
    got = performance.compute_metrics(
        y, pred, "classification", y_score=rng.uniform(size=250), positive_label="a"
    )
    assert got == pytest.approx(
        {
            "accuracy": skm.accuracy_score(y, pred),
            "precision": skm.precision_score(y, pred, average="macro", zero_division=0),
            "recall": skm.recall_score(y, pred, average="macro", zero_division=0),
            "f1": skm.f1_score(y, pred, average="macro", zero_division=0),
        },
        rel=1e-12,
    )


def test_roc_auc_omitted_when_one_class_present():
    """Reference: sklearn.metrics.accuracy_score (roc_auc needs both classes in y_true)."""
    y, pred = np.array([1, 1, 1, 1]), np.array([1, 2, 1, 1])
    got = performance.compute_metrics(
        y, pred, "classification", y_score=[0.1, 0.9, 0.2, 0.3], positive_label=2
    )
    assert "roc_auc" not in got
    assert got["accuracy"] == skm.accuracy_score(y, pred) == 0.75
    assert got["precision"] == skm.precision_score(y, pred, pos_label=2, zero_division=0) == 0.0


def test_binary_without_positive_label_is_a_config_error():
    with pytest.raises(ConfigError, match=r"data.positive_label is required .*labels seen: 1, 2"):
        performance.compute_metrics([1, 2, 1], [1, 2, 2], "classification")


def test_positive_label_not_among_labels_is_a_config_error():
    with pytest.raises(ConfigError, match=r"positive_label 'yes' is not one of .*\(1, 2\)"):
        performance.compute_metrics([1, 2, 1], [1, 2, 2], "classification", positive_label="yes")


@pytest.mark.parametrize("y_true, y_pred", [([], []), ([5.0], [4.0])])
def test_fewer_than_two_rows_is_insufficient(y_true, y_pred):
    with pytest.raises(InsufficientDataError, match=rf"{len(y_true)} labelled row\(s\)"):
        performance.compute_metrics(y_true, y_pred, "regression")


def test_two_rows_is_enough():
    """Reference: sklearn.metrics.mean_absolute_error on two rows."""
    got = performance.compute_metrics([1.0, 3.0], [2.0, 3.0], "regression")
    assert got["mae"] == skm.mean_absolute_error([1.0, 3.0], [2.0, 3.0]) == 0.5


def test_missing_prediction_is_a_schema_error():
    with pytest.raises(SchemaError, match=r"y_pred: 1 missing value\(s\) of 3"):
        performance.compute_metrics([1.0, 2.0, 3.0], [1.0, np.nan, 3.0], "regression")


def test_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match=r"unknown task 'ranking'"):
        performance.compute_metrics([1, 2], [1, 2], "ranking")


def test_evaluate_frame_overall_and_segments_match_sklearn():
    """Reference: sklearn.metrics.mean_absolute_error per segment value."""
    frame = regression_frame(4)
    report = performance.evaluate_frame(
        frame, REGRESSION_DATA, "regression", PerformanceSettings(min_segment_rows=30)
    )
    assert report.n_rows == 200 and report.n_missing_target == 0
    assert report.metrics["mae"] == pytest.approx(
        skm.mean_absolute_error(frame.y, frame.prediction)
    )
    by_value = {s.value: s for s in report.segments}
    assert sorted(by_value) == ["east", "north", "south"]
    for value, seg in by_value.items():
        rows = frame[frame.region == value]
        assert seg.column == "region" and seg.n_rows == len(rows)
        if len(rows) >= 30:
            assert seg.metrics["mae"] == pytest.approx(
                skm.mean_absolute_error(rows.y, rows.prediction)
            )
        else:
            assert seg.metrics == {}
    assert sum(s.n_rows for s in report.segments) == 200


def test_small_segments_are_listed_without_metrics():
    """Reference: sklearn.metrics.mean_absolute_error on the large segment."""
    frame = pd.DataFrame(
        {
            "x": range(6),
            "region": ["a"] * 5 + ["b"],
            "y": [1.0, 2, 3, 4, 5, 6],
            "prediction": [1.5, 2, 3, 4, 6, 9],
        }
    )
    report = performance.evaluate_frame(
        frame, REGRESSION_DATA, "regression", PerformanceSettings(min_segment_rows=1)
    )
    (a, b) = report.segments
    assert (a.value, a.n_rows, b.value, b.n_rows) == ("a", 5, "b", 1)
    assert a.metrics["mae"] == pytest.approx(
        skm.mean_absolute_error([1, 2, 3, 4, 5], [1.5, 2, 3, 4, 6])
    )
    assert b.metrics == {}  # one row is below the two rows any metric needs


def test_evaluate_frame_drops_and_counts_missing_target():
    """Reference: sklearn.metrics.root_mean_squared_error on the labelled rows only."""
    frame = regression_frame(5, n=50)
    frame.loc[[3, 10, 11], "y"] = np.nan
    before = frame.copy()
    report = performance.evaluate_frame(frame, REGRESSION_DATA, "regression", PerformanceSettings())
    labelled = frame.dropna(subset=["y"])
    assert (report.n_rows, report.n_missing_target) == (47, 3)
    assert report.metrics["rmse"] == pytest.approx(
        skm.root_mean_squared_error(labelled.y, labelled.prediction)
    )
    assert "(3 rows without a target left out)" in report.summary()
    pd.testing.assert_frame_equal(frame, before)  # the input is not mutated


def test_evaluate_frame_bank_style_classification_with_scores():
    """Reference: sklearn.metrics.f1_score(pos_label=2), roc_auc_score; Class 1/2 as read from
    CSV with missing labels (float column)."""
    rng = np.random.default_rng(6)
    n = 120
    y = rng.choice([1, 2], n, p=[0.7, 0.3]).astype(float)
    proba = np.clip((y == 2) * 0.4 + rng.uniform(0, 0.6, n), 0, 1)
    frame = pd.DataFrame(
        {
            "V1": rng.integers(18, 90, n),
            "V2": rng.choice(["job", "none"], n),
            "Class": y,
            "prediction": np.where(proba > 0.5, 2, 1),
            "p2": proba,
        }
    )
    frame.loc[0, "Class"] = np.nan
    report = performance.evaluate_frame(
        frame,
        BANK_DATA,
        "classification",
        PerformanceSettings(min_segment_rows=10),
        score_column="p2",
    )
    rows = frame.iloc[1:]
    assert report.n_missing_target == 1
    assert report.metrics["f1"] == pytest.approx(
        skm.f1_score(rows.Class.astype(int), rows.prediction, pos_label=2)
    )
    assert report.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(rows.Class == 2, rows.p2))
    assert {s.value for s in report.segments} == {"job", "none"}


@pytest.mark.parametrize(
    "drop, message",
    [
        ("prediction", r"columns \['prediction'\] are missing"),
        ("region", r"columns \['region'\] are missing"),
    ],
)
def test_evaluate_frame_missing_column(drop, message):
    frame = regression_frame(7, n=10).drop(columns=[drop])
    with pytest.raises(SchemaError, match=message):
        performance.evaluate_frame(frame, REGRESSION_DATA, "regression", PerformanceSettings())
    assert drop not in frame.columns and len(frame) == 10


def test_evaluate_frame_missing_prediction_is_named():
    frame = regression_frame(8, n=10)
    frame.loc[2, "prediction"] = np.nan
    with pytest.raises(SchemaError, match=r"column 'prediction': 1 missing value\(s\) in 10"):
        performance.evaluate_frame(frame, REGRESSION_DATA, "regression", PerformanceSettings())


def test_evaluate_frame_with_one_labelled_row_is_insufficient():
    frame = regression_frame(9, n=4)
    frame.loc[1:, "y"] = np.nan
    with pytest.raises(InsufficientDataError, match=r"1 of 4 rows have a target 'y'"):
        performance.evaluate_frame(frame, REGRESSION_DATA, "regression", PerformanceSettings())


def test_report_round_trips_through_json_and_summarises():
    """Reference: sklearn.metrics.r2_score (value carried through to_dict/from_dict)."""
    frame = regression_frame(10)
    report = performance.evaluate_frame(
        frame, REGRESSION_DATA, "regression", PerformanceSettings(min_segment_rows=30)
    )
    again = performance.PerformanceReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report
    assert again.metrics["r2"] == pytest.approx(skm.r2_score(frame.y, frame.prediction))
    summary = performance.PerformanceReport(
        "regression", 168, {"mae": 41.23, "rmse": 60.31, "r2": 0.7104}
    ).summary()
    assert summary == "mae 41.2, rmse 60.3, r2 0.71 on 168 rows"


@pytest.mark.parametrize(
    "metric, baseline, current, want",
    [
        ("mae", 80.0, 100.0, 0.25),  # lower is better: grew by a quarter
        ("mae", 80.0, 60.0, -0.25),  # improved
        ("r2", 0.8, 0.6, 0.25),  # higher is better: fell by a quarter
        ("r2", -0.5, -1.0, 1.0),  # negative baseline: relative to |baseline|
        ("mae", 0.0, 3.0, 3.0),  # zero baseline: absolute difference
    ],
)
def test_worsening(metric, baseline, current, want):
    assert performance.worsening(metric, baseline, current, "regression") == pytest.approx(want)


def test_worsening_rejects_metric_of_other_task():
    with pytest.raises(ConfigError, match=r"'f1' is not a regression metric"):
        performance.worsening("f1", 0.5, 0.4, "regression")


def test_metric_directions_cover_the_settings_validator():
    assert performance.METRIC_DIRECTIONS["regression"] == {
        "mae": "min",
        "rmse": "min",
        "mape": "min",
        "r2": "max",
    }
    assert set(performance.METRIC_DIRECTIONS["classification"].values()) == {"max"}
