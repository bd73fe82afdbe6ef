"""Reports of modelwatch.performance.report against scikit-learn, overall and per segment, with
bootstrap intervals and the constant-model baseline."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from modelwatch.errors import InsufficientDataError, SchemaError
from modelwatch.performance.metrics import format_number
from modelwatch.performance.report import PerformanceReport, evaluate_frame
from modelwatch.settings import BootstrapSettings, DataSettings, PerformanceSettings
from tests.unit.test_metrics import multiclass_sample

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


def test_evaluate_frame_overall_and_segments_match_sklearn():
    """Reference: sklearn.metrics.mean_absolute_error per segment value."""
    frame = regression_frame(4)
    report = evaluate_frame(
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
    report = evaluate_frame(
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
    report = evaluate_frame(frame, REGRESSION_DATA, "regression", PerformanceSettings())
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
    report = evaluate_frame(
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
        evaluate_frame(frame, REGRESSION_DATA, "regression", PerformanceSettings())
    assert drop not in frame.columns and len(frame) == 10


def test_evaluate_frame_missing_prediction_is_named():
    frame = regression_frame(8, n=10)
    frame.loc[2, "prediction"] = np.nan
    with pytest.raises(SchemaError, match=r"column 'prediction': 1 missing value\(s\) in 10"):
        evaluate_frame(frame, REGRESSION_DATA, "regression", PerformanceSettings())


def test_evaluate_frame_with_one_labelled_row_is_insufficient():
    frame = regression_frame(9, n=4)
    frame.loc[1:, "y"] = np.nan
    with pytest.raises(InsufficientDataError, match=r"1 of 4 rows have a target 'y'"):
        evaluate_frame(frame, REGRESSION_DATA, "regression", PerformanceSettings())


def test_report_round_trips_through_json_and_summarises():
    """Reference: sklearn.metrics.r2_score (value carried through to_dict/from_dict)."""
    frame = regression_frame(10)
    report = evaluate_frame(
        frame, REGRESSION_DATA, "regression", PerformanceSettings(min_segment_rows=30)
    )
    again = PerformanceReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report
    assert again.metrics["r2"] == pytest.approx(skm.r2_score(frame.y, frame.prediction))
    summary = PerformanceReport(
        "regression", 168, {"mae": 41.23, "rmse": 60.31, "r2": 0.7104}
    ).summary()
    assert summary == "mae 41.2, rmse 60.3, r2 0.71 on 168 rows"


# --- the report with intervals and baseline ---------------------------------------------------


def test_evaluate_frame_with_intervals_and_baseline_round_trips():
    """Reference: sklearn.metrics.mean_absolute_error (point estimate inside its interval) and
    DummyRegressor(strategy="mean") on the reference target."""
    frame, reference = regression_frame(23), regression_frame(24, n=400)
    report = evaluate_frame(
        frame,
        REGRESSION_DATA,
        "regression",
        PerformanceSettings(bootstrap=BootstrapSettings(samples=100, seed=1)),
        reference_target=reference.y,
    )
    assert set(report.intervals) == set(report.metrics) == {"mae", "rmse", "mape", "r2"}
    low, high = report.intervals["mae"]
    assert low < skm.mean_absolute_error(frame.y, frame.prediction) < high
    constant = np.full(len(frame), reference.y.mean())
    assert report.baseline["mae"] == pytest.approx(skm.mean_absolute_error(frame.y, constant))
    again = PerformanceReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report
    assert report.summary().startswith(
        f"mae {format_number(report.metrics['mae'])} (CI "
        f"{format_number(low)} to {format_number(high)}; constant model "
        f"{format_number(report.baseline['mae'])}), rmse "
    )


def test_report_written_before_intervals_reads_back_empty():
    """Reference: sklearn.metrics.mean_absolute_error of [1, 3] vs [2, 3] (carried through)."""
    raw = {"task": "regression", "n_rows": 2, "metrics": {"mae": 0.5}, "segments": []}
    report = PerformanceReport.from_dict(raw)
    assert (report.intervals, report.baseline) == ({}, {})
    assert report.metrics["mae"] == skm.mean_absolute_error([1, 3], [2, 3])


def test_evaluate_frame_multiclass_score_columns():
    """Reference: sklearn.metrics.roc_auc_score(multi_class="ovr") and log_loss on the
    probability columns, per segment too; the bootstrap off gives no intervals."""
    y, pred, proba, classes = multiclass_sample(25, 240)
    rng = np.random.default_rng(25)
    frame = pd.DataFrame(
        {"V1": 0, "V2": rng.choice(["x", "y"], 240), "Class": y, "prediction": pred}
        | {f"p.{c}": proba[:, j] for j, c in enumerate(classes)}
    )
    data = BANK_DATA.model_copy(update={"positive_label": None})
    report = evaluate_frame(
        frame,
        data,
        "classification",
        PerformanceSettings(min_segment_rows=10, bootstrap=BootstrapSettings(samples=0)),
        score_columns={c: f"p.{c}" for c in classes},
    )
    assert report.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr")
    )
    seg = next(s for s in report.segments if s.value == "x")
    rows = (frame.V2 == "x").to_numpy()
    assert seg.metrics["log_loss"] == pytest.approx(
        skm.log_loss(y[rows], y_proba=proba[rows], labels=classes)
    )
    assert report.intervals == {}
    with pytest.raises(ValueError, match=r"give score_column .* or score_columns"):
        evaluate_frame(
            frame,
            data,
            "classification",
            PerformanceSettings(),
            score_column="p.2",
            score_columns={c: f"p.{c}" for c in classes},
        )
